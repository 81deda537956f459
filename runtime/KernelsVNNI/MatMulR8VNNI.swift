// The `_r8` prefill tiles (runtime/Kernels/MatMulR8.swift) with AVX-512 VNNI: `vpdpbusd` (u8 × s8,
// 4 products summed into each int32 lane and accumulated) replaces vpmaddubsw + vpaddw (q4) or
// vpmaddubsw + vpmaddwd + vpaddd (q8), on 256-bit registers (AVX512VL), and q8 row groups in pairs on
// 512-bit registers (`q8Span512`: 1.15× on the large-v3 encoder at q8). This module alone is built
// with -mavx512vnni (Package.swift); KimiRuntime calls it only when the CPU has the instructions
// (`cpuHasAVX512VNNI`), so the rest of the build stays x86-64-v3. Same arithmetic as the AVX2 tiles:
// the same integer sums per 32-run, the same float steps, so the results are identical.
// The tile walk itself is KimiSIMD's r8Span, shared with the AVX2 tiles; this module supplies the
// vpdpbusd steps. Raw pointers only: it sits below KimiRuntime and cannot see its types.
#if arch(x86_64)
import _Builtin_intrinsics.intel
import KimiSIMD

/// vpdpbusd (the unmasked intrinsic is a C macro Swift cannot import; the all-ones mask folds away).
@inline(__always) func dpbusd(_ s: __m256i, _ a: __m256i, _ b: __m256i) -> __m256i {
    _mm256_mask_dpbusd_epi32(s, 0xFF, a, b)
}

/// One pass of the `_r8` prefill (runtime/Kernels/MatMulR8.swift `r8Tiles` walks the passes): row
/// groups `rowGroups` of the matrix at `base` (row group stride `groupBytes`), group columns
/// `groups`, every token; written to Y, or added into it when `accumulate`.
public func r8SpanVNNI(
    base: UnsafeRawPointer, groupBytes: Int, q4: Bool, G: Int, _ a: R8Activations,
    _ Y: UnsafeMutablePointer<Float>, ldy: Int, rowGroups: Range<Int>, groups: Range<Int>, accumulate: Bool
) {
    var rowGroups = rowGroups
    if !q4 && rowGroups.count >= 2 {
        let pairsEnd = rowGroups.lowerBound + rowGroups.count / 2 * 2
        switch G {
        case 32: q8Span512(base, groupBytes, 32, a, Y, ldy, rowGroups.lowerBound ..< pairsEnd, groups, accumulate)
        case 64: q8Span512(base, groupBytes, 64, a, Y, ldy, rowGroups.lowerBound ..< pairsEnd, groups, accumulate)
        default: q8Span512(base, groupBytes, 128, a, Y, ldy, rowGroups.lowerBound ..< pairsEnd, groups, accumulate)
        }
        rowGroups = pairsEnd ..< rowGroups.upperBound
        if rowGroups.isEmpty { return }
    }
    r8SpanEachType(
        VNNIDot.self, base: base, groupBytes: groupBytes, q4: q4, G: G, a, Y, ldy: ldy, rowGroups: rowGroups,
        groups: groups, accumulate: accumulate)
}

/// The VNNI integer steps: vpdpbusd accumulates 4 products per int32 lane, so the q4 sums start
/// at −8·Σq and need no widening. q8 weights go in as u8 (w + 128, one xor per chunk shared by the 4
/// tokens) and the sum starts at −128·Σq, so a token costs one vpdpbusd and no sign fix-ups
/// (the AVX2 path needs two vpsignb: its pair sums are int16). The integer sums are the same.
enum VNNIDot: R8Dot {
    @inline(__always) static func q4Start(_ sq: Int32) -> __m256i { _mm256_set1_epi32(-8 &* sq) }
    @inline(__always) static func q4(_ s: __m256i, _ w: __m256i, _ x: __m256i) -> __m256i { dpbusd(s, w, x) }
    @inline(__always) static func q4Finish(_ s: __m256i, _ sq: Int32) -> SIMD8<Float> { _mm256_cvtepi32_ps(s) }
    @inline(__always) static func q8Start(_ sq: Int32) -> __m256i { _mm256_set1_epi32(-128 &* sq) }
    @inline(__always) static func q8Weights(_ w: __m256i) -> __m256i {
        _mm256_xor_si256(w, _mm256_set1_epi8(-128))
    }
    @inline(__always) static func q8(_ s: __m256i, _ pw: __m256i, _ w: __m256i, _ x: __m256i) -> __m256i {
        dpbusd(s, pw, x)
    }
}

// MARK: q8 on 512-bit registers

