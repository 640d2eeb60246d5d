public struct JSONParseError: Error, Sendable, Equatable, CustomStringConvertible {
    public var offset: Int
    public var reason: String
    public var description: String { "\(reason) at byte \(offset)" }

    public init(offset: Int, reason: String) {
        self.offset = offset
        self.reason = reason
    }
}

extension JSONValue {
    public struct ParseOptions: Sendable {
        /// Deep nesting is refused well before it could exhaust the stack of a small thread.
        public var maxDepth: Int
        /// Refuse fractions, exponents and integers outside `Int64`: the canonical form has none,
        /// so a document that holds one was not written by the canonical writer.
        public var integersOnly: Bool

        public init(maxDepth: Int, integersOnly: Bool) {
            self.maxDepth = maxDepth
            self.integersOnly = integersOnly
        }

        /// What the canonical writer can produce, and nothing else.
        public static let canonical = ParseOptions(maxDepth: 64, integersOnly: true)
        /// Any JSON, nested at most 32 levels: token headers, claims, JWKS documents, input lines.
        public static let standard = ParseOptions(maxDepth: 32, integersOnly: false)
    }

    /// Parses one JSON text (RFC 8259). Duplicate keys, invalid UTF-8 and lone surrogates are errors.
    public static func parse(_ bytes: some Collection<UInt8>, _ options: ParseOptions = .standard) throws(JSONParseError) -> JSONValue {
        var parser = JSONParser(bytes: Array(bytes), options: options)
        parser.skipWhitespace()
        let value = try parser.value(depth: 0)
        parser.skipWhitespace()
        if parser.position != parser.bytes.count { throw parser.fail("trailing characters") }
        return value
    }

    public static func parse(_ text: String, _ options: ParseOptions = .standard) throws(JSONParseError) -> JSONValue {
        try parse(Array(text.utf8), options)
    }
}

private struct JSONParser {
    let bytes: [UInt8]
    let options: JSONValue.ParseOptions
    var position = 0

    init(bytes: [UInt8], options: JSONValue.ParseOptions) {
        self.bytes = bytes
        self.options = options
    }

    func fail(_ reason: String, at offset: Int? = nil) -> JSONParseError {
        JSONParseError(offset: offset ?? position, reason: reason)
    }

    mutating func skipWhitespace() {
        while position < bytes.count {
            switch bytes[position] {
            case 0x20, 0x09, 0x0A, 0x0D: position += 1
            default: return
            }
        }
    }

    mutating func literal(_ word: StaticString, _ value: JSONValue) throws(JSONParseError) -> JSONValue {
        let count = word.utf8CodeUnitCount
        guard position + count <= bytes.count,
              bytes[position..<position + count].elementsEqual(UnsafeBufferPointer(start: word.utf8Start, count: count))
        else { throw fail("invalid literal") }
        position += count
        return value
    }

