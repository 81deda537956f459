import Foundation
import Testing

@testable import KAF
@testable import KimiConvert
@testable import KimiRuntime

/// The prompt builder against the streams the official prompt manager wrote into the golden
/// cases (`KimiAPromptManager.get_prompt`, scripts/reference/make_lm_goldens.py): a user text then
/// a user audio segment ("both"), and a text-only prompt ("text").
@Suite(.serialized) struct KimiPromptTests {
    @Test(arguments: ["kimi_tiny_lm_f32", "kimi_tiny_lm_textonly_f32"])
    func buildsTheOfficialStreams(_ name: String) throws {
        let kaf = try ParityTests.convert("tiny-release", .quantized(bits: 8, group: 32))
        let g = try SafetensorsFile(path: ParityTests.golden(name))
        let messages = try JSONValue.parse(try #require(g.metadata["messages"]), file: name)
        let codes =
            try g.metadata["audio_codes"].map { try JSONValue.parse($0, file: name) }?.arrayValue?.compactMap(
                \.intValue) ?? []
        let output: KimiOutput = g.metadata["output_type"] == "text" ? .text : .both
        var built: [KimiPrompt.Message] = []
        for m in try #require(messages.arrayValue) {
            let role: KimiPrompt.Role = m["role"]?.stringValue == "user" ? .user : .assistant
            if m["message_type"]?.stringValue == "audio" {
                built.append(.init(role, .audio(codes: codes)))
            } else {
                built.append(.init(role, .text(try #require(m["content"]?.stringValue))))
            }
        }
        let bpe = try TiktokenBPE(kaf: kaf)
        let c = try LLMConfig(json: try #require(kaf.meta["components"]?["llm"]?["config"]), file: kaf.path)
        let prompt = KimiPrompt(
            specials: try KimiSpecials(tokenizer: bpe, file: kaf.path), tokenOffset: c.tokenOffset,
            encode: { bpe.encode($0) })
        let s = prompt.build(built, output: output)
        func ints(_ n: String) throws -> [Int] { try g.tensor(named: n).int64s().map { Int($0) } }
        #expect(s.audio == (try ints("in.audio_ids")))
        #expect(s.text == (try ints("in.text_ids")))
        let mask =
            try g["in.continuous_mask"].map { try $0.int64s().map { $0 != 0 } }
            ?? Array(repeating: false, count: s.count)
        #expect((0 ..< s.count).map { s.featureRows[$0] != nil } == mask)
        #expect(
            s.featureRows.keys.sorted().map { s.featureRows[$0]! }
                == Array(0 ..< codes.count * (mask.contains(true) ? 1 : 0)))
    }

    /// A missing special token is one error naming the file and the token.
    @Test func missingSpecialIsAnError() throws {
        do {
            _ = try KimiSpecials(byName: ["<|im_msg_end|>": 1], file: "x.kaf")
            Issue.record("no error")
        } catch let e as FormatError {
            #expect(e.file == "x.kaf" && e.message.contains("<|im_media_begin|>"), "\(e)")
        }
    }
}
