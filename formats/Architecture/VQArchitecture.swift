// The GLM-4-Voice speech tokenizer (WhisperVQEncoder, docs/ARCHITECTURE.md §1.8): the Whisper encoder layers up to
// `quantize_position`, average pooling, and a nearest-codebook-entry lookup.

/// `glm-4-voice-tokenizer/config.json`: the Whisper encoder fields plus the VQ fields of
/// `WhisperVQConfig`. Defaults are those of `WhisperVQConfig.__init__` in GLM-4-Voice's
/// speech_tokenizer/configuration_whisper.py (as copied in yangdongchao/RSTnet
/// MLLM_v2/tools/tokenizer/GLM4V/configuration_whisper.py); `quantize_position`,
/// `pooling_position` and `quantize_vocab_size` are required, because the tensor layout
/// depends on them.
public struct VQConfig: Sendable, Equatable {
    public let encoder: WhisperEncoderConfig
    /// Layers run before pooling and quantization (the layers that are stored).
    public let quantizePosition: Int
    public let poolingPosition: Int
    public let quantizeVocabSize: Int
    /// Frames averaged into one token (4: 50 Hz → 12.5 Hz); nil (the official default) = no pooling.
    public let poolingKernelSize: Int?
    /// "avg" in the release; official default "max".
    public let poolingType: String
    /// true in the release: only `quantize_position` layers exist, no final LayerNorm.
    public let quantizeEncoderOnly: Bool
    /// Left-padded (causal) conv1/conv2 (true in the release).
    public let causalConvolution: Bool
    public let causalAttention: Bool
    /// Block-causal attention with bidirectional blocks of `quantize_causal_block_size` frames.
    public let quantizeCausalEncoder: Bool
    public let quantizeCausalBlockSize: Int?

    public init(json: JSONValue, file: String) throws {
        let c = ConfigReader(json, file: file)
        quantizePosition = try c.int("quantize_position")
        poolingPosition = try c.int("pooling_position")
        guard poolingPosition == quantizePosition else {
            throw FormatError(
                file,
                "pooling_position \(poolingPosition) differs from quantize_position \(quantizePosition) (not the GLM-4-Voice tokenizer layout)"
            )
        }
        quantizeVocabSize = try c.int("quantize_vocab_size")
        encoder = try WhisperEncoderConfig(json: json, file: file)
        guard quantizePosition <= encoder.encoderLayers else {
            throw FormatError(
                file,
                "config value 'quantize_position' is \(quantizePosition), more than the \(encoder.encoderLayers) encoder_layers"
            )
        }
        poolingKernelSize = c.has("pooling_kernel_size") ? try c.int("pooling_kernel_size") : nil
        poolingType = c.string("pooling_type") ?? "max"
        guard poolingType == "avg" || poolingType == "max" else {
            throw FormatError(file, "config value 'pooling_type' is '\(poolingType)', not avg or max")
        }
        quantizeEncoderOnly = c.bool("quantize_encoder_only", default: false)
        causalConvolution = c.bool("encoder_causal_convolution", default: false)
        causalAttention = c.bool("encoder_causal_attention", default: false)
        quantizeCausalEncoder = c.bool("quantize_causal_encoder", default: false)
        quantizeCausalBlockSize =
            c.has("quantize_causal_block_size") ? try c.int("quantize_causal_block_size") : nil
    }
}

/// The tensors of the VQ encoder (component `vq`): the encoder layers up to `quantize_position`,
/// no final LayerNorm, and the codebook (kept exact: the token is an argmin of distances).
public struct VQTensors: Sendable {
    public let config: VQConfig
    public let encoder: WhisperEncoderTensors

    public init(_ config: VQConfig) {
        self.config = config
        encoder = WhisperEncoderTensors(
            component: "vq", config: config.encoder, layers: config.quantizePosition, finalNorm: false)
    }

    public var codebook: TensorSpec {
        encoder.spec("codebook.weight", [config.quantizeVocabSize, config.encoder.dModel], .codebook)
    }

    public var all: [TensorSpec] { encoder.all + [codebook] }
}
