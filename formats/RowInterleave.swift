/// The `_r8` layouts: the blocks of a row-major q8/q4 matrix, 8 rows interleaved (formats/KAF.md).
///
/// A row group (rows 8i … 8i+7) is stored as one *tile* per group column g: the 8 rows' f16
/// scales (16 bytes, row order), then the 8 rows' quant bytes of that block in 4-byte chunks,
/// chunk-major: byte k of row r's block sits at 16 + 32·(k/4) + 4·r + k%4. A tile is therefore
/// 8 × blockBytes, the file the same size as row-major, and one 32-byte load holds 4 consecutive
/// bytes of each of the 8 rows — one int32 lane per row, so a broadcast activation dword and one
/// vpmaddubsw/vpdpbusd give 8 rows' partial dot products with no horizontal sums, and the 8 scales
/// convert in one vcvtph2ps (the same idea as llama.cpp's run-time repack to q4_0_8x8; here the
/// converter writes it once, so the runtime still reads the file in place).
public enum RowInterleave {
    public static let rows = 8
    public static let chunk = 4

    /// Eight row-major rows (row r at `src + r·srcStride`) → one interleaved row group at `dst`.
    public static func interleave(_ plain: DType, cols: Int, rowsAt src: UnsafeRawPointer, stride srcStride: Int,
                                  into dst: UnsafeMutableRawPointer) {
        let bb = plain.traits.blockBytes, q = bb - 2
        for g in 0 ..< cols / plain.groupSize {
            let tile = dst + g * rows * bb
            for r in 0 ..< rows {
                let blk = src + r * srcStride + g * bb
                tile.storeBytes(of: blk.loadUnaligned(as: UInt16.self), toByteOffset: 2 * r, as: UInt16.self)
                for c in 0 ..< q / chunk {
                    tile.storeBytes(of: blk.loadUnaligned(fromByteOffset: 2 + chunk * c, as: UInt32.self),
                                    toByteOffset: 2 * rows + 32 * c + chunk * r, as: UInt32.self)
                }
            }
        }
    }

    /// Row `r` (0..<8) of the interleaved row group at `src` → its row-major blocks at `dst`.
    public static func deinterleave(_ plain: DType, cols: Int, groupAt src: UnsafeRawPointer, row r: Int,
                                    into dst: UnsafeMutableRawPointer) {
        let bb = plain.traits.blockBytes, q = bb - 2
        for g in 0 ..< cols / plain.groupSize {
            let tile = src + g * rows * bb, blk = dst + g * bb
            blk.storeBytes(of: tile.loadUnaligned(fromByteOffset: 2 * r, as: UInt16.self), as: UInt16.self)
            for c in 0 ..< q / chunk {
                blk.storeBytes(of: tile.loadUnaligned(fromByteOffset: 2 * rows + 32 * c + chunk * r, as: UInt32.self),
                               toByteOffset: 2 + chunk * c, as: UInt32.self)
            }
        }
    }
}
