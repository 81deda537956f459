import Foundation
import KAF

/// The LLM sections: the text head on a corpus (KL divergence, same top-1, perplexity, as
/// llama-perplexity --kl-divergence computes them), the hidden state after every layer on the
/// same positions, and the audio head teacher-forced on speech prompts.
extension ParityComparison {
    /// Running KL / top-1 / log-likelihood statistics of one head.
    struct HeadStats {
        var kl: [Double] = []
        var sameTop1 = 0
        var nllReference = 0.0, nllModel = 0.0

        /// `ref` holds the reference's log-probabilities; `logits` the model's raw row; `next` the
        /// id that follows (nil: no perplexity term).
        /// The model's log-probabilities, computed as the reference's are (so equal logits give 0).
        var modelLogp: [Float] = []

        mutating func add(ref: UnsafePointer<Float>, logits: UnsafePointer<Float>, count v: Int, next: Int?) {
            if modelLogp.count != v { modelLogp = [Float](repeating: 0, count: v) }
            var kl = 0.0, arg = 0, refArg = 0
            modelLogp.withUnsafeMutableBufferPointer { lm in
                ParityComparison.logSoftmax(logits, v, into: lm.baseAddress!)
                (arg, refArg) = (argmax(lm.baseAddress!, count: v), argmax(ref, count: v))
                for i in 0 ..< v {
                    let p = exp(Double(ref[i]))
                    if p > 0 { kl += p * (Double(ref[i]) - Double(lm[i])) }
                }
                if let next {
                    nllReference -= Double(ref[next])
                    nllModel -= Double(lm[next])
                }
            }
            self.kl.append(max(kl, 0))
            if refArg == arg { sameTop1 += 1 }
        }

        var count: Int { kl.count }
        var mean: Double { kl.isEmpty ? 0 : kl.reduce(0, +) / Double(kl.count) }
        func quantile(_ q: Double) -> Double {
            guard !kl.isEmpty else { return 0 }
            let s = kl.sorted()
            return s[min(s.count - 1, Int((q * Double(s.count - 1)).rounded(.up)))]
        }
    }

    /// Log-softmax of `x` (count `v`) into `out`.
    static func logSoftmax(_ x: UnsafePointer<Float>, _ v: Int, into out: UnsafeMutablePointer<Float>) {
        let lse = logSumExp(x, count: v)
        for i in 0 ..< v { out[i] = x[i] - lse }
    }

    func headChecks(_ section: String, _ h: HeadStats, dtype: DType?, perplexity: Bool, detail: String)
        -> [ParityReport.Check]
    {
        var c: [ParityReport.Check] = [
            .init(section, "kl_mean", h.mean, unit: "nats", band: ParityBands.klMean(dtype), detail: detail),
            .init(section, "kl_p99", h.quantile(0.99), unit: "nats"),
            .init(section, "kl_max", h.kl.max() ?? 0, unit: "nats"),
            .init(
                section, "same_top1", Double(h.sameTop1) / Double(max(h.count, 1)), band: ParityBands.sameTop1(dtype),
                detail: "\(h.sameTop1) of \(h.count) positions"),
        ]
        if perplexity {
            let n = Double(max(h.count, 1))
            let (pr, pm) = (exp(h.nllReference / n), exp(h.nllModel / n))
            c += [
                .init(section, "ppl_reference", pr), .init(section, "ppl_model", pm),
                .init(
                    section, "ppl_change", abs(pm / pr - 1), band: ParityBands.perplexityChange(dtype),
                    detail: String(format: "%+.3f%%", 100 * (pm / pr - 1))),
            ]
        }
        return c
    }

    var llmType: DType? { model.entry("llm.layers.0.mlp.up_proj.weight")?.dtype }

