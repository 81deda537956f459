// The audio LLM's architecture table (docs/ARCHITECTURE.md §1.2–§1.4, §5.2–§5.3): a Qwen2 trunk, the
// Kimi-Audio MIMO branch, the VQ adaptor and the two heads, or a plain Qwen2. Release names follow
// the Hugging Face modeling file; .kaf names drop `model.` under component `llm`, and the MIMO
// branch is its own component `mimo`.

/// The LLM's sizes and ids, decoded once from config.json (the release's, or its copy in kaf.meta
/// `components.llm.config`).
public struct LLMConfig: Sendable, Equatable {
    public let hidden, ffn, layers, heads, kvHeads, headDim, vocab, maxPositions: Int
    public let eps, ropeTheta: Float
    /// `MoonshotKimiaForCausalLM` (else a plain Qwen2).
    public let isKimi: Bool
    public let tiedEmbeddings: Bool
    /// MIMO layers in the release (0 for a plain Qwen2).
    public let mimoLayers: Int
    /// Trunk layer whose output feeds the MIMO branch.
    public let mimoFrom: Int
    public let adaptorIn: Int
    /// First audio id (kimia_token_offset); `vocab` for a plain Qwen2.
    public let tokenOffset: Int
    public let mediaBegin, mediaEnd: Int

    public init(json: JSONValue, file: String) throws {
        let c = ConfigReader(json, file: file)
        hidden = try c.int("hidden_size", in: 1 ... 1 << 16)
        ffn = try c.int("intermediate_size", in: 1 ... 1 << 18)
        layers = try c.int("num_hidden_layers", in: 1 ... 1024)
        heads = try c.int("num_attention_heads", in: 1 ... 1024)
        kvHeads = try c.int("num_key_value_heads", in: 1 ... 1024)
        vocab = try c.int("vocab_size", in: 1 ... 1 << 22)
        maxPositions = try c.int("max_position_embeddings", in: 1 ... 1 << 22)
        guard hidden % heads == 0, heads % kvHeads == 0, (hidden / heads) % 2 == 0 else {
            throw FormatError(
                file,
                "inconsistent sizes (hidden \(hidden), heads \(heads), kv heads \(kvHeads), layers \(layers))")
        }
        headDim = hidden / heads
        // Ranges that keep the arithmetic finite: eps 0 divides a zero row by zero, a RoPE base ≤ 1
        // gives no decreasing frequencies (negative: NaN).
        let eps = try c.double("rms_norm_eps", default: 1e-6)
        guard eps > 0, eps <= 0.1 else {
            throw FormatError(file, "config value 'rms_norm_eps' is \(eps), outside (0, 0.1]")
        }
        self.eps = Float(eps)
        let theta = try c.double("rope_theta", default: 10000)
        guard theta > 1, theta <= 1e12 else {
            throw FormatError(file, "config value 'rope_theta' is \(theta), outside (1, 1e12]")
        }
        ropeTheta = Float(theta)
        tiedEmbeddings = c.bool("tie_word_embeddings", default: false)
        isKimi = (json["architectures"]?.arrayValue?.first?.stringValue ?? "") == "MoonshotKimiaForCausalLM"
        if isKimi {
            mimoLayers = try c.int("kimia_mimo_layers", in: 0 ... 1024)
            mimoFrom = try c.int("kimia_mimo_transformer_from_layer_index", in: 0 ... layers - 1)
            adaptorIn = try c.int("kimia_adaptor_input_dim", in: 1 ... 1 << 16)
            tokenOffset = try c.int("kimia_token_offset", in: 1 ... vocab)
            mediaBegin = try c.int("kimia_media_begin", in: 0 ... vocab - 1)
            mediaEnd = try c.int("kimia_media_end", in: 0 ... vocab - 1)
        } else {
            mimoLayers = 0
            mimoFrom = -1
            adaptorIn = 0
            tokenOffset = vocab
            mediaBegin = -1
            mediaEnd = -1
        }
    }

    /// Width of one K (or V) row: kvHeads · headDim.
    public var kvDim: Int { kvHeads * headDim }
}

/// One Qwen2 decoder layer (trunk and MIMO layers are the same).
public struct DecoderLayerTensors: Sendable {
    public let inputNorm, postNorm: TensorSpec
    public let q, qBias, k, kBias, v, vBias, o: TensorSpec
    public let gate, up, down: TensorSpec

