/// A restricted unpickler (protocols 2–5) for `torch.save` state dicts.
///
/// It implements every opcode torch's weights-only unpickler does (and those of protocols 4 and 5)
/// and applies only the builders of `PickleAllowlist`, reimplemented here; nothing in the file is
/// executed. Memory is bounded by the
/// pickle's size: each opcode pushes at most one object, the memo is a dictionary (a huge index
/// allocates nothing), lengths are checked against the bytes left, and turning the object graph into
/// a `PickleValue` tree is limited in depth and node count (shared references could otherwise
/// expand exponentially) and refuses cycles. No recursion's depth is chosen by the input: `apply`
/// unwraps nested rebuilds in a loop, `convert` stops at `maxDepth`.
struct PickleMachine {
    /// Resolves a persistent id (BINPERSID) to a value, normally a `.storage`.
    typealias PersistentLoad = (PickleValue) throws -> PickleValue

    static let maxDepth = 200
    static let maxLongBytes = 1 << 16

    let file: String
    let what: String
    var c: ByteCursor
    let persistentLoad: PersistentLoad

    private var stack: [Obj] = []
    private var marks: [Int] = []
    private var memo: [UInt32: Obj] = [:]
    private var lists: [PList] = []
    private var dicts: [PDict] = []
    private var opStart = 0
    /// Storages re-read as another dtype by `_rebuild_tensor_v3`, by key and dtype (views share them).
    private var retyped: [String: TorchStorage] = [:]

    /// Decodes `data` (the bytes of `what`, e.g. "archive/data.pkl", inside `file`).
    static func load(
        _ data: UnsafeRawBufferPointer, file: String, what: String,
        persistentLoad: @escaping PersistentLoad
    ) throws -> PickleValue {
        var m = PickleMachine(file: file, what: what, c: ByteCursor(data, file: file), persistentLoad: persistentLoad)
        defer { m.breakCycles() }
        let root = try m.run()
        var budget = 8 * data.count + 4096
        var active = Set<ObjectIdentifier>()
        return try m.convert(root, depth: 0, budget: &budget, active: &active)
    }

    private init(file: String, what: String, c: ByteCursor, persistentLoad: @escaping PersistentLoad) {
        self.file = file
        self.what = what
        self.c = c
        self.persistentLoad = persistentLoad
    }

    // MARK: - Object graph while unpickling

    /// Lists, dicts and sets are mutated after being memoized (EMPTY_DICT, BINPUT, …, SETITEMS),
    /// so they are reference types until the final conversion.
    final class PList { var items: [Obj] = [] }
    final class PDict {
        var keys: [Obj] = []
        var values: [Obj] = []
        var index: [HashKey: Int] = [:]
    }

    enum Obj {
        case leaf(PickleValue)
        /// Tuples are boxed too, so that dropping a deeply nested one never recurses (see breakCycles).
        case tuple(PList)
        case list(PList)
        case dict(PDict)
        case set(PList)
        /// An allowlisted global, by canonical qualified name.
        case global(String)
    }

    /// Keys that can be deduplicated like Python would (SETITEM on an existing key replaces it).
    enum HashKey: Hashable {
        case none
        case bool(Bool)
        case int(Int64)
        case float(UInt64)
        case string(String)
        case bytes([UInt8])
    }

    private func hashKey(_ o: Obj) -> HashKey? {
        guard case .leaf(let v) = o else { return nil }
        switch v {
        case .none: return HashKey.none
        case .bool(let b): return .int(b ? 1 : 0)
        case .int(let i): return .int(i)
        case .float(let f): return f == f.rounded() && abs(f) < 9e15 ? .int(Int64(f)) : .float(f.bitPattern)
        case .string(let s): return .string(s)
        case .bytes(let b): return .bytes(b)
        default: return nil
        }
    }

    // MARK: - Errors and stack

    private func fail(_ message: String) -> FormatError {
        FormatError(file, "\(what) byte \(opStart): \(message)")
    }

    private var floor: Int { marks.last ?? 0 }

