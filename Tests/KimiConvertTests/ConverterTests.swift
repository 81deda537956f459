import Foundation
import Testing

@testable import KAF
@testable import KimiConvert

enum Tiny {
    static let release = ConvertFixtures.root + "/tiny-release"

    /// Source tensors by file (relative path) and name, with torch's float64 sum / sum of squares.
    static let manifest: [String: [String: (shape: [Int], sum: Double, sumSq: Double)]] = {
        let doc = try! JSONValue.parse(contentsOf: ConvertFixtures.root + "/tiny-release.manifest.json")
        var out: [String: [String: (shape: [Int], sum: Double, sumSq: Double)]] = [:]
        for f in doc["files"]!.arrayValue! {
            var t: [String: (shape: [Int], sum: Double, sumSq: Double)] = [:]
            for x in f["tensors"]?.arrayValue ?? [] {
                t[x["name"]!.stringValue!] = (
                    x["shape"]!.arrayValue!.map { $0.intValue! }, x["sum"]!.doubleValue!, x["sum_sq"]!.doubleValue!
                )
            }
            out[f["path"]!.stringValue!] = t
        }
        return out
    }()

    static func convert(_ policy: PrecisionPolicy, components: [String]? = nil) throws -> (ConversionPlan, KAFFile) {
        let plan = try Converter.plan(ConvertOptions(input: release, policy: policy, components: components))
        let path = NSTemporaryDirectory() + "tiny-\(UUID().uuidString).kaf"
        try ConversionRunner(plan: plan, threads: 2).write(to: path, overwrite: false)
        return (plan, try KAFFile(path: path, verify: true))
    }
}

/// The documented error bound of one quantized weight (formats/KAF.md): half a step, except that q4
/// reaches only +7 steps on the side opposite to the group's extreme; plus the f16 scale's rounding.
struct QuantBound {
    let amax: Float, m: Float, step: Float, bits: Int
    init(group: ArraySlice<Float>, bits: Int) {
        var amax: Float = 0, m: Float = 0
        for x in group where abs(x) > amax {
            amax = abs(x)
            m = x
        }
        self.amax = amax
        self.m = m
        self.bits = bits
        step = amax / (bits == 8 ? 127 : 8)
    }
    func of(_ x: Float) -> Float {
        var bound = step / 2
        if bits == 4 && (x > 0) != (m > 0) && abs(x) > 7.5 * step { bound = abs(x) - 7 * step }
        return bound + amax * 2e-3 + 1e-7
    }
}

@Suite(.serialized) struct ConverterTests {
    static let modes: [PrecisionPolicy.Mode] =
        [.float(.f32), .float(.f16), .float(.bf16)]
        + [32, 64, 128].flatMap { g in
            [PrecisionPolicy.Mode.quantized(bits: 8, group: g), .quantized(bits: 4, group: g)]
        }

