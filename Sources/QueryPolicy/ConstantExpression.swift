/// The value of an argument the text states outright, read ahead on a copy of the cursor: for
/// rules that depend on an argument (`current_setting`'s name, `repeat`'s count, the bounds of
/// `generate_series`). Constants, casts of constants, `+ - * / % ^` between them, `power()`,
/// `ARRAY[…]` and `'{…}'` arrays are read, with `@ ~ |/ ||/ | # & >>`, `abs`, GREATEST and LEAST;
/// anything else (columns, parameters, other functions) has no value here. Rules on allocating
/// functions refuse an argument without a value that no column or parameter feeds
/// (`Analyzer.isClosed`): the server would compute it from the text alone.
indirect enum ConstantExpression: Equatable {
    case number(Double)
    case string(String)
    case array([ConstantExpression])
    /// A text whose content is not kept but whose length in bytes (at least) is known: the result
    /// of `repeat`, `lpad`, `rpad` or `||` over constants, so that nesting them cannot hide a size.
    case text(bytes: Double)

    /// Nested expressions deeper than this are not evaluated (the walk bounds the tree's depth; this
    /// bounds the read-ahead's own recursion).
    private static let deepestLevel = 32

    /// The value of the node at `cursor` (`{"Type":{…}}`), or nil. `text` is the statement's text:
    /// libpg_query writes every integer constant that is not positive as `{"ival":{}}` (0 and -5
    /// alike), so those are read from the text at the constant's location.
    fileprivate static func at(_ cursor: ParseTreeCursor, text: UnsafeBufferPointer<UInt8>) -> ConstantExpression? {
        var probe = cursor
        return (try? read(&probe, level: 0, text: text)) ?? nil
    }

    var number: Double? {
        switch self {
        case .number(let value): value
        case .string(let text): Double(text.trimmingSpaces)
        case .array, .text: nil
        }
    }

    /// The length in bytes of a text value, where the text states it.
    var textBytes: Double? {
        switch self {
        case .string(let text): Double(text.utf8.count)
        case .text(let bytes): bytes
        case .number, .array: nil
        }
    }

    /// UTF-8, like every server encoding Palisade meets, takes at most 4 bytes a character: a length
    /// in characters (`lpad`'s) is up to 4 times as many bytes (`lpad('', n, '😀')`).
    static let maxBytesPerCharacter = 4.0

    /// The most bytes the value's text takes: a text's own, a number's as written (at most 24
    /// characters for a Double), an array's elements' with a separator each. For sizing what a
    /// function builds from its arguments (`format`, `replace`, `array_fill`).
    var bytesBound: Double? {
        switch self {
        case .string(let text): Double(text.utf8.count)
        case .text(let bytes): bytes
        // A Double's shortest text is at most 24 characters; a numeric of 1e21 and more is written
        // out in full (up to 131,072 digits before the point, and numeric's text beyond a Double's).
        case .number(let value): value.isFinite && abs(value) < 1e21 ? 24 : (value.isFinite ? log10(abs(value)) + 26 : 147_458)
        case .array(let elements):
            elements.reduce(Double?(2)) { total, element in
                guard let total, let bytes = element.bytesBound else { return nil }
                return total + bytes + 1
            }
        }
    }

    var string: String? {
        if case .string(let text) = self { return text }
        return nil
    }

    /// The numbers of a one- or more-dimensional array constant, flattened.
    var numbers: [Double]? {
        switch self {
        case .array(let elements):
            var values: [Double] = []
            for element in elements {
                if let nested = element.numbers, case .array = element { values += nested; continue }
                guard let value = element.number else { return nil }
                values.append(value)
            }
            return values
        case .string(let text):
            // '{1000,1000}' or '[1:10]={…}' is not read: only plain element lists.
            let trimmed = text.trimmingSpaces
            guard trimmed.hasPrefix("{"), trimmed.hasSuffix("}") else { return nil }
            var values: [Double] = []
            for part in trimmed.dropFirst().dropLast().split(separator: ",") {
                guard let value = Double(String(part).trimmingSpaces) else { return nil }
                values.append(value)
            }
            return values
        case .number, .text: return nil
        }
    }

    private static func read(_ cursor: inout ParseTreeCursor, level: Int, text: UnsafeBufferPointer<UInt8>) throws -> ConstantExpression? {
        try cursor.expect(UInt8(ascii: "{"))
        guard let type = try cursor.nextKey() else { return nil }
        var value: ConstantExpression?
        if level >= deepestLevel {
            try cursor.skipValue()
        } else {
            switch type {
            case "A_Const": value = try constant(&cursor, text: text)
            case "String":
                try cursor.forEachKey { cursor, _ in value = .string(try cursor.string()) }
            case "Integer":
                value = .number(0)
                try cursor.forEachKey { cursor, _ in value = .number(Double(try cursor.integer())) }
            case "Float":
                try cursor.forEachKey { cursor, _ in value = Double(try cursor.string()).map(ConstantExpression.number) }
            case "TypeCast":
                var cuts = false
                var numeric = false
                try cursor.forEachKey { cursor, key in
                    switch key {
                    case "arg": value = try read(&cursor, level: level + 1, text: text)
                    case "typeName":
                        try cursor.forEachKey { cursor, key in
                            switch key {
                            // varchar(11), char(17), "char" and name keep a prefix of the text.
                            case "typmods": cuts = true
                            case "names": cuts = cuts || cursor.startsWith("[{\"String\":{\"sval\":\"char\"}}]")
                                || cursor.startsWith("[{\"String\":{\"sval\":\"name\"}}]")
                                || cursor.startsWith("[{\"String\":{\"sval\":\"pg_catalog\"}},{\"String\":{\"sval\":\"char\"}}]")
                                || cursor.startsWith("[{\"String\":{\"sval\":\"pg_catalog\"}},{\"String\":{\"sval\":\"name\"}}]")
                                numeric = cursor.startsWith("[{\"String\":{\"sval\":\"pg_catalog\"}},{\"String\":{\"sval\":\"numeric\"}}]")
                                    || cursor.startsWith("[{\"String\":{\"sval\":\"numeric\"}}]")
                            default: break
                            }
                            try cursor.skipValue()
                        }
                    default: try cursor.skipValue()
                    }
                }
                // The text the server reads is then not the one written: it has no value here.
                if cuts, case .string? = value { value = nil }
                // A text read as a numeric is a number, written out in full when it is text again:
                // '1e131071'::numeric::text is 131,072 digits (sixth red team), '1e-16383' 16,385.
                if numeric, case .string(let written)? = value, let number = Double(written) {
                    let characters = Analyzer.numericTextBytes(written)
                    value = characters > 24 && abs(number) < 1 ? .text(bytes: characters) : .number(number)
                }
            case "A_Expr": value = try operation(&cursor, level: level, text: text)
            case "A_ArrayExpr":
                var elements: [ConstantExpression] = []
                var complete = true
                try cursor.forEachKey { cursor, key in
                    guard case "elements" = key else { try cursor.skipValue(); return }
                    try cursor.expect(UInt8(ascii: "["))
                    while try cursor.nextElement() {
                        if let element = try read(&cursor, level: level + 1, text: text) { elements.append(element) } else { complete = false }
                    }
                }
                value = complete ? .array(elements) : nil
            case "FuncCall": value = try call(&cursor, level: level, text: text)
            case "MinMaxExpr":
                var greatest = true
                var numbers: [Double] = []
                var complete = true
                try cursor.forEachKey { cursor, key in
                    switch key {
                    case "op": greatest = try cursor.string() == "IS_GREATEST"
                    case "args":
                        try cursor.expect(UInt8(ascii: "["))
                        while try cursor.nextElement() {
                            if let number = try read(&cursor, level: level + 1, text: text)?.number { numbers.append(number) } else { complete = false }
                        }
                    default: try cursor.skipValue()
                    }
                }
                if complete, let extreme = greatest ? numbers.max() : numbers.min() { value = .number(extreme) }
            default: try cursor.skipValue()
            }
        }
        guard try cursor.nextKey() == nil else { throw ParseTreeCursor.Malformed() }
        return value
    }

    private static func constant(_ cursor: inout ParseTreeCursor, text: UnsafeBufferPointer<UInt8>) throws -> ConstantExpression? {
        var value: ConstantExpression?
        var notPositive = false
        try cursor.forEachKey { cursor, key in
            switch key {
            case "ival":
                notPositive = true
                try cursor.forEachKey { cursor, _ in
                    value = .number(Double(try cursor.integer()))
                    notPositive = false
                }
            case "location" where notPositive:
                value = integer(inText: text, at: try cursor.integer())
            case "fval":
                try cursor.forEachKey { cursor, _ in value = Double(try cursor.string()).map(ConstantExpression.number) }
            case "sval":
                try cursor.forEachKey { cursor, _ in value = .string(try cursor.string()) }
            default: try cursor.skipValue()
            }
        }
        return value
    }

    /// The integer written at `offset` of the text (`-5`, `- 5`, `0`), or nil.
    private static func integer(inText text: UnsafeBufferPointer<UInt8>, at offset: Int) -> ConstantExpression? {
        guard offset >= 0, offset < text.count else { return nil }
        var index = offset
        var negative = false
        if text[index] == UInt8(ascii: "-") {
            negative = true
            index += 1
            while index < text.count, text[index] == 0x20 || text[index] == 0x09 || text[index] == 0x0A { index += 1 }
        }
        var value = 0.0
        var digits = 0
        while index < text.count, text[index] >= UInt8(ascii: "0"), text[index] <= UInt8(ascii: "9") {
            value = value * 10 + Double(text[index] - UInt8(ascii: "0"))
            index += 1
            digits += 1
        }
        return digits > 0 ? .number(negative ? -value : value) : nil
    }

    private static func operation(_ cursor: inout ParseTreeCursor, level: Int, text: UnsafeBufferPointer<UInt8>) throws -> ConstantExpression? {
        var isOperator = false
        var symbol = ""
        var left: ConstantExpression?
        var right: ConstantExpression?
        var hasLeft = false
        try cursor.forEachKey { cursor, key in
            switch key {
            case "kind": isOperator = try cursor.string() == "AEXPR_OP"
            case "name":
                try cursor.expect(UInt8(ascii: "["))
                var parts: [String] = []
                while try cursor.nextElement() {
                    try cursor.expect(UInt8(ascii: "{"))
                    guard case "String"? = try cursor.nextKey() else { throw ParseTreeCursor.Malformed() }
                    try cursor.forEachKey { cursor, _ in parts.append(try cursor.string()) }
                    guard try cursor.nextKey() == nil else { throw ParseTreeCursor.Malformed() }
                }
                symbol = parts.count == 1 || (parts.count == 2 && parts[0] == "pg_catalog") ? parts.last! : ""
            case "lexpr":
                hasLeft = true
                left = try read(&cursor, level: level + 1, text: text)
            case "rexpr": right = try read(&cursor, level: level + 1, text: text)
            default: try cursor.skipValue()
            }
        }
        if isOperator, symbol == "||", let leftBytes = left?.textBytes, let rightBytes = right?.textBytes {
            return .text(bytes: leftBytes + rightBytes)
        }
        guard isOperator, let rightValue = right?.number else { return nil }
        guard hasLeft else {
            switch symbol {
            case "-": return .number(-rightValue)
            case "+": return .number(rightValue)
            case "@": return .number(abs(rightValue))
            case "~": return .number(-rightValue - 1)
            case "|/" where rightValue >= 0: return .number(rightValue.squareRoot())
            case "||/": return .number(cbrt(rightValue))
            default: return nil
            }
        }
        guard let leftValue = left?.number else { return nil }
        switch symbol {
        case "+": return .number(leftValue + rightValue)
        case "-": return .number(leftValue - rightValue)
        case "*": return .number(leftValue * rightValue)
        case "/" where rightValue != 0: return .number(leftValue / rightValue)
        case "%" where rightValue != 0: return .number(leftValue.truncatingRemainder(dividingBy: rightValue))
        case "^": return .number(pow(leftValue, rightValue))
        case "<<": return .number(leftValue * pow(2, rightValue))
        case ">>": return .number((leftValue / pow(2, rightValue)).rounded(.down))
        // Bitwise operators on integers: the result is never more than the larger magnitude
        // doubled, which is what a limit compares (`1000000000 | 0`).
        case "|", "#", "&": return .number(Self.bitwise(symbol, leftValue, rightValue))
        default: return nil
        }
    }

    private static func bitwise(_ symbol: String, _ left: Double, _ right: Double) -> Double {
        guard let a = Int64(exactly: left.rounded()), let b = Int64(exactly: right.rounded()) else {
            return max(abs(left), abs(right)) * 2
        }
        switch symbol {
        case "|": return Double(a | b)
        case "#": return Double(a ^ b)
        default: return Double(a & b)
        }
    }

    /// `power(a, b)` and `pow(a, b)`, the function forms of `^`; and the length of what `repeat`,
    /// `lpad` and `rpad` make.
    private static func call(_ cursor: inout ParseTreeCursor, level: Int, text: UnsafeBufferPointer<UInt8>) throws -> ConstantExpression? {
        var name: [String] = []
        var arguments: [ConstantExpression?] = []
        try cursor.forEachKey { cursor, key in
            switch key {
            case "funcname":
                try cursor.expect(UInt8(ascii: "["))
                while try cursor.nextElement() {
                    try cursor.expect(UInt8(ascii: "{"))
                    guard case "String"? = try cursor.nextKey() else { throw ParseTreeCursor.Malformed() }
                    try cursor.forEachKey { cursor, _ in name.append(try cursor.string()) }
                    guard try cursor.nextKey() == nil else { throw ParseTreeCursor.Malformed() }
                }
            case "args":
                try cursor.expect(UInt8(ascii: "["))
                while try cursor.nextElement() { arguments.append(try read(&cursor, level: level + 1, text: text)) }
            default: try cursor.skipValue()
            }
        }
        guard name.count == 1 || (name.count == 2 && name[0] == "pg_catalog") else { return nil }
        let numbers = arguments.compactMap { $0?.number }
        switch name.last {
        case "abs" where arguments.count == 1 && numbers.count == 1: return .number(abs(numbers[0]))
        default: break
        }
        guard arguments.count >= 2, let second = arguments[1]?.number else { return nil }
        switch name.last {
        case "power", "pow":
            guard arguments.count == 2, let base = arguments[0]?.number else { return nil }
            return .number(pow(base, second))
        case "repeat":
            // A text of no known length has no known result.
            guard let textBytes = arguments[0]?.textBytes else { return nil }
            return .text(bytes: max(second, 0) * textBytes)
        case "lpad", "rpad":
            return .text(bytes: max(second, 0) * ConstantExpression.maxBytesPerCharacter)
        default:
            return nil
        }
    }
}

