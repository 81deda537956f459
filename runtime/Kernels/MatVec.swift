import KAF

/// y[r] = Σ_k W[r,k]·x[k] for r in `rows` (y indexed by absolute row), dispatched on the stored
/// type. Quantized weights use the integer path when `xq` (x quantized with
/// `quantizeActivations`) is given, else the float-dequant path on `x`.
public func matvec(_ w: WeightMatrix, x: UnsafePointer<Float>, xq: QuantizedActivations?, y: UnsafeMutablePointer<Float>, rows: Range<Int>) {
    switch w.dtype {
    case .f32: matvecF32(w, x, y, rows: rows)
    case .f16: matvecF16(w, x, y, rows: rows)
    case .bf16: matvecBF16(w, x, y, rows: rows)
    case .q4_g32, .q4_g64, .q4_g128:
        if let xq { matvecQ4(w, xq, y, rows: rows) } else { matvecQuantFloat(w, x, y, rows: rows) }
    case .q8_g32, .q8_g64, .q8_g128:
        if let xq { matvecQ8(w, xq, y, rows: rows) } else { matvecQuantFloat(w, x, y, rows: rows) }
    case .q4_g32_r8, .q4_g64_r8, .q4_g128_r8, .q8_g32_r8, .q8_g64_r8, .q8_g128_r8:
        guard let xq else { preconditionFailure("matvec: \(w.dtype.name) needs quantized activations") }
        matvecR8(w, xq, y, rows: rows)
    case .i32, .i64, .u8:
        preconditionFailure("matvec: \(w.dtype.name) is not a weight type")
    }
}
