import KAF

/// The audio LLM (Kimi-Audio: Qwen2 trunk + MIMO branch + VQ adaptor + two heads), or a plain
/// Qwen2 model. Source names follow the Hugging Face modeling file (docs/ARCHITECTURE.md §5.2); .kaf names drop the
/// `model.` prefix under component `llm`, and the MIMO branch becomes its own component `mimo`.
public enum LLMConverter {
    /// Plans `llm` (and `mimo` when asked and present) from the table in
    /// formats/Architecture/LLMArchitecture.swift.
    public static func plan(_ release: ReleaseFolder, policy: PrecisionPolicy, withMimo: Bool, withLLM: Bool = true)
        throws
        -> [ComponentPlan]
    {
        let c = try LLMConfig(json: release.config, file: release.file("config.json"))
        let arch = LLMArchitecture(c)
        let isKimi = release.kind == .kimiAudio
        let ckpt = try SafetensorsCheckpoint(path: release.path)
        var used = Set<String>()
        func add(_ spec: TensorSpec, to plan: inout ComponentPlan) throws {
            guard let t = ckpt[spec.source] else {
                throw FormatError(release.path, "missing tensor '\(spec.source)' (expected by config.json)")
            }
            used.insert(spec.source)
            try plan.add(spec, try StoredTensor(t), sourceName: spec.source, policy: policy)
        }

        var llm = ComponentPlan(name: "llm")
        var mimo = ComponentPlan(name: "mimo")
        if withLLM {
            let storesHead = !c.tiedEmbeddings || ckpt.contains(arch.lmHead.source)
            for spec in arch.llmTensors(withHead: storesHead) { try add(spec, to: &llm) }
            var cfg = release.config.objectValue ?? [:]
            cfg["tie_word_embeddings"] = .bool(!storesHead)
            llm.meta = ["config": .object(cfg)]
            llm.files = [release.file("config.json")] + ckpt.files.map(\.path)
        }
        let mimoLayers = c.mimoLayers
        if withMimo && isKimi {
            for spec in arch.mimoTensors { try add(spec, to: &mimo) }
            // Informational: the runtime reads both values from components.llm.config.
            mimo.meta = ["config": ["layers": .int(Int64(mimoLayers)), "from_layer_index": .int(Int64(c.mimoFrom))]]
        }

        // Everything else in the checkpoint: dropped with a reason, or an error if unknown.
        var target = withLLM ? llm : mimo
        for t in ckpt.tensors where !used.contains(t.name) {
            if t.name.hasSuffix("rotary_emb.inv_freq") {
                target.drop("\(basename(t.path)):\(t.name)", "RoPE buffer, recomputed from rope_theta")
            } else if t.name.hasPrefix("model.mimo_") || t.name == "mimo_output.weight" {
                if withMimo {
                    throw FormatError(
                        t.path, "unexpected tensor '\(t.name)' (config.json has \(mimoLayers) MIMO layers)")
                }
                target.drop("\(basename(t.path)):\(t.name)", "MIMO branch not requested (--components)")
            } else if !withLLM && (t.name.hasPrefix("model.") || t.name == "lm_head.weight") {
                target.drop("\(basename(t.path)):\(t.name)", "llm not requested (--components)")
            } else {
                throw FormatError(
                    t.path,
                    "unexpected tensor '\(t.name)' (not part of the \(release.kind.rawValue) architecture in config.json)"
                )
            }
        }
        if withLLM { llm = target } else { mimo = target }
        var out: [ComponentPlan] = []
        if withLLM { out.append(llm) }
        if withMimo && isKimi { out.append(mimo) }
        return out
    }
}
