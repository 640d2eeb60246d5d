/// A forward-only reader over libpg_query's JSON parse tree.
///
/// Decoding the tree into dictionaries costs several times the parse itself, so the analyzer
/// reads keys and values in place. The JSON comes from libpg_query, but the reader still checks
/// every byte it relies on and reports anything unexpected as `malformed`, which the analyzer
/// turns into a deny.
struct ParseTreeCursor {
    struct Malformed: Error {}

    /// Bytes of a key or string value that needs no unescaping, compared without allocating.
    struct Bytes: Equatable {
        let start: UnsafePointer<UInt8>
        let count: Int

        @inline(__always) static func ~= (pattern: StaticString, value: Bytes) -> Bool {
            pattern.utf8CodeUnitCount == value.count && equalBytes(pattern.utf8Start, value.start, value.count)
        }

        static func == (lhs: Bytes, rhs: Bytes) -> Bool {
            lhs.count == rhs.count && equalBytes(lhs.start, rhs.start, lhs.count)
        }

        /// Whether `count` bytes at `lhs` and `rhs` are equal. Keys and names are short: two
        /// overlapping loads of the widest word that fits compare them without a loop or a call.
        @inline(__always) static func equalBytes(_ lhs: UnsafePointer<UInt8>, _ rhs: UnsafePointer<UInt8>, _ count: Int) -> Bool {
            @inline(__always) func same<Word: FixedWidthInteger>(_: Word.Type, at offset: Int) -> Bool {
                UnsafeRawPointer(lhs + offset).loadUnaligned(as: Word.self) == UnsafeRawPointer(rhs + offset).loadUnaligned(as: Word.self)
            }
            switch count {
            case 0: return true
            case 1: return lhs[0] == rhs[0]
            case 2, 3: return same(UInt16.self, at: 0) && same(UInt16.self, at: count - 2)
            case 4 ... 7: return same(UInt32.self, at: 0) && same(UInt32.self, at: count - 4)
            default:
                var index = 0
                while index + 8 < count {
                    if !same(UInt64.self, at: index) { return false }
                    index += 8
                }
                return same(UInt64.self, at: count - 8)
            }
        }

        var string: String {
            String(decoding: UnsafeBufferPointer(start: start, count: count), as: UTF8.self)
        }

    }

    let base: UnsafePointer<UInt8>
    let end: Int
    private(set) var position: Int = 0

    init(_ buffer: UnsafeBufferPointer<UInt8>) {
        base = buffer.baseAddress!
        end = buffer.count
    }

    var offset: Int {
        get { position }
        set { position = newValue }
    }

    /// The byte at the position, without moving.
    @inline(__always) func peek() throws -> UInt8 {
        guard position < end else { throw Malformed() }
        return base[position]
    }

    @inline(__always) mutating func expect(_ byte: UInt8) throws {
        guard position < end, base[position] == byte else { throw Malformed() }
        position += 1
    }

    @inline(__always) mutating func consume(_ byte: UInt8) -> Bool {
        if position < end, base[position] == byte { position += 1; return true }
        return false
    }

    /// Reads the next key of the current object, or nil at its closing brace.
    /// Call after `{` or after a value; consumes the separating comma and the colon.
    @inline(__always) mutating func nextKey() throws -> Bytes? {
        if consume(UInt8(ascii: "}")) { return nil }
        if base[position - 1] != UInt8(ascii: "{") { try expect(UInt8(ascii: ",")) }
        let key = try rawString()
        try expect(UInt8(ascii: ":"))
        return key
    }

    /// Reads the next element start of the current array; false at its closing bracket.
    @inline(__always) mutating func nextElement() throws -> Bool {
        if consume(UInt8(ascii: "]")) { return false }
        if base[position - 1] != UInt8(ascii: "[") { try expect(UInt8(ascii: ",")) }
        return true
    }

    /// Whether the bytes at the position are `text`.
    @inline(__always) func startsWith(_ text: StaticString) -> Bool {
        let count = text.utf8CodeUnitCount
        return position + count <= end && Bytes.equalBytes(base + position, text.utf8Start, count)
    }

    /// A string whose bytes are used as they stand; escapes are kept (keys never have any).
    @inline(__always) mutating func rawString() throws -> Bytes {
        try expect(UInt8(ascii: "\""))
        return try stringBody().bytes
    }

