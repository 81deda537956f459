import KAF

/// The text tokenizer: `tiktoken.model` ranks (stored as a zstd blob) and the Kimi special tokens
/// that follow them (docs/ARCHITECTURE.md §3.1, §1.5): id = num_base_tokens + index.
public enum TokenizerConverter {
    /// The 421 Kimi special-token names in id order (docs/ARCHITECTURE.md §3.1, kimia_infer special_tokens.py).
    public static let kimiSpecialTokens: [String] = {
        var t = ["[BOS]", "[EOS]", KimiToken.msg_end.name, "<|im_user_msg_start|>", "<|im_assistant_msg_start|>"]
        t += (0 ... 3).map { "<|reserved_token_\($0)|>" }
        t += ["[EOT]"]
        t += (4 ... 11).map { "<|reserved_token_\($0)|>" }
        t += [KimiToken.media_begin.name, "<|reserved_token_12|>", KimiToken.media_end.name]
        t += (13 ... 14).map { "<|reserved_token_\($0)|>" }
        t += [KimiToken.kimia_text_blank.name, KimiToken.kimia_text_eos.name]
        t += (15 ... 16).map { "<|reserved_token_\($0)|>" }
        t += [KimiToken.kimia_user_msg_start.name, KimiToken.kimia_assistant_msg_start.name]
        t += (17 ... 19).map { "<|reserved_token_\($0)|>" }
        t += [KimiToken.kimia_speech_ct_id.name, KimiToken.kimia_speech_ctd_id.name]
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
        if fileExists(tcPath), let added = try JSONValue.parse(contentsOf: tcPath)["added_tokens_decoder"]?.objectValue
        {
            for (i, name) in specials.enumerated() {
                if let got = added[String(ranks.count + i)]?["content"]?.stringValue, got != name {
                    throw FormatError(tcPath, "special token \(ranks.count + i) is '\(got)', expected '\(name)'")
                }
            }
        }
        let textVocab = ranks.count + specials.count
        if let offset = release.config["kimia_token_offset"]?.intValue, offset != textVocab {
            throw FormatError(
                cfgFile,
                "kimia_token_offset \(offset) differs from the text vocabulary (\(ranks.count) ranks + \(specials.count) specials)"
            )
        }
        let text = try MappedFile(path: path)
        var plan = ComponentPlan(name: "tokenizer")
        plan.blobs = [(name: "tokenizer.tiktoken", bytes: text.withBytes { Array($0) }, compress: true)]
        plan.meta = meta(
            numBase: ranks.count, specials: specials.enumerated().map { (ranks.count + $0.offset, $0.element) },
            chatTemplate: nil)
        plan.files = [path]
        return plan
    }

    /// kaf.meta `components.tokenizer`: the runtime's whole view of the tokenizer besides the ranks.
    static func meta(
        numBase: Int, specials: [(id: Int, name: String)], chatTemplate: String?, normalizer: String? = nil,
        pattern: String = qwen2Pattern
    ) -> JSONValue {
        var m: [String: JSONValue] = [
            "type": "tiktoken", "num_base_tokens": .int(Int64(numBase)), "pattern": .string(pattern),
            "special_tokens": .array(specials.map { ["id": .int(Int64($0.id)), "name": .string($0.name)] }),
        ]
        if let t = chatTemplate { m["chat_template"] = .string(t) }
        if let n = normalizer { m["normalizer"] = .string(n) }
        return .object(m)
    }

