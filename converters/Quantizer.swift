import KAF

/// Round-to-nearest quantization of one row into the .kaf block layouts (formats/KAF.md). The
/// rounding is ggml's reference (`quantize_row_q8_0_ref`, `quantize_row_q4_0_ref`), so at group 32
/// the bytes equal ggml's and gguf-py's exactly; the tests check that against gguf-py's output.
public enum Quantizer {
    /// Encodes `count` floats (a multiple of the group) as `dtype` into `dst`
    /// (dtype.byteCount(shape: [count]) bytes).
    public static func quantizeRow_ref(_ src: UnsafePointer<Float>, count: Int, as dtype: DType, into dst: UnsafeMutableRawPointer) {
        switch dtype {
        case .q8_g32_r8, .q8_g64_r8, .q8_g128_r8, .q4_g32_r8, .q4_g64_r8, .q4_g128_r8:
            preconditionFailure("quantize rows as \(dtype.plain.name), then RowInterleave.interleave")
        case .f32:
            dst.copyMemory(from: src, byteCount: 4 * count)
        case .f16:
            for i in 0 ..< count { dst.storeBytes(of: floatToF16(src[i]), toByteOffset: 2 * i, as: UInt16.self) }
        case .bf16:
            for i in 0 ..< count { dst.storeBytes(of: floatToBF16(src[i]), toByteOffset: 2 * i, as: UInt16.self) }
        case .q8_g32, .q8_g64, .q8_g128:
            let g = dtype.groupSize, bb = dtype.traits.blockBytes
            for b in 0 ..< count / g {
                let x = src + b * g, blk = dst + b * bb
                var amax: Float = 0
                for j in 0 ..< g { amax = max(amax, abs(x[j])) }
                let d = amax / 127
                let id: Float = d != 0 ? 1 / d : 0
                blk.storeBytes(of: floatToF16(d), as: UInt16.self)
                for j in 0 ..< g {
                    // roundf: half away from zero, as ggml.
                    blk.storeBytes(of: Int8(clamping: safeInt((x[j] * id).rounded(.toNearestOrAwayFromZero))), toByteOffset: 2 + j, as: Int8.self)
                }
            }
        case .q4_g32, .q4_g64, .q4_g128:
            let g = dtype.groupSize, h = g / 2, bb = dtype.traits.blockBytes
            for b in 0 ..< count / g {
                let x = src + b * g, blk = dst + b * bb
                var amax: Float = 0, m: Float = 0
                for j in 0 ..< g where abs(x[j]) > amax { amax = abs(x[j]); m = x[j] }
                let d = m / -8
                let id: Float = d != 0 ? 1 / d : 0
                blk.storeBytes(of: floatToF16(d), as: UInt16.self)
                for j in 0 ..< h {
                    // (int8_t)(x*id + 8.5f): truncation toward zero, then MIN(15, ·), as ggml.
                    let q0 = min(15, Int(Int8(clamping: safeInt((x[j] * id + 8.5).rounded(.towardZero)))))
                    let q1 = min(15, Int(Int8(clamping: safeInt((x[j + h] * id + 8.5).rounded(.towardZero)))))
                    blk.storeBytes(of: UInt8(max(0, q0)) | (UInt8(max(0, q1)) << 4), toByteOffset: 2 + j, as: UInt8.self)
                }
            }
        case .i32, .i64, .u8:
            preconditionFailure("quantizeRow_ref: \(dtype.name) is not a weight type")
        }
    }
}

/// Float → Int that cannot trap (NaN → 0, huge → clamped); the converter rejects non-finite
/// weights before they get here, this only keeps the reference total.
@inline(__always) func safeInt(_ f: Float) -> Int {
    f.isNaN ? 0 : Int(min(max(f, -1e9), 1e9))
}
