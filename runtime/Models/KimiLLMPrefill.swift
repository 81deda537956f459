import KAF

/// Prefill: many positions per call, so each weight is read once per batch (matmul) instead of
/// once per token. Same math as `step`, position by position; the KV caches end up identical.
extension KimiLLM {
    /// One batch's buffers, allocated once per model for up to `maxBatch` positions.
    final class BatchBuffers {
        let maxBatch: Int
        let x, m, xb, q, att, hb, hb2, emb: UnsafeMutablePointer<Float>
        let xq: UnsafeMutableRawPointer
        let blasScratch: [UnsafeMutablePointer<Float>]   // per thread, for f16/bf16 weights
        init(_ c: LLMConfig, maxBatch: Int, context: Int, threads: Int, blasFloats: Int) {
            self.maxBatch = maxBatch
            func buf(_ n: Int) -> UnsafeMutablePointer<Float> { let p = UnsafeMutablePointer<Float>.allocate(capacity: n); p.initialize(repeating: 0, count: n); return p }
            x = buf(maxBatch * c.hidden); m = buf(maxBatch * c.hidden); xb = buf(maxBatch * c.hidden); q = buf(maxBatch * c.hidden)
            att = buf(context * max(threads, 1)); hb = buf(maxBatch * c.ffn); hb2 = buf(maxBatch * c.ffn); emb = buf(max(c.hidden, c.adaptorIn))
            xq = .allocate(byteCount: QuantizedActivations.scratchBytes(count: max(c.hidden, c.ffn), rows: maxBatch), alignment: 64)
            blasScratch = (0 ..< max(threads, 1)).map { _ in buf(max(blasFloats, 1)) }
        }
        deinit {
            for p in [x, m, xb, q, att, hb, hb2, emb] + blasScratch { p.deallocate() }
            xq.deallocate()
        }
    }

    /// Y[t] = W·X[t] (+ bias) for `n` rows of X (stride = w.cols), rows of W split over the pool.
    func linearBatch(_ w: WeightMatrix, _ X: UnsafePointer<Float>, _ n: Int, _ Y: UnsafeMutablePointer<Float>, ldy: Int, bias: [Float]? = nil) {
        let B = batch
        var xq: QuantizedActivations? = nil
        if matmulUsesInt8(w, tokens: n) {
            let a = QuantizedActivations(scratch: B.xq, count: w.cols, rows: n)
            quantizeActivations(X, ldx: w.cols, into: a)
            xq = a
        }
        let shared = xq, scratch = B.blasScratch
        pool.parallelForRows(w) { r, tid in
            matmul(w, X: X, ldx: w.cols, xq: shared, tokens: n, Y: Y, ldy: ldy, rows: r, scratch: scratch[tid])
        }
        if let b = bias { for t in 0 ..< n { for i in 0 ..< w.rows { Y[t * ldy + i] += b[i] } } }
    }

