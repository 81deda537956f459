import KAF

#if canImport(Glibc)
import Glibc
#endif

/// One Qwen2 decoder layer's weights (trunk and MIMO layers are the same, docs/ARCHITECTURE.md §1.2).
struct DecoderLayer {
    let inputNorm, postNorm: [Float]
    let q, k, v, o, gate, up, down: Linear

    init(_ t: DecoderLayerTensors, _ load: WeightLoader) throws {
        inputNorm = try load.vector(t.inputNorm)
        postNorm = try load.vector(t.postNorm)
        (q, k, v) = (
            try load.linear(t.q, bias: t.qBias), try load.linear(t.k, bias: t.kBias),
            try load.linear(t.v, bias: t.vBias)
        )
        (o, gate, up, down) = (
            try load.linear(t.o), try load.linear(t.gate), try load.linear(t.up), try load.linear(t.down)
        )
    }

    var matrices: [WeightMatrix] { [q, k, v, o, gate, up, down].map(\.weight) }
}

/// The VQ adaptor: Linear → SiLU → Linear → LayerNorm (docs/ARCHITECTURE.md §1.3).
struct Adaptor {
    let first, second: Linear
    let normWeight, normBias: [Float]

    init(_ t: AdaptorTensors, _ load: WeightLoader) throws {
        first = try load.linear(t.w0, bias: t.b0)
        second = try load.linear(t.w3, bias: t.b3)
        normWeight = try load.vector(t.normWeight)
        normBias = try load.vector(t.normBias)
    }
}

/// The Kimi-Audio LLM (or a plain Qwen2): embeddings of two token streams plus continuous
/// features, a Qwen2 trunk, the MIMO branch from trunk layer `mimoFrom`, and two heads. One
/// position per `step` (KimiLLMPrefill.swift runs many), with its own KV caches; weights are read
/// in place from the .kaf. Every buffer is allocated at load.
public final class KimiLLM {
    public let config: LLMConfig
    let file: KAFFile
    let embed: WeightMatrix
    let layers: [DecoderLayer]
    let mimo: [DecoderLayer]
    let norm, mimoNorm: [Float]
    let lmHead: WeightMatrix
    let mimoOutput: WeightMatrix?
    let adaptor: Adaptor?
    let invFreq: [Float]
    let compute: Compute

    // State: KV caches [layer][position][kvDim] (trunk layers, then MIMO layers), scratch.
    public let contextLength: Int
    let kCache, vCache: [UnsafeMutablePointer<Float>]
    let x, m, xb, q, attOut, hb, hb2, rowScratch, adaptorA, adaptorB: UnsafeMutablePointer<Float>
    /// One attention score row per thread (heads run in parallel).
    let att: UnsafeMutablePointer<Float>
    /// cos/sin of the current position (decode), headDim/2 each.
    let ropeCos, ropeSin: UnsafeMutablePointer<Float>
    let batch: BatchBuffers
    public let textLogits, audioLogits: UnsafeMutablePointer<Float>

    /// Matrix products run on this pool (through `compute`).
    public var pool: ThreadPool { compute.pool }
    /// Rows of the text head (the logits `textLogits` holds).
    public var textVocab: Int { lmHead.rows }

