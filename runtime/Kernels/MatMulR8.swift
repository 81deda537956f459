import KAF
import KimiSIMD
import KimiKernelsVNNI
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
    guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
          let line = text.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return false }
    let flags = Set(line.split(separator: " ").map(String.init))
    return ["avx512_vnni", "avx512vl", "avx512bw", "avx512f"].allSatisfy(flags.contains)
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
/// Rows 8i…8i+7 (`p` = the row group) × tokens t…t+nt−1 (nt ≤ 4; missing tokens repeat the last),
/// over the group columns `groups` only, written to (or, `accumulate`, added into) y (row stride
/// ldy: y[t·ldy + r]) for the nt tokens.
@inline(__always) func r8Tile4(_ p: UnsafeRawPointer, _ a: QuantizedActivations, _ t: Int, _ nt: Int,
                               _ y: UnsafeMutablePointer<Float>, _ ldy: Int, q4: Bool, G: Int,
                               groups: Range<Int>, accumulate: Bool) {
    let K = a.count, nb = K / 32
    let qs = UnsafeRawPointer(a.qs)
    let x0 = qs + t * K, x1 = qs + (t + min(1, nt - 1)) * K, x2 = qs + (t + min(2, nt - 1)) * K, x3 = qs + (t + min(3, nt - 1)) * K
    let d0 = a.d + t * nb, d1 = a.d + (t + min(1, nt - 1)) * nb, d2 = a.d + (t + min(2, nt - 1)) * nb, d3 = a.d + (t + min(3, nt - 1)) * nb
    let e0 = a.sq + t * nb, e1 = a.sq + (t + min(1, nt - 1)) * nb, e2 = a.sq + (t + min(2, nt - 1)) * nb, e3 = a.sq + (t + min(3, nt - 1)) * nb
    let m = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1)
    var c0 = SIMD8<Float>(), c1 = SIMD8<Float>(), c2 = SIMD8<Float>(), c3 = SIMD8<Float>()
    let bb = q4 ? 2 + G / 2 : 2 + G, tb = 8 * bb, per = G / 32
    for g in groups {
        let tile = p + tb * g
        let sc = tileScales(tile)
        for j in 0 ..< per {
            let b = per * g + j, o = 32 * b
            if q4 {
                // 32-run j: G = 32 → chunks 0…3, low nibbles weights 4c, high 16+4c. G ≥ 64 → run
                // j < G/64 is the low nibbles of chunks 8j…8j+7, run j ≥ G/64 the high nibbles of
                // chunks 8(j−G/64)….
                var s0 = _mm256_setzero_si256(), s1 = s0, s2 = s0, s3 = s0
                if G == 32 {
                    var c = 0
                    while c < 4 {
                        let v = load256(tile + 16 + 32 * c)
                        let lo = _mm256_and_si256(v, m), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m)
                        let ol = o + 4 * c, oh = o + 16 + 4 * c
                        s0 = _mm256_add_epi16(s0, _mm256_add_epi16(_mm256_maddubs_epi16(lo, broadcast32(x0 + ol)), _mm256_maddubs_epi16(hi, broadcast32(x0 + oh))))
                        s1 = _mm256_add_epi16(s1, _mm256_add_epi16(_mm256_maddubs_epi16(lo, broadcast32(x1 + ol)), _mm256_maddubs_epi16(hi, broadcast32(x1 + oh))))
                        s2 = _mm256_add_epi16(s2, _mm256_add_epi16(_mm256_maddubs_epi16(lo, broadcast32(x2 + ol)), _mm256_maddubs_epi16(hi, broadcast32(x2 + oh))))
                        s3 = _mm256_add_epi16(s3, _mm256_add_epi16(_mm256_maddubs_epi16(lo, broadcast32(x3 + ol)), _mm256_maddubs_epi16(hi, broadcast32(x3 + oh))))
                        c += 1
                    }
                } else {
                    let half = G / 64, high = j >= half
                    let base = tile + 16 + 256 * (high ? j - half : j)
                    var c = 0
                    while c < 8 {
                        let v = load256(base + 32 * c)
                        let w = high ? _mm256_and_si256(_mm256_srli_epi16(v, 4), m) : _mm256_and_si256(v, m)
                        let oc = o + 4 * c
                        s0 = _mm256_add_epi16(s0, _mm256_maddubs_epi16(w, broadcast32(x0 + oc)))
                        s1 = _mm256_add_epi16(s1, _mm256_maddubs_epi16(w, broadcast32(x1 + oc)))
                        s2 = _mm256_add_epi16(s2, _mm256_maddubs_epi16(w, broadcast32(x2 + oc)))
                        s3 = _mm256_add_epi16(s3, _mm256_maddubs_epi16(w, broadcast32(x3 + oc)))
                        c += 1
                    }
                }
                // Σ (q−8)·a = Σ q·a − 8·Σa, the −8·Σa added in int32 (exact).
                c0.addProduct(sc * d0[b], widenOffset(s0, e0[b])); c1.addProduct(sc * d1[b], widenOffset(s1, e1[b]))
                c2.addProduct(sc * d2[b], widenOffset(s2, e2[b])); c3.addProduct(sc * d3[b], widenOffset(s3, e3[b]))
            } else {
                var s0 = _mm256_setzero_si256(), s1 = s0, s2 = s0, s3 = s0
                let base = tile + 16 + 256 * j
                var c = 0
                while c < 8 {
                    let v = load256(base + 32 * c)
                    let av = _mm256_sign_epi8(v, v)
                    let oc = o + 4 * c
                    s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(_mm256_maddubs_epi16(av, _mm256_sign_epi8(broadcast32(x0 + oc), v)), ones))
                    s1 = _mm256_add_epi32(s1, _mm256_madd_epi16(_mm256_maddubs_epi16(av, _mm256_sign_epi8(broadcast32(x1 + oc), v)), ones))
                    s2 = _mm256_add_epi32(s2, _mm256_madd_epi16(_mm256_maddubs_epi16(av, _mm256_sign_epi8(broadcast32(x2 + oc), v)), ones))
                    s3 = _mm256_add_epi32(s3, _mm256_madd_epi16(_mm256_maddubs_epi16(av, _mm256_sign_epi8(broadcast32(x3 + oc), v)), ones))
                    c += 1
                }
                c0.addProduct(sc * d0[b], _mm256_cvtepi32_ps(s0)); c1.addProduct(sc * d1[b], _mm256_cvtepi32_ps(s1))
                c2.addProduct(sc * d2[b], _mm256_cvtepi32_ps(s2)); c3.addProduct(sc * d3[b], _mm256_cvtepi32_ps(s3))
            }
        }
    }
    storeTile4(y + t * ldy, ldy: ldy, c0, c1, c2, c3, count: nt, accumulate: accumulate)
}
#endif

