import KAF

/// Whisper-style audio encoders: the Whisper-large-v3 encoder (continuous features, component
/// `whisper`, spec §6.2) and the GLM-4-Voice WhisperVQEncoder (discrete tokens, component `vq`,
/// spec §7). Both have conv1/conv2, learned positions and pre-LN layers with a bias-free k_proj.
public enum EncoderConverter {
    static let layerTensors: [(String, PrecisionPolicy.Role, @Sendable (Int, Int) -> [Int])] = [
        ("self_attn.q_proj.weight", .encoderLinear, { d, _ in [d, d] }), ("self_attn.q_proj.bias", .vector, { d, _ in [d] }),
        ("self_attn.k_proj.weight", .encoderLinear, { d, _ in [d, d] }),
        ("self_attn.v_proj.weight", .encoderLinear, { d, _ in [d, d] }), ("self_attn.v_proj.bias", .vector, { d, _ in [d] }),
        ("self_attn.out_proj.weight", .encoderLinear, { d, _ in [d, d] }), ("self_attn.out_proj.bias", .vector, { d, _ in [d] }),
        ("self_attn_layer_norm.weight", .vector, { d, _ in [d] }), ("self_attn_layer_norm.bias", .vector, { d, _ in [d] }),
        ("fc1.weight", .encoderLinear, { d, f in [f, d] }), ("fc1.bias", .vector, { _, f in [f] }),
        ("fc2.weight", .encoderLinear, { d, f in [d, f] }), ("fc2.bias", .vector, { d, _ in [d] }),
        ("final_layer_norm.weight", .vector, { d, _ in [d] }), ("final_layer_norm.bias", .vector, { d, _ in [d] }),
    ]

    /// The Whisper encoder from `IN/whisper-large-v3/` (or IN itself for a plain HF Whisper).
    public static func planWhisper(folder: String, policy: PrecisionPolicy) throws -> ComponentPlan {
        let cfgFile = folder + "/config.json"
        guard fileExists(cfgFile) else { throw FormatError(cfgFile, "missing: the Whisper encoder folder has no config.json") }
        let cfg = try JSONValue.parse(contentsOf: cfgFile)
        let layers = try configInt(cfg, "encoder_layers", file: cfgFile)
        return try plan(component: "whisper", folder: folder, config: cfg, layers: layers, hasFinalNorm: true,
                        extra: [:], drops: ["model.decoder.", "decoder.", "proj_out."], policy: policy)
    }

    /// The GLM-4-Voice WhisperVQEncoder: only `quantize_position` layers exist, no final LayerNorm,
    /// plus the codebook.
    public static func planVQ(folder: String, policy: PrecisionPolicy) throws -> ComponentPlan {
        let cfgFile = folder + "/config.json"
        guard fileExists(cfgFile) else { throw FormatError(cfgFile, "missing: the GLM-4-Voice tokenizer folder has no config.json") }
        let cfg = try JSONValue.parse(contentsOf: cfgFile)
        let layers = try configInt(cfg, "quantize_position", file: cfgFile)
        let pooling = try configInt(cfg, "pooling_position", file: cfgFile)
        guard pooling == layers else {
            throw FormatError(cfgFile, "pooling_position \(pooling) differs from quantize_position \(layers) (not the GLM-4-Voice tokenizer layout)")
        }
        let vocabSize = try configInt(cfg, "quantize_vocab_size", file: cfgFile)
        let d = try configInt(cfg, "d_model", file: cfgFile)
        return try plan(component: "vq", folder: folder, config: cfg, layers: layers, hasFinalNorm: false,
                        extra: ["codebook.weight": ([vocabSize, d], .codebook)],
                        drops: ["ema_count", "ema_weight", "embed_positions2."], policy: policy)
    }

