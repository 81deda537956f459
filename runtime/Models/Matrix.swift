import KAF

extension WeightMatrix {
    /// The matrix `name` of `f`, or an error naming the file when it is not a 2-D weight.
    public static func load(_ f: KAFFile, _ name: String) throws -> WeightMatrix {
        let t = try f.tensor(name)
        guard let w = WeightMatrix(t) else {
            throw FormatError(f.path, "'\(name)' is \(t.dtype.name) \(t.shape), expected a 2-D weight")
        }
        return w
    }

    /// Row `r` as floats (embedding lookups).
    public func dequantizeRow(_ r: Int, into out: UnsafeMutablePointer<Float>) {
        if dtype.isInterleaved { dequantizeRow_ref(dtype, matrix: base, cols: cols, row: r, into: out) } else { dequantizeRow_ref(dtype, row(r), count: cols, into: out) }
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