    private mutating func pop(_ op: String) throws -> Obj {
        guard stack.count > floor else { throw fail("\(op) on an empty stack (stack underflow)") }
        return stack.removeLast()
    }

    private mutating func popMark(_ op: String) throws -> [Obj] {
        guard let m = marks.popLast() else { throw fail("\(op) without a MARK") }
        // Element by element: `Array(stack[m...])` + `removeSubrange` crashed (over-release) when
        // built with -Ounchecked on Swift 6.3 (fuzz input); this form is fine in every mode.
        var items: [Obj] = []
        items.reserveCapacity(stack.count - m)
        while stack.count > m { items.append(stack.removeLast()) }
        items.reverse()
        return items
    }

    private mutating func newList(_ items: [Obj] = []) -> PList {
        let l = PList()
        l.items = items
        lists.append(l)
        return l
    }

    private mutating func newDict() -> PDict {
        let d = PDict()
        dicts.append(d)
        return d
    }

    /// Hostile pickles can make cycles (a list appended to itself); clear every container so the
    /// object graph is freed when loading ends.
    private mutating func breakCycles() {
        for l in lists { l.items = [] }
        for d in dicts {
            d.keys = []
            d.values = []
            d.index = [:]
        }
    }

    // MARK: - The machine

    private mutating func run() throws -> Obj {
        while true {
            opStart = c.position
            guard !c.atEnd else { throw fail("pickle ends without STOP (unterminated)") }
            let op = try c.readU8("opcode")
            switch op {
            case 0x80:  // PROTO
                let p = try c.readU8("protocol")
                guard (2 ... 5).contains(p) else { throw fail("unsupported pickle protocol \(p)") }
            case 0x95:  // FRAME: a length hint only; it must fit in what is left
                let n = try c.readU64("frame length")
                guard n <= UInt64(c.remaining) else {
                    throw fail("FRAME of \(n) bytes runs past the end (\(c.remaining) left)")
                }
            case 0x2E:  // STOP
                guard marks.isEmpty else { throw fail("STOP with an unclosed MARK") }
                guard stack.count == 1, let top = stack.last else {
                    throw fail("STOP with \(stack.count) objects on the stack, expected 1")
                }
                return top
            case 0x28: marks.append(stack.count)  // MARK
            case 0x30: _ = try pop("POP")
            case 0x31: _ = try popMark("POP_MARK")
            case 0x32:  // DUP
                let top = try pop("DUP")
                stack.append(top)
                stack.append(top)

            // Containers
            case 0x7D: stack.append(.dict(newDict()))  // EMPTY_DICT
            case 0x5D: stack.append(.list(newList()))  // EMPTY_LIST
            case 0x29: stack.append(.tuple(newList()))  // EMPTY_TUPLE
            case 0x8F: stack.append(.set(newList()))  // EMPTY_SET
            case 0x74: stack.append(.tuple(newList(try popMark("TUPLE"))))  // TUPLE
            case 0x85, 0x86, 0x87:  // TUPLE1/2/3
                let n = Int(op - 0x84)
                guard stack.count - floor >= n else { throw fail("TUPLE\(n) needs \(n) objects (stack underflow)") }
                let items = Array(stack.suffix(n))
                stack.removeLast(n)
                stack.append(.tuple(newList(items)))
            case 0x6C: stack.append(.list(newList(try popMark("LIST"))))  // LIST
            case 0x91: stack.append(.set(newList(try popMark("FROZENSET"))))  // FROZENSET
            case 0x64:  // DICT
                let items = try popMark("DICT")
                let d = newDict()
                try setItems(d, items)
                stack.append(.dict(d))
            case 0x61:  // APPEND
                let v = try pop("APPEND")
                try listTop("APPEND").items.append(v)
            case 0x65:  // APPENDS
                let items = try popMark("APPENDS")
                try listTop("APPENDS").items.append(contentsOf: items)
            case 0x90:  // ADDITEMS
                let items = try popMark("ADDITEMS")
                guard case .set(let s)? = stack.last, stack.count > floor else {
                    throw fail("ADDITEMS on something that is not a set")
                }
                s.items.append(contentsOf: items)
            case 0x73:  // SETITEM
                let v = try pop("SETITEM")
                let k = try pop("SETITEM")
                try setItems(try dictTop("SETITEM"), [k, v])
            case 0x75:  // SETITEMS
                let items = try popMark("SETITEMS")
                try setItems(try dictTop("SETITEMS"), items)

            // Scalars
            case 0x4E: stack.append(.leaf(.none))
            case 0x88: stack.append(.leaf(.bool(true)))
            case 0x89: stack.append(.leaf(.bool(false)))
            case 0x4A: stack.append(.leaf(.int(Int64(try c.readI32("BININT")))))
            case 0x4B: stack.append(.leaf(.int(Int64(try c.readU8("BININT1")))))
            case 0x4D: stack.append(.leaf(.int(Int64(try c.readU16("BININT2")))))
            case 0x8A:  // LONG1
                let n = Int(try c.readU8("LONG1 length"))
                stack.append(.leaf(long(try c.bytes(n, "LONG1 bytes"))))
            case 0x8B:  // LONG4
                let n = Int(try c.readI32("LONG4 length"))
                guard n >= 0, n <= Self.maxLongBytes else {
                    throw fail("LONG4 of \(n) bytes is outside 0…\(Self.maxLongBytes)")
                }
                stack.append(.leaf(long(try c.bytes(n, "LONG4 bytes"))))
            case 0x47: stack.append(.leaf(.float(try c.readF64BE("BINFLOAT"))))

            // Strings and bytes (lengths checked against the bytes left before anything is read)
            case 0x58: stack.append(.leaf(.string(try text(UInt64(try c.readU32("BINUNICODE length")), "BINUNICODE"))))
            case 0x8C:
                stack.append(
                    .leaf(.string(try text(UInt64(try c.readU8("SHORT_BINUNICODE length")), "SHORT_BINUNICODE"))))
            case 0x8D: stack.append(.leaf(.string(try text(try c.readU64("BINUNICODE8 length"), "BINUNICODE8"))))
            case 0x55:  // SHORT_BINSTRING (a Python 2 str): text, as torch.load decodes it (utf-8)
                stack.append(
                    .leaf(.string(try text(UInt64(try c.readU8("SHORT_BINSTRING length")), "SHORT_BINSTRING"))))
            case 0x42:
                stack.append(
                    .leaf(.bytes(Array(try c.bytes(count: UInt64(try c.readU32("BINBYTES length")), "BINBYTES")))))
            case 0x43:
                stack.append(
                    .leaf(.bytes(Array(try c.bytes(Int(try c.readU8("SHORT_BINBYTES length")), "SHORT_BINBYTES")))))
            case 0x8E:
                stack.append(.leaf(.bytes(Array(try c.bytes(count: try c.readU64("BINBYTES8 length"), "BINBYTES8")))))

            // Memo
            case 0x71: try put(UInt32(try c.readU8("BINPUT index")))
            case 0x72: try put(try c.readU32("LONG_BINPUT index"))
            case 0x94: try put(UInt32(truncatingIfNeeded: memo.count))  // MEMOIZE
            case 0x68: try get(UInt32(try c.readU8("BINGET index")))
            case 0x6A: try get(try c.readU32("LONG_BINGET index"))

            // Globals and construction
            case 0x63:  // GLOBAL "module\nname\n"
                let module = try line("GLOBAL module")
                let name = try line("GLOBAL name")
                stack.append(.global(try allow(module, name)))
            case 0x93:  // STACK_GLOBAL
                let n = try pop("STACK_GLOBAL")
                let m = try pop("STACK_GLOBAL")
                guard case .leaf(.string(let module)) = m, case .leaf(.string(let name)) = n else {
                    throw fail("STACK_GLOBAL needs two strings")
                }
                stack.append(.global(try allow(module, name)))
            case 0x52:  // REDUCE
                let args = try pop("REDUCE")
                let callee = try pop("REDUCE")
                stack.append(try apply(callee, args))
            case 0x81:  // NEWOBJ: cls.__new__(cls, *args), as torch's weights-only unpickler does it
                let args = try pop("NEWOBJ")
                let cls = try pop("NEWOBJ")
                stack.append(try newObject(cls, args))
            case 0x62:  // BUILD
                let state = try pop("BUILD")
                guard let top = stack.last, stack.count > floor else {
                    throw fail("BUILD on an empty stack (stack underflow)")
                }
                switch top {
                case .dict: break  // OrderedDict._metadata: not needed
                case .leaf(.tensor(let t)): stack[stack.count - 1] = .leaf(.tensor(try buildTensor(t, state)))
                default: throw fail("BUILD on \(describe(top)) is not supported")
                }
            case 0x51:  // BINPERSID
                let pid = try pop("BINPERSID")
                var budget = 64
                var active = Set<ObjectIdentifier>()
                let v = try convert(pid, depth: 0, budget: &budget, active: &active)
                stack.append(.leaf(try persistentLoad(v)))
            default:
                throw fail("unsupported pickle opcode 0x\(String(op, radix: 16)) (not needed by a state dict)")
            }
        }
    }

