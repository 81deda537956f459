import Foundation
import Testing

@testable import KAF
@testable import KimiRuntime

#if canImport(FoundationXML)
import FoundationXML
#endif

#if canImport(Glibc)
import Glibc
#endif

/// The renderings of a parity report (runtime/Parity/ReportWriter.swift): report.json against the
/// schema in formats/PARITY.md (parsed from its tables), report.html well-formed and self-contained,
/// verdicts and counts, the files written, the output folder checked before any work.
@Suite struct ParityReportTests {
    typealias R = ParityReport

    static let snrBand = R.Band(.atLeast, pass: 30, drift: 20, evidence: "q4_0 on Gaussian weights: 20–26 dB")
    static let cosBand = R.Band(.atLeast, pass: 0.9995, drift: 0.995, evidence: "llama.cpp q4_0 perplexity runs")

    static func side(_ role: String, _ path: String) -> R.Side {
        R.Side(
            role: role, path: path, kind: role == "model" ? "kaf q4_0" : "release folder", fileBytes: 1 << 30,
            seconds: role == "model" ? 12.5 : 40)
    }

    /// Checks of several sections and verdicts (one unjudged, one NaN), tensors with finite, infinite
    /// and NaN SNR, layers of both groups with one drifting and one failing; data that would spell
    /// external references if it were not escaped.
    static var full: R {
        var r = R(
            reference: side("reference", "/models//Kimi-Audio-7B-Instruct"), model: side("model", "out/k & <q4>.kaf"),
            created: "2025-01-02T03:04:05Z")
        r.checks = [
            R.Check(
                "text_head", "top1_agreement", 0.987, unit: "",
                band: R.Band(
                    .atLeast, pass: 0.98, drift: 0.95,
                    evidence: "https://example.com/evidence"), detail: "over 512 positions"),
            R.Check(
                "text_head", "kl_divergence", 0.012, unit: "nats",
                band: R.Band(
                    .atMost, pass: 0.005, drift: 0.02,
                    evidence: "llama.cpp KLD | q4_0"), detail: "mean"),
            R.Check(
                "audio_head", "top1_agreement", 0.80, band: R.Band(.atLeast, pass: 0.95, drift: 0.9, evidence: "x"),
                detail: "src=\"x\" url(y) @import z"),
            R.Check("resources", "model_seconds", 12.5, unit: "s", detail: "not judged"),
            R.Check("audio_in", "vq_agreement", .nan, band: R.Band(.atLeast, pass: 0.99, drift: 0.9, evidence: "e")),
            R.Check(
                "custom_section", "thing", 3, unit: "%", band: R.Band(.atMost, pass: 5, drift: .infinity, evidence: "e")
            ),
        ]
        let s = snrBand
        r.tensors = [
            R.TensorStat(
                name: "llm.layers.3.mlp.down_proj.weight", dtype: "q4_0", referenceDtype: "bf16", shape: [4096, 11008],
                bitsPerWeight: 4.5, rmse: 0.01, maxAbs: 0.2, snrDB: .nan, band: s),
            R.TensorStat(
                name: "llm.layers.0.self_attn.q_proj.weight", dtype: "q4_0", referenceDtype: "bf16",
                shape: [4096, 4096],
                bitsPerWeight: 4.5, rmse: 0.004, maxAbs: 0.05, snrDB: 22.3, band: s),
            R.TensorStat(
                name: "llm.layers.1.self_attn.k_proj.weight", dtype: "q8_0", referenceDtype: "bf16",
                shape: [512, 4096],
                bitsPerWeight: 8.5, rmse: 0.001, maxAbs: 0.01, snrDB: 40.1, band: s),
            R.TensorStat(
                name: "llm.norm.weight", dtype: "f32", referenceDtype: "bf16", shape: [4096],
                bitsPerWeight: 32, rmse: 0, maxAbs: 0, snrDB: .infinity, band: s),
        ]
        r.layers = [
            R.LayerDrift(
                name: "llm.layers.0", meanCosine: 0.99995, minCosine: 0.9999, relativeError: 0.01, band: cosBand),
            R.LayerDrift(
                name: "llm.layers.1", meanCosine: 0.998, minCosine: 0.99, relativeError: 0.03, band: cosBand),
            R.LayerDrift(name: "llm.layers.2", meanCosine: 1, minCosine: 1, relativeError: 0, band: cosBand),
            R.LayerDrift(name: "mimo.layers.0", meanCosine: 0.99, minCosine: 0.95, relativeError: 0.2, band: cosBand),
            R.LayerDrift(name: "mimo.layers.1", meanCosine: .nan, minCosine: .nan, relativeError: .nan, band: cosBand),
        ]
        r.peakRSSBytes = 9 << 30
        r.notes = ["audio_out skipped: no vocoder in the model", "see https://example.com/a//b"]
        return r
    }

