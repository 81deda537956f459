import CJSONC

/// A parsed JSON document. Parsing goes through json-c (depth-limited, hostile input safe);
/// writing is our own, with sorted keys so that files are reproducible byte for byte.
public indirect enum JSONValue: Equatable, Sendable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    // MARK: parse

    /// Parses `bytes` as one JSON document; `file` names the source in errors.
    ///
    /// Object keys holding U+0000 are an error (json-c would cut them at the NUL, so
    /// `"lm_head.weight\u0000x"` read as `lm_head.weight`). A key repeated in one object is an error
    /// with `uniqueKeys` (the safetensors header, as the reference library), else the last wins as
    /// in Python's `json`.
    public static func parse(
        _ bytes: UnsafeRawBufferPointer, file: String, maxDepth: Int32 = 64, uniqueKeys: Bool = false
    ) throws -> JSONValue {
        guard let tok = json_tokener_new_ex(maxDepth) else { throw FormatError(file, "out of memory parsing JSON") }
        defer { json_tokener_free(tok) }
        // Strict RFC 8259: no NaN/Infinity, trailing commas, single quotes or leading zeros.
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT)
        // json_tokener_parse_ex needs a pointer to chars; it does not require NUL termination.
        let base = bytes.baseAddress?.assumingMemoryBound(to: CChar.self) ?? UnsafePointer<CChar>(bitPattern: 1)!
        guard bytes.count < Int(Int32.max) else {
            throw FormatError(file, "JSON document too large (\(bytes.count) bytes)")
        }
        var obj = json_tokener_parse_ex(tok, base, Int32(bytes.count))
        var err = json_tokener_get_error(tok)
        var consumed = Int(json_tokener_get_parse_end(tok))
        if obj == nil && err == json_tokener_continue && consumed == bytes.count {
            // A bare number at the very end ("3") waits for a delimiter: give it one.
            obj = json_tokener_parse_ex(tok, " ", 1)
            err = json_tokener_get_error(tok)
            consumed = bytes.count
        }
        if err == json_tokener_continue || (obj == nil && err == json_tokener_success) {
            if let obj { json_object_put(obj) }
            throw FormatError(file, "JSON ends early (truncated document)")
        }
        guard err == json_tokener_success, let obj else {
            throw FormatError(
                file,
                "invalid JSON at byte \(json_tokener_get_parse_end(tok)): \(String(cString: json_tokener_error_desc(err)))"
            )
        }
        defer { json_object_put(obj) }
        // Only white space may follow the document.
        var end = consumed
        while end < bytes.count {
            let c = bytes[end]
            guard c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 || c == 0 else {
                throw FormatError(file, "invalid JSON: unexpected data after the document at byte \(end)")
            }
            end += 1
        }
        try checkKeys(UnsafeRawBufferPointer(rebasing: bytes[0 ..< consumed]), file: file, unique: uniqueKeys)
        return try convert(obj, file: file)
    }

    /// Walks a document json-c accepted, decoding each object key: NUL inside a key, and with
    /// `unique` a key twice in one object, are errors. A loop with a stack bounded by json-c's depth.
    static func checkKeys(_ b: UnsafeRawBufferPointer, file: String, unique: Bool) throws {
        var objects: [Set<[UInt8]>?] = []  // nil for an array
        var expectKey = false
        var i = 0
        while i < b.count {
            let c = b[i]
            switch c {
            case UInt8(ascii: "{"):
                objects.append([])
                expectKey = true
            case UInt8(ascii: "["):
                objects.append(nil)
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                _ = objects.popLast()
                expectKey = false
            case UInt8(ascii: ","):
                expectKey = objects.last.map { $0 != nil } ?? false
            case UInt8(ascii: "\""), UInt8(ascii: "'"):  // json-c takes single quotes even when strict
                let quote = c
                var key: [UInt8] = []
                i += 1
                while i < b.count, b[i] != quote {
                    if b[i] == UInt8(ascii: "\\"), i + 1 < b.count {
                        i += 1
                        switch b[i] {
                        case UInt8(ascii: "u"):
                            var unit: UInt32 = 0
                            for k in 1 ... 4 where i + k < b.count {
                                unit = unit << 4 | UInt32(Character(UnicodeScalar(b[i + k])).hexDigitValue ?? 0)
                            }
                            i += 4
                            // A surrogate pair is one scalar; its halves alone are kept as U+FFFD.
                            var scalar = unit
                            if (0xD800 ..< 0xDC00).contains(unit), i + 6 < b.count, b[i + 1] == UInt8(ascii: "\\"),
                                b[i + 2] == UInt8(ascii: "u")
                            {
                                var low: UInt32 = 0
                                for k in 3 ... 6 {
                                    low = low << 4 | UInt32(Character(UnicodeScalar(b[i + k])).hexDigitValue ?? 0)
                                }
                                if (0xDC00 ..< 0xE000).contains(low) {
                                    scalar = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)
                                    i += 6
                                }
                            }
                            key += Array(String(Character(UnicodeScalar(scalar) ?? "\u{FFFD}")).utf8)
                        case UInt8(ascii: "b"): key.append(8)
                        case UInt8(ascii: "f"): key.append(12)
                        case UInt8(ascii: "n"): key.append(10)
                        case UInt8(ascii: "r"): key.append(13)
                        case UInt8(ascii: "t"): key.append(9)
                        default: key.append(b[i])  // \" \\ \/
                        }
                    } else {
                        key.append(b[i])
                    }
                    i += 1
                }
                if expectKey, let top = objects.indices.last, objects[top] != nil {
                    func shown() -> String {
                        String(decoding: key.prefix(200).map { $0 == 0 ? UInt8(ascii: "?") : $0 }, as: UTF8.self)
                    }
                    if key.contains(0) { throw FormatError(file, "JSON object key '\(shown())' contains U+0000 (NUL)") }
                    // In place (no copy of the set per key).
                    if unique && !objects[top]!.insert(key).inserted {
                        throw FormatError(file, "JSON object key '\(shown())' appears twice")
                    }
                    expectKey = false
                }
            default: break
            }
            i += 1
        }
    }

    public static func parse(_ text: String, file: String) throws -> JSONValue {
        var t = text
        return try t.withUTF8 { try parse(UnsafeRawBufferPointer($0), file: file) }
    }

    public static func parse(contentsOf path: String) throws -> JSONValue {
        let f = try MappedFile(path: path)
        return try f.withBytes { try parse($0, file: path) }
    }

    private static func convert(_ o: OpaquePointer?, file: String) throws -> JSONValue {
        guard let o else { return .null }
        switch json_object_get_type(o) {
        case json_type_null: return .null
        case json_type_boolean: return .bool(json_object_get_boolean(o) != 0)
        case json_type_int:
            // json-c clamps integers beyond 64 bits (HF configs write model_max_length = 1e30 as an
            // integer): keep such a value as a double, never as a silently clamped integer.
            let v = json_object_get_int64(o)
            if v == Int64.max || v == Int64.min { return .double(v == Int64.max ? .infinity : -.infinity) }
            return .int(v)
        case json_type_double:
            let d = json_object_get_double(o)
            guard d.isFinite else { throw FormatError(file, "JSON number out of range") }
            return .double(d)
        case json_type_string:
            let n = Int(json_object_get_string_len(o))
            guard let p = json_object_get_string(o) else { return .string("") }
            let buf = UnsafeRawBufferPointer(start: p, count: n)
            guard let s = String(validating: buf, as: UTF8.self) else {
                throw FormatError(file, "JSON string is not valid UTF-8")
            }
            return .string(s)
        case json_type_array:
            let n = json_object_array_length(o)
            var out: [JSONValue] = []
            out.reserveCapacity(n)
            for i in 0 ..< n { out.append(try convert(json_object_array_get_idx(o, i), file: file)) }
            return .array(out)
        case json_type_object:
            var out: [String: JSONValue] = [:]
            var it = json_object_iter_begin(o)
            var end = json_object_iter_end(o)
            while json_object_iter_equal(&it, &end) == 0 {
                guard let name = String(validatingCString: json_object_iter_peek_name(&it)) else {
                    throw FormatError(file, "JSON object key is not valid UTF-8")
                }
                out[name] = try convert(json_object_iter_peek_value(&it), file: file)
                json_object_iter_next(&it)
            }
            return .object(out)
        default:
            throw FormatError(file, "unsupported JSON value")
        }
    }

    // MARK: access

    public subscript(key: String) -> JSONValue? {
        if case .object(let o) = self { return o[key] }
        return nil
    }

    public var intValue: Int? {
        switch self {
        case .int(let v): return Int(exactly: v)
        case .double(let d): return d.rounded() == d ? Int(exactly: d) : nil
        default: return nil
        }
    }
    public var doubleValue: Double? {
        switch self {
        case .int(let v): return Double(v)
        case .double(let d): return d
        default: return nil
        }
    }
    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }
    public var boolValue: Bool? {
        if case .bool(let b) = self { return b }
        return nil
    }
    public var arrayValue: [JSONValue]? {
        if case .array(let a) = self { return a }
        return nil
    }
    public var objectValue: [String: JSONValue]? {
        if case .object(let o) = self { return o }
        return nil
    }

    // MARK: write

    /// Compact JSON with sorted keys; non-finite doubles become null (JSON has no NaN/Inf).
    public func serialized() -> String {
        var out = ""
        write(to: &out)
        return out
    }

    private func write(to out: inout String) {
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .int(let v): out += String(v)
        case .double(let d):
            out += d.isFinite ? (d == d.rounded() && abs(d) < 1e15 ? String(format15: d) : "\(d)") : "null"
        case .string(let s): JSONValue.writeString(s, to: &out)
        case .array(let a):
            out += "["
            for (i, v) in a.enumerated() {
                if i > 0 { out += "," }
                v.write(to: &out)
            }
            out += "]"
        case .object(let o):
            out += "{"
            for (i, k) in o.keys.sorted().enumerated() {
                if i > 0 { out += "," }
                JSONValue.writeString(k, to: &out)
                out += ":"
                o[k]!.write(to: &out)
            }
            out += "}"
        }
    }

    private static func writeString(_ s: String, to out: inout String) {
        out += "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where u.value < 0x20:
                let h = String(u.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - h.count) + h
            default: out.unicodeScalars.append(u)
            }
        }
        out += "\""
    }
}

private extension String {
    /// An integral double written with a ".0" so it reads back as a double.
    init(format15 d: Double) { self = (d.sign == .minus && d == 0 ? "-" : "") + String(Int64(d)) + ".0" }
}

extension JSONValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral,
    ExpressibleByBooleanLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral
{
    public init(stringLiteral v: String) { self = .string(v) }
    public init(integerLiteral v: Int64) { self = .int(v) }
    public init(floatLiteral v: Double) { self = .double(v) }
    public init(booleanLiteral v: Bool) { self = .bool(v) }
    public init(arrayLiteral v: JSONValue...) { self = .array(v) }
    public init(dictionaryLiteral v: (String, JSONValue)...) { self = .object(Dictionary(v, uniquingKeysWith: { $1 })) }
    public init(nilLiteral: ()) { self = .null }
}
