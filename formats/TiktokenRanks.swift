/// The BPE ranks of a `tiktoken.model` file: one `base64(token bytes) SP rank` per line,
/// LF or CRLF, final newline optional. Validated so that the tokenizer built from it is a
/// bijection: ranks are exactly 0..<n, byte strings are unique and non-empty.
/// Stricter than tiktoken's loader (one space, no blank lines, canonical base64) on purpose:
/// the real file satisfies it, and anything else means the file is not what we think.
public struct TiktokenRanks: Sendable {
    public struct Entry: Equatable, Sendable {
        public let bytes: [UInt8]
        public let rank: Int
    }

    public let path: String
    /// In file order.
    public let entries: [Entry]
    /// `tokens[rank]` is that rank's bytes.
    public let tokens: [[UInt8]]

    public var count: Int { entries.count }

    /// Bytes → rank, for encoders.
    public func rankDictionary() -> [[UInt8]: Int] {
        Dictionary(uniqueKeysWithValues: entries.map { ($0.bytes, $0.rank) })
    }

    /// Ranks above this are refused: real vocabularies have ~200k entries.
    public static let maxRank = Int(Int32.max)

    public static func load(path: String) throws -> TiktokenRanks {
        let file = try MappedFile(path: path)
        return try file.withBytes { try parse($0, path: path) }
    }

    public static func parse(_ text: UnsafeRawBufferPointer, path: String) throws -> TiktokenRanks {
        var entries: [Entry] = []
        var lineOfRank: [Int: Int] = [:]
        var lineOfBytes: [[UInt8]: Int] = [:]
        var start = 0
        var line = 0
        while start < text.count {
            line += 1
            var end = start
            while end < text.count && text[end] != UInt8(ascii: "\n") { end += 1 }
            var stop = end
            if stop > start && text[stop - 1] == UInt8(ascii: "\r") { stop -= 1 }
            let content = UnsafeRawBufferPointer(rebasing: text[start ..< stop])
            start = end + 1
            func fail(_ why: String) -> FormatError { FormatError(path, "line \(line): \(why)") }

            guard !content.isEmpty else { throw fail("blank line") }
            guard let space = content.firstIndex(of: UInt8(ascii: " ")) else {
                throw fail("expected 'base64 rank', found no space")
            }
            let b64 = UnsafeRawBufferPointer(rebasing: content[..<space])
            let rankText = UnsafeRawBufferPointer(rebasing: content[(space + 1)...])
            guard !b64.isEmpty else { throw fail("empty token (no base64 before the space)") }
            let bytes: [UInt8]
            switch TiktokenBase64.decode(b64) {
            case .success(let b): bytes = b
            case .failure(let f): throw fail(f.message)
            }
            guard !bytes.isEmpty else { throw fail("empty token") }
            let rank = try parseRank(rankText, fail)

            if let other = lineOfRank[rank] { throw fail("duplicate rank \(rank) (also on line \(other))") }
            if let other = lineOfBytes[bytes] {
                throw fail("duplicate token bytes \(hex(bytes)) (also on line \(other))")
            }
            lineOfRank[rank] = line
            lineOfBytes[bytes] = line
            entries.append(Entry(bytes: bytes, rank: rank))
        }
        guard !entries.isEmpty else { throw FormatError(path, "no tokens") }

        // Ranks are unique; they are exactly 0..<n unless one is >= n, which leaves a gap.
        let n = entries.count
        if let big = entries.filter({ $0.rank >= n }).min(by: { $0.rank < $1.rank }) {
            let missing = (0 ..< n).first { lineOfRank[$0] == nil } ?? 0
            throw FormatError(path, "line \(lineOfRank[big.rank] ?? 0): rank \(big.rank) leaves a gap: ranks must be exactly 0..<\(n), and rank \(missing) is missing")
        }
        var tokens = [[UInt8]](repeating: [], count: n)
        for e in entries { tokens[e.rank] = e.bytes }
        return TiktokenRanks(path: path, entries: entries, tokens: tokens)
    }

    /// Decimal digits only (no sign, no spaces), at most `maxRank`.
    private static func parseRank(_ s: UnsafeRawBufferPointer, _ fail: (String) -> FormatError) throws -> Int {
        let shown = String(decoding: s.prefix(32), as: UTF8.self)
        guard !s.isEmpty else { throw fail("missing rank after the space") }
        var v = 0
        for c in s {
            guard c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") else {
                throw fail("rank '\(shown)' is not a non-negative decimal integer")
            }
            v = v * 10 + Int(c - UInt8(ascii: "0"))
            guard v <= maxRank else { throw fail("rank '\(shown)' is too large (max \(maxRank))") }
        }
        return v
    }

    private static func hex(_ b: [UInt8]) -> String {
        b.prefix(32).map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
    }
}
