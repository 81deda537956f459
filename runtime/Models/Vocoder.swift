import Foundation
import KAF

/// The BigVGAN vocoder (docs/ARCHITECTURE.md §1.10; kimia_infer/models/detokenizer/vocoder/bigvgan.py):
/// an 80-bin log-mel at 50 Hz → a 24 kHz waveform (×480). conv_pre (k7); per stage a transposed
/// convolution, then the mean of the stage's AMP blocks (each step: anti-aliased SnakeBeta, a
/// dilated conv, again, a conv, added to the block's input); a last anti-aliased activation,
/// conv_post (k7) and a clamp to [−1, 1] (tanh when the config says so).
/// Signals are time-major [frames, channels]; convolutions are im2col + the compute context's
/// products in blocks of frames. Weight norm was folded by the converter; the transposed
/// convolutions' weights are transposed to [out·k, in] f32 once, at load.
public final class Vocoder {
    struct Conv {
        let linear: Linear
        let kernel, dilation, padding: Int
        var outChannels: Int { linear.weight.rows }
        var inChannels: Int { linear.weight.cols / kernel }
    }
    struct Upsample {
        let product: Linear  // [out·k, in]: every contribution of one input frame
        let bias: [Float]
        let kernel, stride, padding, outChannels: Int
    }
    /// Per-channel e^α and 1/(e^β + 1e-9), and the two 12-tap filters, in buffers kept with the model.
    struct Activation {
        let alpha, invBeta, up, down: UnsafePointer<Float>
    }
    /// One step of an AMP block: AMPBlock1 is (A1, conv1 dilated, A2, conv2); AMPBlock2 has no second half.
    struct Step {
        let act: Activation
        let conv: Conv
        let second: (act: Activation, conv: Conv)?
    }

    public let config: VocoderConfig
    /// Most mel frames one call takes (buffers are sized for it at load).
    public let maxFrames: Int
    /// Samples per mel frame (480).
    public let hopLength: Int
    let file: KAFFile
    let compute: Compute
    let convPre, convPost: Conv
    let ups: [Upsample]
    /// Per stage, its AMP blocks.
    let stages: [[[Step]]]
    let activationPost: Activation
    /// Owns the transposed weights and the activations' parameters.
    let owned: ScratchArena
    let x, sum, state, t1, t2, upsampled, cols: UnsafeMutablePointer<Float>
    /// Output frames per im2col block: bounds the patch buffer.
    static let frameBlock = 1024

    public convenience init(file: KAFFile, threads: Int = 0, maxFrames: Int = 400) throws {
        guard let json = file.meta["components"]?["vocoder"]?["config"] else {
            throw FormatError(file.path, "no vocoder in this file (components.vocoder missing)")
        }
        try self.init(
            file: file, config: try VocoderConfig(json: json, file: file.path), threads: threads, maxFrames: maxFrames)
    }

