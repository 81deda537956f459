import Foundation
import Testing

@testable import KAF

#if canImport(Glibc)
import Glibc
#endif

/// Fixtures are written by scripts/reference/make_pickle_fixtures.py (torch.save + crafted bytes);
/// expected.json holds the values torch computed for each tensor.
private let pickleFixtures: String = {
    let here = URL(fileURLWithPath: #filePath)
    return here.deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/pickle").path
}()

private func fixture(_ name: String) -> String { pickleFixtures + "/" + name }

private struct ExpectedTensor {
    let path: [String]
    let dtype: String
    let shape: [Int]
    let contiguous: Bool
    let parameter: Bool
    let values: [Double]
    /// Whether torch could give values (not for packed fp4 and bits dtypes).
    let hasValues: Bool
    /// The tensor's bytes as torch holds them, in hex (contiguous tensors).
    let raw: String?
}

private let expected: [String: [ExpectedTensor]] = {
    guard let data = FileManager.default.contents(atPath: fixture("expected.json")),
        let json = try? JSONSerialization.jsonObject(with: data) as? [String: [[String: Any]]]
    else { return [:] }
    return json.mapValues { list in
        list.map { t in
            ExpectedTensor(
                path: t["path"] as? [String] ?? [], dtype: t["dtype"] as? String ?? "",
                shape: (t["shape"] as? [NSNumber] ?? []).map(\.intValue),
                contiguous: t["contiguous"] as? Bool ?? false,
                parameter: t["parameter"] as? Bool ?? false,
                values: (t["hex"] as? [String] ?? []).map { Double($0) ?? .nan },
                hasValues: t["hex"] != nil, raw: t["raw"] as? String)
        }
    }
}()

/// Follows a key path written by the fixture script: dict keys by their string form, list indices.
private func lookup(_ root: PickleValue, _ path: [String]) -> PickleValue? {
    var v = root
    for k in path {
        switch v {
        case .dict(let items):
            guard
                let hit = items.first(where: { key, _ in
                    switch key {
                    case .string(let s): s == k
                    case .int(let i): String(i) == k
                    default: false
                    }
                })
            else { return nil }
            v = hit.value
        case .list(let a), .tuple(let a):
            guard let i = Int(k), a.indices.contains(i) else { return nil }
            v = a[i]
        default: return nil
        }
    }
    return v
}

// MARK: - Good checkpoints

@Test func expectedJSONIsPresent() {
    #expect(expected.count >= 8, "expected.json missing or unreadable at \(fixture("expected.json"))")
}

@Test(arguments: [
    "state_dict.pt", "nested.pt", "views.pt", "archive_prefix.pt", "protocol4.pt",
    "protocol5.pt", "zip64.pt", "crafted_ok.pt",
])
func torchCheckpointMatchesTorchValues(_ name: String) throws {
    let ckpt = try TorchCheckpoint(path: fixture(name))
    let tensors = try #require(expected[name])
    #expect(!tensors.isEmpty)
    for e in tensors {
        let value = try #require(lookup(ckpt.root, e.path), "\(name): no value at \(e.path)")
        let t = try #require(value.tensorValue, "\(name): \(e.path) is \(value.kindName)")
        #expect(t.dtype.rawValue == e.dtype, "\(name) \(e.path)")
        #expect(t.shape == e.shape, "\(name) \(e.path)")
        #expect(t.isContiguous == e.contiguous, "\(name) \(e.path)")
        #expect(t.isParameter == e.parameter, "\(name) \(e.path)")
        #expect(t.count == e.values.count)
        let got = try t.doubles()
        #expect(got == e.values, "\(name) \(e.path): \(got.prefix(6)) vs \(e.values.prefix(6))")
        // The bytes handed out (in place or gathered) decode to the same values.
        let n = try t.withContiguousBytes { b -> Int in b.count }
        #expect(n == t.byteCount)
    }
}

@Test func torchCheckpointStateDictOrderAndPrefix() throws {
    let ckpt = try TorchCheckpoint(path: fixture("state_dict.pt"))
    #expect(ckpt.prefix == "state_dict/")
    let sd = try ckpt.stateDict()
    #expect(
        sd.map(\.name) == [
            "linear.weight", "linear.bias", "half", "bf16", "f64", "i64", "i32", "i16",
            "i8", "u8", "mask", "scalar", "empty", "param",
        ])
    #expect(try ckpt.tensors(prefix: "linear.").map(\.name) == ["linear.weight", "linear.bias"])
    let scalar = try #require(sd.first { $0.name == "scalar" }?.tensor)
    #expect(scalar.shape.isEmpty && scalar.count == 1)
    let empty = try #require(sd.first { $0.name == "empty" }?.tensor)
    #expect(empty.count == 0 && empty.contiguousBytes?.count == 0)
    // Contiguous tensors are handed out in place: the pointer is inside the mapping.
    let w = try #require(sd.first?.tensor)
    let bytes = try #require(w.contiguousBytes)
    let file = ckpt.archive.file
    #expect(bytes.baseAddress! >= file.base && bytes.baseAddress! + bytes.count <= file.base + file.count)
    #expect(Int(bitPattern: bytes.baseAddress!) % 64 == 0, "torch.save aligns storages to 64 bytes")
    #expect(ckpt.archive.entry(named: "archive_prefix/data.pkl") == nil)
    #expect(try TorchCheckpoint(path: fixture("archive_prefix.pt")).prefix == "archive/")
}

