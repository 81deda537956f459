import Foundation
import KAF

#if canImport(Glibc)
import Glibc
#endif

/// The three renderings of a `ParityReport` (formats/PARITY.md): report.json (the schema), report.md,
/// report.html (self-contained: inline style and SVG, nothing a browser would fetch), plus the
/// console summary.
extension ParityReport {
    /// The `schema` value of report.json.
    public static let schemaName = "kimi-parity-report/1"
    /// How many of the worst tensors the md and html tables and the summary chart show.
    public static let worstTensorsShown = 20
    /// The order sections are shown in; a section not listed comes after, in order of first use.
    public static let sectionOrder = [
        "tensors", "text_head", "audio_head", "layers", "audio_in", "audio_out", "end_to_end", "resources",
    ]

    /// How many judged checks, tensors and layers have each verdict (unjudged checks are not counted).
    public var counts: (pass: Int, drift: Int, fail: Int) {
        let all = checks.compactMap(\.verdict) + tensors.map(\.verdict) + layers.map(\.verdict)
        return (
            all.filter { $0 == .pass }.count, all.filter { $0 == .drift }.count, all.filter { $0 == .fail }.count
        )
    }

    /// The checks grouped by section, sections in `sectionOrder`, checks in their order.
    var checksBySection: [(section: String, checks: [Check])] {
        var sections = Self.sectionOrder.filter { s in checks.contains { $0.section == s } }
        for c in checks where !sections.contains(c.section) { sections.append(c.section) }
        return sections.map { s in (s, checks.filter { $0.section == s }) }
    }

    /// The layer with the lowest mean cosine (the judged one) (NaN counts as the lowest).
    var worstLayer: LayerDrift? {
        layers.min { a, b in
            if a.meanCosine.isNaN { return !b.meanCosine.isNaN }
            if b.meanCosine.isNaN { return false }
            return a.meanCosine < b.meanCosine
        }
    }

    /// Band text with enough digits to be exact: `Band.text` rounds to 3 significant digits, which
    /// shows a cosine band of 0.9995 as "≥ 1".
    static func bandText(_ b: Band) -> String {
        let op = b.direction == .atMost ? "≤" : "≥"
        return "\(op) \(exact(b.pass)) pass, \(op) \(exact(b.drift)) drift"
    }

    /// `format(v)` when it reads back as `v`, else 6 significant digits.
    static func exact(_ v: Double) -> String {
        let s = format(v)
        if !v.isFinite || Double(s) == v { return s }
        return String(format: "%.6g", v)
    }

    /// Cosines are near 1: six decimals.
    static func cosine(_ v: Double) -> String { v.isFinite ? String(format: "%.6f", v) : format(v) }

    static func valueText(_ v: Double, _ unit: String) -> String { unit.isEmpty ? format(v) : "\(format(v)) \(unit)" }

    static func verdictText(_ v: Verdict?) -> String { v.map { $0.rawValue.uppercased() } ?? "-" }

    // MARK: JSON

    /// A double, or null when it is not finite (JSON has no NaN or infinities; an `snr_db` of null
    /// means identical tensors).
    private static func number(_ v: Double) -> JSONValue { v.isFinite ? .double(v) : .null }

    private static func json(_ b: Band?) -> JSONValue {
        guard let b else { return .null }
        return .object([
            "direction": .string(b.direction.rawValue), "pass": number(b.pass), "drift": number(b.drift),
            "evidence": .string(b.evidence),
        ])
    }

    private static func json(_ v: Verdict?) -> JSONValue { v.map { .string($0.rawValue) } ?? .null }

    private static func json(_ s: Side) -> JSONValue {
        .object([
            "role": .string(s.role), "path": .string(s.path), "kind": .string(s.kind),
            "file_bytes": .int(Int64(s.fileBytes)), "seconds": number(s.seconds),
        ])
    }

