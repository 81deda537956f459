/// Tensors of a `torch.save` checkpoint: a typed storage (a zip entry, read in place) and a strided
/// view of it. All geometry is validated when the tensor is built, so readers can index freely.

public enum TorchDType: String, Sendable, CaseIterable {
    case f32, f16, bf16, f64, i64, i32, i16, i8, u8, bool

    public var size: Int {
        switch self {
        case .f64, .i64: 8
        case .f32, .i32: 4
        case .f16, .bf16, .i16: 2
        case .i8, .u8, .bool: 1
        }
    }

    /// The legacy typed-storage class torch.save names in each persistent id (`torch.FloatStorage`).
    public static func fromStorageType(_ name: String) -> TorchDType? {
        switch name {
        case "FloatStorage": .f32
        case "HalfStorage": .f16
        case "BFloat16Storage": .bf16
        case "DoubleStorage": .f64
        case "LongStorage": .i64
        case "IntStorage": .i32
        case "ShortStorage": .i16
        case "CharStorage": .i8
        case "ByteStorage", "UntypedStorage": .u8
        case "BoolStorage": .bool
        default: nil
        }
    }
}

/// One storage (`<archive>/data/<key>`): `count` elements of `dtype`, in place in the mapping.
public final class TorchStorage: @unchecked Sendable {
    public let key: String
    public let dtype: TorchDType
    public let count: Int
    /// Exactly `count * dtype.size` bytes of the mapped file.
    public let bytes: UnsafeRawBufferPointer
    /// Keeps the mapping alive while any tensor refers to it.
    public let file: MappedFile

    init(key: String, dtype: TorchDType, count: Int, bytes: UnsafeRawBufferPointer, file: MappedFile) {
        self.key = key
        self.dtype = dtype
        self.count = count
        self.bytes = bytes
        self.file = file
    }
}

public struct TorchTensor: Sendable {
    public let storage: TorchStorage
    public let shape: [Int]
    /// In elements, like torch.
    public let strides: [Int]
    /// In elements.
    public let storageOffset: Int
    /// Saved as an `nn.Parameter`.
    public let isParameter: Bool
    public let requiresGrad: Bool
    /// Number of elements (product of `shape`; 1 for a 0-d tensor).
    public let count: Int

    public var dtype: TorchDType { storage.dtype }
    public var byteCount: Int { count * dtype.size }

    /// Validates that every element the view can reach lies inside the storage, with no overflow.
    init(storage: TorchStorage, shape: [Int], strides: [Int], storageOffset: Int,
         isParameter: Bool = false, requiresGrad: Bool = false) throws {
        let path = storage.file.path
        let what = "tensor on storage \(storage.key) (shape \(shape), stride \(strides), offset \(storageOffset))"
        guard shape.count == strides.count else {
            throw FormatError(path, "\(what): shape has \(shape.count) dims but stride has \(strides.count)")
        }
        guard shape.count <= 64 else { throw FormatError(path, "\(what): more than 64 dims") }
        guard storageOffset >= 0, shape.allSatisfy({ $0 >= 0 }), strides.allSatisfy({ $0 >= 0 }) else {
            throw FormatError(path, "\(what): negative size, stride or offset")
        }
        var count = 1
        var lastIndex = storageOffset  // the largest element index the view reaches
        for (n, s) in zip(shape, strides) {
            let (c, o1) = count.multipliedReportingOverflow(by: n)
            guard !o1 else { throw FormatError(path, "\(what): element count overflows") }
            count = c
            if n > 0 {
                let (step, o2) = (n - 1).multipliedReportingOverflow(by: s)
                let (sum, o3) = lastIndex.addingReportingOverflow(step)
                guard !o2, !o3 else { throw FormatError(path, "\(what): extent overflows") }
                lastIndex = sum
            }
        }
        let (bytes, o4) = count.multipliedReportingOverflow(by: storage.dtype.size)
        guard !o4, bytes >= 0 else { throw FormatError(path, "\(what): byte size overflows") }
        if count > 0, lastIndex >= storage.count {
            throw FormatError(path, "\(what): reaches element \(lastIndex) but the storage holds \(storage.count) elements")
        }
        self.storage = storage
        self.shape = shape
        self.strides = strides
        self.storageOffset = storageOffset
        self.isParameter = isParameter
        self.requiresGrad = requiresGrad
        self.count = count
    }

    func withParameter(_ p: Bool, requiresGrad: Bool) -> TorchTensor {
        // Geometry is unchanged, so the validation already done still holds.
        TorchTensor(unchecked: storage, shape, strides, storageOffset, p, requiresGrad, count)
    }

    private init(unchecked storage: TorchStorage, _ shape: [Int], _ strides: [Int], _ offset: Int,
                 _ p: Bool, _ rg: Bool, _ count: Int) {
        self.storage = storage; self.shape = shape; self.strides = strides; self.storageOffset = offset
        self.isParameter = p; self.requiresGrad = rg; self.count = count
    }

