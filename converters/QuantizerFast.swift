import KAF
import KimiSIMD  // load8, clamp, vabs, vmax, laneMax: shared with the runtime's kernels

/// The production quantizer the converter runs: SIMD, one pass per row, error statistics computed
/// on the way. q8 is round-to-nearest absmax (a scale search gains < 0.1 dB on real weights); q4
/// starts from ggml's d = m/−8 (m the weight of largest magnitude) and its rounding, refines d once
/// by least squares for those levels (d = Σxq / Σq²) and re-rounds. Smaller starting scales
/// (m/−8 · {0.95, 0.9, 0.85}, kept when their squared error was lower) clip the group maxima: on the
/// real Qwen2.5-0.5B they raised the text head's KL divergence from 0.102 to 0.160 (llama.cpp's Q4_0:
/// 0.117), though they lowered it on tiny.en's decoder (0.225 vs 0.233); kimi-parity measures both
/// (scripts/bench/kl_vs_llamacpp.sh).
/// `quantizeRowFast_ref` is the scalar twin: same operations in the same order, same bytes.
extension Quantizer {

    /// Quantizes (or converts) one row and returns its error against the source.
    public static func quantizeRowFast(
        _ x: UnsafePointer<Float>, count: Int, as dtype: DType, into dst: UnsafeMutableRawPointer
    ) -> TensorError {
        switch dtype {
        case .q8_g32_r8, .q8_g64_r8, .q8_g128_r8, .q4_g32_r8, .q4_g64_r8, .q4_g128_r8:
            preconditionFailure("quantize rows as \(dtype.plain.name), then RowInterleave.interleave")
        case .q4_g32: return q4Row(x, count, dst, V: 4)
        case .q4_g64: return q4Row(x, count, dst, V: 8)
        case .q4_g128: return q4Row(x, count, dst, V: 16)
        case .q8_g32: return q8Row(x, count, dst, V: 4)
        case .q8_g64: return q8Row(x, count, dst, V: 8)
        case .q8_g128: return q8Row(x, count, dst, V: 16)
        default: return quantizeRowFast_ref(x, count: count, as: dtype, into: dst)
        }
    }

    /// Lane sum in a fixed order (the scalar twin sums its 8 partials the same way).
    @inline(__always) static func laneSum(_ v: SIMD8<Float>) -> Float {
        ((v[0] + v[1]) + (v[2] + v[3])) + ((v[4] + v[5]) + (v[6] + v[7]))
    }

    /// The weight of largest magnitude (first one on ties), as ggml picks it.
    @inline(__always) static func signedMax(_ x: UnsafePointer<Float>, _ g: Int) -> Float {
        var amax: Float = 0, m: Float = 0
        for j in 0 ..< g where abs(x[j]) > amax {
            amax = abs(x[j])
            m = x[j]
        }
        return m
    }

    static func q4Row(_ src: UnsafePointer<Float>, _ count: Int, _ dst: UnsafeMutableRawPointer, V: Int) -> TensorError
    {
        let g = 8 * V, h = g / 2, bb = 2 + h
        var stats = TensorError()
        let lo = SIMD8<Float>(repeating: -8), hi = SIMD8<Float>(repeating: 7)
        for b in 0 ..< count / g {
            let x = src + b * g
            let m = signedMaxSIMD(x, V)
            // ggml's scale d₀ = m/−8 and its rounding, then d refined by least squares for those
            // levels (d = Σxq / Σq²); the final rounding below uses the refined, f16-rounded d.
            let d0 = m / -8
            let i0: Float = d0 != 0 ? 1 / d0 : 0
            var xq = SIMD8<Float>.zero, qq = SIMD8<Float>.zero
            for v in 0 ..< V {
                let t = load8(x + 8 * v)
                let a = clamp((t * i0).rounded(.toNearestOrEven), lo, hi)
                xq += t * a
                qq += a * a
            }
            let den = laneSum(qq)
            let bestD = floatToF16(den > 0 ? laneSum(xq) / den : d0)
            let blk = dst + b * bb
            blk.storeBytes(of: bestD, as: UInt16.self)
            let d = f16ToFloat(bestD)
            let id: Float = d != 0 ? 1 / d : 0
            var e = SIMD8<Float>.zero, s = SIMD8<Float>.zero, mx = SIMD8<Float>.zero
            for v in 0 ..< V / 2 {
                // Vector v holds weights 8v…8v+7 (low nibbles), vector v + V/2 the weights H later.
                let t0 = load8(x + 8 * v), t1 = load8(x + h + 8 * v)
                let q0 = clamp((t0 * id).rounded(.toNearestOrEven), lo, hi)
                let q1 = clamp((t1 * id).rounded(.toNearestOrEven), lo, hi)
                let r0 = t0 - q0 * d, r1 = t1 - q1 * d
                e += r0 * r0
                s += t0 * t0
                mx = vmax(mx, vmax(vabs(r0), vabs(r1)))
                storeNibbles(q0, q1, blk + 2 + 8 * v)
            }
            for v in V / 2 ..< V {
                let t = load8(x + 8 * v)
                let r = t - clamp((t * id).rounded(.toNearestOrEven), lo, hi) * d
                e += r * r
                s += t * t
            }
            stats.sumSquaredError += Double(laneSum(e))
            stats.sumSquaredSignal += Double(laneSum(s))
            stats.maxAbsError = max(stats.maxAbsError, Double(laneMax(mx)))
            stats.count += g
        }
        return stats
    }

