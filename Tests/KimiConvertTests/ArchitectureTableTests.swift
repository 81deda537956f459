import Foundation
import Testing

@testable import KAF
@testable import KimiConvert

/// The architecture tables (formats/Architecture) against the tiny release's checkpoints, read
/// through the readers, and their configs against bad values.
@Suite struct ArchitectureTableTests {
    static let whisperDir = Tiny.release + "/whisper-large-v3"
    static let vqDir = Tiny.release + "/glm-4-voice-tokenizer"

    static func json(_ path: String) throws -> JSONValue { try JSONValue.parse(contentsOf: path) }

    /// source name → shape, failing on a name listed twice.
    static func shapes(_ specs: [TensorSpec]) -> [String: [Int]] {
        var out: [String: [Int]] = [:]
        for s in specs {
            #expect(out[s.source] == nil, "\(s.source) listed twice")
            out[s.source] = s.shape
        }
        return out
    }

    /// The checkpoint's tensors (name → shape) after stripping the encoder prefix.
    static func encoderTensors(_ folder: String) throws -> [String: [Int]] {
        let ckpt = try SafetensorsCheckpoint(path: folder)
        let prefix = ["model.encoder.", "encoder.", ""].first { ckpt.contains($0 + "conv1.weight") }!
        var out: [String: [Int]] = [:]
        for t in ckpt.tensors where t.name.hasPrefix(prefix) { out[String(t.name.dropFirst(prefix.count))] = t.shape }
        return out
    }

    @Test func whisperTableIsTheCheckpointsEncoder() throws {
        let cfg = try WhisperEncoderConfig(json: Self.json(Self.whisperDir + "/config.json"), file: "config.json")
        let table = WhisperEncoderTensors(whisper: cfg)
        #expect(Self.shapes(table.all) == (try Self.encoderTensors(Self.whisperDir)))
        #expect(table.all.allSatisfy { $0.name == "whisper." + $0.source })
        #expect(table.layer(1).q.source == "layers.1.self_attn.q_proj.weight")
        #expect(table.layer(1).k.shape == [cfg.dModel, cfg.dModel])
        #expect(!table.all.contains { $0.source.hasSuffix("k_proj.bias") })
        #expect(table.finalNorm?.weight.source == "layer_norm.weight")
        #expect(table.layer(0).fc1.role == .encoderLinear && table.positions.role == .positions)
    }

