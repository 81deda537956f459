import KAF

/// The ids of the Kimi special tokens (formats/Architecture/KimiTokens.swift) in one file, from the
/// tokenizer table kimi-convert stores (names and ids). Every id the prompt builder and the
/// generation loop use is looked up once, here.
public struct KimiSpecials: Sendable {
    /// Every special token of the file, name → id.
    public let byName: [String: Int]
    public let msgEnd, mediaBegin, mediaEnd, blank, textEos, userMsgStart, assistantMsgStart, speechCt, speechCtd: Int

    public init(tokenizer: TiktokenBPE, file: String) throws {
        try self.init(byName: tokenizer.specialIds, file: file)
    }

    public init(byName names: [String: Int], file: String) throws {
        byName = names
        func id(_ t: KimiToken) throws -> Int {
            guard let v = names[t.name] else {
                throw FormatError(file, "tokenizer lacks the special token \(t.name)")
            }
            return v
        }
        msgEnd = try id(.msg_end)
        mediaBegin = try id(.media_begin)
        mediaEnd = try id(.media_end)
        blank = try id(.kimia_text_blank)
        textEos = try id(.kimia_text_eos)
        userMsgStart = try id(.kimia_user_msg_start)
        assistantMsgStart = try id(.kimia_assistant_msg_start)
        speechCt = try id(.kimia_speech_ct_id)
        speechCtd = try id(.kimia_speech_ctd_id)
    }
}
