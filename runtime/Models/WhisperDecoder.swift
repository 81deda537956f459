import KAF

/// The Whisper decoder of a plain Whisper checkpoint (transformers' `WhisperDecoder`;
/// docs/ARCHITECTURE.md §3.7): token embedding + learned positions, pre-LN layers of causal
/// self-attention (KV cache), cross-attention over the encoder's [frames, d] output (its K/V computed
/// once per window by `begin`) and a GELU MLP, the final LayerNorm, and logits through the token
/// embedding (tied). One token per `step`; everything is allocated at load. Runs on the encoder's
/// compute context (one thread pool for the whole transcription).
public final class WhisperDecoder {
    struct Attention {
        let q, k, v, out: Linear
        let norm, normBias: [Float]

        init(_ t: WhisperDecoderTensors.Attention, _ load: WeightLoader) throws {
            (q, k, v) = (try load.linear(t.q, bias: t.qBias), try load.linear(t.k), try load.linear(t.v, bias: t.vBias))
            out = try load.linear(t.out, bias: t.outBias)
            (norm, normBias) = (try load.vector(t.norm), try load.vector(t.normBias))
        }
    }

    struct Layer {
        let selfAttention, crossAttention: Attention
        let fc1, fc2: Linear
        let ffnNorm, ffnNormBias: [Float]

        init(_ t: WhisperDecoderTensors.Layer, _ load: WeightLoader) throws {
            selfAttention = try Attention(t.selfAttention, load)
            crossAttention = try Attention(t.crossAttention, load)
            (fc1, fc2) = (try load.linear(t.fc1, bias: t.fc1Bias), try load.linear(t.fc2, bias: t.fc2Bias))
            (ffnNorm, ffnNormBias) = (try load.vector(t.ffnNorm), try load.vector(t.ffnNormBias))
        }
    }

    public let config: WhisperDecoderConfig
    /// Encoder frames the cross-attention reads (1500 per 30 s window).
    public let frames: Int
    /// Keeps the mapping the weights point into alive.
    let file: KAFFile
    let tokens: WeightMatrix
    /// The 8-bit copy of `tokens` the head reads when the file has one (see `refine`).
    let headCopy: WeightMatrix?
    let positions: [Float]
    let layers: [Layer]
    let finalNorm: (weight: [Float], bias: [Float])
    let compute: Compute
    /// Self-attention cache [layers][maxTargetPositions, d]; cross K/V [layers][frames, d].
    let selfK, selfV, crossK, crossV: UnsafeMutablePointer<Float>
    let x, xb, q, k, v, att, hb, scores: UnsafeMutablePointer<Float>
    /// The logits of the last `step` [vocab].
    public let logits: UnsafeMutablePointer<Float>
    /// Tokens fed since `begin`.
    public private(set) var position = 0

    /// The decoder of `file` (`components.whisper.config` with the `whisper.decoder.*` tensors), on
    /// the compute context `compute` (the encoder's).
    public init(file: KAFFile, compute: Compute, frames: Int) throws {
        guard let json = file.meta["components"]?["whisper"]?["config"] else {
            throw FormatError(file.path, "no Whisper model in this file (components.whisper missing)")
        }
        let c = try WhisperDecoderConfig(json: json, file: file.path)
        guard (1 ... 4096).contains(c.maxTargetPositions), (1 ... 1 << 20).contains(c.vocab),
            (1 ... 8192).contains(c.dModel)
        else {
            throw FormatError(
                file.path, "Whisper decoder sizes out of range (max_target_positions, vocab_size, d_model)")
        }
        let table = WhisperDecoderTensors(config: c)
        guard file.entry(table.tokens.name) != nil else {
            throw FormatError(
                file.path,
                "no Whisper decoder in this file (a Kimi-Audio file keeps only the encoder; convert a plain Whisper checkpoint)"
            )
        }
        let load = WeightLoader(file)
        config = c
        self.file = file
        self.frames = frames
        self.compute = compute
        tokens = try load.matrix(table.tokens)
        headCopy = file.entry(table.headCopy.name) == nil ? nil : try load.matrix(table.headCopy)
        positions = try load.values(table.positions)
        layers = try (0 ..< c.layers).map { try Layer(table.layer($0), load) }
        finalNorm = (try load.vector(table.finalNorm.weight), try load.vector(table.finalNorm.bias))
        guard compute.maxCols >= max(c.dModel, c.ffnDim) else {
            throw FormatError(
                file.path, "Whisper decoder wider than its encoder (d_model \(c.dModel), ffn \(c.ffnDim))")
        }
        let d = c.dModel, a = compute.arena
        selfK = a.floats(c.layers * c.maxTargetPositions * d)
        selfV = a.floats(c.layers * c.maxTargetPositions * d)
        crossK = a.floats(c.layers * frames * d)
        crossV = a.floats(c.layers * frames * d)
        (x, xb, q, k, v, att) = (a.floats(d), a.floats(d), a.floats(d), a.floats(d), a.floats(d), a.floats(d))
        hb = a.floats(c.ffnDim)
        scores = a.floats(max(frames, c.maxTargetPositions) * compute.pool.threadCount)
        logits = a.floats(c.vocab)
        headInput = a.floats(d)
        exact = a.floats(c.vocab)
    }

