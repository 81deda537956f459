// Small SIMD building blocks shared by the kernels. Everything here is `@inline(__always)` so the
// hot loops see plain vector instructions (the generic SIMD conversions such as
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
@inline(__always) func loadF32x8(_ p: UnsafeRawPointer) -> SIMD8<Float> {
    p.loadUnaligned(as: SIMD8<Float>.self)
}

/// Eight IEEE f16 at `p` widened to f32 (vcvtph2ps with F16C).
@inline(__always) func loadF16x8(_ p: UnsafeRawPointer) -> SIMD8<Float> {
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
@inline(__always) func loadBF16x8(_ p: UnsafeRawPointer) -> SIMD8<Float> {
    let v = p.loadUnaligned(as: SIMD8<UInt16>.self)
    var r = SIMD8<UInt32>()
    for i in 0 ..< 8 { r[i] = UInt32(v[i]) }
    return unsafeBitCast(r &<< 16, to: SIMD8<Float>.self)
}

/// Lane sum as a tree (3 adds on ymm/xmm instead of 7 serial scalar adds).
@inline(__always) func hsum(_ v: SIMD8<Float>) -> Float {
    let q = v.lowHalf + v.highHalf
    let d = q.lowHalf + q.highHalf
    return d[0] + d[1]
}

@inline(__always) func hsum(_ v: SIMD8<Int32>) -> Int32 {
    let q = v.lowHalf &+ v.highHalf
    let d = q.lowHalf &+ q.highHalf
    return d[0] &+ d[1]
}

@inline(__always) func vmax(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> {
    var r = a
    r.replace(with: b, where: b .> a)
    return r
}

@inline(__always) func vmin(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> {
    var r = a
    r.replace(with: b, where: b .< a)
    return r
}

@inline(__always) func vabs(_ v: SIMD8<Float>) -> SIMD8<Float> {
    unsafeBitCast(unsafeBitCast(v, to: SIMD8<UInt32>.self) & SIMD8<UInt32>(repeating: 0x7FFF_FFFF), to: SIMD8<Float>.self)
}

@inline(__always) func laneMax(_ v: SIMD8<Float>) -> Float {
    let q = vmax4(v.lowHalf, v.highHalf)
    return max(max(q[0], q[1]), max(q[2], q[3]))
}

@inline(__always) func vmax4(_ a: SIMD4<Float>, _ b: SIMD4<Float>) -> SIMD4<Float> {
    var r = a
    r.replace(with: b, where: b .> a)
    return r
}

/// e^x for 8 lanes: Cephes expf (range reduction x = n·ln2 + r, degree-5 polynomial on r);
/// relative error ≈ 2 ulp on [-87.3, 88.7]; below that 0, above +inf (as libm, minus subnormals). The integer 2^n is built by the 1.5·2^23 rounding trick because
/// `SIMD8<Int32>(floatVector)` stays a library call.
@inline(__always) func vexp(_ xIn: SIMD8<Float>) -> SIMD8<Float> {
    let x = vmin(vmax(xIn, SIMD8(repeating: -87.33654)), SIMD8(repeating: 88.72283))
    let log2e = SIMD8<Float>(repeating: 1.44269504088896341)
    // n = round(x·log2e) via the magic-number add (round to nearest even in the FPU).
    let magic = SIMD8<Float>(repeating: 12582912)   // 1.5·2^23
    let t = x * log2e + magic
    let n = t - magic
    var r = x - n * SIMD8(repeating: 0.693359375)
    r = r + n * SIMD8(repeating: 2.12194440e-4)
    var p = SIMD8<Float>(repeating: 1.9875691500e-4)
    p = p * r + SIMD8(repeating: 1.3981999507e-3)
    p = p * r + SIMD8(repeating: 8.3334519073e-3)
    p = p * r + SIMD8(repeating: 4.1665795894e-2)
    p = p * r + SIMD8(repeating: 1.6666665459e-1)
    p = p * r + SIMD8(repeating: 5.0000001201e-1)
    let y = p * (r * r) + r + SIMD8(repeating: 1)
    // 2^n: n is an integer in [-126, 128]; its bits sit in t's mantissa. Build 2^(n/2) twice so
    // n = 128 and n = -126 do not overflow the exponent field.
    let ni = unsafeBitCast(t, to: SIMD8<Int32>.self) &- unsafeBitCast(magic, to: SIMD8<Int32>.self)
    let h = ni &>> 1
    let s1 = unsafeBitCast((h &+ 127) &<< 23, to: SIMD8<Float>.self)
    let s2 = unsafeBitCast(((ni &- h) &+ 127) &<< 23, to: SIMD8<Float>.self)
    var e = y * s1 * s2
    e.replace(with: 0, where: xIn .< SIMD8(repeating: -87.33654))          // underflow → 0, as libm
    e.replace(with: .infinity, where: xIn .> SIMD8(repeating: 88.72283))   // overflow → +inf
    return e
}
