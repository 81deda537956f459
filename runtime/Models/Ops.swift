import KAF
#if canImport(Glibc)
import Glibc
#endif

/// The operations the model forward passes use, each a short reference loop. The SIMD kernels
/// (runtime/Kernels) replace the hot ones behind these names; these stay the oracle.
public enum Ops {
    /// y[r] = W[r,:]·x (+ b[r]) for every row; `scratch` holds one dequantized row.
    public static func linear(_ w: WeightMatrix, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                              bias: [Float]? = nil, scratch: UnsafeMutablePointer<Float>) {
        for r in 0 ..< w.rows {
            w.dequantizeRow(r, into: scratch)
            var s: Float = 0
            for k in 0 ..< w.cols { s += scratch[k] * x[k] }
            y[r] = s + (bias?[r] ?? 0)
        }
    }

    /// Qwen2RMSNorm: x · rsqrt(mean(x²) + eps) · weight.
    public static func rmsNorm(_ x: UnsafePointer<Float>, _ w: [Float], eps: Float, _ out: UnsafeMutablePointer<Float>, count n: Int) {
        var ss: Float = 0
        for i in 0 ..< n { ss += x[i] * x[i] }
        let scale = 1 / (ss / Float(n) + eps).squareRoot()
        for i in 0 ..< n { out[i] = x[i] * scale * w[i] }
    }

    /// LayerNorm with affine weight and bias.
    public static func layerNorm(_ x: UnsafePointer<Float>, _ w: [Float], _ b: [Float], eps: Float, _ out: UnsafeMutablePointer<Float>, count n: Int) {
        var mean: Float = 0
        for i in 0 ..< n { mean += x[i] }
        mean /= Float(n)
        var v: Float = 0
        for i in 0 ..< n { v += (x[i] - mean) * (x[i] - mean) }
        let inv = 1 / (v / Float(n) + eps).squareRoot()
        for i in 0 ..< n { out[i] = (x[i] - mean) * inv * w[i] + b[i] }
    }

    /// Rotate-half RoPE on `heads` heads of `headDim` at position `pos` (HF/NeoX layout).
    public static func ropeHalf(_ x: UnsafeMutablePointer<Float>, heads: Int, headDim: Int, pos: Int, invFreq: [Float]) {
        let half = headDim / 2
        for i in 0 ..< half {
            let a = Float(pos) * invFreq[i]
            let c = cos(a), s = sin(a)
            for h in 0 ..< heads {
                let p = x + h * headDim
                let x1 = p[i], x2 = p[i + half]
                p[i] = x1 * c - x2 * s
                p[i + half] = x2 * c + x1 * s
            }
        }
    }

    @inline(__always) public static func silu(_ x: Float) -> Float { x / (1 + exp(-x)) }

    public static func softmax(_ x: UnsafeMutablePointer<Float>, count n: Int) {
        var m = -Float.infinity
        for i in 0 ..< n { m = max(m, x[i]) }
        var s: Float = 0
        for i in 0 ..< n { x[i] = exp(x[i] - m); s += x[i] }
        for i in 0 ..< n { x[i] /= s }
    }
}
