/// The element types a safetensors header may name that the converter understands.
/// Others that safetensors defines (F8_E4M3, C64, U16, …) do not occur in the Kimi release
/// and are rejected by name rather than guessed at.
public enum SafetensorsDType: String, CaseIterable, Sendable {
    case bf16 = "BF16"
    case f16 = "F16"
    case f32 = "F32"
    case f64 = "F64"
    case i64 = "I64"
    case i32 = "I32"
    case i16 = "I16"
    case i8 = "I8"
    case u8 = "U8"
    case bool = "BOOL"

    /// Bytes per element.
    public var size: Int {
        switch self {
        case .f64, .i64: return 8
        case .f32, .i32: return 4
        case .bf16, .f16, .i16: return 2
        case .i8, .u8, .bool: return 1
        }
    }

    public var isFloatingPoint: Bool {
        switch self {
        case .bf16, .f16, .f32, .f64: return true
        default: return false
        }
    }

    /// The header spelling, e.g. "BF16".
    public var name: String { rawValue }
}