    /// The whole report as report.json (formats/PARITY.md, schema `kimi-parity-report/1`).
    public var json: JSONValue {
        let checks: [JSONValue] = checks.map { c in
            .object([
                "section": .string(c.section), "name": .string(c.name), "value": Self.number(c.value),
                "unit": .string(c.unit), "detail": .string(c.detail), "verdict": Self.json(c.verdict),
                "band": Self.json(c.band),
            ])
        }
        let tensors: [JSONValue] = tensors.map { t in
            .object([
                "name": .string(t.name), "dtype": .string(t.dtype), "reference_dtype": .string(t.referenceDtype),
                "shape": .array(t.shape.map { .int(Int64($0)) }), "bits_per_weight": Self.number(t.bitsPerWeight),
                "rmse": Self.number(t.rmse), "max_abs": Self.number(t.maxAbs), "snr_db": Self.number(t.snrDB),
                "verdict": Self.json(t.verdict), "band": Self.json(t.band),
            ])
        }
        let layers: [JSONValue] = layers.map { l in
            .object([
                "name": .string(l.name), "mean_cosine": Self.number(l.meanCosine),
                "min_cosine": Self.number(l.minCosine), "relative_error": Self.number(l.relativeError),
                "verdict": Self.json(l.verdict), "band": Self.json(l.band),
            ])
        }
        let n = counts
        return .object([
            "schema": .string(Self.schemaName), "verdict": .string(verdict.rawValue), "created": .string(created),
            "reference": Self.json(reference), "model": Self.json(model),
            "peak_rss_bytes": .int(Int64(peakRSSBytes)), "checks": .array(checks), "tensors": .array(tensors),
            "layers": .array(layers), "notes": .array(notes.map { .string($0) }),
            "counts": .object(["pass": .int(Int64(n.pass)), "drift": .int(Int64(n.drift)), "fail": .int(Int64(n.fail))]
            ),
        ])
    }

    // MARK: Markdown

    /// A table cell: no line breaks; `|` escaped, and `<` (a renderer would take `<q4>` for a tag).
    private static func cell(_ s: String) -> String {
        s.replacingOccurrences(of: "\r", with: " ").replacingOccurrences(of: "\n", with: " ")
            .replacingOccurrences(of: "|", with: "\\|").replacingOccurrences(of: "<", with: "\\<")
    }

    private static func row(_ cells: [String]) -> String { "| " + cells.map(cell).joined(separator: " | ") + " |\n" }

    private static func header(_ cells: [String]) -> String {
        row(cells) + "|" + String(repeating: " --- |", count: cells.count) + "\n"
    }

    private static func sideCells(_ s: Side) -> [String] {
        [s.role, s.path, s.kind, formatBytes(s.fileBytes), "\(format(s.seconds)) s"]
    }

    /// report.md.
    public var markdown: String {
        var md = "# Parity report: \(verdict.rawValue.uppercased())\n\n"
        md += "Created \(created). Schema `\(Self.schemaName)` (formats/PARITY.md).\n\n"
        md += Self.header(["side", "path", "kind", "file size", "seconds"])
        md += Self.row(Self.sideCells(reference)) + Self.row(Self.sideCells(model))
        let n = counts
        md += "\n**Verdict: \(verdict.rawValue.uppercased())** (\(n.pass) pass, \(n.drift) drift, \(n.fail) fail"
        md += " over checks, tensors and layers). Peak RSS \(formatBytes(peakRSSBytes)).\n"

        md += "\n## Checks\n"
        if checks.isEmpty { md += "\nNo checks.\n" }
        for (section, cs) in checksBySection {
            md += "\n### \(section)\n\n"
            md += Self.header(["check", "value", "verdict", "band", "evidence", "detail"])
            for c in cs {
                md += Self.row([
                    c.name, Self.valueText(c.value, c.unit), Self.verdictText(c.verdict),
                    c.band.map(Self.bandText) ?? "not judged", c.band?.evidence ?? "", c.detail,
                ])
            }
        }

        md += "\n## Tensors\n\n"
        if tensors.isEmpty {
            md += "No tensors compared.\n"
        } else {
            let shown = tensors.prefix(Self.worstTensorsShown)
            md += "The \(shown.count) worst of \(tensors.count) by SNR.\n\n"
            md += Self.header([
                "tensor", "dtype", "reference dtype", "shape", "bits/weight", "RMSE", "max abs", "SNR dB", "verdict",
                "band",
            ])
            for t in shown {
                md += Self.row([
                    t.name, t.dtype, t.referenceDtype, t.shape.map(String.init).joined(separator: "×"),
                    Self.format(t.bitsPerWeight), Self.format(t.rmse), Self.format(t.maxAbs), Self.format(t.snrDB),
                    Self.verdictText(t.verdict), Self.bandText(t.band),
                ])
            }
            let rest = tensors.dropFirst(shown.count)
            if !rest.isEmpty {
                md += "\n… and \(rest.count) more tensors (\(Self.breakdown(rest.map(\.verdict)))).\n"
            }
        }

        md += "\n## Per-layer drift\n\n"
        if layers.isEmpty {
            md += "No layers compared.\n"
        } else {
            md += Self.header([
                "layer", "mean cosine", "min cosine", "1 − mean cosine", "relative error", "verdict", "band",
            ])
            for l in layers {
                md += Self.row([
                    l.name, Self.cosine(l.meanCosine), Self.cosine(l.minCosine), Self.format(1 - l.meanCosine),
                    Self.format(l.relativeError), Self.verdictText(l.verdict), Self.bandText(l.band),
                ])
            }
        }

        md += "\n## Notes\n\n"
        md += notes.isEmpty ? "None.\n" : notes.map { "- " + Self.cell($0) + "\n" }.joined()
        return md
    }