@Test func torchCheckpointNestedNavigation() throws {
    let ckpt = try TorchCheckpoint(path: fixture("nested.pt"))
    #expect(ckpt.root["epoch"]?.intValue == 3)
    #expect(ckpt.root["name"]?.stringValue == "tiny")
    #expect(try ckpt.stateDict(at: ["state_dict"]).map(\.name) == ["0.weight", "0.bias", "1.weight", "1.bias"])
    #expect(try ckpt.tensors(prefix: "1.", at: ["state_dict"]).count == 2)
    #expect(try ckpt.stateDict(at: ["generator"]).map(\.name) == ["conv.weight"])
    #expect(try ckpt.value(at: ["optimizer", "param_groups"]).kindName == "list")

    let missing = #expect(throws: FormatError.self) { try ckpt.stateDict(at: ["model"]) }
    #expect(missing?.message.contains("key \"model\" missing") == true)
    #expect(missing?.message.contains("\"state_dict\"") == true, "lists the keys that exist")
    let notTensors = #expect(throws: FormatError.self) { try ckpt.stateDict(at: ["optimizer"]) }
    #expect(notTensors?.message.contains("not a tensor") == true)
    let notDict = #expect(throws: FormatError.self) { try ckpt.stateDict(at: ["epoch", "x"]) }
    #expect(notDict?.message.contains("not a dict") == true)
    #expect(notDict?.file == fixture("nested.pt"))
}

@Test func torchCheckpointViewsShareStorage() throws {
    let ckpt = try TorchCheckpoint(path: fixture("views.pt"))
    let sd = Dictionary(uniqueKeysWithValues: try ckpt.stateDict().map { ($0.name, $0.tensor) })
    let a = try #require(sd["shared_a"]), b = try #require(sd["shared_b"])
    #expect(a.storage === b.storage)
    #expect(a.storageOffset == 2 && b.storageOffset == 10)
    #expect(b.strides == [5, 1])
    let t = try #require(sd["transposed"])
    #expect(!t.isContiguous && t.contiguousBytes == nil && t.strides == [1, 4])
    // The gathered copy is row-major: element [0][1] of the transpose is base[4].
    let gathered = try t.withContiguousBytes { b in
        (0 ..< 3).map { b.loadUnaligned(fromByteOffset: 4 * $0, as: Float.self) }
    }
    #expect(gathered == [0, 4, 8])
    let e = try #require(sd["expanded"])
    #expect(e.strides == [0, 1])
    #expect(throws: FormatError.self) { try e.withContiguousBytes(maxCopyBytes: 8) { _ in () } }
}

@Test func torchCheckpointProtocol4Values() throws {
    let ckpt = try TorchCheckpoint(path: fixture("protocol4.pt"))
    guard case .bytes(let b)? = ckpt.root["bytes"] else {
        Issue.record("bytes")
        return
    }
    #expect(b == [0, 0xFF, 0x72, 0x61, 0x77])
    guard case .set(let s)? = ckpt.root["set"] else {
        Issue.record("set")
        return
    }
    #expect(s.compactMap(\.intValue).sorted() == [1, 2])
    guard case .bigInt(let big)? = ckpt.root["big"] else {
        Issue.record("big int")
        return
    }
    #expect(big == [0, 0, 0, 0, 0, 0, 0, 0, 0x40])  // 2^70, little-endian two's complement
    guard case .tuple(let t)? = ckpt.root["t"], t.count == 4, case .float(1.5) = t[0], case .none = t[1],
        case .bool(true) = t[2], case .string("x") = t[3]
    else {
        Issue.record("tuple \(String(describing: ckpt.root["t"]))")
        return
    }
}

