/// Tensors of a `torch.save` checkpoint: a typed storage (a zip entry, read in place) and a strided
/// view of it. All geometry is validated when the tensor is built, so readers can index freely.

public enum TorchDType: String, Sendable, CaseIterable {
    case f32, f16, bf16, f64, i64, i32, i16, i8, u8, bool
    /// Complex: (real, imaginary) pairs of f32 / f64 / f16.
    case c64, c128, c32
    case u16, u32, u64
    /// 8-bit floats (OCP and the AMD "fnuz" variants) and the e8m0 scale type.
    case f8E5M2 = "f8_e5m2"
    case f8E4M3FN = "f8_e4m3fn"
    case f8E5M2FNUZ = "f8_e5m2fnuz"
    case f8E4M3FNUZ = "f8_e4m3fnuz"
    case f8E8M0FNU = "f8_e8m0fnu"
    /// Two fp4 (e2m1) values per byte.
    case f4E2M1FNx2 = "f4_e2m1fn_x2"
    /// Opaque bits, no arithmetic in torch either.
    case bits8, bits16, bits1x8, bits2x4, bits4x2

    public var size: Int {
        switch self {
        case .c128: 16
        case .f64, .i64, .u64, .c64: 8
        case .f32, .i32, .u32, .c32: 4
        case .f16, .bf16, .i16, .u16, .bits16: 2
        case .i8, .u8, .bool, .f8E5M2, .f8E4M3FN, .f8E5M2FNUZ, .f8E4M3FNUZ, .f8E8M0FNU, .f4E2M1FNx2, .bits8, .bits1x8,
            .bits2x4, .bits4x2:
            1
        }
    }

    /// Scalars per element in `TorchTensor.doubles()`: 2 for complex (real, imaginary), 0 for the
    /// dtypes that have no scalar value (packed fp4, bits), else 1.
    public var scalarsPerElement: Int {
        switch self {
        case .c64, .c128, .c32: 2
        case .f4E2M1FNx2, .bits8, .bits16, .bits1x8, .bits2x4, .bits4x2: 0
        default: 1
        }
    }

    /// The legacy typed-storage class torch.save names in each persistent id (`torch.FloatStorage`).
    /// The quantized ones (`QInt8Storage` …) are only used by quantized tensors, which are refused.
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
        case "ComplexFloatStorage": .c64
        case "ComplexDoubleStorage": .c128
        default: nil
        }
    }

    /// A torch dtype by its qualified name (`torch.float32`, `torch.uint16`), as `_rebuild_tensor_v3`
    /// names it; nil for dtypes no tensor here can have (quantized, sub-byte `torch.uint1` …).
    public static func fromTorchName(_ name: String) -> TorchDType? {
        switch name {
        case "torch.float32", "torch.float": .f32
        case "torch.float16", "torch.half": .f16
        case "torch.bfloat16": .bf16
        case "torch.float64", "torch.double": .f64
        case "torch.int64", "torch.long": .i64
        case "torch.int32", "torch.int": .i32
        case "torch.int16", "torch.short": .i16
        case "torch.int8": .i8
        case "torch.uint8": .u8
        case "torch.bool": .bool
        case "torch.complex64", "torch.cfloat": .c64
        case "torch.complex128", "torch.cdouble": .c128
        case "torch.complex32", "torch.chalf": .c32
        case "torch.uint16": .u16
        case "torch.uint32": .u32
        case "torch.uint64": .u64
        case "torch.float8_e5m2": .f8E5M2
        case "torch.float8_e4m3fn": .f8E4M3FN
        case "torch.float8_e5m2fnuz": .f8E5M2FNUZ
        case "torch.float8_e4m3fnuz": .f8E4M3FNUZ
        case "torch.float8_e8m0fnu": .f8E8M0FNU
        case "torch.float4_e2m1fn_x2": .f4E2M1FNx2
        case "torch.bits8": .bits8
        case "torch.bits16": .bits16
        case "torch.bits1x8": .bits1x8
        case "torch.bits2x4": .bits2x4
        case "torch.bits4x2": .bits4x2
        default: nil
        }
    }
}

/// An 8-bit float: `e` exponent and `m` mantissa bits. `ieee`: the top exponent is inf/NaN (e5m2);
/// `fn`: only all-ones is NaN (e4m3fn); `fnuz`: 0x80 is the only NaN, no −0 and no inf.
enum MiniFloat {
    case ieee, fn, fnuz

    func decode(_ byte: UInt8, exponentBits e: Int, mantissaBits m: Int, bias: Int) -> Double {
        let maxExp = (1 << e) - 1, maxMan = (1 << m) - 1
        let sign: Double = byte & 0x80 != 0 ? -1 : 1
        let exp = Int(byte >> m) & maxExp, man = Int(byte) & maxMan
        switch self {
        case .fnuz where byte == 0x80: return .nan
        case .ieee where exp == maxExp: return man == 0 ? sign * .infinity : .nan
        case .fn where exp == maxExp && man == maxMan: return .nan
        default: break
        }
        let frac = Double(man) / Double(1 << m)
        return exp == 0
            ? sign * frac * Double(sign: .plus, exponent: 1 - bias, significand: 1)
            : sign * (1 + frac) * Double(sign: .plus, exponent: exp - bias, significand: 1)
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
    init(
        storage: TorchStorage, shape: [Int], strides: [Int], storageOffset: Int,
        isParameter: Bool = false, requiresGrad: Bool = false
    ) throws {
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
            throw FormatError(
                path, "\(what): reaches element \(lastIndex) but the storage holds \(storage.count) elements")
        }
        self.init(unchecked: storage, shape, strides, storageOffset, isParameter, requiresGrad, count)
    }

