import KAF

/// What a .kaf file holds and what it can run: the data behind `kimi-run FILE info`.
public struct ModelSummary {
    public struct Component {
        public let name: String
        public var tensors = 0
        public var parameters = 0
        public var bytes = 0
        public var dtypes: [String: Int] = [:]  // dtype name → parameter count
        /// Lowest quantization SNR (dB) of a tensor of this component, from kaf.meta; nil when
        /// every tensor is stored exactly.
        public var worstSNR: (tensor: String, db: Double)? = nil
        public var bitsPerWeight: Double { parameters == 0 ? 0 : Double(bytes * 8) / Double(parameters) }
    }

    public let path: String
    public let fileSize: Int
    public let components: [Component]
    public let capabilities: [(task: String, available: Bool, needs: [String])]
    public let meta: JSONValue
    /// Every entry of the file, in file order.
    public let entries: [KAFEntry]

    /// The tasks of kimi-run and the components each needs.
    public static let tasks: [(String, [String])] = [
        ("chat (text→text)", ["llm"]),
        ("asr/ask (audio→text)", ["llm", "whisper", "vq"]),
        ("tts (text→audio)", ["llm", "mimo", "dit", "vocoder"]),
        ("talk (audio→audio)", ["llm", "mimo", "whisper", "vq", "dit", "vocoder"]),
    ]

    public init(_ f: KAFFile) {
        path = f.path
        fileSize = f.file.count
        meta = f.meta
        entries = f.entries
        var byName: [String: Component] = [:]
        for e in f.entries {
            let name = e.component
            var c = byName[name] ?? Component(name: name)
            c.tensors += 1
            c.bytes += e.storedSize
            if e.dtype.isFloat || e.dtype.isQuantized {
                c.parameters += e.elementCount
                c.dtypes[e.dtype.name, default: 0] += e.elementCount
            }
            if let db = f.meta["tensors"]?[e.name]?["snr_db"]?.doubleValue, db < (c.worstSNR?.db ?? .infinity) {
                c.worstSNR = (e.name, db)
            }
            byName[name] = c
        }
        components = byName.values.sorted { $0.name < $1.name }
        let present = Set(byName.keys)
        var caps = ModelSummary.tasks.map { (task, needs) in (task, needs.allSatisfy(present.contains), needs) }
        if present.contains("whisper") {
            // A plain Whisper file transcribes on its own when it kept the decoder (kimi-convert of a full HF folder).
            let decoder = f.meta["components"]?["whisper"]?["generation"] != nil && present.contains("tokenizer")
            caps.append(("asr (plain Whisper: audio→text)", decoder, ["the Whisper decoder", "tokenizer"]))
        }
        capabilities = caps
    }

    public var json: JSONValue {
        var comps: [String: JSONValue] = [:]
        for c in components {
            comps[c.name] = [
                "tensors": .int(Int64(c.tensors)), "parameters": .int(Int64(c.parameters)),
                "bytes": .int(Int64(c.bytes)), "bits_per_weight": .double(c.bitsPerWeight),
                "dtypes": .object(c.dtypes.mapValues { .int(Int64($0)) }),
                "worst_snr_db": c.worstSNR.map { ["tensor": .string($0.tensor), "db": .double($0.db)] } ?? .null,
            ]
        }
        var caps: [String: JSONValue] = [:]
        for c in capabilities { caps[c.task] = .bool(c.available) }
        return [
            "path": .string(path), "file_size": .int(Int64(fileSize)), "components": .object(comps),
            "capabilities": .object(caps), "meta": meta,
        ]
    }
}
