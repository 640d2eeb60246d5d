/// JSON output. Two forms: canonical (RFC 8785, JCS) for everything that is hashed or signed, and
/// compact (members in their order, numbers as spelled) for text that must say exactly what was read.
extension JSONValue {
    /// RFC 8785: members sorted by UTF-16 code units, no whitespace, one spelling per value. With
    /// no floats (the audit formats have none) a verifier in any language (`json.dumps(sort_keys=True,
    /// separators=(",", ":"), ensure_ascii=False)` in Python) recomputes the same bytes.
    public var canonicalBytes: [UInt8] {
        var out: [UInt8] = []
        JSONText.append(self, canonical: true, to: &out)
        return out
    }

    public var canonicalString: String { String(decoding: canonicalBytes, as: UTF8.self) }

    /// No whitespace, members in their original order, numbers as written.
    public var compactString: String {
        var out: [UInt8] = []
        JSONText.append(self, canonical: false, to: &out)
        return String(decoding: out, as: UTF8.self)
    }
}

/// The pieces of JSON output, public for writers that build a line field by field without values
/// (the audit log's entry encoder).
public enum JSONText {
    /// JCS orders keys by UTF-16 code units, not by Swift's String ordering (which is by scalar
    /// and would differ for characters outside the BMP).
    @inlinable
    public static func keyPrecedes(_ a: String, _ b: String) -> Bool {
        a.utf16.lexicographicallyPrecedes(b.utf16)
    }

    /// `text` as a JSON string literal, quotes included.
    public static func quoted(_ text: String) -> String {
        var out: [UInt8] = []
        appendQuoted(text, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    static func append(_ value: JSONValue, canonical: Bool, to out: inout [UInt8]) {
        switch value {
        case .null: out.append(contentsOf: "null".utf8)
        case .bool(let flag): out.append(contentsOf: (flag ? "true" : "false").utf8)
        case .number(let literal): out.append(contentsOf: (canonical ? canonicalNumber(literal) : literal).utf8)
        case .string(let text): appendQuoted(text, to: &out)
        case .array(let items):
            out.append(UInt8(ascii: "["))
            for (index, item) in items.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                append(item, canonical: canonical, to: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let object):
            let members = canonical ? object.members.sorted { keyPrecedes($0.key, $1.key) } : object.members
            out.append(UInt8(ascii: "{"))
            for (index, member) in members.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                appendQuoted(member.key, to: &out)
                out.append(UInt8(ascii: ":"))
                append(member.value, canonical: canonical, to: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    /// JCS string escaping: only `"`, `\` and C0 controls are escaped (short forms where JSON has
    /// them, otherwise lowercase `\u00xx`); everything else, DEL and U+2028 included, is raw UTF-8.
    @inlinable
    public static func appendQuoted(_ text: String, to out: inout [UInt8]) {
        out.append(0x22)
        var text = text
        text.withUTF8 { utf8 in
            var start = 0
            var index = 0
            while index < utf8.count {
                let byte = utf8[index]
                if byte >= 0x20 && byte != 0x22 && byte != 0x5C {
                    index += 1
                    continue
                }
                if start < index { out.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[start..<index])) }
                out.append(0x5C)
                switch byte {
                case 0x22: out.append(0x22)
                case 0x5C: out.append(0x5C)
                case 0x08: out.append(UInt8(ascii: "b"))
                case 0x09: out.append(UInt8(ascii: "t"))
                case 0x0A: out.append(UInt8(ascii: "n"))
                case 0x0C: out.append(UInt8(ascii: "f"))
                case 0x0D: out.append(UInt8(ascii: "r"))
                default:
                    out.append(contentsOf: [UInt8(ascii: "u"), 0x30, 0x30, Hex.digit(byte >> 4), Hex.digit(byte & 0xF)])
                }
                index += 1
                start = index
            }
            if start < utf8.count { out.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[start..<utf8.count])) }
        }
        out.append(0x22)
    }

    @inlinable
    public static func appendInt(_ value: Int64, to out: inout [UInt8]) {
        if value < 0 { out.append(UInt8(ascii: "-")) }
        appendUInt(value.magnitude, to: &out)
    }

    @inlinable
    public static func appendUInt(_ value: UInt64, to out: inout [UInt8]) {
        if value < 10 {
            out.append(0x30 + UInt8(value))
            return
        }
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                     UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var count = 0
        var rest = value
        withUnsafeMutableBytes(of: &digits) { buffer in
            while rest > 0 {
                buffer[19 - count] = 0x30 + UInt8(rest % 10)
                rest /= 10
                count += 1
            }
            out.append(contentsOf: buffer[(20 - count)...])
        }
    }

    /// Integers keep their digits (the audit formats use the full `Int64` range); other numbers are
    /// written as ECMAScript writes the nearest double, as RFC 8785 section 3.2.2.3 asks.
    static func canonicalNumber(_ literal: String) -> String {
        if JSONNumber.isInteger(literal) { return literal == "-0" ? "0" : literal }
        guard let value = Double(literal), value.isFinite else { return literal }
        if value == 0 { return "0" }
        // Swift's description holds the shortest digits that round-trip, as ECMAScript's do.
        let text = value.magnitude.description
        let parts = text.split(separator: "e")
        let exponent = parts.count == 2 ? Int(parts[1])! : 0
        let mantissa = parts[0].split(separator: ".", omittingEmptySubsequences: false)
        let whole = String(mantissa[0]), fraction = mantissa.count == 2 ? String(mantissa[1]) : ""
        var digits = Substring(whole + fraction)
        let leadingZeros = digits.prefix { $0 == "0" }.count
        digits = digits.dropFirst(leadingZeros)
        while digits.last == "0" { digits = digits.dropLast() }
        let k = digits.count, n = whole.count - leadingZeros + exponent
        let sign = value < 0 ? "-" : ""
        if k <= n && n <= 21 { return sign + digits + String(repeating: "0", count: n - k) }
        if 0 < n && n <= 21 { return sign + digits.prefix(n) + "." + digits.dropFirst(n) }
        if -6 < n && n <= 0 { return sign + "0." + String(repeating: "0", count: -n) + digits }
        let power = n - 1
        let shownExponent = "e" + (power < 0 ? "-" : "+") + String(power.magnitude)
        return sign + digits.prefix(1) + (k == 1 ? "" : "." + digits.dropFirst(1)) + shownExponent
    }
}
