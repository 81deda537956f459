import Foundation
import Testing

@testable import KAF
@testable import KimiConvert
@testable import KimiRuntime

/// The LLM's architecture table against the official checkpoint's names, its typed config's range
/// checks, and the loader's shape check.
@Suite(.serialized) struct LLMArchitectureTests {
    static let release = ModelSummaryTests.fixtures + "/tiny-release"

    /// Every tensor of the tiny release (written by the official classes) is in the table, and
    /// every table entry is in the checkpoint with the table's shape (the RoPE buffers excepted).
    @Test func tableCoversTheOfficialCheckpoint() throws {
        let cfg = try JSONValue.parse(contentsOf: Self.release + "/config.json")
        let arch = LLMArchitecture(try LLMConfig(json: cfg, file: "config.json"))
        let ckpt = try SafetensorsCheckpoint(path: Self.release)
        let table = arch.llmTensors(withHead: true) + arch.mimoTensors
        let stored = Set(ckpt.tensors.map(\.name).filter { !$0.hasSuffix("rotary_emb.inv_freq") })
        #expect(Set(table.map(\.source)) == stored)
        for spec in table {
            let t = try #require(ckpt[spec.source])
            #expect(t.shape == spec.shape, "\(spec.source)")
        }
        #expect(Set(table.map(\.name)).count == table.count)
    }

    @Test(arguments: [
        ("hidden_size", "-8"), ("max_position_embeddings", "4611686018427387904"), ("kimia_mimo_layers", "-1"),
        ("kimia_mimo_transformer_from_layer_index", "4"), ("num_attention_heads", "3"),
    ])
    func badConfigValueNamesTheKey(_ c: (String, String)) throws {
        var text = try String(contentsOfFile: Self.release + "/config.json", encoding: .utf8)
        let r = try #require(text.range(of: "\"\(c.0)\": [0-9]+", options: .regularExpression))
        text.replaceSubrange(r, with: "\"\(c.0)\": \(c.1)")
        do {
            _ = try LLMConfig(json: try JSONValue.parse(text, file: "config.json"), file: "config.json")
            Issue.record("\(c.0) = \(c.1) accepted")
        } catch let e as FormatError {
            #expect(e.file == "config.json", "\(e)")
            #expect(e.message.contains(c.0) || e.message.contains("inconsistent"), "\(e)")
        }
    }

    /// A table entry whose shape differs from the stored tensor: one line naming file, tensor,
    /// found and expected shape.
    @Test func loaderChecksShapes() throws {
        let kaf = try ParityTests.convert("tiny-release", .float(.f32))
        let load = WeightLoader(kaf)
        let good = TensorSpec("llm.layers.0.mlp.up_proj.weight", source: "", [128, 64], .linear)
        #expect(try load.matrix(good).rows == 128)
        for spec in [
            TensorSpec(good.name, source: "", [64, 128], .linear),
            TensorSpec("llm.norm.weight", source: "", [65], .vector),
        ] {
            do {
                if spec.shape.count == 2 { _ = try load.matrix(spec) } else { _ = try load.vector(spec) }
                Issue.record("\(spec.shape) accepted")
            } catch let e as FormatError {
                #expect(
                    e.file == kaf.path && e.message.contains(spec.name) && e.message.contains("\(spec.shape)"), "\(e)")
                #expect(!e.description.contains("\n"))
            }
        }
    }
}
