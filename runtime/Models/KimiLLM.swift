import KAF
#if canImport(Glibc)
import Glibc
#endif

/// The audio LLM's sizes and ids, from kaf.meta `components.llm.config` (the release's config.json).
public struct LLMConfig: Sendable {
    public let hidden, ffn, layers, heads, kvHeads, headDim, vocab, maxPositions: Int
    public let eps, ropeTheta: Float
    public let isKimi: Bool
    public let mimoLayers: Int
    public let mimoFrom: Int          // trunk layer whose output feeds the MIMO branch
    public let adaptorIn: Int
    public let tokenOffset: Int       // first audio id (kimia_token_offset)
    public let mediaBegin, mediaEnd: Int

    public init(meta: JSONValue, file: String) throws {
        guard let c = meta["components"]?["llm"]?["config"] else { throw FormatError(file, "no LLM in this file (components.llm missing)") }
        func int(_ k: String) throws -> Int {
            guard let v = c[k]?.intValue else { throw FormatError(file, "llm config '\(k)' missing or not an integer") }
            return v
        }
        hidden = try int("hidden_size"); ffn = try int("intermediate_size"); layers = try int("num_hidden_layers")
        heads = try int("num_attention_heads"); kvHeads = try int("num_key_value_heads"); vocab = try int("vocab_size")
        maxPositions = try int("max_position_embeddings")
        guard heads > 0, kvHeads > 0, hidden % heads == 0, heads % kvHeads == 0 else { throw FormatError(file, "llm config: inconsistent heads") }
        headDim = hidden / heads
        eps = Float(c["rms_norm_eps"]?.doubleValue ?? 1e-6)
        ropeTheta = Float(c["rope_theta"]?.doubleValue ?? 10000)
        isKimi = (c["architectures"]?.arrayValue?.first?.stringValue ?? "") == "MoonshotKimiaForCausalLM"
        if isKimi {
            mimoLayers = meta["components"]?["mimo"] != nil ? try int("kimia_mimo_layers") : 0
            mimoFrom = try int("kimia_mimo_transformer_from_layer_index")
            adaptorIn = try int("kimia_adaptor_input_dim")
            tokenOffset = try int("kimia_token_offset")
            mediaBegin = try int("kimia_media_begin"); mediaEnd = try int("kimia_media_end")
        } else {
            mimoLayers = 0; mimoFrom = -1; adaptorIn = 0; tokenOffset = vocab; mediaBegin = -1; mediaEnd = -1
        }
    }
}

/// One Qwen2 decoder layer (trunk and MIMO layers are the same, spec §3.4).
struct DecoderLayer {
    let inputNorm, postNorm: [Float]
    let q, k, v, o, gate, up, down: WeightMatrix
    let qBias, kBias, vBias: [Float]

    init(_ f: KAFFile, _ p: String, _ c: LLMConfig) throws {
        func m(_ n: String) throws -> WeightMatrix { try WeightMatrix.load(f, p + n) }
        func v(_ n: String, _ count: Int) throws -> [Float] { try Vector(try f.tensor(p + n), name: p + n, file: f.path, count: count).values }
        let kv = c.kvHeads * c.headDim
        inputNorm = try v("input_layernorm.weight", c.hidden); postNorm = try v("post_attention_layernorm.weight", c.hidden)
        q = try m("self_attn.q_proj.weight"); k = try m("self_attn.k_proj.weight")
        self.v = try m("self_attn.v_proj.weight"); o = try m("self_attn.o_proj.weight")
        qBias = try v("self_attn.q_proj.bias", c.hidden); kBias = try v("self_attn.k_proj.bias", kv); vBias = try v("self_attn.v_proj.bias", kv)
        gate = try m("mlp.gate_proj.weight"); up = try m("mlp.up_proj.weight"); down = try m("mlp.down_proj.weight")
        let shapes: [(WeightMatrix, Int, Int, String)] = [(q, c.hidden, c.hidden, "q_proj"), (k, kv, c.hidden, "k_proj"), (self.v, kv, c.hidden, "v_proj"),
                                                    (o, c.hidden, c.hidden, "o_proj"), (gate, c.ffn, c.hidden, "gate_proj"),
                                                    (up, c.ffn, c.hidden, "up_proj"), (down, c.hidden, c.ffn, "down_proj")]
        for (w, r, cols, n) in shapes where w.rows != r || w.cols != cols {
            throw FormatError(f.path, "\(p)\(n) is [\(w.rows), \(w.cols)], config implies [\(r), \(cols)]")
        }
    }
}

