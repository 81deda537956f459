import KAF

/// Loads a component's weights from a .kaf by their architecture-table entries
/// (formats/Architecture), in place from the mapped file, checking each shape at load
/// (docs/ARCHITECTURE.md §4.4). Errors are one line naming the file, the tensor, the expected and
/// the found shape.
public struct WeightLoader {
    public let file: KAFFile

    public init(_ file: KAFFile) { self.file = file }

    /// Whether the file stores `spec` (e.g. an untied head).
    public func has(_ spec: TensorSpec) -> Bool { file.entry(spec.name) != nil }

    /// A 2-D weight [rows, cols] read in place.
    public func matrix(_ spec: TensorSpec) throws -> WeightMatrix {
        guard spec.shape.count == 2 else { preconditionFailure("\(spec.name): the table gives \(spec.shape), not 2-D") }
        return try matrix(spec.name, rows: spec.shape[0], cols: spec.shape[1])
    }

    public func matrix(_ name: String, rows: Int, cols: Int) throws -> WeightMatrix {
        let t = try file.tensor(name)
        guard t.shape == [rows, cols] else { throw mismatch(name, t, expected: [rows, cols]) }
        guard let w = WeightMatrix(t) else {
            throw FormatError(file.path, "tensor '\(name)' is \(t.dtype.name) \(t.shape), expected a 2-D weight")
        }
        return w
    }

    /// A linear layer: weight `w` ([out, in]) and, when given, its bias ([out]).
    public func linear(_ w: TensorSpec, bias: TensorSpec? = nil) throws -> Linear {
        Linear(weight: try matrix(w), bias: try bias.map { try vector($0) })
    }

    /// A convolution weight [out, in, k] (+ bias [out]) as the `Linear` of its im2col form
    /// ([out, in·k], runtime/Kernels/Conv.swift).
    public func convolution(_ w: TensorSpec, bias: TensorSpec?) throws -> Linear {
        let t = try file.tensor(w.name)
        guard t.shape == w.shape, w.shape.count == 3 else { throw mismatch(w.name, t, expected: w.shape) }
        guard let m = WeightMatrix(base: t.data, dtype: t.dtype, rows: w.shape[0], cols: w.shape[1] * w.shape[2]) else {
            throw FormatError(
                file.path, "tensor '\(w.name)' is \(t.dtype.name) \(t.shape), expected a convolution weight")
        }
        return Linear(weight: m, bias: try bias.map { try vector($0) })
    }

    /// Any float tensor of exactly `spec.shape`, as f32 (position tables, filter banks).
    public func values(_ spec: TensorSpec) throws -> [Float] {
        let t = try file.tensor(spec.name)
        guard t.shape == spec.shape else { throw mismatch(spec.name, t, expected: spec.shape) }
        return dequantize(t)
    }

    /// A 1-D vector (norm weight, bias) as f32.
    public func vector(_ spec: TensorSpec) throws -> [Float] {
        guard spec.shape.count == 1 else { preconditionFailure("\(spec.name): the table gives \(spec.shape), not 1-D") }
        return try vector(spec.name, count: spec.shape[0])
    }

    public func vector(_ name: String, count: Int) throws -> [Float] {
        let t = try file.tensor(name)
        guard t.shape == [count] else { throw mismatch(name, t, expected: [count]) }
        return dequantize(t)
    }

    func mismatch(_ name: String, _ t: KAFTensor, expected: [Int]) -> FormatError {
        FormatError(file.path, "tensor '\(name)' is \(t.dtype.name) \(t.shape), the config implies \(expected)")
    }
}

/// y = W·x (+ b): a weight read in place and its bias as f32 (`Compute.linear` runs it).
public struct Linear: @unchecked Sendable {
    public let weight: WeightMatrix
    public let bias: [Float]?
}
