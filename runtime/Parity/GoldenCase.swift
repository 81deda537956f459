import Foundation
import KAF

/// Runs a .kaf model on a golden case written by the official code (formats/GOLDEN.md) and
/// measures how far it is: per logits tensor max |Δ|, max relative error, worst row cosine,
/// top-1 agreement; greedy sequences id for id; tokenizer ids exactly.
public enum Parity {
    public struct Tolerance: Sendable {
        public var maxAbs: Double = 1e-3
        public var minCosine: Double = 0.99999
        public var minTop1: Double = 1.0
        public var greedyMustMatch = true
        /// The encoder stages' cosine bound, when given (else `forEncoder` by the encoder's weight type).
        public var encoderMinCosine: Double? = nil
        /// What the defaults were chosen for (shown in the report).
        public var basis = "f32 weights"
        public init() {}

        /// Defaults for a model by the type of its LLM linears: exact-math bounds for f32, the
        /// rounding of a 16-bit file, and for q8/q4 the bounds the tests hold the tiny model to
        /// (measured there: q8 cosine 0.99985, top-1 0.96; q4 0.988, 0.57). Quantized files are
        /// not expected to reproduce greedy sequences id for id; the report still says whether they do.
        public static func forModel(_ kaf: KAFFile) -> Tolerance {
            var t = Tolerance()
            guard let e = kaf.entry("llm.layers.0.mlp.up_proj.weight") else { return t }
            t.basis = "\(e.dtype.name) weights"
            switch (e.dtype.isQuantized ? e.dtype.traits.quantBits : 0, e.dtype) {
            case (8, _):
                t.maxAbs = .infinity
                t.minCosine = 0.9995
                t.minTop1 = 0.9
                t.greedyMustMatch = false
            case (4, _):
                t.maxAbs = .infinity
                t.minCosine = 0.98
                t.minTop1 = 0.5
                t.greedyMustMatch = false
            case (_, .f16), (_, .bf16):
                t.maxAbs = 5e-2
                t.minCosine = 0.9999
                t.minTop1 = 0.9
                t.greedyMustMatch = false
            default: break
            }
            return t
        }
    }

    /// Bounds of the encoder stages (whisper, vq) by the type of the component's linears: its
    /// last hidden state per frame, cosine ≥ 0.99999 for f32 weights, 0.9999 for 16-bit, 0.999 for
    /// q8 (issue 9's bounds), 0.99 for q4 (reported: q4 encoders are not a recommended setting).
    /// Max |Δ| and top-1 are reported, not bounded: hidden states have no "top" class and their
    /// scale depends on the model.
    public static func encoderCosine(_ kaf: KAFFile, component: String) -> (bound: Double, basis: String) {
        guard let e = kaf.entries.first(where: { $0.component == component && $0.name.hasSuffix("fc1.weight") })
        else { return (0.99999, "f32 weights") }
        let bound: Double
        switch (e.dtype.isQuantized ? e.dtype.traits.quantBits : 0, e.dtype) {
        case (8, _): bound = 0.999
        case (4, _): bound = 0.99
        case (_, .f16), (_, .bf16): bound = 0.9999
        default: bound = 0.99999
        }
        return (bound, "\(component) \(e.dtype.name) weights")
    }

    public struct Metric: Sendable {
        public let name: String
        public var maxAbs = 0.0, maxRel = 0.0, minCosine = 1.0, top1 = 1.0
        public var rows = 0
        public var sequenceMatch: Bool? = nil
        public var matchedPrefix = 0, expectedLength = 0
        /// Signals (waveforms): 10·log10 of the reference's energy over the error's.
        public var snrDB: Double? = nil
        public var pass = true