    /// `name` is the .kaf prefix (`llm.layers.3`), `source` the release's (`model.layers.3`).
    init(name: String, source: String, _ c: LLMConfig) {
        let d = c.hidden, kv = c.kvDim
        func t(_ n: String, _ shape: [Int], _ role: TensorRole) -> TensorSpec {
            TensorSpec("\(name).\(n)", source: "\(source).\(n)", shape, role)
        }
        inputNorm = t("input_layernorm.weight", [d], .vector)
        postNorm = t("post_attention_layernorm.weight", [d], .vector)
        q = t("self_attn.q_proj.weight", [d, d], .linear)
        qBias = t("self_attn.q_proj.bias", [d], .vector)
        k = t("self_attn.k_proj.weight", [kv, d], .linear)
        kBias = t("self_attn.k_proj.bias", [kv], .vector)
        v = t("self_attn.v_proj.weight", [kv, d], .linear)
        vBias = t("self_attn.v_proj.bias", [kv], .vector)
        o = t("self_attn.o_proj.weight", [d, d], .linear)
        gate = t("mlp.gate_proj.weight", [c.ffn, d], .linear)
        up = t("mlp.up_proj.weight", [c.ffn, d], .linear)
        down = t("mlp.down_proj.weight", [d, c.ffn], .linear)
    }

    /// In file order.
    public var all: [TensorSpec] { [inputNorm, postNorm, q, qBias, k, kBias, v, vBias, o, gate, up, down] }
}

/// The VQ adaptor: Linear(adaptorIn → d) → SiLU → Linear(d → d) → LayerNorm(d) (Sequential
/// indices 0, 3, 4).
public struct AdaptorTensors: Sendable {
    public let w0, b0, w3, b3, normWeight, normBias: TensorSpec

    init(_ c: LLMConfig) {
        let d = c.hidden
        func t(_ n: String, _ shape: [Int], _ role: TensorRole) -> TensorSpec {
            TensorSpec("llm.vq_adaptor.layers.\(n)", source: "model.vq_adaptor.layers.\(n)", shape, role)
        }
        w0 = t("0.weight", [d, c.adaptorIn], .adaptor)
        b0 = t("0.bias", [d], .vector)
        w3 = t("3.weight", [d, d], .adaptor)
        b3 = t("3.bias", [d], .vector)
        normWeight = t("4.weight", [d], .vector)
        normBias = t("4.bias", [d], .vector)
    }

    public var all: [TensorSpec] { [w0, b0, w3, b3, normWeight, normBias] }
}

/// Every tensor of the LLM (component `llm`) and the MIMO branch (component `mimo`).
public struct LLMArchitecture: Sendable {
    public let config: LLMConfig
    public let embed: TensorSpec
    public let layers: [DecoderLayerTensors]
    public let norm: TensorSpec
    /// The text head; absent from a file whose embeddings are tied.
    public let lmHead: TensorSpec
    public let adaptor: AdaptorTensors?
    public let mimoLayers: [DecoderLayerTensors]
    public let mimoNorm, mimoOutput: TensorSpec

    public init(_ c: LLMConfig) {
        config = c
        let d = c.hidden
        embed = TensorSpec("llm.embed_tokens.weight", source: "model.embed_tokens.weight", [c.vocab, d], .embedding)
        layers = (0 ..< c.layers).map { DecoderLayerTensors(name: "llm.layers.\($0)", source: "model.layers.\($0)", c) }
        norm = TensorSpec("llm.norm.weight", source: "model.norm.weight", [d], .vector)
        lmHead = TensorSpec("llm.lm_head.weight", source: "lm_head.weight", [c.vocab, d], .head)
        adaptor = c.isKimi ? AdaptorTensors(c) : nil
        mimoLayers = (0 ..< c.mimoLayers).map {
            DecoderLayerTensors(name: "mimo.layers.\($0)", source: "model.mimo_layers.\($0)", c)
        }
        mimoNorm = TensorSpec("mimo.norm.weight", source: "model.mimo_norm.weight", [d], .vector)
        mimoOutput = TensorSpec("mimo.output.weight", source: "mimo_output.weight", [c.vocab, d], .head)
    }

    /// Component `llm` in file order; `withHead` false when the head is the tied embedding.
    public func llmTensors(withHead: Bool) -> [TensorSpec] {
        [embed] + layers.flatMap(\.all) + [norm] + (withHead ? [lmHead] : []) + (adaptor?.all ?? [])
    }

    /// Component `mimo` in file order.
    public var mimoTensors: [TensorSpec] { mimoLayers.flatMap(\.all) + [mimoNorm, mimoOutput] }
}
