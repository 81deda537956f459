import Foundation
import KAF

/// The flow-matching DiT of the audio detokenizer (docs/ARCHITECTURE.md §1.9;
/// kimia_infer/models/detokenizer/flow_matching/model.py `DiTPrefix`, dit_block.py): the velocity
/// v(x, τ) of a chunk of normalised mel frames x, conditioned per frame on a semantic code, at an
/// integer timestep τ. Attention is not causal and sees the keys and values of earlier chunks (the
/// cache); RoPE rotates interleaved pairs over absolute frame positions.
///
/// The conditioning c = MLP_t(τ) + Emb[code] is the same for every frame of a run of equal codes
/// (each code is repeated ×4), so the adaLN modulations, a third of the block's products, are
/// computed once per run.
public final class DiT {
    struct Block {
        let qkv, proj, fc1, fc2, adaLN: Linear
    }

    public let config: DiTConfig
    /// Most frames one call takes, and most frames the cache keeps between chunks.
    public let maxFrames, maxCache: Int
    /// Frames at the front of each layer's key/value buffers that the current call attends to
    /// before its own frames.
    public private(set) var cached = 0
    let file: KAFFile
    let compute: Compute
    let timeIn, timeOut, inputLinear, finalAdaLN, finalLinear: Linear
    let semantic: WeightMatrix
    let blocks: [Block]
    /// cos/sin of position·freq_i, [positions, headDim/2].
    let ropeCos, ropeSin: UnsafeMutablePointer<Float>
    public let positions: Int
    let keys, values: [UnsafeMutablePointer<Float>]
    let tFreq, tHidden, tEmb, cond, mod, h, u, qkv, q, att, ff, scores: UnsafeMutablePointer<Float>
    let runOf: UnsafeMutablePointer<Int>
    static let queryRows = 128

    /// `maxFrames`: most frames per call (chunk + look-ahead, ×4); `maxCache`: frames kept (900).
    public init(file: KAFFile, threads: Int = 0, maxFrames: Int = 168, maxCache: Int = 900) throws {
        guard let yaml = file.meta["components"]?["dit"]?["config"] else {
            throw FormatError(file.path, "no DiT in this file (components.dit missing)")
        }
        let c = try DiTConfig(yaml: yaml, file: file.path)
        guard (1 ... 65536).contains(maxFrames), (0 ... 65536).contains(maxCache) else {
            throw FormatError(file.path, "DiT frames per call \(maxFrames) or cache \(maxCache) outside 1...65536")
        }
        guard c.useRope ?? true, (c.positionEmbeddingType ?? "skip") == "skip", c.headDim % 2 == 0 else {
            throw FormatError(
                file.path, "DiT config: only RoPE without an additive position embedding is implemented (the release's)"
            )
        }
        let table = DiTTensors(c)
        let load = WeightLoader(file)
        config = c
        self.file = file
        self.maxFrames = maxFrames
        self.maxCache = maxCache
        (timeIn, timeOut) = (
            try load.linear(table.timeEmbedding.0.weight, bias: table.timeEmbedding.0.bias),
            try load.linear(table.timeEmbedding.1.weight, bias: table.timeEmbedding.1.bias)
        )
        func linear(_ l: DiTTensors.Linear) throws -> Linear { try load.linear(l.weight, bias: l.bias) }
        inputLinear = try linear(table.inputLinear)
        finalAdaLN = try linear(table.finalAdaLN)
        finalLinear = try linear(table.finalLinear)
        semantic = try load.matrix(table.semanticEmbedding)
        blocks = try (0 ..< c.depth).map { i in
            let b = table.block(i)
            return Block(
                qkv: try linear(b.qkv), proj: try linear(b.proj), fc1: try linear(b.fc1), fc2: try linear(b.fc2),
                adaLN: try linear(b.adaLN))
        }
        let d = c.hiddenSize, F = c.ffnDim, hd = c.headDim
        let weights =
            [timeIn, timeOut, inputLinear, finalAdaLN, finalLinear].map(\.weight)
            + blocks.flatMap { [$0.qkv, $0.proj, $0.fc1, $0.fc2, $0.adaLN].map(\.weight) }
        compute = try Compute(
            threads: threads, maxCols: max(F, 6 * d, DiTTensors.frequencyEmbeddingSize), maxBatch: maxFrames,
            weights: weights, largeWidening: weights.allSatisfy(\.dtype.isFloat))
        let a = compute.arena
        positions = c.ropeMaxPositions ?? 4096
        ropeCos = a.floats(positions * hd / 2)
        ropeSin = a.floats(positions * hd / 2)
        // precompute_freqs_cis: freq_i = 1/θ^(2i/hd) and the angle p/interpolation·freq_i, in f32
        let theta = Float(c.ropeBase ?? 10000), interp = Float(c.ropeInterpolationFactor ?? 1)
        for i in 0 ..< hd / 2 {
            let f = 1 / Foundation.pow(theta, Float(2 * i) / Float(hd))
            for p in 0 ..< positions {
                let angle = Float(p) * (1 / interp) * f
                ropeCos[p * hd / 2 + i] = Foundation.cos(angle)
                ropeSin[p * hd / 2 + i] = Foundation.sin(angle)
            }
        }
        let capacity = maxCache + maxFrames
        keys = (0 ..< c.depth).map { _ in a.floats(capacity * d) }
        values = (0 ..< c.depth).map { _ in a.floats(capacity * d) }
        tFreq = a.floats(DiTTensors.frequencyEmbeddingSize)
        (tHidden, tEmb) = (a.floats(d), a.floats(d))
        cond = a.floats(maxFrames * d)
        mod = a.floats(maxFrames * 6 * d)
        (h, u, q, att) = (
            a.floats(maxFrames * d), a.floats(maxFrames * d), a.floats(maxFrames * d), a.floats(maxFrames * d)
        )
        qkv = a.floats(maxFrames * 3 * d)
        ff = a.floats(maxFrames * F)
        scores = a.floats(Self.queryRows * capacity * compute.pool.threadCount)
        runOf = a.bytes(maxFrames * MemoryLayout<Int>.stride).bindMemory(to: Int.self, capacity: maxFrames)
    }

