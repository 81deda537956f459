import Foundation
import Yams

/// YAML configs (e.g. `audio_detokenizer/config.yaml`) read into the same tree as JSON configs.
/// Maps become objects with string keys, sequences arrays, and scalars bool/int/double/string/
/// null as Yams' resolver tags them (YAML 1.1 booleans such as `yes`/`off`, ints, floats with or
/// without a dot such as `1e-6`, `.inf`, `~`/`null`). Merge keys (`<<: *base`) are applied.
///
/// Hostile input is stopped before Yams builds a tree: `YAMLPrescan` caps nesting depth and
/// the node count after alias expansion (billion laughs), and reports syntax errors in one line.
public enum YAMLDocument {
    public static let maxBytes = 16 << 20
    public static let maxDepth = 128
    public static let maxNodes = 100_000

    public static func load(path: String) throws -> JSONValue {
        let file = try MappedFile(path: path)
        guard file.count <= maxBytes else {
            throw FormatError(path, "YAML file is \(file.count) bytes, above the \(maxBytes >> 20) MiB limit")
        }
        guard let text = file.withBytes({ String(validating: $0, as: UTF8.self) }) else {
            throw FormatError(path, "YAML file is not valid UTF-8")
        }
        return try parse(text, file: path)
    }

    /// `file` names the source in errors.
    public static func parse(_ text: String, file: String) throws -> JSONValue {
        try YAMLPrescan.check(text, file: file, maxDepth: maxDepth, maxNodes: maxNodes)
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch {
            // Yams' messages span several lines (they quote the source); keep the first.
            let first = String(describing: error).split(separator: "\n").first.map(String.init) ?? "invalid YAML"
            throw FormatError(file, "invalid YAML: \(first)")
        }
        guard let root else { return .null }
        var converter = YAMLConverter(file: file, budget: maxNodes)
        return try converter.convert(root)
    }
}

/// Yams `Node` → `JSONValue`. Numbers are parsed here rather than with Yams' constructors,
/// whose sexagesimal arithmetic (`1:2:3`) traps on overflow.
struct YAMLConverter {
    let file: String
    var budget: Int

    mutating func convert(_ node: Node) throws -> JSONValue {
        budget -= 1
        guard budget >= 0 else { throw FormatError(file, "YAML has more than \(YAMLDocument.maxNodes) nodes") }
        switch node {
        case .scalar(let s): return try scalar(s)
        case .sequence(let seq):
            var out: [JSONValue] = []
            out.reserveCapacity(seq.count)
            for n in seq { out.append(try convert(n)) }
            return .array(out)
        case .mapping(let map): return try mapping(map)
        }
    }

    private mutating func mapping(_ map: Node.Mapping) throws -> JSONValue {
        var own: [String: JSONValue] = [:]
        var merged: [String: JSONValue] = [:]
        for (k, v) in map {
            if case .scalar(let ks) = k, Self.tag(of: ks) == .merge {
                // `<<: *a` or `<<: [*a, *b]`; explicit keys win, earlier sources win over later.
                let sources: [Node]
                switch v {
                case .mapping: sources = [v]
                case .sequence(let s): sources = Array(s)
                case .scalar: throw FormatError(file, "line \(line(k)): merge key '<<' needs a mapping")
                }
                for src in sources {
                    guard case .mapping = src else {
                        throw FormatError(file, "line \(line(k)): merge key '<<' needs mappings")
                    }
                    guard case .object(let o) = try convert(src) else { continue }
                    for (mk, mv) in o where merged[mk] == nil { merged[mk] = mv }
                }
                continue
            }
            guard case .scalar(let ks) = k, Self.tag(of: ks) == .str else {
                throw FormatError(file, "line \(line(k)): mapping key \(describe(k)) is not a string")
            }
            guard own[ks.string] == nil else {
                throw FormatError(file, "line \(line(k)): duplicate key '\(ks.string)'")
            }
            own[ks.string] = try convert(v)
        }
        for (mk, mv) in merged where own[mk] == nil { own[mk] = mv }
        return .object(own)
    }

