import KAF

/// The audio LLM (Kimi-Audio: Qwen2 trunk + MIMO branch + VQ adaptor + two heads), or a plain
/// Qwen2 model. Source names follow the Hugging Face modeling file (spec §3.2); .kaf names drop the
/// `model.` prefix under component `llm`, and the MIMO branch becomes its own component `mimo`.
public enum LLMConverter {
    static let layerTensors: [(String, PrecisionPolicy.Role)] = [
        ("input_layernorm.weight", .vector), ("post_attention_layernorm.weight", .vector),
        ("self_attn.q_proj.weight", .linear), ("self_attn.q_proj.bias", .vector),
        ("self_attn.k_proj.weight", .linear), ("self_attn.k_proj.bias", .vector),
        ("self_attn.v_proj.weight", .linear), ("self_attn.v_proj.bias", .vector),
        ("self_attn.o_proj.weight", .linear),
        ("mlp.gate_proj.weight", .linear), ("mlp.up_proj.weight", .linear), ("mlp.down_proj.weight", .linear),
    ]

    static func layerShapes(hidden d: Int, heads: Int, kvHeads: Int, ffn: Int) -> [String: [Int]] {
        let hd = d / heads, kv = kvHeads * hd
        return ["input_layernorm.weight": [d], "post_attention_layernorm.weight": [d],
                "self_attn.q_proj.weight": [d, d], "self_attn.q_proj.bias": [d],
                "self_attn.k_proj.weight": [kv, d], "self_attn.k_proj.bias": [kv],
                "self_attn.v_proj.weight": [kv, d], "self_attn.v_proj.bias": [kv],
                "self_attn.o_proj.weight": [d, d],
                "mlp.gate_proj.weight": [ffn, d], "mlp.up_proj.weight": [ffn, d], "mlp.down_proj.weight": [d, ffn]]
    }

