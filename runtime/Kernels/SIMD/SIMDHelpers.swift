// Small SIMD building blocks shared by the runtime's kernels (KimiRuntime, KimiKernelsVNNI) and the
// converter's quantizer (KimiConvert): module KimiSIMD, so each exists once. Everything here is
// `@inlinable @inline(__always)` so the hot loops of every client see plain vector instructions (the generic SIMD conversions such as
// `SIMD16<Int16>(truncatingIfNeeded:)` stay library calls; see KernelsREADME in the report).
//
// On x86-64 the integer dot products use the clang intrinsics module (`_Builtin_intrinsics.intel`,
// the same `immintrin.h` C code includes): plain Swift SIMD arithmetic on Int8/Int16 lowers to
// vpmullw + shifts, never to vpmaddubsw/vpmaddwd. Elsewhere a portable Swift-SIMD fallback computes
// the same integers.
#if arch(x86_64)
import _Builtin_intrinsics.intel
#endif

/// Eight f32 at `p` (unaligned).
@inlinable @inline(__always) public func loadF32x8(_ p: UnsafeRawPointer) -> SIMD8<Float> {
    p.loadUnaligned(as: SIMD8<Float>.self)
}

/// Eight IEEE f16 at `p` widened to f32 (vcvtph2ps with F16C).
@inlinable @inline(__always) public func loadF16x8(_ p: UnsafeRawPointer) -> SIMD8<Float> {
    #if arch(x86_64)
    return _mm256_cvtph_ps(p.loadUnaligned(as: __m128i.self))
    #else
    let h = p.loadUnaligned(as: SIMD8<Float16>.self)
    var r = SIMD8<Float>()
    for i in 0 ..< 8 { r[i] = Float(h[i]) }
    return r
    #endif
}

/// Eight bfloat16 at `p` widened to f32: zero-extend to 32 bits and shift into the high half
/// (the element loop lowers to vpmovzxwd + vpslld).
@inlinable @inline(__always) public func loadBF16x8(_ p: UnsafeRawPointer) -> SIMD8<Float> {
    let v = p.loadUnaligned(as: SIMD8<UInt16>.self)
    var r = SIMD8<UInt32>()
    for i in 0 ..< 8 { r[i] = UInt32(v[i]) }
    return unsafeBitCast(r &<< 16, to: SIMD8<Float>.self)
}

/// Lane sum as a tree (3 adds on ymm/xmm instead of 7 serial scalar adds).
@inlinable @inline(__always) public func hsum(_ v: SIMD8<Float>) -> Float {
    let q = v.lowHalf + v.highHalf
    let d = q.lowHalf + q.highHalf
    return d[0] + d[1]
}

@inlinable @inline(__always) public func hsum(_ v: SIMD8<Int32>) -> Int32 {
    let q = v.lowHalf &+ v.highHalf
    let d = q.lowHalf &+ q.highHalf
    return d[0] &+ d[1]
}

