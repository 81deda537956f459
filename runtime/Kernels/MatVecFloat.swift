import KAF
import KimiSIMD

// y[r] = Σ_k W[r,k]·x[k] for float weights (f32 / f16 / bf16), rows `rows` only so callers can
// split a matrix over threads; y is indexed by the absolute row. Four rows per pass share each
// 16-float slice of x (two SIMD8 loads) and keep 8 FMA chains in flight; the weights are widened
// to f32 on the fly (vcvtph2ps for f16, vpmovzxwd + vpslld for bf16). A column tail (cols not a
// multiple of 16) is done in scalar code.

/// Loads 8 weights of row `p` at element `k` as f32.
protocol _FloatRowLoader { static func load8(_ p: UnsafeRawPointer, _ k: Int) -> SIMD8<Float>; static func load1(_ p: UnsafeRawPointer, _ k: Int) -> Float }
enum _LoadF32: _FloatRowLoader {
    @inline(__always) static func load8(_ p: UnsafeRawPointer, _ k: Int) -> SIMD8<Float> { loadF32x8(p + 4 * k) }
    @inline(__always) static func load1(_ p: UnsafeRawPointer, _ k: Int) -> Float { p.loadUnaligned(fromByteOffset: 4 * k, as: Float.self) }
}
enum _LoadF16: _FloatRowLoader {
    @inline(__always) static func load8(_ p: UnsafeRawPointer, _ k: Int) -> SIMD8<Float> { loadF16x8(p + 2 * k) }
    @inline(__always) static func load1(_ p: UnsafeRawPointer, _ k: Int) -> Float { f16ToFloat(p.loadUnaligned(fromByteOffset: 2 * k, as: UInt16.self)) }
}
enum _LoadBF16: _FloatRowLoader {
    @inline(__always) static func load8(_ p: UnsafeRawPointer, _ k: Int) -> SIMD8<Float> { loadBF16x8(p + 2 * k) }
    @inline(__always) static func load1(_ p: UnsafeRawPointer, _ k: Int) -> Float { bf16ToFloat(p.loadUnaligned(fromByteOffset: 2 * k, as: UInt16.self)) }
}

public func matvecF32(_ w: WeightMatrix, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, rows: Range<Int>) {
    matvecFloat(_LoadF32.self, w, x, y, rows)
}
public func matvecF16(_ w: WeightMatrix, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, rows: Range<Int>) {
    matvecFloat(_LoadF16.self, w, x, y, rows)
}
public func matvecBF16(_ w: WeightMatrix, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, rows: Range<Int>) {
    matvecFloat(_LoadBF16.self, w, x, y, rows)
}

// Specialized per loader (generic + @inline(__always) → one copy per dtype after inlining).
@inline(__always)
func matvecFloat<L: _FloatRowLoader>(_: L.Type, _ w: WeightMatrix, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ rows: Range<Int>) {
    let K = w.cols, K16 = K & ~15
    let xr = UnsafeRawPointer(x)
    var r = rows.lowerBound
    while r + 4 <= rows.upperBound {
        let p0 = w.row(r), p1 = w.row(r + 1), p2 = w.row(r + 2), p3 = w.row(r + 3)
        var a0 = SIMD8<Float>(), a1 = SIMD8<Float>(), a2 = SIMD8<Float>(), a3 = SIMD8<Float>()
        var b0 = SIMD8<Float>(), b1 = SIMD8<Float>(), b2 = SIMD8<Float>(), b3 = SIMD8<Float>()
        var k = 0
        while k < K16 {
            let x0 = loadF32x8(xr + 4 * k), x1 = loadF32x8(xr + 4 * k + 32)
            a0.addProduct(L.load8(p0, k), x0); b0.addProduct(L.load8(p0, k + 8), x1)
            a1.addProduct(L.load8(p1, k), x0); b1.addProduct(L.load8(p1, k + 8), x1)
            a2.addProduct(L.load8(p2, k), x0); b2.addProduct(L.load8(p2, k + 8), x1)
            a3.addProduct(L.load8(p3, k), x0); b3.addProduct(L.load8(p3, k + 8), x1)
            k += 16
        }
        var s0 = hsum(a0 + b0), s1 = hsum(a1 + b1), s2 = hsum(a2 + b2), s3 = hsum(a3 + b3)
        while k < K {
            let xk = x[k]
            s0 += L.load1(p0, k) * xk; s1 += L.load1(p1, k) * xk
            s2 += L.load1(p2, k) * xk; s3 += L.load1(p3, k) * xk
            k += 1
        }
        y[r] = s0; y[r + 1] = s1; y[r + 2] = s2; y[r + 3] = s3
        r += 4
    }
    while r < rows.upperBound {
        let p0 = w.row(r)
        var a0 = SIMD8<Float>(), b0 = SIMD8<Float>()
        var k = 0
        while k < K16 {
            a0.addProduct(L.load8(p0, k), loadF32x8(xr + 4 * k))
            b0.addProduct(L.load8(p0, k + 8), loadF32x8(xr + 4 * k + 32))
            k += 16
        }
        var s0 = hsum(a0 + b0)
        while k < K { s0 += L.load1(p0, k) * x[k]; k += 1 }
        y[r] = s0
        r += 1
    }
}

/// Scalar oracle for every weight type: dequantize the row with `dequantizeRow_ref` and sum the
/// products in Double (so it is the "true" value of the stored weights times x). `tmp` holds
/// `cols` floats.
public func matvec_ref(_ w: WeightMatrix, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, rows: Range<Int>, tmp: UnsafeMutablePointer<Float>) {
    for r in rows {
        dequantizeRow_ref(w.dtype, matrix: w.base, cols: w.cols, row: r, into: tmp)
        var s = 0.0
        for k in 0 ..< w.cols { s += Double(tmp[k]) * Double(x[k]) }
        y[r] = Float(s)
    }
}
