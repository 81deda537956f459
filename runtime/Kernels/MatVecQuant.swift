import KAF
import KimiSIMD
#if arch(x86_64)
import _Builtin_intrinsics.intel
#endif

// Quantized matvec, integer path (ggml's vec_dot_q4_0_q8_0 / q8_0_q8_0): the activations are
// quantized per 32 (`QuantizedActivations`), each 32-run of weights meets its activation block in
// one vpmaddubsw (u8 × s8 → pairwise i16) + vpmaddwd (×1 → pairwise i32), and the block's two
// scales are applied once per 32 in f32: acc += (d_w·d_a)·float(Σ q_w·q_a). For G = 64 / 128 one
// weight scale covers 2 / 4 activation blocks.
//
// q4: the nibbles are used unsigned (0…15) as vpmaddubsw's u8 operand, so x = d·(q−8) becomes
// d_w·d_a·Σq·q_a − 8·d_w·(d_a·Σq_a); the second term uses the precomputed s = d_a·Σq_a per
// activation block (one scalar FMA per block instead of vpsubb + two vpsignb per 32).
// q8: both sides signed; vpmaddubsw wants one unsigned operand, so |w| and sign(w)·a (vpsignb ×2).
// No saturation: |pair| ≤ 2·15·127 (q4) or 2·128·127 = 32512 (q8) < 32767.

#if arch(x86_64)
@inline(__always) func dotU8S8(_ w: __m256i, _ a: __m256i) -> SIMD8<Float> {
    _mm256_cvtepi32_ps(_mm256_madd_epi16(_mm256_maddubs_epi16(w, a), _mm256_set1_epi16(1)))
}
@inline(__always) func dotS8S8(_ w: __m256i, _ a: __m256i) -> SIMD8<Float> {
    dotU8S8(_mm256_sign_epi8(w, w), _mm256_sign_epi8(a, w))
}
/// 16 bytes of a g32 block → its 32 nibbles in weight order (low nibbles, then high), as u8.
@inline(__always) func unpackQ4x32(_ p: UnsafeRawPointer) -> __m256i {
    let t = p.loadUnaligned(as: __m128i.self)
    return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(t, 4), t), _mm256_set1_epi8(0x0F))
}
#endif

@inline(__always) func weightScale(_ blk: UnsafeRawPointer) -> Float {
    f16ToFloat(blk.loadUnaligned(as: UInt16.self))
}

/// One row of q4_g{32,64,128} against quantized activations.
@inline(__always) func q4RowDot(_ w: UnsafeRawPointer, _ a: QuantizedActivations, group G: Int) -> Float {
    let nb = a.count / 32
    #if arch(x86_64)
    let qs = UnsafeRawPointer(a.qs), ad = a.d, asum = a.s
    var acc0 = SIMD8<Float>(), acc1 = SIMD8<Float>()
    var corr: Float = 0
    let m = _mm256_set1_epi8(0x0F)
    switch G {
    case 32:
        var b = 0
        while b + 2 <= nb {     // two blocks per pass: two independent FMA chains
            let k0 = w + 18 * b, k1 = k0 + 18
            let d0 = weightScale(k0), d1 = weightScale(k1)
            acc0.addProduct(SIMD8(repeating: d0 * ad[b]), dotU8S8(unpackQ4x32(k0 + 2), load256(qs + 32 * b)))
            acc1.addProduct(SIMD8(repeating: d1 * ad[b + 1]), dotU8S8(unpackQ4x32(k1 + 2), load256(qs + 32 * b + 32)))
            corr += d0 * asum[b] + d1 * asum[b + 1]
            b += 2
        }
        if b < nb {
            let k0 = w + 18 * b, d0 = weightScale(k0)
            acc0.addProduct(SIMD8(repeating: d0 * ad[b]), dotU8S8(unpackQ4x32(k0 + 2), load256(qs + 32 * b)))
            corr += d0 * asum[b]
        }
    case 64:
        for g in 0 ..< nb / 2 {
            let k = w + 34 * g, d = weightScale(k), b = 2 * g
            let v = load256(k + 2)
            acc0.addProduct(SIMD8(repeating: d * ad[b]), dotU8S8(_mm256_and_si256(v, m), load256(qs + 32 * b)))
            acc1.addProduct(SIMD8(repeating: d * ad[b + 1]), dotU8S8(_mm256_and_si256(_mm256_srli_epi16(v, 4), m), load256(qs + 32 * b + 32)))
            corr += d * (asum[b] + asum[b + 1])
        }
    default: // 128
        for g in 0 ..< nb / 4 {
            let k = w + 66 * g, d = weightScale(k), b = 4 * g
            let v0 = load256(k + 2), v1 = load256(k + 34)
            acc0.addProduct(SIMD8(repeating: d * ad[b]), dotU8S8(_mm256_and_si256(v0, m), load256(qs + 32 * b)))
            acc1.addProduct(SIMD8(repeating: d * ad[b + 1]), dotU8S8(_mm256_and_si256(v1, m), load256(qs + 32 * b + 32)))
            acc0.addProduct(SIMD8(repeating: d * ad[b + 2]), dotU8S8(_mm256_and_si256(_mm256_srli_epi16(v0, 4), m), load256(qs + 32 * b + 64)))
            acc1.addProduct(SIMD8(repeating: d * ad[b + 3]), dotU8S8(_mm256_and_si256(_mm256_srli_epi16(v1, 4), m), load256(qs + 32 * b + 96)))
            corr += d * ((asum[b] + asum[b + 1]) + (asum[b + 2] + asum[b + 3]))
        }
    }
    return hsum(acc0 + acc1) - 8 * corr
    #else
    return q4RowDot_ref(w, a, group: G)
    #endif
}

