/// A read-only view of a zip archive inside a `MappedFile`, as written by `torch.save`.
///
/// Only what a checkpoint needs: the central directory (with ZIP64, since real checkpoints pass
/// 4 GiB), each entry's local header (to find where its data starts) and zero-copy access to STORED
/// entries. Every size and offset read from the file is checked against the file before use, in
/// UInt64 arithmetic that cannot overflow, so a hostile archive produces a `FormatError`, not a trap.
public struct ZipEntry: Sendable, Equatable {
    public let name: String
    /// 0 = stored, 8 = deflate; only stored entries can be read.
    public let method: UInt16
    public let crc32: UInt32
    public let compressedSize: UInt64
    public let uncompressedSize: UInt64
    public let localHeaderOffset: UInt64
    /// Absolute file offset of the entry's first data byte (after the local header).
    public let dataOffset: UInt64
}

public final class ZipArchive: @unchecked Sendable {
    public let file: MappedFile
    /// In central-directory order.
    public let entries: [ZipEntry]
    private let index: [String: Int]

    public var path: String { file.path }

    public convenience init(path: String) throws {
        try self.init(file: MappedFile(path: path))
    }

    public init(file: MappedFile) throws {
        self.file = file
        let dir = try ZipArchive.locateCentralDirectory(file)
        var entries: [ZipEntry] = []
        // Each central record is at least 46 bytes, so the count is bounded by the directory size
        // (checked in locateCentralDirectory); reserving never exceeds what the file can hold.
        entries.reserveCapacity(Int(dir.count))
        var index: [String: Int] = [:]
        var cur = ByteCursor(try file.slice(dir.offset, dir.size, what: "zip central directory"), file: file.path)
        for i in 0 ..< Int(dir.count) {
            let e = try ZipArchive.readCentralEntry(&cur, number: i, file: file, dataLimit: dir.offset)
            if index[e.name] != nil { throw FormatError(file.path, "zip: duplicate entry \(e.name)") }
            index[e.name] = entries.count
            entries.append(e)
        }
        self.entries = entries
        self.index = index
    }

    public func entry(named name: String) -> ZipEntry? {
        index[name].map { entries[$0] }
    }

    /// The entry's bytes, in place in the mapping (no copy). Only STORED entries can be read.
    public func data(_ entry: ZipEntry) throws -> UnsafeRawBufferPointer {
        guard entry.method == 0 else {
            let kind = entry.method == 8 ? "deflate" : "method \(entry.method)"
            throw FormatError(file.path, "zip: compressed entry \(entry.name) (\(kind)) not supported; checkpoints must store entries uncompressed")
        }
        return try file.slice(entry.dataOffset, entry.uncompressedSize, what: "zip entry \(entry.name)")
    }

    /// Checks the entry's CRC-32 against the central directory (reads every byte: meant for small
    /// entries such as data.pkl, where a flipped byte would otherwise change the meaning silently).
    public func verifyCRC(_ entry: ZipEntry) throws {
        let crc = ZipCRC32.checksum(try data(entry))
        guard crc == entry.crc32 else {
            throw FormatError(file.path, "zip: CRC-32 mismatch in \(entry.name) (stored \(hex(entry.crc32)), computed \(hex(crc)))")
        }
    }

    // MARK: - End of central directory

    struct CentralDirectory { var offset: UInt64; var size: UInt64; var count: UInt64 }

    static let eocdSignature: UInt32 = 0x0605_4b50
    static let zip64LocatorSignature: UInt32 = 0x0706_4b50
    static let zip64EOCDSignature: UInt32 = 0x0606_4b50
    static let centralSignature: UInt32 = 0x0201_4b50
    static let localSignature: UInt32 = 0x0403_4b50