    public var threadCount: Int { compute.pool.threadCount }

    /// Floating-point operations of one `velocity` call over `frames` frames in `runs` runs of equal
    /// codes with `cached` frames in the cache (2 per multiply-add; for the benchmark's GFLOP/s).
    public func flops(frames N: Int, cached P: Int, runs R: Int) -> Double {
        let h = Double(config.hiddenSize), F = Double(config.ffnDim), n = Double(N), m = Double(config.inputSize)
        let block = n * 2 * (4 * h * h + 2 * h * F) + Double(R) * 2 * 6 * h * h + 2 * 2 * n * Double(P + N) * h
        return Double(blocks.count) * block + Double(R) * 2 * 2 * h * h + 2 * n * h * m * 2
    }

    /// Forget the cache (a new utterance, or the position reset).
    public func reset() { cached = 0 }

    /// `v` [N, mels] = the velocity at `x` [N, mels] (normalised mel) for `codes` [N] (one per frame,
    /// in 0...semanticVocabSize), timestep `tau`, frames at positions `start`..<start+N. This call's
    /// keys and values land right after the cache; `commit` keeps them.
    public func velocity(
        x: UnsafePointer<Float>, codes: UnsafePointer<Int>, frames N: Int, tau: Int, start: Int,
        into v: UnsafeMutablePointer<Float>
    ) {
        precondition(N >= 1 && N <= maxFrames && start >= 0 && start + N <= positions)
        let c = config, d = c.hiddenSize, hd = c.headDim
        // Runs of equal codes: frame f uses modulation row runOf[f].
        var runs = 0
        for f in 0 ..< N {
            if f == 0 || codes[f] != codes[f - 1] { runs += 1 }
            runOf[f] = runs - 1
        }
        timestepEmbedding(tau)
        // cond[r] = SiLU(temb + Emb[code of run r]): the input of every adaLN modulation.
        var r = 0
        for f in 0 ..< N where f == 0 || codes[f] != codes[f - 1] {
            semantic.dequantizeRow(codes[f], into: cond + r * d)
            add(cond + r * d, tEmb, cond + r * d, count: d)
            silu(cond + r * d, cond + r * d, count: d)
            r += 1
        }
        compute.linearRows(inputLinear, x, N, h)
        for (i, b) in blocks.enumerated() {
            compute.linearRows(b.adaLN, cond, runs, mod)  // [runs, 6d]: shift, scale, gate (attention), same (MLP)
            modulate(shift: 0, scale: 1, frames: N, width: 6 * d)
            compute.linearRows(b.qkv, u, N, qkv)
            let (qs, ks, vs, qkvs, cs, sn) = (q, keys[i] + cached * d, values[i] + cached * d, qkv, ropeCos, ropeSin)
            compute.eachRow(N) { f in
                let row = qkvs + f * 3 * d, p = (start + f) * hd / 2
                (qs + f * d).update(from: row, count: d)
                (ks + f * d).update(from: row + d, count: d)
                (vs + f * d).update(from: row + 2 * d, count: d)
                ropeInterleaved(qs + f * d, heads: c.heads, headDim: hd, cos: cs + p, sin: sn + p)
                ropeInterleaved(ks + f * d, heads: c.heads, headDim: hd, cos: cs + p, sin: sn + p)
            }
            attend(block: i, frames: N)
            compute.linearRows(b.proj, att, N, u)
            gatedAdd(gate: 2, frames: N, width: 6 * d)
            modulate(shift: 3, scale: 4, frames: N, width: 6 * d)
            compute.linearRows(b.fc1, u, N, ff)
            let ffs = ff
            compute.eachPiece(N * c.ffnDim) { o, n in geluTanh(ffs + o, ffs + o, count: n) }
            compute.linearRows(b.fc2, ff, N, u)
            gatedAdd(gate: 5, frames: N, width: 6 * d)
        }
        compute.linearRows(finalAdaLN, cond, runs, mod)  // [runs, 2d]: shift, scale
        modulate(shift: 0, scale: 1, frames: N, width: 2 * d)
        compute.linearRows(finalLinear, u, N, v)
    }