    static var empty: R {
        R(reference: side("reference", "ref"), model: side("model", "m.kaf"), created: "2025-01-01T00:00:00Z")
    }

    /// 25 tensors (more than the 20 shown) and a single layer.
    static var many: R {
        var r = empty
        r.tensors = (0 ..< 25).map { i in
            R.TensorStat(
                name: "t\(i)", dtype: "q4_0", referenceDtype: "f32", shape: [i + 1], bitsPerWeight: 4.5,
                rmse: 1e-3, maxAbs: 1e-2, snrDB: 18 + Double(i), band: snrBand)
        }
        r.layers = [
            R.LayerDrift(
                name: "llm.layers.0", meanCosine: 0.99999, minCosine: 0.9999, relativeError: 1e-3, band: cosBand)
        ]
        return r
    }

    // MARK: schema

    struct Field: Equatable {
        let name, type, meaning: String
    }
    typealias Schema = [String: [Field]]

    static let parityMD: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0 ..< 3 { url.deleteLastPathComponent() }
        return url.appendingPathComponent("formats/PARITY.md").path
    }()

    /// The `### object: NAME` tables of PARITY.md: field (backquotes removed), type, meaning.
    static func parseSchema(_ md: String) -> Schema {
        var schema: Schema = [:]
        var current: String?
        for line in md.split(separator: "\n", omittingEmptySubsequences: false) {
            let l = line.trimmingCharacters(in: .whitespaces)
            if l.hasPrefix("#") {
                current = l.hasPrefix("### object: ") ? String(l.dropFirst("### object: ".count)) : nil
                if let current { schema[current] = [] }
                continue
            }
            guard let object = current, l.hasPrefix("|") else { continue }
            let cells = l.split(separator: "|", omittingEmptySubsequences: false).dropFirst().dropLast()
                .map { $0.trimmingCharacters(in: .whitespaces) }
            guard cells.count == 3, cells[0] != "field", !cells[0].hasPrefix("---") else { continue }
            schema[object]!.append(
                Field(name: cells[0].replacingOccurrences(of: "`", with: ""), type: cells[1], meaning: cells[2]))
        }
        return schema
    }

    /// Every complaint about `v` as an instance of `object`: a documented field missing or of
    /// another type, an undocumented field, a type the doc does not define.
    static func complaints(_ v: JSONValue, _ object: String, _ schema: Schema, at path: String = "$") -> [String] {
        guard let fields = schema[object] else { return ["\(path): no table for object '\(object)'"] }
        guard case .object(let o) = v else { return ["\(path): not an object (\(object))"] }
        var out: [String] = []
        for k in o.keys.sorted() where !fields.contains(where: { $0.name == k }) {
            out.append("\(path).\(k): not documented in object '\(object)'")
        }
        for f in fields {
            guard let value = o[f.name] else {
                out.append("\(path).\(f.name): missing")
                continue
            }
            out += complaints(value, type: f.type, meaning: f.meaning, schema, at: "\(path).\(f.name)")
        }
        return out
    }

    static func complaints(_ v: JSONValue, type: String, meaning: String, _ schema: Schema, at path: String) -> [String]
    {
        func objectName() -> String? {
            let parts = meaning.split(separator: "`", omittingEmptySubsequences: false)
            return parts.count >= 3 ? String(parts[1]) : nil
        }
        let bad = ["\(path): \(v.serialized().prefix(60)) is not \(type)"]
        switch (type, v) {
        case ("string", .string), ("string or null", .string), ("string or null", .null): return []
        case ("number", .int), ("number", .double), ("number or null", .int), ("number or null", .double),
            ("number or null", .null):
            return []
        case ("integer", .int): return []
        case ("object or null", .null): return []
        case ("object", .object), ("object or null", .object):
            guard let name = objectName() else { return ["\(path): the meaning of an object field names no object"] }
            return complaints(v, name, schema, at: path)
        case (_, .array(let items)) where type.hasPrefix("array of "):
            let element = String(type.dropFirst("array of ".count))
            return items.enumerated().flatMap { i, item -> [String] in
                let p = "\(path)[\(i)]"
                switch element {
                case "string", "integer": return complaints(item, type: element, meaning: "", schema, at: p)
                default: return complaints(item, element, schema, at: p)
                }
            }
        default:
            let known = ["string", "number", "number or null", "integer", "string or null", "object", "object or null"]
            return known.contains(type) || type.hasPrefix("array of ") ? bad : ["\(path): unknown type '\(type)'"]
        }
    }

    static func schema() throws -> Schema {
        parseSchema(try String(contentsOfFile: parityMD, encoding: .utf8))
    }

    /// What a reader of report.json sees: the serialized text parsed again.
    static func readBack(_ r: R) throws -> JSONValue { try JSONValue.parse(r.json.serialized(), file: "report.json") }

    @Test func docHasEveryObjectTable() throws {
        let s = try Self.schema()
        #expect(Set(s.keys) == ["top", "side", "check", "band", "tensor", "layer", "counts"])
        #expect(s.values.allSatisfy { !$0.isEmpty })
    }

    @Test(arguments: ["full", "empty", "many"])
    func jsonMatchesTheDoc(_ which: String) throws {
        let r = which == "full" ? Self.full : which == "empty" ? Self.empty : Self.many
        let problems = Self.complaints(try Self.readBack(r), "top", try Self.schema())
        #expect(problems.isEmpty, "\(problems.joined(separator: "\n"))")
    }

    /// The checker fails: a field left out of the doc, a wrong type in the doc, a field left out of
    /// the JSON, an unknown type.
    @Test func checkerCatchesMismatches() throws {
        let json = try Self.readBack(Self.full)
        var s = try Self.schema()
        s["tensor"]!.removeAll { $0.name == "snr_db" }
        #expect(Self.complaints(json, "top", s).contains { $0.contains("snr_db") && $0.contains("not documented") })

        s = try Self.schema()
        s["layer"] = s["layer"]!.map { $0.name == "name" ? Field(name: "name", type: "integer", meaning: "") : $0 }
        #expect(Self.complaints(json, "top", s).contains { $0.contains("layers[0].name") })

        s = try Self.schema()
        s["counts"]!.append(Field(name: "skipped", type: "integer", meaning: ""))
        #expect(Self.complaints(json, "top", s).contains { $0.hasSuffix("counts.skipped: missing") })

        s = try Self.schema()
        s["side"] = s["side"]!.map { $0.name == "seconds" ? Field(name: "seconds", type: "float", meaning: "") : $0 }
        #expect(Self.complaints(json, "top", s).contains { $0.contains("unknown type 'float'") })

        // A null where the doc says "number" (snr_db of an identical tensor).
        s = try Self.schema()
        s["tensor"] = s["tensor"]!.map { $0.name == "snr_db" ? Field(name: "snr_db", type: "number", meaning: "") : $0 }
        #expect(Self.complaints(json, "top", s).contains { $0.contains("tensors[0].snr_db") })
    }

    @Test func jsonValues() throws {
        let j = try Self.readBack(Self.full)
        #expect(j["schema"]?.stringValue == "kimi-parity-report/1")
        let tensors = try #require(j["tensors"]?.arrayValue)
        #expect(tensors[0]["snr_db"] == .null && tensors[3]["snr_db"] == .null)  // NaN and +∞
        #expect(tensors[1]["snr_db"]?.doubleValue == 22.3)
        #expect(tensors[0]["shape"] == [4096, 11008])
        let checks = try #require(j["checks"]?.arrayValue)
        #expect(checks[3]["verdict"] == .null && checks[3]["band"] == .null)
        #expect(checks[1]["band"]?["direction"]?.stringValue == "at_most")
        #expect(checks[5]["band"]?["drift"] == .null)  // +∞ limit
        #expect(j["notes"]?.arrayValue?.count == 2)
        #expect(j["reference"]?["file_bytes"]?.intValue == 1 << 30)
    }

    // MARK: verdicts

    @Test func verdictIsTheWorstAndCountsMatch() throws {
        for r in [Self.full, Self.empty, Self.many] {
            let all = r.checks.compactMap(\.verdict) + r.tensors.map(\.verdict) + r.layers.map(\.verdict)
            let j = try Self.readBack(r)
            #expect(j["verdict"]?.stringValue == r.verdict.rawValue)
            #expect(r.verdict == all.max() ?? .pass)
            for v in [R.Verdict.pass, .drift, .fail] {
                #expect(j["counts"]?[v.rawValue]?.intValue == all.filter { $0 == v }.count)
            }
        }
        let f = Self.full
        #expect(f.verdict == .fail)
        // 5 judged checks (one unjudged), 4 tensors, 5 layers.
        let c = f.counts
        #expect(c.pass + c.drift + c.fail == 14)
        // pass: top1 (check), custom thing, 40.1 dB, ∞ dB, layers 0 and 2 → 6.
        #expect(c.pass == 6 && c.drift == 3 && c.fail == 5, "\(c)")
        #expect(Self.empty.verdict == .pass && Self.many.verdict == .fail)
        // A report whose only non-pass is a drift is a drift.
        var d = Self.empty
        d.layers = [Self.full.layers[1]]
        #expect(d.verdict == .drift)
    }

    @Test func bandJudges() {
        let most = R.Band(.atMost, pass: 0.005, drift: 0.02, evidence: "")
        #expect(most.judge(0) == .pass && most.judge(0.005) == .pass)
        #expect(most.judge(0.01) == .drift && most.judge(0.02) == .drift)
        #expect(most.judge(0.021) == .fail && most.judge(.infinity) == .fail)
        #expect(most.judge(-.infinity) == .pass)
        let least = R.Band(.atLeast, pass: 30, drift: 20, evidence: "")
        #expect(least.judge(.infinity) == .pass && least.judge(30) == .pass)
        #expect(least.judge(25) == .drift && least.judge(20) == .drift)
        #expect(least.judge(19.9) == .fail && least.judge(-.infinity) == .fail)
        #expect(most.judge(.nan) == .fail && least.judge(.nan) == .fail)
        #expect(least.text == "≥ 30 pass, ≥ 20 drift")
        // The writers' band text keeps the digits Band.text rounds away.
        #expect(R.bandText(Self.cosBand) == "≥ 0.9995 pass, ≥ 0.995 drift")
    }

    // MARK: HTML

    final class Collector: NSObject, XMLParserDelegate {
        var svgDepth = 0
        var svgs = 0
        var coordinates: [(String, String)] = []
        var error: Error?
        static let numeric: Set<String> = [
            "x", "y", "x1", "y1", "x2", "y2", "cx", "cy", "r", "width", "height", "points", "viewBox", "d", "transform",
        ]
        func parser(
            _ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
            attributes: [String: String] = [:]
        ) {
            if name == "svg" {
                svgDepth += 1
                svgs += 1
            }
            if svgDepth > 0 {
                for (k, v) in attributes where Self.numeric.contains(k) { coordinates.append((k, v)) }
            }
        }
        func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
            if name == "svg" { svgDepth -= 1 }
        }
        func parser(_ parser: XMLParser, parseErrorOccurred parseError: Error) { error = parseError }
    }

    /// Parses `html` as XML; the svg elements' coordinate attributes.
    static func parse(_ html: String) -> (ok: Bool, collector: Collector) {
        let p = XMLParser(data: Data(html.utf8))
        let c = Collector()
        p.delegate = c
        let ok = p.parse()
        return (ok && c.error == nil, c)
    }

    @Test(arguments: ["full", "empty", "many"])
    func htmlIsWellFormedAndSelfContained(_ which: String) throws {
        let r = which == "full" ? Self.full : which == "empty" ? Self.empty : Self.many
        let html = r.html
        // The parser does reject what is not well-formed.
        #expect(!Self.parse("<html><p>a<br></p></html>").ok && !Self.parse("<p a=b>x</p>").ok)
        #expect(!Self.parse("<p>&nbsp;</p>").ok)
        let (ok, c) = Self.parse(html)
        #expect(ok, "XMLParser: \(String(describing: c.error))")
        let lower = html.lowercased()
        let found = ["http:", "https:", "src=", "@import", "url(", "<link", "//", "<script", "href="].filter {
            lower.contains($0)
        }
        #expect(found.isEmpty, "report.html contains \(found)")
        // Only the entities XML knows, and numeric references.
        var rest = Substring(html)
        while let amp = rest.firstIndex(of: "&") {
            let tail = rest[amp...]
            let ok =
                ["&amp;", "&lt;", "&gt;", "&quot;"].contains { tail.hasPrefix($0) }
                || tail.prefixMatch(of: /&#[0-9]+;/) != nil
            #expect(ok, "entity at \(tail.prefix(12))")
            rest = rest[rest.index(after: amp)...]
        }
        // Coordinates: numbers only (no nan, no inf).
        for (k, v) in c.coordinates {
            let lv = v.lowercased()
            #expect(!lv.contains("nan") && !lv.contains("inf"), "\(k)=\"\(v)\"")
            let numbers = v.split(whereSeparator: { " ,()MLrotate".contains($0) })
            #expect(numbers.allSatisfy { Double($0)?.isFinite == true }, "\(k)=\"\(v)\"")
        }
        switch which {
        case "empty":
            #expect(c.svgs == 0)
            #expect(html.contains("No layers compared: no chart.") && html.contains("No tensors compared: no chart."))
        case "full":
            #expect(c.svgs == 2)
            for v in ["class=\"v pass\"", "class=\"v drift\"", "class=\"v fail\""] { #expect(html.contains(v)) }
            #expect(html.contains(">∞</text>"))  // the identical tensor's bar
            #expect(html.contains(">nan</text>"))
            #expect(html.contains("mimo.layers"))
            // The escaped data reads back as it was.
            #expect(html.contains("out&#47;k &amp; &lt;q4&gt;.kaf"))
        default:
            #expect(c.svgs == 2)
            #expect(html.contains("… and 5 more tensors"))
        }
    }

    // MARK: markdown and summary

    @Test func markdownAndSummary() {
        let f = Self.full
        let md = f.markdown
        #expect(md.hasPrefix("# Parity report: FAIL"))
        // Sections in the documented order, the unknown one last.
        let order = ["### text_head", "### audio_head", "### audio_in", "### resources", "### custom_section"]
        let positions = order.map { md.range(of: $0)?.lowerBound }
        #expect(positions.allSatisfy { $0 != nil })
        #expect(positions.compactMap { $0 } == positions.compactMap { $0 }.sorted())
        #expect(md.contains("llama.cpp KLD \\| q4_0"))  // a | in a cell is escaped
        #expect(md.contains("| not judged |"))
        #expect(md.contains("| out/k & \\<q4>.kaf |"))
        #expect(Self.many.markdown.contains("… and 5 more tensors (5 pass)"))

        let s = f.summary()
        let lines = s.split(separator: "\n")
        #expect(lines.count <= 30)
        #expect(lines[0] == "parity: FAIL")
        #expect(lines.contains { $0.hasPrefix("DRIFT  text_head.kl_divergence") && $0.contains("0.012 nats") })
        #expect(lines.contains { $0.hasPrefix("-      resources.model_seconds") })
        #expect(lines.contains { $0.hasPrefix("worst layer: FAIL  mimo.layers.1") })
        #expect(lines.last == "counts: 6 pass, 3 drift, 5 fail; peak RSS 9.00 GiB")
        #expect(!s.contains("\u{1B}"))

        // Many checks: still ≤ 30 lines, the failing ones kept.
        var big = Self.empty
        big.checks = (0 ..< 40).map { i in
            R.Check("text_head", "c\(i)", Double(i), band: R.Band(.atMost, pass: 38, drift: 38.5, evidence: ""))
        }
        let bs = big.summary().split(separator: "\n")
        #expect(bs.count <= 30)
        #expect(bs.contains { $0.hasPrefix("FAIL   text_head.c39") })
        #expect(bs.contains { $0.contains("more checks") })
        #expect(Self.empty.summary().split(separator: "\n").count == 4)
    }

    // MARK: files

    static func tempDir() -> String { NSTemporaryDirectory() + "parity-report-\(UUID().uuidString)" }

    @Test func writesThreeFiles() throws {
        let base = Self.tempDir()
        let dir = base + "/nested/out"
        defer { try? FileManager.default.removeItem(atPath: base) }
        try Self.full.write(to: dir)
        let names = try FileManager.default.contentsOfDirectory(atPath: dir).sorted()
        #expect(names == ["report.html", "report.json", "report.md"])
        let j = try JSONValue.parse(contentsOf: dir + "/report.json")
        let expected = try Self.readBack(Self.full)
        #expect(j == expected)
        #expect(try String(contentsOfFile: dir + "/report.md", encoding: .utf8) == Self.full.markdown)
        #expect(try String(contentsOfFile: dir + "/report.html", encoding: .utf8) == Self.full.html)
        // Again into the same folder: replaced.
        try Self.empty.write(to: dir + "/")
        #expect(try JSONValue.parse(contentsOf: dir + "/report.json")["verdict"]?.stringValue == "pass")
    }

    @Test func outputDirectoryIsCheckedFirst() throws {
        #expect(throws: FormatError.self) { try R.checkOutputDirectory("/etc/passwd/x") }
        #expect(throws: FormatError.self) { try R.checkOutputDirectory("/etc/passwd") }
        #expect(throws: FormatError.self) { try R.checkOutputDirectory("") }
        do {
            try R.checkOutputDirectory("/etc/passwd/x")
        } catch let e as FormatError {
            #expect(e.file == "/etc/passwd/x" && !e.description.contains("\n"), "\(e)")
        }
        #expect(throws: FormatError.self) { try Self.full.write(to: "/etc/passwd/x") }

        let dir = Self.tempDir()
        defer {
            chmod(dir, 0o755)
            try? FileManager.default.removeItem(atPath: dir)
        }
        try R.checkOutputDirectory(dir + "/a/b")  // created
        var st = stat()
        #expect(stat(dir + "/a/b", &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR)
        try R.checkOutputDirectory(dir + "/a/b")  // exists
        // A folder that cannot be created, even by root.
        if FileManager.default.fileExists(atPath: "/proc/self") {
            #expect(throws: FormatError.self) { try R.checkOutputDirectory("/proc/kimi-parity-\(getpid())") }
        }
        guard getuid() != 0 else { return }  // root writes anywhere
        chmod(dir, 0o555)
        #expect(throws: FormatError.self) { try R.checkOutputDirectory(dir) }
        #expect(throws: FormatError.self) { try R.checkOutputDirectory(dir + "/c") }
    }
}
