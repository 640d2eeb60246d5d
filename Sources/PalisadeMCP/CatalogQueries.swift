import Encoding
import QueryPolicy
import TenantIdentity

/// The catalog queries behind list_tables and describe_table, and the JSON made of their rows.
///
/// They are ordinary queries to the firewall: the profile's engine decides them like any other
/// (a profile whose catalog access does not cover them refuses them), they run with the tenant's
/// claims, and they see only the profile's readable schemas and what the server role may read
/// (information_schema.tables lists only tables with a privilege).
public enum CatalogQueries {
    /// The profile's readable schemas as an SQL list of literals (from the policy file, never from an agent).
    static func schemaList(_ schemas: Set<String>) -> String {
        schemas.sorted().map { "'" + $0.replacingOccurrences(of: "'", with: "''") + "'" }.joined(separator: ", ")
    }

    /// Columns: schema, name, type (BASE TABLE, VIEW, …), comment.
    public static func tables(readableSchemas: Set<String>) -> String {
        """
        SELECT t.table_schema AS schema, t.table_name AS name, t.table_type AS type, \
        pg_catalog.obj_description(c.oid, 'pg_class') AS comment \
        FROM information_schema.tables t \
        JOIN pg_catalog.pg_namespace n ON n.nspname = t.table_schema \
        JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = t.table_name \
        WHERE t.table_schema IN (\(schemaList(readableSchemas))) \
        ORDER BY 1, 2
        """
    }

    /// $1 the schema (NULL: any readable one), $2 the table. Columns: schema, table, column, type,
    /// nullable, default, column comment, table comment.
    public static func columns(readableSchemas: Set<String>) -> String {
        """
        SELECT n.nspname, c.relname, a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod), NOT a.attnotnull, \
        pg_catalog.pg_get_expr(d.adbin, d.adrelid), pg_catalog.col_description(c.oid, a.attnum), \
        pg_catalog.obj_description(c.oid, 'pg_class') \
        FROM pg_catalog.pg_class c \
        JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
        JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped \
        LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum \
        WHERE c.relname = $2 AND ($1::text IS NULL OR n.nspname = $1) AND n.nspname IN (\(schemaList(readableSchemas))) \
        AND EXISTS (SELECT 1 FROM information_schema.tables t WHERE t.table_schema = n.nspname AND t.table_name = c.relname) \
        ORDER BY n.nspname, a.attnum
        """
    }

    /// $1 the schema, $2 the table. Columns: constraint type (p, u, f), constraint name, column,
    /// and for a foreign key the referenced schema, table and column (matched by position). From
    /// pg_constraint: information_schema shows constraints only to a table's owner or writers.
    public static let keys = """
        SELECT con.contype, con.conname, a.attname, rn.nspname, rc.relname, ra.attname \
        FROM pg_catalog.pg_constraint con \
        JOIN pg_catalog.pg_class c ON c.oid = con.conrelid \
        JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
        CROSS JOIN LATERAL unnest(con.conkey, con.confkey) WITH ORDINALITY AS k(attnum, refnum, position) \
        JOIN pg_catalog.pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum \
        LEFT JOIN pg_catalog.pg_class rc ON rc.oid = con.confrelid \
        LEFT JOIN pg_catalog.pg_namespace rn ON rn.oid = rc.relnamespace \
        LEFT JOIN pg_catalog.pg_attribute ra ON ra.attrelid = con.confrelid AND ra.attnum = k.refnum \
        WHERE n.nspname = $1 AND c.relname = $2 AND con.contype IN ('p', 'u', 'f') \
        ORDER BY con.conname, k.position
        """

    /// The schema an unqualified name means: the first of the search path that has it, as the
    /// server resolves it; else the first in name order.
    public static func resolveSchema(of columnRows: [[String?]], searchPath: [String]) -> String? {
        let schemas = Set(columnRows.compactMap { $0.first ?? nil })
        return searchPath.first(where: schemas.contains) ?? schemas.sorted().first
    }

    /// describe_table's answer, or nil when no readable table has the name.
    public static func describeDocument(columns: [[String?]], keys: [[String?]], searchPath: [String], requestID: String) -> String? {
        guard let schema = resolveSchema(of: columns, searchPath: searchPath) else { return nil }
        let rows = columns.filter { $0.count >= 8 && $0[0] == schema }
        guard let first = rows.first else { return nil }
        func quoted(_ text: String?) -> String { text.map(JSONText.quoted) ?? "null" }
        var out = "{\"schema\":\(quoted(schema)),\"table\":\(quoted(first[1])),\"comment\":\(quoted(first[7])),\"columns\":["
        out += rows.map { row in
            "{\"name\":\(quoted(row[2])),\"type\":\(quoted(row[3])),\"nullable\":\(row[4] == "t" ? "true" : "false")," +
                "\"default\":\(quoted(row[5])),\"comment\":\(quoted(row[6]))}"
        }.joined(separator: ",")
        // Key rows come grouped by constraint, columns in key order.
        var primaryKey: [String] = []
        var unique: [(name: String, columns: [String])] = []
        var foreign: [(name: String, columns: [String], schema: String?, table: String?, referenced: [String])] = []
        for row in keys where row.count >= 6 {
            guard let type = row[0], let name = row[1], let column = row[2] else { continue }
            switch type {
            case "p":
                primaryKey.append(column)
            case "u":
                if unique.last?.name == name { unique[unique.count - 1].columns.append(column) } else { unique.append((name, [column])) }
            case "f":
                if foreign.last?.name == name {
                    foreign[foreign.count - 1].columns.append(column)
                    if let referenced = row[5] { foreign[foreign.count - 1].referenced.append(referenced) }
                } else {
                    foreign.append((name, [column], row[3], row[4], row[5].map { [$0] } ?? []))
                }
            default:
                break
            }
        }
        func list(_ names: [String]) -> String { "[" + names.map(JSONText.quoted).joined(separator: ",") + "]" }
        out += "],\"primary_key\":\(list(primaryKey)),\"unique\":[" + unique.map { list($0.columns) }.joined(separator: ",") + "]"
        out += ",\"foreign_keys\":[" + foreign.map { key in
            "{\"columns\":\(list(key.columns)),\"references\":{\"schema\":\(quoted(key.schema)),\"table\":\(quoted(key.table)),\"columns\":\(list(key.referenced))}}"
        }.joined(separator: ",") + "]"
        out += ",\"request_id\":\(quoted(requestID))}"
        return out
    }

    /// check's answer: the decision as the engine made it.
    public static func checkDocument(_ decision: Decision, requestID: String) -> String {
        func quoted(_ text: String) -> String { JSONText.quoted(text) }
        func list(_ names: [String]) -> String { "[" + names.map(quoted).joined(separator: ",") + "]" }
        var out = "{\"allowed\":\(decision.isAllowed),\"rule\":\(quoted(decision.rule.rawValue)),\"sqlstate\":\(quoted(decision.sqlstate))"
        out += ",\"message\":\(quoted(decision.message)),\"hint\":\(decision.hint.map(quoted) ?? "null")"
        out += ",\"statement_type\":\(quoted(decision.statementType)),\"tables\":\(list(decision.tables)),\"functions\":\(list(decision.functions))"
        out += ",\"planned_before_running\":\(decision.needsCostEstimate),\"request_id\":\(quoted(requestID))}"
        return out
    }
}
