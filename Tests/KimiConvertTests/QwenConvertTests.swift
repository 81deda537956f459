import Testing
import Foundation
@testable import KAF
@testable import KimiConvert

/// A plain Hugging Face Qwen2 checkpoint (made by transformers and the `tokenizers` trainer):
/// weights under `llm.`, tokenizer.json turned into tiktoken ranks with the same bytes per id.
@Suite struct QwenConvertTests {
    static let folder = ConvertFixtures.root + "/tiny-qwen2"

    @Test func convertsWeightsAndTokenizer() throws {
        let plan = try Converter.plan(ConvertOptions(input: Self.folder, policy: PrecisionPolicy(mode: .float(.f32))))
        let path = NSTemporaryDirectory() + "qwen-\(UUID().uuidString).kaf"
        try ConversionRunner(plan: plan, threads: 2).write(to: path, overwrite: false)
        let kaf = try KAFFile(path: path, verify: true)
        #expect(kaf.components == ["llm"])
        #expect(plan.items.count == 2 * 12 + 3)
        for item in plan.items { #expect(dequantize(try kaf.tensor(item.name)) == (try item.producer.allFloats()), "\(item.name)") }

        let expected = try JSONValue.parse(contentsOf: Self.folder + "/expected.json")
        let nBase = try #require(expected["num_base_tokens"]?.intValue)
        let blob = try kaf.blob("tokenizer.tiktoken")
        let ranks = try blob.withUnsafeBytes { try TiktokenRanks.parse($0, path: "blob") }
        #expect(ranks.count == nBase)
        let tokens = try #require(expected["tokens"]?.objectValue)
        #expect(tokens.count == nBase)
        for (id, hex) in tokens {
            let want = try #require(hex.stringValue)
            let got = ranks.tokens[Int(id)!].map { String(format: "%02x", $0) }.joined()
            #expect(got == want, "id \(id)")
        }
        let tm = try #require(kaf.meta["components"]?["tokenizer"])
        #expect(tm["num_base_tokens"]?.intValue == nBase)
        let specials = try #require(tm["special_tokens"]?.arrayValue)
        for (name, id) in try #require(expected["specials"]?.objectValue) {
            #expect(specials.contains { $0["name"]?.stringValue == name && $0["id"]?.intValue == id.intValue }, "\(name)")
        }
        #expect(tm["chat_template"]?.stringValue?.contains("<|im_start|>") == true)
    }

    @Test func base64RoundTrips() throws {
        #expect(TiktokenBase64.encode([]) == "")
        #expect(TiktokenBase64.encode(Array("any carnal pleas".utf8)) == "YW55IGNhcm5hbCBwbGVhcw==")   // RFC 4648-style vector
        for n in 1 ..< 20 {
            let b = (0 ..< n).map { UInt8(($0 * 97 + n) & 255) }
            let line = TiktokenBase64.encode(b) + " 0\n"
            let r = try Array(line.utf8).withUnsafeBytes { try TiktokenRanks.parse($0, path: "x") }
            #expect(r.tokens[0] == b)
        }
    }
}

@Suite struct MelFilterTests {
    /// Our Slaney filters equal transformers' WhisperFeatureExtractor filters (the reference).
    @Test(arguments: [128, 80])
    func matchesTransformers(_ n: Int) throws {
        let f = try SafetensorsFile(path: ConvertFixtures.root + "/mel_filters.safetensors")
        let want = try f.tensor(named: "mel_\(n)").floats()
        let got = MelFilters.slaney(nMels: n)
        #expect(got.count == want.count && want.count == n * 201)
        var worst: Float = 0
        for i in 0 ..< want.count { worst = max(worst, abs(got[i] - want[i])) }
        #expect(worst <= 1e-6 * (want.max() ?? 1), "max abs difference \(worst)")
    }

    @Test func storedInTheFile() throws {
        let (_, kaf) = try Tiny.convert(PrecisionPolicy(mode: .quantized(bits: 4, group: 32)), components: ["whisper"])
        let t = try kaf.tensor("frontend.mel_filters")
        #expect(t.dtype == .f32 && t.shape == [128, 201])
        #expect(dequantize(t) == MelFilters.slaney(nMels: 128))
    }
}
