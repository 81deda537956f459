import KAF

/// The audio detokenizer: the flow-matching DiT (`audio_detokenizer/model.pt`, `state_dict`,
/// prefix `speech_model.`, docs/ARCHITECTURE.md §1.9) and the BigVGAN vocoder (`vocoder/model.pt`, `generator`, weight
/// norm folded here, docs/ARCHITECTURE.md §1.10).
public enum DetokenizerConverter {
    public static func planDiT(release: ReleaseFolder, policy: PrecisionPolicy) throws -> ComponentPlan {
        let (yamlPath, ptPath) = try files(
            release, "audio_detokenizer", config: "config.yaml",
            configFor: "the detokenizer config is needed for the DiT",
            weightsFor: "the DiT weights are needed for audio output (or leave out dit with --components)")
        let yaml = try YAMLDocument.load(path: yamlPath)
        let table = DiTTensors(try DiTConfig(yaml: yaml, file: yamlPath))
        let ckpt = try TorchCheckpoint(path: ptPath)
        let all = try ckpt.stateDict(at: ["state_dict"])
        let prefix = DiTTensors.sourcePrefix
        var byName: [String: TorchTensor] = [:]
        for (n, t) in all where n.hasPrefix(prefix) { byName[n] = t }
        var used = Set<String>()
        var plan = ComponentPlan(name: "dit")
        for spec in table.all {
            guard let t = byName[spec.source] else {
                throw FormatError(ptPath, "missing tensor 'state_dict/\(spec.source)' (expected by config.yaml)")
            }
            used.insert(spec.source)
            try plan.add(
                spec, try StoredTensor(t, name: spec.source, file: ptPath), sourceName: spec.source, policy: policy)
        }
        for n in byName.keys.sorted() where !used.contains(n) {
            throw FormatError(ptPath, "unexpected tensor 'state_dict/\(n)' (not part of the DiT in config.yaml)")
        }
        for (n, _) in all where !n.hasPrefix(prefix) {
            plan.drop("model.pt:state_dict/\(n)", "not under speech_model. (the official loader ignores it)")
        }
        plan.drop("model.pt:(all other top-level entries)", "only state_dict/speech_model.* is read")
        plan.meta = ["config": yaml]
        plan.files = [yamlPath, ptPath]
        return plan
    }

    public static func planVocoder(release: ReleaseFolder, policy: PrecisionPolicy) throws -> ComponentPlan {
        let (cfgPath, ptPath) = try files(
            release, "vocoder", config: "config.json", configFor: "the vocoder config is needed for audio output",
            weightsFor: "the vocoder weights are needed for audio output (or leave out vocoder with --components)")
        let cfg = try JSONValue.parse(contentsOf: cfgPath)
        let table = VocoderTensors(try VocoderConfig(json: cfg, file: cfgPath))
        let ckpt = try TorchCheckpoint(path: ptPath)
        let sd = try ckpt.stateDict(at: ["generator"])
        var byName: [String: StoredTensor] = [:]
        for (n, t) in sd { byName[n] = try StoredTensor(t, name: n, file: ptPath) }
        var used = Set<String>()
        var plan = ComponentPlan(name: "vocoder")
        func stored(_ n: String) -> StoredTensor? {
            if byName[n] != nil { used.insert(n) }
            return byName[n]
        }
        for spec in table.all {
            let n = spec.source
            let producer: any TensorProducer
            if let t = stored(n) {
                producer = t
            } else if VocoderTensors.isWeightNormed(spec) {
                let base = String(n.dropLast(".weight".count))
                switch (stored(base + ".weight_g"), stored(base + ".weight_v")) {
                case (let g?, let v?): producer = try WeightNormFold(g: g, v: v)
                case (nil, _?): throw FormatError(ptPath, "'\(base).weight_v' has no matching '\(base).weight_g'")
                case (_?, nil): throw FormatError(ptPath, "'\(base).weight_g' has no matching weight_v")
                case (nil, nil):
                    throw FormatError(
                        ptPath, "missing tensor 'generator/\(base).weight_{g,v}' (expected by config.json)")
                }
            } else {
                throw FormatError(ptPath, "missing tensor 'generator/\(n)' (expected by config.json)")
            }
            try plan.add(spec, producer, sourceName: n, policy: policy)
        }
        for (n, _) in sd where !used.contains(n) {
            throw FormatError(ptPath, "unexpected tensor 'generator/\(n)' (not part of the vocoder in config.json)")
        }
        plan.meta = ["config": cfg, "weight_norm": "folded at conversion"]
        plan.files = [cfgPath, ptPath]
        return plan
    }

    /// The config and `model.pt` of the release's `folder`, each required ("missing: …" naming it).
    static func files(
        _ release: ReleaseFolder, _ folder: String, config: String, configFor: String, weightsFor: String
    ) throws -> (config: String, weights: String) {
        let cfg = release.file(folder + "/" + config), pt = release.file(folder + "/model.pt")
        guard fileExists(cfg) else { throw FormatError(cfg, "missing: " + configFor) }
        guard fileExists(pt) else { throw FormatError(pt, "missing: " + weightsFor) }
        return (cfg, pt)
    }
}
