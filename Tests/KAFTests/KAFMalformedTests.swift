import Testing
import Foundation
@testable import KAF

/// Builds .kaf files byte by byte (with correct checksums unless told otherwise) so that each
/// validation rule of the reader is reached on its own, not masked by a checksum failure.
struct KAFCrafter {
    var data = [UInt8](repeating: 0, count: 256)          // data section bytes (placed at offset 128)
    var entries: [KAFEntry] = []
    var meta = #"{"format":"kaf","version":1}"#

    init() {
        let m = Array(meta.utf8)
        data.replaceSubrange(0 ..< m.count, with: m)
        entries = [
            KAFEntry(name: "kaf.meta", dtype: .u8, compression: .none, shape: [m.count], offset: 128, storedSize: m.count, rawSize: m.count, checksum: 0),
            KAFEntry(name: "llm.w", dtype: .f32, compression: .none, shape: [2, 8], offset: 192, storedSize: 64, rawSize: 64, checksum: 0),
            KAFEntry(name: "llm.q", dtype: .q4_g32, compression: .none, shape: [1, 32], offset: 256, storedSize: 18, rawSize: 18, checksum: 0),
        ]
    }

    func bytes(fixEntryChecksums: Bool = true, header: (inout [UInt8]) -> Void = { _ in }, directory: (inout [UInt8]) -> Void = { _ in }) -> [UInt8] {
        var file = [UInt8](repeating: 0, count: 128) + data
        while file.count % 8 != 0 { file.append(0) }
        let dirOffset = file.count
        var dir: [UInt8] = []
        for e in entries {
            var sum = e.checksum
            if fixEntryChecksums, e.offset >= 0, e.storedSize <= file.count, e.offset <= file.count - e.storedSize {
                sum = file.withUnsafeBytes { XXH64.hash(UnsafeRawBufferPointer(rebasing: $0[e.offset ..< e.offset + e.storedSize])) }
            }
            KAFEntry(name: e.name, dtype: e.dtype, compression: e.compression, shape: e.shape, offset: e.offset,
                     storedSize: e.storedSize, rawSize: e.rawSize, checksum: sum).encode(into: &dir)
        }
        directory(&dir)
        file += dir
        var h: [UInt8] = KAF.magic
        h.appendLE(UInt32(1)); h.appendLE(UInt32(64)); h.appendLE(UInt32(0))
        h.appendLE(UInt64(file.count)); h.appendLE(UInt64(128)); h.appendLE(UInt64(data.count))
        h.appendLE(UInt64(dirOffset)); h.appendLE(UInt64(dir.count)); h.appendLE(UInt64(entries.count))
        h.appendLE(dir.withUnsafeBytes { XXH64.hash($0) })
        h += [UInt8](repeating: 0, count: 120 - h.count)
        header(&h)   // edits before the header checksum, so the checksum stays valid
        h.appendLE(h.withUnsafeBytes { XXH64.hash($0) })
        file.replaceSubrange(0 ..< 128, with: h)
        return file
    }
}

struct MalformedKAF: CustomTestStringConvertible, Sendable {
    let name: String
    let expect: String
    let verify: Bool
    let make: @Sendable () -> [UInt8]
    var testDescription: String { name }
}

private func setU64(_ h: inout [UInt8], _ at: Int, _ v: UInt64) { for i in 0 ..< 8 { h[at + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(i))) } }
private func setU32(_ h: inout [UInt8], _ at: Int, _ v: UInt32) { for i in 0 ..< 4 { h[at + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt32(i))) } }

private func with(_ edit: @escaping @Sendable (inout KAFCrafter) -> Void) -> @Sendable () -> [UInt8] {
    { var c = KAFCrafter(); edit(&c); return c.bytes() }
}
private func entry(_ e: KAFEntry, name: String? = nil, dtype: DType? = nil, compression: KAF.Compression? = nil, shape: [Int]? = nil, offset: Int? = nil, stored: Int? = nil, raw: Int? = nil) -> KAFEntry {
    KAFEntry(name: name ?? e.name, dtype: dtype ?? e.dtype, compression: compression ?? e.compression, shape: shape ?? e.shape,
             offset: offset ?? e.offset, storedSize: stored ?? e.storedSize, rawSize: raw ?? e.rawSize, checksum: e.checksum)
}

