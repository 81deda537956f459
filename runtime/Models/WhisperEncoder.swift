import KAF

/// The Whisper-large-v3 encoder (docs/ARCHITECTURE.md §1.7), as Kimi-Audio runs it for the
/// continuous features: conv1 (k3, pad 1) + GELU, conv2 (k3, stride 2, pad 1) + GELU, learned
/// positions added in full, pre-LN layers (bidirectional attention, `k_proj` without bias, GELU
/// MLP, LayerNorm eps 1e-5), the final LayerNorm. One 30 s piece per call: a [mels, 3000] log-mel
/// in, [1500, d] out. Weights are read in place from the .kaf; every buffer is allocated at load.
public final class WhisperEncoder {
    struct Layer {
        let attnNorm, attnNormBias, ffnNorm, ffnNormBias: [Float]
        let q, k, v, out, fc1, fc2: Linear

        init(_ t: WhisperEncoderTensors.Layer, _ load: WeightLoader) throws {
            (attnNorm, attnNormBias) = (try load.vector(t.attnNorm), try load.vector(t.attnNormBias))
            (ffnNorm, ffnNormBias) = (try load.vector(t.ffnNorm), try load.vector(t.ffnNormBias))
            (q, k, v) = (try load.linear(t.q, bias: t.qBias), try load.linear(t.k), try load.linear(t.v, bias: t.vBias))
            out = try load.linear(t.out, bias: t.outBias)
            (fc1, fc2) = (try load.linear(t.fc1, bias: t.fc1Bias), try load.linear(t.fc2, bias: t.fc2Bias))
        }
    }

    public let config: WhisperEncoderConfig
    /// Keeps the mapping the weights point into alive.
    let file: KAFFile
    /// Input frames (3000) and output frames (1500) of one piece.
    public let inFrames, frames: Int
    let conv1, conv2: Linear
    let positions: [Float]
    let layers: [Layer]
    let finalNorm: (weight: [Float], bias: [Float])?
    let compute: Compute
    let melT, cols, x1, h, xb, q, k, v, att, hb, scores: UnsafeMutablePointer<Float>

    /// The encoder of component `component` ("whisper") of `file`.
    public init(file: KAFFile, component: String = "whisper", threads: Int = 0) throws {
        guard let json = file.meta["components"]?[component]?["config"] else {
            throw FormatError(file.path, "no \(component) encoder in this file (components.\(component) missing)")
        }
        let c = try WhisperEncoderConfig(json: json, file: file.path)
        let table = WhisperEncoderTensors(whisper: c)
        let load = WeightLoader(file)
        config = c
        self.file = file
        frames = c.maxSourcePositions
        inFrames = 2 * frames
        conv1 = try load.convolution(table.conv1, bias: table.conv1Bias)
        conv2 = try load.convolution(table.conv2, bias: table.conv2Bias)
        positions = try load.values(table.positions)
        layers = try (0 ..< table.layerCount).map { try Layer(table.layer($0), load) }
        finalNorm = try table.finalNorm.map { (try load.vector($0.weight), try load.vector($0.bias)) }
        let d = c.dModel
        let weights =
            [conv1, conv2].map(\.weight) + layers.flatMap { [$0.q, $0.k, $0.v, $0.out, $0.fc1, $0.fc2].map(\.weight) }
        compute = Compute(
            threads: threads, maxCols: max(3 * d, 3 * c.melBins, c.ffnDim), maxBatch: 256, weights: weights)
        let a = compute.arena
        melT = a.floats(inFrames * c.melBins)
        cols = a.floats(max(inFrames * 3 * c.melBins, frames * 3 * d))
        x1 = a.floats(inFrames * d)
        (h, xb, q, k, v, att) = (
            a.floats(frames * d), a.floats(frames * d), a.floats(frames * d), a.floats(frames * d),
            a.floats(frames * d), a.floats(frames * d)
        )
        hb = a.floats(compute.maxBatch * c.ffnDim)
        scores = a.floats(frames * compute.pool.threadCount)
    }

    /// `mel` [mels, inFrames] (row-major, as the front end gives it) → `out` [frames, d], the last
    /// hidden state. The first 4·n rows of `out`, read as [n, 4d], are Kimi's features of n tokens.
    public func callAsFunction(mel: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>) {
        let c = config, d = c.dModel, T = frames
        for m in 0 ..< c.melBins { for t in 0 ..< inFrames { melT[t * c.melBins + m] = mel[m * inFrames + t] } }
        im2col1d(melT, frames: inFrames, channels: c.melBins, kernel: 3, stride: 1, padLeft: 1, padRight: 1, into: cols)
        rows(conv1, cols, inFrames, x1)
        geluErf(x1, x1, count: inFrames * d)
        im2col1d(x1, frames: inFrames, channels: d, kernel: 3, stride: 2, padLeft: 1, padRight: 1, into: cols)
        rows(conv2, cols, T, h)
        geluErf(h, h, count: T * d)
        add(h, positions, h, count: T * d)
        for layer in layers { run(layer) }
        if let n = finalNorm {
            for t in 0 ..< T { layerNorm(h + t * d, weight: n.weight, bias: n.bias, eps: 1e-5, out + t * d, count: d) }
        } else {
            out.update(from: h, count: T * d)
        }
    }

    /// Y = layer(X) for `n` rows, in batches the compute context takes.
    private func rows(_ l: Linear, _ X: UnsafePointer<Float>, _ n: Int, _ Y: UnsafeMutablePointer<Float>) {
        var r = 0
        while r < n {
            let m = min(compute.maxBatch, n - r)
            compute.linearBatch(l, X + r * l.weight.cols, m, Y + r * l.weight.rows, ldy: l.weight.rows)
            r += m
        }
    }

    /// h ← h + out(Attn(LN1 h)); h ← h + fc2(GELU(fc1(LN2 h))).
    private func run(_ L: Layer) {
        let c = config, d = c.dModel, T = frames, hd = c.headDim
        for t in 0 ..< T {
            layerNorm(h + t * d, weight: L.attnNorm, bias: L.attnNormBias, eps: 1e-5, xb + t * d, count: d)
        }
        rows(L.q, xb, T, q)
        rows(L.k, xb, T, k)
        rows(L.v, xb, T, v)
        let scale = 1 / Float(hd).squareRoot()
        let (qp, kp, vp, ap, sp) = (q, k, v, att, scores)
        // (head, query) items, head-major; every query sees all T keys.
        compute.pool.parallelFor(n: c.heads * T) { r, tid in
            for i in r {
                let head = i / T, t = i % T
                attentionHead(
                    qp + t * d + head * hd, k: kp + head * hd, v: vp + head * hd, stride: d, count: T, dim: hd,
                    scale: scale, scores: sp + tid * T, out: ap + t * d + head * hd)
            }
        }
        rows(L.out, att, T, xb)
        add(h, xb, h, count: T * d)
        for t in 0 ..< T {
            layerNorm(h + t * d, weight: L.ffnNorm, bias: L.ffnNormBias, eps: 1e-5, xb + t * d, count: d)
        }
        var r = 0
        while r < T {
            let m = min(compute.maxBatch, T - r)
            compute.linearBatch(L.fc1, xb + r * d, m, hb, ldy: c.ffnDim)
            geluErf(hb, hb, count: m * c.ffnDim)
            compute.linearBatch(L.fc2, hb, m, q + r * d, ldy: d)
            r += m
        }
        add(h, q, h, count: T * d)
    }
}
