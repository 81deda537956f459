import Foundation
import Testing
@testable import KAF

@Suite("YAML")
struct YAMLTests {
    /// expected.json writes ±inf as {"$float": "inf"}; turn those into doubles.
    private static func unwrap(_ v: JSONValue) -> JSONValue {
        switch v {
        case .object(let o):
            if o.count == 1, let s = o["$float"]?.stringValue {
                return .double(s == "inf" ? .infinity : s == "-inf" ? -.infinity : .nan)
            }
            return .object(o.mapValues(unwrap))
        case .array(let a): return .array(a.map(unwrap))
        default: return v
        }
    }

    @Test("config.yaml reads as PyYAML (with the YAML 1.2 float rule) reads it")
    func config() throws {
        let want = Self.unwrap(try #require(ReaderFixtures.expected["yaml"]?["good/config.yaml"]))
        let got = try YAMLDocument.load(path: ReaderFixtures.path("good/config.yaml"))
        #expect(got == want)
        // Spot checks of the cases that matter for the detokenizer config.
        #expect(got["mel"]?["mel_mean"] == .double(-4.479605))
        #expect(got["mel"]?["eps"] == .double(1e-6))
        #expect(got["mel"]?["clip"] == .double(.infinity))
        #expect(got["mel"]?["fmin"] == .int(0))
        #expect(got["model"]?["use_rope"] == .bool(true))
        #expect(got["model"]?["layers"]?.arrayValue?[1]["bias"] == .bool(false))
        #expect(got["training"]?["tags"]?.arrayValue?[0] == .string("true"))
        #expect(got["stream"] == ["chunk": 150, "overlap": 0.5])
    }

    private func y(_ s: String) throws -> JSONValue { try YAMLDocument.parse(s, file: "inline.yaml") }

    @Test("scalar resolution")
    func scalars() throws {
        let v = try y("""
            a: yes
            b: Off
            c: 0x1F
            d: 010
            e: 1_000
            f: 1:30
            g: -7
            h: 1.
            i: -.inf
            j: "12"
            k: !!str 12
            l: 2001-12-14
            m: ~
            n: ''
            o: 'yes'
            p: 9223372036854775807
            q: -9223372036854775808
            r: 1.5e3
            s: +12
            t: 0b101
            """)
        #expect(v["a"] == .bool(true))
        #expect(v["b"] == .bool(false))
        #expect(v["c"] == .int(31))
        #expect(v["d"] == .int(8))
        #expect(v["e"] == .int(1000))
        #expect(v["f"] == .int(90))
        #expect(v["g"] == .int(-7))
        #expect(v["h"] == .double(1))
        #expect(v["i"] == .double(-.infinity))
        #expect(v["j"] == .string("12"))
        #expect(v["k"] == .string("12"))
        #expect(v["l"] == .string("2001-12-14"))
        #expect(v["m"] == .null)
        #expect(v["n"] == .string(""))
        #expect(v["o"] == .string("yes"))
        #expect(v["p"] == .int(.max))
        #expect(v["q"] == .int(.min))
        #expect(v["r"] == .double(1500))
        #expect(v["s"] == .int(12))
        #expect(v["t"] == .int(5))
        let nan = try y("x: .nan")["x"]?.doubleValue
        #expect(nan?.isNaN == true)
    }

    @Test("documents, sequences and merges")
    func structure() throws {
        #expect(try y("") == .null)
        #expect(try y("- 1\n- [2, {a: b}]\n") == [1, [2, ["a": "b"]]])
        let m = try y("""
            base: &b {x: 1, y: 2}
            more: &m {y: 3, z: 4}
            c:
              <<: [*b, *m]
              x: 0
            """)
        #expect(m["c"] == ["x": 0, "y": 2, "z": 4])
    }

    @Test("hostile scalars are errors, not traps")
    func hostileScalars() throws {
        for s in ["a: 99999999999999999999", "a: 9223372036854775808", "a: 99999999999999999:59:59",
                  "a: -9223372036854775809", "a: 0x1FFFFFFFFFFFFFFFF"] {
            let err = #expect(throws: FormatError.self, "\(s)") { try y(s) }
            #expect(err?.message.contains("out of range") == true)
        }
        #expect(try y("a: 190:20:30.15")["a"] == .double(190 * 3600 + 20 * 60 + 30.15))
        #expect(throws: FormatError.self) { try y("? [1, 2]\n: x\n") }   // sequence key
        #expect(throws: FormatError.self) { try y("true: 1") }           // bool key
        #expect(throws: FormatError.self) { try y("a: 1\n---\nb: 2\n") } // two documents
    }

    struct Case: Sendable, CustomStringConvertible {
        let fixture: String
        let message: String
        var description: String { fixture }
    }

    static let cases: [Case] = [
        ("syntax_error", "invalid YAML at line 3"),
        ("unclosed_flow", "invalid YAML at line"),
        ("billion_laughs", "more than 100000 nodes"),
        ("deep_nesting", "nesting deeper than 128 levels"),
        ("int_key", "line 2: mapping key '1' (int) is not a string"),
        ("duplicate_key", "line 2: duplicate key 'dim'"),
        ("not_utf8", "not valid UTF-8"),
        ("undefined_alias", "alias *nothing at line 1 has no anchor"),
    ].map { Case(fixture: "malformed/yaml/\($0).yaml", message: $1) }

    @Test("malformed YAML → FormatError naming file and problem", arguments: cases)
    func malformed(_ c: Case) {
        let p = ReaderFixtures.path(c.fixture)
        let err = #expect(throws: FormatError.self) { try YAMLDocument.load(path: p) }
        #expect(err?.file == p)
        #expect(err?.message.contains(c.message) == true, "\(err?.message ?? "no error") lacks \(c.message)")
        #expect(err?.message.contains("\n") == false)
    }

    @Test("the malformed table covers every malformed fixture")
    func tableComplete() {
        #expect(Set(Self.cases.map(\.fixture)) == ReaderFixtures.malformed("yaml"))
    }

    @Test("aliases within the node budget are expanded")
    func aliasesAllowed() throws {
        let v = try y("a: &a [1, 2, 3]\nb: [*a, *a]\n")
        #expect(v["b"] == [[1, 2, 3], [1, 2, 3]])
    }
}
