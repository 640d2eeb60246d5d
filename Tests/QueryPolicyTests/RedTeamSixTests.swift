import Testing
@testable import QueryPolicy

/// After the fifth red team: growth no single call shows. Aggregates that keep every input row's
/// value multiply what the text makes a row by rows Palisade cannot bound; a recursive UNION ALL
/// may double a value every step.
@Suite struct RedTeamSixTests {
    /// string_agg(repeat('x', 1000000), '') over 1,000 rows built 1 GB; array_agg of a char(262144)
    /// over 600 rows 325 MB. Over 1 KiB of text a row is refused, whatever the rows.
    @Test func anAccumulatingAggregateTakesLittleTextARow() {
        refused("SELECT length(string_agg(repeat('x', 1000000), '')) FROM generate_series(1, 1000)")
        refused("SELECT length(string_agg(repeat('x', 2000), '')) FROM orders")
        refused("SELECT cardinality(array_agg('a'::char(262144))) FROM generate_series(1, 600)")
        refused("SELECT length(json_agg(repeat('x', 100000))::text) FROM generate_series(1, 1000)")
        refused("SELECT length(jsonb_agg(lpad('x', 100000))::text) FROM generate_series(1, 1000)")
        refused("SELECT length(jsonb_object_agg(g, repeat('x', 100000))::text) FROM generate_series(1, 1000) g")
        refused("SELECT length(xmlagg(xmlelement(name a, repeat('x', 100000)))::text) FROM generate_series(1, 1000)")
        refused("SELECT length(string_agg('x', repeat('y', 5000))) FROM generate_series(1, 1000)")
        refused("SELECT cardinality(array_agg(repeat('x', 100000)) OVER (ORDER BY g)) FROM generate_series(1, 1000) g")
        refused("SELECT length(string_agg('" + String(repeating: "x", count: 2000) + "', '')) FROM generate_series(1, 1000)")
        refused("SELECT cardinality(array_agg(array_fill(1, ARRAY[100000]))) FROM generate_series(1, 1000)")
        // A column of rows the query makes carries their text and what their calls make.
        refused("SELECT length(string_agg(x, '')) FROM (SELECT repeat('x', 100000) AS x) s, generate_series(1, 1000)")
        refused("WITH c AS (SELECT 'a'::char(262144) AS v) SELECT length(string_agg(v, '')) FROM c, generate_series(1, 600)")
        refused("WITH c AS (SELECT '" + String(repeating: "x", count: 2000) + "' AS v) SELECT length(string_agg(v, '')) FROM c, generate_series(1, 1000)")
        refused("SELECT length(string_agg(v, '')) FROM (VALUES ('" + String(repeating: "x", count: 2000) + "')) t(v), generate_series(1, 1000)")
    }

    /// A table's column counts as one byte: aggregating the data with delimiters, labels and keys stays admitted.
    @Test func aggregatesOfATablesColumnsStayAdmitted() {
        admitted("SELECT string_agg(name, ', ') FROM users")
        admitted("SELECT array_agg(id ORDER BY id) FROM orders")
        admitted("SELECT json_agg(t) FROM orders t")
        admitted("SELECT jsonb_agg(row_to_json(t)) FROM orders t")
        admitted("SELECT string_agg(format('%s: %s', name, email), E'\\n') FROM users")
        admitted("SELECT string_agg(format('%-30s | %-30s | %10s', name, email, id), E'\\n') FROM users")
        admitted("SELECT string_agg(lpad(name, 20), ',') FROM users")
        admitted("SELECT string_agg(DISTINCT name, ', ' ORDER BY name) FROM users")
        admitted("WITH x AS (SELECT name, email FROM users) SELECT json_agg(json_build_object('customer_name', name, 'email_address', email, 'kind', 'user')) FROM x")
        admitted("WITH x AS (SELECT lpad(name, 20) AS n FROM users) SELECT string_agg(n, ',') FROM x")
        admitted("SELECT string_agg(to_char(d, 'YYYY-MM-DD'), ', ') FROM generate_series('2024-01-01'::date, '2024-12-31'::date, interval '1 day') d")
        admitted("SELECT status, array_agg(id) OVER (PARTITION BY status) FROM orders")
        admitted("SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY name) FROM users")
    }

