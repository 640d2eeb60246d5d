/// What a regular expression (POSIX, SIMILAR TO, a jsonpath's like_regex) compiles into: copies of
/// its atoms, each weighing the sets of characters it matches. PostgreSQL's regex compiler expands a bounded repetition `{m,n}` into n copies of what it
/// repeats, nested repetitions into the product, and keeps each compiled pattern in a cache of 32
/// per session: 32 patterns like `(\w{1,200}){1,199}` (39,800 copies each) held 208 MB of a backend
/// for the rest of its session (sixteenth red team, second pass).
enum RegexSize {
    /// The most a pattern in the text may weigh, in copies of a one-color atom. An e-mail pattern
    /// with its length bounds (`[a-z0-9._%+-]{1,64}@[a-z0-9.-]{1,255}\.[a-z]{2,63}`, 385 copies,
    /// its bracket expressions weighing their members) passes; 32 patterns just under the limit
    /// kept 16 MB.
    static let maxCopies = 4096.0

    /// What a compiled pattern weighs: its copies, each atom by the colors (sets of characters the
    /// pattern tells apart) it matches, a transition for each: a character or a class one, a
    /// bracket expression its members, a negated one or `.` every color of the pattern. Measured on
    /// PostgreSQL 15: 39,800 copies of `\w` kept 5 MB (126 bytes a copy); 3,070 copies of a `[^…]`
    /// over 128 colors 14.6 MB (sixteenth red team, third pass), where a long alternation of
    /// literal names (50 states, 400 characters) keeps under 0.1 MB. A pattern the server takes
    /// literally (`***=`, or `q` among its leading options) weighs nothing.
    static func weight(_ pattern: String) -> Double {
        if pattern.hasPrefix("***=") { return 0 }
        var options = Substring(pattern)
        if options.hasPrefix("***:") { options = options.dropFirst(4) }
        if options.hasPrefix("(?"), let end = options.firstIndex(of: ")") {
            if options[options.index(options.startIndex, offsetBy: 2)..<end].contains("q") { return 0 }
        }
        let colors = colors(pattern)
        // The server reads the pattern in the mode its options or flags choose: expanded (`(?x)`, flag
        // x) skips blanks and `#` comments, so `{1, 200}` is a bound; basic (`(?b)`, flag b) takes
        // `\{` and `\(` as bounds and groups. Each reading is sized and the largest counts
        // (seventeenth red team: either took a backend 211 MB for 32 patterns sized as plain text).
        return max(size(pattern, colors: colors), size(expanded(pattern), colors: colors), size(basic(pattern), colors: colors))
    }

    /// The pattern as expanded mode reads it: without blanks and `#` comments.
    static func expanded(_ pattern: String) -> String {
        var result = String.UnicodeScalarView()
        var scalars = pattern.unicodeScalars.makeIterator()
        while let scalar = scalars.next() {
            switch scalar {
            case "\\":
                result.append(scalar)
                if let next = scalars.next() { result.append(next) }
            case " ", "\t", "\n", "\r", "\u{0B}", "\u{0C}": continue
            case "#": while let skipped = scalars.next(), skipped != "\n" {}
            default: result.append(scalar)
            }
        }
        return String(result)
    }

