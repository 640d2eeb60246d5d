/// A deliberately small JSON reader and writer for token headers, claims and JWKS files.
///
/// Why not JSONSerialization: a token's claims are handed to PostgreSQL verbatim (row-level
/// security reads them), so what this module checked must be exactly what the database sees.
/// Duplicate keys are refused (`{"tenant_id":"a","tenant_id":"b"}` would let the verifier and
/// jsonb disagree on the tenant), number literals keep their spelling, member order is kept,
/// and malformed UTF-8 or lone surrogates are errors rather than silently replaced.
enum JSONValue: Sendable {
    case null
    case bool(Bool)
    /// The literal as written, already checked against the JSON number grammar.
    case number(String)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)

    var string: String? { if case .string(let s) = self { s } else { nil } }
    var object: JSONObject? { if case .object(let o) = self { o } else { nil } }
    var number: Double? { if case .number(let n) = self { Double(n) } else { nil } }
}

struct JSONObject: Sendable {
    var members: [(key: String, value: JSONValue)] = []

    subscript(key: String) -> JSONValue? {
        members.first { $0.key == key }?.value
    }
}

struct JSONError: Error, Sendable, Equatable {
    let reason: String
}

struct JSONParser {
    /// Deep nesting is refused well before it could exhaust the stack of a small NIO thread.
    static let maxDepth = 32

    private let bytes: [UInt8]
    private var index = 0
    /// Set when a string holds U+0000, which PostgreSQL text and jsonb cannot store.
    private(set) var sawNUL = false

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    static func parse(_ bytes: [UInt8]) throws(JSONError) -> (value: JSONValue, sawNUL: Bool) {
        var parser = JSONParser(bytes)
        parser.skipWhitespace()
        let value = try parser.parseValue(depth: 0)
        parser.skipWhitespace()
        guard parser.index == bytes.count else { throw JSONError(reason: "trailing characters after the JSON value") }
        return (value, parser.sawNUL)
    }

    private mutating func skipWhitespace() {
        while index < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[index]) { index += 1 }
    }

    private mutating func parseValue(depth: Int) throws(JSONError) -> JSONValue {
        guard depth < Self.maxDepth else { throw JSONError(reason: "nested more than \(Self.maxDepth) levels deep") }
        guard index < bytes.count else { throw JSONError(reason: "unexpected end of JSON") }
        switch bytes[index] {
        case UInt8(ascii: "{"): return .object(try parseObject(depth: depth))
        case UInt8(ascii: "["): return .array(try parseArray(depth: depth))
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        default: return .number(try parseNumber())
        }
    }

    private mutating func literal(_ word: String) throws(JSONError) {
        let count = word.utf8.count
        guard index + count <= bytes.count else { throw JSONError(reason: "unexpected end of JSON") }
        guard bytes[index..<index + count].elementsEqual(word.utf8) else { throw JSONError(reason: "invalid literal at offset \(index)") }
        index += count
    }

    private mutating func expect(_ byte: UInt8) throws(JSONError) {
        guard index < bytes.count, bytes[index] == byte else {
            throw JSONError(reason: "expected '\(Character(Unicode.Scalar(byte)))' at offset \(index)")
        }
        index += 1
    }

    private mutating func parseObject(depth: Int) throws(JSONError) -> JSONObject {
        index += 1
        var object = JSONObject()
        var seen = Set<String>()
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "}") { index += 1; return object }
        while true {
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else {
                throw JSONError(reason: "expected a member name at offset \(index)")
            }
            let key = try parseString()
            guard seen.insert(key).inserted else { throw JSONError(reason: "duplicate member name") }
            skipWhitespace()
            try expect(UInt8(ascii: ":"))
            skipWhitespace()
            object.members.append((key, try parseValue(depth: depth + 1)))
            skipWhitespace()
            guard index < bytes.count else { throw JSONError(reason: "unexpected end of JSON") }
            if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
            try expect(UInt8(ascii: "}"))
            return object
        }
    }

    private mutating func parseArray(depth: Int) throws(JSONError) -> [JSONValue] {
        index += 1
        var array: [JSONValue] = []
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "]") { index += 1; return array }
        while true {
            skipWhitespace()
            array.append(try parseValue(depth: depth + 1))
            skipWhitespace()
            guard index < bytes.count else { throw JSONError(reason: "unexpected end of JSON") }
            if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
            try expect(UInt8(ascii: "]"))
            return array
        }
    }

    private mutating func parseString() throws(JSONError) -> String {
        index += 1
        var out: [UInt8] = []
        while true {
            guard index < bytes.count else { throw JSONError(reason: "unterminated string") }
            let byte = bytes[index]
            index += 1
            switch byte {
            case UInt8(ascii: "\""):
                guard let text = String(validating: out, as: UTF8.self) else {
                    throw JSONError(reason: "string is not valid UTF-8")
                }
                return text
            case UInt8(ascii: "\\"):
                guard index < bytes.count else { throw JSONError(reason: "unterminated string") }
                let escape = bytes[index]
                index += 1
                switch escape {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(escape)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try hex4()
                    if (0xD800...0xDBFF).contains(scalar) {
                        guard index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u")
                        else { throw JSONError(reason: "lone surrogate in string") }
                        index += 2
                        let low = try hex4()
                        guard (0xDC00...0xDFFF).contains(low) else { throw JSONError(reason: "lone surrogate in string") }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else if (0xDC00...0xDFFF).contains(scalar) {
                        throw JSONError(reason: "lone surrogate in string")
                    }
                    if scalar == 0 { sawNUL = true }
                    out.append(contentsOf: Array(String(Character(Unicode.Scalar(scalar)!)).utf8))
                default: throw JSONError(reason: "invalid escape in string")
                }
            case 0x00..<0x20: throw JSONError(reason: "control character in string")
            default: out.append(byte)
            }
        }
    }

    private mutating func hex4() throws(JSONError) -> UInt32 {
        guard index + 4 <= bytes.count else { throw JSONError(reason: "unterminated \\u escape") }
        var value: UInt32 = 0
        for byte in bytes[index..<index + 4] {
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw JSONError(reason: "invalid \\u escape")
            }
            value = value << 4 | UInt32(digit)
        }
        index += 4
        return value
    }

    private mutating func parseNumber() throws(JSONError) -> String {
        let start = index
        func digits(_ parser: inout JSONParser) -> Int {
            let from = parser.index
            while parser.index < parser.bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(parser.bytes[parser.index]) {
                parser.index += 1
            }
            return parser.index - from
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "-") { index += 1 }
        let intStart = index
        let intDigits = digits(&self)
        guard intDigits > 0 else { throw JSONError(reason: "invalid value at offset \(start)") }
        guard intDigits == 1 || bytes[intStart] != UInt8(ascii: "0") else { throw JSONError(reason: "number with a leading zero") }
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            guard digits(&self) > 0 else { throw JSONError(reason: "number without fraction digits") }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
            guard digits(&self) > 0 else { throw JSONError(reason: "number without exponent digits") }
        }
        return String(decoding: bytes[start..<index], as: UTF8.self)
    }
}