    /// `s || s` a step is 2^n bytes (420 MB at 28 steps).
    @Test func aRecursiveStepMayNotDoubleAValue() {
        let growth = Rule.recursiveGrowth
        for step in ["s || s", "concat(s, s)", "repeat(s, 2)", "s || upper(s)", "format('%s%s', s, s)", "replace(s, 'x', 'xx')",
                     "regexp_replace(s, '(.)', '\\1\\1', 'g')", "encode(s::bytea, 'hex')", "quote_literal(s)", "to_json(s)::text",
                     "(ARRAY[s])::text", "lpad(s, length(s) * 2, 'x')", "COALESCE(s || s, '')", "(SELECT s || s)", "r.s || r.s"] {
            refused("WITH RECURSIVE r(n, s) AS (SELECT 1, 'x'::text UNION ALL SELECT n + 1, \(step) FROM r WHERE n < 40) SELECT max(length(s)) FROM r", growth)
        }
        refused("WITH RECURSIVE r(n, a) AS (SELECT 1, ARRAY[1] UNION ALL SELECT n + 1, array_cat(a, a) FROM r WHERE n < 40) SELECT max(cardinality(a)) FROM r", growth)
        // Column names from the non-recursive term, an alias, two columns that feed each other (φ^n), a subquery.
        refused("WITH RECURSIVE r AS (SELECT 1 AS n, 'x'::text AS s UNION ALL SELECT n + 1, s || s FROM r WHERE n < 40) SELECT max(length(s)) FROM r", growth)
        refused("WITH RECURSIVE r(n, s) AS (SELECT 1, 'x'::text UNION ALL SELECT n + 1, q.s || q.s FROM r AS q WHERE n < 40) SELECT max(length(s)) FROM r", growth)
        refused("WITH RECURSIVE r(n, s, t) AS (SELECT 1, 'x'::text, 'x'::text UNION ALL SELECT n + 1, s || t, s FROM r WHERE n < 40) SELECT max(length(s)) FROM r", growth)
        refused("WITH RECURSIVE r(n, s) AS (SELECT 1, 'x'::text UNION ALL SELECT q.n + 1, q.s FROM (SELECT n, s || s AS s FROM r) q WHERE q.n < 40) SELECT max(length(s)) FROM r", growth)
    }

    /// Linear growth stays admitted: tree paths, depths, Fibonacci.
    @Test func aRecursiveStepMayAddToAValue() {
        admitted("WITH RECURSIVE t(id, path) AS (SELECT id, name::text FROM categories WHERE parent_id IS NULL UNION ALL SELECT c.id, t.path || '/' || c.name FROM categories c JOIN t ON c.parent_id = t.id) SELECT * FROM t")
        admitted("WITH RECURSIVE t(id, path) AS (SELECT id, ARRAY[id] FROM categories WHERE parent_id IS NULL UNION ALL SELECT c.id, t.path || ARRAY[c.id] FROM categories c JOIN t ON c.parent_id = t.id) SELECT * FROM t")
        admitted("WITH RECURSIVE t(node, path) AS (SELECT id, ARRAY[id] FROM categories WHERE parent_id IS NULL UNION ALL SELECT c.id, path || ARRAY[id] FROM categories c JOIN t ON c.parent_id = t.node) SELECT * FROM t")
        // t.id is a table's value every step, so it does not grow.
        admitted("WITH RECURSIVE t(id, path) AS (SELECT id, ARRAY[id] FROM categories WHERE parent_id IS NULL UNION ALL SELECT c.id, t.path || t.id FROM categories c JOIN t ON c.parent_id = t.id) SELECT * FROM t")
        admitted("WITH RECURSIVE t(id, path, depth) AS (SELECT id, ARRAY[id], 1 FROM categories WHERE parent_id IS NULL UNION ALL SELECT c.id, path || c.id, depth + 1 FROM categories c JOIN t ON c.parent_id = t.id WHERE depth < 10) SELECT * FROM t")
        admitted("WITH RECURSIVE t AS (SELECT id, name, 1 AS depth, name::text AS path FROM categories WHERE parent_id IS NULL UNION ALL SELECT c.id, c.name, t.depth + 1, t.path || ' > ' || c.name FROM categories c JOIN t ON c.parent_id = t.id) SELECT * FROM t")
        admitted("WITH RECURSIVE t AS (SELECT id, CAST(name AS text) AS path FROM categories WHERE parent_id IS NULL UNION ALL SELECT c.id, CAST(t.path || ' > ' || c.name AS varchar(1000)) FROM categories c JOIN t ON c.parent_id = t.id) SELECT * FROM t")
        admitted("WITH RECURSIVE fib(a, b) AS (SELECT 0::numeric, 1::numeric UNION ALL SELECT b, a + b FROM fib) SELECT a FROM fib LIMIT 50")
        admitted("WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t WHERE n < 100) SELECT sum(n) FROM t")
        admitted("WITH RECURSIVE t(d) AS (SELECT '2024-01-01'::date UNION ALL SELECT d + 1 FROM t WHERE d < '2024-12-31') SELECT * FROM t")
        admitted("WITH RECURSIVE t(n, s) AS (SELECT 1, 'a'::text UNION ALL SELECT n + 1, CASE WHEN n % 2 = 0 THEN s || 'a' ELSE s END FROM t WHERE n < 10) SELECT * FROM t")
    }
}