        public var json: JSONValue {
            var o: [String: JSONValue] = ["name": .string(name), "pass": .bool(pass)]
            if let m = sequenceMatch {
                o["sequence_match"] = .bool(m)
                o["agreement"] = .double(top1)
                o["matched_prefix"] = .int(Int64(matchedPrefix))
                o["expected_length"] = .int(Int64(expectedLength))
            } else if let snr = snrDB {
                o["max_abs"] = .double(maxAbs)
                o["snr_db"] = snr.isFinite ? .double(snr) : .null
                o["samples"] = .int(Int64(rows))
            } else {
                o["max_abs"] = .double(maxAbs)
                o["max_rel"] = .double(maxRel)
                o["min_cosine"] = .double(minCosine)
                o["top1_agreement"] = .double(top1)
                o["rows"] = .int(Int64(rows))
            }
            return .object(o)
        }
    }

    public struct CaseResult: Sendable {
        public let path: String
        public let stage: String
        public var metrics: [Metric]
        public var pass: Bool { metrics.allSatisfy(\.pass) }
    }

    /// Compares `got` with `want`, both [rows, cols] row-major.
    public static func compare(_ name: String, got: [Float], want: [Float], cols: Int, tol: Tolerance) -> Metric {
        var m = Metric(name: name)
        let rows = cols > 0 ? want.count / cols : 0
        m.rows = rows
        var agree = 0
        for r in 0 ..< rows {
            var dot = 0.0, ng = 0.0, nw = 0.0
            var bestG = 0, bestW = 0
            var scale = 0.0
            for j in 0 ..< cols {
                let g = Double(got[r * cols + j]), w = Double(want[r * cols + j])
                m.maxAbs = max(m.maxAbs, abs(g - w))
                scale = max(scale, abs(w))
                dot += g * w
                ng += g * g
                nw += w * w
                if got[r * cols + j] > got[r * cols + bestG] { bestG = j }
                if want[r * cols + j] > want[r * cols + bestW] { bestW = j }
            }
            for j in 0 ..< cols {
                m.maxRel = max(
                    m.maxRel, abs(Double(got[r * cols + j]) - Double(want[r * cols + j])) / max(scale, 1e-12))
            }
            let cosv = (ng > 0 && nw > 0) ? dot / (ng.squareRoot() * nw.squareRoot()) : (ng == nw ? 1 : 0)
            m.minCosine = min(m.minCosine, cosv)
            if bestG == bestW { agree += 1 }
        }
        m.top1 = rows > 0 ? Double(agree) / Double(rows) : 1
        m.pass = m.maxAbs <= tol.maxAbs && m.minCosine >= tol.minCosine && m.top1 >= tol.minTop1
        return m
    }

    public static func compareSequence(_ name: String, got: [Int], want: [Int], tol: Tolerance) -> Metric {
        var m = Metric(name: name)
        m.expectedLength = want.count
        m.matchedPrefix = zip(got, want).prefix { $0 == $1 }.count
        m.sequenceMatch = got == want
        // Position-wise agreement (over the expected length; a missing position disagrees).
        m.top1 =
            want.isEmpty ? (got.isEmpty ? 1 : 0) : Double(zip(got, want).filter { $0 == $1 }.count) / Double(want.count)
        m.pass = !tol.greedyMustMatch || got == want
        return m
    }