// MARK: - Hostile and malformed files

@Test(arguments: [
    ("evil_os_system.pt", "pickle asks for non-allowlisted global os.system"),
    ("evil_posix_system.pt", "non-allowlisted global posix.system"),
    ("evil_eval_stack_global.pt", "non-allowlisted global builtins.eval"),
    ("evil_getattr.pt", "non-allowlisted global builtins.getattr"),
    ("evil_reduce_storage_type.pt", "REDUCE calls torch.FloatStorage"),
    ("storage_numel_too_big.pt", "100 elements of f32 need more than the 16 bytes"),
    ("tensor_past_storage.pt", "reaches element 4 but the storage holds 4 elements"),
    ("stride_past_storage.pt", "reaches element 4 but the storage holds 4 elements"),
    ("stride_overflow.pt", "extent overflows"),
    ("storage_missing.pt", "zip entry archive/data/7 is missing"),
    ("storage_bad_type.pt", "unsupported type torch.QInt8Storage (quantized storages are not supported)"),
    ("evil_torch_load.pt", "non-allowlisted global torch.serialization.load"),
    ("evil_exec.pt", "non-allowlisted global builtins.exec"),
    ("evil_whole_module.pt", "non-allowlisted global torch.nn.modules.linear.Linear"),
    ("big_endian.pt", "byteorder is \"big\""),
    ("deflated_pkl.pt", "compressed entry archive/data.pkl"),
    ("no_data_pkl.pt", "no <folder>/data.pkl entry"),
    ("pkl_unterminated.pt", "ends without STOP"),
    ("pkl_huge_long_binget.pt", "memo index 2147483647 was never stored"),
    ("pkl_binunicode_past_end.pt", "BINUNICODE string claims 2147483647 bytes"),
    ("pkl_binbytes8_past_end.pt", "BINBYTES8 claims 9223372036854775808 bytes"),
    ("pkl_cycle.pt", "reference cycle"),
    ("pkl_stack_underflow.pt", "stack underflow"),
    ("pkl_bad_opcode.pt", "unsupported pickle opcode 0x53"),
    ("pkl_deep_nesting.pt", "nests deeper than 200 levels"),
    ("pkl_shared_bomb.pt", "too many objects"),
    ("pkl_long4_huge.pt", "LONG4 of 2147483647 bytes"),
    ("pkl_protocol_9.pt", "unsupported pickle protocol 9"),
    ("zip_truncated.pt", "no end-of-central-directory record"),
    ("zip_bad_eocd.pt", "disagree on the entry count (65520 vs 20)"),
    ("zip64_bad_count.pt", "claims 65520 entries but holds only 1307 bytes"),
    ("zip_cd_offset_past_eof.pt", "central directory (offset 1099511627776, 1307 bytes) lies outside the file"),
    ("zip64_locator_past_eof.pt", "ZIP64 end-of-central-directory offset 9223372036854775808 is outside the file"),
    ("zip_local_name_mismatch.pt", "does not match central directory name"),
    ("zip_crc_mismatch.pt", "CRC-32 mismatch in state_dict/data.pkl"),
    ("not_a_zip.pt", "not a zip archive"),
    ("empty.pt", "too short"),
    ("legacy_format.pt", "legacy (pre-zip) torch.save format"),
])
func torchCheckpointRejectsMalformed(_ name: String, _ problem: String) {
    let path = fixture(name)
    let error = #expect(throws: FormatError.self) { _ = try TorchCheckpoint(path: path) }
    #expect(error?.file == path)
    #expect(error?.message.contains(problem) == true, "\(name): got \(error?.message ?? "no error")")
    #expect(error?.message.contains("\n") == false)
}

// MARK: - ZIP64 beyond 4 GiB

/// Little-endian byte building for hand-made zips.
private struct LEBytes {
    var b: [UInt8] = []
    mutating func u16(_ v: Int) { withUnsafeBytes(of: UInt16(truncatingIfNeeded: v).littleEndian) { b += $0 } }
    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { b += $0 } }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { b += $0 } }
}