    // MARK: - Opcode helpers

    private func long(_ b: UnsafeRawBufferPointer) -> PickleValue {
        guard b.count <= 8 else { return .bigInt(Array(b)) }
        guard let last = b.last else { return .int(0) }
        var v: UInt64 = last & 0x80 != 0 ? ~0 : 0  // sign extension
        for (i, byte) in b.enumerated() {
            v &= ~(UInt64(0xFF) << (8 * UInt64(i)))
            v |= UInt64(byte) << (8 * UInt64(i))
        }
        return .int(Int64(bitPattern: v))
    }

    private mutating func text(_ n: UInt64, _ op: String) throws -> String {
        let b = try c.bytes(count: n, "\(op) string")
        guard let s = String(validating: b, as: UTF8.self) else { throw fail("\(op) string is not valid UTF-8") }
        return s
    }

    /// A newline-terminated line (GLOBAL's operands), at most 256 bytes.
    private mutating func line(_ what: String) throws -> String {
        let start = c.position
        let limit = min(c.remaining, 257)
        var n = 0
        while n < limit, c.buffer[start + n] != 0x0A { n += 1 }
        guard n < limit else { throw fail("\(what) is not a newline-terminated name of at most 256 bytes") }
        let s = try c.string(n, what)
        try c.skip(1)
        return s
    }

