import CZstd

/// One directory entry of a .kaf file (formats/KAF.md).
public struct KAFEntry: Sendable, Equatable {
    public let name: String
    public let dtype: DType
    public let compression: KAF.Compression
    public let shape: [Int]
    public let offset: Int
    public let storedSize: Int
    public let rawSize: Int
    public let checksum: UInt64

    public var elementCount: Int { shape.reduce(1, *) }
    /// The component an entry belongs to: the part of the name before the first dot.
    public var component: String { String(name.prefix { $0 != "." }) }

    func encode(into out: inout [UInt8]) {
        out.appendLE(dtype.rawValue)
        out.appendLE(compression.rawValue)
        out.appendLE(UInt32(shape.count))
        out.appendLE(UInt32(name.utf8.count))
        for i in 0 ..< KAF.maxDims { out.appendLE(UInt64(i < shape.count ? shape[i] : 0)) }
        out.appendLE(UInt64(offset)); out.appendLE(UInt64(storedSize)); out.appendLE(UInt64(rawSize))
        out.appendLE(checksum)
        out += Array(name.utf8)
        while out.count % 8 != 0 { out.append(0) }
    }
}

/// A tensor read in place from the mapping.
public struct KAFTensor {
    public let entry: KAFEntry
    public let data: UnsafeRawPointer
    public var dtype: DType { entry.dtype }
    public var shape: [Int] { entry.shape }
    public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: data, count: entry.storedSize) }
}

/// A .kaf file, mmapped and validated before any pointer is handed out.
public final class KAFFile: @unchecked Sendable {
    public let file: MappedFile
    public let entries: [KAFEntry]
    public let meta: JSONValue
    private let index: [String: Int]
    public var path: String { file.path }

    public init(path: String, verify: Bool = false) throws {
        file = try MappedFile(path: path)
        let (entries, index) = try KAFFile.parse(file)
        self.entries = entries
        self.index = index
        if verify { try KAFFile.verifyChecksums(file, entries) }
        guard let mi = index[KAF.metaBlobName] else { throw FormatError(path, "no \(KAF.metaBlobName) entry") }
        let me = entries[mi]
        guard me.compression == .none else { throw FormatError(path, "\(KAF.metaBlobName) must not be compressed") }
        do {
            meta = try JSONValue.parse(UnsafeRawBufferPointer(start: file.base + me.offset, count: me.storedSize), file: path)
        } catch let e as FormatError {
            throw FormatError(path, "\(KAF.metaBlobName): \(e.message)")
        }
        guard meta["format"]?.stringValue == "kaf" else { throw FormatError(path, "\(KAF.metaBlobName) has no \"format\": \"kaf\"") }
    }

    public func entry(_ name: String) -> KAFEntry? { index[name].map { entries[$0] } }

    public func tensor(_ name: String) throws -> KAFTensor {
        guard let i = index[name] else { throw FormatError(path, "no tensor '\(name)'") }
        let e = entries[i]
        guard e.compression == .none else { throw FormatError(path, "'\(name)' is a compressed blob, not a tensor") }
        return KAFTensor(entry: e, data: file.base + e.offset)
    }

    /// A blob's bytes, decompressed.
    public func blob(_ name: String) throws -> [UInt8] {
        guard let i = index[name] else { throw FormatError(path, "no blob '\(name)'") }
        let e = entries[i]
        let stored = UnsafeRawBufferPointer(start: file.base + e.offset, count: e.storedSize)
        switch e.compression {
        case .none: return Array(stored)
        case .zstd:
            let content = ZSTD_getFrameContentSize(stored.baseAddress, stored.count)
            guard content == UInt64(e.rawSize) else {
                throw FormatError(path, "blob '\(name)': zstd frame size \(Int64(bitPattern: content)) does not match the directory (\(e.rawSize))")
            }
            var out = [UInt8](repeating: 0, count: e.rawSize)
            let n = out.withUnsafeMutableBytes { ZSTD_decompress($0.baseAddress, $0.count, stored.baseAddress, stored.count) }
            guard ZSTD_isError(n) == 0, n == e.rawSize else { throw FormatError(path, "blob '\(name)': corrupt zstd data") }
            return out
        }
    }

