import KAF

/// Prefill: many positions per call, so each weight is read once per batch (matmul) instead of
/// once per token. Same math as `step`, position by position; the KV caches end up identical.
extension KimiLLM {
    /// One batch's buffers, taken from the model's arena once, for up to `maxBatch` positions.
    struct BatchBuffers {
        let maxBatch: Int
        let x, m, xb, q, att, hb, hb2: UnsafeMutablePointer<Float>
        /// cos/sin of each position of the batch, [maxBatch][headDim/2].
        let ropeCos, ropeSin: UnsafeMutablePointer<Float>

        init(_ c: LLMConfig, maxBatch: Int, context: Int, threads: Int, arena a: ScratchArena) {
            self.maxBatch = maxBatch
            x = a.floats(maxBatch * c.hidden)
            m = a.floats(maxBatch * c.hidden)
            xb = a.floats(maxBatch * c.hidden)
            q = a.floats(maxBatch * c.hidden)
            att = a.floats(context * max(threads, 1))
            hb = a.floats(maxBatch * c.ffn)
            hb2 = a.floats(maxBatch * c.ffn)
            ropeCos = a.floats(maxBatch * c.headDim / 2)
            ropeSin = a.floats(maxBatch * c.headDim / 2)
        }
    }

    /// Runs positions `start ..< start + audioIds.count` (batches of up to `maxBatch`). `features[p]`
    /// is the Whisper feature row of prompt index p when p is continuous. `logitsFor` receives the
    /// prompt index and the logits rows (text, audio or nil) of each position that `wantLogits`
    /// selects; the model's `textLogits`/`audioLogits` hold the last position's afterwards.
    /// `afterLayer` (parity's per-layer drift) sees the hidden states after each layer: layer index
    /// (trunk layers, then MIMO layers), the first prompt index of the batch, its n rows of `hidden`.
    public func prefill(
        audioIds: [Int], textIds: [Int], addText: Bool, features: [Int: UnsafePointer<Float>] = [:],
        start: Int, wantAudio: Bool, wantLogits: (Int) -> Bool = { _ in false },
        logitsFor: (Int, UnsafePointer<Float>, UnsafePointer<Float>?) -> Void = { _, _, _ in },
        afterLayer: ((Int, Int, UnsafePointer<Float>, Int) -> Void)? = nil
    ) throws {
        let c = config, B = batch, total = audioIds.count, half = c.headDim / 2
        guard textIds.count == total else { throw FormatError(file.path, "prefill: the two streams differ in length") }
        guard start >= 0, start + total <= contextLength else {
            throw FormatError(
                file.path, "prompt of \(start + total) positions is longer than the context (\(contextLength))")
        }
        let runMimo = wantAudio && !mimo.isEmpty
        var done = 0
        while done < total {
            let n = min(B.maxBatch, total - done)
            let pos0 = start + done
            for t in 0 ..< n {
                let p = done + t
                try embedPosition(
                    audioId: audioIds[p], textId: textIds[p], addText: addText, feature: features[p],
                    into: B.x + t * c.hidden, at: p)
                ropeCosSin(
                    position: pos0 + t, invFreq: invFreq, half: half, cos: B.ropeCos + t * half,
                    sin: B.ropeSin + t * half)
            }
            for (l, layer) in layers.enumerated() {
                runLayerBatch(layer, cache: l, h: B.x, n: n, pos0: pos0)
                afterLayer?(l, done, B.x, n)
                if runMimo && l == c.mimoFrom { B.m.update(from: B.x, count: n * c.hidden) }
            }
            if runMimo {
                for (j, layer) in mimo.enumerated() {
                    runLayerBatch(layer, cache: c.layers + j, h: B.m, n: n, pos0: pos0)
                    afterLayer?(c.layers + j, done, B.m, n)
                }
            }
            // Heads: the positions asked for, and always the last one of the prompt.
            for t in 0 ..< n {
                let p = done + t
                guard wantLogits(p) || p == total - 1 else { continue }
                rmsNorm(B.x + t * c.hidden, weight: norm, eps: c.eps, xb, count: c.hidden)
                compute.linear(lmHead, xb, textLogits)
                if runMimo, let out = mimoOutput {
                    rmsNorm(B.m + t * c.hidden, weight: mimoNorm, eps: c.eps, xb, count: c.hidden)
                    compute.linear(out, xb, audioLogits)
                }
                if wantLogits(p) { logitsFor(p, textLogits, runMimo ? UnsafePointer(audioLogits) : nil) }
            }
            done += n
        }
    }

    /// h[t] ← layer(h[t]) for positions pos0 ..< pos0+n, causal over the cache.
    private func runLayerBatch(_ L: DecoderLayer, cache: Int, h: UnsafeMutablePointer<Float>, n: Int, pos0: Int) {
        let c = config, B = batch, hd = c.headDim, kvDim = c.kvDim, D = c.hidden, half = hd / 2
        for t in 0 ..< n { rmsNorm(h + t * D, weight: L.inputNorm, eps: c.eps, B.xb + t * D, count: D) }
        compute.linearBatch(L.q, B.xb, n, B.q, ldy: D)
        let kBase = kCache[cache] + pos0 * kvDim, vBase = vCache[cache] + pos0 * kvDim
        compute.linearBatch(L.k, B.xb, n, kBase, ldy: kvDim)
        compute.linearBatch(L.v, B.xb, n, vBase, ldy: kvDim)
        for t in 0 ..< n {
            let cs = B.ropeCos + t * half, sn = B.ropeSin + t * half
            ropeNeox(B.q + t * D, heads: c.heads, headDim: hd, cos: cs, sin: sn)
            ropeNeox(kBase + t * kvDim, heads: c.kvHeads, headDim: hd, cos: cs, sin: sn)
        }
        // Attention (B.xb is free again: it takes the outputs). Work items are (head, position),
        // head-major, so each thread gets whole heads over all positions: causal rows grow with
        // the position, and a split by position would give the last thread most of the work.
        let ctx = contextLength
        pool.parallelFor(n: c.heads * n) { r, tid in
            for i in r {
                let head = i / n, t = i % n
                attendHeads(
                    head ..< head + 1, B.q + t * D, cache: cache, pos: pos0 + t, out: B.xb + t * D,
                    scores: B.att + tid * ctx)
            }
        }
        compute.linearBatch(L.o, B.xb, n, B.q, ldy: D)
        add(h, B.q, h, count: n * D)
        for t in 0 ..< n { rmsNorm(h + t * D, weight: L.postNorm, eps: c.eps, B.xb + t * D, count: D) }
        compute.linearBatch(L.gate, B.xb, n, B.hb, ldy: c.ffn)
        compute.linearBatch(L.up, B.xb, n, B.hb2, ldy: c.ffn)
        swiglu(gate: B.hb, up: B.hb2, B.hb, count: n * c.ffn)
        compute.linearBatch(L.down, B.hb, n, B.q, ldy: D)
        add(h, B.q, h, count: n * D)
    }
}