    private func allow(_ module: String, _ name: String) throws -> String {
        if let q = PickleAllowlist.resolve(module: module, name: name) { return q }
        let q = "\(PickleAllowlist.canonicalModule(module)).\(name)"
        if let reason = PickleAllowlist.refused[q] { throw fail("pickle asks for \(q): \(reason)") }
        throw fail("pickle asks for non-allowlisted global \(printable(q))")
    }

    private func printable(_ s: String) -> String {
        String(s.unicodeScalars.prefix(100).map { $0.value >= 0x20 && $0.value < 0x7F ? Character($0) : "?" })
    }

    private mutating func put(_ i: UInt32) throws {
        guard let top = stack.last, stack.count > floor else { throw fail("memo store on an empty stack") }
        memo[i] = top
    }

    private mutating func get(_ i: UInt32) throws {
        guard let v = memo[i] else { throw fail("memo index \(i) was never stored") }
        stack.append(v)
    }

    private func listTop(_ op: String) throws -> PList {
        guard stack.count > floor, case .list(let l)? = stack.last else {
            throw fail("\(op) on something that is not a list")
        }
        return l
    }

    private func dictTop(_ op: String) throws -> PDict {
        guard stack.count > floor, case .dict(let d)? = stack.last else {
            throw fail("\(op) on something that is not a dict")
        }
        return d
    }

    private func setItems(_ d: PDict, _ items: [Obj]) throws {
        guard items.count % 2 == 0 else { throw fail("odd number of items for a dict (\(items.count))") }
        var i = 0
        while i < items.count {
            let k = items[i], v = items[i + 1]
            if let h = hashKey(k), let at = d.index[h] {
                d.values[at] = v
            } else {
                if let h = hashKey(k) { d.index[h] = d.keys.count }
                d.keys.append(k)
                d.values.append(v)
            }
            i += 2
        }
    }

