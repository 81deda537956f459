import Foundation  // NFC (precomposedStringWithCanonicalMapping)
import KAF

/// Byte-level BPE with tiktoken's merge rule: within a pre-tokenized piece, repeatedly merge the
/// adjacent pair whose concatenation has the lowest rank. Special tokens are never produced from
/// text (the Kimi tokenizer encodes user text with no specials allowed); the prompt builder adds
/// their ids directly.
public final class TiktokenBPE: @unchecked Sendable {
    public let tokens: [[UInt8]]  // tokens[rank] = bytes
    private let ranks: [[UInt8]: Int]
    public let specials: [Int: String]  // id → name
    /// The same, name → id (the lowest id where a name repeats).
    public let specialIds: [String: Int]
    public let numBaseTokens: Int
    /// Unicode NFC before splitting (Qwen2.5's tokenizer.json); off for Kimi's plain tiktoken.
    public let normalizeNFC: Bool

    public init(ranks file: TiktokenRanks, specials: [Int: String], normalizeNFC: Bool = false) {
        tokens = file.tokens
        ranks = file.rankDictionary()
        self.specials = specials
        specialIds = Dictionary(specials.map { ($0.value, $0.key) }, uniquingKeysWith: min)
        numBaseTokens = file.count
        self.normalizeNFC = normalizeNFC
    }

    /// From a .kaf: the `tokenizer.tiktoken` blob and `components.tokenizer` metadata.
    public convenience init(kaf: KAFFile) throws {
        let blob = try kaf.blob("tokenizer.tiktoken")
        let ranks = try blob.withUnsafeBytes { try TiktokenRanks.parse($0, path: "\(kaf.path) (tokenizer.tiktoken)") }
        var sp: [Int: String] = [:]
        for s in kaf.meta["components"]?["tokenizer"]?["special_tokens"]?.arrayValue ?? [] {
            guard let id = s["id"]?.intValue, let name = s["name"]?.stringValue else {
                throw FormatError(kaf.path, "malformed special token in kaf.meta")
            }
            sp[id] = name
        }
        let norm = kaf.meta["components"]?["tokenizer"]?["normalizer"]?.stringValue
        guard norm == nil || norm == "NFC" else {
            throw FormatError(kaf.path, "unsupported tokenizer normalizer \(norm!)")
        }
        self.init(ranks: ranks, specials: sp, normalizeNFC: norm == "NFC")
        guard coversAllBytes else {
            throw FormatError(kaf.path, "tokenizer vocabulary lacks some single-byte tokens (not a byte-level BPE)")
        }
    }

    public var vocabularySize: Int { numBaseTokens + specials.count }

    /// Ids of `text` (no special tokens recognised). Mirrors the Kimi tokenizer: text is cut into
    /// ≤ 400,000-scalar pieces and runs of ≤ 25,000 same-kind (space / non-space) scalars first.
    public func encode(_ text: String) -> [Int] {
        let scalars = Array((normalizeNFC ? text.precomposedStringWithCanonicalMapping : text).unicodeScalars)
        var out: [Int] = []
        var start = 0
        while start < scalars.count {
            let end = min(scalars.count, start + 400_000)
            for run in TiktokenBPE.splitRuns(scalars, start ..< end, maxRun: 25_000) {
                let part = Array(scalars[run])
                for piece in PreTokenizer.split(part) { encodePiece(part[piece], into: &out) }
            }
            start = end
        }
        return out
    }

    /// `_split_whitespaces_or_nonwhitespaces` of the Kimi tokenizer: cut where a run of
    /// same-kind scalars would exceed `maxRun`.
    static func splitRuns(_ s: [Unicode.Scalar], _ r: Range<Int>, maxRun: Int) -> [Range<Int>] {
        var out: [Range<Int>] = []
        var begin = r.lowerBound, runLen = 0
        var prevSpace: Bool? = nil
        for i in r {
            let sp = s[i].properties.isWhitespace
            if prevSpace == sp {
                runLen += 1
            } else {
                runLen = 1
                prevSpace = sp
            }
            if runLen > maxRun {
                out.append(begin ..< i)
                begin = i
                runLen = 1
            }
        }
        if begin < r.upperBound { out.append(begin ..< r.upperBound) }
        return out
    }

    private func encodePiece(_ piece: ArraySlice<Unicode.Scalar>, into out: inout [Int]) {
        var bytes: [UInt8] = []
        for c in piece { bytes.append(contentsOf: Array(String(Character(c)).utf8)) }
        if let r = ranks[bytes] {
            out.append(r)
            return
        }
        // Parts are [start, end) byte ranges; merge the lowest-rank adjacent pair until none is a token.
        var bounds = Array(0 ... bytes.count)
        func rank(_ k: Int) -> Int? {  // rank of parts k and k+1 joined
            guard k + 2 < bounds.count else { return nil }
            return ranks[Array(bytes[bounds[k] ..< bounds[k + 2]])]
        }
        var pairRanks = (0 ..< bounds.count - 1).map { rank($0) }
        while true {
            var best = -1, bestRank = Int.max
            for k in 0 ..< pairRanks.count {
                if let r = pairRanks[k], r < bestRank {
                    bestRank = r
                    best = k
                }
            }
            if best < 0 { break }
            bounds.remove(at: best + 1)
            pairRanks.remove(at: best + 1)
            pairRanks[best] = rank(best)
            if best > 0 { pairRanks[best - 1] = rank(best - 1) }
        }
        for k in 0 ..< bounds.count - 1 {
            let part = Array(bytes[bounds[k] ..< bounds[k + 1]])
            // Merging stops at parts that are tokens; single bytes always are (init(kaf:) checks
            // coversAllBytes), so the fallback is never taken for a loaded vocabulary.
            out.append(ranks[part] ?? 0)
        }
    }

    /// Whether every single byte has a rank (true for byte-level BPE vocabularies).
    public var coversAllBytes: Bool { (0 ... 255).allSatisfy { ranks[[UInt8($0)]] != nil } }

    /// The bytes of one id: its token bytes, or a special token's name.
    public func bytes(of id: Int) -> [UInt8] {
        if id >= 0 && id < tokens.count { return tokens[id] }
        if let s = specials[id] { return Array(s.utf8) }
        return []
    }

    public func decode(_ ids: [Int]) -> String {
        String(decoding: ids.flatMap { bytes(of: $0) }, as: UTF8.self)
    }
}

/// Turns a stream of token ids into text, emitting only complete UTF-8 characters (a multi-byte
/// character split across tokens is held back until its last byte arrives).
public struct StreamingDecoder {
    private var pending: [UInt8] = []
    public init() {}

    public mutating func push(_ bytes: [UInt8]) -> String {
        pending += bytes
        // Find the longest prefix that ends on a character boundary.
        var cut = pending.count
        var k = pending.count - 1, back = 0
        while k >= 0 && back < 4 && (pending[k] & 0xC0) == 0x80 {
            k -= 1
            back += 1
        }
        if k >= 0 {
            let lead = pending[k]
            let need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1
            if pending.count - k < need && need > 1 { cut = k }
        }
        let out = String(decoding: pending[0 ..< cut], as: UTF8.self)
        pending.removeFirst(cut)
        return out
    }

    /// Whatever is left (an incomplete sequence decodes with replacement characters).
    public mutating func flush() -> String {
        defer { pending.removeAll() }
        return String(decoding: pending, as: UTF8.self)
    }
}
