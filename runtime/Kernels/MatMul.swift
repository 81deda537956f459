import COpenBLAS
import KAF
import KimiSIMD

#if arch(x86_64)
import _Builtin_intrinsics.intel
#endif

// Prefill: Y[t, r] = Σ_k W[r,k]·X[t,k] for T tokens and r in `rows` (Y row stride ldy, indexed by
// absolute r). Each weight block is loaded (and its nibbles unpacked) once per tile of 4 tokens,
// and the rows are walked in chunks of 16 so a chunk's weights stay in L2 while every token tile
// passes over them (the weights come from DRAM once, the activations from L2/L3).

let matmulTokenTile = 4
let matmulRowChunk = 16

#if arch(x86_64)
/// 32-run j of a q4 group of G (low nibbles are the group's first half, high nibbles the second).
@inline(__always) func q4Sub(_ blk: UnsafeRawPointer, _ j: Int, _ G: Int) -> __m256i {
    if G == 32 { return unpackQ4x32(blk + 2) }
    let m = _mm256_set1_epi8(0x0F)
    let half = G / 64  // 32-runs per half: 1 (G=64) or 2 (G=128)
    let v = load256(blk + 2 + 32 * (j % half))
    return j < half ? _mm256_and_si256(v, m) : _mm256_and_si256(_mm256_srli_epi16(v, 4), m)
}

/// Four tokens (t…t+3) × one row.
@inline(__always) func quantTile4(
    _ p: UnsafeRawPointer, _ a: QuantizedActivations, _ t: Int,
    _ y: UnsafeMutablePointer<Float>, _ ldy: Int, q4: Bool, G: Int
) {
    let K = a.count, nb = K / 32, per = G / 32, bb = q4 ? 2 + G / 2 : 2 + G
    let q0 = UnsafeRawPointer(a.qs + t * K), q1 = q0 + K, q2 = q1 + K, q3 = q2 + K
    let d0 = a.d + t * nb, d1 = d0 + nb, d2 = d1 + nb, d3 = d2 + nb
    let s0 = a.s + t * nb, s1 = s0 + nb, s2 = s1 + nb, s3 = s2 + nb
    var c0 = SIMD8<Float>(), c1 = SIMD8<Float>(), c2 = SIMD8<Float>(), c3 = SIMD8<Float>()
    var e0: Float = 0, e1: Float = 0, e2: Float = 0, e3: Float = 0
    for b in 0 ..< nb {
        let blk = p + bb * (b / per), j = b % per
        let dw = weightScale(blk)
        let o = 32 * b
        if q4 {
            let wv = q4Sub(blk, j, G)
            c0.addProduct(SIMD8(repeating: dw * d0[b]), dotU8S8(wv, load256(q0 + o)))
            c1.addProduct(SIMD8(repeating: dw * d1[b]), dotU8S8(wv, load256(q1 + o)))
            c2.addProduct(SIMD8(repeating: dw * d2[b]), dotU8S8(wv, load256(q2 + o)))
            c3.addProduct(SIMD8(repeating: dw * d3[b]), dotU8S8(wv, load256(q3 + o)))
            e0 += dw * s0[b]
            e1 += dw * s1[b]
            e2 += dw * s2[b]
            e3 += dw * s3[b]
        } else {
            let wv = load256(blk + 2 + 32 * j)
            let aw = _mm256_sign_epi8(wv, wv)  // |w| once, sign(w)·a per token
            c0.addProduct(SIMD8(repeating: dw * d0[b]), dotU8S8(aw, _mm256_sign_epi8(load256(q0 + o), wv)))
            c1.addProduct(SIMD8(repeating: dw * d1[b]), dotU8S8(aw, _mm256_sign_epi8(load256(q1 + o), wv)))
            c2.addProduct(SIMD8(repeating: dw * d2[b]), dotU8S8(aw, _mm256_sign_epi8(load256(q2 + o), wv)))
            c3.addProduct(SIMD8(repeating: dw * d3[b]), dotU8S8(aw, _mm256_sign_epi8(load256(q3 + o), wv)))
        }
    }
    y[0] = hsum(c0) - 8 * e0
    y[ldy] = hsum(c1) - 8 * e1
    y[2 * ldy] = hsum(c2) - 8 * e2
    y[3 * ldy] = hsum(c3) - 8 * e3
}
#endif