    private func describe(_ o: Obj) -> String {
        switch o {
        case .leaf(let v): v.kindName
        case .tuple: "a tuple"
        case .list: "a list"
        case .dict: "a dict"
        case .set: "a set"
        case .global(let n): n
        }
    }

    // MARK: - Builders (the allowlisted callables, reimplemented)

    private mutating func apply(_ callee: Obj, _ argsObj: Obj) throws -> Obj {
        guard case .global(let name) = callee else {
            throw fail("REDUCE calls \(describe(callee)), which is not a callable")
        }
        guard case .tuple(let argsBox) = argsObj else { throw fail("REDUCE arguments for \(name) are not a tuple") }
        let args = argsBox.items
        switch name {
        case "collections.OrderedDict", "collections.Counter":
            // OrderedDict() (items follow by SETITEMS); Counter(dict) as Counter.__reduce__ writes it;
            // OrderedDict(dict) or OrderedDict([(key, value), …]).
            let d = newDict()
            if args.isEmpty { return .dict(d) }
            guard args.count == 1 else { throw fail("\(name) called with \(args.count) arguments") }
            switch args[0] {
            case .dict(let from): try setItems(d, Array(zip(from.keys, from.values).flatMap { [$0, $1] }))
            case .list(let pairs) where name == "collections.OrderedDict":
                for p in pairs.items {
                    guard case .tuple(let kv) = p, kv.items.count == 2 else {
                        throw fail("\(name) called with a list holding \(describe(p)), not (key, value) pairs")
                    }
                    try setItems(d, kv.items)
                }
            default: throw fail("\(name) called with \(describe(args[0]))")
            }
            return .dict(d)
        case "builtins.set", "builtins.frozenset":
            if args.isEmpty { return .set(newList()) }
            guard args.count == 1 else { throw fail("\(name) called with \(args.count) arguments") }
            switch args[0] {
            case .list(let l), .set(let l), .tuple(let l): return .set(newList(l.items))
            default: throw fail("\(name) called with \(describe(args[0]))")
            }
        case "_codecs.encode":
            guard args.count == 2, case .leaf(.string(let s)) = args[0] else {
                throw fail("_codecs.encode supported only as (str, 'latin1')")
            }
            return .leaf(.bytes(try latin1(s, args[1], "_codecs.encode")))
        case "builtins.bytearray":
            // bytearray(), bytearray(bytes), bytearray(str, "latin-1") (protocol-2 form)
            switch args.count {
            case 0: return .leaf(.bytes([]))
            case 1:
                guard case .leaf(.bytes(let b)) = args[0] else {
                    throw fail("bytearray called with \(describe(args[0]))")
                }
                return .leaf(.bytes(b))
            case 2:
                guard case .leaf(.string(let s)) = args[0] else {
                    throw fail("bytearray called with \(describe(args[0]))")
                }
                return .leaf(.bytes(try latin1(s, args[1], "bytearray")))
            default: throw fail("bytearray called with \(args.count) arguments")
            }
        case "builtins.complex":
            guard args.count <= 2 else { throw fail("complex called with \(args.count) arguments") }
            let re = args.count > 0 ? try real(args[0], "complex real part") : 0
            let im = args.count > 1 ? try real(args[1], "complex imaginary part") : 0
            return .leaf(.complex(re, im))
        case "torch.Size":
            guard args.count <= 1 else { throw fail("torch.Size called with \(args.count) arguments, expected 1") }
            let dims = args.isEmpty ? [] : try ints(args[0], "torch.Size argument")
            return .tuple(newList(dims.map { .leaf(.int(Int64($0))) }))
        case "torch.device":
            guard (1 ... 2).contains(args.count), case .leaf(.string(let type)) = args[0] else {
                throw fail("torch.device needs (type[, index])")
            }
            if args.count == 2, case .leaf(.int(let i)) = args[1] { return .leaf(.string("\(type):\(i)")) }
            return .leaf(.string(type))
        case "torch.serialization._get_layout":
            guard args.count == 1, case .leaf(.string(let layout)) = args[0], Self.layouts.contains(layout) else {
                throw fail("torch.serialization._get_layout needs the name of a torch layout")
            }
            return .global(layout)
        case "torch.nn.parameter.Parameter":
            // Parameter(data[, requires_grad=True])
            guard (1 ... 2).contains(args.count), case .leaf(.tensor(let t)) = args[0] else {
                throw fail("torch.nn.Parameter needs (tensor[, requires_grad])")
            }
            let rg = args.count == 2 ? try bool(args[1], "Parameter requires_grad") : true
            return .leaf(.tensor(t.withParameter(true, requiresGrad: rg)))
        case "torch._utils._rebuild_tensor", "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor_v3":
            return .leaf(.tensor(try rebuildTensor(name, args)))
        case "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state":
            // (data, requires_grad, backward_hooks[, state]): hooks and Python attributes are not needed
            guard args.count >= 2, case .leaf(.tensor(let t)) = args[0] else {
                throw fail("\(name) needs (tensor, requires_grad, …)")
            }
            return .leaf(.tensor(t.withParameter(true, requiresGrad: try bool(args[1], "\(name) requires_grad"))))
        case "torch._tensor._rebuild_from_type_v2":
            // (func, new_type, args, state): rebuild with func; the subclass and state are not needed.
            // func may itself be _rebuild_from_type_v2: unwrapped in a loop, not by recursion, so the
            // input cannot choose the native stack depth (30,000 levels overflowed it).
            var (fn, fnArgs, parameter, levels) = (callee, argsObj, false, 0)
            while case .global("torch._tensor._rebuild_from_type_v2") = fn {
                levels += 1
                guard levels <= Self.maxDepth else { throw fail("pickle nests deeper than \(Self.maxDepth) levels") }
                guard case .tuple(let box) = fnArgs else { throw fail("REDUCE arguments for \(name) are not a tuple") }
                let a = box.items
                guard a.count == 4, case .global(let t) = a[1],
                    t == "torch.Tensor" || t == "torch.nn.parameter.Parameter"
                else { throw fail("_rebuild_from_type_v2 supported only for torch.Tensor and Parameter") }
                parameter = parameter || t == "torch.nn.parameter.Parameter"
                (fn, fnArgs) = (a[0], a[2])
            }
            guard case .global(let inner) = fn, inner.hasPrefix("torch._utils._rebuild_") else {
                throw fail("_rebuild_from_type_v2 rebuilds with \(describe(fn)), not a tensor rebuild function")
            }
            let built = try apply(fn, fnArgs)
            guard case .leaf(.tensor(let tensor)) = built else {
                throw fail("_rebuild_from_type_v2 did not build a tensor")
            }
            return parameter ? .leaf(.tensor(tensor.withParameter(true, requiresGrad: tensor.requiresGrad))) : built
        default:
            throw fail("REDUCE calls \(name), which is not a constructor the checkpoint reader accepts")
        }
    }

