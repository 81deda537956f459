import Foundation
import KAF
import Testing

@testable import KimiConvert
@testable import KimiRuntime

/// Matrix kernels against their scalar twins. Sizes are ragged on purpose: rows not a multiple of
/// the 4-row unroll or the 16-row chunk, cols several groups (and, for float types, not a multiple
/// of 16), T not a multiple of the 4-token tile.
@Suite struct KernelMatVecTests {
    static let eps = Float.ulpOfOne

    @Test func activationQuantizationMatchesScalarTwinExactly() {
        let buf = KernelBuffers()
        var rng = KernelRNG(seed: 1)
        let n = 32 * 13
        let x = buf.random(n, &rng, scale: 3)
        for i in 0 ..< 32 { x[64 + i] = 0 }  // an all-zero block: d = 0, q = 0
        x[200] = 1e-30  // a tiny block neighbour
        let a = buf.quantized(count: n), b = buf.quantized(count: n)
        quantizeActivations(x, into: a)
        quantizeActivations_ref(x, into: b)
        for i in 0 ..< n { #expect(a.qs[i] == b.qs[i], "q[\(i)]") }
        for j in 0 ..< n / 32 {
            #expect(a.d[j] == b.d[j])
            // s = d·Σq: the SIMD sum of q is the same integer, so the product is the same float.
            #expect(a.s[j] == b.s[j] && a.sq[j] == b.sq[j])
            #expect(a.sq[j] == (0 ..< 32).reduce(Int32(0)) { $0 + Int32(a.qs[32 * j + $1]) })
            for i in 0 ..< 32 {  // round-to-nearest error bound |x − d·q| ≤ d/2 (+ rounding of 1/d)
                #expect(abs(x[32 * j + i] - a.d[j] * Float(a.qs[32 * j + i])) <= a.d[j] * 0.5001 + 1e-37)
            }
        }
    }

    @Test(arguments: kernelFloatTypes)
    func floatMatvecMatchesReference(dtype: DType) {
        let buf = KernelBuffers()
        var rng = KernelRNG(seed: 2)
        for (rows, cols) in [(13, 229), (4, 16), (1, 7), (9, 320)] {
            let w = buf.weight(dtype, rows: rows, cols: cols, &rng)
            let x = buf.random(cols, &rng)
            let y = buf.floats(rows), yr = buf.floats(rows), tmp = buf.floats(cols)
            matvec(w, x: x, xq: nil, y: y, rows: 0 ..< rows)
            matvec_ref(w, x, yr, rows: 0 ..< rows, tmp: tmp)
            for r in 0 ..< rows {
                // f32 sums of `cols` products in 16 lanes vs a Double sum of the same (exactly
                // widened) weights: |Δ| ≤ (cols/16 + 8)·ε·Σ|w·x| (lane chains + tree + tail).
                dequantizeRow_ref(dtype, w.row(r), count: cols, into: tmp)
                var mag: Float = 0
                for k in 0 ..< cols { mag += abs(tmp[k] * x[k]) }
                let tol = Float(cols / 16 + 8) * Self.eps * mag
                #expect(abs(y[r] - yr[r]) <= tol, "\(dtype.name) \(rows)x\(cols) row \(r): \(y[r]) vs \(yr[r])")
            }
        }
    }

    /// Bound on the float-reordering difference between two sums of c_b·(integer dot) over nb
    /// blocks: each partial sum is within (nb + 16)·ε of the magnitude sum B, B = Σ_b |c_b|·Σ_j
    /// |q_w,j|·|q_a,j| (+ 8·|Σq_a| for q4, whose unsigned form subtracts 8·d_w·s afterwards).
    static func integerBound(_ w: WeightMatrix, _ r: Int, _ a: QuantizedActivations) -> Float {
        let G = w.dtype.groupSize, bb = w.dtype.traits.blockBytes, q4 = w.dtype.traits.quantBits == 4
        var B: Float = 0
        for b in 0 ..< a.count / 32 {
            let blk = w.row(r) + bb * (32 * b / G)
            let c = abs(f16ToFloat(blk.loadUnaligned(as: UInt16.self)) * a.d[b])
            var m = 0, sa = 0
            for j in 0 ..< 32 {
                let e = (32 * b) % G + j
                let qa = Int(a.qs[32 * b + j])
                let qw: Int
                if q4 {
                    let byte = blk.load(fromByteOffset: 2 + e % (G / 2), as: UInt8.self)
                    qw = e < G / 2 ? Int(byte & 15) : Int(byte >> 4)
                } else {
                    qw = Int(blk.load(fromByteOffset: 2 + e, as: Int8.self))
                }
                m += abs(qw * qa)
                sa += qa
            }
            B += c * Float(m + (q4 ? 8 * abs(sa) : 0))
        }
        return Float(a.count / 32 + 16) * Self.eps * B
    }

    @Test(arguments: kernelQuantTypes)
    func quantMatvecIntegerPathMatchesIntegerReference(dtype: DType) {
        let buf = KernelBuffers()
        var rng = KernelRNG(seed: 3)
        for (rows, cols) in [(13, 384), (3, 128), (17, 1152)] {
            let w = buf.weight(dtype, rows: rows, cols: cols, &rng)
            let x = buf.random(cols, &rng)
            let a = buf.quantized(count: cols)
            quantizeActivations(x, into: a)
            let y = buf.floats(rows), yi = buf.floats(rows), yf = buf.floats(rows), tmp = buf.floats(cols)
            matvec(w, x: x, xq: a, y: y, rows: 0 ..< rows)
            matvecQuant_ref(w, a, yi, rows: 0 ..< rows)
            matvec_ref(w, x, yf, rows: 0 ..< rows, tmp: tmp)
            for r in 0 ..< rows {
                // 1. Same integers as the scalar integer twin; only the f32 summation order differs.
                #expect(abs(y[r] - yi[r]) <= Self.integerBound(w, r, a), "\(dtype.name) row \(r): \(y[r]) vs \(yi[r])")
                // 2. Against float math on the dequantized weights and the unquantized x: the only
                //    approximation is x ≈ d_a·q_a with |x − d_a·q_a| ≤ d_a/2, so
                //    |Δ| ≤ Σ_k |ŵ_k|·d_a(k)/2, plus f32 rounding (1e-5 of Σ|ŵ·x|).
                dequantizeRow_ref(dtype, w.row(r), count: cols, into: tmp)
                var bound: Float = 0, mag: Float = 0
                for k in 0 ..< cols {
                    bound += abs(tmp[k]) * a.d[k / 32] * 0.5001
                    mag += abs(tmp[k] * x[k])
                }
                #expect(abs(y[r] - yf[r]) <= bound + 1e-5 * mag, "\(dtype.name) row \(r) vs float: \(y[r]) vs \(yf[r])")
            }
        }
    }

    @Test(arguments: kernelQuantTypes)
    func quantMatvecFloatDequantPathMatchesReference(dtype: DType) {
        let buf = KernelBuffers()
        var rng = KernelRNG(seed: 4)
        let rows = 11, cols = 640
        let w = buf.weight(dtype, rows: rows, cols: cols, &rng)
        let x = buf.random(cols, &rng)
        let y = buf.floats(rows), yr = buf.floats(rows), tmp = buf.floats(cols)
        matvec(w, x: x, xq: nil, y: y, rows: 0 ..< rows)
        matvec_ref(w, x, yr, rows: 0 ..< rows, tmp: tmp)
        for r in 0 ..< rows {
            // Exact weights (small integers × an f16 scale); only f32 summation: (cols/8 + 16)·ε·Σ|ŵx|.
            dequantizeRow_ref(dtype, w.row(r), count: cols, into: tmp)
            var mag: Float = 0
            for k in 0 ..< cols { mag += abs(tmp[k] * x[k]) }
            #expect(abs(y[r] - yr[r]) <= Float(cols / 8 + 16) * Self.eps * mag)
        }
    }

    @Test(arguments: kernelQuantTypes)
    func quantMatmulTilesMatchPerTokenIntegerReference(dtype: DType) {
        let buf = KernelBuffers()
        var rng = KernelRNG(seed: 5)
        let rows = 21, cols = 256, T = 7  // 7 = one 4-token tile + a 3-token tail; 21 = 16 + 5 rows
        let w = buf.weight(dtype, rows: rows, cols: cols, &rng)
        let X = buf.random(T * cols, &rng)
        let a = buf.quantized(count: cols, rows: T)
        quantizeActivations(X, ldx: cols, into: a)
        let ldy = rows + 3  // a padded Y row stride
        let Y = buf.floats(T * ldy), yr = buf.floats(rows)
        matmul(w, X: X, ldx: cols, xq: a, tokens: T, Y: Y, ldy: ldy, rows: 0 ..< rows, scratch: nil)
        for t in 0 ..< T {
            matvecQuant_ref(w, a.row(t), yr, rows: 0 ..< rows)
            for r in 0 ..< rows {
                #expect(abs(Y[t * ldy + r] - yr[r]) <= Self.integerBound(w, r, a.row(t)), "\(dtype.name) t\(t) r\(r)")
            }
            #expect(Y[t * ldy + rows] == 0)  // padding untouched
        }
    }

    @Test(arguments: kernelFloatTypes)
    func floatMatmulBLASAndTiledMatchReference(dtype: DType) {
        let buf = KernelBuffers()
        var rng = KernelRNG(seed: 6)
        let rows = 37, cols = 203, T = 9
        let w = buf.weight(dtype, rows: rows, cols: cols, &rng)
        let X = buf.random(T * cols, &rng)
        let Yb = buf.floats(T * rows), Yt = buf.floats(T * rows), yr = buf.floats(rows), tmp = buf.floats(cols)
        let scratch = buf.floats(matmulFloatScratchCount(w))
        blasSetThreads(1)
        // Split the rows in two ranges, as two pool threads would.
        matmulFloat(w, X, ldx: cols, tokens: T, Yb, ldy: rows, rows: 0 ..< 20, scratch: scratch)
        matmulFloat(w, X, ldx: cols, tokens: T, Yb, ldy: rows, rows: 20 ..< rows, scratch: scratch)
        matmulFloatTiled(w, X, ldx: cols, tokens: T, Yt, ldy: rows, rows: 0 ..< rows)
        for t in 0 ..< T {
            matvec_ref(w, X + t * cols, yr, rows: 0 ..< rows, tmp: tmp)
            for r in 0 ..< rows {
                dequantizeRow_ref(dtype, w.row(r), count: cols, into: tmp)
                var mag: Float = 0
                for k in 0 ..< cols { mag += abs(tmp[k] * X[t * cols + k]) }
                // sgemm's blocking order is unknown: allow a K-long f32 chain, cols·ε·Σ|w·x|.
                let tol = Float(cols + 8) * Self.eps * mag
                #expect(abs(Yb[t * rows + r] - yr[r]) <= tol, "blas \(dtype.name) t\(t) r\(r)")
                #expect(abs(Yt[t * rows + r] - yr[r]) <= tol, "tiled \(dtype.name) t\(t) r\(r)")
            }
        }
    }

    @Test func threadedMatvecEqualsSingleThreaded() throws {
        let buf = KernelBuffers()
        var rng = KernelRNG(seed: 7)
        let pool = try ThreadPool(threads: 2, spinNanoseconds: 100_000)
        let rows = 103, cols = 512
        for dtype in [DType.q4_g32, .q8_g64, .bf16] {
            let w = buf.weight(dtype, rows: rows, cols: cols, &rng)
            let x = buf.random(cols, &rng)
            let a = buf.quantized(count: cols)
            quantizeActivations(x, into: a)
            let y1 = buf.floats(rows), y2 = buf.floats(rows)
            let xq: QuantizedActivations? = dtype.isQuantized ? a : nil
            matvec(w, x: x, xq: xq, y: y1, rows: 0 ..< rows)
            pool.parallelFor(n: rows) { matvec(w, x: x, xq: xq, y: y2, rows: $0) }
            for r in 0 ..< rows { #expect(y1[r] == y2[r]) }  // rows are independent: bit-identical
        }
    }
}