    /// The decoder table (plain Whisper checkpoints) equals the checkpoint's `model.decoder.*`
    /// tensors (written by transformers' WhisperForConditionalGeneration).
    @Test func whisperDecoderTableIsTheCheckpointsDecoder() throws {
        let cfg = try WhisperDecoderConfig(json: Self.json(Self.whisperDir + "/config.json"), file: "config.json")
        let table = WhisperDecoderTensors(config: cfg)
        let ckpt = try SafetensorsCheckpoint(path: Self.whisperDir)
        var decoder: [String: [Int]] = [:]
        for t in ckpt.tensors where t.name.hasPrefix("model.decoder.") {
            decoder[String(t.name.dropFirst("model.decoder.".count))] = t.shape
        }
        #expect(!decoder.isEmpty)
        #expect(Self.shapes(table.all) == decoder)
        #expect(table.all.allSatisfy { $0.name == "whisper.decoder." + $0.source })
        #expect(table.layer(1).crossAttention.k.source == "layers.1.encoder_attn.k_proj.weight")
        #expect(
            table.tokens.role == .transcriptDecoder && table.positions.shape == [cfg.maxTargetPositions, cfg.dModel])
        #expect(table.layer(0).fc1.role == .transcriptDecoder)
    }

    @Test func vqTableIsTheCheckpointMinusTrainingBuffers() throws {
        let cfg = try VQConfig(json: Self.json(Self.vqDir + "/config.json"), file: "config.json")
        let table = VQTensors(cfg)
        var ckpt = try Self.encoderTensors(Self.vqDir)
        for n in ["ema_count", "ema_weight", "embed_positions2.weight"] { #expect(ckpt.removeValue(forKey: n) != nil) }
        #expect(Self.shapes(table.all) == ckpt)
        #expect(table.encoder.finalNorm == nil && table.encoder.layerCount == cfg.quantizePosition)
        #expect(table.codebook.name == "vq.codebook.weight" && table.codebook.role == .codebook)
        #expect(cfg.poolingKernelSize == 4 && cfg.poolingType == "avg" && cfg.quantizeEncoderOnly)
        #expect(cfg.causalConvolution && cfg.quantizeCausalBlockSize == 8)
    }

    @Test func ditTableIsTheCheckpointsSpeechModel() throws {
        let dir = Tiny.release + "/audio_detokenizer"
        let cfg = try DiTConfig(yaml: YAMLDocument.load(path: dir + "/config.yaml"), file: "config.yaml")
        let table = DiTTensors(cfg)
        let sd = try TorchCheckpoint(path: dir + "/model.pt").stateDict(at: ["state_dict"])
        let ckpt = Dictionary(
            uniqueKeysWithValues: sd.filter { $0.name.hasPrefix("speech_model.") }.map { ($0.name, $0.tensor.shape) })
        #expect(Self.shapes(table.all) == ckpt)
        #expect(table.all.allSatisfy { "speech_model." + $0.name.dropFirst("dit.".count) == $0.source })
        #expect(table.block(1).qkv.weight.shape == [3 * cfg.hiddenSize, cfg.hiddenSize])
        #expect(cfg.useRope == true && cfg.ropeBase == 10000 && cfg.positionEmbeddingType == "skip")
        #expect(cfg.normalizeMel == true && cfg.melStd == 3.4584913)
    }

    /// The table lists the folded form: each weight_g/weight_v pair becomes `.weight` with v's
    /// shape, at v's place in the checkpoint's order.
    @Test func vocoderTableIsTheFoldedGenerator() throws {
        let dir = Tiny.release + "/vocoder"
        let table = VocoderTensors(try VocoderConfig(json: Self.json(dir + "/config.json"), file: "config.json"))
        let sd = try TorchCheckpoint(path: dir + "/model.pt").stateDict(at: ["generator"])
        let folded: [(String, [Int])] = sd.compactMap { n, t in
            if n.hasSuffix(".weight_g") { return nil }
            return (n.hasSuffix(".weight_v") ? String(n.dropLast(2)) : n, t.shape)
        }
        #expect(table.all.map(\.source) == folded.map(\.0))
        #expect(table.all.map(\.shape) == folded.map(\.1))
        #expect(
            table.all.filter(VocoderTensors.isWeightNormed).count == sd.filter { $0.name.hasSuffix(".weight_g") }.count)
        let roles = Dictionary(uniqueKeysWithValues: table.all.map { ($0.source, $0.role) })
        #expect(roles["conv_pre.weight"] == .vocoder && roles["conv_pre.bias"] == .vector)
        #expect(roles["resblocks.3.activations.5.upsample.filter"] == .vector)
        #expect(roles["activation_post.act.beta"] == .vector && roles["conv_post.bias"] == nil)
    }

    // MARK: bad configs: one error naming the file and the key

    struct BadConfig: CustomTestStringConvertible, Sendable {
        let name: String
        let file: String  // under tiny-release
        let expect: [String]  // all in the message
        let edit: @Sendable (inout [String: JSONValue]) -> Void
        var testDescription: String { name }
    }

    static let badConfigs: [BadConfig] = [
        BadConfig(name: "negative d_model", file: "whisper-large-v3/config.json", expect: ["'d_model'", "-32"]) {
            $0["d_model"] = -32
        },
        BadConfig(
            name: "d_model not a multiple of heads", file: "whisper-large-v3/config.json",
            expect: ["d_model 32, heads 3"]
        ) {
            $0["encoder_attention_heads"] = 3
        },
        BadConfig(
            name: "no encoder_ffn_dim", file: "whisper-large-v3/config.json", expect: ["'encoder_ffn_dim' missing"]
        ) {
            $0["encoder_ffn_dim"] = nil
        },
        BadConfig(
            name: "pooling after quantization", file: "glm-4-voice-tokenizer/config.json",
            expect: ["pooling_position 3 differs from quantize_position 2"]
        ) {
            $0["pooling_position"] = 3
        },
        BadConfig(
            name: "quantize_position past the layers", file: "glm-4-voice-tokenizer/config.json",
            expect: ["'quantize_position'", "more than the 4"]
        ) {
            $0["quantize_position"] = 5
            $0["pooling_position"] = 5
        },
        BadConfig(
            name: "zero codebook", file: "glm-4-voice-tokenizer/config.json", expect: ["'quantize_vocab_size' is 0"]
        ) {
            $0["quantize_vocab_size"] = 0
        },
        BadConfig(
            name: "rates and kernels of different lengths", file: "vocoder/config.json",
            expect: ["'upsample_kernel_sizes' has 6 entries", "'upsample_rates' has 7"]
        ) {
            $0["upsample_kernel_sizes"] = [9, 4, 4, 4, 4, 5]
        },
        BadConfig(
            name: "a dilation list missing", file: "vocoder/config.json",
            expect: ["'resblock_dilation_sizes' has 3 entries"]
        ) {
            $0["resblock_dilation_sizes"] = [[1, 3, 5], [1, 3, 5], [1, 3, 5]]
        },
        BadConfig(name: "negative upsample rate", file: "vocoder/config.json", expect: ["'upsample_rates[2]' is -2"]) {
            $0["upsample_rates"] = [5, 2, -2, 2, 2, 3, 2]
        },
        BadConfig(
            name: "dilation not an integer", file: "vocoder/config.json",
            expect: ["'resblock_dilation_sizes[1][2]' is not an integer"]
        ) {
            $0["resblock_dilation_sizes"] = [[1, 3, 5], [1, 3, "5"], [1, 3, 5], [1, 3, 5]]
        },
        BadConfig(name: "too many halvings", file: "vocoder/config.json", expect: ["'upsample_initial_channel' is 96"])
        {
            $0["upsample_initial_channel"] = 96
        },
        BadConfig(name: "unknown activation", file: "vocoder/config.json", expect: ["'activation'"]) {
            $0["activation"] = "relu"
        },
        BadConfig(name: "resblock 3", file: "vocoder/config.json", expect: ["'resblock'"]) { $0["resblock"] = "3" },
        BadConfig(name: "no snake_logscale", file: "vocoder/config.json", expect: ["'snake_logscale' missing"]) {
            $0["snake_logscale"] = nil
        },
    ]

    @Test(arguments: badConfigs)
    func badConfigIsRejected(_ c: BadConfig) throws {
        let path = Tiny.release + "/" + c.file
        var obj = try Self.json(path).objectValue!
        c.edit(&obj)
        let json = JSONValue.object(obj)
        let err = #expect(throws: FormatError.self) {
            switch c.file {
            case "whisper-large-v3/config.json": _ = try WhisperEncoderConfig(json: json, file: path)
            case "glm-4-voice-tokenizer/config.json": _ = try VQConfig(json: json, file: path)
            default: _ = try VocoderConfig(json: json, file: path)
            }
        }
        #expect(err?.file == path)
        for s in c.expect { #expect(err?.message.contains(s) == true, "\(c.name): '\(err?.message ?? "")'") }
    }

    @Test func badDiTConfigNamesTheYAMLKey() throws {
        let path = Tiny.release + "/audio_detokenizer/config.yaml"
        let text = try String(contentsOfFile: path, encoding: .utf8)
        for (from, to, expect) in [
            ("hidden_size: 64", "hidden_size: -64", "'model.dit.hidden_size' is -64"),
            ("num_heads: 4", "num_heads: 5", "inconsistent DiT sizes (hidden 64, heads 5"),
            ("depth: 2", "depth: two", "'model.dit.depth' missing or not an integer"),
            ("ffn_type: vanilla_mlp", "ffn_type: swiglu", "'model.dit.ffn_type' is 'swiglu'"),
            ("rope_base: 10000.0", "rope_base: .nan", "'model.dit.rope_params.rope_base' is not a finite number"),
        ] {
            let yaml = try YAMLDocument.parse(text.replacingOccurrences(of: from, with: to), file: path)
            let err = #expect(throws: FormatError.self) { _ = try DiTConfig(yaml: yaml, file: path) }
            #expect(err?.file == path)
            #expect(err?.message.contains(expect) == true, "'\(err?.message ?? "")'")
        }
    }

    // MARK: the vocoder checkpoint is checked against its config

    /// A release whose vocoder/config.json is edited (the checkpoint stays as it is): planning the
    /// vocoder fails naming vocoder/model.pt.
    @Test(arguments: [
        ("num_mels", JSONValue.int(100), "config implies [128, 100, 7]"),
        ("use_bias_at_final", .bool(true), "missing tensor 'generator/conv_post.bias'"),
        ("activation", .string("snake"), "unexpected tensor 'generator/resblocks.0.activations.0.act.beta'"),
    ])
    func vocoderCheckpointDisagreeingWithConfig(_ key: String, _ value: JSONValue, _ expect: String) throws {
        let root = NSTemporaryDirectory() + "vocoder-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let fm = FileManager.default
        try fm.createDirectory(atPath: root + "/vocoder", withIntermediateDirectories: true)
        try fm.copyItem(atPath: Tiny.release + "/config.json", toPath: root + "/config.json")
        try fm.createSymbolicLink(
            atPath: root + "/vocoder/model.pt", withDestinationPath: Tiny.release + "/vocoder/model.pt")
        var cfg = try Self.json(Tiny.release + "/vocoder/config.json").objectValue!
        cfg[key] = value
        try JSONValue.object(cfg).serialized().write(
            toFile: root + "/vocoder/config.json", atomically: true, encoding: .utf8)
        let release = try ReleaseFolder(path: root)
        let policy = PrecisionPolicy(mode: .quantized(bits: 4, group: 32))
        let err = #expect(throws: FormatError.self) {
            _ = try DetokenizerConverter.planVocoder(release: release, policy: policy)
        }
        #expect(err?.file.hasSuffix("vocoder/model.pt") == true, "\(err?.file ?? "")")
        #expect(err?.message.contains(expect) == true, "'\(err?.message ?? "")'")
    }
}
