import Foundation
import Synchronization
import Testing

@testable import KAF
@testable import KimiConvert
@testable import KimiRuntime

/// The runtime against golden cases written by the official PyTorch code (formats/GOLDEN.md).
@Suite(.serialized) struct ParityTests {
    static let fixtures = ModelSummaryTests.fixtures
    static func golden(_ name: String) -> String { fixtures + "/golden/" + name + ".safetensors" }

    private static let convertedFiles = Mutex<[String: KAFFile]>([:])

    /// `convert` once per (folder, mode) for the whole test run; suites running in parallel share it.
    static func converted(_ folder: String, _ mode: PrecisionPolicy.Mode) throws -> KAFFile {
        let key = "\(folder) \(mode)"
        if let f = convertedFiles.withLock({ $0[key] }) { return f }
        let f = try convert(folder, mode)
        return convertedFiles.withLock { files in
            if let earlier = files[key] { return earlier }
            files[key] = f
            return f
        }
    }

    static func convert(_ folder: String, _ mode: PrecisionPolicy.Mode, interleave: Bool = true) throws -> KAFFile {
        let plan = try Converter.plan(
            ConvertOptions(input: fixtures + "/" + folder, policy: PrecisionPolicy(mode: mode, interleave: interleave)))
        let path = NSTemporaryDirectory() + "parity-\(UUID().uuidString).kaf"
        try ConversionRunner(plan: plan, threads: 2).write(to: path, overwrite: false)
        return try KAFFile(path: path)
    }

    /// f32 .kaf vs the official f32 reference: both heads within 1e-3 and cosine ≥ 0.99999 at every
    /// position (with one continuous-feature segment in the prompt), greedy lock-step ids identical.
    @Test(arguments: [
        ("tiny-release", "kimi_tiny_lm_f32"), ("tiny-release", "kimi_tiny_lm_textonly_f32"),
        ("tiny-qwen2", "qwen_tiny_lm_f32"),
    ])
    func f32MatchesTheOfficialCode(_ c: (String, String)) throws {
        let r = try Parity.run(try Self.convert(c.0, .float(.f32)), golden: Self.golden(c.1))
        for m in r.metrics { #expect(m.pass, "\(c.1) \(m.name): \(m.json.serialized())") }
        #expect(r.metrics.contains { $0.name == "greedy_text" })
        if c.1.hasPrefix("kimi") { #expect(r.metrics.contains { $0.name == "audio_logits" }) }
    }

    /// Stages whisper and vq (what kimi-parity runs for audio in): the f32 file passes the official
    /// encoders' goldens (features per frame, codes identical); q4 stays within its bound, and a bound
    /// tighter than its distance fails, so the metric can fail.
    @Test func encoderStagesMatchTheOfficialCode() throws {
        let f32 = try Self.convert("tiny-release", .float(.f32))
        for name in ["whisper_tiny_encoder_f32", "vq_tiny_fox_22k", "vq_tiny_long_31s"] {
            let r = try Parity.run(f32, golden: Self.golden(name))
            #expect(!r.metrics.isEmpty && r.pass, "\(name): \(r.metrics.map { $0.json.serialized() })")
        }
        let q4 = try Self.convert("tiny-release", .quantized(bits: 4, group: 32))
        let r = try Parity.run(q4, golden: Self.golden("whisper_tiny_encoder_f32"))
        #expect(r.pass && r.metrics.allSatisfy { $0.minCosine < 1 }, "\(r.metrics.map { $0.json.serialized() })")
        var tight = Parity.Tolerance()
        tight.encoderMinCosine = r.metrics.map(\.minCosine).min()! + 1e-9
        #expect(!(try Parity.run(q4, golden: Self.golden("whisper_tiny_encoder_f32"), tolerance: tight)).pass)
    }

    /// The release runs in bf16: how far our f32 path sits from the official bf16 run (measured
    /// 4.8e-3 max |Δ|, cosine 0.99997, greedy identical) — bounded here so a regression shows.
    @Test func f32PathNearTheBF16Reference() throws {
        var tol = Parity.Tolerance()
        tol.maxAbs = 1e-2
        tol.minCosine = 0.9999
        tol.minTop1 = 0.9
        let r = try Parity.run(
            try Self.convert("tiny-release", .float(.f32)), golden: Self.golden("kimi_tiny_lm_bf16"), tolerance: tol)
        for m in r.metrics { #expect(m.pass, "\(m.name): \(m.json.serialized())") }
    }

    /// Quantized files vs the f32 reference, reported and bounded (tiny random weights have near-tied
    /// logits, so top-1 is a weak signal here; cosine is the bound). Measured with int8 activations:
    /// q8 cosine 0.99985 / top-1 0.96; q4 0.988 / 0.57 (audio head).
    /// Both layouts: the `_r8` files (the default) and row-major ones (`--no-interleave`), whose
    /// matrices go through the row-major kernels.
    @Test(
        arguments: [
            (PrecisionPolicy.Mode.quantized(bits: 8, group: 32), 0.9995, 0.9),
            (.quantized(bits: 4, group: 32), 0.98, 0.5),
        ],
        [true, false])
    func quantizedStaysClose(_ c: (PrecisionPolicy.Mode, Double, Double), interleave: Bool) throws {
        var tol = Parity.Tolerance()
        tol.maxAbs = 1
        tol.minCosine = c.1
        tol.minTop1 = c.2
        tol.greedyMustMatch = false
        let kaf = try Self.convert("tiny-release", c.0, interleave: interleave)
        #expect(kaf.entry("llm.layers.0.mlp.up_proj.weight")?.dtype.isInterleaved == interleave)
        let r = try Parity.run(kaf, golden: Self.golden("kimi_tiny_lm_f32"), tolerance: tol)
        for m in r.metrics { #expect(m.pass, "\(c.0) interleave \(interleave) \(m.name): \(m.json.serialized())") }
    }

    /// Tokenizer ids on the real Qwen2.5 vocabulary vs quicktok-v1 (41 awkward strings): with NFC
    /// (Qwen2.5's tokenizer.json) `out.ids`, without it (plain tiktoken, as Kimi) `out.ids_tiktoken`.
    @Test func realQwenVocabularyMatchesQuicktok() throws {
        let ranks = try TiktokenRanks.load(path: Self.fixtures + "/golden/qwen25.tiktoken")
        let g = try SafetensorsFile(path: Self.golden("qwen25_tokenizer_text"))
        let n = try #require(g.metadata["cases"].flatMap { Int($0) })
        #expect(n >= 40)
        for (nfc, key) in [(true, "out.ids"), (false, "out.ids_tiktoken")] {
            let bpe = TiktokenBPE(ranks: ranks, specials: [:], normalizeNFC: nfc)
            for i in 0 ..< n {
                let k = String(format: "%03d", i)
                let text = try #require(g.metadata["in.text.\(k)"])
                guard let want = g["\(key).\(k)"] else { continue }
                #expect(bpe.encode(text) == (try want.int64s().map { Int($0) }), "\(key) case \(k): \(text.prefix(40))")
            }
        }
    }
}