/// Writes `entries` as a ZIP64 archive whose first local header is at `gap` (a sparse hole before
/// it), so every offset is above 4 GiB.
private func writeSparseZip64(_ entries: [(name: String, data: [UInt8], crc: UInt32)], gap: UInt64, to path: String)
    throws
{
    var out = LEBytes(), cd = LEBytes()
    for e in entries {
        let offset = gap + UInt64(out.b.count)
        let name = Array(e.name.utf8)
        out.u32(0x0403_4b50)
        out.u16(45)
        out.u16(0)
        out.u16(0)
        out.u32(0)
        out.u32(e.crc)
        out.u32(0xFFFF_FFFF)
        out.u32(0xFFFF_FFFF)
        out.u16(name.count)
        out.u16(20)
        out.b += name
        out.u16(1)
        out.u16(16)
        out.u64(UInt64(e.data.count))
        out.u64(UInt64(e.data.count))
        out.b += e.data
        cd.u32(0x0201_4b50)
        cd.u16(45)
        cd.u16(45)
        cd.u16(0)
        cd.u16(0)
        cd.u32(0)
        cd.u32(e.crc)
        cd.u32(0xFFFF_FFFF)
        cd.u32(0xFFFF_FFFF)
        cd.u16(name.count)
        cd.u16(28)
        cd.u16(0)
        cd.u16(0)
        cd.u16(0)
        cd.u32(0)
        cd.u32(0xFFFF_FFFF)
        cd.b += name
        cd.u16(1)
        cd.u16(24)
        cd.u64(UInt64(e.data.count))
        cd.u64(UInt64(e.data.count))
        cd.u64(offset)
    }
    let cdOffset = gap + UInt64(out.b.count)
    out.b += cd.b
    let z64 = gap + UInt64(out.b.count)
    out.u32(0x0606_4b50)
    out.u64(44)
    out.u16(45)
    out.u16(45)
    out.u32(0)
    out.u32(0)
    out.u64(UInt64(entries.count))
    out.u64(UInt64(entries.count))
    out.u64(UInt64(cd.b.count))
    out.u64(cdOffset)
    out.u32(0x0706_4b50)
    out.u32(0)
    out.u64(z64)
    out.u32(1)
    out.u32(0x0605_4b50)
    out.u16(0)
    out.u16(0)
    out.u16(0xFFFF)
    out.u16(0xFFFF)
    out.u32(0xFFFF_FFFF)
    out.u32(0xFFFF_FFFF)
    out.u16(0)
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    guard fd >= 0 else { throw FormatError(path, "cannot create") }
    defer { close(fd) }
    let written = out.b.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, off_t(gap)) }
    guard written == out.b.count else { throw FormatError(path, "short write") }
}

@Test func torchCheckpointZip64Above4GiB() throws {
    // Re-pack the torch.save fixture with a 4.5 GiB hole in front (sparse: no disk space used).
    let source = try ZipArchive(path: fixture("state_dict.pt"))
    let entries = try withExtendedLifetime(source) {
        try source.entries.map { e in (name: e.name, data: Array(try source.data(e)), crc: e.crc32) }
    }
    let path = NSTemporaryDirectory() + "kaf-zip64-\(getpid()).pt"
    defer { unlink(path) }
    let gap: UInt64 = 4_500_000_000 / 64 * 64
    try writeSparseZip64(entries, gap: gap, to: path)

    let zip = try ZipArchive(path: path)
    #expect(zip.entries.count == entries.count)
    #expect(zip.entries.allSatisfy { $0.localHeaderOffset >= gap && $0.dataOffset > UInt64(UInt32.max) })
    let ckpt = try TorchCheckpoint(path: path)
    for e in try #require(expected["state_dict.pt"]) {
        let t = try #require(lookup(ckpt.root, e.path)?.tensorValue)
        #expect(try t.doubles() == e.values, "\(e.path)")
    }
}

// MARK: - Fuzz smoke

private func mutate(_ bytes: [UInt8], _ rng: inout SplitMix64) -> [UInt8] {
    var b = bytes
    switch rng.next() % 4 {
    case 0: b.removeLast(Int(rng.next() % UInt64(b.count)))  // truncate
    case 1:  // overwrite a run with random bytes
        let at = Int(rng.next() % UInt64(b.count))
        for i in at ..< min(b.count, at + 1 + Int(rng.next() % 8)) { b[i] = UInt8(truncatingIfNeeded: rng.next()) }
    default:  // flip a few bits anywhere
        for _ in 0 ..< 1 + rng.next() % 4 { b[Int(rng.next() % UInt64(b.count))] ^= UInt8(1) << (rng.next() % 8) }
    }
    return b
}