    /// Runs one golden case against `kaf`.
    public static func run(
        _ kaf: KAFFile, golden path: String, tolerance tol: Tolerance = Tolerance(), threads: Int = 0
    ) throws -> CaseResult {
        let g = try SafetensorsFile(path: path)
        guard g.metadata["kaf.golden"] == "1", let stage = g.metadata["stage"] else {
            throw FormatError(path, "not a golden case (metadata kaf.golden = \"1\" and stage are required)")
        }
        func ints(_ n: String) throws -> [Int] { try g.tensor(named: n).int64s().map { Int($0) } }
        switch stage {
        case "text":
            let bpe = try TiktokenBPE(kaf: kaf)
            if let text = g.metadata["in.text"] {
                return CaseResult(
                    path: path, stage: stage,
                    metrics: [compareSequence("ids", got: bpe.encode(text), want: try ints("out.ids"), tol: tol)])
            }
            // Multi-case form: `cases` = N, in.text.NNN / out.ids.NNN.
            guard let n = g.metadata["cases"].flatMap({ Int($0) }), n > 0 else {
                throw FormatError(path, "stage text needs in.text or cases")
            }
            var metrics: [Metric] = []
            for i in 0 ..< n {
                let k = String(format: "%03d", i)
                guard let text = g.metadata["in.text.\(k)"] else { throw FormatError(path, "missing in.text.\(k)") }
                metrics.append(
                    compareSequence("ids.\(k)", got: bpe.encode(text), want: try ints("out.ids.\(k)"), tol: tol))
            }
            return CaseResult(path: path, stage: stage, metrics: metrics)
        case "lm":
            return try runLM(kaf, g, path: path, tol: tol, threads: threads)
        case "whisper":
            return try runWhisper(kaf, g, path: path, tol: tol, threads: threads)
        case "vq":
            return try runVQ(kaf, g, path: path, threads: threads)
        case "dit":
            return try runDiT(kaf, g, path: path, threads: threads)
        case "vocoder":
            return try runVocoder(kaf, g, path: path, threads: threads)
        case "detok":
            return try runDetok(kaf, g, path: path, threads: threads)
        case "whisper_decoder":
            return try runWhisperDecoder(kaf, g, path: path, tol: tol, threads: threads)
        default:
            throw FormatError(path, "unknown golden stage '\(stage)'")
        }
    }

    /// Stage whisper: `in.mel` [mels, 3000] through the file's Whisper encoder; its last hidden state
    /// and the regrouped features against `out.encoder` and `out.features`, per frame.
    static func runWhisper(_ kaf: KAFFile, _ g: SafetensorsFile, path: String, tol: Tolerance, threads: Int) throws
        -> CaseResult
    {
        let encoder = try WhisperEncoder(file: kaf, threads: threads)
        let d = encoder.config.dModel, mels = encoder.config.melBins
        let mel = try g.tensor(named: "in.mel")
        guard mel.shape == [mels, encoder.inFrames] else {
            throw FormatError(path, "in.mel is \(mel.shape), the encoder takes [\(mels), \(encoder.inFrames)]")
        }
        let want = try g.tensor(named: "out.encoder")
        guard want.shape == [encoder.frames, d] else {
            throw FormatError(path, "out.encoder is \(want.shape), the encoder gives [\(encoder.frames), \(d)]")
        }
        var got = [Float](repeating: 0, count: encoder.frames * d)
        try mel.floats().withUnsafeBufferPointer { m in
            got.withUnsafeMutableBufferPointer { encoder(mel: m.baseAddress!, into: $0.baseAddress!) }
        }
        var t = tol
        let bound = encoderCosine(kaf, component: "whisper").bound
        t.minCosine = tol.encoderMinCosine ?? bound
        (t.maxAbs, t.minTop1) = (.infinity, 0)
        // All 1500 frames are bounded for float weights only. With quantized weights the frames past
        // the audio (the silent padding of the 30 s window) drift far more than the audio's frames:
        // measured on real tiny.en, q8 min cosine 0.73–0.999 there vs ≥ 0.9993 on the audio, and
        // CTranslate2's int8 the same (0.87–0.996 vs ≥ 0.988). `features` holds the audio's frames.
        var all = t
        if bound < 0.9999 && tol.encoderMinCosine == nil { all.minCosine = 0 }
        var metrics = [compare("encoder", got: got, want: try want.floats(), cols: d, tol: all)]
        if let f = g["out.features"] {
            let wantF = try f.floats()
            guard wantF.count % (4 * d) == 0, wantF.count <= got.count else {
                throw FormatError(path, "out.features is \(f.shape), not [n, \(4 * d)] with 4n ≤ \(encoder.frames)")
            }
            metrics.append(compare("features", got: Array(got.prefix(wantF.count)), want: wantF, cols: 4 * d, tol: t))
        }
        return CaseResult(path: path, stage: "whisper", metrics: metrics)
    }

