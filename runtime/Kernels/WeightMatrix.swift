import KAF

/// A 2-D weight [rows, cols] in its stored type, read in place (usually straight from the mmapped
/// .kaf): row r starts at `base + r·rowBytes`. Quantized rows are `cols / group` blocks.
public struct WeightMatrix: @unchecked Sendable {
    public let base: UnsafeRawPointer
    public let dtype: DType
    public let rows: Int
    public let cols: Int
    public let rowBytes: Int

    /// nil when the type is not a weight type or `cols` is not a whole number of groups.
    public init?(base: UnsafeRawPointer, dtype: DType, rows: Int, cols: Int) {
        guard dtype.isFloat || dtype.isQuantized, rows >= 0, cols >= 0,
              let rb = dtype.plain.byteCount(shape: [cols]), rows % dtype.traits.interleave == 0 else { return nil }
        self.base = base; self.dtype = dtype; self.rows = rows; self.cols = cols; self.rowBytes = rb
    }

    /// A 2-D tensor of a .kaf file ([out, in], PyTorch order).
    public init?(_ t: KAFTensor) {
        guard t.shape.count == 2 else { return nil }
        self.init(base: t.data, dtype: t.dtype, rows: t.shape[0], cols: t.shape[1])
    }

    /// Row r of a row-major matrix (the `_r8` types have no rows of their own: `rowGroup`).
    @inline(__always) public func row(_ r: Int) -> UnsafeRawPointer { base + r * rowBytes }

    /// Rows 8i…8i+7 of an `_r8` matrix: its tiles, one per group column (`RowInterleave`).
    @inline(__always) public func rowGroup(_ i: Int) -> UnsafeRawPointer { base + i * RowInterleave.rows * rowBytes }

    /// Rows come in units of this many (8 for the `_r8` types): row ranges handed to the kernels
    /// start and end on a multiple of it.
    public var rowQuantum: Int { dtype.traits.interleave }

    /// Rows `range` as their own matrix (a head slice, one expert, …); no copy.
    public func rows(_ range: Range<Int>) -> WeightMatrix {
        precondition(range.lowerBound % rowQuantum == 0 && range.count % rowQuantum == 0, "row slice of \(dtype.name) not in whole groups of 8")
        return WeightMatrix(base: base + range.lowerBound * rowBytes, dtype: dtype, rows: range.count, cols: cols)!
    }

    /// The integer kernels want the activations quantized per 32 (`QuantizedActivations`).
    public var wantsQuantizedInput: Bool { dtype.isQuantized }

    /// Bytes a full pass over the matrix reads.
    public var byteCount: Int { rows * rowBytes }
}