enum JSONWriter {
    /// Compact JSON: no whitespace, members in their original order, numbers as written.
    static func write(_ value: JSONValue, into out: inout String) {
        switch value {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .number(let literal): out += literal
        case .string(let s): appendQuoted(s, into: &out)
        case .array(let items):
            out += "["
            for (n, item) in items.enumerated() {
                if n > 0 { out += "," }
                write(item, into: &out)
            }
            out += "]"
        case .object(let object):
            out += "{"
            for (n, member) in object.members.enumerated() {
                if n > 0 { out += "," }
                appendQuoted(member.key, into: &out)
                out += ":"
                write(member.value, into: &out)
            }
            out += "}"
        }
    }

    static func appendQuoted(_ text: String, into out: inout String) {
        out += "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            case "\u{00}"..."\u{1F}":
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
    }
}

enum Base64URL {
    /// Strict base64url as JWS compact serialisation uses it: no padding, no other alphabet, and
    /// unused trailing bits must be zero, so each byte string has exactly one spelling.
    static func decode(_ text: some Collection<UInt8>) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(text.count * 3 / 4)
        var buffer: UInt32 = 0
        var bits = 0
        for byte in text {
            let value: UInt32
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): value = UInt32(byte - UInt8(ascii: "A"))
            case UInt8(ascii: "a")...UInt8(ascii: "z"): value = UInt32(byte - UInt8(ascii: "a")) + 26
            case UInt8(ascii: "0")...UInt8(ascii: "9"): value = UInt32(byte - UInt8(ascii: "0")) + 52
            case UInt8(ascii: "-"): value = 62
            case UInt8(ascii: "_"): value = 63
            default: return nil
            }
            buffer = buffer << 6 | value
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(truncatingIfNeeded: buffer >> UInt32(bits)))
                buffer &= (1 << UInt32(bits)) - 1
            }
        }
        // 6 leftover bits cannot end a byte string; 2 or 4 must be zero padding bits.
        guard bits < 6, buffer == 0 else { return nil }
        return out
    }

    /// Standard base64 (with padding and line breaks ignored), for PEM bodies.
    static func decodeStandard(_ text: Substring) -> [UInt8]? {
        let mapped = text.utf8.compactMap { byte -> UInt8? in
            switch byte {
            case UInt8(ascii: "+"): UInt8(ascii: "-")
            case UInt8(ascii: "/"): UInt8(ascii: "_")
            case UInt8(ascii: "="), 0x20, 0x09, 0x0A, 0x0D: nil
            default: byte
            }
        }
        return decode(mapped)
    }
}
