import Foundation
import KimiSIMD

// Row-wise and element-wise kernels. Each SIMD kernel walks 8 floats at a time and finishes a
// ragged tail in scalar code; its scalar twin (`_ref`, below) uses libm and plain loops.
// Statistics (norms, softmax sums) are in f32, as the brief asks; tests bound the difference.

/// Σ x² over n, 8 lanes (tree-reduced at the end).
@inline(__always) func sumSquares(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
    var a = SIMD8<Float>(), b = SIMD8<Float>()
    var i = 0
    while i + 16 <= n {
        let u = load8(x + i), v = load8(x + i + 8)
        a.addProduct(u, u)
        b.addProduct(v, v)
        i += 16
    }
    if i + 8 <= n {
        let u = load8(x + i)
        a.addProduct(u, u)
        i += 8
    }
    var s = hsum(a + b)
    while i < n {
        s += x[i] * x[i]
        i += 1
    }
    return s
}

@inline(__always) func sum(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
    var a = SIMD8<Float>()
    var i = 0
    while i + 8 <= n {
        a += load8(x + i)
        i += 8
    }
    var s = hsum(a)
    while i < n {
        s += x[i]
        i += 1
    }
    return s
}

/// out = x / sqrt(mean(x²) + eps) · weight (Qwen2RMSNorm). out may alias x.
public func rmsNorm(
    _ x: UnsafePointer<Float>, weight: UnsafePointer<Float>, eps: Float, _ out: UnsafeMutablePointer<Float>,
    count n: Int
) {
    let inv = 1 / (sumSquares(x, n) / Float(n) + eps).squareRoot()
    let vi = SIMD8<Float>(repeating: inv)
    var i = 0
    while i + 8 <= n {
        store8(out + i, load8(x + i) * vi * load8(weight + i))
        i += 8
    }
    while i < n {
        out[i] = x[i] * inv * weight[i]
        i += 1
    }
}

/// out = (x − mean) / sqrt(var + eps) · weight + bias (weight/bias nil = not affine). Two passes
/// (mean, then Σ(x−mean)²) so the variance does not cancel. out may alias x.
public func layerNorm(
    _ x: UnsafePointer<Float>, weight: UnsafePointer<Float>?, bias: UnsafePointer<Float>?, eps: Float,
    _ out: UnsafeMutablePointer<Float>, count n: Int
) {
    let mean = sum(x, n) / Float(n)
    let vm = SIMD8<Float>(repeating: mean)
    var a = SIMD8<Float>()
    var i = 0
    while i + 8 <= n {
        let d = load8(x + i) - vm
        a.addProduct(d, d)
        i += 8
    }
    var v = hsum(a)
    while i < n {
        let d = x[i] - mean
        v += d * d
        i += 1
    }
    let inv = 1 / (v / Float(n) + eps).squareRoot()
    let vi = SIMD8<Float>(repeating: inv)
    i = 0
    while i + 8 <= n {
        var y = (load8(x + i) - vm) * vi
        if let weight { y = y * load8(weight + i) }
        if let bias { y = y + load8(bias + i) }
        store8(out + i, y)
        i += 8
    }
    while i < n {
        var y = (x[i] - mean) * inv
        if let weight { y *= weight[i] }
        if let bias { y += bias[i] }
        out[i] = y
        i += 1
    }
}

// MARK: RoPE

/// inv_freq[i] = theta^(−2i/headDim), i < headDim/2, computed as HF does (f32 of base^(2i/d)).
public func ropeInvFrequencies(headDim: Int, theta: Float, into f: UnsafeMutablePointer<Float>) {
    for i in 0 ..< headDim / 2 { f[i] = 1 / Float(pow(Double(theta), Double(2 * i) / Double(headDim))) }
}

/// cos/sin of position·inv_freq[i] (f32 angle, as HF's f32 `inv_freq @ positions`).
public func ropeCosSin(
    position: Int, invFreq: UnsafePointer<Float>, half: Int, cos c: UnsafeMutablePointer<Float>,
    sin s: UnsafeMutablePointer<Float>
) {
    let p = Float(position)
    for i in 0 ..< half {
        let a = p * invFreq[i]
        c[i] = Foundation.cos(a)
        s[i] = Foundation.sin(a)
    }
}

/// "Rotate half" (NeoX / HF Qwen2): pairs (i, i + d/2) of each of `heads` heads (stride headDim):
/// x1' = x1·c − x2·s, x2' = x2·c + x1·s. In place.
public func ropeNeox(
    _ x: UnsafeMutablePointer<Float>, heads: Int, headDim d: Int, cos c: UnsafePointer<Float>,
    sin s: UnsafePointer<Float>
) {
    let h = d / 2
    for head in 0 ..< heads {
        let x1 = x + head * d, x2 = x1 + h
        var i = 0
        while i + 8 <= h {
            let a = load8(x1 + i), b = load8(x2 + i), cv = load8(c + i), sv = load8(s + i)
            store8(x1 + i, a * cv - b * sv)
            store8(x2 + i, b * cv + a * sv)
            i += 8
        }
        while i < h {
            let a = x1[i], b = x2[i]
            x1[i] = a * c[i] - b * s[i]
            x2[i] = b * c[i] + a * s[i]
            i += 1
        }
    }
}

