import MCP

/// The tools Palisade offers an agent, their JSON schemas and descriptions (written for the LLM
/// that reads them), and the checking of the arguments an agent sends.
public enum ToolCatalog {
    public enum Name: String, Sendable, CaseIterable {
        case query
        case listTables = "list_tables"
        case describeTable = "describe_table"
        case check
        case explain
    }

    /// The arguments of one call, checked against the tool's schema.
    public enum Arguments: Sendable, Equatable {
        case sql(String)
        case table(schema: String?, name: String)
        case none
    }

    public struct ArgumentError: Error, Equatable, CustomStringConvertible {
        public var description: String
    }

    /// The tools of a profile: `explain` only where the profile admits EXPLAIN.
    public static func tools(allowsExplain: Bool) -> [Tool] {
        Name.allCases.filter { $0 != .explain || allowsExplain }.map(tool)
    }

    static let sqlSchema: Value = .object([
        "type": "object",
        "properties": .object([
            "sql": .object([
                "type": "string",
                "description": "One PostgreSQL 15 SELECT statement (no trailing semicolon needed).",
            ]),
        ]),
        "required": .array(["sql"]),
        "additionalProperties": false,
    ])

    static let noArgumentsSchema: Value = .object([
        "type": "object", "properties": .object([:]), "additionalProperties": false,
    ])

    static let tableSchema: Value = .object([
        "type": "object",
        "properties": .object([
            "table": .object([
                "type": "string",
                "description": "A table or view name as list_tables returns it: name or schema.name.",
            ]),
        ]),
        "required": .array(["table"]),
        "additionalProperties": false,
    ])

    static func tool(_ name: Name) -> Tool {
        let readOnly = Tool.Annotations(readOnlyHint: true, openWorldHint: false)
        switch name {
        case .query:
            return Tool(
                name: name.rawValue, title: "Run a read-only SQL query",
                description: """
                Runs one read-only PostgreSQL SELECT and returns JSON: "columns" (name and type), "rows" (arrays of values \
                in column order), "row_count" and "request_id". Each call is its own read-only transaction, and row-level \
                security shows only your tenant's rows, so do not filter by tenant yourself. A firewall checks every query \
                first: writes, DDL, several statements, transaction control and some functions are refused, and answers \
                over this profile's row or byte limit end with an error, so aggregate or add LIMIT. A refusal is an error \
                naming the rule, the SQLSTATE and a hint: fix the query as the hint says and try again. Call list_tables \
                and describe_table first to learn the schema.
                """,
                inputSchema: sqlSchema, annotations: readOnly)
        case .listTables:
            return Tool(
                name: name.rawValue, title: "List the tables you may read",
                description: """
                Lists the tables and views this credential's profile may read, as JSON rows of schema, name, type \
                (BASE TABLE or VIEW) and comment. Use describe_table for their columns.
                """,
                inputSchema: noArgumentsSchema, annotations: readOnly)
        case .describeTable:
            return Tool(
                name: name.rawValue, title: "Describe a table",
                description: """
                Describes one table or view you may read: its columns (name, type, nullable, default, comment), primary \
                key, unique keys and foreign keys (which columns reference which table's columns), and its comment, as \
                JSON. Join on the foreign keys it shows.
                """,
                inputSchema: tableSchema, annotations: readOnly)
        case .check:
            return Tool(
                name: name.rawValue, title: "Check a query against the firewall",
                description: """
                Asks the firewall whether a SQL statement would be admitted, without running it. Returns JSON with \
                "allowed", the "rule" that decided, the "sqlstate", the "message" and a "hint" for a refused statement, \
                and the statement type, tables and functions found.
                """,
                inputSchema: sqlSchema, annotations: readOnly)
        case .explain:
            return Tool(
                name: name.rawValue, title: "Show a query's plan",
                description: """
                Shows PostgreSQL's plan for a SELECT without running it (EXPLAIN, never ANALYZE). Where tenants are kept \
                apart by row-level security the plan comes without costs or row estimates (COSTS OFF). Use it to see \
                whether a query will use an index or join as intended.
                """,
                inputSchema: sqlSchema, annotations: readOnly)
        }
    }

    /// The longest table argument: two identifiers of PostgreSQL's 63 bytes, quoted, and a dot.
    static let maxTableArgumentBytes = 131

    /// Checks `arguments` against the tool's schema: required keys present, of the right type, and
    /// no others (an agent's misspelled key should be told, not ignored).
    public static func arguments(for name: Name, _ arguments: [String: Value]?) throws(ArgumentError) -> Arguments {
        let given = arguments ?? [:]
        let expected: Set<String>
        switch name {
        case .query, .check, .explain: expected = ["sql"]
        case .describeTable: expected = ["table"]
        case .listTables: expected = []
        }
        if let unknown = given.keys.sorted().first(where: { !expected.contains($0) }) {
            throw ArgumentError(description: "\(name.rawValue) takes \(expected.isEmpty ? "no arguments" : expected.sorted().joined(separator: ", ")), not '\(unknown)'")
        }
        switch name {
        case .listTables:
            return .none
        case .query, .check, .explain:
            guard let value = given["sql"] else { throw ArgumentError(description: "\(name.rawValue) needs 'sql': one SELECT statement") }
            guard let sql = value.stringValue else { throw ArgumentError(description: "'sql' must be a string") }
            guard !sql.allSatisfy(\.isWhitespace) else { throw ArgumentError(description: "'sql' is empty: send one SELECT statement") }
            return .sql(sql)
        case .describeTable:
            guard let value = given["table"] else { throw ArgumentError(description: "describe_table needs 'table': a name from list_tables") }
            guard let table = value.stringValue else { throw ArgumentError(description: "'table' must be a string") }
            return try tableName(table)
        }
    }

    /// `name`, `schema.name`, either part in double quotes (`"Order Items"`, with `""` for a quote);
    /// unquoted parts are folded to lower case, as PostgreSQL folds them.
    static func tableName(_ text: String) throws(ArgumentError) -> Arguments {
        guard !text.isEmpty, text.utf8.count <= maxTableArgumentBytes else {
            throw ArgumentError(description: "'table' must be a table name of at most \(maxTableArgumentBytes) bytes")
        }
        var parts: [String] = []
        var current = ""
        var quoted = false
        var wasQuoted = false
        var characters = Array(text)[...]
        while let character = characters.popFirst() {
            if quoted {
                if character == "\"" {
                    if characters.first == "\"" { characters.removeFirst(); current.append("\"") } else { quoted = false }
                } else {
                    current.append(character)
                }
            } else if character == "\"" {
                guard current.isEmpty, !wasQuoted else { throw ArgumentError(description: "'table' has a quote inside a name: \(text)") }
                quoted = true
                wasQuoted = true
            } else if character == "." {
                guard !current.isEmpty else { throw ArgumentError(description: "'table' has an empty name part: \(text)") }
                parts.append(current)
                current = ""
                wasQuoted = false
            } else {
                guard !wasQuoted else { throw ArgumentError(description: "'table' has text after a quoted name: \(text)") }
                current.append(contentsOf: character.lowercased())
            }
        }
        guard !quoted else { throw ArgumentError(description: "'table' has an unterminated quote: \(text)") }
        guard !current.isEmpty else { throw ArgumentError(description: "'table' has an empty name part: \(text)") }
        parts.append(current)
        switch parts.count {
        case 1: return .table(schema: nil, name: parts[0])
        case 2: return .table(schema: parts[0], name: parts[1])
        default: throw ArgumentError(description: "'table' must be name or schema.name, got \(text)")
        }
    }
}
