// The Whisper-style audio encoder (docs/ARCHITECTURE.md §1.7): the Whisper-large-v3 encoder (component `whisper`)
// and the layers of the GLM-4-Voice WhisperVQEncoder that run before quantization (component
// `vq`, docs/ARCHITECTURE.md §1.8, VQArchitecture.swift) share this table.

/// The encoder fields of a Hugging Face `WhisperConfig` (config.json), checked once.
public struct WhisperEncoderConfig: Sendable, Equatable {
    public let dModel: Int
    /// `encoder_layers`: the layers the config describes (the VQ encoder runs fewer).
    public let encoderLayers: Int
    public let heads: Int
    public let ffnDim: Int
    public let melBins: Int
    public let maxSourcePositions: Int

    public var headDim: Int { dModel / heads }

    public init(json: JSONValue, file: String) throws {
        let c = ConfigReader(json, file: file)
        encoderLayers = try c.int("encoder_layers")
        dModel = try c.int("d_model")
        ffnDim = try c.int("encoder_ffn_dim")
        melBins = try c.int("num_mel_bins")
        maxSourcePositions = try c.int("max_source_positions")
        heads = try c.int("encoder_attention_heads")
        guard dModel % heads == 0 else {
            throw FormatError(file, "inconsistent sizes (d_model \(dModel), heads \(heads), layers \(encoderLayers))")
        }
    }
}

/// The tensors of a Whisper-style encoder: conv1/conv2, learned positions, pre-LN layers with a
/// bias-free `k_proj`, and (Whisper only) the final LayerNorm. `.kaf` names are
/// `<component>.<release name>`; `source` is the release name after the checkpoint's
/// `model.encoder.`/`encoder.` prefix (the converter finds that prefix).
public struct WhisperEncoderTensors: Sendable {
    public let component: String
    public let config: WhisperEncoderConfig
    /// The layers that are run (and stored): `encoder_layers` for Whisper, `quantize_position`
    /// for the VQ encoder.
    public let layerCount: Int
    public let hasFinalNorm: Bool

    public init(component: String, config: WhisperEncoderConfig, layers: Int, finalNorm: Bool) {
        self.component = component
        self.config = config
        self.layerCount = layers
        self.hasFinalNorm = finalNorm
    }

    /// One tensor, named `<component>.<rel>` in the .kaf and `rel` in the release.
    func spec(_ rel: String, _ shape: [Int], _ role: TensorRole) -> TensorSpec {
        TensorSpec("\(component).\(rel)", source: rel, shape, role)
    }

    public var conv1: TensorSpec { spec("conv1.weight", [config.dModel, config.melBins, 3], .convolution) }
    public var conv1Bias: TensorSpec { spec("conv1.bias", [config.dModel], .vector) }
    public var conv2: TensorSpec { spec("conv2.weight", [config.dModel, config.dModel, 3], .convolution) }
    public var conv2Bias: TensorSpec { spec("conv2.bias", [config.dModel], .vector) }
    public var positions: TensorSpec {
        spec("embed_positions.weight", [config.maxSourcePositions, config.dModel], .positions)
    }
    /// The final LayerNorm (weight, bias), when the encoder applies one.
    public var finalNorm: (weight: TensorSpec, bias: TensorSpec)? {
        guard hasFinalNorm else { return nil }
        return (spec("layer_norm.weight", [config.dModel], .vector), spec("layer_norm.bias", [config.dModel], .vector))
    }

    /// The tensors of layer `i` (pre-LN: `x += out(Attn(LN1 x))`, `x += fc2(GELU(fc1(LN2 x)))`).
    public struct Layer: Sendable {
        public let q, qBias, k, v, vBias, out, outBias: TensorSpec
        public let attnNorm, attnNormBias: TensorSpec
        public let fc1, fc1Bias, fc2, fc2Bias: TensorSpec
        public let ffnNorm, ffnNormBias: TensorSpec

        /// In the release's order.
        public var all: [TensorSpec] {
            [
                q, qBias, k, v, vBias, out, outBias, attnNorm, attnNormBias, fc1, fc1Bias, fc2, fc2Bias, ffnNorm,
                ffnNormBias,
            ]
        }
    }

    public func layer(_ i: Int) -> Layer {
        let d = config.dModel, f = config.ffnDim
        func s(_ rel: String, _ shape: [Int], _ role: TensorRole) -> TensorSpec {
            spec("layers.\(i).\(rel)", shape, role)
        }
        return Layer(
            q: s("self_attn.q_proj.weight", [d, d], .encoderLinear), qBias: s("self_attn.q_proj.bias", [d], .vector),
            k: s("self_attn.k_proj.weight", [d, d], .encoderLinear),
            v: s("self_attn.v_proj.weight", [d, d], .encoderLinear), vBias: s("self_attn.v_proj.bias", [d], .vector),
            out: s("self_attn.out_proj.weight", [d, d], .encoderLinear),
            outBias: s("self_attn.out_proj.bias", [d], .vector),
            attnNorm: s("self_attn_layer_norm.weight", [d], .vector),
            attnNormBias: s("self_attn_layer_norm.bias", [d], .vector),
            fc1: s("fc1.weight", [f, d], .encoderLinear), fc1Bias: s("fc1.bias", [f], .vector),
            fc2: s("fc2.weight", [d, f], .encoderLinear), fc2Bias: s("fc2.bias", [d], .vector),
            ffnNorm: s("final_layer_norm.weight", [d], .vector), ffnNormBias: s("final_layer_norm.bias", [d], .vector))
    }