/// The Kimi-Audio LLM (or a plain Qwen2): embeddings of two token streams plus continuous
/// features, a Qwen2 trunk, the MIMO branch from trunk layer `mimoFrom`, and two heads. One
/// position per call (`step`), with its own KV caches; weights are read in place from the .kaf.
public final class KimiLLM {
    public let config: LLMConfig
    let file: KAFFile
    let embed: WeightMatrix
    let layers: [DecoderLayer]
    let mimo: [DecoderLayer]
    let norm, mimoNorm: [Float]
    let lmHead: WeightMatrix
    let mimoOutput: WeightMatrix?
    let adaptor: (w0: WeightMatrix, b0: [Float], w3: WeightMatrix, b3: [Float], lnW: [Float], lnB: [Float])?
    let invFreq: [Float]

    // State: KV caches [layer][position][kvHeads·headDim] (trunk layers, then MIMO layers), scratch.
    let contextLength: Int
    let kCache, vCache: [UnsafeMutablePointer<Float>]
    private let x, m, xb, q, kv, att, attOut, hb, hb2, rowScratch, adaptorA, adaptorB: UnsafeMutablePointer<Float>
    /// Matrix-vector products run on this pool; quantized weights take the int8 path with the
    /// input quantized once per 32 into `xqScratch`.
    public let pool: ThreadPool
    private let xqScratch: UnsafeMutableRawPointer
    /// Which input the scratch holds in int8 form (pointer, length), for `sameInput`.
    private var quantizedInput: (UnsafePointer<Float>, Int)? = nil
    let batch: BatchBuffers
    var xbOne: UnsafeMutablePointer<Float> { xb }
    public let textLogits, audioLogits: UnsafeMutablePointer<Float>

    public init(file: KAFFile, contextLength requested: Int? = nil, threads: Int = 0) throws {
        let c = try LLMConfig(meta: file.meta, file: file.path)
        config = c
        self.file = file
        func mat(_ n: String) throws -> WeightMatrix { try WeightMatrix.load(file, n) }
        func vec(_ n: String, _ count: Int) throws -> [Float] { try Vector(try file.tensor(n), name: n, file: file.path, count: count).values }
        embed = try mat("llm.embed_tokens.weight")
        guard embed.rows == c.vocab, embed.cols == c.hidden else { throw FormatError(file.path, "llm.embed_tokens.weight does not match the config") }
        layers = try (0 ..< c.layers).map { try DecoderLayer(file, "llm.layers.\($0).", c) }
        norm = try vec("llm.norm.weight", c.hidden)
        lmHead = file.entry("llm.lm_head.weight") != nil ? try mat("llm.lm_head.weight") : embed
        if c.mimoLayers > 0 {
            mimo = try (0 ..< c.mimoLayers).map { try DecoderLayer(file, "mimo.layers.\($0).", c) }
            mimoNorm = try vec("mimo.norm.weight", c.hidden)
            mimoOutput = try mat("mimo.output.weight")
        } else { mimo = []; mimoNorm = []; mimoOutput = nil }
        if c.isKimi {
            adaptor = (try mat("llm.vq_adaptor.layers.0.weight"), try vec("llm.vq_adaptor.layers.0.bias", c.hidden),
                       try mat("llm.vq_adaptor.layers.3.weight"), try vec("llm.vq_adaptor.layers.3.bias", c.hidden),
                       try vec("llm.vq_adaptor.layers.4.weight", c.hidden), try vec("llm.vq_adaptor.layers.4.bias", c.hidden))
        } else { adaptor = nil }
        invFreq = (0 ..< c.headDim / 2).map { i in Float(1 / pow(Double(c.ropeTheta), Double(2 * i) / Double(c.headDim))) }

        let ctx = min(requested ?? c.maxPositions, c.maxPositions)
        contextLength = ctx
        let kvDim = c.kvHeads * c.headDim
        let nCaches = c.layers + c.mimoLayers
        kCache = (0 ..< nCaches).map { _ in .allocate(capacity: ctx * kvDim) }
        vCache = (0 ..< nCaches).map { _ in .allocate(capacity: ctx * kvDim) }
        func buf(_ n: Int) -> UnsafeMutablePointer<Float> { let p = UnsafeMutablePointer<Float>.allocate(capacity: n); p.initialize(repeating: 0, count: n); return p }
        let widest = max(c.hidden, c.ffn, c.adaptorIn, embed.cols)
        x = buf(c.hidden); m = buf(c.hidden); xb = buf(c.hidden); q = buf(c.hidden); kv = buf(2 * kvDim)
        let threadPool = ThreadPool(threads: threads)
        att = buf(ctx * threadPool.threadCount)   // one score row per thread (heads run in parallel)
        attOut = buf(c.hidden); hb = buf(c.ffn); hb2 = buf(c.ffn)
        rowScratch = buf(widest); adaptorA = buf(c.hidden); adaptorB = buf(c.hidden)
        textLogits = buf(lmHead.rows); audioLogits = buf(mimoOutput?.rows ?? 1)
        pool = threadPool
        xqScratch = .allocate(byteCount: QuantizedActivations.scratchBytes(count: widest), alignment: 64)
        blasSetThreads(1)   // rows are split over our pool; sgemm runs inside each worker
        let floatWeights = ([embed, lmHead] + layers.flatMap { [$0.q, $0.k, $0.v, $0.o, $0.gate, $0.up, $0.down] })
        batch = BatchBuffers(c, maxBatch: min(256, ctx), context: ctx, threads: pool.threadCount,
                             blasFloats: floatWeights.map { matmulFloatScratchCount($0) }.max() ?? 0)
    }

