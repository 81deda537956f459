import KAF
import Dispatch

/// Text → text (spec §4.3): builds the prompt, prefills it, runs the official lock-step loop
/// (§3.7) with only the text stream free, and streams the answer. A plain Qwen2 file uses the
/// Qwen chat format instead.
public final class TextChat {
    public struct Options {
        public var maxTokens = 512
        public var text = Sampler(temperature: 0, topK: 5, penalty: 1, window: 16)
        public init() {}
    }

    public struct Turn {
        public var text: String
        public var ids: [Int]
        public var promptTokens: Int
        public var prefillSeconds: Double
        public var decodeSeconds: Double
    }

    public let llm: KimiLLM
    public let tokenizer: TiktokenBPE
    public var options: Options
    private var history: [(role: String, text: String)] = []
    private let special: [String: Int]

    public init(file: KAFFile, contextLength: Int? = nil, threads: Int = 0, options: Options = Options()) throws {
        llm = try KimiLLM(file: file, contextLength: contextLength, threads: threads)
        tokenizer = try TiktokenBPE(kaf: file)
        self.options = options
        special = Dictionary(tokenizer.specials.map { ($0.value, $0.key) }, uniquingKeysWith: { a, _ in a })
        if llm.config.isKimi {
            for n in ["<|im_kimia_user_msg_start|>", "<|im_kimia_assistant_msg_start|>", "<|im_kimia_text_blank|>",
                      "<|im_kimia_text_eos|>", "<|im_msg_end|>"] where special[n] == nil {
                throw FormatError(file.path, "tokenizer lacks the special token \(n)")
            }
        }
    }

    func id(_ name: String) -> Int { special[name]! }

    /// Two aligned streams for the conversation so far plus the new user message (§4.2, §4.3).
    func kimiPrompt(_ messages: [(role: String, text: String)]) -> (audio: [Int], text: [Int]) {
        let blank = id("<|im_kimia_text_blank|>")
        var a: [Int] = [], t: [Int] = []
        for (i, msg) in messages.enumerated() {
            let roleChanges = i == 0 || messages[i - 1].role != msg.role
            let lastOfRun = i == messages.count - 1 || messages[i + 1].role != msg.role
            if roleChanges {
                a.append(id(msg.role == "user" ? "<|im_kimia_user_msg_start|>" : "<|im_kimia_assistant_msg_start|>")); t.append(blank)
            }
            let ids = tokenizer.encode(msg.text)
            a += Array(repeating: blank, count: ids.count); t += ids
            if msg.role == "assistant" { a.append(blank); t.append(id("<|im_kimia_text_eos|>")) }
            if lastOfRun { a.append(id("<|im_msg_end|>")); t.append(blank) }
        }
        a.append(id("<|im_kimia_assistant_msg_start|>")); t.append(blank)
        return (a, t)
    }

    /// Qwen chat format: <|im_start|>role\ntext<|im_end|>\n … <|im_start|>assistant\n
    func qwenPrompt(_ messages: [(role: String, text: String)]) -> [Int] {
        var ids: [Int] = []
        let start = special["<|im_start|>"], end = special["<|im_end|>"]
        let nl = tokenizer.encode("\n")
        var msgs = messages
        if let sys = defaultSystemPrompt, msgs.first?.role != "system" { msgs.insert(("system", sys), at: 0) }
        for m in msgs {
            if let s = start { ids.append(s) }
            ids += tokenizer.encode(m.role + "\n" + m.text)
            if let e = end { ids.append(e) }
            ids += nl
        }
        if let s = start { ids.append(s) }
        ids += tokenizer.encode("assistant\n")
        return ids
    }

    /// Qwen2.5 templates add a default system message when the conversation has none.
    lazy var defaultSystemPrompt: String? = {
        // The literal in the template's no-tools branch: '<|im_start|>system\nYou are …<|im_end|>'.
        guard let tpl = llm.file.meta["components"]?["tokenizer"]?["chat_template"]?.stringValue else { return nil }
        var from = tpl.startIndex
        while let r = tpl.range(of: "<|im_start|>system\\n", range: from ..< tpl.endIndex) {
            from = r.upperBound
            guard let e = tpl[r.upperBound...].range(of: "<|im_end|>") else { break }
            let s = String(tpl[r.upperBound ..< e.lowerBound])
            if !s.isEmpty && !s.contains("{") && !s.contains("'") && !s.contains("\"") { return s }
        }
        return nil
    }()

    /// Answers `user` (history kept), calling `onText` with each complete piece of text.
    public func respond(to user: String, onText: (String) -> Void = { _ in }) throws -> Turn {
        let messages = history + [("user", user)]
        let c = llm.config
        var decoder = StreamingDecoder()
        var out: [Int] = []
        let t0 = DispatchTime.now().uptimeNanoseconds
        var tPrefill = t0
        var pos = 0, promptTokens = 0
        if c.isKimi {
            let (a, t) = kimiPrompt(messages)
            guard a.count < llm.contextLength else { throw FormatError(llm.file.path, "prompt of \(a.count) tokens is longer than the context (\(llm.contextLength))") }
            let addText = t.reduce(0, +) != 0
            try llm.prefill(audioIds: a, textIds: t, addText: addText, start: 0, wantAudio: false)
            pos = a.count
            promptTokens = pos
            tPrefill = DispatchTime.now().uptimeNanoseconds
            let loop = try LockStep(specials: special)
            var textSampler = options.text, audioSampler = Sampler()
            let steps = min(options.maxTokens, llm.contextLength - pos)
            // output_type "text": audio forced blank, stop at text eos; the MIMO branch is skipped.
            let fed = try loop.run(llm, promptLength: pos, steps: steps, output: .text, text: &textSampler, audio: &audioSampler) { t, _ in
                // As the official post-processing: text-range ids up to eos (specials decode to names).
                if t != loop.textEos && t < c.tokenOffset { out.append(t); onText(decoder.push(tokenizer.bytes(of: t))) }
            }
            pos += fed.text.count
        } else {
            let ids = qwenPrompt(messages)
            guard ids.count < llm.contextLength else { throw FormatError(llm.file.path, "prompt of \(ids.count) tokens is longer than the context (\(llm.contextLength))") }
            try llm.prefill(audioIds: ids, textIds: ids, addText: true, start: 0, wantAudio: false)
            pos = ids.count
            promptTokens = pos
            tPrefill = DispatchTime.now().uptimeNanoseconds
            let stops = Set(["<|im_end|>", "<|endoftext|>"].compactMap { special[$0] })
            var sampler = options.text
            for _ in 0 ..< options.maxTokens where pos < llm.contextLength {
                let t = sampler.sample(llm.textLogits, count: llm.lmHead.rows, history: out)
                if stops.contains(t) { break }
                out.append(t)
                onText(decoder.push(tokenizer.bytes(of: t)))
                try llm.step(audioId: 0, textId: t, addText: true, feature: nil, pos: pos, wantAudio: false)
                pos += 1
            }
        }
        onText(decoder.flush())
        let t1 = DispatchTime.now().uptimeNanoseconds
        let text = tokenizer.decode(out)
        history = messages + [("assistant", text)]
        return Turn(text: text, ids: out, promptTokens: promptTokens,
                    prefillSeconds: Double(tPrefill - t0) / 1e9, decodeSeconds: Double(t1 - tPrefill) / 1e9)
    }
}