@inline(__always) func quantTiles(
    _ w: WeightMatrix, _ a: QuantizedActivations, _ Y: UnsafeMutablePointer<Float>, _ ldy: Int,
    _ rows: Range<Int>, q4: Bool, G: Int
) {
    let T = a.rows
    var r0 = rows.lowerBound
    while r0 < rows.upperBound {
        let r1 = min(r0 + matmulRowChunk, rows.upperBound)
        var t = 0
        #if arch(x86_64)
        while t + 4 <= T {
            for r in r0 ..< r1 { quantTile4(w.row(r), a, t, Y + t * ldy + r, ldy, q4: q4, G: G) }
            t += 4
        }
        #endif
        while t < T {  // token tail (T not a multiple of 4): one token at a time
            let at = a.row(t)
            for r in r0 ..< r1 {
                Y[t * ldy + r] = q4 ? q4RowDot(w.row(r), at, group: G) : q8RowDot(w.row(r), at, group: G)
            }
            t += 1
        }
        r0 = r1
    }
}

/// Quantized weights × quantized activations (`xq.rows` tokens), integer path.
public func matmulQuant(
    _ w: WeightMatrix, _ xq: QuantizedActivations, _ Y: UnsafeMutablePointer<Float>, ldy: Int, rows: Range<Int>
) {
    precondition(xq.count == w.cols)
    switch w.dtype {
    case .q4_g32: quantTiles(w, xq, Y, ldy, rows, q4: true, G: 32)
    case .q4_g64: quantTiles(w, xq, Y, ldy, rows, q4: true, G: 64)
    case .q4_g128: quantTiles(w, xq, Y, ldy, rows, q4: true, G: 128)
    case .q8_g32: quantTiles(w, xq, Y, ldy, rows, q4: false, G: 32)
    case .q8_g64: quantTiles(w, xq, Y, ldy, rows, q4: false, G: 64)
    case .q8_g128: quantTiles(w, xq, Y, ldy, rows, q4: false, G: 128)
    default: preconditionFailure("matmulQuant: \(w.dtype.name) is not quantized")
    }
}

// MARK: float weights

/// Floats of scratch `matmulFloat` needs for f16/bf16 weights (a chunk of rows widened to f32).
public func matmulFloatScratchCount(_ w: WeightMatrix, chunkRows: Int? = nil) -> Int {
    w.dtype == .f32 ? 0 : (chunkRows ?? blasChunkRows(w.cols)) * w.cols
}

/// Rows widened per sgemm call: ≥ 64 (sgemm is slow on thin N; 16 rows at K = 18944 ran at half
/// speed), ≤ 256, about 1 MiB of f32 otherwise.
@inline(__always) func blasChunkRows(_ K: Int) -> Int { max(64, min(256, (1 << 18) / max(K, 1))) }

/// OpenBLAS threads (its own pool). The runtime splits rows over its ThreadPool and calls sgemm
/// from each worker, so this should be 1.
public func blasSetThreads(_ n: Int) {
    _ = blasCore
    openblas_set_num_threads(Int32(n))
}

/// Float weights through OpenBLAS: f32 rows go to sgemm as they are (Y = X·Wᵀ); f16/bf16 rows are
/// widened to f32 in chunks into `scratch` (`matmulFloatScratchCount` floats) first.
public func matmulFloat(
    _ w: WeightMatrix, _ X: UnsafePointer<Float>, ldx: Int, tokens T: Int,
    _ Y: UnsafeMutablePointer<Float>, ldy: Int, rows: Range<Int>, scratch: UnsafeMutablePointer<Float>?,
    chunkRows: Int? = nil
) {
    _ = blasCore  // selected before the first sgemm (see attentionRows)
    let K = w.cols
    if rows.isEmpty || T == 0 { return }
    if w.dtype == .f32 {
        cblas_sgemm(
            CblasRowMajor, CblasNoTrans, CblasTrans, Int32(T), Int32(rows.count), Int32(K), 1,
            X, Int32(ldx), w.row(rows.lowerBound).assumingMemoryBound(to: Float.self), Int32(K),
            0, Y + rows.lowerBound, Int32(ldy))
        return
    }
    let scratch = scratch!
    let chunk = chunkRows ?? blasChunkRows(K)
    var r0 = rows.lowerBound
    while r0 < rows.upperBound {
        let n = min(chunk, rows.upperBound - r0)
        for i in 0 ..< n { dequantizeRow(w, row: r0 + i, into: scratch + i * K) }
        cblas_sgemm(
            CblasRowMajor, CblasNoTrans, CblasTrans, Int32(T), Int32(n), Int32(K), 1,
            X, Int32(ldx), scratch, Int32(K), 0, Y + r0, Int32(ldy))
        r0 += n
    }
}

