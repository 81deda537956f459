// The flow-matching DiT of the audio detokenizer (docs/ARCHITECTURE.md §1.9): `audio_detokenizer/config.yaml`
// section `model.dit` and the tensors under `speech_model.` in `model.pt["state_dict"]`.

/// `model.dit` of config.yaml (docs/ARCHITECTURE.md §1.9), plus the top-level mel normalisation keys. The sizes are
/// required; the other keys are read when present (nil when absent) so a release that omits
/// them converts as before.
public struct DiTConfig: Sendable, Equatable {
    public let hiddenSize: Int
    public let depth: Int
    public let heads: Int
    public let mlpRatio: Double
    /// Mel bins in and out (80).
    public let inputSize: Int
    /// Semantic token vocabulary; the embedding has one more row (the CFG id).
    public let semanticVocabSize: Int
    /// `ffn_type`: only `vanilla_mlp` (fc1, GELU-tanh, fc2) exists in the official code.
    public let ffnType: String?
    public let useRope: Bool?
    public let ropeBase: Double?
    public let ropeMaxPositions: Int?
    public let ropeInterpolationFactor: Double?
    /// `skip` in the release: no additive position embedding.
    public let positionEmbeddingType: String?
    public let maxSeqLen: Int?
    /// Top level: `mel = x·mel_std + mel_mean` after the ODE when `normalize_mel`.
    public let normalizeMel: Bool?
    public let melMean: Double?
    public let melStd: Double?

    public var headDim: Int { hiddenSize / heads }
    /// fc1's width: `Int(hidden_size · mlp_ratio)`, as timm's Mlp.
    public var ffnDim: Int { Int(Double(hiddenSize) * mlpRatio) }

    /// From the whole config.yaml document (`yaml`).
    public init(yaml: JSONValue, file: String) throws {
        guard let dit = yaml["model"]?["dit"] else { throw FormatError(file, "no model.dit section") }
        let c = ConfigReader(dit, file: file, keyPrefix: "model.dit.")
        hiddenSize = try c.int("hidden_size")
        depth = try c.int("depth")
        inputSize = try c.int("input_size")
        semanticVocabSize = try c.int("semantic_vocab_size")
        heads = try c.int("num_heads")
        mlpRatio = try c.double("mlp_ratio")
        guard mlpRatio > 0, hiddenSize % heads == 0 else {
            throw FormatError(file, "inconsistent DiT sizes (hidden \(hiddenSize), heads \(heads), depth \(depth))")
        }
        ffnType = c.string("ffn_type")
        if let t = ffnType, t != "vanilla_mlp" {
            throw FormatError(file, "config value 'model.dit.ffn_type' is '\(t)'; only vanilla_mlp is implemented")
        }
        useRope = dit["use_rope"]?.boolValue
        let rope = ConfigReader(dit["rope_params"] ?? .null, file: file, keyPrefix: "model.dit.rope_params.")
        ropeBase = rope.has("rope_base") ? try rope.double("rope_base") : nil
        ropeMaxPositions = rope.has("max_position_embeddings") ? try rope.int("max_position_embeddings") : nil
        ropeInterpolationFactor =
            rope.has("rope_interpolation_factor") ? try rope.double("rope_interpolation_factor") : nil
        positionEmbeddingType = c.string("position_embedding_type")
        maxSeqLen = c.has("max_seq_len") ? try c.int("max_seq_len") : nil
        let top = ConfigReader(yaml, file: file)
        normalizeMel = yaml["normalize_mel"]?.boolValue
        melMean = top.has("mel_mean") ? try top.double("mel_mean") : nil
        melStd = top.has("mel_std") ? try top.double("mel_std") : nil
    }
}

/// The DiT's tensors (docs/ARCHITECTURE.md §5.5): `.kaf` name `dit.<rel>`, release name `speech_model.<rel>`.
public struct DiTTensors: Sendable {
    public let config: DiTConfig
    public static let sourcePrefix = "speech_model."
    /// Width of the sinusoidal timestep features fed to `t_embedder.mlp.0`.
    public static let frequencyEmbeddingSize = 256

    public init(_ config: DiTConfig) { self.config = config }

    func spec(_ rel: String, _ shape: [Int], _ role: TensorRole) -> TensorSpec {
        TensorSpec("dit.\(rel)", source: Self.sourcePrefix + rel, shape, role)
    }

    /// A linear layer's weight [out, in] and bias [out].
    public struct Linear: Sendable {
        public let weight: TensorSpec
        public let bias: TensorSpec
        public var all: [TensorSpec] { [weight, bias] }
    }

    func linear(_ rel: String, out: Int, in inputs: Int) -> Linear {
        Linear(
            weight: spec(rel + ".weight", [out, inputs], .detokLinear), bias: spec(rel + ".bias", [out], .vector))
    }

    var h: Int { config.hiddenSize }

    /// Timestep MLP: 256 → h, SiLU, h → h.
    public var timeEmbedding: (Linear, Linear) {
        (
            linear("t_embedder.mlp.0", out: h, in: Self.frequencyEmbeddingSize),
            linear("t_embedder.mlp.2", out: h, in: h)
        )
    }
    public var semanticEmbedding: TensorSpec {
        spec("semantic_token_embedding.weight", [config.semanticVocabSize + 1, h], .embedding)
    }
    public var inputLinear: Linear { linear("input_linear", out: h, in: config.inputSize) }

    /// One DiT block: fused qkv (rows q, k, v), proj, the MLP and the 6-way adaLN modulation.
    public struct Block: Sendable {
        public let qkv, proj, fc1, fc2, adaLN: Linear
        public var all: [TensorSpec] { qkv.all + proj.all + fc1.all + fc2.all + adaLN.all }
    }

    public func block(_ i: Int) -> Block {
        let b = "blocks.\(i)."
        return Block(
            qkv: linear(b + "attn.qkv", out: 3 * h, in: h), proj: linear(b + "attn.proj", out: h, in: h),
            fc1: linear(b + "mlp.fc1", out: config.ffnDim, in: h),
            fc2: linear(b + "mlp.fc2", out: h, in: config.ffnDim),
            adaLN: linear(b + "adaLN_modulation.1", out: 6 * h, in: h))
    }

    /// The final layer: 2-way adaLN modulation (shift, scale) and the output projection to mels.
    public var finalAdaLN: Linear { linear("final_layer.adaLN_modulation.1", out: 2 * h, in: h) }
    public var finalLinear: Linear { linear("final_layer.linear", out: config.inputSize, in: h) }

    /// Every tensor, in the order the converter writes them.
    public var all: [TensorSpec] {
        var out = timeEmbedding.0.all + timeEmbedding.1.all + [semanticEmbedding] + inputLinear.all
        for i in 0 ..< config.depth { out += block(i).all }
        return out + finalAdaLN.all + finalLinear.all
    }
}