/// Interleaved pairs (GPT-J, the DiT): (2i, 2i+1) rotated by angle i. In place.
public func ropeInterleaved(
    _ x: UnsafeMutablePointer<Float>, heads: Int, headDim d: Int, cos c: UnsafePointer<Float>,
    sin s: UnsafePointer<Float>
) {
    let h = d / 2
    for head in 0 ..< heads {
        let p = x + head * d
        var i = 0
        while i + 4 <= h {  // 4 pairs: de-interleave to even/odd lanes, rotate, re-interleave
            let v = load8(p + 2 * i)
            let e = v.evenHalf, o = v.oddHalf
            let cv = UnsafeRawPointer(c + i).loadUnaligned(as: SIMD4<Float>.self)
            let sv = UnsafeRawPointer(s + i).loadUnaligned(as: SIMD4<Float>.self)
            let ne = e * cv - o * sv, no = o * cv + e * sv
            store8(p + 2 * i, SIMD8(ne[0], no[0], ne[1], no[1], ne[2], no[2], ne[3], no[3]))
            i += 4
        }
        while i < h {
            let a = p[2 * i], b = p[2 * i + 1]
            p[2 * i] = a * c[i] - b * s[i]
            p[2 * i + 1] = b * c[i] + a * s[i]
            i += 1
        }
    }
}

// MARK: softmax and activations

/// The largest of n ≥ 1 floats.
@inline(__always) func rowMax(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
    var m8 = SIMD8<Float>(repeating: -.infinity)
    var i = 0
    while i + 8 <= n {
        m8 = vmax(m8, load8(x + i))
        i += 8
    }
    var m = laneMax(m8)
    while i < n {
        m = max(m, x[i])
        i += 1
    }
    return m
}

/// In-place numerically stable softmax: exp(x − max) / Σ.
public func softmax(_ x: UnsafeMutablePointer<Float>, count n: Int) {
    if n == 0 { return }
    scale(x, 1 / expShifted(x, count: n), count: n)
}

/// x ← exp(x − max) in place, returning Σ: softmax without its division, for callers that scale a
/// smaller result instead (attention rows: the [rows, dim] output, not the [rows, keys] scores).
public func expShifted(_ x: UnsafeMutablePointer<Float>, count n: Int) -> Float {
    if n == 0 { return 0 }
    let vm = SIMD8<Float>(repeating: rowMax(x, n))
    var s8 = SIMD8<Float>()
    var i = 0
    while i < n {  // one vexp call site (the tail padded with −inf → 0), so it is inlined
        let k = min(8, n - i)
        let e = vexp(loadPartial8(x + i, k, fill: -.infinity) - vm)
        storePartial8(x + i, e, k)
        s8 += e
        i += 8
    }
    return hsum(s8)
}

/// log Σ exp(x) over n floats (−∞ entries count as 0), without changing x: max + log Σ exp(x − max).
/// For log-probabilities of chosen tokens (Whisper's avg_logprob) without a softmax pass per token.
public func logSumExp(_ x: UnsafePointer<Float>, count n: Int) -> Float {
    if n == 0 { return -.infinity }
    let m = rowMax(x, n)
    if m == -.infinity { return m }
    let vm = SIMD8<Float>(repeating: m)
    var s8 = SIMD8<Float>()
    var i = 0
    while i < n {
        s8 += vexp(loadPartial8(x + i, min(8, n - i), fill: -.infinity) - vm)
        i += 8
    }
    return m + Foundation.log(hsum(s8))
}

/// k ≤ 8 floats at p, the other lanes `fill`.
@inline(__always) func loadPartial8(_ p: UnsafePointer<Float>, _ k: Int, fill: Float) -> SIMD8<Float> {
    if k == 8 { return load8(p) }
    var t = SIMD8<Float>(repeating: fill)
    for j in 0 ..< k { t[j] = p[j] }
    return t
}

@inline(__always) func storePartial8(_ p: UnsafeMutablePointer<Float>, _ v: SIMD8<Float>, _ k: Int) {
    if k == 8 {
        store8(p, v)
        return
    }
    for j in 0 ..< k { p[j] = v[j] }
}

@inline(__always) func vsilu(_ v: SIMD8<Float>) -> SIMD8<Float> { v / (vexp(-v) + 1) }

