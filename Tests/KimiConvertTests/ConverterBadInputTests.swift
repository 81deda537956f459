import Foundation
import Testing

@testable import KAF
@testable import KimiConvert

/// A broken copy of the tiny release: one clear error naming the file, and no output left behind.
struct BrokenRelease: CustomTestStringConvertible, Sendable {
    let name: String
    let expect: String  // in the message
    let file: String  // the error's file ends with this
    let breakIt: @Sendable (String) throws -> Void
    var testDescription: String { name }
}

private func edit(_ path: String, _ f: (inout String) -> Void) throws {
    var s = try String(contentsOfFile: path, encoding: .utf8)
    f(&s)
    try s.write(toFile: path, atomically: true, encoding: .utf8)
}

let brokenReleases: [BrokenRelease] = [
    BrokenRelease(
        name: "shard named in the index is absent", expect: "model-2-of-3.safetensors",
        file: "model.safetensors.index.json"
    ) {
        try FileManager.default.removeItem(atPath: $0 + "/model-2-of-3.safetensors")
    },
    BrokenRelease(name: "truncated shard", expect: "", file: "model-1-of-3.safetensors") {
        let p = $0 + "/model-1-of-3.safetensors"
        let d = try Data(contentsOf: URL(fileURLWithPath: p))
        try d.prefix(d.count - 1000).write(to: URL(fileURLWithPath: p))
    },
    BrokenRelease(name: "shape does not match config.json", expect: "config implies", file: "model-1-of-3.safetensors")
    {
        try edit($0 + "/config.json") {
            $0 = $0.replacingOccurrences(of: "\"intermediate_size\": 128", with: "\"intermediate_size\": 96")
        }
    },
    BrokenRelease(name: "unknown architecture", expect: "unknown architecture 'LlamaForCausalLM'", file: "config.json")
    {
        try edit($0 + "/config.json") {
            $0 = $0.replacingOccurrences(of: "MoonshotKimiaForCausalLM", with: "LlamaForCausalLM")
        }
    },
    BrokenRelease(
        name: "fewer layers in config than in the shards", expect: "unexpected tensor 'model.layers.3.",
        file: "model-2-of-3.safetensors"
    ) {
        try edit($0 + "/config.json") {
            $0 = $0.replacingOccurrences(of: "\"num_hidden_layers\": 4", with: "\"num_hidden_layers\": 3")
        }
    },
    BrokenRelease(name: "vocoder weights missing", expect: "missing", file: "vocoder/model.pt") {
        try FileManager.default.removeItem(atPath: $0 + "/vocoder/model.pt")
    },
    BrokenRelease(name: "tokenizer missing", expect: "missing", file: "tiktoken.model") {
        try FileManager.default.removeItem(atPath: $0 + "/tiktoken.model")
    },
    BrokenRelease(name: "DiT config has no model.dit", expect: "no model.dit section", file: "config.yaml") {
        try "normalize_mel: true\n".write(
            toFile: $0 + "/audio_detokenizer/config.yaml", atomically: true, encoding: .utf8)
    },
    BrokenRelease(name: "GLM tokenizer config missing", expect: "no GLM-4-Voice tokenizer", file: "tiny") {
        try FileManager.default.removeItem(atPath: $0 + "/glm-4-voice-tokenizer/config.json")
    },
    // Issue 12 item 11: config values the converter records are checked against the model.
    BrokenRelease(
        name: "MIMO branch from layer 99 of 4", expect: "kimia_mimo_transformer_from_layer_index", file: "config.json"
    ) {
        try edit($0 + "/config.json") {
            $0 = $0.replacingOccurrences(
                of: "\"kimia_mimo_transformer_from_layer_index\": 1",
                with: "\"kimia_mimo_transformer_from_layer_index\": 99")
        }
    },
    BrokenRelease(
        name: "MIMO branch from layer -5", expect: "kimia_mimo_transformer_from_layer_index", file: "config.json"
    ) {
        try edit($0 + "/config.json") {
            $0 = $0.replacingOccurrences(
                of: "\"kimia_mimo_transformer_from_layer_index\": 1",
                with: "\"kimia_mimo_transformer_from_layer_index\": -5")
        }
    },
    BrokenRelease(name: "rope_theta -1", expect: "'rope_theta' is -1", file: "config.json") {
        try edit($0 + "/config.json") {
            $0 = $0.replacingOccurrences(of: "\"rope_theta\": 1000000.0", with: "\"rope_theta\": -1")
        }
    },
    BrokenRelease(name: "rms_norm_eps 0", expect: "'rms_norm_eps' is 0", file: "config.json") {
        try edit($0 + "/config.json") {
            $0 = $0.replacingOccurrences(of: "\"rms_norm_eps\": 1e-06", with: "\"rms_norm_eps\": 0")
        }
    },
    BrokenRelease(name: "fewer MIMO layers in config than in the shards", expect: "mimo_layers.1.", file: "safetensors")
    {
        try edit($0 + "/config.json") {
            $0 = $0.replacingOccurrences(of: "\"kimia_mimo_layers\": 2", with: "\"kimia_mimo_layers\": 1")
        }
    },
    BrokenRelease(name: "NaN inside a weight", expect: "non-finite", file: "model-1-of-3.safetensors") { dir in
        // Overwrite the first value of a weight with a bf16 NaN, found through the reader.
        let p = dir + "/model-1-of-3.safetensors"
        let off: Int = try {
            let f = try SafetensorsFile(path: p)
            return try f.tensor(named: "model.layers.0.mlp.up_proj.weight").fileOffset
        }()
        let h = try FileHandle(forWritingTo: URL(fileURLWithPath: p))
        try h.seek(toOffset: UInt64(off))
        h.write(Data([0xC0, 0x7F]))
        try h.close()
    },
]

@Suite(.serialized) struct ConverterBadInputTests {
    @Test(arguments: brokenReleases)
    func failsCleanly(_ c: BrokenRelease) throws {
        let root = NSTemporaryDirectory() + "broken-\(UUID().uuidString)"
        let dir = root + "/tiny"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: Tiny.release, toPath: dir)
        try c.breakIt(dir)
        let out = root + "/out.kaf"
        do {
            let plan = try Converter.plan(
                ConvertOptions(input: dir, policy: PrecisionPolicy(mode: .quantized(bits: 4, group: 32))))
            try ConversionRunner(plan: plan, threads: 2).write(to: out, overwrite: false)
            Issue.record("\(c.name): converted without an error")
        } catch let e as FormatError {
            #expect(e.file.hasSuffix(c.file), "\(c.name): error names '\(e.file)'")
            #expect(c.expect.isEmpty || e.message.contains(c.expect), "\(c.name): '\(e.message)'")
            #expect(!e.description.contains("\n"))
        }
        let left = try FileManager.default.contentsOfDirectory(atPath: root).filter { $0 != "tiny" }
        #expect(left.isEmpty, "\(c.name): left \(left)")
    }
}
