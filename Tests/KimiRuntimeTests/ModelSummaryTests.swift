import Testing
import Foundation
@testable import KAF
@testable import KimiConvert
@testable import KimiRuntime

/// `kimi-run info`'s data: what a file holds and which tasks its components allow.
@Suite struct ModelSummaryTests {
    static let fixtures: String = {
        var url = URL(fileURLWithPath: #filePath)
        url.deleteLastPathComponent(); url.deleteLastPathComponent()
        return url.appendingPathComponent("Fixtures").path
    }()

    func convert(_ input: String, components: [String]? = nil) throws -> KAFFile {
        let plan = try Converter.plan(ConvertOptions(input: input, policy: PrecisionPolicy(mode: .quantized(bits: 4, group: 32)), components: components))
        let path = NSTemporaryDirectory() + "summary-\(UUID().uuidString).kaf"
        try ConversionRunner(plan: plan, threads: 2).write(to: path, overwrite: false)
        return try KAFFile(path: path)
    }

    @Test func asrOnlyFileSaysWhatItCannotDo() throws {
        let f = try convert(Self.fixtures + "/tiny-release", components: ["llm", "whisper", "vq"])
        let s = ModelSummary(f)
        let caps = Dictionary(uniqueKeysWithValues: s.capabilities.map { ($0.task, $0.available) })
        #expect(caps["chat (text→text)"] == true && caps["asr/ask (audio→text)"] == true)
        #expect(caps["tts (text→audio)"] == false && caps["talk (audio→audio)"] == false)
        let llm = try #require(s.components.first { $0.name == "llm" })
        // q4 layers, q8 embeddings/head/adaptor, f32 vectors: between 4.5 and 8.5 bits per weight.
        #expect(llm.bitsPerWeight > 4.5 && llm.bitsPerWeight < 8.5)
        // The worst q4 tensor's SNR, from the errors the converter stored (q4 on Gaussian-like
        // weights sits near 20 dB); the mel filters are stored exactly.
        let worst = try #require(llm.worstSNR)
        #expect(worst.db > 12 && worst.db < 30, "\(worst)")
        #expect(s.components.first { $0.name == "frontend" }?.worstSNR == nil)
        // Tiny LLM: embed + lm_head (805×64 each), 4 layers, norm, adaptor (see the fixture's config).
        let layer = 64 * 64 * 2 + 32 * 64 * 2 + 64 + 32 * 2 + 3 * 64 * 128 + 64 * 2
        #expect(llm.parameters == 2 * 805 * 64 + 4 * layer + 64 + (64 * 128 + 64) + (64 * 64 + 64) + 2 * 64)
    }

    /// A plain Hugging Face Whisper folder converts to an encoder-only file.
    @Test func whisperFolderAlone() throws {
        let f = try convert(Self.fixtures + "/tiny-release/whisper-large-v3")
        #expect(f.components == ["frontend", "whisper"])
        let s = ModelSummary(f)
        #expect(s.capabilities.allSatisfy { !$0.available })
        #expect(f.entry("whisper.layers.1.fc2.weight")?.dtype == .q8_g32_r8)
    }
}
