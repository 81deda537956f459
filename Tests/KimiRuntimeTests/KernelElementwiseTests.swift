import Foundation
import KimiSIMD
import Testing

@testable import KimiRuntime

/// Element-wise kernels against their libm/scalar twins, on ragged lengths (tails of 1…7).
@Suite struct KernelElementwiseTests {
    static let sizes = [1, 7, 8, 29, 64, 1003]

    func maxRelErr(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int, floor: Float) -> Float {
        var m: Float = 0
        for i in 0 ..< n { m = max(m, abs(a[i] - b[i]) / max(abs(b[i]), floor)) }
        return m
    }

    @Test func rmsNormAndLayerNorm() {
        let buf = KernelBuffers()
        var rng = KernelRNG(seed: 11)
        for n in Self.sizes {
            let x = buf.random(n, &rng, scale: 2), w = buf.random(n, &rng), bias = buf.random(n, &rng)
            let y = buf.floats(n), r = buf.floats(n)
            // f32 statistics summed in a different order: the 1/rms factor differs by ≲ n/8·ε; the
            // per-element product adds 2ε. 1e-5 relative covers n ≤ 1003 with margin.
            rmsNorm(x, weight: w, eps: 1e-6, y, count: n)
            rmsNorm_ref(x, weight: w, eps: 1e-6, r, count: n)
            #expect(maxRelErr(y, r, n, floor: 1e-3) < 1e-5, "rms n=\(n)")
            // With a bias an output can cancel to ~0 while its terms are O(1) (normalised x, w and
            // bias ~ N(0, 1)): measure relative to a floor of 0.1, i.e. 1e-6 absolute ≈ 8 ulp of 1.
            layerNorm(x, weight: w, bias: bias, eps: 1e-5, y, count: n)
            layerNorm_ref(x, weight: w, bias: bias, eps: 1e-5, r, count: n)
            #expect(maxRelErr(y, r, n, floor: 0.1) < 1e-5, "ln n=\(n)")
            layerNorm(x, weight: nil, bias: nil, eps: 1e-5, y, count: n)
            layerNorm_ref(x, weight: nil, bias: nil, eps: 1e-5, r, count: n)
            #expect(maxRelErr(y, r, n, floor: 1e-2) < 1e-5, "ln plain n=\(n)")
        }
        // in place
        let x = buf.random(100, &rng), w = buf.random(100, &rng), r = buf.floats(100)
        rmsNorm_ref(x, weight: w, eps: 1e-6, r, count: 100)
        rmsNorm(x, weight: w, eps: 1e-6, x, count: 100)
        #expect(maxRelErr(x, r, 100, floor: 1e-3) < 1e-5)
    }

