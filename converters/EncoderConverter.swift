import KAF

/// Whisper-style audio encoders: the Whisper-large-v3 encoder (continuous features, component
/// `whisper`, docs/ARCHITECTURE.md §1.7) and the GLM-4-Voice WhisperVQEncoder (discrete tokens, component `vq`,
/// docs/ARCHITECTURE.md §1.8). Both have conv1/conv2, learned positions and pre-LN layers with a bias-free k_proj.
public enum EncoderConverter {
    /// The Whisper encoder from `IN/whisper-large-v3/` (or IN itself for a plain HF Whisper).
    /// `decoder`: keep the Whisper decoder too (a plain Whisper checkpoint, which transcribes on its
    /// own; Kimi-Audio never runs it), with the generation settings of `generation_config.json`.
    public static func planWhisper(folder: String, policy: PrecisionPolicy, decoder: Bool = false) throws
        -> ComponentPlan
    {
        let cfgFile = folder + "/config.json"
        guard fileExists(cfgFile) else {
            throw FormatError(cfgFile, "missing: the Whisper encoder folder has no config.json")
        }
        let cfg = try JSONValue.parse(contentsOf: cfgFile)
        let table = WhisperEncoderTensors(whisper: try WhisperEncoderConfig(json: cfg, file: cfgFile))
        let dec = decoder ? WhisperDecoderTensors(config: try WhisperDecoderConfig(json: cfg, file: cfgFile)) : nil
        var plan = try plan(
            folder: folder, config: cfg, table: table, tensors: table.all, decoder: dec,
            drops: decoder ? ["proj_out."] : ["model.decoder.", "decoder.", "proj_out."], policy: policy)
        if decoder {
            let gen = folder + "/generation_config.json"
            guard fileExists(gen) else {
                throw FormatError(gen, "missing: a Whisper checkpoint needs generation_config.json to transcribe")
            }
            var meta = plan.meta.objectValue ?? [:]
            meta["generation"] = try JSONValue.parse(contentsOf: gen)
            plan.meta = .object(meta)
            plan.files.append(gen)
        }
        return plan
    }

    /// The GLM-4-Voice WhisperVQEncoder: only `quantize_position` layers exist, no final LayerNorm,
    /// plus the codebook.
    public static func planVQ(folder: String, policy: PrecisionPolicy) throws -> ComponentPlan {
        let cfgFile = folder + "/config.json"
        guard fileExists(cfgFile) else {
            throw FormatError(cfgFile, "missing: the GLM-4-Voice tokenizer folder has no config.json")
        }
        let cfg = try JSONValue.parse(contentsOf: cfgFile)
        let vq = VQTensors(try VQConfig(json: cfg, file: cfgFile))
        return try plan(
            folder: folder, config: cfg, table: vq.encoder, tensors: vq.all,
            drops: ["ema_count", "ema_weight", "embed_positions2."], policy: policy)
    }

    /// `tensors`: `table.all` plus any tensors of the component outside the encoder (the codebook).
    static func plan(
        folder: String, config cfg: JSONValue, table: WhisperEncoderTensors, tensors: [TensorSpec],
        decoder: WhisperDecoderTensors? = nil, drops: [String], policy: PrecisionPolicy
    ) throws -> ComponentPlan {
        let cfgFile = folder + "/config.json"
        let component = table.component, layers = table.layerCount, hasFinalNorm = table.hasFinalNorm
        let ckpt = try SafetensorsCheckpoint(path: folder)
        // Encoder keys may carry `model.encoder.` or `encoder.` (docs/ARCHITECTURE.md §5.4); GLM copies none.
        let prefixes = ["model.encoder.", "encoder.", ""]
        let prefix = prefixes.first { p in ckpt.contains(p + "conv1.weight") } ?? ""
        var used = Set<String>()
        var plan = ComponentPlan(name: component)
        for spec in tensors {
            guard let t = ckpt[prefix + spec.source] else {
                throw FormatError(folder, "missing tensor '\(prefix + spec.source)' (expected by config.json)")
            }
            used.insert(prefix + spec.source)
            try plan.add(spec, try StoredTensor(t), sourceName: prefix + spec.source, policy: policy)
        }
        if let decoder {
            let dp =
                ["model.decoder.", "decoder."].first { ckpt.contains($0 + "embed_tokens.weight") } ?? "model.decoder."
            for spec in decoder.all {
                guard let t = ckpt[dp + spec.source] else {
                    throw FormatError(
                        folder, "missing tensor '\(dp + spec.source)' (the Whisper decoder in config.json)")
                }
                used.insert(dp + spec.source)
                try plan.add(spec, try StoredTensor(t), sourceName: dp + spec.source, policy: policy)
            }
            // Quantized files: the decoder stays 16-bit (transcripts), its head reads an 8-bit copy.
            if case .quantized = policy.mode, let t = ckpt[dp + decoder.headCopy.source] {
                try plan.add(
                    decoder.headCopy, try StoredTensor(t), sourceName: dp + decoder.headCopy.source, policy: policy)
            }
        }

        for t in ckpt.tensors where !used.contains(t.name) {
            let rel = t.name.hasPrefix(prefix) ? String(t.name.dropFirst(prefix.count)) : t.name
            if drops.contains(where: { t.name.hasPrefix($0) || rel.hasPrefix($0) }) {
                let why =
                    component == "vq"
                    ? "training buffer / unused for token ids"
                    : decoder != nil
                        ? "tied output projection: the decoder's token embedding" : "Whisper decoder: not used"
                plan.drop("\(basename(t.path)):\(t.name)", why)
            } else if rel.hasPrefix("layers."), let i = Int(rel.dropFirst(7).prefix { $0 != "." }), i >= layers {
                plan.drop("\(basename(t.path)):\(t.name)", "layer \(i) is past the \(layers) layers the model runs")
            } else if !hasFinalNorm && rel.hasPrefix("layer_norm.") {
                plan.drop("\(basename(t.path)):\(t.name)", "final LayerNorm not applied before quantization")
            } else {
                throw FormatError(
                    t.path, "unexpected tensor '\(t.name)' (not part of the \(component) encoder in config.json)")
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