/// Loading either succeeds (and the tensors can be read) or throws a FormatError naming the file.
private func exercise(_ load: () throws -> PickleValue, file: String) -> Bool {
    do {
        func walk(_ v: PickleValue) throws {
            switch v {
            case .tensor(let t):
                _ = try t.doubles()
                _ = try t.withContiguousBytes { $0.count }
            case .list(let a), .tuple(let a), .set(let a): try a.forEach(walk)
            case .dict(let items):
                try items.forEach {
                    try walk($0.key)
                    try walk($0.value)
                }
            default: break
            }
        }
        try walk(try load())
        return true
    } catch let e as FormatError {
        return e.file == file && !e.message.isEmpty
    } catch {
        return false
    }
}

@Test func torchCheckpointFuzzFileBytes() throws {
    let original = try MappedFile(path: fixture("views.pt"))
    let good = withExtendedLifetime(original) { Array(original.bytes) }
    var rng = SplitMix64(state: 0x5EED_0001)
    let path = NSTemporaryDirectory() + "kaf-fuzz-\(getpid()).pt"
    defer { unlink(path) }
    var loaded = 0
    for i in 0 ..< 300 {
        let bytes = mutate(good, &rng)
        #expect(FileManager.default.createFile(atPath: path, contents: Data(bytes)))
        let ok = exercise(
            {
                let c = try TorchCheckpoint(path: path)
                loaded += 1
                return c.root
            }, file: path)
        #expect(ok, "iteration \(i)")
    }
    #expect(loaded > 0, "some mutations (in storage bytes) should still load")
}

/// data.pkl is CRC-checked inside the zip, so mutate it directly to reach the unpickler.
@Test func torchCheckpointFuzzPickleBytes() throws {
    let path = fixture("nested.pt")
    let zip = try ZipArchive(path: path)
    let entry = try #require(zip.entries.first { $0.name.hasSuffix("/data.pkl") })
    let prefix = String(entry.name.dropLast("data.pkl".count))
    let good = Array(try zip.data(entry))
    var rng = SplitMix64(state: 0x5EED_0002)
    for i in 0 ..< 400 {
        let bytes = mutate(good, &rng)
        let ok = exercise(
            {
                try bytes.withUnsafeBytes { buf in
                    var cache: [String: TorchStorage] = [:]
                    return try PickleMachine.load(buf, file: path, what: entry.name) { pid in
                        try TorchCheckpoint.loadStorage(pid, archive: zip, prefix: prefix, cache: &cache)
                    }
                }
            }, file: path)
        #expect(ok, "iteration \(i)")
    }
}

// MARK: - Input-controlled depth (issue 12, item 2)

/// `_rebuild_from_type_v2(_rebuild_from_type_v2, Tensor, (_rebuild_from_type_v2, Tensor, (…), {}), {})`
/// nested `levels` deep, the innermost arguments an empty tuple.
private func nestedRebuildFromTypePickle(levels: Int) -> [UInt8] {
    var b: [UInt8] = [0x80, 0x02]
    b += Array("ctorch._tensor\n_rebuild_from_type_v2\n".utf8) + [0x71, 0]  // GLOBAL, BINPUT 0
    b += Array("ctorch\nTensor\n".utf8) + [0x71, 1, 0x30]  // GLOBAL, BINPUT 1, POP
    for _ in 0 ..< levels { b += [0x28, 0x68, 0, 0x68, 1] }  // MARK, BINGET 0, BINGET 1
    b += [0x29]  // EMPTY_TUPLE: the innermost arguments
    for _ in 0 ..< levels { b += [0x7D, 0x74] }  // EMPTY_DICT (state), TUPLE
    b += [0x52, 0x2E]  // REDUCE, STOP
    return b
}

/// About 30,000 nested rebuilds crashed the reader (SIGSEGV: one native stack frame per level); any
/// depth is one error now.
@Test(arguments: [3, 10_000, 30_000, 200_000])
func pickleNestedRebuildFromTypeV2IsAnErrorNotACrash(_ levels: Int) {
    let bytes = nestedRebuildFromTypePickle(levels: levels)
    let error = #expect(throws: FormatError.self) {
        _ = try bytes.withUnsafeBytes { buf in
            try PickleMachine.load(buf, file: "deep.pt", what: "archive/data.pkl") { $0 }
        }
    }
    #expect(error?.file == "deep.pt")
    #expect(error?.message.contains("\n") == false)
    if levels > PickleMachine.maxDepth {
        #expect(
            error?.message.contains("nests deeper than \(PickleMachine.maxDepth)") == true, "\(error?.message ?? "")")
    }
}