    /// Row-major dense, as torch's `is_contiguous()` (size-1 dims and empty tensors are ignored).
    public var isContiguous: Bool {
        if count == 0 { return true }
        var expected = 1
        for d in stride(from: shape.count - 1, through: 0, by: -1) where shape[d] != 1 {
            if strides[d] != expected { return false }
            expected *= shape[d]
        }
        return true
    }

    /// The tensor's own bytes in place when it is contiguous, else nil.
    public var contiguousBytes: UnsafeRawBufferPointer? {
        guard isContiguous else { return nil }
        if count == 0 { return UnsafeRawBufferPointer(rebasing: storage.bytes[0 ..< 0]) }
        let start = storageOffset * dtype.size
        return UnsafeRawBufferPointer(rebasing: storage.bytes[start ..< start + byteCount])
    }

    /// Calls `body` with the tensor's bytes in row-major order: in place when contiguous, else from
    /// a gathered copy. A strided view (stride 0, overlap) can be far larger than its storage, so
    /// the copy is refused past `maxCopyBytes` (default: twice the storage, at least 1 MiB).
    public func withContiguousBytes<R>(maxCopyBytes: Int? = nil,
                                       _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        if let b = contiguousBytes { return try body(b) }
        let limit = maxCopyBytes ?? max(storage.bytes.count.multipliedReportingOverflow(by: 2).partialValue, 1 << 20)
        guard byteCount <= limit else {
            throw FormatError(storage.file.path, "tensor on storage \(storage.key): gathering \(byteCount) bytes of a strided view exceeds the \(limit)-byte limit")
        }
        let esize = dtype.size
        let out = UnsafeMutableRawBufferPointer.allocate(byteCount: byteCount, alignment: 64)
        defer { out.deallocate() }
        var dst = 0
        forEachElementIndex { src in
            out.baseAddress!.advanced(by: dst).copyMemory(from: storage.bytes.baseAddress!.advanced(by: src * esize), byteCount: esize)
            dst += esize
        }
        return try body(UnsafeRawBufferPointer(out))
    }

    /// Storage element indices of the view, in row-major order (already validated in range).
    func forEachElementIndex(_ f: (Int) -> Void) {
        if count == 0 { return }
        var idx = [Int](repeating: 0, count: shape.count)
        var pos = storageOffset
        for _ in 0 ..< count {
            f(pos)
            var d = shape.count - 1
            while d >= 0 {
                // Wrapping ops: a size-1 dim may carry any stride; the net step is always in range.
                idx[d] += 1
                pos = pos &+ strides[d]
                if idx[d] < shape[d] { break }
                pos = pos &- strides[d] &* shape[d]
                idx[d] = 0
                d -= 1
            }
        }
    }

    /// Every element as a Double, row-major (exact for all dtypes except i64 beyond 2^53).
    /// Copies: meant for checks and small tensors; bounded like `withContiguousBytes`.
    public func doubles(maxCount: Int? = nil) throws -> [Double] {
        let limit = maxCount ?? max(storage.count.multipliedReportingOverflow(by: 2).partialValue, 1 << 20)
        guard count <= limit else {
            throw FormatError(storage.file.path, "tensor on storage \(storage.key): \(count) elements exceed the \(limit)-element limit for decoding")
        }
        var out: [Double] = []
        out.reserveCapacity(count)
        let b = storage.bytes
        let dtype = self.dtype
        forEachElementIndex { i in
            let o = i * dtype.size
            let v: Double
            switch dtype {
            case .f32: v = Double(Float(bitPattern: UInt32(littleEndian: b.loadUnaligned(fromByteOffset: o, as: UInt32.self))))
            case .f16: v = Double(f16ToFloat(UInt16(littleEndian: b.loadUnaligned(fromByteOffset: o, as: UInt16.self))))
            case .bf16: v = Double(bf16ToFloat(UInt16(littleEndian: b.loadUnaligned(fromByteOffset: o, as: UInt16.self))))
            case .f64: v = Double(bitPattern: UInt64(littleEndian: b.loadUnaligned(fromByteOffset: o, as: UInt64.self)))
            case .i64: v = Double(Int64(littleEndian: b.loadUnaligned(fromByteOffset: o, as: Int64.self)))
            case .i32: v = Double(Int32(littleEndian: b.loadUnaligned(fromByteOffset: o, as: Int32.self)))
            case .i16: v = Double(Int16(littleEndian: b.loadUnaligned(fromByteOffset: o, as: Int16.self)))
            case .i8: v = Double(b.loadUnaligned(fromByteOffset: o, as: Int8.self))
            case .u8: v = Double(b[o])
            case .bool: v = b[o] != 0 ? 1 : 0
            }
            out.append(v)
        }
        return out
    }
}
