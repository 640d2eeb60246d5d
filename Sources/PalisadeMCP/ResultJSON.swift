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
        var out = "{\"columns\":["
        for (index, column) in columns.enumerated() {
            if index > 0 { out += "," }
            out += "{\"name\":" + JSONText.quoted(column.name) + ",\"type\":" + JSONText.quoted(column.type) + "}"
        }
        out += "],\"rows\":["
        for (rowIndex, row) in rows.enumerated() {
            if rowIndex > 0 { out += "," }
            out += "["
            for (index, column) in columns.enumerated() {
                if index > 0 { out += "," }
                out += value(index < row.count ? row[index] : nil, type: column.type)
            }
            out += "]"
        }
        out += "],\"row_count\":\(rows.count),\"request_id\":" + JSONText.quoted(requestID) + "}"
        return out
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