    init(file: KAFFile, config c: VocoderConfig, threads: Int, maxFrames: Int) throws {
        guard (1 ... 100_000).contains(maxFrames) else {
            throw FormatError(file.path, "vocoder frames per call \(maxFrames) outside 1...100000")
        }
        let load = WeightLoader(file)
        let specs = Dictionary(VocoderTensors(c).all.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        func spec(_ rel: String) throws -> TensorSpec {
            guard let s = specs["vocoder." + rel] else { throw FormatError(file.path, "no tensor vocoder.\(rel)") }
            return s
        }
        func conv(_ base: String, kernel k: Int, dilation d: Int = 1, bias: Bool = true) throws -> Conv {
            let w = try spec(base + ".weight")
            let l = try load.convolution(w, bias: bias ? try spec(base + ".bias") : nil)
            return Conv(linear: l, kernel: k, dilation: d, padding: (k * d - d) / 2)
        }
        let owned = ScratchArena()
        func kept(_ values: [Float]) -> UnsafePointer<Float> {
            let p = owned.floats(values.count)
            p.update(from: values, count: values.count)
            return UnsafePointer(p)
        }
        func activation(_ base: String) throws -> Activation {
            let alpha = try load.vector(try spec(base + ".act.alpha"))
            let beta = c.activation == .snakebeta ? try load.vector(try spec(base + ".act.beta")) : alpha
            let linear: (Float) -> Float = c.snakeLogscale ? { Foundation.exp($0) } : { $0 }
            return Activation(
                alpha: kept(alpha.map(linear)), invBeta: kept(beta.map { 1 / (linear($0) + 1e-9) }),
                up: kept(try load.values(try spec(base + ".upsample.filter"))),
                down: kept(try load.values(try spec(base + ".downsample.lowpass.filter"))))
        }
        config = c
        self.file = file
        self.maxFrames = maxFrames
        hopLength = c.upsampleRates.reduce(1, *)
        convPre = try conv("conv_pre", kernel: 7)
        let kernels = c.resblockKernelSizes
        stages = try (0 ..< c.stages).map { i in
            try (0 ..< kernels.count).map { r in
                let j = i * kernels.count + r, k = kernels[r], b = "resblocks.\(j)."
                return try c.resblockDilationSizes[r].enumerated().map { m, d in
                    switch c.resblock {
                    case .amp1:
                        return Step(
                            act: try activation(b + "activations.\(2 * m)"),
                            conv: try conv(b + "convs1.\(m)", kernel: k, dilation: d),
                            second: (
                                try activation(b + "activations.\(2 * m + 1)"), try conv(b + "convs2.\(m)", kernel: k)
                            ))
                    case .amp2:
                        return Step(
                            act: try activation(b + "activations.\(m)"),
                            conv: try conv(b + "convs.\(m)", kernel: k, dilation: d), second: nil)
                    }
                }
            }
        }
        activationPost = try activation("activation_post")
        convPost = try conv("conv_post", kernel: 7, bias: c.useBiasAtFinal)

        var upsamples: [Upsample] = []
        var frames = maxFrames, signal = maxFrames * c.upsampleInitialChannel, patch = 0
        for i in 0 ..< c.stages {
            let k = c.upsampleKernelSizes[i], u = c.upsampleRates[i]
            let cin = c.upsampleInitialChannel >> i, cout = c.channels(afterStage: i)
            guard k >= u, (k - u) % 2 == 0 else {
                throw FormatError(file.path, "vocoder stage \(i): kernel \(k) and rate \(u) do not upsample exactly")
            }
            let w = try load.values(try spec("ups.\(i).0.weight"))  // [in, out, k]
            let t = owned.floats(cout * k * cin)
            for ci in 0 ..< cin {
                for o in 0 ..< cout { for j in 0 ..< k { t[(o * k + j) * cin + ci] = w[(ci * cout + o) * k + j] } }
            }
            upsamples.append(
                Upsample(
                    product: Linear(weight: WeightMatrix(base: t, dtype: .f32, rows: cout * k, cols: cin)!, bias: nil),
                    bias: try load.vector(try spec("ups.\(i).0.bias")), kernel: k, stride: u, padding: (k - u) / 2,
                    outChannels: cout))
            patch = max(patch, frames * cout * k)  // Z of the transposed conv
            frames *= u
            signal = max(signal, frames * cout)
        }
        ups = upsamples
        self.owned = owned
        let convs =
            [convPre, convPost] + stages.joined().joined().flatMap { [$0.conv] + ($0.second.map { [$0.conv] } ?? []) }
        let widest = convs.map(\.linear.weight.cols).max() ?? 1
        patch = max(patch, Self.frameBlock * widest)
        compute = try Compute(
            threads: threads, maxCols: max(widest, c.upsampleInitialChannel), maxBatch: Self.frameBlock,
            weights: convs.map(\.linear.weight), largeWidening: true,
            bf16FloatWeights: true)  // the official vocoder runs in bf16 (`vocoder.to_dtype(bf16)`)
        let a = compute.arena
        (x, sum, state, t1, t2) = (
            a.floats(signal), a.floats(signal), a.floats(signal), a.floats(signal), a.floats(signal)
        )
        upsampled = a.floats(2 * signal)
        cols = a.floats(patch)
    }

    /// Floating-point operations of the convolutions of one call over `frames` mel frames (2 per
    /// multiply-add; the activations' filters are not counted).
    public func flops(frames F: Int) -> Double {
        func conv(_ c: Conv, _ T: Int) -> Double { 2 * Double(T) * Double(c.linear.weight.rows * c.linear.weight.cols) }
        var total = conv(convPre, F), T = F
        for (i, up) in ups.enumerated() {
            total += 2 * Double(T) * Double(up.product.weight.rows * up.product.weight.cols)
            T *= up.stride
            for block in stages[i] {
                for s in block { total += conv(s.conv, T) + (s.second.map { conv($0.conv, T) } ?? 0) }
            }
        }
        return total + conv(convPost, T)
    }

    /// `mel` [F, numMels] (frames × mels, natural-log magnitudes) → `wav` [F·hopLength].
    public func callAsFunction(mel: UnsafePointer<Float>, frames F: Int, into wav: UnsafeMutablePointer<Float>) {
        precondition(F >= 1 && F <= maxFrames, "vocoder call of \(F) frames (at most \(maxFrames))")
        var T = F
        convolve(convPre, mel, frames: T, into: x)
        let blocks = Double(config.resblockKernelSizes.count)
        for (i, up) in ups.enumerated() {
            upsample(up, x, frames: T, into: sum)
            T *= up.stride
            let C = up.outChannels, n = T * C
            let (xs, ss, st, a, b) = (x, sum, state, t1, t2)
            xs.update(from: sum, count: n)
            for (r, block) in stages[i].enumerated() {
                st.update(from: xs, count: n)
                for step in block {
                    activate(step.act, st, frames: T, channels: C, into: a)
                    convolve(step.conv, a, frames: T, into: b)
                    if let s = step.second {
                        activate(s.act, b, frames: T, channels: C, into: a)
                        convolve(s.conv, a, frames: T, into: b)
                    }
                    compute.eachPiece(n) { o, len in add(st + o, b + o, st + o, count: len) }
                }
                if r == 0 {
                    ss.update(from: st, count: n)
                } else {
                    compute.eachPiece(n) { o, len in add(ss + o, st + o, ss + o, count: len) }
                }
            }
            let inv = Float(1 / blocks)
            compute.eachPiece(n) { o, len in
                scale(ss + o, inv, count: len)
                (xs + o).update(from: ss + o, count: len)
            }
        }
        let C = ups.last?.outChannels ?? config.upsampleInitialChannel
        activate(activationPost, x, frames: T, channels: C, into: t1)
        convolve(convPost, t1, frames: T, into: wav)
        let tanhAtEnd = config.useTanhAtFinal
        for i in 0 ..< T { wav[i] = tanhAtEnd ? Foundation.tanh(wav[i]) : min(max(wav[i], -1), 1) }
    }

    /// y [T, O] = conv(x [T, C]) with "same" padding, in blocks of frames through im2col.
    private func convolve(_ cv: Conv, _ x: UnsafePointer<Float>, frames T: Int, into y: UnsafeMutablePointer<Float>) {
        let C = cv.inChannels, k = cv.kernel, d = cv.dilation, p = cv.padding, cols = self.cols
        var t0 = 0
        while t0 < T {
            let n = min(Self.frameBlock, T - t0)
            compute.pool.parallelFor(n: n) { r, _ in
                im2col1d(
                    x, frames: T, channels: C, kernel: k, stride: 1, dilation: d, padLeft: p, padRight: p,
                    into: cols + r.lowerBound * C * k, frameRange: t0 + r.lowerBound ..< t0 + r.upperBound)
            }
            compute.linearBatch(cv.linear, cols, n, y + t0 * cv.outChannels, ldy: cv.outChannels)
            t0 += n
        }
    }

    /// y [T·u, O] = convTranspose(x [T, C]): the product of every input frame, then the gather.
    private func upsample(_ up: Upsample, _ x: UnsafePointer<Float>, frames T: Int, into y: UnsafeMutablePointer<Float>)
    {
        compute.linearRows(up.product, x, T, cols)
        let N = convTranspose1dFrames(T, kernel: up.kernel, stride: up.stride, padding: up.padding)
        let z = UnsafePointer(cols)
        up.bias.withUnsafeBufferPointer { b in
            compute.pool.parallelFor(n: N) { r, _ in
                convTransposeGather(
                    z, frames: T, outChannels: up.outChannels, kernel: up.kernel, stride: up.stride,
                    padding: up.padding,
                    bias: b.baseAddress, into: y, frameRange: r)
            }
        }
    }

    /// y = Activation1d(x) for x [T, C]: the upsampled activation, then the low-pass.
    private func activate(
        _ a: Activation, _ x: UnsafePointer<Float>, frames T: Int, channels C: Int, into y: UnsafeMutablePointer<Float>
    ) {
        let u = upsampled
        compute.pool.parallelFor(n: T) { r, _ in
            snakeUpsampled(
                x, frames: T, channels: C, alpha: a.alpha, invBeta: a.invBeta, filter: a.up, into: u, frames: r)
        }
        compute.pool.parallelFor(n: T) { r, _ in
            lowpassDownsampled(u, frames: T, channels: C, filter: a.down, into: y, frames: r)
        }
    }
}
