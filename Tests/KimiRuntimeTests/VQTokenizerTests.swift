import Foundation
import Testing

@testable import KAF
@testable import KimiConvert
@testable import KimiRuntime

/// GLM-4-Voice's speech tokenizer against the official WhisperVQEncoder on the tiny release, over real
/// speech (goldens by scripts/reference/make_vq_goldens.py), one piece and two batched pieces.
@Suite(.serialized) struct VQTokenizerTests {
    static func golden(_ clip: String) throws -> SafetensorsFile {
        try SafetensorsFile(path: ModelSummaryTests.fixtures + "/golden/vq_tiny_" + clip + ".safetensors")
    }

    static func samples(_ clip: String) throws -> [Float] {
        try SafetensorsFile(path: ModelSummaryTests.fixtures + "/golden/frontend_" + clip + ".safetensors")
            .tensor(named: "out.wav16k").floats()
    }

    /// f32 weights: the codes equal the official ones id for id.
    @Test(arguments: ["fox_22k", "long_31s"])
    func f32CodesMatchGLM(_ clip: String) throws {
        let vq = try VQTokenizer(file: try ParityTests.convert("tiny-release", .float(.f32)))
        let got = vq(try Self.samples(clip))
        let want = try Self.golden(clip).tensor(named: "out.codes").int64s().map { Int($0) }
        #expect(got.count == want.count)
        #expect(got == want, "\(clip): \(zip(got, want).filter { $0 != $1 }.count) of \(want.count) differ")
    }

    /// The default policy (encoder linears q8, codebook f32): the share of identical codes, reported
    /// and bounded (a quantized encoder may move a vector across a boundary between two codes).
    @Test func q8CodesAgreeMostly() throws {
        let vq = try VQTokenizer(file: try ParityTests.convert("tiny-release", .quantized(bits: 8, group: 32)))
        let got = vq(try Self.samples("long_31s"))
        let want = try Self.golden("long_31s").tensor(named: "out.codes").int64s().map { Int($0) }
        let same = Double(zip(got, want).filter { $0 == $1 }.count) / Double(max(want.count, 1))
        print("vq q8: \(same) of the codes equal the f32 reference")
        #expect(got.count == want.count && same >= 0.9, "agreement \(same)")
    }
}
