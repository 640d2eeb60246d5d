import Encoding
import TenantIdentity

/// An answer's rows as JSON for an agent: the server's text values, typed where JSON has the type.
///
/// Booleans become `true`/`false`, numbers stay numbers (their exact digits: a numeric is never
/// rounded through a double), json and jsonb are embedded as JSON, NULL is `null`, and everything
/// else (dates, arrays, NaN, Infinity, …) is a string exactly as PostgreSQL prints it.
public enum ResultJSON {
    public struct Column: Sendable, Equatable {
        public var name: String
        /// The type's name in pg_type (int4, text, jsonb, …).
        public var type: String

        public init(name: String, type: String) {
            self.name = name
            self.type = type
        }
    }

    static let numberTypes: Set<String> = ["int2", "int4", "int8", "oid", "float4", "float8", "numeric"]
    static let embeddedJSONTypes: Set<String> = ["json", "jsonb"]

    /// One value as a JSON fragment.
    public static func value(_ text: String?, type: String) -> String {
        guard let text else { return "null" }
        if type == "bool" {
            switch text {
            case "t": return "true"
            case "f": return "false"
            default: break
            }
        }
        if numberTypes.contains(type), isJSONNumber(text) { return text }
        // The server checked json and jsonb values on input, so their text is JSON as it stands.
        if embeddedJSONTypes.contains(type) { return text }
        return JSONText.quoted(text)
    }

    /// `{"columns":[{"name":…,"type":…}],"rows":[[…]],"row_count":N,"request_id":…}`: rows as
    /// arrays in column order, since a query may return two columns of one name.
    public static func document(columns: [Column], rows: [[String?]], requestID: String) -> String {
        guard case .document(let text) = document(columns: columns, rows: rows, requestID: requestID, maxBytes: .max) else {
            preconditionFailure("a document without a limit is never over it")
        }
        return text
    }

    /// A document, or how far it got before the bytes it is sent as went past `maxBytes`.
    public enum Bounded: Equatable, Sendable {
        case document(String)
        /// `rows` whole rows fit; with the value that went over, the answer came to `bytes`.
        case tooLarge(rows: Int, bytes: Int)
    }

    /// `document`, counting the bytes the agent is sent as it is built (`sentBytes`) and stopping
    /// at the first value past `maxBytes`: so max_result_bytes bounds the answer, not only the
    /// server's DataRows. Sixteenth red team: 8 MB of rows of \x01 became a 56 MB answer, each byte
    /// `\u0001` in the rows and `\\u0001` once the document is a JSON string in the reply (~140 MB
    /// of memory per call); now the document is never held past the budget.
    public static func document(columns: [Column], rows: [[String?]], requestID: String, maxBytes: Int) -> Bounded {
        var out = ""
        var sent = 0
        func append(_ fragment: String) {
            out += fragment
            sent += sentBytes(fragment)
        }
        append("{\"columns\":[")
        for (index, column) in columns.enumerated() {
            if index > 0 { append(",") }
            append("{\"name\":" + JSONText.quoted(column.name) + ",\"type\":" + JSONText.quoted(column.type) + "}")
        }
        append("],\"rows\":[")
        if sent > maxBytes { return .tooLarge(rows: 0, bytes: sent) }
        for (rowIndex, row) in rows.enumerated() {
            if rowIndex > 0 { append(",") }
            append("[")
            for (index, column) in columns.enumerated() {
                if index > 0 { append(",") }
                let text = index < row.count ? row[index] : nil
                // Counted before it is built: one value of 8 MB of \x01 is 48 MB of JSON.
                let size = sentBytes(ofValue: text, type: column.type)
                if sent + size > maxBytes { return .tooLarge(rows: rowIndex, bytes: sent + size) }
                out += value(text, type: column.type)
                sent += size
            }
            append("]")
        }
        append("],\"row_count\":\(rows.count),\"request_id\":" + JSONText.quoted(requestID) + "}")
        if sent > maxBytes { return .tooLarge(rows: rows.count, bytes: sent) }
        return .document(out)
    }

    /// `sentBytes(value(text, type: type))`, without building the value.
    static func sentBytes(ofValue text: String?, type: String) -> Int {
        guard let text else { return 4 }
        if type == "bool", text == "t" || text == "f" { return text == "t" ? 4 : 5 }
        if numberTypes.contains(type), isJSONNumber(text) { return text.utf8.count }
        if embeddedJSONTypes.contains(type) { return sentBytes(text) }
        // JSONText.quoted's escapes, each escaped again in the reply: `"` is `\"` then `\\\"`,
        // a newline `\n` then `\\n`, \x01 `\u0001` then `\\u0001`; the two quotes are `\"` each.
        var count = 4
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"): count += 4
            case 0x08, 0x09, 0x0A, 0x0C, 0x0D: count += 3
            case 0..<0x20: count += 7
            default: count += 1
            }
        }
        return count
    }

    /// The bytes `text` takes once it is a JSON string in the tool call's reply, as the MCP SDK's
    /// JSONEncoder writes it (`.withoutEscapingSlashes`): `"` and `\` are escaped, as are control
    /// characters (`\n` and its kind in two bytes, the rest as `\u00XX`); everything else is its UTF-8.
    public static func sentBytes(_ text: String) -> Int {
        var count = 0
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), 0x08, 0x09, 0x0A, 0x0C, 0x0D: count += 2
            case 0..<0x20: count += 6
            default: count += 1
            }
        }
        return count
    }

    /// RFC 8259's number grammar: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
    public static func isJSONNumber(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        var index = 0
        func digits() -> Int {
            let start = index
            while index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) { index += 1 }
            return index - start
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "-") { index += 1 }
        guard index < bytes.count else { return false }
        if bytes[index] == UInt8(ascii: "0") {
            index += 1
        } else if digits() == 0 {
            return false
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            guard digits() > 0 else { return false }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
            guard digits() > 0 else { return false }
        }
        return index == bytes.count
    }
}