    public init(file: KAFFile, contextLength requested: Int? = nil, threads: Int = 0) throws {
        guard let json = file.meta["components"]?["llm"]?["config"] else {
            throw FormatError(file.path, "no LLM in this file (components.llm missing)")
        }
        let c = try LLMConfig(json: json, file: file.path)
        let arch = LLMArchitecture(c)
        let load = WeightLoader(file)
        config = c
        self.file = file
        if let extra = file.entries.first(where: { $0.name.hasPrefix("llm.layers.\(c.layers).") }) {
            throw FormatError(file.path, "tensor '\(extra.name)' is past the \(c.layers) layers of the config")
        }
        embed = try load.matrix(arch.embed)
        layers = try arch.layers.map { try DecoderLayer($0, load) }
        norm = try load.vector(arch.norm)
        lmHead = load.has(arch.lmHead) ? try load.matrix(arch.lmHead) : embed
        if file.meta["components"]?["mimo"] != nil {
            if let extra = file.entries.first(where: { $0.name.hasPrefix("mimo.layers.\(c.mimoLayers).") }) {
                throw FormatError(
                    file.path, "tensor '\(extra.name)' is past the \(c.mimoLayers) MIMO layers of the config")
            }
            mimo = try arch.mimoLayers.map { try DecoderLayer($0, load) }
            mimoNorm = try load.vector(arch.mimoNorm)
            mimoOutput = try load.matrix(arch.mimoOutput)
        } else {
            mimo = []
            mimoNorm = []
            mimoOutput = nil
        }
        adaptor = try arch.adaptor.map { try Adaptor($0, load) }
        invFreq = (0 ..< c.headDim / 2).map { i in
            Float(1 / pow(Double(c.ropeTheta), Double(2 * i) / Double(c.headDim)))
        }

        let ctx = min(requested ?? c.maxPositions, c.maxPositions)
        contextLength = ctx
        let weights =
            [embed, lmHead] + (layers + mimo).flatMap(\.matrices)
            + [mimoOutput, adaptor?.first.weight, adaptor?.second.weight]
            .compactMap { $0 }
        let widest = max(c.hidden, c.ffn, c.adaptorIn)
        let maxBatch = min(256, ctx)
        compute = try Compute(threads: threads, maxCols: widest, maxBatch: maxBatch, weights: weights)
        try Self.checkStateFits(
            file: file, c, context: ctx, caches: c.layers + mimo.count, threads: compute.pool.threadCount)
        let a = compute.arena
        kCache = (0 ..< c.layers + mimo.count).map { _ in a.floats(ctx * c.kvDim) }
        vCache = (0 ..< c.layers + mimo.count).map { _ in a.floats(ctx * c.kvDim) }
        x = a.floats(c.hidden)
        m = a.floats(c.hidden)
        xb = a.floats(c.hidden)
        q = a.floats(c.hidden)
        att = a.floats(ctx * compute.pool.threadCount)
        attOut = a.floats(c.hidden)
        hb = a.floats(c.ffn)
        hb2 = a.floats(c.ffn)
        rowScratch = a.floats(c.hidden)
        adaptorA = a.floats(c.hidden)
        adaptorB = a.floats(c.hidden)
        ropeCos = a.floats(c.headDim / 2)
        ropeSin = a.floats(c.headDim / 2)
        textLogits = a.floats(lmHead.rows)
        audioLogits = a.floats(mimoOutput?.rows ?? 1)
        batch = BatchBuffers(c, maxBatch: maxBatch, context: ctx, threads: compute.pool.threadCount, arena: a)
    }

    /// The KV caches and attention rows grow with the context, which a file's config chooses
    /// (max_position_embeddings): refuse one that cannot fit before allocating it, instead of
    /// aborting inside malloc. The limit is physical memory and the address-space and data limits.
    static func checkStateFits(file: KAFFile, _ c: LLMConfig, context: Int, caches: Int, threads: Int) throws {
        let perPosition = (2 * caches * c.kvDim + threads) * MemoryLayout<Float>.size
        let (need, overflow) = context.multipliedReportingOverflow(by: perPosition)
        var budget = Int(sysconf(Int32(_SC_PHYS_PAGES))) &* Int(sysconf(Int32(_SC_PAGESIZE)))
        for (resource, mapped) in [(RLIMIT_AS, file.file.count), (RLIMIT_DATA, 0)] {
            var lim = rlimit()
            // rlim_t.max is RLIM_INFINITY (not importable).
            if getrlimit(__rlimit_resource_t(resource.rawValue), &lim) == 0, lim.rlim_cur != rlim_t.max {
                budget = min(budget, Int(clamping: lim.rlim_cur) - mapped)
            }
        }
        guard !overflow, need <= budget else {
            let gib = { (b: Int) in String(format: "%.1f GiB", Double(b) / Double(1 << 30)) }
            throw FormatError(
                file.path,
                "a context of \(context) positions (max_position_embeddings \(c.maxPositions)) needs "
                    + "\(overflow ? "more than 8 EiB" : gib(need)) for the KV cache, more than the "
                    + "\(gib(max(budget, 0))) this process may use: choose a smaller --context")
        }
    }

    /// Runs position `pos`. Inputs (docs/ARCHITECTURE.md §1.3): the audio-stream id, the
    /// text-stream id added when `addText` (the reference skips it when the text ids sum to 0), and
    /// for a continuous position the Whisper feature row (`feature`, adaptorIn floats), fused as
    /// (E[a]+adaptor(f))·√2. For a plain Qwen2 only `textId` is used. Fills `textLogits`, and
    /// `audioLogits` when `wantAudio` and the file has the MIMO branch.
    public func step(
        audioId: Int, textId: Int, addText: Bool, feature: UnsafePointer<Float>?, pos: Int, wantAudio: Bool
    )
        throws
    {
        let c = config
        guard pos >= 0, pos < contextLength else {
            throw FormatError(file.path, "position \(pos) is past the context length \(contextLength)")
        }
        try embedPosition(audioId: audioId, textId: textId, addText: addText, feature: feature, into: x, at: pos)
        ropeCosSin(position: pos, invFreq: invFreq, half: c.headDim / 2, cos: ropeCos, sin: ropeSin)
        let runMimo = wantAudio && !mimo.isEmpty
        for (l, layer) in layers.enumerated() {
            runLayer(layer, cache: l, h: x, pos: pos)
            if runMimo && l == c.mimoFrom { m.update(from: x, count: c.hidden) }
        }
        rmsNorm(x, weight: norm, eps: c.eps, xb, count: c.hidden)
        compute.linear(lmHead, xb, textLogits)
        if runMimo, let out = mimoOutput {
            for (j, layer) in mimo.enumerated() { runLayer(layer, cache: c.layers + j, h: m, pos: pos) }
            rmsNorm(m, weight: mimoNorm, eps: c.eps, xb, count: c.hidden)
            compute.linear(out, xb, audioLogits)
        }
    }

