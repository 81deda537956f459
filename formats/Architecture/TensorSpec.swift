// The vocabulary of the architecture tables (docs/ARCHITECTURE.md §4.1, §5): each component's table
// lists its tensors as `TensorSpec`s derived from its typed config, and both the converter's plan
// and the runtime's loader walk that one table.

/// What a tensor is in its component; the precision policy picks its default type from this.
public enum TensorRole: String, Sendable {
    case vector  // norms, biases, scalars, gains
    case linear  // a 2-D weight multiplied with activations (decoder layers)
    case encoderLinear  // linear weights of the audio encoders (Whisper, VQ)
    case detokLinear  // linear weights of the DiT
    case embedding  // token-embedding tables (row lookups)
    case head  // the LLM's output heads
    case adaptor  // the VQ adaptor linears
    case positions  // learned position tables
    case codebook  // the VQ codebook (argmin of distances: keep exact)
    case convolution  // conv weights
    case vocoder  // everything of the vocoder
    case transcriptDecoder  // the plain Whisper decoder's matrices and tied embedding: its greedy ids are the transcript
}

/// One tensor of a component: its .kaf name, its name in the release checkpoint, its shape
/// (PyTorch order: [out, in] for a linear) and its role.
public struct TensorSpec: Sendable, Equatable {
    /// The name in the .kaf file, e.g. `llm.layers.0.self_attn.q_proj.weight`.
    public let name: String
    /// The name in the release's checkpoint, e.g. `model.layers.0.self_attn.q_proj.weight`.
    public let source: String
    public let shape: [Int]
    public let role: TensorRole

    public init(_ name: String, source: String, _ shape: [Int], _ role: TensorRole) {
        (self.name, self.source, self.shape, self.role) = (name, source, shape, role)
    }
}

/// Typed reads of one config object (a config.json, a YAML section, or a component's config in
/// kaf.meta). Every error names the file and the key; every integer is range-checked before
/// anything is sized from it.
public struct ConfigReader: Sendable {
    public let json: JSONValue
    public let file: String
    /// Prefix of the keys in messages (e.g. "model.dit." for a YAML section).
    public let keyPrefix: String

    public init(_ json: JSONValue, file: String, keyPrefix: String = "") {
        self.json = json
        self.file = file
        self.keyPrefix = keyPrefix
    }

    public func has(_ key: String) -> Bool { json[key] != nil && json[key] != .null }

    /// An integer in `range`.
    public func int(_ key: String, in range: ClosedRange<Int> = 1 ... (1 << 24)) throws -> Int {
        guard let v = json[key]?.intValue else {
            throw FormatError(file, "config value '\(keyPrefix)\(key)' missing or not an integer")
        }
        guard range.contains(v) else {
            throw FormatError(
                file, "config value '\(keyPrefix)\(key)' is \(v), outside \(range.lowerBound)...\(range.upperBound)")
        }
        return v
    }

    /// A finite number, or `fallback` when the key is absent.
    public func double(_ key: String, default fallback: Double? = nil) throws -> Double {
        guard let raw = json[key], raw != .null else {
            if let fallback { return fallback }
            throw FormatError(file, "config value '\(keyPrefix)\(key)' missing")
        }
        guard let v = raw.doubleValue, v.isFinite else {
            throw FormatError(file, "config value '\(keyPrefix)\(key)' is not a finite number")
        }
        return v
    }

    public func bool(_ key: String, default fallback: Bool) -> Bool { json[key]?.boolValue ?? fallback }

    public func string(_ key: String) -> String? { json[key]?.stringValue }
}
