import Foundation
import Testing
@testable import KAF

@Suite("Tiktoken")
struct TiktokenTests {
    static let goodFiles = ["good/tiktoken.model", "good/tiktoken_crlf.model",
                            "good/tiktoken_no_final_newline.model", "good/tiktoken_unordered.model"]

    private static func hexBytes(_ s: String) -> [UInt8] {
        var out: [UInt8] = []
        var it = s.makeIterator()
        while let a = it.next(), let b = it.next() { out.append(UInt8(String([a, b]), radix: 16) ?? 0) }
        return out
    }

    @Test("ranks match the tokens the Python script wrote", arguments: goodFiles)
    func readsFile(_ rel: String) throws {
        let e = try #require(ReaderFixtures.expected["tiktoken"]?[rel])
        let r = try TiktokenRanks.load(path: ReaderFixtures.path(rel))
        let tokens = (e["tokens_hex"]?.arrayValue ?? []).compactMap(\.stringValue).map(Self.hexBytes)
        #expect(r.count == e["count"]?.intValue)
        #expect(r.tokens == tokens)
        #expect(r.entries.map(\.rank) == (e["rank_order"]?.arrayValue ?? []).compactMap(\.intValue))
        for entry in r.entries { #expect(r.tokens[entry.rank] == entry.bytes) }
        let dict = r.rankDictionary()
        #expect(dict.count == r.count)
        #expect(dict[Array("the".utf8)] == 258)
        #expect(dict[[0xE4, 0xBD, 0xA0, 0xE5, 0xA5, 0xBD]] == 263)
        #expect(dict[[0x0D, 0x0A]] == 265)
    }

    @Test("strict base64")
    func base64() {
        func dec(_ s: String) -> [UInt8]? {
            var s = s
            return s.withUTF8 { if case .success(let b) = TiktokenBase64.decode(UnsafeRawBufferPointer($0)) { return b } else { return nil } }
        }
        #expect(dec("") == [])
        #expect(dec("QQ==") == [0x41])
        #expect(dec("QUI=") == [0x41, 0x42])
        #expect(dec("QUJD") == [0x41, 0x42, 0x43])
        #expect(dec("+/8=") == [0xFB, 0xFF])
        #expect(dec("//////8=") == [0xFF, 0xFF, 0xFF, 0xFF, 0xFF])
        // Every byte value round-trips through Foundation's encoder.
        for n in 1 ... 5 {
            let bytes = (0 ..< n).map { UInt8(truncatingIfNeeded: $0 * 97 + 13) }
            #expect(dec(Data(bytes).base64EncodedString()) == bytes)
        }
        for bad in ["Q", "QQ=", "QQ=A", "Q===", "====", "QR==", "QUJ=x===", "QU-D", "QU_D", "QU D", "QUJD\0"] {
            #expect(dec(bad) == nil, "\(bad)")
        }
    }

    struct Case: Sendable, CustomStringConvertible {
        let fixture: String
        let line: Int
        let message: String
        var description: String { fixture }
    }

    static let cases: [Case] = [
        ("bad_base64", 3, "invalid base64 character '!'"),
        ("bad_base64_length", 3, "base64 length 3 is not a multiple of 4"),
        ("bad_base64_padding", 3, "non-canonical base64"),
        ("duplicate_rank", 6, "duplicate rank 4 (also on line 5)"),
        ("duplicate_bytes", 6, "duplicate token bytes 04 (also on line 5)"),
        ("rank_gap", 12, "rank 20 leaves a gap: ranks must be exactly 0..<12, and rank 11 is missing"),
        ("non_numeric_rank", 4, "rank 'abc' is not a non-negative decimal integer"),
        ("negative_rank", 4, "rank '-3' is not a non-negative decimal integer"),
        ("huge_rank", 4, "is too large"),
        ("empty_token", 4, "empty token"),
        ("no_separator", 4, "found no space"),
        ("blank_line", 5, "blank line"),
        ("empty", 0, "no tokens"),
    ].map { Case(fixture: "malformed/tiktoken/\($0).model", line: $1, message: $2) }

    @Test("malformed tiktoken.model → FormatError naming file, line and problem", arguments: cases)
    func malformed(_ c: Case) {
        let p = ReaderFixtures.path(c.fixture)
        let err = #expect(throws: FormatError.self) { try TiktokenRanks.load(path: p) }
        #expect(err?.file == p)
        if c.line > 0 { #expect(err?.message.hasPrefix("line \(c.line): ") == true, "\(err?.message ?? "")") }
        #expect(err?.message.contains(c.message) == true, "\(err?.message ?? "no error") lacks \(c.message)")
    }

    @Test("the malformed table covers every malformed fixture, at the line the script says")
    func tableComplete() {
        let listed = (ReaderFixtures.expected["malformed"]?.arrayValue ?? []).filter { $0["reader"]?.stringValue == "tiktoken" }
        #expect(Set(Self.cases.map(\.fixture)) == Set(listed.compactMap { $0["path"]?.stringValue }))
        for l in listed {
            let c = Self.cases.first { $0.fixture == l["path"]?.stringValue }
            #expect(c?.line == l["line"]?.intValue, "\(c?.fixture ?? "?")")
        }
    }

    @Test("inline edge cases")
    func inline() throws {
        func parse(_ s: String) throws -> TiktokenRanks {
            var s = s
            return try s.withUTF8 { try TiktokenRanks.parse(UnsafeRawBufferPointer($0), path: "inline") }
        }
        #expect(try parse("QQ== 0").tokens == [[0x41]])
        #expect(try parse("QQ== 1\nQg== 0\r\n").tokens == [[0x42], [0x41]])
        #expect(throws: FormatError.self) { try parse("QQ==  0") }      // two spaces
        #expect(throws: FormatError.self) { try parse("QQ== 0 \n") }    // trailing space
        #expect(throws: FormatError.self) { try parse("QQ== +0") }
        #expect(throws: FormatError.self) { try parse("QQ== 0\n\n") }   // blank final line
        #expect(throws: FormatError.self) { try parse("QQ== 1") }       // gap: 0 missing
    }
}
