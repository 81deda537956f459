import KAF

/// What the assistant answers with: text only, or text and speech (the official `output_type`).
public enum KimiOutput: Sendable { case text, both }

/// Builds the two aligned input streams of a Kimi-Audio prompt (docs/ARCHITECTURE.md §3.2), as the
/// official prompt manager does (`KimiAPromptManager.get_prompt` / `tokenize_message`): per
/// message a role start when the role changes, its content, after an audio segment the ct/ctd
/// token and a message end when the role run ends; then the assistant start.
public struct KimiPrompt {
    public enum Role: Sendable { case user, assistant }

    public enum Content: Sendable {
        case text(String)
        /// VQ codes (raw, 0-based) of one audio segment; each code position takes the next Whisper
        /// feature row (continuous).
        case audio(codes: [Int])
    }

    public struct Message: Sendable {
        public var role: Role
        public var content: Content
        public init(_ role: Role, _ content: Content) {
            self.role = role
            self.content = content
        }
    }

    /// The streams: position p holds (audio[p], text[p]); `featureRows[p]` is the feature row of a
    /// continuous position (rows counted over all audio segments in order).
    public struct Streams: Sendable, Equatable {
        public var audio: [Int] = []
        public var text: [Int] = []
        public var featureRows: [Int: Int] = [:]
        public var count: Int { audio.count }
        /// The reference adds the text-stream embedding only when the text ids are not all 0.
        public var addsText: Bool { text.contains { $0 != 0 } }
    }

    public let specials: KimiSpecials
    public let tokenOffset: Int
    let encode: (String) -> [Int]

    public init(specials: KimiSpecials, tokenOffset: Int, encode: @escaping (String) -> [Int]) {
        self.specials = specials
        self.tokenOffset = tokenOffset
        self.encode = encode
    }

    public func build(_ messages: [Message], output: KimiOutput) -> Streams {
        let s = specials, blank = s.blank
        var out = Streams()
        func put(_ a: Int, _ t: Int) {
            out.audio.append(a)
            out.text.append(t)
        }
        var rows = 0
        for (i, msg) in messages.enumerated() {
            let roleChanges = i == 0 || messages[i - 1].role != msg.role
            let lastOfRun = i == messages.count - 1 || messages[i + 1].role != msg.role
            if roleChanges { put(msg.role == .user ? s.userMsgStart : s.assistantMsgStart, blank) }
            switch msg.content {
            case .text(let text):
                for id in encode(text) { put(blank, id) }
                // An assistant answer in the history ends its text stream with text eos.
                if msg.role == .assistant { put(blank, s.textEos) }
            case .audio(let codes):
                put(s.mediaBegin, blank)
                for c in codes {
                    out.featureRows[out.count] = rows
                    rows += 1
                    put(tokenOffset + c, blank)
                }
                put(s.mediaEnd, blank)
                if lastOfRun { put(output == .text ? s.speechCt : s.speechCtd, blank) }
            }
            if lastOfRun { put(s.msgEnd, blank) }
        }
        put(s.assistantMsgStart, blank)
        return out
    }
}