    /// A Hugging Face byte-level BPE `tokenizer.json` (Qwen2, Whisper): vocabulary → tiktoken ranks
    /// (rank = id, checked against the merge order), added tokens → specials. `pattern`: the
    /// pre-tokenization regex recorded with it (Qwen2's, or GPT-2's for Whisper).
    public static func planHF(folder: String, pattern: String = qwen2Pattern) throws -> ComponentPlan {
        let path = folder + "/tokenizer.json"
        guard fileExists(path) else { throw FormatError(path, "missing: the checkpoint needs its tokenizer.json") }
        let doc = try JSONValue.parse(contentsOf: path)
        guard let model = doc["model"], model["type"]?.stringValue == "BPE", let vocab = model["vocab"]?.objectValue
        else {
            throw FormatError(path, "not a BPE tokenizer (model.type must be \"BPE\" with a vocab)")
        }
        let decoder = byteDecoder()
        var tokens = [[UInt8]?](repeating: nil, count: vocab.count)
        for (piece, idv) in vocab {
            guard let id = idv.intValue, id >= 0, id < vocab.count else {
                throw FormatError(path, "vocab id of '\(piece)' is not in 0..<\(vocab.count)")
            }
            guard tokens[id] == nil else { throw FormatError(path, "vocab id \(id) used twice") }
            var bytes: [UInt8] = []
            for u in piece.unicodeScalars {
                guard let b = decoder[u] else {
                    throw FormatError(path, "vocab entry '\(piece)' is not byte-level BPE")
                }
                bytes.append(b)
            }
            tokens[id] = bytes
        }
        // tiktoken merges the pair of lowest rank first; HF merges in list order. With rank = id
        // they agree only if merged tokens' ids rise with the merge list: check it.
        if let merges = model["merges"]?.arrayValue {
            var last = -1
            for (i, mv) in merges.enumerated() {
                let pair: String
                if let s = mv.stringValue {
                    pair = s.replacingOccurrences(of: " ", with: "")
                } else if let a = mv.arrayValue, a.count == 2, let x = a[0].stringValue, let y = a[1].stringValue {
                    pair = x + y
                } else {
                    throw FormatError(path, "merge \(i) is malformed")
                }
                guard let id = vocab[pair]?.intValue else {
                    throw FormatError(path, "merge \(i) makes '\(pair)', which is not in the vocab")
                }
                guard id > last else {
                    throw FormatError(
                        path, "merge \(i) ('\(pair)', id \(id)) is out of id order: ranks cannot equal ids")
                }
                last = id
            }
        }
        var text = ""
        for (id, t) in tokens.enumerated() {
            guard let t else { throw FormatError(path, "vocab has no id \(id)") }
            text += TiktokenBase64.encode(t) + " " + String(id) + "\n"
        }
        var specials: [(id: Int, name: String)] = []
        for a in doc["added_tokens"]?.arrayValue ?? [] {
            guard let id = a["id"]?.intValue, let name = a["content"]?.stringValue else {
                throw FormatError(path, "malformed added_tokens entry")
            }
            if id >= vocab.count { specials.append((id, name)) }
        }
        specials.sort { $0.id < $1.id }
        for (i, s) in specials.enumerated() where s.id != vocab.count + i {
            throw FormatError(
                path,
                "special token '\(s.name)' has id \(s.id), expected \(vocab.count + i) (specials must follow the vocabulary)"
            )
        }
        // Qwen2.5's tokenizer.json normalizes to NFC before splitting; plain tiktoken (Kimi) does not.
        var normalizer: String? = nil
        if let n = doc["normalizer"], n != .null {
            guard n["type"]?.stringValue == "NFC" else {
                throw FormatError(path, "normalizer \(n["type"]?.stringValue ?? "?") is not supported (only NFC)")
            }
            normalizer = "NFC"
        }
        var template: String?
        let tc = folder + "/tokenizer_config.json"
        if fileExists(tc) { template = try JSONValue.parse(contentsOf: tc)["chat_template"]?.stringValue }
        var plan = ComponentPlan(name: "tokenizer")
        plan.blobs = [(name: "tokenizer.tiktoken", bytes: Array(text.utf8), compress: true)]
        plan.meta = meta(
            numBase: vocab.count, specials: specials, chatTemplate: template, normalizer: normalizer, pattern: pattern)
        plan.files = [path] + (fileExists(tc) ? [tc] : [])
        return plan
    }

    /// GPT-2's byte ↔ unicode mapping, inverted: printable bytes map to themselves, the rest to
    /// U+0100 onwards in byte order.
    static func byteDecoder() -> [Unicode.Scalar: UInt8] {
        var printable = Array(33 ... 126) + Array(161 ... 172) + Array(174 ... 255)
        var map: [Unicode.Scalar: UInt8] = [:]
        for b in printable { map[Unicode.Scalar(UInt8(b))] = UInt8(b) }
        var n = 0
        for b in 0 ... 255 where !printable.contains(b) {
            map[Unicode.Scalar(UInt32(256 + n))!] = UInt8(b)
            n += 1
        }
        printable.removeAll()
        return map
    }

    /// GPT-2's pre-tokenization regex (the ByteLevel pre-tokenizer of Whisper's tokenizer.json).
    public static let gpt2Pattern = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#

    /// Qwen2's pre-tokenization regex (docs/ARCHITECTURE.md §1.5).
    public static let qwen2Pattern =
        #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
}
