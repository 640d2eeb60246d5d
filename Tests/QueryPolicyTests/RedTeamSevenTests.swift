import Testing
@testable import QueryPolicy

/// After the seventh red team: growth through the rows a query makes. A chain of WITH queries or
/// subqueries each doubling a column makes 2^depth copies; functions that encode or escape by a
/// constant factor, nested, multiply it. Every value is sized as copies of the query's inputs plus
/// the text's bytes (`ValueSize`), composed through every level.
@Suite struct RedTeamSevenTests {
    /// `WITH c0 AS (seed), c1 AS (step over c0), …` with `levels` steps.
    private func chain(_ seed: String, _ step: String, levels: Int = 30, final: String = "SELECT length(x) FROM c{n}") -> String {
        var ctes = ["c0 AS (\(seed))"]
        for level in 1...levels { ctes.append("c\(level) AS (\(step.replacingOccurrences(of: "{p}", with: "c\(level - 1)")))") }
        return "WITH " + ctes.joined(separator: ", ") + " " + final.replacingOccurrences(of: "{n}", with: "\(levels)")
    }

    private func nested(_ seed: String, _ step: String, levels: Int) -> String {
        var query = seed
        for level in 0..<levels { query = step.replacingOccurrences(of: "{q}", with: query).replacingOccurrences(of: "{a}", with: "s\(level)") }
        return "SELECT length(x) FROM (\(query)) z"
    }

    /// A short constant doubled 30 times is 8 GB of the text's making, and 2^30 nodes of the
    /// planner's expression (which passes its limit first, at 14 levels).
    @Test func aConstantDoubledThroughRowsTheQueryMakesIsRefused() {
        let seed = "SELECT 'xxxxxxxx'::text x"
        refused(chain(seed, "SELECT x || x AS x FROM {p}"), .valueGrowth)
        refused(chain(seed, "SELECT concat(x, x) AS x FROM {p}"), .valueGrowth)
        refused(chain(seed, "SELECT a1.x || a2.x AS x FROM {p} a1, {p} a2"), .valueGrowth)
        refused(chain("SELECT 'xxxxxxxx'::text x, 'y'::text y", "SELECT x || y AS x, x AS y FROM {p}"), .valueGrowth)
        refused(chain(seed, "SELECT *, 1 AS n FROM (SELECT x || x AS x FROM {p}) q"), .valueGrowth)
        refused(chain("VALUES ('xxxxxxxx'::text)", "SELECT column1 || column1 AS column1 FROM {p}", final: "SELECT 1 FROM c{n}"), .valueGrowth)
        refused(chain("SELECT 'xxxxxxxx'::text", "SELECT x || x FROM {p} AS t(x)", final: "SELECT 1 FROM c{n}"), .valueGrowth)
        refused(chain("SELECT ARRAY['xxxxxxxx'] x", "SELECT array_cat(x, x) AS x FROM {p}", final: "SELECT cardinality(x) FROM c{n}"), .valueGrowth)
        refused(chain("SELECT to_jsonb('xxxxxxxx'::text) x", "SELECT jsonb_build_array(x, x) AS x FROM {p}", final: "SELECT 1 FROM c{n}"), .valueGrowth)
        refused(nested(seed, "SELECT x || x AS x FROM ({q}) {a}", levels: 20), .valueGrowth)
        // Fewer levels over a longer constant: the bytes pass the policy's limit first.
        let long = "SELECT '" + String(repeating: "x", count: 400) + "'::text x"
        refused(chain(long, "SELECT x || x AS x FROM {p}", levels: 12), .argumentLimit)
        refused(chain(long, "SELECT concat(x, x) AS x FROM {p}", levels: 12), .argumentLimit)
        refused(chain(long, "SELECT a1.x || a2.x AS x FROM {p} a1, {p} a2", levels: 12), .argumentLimit)
        refused(chain("SELECT to_jsonb('xxxxxxxx'::text) x", "SELECT to_jsonb(ARRAY[x, x]) AS x FROM {p}", final: "SELECT 1 FROM c{n}"), .argumentLimit)
        // Scalar subqueries: a 5,000-byte constant doubled 8 times (1.3 MB).
        let longer = "SELECT '" + String(repeating: "x", count: 5000) + "'::text x"
        refused(nested(longer, "SELECT (SELECT x || x FROM ({q}) {a}) AS x", levels: 8), .argumentLimit)
        admitted(nested(longer, "SELECT (SELECT x || x FROM ({q}) {a}) AS x", levels: 7))
    }