    /// "3 pass, 1 drift" (verdicts with a count of zero left out).
    static func breakdown(_ vs: [Verdict]) -> String {
        let parts = [Verdict.pass, .drift, .fail].compactMap { v -> String? in
            let n = vs.filter { $0 == v }.count
            return n > 0 ? "\(n) \(v.rawValue)" : nil
        }
        return parts.isEmpty ? "none" : parts.joined(separator: ", ")
    }

    // MARK: Console

    /// The console summary (at most 30 lines): verdict, one line per check (the worst ones when
    /// there are too many), the 3 worst tensors, the worst layer, the counts.
    public func summary() -> String {
        var lines = ["parity: \(verdict.rawValue.uppercased())"]
        for s in [reference, model] {
            lines.append("  \(s.role): \(s.path) (\(s.kind), \(formatBytes(s.fileBytes)), \(Self.format(s.seconds)) s)")
        }
        // 3 header lines above, then checks; below: tensors (≤ 4), layer (1), counts (1), "more" (1).
        let budget = 30 - lines.count - (tensors.isEmpty ? 0 : 1 + min(3, tensors.count)) - (layers.isEmpty ? 0 : 1) - 1
        var shown = Array(checks.indices)
        if shown.count > budget {
            // Worst first (unjudged last), then keep the original order of those kept.
            let rank: (Int) -> Int = { i in
                checks[i].verdict.map { 3 - $0.rank } ?? (checks[i].section == "end_to_end" ? 4 : 5)
            }
            shown = Array(shown.sorted { (rank($0), $0) < (rank($1), $1) }.prefix(max(0, budget - 1))).sorted()
        }
        let width = min(40, shown.map { checks[$0].section.count + 1 + checks[$0].name.count }.max() ?? 0)
        func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }
        for i in shown {
            let c = checks[i]
            var line = pad(Self.verdictText(c.verdict), 5) + "  " + pad("\(c.section).\(c.name)", width) + "  "
            line += Self.valueText(c.value, c.unit)
            if let b = c.band { line += "  (\(Self.bandText(b)))" }
            if !c.detail.isEmpty { line += "  \(c.detail)" }
            lines.append(line)
        }
        if shown.count < checks.count {
            let rest = checks.indices.filter { !shown.contains($0) }
            lines.append("  … \(rest.count) more checks (\(Self.breakdown(rest.compactMap { checks[$0].verdict })))")
        }
        if !tensors.isEmpty {
            lines.append("worst tensors (of \(tensors.count)):")
            for t in tensors.prefix(3) {
                lines.append(
                    pad(Self.verdictText(t.verdict), 5) + "  \(t.name)  \(t.dtype)  SNR \(Self.format(t.snrDB)) dB"
                        + "  rmse \(Self.format(t.rmse))")
            }
        }
        if let l = worstLayer {
            lines.append(
                "worst layer: \(Self.verdictText(l.verdict))  \(l.name)  min cosine \(Self.cosine(l.minCosine))"
                    + "  mean \(Self.cosine(l.meanCosine))  rel. error \(Self.format(l.relativeError))")
        }
        let n = counts
        lines.append("counts: \(n.pass) pass, \(n.drift) drift, \(n.fail) fail; peak RSS \(formatBytes(peakRSSBytes))")
        return lines.joined(separator: "\n") + "\n"
    }

    // MARK: Files

    /// Checks before any work that `path` is a folder this process can write into, creating it (and
    /// its parents) when missing. Throws a one-line `FormatError` naming the path otherwise.
    public static func checkOutputDirectory(_ path: String) throws {
        guard !path.isEmpty else { throw FormatError("(output)", "the output folder path is empty") }
        func isDirectory(_ p: String) -> Bool? {
            var st = stat()
            guard stat(p, &st) == 0 else { return nil }
            return (st.st_mode & S_IFMT) == S_IFDIR
        }
        func why() -> String { String(cString: strerror(errno)) }
        switch isDirectory(path) {
        case true?: break
        case false?: throw FormatError(path, "is not a folder (a file is in the way of the report folder)")
        case nil:
            // mkdir -p, one component at a time, naming the part that is in the way.
            var prefix = path.hasPrefix("/") ? "/" : ""
            for part in path.split(separator: "/") {
                prefix += (prefix.isEmpty || prefix.hasSuffix("/") ? "" : "/") + part
                switch isDirectory(prefix) {
                case true?: continue
                case false?: throw FormatError(path, "cannot create the report folder: \(prefix) is not a folder")
                case nil:
                    if mkdir(prefix, 0o755) != 0 && !(errno == EEXIST && isDirectory(prefix) == true) {
                        throw FormatError(path, "cannot create the report folder: \(why())")
                    }
                }
            }
        }
        if access(path, W_OK | X_OK) != 0 { throw FormatError(path, "cannot write into the report folder: \(why())") }
    }

    /// Writes report.md, report.json and report.html into `directory` (created when missing), each
    /// atomically; existing reports there are replaced.
    public func write(to directory: String) throws {
        try Self.checkOutputDirectory(directory)
        let dir = directory.hasSuffix("/") ? String(directory.dropLast()) : directory
        try AtomicFile.write(Array(json.serialized().utf8) + [0x0A], to: "\(dir)/report.json", overwrite: true)
        try AtomicFile.write(Array(markdown.utf8), to: "\(dir)/report.md", overwrite: true)
        try AtomicFile.write(Array(html.utf8), to: "\(dir)/report.html", overwrite: true)
    }
}