/// One row of q8_g{32,64,128} against quantized activations.
@inline(__always) func q8RowDot(_ w: UnsafeRawPointer, _ a: QuantizedActivations, group G: Int) -> Float {
    let nb = a.count / 32
    #if arch(x86_64)
    let qs = UnsafeRawPointer(a.qs), ad = a.d
    var acc0 = SIMD8<Float>(), acc1 = SIMD8<Float>()
    let per = G / 32, bb = G + 2
    if per == 1 {
        var b = 0
        while b + 2 <= nb {
            let k0 = w + 34 * b, k1 = k0 + 34
            acc0.addProduct(SIMD8(repeating: weightScale(k0) * ad[b]), dotS8S8(load256(k0 + 2), load256(qs + 32 * b)))
            acc1.addProduct(SIMD8(repeating: weightScale(k1) * ad[b + 1]), dotS8S8(load256(k1 + 2), load256(qs + 32 * b + 32)))
            b += 2
        }
        if b < nb {
            let k0 = w + 34 * b
            acc0.addProduct(SIMD8(repeating: weightScale(k0) * ad[b]), dotS8S8(load256(k0 + 2), load256(qs + 32 * b)))
        }
    } else {
        for g in 0 ..< nb / per {
            let k = w + bb * g, d = weightScale(k)
            var j = 0
            while j < per {
                let b = per * g + j
                acc0.addProduct(SIMD8(repeating: d * ad[b]), dotS8S8(load256(k + 2 + 32 * j), load256(qs + 32 * b)))
                acc1.addProduct(SIMD8(repeating: d * ad[b + 1]), dotS8S8(load256(k + 34 + 32 * j), load256(qs + 32 * b + 32)))
                j += 2
            }
        }
    }
    return hsum(acc0 + acc1)
    #else
    return q8RowDot_ref(w, a, group: G)
    #endif
}

/// y[r] for r in `rows`, q4 weights (any group), integer path.
public func matvecQ4(_ w: WeightMatrix, _ xq: QuantizedActivations, _ y: UnsafeMutablePointer<Float>, rows: Range<Int>) {
    precondition(xq.count == w.cols)
    let G = w.dtype.groupSize
    switch G {  // constant G per copy after inlining
    case 32: for r in rows { y[r] = q4RowDot(w.row(r), xq, group: 32) }
    case 64: for r in rows { y[r] = q4RowDot(w.row(r), xq, group: 64) }
    default: for r in rows { y[r] = q4RowDot(w.row(r), xq, group: 128) }
    }
}

/// y[r] for r in `rows`, q8 weights (any group), integer path.
public func matvecQ8(_ w: WeightMatrix, _ xq: QuantizedActivations, _ y: UnsafeMutablePointer<Float>, rows: Range<Int>) {
    precondition(xq.count == w.cols)
    switch w.dtype.groupSize {
    case 32: for r in rows { y[r] = q8RowDot(w.row(r), xq, group: 32) }
    case 64: for r in rows { y[r] = q8RowDot(w.row(r), xq, group: 64) }
    default: for r in rows { y[r] = q8RowDot(w.row(r), xq, group: 128) }
    }
}

// MARK: float-dequant variants (no activation quantization; measured against the integer path)