    /// NEWOBJ: `cls.__new__(cls, *args)`. The containers' `__new__` ignores its arguments (their
    /// items follow as SETITEMS / APPENDS), complex, frozenset, torch.Size and torch.device take them,
    /// and nn.Parameter is called, as in torch's weights-only unpickler.
    private mutating func newObject(_ cls: Obj, _ args: Obj) throws -> Obj {
        guard case .global(let name) = cls else { throw fail("NEWOBJ of \(describe(cls)) is not supported") }
        guard case .tuple = args else { throw fail("NEWOBJ arguments for \(name) are not a tuple") }
        switch name {
        case "collections.OrderedDict", "collections.Counter": return .dict(newDict())
        case "builtins.set": return .set(newList())
        case "builtins.bytearray": return .leaf(.bytes([]))
        case "builtins.frozenset", "builtins.complex", "torch.Size", "torch.device", "torch.nn.parameter.Parameter":
            return try apply(cls, args)
        default: throw fail("NEWOBJ of \(name) is not supported")
        }
    }

    /// The layouts `torch.serialization._get_layout` knows (`str()` of each torch.layout).
    static let layouts: Set<String> = [
        "torch.strided", "torch.sparse_coo", "torch.sparse_csr", "torch.sparse_csc", "torch.sparse_bsr",
        "torch.sparse_bsc", "torch._mkldnn", "torch.jagged",
    ]