    static func locateCentralDirectory(_ file: MappedFile) throws -> CentralDirectory {
        let path = file.path
        let bytes = file.bytes
        guard bytes.count >= 22 else {
            throw FormatError(path, "not a zip archive: \(bytes.count) bytes, too short for an end-of-central-directory record")
        }
        // The EOCD is the last 22 bytes plus a comment of at most 65,535 bytes; search backwards
        // and take the last signature whose comment ends exactly at the end of the file.
        let lowest = max(0, bytes.count - 65_557)
        var eocd = -1
        var pos = bytes.count - 22
        while pos >= lowest {
            if bytes.loadUnaligned(fromByteOffset: pos, as: UInt32.self) == eocdSignature.littleEndian {
                let commentLen = Int(UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: pos + 20, as: UInt16.self)))
                if pos + 22 + commentLen == bytes.count { eocd = pos; break }
            }
            pos -= 1
        }
        guard eocd >= 0 else {
            throw FormatError(path, "not a zip archive (or truncated): no end-of-central-directory record in the last \(bytes.count - lowest) bytes")
        }
        var c = ByteCursor(bytes, file: path, position: eocd + 4)
        let disk = try c.readU16("EOCD disk number")
        let cdDisk = try c.readU16("EOCD central directory disk")
        let entriesOnDisk = try c.readU16("EOCD entries on disk")
        let entries16 = try c.readU16("EOCD entry count")
        let size32 = try c.readU32("EOCD central directory size")
        let offset32 = try c.readU32("EOCD central directory offset")
        var dir = CentralDirectory(offset: UInt64(offset32), size: UInt64(size32), count: UInt64(entries16))
        var dirEnd = UInt64(eocd)  // the directory must end before this

        // ZIP64: a locator sits immediately before the EOCD and points at the ZIP64 EOCD record.
        if eocd >= 20, bytes.loadUnaligned(fromByteOffset: eocd - 20, as: UInt32.self) == zip64LocatorSignature.littleEndian {
            var l = ByteCursor(bytes, file: path, position: eocd - 16)
            let z64Disk = try l.readU32("ZIP64 locator disk")
            let recordOffset = try l.readU64("ZIP64 EOCD offset")
            let disks = try l.readU32("ZIP64 locator disk count")
            guard z64Disk == 0, disks <= 1 else { throw FormatError(path, "zip: multi-disk archives are not supported") }
            guard recordOffset <= UInt64(eocd - 20), UInt64(eocd - 20) - recordOffset >= 56 else {
                throw FormatError(path, "zip: ZIP64 end-of-central-directory offset \(recordOffset) is outside the file")
            }
            var r = ByteCursor(bytes, file: path, position: Int(recordOffset))
            guard try r.readU32("ZIP64 EOCD signature") == zip64EOCDSignature else {
                throw FormatError(path, "zip: bad ZIP64 end-of-central-directory signature at offset \(recordOffset)")
            }
            _ = try r.readU64("ZIP64 EOCD record size")
            _ = try r.readU16("ZIP64 EOCD version made by")
            _ = try r.readU16("ZIP64 EOCD version needed")
            let d = try r.readU32("ZIP64 EOCD disk")
            let cd = try r.readU32("ZIP64 EOCD central directory disk")
            let onDisk = try r.readU64("ZIP64 EOCD entries on disk")
            let total = try r.readU64("ZIP64 EOCD entry count")
            let size = try r.readU64("ZIP64 EOCD central directory size")
            let offset = try r.readU64("ZIP64 EOCD central directory offset")
            guard d == 0, cd == 0, onDisk == total else { throw FormatError(path, "zip: multi-disk archives are not supported") }
            // The 32-bit fields hold either the all-ones marker or the same value: two different
            // answers mean a damaged (or deliberately ambiguous) archive.
            for (name, small, marker, big) in [("entry count", UInt64(entries16), UInt64(0xFFFF), total),
                                              ("central directory size", UInt64(size32), UInt64(0xFFFF_FFFF), size),
                                              ("central directory offset", UInt64(offset32), UInt64(0xFFFF_FFFF), offset)]
            where small != marker && small != big {
                throw FormatError(path, "zip: end-of-central-directory and ZIP64 record disagree on the \(name) (\(small) vs \(big))")
            }
            dir = CentralDirectory(offset: offset, size: size, count: total)
            dirEnd = recordOffset
        } else {
            guard disk == 0, cdDisk == 0, entriesOnDisk == entries16 else {
                throw FormatError(path, "zip: multi-disk archives are not supported")
            }
            if entries16 == 0xFFFF || size32 == 0xFFFF_FFFF || offset32 == 0xFFFF_FFFF {
                throw FormatError(path, "zip: end-of-central-directory uses ZIP64 markers but the ZIP64 locator is missing")
            }
        }
        guard dir.offset <= dirEnd, dir.size <= dirEnd - dir.offset else {
            throw FormatError(path, "zip: central directory (offset \(dir.offset), \(dir.size) bytes) lies outside the file before the end record at \(dirEnd)")
        }
        guard dir.count <= dir.size / 46 else {
            throw FormatError(path, "zip: central directory claims \(dir.count) entries but holds only \(dir.size) bytes")
        }
        return dir
    }

    // MARK: - Entries

    static func readCentralEntry(_ c: inout ByteCursor, number i: Int, file: MappedFile, dataLimit: UInt64) throws -> ZipEntry {
        let path = file.path
        let at = c.position
        guard try c.readU32("central entry \(i) signature") == centralSignature else {
            throw FormatError(path, "zip: bad central directory signature for entry \(i) at directory byte \(at)")
        }
        _ = try c.readU16("version made by")
        _ = try c.readU16("version needed")
        let flags = try c.readU16("flags")
        let method = try c.readU16("method")
        _ = try c.readU32("mod time/date")
        let crc = try c.readU32("crc32")
        var compressed = UInt64(try c.readU32("compressed size"))
        var uncompressed = UInt64(try c.readU32("uncompressed size"))
        let nameLen = Int(try c.readU16("name length"))
        let extraLen = Int(try c.readU16("extra length"))
        let commentLen = Int(try c.readU16("comment length"))
        var diskStart = UInt32(try c.readU16("disk start"))
        _ = try c.readU16("internal attributes")
        _ = try c.readU32("external attributes")
        var localOffset = UInt64(try c.readU32("local header offset"))
        let nameBytes = try c.bytes(nameLen, "entry \(i) name")
        guard let name = String(validating: nameBytes, as: UTF8.self) else {
            throw FormatError(path, "zip: entry \(i) name is not valid UTF-8")
        }
        var extra = ByteCursor(try c.bytes(extraLen, "entry \(name) extra field"), file: path)
        try c.skip(commentLen, "entry \(name) comment")

        // ZIP64 extended information: present fields replace the ones that read all-ones, in order.
        while extra.remaining >= 4 {
            let id = try extra.readU16("extra field id")
            let len = Int(try extra.readU16("extra field length"))
            var field = ByteCursor(try extra.bytes(len, "entry \(name) extra field 0x\(String(id, radix: 16))"), file: path)
            guard id == 0x0001 else { continue }
            if uncompressed == 0xFFFF_FFFF { uncompressed = try field.readU64("entry \(name) ZIP64 uncompressed size") }
            if compressed == 0xFFFF_FFFF { compressed = try field.readU64("entry \(name) ZIP64 compressed size") }
            if localOffset == 0xFFFF_FFFF { localOffset = try field.readU64("entry \(name) ZIP64 local header offset") }
            if diskStart == 0xFFFF { diskStart = try field.readU32("entry \(name) ZIP64 disk") }
        }
        guard diskStart == 0 else { throw FormatError(path, "zip: entry \(name) is on disk \(diskStart); multi-disk archives are not supported") }
        if flags & 1 != 0 { throw FormatError(path, "zip: entry \(name) is encrypted") }
        if method == 0, compressed != uncompressed {
            throw FormatError(path, "zip: stored entry \(name) has compressed size \(compressed) ≠ uncompressed size \(uncompressed)")
        }

        // Local header: the data starts after its own (possibly different-length) name and extra.
        guard localOffset <= dataLimit, dataLimit - localOffset >= 30 else {
            throw FormatError(path, "zip: entry \(name) local header offset \(localOffset) lies outside the data area (\(dataLimit) bytes)")
        }
        var l = ByteCursor(file.bytes, file: path, position: Int(localOffset))
        guard try l.readU32("local header signature") == localSignature else {
            throw FormatError(path, "zip: entry \(name) has no local header at offset \(localOffset)")
        }
        try l.skip(22, "entry \(name) local header")
        let localNameLen = Int(try l.readU16("local name length"))
        let localExtraLen = Int(try l.readU16("local extra length"))
        let localName = try l.bytes(localNameLen, "entry \(name) local name")
        guard localName.elementsEqual(nameBytes) else {
            let shown = String(decoding: localName.prefix(200), as: UTF8.self)
            throw FormatError(path, "zip: local header name \(shown) does not match central directory name \(name)")
        }
        try l.skip(localExtraLen, "entry \(name) local extra field")
        let dataOffset = UInt64(l.position)
        guard dataOffset <= dataLimit, compressed <= dataLimit - dataOffset else {
            throw FormatError(path, "zip: entry \(name) data (offset \(dataOffset), \(compressed) bytes) runs past the data area (\(dataLimit) bytes)")
        }
        return ZipEntry(name: name, method: method, crc32: crc, compressedSize: compressed,
                        uncompressedSize: uncompressed, localHeaderOffset: localOffset, dataOffset: dataOffset)
    }
}

private func hex(_ v: UInt32) -> String {
    let s = String(v, radix: 16)
    return "0x" + String(repeating: "0", count: max(0, 8 - s.count)) + s
}

/// CRC-32 (IEEE, reflected, as zip uses), table-driven.
enum ZipCRC32 {
    static let table: [UInt32] = (0 ..< 256).map { n -> UInt32 in
        var c = UInt32(n)
        for _ in 0 ..< 8 { c = (c & 1) != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    static func checksum(_ data: UnsafeRawBufferPointer) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        table.withUnsafeBufferPointer { t in
            for b in data { c = t[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
        }
        return c ^ 0xFFFF_FFFF
    }
}
