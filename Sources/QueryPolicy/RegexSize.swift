/// How many copies of its atoms a regular expression (POSIX or SIMILAR TO) compiles into.
/// PostgreSQL's regex compiler expands a bounded repetition `{m,n}` into n copies of what it
/// repeats, nested repetitions into the product, and keeps each compiled pattern in a cache of 32
/// per session: 32 patterns like `(\w{1,200}){1,199}` (39,800 copies each) held 208 MB of a backend
/// for the rest of its session (sixteenth red team, second pass).
enum RegexSize {
    /// The most copies a pattern in the text may compile into: an e-mail pattern with its length
    /// bounds (`[a-z0-9._%+-]{1,64}@[a-z0-9.-]{1,255}\.[a-z]{2,63}`) is 385.
    static let maxCopies = 4096.0

    /// The copies `pattern` compiles into: atoms count one, a group the sum of its atoms, a bounded
    /// repetition its upper bound (its lower bound plus one when open) times what it repeats.
    static func copies(_ pattern: String) -> Double {
        let bytes = Array(pattern.utf8)
        // The size of each open group so far, and of the last atom, which a quantifier repeats.
        var groups: [Double] = [0]
        var last = 0.0
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
                last = 1
                groups[groups.count - 1] += 1
                index += 2
            case UInt8(ascii: "["):
                // A bracket expression is one atom; `]` first in it is a member.
                var end = index + 1
                if end < bytes.count, bytes[end] == UInt8(ascii: "^") { end += 1 }
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
                last = 1
                groups[groups.count - 1] += 1
                index = end + 1
            case UInt8(ascii: "("):
                groups.append(0)
                index += 1
            case UInt8(ascii: ")"):
                let group = groups.count > 1 ? groups.removeLast() : 0
                last = max(group, 1)
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
            default:
                last = 1
                groups[groups.count - 1] += 1
                index += 1
            }
        }
        return groups.reduce(0, +)
    }
}