/// Quantized `_r8` weights × quantized activations (`xq.rows` tokens), rows in whole groups of 8.
/// `vnni`: use the AVX-512 VNNI tiles (KimiKernelsVNNI; identical results) — only where the CPU has them.
public func matmulR8(_ w: WeightMatrix, _ xq: QuantizedActivations, _ Y: UnsafeMutablePointer<Float>, ldy: Int, rows: Range<Int>,
                     vnni: Bool = cpuHasAVX512VNNI) {
    precondition(xq.count == w.cols && w.dtype.isInterleaved)
    precondition(rows.lowerBound % 8 == 0 && rows.upperBound % 8 == 0, "matmulR8: rows \(rows) not in whole groups of 8")
    #if arch(x86_64)
    let q4 = w.dtype.traits.quantBits == 4
    precondition(!vnni || cpuHasAVX512VNNI, "matmulR8: this CPU has no AVX-512 VNNI")
    switch (q4, w.dtype.groupSize) {   // constant G per copy after inlining
    case (true, 32): r8Tiles(w, xq, Y, ldy, rows, q4: true, G: 32, vnni: vnni)
    case (true, 64): r8Tiles(w, xq, Y, ldy, rows, q4: true, G: 64, vnni: vnni)
    case (true, _): r8Tiles(w, xq, Y, ldy, rows, q4: true, G: 128, vnni: vnni)
    case (false, 32): r8Tiles(w, xq, Y, ldy, rows, q4: false, G: 32, vnni: vnni)
    case (false, 64): r8Tiles(w, xq, Y, ldy, rows, q4: false, G: 64, vnni: vnni)
    case (false, _): r8Tiles(w, xq, Y, ldy, rows, q4: false, G: 128, vnni: vnni)
    }
    #else
    for t in 0 ..< xq.rows { matvecR8_ref(w, xq.row(t), Y + t * ldy, rows: rows) }
    #endif
}

#if arch(x86_64)
/// Row chunks × column spans; each (chunk, span) pass runs every token tile, through the AVX2
/// tiles here or the VNNI ones (KimiKernelsVNNI.r8SpanVNNI, one call per pass).
@inline(__always) func r8Tiles(_ w: WeightMatrix, _ a: QuantizedActivations, _ Y: UnsafeMutablePointer<Float>, _ ldy: Int,
                               _ rows: Range<Int>, q4: Bool, G: Int, vnni: Bool) {
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
                r8SpanVNNI(base: w.base, groupBytes: 8 * w.rowBytes, q4: q4, G: G, va, Y, ldy: ldy,
                           rowGroups: i0 ..< i1, groups: g0 ..< g1, accumulate: g0 > 0)
            } else {
                var t = 0
                while t < T {
                    let nt = min(4, T - t)
                    for i in i0 ..< i1 { r8Tile4(w.rowGroup(i), a, t, nt, Y + 8 * i, ldy, q4: q4, G: G, groups: g0 ..< g1, accumulate: g0 > 0) }
                    t += 4
                }
            }
            g0 = g1
        }
        i0 = i1
    }
}
#endif

/// Scalar twin: every token through `matvecR8_ref`.
public func matmulR8_ref(_ w: WeightMatrix, _ xq: QuantizedActivations, _ Y: UnsafeMutablePointer<Float>, ldy: Int, rows: Range<Int>) {
    for t in 0 ..< xq.rows { matvecR8_ref(w, xq.row(t), Y + t * ldy, rows: rows) }
}