    /// The pattern as basic mode reads it, written as an extended one: `\{ \} \( \)` are bounds and
    /// groups, and bare braces and parentheses are characters.
    static func basic(_ pattern: String) -> String {
        var result = ""
        var scalars = pattern.unicodeScalars.makeIterator()
        while let scalar = scalars.next() {
            switch scalar {
            case "\\":
                guard let next = scalars.next() else { result.unicodeScalars.append(scalar); break }
                if "{}()".unicodeScalars.contains(next) { result.unicodeScalars.append(next) } else {
                    result.unicodeScalars.append(scalar)
                    result.unicodeScalars.append(next)
                }
            case "{", "}", "(", ")":
                result.unicodeScalars.append("\\")
                result.unicodeScalars.append(scalar)
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result
    }

    /// The patterns of a jsonpath's `like_regex "…"` filters, which PostgreSQL compiles as POSIX
    /// patterns (one of them took a backend 45 MB), with the jsonpath's escapes read as its scanner
    /// reads them: `"\u007b"` is a `{` to the regex compiler.
    static func likeRegexPatterns(inJSONPath path: String) -> [String] {
        var patterns: [String] = []
        let scalars = Array(path.unicodeScalars)
        var index = 0
        func starts(with word: String, at position: Int) -> Bool {
            var at = position
            for scalar in word.unicodeScalars {
                guard at < scalars.count, scalars[at] == scalar else { return false }
                at += 1
            }
            return true
        }
        while index < scalars.count {
            guard starts(with: "like_regex", at: index) else {
                index += 1
                continue
            }
            index += 10
            // Blanks and comments may stand between the keyword and its string.
            while index < scalars.count {
                if " \t\n\r\u{0C}".unicodeScalars.contains(scalars[index]) {
                    index += 1
                } else if starts(with: "/*", at: index) {
                    index += 2
                    while index < scalars.count, !starts(with: "*/", at: index) { index += 1 }
                    index += 2
                } else {
                    break
                }
            }
            guard index < scalars.count, scalars[index] == "\"" else { continue }
            index += 1
            var pattern = String.UnicodeScalarView()
            while index < scalars.count, scalars[index] != "\"" {
                guard scalars[index] == "\\", index + 1 < scalars.count else {
                    pattern.append(scalars[index])
                    index += 1
                    continue
                }
                index += 1
                let escaped = scalars[index]
                index += 1
                switch escaped {
                case "b": pattern.append("\u{08}")
                case "f": pattern.append("\u{0C}")
                case "n": pattern.append("\n")
                case "r": pattern.append("\r")
                case "t": pattern.append("\t")
                case "v": pattern.append("\u{0B}")
                case "x", "u":
                    // \xHH, \uHHHH, \u{H…}: the code point, whatever it is (a surrogate weighs as a character).
                    var digits = ""
                    if escaped == "u", index < scalars.count, scalars[index] == "{" {
                        index += 1
                        while index < scalars.count, scalars[index] != "}", digits.count < 6 { digits.unicodeScalars.append(scalars[index]); index += 1 }
                        index += 1
                    } else {
                        let count = escaped == "x" ? 2 : 4
                        while index < scalars.count, digits.count < count, scalars[index].properties.isASCIIHexDigit {
                            digits.unicodeScalars.append(scalars[index])
                            index += 1
                        }
                    }
                    pattern.append(UInt32(digits, radix: 16).flatMap(Unicode.Scalar.init) ?? "?")
                default: pattern.append(escaped)
                }
            }
            index += 1
            patterns.append(String(pattern))
        }
        return patterns
    }

    /// At most the sets of characters `pattern` tells apart: one, and one for each character it
    /// names, two for each range's ends, two for each class (`\w`, `[:alpha:]`), at most 256.
    static func colors(_ pattern: String) -> Double {
        var named: Set<UInt32> = []
        var ranges = 0, classes = 0
        let scalars = pattern.unicodeScalars.map(\.value)
        func isDigit(_ value: UInt32) -> Bool { value >= 0x30 && value <= 0x39 }
        var index = 0
        while index < scalars.count {
            let scalar = scalars[index]
            switch Unicode.Scalar(scalar).map(Character.init) {
            case "\\" where index + 1 < scalars.count:
                let next = scalars[index + 1]
                if "wWdDsS".unicodeScalars.contains(where: { $0.value == next }) { classes += 1 } else { named.insert(next) }
                index += 2
            case "{":
                // A quantifier's digits name no character.
                var end = index + 1
                while end < scalars.count, isDigit(scalars[end]) || scalars[end] == 0x2C { end += 1 }
                if end < scalars.count, scalars[end] == 0x7D { index = end + 1 } else { named.insert(scalar); index += 1 }
            case "-" where index > 0 && index + 1 < scalars.count && scalars[index + 1] != 0x5D:
                ranges += 1
                index += 1
            case ":" where index > 0 && scalars[index - 1] == 0x5B:
                classes += 1
                index += 1
            case "[", "]", "(", ")", "|", "*", "+", "?", ".", "^", "$":
                index += 1
            default:
                named.insert(scalar)
                index += 1
            }
        }
        return min(256, 1 + Double(named.count + 2 * ranges + 2 * classes))
    }

    /// The copies `pattern` compiles into: atoms count one, a group the sum of its atoms, a bounded
    /// repetition its upper bound (its lower bound plus one when open) times what it repeats.
    static func copies(_ pattern: String) -> Double {
        size(pattern, colors: nil)
    }

    /// The copies of `pattern`'s atoms, each weighing one, or (with the pattern's `colors`) the colors it matches.
    private static func size(_ pattern: String, colors: Double?) -> Double {
        let bytes = Array(pattern.utf8)
        // The size of each open group so far, and of the last atom, which a quantifier repeats.
        var groups: [Double] = [0]
        var last = 0.0
        // A back-reference (`\1`) compiles a copy of what its group matches: the largest group so far bounds it.
        var largestGroup = 1.0
        var index = 0
        func quantifier(at start: Int) -> (copies: Double, end: Int)? {
            // {m}, {m,}, {m,n}
            var position = start + 1
            var numbers: [Double] = []
            var current: Double?
            var comma = false
            while position < bytes.count {
                let byte = bytes[position]
                if byte >= 0x30, byte <= 0x39 {
                    current = min((current ?? 0) * 10 + Double(byte - 0x30), 1e6)
                } else if byte == UInt8(ascii: ","), !comma {
                    comma = true
                    numbers.append(current ?? 0)
                    current = nil
                } else if byte == UInt8(ascii: "}") {
                    if comma {
                        // {m,} repeats m times, then loops.
                        return (current ?? (numbers[0] + 1), position + 1)
                    }
                    guard let current else { return nil }
                    return (current, position + 1)
                } else {
                    return nil
                }
                position += 1
            }
            return nil
        }
        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "\\"):
                // \W, \D, \S match nearly every color; \w, \d, \s and a character, one.
                let next = index + 1 < bytes.count ? bytes[index + 1] : 0
                last = next >= UInt8(ascii: "1") && next <= UInt8(ascii: "9") ? largestGroup
                    : colors.map { Array("WDS".utf8).contains(next) ? $0 : 1 } ?? 1
                groups[groups.count - 1] += last
                index += 2
            case UInt8(ascii: "["):
                // A bracket expression is one atom; `]` first in it is a member.
                var end = index + 1
                let negated = end < bytes.count && bytes[end] == UInt8(ascii: "^")
                if negated { end += 1 }
                let membersStart = end
                if end < bytes.count, bytes[end] == UInt8(ascii: "]") { end += 1 }
                while end < bytes.count, bytes[end] != UInt8(ascii: "]") {
                    // [:alpha:], [.x.], [=x=] hold a `]` of their own.
                    if bytes[end] == UInt8(ascii: "["), end + 1 < bytes.count, [UInt8(ascii: ":"), UInt8(ascii: "."), UInt8(ascii: "=")].contains(bytes[end + 1]) {
                        let closing = bytes[end + 1]
                        end += 2
                        while end + 1 < bytes.count, !(bytes[end] == closing && bytes[end + 1] == UInt8(ascii: "]")) { end += 1 }
                        end += 2
                    } else {
                        end += 1
                    }
                }
                if let colors {
                    let members = bytes.count > membersStart ? Array(bytes[membersStart..<min(end, bytes.count)]) : []
                    let ranges = Double(members.filter { $0 == UInt8(ascii: "-") }.count)
                    last = negated ? colors : max(1, Double(Set(members).count) + ranges)
                } else {
                    last = 1
                }
                groups[groups.count - 1] += last
                index = end + 1
            case UInt8(ascii: "("):
                groups.append(0)
                index += 1
            case UInt8(ascii: ")"):
                let group = groups.count > 1 ? groups.removeLast() : 0
                last = max(group, 1)
                largestGroup = max(largestGroup, last)
                groups[groups.count - 1] += last
                index += 1
            case UInt8(ascii: "{"):
                if let (times, end) = quantifier(at: index) {
                    // The repeated atom counts `times` in all, once already.
                    groups[groups.count - 1] += last * (times - 1)
                    last *= times
                    index = end
                } else {
                    last = 1
                    groups[groups.count - 1] += 1
                    index += 1
                }
            case UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "?"), UInt8(ascii: "|"):
                index += 1
            case UInt8(ascii: "."):
                last = colors ?? 1
                groups[groups.count - 1] += last
                index += 1
            default:
                last = 1
                groups[groups.count - 1] += 1
                index += 1
            }
        }
        return groups.reduce(0, +)
    }
}
