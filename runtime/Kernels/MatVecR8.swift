import CKernelHints
import KAF
import KimiSIMD

#if arch(x86_64)
import _Builtin_intrinsics.intel
#endif

// Decode kernels for the 8-row interleaved layouts (`q4_gG_r8`, `q8_gG_r8`; formats/RowInterleave.swift).
// One 32-byte load holds 4 consecutive quant bytes of each of 8 rows, so with the activation dword
// broadcast (vpbroadcastd from memory, a load-port µop) one vpmaddubsw yields 8 rows' partial dot
// products, lane = row. The 8 row scales convert in one vcvtph2ps and the float work is one
// FMA per 8 rows and 32 weights, instead of per row: the row-major kernels (MatVecQuant.swift) spend
// most of their µops on scalar scale handling and horizontal sums and stay compute-bound at about
// half the memory bandwidth; these reach it.
//
// q4: nibbles unsigned (0…15) against signed activations; the i16 pair sums of the 8 products of a
// 32-run add up to ≤ 8·2·15·127 = 30480 < 32767, so a 32-run sums in i16 and widens once (vpmaddwd ×1).
// The −8 offset is −8·Σq_a per 32-run (QuantizedActivations.sq), added in int32 before the widening
// (exact; the prefill tiles do the same).
// q8: |w| and sign(w)·a (vpsignb ×2) as in the row-major kernel; pairs reach 2·127·127, so every
// vpmaddubsw widens to i32 at once.

#if arch(x86_64)
/// i16 pair sums → int32 per row, plus −8·Σq_a (the q4 offset), → f32.
@inline(__always) func widenOffset(_ s: __m256i, _ sq: Int32) -> SIMD8<Float> {
    _mm256_cvtepi32_ps(_mm256_add_epi32(_mm256_madd_epi16(s, _mm256_set1_epi16(1)), _mm256_set1_epi32(-8 &* sq)))
}

/// Bytes ahead of the tile being read that the walk asks for. The hardware prefetcher alone kept
/// decode at ~60% of the DRAM read bandwidth on this 2-core VM (llama.cpp ~80%): asking 4 KB ahead
/// took a 7B q4 decode from 2.7 to 4.1–4.3 tok/s (1 KB: 3.5–3.8; 8 and 16 KB: no better than 4 KB).
let prefetchDistance = 4096

/// Asks for the cache lines of the tile `prefetchDistance` bytes after `t` (one hint per line).
@inline(__always) func prefetchAhead(_ t: UnsafeRawPointer, tileBytes: Int) {
    var o = 0
    while o < tileBytes {
        kimi_prefetch(t + prefetchDistance + o)
        o += 64
    }
}

/// Rows 8i…8i+7 of a q4_gG_r8 matrix (`p` = its row group) · activations.
@inline(__always) func q4R8GroupDot(_ p: UnsafeRawPointer, _ a: QuantizedActivations, group G: Int) -> SIMD8<Float> {
    let qs = UnsafeRawPointer(a.qs), ad = a.d, asq = a.sq
    let tb = 8 * (2 + G / 2)
    let m = _mm256_set1_epi8(0x0F)
    var acc0 = SIMD8<Float>(), acc1 = SIMD8<Float>()
    if G == 32 {
        // Tile = 4 chunks; low nibbles are weights 4c…4c+3, high ones 16+4c….
        let nb = a.count / 32
        var b = 0
        while b < nb {
            let t = p + tb * b, x = qs + 32 * b
            prefetchAhead(t, tileBytes: tb)
            let v0 = load256(t + 16), v1 = load256(t + 48), v2 = load256(t + 80), v3 = load256(t + 112)
            var s = _mm256_maddubs_epi16(_mm256_and_si256(v0, m), broadcast32(x))
            s = _mm256_add_epi16(
                s, _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(v0, 4), m), broadcast32(x + 16)))
            s = _mm256_add_epi16(s, _mm256_maddubs_epi16(_mm256_and_si256(v1, m), broadcast32(x + 4)))
            s = _mm256_add_epi16(
                s, _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(v1, 4), m), broadcast32(x + 20)))
            var u = _mm256_maddubs_epi16(_mm256_and_si256(v2, m), broadcast32(x + 8))
            u = _mm256_add_epi16(
                u, _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(v2, 4), m), broadcast32(x + 24)))
            u = _mm256_add_epi16(u, _mm256_maddubs_epi16(_mm256_and_si256(v3, m), broadcast32(x + 12)))
            u = _mm256_add_epi16(
                u, _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(v3, 4), m), broadcast32(x + 28)))
            let sc = tileScales(t)
            acc0.addProduct(sc * ad[b], widenOffset(_mm256_add_epi16(s, u), asq[b]))
            b += 1
        }
    } else {
        // G = 64 / 128: chunk 8h+c's low nibbles are weights 32h+4c… (activation block h of the
        // group), its high nibbles G/2+32h+4c… (block half+h).
        let half = G / 64, per = G / 32
        for g in 0 ..< a.count / G {
            let t = p + tb * g, b0 = per * g
            prefetchAhead(t, tileBytes: tb)
            let sc = tileScales(t)
            for h in 0 ..< half {
                let xl = qs + 32 * (b0 + h), xh = qs + 32 * (b0 + half + h), c0 = t + 16 + 256 * h
                var lo = _mm256_setzero_si256(), hi = _mm256_setzero_si256()
                var c = 0
                while c < 8 {
                    let v = load256(c0 + 32 * c)
                    lo = _mm256_add_epi16(lo, _mm256_maddubs_epi16(_mm256_and_si256(v, m), broadcast32(xl + 4 * c)))
                    hi = _mm256_add_epi16(
                        hi, _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(v, 4), m), broadcast32(xh + 4 * c)))
                    c += 1
                }
                acc0.addProduct(sc * ad[b0 + h], widenOffset(lo, asq[b0 + h]))
                acc1.addProduct(sc * ad[b0 + half + h], widenOffset(hi, asq[b0 + half + h]))
            }
        }
    }
    return acc0 + acc1
}

