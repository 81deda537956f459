import Foundation
import Testing

@testable import KAF
@testable import KimiConvert
@testable import KimiRuntime

/// Audio → text end to end against the official pipeline (golden kimi_tiny_asr_f32 by
/// scripts/reference/make_asr_golden.py: GLM-4-Voice codes, Kimi's Whisper features, get_prompt,
/// _generate_loop) on real speech, f32 weights.
@Suite(.serialized) struct AudioQueryTests {
    static let golden = ModelSummaryTests.fixtures + "/golden/kimi_tiny_asr_f32.safetensors"

    @Test func asrMatchesTheOfficialPipeline() throws {
        let kaf = try ParityTests.convert("tiny-release", .float(.f32))
        // The LLM on the official inputs: logits and greedy ids as the official loop.
        let p = try Parity.run(kaf, golden: Self.golden)
        for m in p.metrics { #expect(m.pass, "\(m.name): \(m.json.serialized())") }
        // Our pipeline from the wav: the same prompt, the same features, the same answer.
        let g = try SafetensorsFile(path: Self.golden)
        var o = TextChat.Options()
        o.maxTokens = try #require(Int(g.metadata["k"] ?? ""))  // the steps the official loop ran
        let q = try AudioQuery(file: kaf, options: o)
        let clip = try AudioInput.load(path: ModelSummaryTests.fixtures + "/audio/fox_22k.wav")
        let r = try q.answer(clip.samples, instruction: AudioQuery.asrInstruction)
        func ints(_ n: String) throws -> [Int] { try g.tensor(named: n).int64s().map { Int($0) } }
        #expect(r.streams.audio == (try ints("in.audio_ids")))
        #expect(r.streams.text == (try ints("in.text_ids")))
        let mask = try g.tensor(named: "in.continuous_mask").int64s().map { $0 != 0 }
        #expect((0 ..< r.streams.count).map { r.streams.featureRows[$0] != nil } == mask)
        let want = try g.tensor(named: "in.whisper_features").floats()
        #expect(r.features.count == want.count)
        let d = zip(r.features, want).reduce(Float(0)) { max($0, abs($1.0 - $1.1)) }
        #expect(d <= 1e-4, "features max |Δ| \(d)")
        // The official post-processing of the greedy text: ids below the audio offset, up to eos.
        let offset = q.chat.llm.config.tokenOffset, eos = q.chat.prompt!.specials.textEos
        let greedy = try ints("out.greedy_text")
        let answer = greedy.prefix { $0 != eos }.filter { $0 < offset }
        #expect(!answer.isEmpty && r.turn.ids == answer, "\(r.turn.ids) vs \(answer)")
    }
}
