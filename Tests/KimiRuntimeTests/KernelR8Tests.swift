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