/// Points in time and lengths of intervals written as literals, in seconds, for counting the steps
/// of `generate_series` over timestamps. Only the ISO forms are read (`2024-01-31`,
/// `2024-01-31 12:00[:00[.5]]`, a `T` between, a zone suffix ignored) and intervals of
/// `number unit` pairs or `hh:mm:ss`; months count as 30 days and years as 365.25, which is close
/// enough to compare a count with a limit.
enum TimeLiteral {
    static func seconds(ofTimestamp text: String) -> Double? {
        let bytes = Array(text.trimmingSpaces.utf8)
        func number(_ range: Range<Int>) -> Int? {
            guard range.upperBound <= bytes.count, range.allSatisfy({ bytes[$0] >= 48 && bytes[$0] <= 57 }) else { return nil }
            return range.reduce(0) { $0 * 10 + Int(bytes[$1] - 48) }
        }
        guard bytes.count >= 10, bytes[4] == UInt8(ascii: "-"), bytes[7] == UInt8(ascii: "-"),
              let year = number(0..<4), let month = number(5..<7), let day = number(8..<10), (1...12).contains(month)
        else { return nil }
        // Days since 1970-01-01 (civil-from-days inverse, Howard Hinnant's algorithm).
        let shiftedYear = month <= 2 ? year - 1 : year
        let era = (shiftedYear >= 0 ? shiftedYear : shiftedYear - 399) / 400
        let yearOfEra = shiftedYear - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        var seconds = Double(era * 146_097 + dayOfEra - 719_468) * 86_400
        if bytes.count >= 16, bytes[10] == UInt8(ascii: " ") || bytes[10] == UInt8(ascii: "T"),
           let hour = number(11..<13), bytes[13] == UInt8(ascii: ":"), let minute = number(14..<16) {
            seconds += Double(hour * 3600 + minute * 60)
            if bytes.count >= 19, bytes[16] == UInt8(ascii: ":"), let second = number(17..<19) { seconds += Double(second) }
        }
        return seconds
    }

