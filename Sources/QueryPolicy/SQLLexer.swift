/// The few lexical facts about SQL text that the engine needs without a parse: bracket nesting
/// (parentheses leave no trace in the parse tree), runs of operator characters that PostgreSQL's own
/// scanner reads in quadratic time, and where each constant ends (for normalizing).
///
/// It follows PostgreSQL 15's scanner with standard_conforming_strings on, which Palisade enforces.
/// Every scan is linear in the text: a quoted string, name or dollar-quoted string that is never
/// closed runs to the end of the text (as in the server, which then refuses the text), so no
/// position is scanned twice for the same opener.
struct SQLLexer {
    let bytes: UnsafeBufferPointer<UInt8>

    private static let quote = UInt8(ascii: "'")
    private static let doubleQuote = UInt8(ascii: "\"")
    private static let backslash = UInt8(ascii: "\\")
    private static let dollar = UInt8(ascii: "$")

    private func byte(_ index: Int) -> UInt8 { index < bytes.count ? bytes[index] : 0 }

    private static func isIdentifierStart(_ byte: UInt8) -> Bool {
        (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
            || byte == UInt8(ascii: "_") || byte >= 0x80
    }

    private static func isIdentifierContinuation(_ byte: UInt8) -> Bool {
        isIdentifierStart(byte) || isDigit(byte) || byte == dollar
    }

    private static func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }

    private static func isSpace(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D || byte == 0x0C || byte == 0x0B
    }