    /// Text head and per-layer drift on the corpus: windows of `inputs.window` tokens, each run on
    /// both sides; KL, top-1 and perplexity on the second half of each window (llama-perplexity's
    /// scoring), hidden states after every trunk (and MIMO) layer on every position.
    func textHead(_ inputs: Inputs) throws -> ([ParityReport.Check], [ParityReport.LayerDrift]) {
        let bpe = try TiktokenBPE(kaf: reference)
        let tokens = bpe.encode(inputs.corpus)
        let window = min(inputs.window, tokens.count)
        guard window >= 16 else {
            throw FormatError(inputs.corpusName, "the text gives \(tokens.count) tokens; at least 16 are needed")
        }
        let refLLM = try KimiLLM(file: reference, contextLength: window, threads: threads)
        let modLLM = try KimiLLM(file: model, contextLength: window, threads: threads)
        let c = refLLM.config, D = c.hidden, V = refLLM.textVocab
        let wantAudio = !refLLM.mimo.isEmpty && !modLLM.mimo.isEmpty
        let L = c.layers + (wantAudio ? modLLM.mimo.count : 0)
        let blank = c.isKimi ? try KimiSpecials(tokenizer: bpe, file: reference.path).blank : 0
        let windows = min(inputs.maxWindows, max(1, tokens.count / window))
        let first = window / 2
        // The reference's log-probabilities of the scored positions and its hidden states after
        // every layer, per window (the model's are compared as they are computed).
        let refLogp = UnsafeMutablePointer<Float>.allocate(capacity: (window - first) * V)
        let refHidden = UnsafeMutablePointer<Float>.allocate(capacity: L * window * D)
        defer {
            refLogp.deallocate()
            refHidden.deallocate()
        }
        var sumCos = [Double](repeating: 0, count: L), minCos = [Double](repeating: 1, count: L)
        var errSq = [Double](repeating: 0, count: L), refSq = [Double](repeating: 0, count: L)
        var stats = HeadStats()
        for w in 0 ..< windows {
            if windows > 1 { onStage("text head: window \(w + 1) of \(windows)") }
            let ids = Array(tokens[w * window ..< (w + 1) * window])
            let audio = c.isKimi ? [Int](repeating: blank, count: window) : ids
            try timed(true) {
                try refLLM.prefill(
                    audioIds: audio, textIds: ids, addText: true, start: 0, wantAudio: wantAudio,
                    wantLogits: { $0 >= first && $0 < window - 1 },
                    logitsFor: { p, text, _ in Self.logSoftmax(text, V, into: refLogp + (p - first) * V) },
                    afterLayer: { l, p0, h, n in (refHidden + (l * window + p0) * D).update(from: h, count: n * D) })
            }
            try timed(false) {
                try modLLM.prefill(
                    audioIds: audio, textIds: ids, addText: true, start: 0, wantAudio: wantAudio,
                    wantLogits: { $0 >= first && $0 < window - 1 },
                    logitsFor: { p, text, _ in
                        stats.add(ref: refLogp + (p - first) * V, logits: text, count: V, next: ids[p + 1])
                    },
                    afterLayer: { l, p0, h, n in
                        for t in 0 ..< n {
                            let r = refHidden + (l * window + p0 + t) * D, m = h + t * D
                            var dot = 0.0, nr = 0.0, nm = 0.0, e = 0.0
                            for j in 0 ..< D {
                                let (a, b) = (Double(m[j]), Double(r[j]))
                                (dot, nr, nm, e) = (dot + a * b, nr + b * b, nm + a * a, e + (a - b) * (a - b))
                            }
                            let cos = nr == 0 && nm == 0 ? 1 : dot / max((nr * nm).squareRoot(), 1e-300)
                            sumCos[l] += cos
                            minCos[l] = min(minCos[l], cos)
                            (errSq[l], refSq[l]) = (errSq[l] + e, refSq[l] + nr)
                        }
                    })
            }
        }
        notes.append(
            "text head: \(windows) window\(windows == 1 ? "" : "s") of \(window) tokens of \(inputs.corpusName) (\(tokens.count) tokens), the second half of each scored"
        )
        let dtype = llmType
        var checks = headChecks(
            "text_head", stats, dtype: dtype, perplexity: true, detail: "\(stats.count) positions")
        let layers = (0 ..< L).map { l -> ParityReport.LayerDrift in
            let name = l < c.layers ? "llm.layers.\(l)" : "mimo.layers.\(l - c.layers)"
            return .init(
                name: name, meanCosine: sumCos[l] / Double(windows * window), minCosine: minCos[l],
                relativeError: (errSq[l] / max(refSq[l], 1e-300)).squareRoot(), band: ParityBands.layerCosine(dtype))
        }
        if let worst = layers.min(by: { $0.meanCosine < $1.meanCosine }) {
            let firstBad = layers.first { $0.verdict != .pass }
            checks.append(
                .init(
                    "layers", "worst_mean_cosine", worst.meanCosine, band: ParityBands.layerCosine(dtype),
                    detail: worst.name + (firstBad.map { "; first layer out of the pass band: \($0.name)" } ?? "")))
        }
        return (checks, layers)
    }