/// q4 / q8 weights widened to f32 per 8 and FMA'd with f32 x; one scale multiply per block.
public func matvecQuantFloat(_ w: WeightMatrix, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, rows: Range<Int>) {
    let G = w.dtype.groupSize, bb = w.dtype.traits.blockBytes, nb = w.cols / G
    let q4 = w.dtype.traits.quantBits == 4
    let xr = UnsafeRawPointer(x)
    for r in rows {
        let p = w.row(r)
        var acc = SIMD8<Float>()
        for g in 0 ..< nb {
            let blk = p + bb * g
            let xs = xr + 4 * G * g
            var t0 = SIMD8<Float>(), t1 = SIMD8<Float>()
            if q4 {
                let h = G / 2
                var j = 0
                while j < h {   // 8 bytes → 8 low-nibble weights (x[j…]) and 8 high (x[j+h…])
                    let (lo, hi) = nibblesToFloat8(blk + 2 + j)
                    t0.addProduct(lo, loadF32x8(xs + 4 * j))
                    t1.addProduct(hi, loadF32x8(xs + 4 * (j + h)))
                    j += 8
                }
            } else {
                var j = 0
                while j < G {
                    t0.addProduct(int8ToFloat8(blk + 2 + j), loadF32x8(xs + 4 * j))
                    t1.addProduct(int8ToFloat8(blk + 10 + j), loadF32x8(xs + 4 * j + 32))
                    j += 16
                }
            }
            acc.addProduct(SIMD8(repeating: weightScale(blk)), t0 + t1)
        }
        y[r] = hsum(acc)
    }
}

@inline(__always) func int8ToFloat8(_ p: UnsafeRawPointer) -> SIMD8<Float> {
    #if arch(x86_64)
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(p.assumingMemoryBound(to: __m128i.self))))
    #else
    let v = p.loadUnaligned(as: SIMD8<Int8>.self)
    var r = SIMD8<Float>()
    for i in 0 ..< 8 { r[i] = Float(v[i]) }
    return r
    #endif
}

/// 8 packed bytes → (low nibbles − 8, high nibbles − 8) as f32.
@inline(__always) func nibblesToFloat8(_ p: UnsafeRawPointer) -> (SIMD8<Float>, SIMD8<Float>) {
    #if arch(x86_64)
    let v = _mm256_cvtepu8_epi32(_mm_loadl_epi64(p.assumingMemoryBound(to: __m128i.self)))
    let m = _mm256_set1_epi32(0x0F), e = _mm256_set1_epi32(8)
    let lo = _mm256_sub_epi32(_mm256_and_si256(v, m), e)
    let hi = _mm256_sub_epi32(_mm256_srli_epi32(v, 4), e)
    return (_mm256_cvtepi32_ps(lo), _mm256_cvtepi32_ps(hi))
    #else
    let v = p.loadUnaligned(as: SIMD8<UInt8>.self)
    var lo = SIMD8<Float>(), hi = SIMD8<Float>()
    for i in 0 ..< 8 { lo[i] = Float(Int(v[i] & 15) - 8); hi[i] = Float(Int(v[i] >> 4) - 8) }
    return (lo, hi)
    #endif
}

// MARK: scalar integer references (same integers as the SIMD kernels; floats summed in row order)

/// Σ over the row of d_w·d_a·(Σ_j (q_w − 8)·q_a) per 32-block.
public func q4RowDot_ref(_ w: UnsafeRawPointer, _ a: QuantizedActivations, group G: Int) -> Float {
    let h = G / 2, bb = 2 + h
    var acc: Float = 0
    for b in 0 ..< a.count / 32 {
        let g = b * 32 / G, blk = w + bb * g
        var isum = 0
        for j in 0 ..< 32 {
            let e = (b * 32) % G + j            // element inside the weight group
            let byte = blk.load(fromByteOffset: 2 + e % h, as: UInt8.self)
            let q = e < h ? Int(byte & 0x0F) : Int(byte >> 4)
            isum += (q - 8) * Int(a.qs[32 * b + j])
        }
        acc += weightScale(blk) * a.d[b] * Float(isum)
    }
    return acc
}

public func q8RowDot_ref(_ w: UnsafeRawPointer, _ a: QuantizedActivations, group G: Int) -> Float {
    let bb = 2 + G
    var acc: Float = 0
    for b in 0 ..< a.count / 32 {
        let g = b * 32 / G, blk = w + bb * g
        var isum = 0
        for j in 0 ..< 32 {
            isum += Int(blk.load(fromByteOffset: 2 + (b * 32) % G + j, as: Int8.self)) * Int(a.qs[32 * b + j])
        }
        acc += weightScale(blk) * a.d[b] * Float(isum)
    }
    return acc
}

public func matvecQuant_ref(_ w: WeightMatrix, _ xq: QuantizedActivations, _ y: UnsafeMutablePointer<Float>, rows: Range<Int>) {
    let G = w.dtype.groupSize
    for r in rows {
        y[r] = w.dtype.traits.quantBits == 4 ? q4RowDot_ref(w.row(r), xq, group: G) : q8RowDot_ref(w.row(r), xq, group: G)
    }
}
