import KAF

#if canImport(Glibc)
import Glibc
#endif

/// The input folder as downloaded: a Kimi-Audio release (MoonshotKimiaForCausalLM), a plain
/// Hugging Face Qwen2 checkpoint, or a Hugging Face Whisper checkpoint.
public struct ReleaseFolder {
    public enum Kind: String, Sendable {
        case kimiAudio = "kimi-audio"
        case qwen2, whisper
    }

    public let path: String
    public let kind: Kind
    public let config: JSONValue
    /// GLM-4-Voice tokenizer folder (`--vq-tokenizer`, else IN/glm-4-voice-tokenizer).
    public let vqTokenizer: String?

    public init(path: String, vqTokenizer: String? = nil) throws {
        var isDir = stat()
        guard stat(path, &isDir) == 0 else { throw FormatError(path, "no such folder") }
        guard (isDir.st_mode & S_IFMT) == S_IFDIR else {
            throw FormatError(path, "not a folder (give the release folder as downloaded)")
        }
        self.path = path
        let cfgPath = path + "/config.json"
        guard fileExists(cfgPath) else { throw FormatError(cfgPath, "missing: the release folder has no config.json") }
        config = try JSONValue.parse(contentsOf: cfgPath)
        let arch = config["architectures"]?.arrayValue?.first?.stringValue ?? ""
        switch arch {
        case "MoonshotKimiaForCausalLM": kind = .kimiAudio
        case "Qwen2ForCausalLM": kind = .qwen2
        case "WhisperForConditionalGeneration", "WhisperModel": kind = .whisper
        default:
            throw FormatError(
                cfgPath,
                "unknown architecture '\(arch)' (expected MoonshotKimiaForCausalLM, Qwen2ForCausalLM or WhisperForConditionalGeneration)"
            )
        }
        if let v = vqTokenizer {
            self.vqTokenizer = v
        } else {
            let sub = path + "/glm-4-voice-tokenizer"
            self.vqTokenizer = fileExists(sub + "/config.json") ? sub : nil
        }
    }

    /// Components this kind of folder can provide, in file order.
    public var availableComponents: [String] {
        switch kind {
        case .kimiAudio: return ["llm", "mimo", "whisper", "vq", "dit", "vocoder"]
        case .qwen2: return ["llm"]
        case .whisper: return ["whisper"]
        }
    }

    public func file(_ rel: String) -> String { path + "/" + rel }
}

func fileExists(_ path: String) -> Bool {
    var st = stat()
    return stat(path, &st) == 0
}

/// Checks a source tensor's shape against what the config implies.
func expectShape(_ p: any TensorProducer, _ shape: [Int], name: String, file: String) throws {
    guard p.shape == shape else {
        throw FormatError(file, "tensor '\(name)' has shape \(p.shape), but the config implies \(shape)")
    }
}