    /// Logits within this of the best are recomputed from the 16-bit embedding by `refine`. The
    /// 8-bit head's error (weights and int8 activations) on the rows refined: at most 0.083 on the
    /// tiny fixture (`WhisperDecoderTests.refinedHeadGivesTheExactTopLogits`), 0.21 on real tiny.en
    /// over 300 s of speech; 2.0 leaves a wide margin.
    public static let refineMargin: Float = 2.0

    /// The head's input of the last `step` (final-LayerNorm output), and row r's exact logit at
    /// `exact[r]` (the matvec kernels write y[r] for row r).
    let headInput, exact: UnsafeMutablePointer<Float>

    /// The exact (16-bit head) logit of row `r` for the last `step`.
    public func exactLogit(_ r: Int) -> Float {
        // Quantized by --keep: the copy computes the same values.
        guard tokens.dtype.isFloat else { return logits[r] }
        matvec(tokens, x: headInput, xq: nil, y: exact, rows: r ..< r + 1)
        return exact[r]
    }

    /// With an 8-bit head copy: every finite logit within `refineMargin` of the largest is
    /// replaced by its exact value, so the argmax (after any suppression set to −∞ before the
    /// call) is the 16-bit head's. Without a copy the logits are already exact.
    public func refine(_ l: UnsafeMutablePointer<Float>) {
        guard headCopy != nil else { return }
        let floor = rowMax(l, config.vocab) - Self.refineMargin
        for i in 0 ..< config.vocab where l[i] >= floor && l[i].isFinite { l[i] = exactLogit(i) }
    }

    /// Starts a window: cross-attention keys and values of every layer from the encoder output
    /// [frames, d]; the self-attention cache is emptied.
    public func begin(encoderOutput e: UnsafePointer<Float>) {
        let d = config.dModel
        for (i, L) in layers.enumerated() {
            compute.linearRows(L.crossAttention.k, e, frames, crossK + i * frames * d)
            compute.linearRows(L.crossAttention.v, e, frames, crossV + i * frames * d)
        }
        position = 0
    }

    /// Back to position 0 of the same window (the cross-attention keys and values are kept).
    public func restart() { position = 0 }

    /// Feeds `token` at the next position and returns the logits for the position after it.
    @discardableResult
    public func step(_ token: Int) -> UnsafeMutablePointer<Float> {
        let c = config, d = c.dModel, p = position
        precondition(p < c.maxTargetPositions && (0 ..< c.vocab).contains(token))
        tokens.dequantizeRow(token, into: x)
        positions.withUnsafeBufferPointer { add(x, $0.baseAddress! + p * d, x, count: d) }
        for (i, L) in layers.enumerated() {
            let ks = selfK + i * c.maxTargetPositions * d, vs = selfV + i * c.maxTargetPositions * d
            // Self-attention over positions 0…p (this token's k, v written first).
            let sa = L.selfAttention
            layerNorm(x, weight: sa.norm, bias: sa.normBias, eps: 1e-5, xb, count: d)
            compute.linear(sa.q, xb, q)
            compute.linear(sa.k, xb, ks + p * d, sameInput: true)
            compute.linear(sa.v, xb, vs + p * d, sameInput: true)
            attend(keys: ks, values: vs, count: p + 1)
            compute.linear(sa.out, att, xb)
            add(x, xb, x, count: d)
            // Cross-attention over the window's encoder frames.
            let ca = L.crossAttention
            layerNorm(x, weight: ca.norm, bias: ca.normBias, eps: 1e-5, xb, count: d)
            compute.linear(ca.q, xb, q)
            attend(keys: crossK + i * frames * d, values: crossV + i * frames * d, count: frames)
            compute.linear(ca.out, att, xb)
            add(x, xb, x, count: d)
            // MLP.
            layerNorm(x, weight: L.ffnNorm, bias: L.ffnNormBias, eps: 1e-5, xb, count: d)
            compute.linear(L.fc1, xb, hb)
            geluErf(hb, hb, count: c.ffnDim)
            compute.linear(L.fc2, hb, xb)
            add(x, xb, x, count: d)
        }
        layerNorm(x, weight: finalNorm.weight, bias: finalNorm.bias, eps: 1e-5, xb, count: d)
        headInput.update(from: xb, count: d)
        compute.linear(headCopy ?? tokens, headInput, logits)
        position = p + 1
        return logits
    }

    /// att ← per head, softmax(q·Kᵀ/√hd)·V over the first `count` rows of keys/values ([·, d]).
    private func attend(keys: UnsafeMutablePointer<Float>, values: UnsafeMutablePointer<Float>, count n: Int) {
        let d = config.dModel, hd = d / config.heads, scale = 1 / Float(hd).squareRoot()
        let (qp, ap, sp, stride) = (q, att, scores, max(frames, config.maxTargetPositions))
        compute.pool.parallelFor(n: config.heads) { r, tid in
            for h in r {
                attentionHead(
                    qp + h * hd, k: keys + h * hd, v: values + h * hd, stride: d, count: n, dim: hd, scale: scale,
                    scores: sp + tid * stride, out: ap + h * hd)
            }
        }
    }
}
