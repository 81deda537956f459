// The `_r8` prefill tile walk (runtime/Kernels/MatMulR8.swift describes the layout and the
// blocking), written once for both instruction sets: the AVX2 tiles (vpmaddubsw, in KimiRuntime)
// and the AVX-512 VNNI tiles (vpdpbusd, in KimiKernelsVNNI, the one module built for it). Each
// supplies its integer dot products as an `R8Dot`; the walk, the scales and the float steps are
// shared, so both give the same results. @inlinable: each module compiles its own copy with its
// own instructions.
#if arch(x86_64)
import _Builtin_intrinsics.intel

/// Activations as QuantizedActivations lays them out, as raw pointers (the VNNI module sits below
/// KimiRuntime and cannot see its types): T rows of K int8, per row K/32 scales d and sums sq.
public struct R8Activations {
    public let qs: UnsafeRawPointer, d: UnsafePointer<Float>, sq: UnsafePointer<Int32>
    public let K: Int, T: Int

    @inlinable public init(qs: UnsafeRawPointer, d: UnsafePointer<Float>, sq: UnsafePointer<Int32>, K: Int, T: Int) {
        (self.qs, self.d, self.sq, self.K, self.T) = (qs, d, sq, K, T)
    }
}

/// The integer part of a tile: per 32-run, 8 rows' sums of weight bytes × activation bytes.
public protocol R8Dot {
    /// The q4 sum before the first product, for activations with Σq = `sq` per 32-run.
    static func q4Start(_ sq: Int32) -> __m256i
    /// s + u8 nibbles `w` × s8 activations `x` (4 products per 32-bit lane).
    static func q4(_ s: __m256i, _ w: __m256i, _ x: __m256i) -> __m256i
    /// The q4 sum as f32, with the −8 offset (−8·Σq) applied exactly.
    static func q4Finish(_ s: __m256i, _ sq: Int32) -> SIMD8<Float>
    /// The q8 sum before the first product, for activations with Σq = `sq` per 32-run.
    static func q8Start(_ sq: Int32) -> __m256i
    /// A chunk of s8 weights `w` made ready for `q8` (once per chunk, shared by the 4 tokens).
    static func q8Weights(_ w: __m256i) -> __m256i
    /// s + the chunk's 4 products per int32 lane: `pw` = q8Weights(w), `x` the broadcast s8 activations.
    static func q8(_ s: __m256i, _ pw: __m256i, _ w: __m256i, _ x: __m256i) -> __m256i
}

/// `r8Span` with `q4` and `G` turned into constants: one copy of the walk per weight type.
@inlinable @inline(__always) public func r8SpanEachType<D: R8Dot>(
    _ dot: D.Type, base: UnsafeRawPointer, groupBytes: Int, q4: Bool, G: Int, _ a: R8Activations,
    _ Y: UnsafeMutablePointer<Float>, ldy: Int, rowGroups: Range<Int>, groups: Range<Int>, accumulate: Bool
) {
    @inline(__always) func run(_ q4: Bool, _ G: Int) {
        r8Span(
            dot, base: base, groupBytes: groupBytes, q4: q4, G: G, a, Y, ldy: ldy, rowGroups: rowGroups, groups: groups,
            accumulate: accumulate)
    }
    switch (q4, G) {
    case (true, 32): run(true, 32)
    case (true, 64): run(true, 64)
    case (true, _): run(true, 128)
    case (false, 32): run(false, 32)
    case (false, 64): run(false, 64)
    case (false, _): run(false, 128)
    }
}

/// One pass: row groups `rowGroups` of the matrix at `base` (row-group stride `groupBytes`), group
/// columns `groups`, every token in tiles of 4; written to Y, or added into it when `accumulate`.
@inlinable @inline(__always) public func r8Span<D: R8Dot>(
    _ dot: D.Type, base: UnsafeRawPointer, groupBytes: Int, q4: Bool, G: Int, _ a: R8Activations,
    _ Y: UnsafeMutablePointer<Float>, ldy: Int, rowGroups: Range<Int>, groups: Range<Int>, accumulate: Bool
) {
    var t = 0
    while t < a.T {
        let nt = min(4, a.T - t)
        for i in rowGroups {
            r8Tile4(dot, base + i * groupBytes, a, t, nt, Y + 8 * i, ldy, q4, G, groups, accumulate)
        }
        t += 4
    }
}

