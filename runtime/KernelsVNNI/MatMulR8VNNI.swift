// The `_r8` prefill tiles (runtime/Kernels/MatMulR8.swift) with AVX-512 VNNI: `vpdpbusd` (u8 × s8,
// 4 products summed into each int32 lane and accumulated) replaces vpmaddubsw + vpaddw (q4) or
// vpmaddubsw + vpmaddwd + vpaddd (q8), on 256-bit registers (AVX512VL). This module alone is built
// with -mavx512vnni (Package.swift); KimiRuntime calls it only when the CPU has the instructions
// (`cpuHasAVX512VNNI`), so the rest of the build stays x86-64-v3. Same arithmetic as the AVX2 tiles:
// the same integer sums per 32-run, the same float steps, so the results are identical.
// Raw pointers only: this module sits below KimiRuntime and cannot see its types.
#if arch(x86_64)
import _Builtin_intrinsics.intel
import KimiSIMD

/// vpdpbusd (the unmasked intrinsic is a C macro Swift cannot import; the all-ones mask folds away).
@inline(__always) func dpbusd(_ s: __m256i, _ a: __m256i, _ b: __m256i) -> __m256i { _mm256_mask_dpbusd_epi32(s, 0xFF, a, b) }

/// Activations as QuantizedActivations lays them out: T rows of K int8, K/32 scales d and integer sums sq per row.
public struct R8Activations {
    public let qs: UnsafeRawPointer, d: UnsafePointer<Float>, sq: UnsafePointer<Int32>
    public let K: Int, T: Int
    public init(qs: UnsafeRawPointer, d: UnsafePointer<Float>, sq: UnsafePointer<Int32>, K: Int, T: Int) {
        self.qs = qs; self.d = d; self.sq = sq; self.K = K; self.T = T
    }
}

/// One pass of the `_r8` prefill (runtime/Kernels/MatMulR8.swift `r8Tiles` walks the passes): row
/// groups `rowGroups` of the matrix at `base` (row group stride `groupBytes`), group columns
/// `groups`, every token; written to Y, or added into it when `accumulate`.
public func r8SpanVNNI(base: UnsafeRawPointer, groupBytes: Int, q4: Bool, G: Int, _ a: R8Activations,
                       _ Y: UnsafeMutablePointer<Float>, ldy: Int, rowGroups: Range<Int>, groups: Range<Int>, accumulate: Bool) {
    switch (q4, G) {   // constant G per copy after inlining
    case (true, 32): span(base, groupBytes, true, 32, a, Y, ldy, rowGroups, groups, accumulate)
    case (true, 64): span(base, groupBytes, true, 64, a, Y, ldy, rowGroups, groups, accumulate)
    case (true, _): span(base, groupBytes, true, 128, a, Y, ldy, rowGroups, groups, accumulate)
    case (false, 32): span(base, groupBytes, false, 32, a, Y, ldy, rowGroups, groups, accumulate)
    case (false, 64): span(base, groupBytes, false, 64, a, Y, ldy, rowGroups, groups, accumulate)
    case (false, _): span(base, groupBytes, false, 128, a, Y, ldy, rowGroups, groups, accumulate)
    }
}

@inline(__always) func span(_ base: UnsafeRawPointer, _ groupBytes: Int, _ q4: Bool, _ G: Int, _ a: R8Activations,
                            _ Y: UnsafeMutablePointer<Float>, _ ldy: Int, _ rowGroups: Range<Int>, _ groups: Range<Int>, _ accumulate: Bool) {
    var t = 0
    while t < a.T {
        let nt = min(4, a.T - t)
        for i in rowGroups { tile4(base + i * groupBytes, a, t, nt, Y + 8 * i, ldy, q4, G, groups, accumulate) }
        t += 4
    }
}