    private static let unitSeconds: [(prefixes: [String], seconds: Double)] = [
        (["microsecond", "us", "usec"], 1e-6), (["millisecond", "ms", "msec"], 1e-3),
        (["second", "sec", "s"], 1), (["minute", "min", "m"], 60), (["hour", "hr", "h"], 3600),
        (["day", "d"], 86_400), (["week", "w"], 604_800), (["month", "mon"], 2_592_000),
        (["year", "yr", "y"], 31_557_600), (["decade"], 315_576_000), (["century"], 3_155_760_000),
        (["millennium"], 31_557_600_000),
    ]

    static func seconds(ofInterval text: String) -> Double? {
        let words = text.lowercased().split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        guard !words.isEmpty else { return nil }
        // Parts of both signs ('1 day -86399.999 seconds') may leave any step, down to a millisecond:
        // no length then.
        var forward = 0.0
        var backward = 0.0
        func add(_ seconds: Double) {
            if seconds >= 0 { forward += seconds } else { backward -= seconds }
        }
        var index = 0
        while index < words.count {
            let word = words[index].hasPrefix("@") ? String(words[index].dropFirst()) : words[index]
            if word.isEmpty || word == "ago" { index += 1; continue }
            let clock = word.split(separator: ":", omittingEmptySubsequences: false)
            if clock.count >= 2 {
                var seconds = 0.0
                for (position, part) in clock.enumerated() {
                    guard let value = Double(part) else { return nil }
                    seconds += value * pow(60, Double(2 - position))
                }
                add(clock.first?.hasPrefix("-") == true ? -abs(seconds) : seconds)
                index += 1
                continue
            }
            // "3 days", or "3days".
            let digits = word.prefix { $0.isNumber || $0 == "." || $0 == "-" || $0 == "+" }
            guard let value = Double(digits) else { return nil }
            var unit = String(word.dropFirst(digits.count))
            if unit.isEmpty {
                guard index + 1 < words.count else { return nil }
                index += 1
                unit = words[index]
            }
            let singular = unit.hasSuffix("s") && unit.count > 2 ? String(unit.dropLast()) : unit
            guard let match = unitSeconds.first(where: { $0.prefixes.contains(singular) || $0.prefixes.contains(unit) }) else { return nil }
            add(value * match.seconds)
            index += 1
        }
        guard forward == 0 || backward == 0 else { return nil }
        return forward + backward
    }
}