    /// Small whole numbers held in floats → their integer bits, without a float→int conversion
    /// call: adding 1.5·2²³ puts the integer in the low mantissa bits.
    @inline(__always) static func intBits(_ v: SIMD8<Float>) -> SIMD8<UInt32> {
        unsafeBitCast(v + SIMD8<Float>(repeating: 12_582_912), to: SIMD8<UInt32>.self)
    }

    /// Eight bytes (q0 + 8) | (q1 + 8) << 4.
    @inline(__always) static func storeNibbles(_ q0: SIMD8<Float>, _ q1: SIMD8<Float>, _ p: UnsafeMutableRawPointer) {
        let eight = SIMD8<Float>(repeating: 8)
        let b = (intBits(q0 + eight) & 0xF) | ((intBits(q1 + eight) & 0xF) &<< 4)
        p.storeBytes(of: SIMD8<UInt8>(truncatingIfNeeded: b), as: SIMD8<UInt8>.self)
    }

    /// `signedMax` with the magnitude found eight lanes at a time; the scalar scan runs only when
    /// a positive and a negative weight tie for the largest magnitude (then the first one wins).
    @inline(__always) static func signedMaxSIMD(_ x: UnsafePointer<Float>, _ V: Int) -> Float {
        var mx = load8(x), mn = mx
        for v in 1 ..< V {
            let t = load8(x + 8 * v)
            mx = vmax(mx, t)
            mn.replace(with: t, where: t .< mn)
        }
        let hiv = laneMax(mx)
        let lov = -laneMax(-mn)
        if hiv > -lov { return hiv }
        if hiv < -lov { return lov }
        return signedMax(x, 8 * V)
    }

    static func q8Row(_ src: UnsafePointer<Float>, _ count: Int, _ dst: UnsafeMutableRawPointer, V: Int) -> TensorError
    {
        let g = 8 * V, bb = 2 + g
        var stats = TensorError()
        let lo = SIMD8<Float>(repeating: -127), hi = SIMD8<Float>(repeating: 127)
        for b in 0 ..< count / g {
            let x = src + b * g
            var am = SIMD8<Float>.zero
            for v in 0 ..< V { am = vmax(am, vabs(load8(x + 8 * v))) }
            let amax = laneMax(am)
            let d = amax / 127
            let id: Float = d != 0 ? 1 / d : 0
            let dh = floatToF16(d)
            let ds = f16ToFloat(dh)
            let blk = dst + b * bb
            blk.storeBytes(of: dh, as: UInt16.self)
            var e = SIMD8<Float>.zero, s = SIMD8<Float>.zero, mx = SIMD8<Float>.zero
            for v in 0 ..< V {
                let t = load8(x + 8 * v)
                let qq = clamp((t * id).rounded(.toNearestOrEven), lo, hi)
                (blk + 2 + 8 * v).storeBytes(of: SIMD8<UInt8>(truncatingIfNeeded: intBits(qq)), as: SIMD8<UInt8>.self)
                let r = t - qq * ds
                e += r * r
                s += t * t
                mx = vmax(mx, vabs(r))
            }
            stats.sumSquaredError += Double(laneSum(e))
            stats.sumSquaredSignal += Double(laneSum(s))
            stats.maxAbsError = max(stats.maxAbsError, Double(laneMax(mx)))
            stats.count += g
        }
        return stats
    }