    /// y = W·x (+ bias), rows split over the pool. `x` holds `w.cols` floats. `sameInput`: x is
    /// the input of the previous call (q/k/v, gate/up), so its int8 form in the scratch is reused.
    func linear(_ w: WeightMatrix, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, bias: [Float]? = nil, sameInput: Bool = false) {
        var xq: QuantizedActivations? = nil
        if w.wantsQuantizedInput && w.cols % QuantizedActivations.block == 0 {
            let a = QuantizedActivations(scratch: xqScratch, count: w.cols)
            let held = quantizedInput.map { $0.0 == x && $0.1 == w.cols } ?? false
            if !(sameInput && held) { quantizeActivations(x, into: a) }
            quantizedInput = (x, w.cols)
            xq = a
        } else {
            quantizedInput = nil
        }
        let shared = xq
        pool.parallelForRows(w) { r, _ in matvec(w, x: x, xq: shared, y: y, rows: r) }
        if let b = bias { for i in 0 ..< w.rows { y[i] += b[i] } }
    }

    deinit {
        for p in kCache + vCache { p.deallocate() }
        for p in [x, m, xb, q, kv, att, attOut, hb, hb2, rowScratch, adaptorA, adaptorB, textLogits, audioLogits] { p.deallocate() }
        xqScratch.deallocate()
    }

    /// Runs position `pos`. Inputs follow spec §3.3: the audio-stream id, the text-stream id added
    /// when `addText` (the reference skips it when the text ids sum to 0), and for a continuous
    /// position the Whisper feature row (`feature`, adaptorIn floats), fused as (E[a]+adaptor(f))·√2.
    /// For a plain Qwen2 only `textId` is used. Fills `textLogits`, and `audioLogits` when
    /// `wantAudio` and the file has the MIMO branch.
    public func step(audioId: Int, textId: Int, addText: Bool, feature: UnsafePointer<Float>?, pos: Int, wantAudio: Bool) throws {
        let c = config
        guard pos >= 0, pos < contextLength else { throw FormatError(file.path, "position \(pos) is past the context length \(contextLength)") }
        let first = c.isKimi ? audioId : textId
        guard first >= 0, first < c.vocab, textId >= 0, textId < c.vocab else { throw FormatError(file.path, "token id out of range (audio \(audioId), text \(textId), vocab \(c.vocab))") }
        embed.dequantizeRow(first, into: x)
        if c.isKimi {
            if let f = feature { fuseFeature(f, into: x) }
            if addText {
                embed.dequantizeRow(textId, into: rowScratch)
                for i in 0 ..< c.hidden { x[i] += rowScratch[i] }
            }
        }
        let runMimo = wantAudio && !mimo.isEmpty
        for (l, layer) in layers.enumerated() {
            runLayer(layer, cache: l, h: x, pos: pos)
            if runMimo && l == c.mimoFrom { m.update(from: x, count: c.hidden) }
        }
        rmsNorm(x, weight: norm, eps: c.eps, xb, count: c.hidden)
        linear(lmHead, xb, textLogits)
        if runMimo, let out = mimoOutput {
            for (j, layer) in mimo.enumerated() { runLayer(layer, cache: c.layers + j, h: m, pos: pos) }
            rmsNorm(m, weight: mimoNorm, eps: c.eps, xb, count: c.hidden)
            linear(out, xb, audioLogits)
        }
    }