    /// PostgreSQL's `op_chars`: a run of them is read as one operator token, and then cut back.
    static func isOperatorCharacter(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "~"), UInt8(ascii: "!"), UInt8(ascii: "@"), UInt8(ascii: "#"), UInt8(ascii: "^"), UInt8(ascii: "&"),
             UInt8(ascii: "|"), UInt8(ascii: "`"), UInt8(ascii: "?"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "*"),
             UInt8(ascii: "/"), UInt8(ascii: "%"), UInt8(ascii: "<"), UInt8(ascii: ">"), UInt8(ascii: "="):
            true
        default: false
        }
    }

    /// What the pre-parse limits look at, from one pass over the text.
    struct Shape: Equatable {
        /// The deepest nesting of `(` and `[` outside constants, quoted names and comments.
        var bracketDepth = 0
        /// The longest run of operator characters that PostgreSQL's scanner reads again and again:
        /// outside comments every such run (the scanner takes the whole run as one operator, cuts
        /// it back to the first operator, a comment start or before trailing `+`/`-`, and reads the
        /// rest again), inside comments a run holding two or more `/*` (each one re-reads the rest
        /// of the run). Measured with libpg_query 15: a 60 KB run of `+` or of `/*` takes 20 s.
        var longestRescannedRun = 0
    }

    /// The longest run of operator characters admitted: PostgreSQL's longest operator name
    /// (NAMEDATALEN - 1). Runs this long cost at most a few dozen steps per byte to scan.
    static let longestOperatorRun = 63

    func shape() -> Shape {
        var shape = Shape()
        var index = 0
        var depth = 0
        var runStart = -1
        while index < bytes.count {
            let current = bytes[index]
            if current == UInt8(ascii: "/"), byte(index + 1) == UInt8(ascii: "*") {
                // A comment start ends the operator before it; the comment is measured by itself.
                if runStart >= 0 { shape.longestRescannedRun = max(shape.longestRescannedRun, index - runStart) }
                runStart = -1
                let (end, run) = blockComment(at: index)
                shape.longestRescannedRun = max(shape.longestRescannedRun, run)
                index = end
                continue
            }
            if Self.isOperatorCharacter(current), !(current == UInt8(ascii: "-") && byte(index + 1) == UInt8(ascii: "-")) {
                if runStart < 0 { runStart = index }
                index += 1
                continue
            }
            if runStart >= 0 {
                shape.longestRescannedRun = max(shape.longestRescannedRun, index - runStart)
                runStart = -1
            }
            if let end = skipNonCode(at: index) { index = end; continue }
            switch current {
            case UInt8(ascii: "("), UInt8(ascii: "["):
                depth += 1
                shape.bracketDepth = max(shape.bracketDepth, depth)
            case UInt8(ascii: ")"), UInt8(ascii: "]"):
                depth = max(0, depth - 1)
            default: break
            }
            index += 1
        }
        if runStart >= 0 { shape.longestRescannedRun = max(shape.longestRescannedRun, index - runStart) }
        return shape
    }

    /// If a comment, quoted name or string constant starts at `index`, where it ends.
    private func skipNonCode(at index: Int) -> Int? {
        let current = bytes[index]
        if current == UInt8(ascii: "-"), byte(index + 1) == UInt8(ascii: "-") {
            var end = index + 2
            while end < bytes.count, bytes[end] != 0x0A, bytes[end] != 0x0D { end += 1 }
            return end
        }
        if current == UInt8(ascii: "/"), byte(index + 1) == UInt8(ascii: "*") { return blockComment(at: index).end }
        if current == Self.doubleQuote { return quotedEnd(at: index, quote: Self.doubleQuote, backslashEscapes: false) }
        // A word, or a string with a prefix such as E'…'.
        if Self.isIdentifierStart(current) || current == Self.quote || current == Self.dollar { return constantEnd(at: index) }
        return nil
    }

    /// End (exclusive) of the constant token that starts at `offset`, as libpg_query normalizes it:
    /// a minus sign includes the number after it. Nil where no constant starts.
    func constantEnd(at offset: Int) -> Int? {
        guard offset >= 0, offset < bytes.count else { return nil }
        let first = bytes[offset]
        switch first {
        case UInt8(ascii: "-"):
            var index = offset + 1
            while index < bytes.count {
                if Self.isSpace(bytes[index]) { index += 1; continue }
                if bytes[index] == UInt8(ascii: "/"), byte(index + 1) == UInt8(ascii: "*") { index = blockCommentEnd(at: index); continue }
                if bytes[index] == UInt8(ascii: "-"), byte(index + 1) == UInt8(ascii: "-") {
                    // A line comment ends at either newline byte, as in PostgreSQL's scanner.
                    while index < bytes.count, bytes[index] != 0x0A, bytes[index] != 0x0D { index += 1 }
                    continue
                }
                break
            }
            return numberEnd(at: index)
        case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."):
            return numberEnd(at: offset)
        case Self.quote:
            return stringEnd(at: offset, backslashEscapes: false)
        case Self.dollar:
            return dollarQuotedEnd(at: offset)
        case Self.doubleQuote:
            return quotedEnd(at: offset, quote: Self.doubleQuote, backslashEscapes: false)
        default:
            guard Self.isIdentifierStart(first) else { return nil }
            let second = byte(offset + 1)
            switch first | 0x20 {
            case UInt8(ascii: "e") where second == Self.quote:
                return stringEnd(at: offset + 1, backslashEscapes: true)
            case UInt8(ascii: "b"), UInt8(ascii: "x"), UInt8(ascii: "n"):
                if second == Self.quote { return stringEnd(at: offset + 1, backslashEscapes: false) }
            case UInt8(ascii: "u") where second == UInt8(ascii: "&") && byte(offset + 2) == Self.quote:
                return stringEnd(at: offset + 2, backslashEscapes: false)
            default: break
            }
            // Keyword constants (TRUE, NULL, LIMIT ALL) and words the grammar turns into constants
            // (EXTRACT(year FROM …)): libpg_query replaces the whole word.
            var end = offset
            while end < bytes.count, Self.isIdentifierContinuation(bytes[end]) { end += 1 }
            return end
        }
    }

    private func numberEnd(at start: Int) -> Int? {
        var index = start
        var digits = 0
        while Self.isDigit(byte(index)) { index += 1; digits += 1 }
        if byte(index) == UInt8(ascii: "."), byte(index + 1) != UInt8(ascii: ".") {
            index += 1
            while Self.isDigit(byte(index)) { index += 1; digits += 1 }
        }
        guard digits > 0 else { return nil }
        return exponentEnd(at: index) ?? index
    }

    /// Where an exponent (`e5`, `E+5`, `e-05`) that starts at `index` ends; nil if none starts there.
    private func exponentEnd(at index: Int) -> Int? {
        guard byte(index) | 0x20 == UInt8(ascii: "e") else { return nil }
        var end = index + 1
        if byte(end) == UInt8(ascii: "+") || byte(end) == UInt8(ascii: "-") { end += 1 }
        guard Self.isDigit(byte(end)) else { return nil }
        while Self.isDigit(byte(end)) { end += 1 }
        return end
    }

    /// A quoted string at `start` (the opening quote), including SQL's continuation of a string
    /// onto a later line (`'a'` newline `'b'` is one constant).
    private func stringEnd(at start: Int, backslashEscapes: Bool) -> Int? {
        var end = quotedEnd(at: start, quote: Self.quote, backslashEscapes: backslashEscapes)
        while true {
            var index = end
            var sawNewline = false
            while index < bytes.count {
                if Self.isSpace(bytes[index]) {
                    if bytes[index] == 0x0A || bytes[index] == 0x0D { sawNewline = true }
                    index += 1
                } else if sawNewline, bytes[index] == UInt8(ascii: "-"), byte(index + 1) == UInt8(ascii: "-") {
                    while index < bytes.count, bytes[index] != 0x0A, bytes[index] != 0x0D { index += 1 }
                } else {
                    break
                }
            }
            guard sawNewline, byte(index) == Self.quote else { return end }
            end = quotedEnd(at: index, quote: Self.quote, backslashEscapes: backslashEscapes)
        }
    }

    /// Where a quoted string or name ends; the end of the text if it is never closed.
    private func quotedEnd(at start: Int, quote: UInt8, backslashEscapes: Bool) -> Int {
        var index = start + 1
        while index < bytes.count {
            let current = bytes[index]
            if backslashEscapes, current == Self.backslash {
                index += 2
            } else if current == quote {
                if byte(index + 1) == quote { index += 2 } else { return index + 1 }
            } else {
                index += 1
            }
        }
        return bytes.count
    }

    /// Where a dollar-quoted string ends (the end of the text if it is never closed); nil if no
    /// opening tag starts at `start`.
    private func dollarQuotedEnd(at start: Int) -> Int? {
        var tagEnd = start + 1
        if Self.isIdentifierStart(byte(tagEnd)) {
            while tagEnd < bytes.count, Self.isIdentifierStart(bytes[tagEnd]) || Self.isDigit(bytes[tagEnd]) { tagEnd += 1 }
        }
        guard byte(tagEnd) == Self.dollar else { return nil }
        let tag = UnsafeBufferPointer(rebasing: bytes[start...tagEnd])
        var index = tagEnd + 1
        while index + tag.count <= bytes.count {
            if bytes[index] == Self.dollar, memcmp(tag.baseAddress!, bytes.baseAddress! + index, tag.count) == 0 {
                return index + tag.count
            }
            index += 1
        }
        return bytes.count
    }

    private func blockCommentEnd(at start: Int) -> Int { blockComment(at: start).end }

    /// A (nested) block comment at `start`: where it ends (the end of the text if never closed),
    /// and the longest run of operator characters in it that holds two or more `/*`, each of which
    /// makes PostgreSQL's scanner read the rest of the run again.
    private func blockComment(at start: Int) -> (end: Int, rescannedRun: Int) {
        var index = start + 2
        var depth = 1
        var runStart = start
        var openersInRun = 1
        var longest = 0
        func endRun(at end: Int) {
            if openersInRun >= 2 { longest = max(longest, end - runStart) }
            runStart = -1
            openersInRun = 0
        }
        while index < bytes.count {
            let current = bytes[index]
            guard Self.isOperatorCharacter(current) else {
                if runStart >= 0 { endRun(at: index) }
                index += 1
                continue
            }
            if runStart < 0 { runStart = index }
            if current == UInt8(ascii: "/"), byte(index + 1) == UInt8(ascii: "*") {
                depth += 1
                openersInRun += 1
                index += 2
            } else if current == UInt8(ascii: "*"), byte(index + 1) == UInt8(ascii: "/") {
                depth -= 1
                index += 2
                if depth == 0 {
                    endRun(at: index)
                    return (index, longest)
                }
            } else {
                index += 1
            }
        }
        if runStart >= 0 { endRun(at: index) }
        return (bytes.count, longest)
    }

    /// The text with the constants at `offsets` replaced by `$n`. Like libpg_query, constants are
    /// numbered in the order given (the parse-tree walk's), from `firstParameter`. Nil if any offset
    /// is not the start of a constant, so the caller can fall back to libpg_query.
    func replacingConstants(at offsets: [Int], firstParameter: Int) -> String? {
        // The walk meets constants in text order except in a few constructs; only then is the
        // numbering sorted by position (a copy, so that the common case allocates nothing).
        var isSorted = true
        for index in offsets.indices.dropFirst() where offsets[index] < offsets[index - 1] {
            isSorted = false
            break
        }
        if isSorted {
            return replacing(count: offsets.count) { (offsets[$0], firstParameter + $0) }
        }
        let numbered = offsets.enumerated().map { (offset: $0.element, parameter: firstParameter + $0.offset) }
            .sorted { $0.offset < $1.offset }
        return replacing(count: numbered.count) { numbered[$0] }
    }

    /// The text with `count` constants replaced, the `index`th at `constant(index)`'s offset by
    /// `$parameter`, written straight into the result's storage.
    private func replacing(count: Int, constant: (Int) -> (offset: Int, parameter: Int)) -> String? {
        // Each `$n` (at most 20 bytes) replaces a constant of at least one byte.
        let capacity = bytes.count + 20 * count
        var valid = true
        let result = String(unsafeUninitializedCapacity: capacity) { output in
            var written = 0
            var copied = 0
            func copy(_ range: Range<Int>) {
                output.baseAddress!.advanced(by: written).update(from: bytes.baseAddress! + range.lowerBound, count: range.count)
                written += range.count
            }
            for index in 0..<count {
                let (offset, parameter) = constant(index)
                guard offset >= copied else { continue }
                guard let end = constantEnd(at: offset) else {
                    valid = false
                    return 0
                }
                copy(copied..<offset)
                output[written] = Self.dollar
                written += 1
                written += Self.writeDecimal(parameter, to: output.baseAddress! + written)
                copied = end
            }
            copy(copied..<bytes.count)
            return written
        }
        return valid ? result : nil
    }

    /// Writes `value` (not negative) in decimal at `target`; returns the number of digits.
    private static func writeDecimal(_ value: Int, to target: UnsafeMutablePointer<UInt8>) -> Int {
        var digits = 1
        var rest = value / 10
        while rest > 0 { digits += 1; rest /= 10 }
        rest = value
        for index in stride(from: digits - 1, through: 0, by: -1) {
            target[index] = UInt8(ascii: "0") + UInt8(rest % 10)
            rest /= 10
        }
        return digits
    }

    /// What a constant `LiteralBlindKey` takes out is.
    enum BlindConstant: Equatable {
        /// A run of digits with at most one inner `.`.
        case number(hasPoint: Bool)
        /// A plain quoted string (`'…'`, no prefix) of printable ASCII other than `'`, `"`, `\`, `<`,
        /// `>` and `&`, not continued onto a later line, at most `longestBlindString` bytes between
        /// its quotes.
        case string
    }

    /// The longest string content taken out of the key (agents' values: names, dates, statuses).
    static let longestBlindString = 255

    /// Hands each constant `LiteralBlindKey` takes out to `body` as (start, end, kind), in text
    /// order: plain numbers and plain strings whose bytes need no escape in the parse tree's JSON,
    /// so that two such strings of one length make trees of one length. Comments, quoted names,
    /// other strings, dollar-quoted strings, names and parameters (`$1`) are skipped whole, so
    /// digits inside them are never numbers. Linear in the text.
    func forEachBlindConstant(_ body: (Int, Int, BlindConstant) -> Void) {
        var index = 0
        while index < bytes.count {
            let current = bytes[index]
            if current == Self.quote {
                // Reached only at a token's start: a prefixed string (E'…', U&'…') is skipped whole
                // with its prefix below, and a word ends before a quote.
                let start = index
                let closing = quotedEnd(at: start, quote: Self.quote, backslashEscapes: false)
                index = stringEnd(at: start, backslashEscapes: false) ?? closing
                guard index == closing, closing - start - 2 <= Self.longestBlindString, byte(closing - 1) == Self.quote,
                      closing - start >= 2 else { continue }
                let content = UnsafeBufferPointer(rebasing: bytes[(start + 1)..<(closing - 1)])
                if content.allSatisfy(Self.isPlainStringByte) { body(start, closing, .string) }
                continue
            }
            if Self.isDigit(current) {
                let start = index
                while Self.isDigit(byte(index)) { index += 1 }
                var hasPoint = false
                if byte(index) == UInt8(ascii: "."), Self.isDigit(byte(index + 1)) {
                    hasPoint = true
                    index += 1
                    while Self.isDigit(byte(index)) { index += 1 }
                }
                if let end = exponentEnd(at: index) {
                    // An exponent makes the whole run one FCONST (`1E+5`): none of it is a number here.
                    index = end
                    continue
                }
                let before = start > 0 ? bytes[start - 1] : 0x20
                let after = byte(index)
                let standsAlone = !Self.isIdentifierContinuation(before) && before != UInt8(ascii: ".")
                    && !Self.isIdentifierContinuation(after) && after != UInt8(ascii: ".")
                if standsAlone { body(start, index, .number(hasPoint: hasPoint)) }
                continue
            }
            if current == Self.dollar, Self.isDigit(byte(index + 1)) {
                // A parameter: its digits are its number, not a constant.
                index += 1
                while Self.isDigit(byte(index)) { index += 1 }
                continue
            }
            if let end = skipNonCode(at: index) {
                index = end
                continue
            }
            index += 1
        }
    }

    /// Printable ASCII that a string holds as written and the parse tree's JSON writes unescaped.
    private static func isPlainStringByte(_ byte: UInt8) -> Bool {
        byte >= 0x20 && byte <= 0x7E && byte != quote && byte != doubleQuote && byte != backslash
            && byte != UInt8(ascii: "<") && byte != UInt8(ascii: ">") && byte != UInt8(ascii: "&")
    }

    /// Every constant replaced by `$n`, found lexically: for text that does not parse.
    func replacingAllConstants() -> String {
        var offsets: [Int] = []
        var index = 0
        var previousWasWord = false
        while index < bytes.count {
            let current = bytes[index]
            let startsNumber = Self.isDigit(current) || (current == UInt8(ascii: ".") && Self.isDigit(byte(index + 1)))
            if !previousWasWord, startsNumber || current == Self.quote || (current == Self.dollar && !Self.isDigit(byte(index + 1))),
               let end = constantEnd(at: index) {
                offsets.append(index)
                index = end
                previousWasWord = false
                continue
            }
            if Self.isIdentifierStart(current), let end = constantEnd(at: index), end > index + 1, byte(end - 1) == Self.quote {
                offsets.append(index)
                index = end
                previousWasWord = false
                continue
            }
            if let end = skipNonCode(at: index) {
                previousWasWord = Self.isIdentifierStart(current)
                index = end
                continue
            }
            previousWasWord = false
            index += 1
        }
        return replacingConstants(at: offsets, firstParameter: 1) ?? ""
    }
}

#if canImport(Glibc)
import Glibc
#endif