/// Own float kernel (for comparison with sgemm): 4 tokens × 2 rows per pass, 8 accumulators.
public func matmulFloatTiled(
    _ w: WeightMatrix, _ X: UnsafePointer<Float>, ldx: Int, tokens T: Int,
    _ Y: UnsafeMutablePointer<Float>, ldy: Int, rows: Range<Int>
) {
    switch w.dtype {
    case .f32: floatTiles(_LoadF32.self, w, X, ldx, T, Y, ldy, rows)
    case .f16: floatTiles(_LoadF16.self, w, X, ldx, T, Y, ldy, rows)
    case .bf16: floatTiles(_LoadBF16.self, w, X, ldx, T, Y, ldy, rows)
    default: preconditionFailure("matmulFloatTiled: \(w.dtype.name) is not a float type")
    }
}

@inline(__always) func floatTiles<L: _FloatRowLoader>(
    _: L.Type, _ w: WeightMatrix, _ X: UnsafePointer<Float>, _ ldx: Int, _ T: Int,
    _ Y: UnsafeMutablePointer<Float>, _ ldy: Int, _ rows: Range<Int>
) {
    let K = w.cols, K8 = K & ~7
    var r0 = rows.lowerBound
    while r0 < rows.upperBound {
        let r1 = min(r0 + matmulRowChunk, rows.upperBound)
        var t = 0
        while t < T {
            let nt = min(4, T - t)
            // Token tail: point the missing tokens at the last one (same loads, results dropped).
            let x0 = UnsafeRawPointer(X + t * ldx)
            let x1 = UnsafeRawPointer(X + (t + min(1, nt - 1)) * ldx)
            let x2 = UnsafeRawPointer(X + (t + min(2, nt - 1)) * ldx)
            let x3 = UnsafeRawPointer(X + (t + min(3, nt - 1)) * ldx)
            var r = r0
            while r < r1 {
                let two = r + 1 < r1
                let pa = w.row(r), pb = w.row(two ? r + 1 : r)
                var a0 = SIMD8<Float>(), a1 = SIMD8<Float>(), a2 = SIMD8<Float>(), a3 = SIMD8<Float>()
                var b0 = SIMD8<Float>(), b1 = SIMD8<Float>(), b2 = SIMD8<Float>(), b3 = SIMD8<Float>()
                var k = 0
                while k < K8 {
                    let wa = L.load8(pa, k), wb = L.load8(pb, k)
                    let v0 = loadF32x8(x0 + 4 * k), v1 = loadF32x8(x1 + 4 * k)
                    let v2 = loadF32x8(x2 + 4 * k), v3 = loadF32x8(x3 + 4 * k)
                    a0.addProduct(wa, v0)
                    a1.addProduct(wa, v1)
                    a2.addProduct(wa, v2)
                    a3.addProduct(wa, v3)
                    b0.addProduct(wb, v0)
                    b1.addProduct(wb, v1)
                    b2.addProduct(wb, v2)
                    b3.addProduct(wb, v3)
                    k += 8
                }
                var sa = (hsum(a0), hsum(a1), hsum(a2), hsum(a3)), sb = (hsum(b0), hsum(b1), hsum(b2), hsum(b3))
                let f0 = X + t * ldx
                while k < K {
                    let ua = L.load1(pa, k), ub = L.load1(pb, k)
                    sa.0 += ua * f0[k]
                    sb.0 += ub * f0[k]
                    if nt > 1 {
                        sa.1 += ua * f0[ldx + k]
                        sb.1 += ub * f0[ldx + k]
                    }
                    if nt > 2 {
                        sa.2 += ua * f0[2 * ldx + k]
                        sb.2 += ub * f0[2 * ldx + k]
                    }
                    if nt > 3 {
                        sa.3 += ua * f0[3 * ldx + k]
                        sb.3 += ub * f0[3 * ldx + k]
                    }
                    k += 1
                }
                let y = Y + t * ldy
                y[r] = sa.0
                if nt > 1 { y[ldy + r] = sa.1 }
                if nt > 2 { y[2 * ldy + r] = sa.2 }
                if nt > 3 { y[3 * ldy + r] = sa.3 }
                if two {
                    y[r + 1] = sb.0
                    if nt > 1 { y[ldy + r + 1] = sb.1 }
                    if nt > 2 { y[2 * ldy + r + 1] = sb.2 }
                    if nt > 3 { y[3 * ldy + r + 1] = sb.3 }
                }
                r += 2
            }
            t += 4
        }
        r0 = r1
    }
}

