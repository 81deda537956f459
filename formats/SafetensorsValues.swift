/// Element access for small tensors (norms, biases, tests). Large weights are meant to be read
/// in place from `bytes`; these helpers copy. All loads are unaligned: safetensors does not
/// promise alignment.
extension SafetensorsTensor {
    /// Element `i` widened to Double: bf16/f16 through Half.swift, integers exactly up to 2^53,
    /// BOOL as 0/1 (any non-zero byte is true).
    @inline(__always)
    public func double(at i: Int) -> Double {
        let p = bytes.baseAddress.map { UnsafeRawPointer($0) } ?? UnsafeRawPointer(bitPattern: 1)!
        let o = i * dtype.size
        switch dtype {
        case .bf16: return Double(bf16ToFloat(UInt16(littleEndian: p.loadUnaligned(fromByteOffset: o, as: UInt16.self))))
        case .f16: return Double(f16ToFloat(UInt16(littleEndian: p.loadUnaligned(fromByteOffset: o, as: UInt16.self))))
        case .f32: return Double(Float(bitPattern: UInt32(littleEndian: p.loadUnaligned(fromByteOffset: o, as: UInt32.self))))
        case .f64: return Double(bitPattern: UInt64(littleEndian: p.loadUnaligned(fromByteOffset: o, as: UInt64.self)))
        case .i64, .i32, .i16, .i8, .u8, .bool: return Double(int64(at: i))
        }
    }

    /// Element `i` of an integer or BOOL tensor (floats are truncated toward zero, saturating).
    @inline(__always)
    public func int64(at i: Int) -> Int64 {
        let p = bytes.baseAddress.map { UnsafeRawPointer($0) } ?? UnsafeRawPointer(bitPattern: 1)!
        let o = i * dtype.size
        switch dtype {
        case .i64: return Int64(littleEndian: p.loadUnaligned(fromByteOffset: o, as: Int64.self))
        case .i32: return Int64(Int32(littleEndian: p.loadUnaligned(fromByteOffset: o, as: Int32.self)))
        case .i16: return Int64(Int16(littleEndian: p.loadUnaligned(fromByteOffset: o, as: Int16.self)))
        case .i8: return Int64(p.loadUnaligned(fromByteOffset: o, as: Int8.self))
        case .u8: return Int64(p.loadUnaligned(fromByteOffset: o, as: UInt8.self))
        case .bool: return p.loadUnaligned(fromByteOffset: o, as: UInt8.self) == 0 ? 0 : 1
        case .bf16, .f16, .f32, .f64:
            let d = double(at: i)
            if d.isNaN { return 0 }
            return Int64(exactly: d.rounded(.towardZero)) ?? (d < 0 ? .min : .max)
        }
    }

    /// Every element as Double.
    public func doubles() -> [Double] { (0 ..< elementCount).map(double(at:)) }

    /// Every element as Float (f64 rounds); integer tensors are refused so that a wrong
    /// tensor name cannot silently turn into weights.
    public func floats() throws -> [Float] {
        guard dtype.isFloatingPoint else {
            throw FormatError(path, "tensor '\(name)' is \(dtype.name), expected a floating-point dtype")
        }
        return (0 ..< elementCount).map { Float(double(at: $0)) }
    }

    /// Every element of an integer or BOOL tensor as Int64.
    public func int64s() throws -> [Int64] {
        guard !dtype.isFloatingPoint else {
            throw FormatError(path, "tensor '\(name)' is \(dtype.name), expected an integer dtype")
        }
        return (0 ..< elementCount).map(int64(at:))
    }
}
