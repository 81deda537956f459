import Foundation
import Testing

@testable import KAF
@testable import KimiConvert
@testable import KimiRuntime

/// The Whisper decoder and greedy transcription against transformers' WhisperForConditionalGeneration
/// (goldens by scripts/reference/make_whisper_decoder_goldens.py on the tiny random multilingual
/// Tests/Fixtures/tiny-whisper, float32).
@Suite(.serialized) struct WhisperDecoderTests {
    static let cases = ["fox_en", "fox_detect", "long_31s_w1"]
    static func golden(_ c: String) throws -> SafetensorsFile {
        try SafetensorsFile(path: ModelSummaryTests.fixtures + "/golden/whisper_tiny_decoder_\(c).safetensors")
    }

    static func transcriber(_ mode: PrecisionPolicy.Mode) throws -> WhisperTranscriber {
        try WhisperTranscriber(file: ParityTests.converted("tiny-whisper", mode), threads: 2)
    }

    static func ids(_ g: SafetensorsFile, _ name: String) throws -> [Int] {
        try g.tensor(named: name).int64s().map { Int($0) }
    }

    /// Teacher-forced logits at every position (prompt + greedy ids) within 1e-3 of transformers'
    /// f32 forward, and the greedy ids identical (suppress_tokens at every step, begin_suppress_tokens
    /// at the first, the generate cap of the golden).
    @Test(arguments: cases) func f32MatchesTransformers(_ c: String) throws {
        let g = try Self.golden(c)
        let w = try Self.transcriber(.float(.f32))
        let mel = try g.tensor(named: "in.mel").floats()
        #expect(mel.count == 80 * 3000)
        mel.withUnsafeBufferPointer { w.encode(mel: $0.baseAddress!) }
        let prompt = try Self.ids(g, "in.prompt"), greedy = try Self.ids(g, "out.greedy")
        let want = try g.tensor(named: "out.logits").floats()
        let vocab = w.decoder.config.vocab
        let fed = prompt + greedy.dropLast()
        #expect(want.count == fed.count * vocab)
        w.decoder.restart()
        var worst: Float = 0
        for (i, t) in fed.enumerated() {
            let l = w.decoder.step(t)
            for j in 0 ..< vocab { worst = max(worst, abs(l[j] - want[i * vocab + j])) }
        }
        print("whisper decoder \(c) f32: max |Δlogit| \(worst)")
        #expect(worst <= 1e-3, "\(c): max |Δlogit| \(worst)")
        let cap = Int(g.metadata["max_new_tokens"] ?? "")
        let got = w.greedy(prompt: prompt, maxNew: cap)
        #expect(got == greedy, "\(c): greedy \(got) vs \(greedy)")
    }

    /// A q8 file keeps the decoder at f16 and reads the head from an 8-bit copy; `refine` makes the
    /// rows near the top exact. At every step of the golden decodings: the copy's logits stay far
    /// inside the refine margin of the exact (f16) ones, and after refining, the rows within the
    /// margin equal the exact values and the argmax is the exact head's.
    @Test func refinedHeadGivesTheExactTopLogits() throws {
        var runs: [(WhisperTranscriber, [Float], [Int])] = []
        for c in Self.cases {
            let g = try Self.golden(c)
            runs.append(
                (
                    try Self.transcriber(.quantized(bits: 8, group: 32)), try g.tensor(named: "in.mel").floats(),
                    try Self.ids(g, "in.prompt") + Self.ids(g, "out.greedy").dropLast()
                ))
        }
        let w0 = runs[0].0
        #expect(w0.decoder.headCopy?.dtype == .q8_g32_r8 && w0.decoder.tokens.dtype == .f16)
        var worst: Float = 0
        for (w, mel, fed) in runs {
            mel.withUnsafeBufferPointer { w.encode(mel: $0.baseAddress!) }
            w.decoder.restart()
            let vocab = w.decoder.config.vocab
            for t in fed {
                let l = w.decoder.step(t)
                let exact = (0 ..< vocab).map { w.decoder.exactLogit($0) }
                for j in 0 ..< vocab { worst = max(worst, abs(l[j] - exact[j])) }
                w.decoder.refine(l)
                let best = exact.max()!
                for j in 0 ..< vocab where exact[j] >= best - WhisperDecoder.refineMargin / 2 {
                    #expect(l[j] == exact[j])
                }
                #expect(exact.indices.max { exact[$0] < exact[$1] } == (0 ..< vocab).max { l[$0] < l[$1] })
            }
        }
        print("whisper decoder q8 head copy: max |Δlogit| vs f16 head \(worst)")
        #expect(worst > 0 && worst < WhisperDecoder.refineMargin / 4)
    }

