import Foundation
import KimiSIMD

// BigVGAN's anti-aliased activation (alias_free_activation/torch: UpSample1d, SnakeBeta,
// DownSample1d; docs/ARCHITECTURE.md §1.10) on time-major signals x [T, C]. With the stored 12-tap
// filters f (up) and g (down), ratio 2:
//   up:   replicate-pad 5, conv_transpose(stride 2) with f, ×2, crop 15 | 15. Written out per
//         output sample: u[2t]   = 2·Σ_q f[2q+1]·x[t+2−q],  u[2t+1] = 2·Σ_q f[2q]·x[t+3−q]
//         (q = 0…5, x indices clamped to [0, T−1]: the replicate padding).
//   act:  a = u + invBeta·sin²(alpha·u), per channel.
//   down: replicate-pad 5 | 6, conv(stride 2) with g: y[t] = Σ_j g[j]·a[2t + j − 5] (clamped to [0, 2T−1]).
// Vectorised over 8 channels; the two passes are split so each can run on several threads.

/// Taps of both anti-alias filters.
public let antiAliasTaps = 12

/// sin²(x) for 8 lanes: sin² has period π, so x is reduced by the nearest multiple of π (three-part
/// Cody–Waite) to r ∈ [−π/2, π/2], and sin r is its Taylor series to r¹³ (error < 1e-9 there).
@inline(__always) func vsinSquared(_ x: SIMD8<Float>) -> SIMD8<Float> {
    let k = (x * (1 / Float.pi)).rounded(.toNearestOrEven)
    var r = x - k * 3.140625
    r = r - k * 9.67502593994140625e-4
    r = r - k * 1.509957990978376432e-7
    let r2 = r * r
    var p = SIMD8<Float>(repeating: 1.6059043836821613e-10)  // 1/13!
    p = p * r2 - 2.5052108385441720e-8  // 1/11!
    p = p * r2 + 2.7557319223985893e-6  // 1/9!
    p = p * r2 - 1.9841269841269841e-4  // 1/7!
    p = p * r2 + 8.3333333333333333e-3  // 1/5!
    p = p * r2 - 1.6666666666666667e-1  // 1/3!
    let s = r + r * r2 * p
    return s * s
}

/// Pass 1: the activated ×2 upsampled signal a [2T, C] at output samples 2t, 2t+1 for t in `frames`.
/// `alpha`, `invBeta`: per channel, already in linear scale (e^α; 1/(e^β + 1e-9)).
public func snakeUpsampled(
    _ x: UnsafePointer<Float>, frames T: Int, channels C: Int, alpha: UnsafePointer<Float>,
    invBeta: UnsafePointer<Float>, filter f: UnsafePointer<Float>, into a: UnsafeMutablePointer<Float>,
    frames range: Range<Int>
) {
    withUnsafeTemporaryAllocation(of: Int.self, capacity: 12) { idx in
        for t in range {
            for q in 0 ..< 6 {
                idx[q] = min(max(t + 2 - q, 0), T - 1) * C  // taps f[2q+1] → sample 2t
                idx[6 + q] = min(max(t + 3 - q, 0), T - 1) * C  // taps f[2q] → sample 2t+1
            }
            let a0 = a + 2 * t * C, a1 = a0 + C
            var c = 0
            while c + 8 <= C {
                var u0 = SIMD8<Float>(), u1 = SIMD8<Float>()
                for q in 0 ..< 6 {
                    u0.addProduct(SIMD8(repeating: f[2 * q + 1]), load8(x + idx[q] + c))
                    u1.addProduct(SIMD8(repeating: f[2 * q]), load8(x + idx[6 + q] + c))
                }
                u0 *= 2
                u1 *= 2
                let al = load8(alpha + c), ib = load8(invBeta + c)
                store8(a0 + c, u0 + ib * vsinSquared(u0 * al))
                store8(a1 + c, u1 + ib * vsinSquared(u1 * al))
                c += 8
            }
            while c < C {
                var u0: Float = 0, u1: Float = 0
                for q in 0 ..< 6 {
                    u0 += f[2 * q + 1] * x[idx[q] + c]
                    u1 += f[2 * q] * x[idx[6 + q] + c]
                }
                u0 *= 2
                u1 *= 2
                let s0 = Foundation.sin(u0 * alpha[c]), s1 = Foundation.sin(u1 * alpha[c])
                a0[c] = u0 + invBeta[c] * s0 * s0
                a1[c] = u1 + invBeta[c] * s1 * s1
                c += 1
            }
        }
    }
}

/// Pass 2: y[t] = Σ_j g[j]·a[clamp(2t + j − 5)] for t in `frames`, from a [2T, C] (pass 1's output).
public func lowpassDownsampled(
    _ a: UnsafePointer<Float>, frames T: Int, channels C: Int, filter g: UnsafePointer<Float>,
    into y: UnsafeMutablePointer<Float>, frames range: Range<Int>
) {
    withUnsafeTemporaryAllocation(of: Int.self, capacity: antiAliasTaps) { idx in
        for t in range {
            for j in 0 ..< antiAliasTaps { idx[j] = min(max(2 * t + j - 5, 0), 2 * T - 1) * C }
            let yr = y + t * C
            var c = 0
            while c + 8 <= C {
                var s = SIMD8<Float>()
                for j in 0 ..< antiAliasTaps { s.addProduct(SIMD8(repeating: g[j]), load8(a + idx[j] + c)) }
                store8(yr + c, s)
                c += 8
            }
            while c < C {
                var s: Float = 0
                for j in 0 ..< antiAliasTaps { s += g[j] * a[idx[j] + c] }
                yr[c] = s
                c += 1
            }
        }
    }
}

/// Scalar twin of both passes, written as the torch modules compute it: per channel, replicate
/// padding, the transposed convolution and its crop, SnakeBeta, padding again and the strided
/// convolution (in Double).
public func antiAliasedSnake_ref(
    _ x: UnsafePointer<Float>, frames T: Int, channels C: Int, alpha: UnsafePointer<Float>,
    invBeta: UnsafePointer<Float>, up f: UnsafePointer<Float>, down g: UnsafePointer<Float>,
    into y: UnsafeMutablePointer<Float>
) {
    let K = antiAliasTaps, pad = K / 2 - 1
    for c in 0 ..< C {
        let xp = (0 ..< T + 2 * pad).map { Double(x[min(max($0 - pad, 0), T - 1) * C + c]) }
        var full = [Double](repeating: 0, count: (xp.count - 1) * 2 + K)
        for i in 0 ..< xp.count { for j in 0 ..< K { full[2 * i + j] += xp[i] * Double(f[j]) } }
        let crop = pad * 2 + (K - 2) / 2
        let u = (0 ..< 2 * T).map { 2 * full[$0 + crop] }
        let act = u.map { $0 + Double(invBeta[c]) * pow(sin($0 * Double(alpha[c])), 2) }
        let ap = (0 ..< 2 * T + K - 1).map { act[min(max($0 - (K / 2 - 1), 0), 2 * T - 1)] }
        for t in 0 ..< T {
            var s = 0.0
            for j in 0 ..< K { s += Double(g[j]) * ap[2 * t + j] }
            y[t * C + c] = Float(s)
        }
    }
}
