import Testing
import Foundation
import KAF
@testable import KimiConvert
@testable import KimiRuntime

/// The 8-row interleaved kernels against the row-major integer reference on the same quantized
/// matrix: the same integers, floats summed in another order (bound: KernelMatVecTests.integerBound).
@Suite struct KernelR8Tests {
    @Test(arguments: kernelQuantTypes)
    func matvecMatchesRowMajorIntegerReference(dtype: DType) {
        let buf = KernelBuffers()
        var rng = KernelRNG(seed: 11)
        for (rows, cols) in [(8, 128), (24, 384), (40, 1152)] {
            let (plain, r8) = buf.weightPair(dtype, rows: rows, cols: cols, &rng)
            let x = buf.random(cols, &rng)
            let a = buf.quantized(count: cols)
            quantizeActivations(x, into: a)
            let y = buf.floats(rows), yr = buf.floats(rows), yt = buf.floats(rows)
            matvec(r8, x: x, xq: a, y: y, rows: 0 ..< rows)
            matvecQuant_ref(plain, a, yr, rows: 0 ..< rows)
            matvecR8_ref(r8, a, yt, rows: 0 ..< rows)
            for r in 0 ..< rows {
                let tol = KernelMatVecTests.integerBound(plain, r, a)
                #expect(abs(y[r] - yr[r]) <= tol, "\(r8.dtype.name) \(rows)x\(cols) row \(r): \(y[r]) vs \(yr[r])")
                #expect(yt[r] == yr[r], "scalar twin row \(r)")   // deinterleave + the same scalar code
            }
            // A sub-range of row groups writes those rows only.
            if rows >= 24 {
                let z = buf.floats(rows)
                matvec(r8, x: x, xq: a, y: z, rows: 8 ..< 16)
                for r in 0 ..< rows { #expect((8 ..< 16).contains(r) ? z[r] == y[r] : z[r] == 0, "range row \(r)") }
            }
        }
    }

    @Test(arguments: kernelQuantTypes)
    func matmulTilesMatchPerTokenReference(dtype: DType) {
        let buf = KernelBuffers()
        var rng = KernelRNG(seed: 12)
        // 40 rows = 5 groups: one chunk of matmulR8RowGroups (4) + 1; T = 7: a 4-token tile + 3;
        // 2176 columns = two full K spans of matmulR8KSpan (1024) + a partial one.
        for cols in [256, 2176] {
        let rows = 40, T = 7
        let (plain, r8) = buf.weightPair(dtype, rows: rows, cols: cols, &rng)
        let X = buf.random(T * cols, &rng)
        let a = buf.quantized(count: cols, rows: T)
        quantizeActivations(X, ldx: cols, into: a)
        let ldy = rows + 3
        let Y = buf.floats(T * ldy), yr = buf.floats(rows)
        matmul(r8, X: X, ldx: cols, xq: a, tokens: T, Y: Y, ldy: ldy, rows: 0 ..< rows, scratch: nil)
        for t in 0 ..< T {
            matvecQuant_ref(plain, a.row(t), yr, rows: 0 ..< rows)
            for r in 0 ..< rows {
                #expect(abs(Y[t * ldy + r] - yr[r]) <= KernelMatVecTests.integerBound(plain, r, a.row(t)), "\(r8.dtype.name) t\(t) r\(r)")
            }
            #expect(Y[t * ldy + rows] == 0)  // padding untouched
        }
        }
    }

    /// Batches where `matmulUsesInt8` says no (q8 _r8 without VNNI, T ≥ matmulWidenThreshold) widen
    /// the rows (dequantizeRowR8Fast, exact) and run sgemm: compared with the Double-sum oracle.
    @Test(arguments: [DType.q8_g32, .q8_g128, .q4_g64])
    func wideBatchesThroughSgemmMatchReference(dtype: DType) {
        let buf = KernelBuffers()
        var rng = KernelRNG(seed: 14)
        let rows = 24, cols = 384, T = matmulWidenThreshold + 3
        let (_, r8) = buf.weightPair(dtype, rows: rows, cols: cols, &rng)
        let X = buf.random(T * cols, &rng)
        let a = buf.quantized(count: cols, rows: T)
        quantizeActivations(X, ldx: cols, into: a)
        let scratch = buf.floats(max(matmulFloatScratchCount(r8), 1))
        let Y = buf.floats(T * rows), yr = buf.floats(rows), tmp = buf.floats(cols)
        // The widen + sgemm path itself (the dispatch picks it only where the int8 tiles are slower).
        matmulFloat(r8, X, ldx: cols, tokens: T, Y, ldy: rows, rows: 0 ..< rows, scratch: scratch)
        for r in 0 ..< rows {   // the widened row is exactly the reference dequantization
            r8.dequantizeRow(r, into: tmp)
            let ref = buf.floats(cols)
            dequantizeRow_ref(r8.dtype, matrix: r8.base, cols: cols, row: r, into: ref)
            #expect((0 ..< cols).allSatisfy { tmp[$0] == ref[$0] }, "\(r8.dtype.name) widened row \(r)")
        }
        for t in 0 ..< T {
            matvec_ref(r8, X + t * cols, yr, rows: 0 ..< rows, tmp: tmp)
            for r in 0 ..< rows {
                let tol = buf.sumBound(r8, row: r, X + t * cols, tmp: tmp)
                #expect(abs(Y[t * rows + r] - yr[r]) <= tol, "\(r8.dtype.name) t\(t) r\(r): \(Y[t * rows + r]) vs \(yr[r])")
            }
        }
    }

    /// The AVX-512 VNNI tiles compute the same integers and the same float steps as the AVX2
    /// tiles: identical outputs (skipped on CPUs without VNNI, where the runtime never calls them).
    @Test(.enabled(if: cpuHasAVX512VNNI), arguments: kernelQuantTypes)
    func vnniTilesEqualAVX2Tiles(dtype: DType) {
        let buf = KernelBuffers()
        var rng = KernelRNG(seed: 15)
        let rows = 40, cols = 2176, T = 7
        let (_, r8) = buf.weightPair(dtype, rows: rows, cols: cols, &rng)
        let X = buf.random(T * cols, &rng)
        let a = buf.quantized(count: cols, rows: T)
        quantizeActivations(X, ldx: cols, into: a)
        let Y1 = buf.floats(T * rows), Y2 = buf.floats(T * rows)
        matmulR8(r8, a, Y1, ldy: rows, rows: 0 ..< rows, vnni: false)
        matmulR8(r8, a, Y2, ldy: rows, rows: 8 ..< 40, vnni: true)
        matmulR8(r8, a, Y2, ldy: rows, rows: 0 ..< 8, vnni: true)
        for i in 0 ..< T * rows { #expect(Y1[i] == Y2[i], "\(r8.dtype.name) [\(i / rows), \(i % rows)]: \(Y1[i]) vs \(Y2[i])") }
    }

    /// The AMX bf16 tiles against their scalar twin (the same bf16 roundings, f32 sums in column
    /// order): 40 rows = a 32-row panel + a partial one, T = 37 = two 16-token tiles + one + a
    /// padded tail, a row range that starts mid-matrix, and the dispatch through linearBatch with a
    /// bias (skipped on CPUs without AMX, where the runtime never calls them).
    @Test(.enabled(if: cpuHasAMX), arguments: kernelQuantTypes)
    func amxTilesMatchBF16Reference(dtype: DType) throws {
        let buf = KernelBuffers()
        var rng = KernelRNG(seed: 16)
        let rows = 40, cols = 2176, T = 37, ldy = rows + 3
        let (_, r8) = buf.weightPair(dtype, rows: rows, cols: cols, &rng)
        let X = buf.random(T * cols, &rng)
        let Yr = buf.floats(T * ldy), Y = buf.floats(T * ldy), tmp = buf.floats(cols)
        matmulAMX_ref(r8, X, ldx: cols, tokens: T, Yr, ldy: ldy, rows: 0 ..< rows)
        let raw = UnsafeMutableRawPointer.allocate(byteCount: BF16Activations.scratchBytes(rows: T, cols: cols), alignment: 64)
        let panel = UnsafeMutablePointer<UInt16>.allocate(capacity: matmulAMXPanelCount(cols: cols))
        defer { raw.deallocate(); panel.deallocate() }
        // NaN in the padding tokens (37..<48): their output rows are computed apart and not stored.
        raw.initializeMemory(as: UInt16.self, repeating: 0x7FC0, count: BF16Activations.scratchBytes(rows: T, cols: cols) / 2)
        let a = BF16Activations(scratch: raw, rows: T, cols: cols)
        a.set(X, ldx: cols, tokens: 0 ..< T)
        matmulAMX(r8, a, Y, ldy: ldy, rows: 8 ..< 40, panel: panel)
        matmulAMX(r8, a, Y, ldy: ldy, rows: 0 ..< 8, panel: panel)
        func tolerance(_ t: Int, _ r: Int) -> Float { buf.sumBound(r8, row: r, X + t * cols, tmp: tmp) }
        for t in 0 ..< T {
            for r in 0 ..< rows {
                #expect(abs(Y[t * ldy + r] - Yr[t * ldy + r]) <= tolerance(t, r), "\(r8.dtype.name) t\(t) r\(r): \(Y[t * ldy + r]) vs \(Yr[t * ldy + r])")
            }
            #expect(Y[t * ldy + rows] == 0)  // padding columns untouched
        }
        // The runtime's batch path: 200 rows = blocks of 64 taken by two threads + a tail of 8, bias
        // added after.
        let wide = 200, k = 256
        let (_, w2) = buf.weightPair(dtype, rows: wide, cols: k, &rng)
        let X2 = buf.random(T * k, &rng), Y2 = buf.floats(T * wide), Yb = buf.floats(T * wide)
        matmulAMX_ref(w2, X2, ldx: k, tokens: T, Y2, ldy: wide, rows: 0 ..< wide)
        let compute = try Compute(threads: 2, maxCols: k, maxBatch: T, weights: [w2])
        let bias = (0 ..< wide).map { Float($0) * 0.25 }
        compute.linearBatch(w2, X2, T, Yb, ldy: wide, bias: bias)
        for t in 0 ..< T {
            for r in 0 ..< wide {
                let want = Y2[t * wide + r] + bias[r]
                #expect(abs(Yb[t * wide + r] - want) <= 1e-4 * (1 + abs(want)), "linearBatch t\(t) r\(r): \(Yb[t * wide + r]) vs \(want)")
            }
        }
    }

    /// The AMX path for f16/bf16 weights (the vocoder's, `bf16FloatWeights`): any row count (37 =
    /// a 32-row panel + 5), against the same scalar twin; and without `bf16FloatWeights` the batch
    /// keeps sgemm's f32 products (exact f32 sums of the f16 weights, not bf16-rounded ones).
    @Test(.enabled(if: cpuHasAMX), arguments: [DType.f16, .bf16])
    func amxTilesOnFloatWeightsMatchBF16Reference(dtype: DType) throws {
        let buf = KernelBuffers()
        var rng = KernelRNG(seed: 17)
        let rows = 37, cols = 2176, T = 37
        let w = buf.weight(dtype, rows: rows, cols: cols, &rng)
        let X = buf.random(T * cols, &rng)
        let Yr = buf.floats(T * rows), Yb = buf.floats(T * rows), Ys = buf.floats(T * rows), tmp = buf.floats(cols)
        matmulAMX_ref(w, X, ldx: cols, tokens: T, Yr, ldy: rows, rows: 0 ..< rows)
        try Compute(threads: 2, maxCols: cols, maxBatch: T, weights: [w], bf16FloatWeights: true)
            .linearBatch(w, X, T, Yb, ldy: rows)
        try Compute(threads: 2, maxCols: cols, maxBatch: T, weights: [w]).linearBatch(w, X, T, Ys, ldy: rows)
        var sgemmDiffers = false
        for r in 0 ..< rows {
            for t in 0 ..< T {
                let tol = buf.sumBound(w, row: r, X + t * cols, tmp: tmp)
                var exact: Double = 0
                for k in 0 ..< cols { exact += Double(tmp[k]) * Double(X[t * cols + k]) }
                #expect(abs(Yb[t * rows + r] - Yr[t * rows + r]) <= tol, "\(dtype.name) t\(t) r\(r): \(Yb[t * rows + r]) vs \(Yr[t * rows + r])")
                #expect(abs(Double(Ys[t * rows + r]) - exact) <= Double(tol), "sgemm t\(t) r\(r)")
                if abs(Ys[t * rows + r] - Yb[t * rows + r]) > tol { sgemmDiffers = true }
            }
        }
        if dtype == .f16 { #expect(sgemmDiffers, "bf16 rounding of f16 weights should be visible") }
    }

    @Test func dequantizedRowsEqualRowMajor() {
        let buf = KernelBuffers()
        var rng = KernelRNG(seed: 13)
        for dtype in kernelQuantTypes {
            let (plain, r8) = buf.weightPair(dtype, rows: 16, cols: 256, &rng)
            let u = buf.floats(256), v = buf.floats(256)
            for r in 0 ..< 16 {
                plain.dequantizeRow(r, into: u)
                r8.dequantizeRow(r, into: v)
                #expect((0 ..< 256).allSatisfy { u[$0] == v[$0] }, "\(dtype.name) row \(r)")
            }
        }
    }
}
