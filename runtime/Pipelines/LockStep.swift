import KAF

/// The official generation loop (docs/ARCHITECTURE.md §3.4; kimia_infer/api/kimia.py
/// `_generate_loop`): text and audio are sampled in lock step; the audio stream is forced blank for
/// the first `delay` steps (and always in text mode); after text eos the text stream carries
/// blanks; "both" stops when the audio stream emits an end-of-message/media id. Returns the ids fed
/// back at each step.
public struct LockStep {
    public let blank, textEos: Int
    public let eod: Set<Int>
    public var delay = 6

    public init(specials s: KimiSpecials, delay: Int = 6) {
        blank = s.blank
        textEos = s.textEos
        eod = [s.msgEnd, s.mediaEnd]
        self.delay = delay
    }

    /// Runs up to `steps` steps after a prompt of `promptLength` positions whose last step already
    /// filled the logits. `onStep(text, audio)` sees each pair as fed back.
    public func run(
        _ llm: KimiLLM, promptLength: Int, steps: Int, output: KimiOutput,
        text textSampler: inout Sampler, audio audioSampler: inout Sampler,
        onStep: (Int, Int) throws -> Void = { _, _ in }
    ) throws -> (text: [Int], audio: [Int]) {
        var textHist: [Int] = [], audioHist: [Int] = []
        var textDone = false
        let vocab = llm.config.vocab
        for i in 0 ..< steps {
            var t = textSampler.sample(llm.textLogits, count: vocab, history: textHist)
            var a = output == .both ? audioSampler.sample(llm.audioLogits, count: vocab, history: audioHist) : blank
            if textDone { t = blank } else if t == textEos { textDone = true }
            textHist.append(t)
            if i < delay || output == .text { a = blank }
            audioHist.append(a)
            try onStep(t, a)
            if (output == .text && textDone) || (output == .both && eod.contains(a)) { break }
            try llm.step(
                audioId: a, textId: t, addText: t != 0, feature: nil, pos: promptLength + i,
                wantAudio: output == .both)
        }
        return (textHist, audioHist)
    }
}

/// Generation for a plain Qwen2 after a prefilled prompt: sample from the text logits, stop on a
/// stop id, at `maxTokens` or at the end of the context, feed each token back.
public struct QwenLoop {
    public let stops: Set<Int>

    public init(stops: Set<Int>) { self.stops = stops }

    /// `onToken` sees each generated id (stop ids are not generated).
    public func run(
        _ llm: KimiLLM, promptLength: Int, maxTokens: Int, sampler: inout Sampler, onToken: (Int) -> Void = { _ in }
    ) throws -> [Int] {
        var out: [Int] = []
        var pos = promptLength
        while out.count < maxTokens && pos < llm.contextLength {
            let t = sampler.sample(llm.textLogits, count: llm.textVocab, history: out)
            if stops.contains(t) { break }
            out.append(t)
            onToken(t)
            if out.count == maxTokens { break }  // the last token needs no forward
            try llm.step(audioId: 0, textId: t, addText: true, feature: nil, pos: pos, wantAudio: false)
            pos += 1
        }
        return out
    }
}
