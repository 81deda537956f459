import KAF

/// The Whisper-style encoder stack (docs/ARCHITECTURE.md §1.7, §1.8): conv1 (k3) + GELU, conv2 (k3,
/// stride 2) + GELU, learned positions, pre-LN layers (`k_proj` without bias, GELU MLP, LayerNorm
/// eps 1e-5), the final LayerNorm where the model has one. Two models run on it:
/// * component `whisper`, the Whisper-large-v3 encoder as Kimi-Audio runs it for the continuous
///   features: convolutions padded 1 on both sides, bidirectional attention over all 1500 frames of
///   a 30 s piece ([mels, 3000] in, [1500, d] out);
/// * component `vq`, the layers of GLM-4-Voice's WhisperVQEncoder up to `quantize_position`
///   (VQTokenizer.swift): causal convolutions (2 frames of left padding), attention block-causal in
///   blocks of `quantize_causal_block_size` frames and only over the valid (unpadded) frames.
/// Weights are read in place from the .kaf; every buffer is allocated at load.
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
    /// Left/right padding of both convolutions: (1, 1) for Whisper, (2, 0) causal for the VQ encoder.
    let convPadding: (left: Int, right: Int)
    /// Attention blocks (VQ): query t sees keys before the end of its block; nil = all keys.
    let attentionBlock: Int?
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

    public var threadCount: Int { compute.pool.threadCount }
    /// Queries per attention step: 128 rows of 1500 scores (768 KB) stay in a core's L2.
    static let queryRows = 128
    /// Rows per linear call for float weights: sgemm packs the weights once per call, so the whole
    /// window goes at once (1500 frames; the conv stem's 3000 in two), and 16-bit rows are widened in
    /// large chunks (the compute context's `largeWidening`). Measured on large-v3 at 2 threads: f32 16.7 s
    /// per window with 256-row calls → 11.2–15.2 s (this machine is noisy). Quantized weights keep
    /// the int8 tiles at 256 rows: widening q8 to f32 for sgemm was faster (11.6 s vs 13.4 s on
    /// large-v3, 0.22 s vs 0.36 s on tiny.en) but further from the reference on real speech (min
    /// cosine of the audio's frames 0.9906 vs 0.99935 on test_audios/asr_example.wav, tiny.en).
    static let batch = 1500

    /// The Whisper encoder of `file` (component `whisper`).
    public convenience init(file: KAFFile, threads: Int = 0) throws {
        guard let json = file.meta["components"]?["whisper"]?["config"] else {
            throw FormatError(file.path, "no Whisper encoder in this file (components.whisper missing)")
        }
        let c = try WhisperEncoderConfig(json: json, file: file.path)
        try self.init(
            file: file, table: WhisperEncoderTensors(whisper: c), convPadding: (1, 1), attentionBlock: nil,
            threads: threads)
    }

    /// The encoder stack of `table` (its `config` gives the sizes).
    init(
        file: KAFFile, table: WhisperEncoderTensors, convPadding: (left: Int, right: Int), attentionBlock: Int?,
        threads: Int
    ) throws {
        let c = table.config
        let load = WeightLoader(file)
        self.convPadding = convPadding
        self.attentionBlock = attentionBlock
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
        let floats = weights.allSatisfy(\.dtype.isFloat)
        compute = try Compute(
            threads: threads, maxCols: max(3 * d, 3 * c.melBins, c.ffnDim), maxBatch: floats ? Self.batch : 256,
            weights: weights, largeWidening: floats)
        let a = compute.arena
        melT = a.floats(inFrames * c.melBins)
        cols = a.floats(max(inFrames * 3 * c.melBins, frames * 3 * d))
        x1 = a.floats(inFrames * d)
        (h, xb, q, k, v, att) = (
            a.floats(frames * d), a.floats(frames * d), a.floats(frames * d), a.floats(frames * d),
            a.floats(frames * d), a.floats(frames * d)
        )
        hb = a.floats(compute.maxBatch * c.ffnDim)
        scores = a.floats(Self.queryRows * frames * compute.pool.threadCount)
    }

    /// `mel` [mels, inFrames] (row-major, as the front end gives it) → `out` [frames, d], the last
    /// hidden state. The first 4·n rows of `out`, read as [n, 4d], are Kimi's features of n tokens.
    public func callAsFunction(mel: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>) {
        encode(mel: mel, melFrames: inFrames, validFrames: frames, into: out)
    }

    /// `mel` [mels, melFrames] (melFrames even, at most inFrames) → `out` [melFrames/2, d]; keys at
    /// or past `validFrames` (50 Hz) are masked when the model masks (VQ).
    func encode(mel: UnsafePointer<Float>, melFrames M: Int, validFrames: Int, into out: UnsafeMutablePointer<Float>) {
        let c = config, d = c.dModel, (pl, pr) = convPadding
        precondition(M % 2 == 0 && M <= inFrames && validFrames >= 1)
        for m in 0 ..< c.melBins { for t in 0 ..< M { melT[t * c.melBins + m] = mel[m * M + t] } }
        im2col1d(melT, frames: M, channels: c.melBins, kernel: 3, stride: 1, padLeft: pl, padRight: pr, into: cols)
        let m1 = conv1dFrames(M, kernel: 3, stride: 1, padLeft: pl, padRight: pr)
        compute.linearRows(conv1, cols, m1, x1)
        let xs = x1
        compute.eachPiece(m1 * d) { o, n in geluErf(xs + o, xs + o, count: n) }
        im2col1d(x1, frames: m1, channels: d, kernel: 3, stride: 2, padLeft: pl, padRight: pr, into: cols)
        let T = conv1dFrames(m1, kernel: 3, stride: 2, padLeft: pl, padRight: pr)
        compute.linearRows(conv2, cols, T, h)
        let hs = h
        positions.withUnsafeBufferPointer { pos in
            let pp = pos.baseAddress!
            compute.eachPiece(T * d) { o, n in
                geluErf(hs + o, hs + o, count: n)
                add(hs + o, pp + o, hs + o, count: n)
            }
        }
        for layer in layers { run(layer, frames: T, valid: min(validFrames, T)) }
        if let n = finalNorm {
            compute.eachRow(T) { t in
                layerNorm(hs + t * d, weight: n.weight, bias: n.bias, eps: 1e-5, out + t * d, count: d)
            }
        } else {
            out.update(from: h, count: T * d)
        }
    }

    /// h ← h + out(Attn(LN1 h)); h ← h + fc2(GELU(fc1(LN2 h))) over `T` frames, of which the first
    /// `valid` are keys.
    private func run(_ L: Layer, frames T: Int, valid: Int) {
        let c = config, d = c.dModel, hd = c.headDim, block = attentionBlock
        let (hs, xs) = (h, xb)
        compute.eachRow(T) { t in
            layerNorm(hs + t * d, weight: L.attnNorm, bias: L.attnNormBias, eps: 1e-5, xs + t * d, count: d)
        }
        compute.linearRows(L.q, xb, T, q)
        compute.linearRows(L.k, xb, T, k)
        compute.linearRows(L.v, xb, T, v)
        let scale = 1 / Float(hd).squareRoot()
        let (qp, kp, vp, ap, sp) = (q, k, v, att, scores)
        // (head, chunk of ≤ queryRows queries) items, head-major. The queries of a chunk share their
        // keys: all valid ones, or (block-causal) those before the end of their block, so chunks
        // never straddle a block. The keys are always a prefix: the masked ones are the padding.
        let Bq = Self.queryRows, span = block ?? T
        let perSpan = (span + Bq - 1) / Bq, chunks = (T + span - 1) / span * perSpan
        compute.pool.parallelFor(n: c.heads * chunks) { r, tid in
            for i in r {
                let head = i / chunks, j = i % chunks, s = j / perSpan
                let start = s * span + (j % perSpan) * Bq
                let count = min(Bq, (s + 1) * span - start, T - start)
                guard count > 0 else { continue }
                attentionRows(
                    q: qp + start * d + head * hd, k: kp + head * hd, v: vp + head * hd, stride: d, rows: count,
                    keys: block == nil ? valid : min((s + 1) * span, valid), dim: hd, scale: scale,
                    scores: sp + tid * Bq * T, out: ap + start * d + head * hd, outStride: d)
            }
        }
        compute.linearRows(L.out, att, T, xb)
        compute.eachRow(T) { t in
            add(hs + t * d, xs + t * d, hs + t * d, count: d)
            layerNorm(hs + t * d, weight: L.ffnNorm, bias: L.ffnNormBias, eps: 1e-5, xs + t * d, count: d)
        }
        var r = 0
        while r < T {
            let m = min(compute.maxBatch, T - r)
            compute.linearBatch(L.fc1, xb + r * d, m, hb, ldy: c.ffnDim)
            let hbs = hb
            compute.eachPiece(m * c.ffnDim) { o, n in geluErf(hbs + o, hbs + o, count: n) }
            compute.linearBatch(L.fc2, hb, m, q + r * d, ldy: d)
            r += m
        }
        let qs = q
        compute.eachPiece(T * d) { o, n in add(hs + o, qs + o, hs + o, count: n) }
    }
}
