// 1-D convolution as im2col + a matrix product: the patch of output frame t is
// cols[t][c·k + j] = x[t·stride + j·dilation − padLeft][c] (zero outside the input), and a weight stored as
// [out, in, k] is then a [out, in·k] matrix (`Linear`), so the product runs on the same kernels as
// every other linear (int8 tiles or sgemm). Time-major: x is [frames, channels].

/// Output frames of a convolution over `frames` inputs.
public func conv1dFrames(
    _ frames: Int, kernel k: Int, stride s: Int, dilation d: Int = 1, padLeft: Int, padRight: Int
) -> Int {
    (frames + padLeft + padRight - d * (k - 1) - 1) / s + 1
}

/// The im2col patches of `x` ([frames, channels]) into `cols` ([out frames, channels·k]); with
/// `frameRange`, only those output frames, the first of them at row 0 of `cols`.
public func im2col1d(
    _ x: UnsafePointer<Float>, frames T: Int, channels C: Int, kernel k: Int, stride s: Int, dilation d: Int = 1,
    padLeft: Int, padRight: Int, into cols: UnsafeMutablePointer<Float>, frameRange: Range<Int>? = nil
) {
    let out = conv1dFrames(T, kernel: k, stride: s, dilation: d, padLeft: padLeft, padRight: padRight)
    let frames = frameRange ?? 0 ..< out
    for t in frames {
        let row = cols + (t - frames.lowerBound) * C * k
        for j in 0 ..< k {
            let src = t * s + j * d - padLeft
            if src < 0 || src >= T {
                for c in 0 ..< C { row[c * k + j] = 0 }
            } else {
                let xr = x + src * C
                for c in 0 ..< C { row[c * k + j] = xr[c] }
            }
        }
    }
}

/// Scalar twin of im2col + product: y[t][o] = b[o] + Σ_c Σ_j w[o][c][j]·x[t·s + j·d − padLeft][c].
public func conv1d_ref(
    _ x: UnsafePointer<Float>, frames T: Int, channels C: Int, weight w: UnsafePointer<Float>,
    bias b: UnsafePointer<Float>?,
    outChannels O: Int, kernel k: Int, stride s: Int, dilation d: Int = 1, padLeft: Int, padRight: Int,
    into y: UnsafeMutablePointer<Float>
) {
    let out = conv1dFrames(T, kernel: k, stride: s, dilation: d, padLeft: padLeft, padRight: padRight)
    for t in 0 ..< out {
        for o in 0 ..< O {
            var acc = Double(b?[o] ?? 0)
            for c in 0 ..< C {
                for j in 0 ..< k {
                    let src = t * s + j * d - padLeft
                    if src >= 0 && src < T { acc += Double(w[(o * C + c) * k + j]) * Double(x[src * C + c]) }
                }
            }
            y[t * O + o] = Float(acc)
        }
    }
}

// MARK: transposed convolution

// ConvTranspose1d(stride u, padding p) as a matrix product and a scatter: with the weight [in, out, k]
// read as a [out·k, in] matrix Wᵀ (transposed once at load), Z[t] = Wᵀ·x[t] holds every
// contribution of input frame t, and output frame n = t·u + j − p gathers Z[t][o·k + j].

/// Output frames of a transposed convolution over `frames` inputs.
public func convTranspose1dFrames(_ frames: Int, kernel k: Int, stride u: Int, padding p: Int) -> Int {
    (frames - 1) * u - 2 * p + k
}

/// y[n][o] = bias[o] + Σ Z[t][o·k + j] over t·u + j − p = n, for output frames `frameRange`
/// (all when nil); `Z` is [frames, O·k], `y` [out frames, O]. Each output frame is written once
/// (a gather, so frame ranges can run on separate threads).
public func convTransposeGather(
    _ Z: UnsafePointer<Float>, frames T: Int, outChannels O: Int, kernel k: Int, stride u: Int, padding p: Int,
    bias: UnsafePointer<Float>?, into y: UnsafeMutablePointer<Float>, frameRange: Range<Int>? = nil
) {
    let N = convTranspose1dFrames(T, kernel: k, stride: u, padding: p)
    for n in frameRange ?? 0 ..< N {
        let yr = y + n * O
        if let bias { yr.update(from: bias, count: O) } else { yr.update(repeating: 0, count: O) }
        // taps j ≡ (n + p) mod u, from input frame t = (n + p − j) / u
        var j = (n + p) % u
        while j < k {
            let t = (n + p - j) / u
            if t >= 0 && t < T {
                let z = Z + t * O * k + j
                var o = 0
                while o < O {
                    yr[o] += z[o * k]
                    o += 1
                }
            }
            j += u
        }
    }
}

/// Scalar twin of the product + gather: y[n][o] = b[o] + Σ_i Σ_j w[i][o][j]·x[t][i], n = t·u + j − p.
public func convTranspose1d_ref(
    _ x: UnsafePointer<Float>, frames T: Int, channels C: Int, weight w: UnsafePointer<Float>,
    bias b: UnsafePointer<Float>?, outChannels O: Int, kernel k: Int, stride u: Int, padding p: Int,
    into y: UnsafeMutablePointer<Float>
) {
    let N = convTranspose1dFrames(T, kernel: k, stride: u, padding: p)
    var acc = [Double](repeating: 0, count: N * O)
    for t in 0 ..< T {
        for j in 0 ..< k {
            let n = t * u + j - p
            guard n >= 0 && n < N else { continue }
            for o in 0 ..< O {
                var s = 0.0
                for i in 0 ..< C { s += Double(w[(i * O + o) * k + j]) * Double(x[t * C + i]) }
                acc[n * O + o] += s
            }
        }
    }
    for n in 0 ..< N { for o in 0 ..< O { y[n * O + o] = Float(acc[n * O + o] + Double(b?[o] ?? 0)) } }
}
