import KAF

/// A weight read in place from the .kaf mapping: [rows, cols] in its stored type.
public struct Matrix: @unchecked Sendable {
    public let data: UnsafeRawPointer
    public let dtype: DType
    public let rows: Int
    public let cols: Int
    public let rowBytes: Int

    public init(_ t: KAFTensor, name: String, file: String) throws {
        guard t.shape.count == 2 else { throw FormatError(file, "'\(name)' has shape \(t.shape), expected a matrix") }
        guard t.dtype.isFloat || t.dtype.isQuantized else { throw FormatError(file, "'\(name)' has type \(t.dtype.name), expected weights") }
        data = t.data; dtype = t.dtype; rows = t.shape[0]; cols = t.shape[1]
        rowBytes = t.dtype.byteCount(shape: [t.shape[1]])!
    }

    @inline(__always) public func row(_ r: Int) -> UnsafeRawPointer { data + r * rowBytes }

    /// Row `r` as floats (embedding lookups).
    public func dequantizeRow(_ r: Int, into out: UnsafeMutablePointer<Float>) {
        dequantizeRow_ref(dtype, row(r), count: cols, into: out)
    }
}

/// A 1-D float vector from the file (norm weights, biases), as f32.
public struct Vector: @unchecked Sendable {
    public let values: [Float]
    public init(_ t: KAFTensor, name: String, file: String, count: Int) throws {
        guard t.shape == [count] else { throw FormatError(file, "'\(name)' has shape \(t.shape), expected [\(count)]") }
        values = dequantize(t)
    }
}
