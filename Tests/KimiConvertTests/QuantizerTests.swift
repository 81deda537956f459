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

@Suite struct QuantizerFastTests {
    static func rows(_ n: Int, seed: UInt64) -> [Float] {
        var s = seed
        func u() -> Float { s = s &* 6364136223846793005 &+ 1442695040888963407; return Float(s >> 40) / Float(1 << 24) - 0.5 }
        var x = (0 ..< n).map { i -> Float in i % 131 == 7 ? u() * 30 : u() * 0.1 }   // outliers
        for j in 0 ..< min(n, 32) { x[j] = 0 }                                          // an all-zero group
        if n > 200 { x[100] = 1e-30; x[101] = -1e-30 }                                 // denormal-scale group
        return x
    }

    /// The SIMD quantizer and its scalar twin write the same bytes and the same error sums.
    @Test(arguments: [DType.q4_g32, .q4_g64, .q4_g128, .q8_g32, .q8_g64, .q8_g128, .f16, .bf16, .f32])
    func simdMatchesScalarTwin(_ t: DType) {
        for (n, seed) in [(128, 1), (384, 2), (4096, 3), (128 * 37, 4)] as [(Int, UInt64)] {
            let x = Self.rows(n, seed: seed)
            let size = t.byteCount(shape: [n])!
            var a = [UInt8](repeating: 0xAA, count: size), b = [UInt8](repeating: 0x55, count: size)
            let ea = x.withUnsafeBufferPointer { xs in a.withUnsafeMutableBytes { Quantizer.quantizeRowFast(xs.baseAddress!, count: n, as: t, into: $0.baseAddress!) } }
            let eb = x.withUnsafeBufferPointer { xs in b.withUnsafeMutableBytes { Quantizer.quantizeRowFast_ref(xs.baseAddress!, count: n, as: t, into: $0.baseAddress!) } }
            #expect(a == b, "\(t.name) n=\(n): first differing byte \(zip(a, b).enumerated().first { $0.1.0 != $0.1.1 }?.offset ?? -1)")
            #expect(ea.sumSquaredError == eb.sumSquaredError && ea.sumSquaredSignal == eb.sumSquaredSignal && ea.maxAbsError == eb.maxAbsError && ea.count == eb.count, "\(t.name) n=\(n)")
            // The returned error is the real error of the bytes written.
            var y = [Float](repeating: 0, count: n)
            a.withUnsafeBytes { q in y.withUnsafeMutableBufferPointer { dequantizeRow_ref(t, q.baseAddress!, count: n, into: $0.baseAddress!) } }
            let sse = zip(x, y).reduce(0.0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) }
            #expect(abs(sse - ea.sumSquaredError) <= 1e-4 * max(sse, 1e-12), "\(t.name) n=\(n): \(sse) vs \(ea.sumSquaredError)")
        }
    }

    /// The q4 scale search never does worse than ggml's round-to-nearest, group by group (up to the
    /// f16 rounding of the refined scale), and is better overall.
    @Test(arguments: [DType.q4_g32, .q4_g64, .q4_g128])
    func q4SearchBeatsRoundToNearest(_ t: DType) {
        // Weight-like values: roughly Gaussian (sum of four uniforms), no extreme outliers.
        let n = 128 * 64
        let u: [Float] = Self.rows(4 * n + 64, seed: 9).dropFirst(64).map { abs($0) > 1 ? 0 : $0 }
        var x = [Float](repeating: 0, count: n)
        for i in 0 ..< n {
            let a: Float = u[4 * i] + u[4 * i + 1]
            let b: Float = u[4 * i + 2] + u[4 * i + 3]
            x[i] = a + b
        }
        let size = t.byteCount(shape: [n])!
        var fast = [UInt8](repeating: 0, count: size), rtn = [UInt8](repeating: 0, count: size)
        x.withUnsafeBufferPointer { xs in
            fast.withUnsafeMutableBytes { _ = Quantizer.quantizeRowFast(xs.baseAddress!, count: n, as: t, into: $0.baseAddress!) }
            rtn.withUnsafeMutableBytes { Quantizer.quantizeRow_ref(xs.baseAddress!, count: n, as: t, into: $0.baseAddress!) }
        }
        var yf = [Float](repeating: 0, count: n), yr = [Float](repeating: 0, count: n)
        fast.withUnsafeBytes { q in yf.withUnsafeMutableBufferPointer { dequantizeRow_ref(t, q.baseAddress!, count: n, into: $0.baseAddress!) } }
        rtn.withUnsafeBytes { q in yr.withUnsafeMutableBufferPointer { dequantizeRow_ref(t, q.baseAddress!, count: n, into: $0.baseAddress!) } }
        let g = t.groupSize
        var totalF = 0.0, totalR = 0.0
        for b in 0 ..< n / g {
            var sf = 0.0, sr = 0.0
            for i in b * g ..< (b + 1) * g {
                sf += Double(x[i] - yf[i]) * Double(x[i] - yf[i]); sr += Double(x[i] - yr[i]) * Double(x[i] - yr[i])
            }
            #expect(sf <= sr * (1 + 4e-3) + 1e-12, "\(t.name) group \(b): search \(sf) vs RTN \(sr)")
            totalF += sf; totalR += sr
        }
        #expect(totalF < totalR * 0.97, "\(t.name): search \(totalF) vs RTN \(totalR)")
    }
}
