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
            guard let v = names[t.rawValue] else {
                throw FormatError(file, "tokenizer lacks the special token \(t.rawValue)")
            }
            return v
        }
        msgEnd = try id(.msgEnd)
        mediaBegin = try id(.mediaBegin)
        mediaEnd = try id(.mediaEnd)
        blank = try id(.textBlank)
        textEos = try id(.textEos)
        userMsgStart = try id(.userMsgStart)
        assistantMsgStart = try id(.assistantMsgStart)
        speechCt = try id(.speechCt)
        speechCtd = try id(.speechCtd)
    }
}
