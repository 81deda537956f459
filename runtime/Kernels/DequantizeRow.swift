import KAF
import KimiSIMD

extension WeightMatrix {
    /// Row `r` as f32 (embedding lookups, prefill widening), any stored type; the same values as
    /// the scalar twin `dequantizeRow_ref` (formats/Dequantize.swift): every conversion is exact.
    public func dequantizeRow(_ r: Int, into dst: UnsafeMutablePointer<Float>) {
        KimiRuntime.dequantizeRow(self, row: r, into: dst)
    }
}

@inline(__always) func dequantizeRow(_ w: WeightMatrix, row r: Int, into dst: UnsafeMutablePointer<Float>) {
    switch w.dtype {
    case .f32: widenFloatRow(_LoadF32.self, w.row(r), w.cols, dst)
    case .f16: widenFloatRow(_LoadF16.self, w.row(r), w.cols, dst)
    case .bf16: widenFloatRow(_LoadBF16.self, w.row(r), w.cols, dst)
    case .q4_g32, .q4_g64, .q4_g128, .q8_g32, .q8_g64, .q8_g128: dequantizeRowFast(w.dtype, w.row(r), w.cols, dst)
    case .q4_g32_r8, .q4_g64_r8, .q4_g128_r8, .q8_g32_r8, .q8_g64_r8, .q8_g128_r8: dequantizeRowR8Fast(w, r, dst)
    case .i32, .i64, .u8: preconditionFailure("dequantizeRow: \(w.dtype.name) is not a weight type")
    }
}

@inline(__always) func widenFloatRow<L: _FloatRowLoader>(
    _: L.Type, _ p: UnsafeRawPointer, _ n: Int, _ dst: UnsafeMutablePointer<Float>
) {
    var k = 0
    while k + 8 <= n {
        store8(dst + k, L.load8(p, k))
        k += 8
    }
    while k < n {
        dst[k] = L.load1(p, k)
        k += 1
    }
}