/// Rows 8i…8i+7 (`p` = the row group) × tokens t…t+nt−1 (nt ≤ 4; missing tokens repeat the last)
/// over the group columns `groups`.
@inlinable @inline(__always) public func r8Tile4<D: R8Dot>(
    _: D.Type, _ p: UnsafeRawPointer, _ a: R8Activations, _ t: Int, _ nt: Int, _ y: UnsafeMutablePointer<Float>,
    _ ldy: Int, _ q4: Bool, _ G: Int, _ groups: Range<Int>, _ accumulate: Bool
) {
    let K = a.K, nb = K / 32
    let t1 = t + min(1, nt - 1), t2 = t + min(2, nt - 1), t3 = t + min(3, nt - 1)
    let x0 = a.qs + t * K, x1 = a.qs + t1 * K, x2 = a.qs + t2 * K, x3 = a.qs + t3 * K
    let d0 = a.d + t * nb, d1 = a.d + t1 * nb, d2 = a.d + t2 * nb, d3 = a.d + t3 * nb
    let e0 = a.sq + t * nb, e1 = a.sq + t1 * nb, e2 = a.sq + t2 * nb, e3 = a.sq + t3 * nb
    let m = _mm256_set1_epi8(0x0F)
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
                var s0 = D.q4Start(e0[b]), s1 = D.q4Start(e1[b]), s2 = D.q4Start(e2[b]), s3 = D.q4Start(e3[b])
                if G == 32 {
                    var c = 0
                    while c < 4 {
                        let v = load256(tile + 16 + 32 * c)
                        let lo = _mm256_and_si256(v, m), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m)
                        let ol = o + 4 * c, oh = o + 16 + 4 * c
                        s0 = D.q4(D.q4(s0, lo, broadcast32(x0 + ol)), hi, broadcast32(x0 + oh))
                        s1 = D.q4(D.q4(s1, lo, broadcast32(x1 + ol)), hi, broadcast32(x1 + oh))
                        s2 = D.q4(D.q4(s2, lo, broadcast32(x2 + ol)), hi, broadcast32(x2 + oh))
                        s3 = D.q4(D.q4(s3, lo, broadcast32(x3 + ol)), hi, broadcast32(x3 + oh))
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
                        s0 = D.q4(s0, w, broadcast32(x0 + oc))
                        s1 = D.q4(s1, w, broadcast32(x1 + oc))
                        s2 = D.q4(s2, w, broadcast32(x2 + oc))
                        s3 = D.q4(s3, w, broadcast32(x3 + oc))
                        c += 1
                    }
                }
                c0.addProduct(sc * d0[b], D.q4Finish(s0, e0[b]))
                c1.addProduct(sc * d1[b], D.q4Finish(s1, e1[b]))
                c2.addProduct(sc * d2[b], D.q4Finish(s2, e2[b]))
                c3.addProduct(sc * d3[b], D.q4Finish(s3, e3[b]))
            } else {
                // Even and odd chunks in separate sums: 8 independent chains instead of 4, so the
                // multiply-adds are not held up by each other's latency (integer: same result).
                var s0 = D.q8Start(e0[b]), s1 = D.q8Start(e1[b]), s2 = D.q8Start(e2[b]), s3 = D.q8Start(e3[b])
                var u0 = _mm256_setzero_si256(), u1 = u0, u2 = u0, u3 = u0
                let cb = tile + 16 + 256 * j
                var c = 0
                while c < 8 {
                    let v = load256(cb + 32 * c), vo = load256(cb + 32 * c + 32)
                    let pw = D.q8Weights(v), po = D.q8Weights(vo)
                    let oc = o + 4 * c
                    s0 = D.q8(s0, pw, v, broadcast32(x0 + oc))
                    s1 = D.q8(s1, pw, v, broadcast32(x1 + oc))
                    s2 = D.q8(s2, pw, v, broadcast32(x2 + oc))
                    s3 = D.q8(s3, pw, v, broadcast32(x3 + oc))
                    u0 = D.q8(u0, po, vo, broadcast32(x0 + oc + 4))
                    u1 = D.q8(u1, po, vo, broadcast32(x1 + oc + 4))
                    u2 = D.q8(u2, po, vo, broadcast32(x2 + oc + 4))
                    u3 = D.q8(u3, po, vo, broadcast32(x3 + oc + 4))
                    c += 2
                }
                s0 = _mm256_add_epi32(s0, u0)
                s1 = _mm256_add_epi32(s1, u1)
                s2 = _mm256_add_epi32(s2, u2)
                s3 = _mm256_add_epi32(s3, u3)
                c0.addProduct(sc * d0[b], _mm256_cvtepi32_ps(s0))
                c1.addProduct(sc * d1[b], _mm256_cvtepi32_ps(s1))
                c2.addProduct(sc * d2[b], _mm256_cvtepi32_ps(s2))
                c3.addProduct(sc * d3[b], _mm256_cvtepi32_ps(s3))
            }
        }
    }
    storeTile4(y + t * ldy, ldy: ldy, c0, c1, c2, c3, count: nt, accumulate: accumulate)
}
#endif
