/// A text with the values of its plain numbers taken out: the key under which texts that differ
/// only in those values share one decision. psycopg2, psql and most agents write every value into
/// the text, so without it nearly every query is a new text and a full parse (`PolicyEngine`).
///
/// Why two texts with one key get the same decision:
/// - **Same tokens.** Outside the numbers the texts are the same bytes. A number here is a run of
///   digits (with at most one inner `.` and digits after it) that starts a token and ends one: the
///   byte before it is neither a name character nor `.`, and the byte after it is neither of those
///   nor a digit. PostgreSQL's scanner reads such a run as one ICONST or FCONST token whatever its
///   digits are; which of the two depends on the value (an integer above 2^31 - 1 is FCONST), so
///   the key keeps that class. The scanner's state before each number is the same in both texts,
///   because everything before it is.
/// - **Same tree up to those values.** The grammar sees the same token types, so the trees differ
///   only in those constants' values and in locations.
/// - **Checked on the first text.** The engine stores a decision under the key only if the parser
///   put an `A_Const` that normalization replaces at the start of every number (not a type
///   modifier, array bound, column position or negated constant), the decision admits the text,
///   and no rule read a constant's value (`Analyzer.constantValue`). The decision's other parts
///   (tables, functions, fingerprint, normalized text) do not see constants' values.
///
/// Strings stay in the key byte for byte: rules read them (setting names, casts to reg* types, XML).
struct LiteralBlindKey: Hashable, Sendable {
    let bytes: [UInt8]

    // As one block of bytes: Array's own hash feeds the hasher a byte at a time.
    func hash(into hasher: inout Hasher) { bytes.withUnsafeBytes { hasher.combine(bytes: $0) } }

    /// Marks a number in the key. Text with a NUL byte is refused before any lookup, so no text
    /// byte can be read as a mark.
    private static let mark: UInt8 = 0
    private static let integerClass = UInt8(ascii: "i")
    private static let bigIntegerClass = UInt8(ascii: "b")
    private static let decimalClass = UInt8(ascii: "d")
    /// The longest number taken out of the key: as long as a Double's shortest text.
    static let longestBlindNumber = 24

    /// The key of `text` and the byte offset where each of its numbers starts, in text order; nil
    /// if it has no number to take out (the exact-text cache serves it). The text must not hold a
    /// NUL byte.
    static func of(_ text: UnsafeBufferPointer<UInt8>) -> (key: LiteralBlindKey, numberOffsets: [Int])? {
        var key: [UInt8] = []
        var offsets: [Int] = []
        var copied = 0
        SQLLexer(bytes: text).forEachNumber { start, end, hasPoint in
            // A longer number stays in the key as written: its length sizes what copies it
            // (`Analyzer.copyConstant`; 60,000 digits in a subquery's column, aggregated over 15,000
            // rows, took a backend 1.7 GB while counted as 24 bytes, seventeenth red team).
            guard end - start <= Self.longestBlindNumber else { return }
            if offsets.isEmpty { key.reserveCapacity(text.count) }
            key.append(contentsOf: UnsafeBufferPointer(rebasing: text[copied..<start]))
            key.append(mark)
            key.append(hasPoint ? decimalClass : fitsInt32(text[start..<end]) ? integerClass : bigIntegerClass)
            offsets.append(start)
            copied = end
        }
        guard !offsets.isEmpty else { return nil }
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
