import Testing
import Foundation
import KAF
@testable import KimiConvert
@testable import KimiRuntime

/// SplitMix64: fixed-seed random numbers for the kernel tests (no Foundation RNG, same on every run).
struct KernelRNG {
    private var g: SplitMix64   // the runtime's generator (runtime/Pipelines/Sampler.swift)
    init(seed: UInt64) { g = SplitMix64(seed: seed) }
    mutating func next() -> UInt64 { g.next() }
    /// Uniform in [-1, 1).
    mutating func uniform() -> Float { Float(next() >> 40) / Float(1 << 23) - 1 }
    /// Roughly normal (sum of 4 uniforms), scaled.
    mutating func normal(_ s: Float = 1) -> Float { s * (uniform() + uniform() + uniform() + uniform()) * 0.866 }
}

/// Heap buffers freed at the end of a test.
final class KernelBuffers {
    private var ptrs: [UnsafeMutableRawPointer] = []
    func floats(_ n: Int) -> UnsafeMutablePointer<Float> {
        let p = UnsafeMutableRawPointer.allocate(byteCount: max(4 * n, 64), alignment: 64)
        p.initializeMemory(as: UInt8.self, repeating: 0, count: max(4 * n, 64))
        ptrs.append(p)
        return p.bindMemory(to: Float.self, capacity: n)
    }
    func random(_ n: Int, _ rng: inout KernelRNG, scale: Float = 1) -> UnsafeMutablePointer<Float> {
        let p = floats(n)
        for i in 0 ..< n { p[i] = rng.normal(scale) }
        return p
    }
    func bytes(_ n: Int) -> UnsafeMutableRawPointer {
        let p = UnsafeMutableRawPointer.allocate(byteCount: max(n, 64), alignment: 64)
        p.initializeMemory(as: UInt8.self, repeating: 0, count: max(n, 64))
        ptrs.append(p)
        return p
    }
    /// A [rows, cols] weight: random normal values stored as `dtype` with the converter's quantizer.
    /// Rows are packed with an odd byte offset from the 64-byte boundary (+2) so kernels see
    /// unaligned rows, as in a .kaf file.
    func weight(_ dtype: DType, rows: Int, cols: Int, _ rng: inout KernelRNG, scale: Float = 0.05) -> WeightMatrix {
        let rb = dtype.byteCount(shape: [cols])!
        let base = bytes(rows * rb + 2) + 2
        let src = floats(cols)
        for r in 0 ..< rows {
            for k in 0 ..< cols { src[k] = rng.normal(scale) }
            _ = Quantizer.quantizeRowFast(src, count: cols, as: dtype, into: base + r * rb)
        }
        return WeightMatrix(base: base, dtype: dtype, rows: rows, cols: cols)!
    }
    /// Bound on the f32 rounding of Σ_k W[r,k]·x[k] summed in any order: (cols/8 + 16)·ε·Σ|W[r,k]·x[k]|,
    /// with row r dequantized into `tmp` (cols floats; left holding the row).
    func sumBound(_ w: WeightMatrix, row r: Int, _ x: UnsafePointer<Float>, tmp: UnsafeMutablePointer<Float>) -> Float {
        dequantizeRow_ref(w.dtype, matrix: w.base, cols: w.cols, row: r, into: tmp)
        var mag: Float = 0
        for k in 0 ..< w.cols { mag += abs(tmp[k] * x[k]) }
        return Float(w.cols / 8 + 16) * Float.ulpOfOne * mag
    }
    /// The same random matrix row-major (`plain`) and 8-row interleaved (`r8`, as kimi-convert writes it).
    func weightPair(_ plain: DType, rows: Int, cols: Int, _ rng: inout KernelRNG) -> (plain: WeightMatrix, r8: WeightMatrix) {
        let w = weight(plain, rows: rows, cols: cols, &rng)
        let base = bytes(w.byteCount + 2) + 2
        for i in 0 ..< rows / 8 {
            RowInterleave.interleave(plain, cols: cols, rowsAt: w.row(8 * i), stride: w.rowBytes, into: base + 8 * i * w.rowBytes)
        }
        return (w, WeightMatrix(base: base, dtype: plain.interleaved!, rows: rows, cols: cols)!)
    }
    func quantized(count: Int, rows: Int = 1) -> QuantizedActivations {
        QuantizedActivations(scratch: bytes(QuantizedActivations.scratchBytes(count: count, rows: rows)), count: count, rows: rows)
    }
    deinit { for p in ptrs { p.deallocate() } }
}

let kernelQuantTypes: [DType] = [.q4_g32, .q4_g64, .q4_g128, .q8_g32, .q8_g64, .q8_g128]
let kernelFloatTypes: [DType] = [.f32, .f16, .bf16]
