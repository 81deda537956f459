import Foundation
import Testing

@testable import KAF

/// Fixtures written by scripts/reference/make_reader_fixtures.py (Tests/Fixtures is not a
/// SwiftPM resource, so it is found from this file's path).
enum ReaderFixtures {
    static let root: String = {
        let here = URL(fileURLWithPath: #filePath)
        return here.deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/readers").path
    }()

    static func path(_ rel: String) -> String { root + "/" + rel }

    /// expected.json: values computed by torch/numpy/PyYAML, never by our readers.
    static let expected: JSONValue = {
        (try? JSONValue.parse(contentsOf: root + "/expected.json")) ?? .null
    }()

    /// Paths listed under "malformed" for one reader.
    static func malformed(_ reader: String) -> Set<String> {
        Set(
            (expected["malformed"]?.arrayValue ?? []).compactMap {
                $0["reader"]?.stringValue == reader ? $0["path"]?.stringValue : nil
            })
    }
}

/// Expected float64 values: numbers, or "nan"/"inf"/"-inf" (JSON has no non-finite numbers).
private func expectedDouble(_ v: JSONValue) -> Double? {
    switch v {
    case .string("nan"): return .nan
    case .string("inf"): return .infinity
    case .string("-inf"): return -.infinity
    default: return v.doubleValue
    }
}

/// Bit-for-bit equality, except that any NaN matches any NaN.
private func same(_ a: Double, _ b: Double) -> Bool {
    (a.isNaN && b.isNaN) || a.bitPattern == b.bitPattern
}

/// Element `i` decoded here, directly from the bytes with Half.swift, independent of
/// SafetensorsValues.swift.
private func decode(_ t: SafetensorsTensor, _ i: Int) -> Double {
    let b = t.bytes
    switch t.dtype {
    case .bf16: return Double(bf16ToFloat(b.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
    case .f16: return Double(f16ToFloat(b.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
    case .f32: return Double(b.loadUnaligned(fromByteOffset: 4 * i, as: Float.self))
    case .f64: return b.loadUnaligned(fromByteOffset: 8 * i, as: Double.self)
    case .i64: return Double(b.loadUnaligned(fromByteOffset: 8 * i, as: Int64.self))
    case .i32: return Double(b.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self))
    case .i16: return Double(b.loadUnaligned(fromByteOffset: 2 * i, as: Int16.self))
    case .i8: return Double(b.loadUnaligned(fromByteOffset: i, as: Int8.self))
    case .u8, .bool: return Double(b[i])
    }
}

/// Checks one tensor against its expected.json entry: dtype, shape, offsets, every value.
private func check(_ t: SafetensorsTensor, against e: JSONValue) throws {
    #expect(t.dtype.rawValue == e["dtype"]?.stringValue, "\(t.name)")
    #expect(t.shape == (e["shape"]?.arrayValue ?? []).compactMap(\.intValue), "\(t.name)")
    let offs = (e["data_offsets"]?.arrayValue ?? []).compactMap(\.intValue)
    #expect([t.dataOffsets.lowerBound, t.dataOffsets.upperBound] == offs, "\(t.name)")
    let values = try #require(e["values"]?.arrayValue).map { expectedDouble($0) }
    #expect(t.elementCount == values.count, "\(t.name)")
    #expect(t.elementCount == t.shape.reduce(1, *), "\(t.name)")
    let viaHelper = t.doubles()
    for (i, v) in values.enumerated() where i < t.elementCount {
        let want = try #require(v)
        #expect(same(decode(t, i), want), "\(t.name)[\(i)]: \(decode(t, i)) != \(want)")
        #expect(same(viaHelper[i], want), "\(t.name)[\(i)] via doubles()")
    }
    if let ints = e["ints"]?.arrayValue {
        #expect(
            try t.int64s() == ints.compactMap { if case .int(let v) = $0 { return v } else { return nil } }, "\(t.name)"
        )
        #expect(throws: FormatError.self) { try t.floats() }
    } else {
        #expect(try t.floats().count == values.count)
        #expect(throws: FormatError.self) { try t.int64s() }
    }
}

@Suite("Safetensors")
struct SafetensorsTests {
    static let goodFiles = ["good/floats.safetensors", "good/halves.safetensors", "good/ints.safetensors"]

    @Test("expected.json lists the good files", arguments: goodFiles)
    func listed(_ rel: String) {
        #expect(ReaderFixtures.expected["safetensors"]?[rel] != nil)
    }

    @Test("every tensor and value matches torch", arguments: goodFiles)
    func readsFile(_ rel: String) throws {
        let e = try #require(ReaderFixtures.expected["safetensors"]?[rel])
        let f = try SafetensorsFile(path: ReaderFixtures.path(rel))
        #expect(f.names == (e["order"]?.arrayValue ?? []).compactMap(\.stringValue))
        let meta = try #require(e["metadata"]?.objectValue)
        #expect(f.metadata == meta.compactMapValues(\.stringValue))
        let tensors = try #require(e["tensors"]?.objectValue)
        #expect(f.tensors.count == tensors.count)
        for (name, te) in tensors {
            let t = try f.tensor(named: name)
            #expect(t.name == name)
            #expect(t.path == f.path)
            try check(t, against: te)
            // Zero-copy: the bytes are inside the file's mapping, at the offset the header says.
            if t.byteCount > 0 {
                #expect(t.bytes.baseAddress == f.mapping.base + f.dataStart + t.dataOffsets.lowerBound)
            }
        }
        #expect(f.totalBytes == f.tensors.map(\.byteCount).reduce(0, +))
        #expect(f["missing"] == nil)
        let err = #expect(throws: FormatError.self) { try f.tensor(named: "missing") }
        #expect(err?.message.contains("no tensor missing") == true)
    }

    @Test("zero-size and scalar tensors")
    func edgeShapes() throws {
        let f = try SafetensorsFile(path: ReaderFixtures.path("good/floats.safetensors"))
        let empty = try f.tensor(named: "f32.empty")
        #expect(empty.shape == [2, 0] && empty.byteCount == 0 && empty.elementCount == 0)
        let scalar = try f.tensor(named: "f32.scalar")
        #expect(scalar.shape == [] && scalar.elementCount == 1)
        #expect(try scalar.floats() == [2.5])
    }

    @Test(
        "sharded checkpoint with Kimi-style shard names",
        arguments: ["sharded", "sharded/", "sharded/model.safetensors.index.json"])
    func sharded(_ rel: String) throws {
        let e = try #require(ReaderFixtures.expected["checkpoints"]?["sharded"])
        let c = try SafetensorsCheckpoint(path: ReaderFixtures.path(rel))
        #expect(c.indexPath != nil)
        #expect(
            c.files.map { ($0.path as NSString).lastPathComponent }
                == ["model-1-of-35.safetensors", "model-2-of-35.safetensors", "model-36-of-36.safetensors"])
        #expect(c.names == (e["order"]?.arrayValue ?? []).compactMap(\.stringValue))
        #expect(c.totalBytes == e["total_bytes"]?.intValue)
        #expect(c.indexMetadata?["total_size"]?.intValue == e["total_bytes"]?.intValue)
        let weightMap = try #require(e["weight_map"]?.objectValue)
        for (name, shard) in weightMap {
            let t = try c.tensor(named: name)
            #expect((t.path as NSString).lastPathComponent == shard.stringValue)
            let te = try #require(e["shards"]?[shard.stringValue ?? ""]?["tensors"]?[name])
            try check(t, against: te)
            #expect(c.contains(name))
        }
        let err = #expect(throws: FormatError.self) { try c.tensor(named: "model.nope") }
        #expect(err?.message == "no tensor model.nope in \(c.folder)")
        #expect(err?.file == c.folder)
    }

    @Test("single-file checkpoint", arguments: ["single", "single/model.safetensors"])
    func single(_ rel: String) throws {
        let e = try #require(ReaderFixtures.expected["checkpoints"]?["single"])
        let c = try SafetensorsCheckpoint(path: ReaderFixtures.path(rel))
        #expect(c.indexPath == nil && c.files.count == 1)
        #expect(c.names == (e["order"]?.arrayValue ?? []).compactMap(\.stringValue))
        #expect(c.totalBytes == e["total_bytes"]?.intValue)
        let te = try #require(e["shards"]?["model.safetensors"]?["tensors"]?["encoder.conv1.weight"])
        try check(try c.tensor(named: "encoder.conv1.weight"), against: te)
    }

    @Test("natural order of shard names")
    func natural() {
        let names = [
            "model-36-of-36.safetensors", "model-10-of-35.safetensors", "model-2-of-35.safetensors",
            "model-1-of-35.safetensors", "model-00003-of-00035.safetensors",
        ]
        #expect(
            names.sorted(by: naturalLess) == [
                "model-1-of-35.safetensors", "model-2-of-35.safetensors",
                "model-00003-of-00035.safetensors", "model-10-of-35.safetensors",
                "model-36-of-36.safetensors",
            ])
        #expect(SafetensorsCheckpoint.isPlainFileName("model-1-of-35.safetensors"))
        for bad in ["", ".", "..", "../x", "a/b", "a\\b", "/abs"] {
            #expect(!SafetensorsCheckpoint.isPlainFileName(bad))
        }
    }

    // MARK: malformed input

    struct Case: Sendable, CustomStringConvertible {
        let fixture: String  // file, or folder for checkpoints
        let file: String  // the file the error must name, relative to the fixtures root
        let message: [String]  // substrings the message must contain
        var description: String { fixture }
    }

    static let fileCases: [Case] = [
        ("empty", ["0 bytes, shorter than the 8-byte header length"]),
        ("short", ["5 bytes, shorter than the 8-byte header length"]),
        ("truncated", ["tensor 'f32.specials'", "run past the data section"]),
        ("header_huge", ["header length 9223372036854775808 exceeds the 100 MiB limit"]),
        ("header_past_eof", ["header length 1000 runs past the end of the file"]),
        ("header_too_big", ["exceeds the 100 MiB limit"]),
        ("header_not_json", ["header: invalid JSON"]),
        ("header_array", ["header is not a JSON object"]),
        ("dtype_unknown", ["tensor 'a'", "unsupported dtype F8_E4M3"]),
        ("shape_mismatch", ["tensor 'a'", "shape [2, 3] × F32 needs 24 bytes but data_offsets [0, 16] hold 16"]),
        ("shape_overflow", ["tensor 'a'", "overflows"]),
        ("offsets_past_data", ["tensor 'a'", "data_offsets [0, 32] run past the data section (16 bytes)"]),
        ("offsets_reversed", ["tensor 'a'", "end 8 < begin 16"]),
        ("overlap", ["tensors 'a' [0, 12) and 'b' [8, 16) overlap"]),
        ("negative_dim", ["tensor 'a'", "shape dim -1 is negative"]),
        ("fractional_dim", ["tensor 'a'", "shape dim 2.5 is not an integer"]),
        ("missing_offsets", ["tensor 'a'", "missing data_offsets"]),
        ("entry_not_object", ["tensor 'a'", "not a JSON object"]),
        ("metadata_not_strings", ["__metadata__ value for 'epoch' is not a string"]),
    ].map { name, msg in
        let rel = "malformed/safetensors/\(name).safetensors"
        return Case(fixture: rel, file: rel, message: msg)
    }

    static let checkpointCases: [Case] = {
        let base = "malformed/checkpoints/"
        let index = "/model.safetensors.index.json"
        return [
            Case(
                fixture: base + "shard_missing", file: base + "shard_missing" + index,
                message: ["shard model-2-of-2.safetensors (holding tensor 'b') does not exist"]),
            Case(
                fixture: base + "shard_dotdot", file: base + "shard_dotdot" + index,
                message: ["weight_map['a'] = '../model-1-of-1.safetensors' is not a plain file name"]),
            Case(
                fixture: base + "shard_slash", file: base + "shard_slash" + index,
                message: ["'sub/model-1-of-1.safetensors' is not a plain file name"]),
            Case(
                fixture: base + "wrong_shard", file: base + "wrong_shard" + index,
                message: ["tensor 'a' is not in shard model-2-of-2.safetensors, where the index says it is"]),
            Case(
                fixture: base + "unindexed", file: base + "unindexed/model-2-of-2.safetensors",
                message: ["tensor 'c' is in this shard but not in the index"]),
            Case(
                fixture: base + "duplicate", file: base + "duplicate/model-2-of-2.safetensors",
                message: ["tensor 'a' is also in", "model-1-of-2.safetensors"]),
            Case(
                fixture: base + "index_no_weight_map", file: base + "index_no_weight_map" + index,
                message: ["index has no weight_map"]),
            Case(
                fixture: base + "index_value_not_string", file: base + "index_value_not_string" + index,
                message: ["weight_map['a'] is 1, not a shard file name"]),
            Case(
                fixture: base + "index_not_json", file: base + "index_not_json" + index,
                message: ["JSON ends early"]),
            Case(
                fixture: base + "no_model", file: base + "no_model",
                message: ["neither model.safetensors.index.json nor model.safetensors"]),
        ]
    }()

    @Test("malformed safetensors file → FormatError naming file and problem", arguments: fileCases)
    func malformedFile(_ c: Case) throws {
        let err = #expect(throws: FormatError.self) { try SafetensorsFile(path: ReaderFixtures.path(c.fixture)) }
        #expect(err?.file == ReaderFixtures.path(c.file))
        for m in c.message { #expect(err?.message.contains(m) == true, "\(err?.message ?? "no error") lacks \(m)") }
        #expect(err?.message.contains("\n") == false)
        // The same file as a one-file checkpoint fails the same way.
        let err2 = #expect(throws: FormatError.self) { try SafetensorsCheckpoint(path: ReaderFixtures.path(c.fixture)) }
        #expect(err2 == err)
    }

    @Test("malformed checkpoint → FormatError naming file and problem", arguments: checkpointCases)
    func malformedCheckpoint(_ c: Case) throws {
        let err = #expect(throws: FormatError.self) { try SafetensorsCheckpoint(path: ReaderFixtures.path(c.fixture)) }
        #expect(err?.file == ReaderFixtures.path(c.file))
        for m in c.message { #expect(err?.message.contains(m) == true, "\(err?.message ?? "no error") lacks \(m)") }
        #expect(err?.message.contains("\n") == false)
    }

    @Test("the malformed table covers every malformed fixture")
    func tableComplete() {
        #expect(Set(Self.fileCases.map(\.fixture)) == ReaderFixtures.malformed("safetensors"))
        #expect(Set(Self.checkpointCases.map(\.fixture)) == ReaderFixtures.malformed("checkpoint"))
    }

    @Test("missing path")
    func missingPath() {
        let p = ReaderFixtures.path("does-not-exist")
        let err = #expect(throws: FormatError.self) { try SafetensorsCheckpoint(path: p) }
        #expect(err?.file == p)
        #expect(throws: FormatError.self) { try SafetensorsFile(path: p) }
    }

    // MARK: corruption smoke test

    @Test("random truncations and byte flips load or throw FormatError, never crash")
    func corruption() throws {
        let good = try Data(contentsOf: URL(fileURLWithPath: ReaderFixtures.path("good/halves.safetensors")))
        let headerEnd = 8 + Int(good.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kaf-readers-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        var rng = SplitMix64(state: 0x5AFE_7E45)
        var loaded = 0, rejected = 0
        for i in 0 ..< 400 {
            var bytes = [UInt8](good)
            switch i % 4 {
            case 0:  // truncate anywhere
                bytes.removeLast(Int.random(in: 1 ... bytes.count, using: &rng))
            case 1, 2:  // flip bytes, mostly in the header where they matter
                for _ in 0 ..< Int.random(in: 1 ... 4, using: &rng) {
                    let at = Int.random(in: 0 ..< (i % 4 == 1 ? headerEnd : bytes.count), using: &rng)
                    bytes[at] ^= UInt8.random(in: 1 ... 255, using: &rng)
                }
            default:  // overwrite a header byte with a JSON-significant character
                let at = Int.random(in: 8 ..< headerEnd, using: &rng)
                bytes[at] = Array("{}[]\",:-0123456789e.".utf8).randomElement(using: &rng) ?? 0
            }
            let url = dir.appendingPathComponent("c\(i).safetensors")
            try Data(bytes).write(to: url)
            do {
                let f = try SafetensorsFile(path: url.path)
                // Whatever loaded must be readable end to end inside the file.
                for t in f.tensors {
                    _ = t.doubles()
                    #expect(t.fileOffset + t.byteCount <= f.mapping.count)
                }
                loaded += 1
            } catch let e as FormatError {
                #expect(e.file == url.path)
                #expect(!e.message.contains("\n"))
                rejected += 1
            } catch {
                Issue.record("not a FormatError: \(error)")
            }
        }
        #expect(loaded + rejected == 400)
        #expect(rejected > 100)
    }
}

/// Item 8 of issue 12: a header naming one tensor twice was accepted (the last copy won), and an
/// escaped NUL in a name was cut there (`lm_head.weight\u0000x` read as `lm_head.weight`). The
/// reference library rejects both; so does this reader, naming the file and the key.
@Test(arguments: [
    (
        #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#,
        "'a' appears twice"
    ),
    (
        #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"\u0061":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#,
        "'a' appears twice"
    ),
    (#"{"lm_head.weight\u0000x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, "contains U+0000"),
    (#"{"__metadata__":{"k\u0000":"v"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, "contains U+0000"),
])
func safetensorsDuplicateOrNULTensorNamesAreRejected(_ header: String, _ want: String) throws {
    let path = NSTemporaryDirectory() + "st-hostile-\(UUID().uuidString).safetensors"
    defer { unlink(path) }
    var bytes: [UInt8] = []
    withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian) { bytes += $0 }
    bytes += Array(header.utf8) + [UInt8](repeating: 0, count: 8)
    #expect(FileManager.default.createFile(atPath: path, contents: Data(bytes)))
    let error = #expect(throws: FormatError.self) { _ = try SafetensorsFile(path: path) }
    #expect(error?.file == path && error?.message.contains(want) == true, "\(error?.message ?? "no error")")
    #expect(error?.message.contains("\n") == false)
}

/// Keys that only look alike stay distinct, and a repeated key elsewhere in JSON keeps the last value.
@Test func jsonKeyCheckKeepsDistinctKeysAndLastWinsOutsideSafetensors() throws {
    let v = try JSONValue.parse(#"{"a":1,"A":2,"a\/b":3,"x":[{"a":1},{"a":2}],"d":{"k":1,"k":2}}"#, file: "t.json")
    #expect(v["a"] == 1 && v["A"] == 2 && v["a/b"] == 3 && v["d"]?["k"] == 2)
    #expect(throws: FormatError.self) { _ = try JSONValue.parse(#"{"a\u0000":1}"#, file: "t.json") }
}