    private func scalar(_ s: Node.Scalar) throws -> JSONValue {
        let text = s.string
        switch Self.tag(of: s) {
        case .null: return .null
        case .bool:
            switch text.lowercased() {
            case "true", "yes", "on": return .bool(true)
            case "false", "no", "off": return .bool(false)
            default: throw FormatError(file, "line \(line(s.mark)): '\(text)' is not a boolean")
            }
        case .int:
            guard let v = Self.integer(text) else {
                throw FormatError(file, "line \(line(s.mark)): integer '\(text)' is out of range or malformed")
            }
            return .int(v)
        case .float:
            guard let v = Self.float(text) else {
                throw FormatError(file, "line \(line(s.mark)): '\(text)' is not a float")
            }
            return .double(v)
        default:
            // str, timestamp, binary and custom tags keep their text.
            return .string(text)
        }
    }

    /// The scalar's tag as YAML defines it. Yams resolves untagged scalars by their text alone,
    /// so `"true"` would become a bool; quoted and block scalars are strings unless tagged.
    /// `Scalar.tag` still holds the tag as written ("" when untagged, "!" non-specific) until
    /// `Node.tag` resolves it.
    static func tag(of s: Node.Scalar) -> Tag.Name {
        let written = Tag.Name(rawValue: s.tag.description)
        if written == .nonSpecific { return .str }
        if written != .implicit { return written }
        guard s.style == .plain || s.style == .any else { return .str }
        return Tag.Name(rawValue: Node.scalar(s).tag.description)
    }

    /// YAML 1.1 ints: optional sign, `_` separators, 0x/0o/0b/leading-0 octal, sexagesimal.
    static func integer(_ raw: String) -> Int64? {
        var t = Substring(raw.replacingOccurrences(of: "_", with: ""))
        var negative = false
        if let c = t.first, c == "-" || c == "+" { negative = c == "-"; t = t.dropFirst() }
        guard !t.isEmpty else { return nil }
        var magnitude: UInt64?
        if t.contains(":") {
            var acc: UInt64 = 0
            for part in t.split(separator: ":", omittingEmptySubsequences: false) {
                guard let p = UInt64(part, radix: 10) else { return nil }
                let (m, o1) = acc.multipliedReportingOverflow(by: 60)
                let (a, o2) = m.addingReportingOverflow(p)
                if o1 || o2 { return nil }
                acc = a
            }
            magnitude = acc
        } else if t.hasPrefix("0x") {
            magnitude = UInt64(t.dropFirst(2), radix: 16)
        } else if t.hasPrefix("0b") {
            magnitude = UInt64(t.dropFirst(2), radix: 2)
        } else if t.hasPrefix("0o") {
            magnitude = UInt64(t.dropFirst(2), radix: 8)
        } else if t.count > 1 && t.hasPrefix("0") {
            magnitude = UInt64(t.dropFirst(), radix: 8)
        } else {
            magnitude = UInt64(t, radix: 10)
        }
        guard let m = magnitude else { return nil }
        if negative { return m <= UInt64(Int64.max) + 1 ? (m == UInt64(Int64.max) + 1 ? .min : -Int64(m)) : nil }
        return m <= UInt64(Int64.max) ? Int64(m) : nil
    }

    /// Floats as the resolver matched them: `.inf`/`.nan` spellings, `_` separators, sexagesimal.
    static func float(_ raw: String) -> Double? {
        var t = Substring(raw.replacingOccurrences(of: "_", with: ""))
        var sign = 1.0
        if let c = t.first, c == "-" || c == "+" { sign = c == "-" ? -1 : 1; t = t.dropFirst() }
        switch t {
        case ".inf", ".Inf", ".INF": return sign * .infinity
        case ".nan", ".NaN", ".NAN": return .nan
        default: break
        }
        if t.contains(":") {
            var acc = 0.0
            for part in t.split(separator: ":", omittingEmptySubsequences: false) {
                guard let p = Double(part), p.isFinite else { return nil }
                acc = acc * 60 + p
            }
            return sign * acc
        }
        // Swift's Double() does not take "1." or "1.e5"; the resolver does.
        var s = String(t)
        if let dot = s.firstIndex(of: "."), s.index(after: dot) == s.endIndex || "eE".contains(s[s.index(after: dot)]) {
            s.insert("0", at: s.index(after: dot))
        }
        guard let v = Double(s) else { return nil }
        return sign * v
    }

    private func line(_ n: Node) -> Int { line(n.mark) }
    private func line(_ m: Mark?) -> Int { m?.line ?? 0 }

    private func describe(_ n: Node) -> String {
        switch n {
        case .scalar(let s): return "'\(s.string)' (\(Self.tag(of: s).rawValue.split(separator: ":").last ?? ""))"
        case .mapping: return "(a mapping)"
        case .sequence: return "(a sequence)"
        }
    }
}