// MARK: HTML

extension ParityReport {
    /// Text for XHTML-compatible HTML, from data (paths, names, evidence, notes): `& < > " '` as
    /// references, and also `: / = ( @`, so that no text can spell a fetchable reference ("https:",
    /// "//", "src=", "url(", "@import") in the document's source. Browsers show the same characters.
    static func escape(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for ch in s.unicodeScalars {
            switch ch {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            case ":": out += "&#58;"
            case "/": out += "&#47;"
            case "=": out += "&#61;"
            case "(": out += "&#40;"
            case "@": out += "&#64;"
            case _ where ch.value < 0x20 && ch != "\n" && ch != "\t": out += " "  // not allowed in XML 1.0
            default: out.unicodeScalars.append(ch)
            }
        }
        return out
    }

    private static let style = """
        body { font-family: system-ui, sans-serif; margin: 2em; color: #1f2328; max-width: 80em; }
        table { border-collapse: collapse; margin: 0.5em 0 1em 0; }
        th, td { border: 1px solid #d0d7de; padding: 0.2em 0.6em; text-align: left; vertical-align: top; }
        th { background: #f6f8fa; }
        td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
        .v { font-weight: bold; padding: 0.05em 0.4em; border-radius: 0.25em; }
        .pass { color: #ffffff; background: #1a7f37; }
        .drift { color: #1f2328; background: #d4a72c; }
        .fail { color: #ffffff; background: #cf222e; }
        .none { color: #57606a; background: #eaeef2; }
        .empty { color: #57606a; font-style: italic; }
        code { font-family: ui-monospace, monospace; }
        svg { display: block; margin: 0.5em 0 1em 0; font-family: ui-monospace, monospace; font-size: 11px; }
        """

    private static func badge(_ v: Verdict?) -> String {
        "<span class=\"v \(v?.rawValue ?? "none")\">\(verdictText(v))</span>"
    }

    private static func tr(_ cells: [String], numeric: Set<Int> = []) -> String {
        "<tr>"
            + cells.enumerated().map { i, c in numeric.contains(i) ? "<td class=\"num\">\(c)</td>" : "<td>\(c)</td>" }
            .joined() + "</tr>\n"
    }

    private static func th(_ cells: [String]) -> String {
        "<tr>" + cells.map { "<th>\(escape($0))</th>" }.joined() + "</tr>\n"
    }