// MARK: - The weights-only allowlist (issue 12, item 12)

/// allowlist.json: the names torch's weights-only unpickler allows by default, and each allow_*
/// fixture as torch loaded it (a tagged tree written by make_pickle_fixtures.py `tag`), kept in the
/// canonical text of `canonical`.
private struct AllowlistJSON: Sendable {
    var torchAllowedGlobals: [String] = []
    var values: [String: String] = [:]
}

private let allowlistJSON: AllowlistJSON = {
    guard let data = FileManager.default.contents(atPath: fixture("allowlist.json")),
        let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
    else { return AllowlistJSON() }
    return AllowlistJSON(
        torchAllowedGlobals: json["torch_allowed_globals"] as? [String] ?? [],
        values: (json["values"] as? [String: Any] ?? [:]).mapValues(canonical))
}()

private func hex(_ b: some Sequence<UInt8>) -> String { b.map { String(format: "%02x", $0) }.joined() }
private func bits(_ d: Double) -> String {
    let h = String(d.bitPattern, radix: 16)
    return String(repeating: "0", count: 16 - h.count) + h
}

/// Decimal text of a little-endian two's-complement integer (pickle's LONG1 / LONG4 bytes).
private func decimal(_ le: [UInt8]) -> String {
    let negative = (le.last ?? 0) & 0x80 != 0
    var mag = le
    if negative {  // two's complement negation
        var carry = 1
        for i in mag.indices {
            let v = Int(~mag[i]) + carry
            mag[i] = UInt8(v & 0xFF)
            carry = v >> 8
        }
    }
    var digits: [Character] = []
    var be = Array(mag.reversed())
    while be.contains(where: { $0 != 0 }) {
        var rem = 0
        for i in be.indices {
            let cur = rem * 256 + Int(be[i])
            be[i] = UInt8(cur / 10)
            rem = cur % 10
        }
        digits.append(Character(String(rem)))
    }
    let s = digits.isEmpty ? "0" : String(digits.reversed())
    return negative ? "-" + s : s
}

/// What we read, in the same tagged form as the fixture script's `tag`.
private func tagged(_ v: PickleValue) -> Any {
    let node: [Any]
    switch v {
    case .none: node = ["None"]
    case .bool(let b): node = ["bool", b]
    case .int(let i): node = ["int", String(i)]
    case .bigInt(let b): node = ["int", decimal(b)]
    case .float(let f): node = ["float", bits(f)]
    case .complex(let re, let im): node = ["complex", bits(re), bits(im)]
    case .string(let s): node = ["str", s]
    case .bytes(let b): node = ["bytes", hex(b)]
    case .tensor(let t): node = ["tensor", t.dtype.rawValue, t.shape, t.isParameter]
    case .storage(let s): node = ["storage", s.dtype.rawValue, s.count]
    case .global(let n): node = ["global", n]
    case .tuple(let a): node = ["tuple", a.map(tagged)]
    case .list(let a): node = ["list", a.map(tagged)]
    case .set(let a): node = ["set", a.map(tagged)]
    case .dict(let items): node = ["dict", items.map { [tagged($0.key), tagged($0.value)] as [Any] }]
    }
    return node
}

/// A canonical text of a tagged tree (parsed JSON or `tagged`): numbers and bools as integers, set
/// items sorted (a set's order is not kept by pickle).
private func canonical(_ x: Any) -> String {
    if let s = x as? String { return String(reflecting: s) }
    if let a = x as? [Any] {
        let items = a.map(canonical)
        if a.count == 2, a.first as? String == "set", let inner = a[1] as? [Any] {
            return "[\"set\",[" + inner.map(canonical).sorted().joined(separator: ",") + "]]"
        }
        return "[" + items.joined(separator: ",") + "]"
    }
    if let n = x as? NSNumber { return "\(n.int64Value)" }
    if let b = x as? Bool { return b ? "1" : "0" }
    if let i = x as? Int { return "\(i)" }
    return "?\(x)"
}