    /// The planner puts each WITH query's or subquery's expression in place of its column: a
    /// column used twice a level doubles the expression, whatever its type. 21 levels of `x AND x`
    /// over `true` took 1.7 GB of the backend's memory in 3 s (PostgreSQL 15).
    @Test func anExpressionDoubledThroughRowsTheQueryMakesIsRefused() {
        refused(chain("SELECT true x", "SELECT x AND x AS x FROM {p}", levels: 30, final: "SELECT x FROM c{n}"), .valueGrowth)
        refused(chain("SELECT 1 AS x", "SELECT x + x AS x FROM {p}", levels: 30, final: "SELECT x FROM c{n}"), .valueGrowth)
        refused(chain("SELECT 1 AS x", "SELECT x = x AS x FROM {p}", levels: 30, final: "SELECT x FROM c{n}"), .valueGrowth)
        admitted(chain("SELECT true x", "SELECT x AND x AS x FROM {p}", levels: 12, final: "SELECT x FROM c{n}"))
        // A long IN list is the text's own size.
        admitted("SELECT id FROM orders WHERE id IN (" + (0..<20000).map { String($0 % 10) }.joined(separator: ",") + ")")
    }

    /// A table's column doubled 2^k times is as bad: 128 copies are refused, 64 admitted.
    @Test func aTablesColumnDoubledThroughRowsTheQueryMakesIsRefused() {
        let seed = "SELECT name AS x FROM users"
        refused(chain(seed, "SELECT x || x AS x FROM {p}"), .valueGrowth)
        refused(chain(seed, "SELECT x || x AS x FROM {p}", levels: 7), .valueGrowth)
        admitted(chain(seed, "SELECT x || x AS x FROM {p}", levels: 6))
        refused(nested(seed, "SELECT x || x AS x FROM ({q}) {a}", levels: 8), .valueGrowth)
        refused(chain("SELECT * FROM users", "SELECT name || name AS name FROM {p}", levels: 8, final: "SELECT 1 FROM c{n}"), .valueGrowth)
        refused(chain("SELECT to_jsonb(name) AS x FROM users", "SELECT jsonb_build_array(x, x) AS x FROM {p}", final: "SELECT 1 FROM c{n}"), .valueGrowth)
        refused(chain(seed, "SELECT encode(x::bytea, 'hex') AS x FROM {p}", levels: 10), .valueGrowth)
        refused(chain(seed, "SELECT quote_literal(x) AS x FROM {p}", levels: 10), .valueGrowth)
        refused(chain(seed, "SELECT to_json(x)::text AS x FROM {p}", levels: 5), .valueGrowth)
        refused(chain(seed, "SELECT ARRAY[x, x]::text AS x FROM {p}", levels: 5), .valueGrowth)
        // What an aggregate or a recursive query gathers is an input of its own.
        refused(chain("SELECT string_agg(name, ',') AS x FROM users", "SELECT x || x AS x FROM {p}", levels: 8), .valueGrowth)
        refused("WITH RECURSIVE r(n, s) AS (SELECT 1, 'x'::text UNION ALL SELECT n + 1, s || 'y' FROM r WHERE n < 1000), "
                + "a AS (SELECT s || s AS s FROM r), b AS (SELECT s || s AS s FROM a), c AS (SELECT s || s AS s FROM b), d AS (SELECT s || s AS s FROM c), "
                + "e AS (SELECT s || s AS s FROM d), f AS (SELECT s || s AS s FROM e), g AS (SELECT s || s AS s FROM f) SELECT length(s) FROM g", .valueGrowth)
        // A function Palisade does not size, over rows the query makes, counts at the limit (fail closed).
        refused(chain(seed, "SELECT jsonb_pretty(x::jsonb) AS x FROM {p}", levels: 2), .valueGrowth)
    }

