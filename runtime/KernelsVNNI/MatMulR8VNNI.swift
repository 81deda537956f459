// The `_r8` prefill tiles (runtime/Kernels/MatMulR8.swift) with AVX-512 VNNI: `vpdpbusd` (u8 × s8,
// 4 products summed into each int32 lane and accumulated) replaces vpmaddubsw + vpaddw (q4) or
// vpmaddubsw + vpmaddwd + vpaddd (q8), on 256-bit registers (AVX512VL). This module alone is built
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
    r8SpanEachType(
        VNNIDot.self, base: base, groupBytes: groupBytes, q4: q4, G: G, a, Y, ldy: ldy, rowGroups: rowGroups,
        groups: groups, accumulate: accumulate)
}

/// The VNNI integer steps: vpdpbusd accumulates 4 products per int32 lane, so the q4 sums start
/// at −8·Σq and need no widening.
enum VNNIDot: R8Dot {
    @inline(__always) static func q4Start(_ sq: Int32) -> __m256i { _mm256_set1_epi32(-8 &* sq) }
    @inline(__always) static func q4(_ s: __m256i, _ w: __m256i, _ x: __m256i) -> __m256i { dpbusd(s, w, x) }
    @inline(__always) static func q4Finish(_ s: __m256i, _ sq: Int32) -> SIMD8<Float> { _mm256_cvtepi32_ps(s) }
    @inline(__always) static func q8(_ s: __m256i, _ aw: __m256i, _ sx: __m256i) -> __m256i { dpbusd(s, aw, sx) }
}
#endif