extension ParseTreeCursor {
    /// The elements of the list under `field` among the current object's keys still to come,
    /// read ahead on a copy (0 where there is no such field).
    func elementsAhead(in field: StaticString) throws -> Int {
        var probe = self
        var count = 0
        while let key = try probe.nextKey() {
            guard field ~= key else { try probe.skipValue(); continue }
            try probe.expect(UInt8(ascii: "["))
            while try probe.nextElement() {
                count += 1
                try probe.skipValue()
            }
        }
        return count
    }

    /// The keys of the object at the cursor, read on a copy.
    func keysOfObject() throws -> Set<String> {
        var probe = self
        var keys: Set<String> = []
        try probe.forEachKey { probe, key in
            keys.insert(key.string)
            try probe.skipValue()
        }
        return keys
    }

    /// Reads an object's fields, handing each key to `body` with the cursor on its value.
    mutating func forEachKey(_ body: (inout ParseTreeCursor, Bytes) throws -> Void) throws {
        try expect(UInt8(ascii: "{"))
        while let key = try nextKey() { try body(&self, key) }
    }
}

extension String {
    /// Without the white space PostgreSQL's number input skips around a number: C's `isspace`, so
    /// `E'\f1000000000'::int` is 1000000000 to the server.
    var trimmingSpaces: String {
        func isSpace(_ character: Character) -> Bool {
            character == " " || character == "\t" || character == "\n" || character == "\r" || character == "\u{0B}" || character == "\u{0C}"
                || character == "\r\n"
        }
        var text = Substring(self)
        while let first = text.first, isSpace(first) { text = text.dropFirst() }
        while let last = text.last, isSpace(last) { text = text.dropLast() }
        return String(text)
    }
}

#if canImport(Glibc)
import Glibc
#endif

extension Analyzer {
    /// The value of the node at `cursor` (see `ConstantExpression.at`). The only way the analyzer
    /// reads a constant's value: it marks the analysis as depending on values, so that the decision
    /// is not shared between texts that differ only in their numbers (see `LiteralBlindKey`).
    mutating func constantValue(_ cursor: ParseTreeCursor) -> ConstantExpression? {
        analysis.readsConstantValues = true
        return ConstantExpression.at(cursor, text: text)
    }
}