    mutating func value(depth: Int) throws(JSONParseError) -> JSONValue {
        guard depth < options.maxDepth else { throw fail("nested more than \(options.maxDepth) levels deep") }
        guard position < bytes.count else { throw fail("unexpected end") }
        switch bytes[position] {
        case UInt8(ascii: "{"): return try object(depth: depth)
        case UInt8(ascii: "["): return try array(depth: depth)
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "n"): return try literal("null", .null)
        case UInt8(ascii: "t"): return try literal("true", .bool(true))
        case UInt8(ascii: "f"): return try literal("false", .bool(false))
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try number())
        default: throw fail("unexpected character")
        }
    }

    mutating func object(depth: Int) throws(JSONParseError) -> JSONValue {
        position += 1
        var object = JSONObject()
        var seen = Set<String>()
        skipWhitespace()
        if position < bytes.count, bytes[position] == UInt8(ascii: "}") {
            position += 1
            return .object(object)
        }
        while true {
            skipWhitespace()
            guard position < bytes.count, bytes[position] == UInt8(ascii: "\"") else { throw fail("expected a key") }
            let keyStart = position
            let key = try string()
            guard seen.insert(key).inserted else { throw fail("duplicate key \"\(key)\"", at: keyStart) }
            skipWhitespace()
            guard position < bytes.count, bytes[position] == UInt8(ascii: ":") else { throw fail("expected ':'") }
            position += 1
            skipWhitespace()
            object[key] = try value(depth: depth + 1)
            skipWhitespace()
            guard position < bytes.count else { throw fail("unexpected end") }
            if bytes[position] == UInt8(ascii: ",") { position += 1; continue }
            if bytes[position] == UInt8(ascii: "}") { position += 1; return .object(object) }
            throw fail("expected ',' or '}'")
        }
    }

    mutating func array(depth: Int) throws(JSONParseError) -> JSONValue {
        position += 1
        var items: [JSONValue] = []
        skipWhitespace()
        if position < bytes.count, bytes[position] == UInt8(ascii: "]") {
            position += 1
            return .array(items)
        }
        while true {
            skipWhitespace()
            items.append(try value(depth: depth + 1))
            skipWhitespace()
            guard position < bytes.count else { throw fail("unexpected end") }
            if bytes[position] == UInt8(ascii: ",") { position += 1; continue }
            if bytes[position] == UInt8(ascii: "]") { position += 1; return .array(items) }
            throw fail("expected ',' or ']'")
        }
    }

    mutating func digits() -> Int {
        let start = position
        while position < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[position]) { position += 1 }
        return position - start
    }

    /// The literal's spelling, checked against the grammar (and, for `integersOnly`, against `Int64`).
    mutating func number() throws(JSONParseError) -> String {
        let start = position
        if bytes[position] == UInt8(ascii: "-") { position += 1 }
        let integerStart = position
        let integerDigits = digits()
        guard integerDigits > 0 else { throw fail("expected a digit") }
        guard integerDigits == 1 || bytes[integerStart] != UInt8(ascii: "0") else { throw fail("leading zero", at: start) }
        if position < bytes.count, [UInt8(ascii: "."), UInt8(ascii: "e"), UInt8(ascii: "E")].contains(bytes[position]) {
            if options.integersOnly { throw fail("floats are not allowed", at: start) }
            if bytes[position] == UInt8(ascii: ".") {
                position += 1
                guard digits() > 0 else { throw fail("number without fraction digits") }
            }
            if position < bytes.count, bytes[position] == UInt8(ascii: "e") || bytes[position] == UInt8(ascii: "E") {
                position += 1
                if position < bytes.count, bytes[position] == UInt8(ascii: "+") || bytes[position] == UInt8(ascii: "-") { position += 1 }
                guard digits() > 0 else { throw fail("number without exponent digits") }
            }
        }
        let literal = String(decoding: bytes[start..<position], as: UTF8.self)
        if options.integersOnly, Int64(literal) == nil { throw fail("integer out of range", at: start) }
        return literal
    }

    mutating func hex4() throws(JSONParseError) -> UInt32 {
        guard position + 4 <= bytes.count else { throw fail("short \\u escape") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            guard let digit = Hex.nibble(bytes[position], acceptingUppercase: true) else { throw fail("bad \\u escape") }
            value = value << 4 | UInt32(digit)
            position += 1
        }
        return value
    }

    mutating func string() throws(JSONParseError) -> String {
        position += 1
        var out: [UInt8] = []
        var runStart = position
        while true {
            guard position < bytes.count else { throw fail("unterminated string") }
            let byte = bytes[position]
            if byte == 0x22 { break }
            if byte < 0x20 { throw fail("control character in string") }
            if byte != 0x5C { position += 1; continue }
            out.append(contentsOf: bytes[runStart..<position])
            position += 1
            guard position < bytes.count else { throw fail("unterminated escape") }
            let escape = bytes[position]
            position += 1
            switch escape {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(escape)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = try hex4()
                if (0xD800..<0xDC00).contains(scalar) {
                    guard position + 2 <= bytes.count, bytes[position] == 0x5C, bytes[position + 1] == UInt8(ascii: "u")
                    else { throw fail("lone surrogate") }
                    position += 2
                    let low = try hex4()
                    guard (0xDC00..<0xE000).contains(low) else { throw fail("lone surrogate") }
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                } else if (0xDC00..<0xE000).contains(scalar) {
                    throw fail("lone surrogate")
                }
                out.append(contentsOf: String(Character(Unicode.Scalar(scalar)!)).utf8)
            default: throw fail("bad escape")
            }
            runStart = position
        }
        out.append(contentsOf: bytes[runStart..<position])
        position += 1
        guard let text = String(validating: out, as: UTF8.self) else { throw fail("invalid UTF-8 in string") }
        return text
    }
}
