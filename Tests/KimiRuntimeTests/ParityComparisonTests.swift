import Foundation
import Testing

@testable import KAF
@testable import KimiConvert
@testable import KimiRuntime

/// The parity report's measurements (runtime/Parity/ParityComparison*.swift) on the tiny release:
/// a file against itself is exact and passes; a file with one tensor corrupted fails at that tensor
/// and first at its layer; a quantized file drifts by measurable amounts in every section.
@Suite(.serialized) struct ParityComparisonTests {
    static var quickInputs: ParityComparison.Inputs {
        var i = ParityComparison.Inputs()
        (i.window, i.maxWindows, i.speechSteps, i.answerTokens) = (96, 2, 12, 6)
        let clip = try! AudioInput.load(bytes: ParityDefaults.clipFLAC, name: "default clip")
        i.clips = [("default clip", clip.samples)]
        return i
    }

    /// A copy of `source` with `name`'s f32 values negated (SNR −6 dB): a test-only corruption.
    static func corrupted(_ source: KAFFile, negating name: String) throws -> KAFFile {
        let path = NSTemporaryDirectory() + "parity-corrupt-\(UUID().uuidString).kaf"
        let w = try KAFWriter(path: path)
        for e in source.entries where e.name != KAF.metaBlobName {
            if e.compression != .none {
                try w.addBlob(name: e.name, bytes: try source.blob(e.name), compress: true)
                continue
            }
            let t = try source.tensor(e.name)
            if e.name == name {
                precondition(e.dtype == .f32)
                var v = (0 ..< e.elementCount).map { -t.data.loadUnaligned(fromByteOffset: 4 * $0, as: Float.self) }
                try v.withUnsafeMutableBytes {
                    try w.addTensor(name: e.name, dtype: e.dtype, shape: e.shape, bytes: UnsafeRawBufferPointer($0))
                }
            } else {
                try w.addTensor(name: e.name, dtype: e.dtype, shape: e.shape, bytes: t.bytes)
            }
        }
        try w.addMeta(source.meta)
        try w.finish()
        return try KAFFile(path: path)
    }