    /// Stage whisper_decoder (plain Whisper files): `in.mel` through the encoder, then the decoder
    /// teacher-forced on `in.prompt` + `out.greedy` (all but the last id): its logits at every
    /// position against `out.logits`, and the greedy ids after the prompt against `out.greedy`.
    /// Bounds by the weights' type as the encoder stage's cosine; f32 files also max |Δ| 1e-3, the
    /// same top-1 everywhere and identical greedy ids; quantized files top-1 ≥ 0.8 (the tiny random
    /// model at q8: 0.89–1.0, its top-2 gaps are as small as 0.008), the ids reported.
    static func runWhisperDecoder(
        _ kaf: KAFFile, _ g: SafetensorsFile, path: String, tol: Tolerance, threads: Int
    ) throws -> CaseResult {
        let w = try WhisperTranscriber(file: kaf, threads: threads)
        let mel = try g.tensor(named: "in.mel")
        guard mel.shape == [w.encoder.config.melBins, w.encoder.inFrames] else {
            throw FormatError(
                path, "in.mel is \(mel.shape), the encoder takes [\(w.encoder.config.melBins), \(w.encoder.inFrames)]")
        }
        let vocab = w.decoder.config.vocab
        let prompt = try g.tensor(named: "in.prompt").int64s().map { Int($0) }
        let greedy = try g.tensor(named: "out.greedy").int64s().map { Int($0) }
        let fed = prompt + greedy.dropLast()
        let want = try g.tensor(named: "out.logits").floats()
        guard !prompt.isEmpty, !greedy.isEmpty, want.count == fed.count * vocab,
            fed.count <= w.decoder.config.maxTargetPositions,
            fed.allSatisfy({ (0 ..< vocab).contains($0) })
        else {
            throw FormatError(
                path, "in.prompt/out.greedy/out.logits do not fit together or this model (vocab \(vocab))")
        }
        try mel.floats().withUnsafeBufferPointer { w.encode(mel: $0.baseAddress!) }
        var got = [Float](repeating: 0, count: want.count)
        w.decoder.restart()
        for (i, t) in fed.enumerated() {
            let l = w.decoder.step(t)
            for j in 0 ..< vocab { got[i * vocab + j] = l[j] }
        }
        let ids = w.greedy(prompt: prompt, maxNew: Int(g.metadata["max_new_tokens"] ?? ""))
        var t = tol
        let bound = encoderCosine(kaf, component: "whisper").bound
        t.minCosine = tol.encoderMinCosine ?? bound
        if bound < 0.99999 { t.maxAbs = .infinity }
        if bound < 0.9999 { (t.minTop1, t.greedyMustMatch) = (0.8, false) }
        return CaseResult(
            path: path, stage: "whisper_decoder",
            metrics: [
                compare("decoder_logits", got: got, want: want, cols: vocab, tol: t),
                compareSequence("greedy", got: ids, want: greedy, tol: t),
            ])
    }

    /// Stage vq: `in.wav` (16 kHz) through the file's VQ tokenizer; the codes against `out.codes`.
    /// Identical codes are required when the encoder's weights are f32 (the codebook search is f32
    /// always); with quantized weights a code near a tie may flip, so the agreement is reported.
    static func runVQ(_ kaf: KAFFile, _ g: SafetensorsFile, path: String, threads: Int) throws -> CaseResult {
        guard let wav = g["in.wav"] else { throw FormatError(path, "stage vq needs in.wav (f32 samples at 16 kHz)") }
        let vq = try VQTokenizer(file: kaf, threads: threads)
        let got = vq(try wav.floats())
        var t = Tolerance()
        t.greedyMustMatch = encoderCosine(kaf, component: "vq").bound == 0.99999
        return CaseResult(
            path: path, stage: "vq",
            metrics: [
                compareSequence(
                    "codes", got: got, want: try g.tensor(named: "out.codes").int64s().map { Int($0) }, tol: t)
            ])
    }