    /// BUILD on a tensor: `Tensor.__setstate__` (legacy pickles). A 4-tuple re-points the tensor
    /// (`set_(storage, offset, size, stride)`); torch's 3-tuple (requires_grad, _, hooks) of a
    /// Parameter only sets requires_grad. Any other state would change the tensor in ways not
    /// rebuilt here, so it is refused.
    private func buildTensor(_ t: TorchTensor, _ state: Obj) throws -> TorchTensor {
        guard case .tuple(let box) = state else { throw fail("BUILD on a tensor with \(describe(state)) state") }
        let a = box.items
        switch a.count {
        case 4:
            guard case .leaf(.storage(let storage)) = a[0] else {
                throw fail("BUILD on a tensor: set_ with \(describe(a[0])), not a storage")
            }
            return try TorchTensor(
                storage: storage, shape: try ints(a[2], "BUILD size"), strides: try ints(a[3], "BUILD stride"),
                storageOffset: try int(a[1], "BUILD storage offset"), isParameter: t.isParameter,
                requiresGrad: t.requiresGrad)
        case 3 where t.isParameter:
            return t.withParameter(true, requiresGrad: try bool(a[0], "BUILD requires_grad"))
        default:
            throw fail("BUILD on a tensor with a \(a.count)-tuple state is not supported")
        }
    }

    /// `_rebuild_tensor(storage, storage_offset, size, stride)`,
    /// `_rebuild_tensor_v2(…, requires_grad, backward_hooks[, metadata])`,
    /// `_rebuild_tensor_v3(…, requires_grad, backward_hooks, dtype[, metadata])` (the storage's bytes
    /// read as `dtype`: how torch saves the dtypes without a legacy storage class).
    private mutating func rebuildTensor(_ name: String, _ args: [Obj]) throws -> TorchTensor {
        let v3 = name == "torch._utils._rebuild_tensor_v3"
        let range = name == "torch._utils._rebuild_tensor" ? 4 ... 4 : v3 ? 7 ... 8 : 4 ... 7
        guard range.contains(args.count) else { throw fail("\(name) called with \(args.count) arguments") }
        guard case .leaf(.storage(var storage)) = args[0] else {
            throw fail("\(name): first argument is \(describe(args[0])), not a storage")
        }
        let offset = try int(args[1], "\(name) storage offset")
        let shape = try ints(args[2], "\(name) size")
        let strides = try ints(args[3], "\(name) stride")
        let rg = args.count > 4 ? try bool(args[4], "\(name) requires_grad") : false
        if v3 {
            guard case .global(let dname) = args[6], let dtype = TorchDType.fromTorchName(dname) else {
                throw fail("\(name): dtype is \(describe(args[6])), not a dtype a tensor here can have")
            }
            storage = retype(storage, dtype)
        }
        let metadataAt = v3 ? 7 : 6
        if args.count > metadataAt { try checkMetadata(args[metadataAt], name) }
        return try TorchTensor(
            storage: storage, shape: shape, strides: strides, storageOffset: offset, requiresGrad: rg)
    }

    /// The storage's bytes as `dtype` elements (a trailing partial element is not reachable).
    private mutating func retype(_ s: TorchStorage, _ dtype: TorchDType) -> TorchStorage {
        if s.dtype == dtype { return s }
        let key = "\(s.key)\u{0}\(dtype.rawValue)"
        if let r = retyped[key] { return r }
        let n = s.bytes.count / dtype.size
        let r = TorchStorage(
            key: s.key, dtype: dtype, count: n, bytes: UnsafeRawBufferPointer(rebasing: s.bytes[0 ..< n * dtype.size]),
            file: s.file)
        retyped[key] = r
        return r
    }