let malformedKAFCases: [MalformedKAF] = [
    MalformedKAF(name: "empty file", expect: "shorter than", verify: false) { [] },
    MalformedKAF(name: "sanity: the crafted file is valid", expect: "", verify: true) { KAFCrafter().bytes() },
    MalformedKAF(name: "truncated", expect: "header says", verify: false) { Array(KAFCrafter().bytes().dropLast(9)) },
    MalformedKAF(name: "extra bytes at the end", expect: "header says", verify: false) { KAFCrafter().bytes() + [0, 0, 0] },
    MalformedKAF(name: "bad magic", expect: "bad magic", verify: false) { var b = KAFCrafter().bytes(); b[0] = 0x47; return b },
    MalformedKAF(name: "future version", expect: "unsupported .kaf version 2", verify: false) { KAFCrafter().bytes(header: { setU32(&$0, 4, 2) }) },
    MalformedKAF(name: "corrupt header", expect: "header checksum", verify: false) { var b = KAFCrafter().bytes(); b[100] ^= 1; return b },
    MalformedKAF(name: "corrupt directory", expect: "directory checksum", verify: false) { var b = KAFCrafter().bytes(); b[b.count - 3] ^= 0x20; return b },
    MalformedKAF(name: "directory offset past EOF", expect: "out of bounds", verify: false) { KAFCrafter().bytes(header: { setU64(&$0, 40, 1 << 40) }) },
    MalformedKAF(name: "huge entry count", expect: "entry count", verify: false) { KAFCrafter().bytes(header: { setU64(&$0, 56, UInt64.max) }) },
    MalformedKAF(name: "unknown flags", expect: "flags", verify: false) { KAFCrafter().bytes(header: { setU32(&$0, 12, 1) }) },
    MalformedKAF(name: "tensor past the data section", expect: "outside the data section", verify: false, make: with { $0.entries[1] = entry($0.entries[1], offset: 1 << 20) }),
    MalformedKAF(name: "offset near UInt64.max", expect: "outside the data section", verify: false, make: with { $0.entries[1] = entry($0.entries[1], offset: Int.max - 63) }),
    MalformedKAF(name: "overlapping tensors", expect: "overlap", verify: false, make: with { $0.entries[2] = entry($0.entries[2], offset: 192) }),
    MalformedKAF(name: "misaligned offset", expect: "not aligned", verify: false, make: with { $0.entries[1] = entry($0.entries[1], offset: 200) }),
    MalformedKAF(name: "size does not match shape", expect: "needs 64", verify: false, make: with { $0.entries[1] = entry($0.entries[1], stored: 60, raw: 60) }),
    MalformedKAF(name: "quant row not whole groups", expect: "does not fit dtype q4_g32", verify: false, make: with { $0.entries[2] = entry($0.entries[2], shape: [1, 30]) }),
    MalformedKAF(name: "unknown dtype", expect: "unknown dtype code 99", verify: false) {
        KAFCrafter().bytes(directory: { d in let off = 80 + 8 /* meta name "kaf.meta" = 8 bytes */; setU32(&d, off, 99) })
    },
    MalformedKAF(name: "too many dims", expect: "5 dims", verify: false) {
        KAFCrafter().bytes(directory: { d in setU32(&d, 88 + 8, 5) })
    },
    MalformedKAF(name: "name length zero", expect: "name length 0", verify: false) {
        KAFCrafter().bytes(directory: { d in setU32(&d, 12, 0) })
    },
    MalformedKAF(name: "duplicate names", expect: "duplicate entry name", verify: false, make: with { $0.entries[2] = entry($0.entries[2], name: "llm.w") }),
    MalformedKAF(name: "compressed tensor", expect: "only u8 blobs", verify: false, make: with { $0.entries[1] = entry($0.entries[1], compression: .zstd) }),
    MalformedKAF(name: "no metadata", expect: "no kaf.meta", verify: false, make: with { $0.entries[0] = entry($0.entries[0], name: "other.blob") }),
    MalformedKAF(name: "metadata not JSON", expect: "invalid JSON", verify: false, make: with { $0.data[0] = 0x7D }),
    MalformedKAF(name: "metadata without format", expect: "\"format\"", verify: false, make: with { c in
        let m = Array(#"{"formaX":"kaf","version":1}"#.utf8); c.data.replaceSubrange(0 ..< m.count, with: m) }),
    MalformedKAF(name: "corrupt tensor data (--verify)", expect: "checksum mismatch in 'llm.w'", verify: true) {
        var b = KAFCrafter().bytes(); b[200] ^= 0xFF; return b
    },
]

@Suite struct KAFMalformedTests {
    @Test(arguments: malformedKAFCases)
    func rejectedWithAClearError(_ c: MalformedKAF) throws {
        let path = Fixtures.tempDir() + "/case.kaf"
        FileManager.default.createFile(atPath: path, contents: Data(c.make()))
        if c.expect.isEmpty {
            _ = try KAFFile(path: path, verify: c.verify)
            return
        }
        do {
            _ = try KAFFile(path: path, verify: c.verify)
            Issue.record("\(c.name): accepted")
        } catch let e as FormatError {
            #expect(e.file == path)
            #expect(e.message.contains(c.expect), "\(c.name): got '\(e.message)'")
            #expect(!e.description.contains("\n"))
        }
    }

    @Test func randomCorruptionNeverCrashes() throws {
        let good = KAFCrafter().bytes()
        let path = Fixtures.tempDir() + "/fuzz.kaf"
        var rng = SystemRandomNumberGenerator()
        var seed: UInt64 = 42
        func next() -> Int { seed = seed &* 6364136223846793005 &+ 1; return Int(seed >> 33) }
        _ = rng
        var rejected = 0
        for i in 0 ..< 400 {
            var b = good
            if i % 3 == 0 { b = Array(b.prefix(next() % b.count)) } else { for _ in 0 ... (i % 4) { b[next() % b.count] ^= UInt8(1 + next() % 255) } }
            FileManager.default.createFile(atPath: path, contents: Data(b))
            do { _ = try KAFFile(path: path, verify: true) } catch is FormatError { rejected += 1 }
        }
        #expect(rejected > 350)
    }
}
