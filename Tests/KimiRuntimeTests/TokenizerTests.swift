import Testing
import Foundation
@testable import KAF
@testable import KimiConvert
@testable import KimiRuntime

@Suite struct TokenizerTests {
    static let fixtures = ModelSummaryTests.fixtures

    /// The tiny release's tiktoken.model, encoded by the real `tiktoken` library with the Qwen2
    /// pattern when the fixture was made (manifest `tokenizer.sample_ids_tiktoken`).
    @Test func tinyReleaseMatchesTiktoken() throws {
        let m = try JSONValue.parse(contentsOf: Self.fixtures + "/tiny-release.manifest.json")
        let text = try #require(m["tokenizer"]?["sample_text"]?.stringValue)
        let want = try #require(m["tokenizer"]?["sample_ids_tiktoken"]?.arrayValue).map { $0.intValue! }
        let bpe = TiktokenBPE(ranks: try TiktokenRanks.load(path: Self.fixtures + "/tiny-release/tiktoken.model"), specials: [:])
        #expect(bpe.encode(text) == want)
        #expect(bpe.decode(want) == text)
    }

    /// tokenizer.json (HF `tokenizers` BPE) → .kaf ranks → our encoder gives the HF ids.
    @Test func tinyQwenMatchesHuggingFace() throws {
        let plan = try Converter.plan(ConvertOptions(input: Self.fixtures + "/tiny-qwen2", policy: PrecisionPolicy(mode: .quantized(bits: 8, group: 32))))
        let path = NSTemporaryDirectory() + "tok-\(UUID().uuidString).kaf"
        try ConversionRunner(plan: plan, threads: 1).write(to: path, overwrite: false)
        let bpe = try TiktokenBPE(kaf: try KAFFile(path: path))
        let exp = try JSONValue.parse(contentsOf: Self.fixtures + "/tiny-qwen2/expected.json")
        let text = try #require(exp["sample"]?["text"]?.stringValue)
        let want = try #require(exp["sample"]?["ids"]?.arrayValue).map { $0.intValue! }
        #expect(bpe.encode(text) == want)
        #expect(bpe.specials[try #require(exp["specials"]?["<|im_end|>"]?.intValue)] == "<|im_end|>")
        #expect(bpe.decode([try #require(exp["specials"]?["<|im_start|>"]?.intValue)]) == "<|im_start|>")
    }

    /// The pre-tokenizer's pieces for strings that exercise every alternative of the pattern.
    @Test func preTokenizerPieces() {
        func pieces(_ s: String) -> [String] {
            let u = Array(s.unicodeScalars)
            return PreTokenizer.split(u).map { r in var t = ""; t.unicodeScalars.append(contentsOf: u[r]); return t }
        }
        #expect(pieces("Hello world") == ["Hello", " world"])
        #expect(pieces("I'm here, they'LL go") == ["I", "'m", " here", ",", " they", "'LL", " go"])
        #expect(pieces("x  \n\n  y") == ["x", "  \n\n", " ", " y"])
        #expect(pieces("a   b") == ["a", "  ", " b"])
        #expect(pieces("12345") == ["1", "2", "3", "4", "5"])
        #expect(pieces("end.  ") == ["end", ".", "  "])
        #expect(pieces("\tfoo") == ["\tfoo"])
        #expect(pieces("?!\n\nx") == ["?!\n\n", "x"])
        #expect(pieces("東京タワー") == ["東京タワー"])
    }

    @Test func streamingDecoderHoldsPartialCharacters() {
        var d = StreamingDecoder()
        let bytes = Array("a€🙂b".utf8)   // 1 + 3 + 4 + 1 bytes
        var out = ""
        for b in bytes { out += d.push([b]) }
        out += d.flush()
        #expect(out == "a€🙂b")
        var d2 = StreamingDecoder()
        #expect(d2.push([0xE2, 0x82]) == "")
        #expect(d2.push([0xAC, 0x41]) == "€A")
    }
}
