// 1-D convolution as im2col + a matrix product: the patch of output frame t is
// cols[t][c·k + j] = x[t·stride + j − padLeft][c] (zero outside the input), and a weight stored as
// [out, in, k] is then a [out, in·k] matrix (`Linear`), so the product runs on the same kernels as
// every other linear (int8 tiles or sgemm). Time-major: x is [frames, channels].

/// Output frames of a convolution over `frames` inputs.
public func conv1dFrames(_ frames: Int, kernel k: Int, stride s: Int, padLeft: Int, padRight: Int) -> Int {
    (frames + padLeft + padRight - k) / s + 1
}

/// The im2col patches of `x` ([frames, channels]) into `cols` ([out frames, channels·k]).
public func im2col1d(
    _ x: UnsafePointer<Float>, frames T: Int, channels C: Int, kernel k: Int, stride s: Int, padLeft: Int,
    padRight: Int, into cols: UnsafeMutablePointer<Float>
) {
    let out = conv1dFrames(T, kernel: k, stride: s, padLeft: padLeft, padRight: padRight)
    for t in 0 ..< out {
        let row = cols + t * C * k
        for j in 0 ..< k {
            let src = t * s + j - padLeft
            if src < 0 || src >= T {
                for c in 0 ..< C { row[c * k + j] = 0 }
            } else {
                let xr = x + src * C
                for c in 0 ..< C { row[c * k + j] = xr[c] }
            }
        }
    }
}

/// Scalar twin of im2col + product: y[t][o] = b[o] + Σ_c Σ_j w[o][c][j]·x[t·s + j − padLeft][c].
public func conv1d_ref(
    _ x: UnsafePointer<Float>, frames T: Int, channels C: Int, weight w: UnsafePointer<Float>,
    bias b: UnsafePointer<Float>?,
    outChannels O: Int, kernel k: Int, stride s: Int, padLeft: Int, padRight: Int, into y: UnsafeMutablePointer<Float>
) {
    let out = conv1dFrames(T, kernel: k, stride: s, padLeft: padLeft, padRight: padRight)
    for t in 0 ..< out {
        for o in 0 ..< O {
            var acc = Double(b?[o] ?? 0)
            for c in 0 ..< C {
                for j in 0 ..< k {
                    let src = t * s + j - padLeft
                    if src >= 0 && src < T { acc += Double(w[(o * C + c) * k + j]) * Double(x[src * C + c]) }
                }
            }
            y[t * O + o] = Float(acc)
        }
    }
}
