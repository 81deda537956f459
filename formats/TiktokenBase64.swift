/// Strict standard-alphabet base64 (RFC 4648 §4) for tiktoken token bytes: length a multiple
/// of 4, '=' only as final padding, and unused trailing bits zero — so each byte string has
/// exactly one spelling and two lines cannot name the same token differently.
public enum TiktokenBase64 {
    private static let table: [Int8] = {
        var t = [Int8](repeating: -1, count: 256)
        for (i, c) in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8.enumerated() {
            t[Int(c)] = Int8(i)
        }
        return t
    }()

    /// Standard base64 with padding: what `tiktoken.model` lines hold.
    public static func encode(_ b: [UInt8]) -> String {
        let a = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
        var out = [UInt8]()
        out.reserveCapacity((b.count + 2) / 3 * 4)
        var i = 0
        while i < b.count {
            let n = min(3, b.count - i)
            var v = UInt32(b[i]) << 16
            if n > 1 { v |= UInt32(b[i + 1]) << 8 }
            if n > 2 { v |= UInt32(b[i + 2]) }
            out.append(a[Int(v >> 18)]); out.append(a[Int((v >> 12) & 63)])
            out.append(n > 1 ? a[Int((v >> 6) & 63)] : UInt8(ascii: "="))
            out.append(n > 2 ? a[Int(v & 63)] : UInt8(ascii: "="))
            i += 3
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Decoded bytes, or a one-line reason.
    static func decode(_ s: UnsafeRawBufferPointer) -> Result<[UInt8], Failure> {
        let n = s.count
        guard n % 4 == 0 else { return .failure(Failure("base64 length \(n) is not a multiple of 4")) }
        var pad = 0
        if n >= 1, s[n - 1] == UInt8(ascii: "=") { pad += 1 }
        if n >= 2, s[n - 2] == UInt8(ascii: "=") { pad += 1 }
        var out: [UInt8] = []
        out.reserveCapacity(n / 4 * 3)
        var i = 0
        while i < n {
            var q: UInt32 = 0
            let isLast = i + 4 == n
            for k in 0 ..< 4 {
                let c = s[i + k]
                if isLast && k >= 4 - pad {
                    q <<= 6
                    continue
                }
                let v = table[Int(c)]
                guard v >= 0 else {
                    return .failure(Failure("invalid base64 character '\(printable(c))' at column \(i + k + 1)"))
                }
                q = q << 6 | UInt32(v)
            }
            out.append(UInt8(truncatingIfNeeded: q >> 16))
            if !(isLast && pad == 2) { out.append(UInt8(truncatingIfNeeded: q >> 8)) }
            if !(isLast && pad >= 1) { out.append(UInt8(truncatingIfNeeded: q)) }
            if isLast {
                let unused: UInt32 = pad == 2 ? 0xFFFF : pad == 1 ? 0xFF : 0
                if q & unused != 0 { return .failure(Failure("non-canonical base64: padding bits are not zero")) }
            }
            i += 4
        }
        return .success(out)
    }

    struct Failure: Error {
        let message: String
        init(_ m: String) { message = m }
    }

    private static func printable(_ c: UInt8) -> String {
        c >= 0x20 && c < 0x7F ? String(UnicodeScalar(c)) : "\\x" + String(c, radix: 16)
    }
}
