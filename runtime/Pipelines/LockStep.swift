import KAF

/// The official generation loop (spec §3.7, kimia_infer/api/kimia.py `_generate_loop`): text and
/// audio are sampled in lock step; the audio stream is forced blank for the first `delay` steps
/// (and always in text mode); after text eos the text stream carries blanks; "both" stops when the
/// audio stream emits an end-of-message/media id. Returns the ids fed back at each step.
public struct LockStep {
    public enum Output { case text, both }

    public let blank, textEos: Int
    public let eod: Set<Int>
    public var delay = 6

    public init(specials: [String: Int], delay: Int = 6) throws {
        guard let b = specials["<|im_kimia_text_blank|>"], let e = specials["<|im_kimia_text_eos|>"],
              let m = specials["<|im_msg_end|>"], let me = specials["<|im_media_end|>"] else {
            throw FormatError("tokenizer", "the Kimi special tokens (blank, text eos, msg end, media end) are missing")
        }
        blank = b; textEos = e; eod = [m, me]; self.delay = delay
    }

    /// Runs up to `steps` steps after a prompt of `promptLength` positions whose last step already
    /// filled the logits. `onStep(text, audio)` sees each pair as fed back.
    public func run(_ llm: KimiLLM, promptLength: Int, steps: Int, output: Output,
                    text textSampler: inout Sampler, audio audioSampler: inout Sampler,
                    onStep: (Int, Int) -> Void = { _, _ in }) throws -> (text: [Int], audio: [Int]) {
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
            onStep(t, a)
            if (output == .text && textDone) || (output == .both && eod.contains(a)) { break }
            try llm.step(audioId: a, textId: t, addText: t != 0, feature: nil, pos: promptLength + i, wantAudio: output == .both)
        }
        return (textHist, audioHist)
    }
}