    static func plan(component: String, folder: String, config cfg: JSONValue, layers: Int, hasFinalNorm: Bool,
                     extra: [String: ([Int], PrecisionPolicy.Role)], drops: [String], policy: PrecisionPolicy) throws -> ComponentPlan {
        let cfgFile = folder + "/config.json"
        let d = try configInt(cfg, "d_model", file: cfgFile)
        let ffn = try configInt(cfg, "encoder_ffn_dim", file: cfgFile)
        let mels = try configInt(cfg, "num_mel_bins", file: cfgFile)
        let positions = try configInt(cfg, "max_source_positions", file: cfgFile)
        let heads = try configInt(cfg, "encoder_attention_heads", file: cfgFile)
        guard d > 0, heads > 0, d % heads == 0, layers > 0 else {
            throw FormatError(cfgFile, "inconsistent sizes (d_model \(d), heads \(heads), layers \(layers))")
        }
        let ckpt = try SafetensorsCheckpoint(path: folder)
        // Encoder keys may carry `model.encoder.` or `encoder.` (spec §2); GLM copies none.
        let prefixes = ["model.encoder.", "encoder.", ""]
        let prefix = prefixes.first { p in ckpt.contains(p + "conv1.weight") } ?? ""
        var used = Set<String>()
        func source(_ name: String) throws -> StoredTensor {
            guard let t = ckpt[prefix + name] else { throw FormatError(folder, "missing tensor '\(prefix + name)' (expected by config.json)") }
            used.insert(prefix + name)
            return try StoredTensor(t)
        }
        var plan = ComponentPlan(name: component)
        func add(_ name: String, _ shape: [Int], _ role: PrecisionPolicy.Role) throws {
            let t = try source(name)
            try expectShape(t, shape, name: prefix + name, file: t.file)
            plan.add("\(component).\(name)", t, role: role, policy: policy)
        }
        try add("conv1.weight", [d, mels, 3], .convolution); try add("conv1.bias", [d], .vector)
        try add("conv2.weight", [d, d, 3], .convolution); try add("conv2.bias", [d], .vector)
        try add("embed_positions.weight", [positions, d], .positions)
        for i in 0 ..< layers {
            for (n, role, shape) in layerTensors { try add("layers.\(i).\(n)", shape(d, ffn), role) }
        }
        if hasFinalNorm { try add("layer_norm.weight", [d], .vector); try add("layer_norm.bias", [d], .vector) }
        for (n, (shape, role)) in extra.sorted(by: { $0.key < $1.key }) { try add(n, shape, role) }

        for t in ckpt.tensors where !used.contains(t.name) {
            let rel = t.name.hasPrefix(prefix) ? String(t.name.dropFirst(prefix.count)) : t.name
            if drops.contains(where: { t.name.hasPrefix($0) || rel.hasPrefix($0) }) {
                plan.drop("\(basename(t.path)):\(t.name)", component == "vq" ? "training buffer / unused for token ids" : "Whisper decoder: not used")
            } else if rel.hasPrefix("layers."), let i = Int(rel.dropFirst(7).prefix { $0 != "." }), i >= layers {
                plan.drop("\(basename(t.path)):\(t.name)", "layer \(i) is past the \(layers) layers the model runs")
            } else if !hasFinalNorm && rel.hasPrefix("layer_norm.") {
                plan.drop("\(basename(t.path)):\(t.name)", "final LayerNorm not applied before quantization")
            } else {
                throw FormatError(t.path, "unexpected tensor '\(t.name)' (not part of the \(component) encoder in config.json)")
            }
        }
        var meta = cfg.objectValue ?? [:]
        meta["encoder_layers_run"] = .int(Int64(layers))
        let pre = folder + "/preprocessor_config.json"
        var files = [cfgFile] + ckpt.files.map(\.path)
        if fileExists(pre) {
            plan.meta = ["config": .object(meta), "preprocessor": try JSONValue.parse(contentsOf: pre)]
            files.append(pre)
        } else {
            plan.meta = ["config": .object(meta)]
        }
        plan.files = files
        return plan
    }
}
