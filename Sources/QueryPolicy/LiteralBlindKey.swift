/// A text with the values of its plain numbers and plain strings taken out: the key under which
/// texts that differ only in those values share one decision. psycopg2, psql and most agents write
/// every value into the text, so without it nearly every query is a new text and a full parse
/// (`PolicyEngine`).
///
/// Why two texts with one key get the same decision:
/// - **Same tokens.** Outside the constants the texts are the same bytes. A number here is a run of
///   digits (with at most one inner `.` and digits after it) that starts a token and ends one: the
///   byte before it is neither a name character nor `.`, and the byte after it is neither of those
///   nor a digit. PostgreSQL's scanner reads such a run as one ICONST or FCONST token whatever its
///   digits are; which of the two depends on the value (an integer above 2^31 - 1 is FCONST), so
///   the key keeps that class. A string here is a quoted string without a prefix, of printable
///   ASCII other than quotes, `\`, `<`, `>` and `&`, not continued onto another line
///   (`SQLLexer.BlindConstant`): one SCONST token whatever its bytes, whose tree is as long as its
///   text (the tree's JSON escapes none of them), and the key keeps its length. The scanner's state
///   before each constant is the same in both texts, because everything before it is.
/// - **Same tree up to those values.** The grammar sees the same token types, so the trees differ
///   only in those constants' values and in locations.
/// - **Checked on the first text.** The engine stores a decision under the key only if the parser
///   put an `A_Const` that normalization replaces at the start of every constant taken out (not a
///   type modifier, array bound, column position or negated constant), every string taken out is
///   an operand that only a comparison reads (`Analysis.comparedStringOffsets`), the decision admits
///   the text, and no rule read a constant's value (`Analyzer.constantValue`). The decision's other
///   parts (tables, functions, fingerprint, normalized text) do not see constants' values.
///
/// A text with any other string is decided alone, from the exact-text cache: rules read such
/// strings (setting names, casts to reg* types, XML, patterns, function arguments).
struct LiteralBlindKey: Hashable, Sendable {
    let bytes: [UInt8]

    // As one block of bytes: Array's own hash feeds the hasher a byte at a time.
    func hash(into hasher: inout Hasher) { bytes.withUnsafeBytes { hasher.combine(bytes: $0) } }

    /// Marks a constant in the key. Text with a NUL byte is refused before any lookup, so no text
    /// byte can be read as a mark.
    private static let mark: UInt8 = 0
    private static let integerClass = UInt8(ascii: "i")
    private static let bigIntegerClass = UInt8(ascii: "b")
    private static let decimalClass = UInt8(ascii: "d")
    /// Followed by one byte: the string's length between its quotes.
    private static let stringClass = UInt8(ascii: "s")
    /// The longest number taken out of the key: as long as a Double's shortest text.
    static let longestBlindNumber = 24

    /// Where the constants taken out of a text start, in text order.
    struct Offsets {
        var numbers: [Int] = []
        var strings: [Int] = []
    }

    /// The key of `text` and where its blind constants start; nil if it has none to take out (the
    /// exact-text cache serves it). The text must not hold a NUL byte.
    static func of(_ text: UnsafeBufferPointer<UInt8>) -> (key: LiteralBlindKey, offsets: Offsets)? {
        var key: [UInt8] = []
        var offsets = Offsets()
        var copied = 0
        SQLLexer(bytes: text).forEachBlindConstant { start, end, kind in
            let constantClass: UInt8
            switch kind {
            case .number(let hasPoint):
                // A longer number stays in the key as written: its length sizes what copies it
                // (`Analyzer.copyConstant`; 60,000 digits in a subquery's column, aggregated over
                // 15,000 rows, took a backend 1.7 GB while counted as 24 bytes, seventeenth red team).
                guard end - start <= Self.longestBlindNumber else { return }
                constantClass = hasPoint ? decimalClass : fitsInt32(text[start..<end]) ? integerClass : bigIntegerClass
                offsets.numbers.append(start)
            case .string:
                constantClass = stringClass
                offsets.strings.append(start)
            }
            if copied == 0 { key.reserveCapacity(text.count) }
            key.append(contentsOf: UnsafeBufferPointer(rebasing: text[copied..<start]))
            key.append(mark)
            key.append(constantClass)
            // The string's length sizes what copies it, as a longer number's digits do.
            if constantClass == stringClass { key.append(UInt8(end - start - 2)) }
            copied = end
        }
        guard copied > 0 else { return nil }
        key.append(contentsOf: UnsafeBufferPointer(rebasing: text[copied...]))
        return (LiteralBlindKey(bytes: key), offsets)
    }

    /// Whether PostgreSQL's scanner makes the digits an ICONST (`process_integer_literal`: the
    /// value fits a 32-bit int; leading zeros do not count).
    private static func fitsInt32(_ digits: Slice<UnsafeBufferPointer<UInt8>>) -> Bool {
        let significant = digits.drop { $0 == UInt8(ascii: "0") }
        // Ten digits or fewer fit an Int, so the value can be compared rather than its spelling.
        guard significant.count <= 10 else { return false }
        var value = 0
        for digit in significant { value = value * 10 + Int(digit &- UInt8(ascii: "0")) }
        return value <= Int(Int32.max)
    }
}