    /// The audio head teacher-forced on speech prompts: the reference's codes and features of each
    /// clip in the asr layout, both LLMs on the same streams; KL and top-1 of the audio logits at
    /// every position whose next audio id is a code.
    func audioHead(_ inputs: Inputs) throws -> [ParityReport.Check] {
        let refEnc = try AudioEncoders(file: reference, threads: threads)
        let bpe = try TiktokenBPE(kaf: reference)
        let specials = try KimiSpecials(tokenizer: bpe, file: reference.path)
        guard let json = reference.meta["components"]?["llm"]?["config"] else { return [] }
        let config = try LLMConfig(json: json, file: reference.path)
        let prompt = KimiPrompt(specials: specials, tokenOffset: config.tokenOffset, encode: { bpe.encode($0) })
        var stats = HeadStats()
        for clip in inputs.clips {
            let e = try timed(true) { try refEnc.encode(clip.samples) }
            let s = prompt.build(
                [.init(.user, .text(AudioQuery.asrInstruction)), .init(.user, .audio(codes: e.codes))], output: .both)
            guard s.count <= config.maxPositions else {
                notes.append("audio head: \(clip.name) is longer than the context; skipped")
                continue
            }
            // Contexts of the prompt's length: the KV caches of the released 8192 would be 1.1 GB each.
            let refLLM = try KimiLLM(file: reference, contextLength: s.count, threads: threads)
            let modLLM = try KimiLLM(file: model, contextLength: s.count, threads: threads)
            let offset = refLLM.config.tokenOffset, V = refLLM.mimoOutput!.rows
            let scored = (0 ..< s.count - 1).filter { s.audio[$0 + 1] >= offset }
            let index = Dictionary(uniqueKeysWithValues: scored.enumerated().map { ($1, $0) })
            let refLogp = UnsafeMutablePointer<Float>.allocate(capacity: max(scored.count, 1) * V)
            defer { refLogp.deallocate() }
            let w = refEnc.featureWidth
            try e.features.withUnsafeBufferPointer { f in
                let rows = s.featureRows.mapValues { f.baseAddress! + $0 * w }
                try timed(true) {
                    try refLLM.prefill(
                        audioIds: s.audio, textIds: s.text, addText: s.addsText, features: rows, start: 0,
                        wantAudio: true, wantLogits: { index[$0] != nil },
                        logitsFor: { p, _, a in Self.logSoftmax(a!, V, into: refLogp + index[p]! * V) })
                }
                try timed(false) {
                    try modLLM.prefill(
                        audioIds: s.audio, textIds: s.text, addText: s.addsText, features: rows, start: 0,
                        wantAudio: true, wantLogits: { index[$0] != nil },
                        logitsFor: { p, _, a in
                            stats.add(ref: refLogp + index[p]! * V, logits: a!, count: V, next: s.audio[p + 1])
                        })
                }
            }
        }
        notes.append(
            "audio head: the asr prompt of each clip with the reference's codes and Whisper features on both sides")
        return headChecks(
            "audio_head", stats, dtype: model.entry("mimo.layers.0.mlp.up_proj.weight")?.dtype, perplexity: false,
            detail: "\(stats.count) code positions")
    }
}