    /// report.html: one self-contained document (inline style and SVG charts; no scripts, no external
    /// references). Well-formed XML, so it parses with an XML parser as well as with a browser.
    public var html: String {
        let e = Self.escape
        var h = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n"
        h +=
            "<title>Parity report: \(Self.verdictText(verdict))</title>\n<style>\n\(Self.style)\n</style>\n</head>\n<body>\n"
        h += "<h1>Parity report \(Self.badge(verdict))</h1>\n"
        h += "<p>Created \(e(created)). Schema <code>\(e(Self.schemaName))</code> (formats&#47;PARITY.md).</p>\n"
        h += "<table>\n" + Self.th(["side", "path", "kind", "file size", "seconds"])
        for s in [reference, model] {
            h += Self.tr(
                [
                    e(s.role), "<code>\(e(s.path))</code>", e(s.kind), e(formatBytes(s.fileBytes)),
                    e(Self.format(s.seconds)),
                ],
                numeric: [3, 4])
        }
        h += "</table>\n"
        let n = counts
        h += "<p><strong>Verdict: \(Self.badge(verdict))</strong> \(n.pass) pass, \(n.drift) drift, \(n.fail) fail "
        h += "over checks, tensors and layers. Peak RSS \(e(formatBytes(peakRSSBytes))).</p>\n"

        h += "<h2>Checks</h2>\n"
        if checks.isEmpty { h += "<p class=\"empty\">No checks.</p>\n" }
        for (section, cs) in checksBySection {
            h +=
                "<h3>\(e(section))</h3>\n<table>\n"
                + Self.th(["check", "value", "verdict", "band", "evidence", "detail"])
            for c in cs {
                h += Self.tr(
                    [
                        e(c.name), e(Self.valueText(c.value, c.unit)), Self.badge(c.verdict),
                        e(c.band.map(Self.bandText) ?? "not judged"), e(c.band?.evidence ?? ""), e(c.detail),
                    ], numeric: [1])
            }
            h += "</table>\n"
        }

        h += "<h2>Per-layer drift</h2>\n"
        if layers.isEmpty {
            h += "<p class=\"empty\">No layers compared: no chart.</p>\n"
        } else {
            h += layerChart()
            h +=
                "<table>\n"
                + Self.th([
                    "layer", "mean cosine", "min cosine", "1 − mean cosine", "relative error", "verdict", "band",
                ])
            for l in layers {
                h += Self.tr(
                    [
                        e(l.name), e(Self.cosine(l.meanCosine)), e(Self.cosine(l.minCosine)),
                        e(Self.format(1 - l.meanCosine)),
                        e(Self.format(l.relativeError)), Self.badge(l.verdict), e(Self.bandText(l.band)),
                    ], numeric: [1, 2, 3, 4])
            }
            h += "</table>\n"
        }

        h += "<h2>Tensors</h2>\n"
        if tensors.isEmpty {
            h += "<p class=\"empty\">No tensors compared: no chart.</p>\n"
        } else {
            let shown = tensors.prefix(Self.worstTensorsShown)
            h += "<p>The \(shown.count) worst of \(tensors.count) by SNR.</p>\n"
            h += tensorChart()
            h +=
                "<table>\n"
                + Self.th([
                    "tensor", "dtype", "reference dtype", "shape", "bits/weight", "RMSE", "max abs", "SNR dB",
                    "verdict",
                    "band",
                ])
            for t in shown {
                h += Self.tr(
                    [
                        "<code>\(e(t.name))</code>", e(t.dtype), e(t.referenceDtype),
                        e(t.shape.map(String.init).joined(separator: "×")), e(Self.format(t.bitsPerWeight)),
                        e(Self.format(t.rmse)), e(Self.format(t.maxAbs)), e(Self.format(t.snrDB)),
                        Self.badge(t.verdict),
                        e(Self.bandText(t.band)),
                    ], numeric: [4, 5, 6, 7])
            }
            h += "</table>\n"
            let rest = tensors.dropFirst(shown.count)
            if !rest.isEmpty {
                h += "<p>… and \(rest.count) more tensors (\(e(Self.breakdown(rest.map(\.verdict))))).</p>\n"
            }
        }

        h += "<h2>Notes</h2>\n"
        h +=
            notes.isEmpty
            ? "<p class=\"empty\">None.</p>\n" : "<ul>\n" + notes.map { "<li>\(e($0))</li>\n" }.joined() + "</ul>\n"
        h += "</body>\n</html>\n"
        return h
    }

    // MARK: charts

    /// An SVG coordinate: one decimal; never "nan" or "inf" (a non-finite value, which the charts
    /// do not produce, is drawn at 0).
    private static func coord(_ v: Double) -> String { v.isFinite ? String(format: "%.1f", v) : "0" }

    private static func colour(_ v: Verdict) -> String {
        switch v {
        case .pass: return "#1a7f37"
        case .drift: return "#d4a72c"
        case .fail: return "#cf222e"
        }
    }

