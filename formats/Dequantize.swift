/// Scalar reference decoding of every stored type to Float: the oracle the SIMD kernels and the
/// parity report are checked against. `src` points at the first block/element of a row of `count`
/// weights (for quantized types `count` is a multiple of the group).
public func dequantizeRow_ref(_ dtype: DType, _ src: UnsafeRawPointer, count: Int, into dst: UnsafeMutablePointer<Float>) {
    switch dtype {
    case .f32:
        for i in 0 ..< count { dst[i] = src.loadUnaligned(fromByteOffset: 4 * i, as: Float.self) }
    case .f16:
        for i in 0 ..< count { dst[i] = f16ToFloat(src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) }
    case .bf16:
        for i in 0 ..< count { dst[i] = bf16ToFloat(src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) }
    case .i32:
        for i in 0 ..< count { dst[i] = Float(src.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self)) }
    case .i64:
        for i in 0 ..< count { dst[i] = Float(src.loadUnaligned(fromByteOffset: 8 * i, as: Int64.self)) }
    case .u8:
        for i in 0 ..< count { dst[i] = Float(src.load(fromByteOffset: i, as: UInt8.self)) }
    case .q8_g32, .q8_g64, .q8_g128:
        let g = dtype.groupSize, bb = dtype.traits.blockBytes
        for b in 0 ..< count / g {
            let blk = src + b * bb
            let d = f16ToFloat(blk.loadUnaligned(as: UInt16.self))
            for j in 0 ..< g { dst[b * g + j] = d * Float(blk.load(fromByteOffset: 2 + j, as: Int8.self)) }
        }
    case .q4_g32, .q4_g64, .q4_g128:
        let g = dtype.groupSize, h = g / 2, bb = dtype.traits.blockBytes
        for b in 0 ..< count / g {
            let blk = src + b * bb
            let d = f16ToFloat(blk.loadUnaligned(as: UInt16.self))
            for j in 0 ..< h {
                let q = blk.load(fromByteOffset: 2 + j, as: UInt8.self)
                dst[b * g + j] = d * Float(Int(q & 0x0F) - 8)
                dst[b * g + j + h] = d * Float(Int(q >> 4) - 8)
            }
        }
    }
}

/// All of a tensor's elements as Float (tests, parity, small tensors; not for the token loop).
public func dequantize(_ t: KAFTensor) -> [Float] {
    let n = t.entry.elementCount
    var out = [Float](repeating: 0, count: n)
    out.withUnsafeMutableBufferPointer { dequantizeRow_ref(t.dtype, t.data, count: n, into: $0.baseAddress!) }
    return out
}