/// out = x·sigmoid(x). out may alias x.
public func silu(_ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, count n: Int) {
    var i = 0
    while i < n {
        let k = min(8, n - i)
        storePartial8(out + i, vsilu(loadPartial8(x + i, k, fill: 0)), k)
        i += 8
    }
}

/// out = silu(gate)·up (the SwiGLU MLP's gating). out may alias gate or up.
public func swiglu(
    gate: UnsafePointer<Float>, up: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, count n: Int
) {
    var i = 0
    while i < n {
        let k = min(8, n - i)
        storePartial8(out + i, vsilu(loadPartial8(gate + i, k, fill: 0)) * loadPartial8(up + i, k, fill: 0), k)
        i += 8
    }
}

/// erf for 8 lanes: Abramowitz & Stegun 7.1.26 (|error| ≤ 1.5e-7 plus f32 rounding), odd symmetry.
@inline(__always) func verf(_ x: SIMD8<Float>) -> SIMD8<Float> {
    let ax = vabs(x)
    let t = 1 / (ax * SIMD8(repeating: 0.3275911) + 1)
    var p = SIMD8<Float>(repeating: 1.061405429)
    p = p * t + SIMD8(repeating: -1.453152027)
    p = p * t + SIMD8(repeating: 1.421413741)
    p = p * t + SIMD8(repeating: -0.284496736)
    p = p * t + SIMD8(repeating: 0.254829592)
    let y = 1 - p * t * vexp(-(ax * ax))
    // copy the sign of x
    let sign = unsafeBitCast(x, to: SIMD8<UInt32>.self) & SIMD8(repeating: 0x8000_0000)
    return unsafeBitCast(unsafeBitCast(y, to: SIMD8<UInt32>.self) | sign, to: SIMD8<Float>.self)
}

@inline(__always) func vgeluErf(_ v: SIMD8<Float>) -> SIMD8<Float> {
    v * SIMD8(repeating: 0.5) * (verf(v * SIMD8(repeating: 0.70710678118654752)) + 1)
}

/// tanh(u) = 1 − 2/(e^{2u} + 1): exact limits ±1 for large |u|, absolute error ~1e-7 near 0.
@inline(__always) func vtanh(_ u: SIMD8<Float>) -> SIMD8<Float> {
    1 - 2 / (vexp(u + u) + 1)
}

@inline(__always) func vgeluTanh(_ v: SIMD8<Float>) -> SIMD8<Float> {
    let u = SIMD8<Float>(repeating: 0.79788456080286536) * (v + SIMD8(repeating: 0.044715) * v * v * v)
    return v * SIMD8(repeating: 0.5) * (vtanh(u) + 1)
}

/// GELU, exact form 0.5·x·(1 + erf(x/√2)) (Whisper, nn.GELU()). out may alias x.
public func geluErf(_ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, count n: Int) {
    var i = 0
    while i < n {
        let k = min(8, n - i)
        storePartial8(out + i, vgeluErf(loadPartial8(x + i, k, fill: 0)), k)
        i += 8
    }
}

/// GELU, tanh approximation (nn.GELU(approximate="tanh")). out may alias x.
public func geluTanh(_ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, count n: Int) {
    var i = 0
    while i < n {
        let k = min(8, n - i)
        storePartial8(out + i, vgeluTanh(loadPartial8(x + i, k, fill: 0)), k)
        i += 8
    }
}

/// out = a + b. out may alias either.
public func add(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, count n: Int)
{
    var i = 0
    while i + 8 <= n {
        store8(out + i, load8(a + i) + load8(b + i))
        i += 8
    }
    while i < n {
        out[i] = a[i] + b[i]
        i += 1
    }
}

/// x *= s, in place.
public func scale(_ x: UnsafeMutablePointer<Float>, _ s: Float, count n: Int) {
    let v = SIMD8<Float>(repeating: s)
    var i = 0
    while i + 8 <= n {
        store8(x + i, load8(x + i) * v)
        i += 8
    }
    while i < n {
        x[i] *= s
        i += 1
    }
}

/// Index of the largest value (the first one on ties; NaN never wins). -1 when n = 0.
public func argmax(_ x: UnsafePointer<Float>, count n: Int) -> Int {
    if n == 0 { return -1 }
    // Pass 1: the max value (vector); pass 2: its first index (scalar scan stops early).
    var m8 = SIMD8<Float>(repeating: -.infinity)
    var i = 0
    while i + 8 <= n {
        m8 = vmax(m8, load8(x + i))
        i += 8
    }
    var m = laneMax(m8)
    while i < n {
        if x[i] > m { m = x[i] }
        i += 1
    }
    for j in 0 ..< n where x[j] == m { return j }
    return 0  // all NaN
}

// MARK: scalar references

