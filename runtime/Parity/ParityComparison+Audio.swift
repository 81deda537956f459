import Foundation
import KAF

/// The audio sections and the four directions end to end.
extension ParityComparison {
    /// Cosine of two rows.
    static func cosine<A: Collection<Float>, B: Collection<Float>>(_ a: A, _ b: B) -> Double {
        var dot = 0.0, na = 0.0, nb = 0.0
        for (x, y) in zip(a, b) {
            (dot, na, nb) = (dot + Double(x) * Double(y), na + Double(x * x), nb + Double(y * y))
        }
        return na == 0 && nb == 0 ? 1 : dot / max((na * nb).squareRoot(), 1e-300)
    }

    /// Fraction of positions where the two sequences agree, over the longer one.
    static func agreement(_ a: [Int], _ b: [Int]) -> Double {
        let n = max(a.count, b.count)
        return n == 0 ? 1 : Double(zip(a, b).filter { $0 == $1 }.count) / Double(n)
    }

    /// Levenshtein distance of two sequences (two rows, no recursion).
    static func editDistance<T: Equatable>(_ a: [T], _ b: [T]) -> Int {
        guard !a.isEmpty else { return b.count }
        var prev = Array(0 ... b.count), cur = prev
        for i in 1 ... a.count {
            cur[0] = i
            for j in stride(from: 1, through: b.count, by: 1) {
                cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            swap(&prev, &cur)
        }
        return prev[b.count]
    }

    /// Word error rate of `hyp` against `ref` (words split on white space); 0 when both are empty.
    static func wordErrorRate(_ hyp: String, reference ref: String) -> Double {
        let r = ref.split(whereSeparator: \.isWhitespace).map(String.init)
        let h = hyp.split(whereSeparator: \.isWhitespace).map(String.init)
        if r.isEmpty { return h.isEmpty ? 0 : 1 }
        return Double(editDistance(h, r)) / Double(r.count)
    }

    static func dtype(_ f: KAFFile, suffix: String, in component: String) -> DType? {
        f.entries.first { $0.component == component && $0.name.hasSuffix(suffix) }?.dtype
    }

    /// Audio in: the mel of each side's front end, the Whisper features per row (cosine) and the VQ
    /// codes (agreement) of every clip.
    func audioIn(_ inputs: Inputs) throws -> [ParityReport.Check] {
        let ref = try AudioEncoders(file: reference, threads: threads)
        let mod = try AudioEncoders(file: model, threads: threads)
        var melMax = 0.0, cosSum = 0.0, cosMin = 1.0, rows = 0, agree = 0, codes = 0
        for clip in inputs.clips {
            let mr = ref.vq.frontEnd.whisperPieces(clip.samples), mm = mod.vq.frontEnd.whisperPieces(clip.samples)
            for (a, b) in zip(mr, mm) { for (x, y) in zip(a.mel, b.mel) { melMax = max(melMax, Double(abs(x - y))) } }
            let er = try timed(true) { try ref.encode(clip.samples) }
            let em = try timed(false) { try mod.encode(clip.samples) }
            let w = ref.featureWidth
            for r in 0 ..< min(er.codes.count, em.codes.count) {
                let c = Self.cosine(er.features[r * w ..< (r + 1) * w], em.features[r * w ..< (r + 1) * w])
                (cosSum, cosMin, rows) = (cosSum + c, min(cosMin, c), rows + 1)
            }
            agree += zip(er.codes, em.codes).filter { $0 == $1 }.count
            codes += max(er.codes.count, em.codes.count)
        }
        let wt = Self.dtype(model, suffix: "fc1.weight", in: "whisper"),
            vt = Self.dtype(model, suffix: "fc1.weight", in: "vq")
        return [
            .init("audio_in", "mel_max_abs", melMax, band: ParityBands.melFrontEnd, detail: "log-mel, both front ends"),
            .init(
                "audio_in", "whisper_feature_cosine", rows == 0 ? 1 : cosSum / Double(rows),
                band: ParityBands.encoderCosine(wt), detail: String(format: "mean over %d rows; min %.6f", rows, cosMin)
            ),
            .init(
                "audio_in", "vq_code_agreement", codes == 0 ? 1 : Double(agree) / Double(codes),
                band: ParityBands.codeAgreement(vt), detail: "\(agree) of \(codes) codes"),
        ]
    }

    /// A plain Whisper file, every 30 s window of every clip: the encoder's last hidden state on the
    /// window's audio frames (cosine per frame), the decoder teacher-forced on the reference's greedy
    /// ids (KL, same top-1, perplexity, as the LLM's text head), and each side's greedy transcript of
    /// the windows (word error rate of the model's against the reference's; the silence rules of
    /// `transcribe` are left out, so every window is decoded).
    func whisperOnly(_ inputs: Inputs) throws -> [ParityReport.Check] {
        let ref = try WhisperTranscriber(file: reference, threads: threads)
        let mod = try WhisperTranscriber(file: model, threads: threads)
        let d = ref.encoder.config.dModel, vocab = ref.decoder.config.vocab
        var cosSum = 0.0, cosMin = 1.0, frames = 0, stats = HeadStats()
        let refLogp = UnsafeMutablePointer<Float>.allocate(capacity: vocab)
        defer { refLogp.deallocate() }
        var wer = 0.0, same = 0, words = 0
        for clip in inputs.clips {
            // Each side's greedy ids per window (as transcribe decodes a window, without its silence rules).
            var idsRef: [[Int]] = [], idsModel: [[Int]] = []
            for range in LogMel.pieces(clip.samples.count) {
                let mel = ref.mel(clip.samples[range], paddedTo: LogMel.pieceSamples)
                mel.withUnsafeBufferPointer { m in
                    timed(true) { ref.encode(mel: m.baseAddress!) }
                    timed(false) { mod.encode(mel: m.baseAddress!) }
                }
                // 50 Hz frames: 320 samples each; the rest of the window is padding.
                let audioFrames = min(ref.encoder.frames, (range.count + 319) / 320)
                for f in 0 ..< audioFrames {
                    let c = Self.cosine(
                        UnsafeBufferPointer(start: ref.encoderOut + f * d, count: d),
                        UnsafeBufferPointer(start: mod.encoderOut + f * d, count: d))
                    (cosSum, cosMin, frames) = (cosSum + c, min(cosMin, c), frames + 1)
                }
                let prompt = ref.generation.prompt(language: nil)
                let ids = timed(true) { ref.greedy(prompt: prompt, maxNew: inputs.whisperTokens) }
                let fed = prompt + ids.dropLast()
                ref.decoder.restart()
                mod.decoder.restart()
                for (i, t) in fed.enumerated() {
                    let lr = timed(true) { ref.decoder.step(t) }
                    Self.logSoftmax(lr, vocab, into: refLogp)
                    let lm = timed(false) { mod.decoder.step(t) }
                    // Scored from the first generated id on (the prompt's positions are fixed).
                    if i >= prompt.count - 1 {
                        stats.add(
                            ref: refLogp, logits: lm, count: vocab, next: i + 1 < fed.count ? fed[i + 1] : ids.last)
                    }
                }
                idsRef.append(ids)
                idsModel.append(timed(false) { mod.greedy(prompt: prompt, maxNew: inputs.whisperTokens) })
            }
            let a = idsRef.map { ref.text($0) }.joined(), b = idsModel.map { mod.text($0) }.joined()
            let n = a.split(whereSeparator: \.isWhitespace).count
            wer += Self.wordErrorRate(b, reference: a) * Double(n)
            words += n
            if idsRef == idsModel { same += 1 }
        }
        notes.append(
            "whisper: \(inputs.clips.count) clip\(inputs.clips.count == 1 ? "" : "s") (\(inputs.clips.map(\.name).joined(separator: ", "))); the decoder's head is scored teacher-forced on the reference's greedy ids of every window"
        )
        let encType = Self.dtype(model, suffix: "fc1.weight", in: "whisper")
        let decType = model.entries.first { $0.name.hasPrefix("whisper.decoder.") && $0.name.hasSuffix("fc1.weight") }?
            .dtype
        return [
            .init(
                "audio_in", "whisper_encoder_cosine", frames == 0 ? 1 : cosSum / Double(frames),
                band: ParityBands.encoderCosine(encType),
                detail: String(format: "mean over %d audio frames; min %.6f", frames, cosMin))
        ]
            + headChecks(
                "text_head", stats, dtype: decType, perplexity: true,
                detail: "Whisper decoder, \(stats.count) positions")
            + [
                .init(
                    "end_to_end", "audio_to_text_wer", words == 0 ? 0 : wer / Double(words),
                    band: ParityBands.wordErrorRate(decType),
                    detail:
                        "model's transcript against the reference's over \(words) words; \(same) of \(inputs.clips.count) clips id for id"
                )
            ]
    }

    /// Audio out: one chunk of codes through both DiTs with the same noise (mel mean |Δ|), and the
    /// reference's mel through both vocoders (SNR of the samples).
    func audioOut(_ inputs: Inputs) throws -> [ParityReport.Check] {
        var s = Detokenizer.Settings()
        (s.firstChunkTokens, s.lookAheadTokens) = (30, 0)
        let ref = try Detokenizer(file: reference, threads: threads, settings: s)
        let mod = try Detokenizer(file: model, threads: threads, settings: s)
        // Codes: the reference's VQ codes of the first clip when it has encoders, else a fixed sequence.
        var codes: [Int] = []
        if let clip = inputs.clips.first, has(reference, "vq", "frontend") {
            codes = Array(try VQTokenizer(file: reference, threads: threads)(clip.samples).prefix(30))
        }
        if codes.isEmpty {
            var g = SplitMix64(seed: 7)
            codes = (0 ..< 30).map { _ in Int(g.next() % UInt64(ref.dit.config.semanticVocabSize)) }
        }
        var n1 = SeededNoise(seed: 1234), n2 = SeededNoise(seed: 1234)
        let frames = try timed(true) { try ref.generateMel(codes, isFinal: true, noise: &n1) }
        let melRef = Array(ref.chunkMel)
        _ = try timed(false) { try mod.generateMel(codes, isFinal: true, noise: &n2) }
        let melMod = Array(mod.chunkMel)
        var l1 = 0.0, mx = 0.0
        for (a, b) in zip(melRef, melMod) { (l1, mx) = (l1 + Double(abs(a - b)), max(mx, Double(abs(a - b)))) }
        l1 /= Double(max(melRef.count, 1))
        let hop = ref.vocoder.hopLength
        var wr = [Float](repeating: 0, count: frames * hop), wm = wr
        melRef.withUnsafeBufferPointer { m in
            timed(true) {
                wr.withUnsafeMutableBufferPointer {
                    ref.vocoder(mel: m.baseAddress!, frames: frames, into: $0.baseAddress!)
                }
            }
            timed(false) {
                wm.withUnsafeMutableBufferPointer {
                    mod.vocoder(mel: m.baseAddress!, frames: frames, into: $0.baseAddress!)
                }
            }
        }
        var sig = 0.0, err = 0.0
        for (a, b) in zip(wr, wm) { (sig, err) = (sig + Double(a * a), err + Double((a - b) * (a - b))) }
        let snr = err == 0 ? Double.infinity : 10 * log10(max(sig, 1e-30) / err)
        let dt = model.entry("dit.blocks.0.mlp.fc1.weight")?.dtype, vt = model.entry("vocoder.conv_pre.weight")?.dtype
        return [
            .init(
                "audio_out", "dit_mel_l1", l1, band: ParityBands.melL1(dt),
                detail: String(format: "%d codes, %d frames, same noise; max |Δ| %.3g", codes.count, frames, mx)),
            .init(
                "audio_out", "vocoder_snr", snr, unit: "dB", band: ParityBands.vocoderSNR(vt),
                detail: "\(frames) frames of the reference's mel, \(wr.count) samples"),
        ]
    }

    /// Each direction the files can run, greedy on fixed inputs, both sides.
    func directions(_ inputs: Inputs) throws -> [ParityReport.Check] {
        var checks: [ParityReport.Check] = []
        let dtype = llmType
        var opts = TextChat.Options()
        opts.maxTokens = inputs.answerTokens
        let question = "Name three colours of the rainbow and say why the sky is blue."
        // Contexts that fit the fixed inputs (the released 8192 positions cost 1.1 GB of KV cache each).
        let context = 2048
        let ta = try timed(true) {
            try TextChat(file: reference, contextLength: context, threads: threads, options: opts).respond(to: question)
        }
        let tb = try timed(false) {
            try TextChat(file: model, contextLength: context, threads: threads, options: opts).respond(to: question)
        }
        let common = zip(ta.ids, tb.ids).prefix { $0 == $1 }.count
        checks.append(
            .init(
                "end_to_end", "text_to_text_match", Double(common) / Double(max(ta.ids.count, 1)),
                band: ParityBands.greedyMatch(dtype),
                detail: "greedy ids identical for \(common) of \(ta.ids.count) (model \(tb.ids.count))"))
        guard has(model, "mimo") || has(model, "whisper") else { return checks }
        let audioIn = has(model, "whisper", "vq", "frontend") && has(reference, "whisper", "vq", "frontend")
        if audioIn, let clip = inputs.clips.first, LogMel.tokens(clip.samples.count) + 64 > context {
            notes.append("audio→text: \(clip.name) is too long for the \(context)-position context; skipped")
        } else if audioIn, let clip = inputs.clips.first {
            let a = try timed(true) {
                try AudioQuery(file: reference, contextLength: context, threads: threads, options: opts).answer(
                    clip.samples, instruction: AudioQuery.asrInstruction)
            }
            let b = try timed(false) {
                try AudioQuery(file: model, contextLength: context, threads: threads, options: opts).answer(
                    clip.samples, instruction: AudioQuery.asrInstruction)
            }
            checks.append(
                .init(
                    "end_to_end", "audio_to_text_wer", Self.wordErrorRate(b.turn.text, reference: a.turn.text),
                    band: ParityBands.greedyMatch(dtype) == nil ? nil : ParityBands.wordErrorRate(dtype),
                    detail: "asr of \(clip.name): \(a.turn.ids == b.turn.ids ? "ids identical" : "ids differ")"))
        }
        guard has(model, "mimo", "dit", "vocoder") else { return checks }
        var so = SpeechAnswer.Options()
        so.maxSteps = inputs.speechSteps
        so.audio = Sampler(temperature: 0, topK: 1)
        so.noiseSeed = 99
        func speech(_ f: KAFFile, _ audio: [Float]?) throws -> (codes: [Int], mel: [Float]) {
            let s = try SpeechAnswer(file: f, threads: threads, options: so, audioInput: audio != nil)
            let r =
                try audio.map { try s.reply(to: $0, onAudio: { _ in }) }
                ?? s.speak("The meeting moved to Tuesday.", onAudio: { _ in })
            guard !r.codes.isEmpty else { return (r.codes, []) }
            var noise = SeededNoise(seed: 1234)
            s.detokenizer.reset()
            _ = try s.detokenizer.generateMel(Array(r.codes.prefix(30)), isFinal: true, noise: &noise)
            return (r.codes, Array(s.detokenizer.chunkMel))
        }
        let cases: [(String, [Float]?)] =
            [("text_to_audio", nil)] + (audioIn ? inputs.clips.prefix(1).map { ("audio_to_audio", $0.samples) } : [])
        for (name, audio) in cases {
            let a = try timed(true) { try speech(reference, audio) }
            let b = try timed(false) { try speech(model, audio) }
            var l1 = 0.0
            let n = min(a.mel.count, b.mel.count)
            for i in 0 ..< n { l1 += Double(abs(a.mel[i] - b.mel[i])) }
            checks.append(
                .init(
                    "end_to_end", "\(name)_code_agreement", Self.agreement(a.codes, b.codes),
                    band: ParityBands.greedyMatch(dtype),
                    detail: "greedy codes: reference \(a.codes.count), model \(b.codes.count)"))
            checks.append(
                .init(
                    "end_to_end", "\(name)_mel_l1", n == 0 ? 0 : l1 / Double(n),
                    detail: "DiT mel of each side's first ≤ 30 codes, same noise, over \(n) common values"))
        }
        return checks
    }
}