    @Test func fileAgainstItselfIsExactAndPasses() throws {
        let f = try ParityTests.converted("tiny-release", .float(.f32))
        let report = try ParityComparison(reference: f, model: f, threads: 2).run(Self.quickInputs)
        #expect(
            report.verdict == .pass,
            "\(report.checks.filter { $0.verdict != .pass }.map { "\($0.section).\($0.name) \($0.value)" })")
        #expect(!report.tensors.isEmpty && report.tensors.allSatisfy { $0.snrDB == .infinity && $0.maxAbs == 0 })
        #expect(report.layers.count == 4 + 2, "trunk and MIMO layers of the tiny config")
        #expect(report.layers.allSatisfy { $0.minCosine >= 1 - 1e-12 && $0.relativeError == 0 })
        func value(_ s: String, _ n: String) -> Double? {
            report.checks.first { $0.section == s && $0.name == n }?.value
        }
        #expect(value("text_head", "kl_max") == 0)
        #expect(value("text_head", "same_top1") == 1)
        #expect(value("audio_head", "kl_max") == 0)
        #expect(value("audio_in", "vq_code_agreement") == 1)
        #expect(value("audio_in", "whisper_feature_cosine")! > 1 - 1e-9)
        #expect(value("audio_out", "vocoder_snr") == .infinity)
        #expect(value("audio_out", "dit_mel_l1") == 0)
        #expect(value("end_to_end", "text_to_text_match") == 1)
        #expect(value("end_to_end", "text_to_audio_code_agreement") == 1)
        #expect(value("end_to_end", "audio_to_audio_code_agreement") == 1)
        #expect(value("end_to_end", "audio_to_text_wer") == 0)
        // The LLM, encoders and detokenizer all ran: most of the file was read.
        let resident = try #require(value("resources", "model_resident"))
        #expect(resident * Double(1 << 30) > 0.5 * Double(f.file.count), "\(resident) GiB")
    }

    @Test func corruptedTensorFailsAtItsLayer() throws {
        let f = try ParityTests.converted("tiny-release", .float(.f32))
        let bad = try Self.corrupted(f, negating: "llm.layers.2.mlp.down_proj.weight")
        defer { unlink(bad.path) }
        var inputs = Self.quickInputs
        inputs.clips = []
        let report = try ParityComparison(reference: f, model: bad, threads: 2).run(inputs)
        #expect(report.verdict == .fail)
        let failing = report.tensors.filter { $0.verdict == .fail }.map(\.name)
        #expect(failing == ["llm.layers.2.mlp.down_proj.weight"])
        let firstBad = report.layers.first { $0.verdict != .pass }
        #expect(firstBad?.name == "llm.layers.2", "\(report.layers.map { ($0.name, $0.meanCosine) })")
        #expect(report.layers.prefix(2).allSatisfy { $0.verdict == .pass && $0.relativeError == 0 })
        #expect(report.checks.first { $0.name == "worst_mean_cosine" }?.detail.contains("llm.layers.2") == true)
        #expect(report.checks.first { $0.name == "kl_mean" }!.value > 0)
    }

    @Test func quantizedFileDrifts() throws {
        let f = try ParityTests.converted("tiny-release", .float(.f32))
        let q = try ParityTests.converted("tiny-release", .quantized(bits: 4, group: 32))
        let report = try ParityComparison(reference: f, model: q, threads: 2).run(Self.quickInputs)
        let llm = report.tensors.filter { $0.name.hasPrefix("llm.layers.") && $0.dtype.hasPrefix("q4") }
        #expect(!llm.isEmpty && llm.allSatisfy { $0.snrDB.isFinite && $0.snrDB > 10 && $0.snrDB < 30 })
        let kl = report.checks.first { $0.section == "text_head" && $0.name == "kl_mean" }!
        #expect(kl.value > 0 && kl.band?.pass == 0.1)
        #expect(report.layers.allSatisfy { $0.meanCosine < 1 && $0.meanCosine > 0.5 })
        // Rounded weights: greedy end-to-end results are reported, not judged.
        #expect(report.checks.filter { $0.section == "end_to_end" }.allSatisfy { $0.band == nil })
    }

    /// A plain Whisper file: encoder cosine per frame, the decoder head teacher-forced on the
    /// reference's ids, the transcripts' WER; exact against itself, measurably rounded at q8 (whose
    /// decoder is f16 with an 8-bit head copy).
    @Test func plainWhisperSections() throws {
        let f = try ParityTests.converted("tiny-whisper", .float(.f32))
        let q = try ParityTests.converted("tiny-whisper", .quantized(bits: 8, group: 32))
        let clip = try AudioInput.load(path: ParityTests.fixtures + "/audio/fox_22k.wav")
        var inputs = ParityComparison.Inputs()
        inputs.clips = [("fox", clip.samples)]
        inputs.whisperTokens = 24
        let same = try ParityComparison(reference: f, model: f, threads: 2).run(inputs)
        func value(_ r: ParityReport, _ n: String) -> Double? { r.checks.first { $0.name == n }?.value }
        #expect(same.verdict == .pass)
        #expect(value(same, "whisper_encoder_cosine")! > 1 - 1e-9 && value(same, "kl_max") == 0)
        #expect(value(same, "audio_to_text_wer") == 0 && same.layers.isEmpty)
        let positions = try #require(same.checks.first { $0.name == "kl_mean" }?.detail)
        #expect(positions.contains("Whisper decoder"), "\(positions)")
        let rounded = try ParityComparison(reference: f, model: q, threads: 2).run(inputs)
        #expect(value(rounded, "kl_mean")! > 0 && value(rounded, "whisper_encoder_cosine")! < 1)
        // The 8-bit head copy, which the f32 file lacks, is compared with the embedding it copies.
        let copy = try #require(rounded.tensors.first { $0.name == "whisper.decoder.head.weight" })
        #expect(copy.dtype.hasPrefix("q8") && copy.snrDB > 30 && copy.snrDB.isFinite)
        #expect(rounded.notes.contains { $0.hasPrefix("whisper: 1 clip") })
    }

    @Test func differentShapesAreRefusedNamingTheTensor() throws {
        let kimi = try ParityTests.converted("tiny-release", .float(.f32))
        let qwen = try ParityTests.converted("tiny-qwen2", .float(.f32))
        #expect {
            _ = try ParityComparison(reference: kimi, model: qwen)
        } throws: { e in
            let s = "\(e)"
            return s.contains("tensor '") && (s.contains("is not in the reference") || s.contains(" here but "))
        }
    }

    @Test func editDistanceAndWordErrorRate() {
        #expect(ParityComparison.editDistance([1, 2, 3], [1, 3]) == 1)
        #expect(ParityComparison.editDistance([Int](), [1, 2]) == 2)
        #expect(ParityComparison.editDistance(Array("kitten"), Array("sitting")) == 3)
        #expect(ParityComparison.wordErrorRate("the cat sat", reference: "the cat sat down") == 0.25)
        #expect(ParityComparison.wordErrorRate("", reference: "") == 0)
        #expect(ParityComparison.wordErrorRate("x", reference: "") == 1)
    }
}