/// Rows 8i…8i+7 of a q8_gG_r8 matrix · activations.
@inline(__always) func q8R8GroupDot(_ p: UnsafeRawPointer, _ a: QuantizedActivations, group G: Int) -> SIMD8<Float> {
    let qs = UnsafeRawPointer(a.qs), ad = a.d
    let tb = 8 * (2 + G), per = G / 32
    let ones = _mm256_set1_epi16(1)
    var acc0 = SIMD8<Float>()
    for g in 0 ..< a.count / G {
        let t = p + tb * g
        prefetchAhead(t, tileBytes: tb)
        let sc = tileScales(t)
        for j in 0 ..< per {  // chunk 8j+c holds weights 32j+4c…: activation block per·g+j
            let b = per * g + j, x = qs + 32 * b, c0 = t + 16 + 256 * j
            var s0 = _mm256_setzero_si256(), s1 = _mm256_setzero_si256()
            var c = 0
            while c < 8 {
                let v0 = load256(c0 + 32 * c), v1 = load256(c0 + 32 * c + 32)
                s0 = _mm256_add_epi32(
                    s0,
                    _mm256_madd_epi16(
                        _mm256_maddubs_epi16(_mm256_sign_epi8(v0, v0), _mm256_sign_epi8(broadcast32(x + 4 * c), v0)),
                        ones))
                s1 = _mm256_add_epi32(
                    s1,
                    _mm256_madd_epi16(
                        _mm256_maddubs_epi16(
                            _mm256_sign_epi8(v1, v1), _mm256_sign_epi8(broadcast32(x + 4 * c + 4), v1)), ones))
                c += 2
            }
            let f = _mm256_cvtepi32_ps(_mm256_add_epi32(s0, s1))
            acc0.addProduct(sc * ad[b], f)
        }
    }
    return acc0
}
#endif

/// y[r] for r in `rows` (whole row groups of 8), q4_gG_r8 / q8_gG_r8 weights, integer path.
public func matvecR8(_ w: WeightMatrix, _ xq: QuantizedActivations, _ y: UnsafeMutablePointer<Float>, rows: Range<Int>)
{
    precondition(xq.count == w.cols && w.dtype.isInterleaved)
    precondition(
        rows.lowerBound % 8 == 0 && rows.upperBound % 8 == 0, "matvecR8: rows \(rows) not in whole groups of 8")
    #if arch(x86_64)
    let q4 = w.dtype.traits.quantBits == 4
    let groups = rows.lowerBound / 8 ..< rows.upperBound / 8
    @inline(__always) func store(_ i: Int, _ v: SIMD8<Float>) {
        UnsafeMutableRawPointer(y + 8 * i).storeBytes(of: v, as: SIMD8<Float>.self)
    }
    switch (q4, w.dtype.groupSize) {  // constant G per copy after inlining
    case (true, 32): for i in groups { store(i, q4R8GroupDot(w.rowGroup(i), xq, group: 32)) }
    case (true, 64): for i in groups { store(i, q4R8GroupDot(w.rowGroup(i), xq, group: 64)) }
    case (true, _): for i in groups { store(i, q4R8GroupDot(w.rowGroup(i), xq, group: 128)) }
    case (false, 32): for i in groups { store(i, q8R8GroupDot(w.rowGroup(i), xq, group: 32)) }
    case (false, 64): for i in groups { store(i, q8R8GroupDot(w.rowGroup(i), xq, group: 64)) }
    case (false, _): for i in groups { store(i, q8R8GroupDot(w.rowGroup(i), xq, group: 128)) }
    }
    #else
    matvecR8_ref(w, xq, y, rows: rows)
    #endif
}

/// Scalar twin: each row taken back to row-major blocks, then the row-major integer reference
/// (the same integers; floats summed in another order).
public func matvecR8_ref(
    _ w: WeightMatrix, _ xq: QuantizedActivations, _ y: UnsafeMutablePointer<Float>, rows: Range<Int>
) {
    let plain = w.dtype.plain, G = w.dtype.groupSize
    let tmp = UnsafeMutableRawPointer.allocate(byteCount: w.rowBytes, alignment: 64)
    defer { tmp.deallocate() }
    for r in rows {
        RowInterleave.deinterleave(plain, cols: w.cols, groupAt: w.rowGroup(r / 8), row: r % 8, into: tmp)
        y[r] = plain.traits.quantBits == 4 ? q4RowDot_ref(tmp, xq, group: G) : q8RowDot_ref(tmp, xq, group: G)
    }
}