/// q8/q4 row → f32, block by block (prefill widens weights for sgemm; exact, like dequantizeRow_ref).
@inline(__always) func dequantizeRowFast(
    _ t: DType, _ p: UnsafeRawPointer, _ K: Int, _ dst: UnsafeMutablePointer<Float>
) {
    let g = t.groupSize, bb = t.traits.blockBytes
    if t.traits.quantBits == 8 {
        for b in 0 ..< K / g {
            let blk = p + b * bb, o = dst + b * g
            let dv = f16ToFloat(blk.loadUnaligned(as: UInt16.self))
            let q = (blk + 2).assumingMemoryBound(to: Int8.self)
            for j in 0 ..< g { o[j] = dv * Float(q[j]) }
        }
    } else {
        let h = g / 2
        for b in 0 ..< K / g {
            let blk = p + b * bb, o = dst + b * g
            let dv = f16ToFloat(blk.loadUnaligned(as: UInt16.self))
            let q = (blk + 2).assumingMemoryBound(to: UInt8.self)
            for j in 0 ..< h {
                o[j] = dv * Float(Int32(q[j] & 0x0F) - 8)
                o[j + h] = dv * Float(Int32(q[j] >> 4) - 8)
            }
        }
    }
}

/// Row r of a q8/q4 `_r8` matrix → f32, read across the tiles 4 bytes at a time (the same values
/// as dequantizeRow_ref).
@inline(__always) func dequantizeRowR8Fast(_ w: WeightMatrix, _ r: Int, _ dst: UnsafeMutablePointer<Float>) {
    #if arch(x86_64)
    let plain = w.dtype.plain, g = plain.groupSize, bb = plain.traits.blockBytes, q = bb - 2
    let i = r % 8, group = w.rowGroup(r / 8)
    let q8 = plain.traits.quantBits == 8
    for b in 0 ..< w.cols / g {
        let tile = group + 8 * bb * b, o = dst + b * g
        let dv = SIMD4<Float>(repeating: f16ToFloat(tile.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
        for c in 0 ..< q / 4 {
            let v = _mm_cvtsi32_si128(tile.loadUnaligned(fromByteOffset: 16 + 32 * c + 4 * i, as: Int32.self))
            if q8 {
                UnsafeMutableRawPointer(o + 4 * c).storeBytes(
                    of: dv * _mm_cvtepi32_ps(_mm_cvtepi8_epi32(v)), as: SIMD4<Float>.self)
            } else {
                let u = _mm_cvtepu8_epi32(v), e = _mm_set1_epi32(8)
                let lo = _mm_sub_epi32(_mm_and_si128(u, _mm_set1_epi32(15)), e),
                    hi = _mm_sub_epi32(_mm_srli_epi32(u, 4), e)
                UnsafeMutableRawPointer(o + 4 * c).storeBytes(of: dv * _mm_cvtepi32_ps(lo), as: SIMD4<Float>.self)
                UnsafeMutableRawPointer(o + g / 2 + 4 * c).storeBytes(
                    of: dv * _mm_cvtepi32_ps(hi), as: SIMD4<Float>.self)
            }
        }
    }
    #else
    dequantizeRow_ref(w.dtype, matrix: w.base, cols: w.cols, row: r, into: dst)
    #endif
}

/// Batches at least this large widen q8/q4 weights to f32 and use sgemm: the widening is paid
/// once per weight and batch, and sgemm runs several times faster than the row-major integer
/// tiles. The `_r8` tiles stay integer at every size where they beat sgemm (151 GFLOP/s on widened
/// bf16 at T = 256, kernels.sh): q4 always (AVX2 170, VNNI ~200), q8 with VNNI (185; AVX2 115).
public let matmulWidenThreshold = 48

/// Whether a batch of T tokens goes through the integer kernels (then it needs quantized activations).
public func matmulUsesInt8(_ w: WeightMatrix, tokens T: Int) -> Bool {
    guard w.dtype.isQuantized else { return false }
    if w.dtype.isInterleaved && (w.dtype.traits.quantBits == 4 || cpuHasAVX512VNNI) { return true }
    return T < matmulWidenThreshold
}

/// Dispatch: float weights → sgemm (measured faster than the tiled kernel, see the benchmark);
/// quantized weights → integer tiles on `xq` where `matmulUsesInt8`, else sgemm on rows widened
/// into `scratch` (integer tiles when no scratch is given).
public func matmul(
    _ w: WeightMatrix, X: UnsafePointer<Float>, ldx: Int, xq: QuantizedActivations?, tokens T: Int,
    Y: UnsafeMutablePointer<Float>, ldy: Int, rows: Range<Int>, scratch: UnsafeMutablePointer<Float>?,
    chunkRows: Int? = nil
) {
    if w.dtype.isFloat || (!matmulUsesInt8(w, tokens: T) && scratch != nil) {
        matmulFloat(w, X, ldx: ldx, tokens: T, Y, ldy: ldy, rows: rows, scratch: scratch, chunkRows: chunkRows)
    } else if w.dtype.isInterleaved {
        matmulR8(w, xq!, Y, ldy: ldy, rows: rows)
    } else {
        matmulQuant(w, xq!, Y, ldy: ldy, rows: rows)
    }
}