@inlinable @inline(__always) public func vmax(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> {
    var r = a
    r.replace(with: b, where: b .> a)
    return r
}

@inlinable @inline(__always) public func vmin(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> {
    var r = a
    r.replace(with: b, where: b .< a)
    return r
}

@inlinable @inline(__always) public func vabs(_ v: SIMD8<Float>) -> SIMD8<Float> {
    unsafeBitCast(
        unsafeBitCast(v, to: SIMD8<UInt32>.self) & SIMD8<UInt32>(repeating: 0x7FFF_FFFF), to: SIMD8<Float>.self)
}

@inlinable @inline(__always) public func laneMax(_ v: SIMD8<Float>) -> Float {
    let q = vmax4(v.lowHalf, v.highHalf)
    return max(max(q[0], q[1]), max(q[2], q[3]))
}

@inlinable @inline(__always) public func vmax4(_ a: SIMD4<Float>, _ b: SIMD4<Float>) -> SIMD4<Float> {
    var r = a
    r.replace(with: b, where: b .> a)
    return r
}

/// e^x for 8 lanes: Cephes expf (range reduction x = n·ln2 + r, degree-5 polynomial on r);
/// relative error ≈ 2 ulp on [-87.3, 88.7]; below that 0, above +inf (as libm, minus subnormals). The integer 2^n is built by the 1.5·2^23 rounding trick because
/// `SIMD8<Int32>(floatVector)` stays a library call.
@inlinable @inline(__always) public func vexp(_ xIn: SIMD8<Float>) -> SIMD8<Float> {
    let x = vmin(vmax(xIn, SIMD8(repeating: -87.33654)), SIMD8(repeating: 88.72283))
    let log2e = SIMD8<Float>(repeating: 1.44269504088896341)
    // n = round(x·log2e) via the magic-number add (round to nearest even in the FPU).
    let magic = SIMD8<Float>(repeating: 12582912)  // 1.5·2^23
    // Fused multiply-adds (Swift does not contract a·b + c on its own): the polynomial is a chain
    // of dependent steps, so each fused step halves its latency.
    let t = magic.addingProduct(x, log2e)
    let n = t - magic
    var r = x.addingProduct(n, SIMD8(repeating: -0.693359375))
    r = r.addingProduct(n, SIMD8(repeating: 2.12194440e-4))
    var p = SIMD8<Float>(repeating: 1.3981999507e-3).addingProduct(SIMD8(repeating: 1.9875691500e-4), r)
    p = SIMD8<Float>(repeating: 8.3334519073e-3).addingProduct(p, r)
    p = SIMD8<Float>(repeating: 4.1665795894e-2).addingProduct(p, r)
    p = SIMD8<Float>(repeating: 1.6666665459e-1).addingProduct(p, r)
    p = SIMD8<Float>(repeating: 5.0000001201e-1).addingProduct(p, r)
    let y = (r + SIMD8(repeating: 1)).addingProduct(p, r * r)
    // 2^n: n is an integer in [-126, 128]; its bits sit in t's mantissa. Build 2^(n/2) twice so
    // n = 128 and n = -126 do not overflow the exponent field.
    let ni = unsafeBitCast(t, to: SIMD8<Int32>.self) &- unsafeBitCast(magic, to: SIMD8<Int32>.self)
    let h = ni &>> 1
    let s1 = unsafeBitCast((h &+ 127) &<< 23, to: SIMD8<Float>.self)
    let s2 = unsafeBitCast(((ni &- h) &+ 127) &<< 23, to: SIMD8<Float>.self)
    let e = unsafeBitCast(y * s1 * s2, to: SIMD8<Int32>.self)
    // The limits as sign-bit masks (all ones where xIn < lo, resp. xIn > hi): a SIMDMask compare
    // with `replace(with:where:)` compiles to a per-lane loop through memory here.
    let under = unsafeBitCast(xIn - SIMD8(repeating: -87.33654), to: SIMD8<Int32>.self) &>> 31
    let over = unsafeBitCast(SIMD8(repeating: 88.72283) - xIn, to: SIMD8<Int32>.self) &>> 31
    let inf = SIMD8<Int32>(repeating: 0x7F80_0000)
    return unsafeBitCast(((e & ~under) & ~over) | (inf & over), to: SIMD8<Float>.self)  // 0 below, +inf above
}

/// Eight f32 at `p` (typed pointer form).
@inlinable @inline(__always) public func load8(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
    loadF32x8(UnsafeRawPointer(p))
}

@inlinable @inline(__always) public func store8(_ p: UnsafeMutablePointer<Float>, _ v: SIMD8<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self)
}

/// min(max(v, lo), hi) without the generic pointwiseMin/Max calls Swift leaves un-inlined.
@inlinable @inline(__always) public func clamp(_ v: SIMD8<Float>, _ lo: SIMD8<Float>, _ hi: SIMD8<Float>) -> SIMD8<
    Float
> {
    var r = v
    r.replace(with: lo, where: v .< lo)
    r.replace(with: hi, where: r .> hi)
    return r
}

#if arch(x86_64)
/// 32 bytes at `p` (unaligned).
@inlinable @inline(__always) public func load256(_ p: UnsafeRawPointer) -> __m256i { p.loadUnaligned(as: __m256i.self) }

/// The 4 bytes at `p` in every 32-bit lane (one activation dword for 8 interleaved rows).
@inlinable @inline(__always) public func broadcast32(_ p: UnsafeRawPointer) -> __m256i {
    _mm256_set1_epi32(p.loadUnaligned(as: Int32.self))
}

/// The 8 f16 scales at the head of an `_r8` tile, as f32.
@inlinable @inline(__always) public func tileScales(_ t: UnsafeRawPointer) -> SIMD8<Float> {
    _mm256_cvtph_ps(t.loadUnaligned(as: __m128i.self))
}
#endif

/// The results of an 8-row tile for up to 4 tokens: `c_u` goes to `y + u·ldy` (written, or added
/// to what is there when `accumulate`), for u < `count`.
@inlinable @inline(__always) public func storeTile4(
    _ y: UnsafeMutablePointer<Float>, ldy: Int, _ c0: SIMD8<Float>, _ c1: SIMD8<Float>, _ c2: SIMD8<Float>,
    _ c3: SIMD8<Float>, count nt: Int, accumulate: Bool
) {
    @inline(__always) func put(_ v: SIMD8<Float>, _ u: Int) {
        let o = UnsafeMutableRawPointer(y + u * ldy)
        o.storeBytes(of: accumulate ? v + o.loadUnaligned(as: SIMD8<Float>.self) : v, as: SIMD8<Float>.self)
    }
    put(c0, 0)
    if nt > 1 { put(c1, 1) }
    if nt > 2 { put(c2, 2) }
    if nt > 3 { put(c3, 3) }
}
