import Testing
import Foundation
@testable import KAF

enum Fixtures {
    /// Tests/Fixtures, found from this file's path (fixtures are not SwiftPM resources).
    static let root: String = {
        var url = URL(fileURLWithPath: #filePath)
        url.deleteLastPathComponent(); url.deleteLastPathComponent()
        return url.appendingPathComponent("Fixtures").path
    }()
    static func path(_ rel: String) -> String { root + "/" + rel }

    static func tempDir() -> String {
        let d = NSTemporaryDirectory() + "kaf-tests-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }
}

@Suite struct BlockLayoutTests {
    @Test func blockSizesMatchTheSpec() {
        #expect(MemoryLayout<BlockQ8<32>>.size == 34)   // ggml block_q8_0
        #expect(MemoryLayout<BlockQ8<64>>.size == 66)
        #expect(MemoryLayout<BlockQ8<128>>.size == 130)
        #expect(MemoryLayout<BlockQ4<16>>.size == 18)   // ggml block_q4_0
        #expect(MemoryLayout<BlockQ4<32>>.size == 34)
        #expect(MemoryLayout<BlockQ4<64>>.size == 66)
        #expect(MemoryLayout<BlockQ4<16>>.stride == 18) // blocks pack with no padding
        #expect(MemoryLayout<BlockQ8<32>>.stride == 34)
    }

    @Test func traitsTableIsConsistent() {
        for t in DType.allCases {
            let tr = t.traits
            if t.isQuantized {
                #expect(tr.blockBytes == 2 + tr.blockElems * tr.quantBits / 8, "\(t.name)")
                #expect(DType.quantized(bits: tr.quantBits, group: tr.blockElems, interleaved: t.isInterleaved) == t)
                #expect(t.plain.traits.blockBytes == tr.blockBytes && !t.plain.isInterleaved)
                #expect(t.isInterleaved ? t.plain.interleaved == t : t.interleaved?.plain == t)
            }
            #expect(DType(name: t.name) == t)
        }
        #expect(DType.q4_g32.bitsPerWeight == 4.5)
        #expect(DType.q8_g32.bitsPerWeight == 8.5)
        #expect(DType.q4_g64.byteCount(shape: [3, 128]) == 3 * 2 * 34)
        #expect(DType.q4_g64.byteCount(shape: [3, 100]) == nil)   // not a whole number of groups
        #expect(DType.f32.byteCount(shape: [Int.max, 2]) == nil)  // overflow is caught
        #expect(DType.q4_g32_r8.name == "q4_g32_r8" && DType.q8_g128_r8.name == "q8_g128_r8")
        #expect(DType.q4_g32_r8.byteCount(shape: [16, 64]) == 16 * 2 * 18)
        #expect(DType.q4_g32_r8.byteCount(shape: [12, 64]) == nil)     // rows not whole groups of 8
        #expect(DType.q8_g32_r8.byteCount(shape: [8, 8, 64]) == nil)   // 2-D only
    }

    /// The `_r8` layout written out from its definition in KAF.md (not from RowInterleave), and
    /// RowInterleave checked against it both ways.
    @Test func rowInterleaveFollowsTheSpec() {
        for plain in [DType.q4_g32, .q4_g64, .q4_g128, .q8_g32, .q8_g64, .q8_g128] {
            let cols = 2 * plain.groupSize, rows = 16
            let bb = plain.traits.blockBytes, rowBytes = (cols / plain.groupSize) * bb
            let src = (0 ..< rows * rowBytes).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ $0 >> 8) }
            var want = [UInt8](repeating: 0, count: src.count)
            for r in 0 ..< rows {
                for g in 0 ..< cols / plain.groupSize {
                    let tile = (r / 8) * 8 * rowBytes + g * 8 * bb, blk = r * rowBytes + g * bb
                    want[tile + 2 * (r % 8)] = src[blk]; want[tile + 2 * (r % 8) + 1] = src[blk + 1]
                    for k in 0 ..< bb - 2 { want[tile + 16 + 32 * (k / 4) + 4 * (r % 8) + k % 4] = src[blk + 2 + k] }
                }
            }
            var got = [UInt8](repeating: 0, count: src.count), back = got
            src.withUnsafeBytes { s in got.withUnsafeMutableBytes { d in
                for i in 0 ..< rows / 8 {
                    RowInterleave.interleave(plain, cols: cols, rowsAt: s.baseAddress! + 8 * i * rowBytes, stride: rowBytes, into: d.baseAddress! + 8 * i * rowBytes)
                }
            } }
            #expect(got == want, "\(plain.name)")
            got.withUnsafeBytes { s in back.withUnsafeMutableBytes { d in
                for r in 0 ..< rows {
                    RowInterleave.deinterleave(plain, cols: cols, groupAt: s.baseAddress! + (r / 8) * 8 * rowBytes, row: r % 8, into: d.baseAddress! + r * rowBytes)
                }
            } }
            #expect(back == src, "\(plain.name) round trip")
        }
    }
}

