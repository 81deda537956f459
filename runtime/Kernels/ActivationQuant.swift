#if arch(x86_64)
import _Builtin_intrinsics.intel
import KimiSIMD
#endif

/// Activations quantized for the integer kernels (ggml's q8_0 "vec_dot_type"): `rows` vectors of
/// `count` values (count a multiple of 32), each 32-block as an f32 scale `d`, 32 int8 `qs`
/// (x ≈ d·q, symmetric, round to nearest even, |q| ≤ 127), `s = d·Σq` and the integer `sq = Σq`,
/// which the q4 kernels need because they multiply the unsigned nibbles (q4 + 8) and subtract 8·Σ
/// afterwards (in float with s, or, in the `_r8` prefill tiles, in int32 with sq).
/// All three arrays live in a caller-provided scratch buffer (`scratchBytes`), no allocation.
public struct QuantizedActivations: @unchecked Sendable {
    public let qs: UnsafeMutablePointer<Int8>   // [rows · count]
    public let d: UnsafeMutablePointer<Float>    // [rows · count/32]
    public let s: UnsafeMutablePointer<Float>    // [rows · count/32]
    public let sq: UnsafeMutablePointer<Int32>   // [rows · count/32]
    public let count: Int
    public let rows: Int

    public static let block = 32

    /// Bytes of scratch for `rows` vectors of `count` values (64-byte aligned pieces).
    public static func scratchBytes(count: Int, rows: Int = 1) -> Int {
        let nb = rows * (count / 32)
        return align64(rows * count) + 3 * align64(4 * nb) + 64
    }

    @inline(__always) static func align64(_ n: Int) -> Int { (n + 63) & ~63 }

    /// Lays the arrays out in `scratch` (at least `scratchBytes(count:rows:)` bytes).
    public init(scratch: UnsafeMutableRawPointer, count: Int, rows: Int = 1) {
        precondition(count % 32 == 0, "QuantizedActivations: count must be a multiple of 32")
        let start = (Int(bitPattern: scratch) + 63) & ~63
        let p = UnsafeMutableRawPointer(bitPattern: start)!
        let nb = rows * (count / 32)
        qs = p.bindMemory(to: Int8.self, capacity: rows * count)
        let dp = p + Self.align64(rows * count)
        d = dp.bindMemory(to: Float.self, capacity: nb)
        s = (dp + Self.align64(4 * nb)).bindMemory(to: Float.self, capacity: nb)
        sq = (dp + 2 * Self.align64(4 * nb)).bindMemory(to: Int32.self, capacity: nb)
        self.count = count; self.rows = rows
    }

    /// Row t as a one-row view (for matvec on one token of a batch).
    public func row(_ t: Int) -> QuantizedActivations {
        let nb = count / 32
        return QuantizedActivations(qs: qs + t * count, d: d + t * nb, s: s + t * nb, sq: sq + t * nb, count: count, rows: 1)
    }

    init(qs: UnsafeMutablePointer<Int8>, d: UnsafeMutablePointer<Float>, s: UnsafeMutablePointer<Float>, sq: UnsafeMutablePointer<Int32>, count: Int, rows: Int) {
        self.qs = qs; self.d = d; self.s = s; self.sq = sq; self.count = count; self.rows = rows
    }
}

/// Quantizes row `t` of the activations from `x` (count floats).
public func quantizeActivations(_ x: UnsafePointer<Float>, into a: QuantizedActivations, row t: Int = 0) {
    let nb = a.count / 32
    let qs = a.qs + t * a.count, d = a.d + t * nb, s = a.s + t * nb, sq = a.sq + t * nb
    for b in 0 ..< nb { quantizeBlock32(x + 32 * b, qs + 32 * b, d + b, s + b, sq + b) }
}

/// All `a.rows` rows from `x` (row stride `ldx` floats).
public func quantizeActivations(_ x: UnsafePointer<Float>, ldx: Int, into a: QuantizedActivations) {
    for t in 0 ..< a.rows { quantizeActivations(x + t * ldx, into: a, row: t) }
}

@inline(__always) func quantizeBlock32(_ x: UnsafePointer<Float>, _ q: UnsafeMutablePointer<Int8>,
                                       _ dOut: UnsafeMutablePointer<Float>, _ sOut: UnsafeMutablePointer<Float>,
                                       _ sqOut: UnsafeMutablePointer<Int32>) {
    let v0 = loadF32x8(x), v1 = loadF32x8(x + 8), v2 = loadF32x8(x + 16), v3 = loadF32x8(x + 24)
    let amax = laneMax(vmax(vmax(vabs(v0), vabs(v1)), vmax(vabs(v2), vabs(v3))))
    let d = amax / 127
    let id: Float = d != 0 ? 1 / d : 0
    let vid = SIMD8<Float>(repeating: id)
    #if arch(x86_64)
    // vcvtps2dq rounds to nearest even (default MXCSR), as `.rounded(.toNearestOrEven)` in the ref.
    let i0 = _mm256_cvtps_epi32(v0 * vid), i1 = _mm256_cvtps_epi32(v1 * vid)
    let i2 = _mm256_cvtps_epi32(v2 * vid), i3 = _mm256_cvtps_epi32(v3 * vid)
    let sum = (unsafeBitCast(i0, to: SIMD8<Int32>.self) &+ unsafeBitCast(i1, to: SIMD8<Int32>.self))
        &+ (unsafeBitCast(i2, to: SIMD8<Int32>.self) &+ unsafeBitCast(i3, to: SIMD8<Int32>.self))
    // packs work per 128-bit lane: the bytes come out in dword order 0,4,1,5,2,6,3,7; permute back.
    let p = _mm256_packs_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3))
    let r = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7))
    UnsafeMutableRawPointer(q).storeBytes(of: r, as: __m256i.self)
    let isum = hsum(sum)
    dOut.pointee = d
    sOut.pointee = d * Float(isum)
    sqOut.pointee = isum
    #else
    var sum: Int32 = 0
    for j in 0 ..< 32 {
        let v = Int32((x[j] * id).rounded(.toNearestOrEven))
        q[j] = Int8(v); sum += v
    }
    dOut.pointee = d
    sOut.pointee = d * Float(sum)
    sqOut.pointee = sum
    #endif
}

/// Scalar twin: the same bytes, scales and sums.
public func quantizeActivations_ref(_ x: UnsafePointer<Float>, into a: QuantizedActivations, row t: Int = 0) {
    let nb = a.count / 32
    for b in 0 ..< nb {
        let xs = x + 32 * b
        var amax: Float = 0
        for j in 0 ..< 32 { amax = max(amax, abs(xs[j])) }
        let d = amax / 127
        let id: Float = d != 0 ? 1 / d : 0
        var sum = 0
        for j in 0 ..< 32 {
            let q = Int((xs[j] * id).rounded(.toNearestOrEven))
            a.qs[t * a.count + 32 * b + j] = Int8(q)
            sum += q
        }
        a.d[t * nb + b] = d
        a.s[t * nb + b] = d * Float(sum)
        a.sq[t * nb + b] = Int32(sum)
    }
}
