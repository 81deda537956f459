import KAF
import KimiKernelsVNNI
import KimiSIMD

#if arch(x86_64)
import _Builtin_intrinsics.intel
#endif
#if canImport(Glibc)
import Glibc
#endif

/// The CPU runs AVX-512 VNNI with 256-bit registers (avx512_vnni, avx512vl, avx512bw in
/// /proc/cpuinfo, which lists only what the kernel enabled); KIMI_NO_VNNI=1 turns the VNNI tiles off.
public let cpuHasAVX512VNNI: Bool = {
    #if arch(x86_64) && os(Linux)
    if let v = getenv("KIMI_NO_VNNI"), String(cString: v) == "1" { return false }
    return ["avx512_vnni", "avx512vl", "avx512bw", "avx512f"].allSatisfy(cpuFlags.contains)
    #else
    return false
    #endif
}()

// Prefill for the 8-row interleaved layouts: Y[t, r] = Σ_k W[r,k]·X[t,k], 8 rows × 4 tokens per tile.
// A tile chunk's nibbles are unpacked once and meet the 4 tokens' broadcast activation dwords, so
// each vpmaddubsw does 32 multiply-adds for 8 rows at once; per token and 32-block the float work
// is one widen + one FMA for 8 rows. Rows are walked in chunks of `matmulR8RowGroups` groups and
// columns in spans of `matmulR8KSpan`, so the weights being multiplied stay in L1 across the token
// tiles and the activations stream from L2.
// The q4 −8 offset is −8·Σq_a per 32-run, added to the integer sum before it is widened (exact).

let matmulR8RowGroups = 4
/// Columns per pass (K blocking): a chunk's tiles for this many columns (4 groups × 1024 columns
/// of q4 = 18 KiB) stay in L1 while every token tile passes over them; partial sums go to Y.
let matmulR8KSpan = 1024

#if arch(x86_64)
/// The AVX2 tiles' integer steps (the walk is KimiSIMD's r8Span): q4 pairs summed in int16 by
/// vpmaddubsw and widened once per 32-run with the −8·Σq offset; q8 widened to int32 per step.
enum AVX2R8Dot: R8Dot {
    @inline(__always) static func q4Start(_ sq: Int32) -> __m256i { _mm256_setzero_si256() }
    @inline(__always) static func q4(_ s: __m256i, _ w: __m256i, _ x: __m256i) -> __m256i {
        _mm256_add_epi16(s, _mm256_maddubs_epi16(w, x))
    }
    @inline(__always) static func q4Finish(_ s: __m256i, _ sq: Int32) -> SIMD8<Float> { widenOffset(s, sq) }
    // q8: |w| × sign(x, w), because vpmaddubsw's int16 pair sums of u8·s8 would saturate for
    // weights offset to u8 (2·255·127 > 32767).
    @inline(__always) static func q8Start(_ sq: Int32) -> __m256i { _mm256_setzero_si256() }
    @inline(__always) static func q8Weights(_ w: __m256i) -> __m256i { _mm256_sign_epi8(w, w) }
    @inline(__always) static func q8(_ s: __m256i, _ pw: __m256i, _ w: __m256i, _ x: __m256i) -> __m256i {
        _mm256_add_epi32(
            s, _mm256_madd_epi16(_mm256_maddubs_epi16(pw, _mm256_sign_epi8(x, w)), _mm256_set1_epi16(1)))
    }
}
#endif

/// Quantized `_r8` weights × quantized activations (`xq.rows` tokens), rows in whole groups of 8.
/// `vnni`: use the AVX-512 VNNI tiles (KimiKernelsVNNI; identical results) — only where the CPU has them.
public func matmulR8(
    _ w: WeightMatrix, _ xq: QuantizedActivations, _ Y: UnsafeMutablePointer<Float>, ldy: Int, rows: Range<Int>,
    vnni: Bool = cpuHasAVX512VNNI
) {
    precondition(xq.count == w.cols && w.dtype.isInterleaved)
    precondition(
        rows.lowerBound % 8 == 0 && rows.upperBound % 8 == 0, "matmulR8: rows \(rows) not in whole groups of 8")
    #if arch(x86_64)
    let q4 = w.dtype.traits.quantBits == 4
    precondition(!vnni || cpuHasAVX512VNNI, "matmulR8: this CPU has no AVX-512 VNNI")
    r8Tiles(w, xq, Y, ldy, rows, q4: q4, G: w.dtype.groupSize, vnni: vnni)
    #else
    for t in 0 ..< xq.rows { matvecR8_ref(w, xq.row(t), Y + t * ldy, rows: rows) }
    #endif
}

#if arch(x86_64)
/// Row chunks × column spans; each (chunk, span) pass runs every token tile, through the AVX2
/// tiles (AVX2R8Dot) or the VNNI ones (KimiKernelsVNNI.r8SpanVNNI), one call per pass (each picks
/// the copy of the walk made for the weight type).
func r8Tiles(
    _ w: WeightMatrix, _ a: QuantizedActivations, _ Y: UnsafeMutablePointer<Float>, _ ldy: Int,
    _ rows: Range<Int>, q4: Bool, G: Int, vnni: Bool
) {
    let T = a.rows, ng = w.cols / G, kStep = max(1, matmulR8KSpan / G)
    let va = R8Activations(qs: UnsafeRawPointer(a.qs), d: a.d, sq: a.sq, K: a.count, T: T)
    var i0 = rows.lowerBound / 8
    let iEnd = rows.upperBound / 8
    while i0 < iEnd {
        let i1 = min(i0 + matmulR8RowGroups, iEnd)
        var g0 = 0
        while g0 < ng {
            let g1 = min(g0 + kStep, ng)
            if vnni {
                r8SpanVNNI(
                    base: w.base, groupBytes: 8 * w.rowBytes, q4: q4, G: G, va, Y, ldy: ldy,
                    rowGroups: i0 ..< i1, groups: g0 ..< g1, accumulate: g0 > 0)
            } else {
                r8SpanEachType(
                    AVX2R8Dot.self, base: w.base, groupBytes: 8 * w.rowBytes, q4: q4, G: G, va, Y, ldy: ldy,
                    rowGroups: i0 ..< i1, groups: g0 ..< g1, accumulate: g0 > 0)
            }
            g0 = g1
        }
        i0 = i1
    }
}
#endif

/// Scalar twin: every token through `matvecR8_ref`.
public func matmulR8_ref(
    _ w: WeightMatrix, _ xq: QuantizedActivations, _ Y: UnsafeMutablePointer<Float>, ldy: Int, rows: Range<Int>
) {
    for t in 0 ..< xq.rows { matvecR8_ref(w, xq.row(t), Y + t * ldy, rows: rows) }
}