@Suite struct XXH64Tests {
    @Test func matchesReferenceVectors() throws {
        let doc = try JSONValue.parse(contentsOf: Fixtures.path("xxh64.json"))
        let cases = try #require(doc["cases"]?.arrayValue)
        #expect(cases.count > 30)
        for c in cases {
            let n = try #require(c["length"]?.intValue), seed = try #require(c["seed"]?.intValue)
            let data = (0 ..< n).map { UInt8(($0 * 31 + 7) % 256) }
            let hex = try #require(c["hash"]?.stringValue)
            let want = try #require(UInt64(hex, radix: 16))
            #expect(data.withUnsafeBytes { XXH64.hash($0, seed: UInt64(seed)) } == want, "length \(n) seed \(seed)")
            // Streaming in uneven pieces gives the same hash.
            var x = XXH64(seed: UInt64(seed))
            var i = 0, step = 1
            data.withUnsafeBytes { b in
                while i < n { let e = min(n, i + step); x.update(UnsafeRawBufferPointer(rebasing: b[i ..< e])); i = e; step = step * 3 % 37 + 1 }
            }
            #expect(x.finalize() == want, "streamed, length \(n)")
        }
    }
}

@Suite struct KAFRoundTripTests {
    static func values(_ n: Int, seed: UInt64) -> [Float] {
        var s = seed
        return (0 ..< n).map { _ in
            s = s &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(bitPattern: s >> 11) % 20001 - 10000) / 3000
        }
    }

    @Test func everyDTypeRoundTrips() throws {
        let dir = Fixtures.tempDir()
        let path = dir + "/all.kaf"
        let w = try KAFWriter(path: path)
        var written: [String: (DType, [Int], [UInt8])] = [:]
        for (i, t) in DType.allCases.enumerated() {
            let shape = t.isInterleaved ? [8, 2 * t.groupSize] : t.isQuantized ? [3, 2 * t.groupSize] : [5, 7]
            let n = try #require(t.byteCount(shape: shape))
            var bytes = [UInt8](repeating: 0, count: n)
            for j in 0 ..< n { bytes[j] = UInt8(truncatingIfNeeded: j &* 131 &+ i) }
            try bytes.withUnsafeBytes { try w.addTensor(name: "t.\(t.name)", dtype: t, shape: shape, bytes: $0) }
            written["t.\(t.name)"] = (t, shape, bytes)
        }
        // A tensor streamed in many chunks, and a scalar (0-dim).
        try w.addTensor(name: "t.chunked", dtype: .f32, shape: [1000]) { sink in
            let v = Self.values(1000, seed: 9)
            try v.withUnsafeBytes { b in for k in stride(from: 0, to: 4000, by: 300) { try sink.write(UnsafeRawBufferPointer(rebasing: b[k ..< min(4000, k + 300)])) } }
        }
        try [Float(2.5)].withUnsafeBytes { try w.addTensor(name: "t.scalar", dtype: .f32, shape: [], bytes: $0) }
        let text = Array(String(repeating: "tiktoken rank line\n", count: 500).utf8)
        try w.addBlob(name: "tokenizer.tiktoken", bytes: text, compress: true)
        try w.addMeta(["format": "kaf", "version": 1, "note": "round trip ✓"])
        try w.finish()

        let f = try KAFFile(path: path, verify: true)
        #expect(f.entries.count == DType.allCases.count + 4)
        for (name, (t, shape, bytes)) in written {
            let x = try f.tensor(name)
            #expect(x.dtype == t && x.shape == shape)
            #expect(Array(x.bytes) == bytes, "\(name)")
            #expect(x.entry.offset % 64 == 0)
            #expect(Int(bitPattern: x.data) % 64 == 0)
        }
        #expect(dequantize(try f.tensor("t.chunked")) == Self.values(1000, seed: 9))
        #expect(dequantize(try f.tensor("t.scalar")) == [2.5])
        #expect(try f.blob("tokenizer.tiktoken") == text)
        #expect(f.entry("tokenizer.tiktoken")!.storedSize < text.count / 10)   // zstd did its job
        #expect(f.meta["note"]?.stringValue == "round trip ✓")
        #expect(f.components == ["t"])
    }

    @Test func quantizedValuesDecode() throws {
        // q8/q4 bytes decode to d·q / d·(q−8) per the byte diagram in formats/KAF.md.
        var blk = [UInt8](repeating: 0, count: 18)
        let d = floatToF16(0.5)
        blk[0] = UInt8(d & 0xFF); blk[1] = UInt8(d >> 8)
        blk[2] = 0x9F            // x[0] = 0.5·(15−8) = 3.5, x[16] = 0.5·(9−8) = 0.5
        blk[17] = 0x08           // x[15] = 0, x[31] = 0.5·(0−8) = −4
        var out = [Float](repeating: .nan, count: 32)
        blk.withUnsafeBytes { b in out.withUnsafeMutableBufferPointer { dequantizeRow_ref(.q4_g32, b.baseAddress!, count: 32, into: $0.baseAddress!) } }
        #expect(out[0] == 3.5 && out[16] == 0.5 && out[15] == 0 && out[31] == -4 && out[1] == -4)
        var q8 = [UInt8](repeating: 0, count: 34)
        q8[0] = UInt8(d & 0xFF); q8[1] = UInt8(d >> 8); q8[2] = 0x81; q8[33] = 0x7F
        q8.withUnsafeBytes { b in out.withUnsafeMutableBufferPointer { dequantizeRow_ref(.q8_g32, b.baseAddress!, count: 32, into: $0.baseAddress!) } }
        #expect(out[0] == -63.5 && out[31] == 63.5 && out[5] == 0)
    }

    @Test func unfinishedWriterLeavesNothing() throws {
        let dir = Fixtures.tempDir()
        let path = dir + "/partial.kaf"
        do {
            let w = try KAFWriter(path: path)
            try [Float](repeating: 1, count: 64).withUnsafeBytes { try w.addTensor(name: "a", dtype: .f32, shape: [64], bytes: $0) }
            // A wrong byte count fails the tensor...
            #expect(throws: FormatError.self) { try w.addTensor(name: "b", dtype: .f32, shape: [64]) { _ in } }
            // ...and a writer dropped without finish() removes its temp file.
        }
        let left = try FileManager.default.contentsOfDirectory(atPath: dir)
        #expect(left.isEmpty, "left behind: \(left)")
    }

    @Test func existingFileIsNotOverwrittenWithoutForce() throws {
        let dir = Fixtures.tempDir()
        let path = dir + "/x.kaf"
        FileManager.default.createFile(atPath: path, contents: Data("keep".utf8))
        #expect(throws: FormatError.self) { _ = try KAFWriter(path: path) }
        let w = try KAFWriter(path: path, overwrite: true)
        try w.addMeta(["format": "kaf"])
        try w.finish()
        #expect(try KAFFile(path: path).entries.count == 1)
    }
}