    /// Runs positions `start ..< start + audioIds.count` (batches of up to `maxBatch`). `features[p]`
    /// is the Whisper feature row of prompt index p when p is continuous. `logitsFor` receives the
    /// prompt index and the logits rows (text, audio or nil) of each position that `wantLogits`
    /// selects; the model's `textLogits`/`audioLogits` hold the last position's afterwards.
    public func prefill(audioIds: [Int], textIds: [Int], addText: Bool, features: [Int: UnsafePointer<Float>] = [:],
                        start: Int, wantAudio: Bool, wantLogits: (Int) -> Bool = { _ in false },
                        logitsFor: (Int, UnsafePointer<Float>, UnsafePointer<Float>?) -> Void = { _, _, _ in }) throws {
        let c = config, B = batch, total = audioIds.count
        guard textIds.count == total else { throw FormatError(file.path, "prefill: the two streams differ in length") }
        guard start >= 0, start + total <= contextLength else {
            throw FormatError(file.path, "prompt of \(start + total) positions is longer than the context (\(contextLength))")
        }
        let runMimo = wantAudio && !mimo.isEmpty
        var done = 0
        while done < total {
            let n = min(B.maxBatch, total - done)
            // Embeddings (spec §3.3), position by position.
            for t in 0 ..< n {
                let p = done + t, row = B.x + t * c.hidden
                let first = c.isKimi ? audioIds[p] : textIds[p]
                guard first >= 0, first < c.vocab, textIds[p] >= 0, textIds[p] < c.vocab else {
                    throw FormatError(file.path, "token id out of range at prompt position \(p)")
                }
                embed.dequantizeRow(first, into: row)
                if c.isKimi {
                    if let f = features[p] { fuseFeature(f, into: row) }
                    if addText {
                        embed.dequantizeRow(textIds[p], into: B.emb)
                        for i in 0 ..< c.hidden { row[i] += B.emb[i] }
                    }
                }
            }
            let pos0 = start + done
            for (l, layer) in layers.enumerated() {
                runLayerBatch(layer, cache: l, h: B.x, n: n, pos0: pos0)
                if runMimo && l == c.mimoFrom { B.m.update(from: B.x, count: n * c.hidden) }
            }
            if runMimo { for (j, layer) in mimo.enumerated() { runLayerBatch(layer, cache: c.layers + j, h: B.m, n: n, pos0: pos0) } }
            // Heads: the positions asked for, and always the last one of the prompt.
            for t in 0 ..< n {
                let p = done + t
                guard wantLogits(p) || p == total - 1 else { continue }
                rmsNorm(B.x + t * c.hidden, weight: norm, eps: c.eps, xbOne, count: c.hidden)
                linear(lmHead, xbOne, textLogits)
                if runMimo, let out = mimoOutput {
                    rmsNorm(B.m + t * c.hidden, weight: mimoNorm, eps: c.eps, xbOne, count: c.hidden)
                    linear(out, xbOne, audioLogits)
                }
                if wantLogits(p) { logitsFor(p, textLogits, runMimo ? UnsafePointer(audioLogits) : nil) }
            }
            done += n
        }
    }

    /// h[t] ← layer(h[t]) for positions pos0 ..< pos0+n, causal over the cache.
    private func runLayerBatch(_ L: DecoderLayer, cache: Int, h: UnsafeMutablePointer<Float>, n: Int, pos0: Int) {
        let c = config, B = batch, hd = c.headDim, kvDim = c.kvHeads * hd, D = c.hidden
        for t in 0 ..< n { rmsNorm(h + t * D, weight: L.inputNorm, eps: c.eps, B.xb + t * D, count: D) }
        linearBatch(L.q, B.xb, n, B.q, ldy: D, bias: L.qBias)
        let kBase = kCache[cache] + pos0 * kvDim, vBase = vCache[cache] + pos0 * kvDim
        linearBatch(L.k, B.xb, n, kBase, ldy: kvDim, bias: L.kBias)
        linearBatch(L.v, B.xb, n, vBase, ldy: kvDim, bias: L.vBias)
        for t in 0 ..< n {
            Ops.ropeHalf(B.q + t * D, heads: c.heads, headDim: hd, pos: pos0 + t, invFreq: invFreq)
            Ops.ropeHalf(kBase + t * kvDim, heads: c.kvHeads, headDim: hd, pos: pos0 + t, invFreq: invFreq)
        }
        // Attention (B.xb is free again: it takes the outputs). Work items are (head, position),
        // head-major, so each thread gets whole heads over all positions: causal rows grow with
        // the position, and a split by position would give the last thread most of the work.
        let ctx = contextLength
        pool.parallelFor(n: c.heads * n) { r, tid in
            for i in r {
                let head = i / n, t = i % n
                attendHeads(head ..< head + 1, B.q + t * D, cache: cache, pos: pos0 + t, out: B.xb + t * D, scores: B.att + tid * ctx)
            }
        }
        linearBatch(L.o, B.xb, n, B.q, ldy: D)
        for i in 0 ..< n * D { h[i] += B.q[i] }
        for t in 0 ..< n { rmsNorm(h + t * D, weight: L.postNorm, eps: c.eps, B.xb + t * D, count: D) }
        linearBatch(L.gate, B.xb, n, B.hb, ldy: c.ffn)
        linearBatch(L.up, B.xb, n, B.hb2, ldy: c.ffn)
        swiglu(gate: B.hb, up: B.hb2, B.hb, count: n * c.ffn)
        linearBatch(L.down, B.hb, n, B.q, ldy: D)
        for i in 0 ..< n * D { h[i] += B.q[i] }
    }
}