    /// "1e-6" for a decade exponent.
    private static func decade(_ k: Int) -> String { k == 0 ? "1" : "1e\(k)" }

    /// Per-layer drift: 1 − mean cosine (judged; and 1 − min cosine, lighter) per layer on a log scale, x = the
    /// layer's index in order. Layers that are not pass are drawn larger in their verdict's colour and
    /// numbered; NaN (a fail) sits on the top edge as a cross; 0 or less (identical) on the bottom edge.
    func layerChart() -> String {
        let (W, H, left, right, top, bottom) = (760.0, 300.0, 64.0, 20.0, 24.0, 46.0)
        let (pw, ph) = (W - left - right, H - top - bottom)
        let n = layers.count
        let floorD = 1e-12, ceilD = 10.0
        // Range: the finite positive values and the band thresholds when all layers share a band.
        let band = layers.first!.band
        let uniform = layers.allSatisfy {
            $0.band.pass == band.pass && $0.band.drift == band.drift && $0.band.direction == band.direction
        }
        let thresholds =
            uniform && band.direction == .atLeast ? [(1 - band.pass, "pass"), (1 - band.drift, "drift")] : []
        var ds = layers.flatMap { [1 - $0.minCosine, 1 - $0.meanCosine] } + thresholds.map(\.0)
        ds = ds.filter { $0.isFinite && $0 > 0 }.map { min(max($0, floorD), ceilD) }
        var loE = Int(log10(ds.min() ?? 1e-6).rounded(.down)), hiE = Int(log10(ds.max() ?? 1).rounded(.up))
        if hiE <= loE { hiE = loE + 1 }
        loE = max(loE, -12)
        hiE = min(max(hiE, loE + 1), 1)
        let span = Double(hiE - loE)
        func y(_ d: Double) -> Double {
            if d.isNaN { return top }
            let clamped = min(max(d, pow(10, Double(loE))), pow(10, Double(hiE)))
            return top + ph * (Double(hiE) - log10(clamped)) / span
        }
        func x(_ i: Int) -> Double { n == 1 ? left + pw / 2 : left + pw * Double(i) / Double(n - 1) }

        var s = "<svg width=\"\(Int(W))\" height=\"\(Int(H))\" viewBox=\"0 0 \(Int(W)) \(Int(H))\" role=\"img\""
        s += " aria-label=\"1 minus cosine per layer, log scale\">\n"
        s +=
            "<rect x=\"\(Self.coord(left))\" y=\"\(Self.coord(top))\" width=\"\(Self.coord(pw))\" height=\"\(Self.coord(ph))\" fill=\"#ffffff\" stroke=\"#d0d7de\"/>\n"
        for k in loE ... hiE {
            let yy = y(pow(10, Double(k)))
            s +=
                "<line x1=\"\(Self.coord(left))\" y1=\"\(Self.coord(yy))\" x2=\"\(Self.coord(left + pw))\" y2=\"\(Self.coord(yy))\" stroke=\"#eaeef2\"/>\n"
            s +=
                "<text x=\"\(Self.coord(left - 6))\" y=\"\(Self.coord(yy + 4))\" text-anchor=\"end\">\(Self.decade(k))</text>\n"
        }
        for (d, what) in thresholds where d.isFinite && d > 0 {
            let yy = y(d)
            let col = what == "pass" ? "#1a7f37" : "#cf222e"
            s +=
                "<line x1=\"\(Self.coord(left))\" y1=\"\(Self.coord(yy))\" x2=\"\(Self.coord(left + pw))\" y2=\"\(Self.coord(yy))\" stroke=\"\(col)\""
            s += " stroke-dasharray=\"6 4\"/>\n"
            s +=
                "<text x=\"\(Self.coord(left + pw - 4))\" y=\"\(Self.coord(yy - 4))\" text-anchor=\"end\" fill=\"\(col)\">"
            s += "\(what) limit (cos \(Self.escape(Self.exact(1 - d))))</text>\n"
        }
        // Group boundaries ("llm.layers" then "mimo.layers"): a dashed line and the group's name.
        func group(_ name: String) -> String { name.split(separator: ".").dropLast().joined(separator: ".") }
        for i in 0 ..< n where i == 0 || group(layers[i].name) != group(layers[i - 1].name) {
            let xx = i == 0 ? left : (x(i - 1) + x(i)) / 2
            if i > 0 {
                s +=
                    "<line x1=\"\(Self.coord(xx))\" y1=\"\(Self.coord(top))\" x2=\"\(Self.coord(xx))\" y2=\"\(Self.coord(top + ph))\" stroke=\"#8c959f\""
                s += " stroke-dasharray=\"2 3\"/>\n"
            }
            s +=
                "<text x=\"\(Self.coord(xx + 4))\" y=\"\(Self.coord(top - 8))\">\(Self.escape(group(layers[i].name)))</text>\n"
        }
        // x ticks: at most ~12 labels.
        let step = max(1, Int((Double(n) / 12).rounded(.up)))
        for i in stride(from: 0, to: n, by: step) {
            s +=
                "<line x1=\"\(Self.coord(x(i)))\" y1=\"\(Self.coord(top + ph))\" x2=\"\(Self.coord(x(i)))\" y2=\"\(Self.coord(top + ph + 4))\" stroke=\"#57606a\"/>\n"
            s +=
                "<text x=\"\(Self.coord(x(i)))\" y=\"\(Self.coord(top + ph + 16))\" text-anchor=\"middle\">\(i)</text>\n"
        }
        s +=
            "<text x=\"\(Self.coord(left + pw / 2))\" y=\"\(Self.coord(H - 6))\" text-anchor=\"middle\">layer (index in report order)</text>\n"
        s +=
            "<text x=\"14\" y=\"\(Self.coord(top + ph / 2))\" text-anchor=\"middle\" transform=\"rotate(-90 14 \(Self.coord(top + ph / 2)))\">"
        s += "1 − cosine (log)</text>\n"
        // Lines: min (light), mean (dark: the judged value, the points and the limits).
        for (values, col, width) in [
            (layers.map(\.minCosine), "#8c959f", "1"), (layers.map(\.meanCosine), "#0969da", "1.5"),
        ]
        where n > 1 {
            let pts = values.enumerated().map { "\(Self.coord(x($0.offset))),\(Self.coord(y(1 - $0.element)))" }.joined(
                separator: " ")
            s += "<polyline points=\"\(pts)\" fill=\"none\" stroke=\"\(col)\" stroke-width=\"\(width)\"/>\n"
        }
        for (i, l) in layers.enumerated() {
            let (xx, yy) = (x(i), y(1 - l.meanCosine))
            let tip = Self.escape(
                "\(l.name): min cosine \(Self.cosine(l.minCosine)), mean \(Self.cosine(l.meanCosine)), \(l.verdict.rawValue)"
            )
            if l.meanCosine.isNaN {
                s +=
                    "<path d=\"M\(Self.coord(xx - 5)) \(Self.coord(yy - 5)) L\(Self.coord(xx + 5)) \(Self.coord(yy + 5)) M\(Self.coord(xx - 5)) \(Self.coord(yy + 5)) "
                s +=
                    "L\(Self.coord(xx + 5)) \(Self.coord(yy - 5))\" stroke=\"\(Self.colour(.fail))\" stroke-width=\"2\"><title>\(tip)</title></path>\n"
            } else {
                let r = l.verdict == .pass ? 2.5 : 5
                s +=
                    "<circle cx=\"\(Self.coord(xx))\" cy=\"\(Self.coord(yy))\" r=\"\(Self.coord(r))\" fill=\"\(Self.colour(l.verdict))\">"
                s += "<title>\(tip)</title></circle>\n"
            }
            if l.verdict != .pass {
                s +=
                    "<text x=\"\(Self.coord(xx))\" y=\"\(Self.coord(max(yy - 8, top + 10)))\" text-anchor=\"middle\" fill=\"\(Self.colour(l.verdict))\">"
                s += "\(i)</text>\n"
            }
        }
        s += "<text x=\"\(Self.coord(left + 6))\" y=\"\(Self.coord(top + 14))\" fill=\"#0969da\">— mean cosine</text>\n"
        s +=
            "<text x=\"\(Self.coord(left + 120))\" y=\"\(Self.coord(top + 14))\" fill=\"#8c959f\">— min cosine</text>\n"
        s += "</svg>\n"
        return s
    }

