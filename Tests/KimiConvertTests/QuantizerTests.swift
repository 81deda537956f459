import Testing
import Foundation
@testable import KAF
@testable import KimiConvert

enum ConvertFixtures {
    static let root: String = {
        var url = URL(fileURLWithPath: #filePath)
        url.deleteLastPathComponent(); url.deleteLastPathComponent()
        return url.appendingPathComponent("Fixtures").path
    }()
}

@Suite struct QuantizerTests {
    /// Group-32 blocks must be byte for byte what ggml's reference (gguf-py) writes.
    @Test func group32MatchesGGMLBytes() throws {
        let doc = try JSONValue.parse(contentsOf: ConvertFixtures.root + "/quant/ggml_blocks.json")
        let cases = try #require(doc["cases"]?.arrayValue)
        #expect(cases.count == 5)
        for (ci, c) in cases.enumerated() {
            let x = try #require(c["input"]?.arrayValue).map { Float($0.doubleValue!) }
            for (key, t) in [("q8_0", DType.q8_g32), ("q4_0", DType.q4_g32)] {
                let wantHex = try #require(c[key + "_bytes"]?.stringValue)
                let want = stride(from: 0, to: wantHex.count, by: 2).map { i -> UInt8 in
                    let s = wantHex.index(wantHex.startIndex, offsetBy: i)
                    return UInt8(wantHex[s ..< wantHex.index(s, offsetBy: 2)], radix: 16)!
                }
                var got = [UInt8](repeating: 0, count: t.byteCount(shape: [x.count])!)
                x.withUnsafeBufferPointer { xs in got.withUnsafeMutableBytes { Quantizer.quantizeRow_ref(xs.baseAddress!, count: x.count, as: t, into: $0.baseAddress!) } }
                #expect(got == want, "case \(ci) \(key): first differing byte \(zip(got, want).enumerated().first { $0.1.0 != $0.1.1 }?.offset ?? -1)")
                let wantDeq = try #require(c[key + "_dequant"]?.arrayValue).map { Float($0.doubleValue!) }
                var deq = [Float](repeating: .nan, count: x.count)
                got.withUnsafeBytes { b in deq.withUnsafeMutableBufferPointer { dequantizeRow_ref(t, b.baseAddress!, count: x.count, into: $0.baseAddress!) } }
                #expect(deq == wantDeq, "case \(ci) \(key) dequant")
            }
        }
    }

    /// Every group size: the round-trip error of each weight is within half a step (plus the
    /// f16 rounding of the scale), and the q4 extreme value is exact up to the scale's rounding.
    @Test(arguments: [DType.q8_g32, .q8_g64, .q8_g128, .q4_g32, .q4_g64, .q4_g128])
    func roundTripErrorIsBounded(_ t: DType) {
        let n = 4 * 128
        var s: UInt64 = 7
        let x: [Float] = (0 ..< n).map { i in
            s = s &* 6364136223846793005 &+ 1442695040888963407
            let u = Float(s >> 40) / Float(1 << 24) - 0.5
            return i % 97 == 0 ? u * 40 : u   // some outliers
        }
        var q = [UInt8](repeating: 0, count: t.byteCount(shape: [n])!)
        var y = [Float](repeating: 0, count: n)
        x.withUnsafeBufferPointer { xs in q.withUnsafeMutableBytes { Quantizer.quantizeRow_ref(xs.baseAddress!, count: n, as: t, into: $0.baseAddress!) } }
        q.withUnsafeBytes { b in y.withUnsafeMutableBufferPointer { dequantizeRow_ref(t, b.baseAddress!, count: n, into: $0.baseAddress!) } }
        let g = t.groupSize
        let levels: Float = t.traits.quantBits == 8 ? 127 : 8
        for b in 0 ..< n / g {
            let group = x[b * g ..< (b + 1) * g]
            let amax = group.map(abs).max()!
            let m = group.first { abs($0) == amax }!
            let step = amax / levels
            for i in b * g ..< (b + 1) * g {
                // q4 reaches −8·d on the side of m but only +7·d on the other side (formats/KAF.md),
                // so values beyond 7.5 steps on that side clamp to 7 steps.
                var bound = step * 0.5
                if t.traits.quantBits == 4 && (x[i] > 0) != (m > 0) && abs(x[i]) > 7.5 * step { bound = abs(x[i]) - 7 * step }
                #expect(abs(x[i] - y[i]) <= bound + amax * 2e-3 + 1e-7, "\(t.name) weight \(i): \(x[i]) -> \(y[i])")
            }
        }
    }

    @Test func nonFiniteInputDoesNotTrap() {
        let x: [Float] = [.nan, .infinity, -.infinity] + [Float](repeating: 1, count: 29)
        var q = [UInt8](repeating: 0, count: 18)
        x.withUnsafeBufferPointer { xs in q.withUnsafeMutableBytes { Quantizer.quantizeRow_ref(xs.baseAddress!, count: 32, as: .q4_g32, into: $0.baseAddress!) } }
        var q8 = [UInt8](repeating: 0, count: 34)
        x.withUnsafeBufferPointer { xs in q8.withUnsafeMutableBytes { Quantizer.quantizeRow_ref(xs.baseAddress!, count: 32, as: .q8_g32, into: $0.baseAddress!) } }
        #expect(q.count == 18 && q8.count == 34)
    }
}