    /// Every type: every tensor of the tiny release is in the file, with the policy's type, and its
    /// values match the source — exactly at f32 (checked against torch's sums), within the
    /// rounding of f16/bf16, within the quantizer's documented bound for q8/q4.
    @Test(arguments: modes)
    func convertsEveryTensorFaithfully(_ mode: PrecisionPolicy.Mode) throws {
        let (plan, kaf) = try Tiny.convert(PrecisionPolicy(mode: mode))
        #expect(plan.items.count == 1217)  // 1216 source tensors + the computed mel filters
        #expect(Set(kaf.entries.map(\.name)).isSuperset(of: plan.items.map(\.name)))
        var quantizedSeen = 0
        for item in plan.items {
            let t = try kaf.tensor(item.name)
            #expect(t.dtype == item.target, "\(item.name)")
            #expect(t.shape == item.producer.shape, "\(item.name)")
            let got = dequantize(t)
            let want = try item.producer.allFloats()
            switch t.dtype {
            case .f32:
                #expect(got == want, "\(item.name) must be exact at f32")
            case .f16, .bf16:
                let rel: Float = t.dtype == .f16 ? 1.0 / 2048 : 1.0 / 256
                for i in 0 ..< got.count where abs(got[i] - want[i]) > rel * abs(want[i]) + 6e-8 {
                    Issue.record("\(item.name)[\(i)]: \(want[i]) stored as \(got[i])")
                    break
                }
            default:
                quantizedSeen += 1
                let g = t.dtype.groupSize, bits = t.dtype.traits.quantBits
                outer: for b in 0 ..< got.count / g {
                    let bound = QuantBound(group: want[b * g ..< (b + 1) * g], bits: bits)
                    if bits == 8 {
                        for i in b * g ..< (b + 1) * g where abs(got[i] - want[i]) > bound.of(want[i]) {
                            Issue.record("\(item.name)[\(i)]: \(want[i]) -> \(got[i]) beyond the bound")
                            break outer
                        }
                    } else {
                        // q4 searches its scale: the group's squared error stays within the sum of
                        // the round-to-nearest bounds squared (formats/KAF.md).
                        var sse: Float = 0, limit: Float = 0
                        for i in b * g ..< (b + 1) * g {
                            sse += (got[i] - want[i]) * (got[i] - want[i])
                            limit += bound.of(want[i]) * bound.of(want[i])
                        }
                        if sse > limit * 1.01 {
                            Issue.record("\(item.name) group \(b): squared error \(sse) above \(limit)")
                            break outer
                        }
                    }
                }
            }
        }
        // At group 128 only the 128-wide rows of the tiny model quantize; the rest fall back to f16.
        if case .quantized(_, let g) = mode {
            #expect(quantizedSeen > (g == 128 ? 8 : 50))
        } else {
            #expect(quantizedSeen == 0)
        }
        // Quantization errors and provenance are in the metadata.
        let meta = try #require(kaf.meta["tensors"]?["llm.layers.0.mlp.up_proj.weight"])
        #expect(meta["source"]?.stringValue == "model-1-of-3.safetensors:model.layers.0.mlp.up_proj.weight")
        #expect(meta["rmse"]?.doubleValue != nil)
        #expect(kaf.meta["components"]?["llm"]?["config"]?["hidden_size"]?.intValue == 64)
        #expect(kaf.meta["components"]?["dit"]?["config"]?["mel_std"]?.doubleValue == 3.4584913)
        #expect((kaf.meta["provenance"]?["files"]?.arrayValue?.count ?? 0) >= 14)
        let tiktoken = try MappedFile(path: Tiny.release + "/tiktoken.model").withBytes { Array($0) }
        #expect(try kaf.blob("tokenizer.tiktoken") == tiktoken)
    }