// The norm references accumulate their statistics in Double: they are the oracle, the kernels'
// f32 statistics are tested against them.
public func rmsNorm_ref(
    _ x: UnsafePointer<Float>, weight: UnsafePointer<Float>, eps: Float, _ out: UnsafeMutablePointer<Float>,
    count n: Int
) {
    var ss = 0.0
    for i in 0 ..< n { ss += Double(x[i]) * Double(x[i]) }
    let inv = Float(1 / (ss / Double(n) + Double(eps)).squareRoot())
    for i in 0 ..< n { out[i] = x[i] * inv * weight[i] }
}

public func layerNorm_ref(
    _ x: UnsafePointer<Float>, weight: UnsafePointer<Float>?, bias: UnsafePointer<Float>?, eps: Float,
    _ out: UnsafeMutablePointer<Float>, count n: Int
) {
    var md = 0.0
    for i in 0 ..< n { md += Double(x[i]) }
    md /= Double(n)
    var v = 0.0
    for i in 0 ..< n { v += (Double(x[i]) - md) * (Double(x[i]) - md) }
    let inv = Float(1 / (v / Double(n) + Double(eps)).squareRoot()), m = Float(md)
    for i in 0 ..< n { out[i] = (x[i] - m) * inv * (weight?[i] ?? 1) + (bias?[i] ?? 0) }
}

public func ropeNeox_ref(
    _ x: UnsafeMutablePointer<Float>, heads: Int, headDim d: Int, cos c: UnsafePointer<Float>,
    sin s: UnsafePointer<Float>
) {
    for head in 0 ..< heads {
        for i in 0 ..< d / 2 {
            let a = x[head * d + i], b = x[head * d + i + d / 2]
            x[head * d + i] = a * c[i] - b * s[i]
            x[head * d + i + d / 2] = b * c[i] + a * s[i]
        }
    }
}

public func ropeInterleaved_ref(
    _ x: UnsafeMutablePointer<Float>, heads: Int, headDim d: Int, cos c: UnsafePointer<Float>,
    sin s: UnsafePointer<Float>
) {
    for head in 0 ..< heads {
        for i in 0 ..< d / 2 {
            let a = x[head * d + 2 * i], b = x[head * d + 2 * i + 1]
            x[head * d + 2 * i] = a * c[i] - b * s[i]
            x[head * d + 2 * i + 1] = b * c[i] + a * s[i]
        }
    }
}

public func softmax_ref(_ x: UnsafeMutablePointer<Float>, count n: Int) {
    let s = expShifted_ref(x, count: n)
    for i in 0 ..< n { x[i] /= s }
}

public func expShifted_ref(_ x: UnsafeMutablePointer<Float>, count n: Int) -> Float {
    var m = -Float.infinity
    for i in 0 ..< n { m = max(m, x[i]) }
    var s: Float = 0
    for i in 0 ..< n {
        x[i] = Foundation.exp(x[i] - m)
        s += x[i]
    }
    return s
}

public func logSumExp_ref(_ x: UnsafePointer<Float>, count n: Int) -> Float {
    var m = -Float.infinity
    for i in 0 ..< n { m = max(m, x[i]) }
    if m == -.infinity { return m }
    var s = 0.0
    for i in 0 ..< n { s += Foundation.exp(Double(x[i] - m)) }
    return m + Float(Foundation.log(s))
}

public func silu_ref(_ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, count n: Int) {
    for i in 0 ..< n { out[i] = x[i] / (1 + Foundation.exp(-x[i])) }
}

public func swiglu_ref(
    gate: UnsafePointer<Float>, up: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, count n: Int
) {
    for i in 0 ..< n { out[i] = gate[i] / (1 + Foundation.exp(-gate[i])) * up[i] }
}

public func geluErf_ref(_ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, count n: Int) {
    for i in 0 ..< n { out[i] = 0.5 * x[i] * (1 + Foundation.erf(x[i] / Float(2).squareRoot())) }
}

public func geluTanh_ref(_ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, count n: Int) {
    let k = Float((2 / Double.pi).squareRoot())
    for i in 0 ..< n { out[i] = 0.5 * x[i] * (1 + Foundation.tanh(k * (x[i] + 0.044715 * x[i] * x[i] * x[i]))) }
}

public func add_ref(
    _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, count n: Int
) {
    for i in 0 ..< n { out[i] = a[i] + b[i] }
}

public func scale_ref(_ x: UnsafeMutablePointer<Float>, _ s: Float, count n: Int) {
    for i in 0 ..< n { x[i] *= s }
}

public func argmax_ref(_ x: UnsafePointer<Float>, count n: Int) -> Int {
    if n == 0 { return -1 }
    var best = -1
    for i in 0 ..< n where !x[i].isNaN && (best < 0 || x[i] > x[best]) { best = i }
    return max(best, 0)
}