/// The fixture read by our reader equals what torch.load(weights_only=True) returned: every value
/// (allowlist.json) and every tensor's dtype, shape, values and bytes (expected.json).
private func expectAsTorchLoadedIt(_ name: String) throws {
    let ckpt = try TorchCheckpoint(path: fixture(name))
    let want = try #require(allowlistJSON.values[name], "allowlist.json has no \(name)")
    #expect(canonical(tagged(ckpt.root)) == want, "\(name): values differ from torch's")
    for e in try #require(expected[name]) {
        let value = try #require(lookup(ckpt.root, e.path), "\(name): no value at \(e.path)")
        let t = try #require(value.tensorValue, "\(name): \(e.path) is \(value.kindName)")
        #expect(t.dtype.rawValue == e.dtype, "\(name) \(e.path)")
        #expect(t.shape == e.shape, "\(name) \(e.path)")
        #expect(t.isContiguous == e.contiguous, "\(name) \(e.path)")
        #expect(t.isParameter == e.parameter, "\(name) \(e.path)")
        if e.hasValues {
            let got = try t.doubles()
            #expect(got.count == t.count * t.dtype.scalarsPerElement)
            let same =
                got.count == e.values.count && zip(got, e.values).allSatisfy { $0 == $1 || ($0.isNaN && $1.isNaN) }
            #expect(same, "\(name) \(e.path) \(t.dtype): \(got.prefix(8)) vs \(e.values.prefix(8))")
        } else {
            #expect(t.dtype.scalarsPerElement == 0, "\(name) \(e.path): torch gave no values for \(t.dtype)")
            #expect(throws: FormatError.self) { _ = try t.doubles() }
        }
        if let raw = e.raw {
            #expect(try t.withContiguousBytes { hex($0) } == raw, "\(name) \(e.path): bytes differ")
        }
    }
}

@Test func allowlistJSONIsPresent() {
    #expect(allowlistJSON.values.count >= 14, "allowlist.json missing or unreadable")
}

/// Every global torch's weights-only unpickler allows by default is either on our list or refused
/// with a reason; what we accept beyond torch's list is exactly `PickleAllowlist.beyondTorch`.
@Test func allowlistCoversTorchsWeightsOnlyGlobals() throws {
    let torch = Set(allowlistJSON.torchAllowedGlobals)
    #expect(torch.count > 50)
    let ours = PickleAllowlist.builders.union(PickleAllowlist.constants)
    let refused = Set(PickleAllowlist.refused.keys)
    #expect(
        torch.subtracting(ours).subtracting(refused).sorted() == [],
        "torch allows these, we neither read nor refuse them with a reason")
    #expect(ours.subtracting(torch).sorted() == PickleAllowlist.beyondTorch.sorted())
    #expect(refused.isSubset(of: torch))
    #expect(ours.isDisjoint(with: refused))
}

@Test func allowEveryLegacyTypedStorageDtype_rebuildTensorV2() throws {
    try expectAsTorchLoadedIt("allow_typed_storages.pt")
}

@Test func allowEveryNewDtypeOnUntypedStorage_rebuildTensorV3() throws {
    try expectAsTorchLoadedIt("allow_untyped_storages.pt")
    let sd = try TorchCheckpoint(path: fixture("allow_untyped_storages.pt")).stateDict()
    #expect(Set(sd.map(\.tensor.dtype)).count == 15, "one tensor per dtype of torch.storage._new_dtypes()")
}

@Test func allowParameter_rebuildParameter() throws {
    try expectAsTorchLoadedIt("allow_parameter.pt")
    let sd = Dictionary(
        uniqueKeysWithValues: try TorchCheckpoint(path: fixture("allow_parameter.pt")).stateDict().map {
            ($0.name, $0.tensor)
        })
    #expect(sd["trainable"]?.requiresGrad == true && sd["frozen"]?.requiresGrad == false)
}

@Test func allowParameterWithAttributes_rebuildParameterWithState() throws {
    try expectAsTorchLoadedIt("allow_parameter_with_state.pt")
}

@Test func allowTensorWithAttributes_rebuildFromTypeV2() throws {
    try expectAsTorchLoadedIt("allow_tensor_with_state.pt")
}

@Test func allowModuleStateDict_orderedDictWithMetadataBuild() throws {
    try expectAsTorchLoadedIt("allow_state_dict_metadata.pt")
}

@Test func allowBytes_codecsEncodeAndBytearray() throws {
    try expectAsTorchLoadedIt("allow_bytes.pt")
}

@Test func allowPlainContainers_setTupleCounterComplexBigInt() throws {
    try expectAsTorchLoadedIt("allow_containers.pt")
}

@Test func allowTorchValues_sizeDeviceDtypesLayoutsQschemesClasses() throws {
    try expectAsTorchLoadedIt("allow_torch_values.pt")
}

