import KAF

/// The text tokenizer: `tiktoken.model` ranks (stored as a zstd blob) and the Kimi special tokens
/// that follow them (spec §4.1, §5): id = num_base_tokens + index.
public enum TokenizerConverter {
    /// The 421 Kimi special-token names in id order (spec §4.1, kimia_infer special_tokens.py).
    public static let kimiSpecialTokens: [String] = {
        var t = ["[BOS]", "[EOS]", "<|im_msg_end|>", "<|im_user_msg_start|>", "<|im_assistant_msg_start|>"]
        t += (0 ... 3).map { "<|reserved_token_\($0)|>" }
        t += ["[EOT]"]
        t += (4 ... 11).map { "<|reserved_token_\($0)|>" }
        t += ["<|im_media_begin|>", "<|reserved_token_12|>", "<|im_media_end|>"]
        t += (13 ... 14).map { "<|reserved_token_\($0)|>" }
        t += ["<|im_kimia_text_blank|>", "<|im_kimia_text_eos|>"]
        t += (15 ... 16).map { "<|reserved_token_\($0)|>" }
        t += ["<|im_kimia_user_msg_start|>", "<|im_kimia_assistant_msg_start|>"]
        t += (17 ... 19).map { "<|reserved_token_\($0)|>" }
        t += ["<|im_kimia_speech_ct_id|>", "<|im_kimia_speech_ctd_id|>"]
        t += (20 ... 406).map { "<|reserved_token_\($0)|>" }
        return t
    }()

    public static func plan(release: ReleaseFolder) throws -> ComponentPlan {
        let path = release.file("tiktoken.model")
        guard fileExists(path) else { throw FormatError(path, "missing: the text tokenizer is needed") }
        let ranks = try TiktokenRanks.load(path: path)
        let cfgFile = release.file("config.json")
        let declared = release.config["num_base_tokens"]?.intValue
        if let declared, declared != ranks.count {
            throw FormatError(path, "\(ranks.count) ranks, but config.json says num_base_tokens = \(declared)")
        }
        let specials = kimiSpecialTokens
        // The HF tokenizer_config.json, when present, must agree with the built-in table.
        let tcPath = release.file("tokenizer_config.json")
        if fileExists(tcPath), let added = try JSONValue.parse(contentsOf: tcPath)["added_tokens_decoder"]?.objectValue {
            for (i, name) in specials.enumerated() {
                if let got = added[String(ranks.count + i)]?["content"]?.stringValue, got != name {
                    throw FormatError(tcPath, "special token \(ranks.count + i) is '\(got)', expected '\(name)'")
                }
            }
        }
        let textVocab = ranks.count + specials.count
        if let offset = release.config["kimia_token_offset"]?.intValue, offset != textVocab {
            throw FormatError(cfgFile, "kimia_token_offset \(offset) differs from the text vocabulary (\(ranks.count) ranks + \(specials.count) specials)")
        }
        let text = try MappedFile(path: path)
        var plan = ComponentPlan(name: "tokenizer")
        plan.blobs = [(name: "tokenizer.tiktoken", bytes: text.withBytes { Array($0) }, compress: true)]
        plan.meta = ["type": "tiktoken", "num_base_tokens": .int(Int64(ranks.count)),
                     "special_tokens": .array(specials.map { .string($0) }),
                     "pattern": .string(qwen2Pattern)]
        plan.files = [path]
        return plan
    }

    /// Qwen2's pre-tokenization regex (spec §5).
    public static let qwen2Pattern = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
}
