/// Bounds-checked little-endian reads over a byte buffer. Every read past the end throws a
/// `FormatError` naming the file and what was being read; nothing traps on hostile input.
public struct ByteCursor {
    public let buffer: UnsafeRawBufferPointer
    public let file: String
    public var position: Int = 0

    public init(_ buffer: UnsafeRawBufferPointer, file: String, position: Int = 0) {
        self.buffer = buffer
        self.file = file
        self.position = position
    }

    public var remaining: Int { buffer.count - position }
    public var atEnd: Bool { position >= buffer.count }

    @inline(__always)
    mutating func need(_ n: Int, _ what: @autoclosure () -> String) throws {
        guard n >= 0, n <= buffer.count - position else {
            throw FormatError(file, "truncated: \(what()) needs \(n) bytes at offset \(position), \(max(0, buffer.count - position)) left")
        }
    }

    @inline(__always)
    public mutating func read<T: FixedWidthInteger>(_: T.Type, _ what: @autoclosure () -> String = "value") throws -> T {
        try need(MemoryLayout<T>.size, what())
        let v = buffer.baseAddress!.loadUnaligned(fromByteOffset: position, as: T.self)
        position += MemoryLayout<T>.size
        return T(littleEndian: v)
    }

    public mutating func readU8(_ what: @autoclosure () -> String = "byte") throws -> UInt8 { try read(UInt8.self, what()) }
    public mutating func readU16(_ what: @autoclosure () -> String = "u16") throws -> UInt16 { try read(UInt16.self, what()) }
    public mutating func readU32(_ what: @autoclosure () -> String = "u32") throws -> UInt32 { try read(UInt32.self, what()) }
    public mutating func readU64(_ what: @autoclosure () -> String = "u64") throws -> UInt64 { try read(UInt64.self, what()) }
    public mutating func readI32(_ what: @autoclosure () -> String = "i32") throws -> Int32 { try read(Int32.self, what()) }
    public mutating func readI64(_ what: @autoclosure () -> String = "i64") throws -> Int64 { try read(Int64.self, what()) }

    public mutating func readF64(_ what: @autoclosure () -> String = "f64") throws -> Double {
        Double(bitPattern: try read(UInt64.self, what()))
    }

    /// Big-endian f64 (pickle's BINFLOAT).
    public mutating func readF64BE(_ what: @autoclosure () -> String = "f64") throws -> Double {
        Double(bitPattern: UInt64(bigEndian: UInt64(littleEndian: try read(UInt64.self, what()))))
    }

    /// `n` bytes in place (no copy).
    public mutating func bytes(_ n: Int, _ what: @autoclosure () -> String = "bytes") throws -> UnsafeRawBufferPointer {
        try need(n, what())
        let s = UnsafeRawBufferPointer(rebasing: buffer[position ..< position + n])
        position += n
        return s
    }

    /// `n` bytes when `n` comes from the file as a u64: checked before any conversion to Int.
    public mutating func bytes(count n: UInt64, _ what: @autoclosure () -> String = "bytes") throws -> UnsafeRawBufferPointer {
        guard n <= UInt64(remaining) else {
            throw FormatError(file, "truncated: \(what()) claims \(n) bytes at offset \(position), \(remaining) left")
        }
        return try bytes(Int(n), what())
    }

    public mutating func string(_ n: Int, _ what: @autoclosure () -> String = "string") throws -> String {
        let b = try bytes(n, what())
        guard let s = String(validating: b, as: UTF8.self) else {
            throw FormatError(file, "\(what()) is not valid UTF-8")
        }
        return s
    }

    public mutating func skip(_ n: Int, _ what: @autoclosure () -> String = "padding") throws {
        try need(n, what())
        position += n
    }
}