    /// Keep the last call's first `n` frames' keys and values in the cache, trimmed to the newest
    /// `maxCache` frames.
    public func commit(frames n: Int) {
        let d = config.hiddenSize
        cached += n
        if cached > maxCache {
            let drop = cached - maxCache
            for i in 0 ..< blocks.count {
                keys[i].update(from: keys[i] + drop * d, count: maxCache * d)
                values[i].update(from: values[i] + drop * d, count: maxCache * d)
            }
            cached = maxCache
        }
    }

    /// tEmb = MLP(cos(τ·f), sin(τ·f)), f_j = exp(−ln(10⁴)·j/128) (TimestepEmbedder, in f32).
    private func timestepEmbedding(_ tau: Int) {
        let half = DiTTensors.frequencyEmbeddingSize / 2, t = Float(tau)
        for j in 0 ..< half {
            let f = Foundation.exp(Float(-Foundation.log(10000.0)) * Float(j) / Float(half))
            tFreq[j] = Foundation.cos(t * f)
            tFreq[half + j] = Foundation.sin(t * f)
        }
        compute.linear(timeIn, tFreq, tHidden)
        silu(tHidden, tHidden, count: config.hiddenSize)
        compute.linear(timeOut, tHidden, tEmb)
    }

    /// u[f] = LN(h[f])·(1 + mod[scale]) + mod[shift] of frame f's run (`shift`, `scale`: which
    /// d-wide piece of the `width`-wide modulation row).
    private func modulate(shift: Int, scale sc: Int, frames N: Int, width: Int) {
        let d = config.hiddenSize
        let (hs, us, ms, run) = (h, u, mod, runOf)
        compute.eachRow(N) { f in
            let m = ms + run[f] * width, out = us + f * d
            layerNorm(hs + f * d, weight: nil, bias: nil, eps: 1e-6, out, count: d)
            for j in 0 ..< d { out[j] = out[j] * (1 + m[sc * d + j]) + m[shift * d + j] }
        }
    }

    /// h[f] += mod[gate] ⊙ u[f].
    private func gatedAdd(gate: Int, frames N: Int, width: Int) {
        let d = config.hiddenSize
        let (hs, us, ms, run) = (h, u, mod, runOf)
        compute.eachRow(N) { f in
            let g = ms + run[f] * width + gate * d, x = hs + f * d, y = us + f * d
            for j in 0 ..< d { x[j] += g[j] * y[j] }
        }
    }

    /// att = softmax(q·kᵀ/√hd)·v per head, over the cache and this call's frames.
    private func attend(block i: Int, frames N: Int) {
        let c = config, d = c.hiddenSize, hd = c.headDim, total = cached + N
        let (qs, ks, vs, ap, sp) = (q, keys[i], values[i], att, scores)
        let Bq = Self.queryRows, chunks = (N + Bq - 1) / Bq, scale = 1 / Float(hd).squareRoot()
        compute.pool.parallelFor(n: c.heads * chunks) { r, tid in
            for item in r {
                let head = item / chunks, start = (item % chunks) * Bq, rows = min(Bq, N - start)
                attentionRows(
                    q: qs + start * d + head * hd, k: ks + head * hd, v: vs + head * hd, stride: d, rows: rows,
                    keys: total, dim: hd, scale: scale, scores: sp + tid * Bq * total, out: ap + start * d + head * hd,
                    outStride: d)
            }
        }
    }
}