    /// Constant-factor growth nested in one expression, without rows: 16 MB from four encodes.
    @Test func nestedEncodingIsSized() {
        refused("SELECT length(encode(encode(encode(encode(repeat('x', 1000000)::bytea, 'hex')::bytea, 'hex')::bytea, 'hex')::bytea, 'hex'))", .argumentLimit)
        refused("SELECT length(" + String(repeating: "encode(", count: 10) + "repeat('x', 16000)::bytea"
                + String(repeating: ", 'hex')::bytea", count: 9) + ", 'hex'))", .argumentLimit)
        refused("SELECT length(" + String(repeating: "quote_literal(", count: 12) + "repeat('x', 16000)" + String(repeating: ")", count: 13), .argumentLimit)
        refused("SELECT length(" + String(repeating: "to_json(", count: 8) + "repeat('x', 16000)" + String(repeating: ")::text", count: 8) + ")", .argumentLimit)
        refused("SELECT length(array_to_string(ARRAY(SELECT g FROM generate_series(1, 1000) g), repeat('-', 100000)))", .valueGrowth)
        refused("SELECT length(array_to_string(tags, repeat('-', 100000))) FROM (SELECT ARRAY[name] AS tags FROM users) s", .valueGrowth)
        admitted("SELECT encode(repeat('x', 100000)::bytea, 'hex')")
        admitted("SELECT array_to_string(ARRAY['a', 'b'], repeat('-', 1000))")
    }

    @Test func ordinaryPipelinesStayAdmitted() {
        admitted("WITH recent AS (SELECT id, customer_id, amount FROM orders WHERE created_at > now() - interval '30 days'), totals AS (SELECT customer_id, sum(amount) AS total FROM recent GROUP BY 1) SELECT customer_id, total FROM totals ORDER BY total DESC LIMIT 10")
        admitted("WITH n AS (SELECT id, first_name || ' ' || last_name AS full_name, email FROM users), c AS (SELECT id, full_name || ' <' || email || '>' AS contact FROM n) SELECT contact FROM c")
        admitted("WITH n AS (SELECT concat_ws(' ', first_name, last_name) AS full_name, email FROM users) SELECT concat_ws(', ', full_name, email) FROM n")
        admitted("WITH x AS (SELECT id, name, email FROM users) SELECT json_build_object('id', id, 'name', name, 'email', email) FROM x")
        admitted("WITH x AS (SELECT id, name FROM users) SELECT json_build_object('data', (SELECT json_agg(json_build_object('id', id, 'name', name)) FROM x))")
        admitted("WITH x AS (SELECT name FROM users) SELECT encode(sha256(name::bytea), 'hex') FROM x")
        admitted("SELECT to_json(t) FROM users t")
        admitted("WITH t AS (SELECT * FROM users) SELECT to_json(t) FROM t")
        admitted("SELECT quote_ident(relname) FROM pg_class")
        admitted("WITH r AS (SELECT relname FROM pg_class) SELECT quote_ident(relname) FROM r")
        admitted("WITH x AS (SELECT name, email FROM users) SELECT string_agg(format('%s <%s>', name, email), ', ') FROM x")
        admitted("SELECT json_build_object(" + (0..<100).map { "'c\($0)', c\($0)" }.joined(separator: ", ") + ") FROM users")
        admitted(chain("SELECT 'xxxxxxxx'::text x", "SELECT x || x AS x FROM {p}", levels: 10))
        admitted("WITH t AS (SELECT array_agg(name ORDER BY name) AS names FROM users) SELECT array_to_string(names, ', ') FROM t")
    }

    /// 200 chained WITH queries of 10 columns each: read in one pass per level.
    @Test func aLongChainIsReadInLinearTime() {
        var ctes = ["c0 AS (SELECT " + (0..<10).map { "name AS x\($0)" }.joined(separator: ", ") + " FROM users)"]
        for level in 1..<200 {
            ctes.append("c\(level) AS (SELECT " + (0..<10).map { "x\($0) || '-' AS x\($0)" }.joined(separator: ", ") + " FROM c\(level - 1))")
        }
        admitted("WITH " + ctes.joined(separator: ", ") + " SELECT * FROM c199")
    }
}