    /// Every tensor, in the order the converter writes them.
    public var all: [TensorSpec] {
        var out = [conv1, conv1Bias, conv2, conv2Bias, positions]
        for i in 0 ..< layerCount { out += layer(i).all }
        if let n = finalNorm { out += [n.weight, n.bias] }
        return out
    }
}

extension WhisperEncoderTensors {
    /// The Whisper-large-v3 encoder (component `whisper`): every layer, and the final LayerNorm.
    public init(whisper config: WhisperEncoderConfig) {
        self.init(component: "whisper", config: config, layers: config.encoderLayers, finalNorm: true)
    }
}

/// The decoder fields of a Hugging Face `WhisperConfig`, for plain Whisper checkpoints (the Kimi
/// release uses only the encoder).
public struct WhisperDecoderConfig: Sendable, Equatable {
    public let dModel, layers, heads, ffnDim, vocab, maxTargetPositions: Int

    public init(json: JSONValue, file: String) throws {
        let c = ConfigReader(json, file: file)
        dModel = try c.int("d_model")
        layers = try c.int("decoder_layers", in: 1 ... 1024)
        heads = try c.int("decoder_attention_heads")
        ffnDim = try c.int("decoder_ffn_dim")
        vocab = try c.int("vocab_size")
        maxTargetPositions = try c.int("max_target_positions")
        guard dModel % heads == 0 else {
            throw FormatError(file, "inconsistent sizes (d_model \(dModel), decoder heads \(heads), layers \(layers))")
        }
    }
}

/// The tensors of the Whisper decoder (transformers' `WhisperDecoder`): token and learned position
/// embeddings, pre-LN layers with self-attention, cross-attention over the encoder output and an
/// MLP (k_proj without bias in both attentions), and the final LayerNorm; the output projection is
/// the token embedding (tied). `.kaf` names are `<prefix>.<rel>`, `source` the name after the
/// checkpoint's `model.decoder.`/`decoder.` prefix.
public struct WhisperDecoderTensors: Sendable {
    public let prefix: String
    public let config: WhisperDecoderConfig

    public init(config: WhisperDecoderConfig, prefix: String = "whisper.decoder") {
        self.config = config
        self.prefix = prefix
    }

    func spec(_ rel: String, _ shape: [Int], _ role: TensorRole) -> TensorSpec {
        TensorSpec("\(prefix).\(rel)", source: rel, shape, role)
    }

    public var tokens: TensorSpec { spec("embed_tokens.weight", [config.vocab, config.dModel], .transcriptDecoder) }
    public var positions: TensorSpec {
        spec("embed_positions.weight", [config.maxTargetPositions, config.dModel], .positions)
    }
    public var finalNorm: (weight: TensorSpec, bias: TensorSpec) {
        (spec("layer_norm.weight", [config.dModel], .vector), spec("layer_norm.bias", [config.dModel], .vector))
    }
    /// An 8-bit copy of the tied token embedding for the output head (quantized files only): the
    /// head's logits come from it, and the rows within `WhisperDecoder.refineMargin` of the best are
    /// recomputed from the 16-bit embedding, so the greedy ids are those of the 16-bit head at about
    /// half its bytes per token. Not part of `all` (optional).
    public var headCopy: TensorSpec {
        TensorSpec("\(prefix).head.weight", source: "embed_tokens.weight", [config.vocab, config.dModel], .head)
    }

    /// One attention block of layer `i` (`self_attn` or `encoder_attn`) and its LayerNorm.
    public struct Attention: Sendable {
        public let q, qBias, k, v, vBias, out, outBias, norm, normBias: TensorSpec
        public var all: [TensorSpec] { [q, qBias, k, v, vBias, out, outBias, norm, normBias] }
    }

    public struct Layer: Sendable {
        public let selfAttention, crossAttention: Attention
        public let fc1, fc1Bias, fc2, fc2Bias, ffnNorm, ffnNormBias: TensorSpec
        public var all: [TensorSpec] {
            selfAttention.all + crossAttention.all + [fc1, fc1Bias, fc2, fc2Bias, ffnNorm, ffnNormBias]
        }
    }

    public func layer(_ i: Int) -> Layer {
        let d = config.dModel, f = config.ffnDim
        func s(_ rel: String, _ shape: [Int], _ role: TensorRole) -> TensorSpec {
            spec("layers.\(i).\(rel)", shape, role)
        }
        func attention(_ a: String) -> Attention {
            Attention(
                q: s("\(a).q_proj.weight", [d, d], .transcriptDecoder), qBias: s("\(a).q_proj.bias", [d], .vector),
                k: s("\(a).k_proj.weight", [d, d], .transcriptDecoder),
                v: s("\(a).v_proj.weight", [d, d], .transcriptDecoder), vBias: s("\(a).v_proj.bias", [d], .vector),
                out: s("\(a).out_proj.weight", [d, d], .transcriptDecoder),
                outBias: s("\(a).out_proj.bias", [d], .vector),
                norm: s("\(a)_layer_norm.weight", [d], .vector), normBias: s("\(a)_layer_norm.bias", [d], .vector))
        }
        return Layer(
            selfAttention: attention("self_attn"), crossAttention: attention("encoder_attn"),
            fc1: s("fc1.weight", [f, d], .transcriptDecoder), fc1Bias: s("fc1.bias", [f], .vector),
            fc2: s("fc2.weight", [d, f], .transcriptDecoder), fc2Bias: s("fc2.bias", [d], .vector),
            ffnNorm: s("final_layer_norm.weight", [d], .vector), ffnNormBias: s("final_layer_norm.bias", [d], .vector))
    }

    public var all: [TensorSpec] {
        [tokens, positions] + (0 ..< config.layers).flatMap { layer($0).all } + [finalNorm.weight, finalNorm.bias]
    }
}
