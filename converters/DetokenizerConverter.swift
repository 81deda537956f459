import KAF

/// The audio detokenizer: the flow-matching DiT (`audio_detokenizer/model.pt`, `state_dict`,
/// prefix `speech_model.`, spec §8) and the BigVGAN vocoder (`vocoder/model.pt`, `generator`, weight
/// norm folded here, spec §9).
public enum DetokenizerConverter {
    public static func planDiT(release: ReleaseFolder, policy: PrecisionPolicy) throws -> ComponentPlan {
        let folder = release.file("audio_detokenizer")
        let yamlPath = folder + "/config.yaml", ptPath = folder + "/model.pt"
        guard fileExists(yamlPath) else { throw FormatError(yamlPath, "missing: the detokenizer config is needed for the DiT") }
        guard fileExists(ptPath) else { throw FormatError(ptPath, "missing: the DiT weights are needed for audio output (or leave out dit with --components)") }
        let yaml = try YAMLDocument.load(path: yamlPath)
        guard let dit = yaml["model"]?["dit"] else { throw FormatError(yamlPath, "no model.dit section") }
        func int(_ k: String) throws -> Int {
            guard let v = dit[k]?.intValue else { throw FormatError(yamlPath, "model.dit.\(k) missing or not an integer") }
            return v
        }
        let h = try int("hidden_size"), depth = try int("depth"), mels = try int("input_size"), vocab = try int("semantic_vocab_size")
        let heads = try int("num_heads")
        guard let ratio = dit["mlp_ratio"]?.doubleValue, ratio > 0, h > 0, heads > 0, h % heads == 0, depth > 0 else {
            throw FormatError(yamlPath, "inconsistent DiT sizes (hidden \(h), heads \(heads), depth \(depth))")
        }
        let ffn = Int(Double(h) * ratio)
        let ckpt = try TorchCheckpoint(path: ptPath)
        let all = try ckpt.stateDict(at: ["state_dict"])
        let prefix = "speech_model."
        var byName: [String: TorchTensor] = [:]
        for (n, t) in all where n.hasPrefix(prefix) { byName[String(n.dropFirst(prefix.count))] = t }
        var used = Set<String>()
        var plan = ComponentPlan(name: "dit")
        func add(_ n: String, _ shape: [Int], _ role: PrecisionPolicy.Role) throws {
            guard let t = byName[n] else { throw FormatError(ptPath, "missing tensor 'state_dict/\(prefix)\(n)' (expected by config.yaml)") }
            used.insert(n)
            let s = try StoredTensor(t, name: prefix + n, file: ptPath)
            try expectShape(s, shape, name: prefix + n, file: ptPath)
            plan.add("dit.\(n)", s, role: role, policy: policy)
        }
        try add("t_embedder.mlp.0.weight", [h, 256], .detokLinear); try add("t_embedder.mlp.0.bias", [h], .vector)
        try add("t_embedder.mlp.2.weight", [h, h], .detokLinear); try add("t_embedder.mlp.2.bias", [h], .vector)
        try add("semantic_token_embedding.weight", [vocab + 1, h], .embedding)
        try add("input_linear.weight", [h, mels], .detokLinear); try add("input_linear.bias", [h], .vector)
        for i in 0 ..< depth {
            let b = "blocks.\(i)."
            try add(b + "attn.qkv.weight", [3 * h, h], .detokLinear); try add(b + "attn.qkv.bias", [3 * h], .vector)
            try add(b + "attn.proj.weight", [h, h], .detokLinear); try add(b + "attn.proj.bias", [h], .vector)
            try add(b + "mlp.fc1.weight", [ffn, h], .detokLinear); try add(b + "mlp.fc1.bias", [ffn], .vector)
            try add(b + "mlp.fc2.weight", [h, ffn], .detokLinear); try add(b + "mlp.fc2.bias", [h], .vector)
            try add(b + "adaLN_modulation.1.weight", [6 * h, h], .detokLinear); try add(b + "adaLN_modulation.1.bias", [6 * h], .vector)
        }
        try add("final_layer.adaLN_modulation.1.weight", [2 * h, h], .detokLinear); try add("final_layer.adaLN_modulation.1.bias", [2 * h], .vector)
        try add("final_layer.linear.weight", [mels, h], .detokLinear); try add("final_layer.linear.bias", [mels], .vector)
        for n in byName.keys.sorted() where !used.contains(n) {
            throw FormatError(ptPath, "unexpected tensor 'state_dict/\(prefix)\(n)' (not part of the DiT in config.yaml)")
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
        let folder = release.file("vocoder")
        let cfgPath = folder + "/config.json", ptPath = folder + "/model.pt"
        guard fileExists(cfgPath) else { throw FormatError(cfgPath, "missing: the vocoder config is needed for audio output") }
        guard fileExists(ptPath) else { throw FormatError(ptPath, "missing: the vocoder weights are needed for audio output (or leave out vocoder with --components)") }
        let cfg = try JSONValue.parse(contentsOf: cfgPath)
        let ckpt = try TorchCheckpoint(path: ptPath)
        let sd = try ckpt.stateDict(at: ["generator"])
        var byName: [String: StoredTensor] = [:]
        for (n, t) in sd { byName[n] = try StoredTensor(t, name: n, file: ptPath) }
        var plan = ComponentPlan(name: "vocoder")
        for (n, t) in sd.map({ ($0.name, byName[$0.name]!) }) {
            if n.hasSuffix(".weight_g") { continue }
            if n.hasSuffix(".weight_v") {
                let base = String(n.dropLast(".weight_v".count))
                guard let g = byName[base + ".weight_g"] else { throw FormatError(ptPath, "'\(n)' has no matching '\(base).weight_g'") }
                plan.add("vocoder.\(base).weight", try WeightNormFold(g: g, v: t), role: .vocoder, policy: policy)
            } else {
                let role: PrecisionPolicy.Role = (t.shape.count <= 1 || n.hasSuffix(".filter") || n.contains(".act.")) ? .vector : .vocoder
                plan.add("vocoder.\(n)", t, role: role, policy: policy)
            }
        }
        for (n, _) in sd where n.hasSuffix(".weight_g") && byName[String(n.dropLast(2)) + "_v"] == nil {
            throw FormatError(ptPath, "'\(n)' has no matching weight_v")
        }
        guard !plan.items.isEmpty else { throw FormatError(ptPath, "generator holds no tensors") }
        plan.meta = ["config": cfg, "weight_norm": "folded at conversion"]
        plan.files = [cfgPath, ptPath]
        return plan
    }
}