@inline(__always) func tile4(_ p: UnsafeRawPointer, _ a: R8Activations, _ t: Int, _ nt: Int,
                             _ y: UnsafeMutablePointer<Float>, _ ldy: Int, _ q4: Bool, _ G: Int,
                             _ groups: Range<Int>, _ accumulate: Bool) {
    let K = a.K, nb = K / 32
    let x0 = a.qs + t * K, x1 = a.qs + (t + min(1, nt - 1)) * K, x2 = a.qs + (t + min(2, nt - 1)) * K, x3 = a.qs + (t + min(3, nt - 1)) * K
    let d0 = a.d + t * nb, d1 = a.d + (t + min(1, nt - 1)) * nb, d2 = a.d + (t + min(2, nt - 1)) * nb, d3 = a.d + (t + min(3, nt - 1)) * nb
    let e0 = a.sq + t * nb, e1 = a.sq + (t + min(1, nt - 1)) * nb, e2 = a.sq + (t + min(2, nt - 1)) * nb, e3 = a.sq + (t + min(3, nt - 1)) * nb
    let m = _mm256_set1_epi8(0x0F)
    var c0 = SIMD8<Float>(), c1 = SIMD8<Float>(), c2 = SIMD8<Float>(), c3 = SIMD8<Float>()
    let bb = q4 ? 2 + G / 2 : 2 + G, tb = 8 * bb, per = G / 32
    for g in groups {
        let tile = p + tb * g
        let sc = tileScales(tile)
        for j in 0 ..< per {
            let b = per * g + j, o = 32 * b
            var s0 = _mm256_setzero_si256(), s1 = s0, s2 = s0, s3 = s0
            if q4 {
                // Σ (q−8)·a = Σ q·a − 8·Σa: the sums start at −8·Σa (int32, exact).
                s0 = _mm256_set1_epi32(-8 &* e0[b]); s1 = _mm256_set1_epi32(-8 &* e1[b])
                s2 = _mm256_set1_epi32(-8 &* e2[b]); s3 = _mm256_set1_epi32(-8 &* e3[b])
                if G == 32 {
                    var c = 0
                    while c < 4 {
                        let v = load256(tile + 16 + 32 * c)
                        let lo = _mm256_and_si256(v, m), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m)
                        let ol = o + 4 * c, oh = o + 16 + 4 * c
                        s0 = dpbusd(dpbusd(s0, lo, broadcast32(x0 + ol)), hi, broadcast32(x0 + oh))
                        s1 = dpbusd(dpbusd(s1, lo, broadcast32(x1 + ol)), hi, broadcast32(x1 + oh))
                        s2 = dpbusd(dpbusd(s2, lo, broadcast32(x2 + ol)), hi, broadcast32(x2 + oh))
                        s3 = dpbusd(dpbusd(s3, lo, broadcast32(x3 + ol)), hi, broadcast32(x3 + oh))
                        c += 1
                    }
                } else {
                    let half = G / 64, high = j >= half
                    let cb = tile + 16 + 256 * (high ? j - half : j)
                    var c = 0
                    while c < 8 {
                        let v = load256(cb + 32 * c)
                        let w = high ? _mm256_and_si256(_mm256_srli_epi16(v, 4), m) : _mm256_and_si256(v, m)
                        let oc = o + 4 * c
                        s0 = dpbusd(s0, w, broadcast32(x0 + oc))
                        s1 = dpbusd(s1, w, broadcast32(x1 + oc))
                        s2 = dpbusd(s2, w, broadcast32(x2 + oc))
                        s3 = dpbusd(s3, w, broadcast32(x3 + oc))
                        c += 1
                    }
                }
            } else {
                let cb = tile + 16 + 256 * j
                var c = 0
                while c < 8 {
                    let v = load256(cb + 32 * c)
                    let av = _mm256_sign_epi8(v, v)
                    let oc = o + 4 * c
                    s0 = dpbusd(s0, av, _mm256_sign_epi8(broadcast32(x0 + oc), v))
                    s1 = dpbusd(s1, av, _mm256_sign_epi8(broadcast32(x1 + oc), v))
                    s2 = dpbusd(s2, av, _mm256_sign_epi8(broadcast32(x2 + oc), v))
                    s3 = dpbusd(s3, av, _mm256_sign_epi8(broadcast32(x3 + oc), v))
                    c += 1
                }
            }
            c0.addProduct(sc * d0[b], _mm256_cvtepi32_ps(s0)); c1.addProduct(sc * d1[b], _mm256_cvtepi32_ps(s1))
            c2.addProduct(sc * d2[b], _mm256_cvtepi32_ps(s2)); c3.addProduct(sc * d3[b], _mm256_cvtepi32_ps(s3))
        }
    }
    storeTile4(y + t * ldy, ldy: ldy, c0, c1, c2, c3, count: nt, accumulate: accumulate)
}
#endif