    /// row ← (row + adaptor(f))·√2: the adaptor is Linear → SiLU → Linear → LayerNorm (spec §3.3).
    func fuseFeature(_ f: UnsafePointer<Float>, into row: UnsafeMutablePointer<Float>) {
        guard let a = adaptor else { return }
        let c = config
        linear(a.w0, f, adaptorA, bias: a.b0)
        for i in 0 ..< c.hidden { adaptorA[i] = Ops.silu(adaptorA[i]) }
        linear(a.w3, adaptorA, adaptorB, bias: a.b3)
        Ops.layerNorm(adaptorB, a.lnW, a.lnB, eps: 1e-6, adaptorA, count: c.hidden)
        let sqrt2 = Float(2).squareRoot()
        for i in 0 ..< c.hidden { row[i] = (row[i] + adaptorA[i]) * sqrt2 }
    }

    /// Causal GQA attention of one query row (all heads) at `pos` over cache `cache` → `out`, the
    /// heads split over the pool (`scores`: contextLength floats per thread).
    func attend(_ q: UnsafePointer<Float>, cache: Int, pos: Int, out: UnsafeMutablePointer<Float>, scores: UnsafeMutablePointer<Float>) {
        let ctx = contextLength
        pool.parallelFor(n: config.heads) { r, tid in
            attendHeads(r, q, cache: cache, pos: pos, out: out, scores: scores + tid * ctx)
        }
    }

    /// Heads `heads` of one query row (serial).
    func attendHeads(_ heads: Range<Int>, _ q: UnsafePointer<Float>, cache: Int, pos: Int, out: UnsafeMutablePointer<Float>, scores: UnsafeMutablePointer<Float>) {
        let c = config, hd = c.headDim, kvDim = c.kvHeads * hd
        let group = c.heads / c.kvHeads, scale = 1 / Float(hd).squareRoot()
        for head in heads {
            let kvh = head / group   // GQA: contiguous groups of query heads
            attentionHead(q + head * hd, k: kCache[cache] + kvh * hd, v: vCache[cache] + kvh * hd, stride: kvDim, count: pos + 1,
                          dim: hd, scale: scale, scores: scores, out: out + head * hd)
        }
    }

    /// h ← layer(h) at `pos`, using KV cache `cache`.
    private func runLayer(_ L: DecoderLayer, cache: Int, h: UnsafeMutablePointer<Float>, pos: Int) {
        let c = config, hd = c.headDim, kvDim = c.kvHeads * hd
        rmsNorm(h, weight: L.inputNorm, eps: c.eps, xb, count: c.hidden)
        linear(L.q, xb, q, bias: L.qBias)
        let kRow = kCache[cache] + pos * kvDim, vRow = vCache[cache] + pos * kvDim
        linear(L.k, xb, kRow, bias: L.kBias, sameInput: true)
        linear(L.v, xb, vRow, bias: L.vBias, sameInput: true)
        Ops.ropeHalf(q, heads: c.heads, headDim: hd, pos: pos, invFreq: invFreq)
        Ops.ropeHalf(kRow, heads: c.kvHeads, headDim: hd, pos: pos, invFreq: invFreq)
        attend(q, cache: cache, pos: pos, out: attOut, scores: att)
        linear(L.o, attOut, xb)
        for i in 0 ..< c.hidden { h[i] += xb[i] }
        rmsNorm(h, weight: L.postNorm, eps: c.eps, xb, count: c.hidden)
        linear(L.gate, xb, hb)
        linear(L.up, xb, hb2, sameInput: true)
        swiglu(gate: hb, up: hb2, hb, count: c.ffn)
        linear(L.down, hb, xb)
        for i in 0 ..< c.hidden { h[i] += xb[i] }
    }
}