    /// `get_tensor_metadata`: torch sets the conj / neg view bits from it, which flip the values of
    /// the stored bytes. The converter reads the bytes as they are, so a set bit is refused.
    private func checkMetadata(_ o: Obj, _ name: String) throws {
        switch o {
        case .leaf(.none): return
        case .dict(let d):
            for (k, v) in zip(d.keys, d.values) {
                guard case .leaf(.string(let key)) = k else { throw fail("\(name): metadata key is \(describe(k))") }
                if case .leaf(.bool(false)) = v { continue }
                throw fail(
                    "\(name): the tensor has torch's \(printable(key)) bit set (save t.resolve_conj().resolve_neg())")
            }
        default: throw fail("\(name): metadata is \(describe(o)), not a dict")
        }
    }

    private func latin1(_ s: String, _ encoding: Obj, _ what: String) throws -> [UInt8] {
        guard case .leaf(.string(let enc)) = encoding, enc == "latin1" || enc == "latin-1" else {
            throw fail("\(what) supported only with the latin1 encoding")
        }
        var bytes: [UInt8] = []
        for u in s.unicodeScalars {
            guard u.value < 256 else { throw fail("\(what): character U+\(String(u.value, radix: 16)) is not latin1") }
            bytes.append(UInt8(u.value))
        }
        return bytes
    }

    private func real(_ o: Obj, _ what: String) throws -> Double {
        switch o {
        case .leaf(.float(let f)): return f
        case .leaf(.int(let i)): return Double(i)
        case .leaf(.bool(let b)): return b ? 1 : 0
        default: throw fail("\(what) is \(describe(o)), expected a number")
        }
    }

    private func int(_ o: Obj, _ what: String) throws -> Int {
        guard case .leaf(.int(let v)) = o else { throw fail("\(what) is \(describe(o)), expected an int") }
        return Int(v)
    }

    private func bool(_ o: Obj, _ what: String) throws -> Bool {
        switch o {
        case .leaf(.bool(let b)): return b
        case .leaf(.int(let i)): return i != 0
        default: throw fail("\(what) is \(describe(o)), expected a bool")
        }
    }

    private func ints(_ o: Obj, _ what: String) throws -> [Int] {
        let items: [Obj]
        switch o {
        case .tuple(let t): items = t.items
        case .list(let l): items = l.items
        default: throw fail("\(what) is \(describe(o)), expected a tuple of ints")
        }
        return try items.map { try int($0, what) }
    }

    // MARK: - Object graph → value tree

    private func convert(_ o: Obj, depth: Int, budget: inout Int, active: inout Set<ObjectIdentifier>) throws
        -> PickleValue
    {
        budget -= 1
        guard budget >= 0 else { throw fail("pickle expands to too many objects (shared references)") }
        guard depth <= Self.maxDepth else { throw fail("pickle nests deeper than \(Self.maxDepth) levels") }
        func enter(_ x: AnyObject) throws -> ObjectIdentifier {
            let id = ObjectIdentifier(x)
            guard active.insert(id).inserted else { throw fail("pickle contains a reference cycle") }
            return id
        }
        switch o {
        case .leaf(let v): return v
        case .global(let n): return .global(n)
        case .tuple(let t):
            return .tuple(try t.items.map { try convert($0, depth: depth + 1, budget: &budget, active: &active) })
        case .list(let l):
            let id = try enter(l)
            defer { active.remove(id) }
            return .list(try l.items.map { try convert($0, depth: depth + 1, budget: &budget, active: &active) })
        case .set(let l):
            let id = try enter(l)
            defer { active.remove(id) }
            return .set(try l.items.map { try convert($0, depth: depth + 1, budget: &budget, active: &active) })
        case .dict(let d):
            let id = try enter(d)
            defer { active.remove(id) }
            var out: [(key: PickleValue, value: PickleValue)] = []
            out.reserveCapacity(d.keys.count)
            for (k, v) in zip(d.keys, d.values) {
                out.append(
                    (
                        try convert(k, depth: depth + 1, budget: &budget, active: &active),
                        try convert(v, depth: depth + 1, budget: &budget, active: &active)
                    ))
            }
            return .dict(out)
        }
    }
}