/// q8 row groups in pairs on 512-bit registers: a zmm holds the same 4-column chunk of two row groups
/// (16 rows), so each vpdpbusd does 64 multiply-adds where the 256-bit tiles do 32. The integer sums
/// per 32-run and the float steps per row are those of the 256-bit tiles: the results are identical.
/// `rowGroups` has an even count.
@inline(__always) func q8Span512(
    _ base: UnsafeRawPointer, _ groupBytes: Int, _ G: Int, _ a: R8Activations, _ Y: UnsafeMutablePointer<Float>,
    _ ldy: Int, _ rowGroups: Range<Int>, _ groups: Range<Int>, _ accumulate: Bool
) {
    var t = 0
    while t < a.T {
        let nt = min(4, a.T - t)
        var i = rowGroups.lowerBound
        while i < rowGroups.upperBound {
            q8Tile4x16(base + i * groupBytes, groupBytes, a, t, nt, Y + 8 * i, ldy, G, groups, accumulate)
            i += 2
        }
        t += 4
    }
}

@inline(__always) func load512(_ lo: UnsafeRawPointer, _ hi: UnsafeRawPointer) -> __m512i {
    // vbroadcasti64x4 into the upper half (the insert intrinsic is a C macro Swift cannot import).
    _mm512_mask_broadcast_i64x4(_mm512_castsi256_si512(load256(lo)), 0xF0, load256(hi))
}

/// Rows of the row groups at `p` and `p + groupBytes` (16 consecutive rows) × tokens t…t+nt−1.
@inline(__always) func q8Tile4x16(
    _ p: UnsafeRawPointer, _ groupBytes: Int, _ a: R8Activations, _ t: Int, _ nt: Int, _ y: UnsafeMutablePointer<Float>,
    _ ldy: Int, _ G: Int, _ groups: Range<Int>, _ accumulate: Bool
) {
    let K = a.K, nb = K / 32
    let t1 = t + min(1, nt - 1), t2 = t + min(2, nt - 1), t3 = t + min(3, nt - 1)
    let x0 = a.qs + t * K, x1 = a.qs + t1 * K, x2 = a.qs + t2 * K, x3 = a.qs + t3 * K
    let d0 = a.d + t * nb, d1 = a.d + t1 * nb, d2 = a.d + t2 * nb, d3 = a.d + t3 * nb
    let e0 = a.sq + t * nb, e1 = a.sq + t1 * nb, e2 = a.sq + t2 * nb, e3 = a.sq + t3 * nb
    let flip = _mm512_set1_epi8(-128)
    @inline(__always) func bx(_ x: UnsafeRawPointer) -> __m512i { _mm512_set1_epi32(x.loadUnaligned(as: Int32.self)) }
    @inline(__always) func dot(_ s: __m512i, _ w: __m512i, _ x: UnsafeRawPointer) -> __m512i {
        _mm512_dpbusd_epi32(s, w, bx(x))
    }
    var c0 = SIMD16<Float>(), c1 = c0, c2 = c0, c3 = c0
    let tb = 8 * (2 + G), per = G / 32
    for g in groups {
        let tileA = p + tb * g, tileB = tileA + groupBytes
        let sc = SIMD16<Float>(lowHalf: tileScales(tileA), highHalf: tileScales(tileB))
        for j in 0 ..< per {
            let b = per * g + j, o = 32 * b
            var s0 = _mm512_set1_epi32(-128 &* e0[b]), s1 = _mm512_set1_epi32(-128 &* e1[b])
            var s2 = _mm512_set1_epi32(-128 &* e2[b]), s3 = _mm512_set1_epi32(-128 &* e3[b])
            let ca = tileA + 16 + 256 * j, cb = tileB + 16 + 256 * j
            var c = 0
            while c < 8 {
                let w = _mm512_xor_si512(load512(ca + 32 * c, cb + 32 * c), flip)
                let oc = o + 4 * c
                s0 = dot(s0, w, x0 + oc)
                s1 = dot(s1, w, x1 + oc)
                s2 = dot(s2, w, x2 + oc)
                s3 = dot(s3, w, x3 + oc)
                c += 1
            }
            c0.addProduct(sc * d0[b], SIMD16<Float>(_mm512_cvtepi32_ps(s0)))
            c1.addProduct(sc * d1[b], SIMD16<Float>(_mm512_cvtepi32_ps(s1)))
            c2.addProduct(sc * d2[b], SIMD16<Float>(_mm512_cvtepi32_ps(s2)))
            c3.addProduct(sc * d3[b], SIMD16<Float>(_mm512_cvtepi32_ps(s3)))
        }
    }
    @inline(__always) func put(_ v: SIMD16<Float>, _ u: Int) {
        let o = UnsafeMutableRawPointer(y + (t + u) * ldy)
        o.storeBytes(of: accumulate ? v + o.loadUnaligned(as: SIMD16<Float>.self) : v, as: SIMD16<Float>.self)
    }
    put(c0, 0)
    if nt > 1 { put(c1, 1) }
    if nt > 2 { put(c2, 2) }
    if nt > 3 { put(c3, 3) }
}
#endif