    /// Scalar twin of `quantizeRowFast` (and the plain-type conversions it delegates here).
    public static func quantizeRowFast_ref(
        _ x: UnsafePointer<Float>, count: Int, as dtype: DType, into dst: UnsafeMutableRawPointer
    ) -> TensorError {
        var stats = TensorError()
        func lanes(_ f: (Int) -> Float, _ n: Int) -> Float {
            // 8 partial sums, lane l takes elements l, l+8, ...; reduced like laneSum.
            var p = [Float](repeating: 0, count: 8)
            for i in 0 ..< n { p[i % 8] += f(i) }
            return ((p[0] + p[1]) + (p[2] + p[3])) + ((p[4] + p[5]) + (p[6] + p[7]))
        }
        switch dtype {
        case .q8_g32_r8, .q8_g64_r8, .q8_g128_r8, .q4_g32_r8, .q4_g64_r8, .q4_g128_r8:
            preconditionFailure("quantize rows as \(dtype.plain.name), then RowInterleave.interleave")
        case .q4_g32, .q4_g64, .q4_g128:
            let g = dtype.groupSize, h = g / 2, bb = 2 + h
            for b in 0 ..< count / g {
                let xs = x + b * g
                let m = signedMax(xs, g)
                let d0 = m / -8
                let id0: Float = d0 != 0 ? 1 / d0 : 0
                let q0 = (0 ..< g).map { min(max((xs[$0] * id0).rounded(.toNearestOrEven), -8), 7) }
                let den = lanes({ q0[$0] * q0[$0] }, g)
                let bestD = floatToF16(den > 0 ? lanes({ xs[$0] * q0[$0] }, g) / den : d0)
                let ds = f16ToFloat(bestD)
                let id: Float = ds != 0 ? 1 / ds : 0
                let best = (0 ..< g).map { min(max((xs[$0] * id).rounded(.toNearestOrEven), -8), 7) }
                let bestErr = lanes(
                    {
                        let r = xs[$0] - best[$0] * ds
                        return r * r
                    }, g)
                let blk = dst + b * bb
                blk.storeBytes(of: bestD, as: UInt16.self)
                let d = f16ToFloat(bestD)
                for j in 0 ..< h {
                    blk.storeBytes(
                        of: UInt8(Int(best[j]) + 8) | (UInt8(Int(best[j + h]) + 8) << 4), toByteOffset: 2 + j,
                        as: UInt8.self)
                    stats.maxAbsError = max(
                        stats.maxAbsError, Double(abs(xs[j] - best[j] * d)), Double(abs(xs[j + h] - best[j + h] * d)))
                }
                stats.sumSquaredError += Double(bestErr)
                stats.sumSquaredSignal += Double(lanes({ xs[$0] * xs[$0] }, g))
                stats.count += g
            }
        case .q8_g32, .q8_g64, .q8_g128:
            let g = dtype.groupSize, bb = 2 + g
            for b in 0 ..< count / g {
                let xs = x + b * g
                var amax: Float = 0
                for j in 0 ..< g { amax = max(amax, abs(xs[j])) }
                let d = amax / 127
                let id: Float = d != 0 ? 1 / d : 0
                let dh = floatToF16(d), ds = f16ToFloat(dh)
                let blk = dst + b * bb
                blk.storeBytes(of: dh, as: UInt16.self)
                let q = (0 ..< g).map { min(max((xs[$0] * id).rounded(.toNearestOrEven), -127), 127) }
                for j in 0 ..< g {
                    blk.storeBytes(of: Int8(q[j]), toByteOffset: 2 + j, as: Int8.self)
                    stats.maxAbsError = max(stats.maxAbsError, Double(abs(xs[j] - q[j] * ds)))
                }
                stats.sumSquaredError += Double(
                    lanes(
                        {
                            let r = xs[$0] - q[$0] * ds
                            return r * r
                        }, g))
                stats.sumSquaredSignal += Double(lanes({ xs[$0] * xs[$0] }, g))
                stats.count += g
            }
        case .f32, .f16, .bf16:
            quantizeRow_ref(x, count: count, as: dtype, into: dst)
            var y = [Float](repeating: 0, count: count)
            y.withUnsafeMutableBufferPointer {
                dequantizeRow_ref(dtype, UnsafeRawPointer(dst), count: count, into: $0.baseAddress!)
            }
            for j in 0 ..< count {
                let r = Double(x[j]) - Double(y[j])
                stats.sumSquaredError += r * r
                stats.sumSquaredSignal += Double(x[j]) * Double(x[j])
                stats.maxAbsError = max(stats.maxAbsError, abs(r))
            }
            stats.count = count
        case .i32, .i64, .u8:
            preconditionFailure("quantizeRowFast_ref: \(dtype.name) is not a weight type")
        }
        return stats
    }
}
