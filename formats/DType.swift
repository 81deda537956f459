/// Element types of a .kaf entry. Quantized types carry their group size: one table of traits
/// (`traits`) answers every size question, as ggml's type-traits table does.
public enum DType: UInt32, CaseIterable, Sendable {
    case f32 = 0, f16 = 1, bf16 = 2, i32 = 3, i64 = 4, u8 = 5
    case q8_g32 = 16, q8_g64 = 17, q8_g128 = 18
    case q4_g32 = 20, q4_g64 = 21, q4_g128 = 22

    public struct Traits: Sendable {
        public let name: String
        /// Weights per block (1 for plain types).
        public let blockElems: Int
        public let blockBytes: Int
        /// Quantization bits (0 for plain types).
        public let quantBits: Int
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
        }
    }

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

    /// The quantized type for `bits` (4 or 8) and `group` (32, 64, 128).
    public static func quantized(bits: Int, group: Int) -> DType? {
        allCases.first { $0.traits.quantBits == bits && $0.traits.blockElems == group }
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
        let (b, o) = (n / t.blockElems).multipliedReportingOverflow(by: t.blockBytes)
        return o ? nil : b
    }
}