    /// Plans `llm` (and `mimo` when asked and present).
    public static func plan(_ release: ReleaseFolder, policy: PrecisionPolicy, withMimo: Bool, withLLM: Bool = true) throws -> [ComponentPlan] {
        let cfgFile = release.file("config.json")
        let c = release.config
        let d = try configInt(c, "hidden_size", file: cfgFile)
        let heads = try configInt(c, "num_attention_heads", file: cfgFile)
        let kvHeads = try configInt(c, "num_key_value_heads", file: cfgFile)
        let ffn = try configInt(c, "intermediate_size", file: cfgFile)
        let layers = try configInt(c, "num_hidden_layers", file: cfgFile)
        let vocab = try configInt(c, "vocab_size", file: cfgFile)
        guard d > 0, heads > 0, d % heads == 0, kvHeads > 0, heads % kvHeads == 0, layers > 0, vocab > 0, ffn > 0 else {
            throw FormatError(cfgFile, "inconsistent sizes (hidden \(d), heads \(heads), kv heads \(kvHeads), layers \(layers))")
        }
        let isKimi = release.kind == .kimiAudio
        let mimoLayers = isKimi ? try configInt(c, "kimia_mimo_layers", file: cfgFile) : 0
        let adaptorIn = isKimi ? try configInt(c, "kimia_adaptor_input_dim", file: cfgFile) : 0
        let tied = c["tie_word_embeddings"]?.boolValue ?? false

        let ckpt = try SafetensorsCheckpoint(path: release.path)
        var used = Set<String>()
        func source(_ name: String) throws -> StoredTensor {
            guard let t = ckpt[name] else {
                throw FormatError(release.path, "missing tensor '\(name)' (expected by config.json)")
            }
            used.insert(name)
            return try StoredTensor(t)
        }
        let shapes = layerShapes(hidden: d, heads: heads, kvHeads: kvHeads, ffn: ffn)

        var llm = ComponentPlan(name: "llm")
        var mimo = ComponentPlan(name: "mimo")
        func addLayer(_ plan: inout ComponentPlan, src: String, dst: String) throws {
            for (n, role) in layerTensors {
                let t = try source("\(src).\(n)")
                try expectShape(t, shapes[n]!, name: "\(src).\(n)", file: t.file)
                plan.add("\(dst).\(n)", t, role: role, policy: policy)
            }
        }
        if withLLM {
            let e = try source("model.embed_tokens.weight")
            try expectShape(e, [vocab, d], name: "model.embed_tokens.weight", file: e.file)
            llm.add("llm.embed_tokens.weight", e, role: .embedding, policy: policy)
            for i in 0 ..< layers { try addLayer(&llm, src: "model.layers.\(i)", dst: "llm.layers.\(i)") }
            let n = try source("model.norm.weight")
            try expectShape(n, [d], name: "model.norm.weight", file: n.file)
            llm.add("llm.norm.weight", n, role: .vector, policy: policy)
            if !tied || ckpt.contains("lm_head.weight") {
                let h = try source("lm_head.weight")
                try expectShape(h, [vocab, d], name: "lm_head.weight", file: h.file)
                llm.add("llm.lm_head.weight", h, role: .head, policy: policy)
            }
            if isKimi {
                for (i, shape) in [(0, [d, adaptorIn]), (3, [d, d])] {
                    let w = try source("model.vq_adaptor.layers.\(i).weight"), b = try source("model.vq_adaptor.layers.\(i).bias")
                    try expectShape(w, shape, name: "model.vq_adaptor.layers.\(i).weight", file: w.file)
                    try expectShape(b, [d], name: "model.vq_adaptor.layers.\(i).bias", file: b.file)
                    llm.add("llm.vq_adaptor.layers.\(i).weight", w, role: .adaptor, policy: policy)
                    llm.add("llm.vq_adaptor.layers.\(i).bias", b, role: .vector, policy: policy)
                }
                for n in ["weight", "bias"] {
                    let t = try source("model.vq_adaptor.layers.4.\(n)")
                    try expectShape(t, [d], name: "model.vq_adaptor.layers.4.\(n)", file: t.file)
                    llm.add("llm.vq_adaptor.layers.4.\(n)", t, role: .vector, policy: policy)
                }
            }
            var cfg = c.objectValue ?? [:]
            cfg["tie_word_embeddings"] = .bool(tied && !ckpt.contains("lm_head.weight"))
            llm.meta = ["config": .object(cfg)]
            llm.files = [release.file("config.json")] + ckpt.files.map(\.path)
        }
        if withMimo && isKimi {
            for j in 0 ..< mimoLayers { try addLayer(&mimo, src: "model.mimo_layers.\(j)", dst: "mimo.layers.\(j)") }
            let n = try source("model.mimo_norm.weight")
            try expectShape(n, [d], name: "model.mimo_norm.weight", file: n.file)
            mimo.add("mimo.norm.weight", n, role: .vector, policy: policy)
            let h = try source("mimo_output.weight")
            try expectShape(h, [vocab, d], name: "mimo_output.weight", file: h.file)
            mimo.add("mimo.output.weight", h, role: .head, policy: policy)
            mimo.meta = ["config": ["layers": .int(Int64(mimoLayers)),
                                    "from_layer_index": c["kimia_mimo_transformer_from_layer_index"] ?? .null]]
        }

        // Everything else in the checkpoint: dropped with a reason, or an error if unknown.
        var target = withLLM ? llm : mimo
        for t in ckpt.tensors where !used.contains(t.name) {
            if t.name.hasSuffix("rotary_emb.inv_freq") {
                target.drop("\(basename(t.path)):\(t.name)", "RoPE buffer, recomputed from rope_theta")
            } else if t.name.hasPrefix("model.mimo_") || t.name == "mimo_output.weight" {
                if withMimo { throw FormatError(t.path, "unexpected tensor '\(t.name)' (config.json has \(mimoLayers) MIMO layers)") }
                target.drop("\(basename(t.path)):\(t.name)", "MIMO branch not requested (--components)")
            } else if !withLLM && (t.name.hasPrefix("model.") || t.name == "lm_head.weight") {
                target.drop("\(basename(t.path)):\(t.name)", "llm not requested (--components)")
            } else {
                throw FormatError(t.path, "unexpected tensor '\(t.name)' (not part of the \(release.kind.rawValue) architecture in config.json)")
            }
        }
        if withLLM { llm = target } else { mimo = target }
        var out: [ComponentPlan] = []
        if withLLM { out.append(llm) }
        if withMimo && isKimi { out.append(mimo) }
        return out
    }
}