    /// The input row of one position: E[audio id] (+ adaptor(feature), ·√2) (+ E[text id]); a plain
    /// Qwen2 takes E[text id]. `at` names the position in errors.
    func embedPosition(
        audioId: Int, textId: Int, addText: Bool, feature: UnsafePointer<Float>?, into row: UnsafeMutablePointer<Float>,
        at pos: Int
    ) throws {
        let c = config
        let first = c.isKimi ? audioId : textId
        guard first >= 0, first < c.vocab, textId >= 0, textId < c.vocab else {
            throw FormatError(
                file.path,
                "token id out of range at position \(pos) (audio \(audioId), text \(textId), vocab \(c.vocab))")
        }
        embed.dequantizeRow(first, into: row)
        guard c.isKimi else { return }
        if let feature { fuseFeature(feature, into: row) }
        if addText {
            embed.dequantizeRow(textId, into: rowScratch)
            add(row, rowScratch, row, count: c.hidden)
        }
    }

    /// row ← (row + adaptor(f))·√2.
    func fuseFeature(_ f: UnsafePointer<Float>, into row: UnsafeMutablePointer<Float>) {
        guard let a = adaptor else { return }
        let d = config.hidden
        compute.linear(a.first, f, adaptorA)
        silu(adaptorA, adaptorA, count: d)
        compute.linear(a.second, adaptorA, adaptorB)
        layerNorm(adaptorB, weight: a.normWeight, bias: a.normBias, eps: 1e-6, adaptorA, count: d)
        add(row, adaptorA, row, count: d)
        scale(row, Float(2).squareRoot(), count: d)
    }

    /// Heads `heads` of one query row at `pos` over cache `cache` (serial; causal GQA).
    func attendHeads(
        _ heads: Range<Int>, _ q: UnsafePointer<Float>, cache: Int, pos: Int, out: UnsafeMutablePointer<Float>,
        scores: UnsafeMutablePointer<Float>
    ) {
        let c = config, hd = c.headDim
        let group = c.heads / c.kvHeads, scale = 1 / Float(hd).squareRoot()
        for head in heads {
            let kvh = head / group  // GQA: contiguous groups of query heads
            attentionHead(
                q + head * hd, k: kCache[cache] + kvh * hd, v: vCache[cache] + kvh * hd, stride: c.kvDim,
                count: pos + 1, dim: hd, scale: scale, scores: scores, out: out + head * hd)
        }
    }

    /// h ← layer(h) at `pos`, using KV cache `cache`; RoPE from `ropeCos`/`ropeSin`.
    private func runLayer(_ L: DecoderLayer, cache: Int, h: UnsafeMutablePointer<Float>, pos: Int) {
        let c = config, hd = c.headDim
        rmsNorm(h, weight: L.inputNorm, eps: c.eps, xb, count: c.hidden)
        compute.linear(L.q, xb, q)
        let kRow = kCache[cache] + pos * c.kvDim, vRow = vCache[cache] + pos * c.kvDim
        compute.linear(L.k, xb, kRow, sameInput: true)
        compute.linear(L.v, xb, vRow, sameInput: true)
        ropeNeox(q, heads: c.heads, headDim: hd, cos: ropeCos, sin: ropeSin)
        ropeNeox(kRow, heads: c.kvHeads, headDim: hd, cos: ropeCos, sin: ropeSin)
        let ctx = contextLength
        pool.parallelFor(n: c.heads) { r, tid in
            attendHeads(r, q, cache: cache, pos: pos, out: attOut, scores: att + tid * ctx)
        }
        compute.linear(L.o, attOut, xb)
        add(h, xb, h, count: c.hidden)
        rmsNorm(h, weight: L.postNorm, eps: c.eps, xb, count: c.hidden)
        compute.linear(L.gate, xb, hb)
        compute.linear(L.up, xb, hb2, sameInput: true)
        swiglu(gate: hb, up: hb2, hb, count: c.ffn)
        compute.linear(L.down, hb, xb)
        add(h, xb, h, count: c.hidden)
    }
}