    /// At f32 the stored values are the source values: compare with torch's own sums (manifest).
    @Test func f32MatchesTorchSums() throws {
        let (plan, kaf) = try Tiny.convert(PrecisionPolicy(mode: .float(.f32)))
        var checked = 0
        for item in plan.items
        where (!item.name.hasPrefix("vocoder.") || !item.name.hasSuffix(".weight") || item.name.contains(".act."))
            && item.component != "frontend"
        {
            let src = item.producer.source  // "file:name"
            let colon = try #require(src.firstIndex(of: ":"))
            let name = String(src[src.index(after: colon)...])
            let rel = String(item.producer.file.dropFirst(Tiny.release.count + 1))
            let m = try #require(Tiny.manifest[rel]?[name], "\(item.name): \(rel) \(name) not in the manifest")
            let v = dequantize(try kaf.tensor(item.name)).map(Double.init)
            #expect(m.shape == item.producer.shape)
            #expect(abs(v.reduce(0, +) - m.sum) <= 1e-9 * max(1, abs(m.sumSq)), "\(item.name) sum")
            #expect(
                abs(v.reduce(0) { $0 + $1 * $1 } - m.sumSq) <= 1e-9 * max(1, m.sumSq), "\(item.name) sum of squares")
            checked += 1
        }
        #expect(checked == plan.items.count - 177 - 1)  // all but the 177 weight-norm-folded vocoder weights and the mel filters
    }

    /// Weight norm folded: each dim-0 slice of the folded weight has norm |g| (PyTorch's definition).
    @Test func vocoderWeightNormIsFolded() throws {
        let (_, kaf) = try Tiny.convert(PrecisionPolicy(mode: .float(.f32)), components: ["vocoder"])
        let ckpt = try TorchCheckpoint(path: Tiny.release + "/vocoder/model.pt")
        let sd = Dictionary(uniqueKeysWithValues: try ckpt.stateDict(at: ["generator"]).map { ($0.name, $0.tensor) })
        var checked = 0
        for (name, g) in sd where name.hasSuffix(".weight_g") {
            let base = String(name.dropLast(".weight_g".count))
            let w = dequantize(try kaf.tensor("vocoder.\(base).weight"))
            let gv = try g.doubles()
            let per = w.count / gv.count
            for i in 0 ..< gv.count {
                let n = w[i * per ..< (i + 1) * per].reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
                #expect(abs(n - abs(gv[i])) <= 1e-5 * max(1, abs(gv[i])), "\(base) slice \(i)")
            }
            checked += 1
        }
        #expect(checked == 1 + 7 + 28 * 6 + 1)
        #expect(kaf.entry("vocoder.conv_pre.weight_g") == nil && kaf.entry("vocoder.conv_pre.weight_v") == nil)
    }

    @Test func policyDefaultsAndOverrides() throws {
        let p = PrecisionPolicy(
            mode: .quantized(bits: 4, group: 32), keeps: [("whisper.layers.*", .q4_g32), ("llm.norm.*", .bf16)])
        let plan = try Converter.plan(ConvertOptions(input: Tiny.release, policy: p))
        let byName = Dictionary(uniqueKeysWithValues: plan.items.map { ($0.name, $0.target) })
        // Matrices multiplied with activations are 8-row interleaved; embedding tables (row
        // lookups) stay row-major.
        #expect(byName["llm.layers.0.mlp.up_proj.weight"] == .q4_g32_r8)
        #expect(byName["llm.embed_tokens.weight"] == .q8_g32)
        #expect(byName["llm.lm_head.weight"] == .q8_g32)  // 805 rows: not whole groups of 8
        #expect(byName["mimo.layers.0.self_attn.q_proj.weight"] == .q4_g32_r8)
        #expect(byName["llm.layers.0.input_layernorm.weight"] == .f32)
        #expect(byName["vq.codebook.weight"] == .f32)
        #expect(byName["vq.layers.0.fc1.weight"] == .q8_g32_r8)
        #expect(byName["whisper.layers.0.fc1.weight"] == .q4_g32_r8)  // --keep picks bits and group
        #expect(byName["llm.norm.weight"] == .bf16)  // --keep
        // A quantized --keep applies to matrices: the same glob's biases and norms stay f32.
        #expect(byName["whisper.layers.0.fc1.bias"] == .f32)
        #expect(byName["whisper.layers.0.self_attn_layer_norm.weight"] == .f32)
        #expect(byName["dit.input_linear.weight"] == .f16)  // 80 columns: not whole groups
        #expect(byName["vocoder.conv_pre.weight"] == .f16)
        #expect(plan.components.flatMap(\.dropped).contains { $0.source.hasSuffix("rotary_emb.inv_freq") })

        // --no-interleave: row-major everywhere; an explicit _r8 --keep on a tensor that cannot be
        // interleaved (1-D) falls back to its row-major blocks.
        let rm = PrecisionPolicy(mode: .quantized(bits: 4, group: 32), interleave: false)
        #expect(rm.choose(name: "llm.layers.0.mlp.up_proj.weight", shape: [64, 32], role: .linear).0 == .q4_g32)
        let k = PrecisionPolicy(mode: .quantized(bits: 4, group: 32), keeps: [("x.*", .q8_g32_r8)])
        #expect(k.choose(name: "x.a", shape: [12, 64], role: .linear).0 == .q8_g32)  // 12 rows: not whole groups of 8
        #expect(k.choose(name: "x.a", shape: [16, 64], role: .linear).0 == .q8_g32_r8)
        #expect(k.choose(name: "x.a", shape: [16, 64], role: .embedding).0 == .q8_g32_r8)  // --keep _r8 is kept as asked
    }

    @Test func componentSubsets() throws {
        let (_, kaf) = try Tiny.convert(
            PrecisionPolicy(mode: .quantized(bits: 8, group: 32)), components: ["llm", "whisper", "vq"])
        #expect(kaf.components == ["frontend", "llm", "vq", "whisper"])
        #expect(kaf.entry("mimo.output.weight") == nil)
    }
}
