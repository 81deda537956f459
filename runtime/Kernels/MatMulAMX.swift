import CKernelsAMX
import KAF

#if canImport(Glibc)
import Glibc
#endif

/// The CPU has AMX with bf16 tiles (amx_tile, amx_bf16 and avx512_bf16 in /proc/cpuinfo), the
/// kernel granted this process the tile state, and one tile step ran in a child process
/// (kimi_amx_enable); KIMI_NO_AMX=1 turns the AMX tiles off.
public let cpuHasAMX: Bool = {
    #if arch(x86_64) && os(Linux)
    if let v = getenv("KIMI_NO_AMX"), String(cString: v) == "1" { return false }
    let needed = ["amx_tile", "amx_bf16", "avx512_bf16", "avx512f", "avx512bw", "avx512vl", "f16c"]
    return needed.allSatisfy(cpuFlags.contains) && kimi_amx_enable() == 1
    #else
    return false
    #endif
}()

/// Batches of at least this many tokens take the AMX tiles: the weights are widened to bf16 once
/// per call, which the tiles repay only over enough tokens (scripts/bench/kernels.sh).
public let amxMinTokens = 32

/// Whether `linearBatch` runs W on AMX for a batch of T tokens: quantized `_r8` weights, and f16/bf16
/// weights when `floats` (components the official code runs in bf16: the vocoder). f32 weights and
/// other float weights keep sgemm's f32 products (the f32 parity tests hold them to 1e-3; the plain
/// Whisper decoder's f16 is what keeps its transcripts).
public func matmulUsesAMX(_ w: WeightMatrix, tokens T: Int, floats: Bool = false) -> Bool {
    guard cpuHasAMX, T >= amxMinTokens, w.cols % 32 == 0 else { return false }
    if w.dtype.isQuantized { return w.dtype.isInterleaved }
    return floats && (w.dtype == .f16 || w.dtype == .bf16)
}

/// Activations rounded to bf16 for the AMX tiles: `rows` tokens of `cols`, stored tile by tile
/// (16 tokens × 32 columns per KiB, kimi_amx.h), in blocks of 16 tokens: the tokens from `rows` to
/// `paddedRows` are left as they are (their output rows are not stored).
public struct BF16Activations {
    public let values: UnsafeMutablePointer<UInt16>
    public let rows, paddedRows, cols: Int

    public static func paddedRows(_ T: Int) -> Int { (T + 15) / 16 * 16 }
    public static func scratchBytes(rows: Int, cols: Int) -> Int { 2 * paddedRows(rows) * cols }

    /// `scratch`: `scratchBytes(rows:cols:)` bytes, 64-byte aligned.
    public init(scratch: UnsafeMutableRawPointer, rows: Int, cols: Int) {
        precondition(cols % 32 == 0)
        values = scratch.bindMemory(to: UInt16.self, capacity: Self.paddedRows(rows) * cols)
        (self.rows, self.paddedRows, self.cols) = (rows, Self.paddedRows(rows), cols)
    }

    /// Tokens `range` of X (row stride ldx) rounded to nearest even; the caller covers 0..<rows.
    public func set(_ X: UnsafePointer<Float>, ldx: Int, tokens range: Range<Int>) {
        kimi_amx_bf16_rows(
            X + range.lowerBound * ldx, ldx, Int32(range.lowerBound), Int32(range.count), Int32(cols), values)
    }
}

/// bf16 elements of panel scratch `matmulAMX` needs per thread for weights of `cols` columns.
public func matmulAMXPanelCount(cols: Int) -> Int { 32 * cols }

/// Y[t, r] = Σ_k bf16(W[r,k])·A[t,k] in f32, for rows `rows` of a q8/q4 `_r8` matrix (whole groups
/// of 8) or an f16/bf16 one: 32 rows at a time widened into `panel` (matmulAMXPanelCount, 64-byte
/// aligned), then AMX tiles of 32 tokens × 32 rows. Only where `cpuHasAMX`.
public func matmulAMX(
    _ w: WeightMatrix, _ a: BF16Activations, _ Y: UnsafeMutablePointer<Float>, ldy: Int, rows: Range<Int>,
    panel: UnsafeMutablePointer<UInt16>
) {
    precondition(cpuHasAMX && a.cols == w.cols)
    if rows.isEmpty || a.rows == 0 { return }
    if w.dtype.isQuantized {
        precondition(w.dtype.isInterleaved && rows.lowerBound % 8 == 0 && rows.upperBound % 8 == 0)
        kimi_amx_matmul_r8(
            w.base, 8 * w.rowBytes, w.dtype.traits.quantBits == 4 ? 1 : 0, Int32(w.dtype.groupSize), Int32(w.cols),
            Int32(rows.lowerBound / 8), Int32(rows.upperBound / 8), a.values, Int32(a.rows), Int32(a.paddedRows), Y,
            ldy, panel)
    } else {
        precondition(w.dtype == .f16 || w.dtype == .bf16)
        kimi_amx_matmul_f16(
            w.base, w.rowBytes, w.dtype == .bf16 ? 1 : 0, Int32(w.cols), Int32(rows.lowerBound), Int32(rows.upperBound),
            a.values, Int32(a.rows), Int32(a.paddedRows), Y, ldy, panel)
    }
}

/// Scalar twin: each weight dequantized (dequantizeRow_ref), both sides rounded to bf16, products
/// summed in f32 in column order.
public func matmulAMX_ref(
    _ w: WeightMatrix, _ X: UnsafePointer<Float>, ldx: Int, tokens T: Int, _ Y: UnsafeMutablePointer<Float>,
    ldy: Int, rows: Range<Int>
) {
    let K = w.cols
    let row = UnsafeMutablePointer<Float>.allocate(capacity: K)
    defer { row.deallocate() }
    for r in rows {
        dequantizeRow_ref(w.dtype, matrix: w.base, cols: K, row: r, into: row)
        for k in 0 ..< K { row[k] = bf16ToFloat(floatToBF16(row[k])) }
        for t in 0 ..< T {
            var s: Float = 0
            for k in 0 ..< K { s += row[k] * bf16ToFloat(floatToBF16(X[t * ldx + k])) }
            Y[t * ldy + r] = s
        }
    }
}
