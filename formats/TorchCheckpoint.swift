/// A PyTorch checkpoint written by `torch.save` (the zip format of torch ≥ 1.6):
///
///     <prefix>/data.pkl       the pickled object (decoded by PickleMachine, allowlisted globals only)
///     <prefix>/byteorder      "little" (absent in older files, which are little-endian)
///     <prefix>/data/<key>     one STORED entry per storage, read in place
///
/// The prefix folder is whatever torch.save chose (`archive`, the file's stem, …).
public final class TorchCheckpoint: @unchecked Sendable {
    public let path: String
    public let archive: ZipArchive
    /// The archive folder, with its trailing slash (e.g. "archive/").
    public let prefix: String
    /// The decoded object.
    public let root: PickleValue

    public convenience init(path: String) throws {
        try self.init(file: MappedFile(path: path))
    }

    public init(file: MappedFile) throws {
        path = file.path
        // torch.save(..., _use_new_zipfile_serialization=False) starts with a pickled magic number.
        let legacyMagic: [UInt8] = [0x80, 0x02, 0x8A, 0x0A, 0x6C, 0xFC, 0x9C, 0x46, 0xF9, 0x20, 0x6A, 0xA8, 0x50, 0x19]
        if file.bytes.starts(with: legacyMagic) {
            throw FormatError(
                file.path, "legacy (pre-zip) torch.save format is not supported; re-save with a current torch")
        }
        archive = try ZipArchive(file: file)

        let pickles = archive.entries.filter { e in
            e.name.hasSuffix("/data.pkl") && e.name.dropLast("/data.pkl".count).allSatisfy { $0 != "/" }
        }
        guard let pkl = pickles.first else {
            throw FormatError(file.path, "not a torch.save checkpoint: no <folder>/data.pkl entry in the zip")
        }
        guard pickles.count == 1 else {
            throw FormatError(
                file.path,
                "ambiguous checkpoint: \(pickles.count) data.pkl entries (\(pickles.map(\.name).prefix(4).joined(separator: ", ")))"
            )
        }
        let prefix = String(pkl.name.dropLast("data.pkl".count))
        self.prefix = prefix

        if let bo = archive.entry(named: prefix + "byteorder") {
            let b = try archive.data(bo)
            guard b.count <= 16, String(decoding: b, as: UTF8.self) == "little" else {
                throw FormatError(
                    file.path,
                    "checkpoint byteorder is \"\(String(decoding: b.prefix(16), as: UTF8.self))\", only \"little\" is supported"
                )
            }
        }

        // The pickle is small and steers everything else: a corrupted byte must not change meaning.
        try archive.verifyCRC(pkl)
        let archive = self.archive
        var storages: [String: TorchStorage] = [:]
        root = try PickleMachine.load(try archive.data(pkl), file: file.path, what: pkl.name) { pid in
            try TorchCheckpoint.loadStorage(pid, archive: archive, prefix: prefix, cache: &storages)
        }
    }

    /// `('storage', torch.<T>Storage, key, location, numel)` → the entry `<prefix>data/<key>`.
    static func loadStorage(
        _ pid: PickleValue, archive: ZipArchive, prefix: String,
        cache: inout [String: TorchStorage]
    ) throws -> PickleValue {
        let path = archive.path
        // torch.load accepts the strings as str or (from Python 2 pickles) ASCII bytes.
        func text(_ v: PickleValue) -> String? {
            switch v {
            case .string(let s): s
            case .bytes(let b) where b.allSatisfy({ $0 < 0x80 }): String(decoding: b, as: UTF8.self)
            default: nil
            }
        }
        guard case .tuple(let t) = pid, t.count == 5, text(t[0]) == "storage",
            case .global(let type) = t[1], let key = text(t[2]), case .int(let numel) = t[4]
        else {
            throw FormatError(path, "persistent id is not ('storage', type, key, location, numel)")
        }
        let typeName = String(type.split(separator: ".").last ?? "")
        guard type.hasPrefix("torch."), let dtype = TorchDType.fromStorageType(typeName) else {
            let why = typeName.hasPrefix("Q") ? " (quantized storages are not supported)" : ""
            throw FormatError(path, "storage \(key) has unsupported type \(type)\(why)")
        }
        if let s = cache[key] {
            // torch keeps one storage per key; a second view of it must agree on its type.
            guard s.dtype == dtype else {
                throw FormatError(path, "storage \(key) is used as both \(s.dtype) and \(dtype)")
            }
            return .storage(s)
        }
        let name = prefix + "data/" + key
        guard let entry = archive.entry(named: name) else {
            throw FormatError(path, "storage \(key): zip entry \(name) is missing")
        }
        let (bytes, overflow) = Int(clamping: numel).multipliedReportingOverflow(by: dtype.size)
        guard numel >= 0, !overflow, UInt64(bytes) <= entry.uncompressedSize else {
            throw FormatError(
                path,
                "storage \(key): \(numel) elements of \(dtype) need more than the \(entry.uncompressedSize) bytes of \(name)"
            )
        }
        let data = try archive.data(entry)
        let s = TorchStorage(
            key: key, dtype: dtype, count: Int(numel),
            bytes: UnsafeRawBufferPointer(rebasing: data[0 ..< bytes]), file: archive.file)
        cache[key] = s
        return .storage(s)
    }

    // MARK: - Navigation

    /// The value reached by following string keys from the root (`[]` is the root itself).
    public func value(at keys: [String]) throws -> PickleValue {
        var v = root
        var walked: [String] = []
        for k in keys {
            guard case .dict(let items) = v else {
                throw FormatError(path, "\(describe(walked)) is \(v.kindName), not a dict, so it has no key \"\(k)\"")
            }
            guard let next = v[k] else {
                let have = items.prefix(12).map { $0.key.stringValue.map { "\"\($0)\"" } ?? $0.key.kindName }
                throw FormatError(
                    path,
                    "key \"\(k)\" missing in \(describe(walked)) (has \(have.joined(separator: ", "))\(items.count > 12 ? ", …" : ""))"
                )
            }
            walked.append(k)
            v = next
        }
        return v
    }

    /// A state dict — a dict of name → tensor — at `keys` (e.g. `["state_dict"]`, `["generator"]`),
    /// in saved order.
    public func stateDict(at keys: [String] = []) throws -> [(name: String, tensor: TorchTensor)] {
        let v = try value(at: keys)
        guard case .dict(let items) = v else {
            throw FormatError(path, "\(describe(keys)) is \(v.kindName), not a state dict")
        }
        return try items.map { k, val in
            guard case .string(let name) = k else {
                throw FormatError(path, "\(describe(keys)) has a \(k.kindName) key, not a state dict of named tensors")
            }
            guard case .tensor(let t) = val else {
                throw FormatError(path, "\(describe(keys))[\"\(name)\"] is \(val.kindName), not a tensor")
            }
            return (name, t)
        }
    }

    /// The tensors of the state dict at `keys` whose names start with `prefix` (names kept whole).
    public func tensors(prefix: String, at keys: [String] = []) throws -> [(name: String, tensor: TorchTensor)] {
        try stateDict(at: keys).filter { $0.name.hasPrefix(prefix) }
    }

    private func describe(_ keys: [String]) -> String {
        keys.isEmpty ? "the checkpoint root" : keys.map { "[\"\($0)\"]" }.joined()
    }
}