    /// A step of 1, 2 or 5 × 10^k giving about `ticks` intervals over `range`.
    private static func niceStep(_ range: Double, ticks: Double = 5) -> Double {
        let raw = range / ticks
        let p = pow(10, (log10(raw)).rounded(.down))
        let m = raw / p
        return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p
    }

    /// SNR dB of the worst tensors as horizontal bars in their verdict's colour, with ticks at each
    /// tensor's pass (green) and drift (red) thresholds. +∞ (identical) is a full bar labelled ∞; NaN
    /// no bar, labelled nan; −∞ a full bar to the left.
    func tensorChart() -> String {
        let shown = Array(tensors.prefix(Self.worstTensorsShown))
        let (W, left, right, top, rowH) = (760.0, 300.0, 70.0, 8.0, 18.0)
        let H = top + rowH * Double(shown.count) + 40
        let pw = W - left - right
        let finite = shown.flatMap { [$0.snrDB, $0.band.pass, $0.band.drift] }.filter(\.isFinite)
        var lo = min(0, finite.min() ?? 0), hi = max(0, finite.max() ?? 1)
        if hi - lo < 1e-9 { hi = lo + 1 }
        let step = Self.niceStep(hi - lo)
        lo = (lo / step).rounded(.down) * step
        hi = (hi / step).rounded(.up) * step
        if !(hi > lo) || !(hi - lo).isFinite { (lo, hi) = (0, 1) }
        func x(_ v: Double) -> Double { left + pw * (min(max(v, lo), hi) - lo) / (hi - lo) }
        let zero = x(0)

        var s = "<svg width=\"\(Int(W))\" height=\"\(Int(H))\" viewBox=\"0 0 \(Int(W)) \(Int(H))\" role=\"img\""
        s += " aria-label=\"SNR in dB of the worst tensors\">\n"
        let plotBottom = top + rowH * Double(shown.count)
        var t = lo
        var ticks = 0
        while t <= hi + step / 2, ticks < 50 {
            s +=
                "<line x1=\"\(Self.coord(x(t)))\" y1=\"\(Self.coord(top))\" x2=\"\(Self.coord(x(t)))\" y2=\"\(Self.coord(plotBottom + 4))\" stroke=\"#eaeef2\"/>\n"
            s +=
                "<text x=\"\(Self.coord(x(t)))\" y=\"\(Self.coord(plotBottom + 16))\" text-anchor=\"middle\">\(Self.escape(Self.format(t)))</text>\n"
            t += step
            ticks += 1
        }
        s +=
            "<line x1=\"\(Self.coord(zero))\" y1=\"\(Self.coord(top))\" x2=\"\(Self.coord(zero))\" y2=\"\(Self.coord(plotBottom))\" stroke=\"#57606a\"/>\n"
        for (i, tensor) in shown.enumerated() {
            let y0 = top + rowH * Double(i)
            let v = tensor.snrDB
            let name = tensor.name.count > 46 ? "…" + tensor.name.suffix(45) : tensor.name
            s +=
                "<text x=\"\(Self.coord(left - 6))\" y=\"\(Self.coord(y0 + rowH - 5))\" text-anchor=\"end\">\(Self.escape(name))</text>\n"
            let (a, b): (Double, Double) =
                v.isNaN
                ? (zero, zero)
                : v == .infinity ? (zero, x(hi)) : v == -.infinity ? (x(lo), zero) : (min(zero, x(v)), max(zero, x(v)))
            let label = v.isNaN ? "nan" : Self.format(v)
            let tip = Self.escape("\(tensor.name) (\(tensor.dtype)): SNR \(label) dB, \(tensor.verdict.rawValue)")
            s +=
                "<rect x=\"\(Self.coord(a))\" y=\"\(Self.coord(y0 + 3))\" width=\"\(Self.coord(max(b - a, 0)))\" height=\"\(Self.coord(rowH - 6))\""
            s += " fill=\"\(Self.colour(tensor.verdict))\"\(v == .infinity ? " fill-opacity=\"0.5\"" : "")>"
            s += "<title>\(tip)</title></rect>\n"
            for (th, col) in [(tensor.band.pass, "#1a7f37"), (tensor.band.drift, "#cf222e")] where th.isFinite {
                s +=
                    "<line x1=\"\(Self.coord(x(th)))\" y1=\"\(Self.coord(y0 + 1))\" x2=\"\(Self.coord(x(th)))\" y2=\"\(Self.coord(y0 + rowH - 1))\""
                s += " stroke=\"\(col)\" stroke-width=\"2\"/>\n"
            }
            s +=
                "<text x=\"\(Self.coord(max(a, b) + 4))\" y=\"\(Self.coord(y0 + rowH - 5))\">\(Self.escape(label))</text>\n"
        }
        s +=
            "<text x=\"\(Self.coord(left + pw / 2))\" y=\"\(Self.coord(H - 6))\" text-anchor=\"middle\">SNR (dB); ticks: pass (green)"
        s += " and drift (red) limits</text>\n"
        s += "</svg>\n"
        return s
    }
}
