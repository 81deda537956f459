import KAF

/// Builds the whole plan from the command-line choices.
public struct ConvertOptions: Sendable {
    public var input: String
    public var policy: PrecisionPolicy
    /// Components to convert; nil = every component the input provides.
    public var components: [String]?
    public var vqTokenizer: String?

    public init(input: String, policy: PrecisionPolicy, components: [String]? = nil, vqTokenizer: String? = nil) {
        self.input = input
        self.policy = policy
        self.components = components
        self.vqTokenizer = vqTokenizer
    }
}

public enum Converter {
    public static let allComponents = ["llm", "mimo", "whisper", "vq", "dit", "vocoder"]

    public static func plan(_ o: ConvertOptions) throws -> ConversionPlan {
        let release = try ReleaseFolder(path: o.input, vqTokenizer: o.vqTokenizer)
        let available = release.availableComponents
        let wanted = o.components ?? available
        for c in wanted where !allComponents.contains(c) {
            throw FormatError(o.input, "unknown component '\(c)' (choose from \(allComponents.joined(separator: ",")))")
        }
        for c in wanted where !available.contains(c) {
            throw FormatError(
                o.input,
                "a \(release.kind.rawValue) folder has no '\(c)' component (it has \(available.joined(separator: ",")))"
            )
        }
        var comps: [ComponentPlan] = []
        let p = o.policy
        if wanted.contains("llm") || wanted.contains("mimo") {
            comps += try LLMConverter.plan(
                release, policy: p, withMimo: wanted.contains("mimo"), withLLM: wanted.contains("llm"))
        }
        if wanted.contains("whisper") {
            let folder = release.kind == .whisper ? release.path : release.file("whisper-large-v3")
            comps.append(
                try EncoderConverter.planWhisper(folder: folder, policy: p, decoder: whisperTranscribes(release)))
        }
        if wanted.contains("vq") {
            guard let vq = release.vqTokenizer else {
                throw FormatError(
                    o.input,
                    "no GLM-4-Voice tokenizer: pass --vq-tokenizer DIR (THUDM/glm-4-voice-tokenizer) or put it in \(release.file("glm-4-voice-tokenizer")), or leave out vq with --components"
                )
            }
            comps.append(try EncoderConverter.planVQ(folder: vq, policy: p))
        }
        if wanted.contains("whisper") || wanted.contains("vq") {
            var fe = ComponentPlan(name: "frontend")
            // Kimi's encoders take 128 mels; a plain Whisper checkpoint says how many (80 before large-v3).
            let mels =
                release.kind == .whisper
                ? try WhisperEncoderConfig(json: release.config, file: release.file("config.json")).melBins : 128
            guard (1 ... 512).contains(mels) else {
                throw FormatError(release.file("config.json"), "num_mel_bins \(mels) is not in 1...512")
            }
            let mel = ComputedTensor(
                shape: [mels, 201], values: MelFilters.slaney(nMels: mels),
                source: "computed: Slaney mel filters, 16 kHz, n_fft 400")
            fe.items.append(
                PlanItem(name: "frontend.mel_filters", producer: mel, target: .f32, reason: "front end: f32"))
            fe.meta = ["sample_rate": 16000, "n_fft": 400, "hop_length": 160, "n_mels": .int(Int64(mels))]
            comps.append(fe)
        }
        if wanted.contains("dit") { comps.append(try DetokenizerConverter.planDiT(release: release, policy: p)) }
        if wanted.contains("vocoder") {
            comps.append(try DetokenizerConverter.planVocoder(release: release, policy: p))
        }
        if release.kind == .kimiAudio && wanted.contains("llm") {
            comps.append(try TokenizerConverter.plan(release: release))
        }
        if release.kind == .qwen2 { comps.append(try TokenizerConverter.planHF(folder: release.path)) }
        if whisperTranscribes(release) && wanted.contains("whisper") {
            comps.append(try TokenizerConverter.planHF(folder: release.path, pattern: TokenizerConverter.gpt2Pattern))
        }
        // A glob that matches nothing is most likely a misspelt name ('whisper.encoder.*' for
        // 'whisper.layers.*'): without this the file is silently not what was asked for.
        for k in p.keeps where !comps.contains(where: { $0.items.contains { globMatch(k.glob, $0.name) } }) {
            let names = comps.lazy.flatMap(\.items).map(\.name)
            let example = names.first { $0.contains(".layers.") } ?? names.first ?? "?"
            throw FormatError(
                o.input,
                "--keep '\(k.glob)=\(k.type.name)' matches no tensor of the components converted (\(comps.map(\.name).joined(separator: ", "))); names look like \(example) (--dry-run lists them)"
            )
        }
        return ConversionPlan(
            components: comps, policy: p, sourceKind: release.kind.rawValue, sourceFolder: basename(o.input))
    }

    /// A plain Whisper folder with what transcription needs besides the weights (generation_config.json,
    /// tokenizer.json) keeps its decoder; without them (e.g. Kimi-Audio's whisper-large-v3/ on its own)
    /// it converts to an encoder-only file, as inside a Kimi-Audio release.
    static func whisperTranscribes(_ release: ReleaseFolder) -> Bool {
        release.kind == .whisper && fileExists(release.file("generation_config.json"))
            && fileExists(release.file("tokenizer.json"))
    }
}
