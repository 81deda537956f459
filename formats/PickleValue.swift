/// What a checkpoint's pickle decodes to: plain data and tensors, nothing executable.
public indirect enum PickleValue: Sendable {
    case none
    case bool(Bool)
    case int(Int64)
    /// An integer wider than 64 bits: little-endian two's complement bytes, as pickle stores it.
    case bigInt([UInt8])
    case float(Double)
    /// `builtins.complex(real, imag)`.
    case complex(Double, Double)
    /// Text; also a `torch.device`, as its `str()` (`"cpu"`, `"cuda:1"`).
    case string(String)
    /// `bytes` (protocol 2 spells them `_codecs.encode(str, "latin1")`) and `bytearray`.
    case bytes([UInt8])
    case list([PickleValue])
    case tuple([PickleValue])
    /// `set` / `frozenset`, in pickle order.
    case set([PickleValue])
    /// `dict` / `OrderedDict` / `Counter`, in insertion order.
    case dict([(key: PickleValue, value: PickleValue)])
    case tensor(TorchTensor)
    case storage(TorchStorage)
    /// A reference to an allowlisted type or constant by qualified name: a dtype (`torch.float32`), a
    /// layout (`torch.strided`), a qscheme, a tensor or storage class. A `torch.Size` is a `.tuple`.
    case global(String)

    /// The value of a string key when this is a dict.
    public subscript(key: String) -> PickleValue? {
        guard case .dict(let items) = self else { return nil }
        for (k, v) in items { if case .string(let s) = k, s == key { return v } }
        return nil
    }

    public var kindName: String {
        switch self {
        case .none: "None"
        case .bool: "bool"
        case .int, .bigInt: "int"
        case .float: "float"
        case .complex: "complex"
        case .string: "str"
        case .bytes: "bytes"
        case .list: "list"
        case .tuple: "tuple"
        case .set: "set"
        case .dict: "dict"
        case .tensor: "tensor"
        case .storage: "storage"
        case .global(let n): "global \(n)"
        }
    }

    public var intValue: Int64? { if case .int(let v) = self { v } else { nil } }
    public var stringValue: String? { if case .string(let v) = self { v } else { nil } }
    public var tensorValue: TorchTensor? { if case .tensor(let v) = self { v } else { nil } }
}