    static func runLM(_ kaf: KAFFile, _ g: SafetensorsFile, path: String, tol: Tolerance, threads: Int = 0) throws
        -> CaseResult
    {
        func ints(_ n: String) throws -> [Int] { try g.tensor(named: n).int64s().map { Int($0) } }
        let llm = try KimiLLM(file: kaf, threads: threads)
        let c = llm.config
        let textIds = try ints("in.text_ids")
        let audioIds = c.isKimi ? try ints("in.audio_ids") : textIds
        guard audioIds.count == textIds.count else {
            throw FormatError(path, "in.audio_ids and in.text_ids differ in length")
        }
        let T = textIds.count
        let features = g["in.whisper_features"].map { try? $0.floats() } ?? nil
        let mask = g["in.continuous_mask"].map { try? $0.int64s() } ?? nil
        let wantAudio = g["out.audio_logits"] != nil
        if wantAudio && (llm.mimoOutput == nil) {
            throw FormatError(kaf.path, "the golden case needs audio logits, but this file has no MIMO branch")
        }
        let vocabOut = llm.lmHead.rows
        var gotText = [Float](repeating: 0, count: T * vocabOut)
        var gotAudio = [Float](repeating: 0, count: wantAudio ? T * llm.mimoOutput!.rows : 0)
        let addText = textIds.reduce(0, +) != 0
        // Continuous positions take the feature rows in order (one segment, docs/ARCHITECTURE.md §1.3).
        var featureRows: [Int: Int] = [:]
        if let mask, let features {
            var r = 0
            for p in 0 ..< min(T, mask.count) where mask[p] != 0 {
                featureRows[p] = r
                r += 1
            }
            guard r * c.adaptorIn <= features.count else {
                throw FormatError(path, "in.whisper_features has fewer rows than continuous positions")
            }
        }
        let audioRows = llm.mimoOutput?.rows ?? 0
        try (features ?? []).withUnsafeBufferPointer { fb in
            let ptrs = featureRows.mapValues { fb.baseAddress! + $0 * c.adaptorIn }
            try llm.prefill(
                audioIds: audioIds, textIds: textIds, addText: c.isKimi ? addText : true, features: ptrs,
                start: 0, wantAudio: wantAudio, wantLogits: { _ in true }
            ) { p, text, audio in
                for i in 0 ..< vocabOut { gotText[p * vocabOut + i] = text[i] }
                if let audio { for i in 0 ..< audioRows { gotAudio[p * audioRows + i] = audio[i] } }
            }
        }
        var metrics = [
            compare(
                "text_logits", got: gotText, want: try g.tensor(named: "out.text_logits").floats(), cols: vocabOut,
                tol: tol)
        ]
        if wantAudio {
            metrics.append(
                compare(
                    "audio_logits", got: gotAudio, want: try g.tensor(named: "out.audio_logits").floats(),
                    cols: llm.mimoOutput!.rows, tol: tol))
        }
        if let wantText = try? ints("out.greedy_text") {
            if c.isKimi {
                let loop = LockStep(specials: try KimiSpecials(tokenizer: TiktokenBPE(kaf: kaf), file: kaf.path))
                let wantAudioSeq = try? ints("out.greedy_audio")
                // output_type as the reference ran it (metadata); "both" when audio ids are given.
                let outputName = g.metadata["output_type"] ?? (wantAudioSeq == nil ? "text" : "both")
                var ts = Sampler(), asamp = Sampler()
                let got = try loop.run(
                    llm, promptLength: T, steps: wantText.count, output: outputName == "text" ? .text : .both,
                    text: &ts, audio: &asamp)
                metrics.append(compareSequence("greedy_text", got: got.text, want: wantText, tol: tol))
                if let wa = wantAudioSeq {
                    metrics.append(compareSequence("greedy_audio", got: got.audio, want: wa, tol: tol))
                }
            } else {
                var greedy = Sampler()
                let got = try QwenLoop(stops: []).run(llm, promptLength: T, maxTokens: wantText.count, sampler: &greedy)
                metrics.append(compareSequence("greedy_text", got: got, want: wantText, tol: tol))
            }
        }
        return CaseResult(path: path, stage: "lm", metrics: metrics)
    }
}