@Test func allowStoragesSavedAsValues() throws {
    try expectAsTorchLoadedIt("allow_storages_as_values.pt")
}

@Test func allowLegacyFourArgument_rebuildTensor() throws {
    try expectAsTorchLoadedIt("allow_rebuild_tensor_v1.pt")
}

@Test func allowPython2Strings_shortBinstring() throws {
    try expectAsTorchLoadedIt("allow_short_binstring.pt")
}

@Test func allowTensorBuildState_setStorageOffsetSizeStride() throws {
    try expectAsTorchLoadedIt("allow_build_tensor_set.pt")
}

@Test func allowNewobj_asTorchsUnpicklerDoesIt() throws {
    try expectAsTorchLoadedIt("allow_newobj.pt")
}

/// torch's default list refuses frozenset; ours reads it (a plain container, `beyondTorch`).
@Test func frozensetIsReadAlthoughTorchRefusesIt() throws {
    let ckpt = try TorchCheckpoint(path: fixture("beyond_frozenset.pt"))
    guard case .set(let items)? = ckpt.root["f"] else {
        Issue.record("frozenset: \(String(describing: ckpt.root["f"]))")
        return
    }
    #expect(items.compactMap(\.intValue).sorted() == [1, 2])
}

/// torch loads these (they are on its list); ours refuses each by name, saying why.
@Test(arguments: [
    ("refuse_qtensor.pt", "torch._utils._rebuild_qtensor: quantized tensors are not supported"),
    ("refuse_sparse.pt", "torch._utils._rebuild_sparse_tensor: sparse tensors are not supported"),
    ("refuse_meta.pt", "torch._utils._rebuild_meta_tensor_no_storage: meta tensors have no data"),
    ("refuse_nested.pt", "torch._utils._rebuild_nested_tensor: nested tensors are not supported"),
    ("refuse_neg_bit.pt", "the tensor has torch's neg bit set"),
    ("refuse_conj_bit.pt", "the tensor has torch's conj bit set"),
])
func refusedTensorKindsNameTheReason(_ name: String, _ problem: String) {
    let path = fixture(name)
    let error = #expect(throws: FormatError.self) { _ = try TorchCheckpoint(path: path) }
    #expect(error?.file == path)
    #expect(error?.message.contains(problem) == true, "\(name): got \(error?.message ?? "no error")")
}

/// A global outside the list is refused by its name, whatever opcode asks for it (GLOBAL or
/// STACK_GLOBAL) and whichever way it would be used (REDUCE, NEWOBJ, BUILD state, a plain value).
@Test(arguments: [
    ("builtins", "eval"), ("builtins", "exec"), ("builtins", "getattr"), ("builtins", "__import__"),
    ("os", "system"), ("posix", "system"), ("subprocess", "Popen"), ("torch", "load"),
    ("torch.serialization", "load"), ("torch", "FloatTensor.__new__"), ("collections", "defaultdict"),
    ("torch.nn.modules.linear", "Linear"), ("numpy.core.multiarray", "_reconstruct"), ("__builtin__", "eval"),
    ("torch._utils", "_rebuild_xla_tensor"), ("builtins", "dict"), ("builtins", "list"), ("builtins", "bytes"),
])
func globalsOutsideTheAllowlistAreRefusedByName(_ module: String, _ name: String) {
    let q = "\(module == "__builtin__" ? "builtins" : module).\(name)"
    let global = [0x63] + Array("\(module)\n\(name)\n".utf8)
    let stackGlobal =
        [0x8C, UInt8(module.utf8.count)] + Array(module.utf8) + [0x8C, UInt8(name.utf8.count)] + Array(name.utf8) + [
            0x93
        ]
    for (how, op) in [("GLOBAL", global), ("STACK_GLOBAL", stackGlobal)] {
        for use: [UInt8] in [[0x29, 0x52, 0x2E], [0x29, 0x81, 0x2E], [0x2E]] {  // REDUCE, NEWOBJ, value
            let bytes: [UInt8] = [0x80, 0x04] + op + use
            let error = #expect(throws: FormatError.self) {
                _ = try bytes.withUnsafeBytes { buf in
                    try PickleMachine.load(buf, file: "evil.pt", what: "archive/data.pkl") { $0 }
                }
            }
            #expect(
                error?.message.contains("non-allowlisted global \(q)") == true,
                "\(how) \(q): \(error?.message ?? "no error")")
        }
    }
}
