/// Qwen2's pre-tokenization pattern (docs/ARCHITECTURE.md §1.5), written out by hand over Unicode scalars:
///
///     (?i:'s|'t|'re|'ve|'m|'ll|'d) | [^\r\n\p{L}\p{N}]?\p{L}+ | \p{N} | ?[^\s\p{L}\p{N}]+[\r\n]*
///     | \s*[\r\n]+ | \s+(?!\S) | \s+
///
/// The alternatives are tried in order at each position, with the backtracking the regex engine
/// would do (the two whitespace rules give back characters), so the pieces equal tiktoken's.
/// \s is Unicode White_Space, \p{L} and \p{N} the letter and number categories.
public enum PreTokenizer {
    @inline(__always) static func isLetter(_ c: Unicode.Scalar) -> Bool {
        switch c.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return true
        default: return false
        }
    }

    @inline(__always) static func isNumber(_ c: Unicode.Scalar) -> Bool {
        switch c.properties.generalCategory {
        case .decimalNumber, .letterNumber, .otherNumber: return true
        default: return false
        }
    }

    @inline(__always) static func isSpace(_ c: Unicode.Scalar) -> Bool { c.properties.isWhitespace }
    @inline(__always) static func isNewline(_ c: Unicode.Scalar) -> Bool { c == "\r" || c == "\n" }

    /// Splits `s` into pieces (ranges of scalar indices into `s`).
    public static func split(_ s: [Unicode.Scalar]) -> [Range<Int>] {
        var out: [Range<Int>] = []
        var i = 0
        let n = s.count
        while i < n {
            let end = matchAt(s, i)
            out.append(i ..< end)
            i = end
        }
        return out
    }

    /// End of the piece starting at `i` (always > i).
    static func matchAt(_ s: [Unicode.Scalar], _ i: Int) -> Int {
        let n = s.count
        let c = s[i]
        // 1. Contractions, case-insensitive.
        if c == "'" && i + 1 < n {
            let a = lower(s[i + 1])
            if a == "s" || a == "t" || a == "m" || a == "d" { return i + 2 }
            if i + 2 < n {
                let b = lower(s[i + 2])
                if (a == "r" && b == "e") || (a == "v" && b == "e") || (a == "l" && b == "l") { return i + 3 }
            }
        }
        // 2. [^\r\n\p{L}\p{N}]?\p{L}+
        if isLetter(c) {
            var j = i + 1
            while j < n && isLetter(s[j]) { j += 1 }
            return j
        }
        if !isNewline(c) && !isNumber(c) && i + 1 < n && isLetter(s[i + 1]) {
            var j = i + 2
            while j < n && isLetter(s[j]) { j += 1 }
            return j
        }
        // 3. \p{N}: one number character.
        if isNumber(c) { return i + 1 }
        // 4. ' ?[^\s\p{L}\p{N}]+[\r\n]*'
        do {
            var j = i
            if s[j] == " " { j += 1 }
            let start = j
            while j < n && !isSpace(s[j]) && !isLetter(s[j]) && !isNumber(s[j]) { j += 1 }
            if j > start {
                while j < n && isNewline(s[j]) { j += 1 }
                return j
            }
        }
        // The rest start with white space (anything else matched above).
        var runEnd = i
        while runEnd < n && isSpace(s[runEnd]) { runEnd += 1 }
        guard runEnd > i else { return i + 1 }   // unreachable for valid input; never stall
        // 5. \s*[\r\n]+ : the longest prefix of the run that ends in a newline.
        var lastNL = -1
        for j in i ..< runEnd where isNewline(s[j]) { lastNL = j }
        if lastNL >= 0 { return lastNL + 1 }
        // 6. \s+(?!\S): the run, giving back one character if a non-space follows.
        if runEnd == n { return runEnd }
        if runEnd - i >= 2 { return runEnd - 1 }
        // 7. \s+
        return runEnd
    }

    @inline(__always) static func lower(_ c: Unicode.Scalar) -> Unicode.Scalar {
        (c.value >= 65 && c.value <= 90) ? Unicode.Scalar(c.value + 32)! : c
    }
}