    func withParameter(_ p: Bool, requiresGrad: Bool) -> TorchTensor {
        // Geometry is unchanged, so the validation already done still holds.
        TorchTensor(unchecked: storage, shape, strides, storageOffset, p, requiresGrad, count)
    }

    private init(
        unchecked storage: TorchStorage, _ shape: [Int], _ strides: [Int], _ offset: Int,
        _ p: Bool, _ rg: Bool, _ count: Int
    ) {
        self.storage = storage
        self.shape = shape
        self.strides = strides
        self.storageOffset = offset
        self.isParameter = p
        self.requiresGrad = rg
        self.count = count
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
    public func withContiguousBytes<R>(
        maxCopyBytes: Int? = nil,
        _ body: (UnsafeRawBufferPointer) throws -> R
    ) throws -> R {
        if let b = contiguousBytes { return try body(b) }
        let limit = maxCopyBytes ?? max(storage.bytes.count.multipliedReportingOverflow(by: 2).partialValue, 1 << 20)
        guard byteCount <= limit else {
            throw FormatError(
                storage.file.path,
                "tensor on storage \(storage.key): gathering \(byteCount) bytes of a strided view exceeds the \(limit)-byte limit"
            )
        }
        let esize = dtype.size
        let out = UnsafeMutableRawBufferPointer.allocate(byteCount: byteCount, alignment: 64)
        defer { out.deallocate() }
        var dst = 0
        forEachElementIndex { src in
            out.baseAddress!.advanced(by: dst).copyMemory(
                from: storage.bytes.baseAddress!.advanced(by: src * esize), byteCount: esize)
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

    /// Every element as Doubles, row-major (exact for all dtypes except 64-bit integers beyond 2^53).
    /// Complex elements give two values each, real then imaginary (as torch.view_as_real); the
    /// dtypes without scalar values (packed fp4, bits) are an error. Copies: meant for checks and
    /// small tensors; bounded like `withContiguousBytes`.
    public func doubles(maxCount: Int? = nil) throws -> [Double] {
        let limit = maxCount ?? max(storage.count.multipliedReportingOverflow(by: 2).partialValue, 1 << 20)
        guard count <= limit else {
            throw FormatError(
                storage.file.path,
                "tensor on storage \(storage.key): \(count) elements exceed the \(limit)-element limit for decoding")
        }
        let dtype = self.dtype
        guard dtype.scalarsPerElement > 0 else {
            throw FormatError(
                storage.file.path, "tensor on storage \(storage.key): \(dtype.rawValue) elements have no scalar value")
        }
        var out: [Double] = []
        out.reserveCapacity(count * dtype.scalarsPerElement)
        let b = storage.bytes
        func u16(_ o: Int) -> UInt16 { UInt16(littleEndian: b.loadUnaligned(fromByteOffset: o, as: UInt16.self)) }
        func u32(_ o: Int) -> UInt32 { UInt32(littleEndian: b.loadUnaligned(fromByteOffset: o, as: UInt32.self)) }
        func u64(_ o: Int) -> UInt64 { UInt64(littleEndian: b.loadUnaligned(fromByteOffset: o, as: UInt64.self)) }
        forEachElementIndex { i in
            let o = i * dtype.size
            switch dtype {
            case .f32: out.append(Double(Float(bitPattern: u32(o))))
            case .f16: out.append(Double(f16ToFloat(u16(o))))
            case .bf16: out.append(Double(bf16ToFloat(u16(o))))
            case .f64: out.append(Double(bitPattern: u64(o)))
            case .i64: out.append(Double(Int64(bitPattern: u64(o))))
            case .i32: out.append(Double(Int32(bitPattern: u32(o))))
            case .i16: out.append(Double(Int16(bitPattern: u16(o))))
            case .i8: out.append(Double(Int8(bitPattern: b[o])))
            case .u8: out.append(Double(b[o]))
            case .bool: out.append(b[o] != 0 ? 1 : 0)
            case .u16: out.append(Double(u16(o)))
            case .u32: out.append(Double(u32(o)))
            case .u64: out.append(Double(u64(o)))
            case .c64: out += [Double(Float(bitPattern: u32(o))), Double(Float(bitPattern: u32(o + 4)))]
            case .c128: out += [Double(bitPattern: u64(o)), Double(bitPattern: u64(o + 8))]
            case .c32: out += [Double(f16ToFloat(u16(o))), Double(f16ToFloat(u16(o + 2)))]
            case .f8E5M2: out.append(MiniFloat.ieee.decode(b[o], exponentBits: 5, mantissaBits: 2, bias: 15))
            case .f8E4M3FN: out.append(MiniFloat.fn.decode(b[o], exponentBits: 4, mantissaBits: 3, bias: 7))
            case .f8E5M2FNUZ: out.append(MiniFloat.fnuz.decode(b[o], exponentBits: 5, mantissaBits: 2, bias: 16))
            case .f8E4M3FNUZ: out.append(MiniFloat.fnuz.decode(b[o], exponentBits: 4, mantissaBits: 3, bias: 8))
            case .f8E8M0FNU:
                out.append(b[o] == 0xFF ? .nan : Double(sign: .plus, exponent: Int(b[o]) - 127, significand: 1))
            case .f4E2M1FNx2, .bits8, .bits16, .bits1x8, .bits2x4, .bits4x2: break  // excluded above
            }
        }
        return out
    }
}
