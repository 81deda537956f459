// One attention head for one query row over n cached positions: scores[t] = scale·(q·k_t),
// softmax, out = Σ_t p_t·v_t (k_t, v_t rows `stride` floats apart, as in the KV cache). The dot
// products run 4 independent FMA chains (one chain of 16 dependent FMAs per 128-dim head is
// latency-bound at about a third of the FMA throughput); the value sum takes two rows per pass so
// `out` is loaded and stored half as often.
import COpenBLAS
import KimiSIMD

/// q·k over d floats, 4 accumulators of 8 lanes (d a multiple of 32 for the fast path).
@inline(__always) func dot4(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ d: Int) -> Float {
    let pa = UnsafeRawPointer(a), pb = UnsafeRawPointer(b)
    var s0 = SIMD8<Float>(), s1 = SIMD8<Float>(), s2 = SIMD8<Float>(), s3 = SIMD8<Float>()
    var i = 0
    while i + 32 <= d {
        s0.addProduct(loadF32x8(pa + 4 * i), loadF32x8(pb + 4 * i))
        s1.addProduct(loadF32x8(pa + 4 * i + 32), loadF32x8(pb + 4 * i + 32))
        s2.addProduct(loadF32x8(pa + 4 * i + 64), loadF32x8(pb + 4 * i + 64))
        s3.addProduct(loadF32x8(pa + 4 * i + 96), loadF32x8(pb + 4 * i + 96))
        i += 32
    }
    while i + 8 <= d {
        s0.addProduct(loadF32x8(pa + 4 * i), loadF32x8(pb + 4 * i))
        i += 8
    }
    var s = hsum((s0 + s1) + (s2 + s3))
    while i < d {
        s += a[i] * b[i]
        i += 1
    }
    return s
}

public func attentionHead(
    _ q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>, stride: Int, count n: Int,
    dim d: Int, scale: Float, scores: UnsafeMutablePointer<Float>, out: UnsafeMutablePointer<Float>
) {
    for t in 0 ..< n { scores[t] = dot4(q, k + t * stride, d) * scale }
    softmax(scores, count: n)
    let d8 = d & ~7
    let o = UnsafeMutableRawPointer(out)
    for i in 0 ..< d { out[i] = 0 }
    var t = 0
    while t + 2 <= n {
        let p0 = SIMD8<Float>(repeating: scores[t]), p1 = SIMD8<Float>(repeating: scores[t + 1])
        let v0 = UnsafeRawPointer(v + t * stride), v1 = UnsafeRawPointer(v + (t + 1) * stride)
        var i = 0
        while i < d8 {
            var acc = o.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self)
            acc.addProduct(p0, loadF32x8(v0 + 4 * i))
            acc.addProduct(p1, loadF32x8(v1 + 4 * i))
            o.storeBytes(of: acc, toByteOffset: 4 * i, as: SIMD8<Float>.self)
            i += 8
        }
        while i < d {
            out[i] += scores[t] * v[t * stride + i] + scores[t + 1] * v[(t + 1) * stride + i]
            i += 1
        }
        t += 2
    }
    if t < n {
        let p = scores[t], vr = v + t * stride
        for i in 0 ..< d { out[i] += p * vr[i] }
    }
}

/// Scalar twin: the same three steps, plain loops.
public func attentionHead_ref(
    _ q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>, stride: Int, count n: Int,
    dim d: Int, scale: Float, scores: UnsafeMutablePointer<Float>, out: UnsafeMutablePointer<Float>
) {
    for t in 0 ..< n {
        var s: Float = 0
        for i in 0 ..< d { s += q[i] * k[t * stride + i] }
        scores[t] = s * scale
    }
    softmax_ref(scores, count: n)
    for i in 0 ..< d {
        var s: Float = 0
        for t in 0 ..< n { s += scores[t] * v[t * stride + i] }
        out[i] = s
    }
}

// MARK: many queries at once (encoders)

/// Attention of `rows` query rows against the first `keys` keys of one head, as three dense steps
/// that sgemm runs at its full rate: S = scale·Q·Kᵀ [rows, keys], the row softmax, O = S·V. For
/// encoders, where every frame is a query (1500 per 30 s window) and a row-at-a-time dot loop
/// spends its time reloading the keys. q, k, v rows are `stride` floats apart, out rows
/// `outStride`; `scores` holds rows·keys floats.
public func attentionRows(
    q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>, stride: Int, rows: Int, keys: Int,
    dim: Int, scale: Float, scores: UnsafeMutablePointer<Float>, out: UnsafeMutablePointer<Float>, outStride: Int
) {
    // OpenBLAS's kernel selection (BLASCore.swift) must happen before any sgemm, and never while one runs
    // on another thread: a kernel test that reached sgemm first raced with it (wrong outputs, 1 run in ~5).
    _ = blasCore
    cblas_sgemm(
        CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(keys), Int32(dim), scale, q, Int32(stride), k,
        Int32(stride), 0, scores, Int32(keys))
    // The softmax's division moves past ·V: `dim` multiplies per row instead of `keys`.
    withUnsafeTemporaryAllocation(of: Float.self, capacity: rows) { inv in
        for r in 0 ..< rows { inv[r] = 1 / expShifted(scores + r * keys, count: keys) }
        cblas_sgemm(
            CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(rows), Int32(dim), Int32(keys), 1, scores, Int32(keys), v,
            Int32(stride), 0, out, Int32(outStride))
        for r in 0 ..< rows { KimiRuntime.scale(out + r * outStride, inv[r], count: dim) }
    }
}

/// Scalar twin: one `attentionHead_ref` per query row.
public func attentionRows_ref(
    q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>, stride: Int, rows: Int, keys: Int,
    dim: Int, scale: Float, scores: UnsafeMutablePointer<Float>, out: UnsafeMutablePointer<Float>, outStride: Int
) {
    for r in 0 ..< rows {
        attentionHead_ref(
            q + r * stride, k: k, v: v, stride: stride, count: keys, dim: dim, scale: scale, scores: scores,
            out: out + r * outStride)
    }
}
