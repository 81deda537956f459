/// The globals a checkpoint's pickle may name: what torch's `weights_only=True` loader accepts by
/// default (`torch._weights_only_unpickler._get_allowed_globals()`, torch 2.13), minus the
/// tensor kinds in `refused`, plus the few plain values in `beyondTorch`. Anything else is refused
/// by name when the GLOBAL opcode is read: nothing from the file is ever imported or called, the
/// builders below are reimplemented in Swift (`PickleMachine.apply`).
/// `allowlistCoversTorchsWeightsOnlyGlobals` checks this against the list torch itself reports
/// (Tests/Fixtures/pickle/allowlist.json).
enum PickleAllowlist {
    /// Callables REDUCE / NEWOBJ may apply (each rebuilt in Swift by `PickleMachine`).
    static let builders: Set<String> = [
        "collections.OrderedDict",
        "collections.Counter",
        "torch._utils._rebuild_tensor",
        "torch._utils._rebuild_tensor_v2",
        "torch._utils._rebuild_tensor_v3",
        "torch._utils._rebuild_parameter",
        "torch._utils._rebuild_parameter_with_state",
        "torch._tensor._rebuild_from_type_v2",
        "torch.nn.parameter.Parameter",
        "torch.serialization._get_layout",
        "torch.Size",
        "torch.device",
        "builtins.set",
        "builtins.frozenset",
        "builtins.bytearray",
        "builtins.complex",
        // Protocol-2 pickles spell `bytes` as _codecs.encode(str, "latin1").
        "_codecs.encode",
    ]

    /// Names that may appear as plain values (storage types in persistent ids, dtypes, the legacy
    /// tensor and storage classes, qschemes), each decoded as `.global(name)`.
    static let constants: Set<String> = {
        var s: Set<String> = [
            "torch.Tensor", "torch.nn.parameter.Parameter", "torch.storage.UntypedStorage",
            "torch.storage.TypedStorage",
        ]
        let dense = ["Double", "Float", "Half", "BFloat16", "Long", "Int", "Short", "Char", "Byte", "Bool"]
        for t in dense + ["ComplexFloat", "ComplexDouble"] {
            s.insert("torch.\(t)Storage")
            s.insert("torch.cuda.\(t)Storage")
        }
        for t in ["QInt8", "QUInt8", "QInt32", "QUInt4x2", "QUInt2x4"] { s.insert("torch.\(t)Storage") }
        for t in dense {
            s.insert("torch.\(t)Tensor")
            s.insert("torch.cuda.\(t)Tensor")
        }
        for t in dense where t != "Bool" {
            s.insert("torch.sparse.\(t)Tensor")
            s.insert("torch.cuda.sparse.\(t)Tensor")
        }
        for d in [
            "float32", "float16", "bfloat16", "float64", "int64", "int32", "int16", "int8", "uint8", "bool",
            "complex64", "complex128", "complex32", "uint16", "uint32", "uint64", "qint8", "qint32", "quint8",
            "quint4x2", "quint2x4", "float8_e5m2", "float8_e4m3fn", "float8_e5m2fnuz", "float8_e4m3fnuz",
            "float8_e8m0fnu", "float4_e2m1fn_x2", "bits8", "bits16", "bits1x8", "bits2x4", "bits4x2",
        ] {
            s.insert("torch.\(d)")
        }
        for n in 1 ... 7 {
            s.insert("torch.uint\(n)")
            s.insert("torch.int\(n)")
        }
        for q in [
            "per_tensor_affine", "per_tensor_symmetric", "per_channel_affine", "per_channel_symmetric",
            "per_channel_affine_float_qparams",
        ] {
            s.insert("torch.\(q)")
        }
        return s.union(beyondTorch)
    }()

    /// Accepted here although torch's default list lacks them: plain values that carry no code.
    /// `frozenset` (torch refuses it), the dtype aliases (`torch.float` …; torch pickles dtypes by
    /// their canonical name) and `torch.UntypedStorage` as older readers spelled it.
    static let beyondTorch: Set<String> = [
        "builtins.frozenset", "torch.UntypedStorage", "torch.float", "torch.half", "torch.double", "torch.long",
        "torch.int", "torch.short",
    ]

    /// On torch's list, refused here by name with the reason: none of them is a dense tensor whose
    /// bytes are in the file as they are meant, and the converter reads nothing else.
    static let refused: [String: String] = [
        "torch._utils._rebuild_qtensor": "quantized tensors are not supported (dequantize before saving)",
        "torch._utils._rebuild_sparse_tensor": "sparse tensors are not supported (save t.to_dense())",
        "torch._utils._rebuild_nested_tensor": "nested tensors are not supported",
        "torch._utils._rebuild_meta_tensor_no_storage": "meta tensors have no data",
        "torch._utils._rebuild_wrapper_subclass": "tensor wrapper subclasses have no data in the file",
        "torch._utils._rebuild_device_tensor_from_numpy":
            "tensors of storage-less devices (numpy form) are not supported",
        "torch._utils._rebuild_device_tensor_from_cpu_tensor":
            "tensors of storage-less devices (XLA, MTIA) are not supported",
    ]

    /// The canonical qualified name if allowed (Python 2 module names mapped as pickle does).
    static func resolve(module: String, name: String) -> String? {
        let q = "\(canonicalModule(module)).\(name)"
        return builders.contains(q) || constants.contains(q) ? q : nil
    }

    static func canonicalModule(_ module: String) -> String {
        module == "__builtin__" ? "builtins" : module
    }
}