    /// Lets the system drop the mapped pages of `components`' entries: they stay in the page cache while
    /// memory allows and are mapped again on their next read. A pipeline that runs its components in
    /// turn (talk: the LLM, then the detokenizer, then the LLM) keeps only the running one resident.
    public func releasePages(of components: Set<String>) {
        for e in entries where components.contains(e.component) {
            file.advise(willNeed: false, offset: e.offset, length: e.storedSize)
        }
    }

    /// Names of the components present (`llm`, `whisper`, …), sorted.
    public var components: [String] { Array(Set(entries.map(\.component))).filter { $0 != "kaf" && $0 != "tokenizer" }.sorted() }

    public func verifyChecksums() throws { try KAFFile.verifyChecksums(file, entries) }

    // MARK: validation

    static func verifyChecksums(_ file: MappedFile, _ entries: [KAFEntry]) throws {
        for e in entries {
            let h = XXH64.hash(UnsafeRawBufferPointer(start: file.base + e.offset, count: e.storedSize))
            guard h == e.checksum else { throw FormatError(file.path, "checksum mismatch in '\(e.name)' (file is corrupt)") }
        }
    }

    static func parse(_ file: MappedFile) throws -> ([KAFEntry], [String: Int]) {
        let path = file.path
        guard file.count >= KAF.headerSize else {
            throw FormatError(path, "not a .kaf file (\(file.count) bytes, shorter than the \(KAF.headerSize)-byte header)")
        }
        var c = ByteCursor(file.bytes, file: path)
        let magic = try c.bytes(4, "magic")
        guard Array(magic) == KAF.magic else { throw FormatError(path, "not a .kaf file (bad magic)") }
        let version = try c.readU32()
        guard version == KAF.version else { throw FormatError(path, "unsupported .kaf version \(version) (this build reads \(KAF.version))") }
        let headerHash = XXH64.hash(UnsafeRawBufferPointer(rebasing: file.bytes[0 ..< 120]))
        let storedHash = file.base.loadUnaligned(fromByteOffset: 120, as: UInt64.self).littleEndian
        guard headerHash == storedHash else { throw FormatError(path, "header checksum mismatch (corrupt header)") }
        let alignment = try c.readU32(), flags = try c.readU32()
        guard alignment == UInt32(KAF.alignment) else { throw FormatError(path, "alignment \(alignment), expected \(KAF.alignment)") }
        guard flags == 0 else { throw FormatError(path, "unknown header flags \(flags)") }
        let fileSize = try c.readU64(), dataOffset = try c.readU64(), dataSize = try c.readU64()
        let dirOffset = try c.readU64(), dirSize = try c.readU64(), count = try c.readU64(), dirHash = try c.readU64()
        guard fileSize == UInt64(file.count) else {
            throw FormatError(path, "file is \(file.count) bytes but the header says \(fileSize) (truncated or padded)")
        }
        guard dataOffset == UInt64(KAF.headerSize) else { throw FormatError(path, "data offset \(dataOffset), expected \(KAF.headerSize)") }
        guard dataSize <= fileSize - dataOffset, dirOffset >= dataOffset + dataSize, dirOffset % 8 == 0,
              dirOffset <= fileSize, dirSize == fileSize - dirOffset else {
            throw FormatError(path, "directory (offset \(dirOffset), \(dirSize) bytes) or data section (\(dataSize) bytes) out of bounds")
        }
        guard count <= UInt64(KAF.maxEntries), count <= dirSize / UInt64(KAF.entryFixedSize) else {
            throw FormatError(path, "entry count \(count) does not fit the directory (\(dirSize) bytes)")
        }
        let dir = try file.slice(dirOffset, dirSize, what: "directory")
        guard XXH64.hash(dir) == dirHash else { throw FormatError(path, "directory checksum mismatch (corrupt directory)") }

        let dataEnd = Int(dataOffset + dataSize)
        var d = ByteCursor(dir, file: path)
        var entries: [KAFEntry] = []
        entries.reserveCapacity(Int(count))
        var index: [String: Int] = [:]
        for i in 0 ..< Int(count) {
            let rawType = try d.readU32("entry \(i) dtype")
            let rawComp = try d.readU32("entry \(i) compression")
            let nd = try d.readU32("entry \(i) n_dims")
            let nameLen = try d.readU32("entry \(i) name length")
            var dims: [UInt64] = []
            for _ in 0 ..< KAF.maxDims { dims.append(try d.readU64("entry \(i) shape")) }
            let off = try d.readU64(), stored = try d.readU64(), raw = try d.readU64(), sum = try d.readU64()
            guard nameLen >= 1, nameLen <= UInt32(KAF.maxNameLength) else { throw FormatError(path, "entry \(i): name length \(nameLen) out of range") }
            let name = try d.string(Int(nameLen), "entry \(i) name")
            guard !name.utf8.contains(0) else { throw FormatError(path, "entry \(i): name contains NUL") }
            try d.skip((8 - d.position % 8) % 8, "entry \(i) padding")
            guard let dtype = DType(rawValue: rawType) else { throw FormatError(path, "'\(name)': unknown dtype code \(rawType)") }
            guard let comp = KAF.Compression(rawValue: rawComp) else { throw FormatError(path, "'\(name)': unknown compression \(rawComp)") }
            guard nd <= UInt32(KAF.maxDims) else { throw FormatError(path, "'\(name)': \(nd) dims (at most \(KAF.maxDims))") }
            guard dims[Int(nd)...].allSatisfy({ $0 == 0 }), dims[..<Int(nd)].allSatisfy({ $0 <= UInt64(Int.max) }) else {
                throw FormatError(path, "'\(name)': malformed shape \(dims)")
            }
            let shape = dims[..<Int(nd)].map { Int($0) }
            guard let expect = dtype.byteCount(shape: shape) else {
                throw FormatError(path, "'\(name)': shape \(shape) does not fit dtype \(dtype.name)")
            }
            guard raw == UInt64(expect) else { throw FormatError(path, "'\(name)': size \(raw) bytes, but \(dtype.name) \(shape) needs \(expect)") }
            if comp == .zstd {
                guard dtype == .u8 else { throw FormatError(path, "'\(name)': only u8 blobs may be compressed") }
            } else {
                guard stored == raw else { throw FormatError(path, "'\(name)': stored size \(stored) differs from size \(raw) without compression") }
            }
            guard off % UInt64(KAF.alignment) == 0 else { throw FormatError(path, "'\(name)': offset \(off) not aligned to \(KAF.alignment)") }
            guard off >= dataOffset, off <= UInt64(dataEnd), stored <= UInt64(dataEnd) - off else {
                throw FormatError(path, "'\(name)': bytes \(off)..<\(off &+ stored) lie outside the data section")
            }
            guard index[name] == nil else { throw FormatError(path, "duplicate entry name '\(name)'") }
            index[name] = i
            entries.append(KAFEntry(name: name, dtype: dtype, compression: comp, shape: shape, offset: Int(off),
                                    storedSize: Int(stored), rawSize: Int(raw), checksum: sum))
        }
        guard d.atEnd else { throw FormatError(path, "\(d.remaining) unexpected bytes after the last directory entry") }
        // No overlaps.
        let sorted = entries.sorted { $0.offset < $1.offset }
        for (a, b) in zip(sorted, sorted.dropFirst()) where a.offset + a.storedSize > b.offset {
            throw FormatError(path, "entries '\(a.name)' and '\(b.name)' overlap")
        }
        return (entries, index)
    }
}