    @Test func ropeBothLayouts() {
        let buf = KernelBuffers()
        var rng = KernelRNG(seed: 12)
        for (heads, d) in [(3, 128), (2, 64), (1, 12), (4, 72)] {
            let f = buf.floats(d / 2), c = buf.floats(d / 2), s = buf.floats(d / 2)
            ropeInvFrequencies(headDim: d, theta: 1_000_000, into: f)
            #expect(f[0] == 1)
            ropeCosSin(position: 777, invFreq: f, half: d / 2, cos: c, sin: s)
            let x = buf.random(heads * d, &rng), y = buf.floats(heads * d)
            y.update(from: x, count: heads * d)
            // Same operations per element in the same order: bit-identical (no FMA contraction in Swift).
            ropeNeox(x, heads: heads, headDim: d, cos: c, sin: s)
            ropeNeox_ref(y, heads: heads, headDim: d, cos: c, sin: s)
            for i in 0 ..< heads * d { #expect(x[i] == y[i]) }
            ropeInterleaved(x, heads: heads, headDim: d, cos: c, sin: s)
            ropeInterleaved_ref(y, heads: heads, headDim: d, cos: c, sin: s)
            for i in 0 ..< heads * d { #expect(x[i] == y[i]) }
        }
        // position 0 is the identity
        let f = buf.floats(32), c = buf.floats(32), s = buf.floats(32)
        ropeInvFrequencies(headDim: 64, theta: 10000, into: f)
        ropeCosSin(position: 0, invFreq: f, half: 32, cos: c, sin: s)
        let x = buf.random(64, &rng), x0 = buf.floats(64)
        x0.update(from: x, count: 64)
        ropeNeox(x, heads: 1, headDim: 64, cos: c, sin: s)
        for i in 0 ..< 64 { #expect(x[i] == x0[i]) }
    }

    /// One attention head (KV-cache strides, GQA offsets, odd n and d) against its scalar twin.
    @Test func attentionHeadMatchesReference() {
        let buf = KernelBuffers()
        var rng = KernelRNG(seed: 21)
        for (n, d) in [(1, 128), (2, 128), (7, 128), (301, 128), (5, 64), (9, 40), (3, 20)] {
            let stride = 3 * d + 8  // rows of a KV cache holding more heads than this one
            let q = buf.random(d, &rng), k = buf.random(n * stride, &rng, scale: 2), v = buf.random(n * stride, &rng)
            let s1 = buf.floats(n), s2 = buf.floats(n), o1 = buf.floats(d), o2 = buf.floats(d)
            for i in 0 ..< d { o1[i] = .nan }  // the kernel must overwrite out, not add to it
            attentionHead(q, k: k + d, v: v + d, stride: stride, count: n, dim: d, scale: 0.3, scores: s1, out: o1)
            attentionHead_ref(q, k: k + d, v: v + d, stride: stride, count: n, dim: d, scale: 0.3, scores: s2, out: o2)
            // Dot products reordered (≤ d·ε relative to Σ|q·k|, here < 1e-4 absolute on scores of
            // size ~5) then softmax's 2e-6: probabilities agree to ~1e-4 relative; out is a convex
            // combination of |v| ≤ 1.
            #expect(maxRelErr(s1, s2, n, floor: 1e-3) < 2e-4, "scores n=\(n) d=\(d)")
            for i in 0 ..< d { #expect(abs(o1[i] - o2[i]) < 1e-4, "out[\(i)] n=\(n) d=\(d): \(o1[i]) vs \(o2[i])") }
        }
    }

    /// Many query rows at once (the encoders' attention) against one scalar head per row: strided
    /// q/k/v as in a [frames, d] activation, a narrower output stride, key counts off the blocks.
    @Test func attentionRowsMatchReference() {
        let buf = KernelBuffers()
        var rng = KernelRNG(seed: 22)
        for (rows, keys, d) in [(1, 1, 64), (3, 1500, 64), (64, 200, 64), (17, 33, 40), (5, 9, 20)] {
            let stride = 2 * d + 8, outStride = d + 4
            let n = max(rows, keys)
            let q = buf.random(n * stride, &rng), k = buf.random(n * stride, &rng, scale: 2)
            let v = buf.random(n * stride, &rng)
            let s1 = buf.floats(rows * keys), s2 = buf.floats(keys)
            let o1 = buf.floats(rows * outStride), o2 = buf.floats(rows * outStride)
            for i in 0 ..< rows * outStride { (o1[i], o2[i]) = (.nan, .nan) }
            attentionRows(
                q: q + d, k: k + d, v: v + d, stride: stride, rows: rows, keys: keys, dim: d, scale: 0.3, scores: s1,
                out: o1, outStride: outStride)
            attentionRows_ref(
                q: q + d, k: k + d, v: v + d, stride: stride, rows: rows, keys: keys, dim: d, scale: 0.3, scores: s2,
                out: o2, outStride: outStride)
            for r in 0 ..< rows {
                for i in 0 ..< d {
                    let a = o1[r * outStride + i], b = o2[r * outStride + i]
                    #expect(abs(a - b) < 1e-4, "row \(r) out[\(i)] rows=\(rows) keys=\(keys) d=\(d): \(a) vs \(b)")
                }
                for i in d ..< outStride { #expect(o1[r * outStride + i].isNaN, "wrote past the head") }
            }
        }
    }

    /// vexp against libm over its whole range, and its limits: 0 below −87.34, +∞ above 88.72.
    @Test func expMatchesLibmAndItsLimits() {
        var worst: Float = 0
        var x: Float = -87.3
        while x < 88.7 {
            let v = vexp(SIMD8<Float>((0 ..< 8).map { x + Float($0) * 1e-3 }))
            for l in 0 ..< 8 {
                let want = Foundation.exp(x + Float(l) * 1e-3)
                worst = max(worst, abs(v[l] - want) / want)
            }
            x += 0.37
        }
        #expect(worst < 3e-7, "relative error \(worst)")
        let edge = vexp(SIMD8<Float>([-1e30, -200, -87.5, -.infinity, 88.8, 200, .infinity, 0]))
        #expect(Array(0 ..< 4).allSatisfy { edge[$0] == 0 }, "\(edge)")
        #expect(Array(4 ..< 7).allSatisfy { edge[$0] == .infinity }, "\(edge)")
        #expect(edge[7] == 1)
    }

    /// logSumExp with suppressed (−∞) entries equals the sum over the others; all −∞ gives −∞.
    @Test func logSumExpSkipsSuppressed() {
        var x: [Float] = [1, -.infinity, 2, 3, -.infinity, 0.5, -1, 4, 2.5, -.infinity, 1]
        let keep = x.filter { $0 > -.infinity }
        #expect(abs(logSumExp(&x, count: x.count) - logSumExp_ref(keep, count: keep.count)) < 1e-5)
        let none = [Float](repeating: -.infinity, count: 9)
        #expect(logSumExp(none, count: 9) == -.infinity)
    }

    @Test func softmaxAndActivations() {
        let buf = KernelBuffers()
        var rng = KernelRNG(seed: 13)
        for n in Self.sizes {
            let x = buf.random(n, &rng, scale: 6), y = buf.floats(n), r = buf.floats(n)
            y.update(from: x, count: n)
            r.update(from: x, count: n)
            // vexp is Cephes expf (≤ 2 ulp): softmax ≤ a few ε relative after normalisation.
            // logSumExp: the same max and exps, summed in f32 (the twin sums in f64); −∞ entries count 0.
            let lse = logSumExp(x, count: n), lseRef = logSumExp_ref(x, count: n)
            #expect(abs(lse - lseRef) <= 1e-5 * max(1, abs(lseRef)), "logSumExp n=\(n): \(lse) vs \(lseRef)")
            // expShifted: softmax's exps and their sum, before the division.
            let (ex, exr) = (buf.floats(n), buf.floats(n))
            ex.update(from: x, count: n)
            exr.update(from: x, count: n)
            let (se, ser) = (expShifted(ex, count: n), expShifted_ref(exr, count: n))
            #expect(abs(se - ser) <= 1e-5 * ser && maxRelErr(ex, exr, n, floor: 1e-30) < 2e-6, "expShifted n=\(n)")
            softmax(y, count: n)
            softmax_ref(r, count: n)
            #expect(maxRelErr(y, r, n, floor: 1e-30) < 2e-6, "softmax n=\(n)")
            var total: Float = 0
            for i in 0 ..< n { total += y[i] }
            #expect(abs(total - 1) < 1e-5)
            silu(x, y, count: n)
            silu_ref(x, r, count: n)
            #expect(maxRelErr(y, r, n, floor: 1e-3) < 2e-6, "silu n=\(n)")
            // GELU erf: A&S 7.1.26 has |erf error| ≤ 1.5e-7, so |Δgelu| ≤ 0.5·|x|·1.5e-7 + rounding.
            geluErf(x, y, count: n)
            geluErf_ref(x, r, count: n)
            for i in 0 ..< n { #expect(abs(y[i] - r[i]) <= 1.5e-7 * abs(x[i]) + 4 * Float.ulpOfOne * abs(r[i]) + 1e-9) }
            // GELU tanh: tanh via 1 − 2/(e^{2u}+1) has absolute error ~ε near 0.
            geluTanh(x, y, count: n)
            geluTanh_ref(x, r, count: n)
            for i in 0 ..< n { #expect(abs(y[i] - r[i]) <= 2e-7 * abs(x[i]) + 4 * Float.ulpOfOne * abs(r[i]) + 1e-9) }
            let up = buf.random(n, &rng)
            swiglu(gate: x, up: up, y, count: n)
            swiglu_ref(gate: x, up: up, r, count: n)
            #expect(maxRelErr(y, r, n, floor: 1e-3) < 3e-6, "swiglu n=\(n)")
        }
        // extremes: no NaN/inf from the clamped exp
        let e = buf.floats(8), o = buf.floats(8)
        for (i, v) in [-200, -90, -20, 0, 20, 90, 200, 1e-8].enumerated() { e[i] = Float(v) }
        silu(e, o, count: 8)
        #expect(o[0] == 0 && o[6] == 200 && o[3] == 0 && abs(o[7] - 0.5e-8) < 1e-15, "\(o[0]) \(o[6]) \(o[3]) \(o[7])")
        geluErf(e, o, count: 8)
        #expect(o[0] == 0 && o[6] == 200)
        geluTanh(e, o, count: 8)
        #expect(o[0] == 0 && o[6] == 200)
        softmax(e, count: 8)
        #expect(e[6] == 1 && e[0] == 0, "\(e[6]) \(e[0])")
    }

    @Test func addScaleArgmax() {
        let buf = KernelBuffers()
        var rng = KernelRNG(seed: 14)
        for n in Self.sizes {
            let a = buf.random(n, &rng), b = buf.random(n, &rng), y = buf.floats(n), r = buf.floats(n)
            add(a, b, y, count: n)
            add_ref(a, b, r, count: n)
            for i in 0 ..< n { #expect(y[i] == r[i]) }
            y.update(from: a, count: n)
            r.update(from: a, count: n)
            scale(y, 0.37, count: n)
            scale_ref(r, 0.37, count: n)
            for i in 0 ..< n { #expect(y[i] == r[i]) }
            #expect(argmax(a, count: n) == argmax_ref(a, count: n))
        }
        let t = buf.floats(20)
        for i in 0 ..< 20 { t[i] = 1 }
        t[3] = .nan
        t[11] = 5
        t[17] = 5
        #expect(argmax(t, count: 20) == 11 && argmax_ref(t, count: 20) == 11)  // first of ties, NaN skipped
        #expect(argmax(t, count: 0) == -1)
    }

    @Test func threadPoolCoversEveryIndexOnce() throws {
        let pool = try ThreadPool(threads: 3, spinNanoseconds: 50_000)
        let counts = UnsafeMutablePointer<Int>.allocate(capacity: 1000)
        defer { counts.deallocate() }
        for n in [0, 1, 2, 3, 5, 999, 1000] {
            for round in 0 ..< 50 {
                counts.initialize(repeating: 0, count: 1000)
                pool.parallelFor(n: n) { r in for i in r { counts[i] += 1 } }
                for i in 0 ..< n where counts[i] != 1 {
                    Issue.record("n=\(n) round \(round) index \(i) ran \(counts[i])×")
                }
            }
            if n == 999 { usleep(200) }  // let workers fall asleep once, then wake them
        }
        var total = 0
        dispatchParallelFor(threads: 2, n: 10) { r in _ = r }
        pool.parallelFor(n: 10) { r in total += 0 * r.count }
        #expect(total == 0)
    }
}
