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
    case .q8_g32_r8, .q8_g64_r8, .q8_g128_r8, .q4_g32_r8, .q4_g64_r8, .q4_g128_r8:
        preconditionFailure("dequantizeRow_ref: \(dtype.name) rows are interleaved; use dequantizeRow_ref(_:matrix:cols:row:into:)")
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

/// Row `r` of a 2-D matrix of any weight type starting at `base` (`_r8` types read across the tiles).
public func dequantizeRow_ref(_ dtype: DType, matrix base: UnsafeRawPointer, cols: Int, row r: Int, into dst: UnsafeMutablePointer<Float>) {
    guard dtype.isInterleaved else {
        return dequantizeRow_ref(dtype, base + r * dtype.byteCount(shape: [cols])!, count: cols, into: dst)
    }
    // Straight from the tiles (no scratch): scale at 2·i, quant byte k at 16 + 32·(k/4) + 4·i + k%4.
    let plain = dtype.plain, n = RowInterleave.rows, g = plain.groupSize, bb = plain.traits.blockBytes
    let i = r % n, group = base + (r / n) * n * (cols / g) * bb
    for b in 0 ..< cols / g {
        let tile = group + b * n * bb
        let d = f16ToFloat(tile.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
        @inline(__always) func byte(_ k: Int) -> UInt8 { tile.load(fromByteOffset: 2 * n + 32 * (k / 4) + 4 * i + k % 4, as: UInt8.self) }
        if plain.traits.quantBits == 8 {
            for j in 0 ..< g { dst[b * g + j] = d * Float(Int8(bitPattern: byte(j))) }
        } else {
            let h = g / 2
            for j in 0 ..< h {
                let q = byte(j)
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
    out.withUnsafeMutableBufferPointer { o in
        if t.dtype.isInterleaved {
            let rows = t.shape[0], cols = t.shape[1]
            for r in 0 ..< rows { dequantizeRow_ref(t.dtype, matrix: t.data, cols: cols, row: r, into: o.baseAddress! + r * cols) }
        } else {
            dequantizeRow_ref(t.dtype, t.data, count: n, into: o.baseAddress!)
        }
    }
    return out
}
