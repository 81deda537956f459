/// The globals a checkpoint's pickle may name, mirroring what torch's `weights_only=True` loader
/// accepts for state dicts. Anything else is refused when the GLOBAL opcode is read: nothing from
/// the file is ever imported or called, the builders below are reimplemented in Swift.
enum PickleAllowlist {
    /// Callables REDUCE / NEWOBJ may apply (each rebuilt in Swift by `PickleMachine`).
    static let builders: Set<String> = [
        "collections.OrderedDict",
        "torch._utils._rebuild_tensor",
        "torch._utils._rebuild_tensor_v2",
        "torch._utils._rebuild_parameter",
        "torch._utils._rebuild_parameter_with_state",
        "torch._tensor._rebuild_from_type_v2",
        "torch.Size",
        "torch.device",
        "builtins.set",
        "builtins.frozenset",
        // Protocol-2 pickles spell `bytes` as _codecs.encode(str, "latin1").
        "_codecs.encode",
    ]

    /// Names that may appear as plain values (storage types in persistent ids, dtypes, tensor types).
    static let constants: Set<String> = {
        var s: Set<String> = ["torch.Tensor", "torch.nn.parameter.Parameter",
                              "torch.storage.UntypedStorage", "torch.UntypedStorage"]
        for t in ["Float", "Half", "BFloat16", "Double", "Long", "Int", "Short", "Char", "Byte", "Bool"] {
            s.insert("torch.\(t)Storage")
        }
        for d in ["float32", "float", "float16", "half", "bfloat16", "float64", "double", "int64", "long",
                  "int32", "int", "int16", "short", "int8", "uint8", "bool"] {
            s.insert("torch.\(d)")
        }
        return s
    }()

    /// The canonical qualified name if allowed (Python 2 module names mapped as pickle does).
    static func resolve(module: String, name: String) -> String? {
        let m = module == "__builtin__" ? "builtins" : module
        let q = "\(m).\(name)"
        return builders.contains(q) || constants.contains(q) ? q : nil
    }
}
