/// Element types of a .kaf entry. Quantized types carry their group size: one table of traits
/// (`traits`) answers every size question, as ggml's type-traits table does.
public enum DType: UInt32, CaseIterable, Sendable {
    case f32 = 0, f16 = 1, bf16 = 2, i32 = 3, i64 = 4, u8 = 5
    case q8_g32 = 16, q8_g64 = 17, q8_g128 = 18
    case q4_g32 = 20, q4_g64 = 21, q4_g128 = 22
    // The same blocks with 8 rows interleaved (`RowInterleave`, formats/KAF.md): what the decode
    // and prefill kernels read for the LLM's linears.
    case q8_g32_r8 = 24, q8_g64_r8 = 25, q8_g128_r8 = 26
    case q4_g32_r8 = 28, q4_g64_r8 = 29, q4_g128_r8 = 30

    public struct Traits: Sendable {
        public let name: String
        /// Weights per block (1 for plain types).
        public let blockElems: Int
        public let blockBytes: Int
        /// Quantization bits (0 for plain types).
        public let quantBits: Int
        /// Rows stored interleaved (1: row-major; 8: the `_r8` layouts, 2-D only, rows % 8 == 0).
        public var interleave: Int = 1
    }

    public var traits: Traits {
        switch self {
        case .f32: return Traits(name: "f32", blockElems: 1, blockBytes: 4, quantBits: 0)
        case .f16: return Traits(name: "f16", blockElems: 1, blockBytes: 2, quantBits: 0)
        case .bf16: return Traits(name: "bf16", blockElems: 1, blockBytes: 2, quantBits: 0)
        case .i32: return Traits(name: "i32", blockElems: 1, blockBytes: 4, quantBits: 0)
        case .i64: return Traits(name: "i64", blockElems: 1, blockBytes: 8, quantBits: 0)
        case .u8: return Traits(name: "u8", blockElems: 1, blockBytes: 1, quantBits: 0)
        case .q8_g32: return Traits(name: "q8_g32", blockElems: 32, blockBytes: MemoryLayout<BlockQ8<32>>.size, quantBits: 8)
        case .q8_g64: return Traits(name: "q8_g64", blockElems: 64, blockBytes: MemoryLayout<BlockQ8<64>>.size, quantBits: 8)
        case .q8_g128: return Traits(name: "q8_g128", blockElems: 128, blockBytes: MemoryLayout<BlockQ8<128>>.size, quantBits: 8)
        case .q4_g32: return Traits(name: "q4_g32", blockElems: 32, blockBytes: MemoryLayout<BlockQ4<16>>.size, quantBits: 4)
        case .q4_g64: return Traits(name: "q4_g64", blockElems: 64, blockBytes: MemoryLayout<BlockQ4<32>>.size, quantBits: 4)
        case .q4_g128: return Traits(name: "q4_g128", blockElems: 128, blockBytes: MemoryLayout<BlockQ4<64>>.size, quantBits: 4)
        case .q8_g32_r8, .q8_g64_r8, .q8_g128_r8, .q4_g32_r8, .q4_g64_r8, .q4_g128_r8:
            let p = plain.traits
            return Traits(name: p.name + "_r8", blockElems: p.blockElems, blockBytes: p.blockBytes,
                          quantBits: p.quantBits, interleave: RowInterleave.rows)
        }
    }

    /// The row-major type with the same blocks (self for row-major types).
    public var plain: DType {
        switch self {
        case .q8_g32_r8: return .q8_g32
        case .q8_g64_r8: return .q8_g64
        case .q8_g128_r8: return .q8_g128
        case .q4_g32_r8: return .q4_g32
        case .q4_g64_r8: return .q4_g64
        case .q4_g128_r8: return .q4_g128
        default: return self
        }
    }

    /// The 8-row interleaved twin of a row-major quantized type.
    public var interleaved: DType? {
        DType.allCases.first { $0.traits.interleave > 1 && $0.plain == self }
    }

    public var isInterleaved: Bool { traits.interleave > 1 }

    public var name: String { traits.name }
    public var isQuantized: Bool { traits.quantBits != 0 }
    public var isFloat: Bool { self == .f32 || self == .f16 || self == .bf16 }
    public var groupSize: Int { traits.blockElems }

    /// Bits of storage per element, scales included.
    public var bitsPerWeight: Double { Double(traits.blockBytes * 8) / Double(traits.blockElems) }

    public init?(name: String) {
        guard let t = DType.allCases.first(where: { $0.name == name }) else { return nil }
        self = t
    }

    /// The quantized type for `bits` (4 or 8) and `group` (32, 64, 128), row-major or interleaved.
    public static func quantized(bits: Int, group: Int, interleaved: Bool = false) -> DType? {
        allCases.first { $0.traits.quantBits == bits && $0.traits.blockElems == group && $0.isInterleaved == interleaved }
    }

    /// Bytes needed for `shape`, or nil on overflow or when the last dimension is not a whole
    /// number of blocks.
    public func byteCount(shape: [Int]) -> Int? {
        var n = 1
        for d in shape {
            guard d >= 0 else { return nil }
            let (m, o) = n.multipliedReportingOverflow(by: d)
            if o { return nil }
            n = m
        }
        let t = traits
        if t.blockElems > 1 {
            guard let last = shape.last, last % t.blockElems == 0 else { return nil }
        }
        if t.interleave > 1 {
            guard shape.count == 2, shape[0] % t.interleave == 0 else { return nil }
        }
        let (b, o) = (n / t.blockElems).multipliedReportingOverflow(by: t.blockBytes)
        return o ? nil : b
    }
}
