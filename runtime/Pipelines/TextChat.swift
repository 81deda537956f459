import Dispatch
import KAF

/// Text → text (docs/ARCHITECTURE.md §2.2): builds the prompt, prefills it, runs the official
/// lock-step loop with only the text stream free, and streams the answer. A plain Qwen2 file uses
/// the Qwen chat format and `QwenLoop` instead.
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
    private var history: [KimiPrompt.Message] = []
    /// The Kimi prompt builder; nil for a plain Qwen2.
    public let prompt: KimiPrompt?

    public init(file: KAFFile, contextLength: Int? = nil, threads: Int = 0, options: Options = Options()) throws {
        llm = try KimiLLM(file: file, contextLength: contextLength, threads: threads)
        tokenizer = try TiktokenBPE(kaf: file)
        self.options = options
        if llm.config.isKimi {
            let specials = try KimiSpecials(tokenizer: tokenizer, file: file.path)
            let bpe = tokenizer
            prompt = KimiPrompt(specials: specials, tokenOffset: llm.config.tokenOffset, encode: { bpe.encode($0) })
        } else {
            prompt = nil
        }
    }

    /// Qwen chat format: <|im_start|>role\ntext<|im_end|>\n … <|im_start|>assistant\n
    func qwenPrompt(_ messages: [KimiPrompt.Message]) -> [Int] {
        var ids: [Int] = []
        let start = tokenizer.specialIds["<|im_start|>"], end = tokenizer.specialIds["<|im_end|>"]
        let nl = tokenizer.encode("\n")
        var msgs: [(role: String, text: String)] = messages.map { m in
            guard case .text(let text) = m.content else { return (role: "user", text: "") }
            return (role: m.role == .user ? "user" : "assistant", text: text)
        }
        if let sys = defaultSystemPrompt { msgs.insert(("system", sys), at: 0) }
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
        let messages = history + [KimiPrompt.Message(.user, .text(user))]
        let turn: Turn
        if let prompt {
            turn = try answer(prompt.build(messages, output: .text), onText: onText)
        } else {
            turn = try answerQwen(qwenPrompt(messages), onText: onText)
        }
        history = messages + [KimiPrompt.Message(.assistant, .text(turn.text))]
        return turn
    }

    /// The assistant's text answer to a built Kimi prompt (output type "text": audio forced blank,
    /// stop at text eos, the MIMO branch skipped). `features[p]` is the Whisper feature row of
    /// continuous position p.
    public func answer(
        _ p: KimiPrompt.Streams, features: [Int: UnsafePointer<Float>] = [:], onText: (String) -> Void = { _ in }
    ) throws -> Turn {
        guard let prompt else { throw FormatError(llm.file.path, "not a Kimi-Audio file (no audio stream)") }
        return try timedTurn(promptTokens: p.count, onText: onText) {
            try llm.prefill(
                audioIds: p.audio, textIds: p.text, addText: p.addsText, features: features, start: 0, wantAudio: false)
        } generate: { emit in
            let loop = LockStep(specials: prompt.specials)
            var textSampler = options.text, audioSampler = Sampler()
            let offset = llm.config.tokenOffset
            var out: [Int] = []
            _ = try loop.run(
                llm, promptLength: p.count, steps: min(options.maxTokens, llm.contextLength - p.count), output: .text,
                text: &textSampler, audio: &audioSampler
            ) { t, _ in
                // As the official post-processing: text-range ids up to eos (specials decode to names).
                if t != loop.textEos && t < offset {
                    out.append(t)
                    emit(t)
                }
            }
            return out
        }
    }

    /// A plain Qwen2 answer to prompt ids.
    func answerQwen(_ ids: [Int], onText: (String) -> Void) throws -> Turn {
        try timedTurn(promptTokens: ids.count, onText: onText) {
            try llm.prefill(audioIds: ids, textIds: ids, addText: true, start: 0, wantAudio: false)
        } generate: { emit in
            let loop = QwenLoop(stops: Set(["<|im_end|>", "<|endoftext|>"].compactMap { tokenizer.specialIds[$0] }))
            var sampler = options.text
            return try loop.run(
                llm, promptLength: ids.count, maxTokens: options.maxTokens, sampler: &sampler, onToken: emit)
        }
    }

    /// Checks the prompt fits, prefills it, generates (each id streamed as text through `onText`),
    /// and times both halves.
    private func timedTurn(
        promptTokens: Int, onText: (String) -> Void, prefill: () throws -> Void,
        generate: ((Int) -> Void) throws -> [Int]
    ) throws -> Turn {
        var decoder = StreamingDecoder()
        let t0 = DispatchTime.now().uptimeNanoseconds
        try checkFits(promptTokens)
        try prefill()
        let tPrefill = DispatchTime.now().uptimeNanoseconds
        let out = try withoutActuallyEscaping(onText) { text in
            let ids = try generate { t in text(decoder.push(tokenizer.bytes(of: t))) }
            text(decoder.flush())
            return ids
        }
        let t1 = DispatchTime.now().uptimeNanoseconds
        return Turn(
            text: tokenizer.decode(out), ids: out, promptTokens: promptTokens,
            prefillSeconds: Double(tPrefill - t0) / 1e9, decodeSeconds: Double(t1 - tPrefill) / 1e9)
    }

    private func checkFits(_ count: Int) throws {
        guard count < llm.contextLength else {
            throw FormatError(
                llm.file.path, "prompt of \(count) tokens is longer than the context (\(llm.contextLength))")
        }
    }
}