    /// The rest of a string whose opening quote has been read, and whether it has escapes.
    /// Strings are most of what a walk reads, and most are short: they are scanned eight bytes at
    /// a time in registers rather than with a library call.
    @inline(__always) mutating func stringBody() throws -> (bytes: Bytes, escaped: Bool) {
        let start = position
        var escaped = false
        while true {
            if position + 8 <= end {
                // Bytes equal to `"` or `\` in a little-endian word: the classic has-zero-byte
                // test on the word XORed with each; the lowest flagged byte is exact.
                let word = UInt64(littleEndian: UnsafeRawPointer(base + position).loadUnaligned(as: UInt64.self))
                let quotes = word ^ 0x2222_2222_2222_2222
                let backslashes = word ^ 0x5C5C_5C5C_5C5C_5C5C
                let found = ((quotes &- 0x0101_0101_0101_0101) & ~quotes | (backslashes &- 0x0101_0101_0101_0101) & ~backslashes)
                    & 0x8080_8080_8080_8080
                if found == 0 {
                    position += 8
                    continue
                }
                position += found.trailingZeroBitCount >> 3
            } else {
                guard position < end else { throw Malformed() }
                let byte = base[position]
                if byte != UInt8(ascii: "\"") && byte != UInt8(ascii: "\\") {
                    position += 1
                    continue
                }
            }
            if base[position] == UInt8(ascii: "\"") { break }
            // A backslash escapes the next byte (a `\uXXXX` escape's digits are plain bytes).
            escaped = true
            position += 2
        }
        position += 1
        return (Bytes(start: base + start, count: position - 1 - start), escaped)
    }

    mutating func skipString() throws { _ = try rawString() }

    /// A string value with JSON escapes decoded.
    mutating func string() throws -> String {
        try expect(UInt8(ascii: "\""))
        let (raw, escaped) = try stringBody()
        return try Self.decoded(raw, escaped: escaped)
    }

    /// The text of a string's raw bytes (from `stringBody`).
    static func decoded(_ raw: Bytes, escaped: Bool) throws -> String {
        guard escaped else { return raw.string }
        var utf8: [UInt8] = []
        utf8.reserveCapacity(raw.count)
        try unescape(raw) { utf8.append($0) }
        return String(decoding: utf8, as: UTF8.self)
    }

    /// The bytes of a JSON string's raw text with its escapes decoded, handed to `emit` one by one.
    /// libpg_query escapes control characters, quotes, backslashes and `<`, `>`, `&` (as `\u00XX`);
    /// other bytes are raw UTF-8, so surrogate pairs never occur and are refused.
    static func unescape(_ raw: Bytes, _ emit: (UInt8) -> Void) throws {
        var index = 0
        while index < raw.count {
            let byte = raw.start[index]
            guard byte == UInt8(ascii: "\\") else { emit(byte); index += 1; continue }
            guard index + 1 < raw.count else { throw Malformed() }
            let escaped = raw.start[index + 1]
            index += 2
            switch escaped {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): emit(escaped)
            case UInt8(ascii: "b"): emit(0x08)
            case UInt8(ascii: "f"): emit(0x0C)
            case UInt8(ascii: "n"): emit(0x0A)
            case UInt8(ascii: "r"): emit(0x0D)
            case UInt8(ascii: "t"): emit(0x09)
            case UInt8(ascii: "u"):
                guard index + 4 <= raw.count else { throw Malformed() }
                var value: UInt32 = 0
                for offset in 0..<4 {
                    guard let digit = hexValue(raw.start[index + offset]) else { throw Malformed() }
                    value = value << 4 | digit
                }
                index += 4
                guard let scalar = Unicode.Scalar(value) else { throw Malformed() }
                for unit in UTF8.encode(scalar)! { emit(unit) }
            default: throw Malformed()
            }
        }
    }

    private static func hexValue(_ byte: UInt8) -> UInt32? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): UInt32(byte - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): UInt32(byte - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): UInt32(byte - UInt8(ascii: "A") + 10)
        default: nil
        }
    }

    mutating func integer() throws -> Int {
        var negative = false
        if consume(UInt8(ascii: "-")) { negative = true }
        var value = 0
        var digits = 0
        while position < end, base[position] >= UInt8(ascii: "0"), base[position] <= UInt8(ascii: "9") {
            value = value &* 10 &+ Int(base[position] - UInt8(ascii: "0"))
            position += 1
            digits += 1
        }
        guard digits > 0, digits < 19 else { throw Malformed() }
        return negative ? -value : value
    }

    mutating func boolean() throws -> Bool {
        if matchLiteral("true") { return true }
        if matchLiteral("false") { return false }
        throw Malformed()
    }

    private mutating func matchLiteral(_ literal: StaticString) -> Bool {
        guard startsWith(literal) else { return false }
        position += literal.utf8CodeUnitCount
        return true
    }

    /// Skips one value of any kind without recursion, so depth costs no stack.
    mutating func skipValue() throws {
        var depth = 0
        repeat {
            guard position < end else { throw Malformed() }
            switch base[position] {
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                depth += 1
                position += 1
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                depth -= 1
                position += 1
                guard depth >= 0 else { throw Malformed() }
            case UInt8(ascii: "\""):
                _ = try rawString()
            default:
                position += 1
            }
        } while depth > 0 || !atValueEnd
    }

    private var atValueEnd: Bool {
        guard position < end else { return true }
        let byte = base[position]
        return byte == UInt8(ascii: ",") || byte == UInt8(ascii: "}") || byte == UInt8(ascii: "]")
    }
}

#if canImport(Glibc)
import Glibc
#endif