    /// Language detection at the start-of-transcript position picks transformers' language; the
    /// decoding that follows uses it (the golden's prompt).
    @Test func detectsTheLanguageAsTransformers() throws {
        let g = try Self.golden("fox_detect")
        let w = try Self.transcriber(.float(.f32))
        let mel = try g.tensor(named: "in.mel").floats()
        mel.withUnsafeBufferPointer { w.encode(mel: $0.baseAddress!) }
        let want = try Self.ids(g, "out.language")
        #expect(w.detectLanguage() == want.first)
        #expect(try Self.ids(g, "in.prompt") == w.generation.prompt(language: want.first))
        #expect(w.generation.code(of: want[0]) == g.metadata["language"])
    }

    /// The whole path from audio: our resampler and log-mel, then the decoding, give the golden ids of
    /// each window (fox: window 0 in English; long_31s: its second window).
    @Test func transcribesFromAudio() throws {
        let w = try Self.transcriber(.float(.f32))
        let fox = try AudioInput.load(path: ModelSummaryTests.fixtures + "/audio/fox_22k.wav").samples
        let en = try Self.golden("fox_en"), cap = Int(en.metadata["max_new_tokens"] ?? "")
        let r = try w.transcribe(fox, language: "en", maxTokens: cap)
        #expect(r.windows.count == 1 && r.language == "en")
        #expect(r.windows.first?.ids == (try Self.ids(en, "out.greedy")))
        let detected = try w.transcribe(fox, maxTokens: cap)
        #expect(detected.language == (try Self.golden("fox_detect")).metadata["language"])
        let long = try AudioInput.load(path: ModelSummaryTests.fixtures + "/audio/long_31s.wav").samples
        let l = try w.transcribe(long, language: "en", maxTokens: cap)
        #expect(l.windows.count == 2)
        #expect(l.windows.last?.ids == (try Self.ids(Self.golden("long_31s_w1"), "out.greedy")))
        #expect(l.text == l.windows.map(\.text).joined())
    }

    /// kimi-parity's stage whisper_decoder: the f32 file passes with identical greedy ids; q8
    /// (encoder and decoder linears, embedding) stays within its bounds (logit cosine ≥ 0.999, top-1
    /// ≥ 0.9 per position). The random tiny model's greedy ids are not expected to survive q8 (top-2 gaps
    /// down to 0.008); the real tiny.en check is scripts/real (identical transcripts at q8).
    @Test func parityStage() throws {
        for mode in [PrecisionPolicy.Mode.float(.f32), .quantized(bits: 8, group: 32)] {
            let kaf = try ParityTests.converted("tiny-whisper", mode)
            for c in Self.cases {
                let path = ModelSummaryTests.fixtures + "/golden/whisper_tiny_decoder_\(c).safetensors"
                let r = try Parity.run(kaf, golden: path)
                print("whisper_decoder \(c) \(mode): \(r.metrics.map { $0.json.serialized() })")
                #expect(r.pass && r.metrics.count == 2, "\(c) \(mode)")
                if case .float = mode { #expect(r.metrics.last?.sequenceMatch == true) }
            }
        }
    }

    /// Language codes: unknown ones are refused with the list of valid ones.
    @Test func unknownLanguageListsTheValidOnes() throws {
        let w = try Self.transcriber(.float(.f32))
        #expect(try w.languageToken("de") == w.generation.languages["de"])
        do {
            _ = try w.languageToken("xx")
            Issue.record("xx accepted")
        } catch {
            #expect("\(error)".contains("unknown language 'xx'") && "\(error)".contains("de en es fr ja zh"))
        }
    }
}
