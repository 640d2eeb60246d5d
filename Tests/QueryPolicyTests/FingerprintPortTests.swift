import Testing
@testable import QueryPolicy

/// ParseTreeFingerprint must give exactly libpg_query's pg_query_fingerprint, or nil.
@Suite struct FingerprintPortTests {
    /// What the port and libpg_query say about one text.
    struct Comparison {
        var port: UInt64?
        /// pg_query_fingerprint through the public API (a second, independent parse).
        var expected: UInt64?
        /// pg_query_fingerprint_node on the tree the JSON came from.
        var sameParse: UInt64?
        var selectOnly: Bool
        /// The JSON holds an Integer node written as `{}`: 0 or negative, the JSON cannot say
        /// which, the one reason the port declines.
        var hasUndecidableInteger: Bool
        /// The port's token stream, for the failure message.
        var tokens: String
    }

    static func compare(_ sql: String) -> Comparison? {
        try? PgQuery.withParseTree(sql) { parsed in
            let tokens = ParseTreeFingerprint.tokenStream(json: parsed.json) { String(decoding: $0, as: UTF8.self) } ?? "nil"
            let json = String(decoding: parsed.json, as: UTF8.self)
            // Every statement in the text is a SELECT (or VALUES, or a set operation of them).
            let selectOnly = json.components(separatedBy: "{\"stmt\":").dropFirst().allSatisfy { $0.hasPrefix("{\"SelectStmt\"") }
            return Comparison(port: ParseTreeFingerprint.fingerprint(json: parsed.json), expected: PgQuery.fingerprint(sql),
                              sameParse: parsed.fingerprint, selectOnly: selectOnly,
                              hasUndecidableInteger: json.contains("{\"Integer\":{}}"), tokens: tokens)
        }
    }

    /// Checks one text: the port must give libpg_query's value, or nil only where the JSON cannot
    /// tell (and never where `requireValue`, by default for texts of SELECTs only). Returns
    /// whether the port gave a value, nil if the text does not parse.
    @discardableResult
    static func check(_ sql: String, id: String, requireValue: Bool? = nil, sourceLocation: SourceLocation = #_sourceLocation) -> Bool? {
        guard let comparison = compare(sql) else {
            // Nothing to fingerprint, but texts that must be ported must parse.
            #expect(requireValue != true, "\(id): does not parse", sourceLocation: sourceLocation)
            return nil
        }
        #expect(comparison.expected == comparison.sameParse, "\(id): libpg_query disagrees with itself", sourceLocation: sourceLocation)
        guard let port = comparison.port else {
            // A query may be declined only where the JSON cannot tell (an array type's bounds, `x::text[]`).
            #expect(!(requireValue ?? (comparison.selectOnly && !comparison.hasUndecidableInteger)), "\(id): the port declined: \(sql)",
                    sourceLocation: sourceLocation)
            #expect(comparison.hasUndecidableInteger, "\(id): declined for no known reason: \(sql)", sourceLocation: sourceLocation)
            return false
        }
        #expect(port == comparison.expected, "\(id): \(sql)\nport tokens: \(comparison.tokens)", sourceLocation: sourceLocation)
        return true
    }

    static func checkCorpus(_ cases: [CorpusCase], sourceLocation: SourceLocation = #_sourceLocation) -> (compared: Int, declined: [String]) {
        var declined: [String] = []
        var compared = 0
        for corpusCase in cases {
            guard let ported = check(corpusCase.sql, id: corpusCase.id, sourceLocation: sourceLocation) else { continue }
            compared += 1
            if !ported { declined.append(corpusCase.id) }
        }
        return (compared, declined)
    }

    @Test("every shared corpus case")
    func sharedCorpus() {
        let (compared, declined) = Self.checkCorpus(SharedCorpusTests.cases)
        print("shared corpus: \(compared) compared, \(declined.count) declined: \(declined)")
    }

    @Test("every own corpus case")
    func ownCorpus() {
        let (compared, declined) = Self.checkCorpus(OwnCorpusTests.cases)
        #expect(compared > 300)
        print("own corpus: \(compared) compared, \(declined.count) declined: \(declined)")
    }

    @Test("varied queries", arguments: queries)
    func variedQuery(_ sql: String) {
        Self.check(sql, id: "query", requireValue: true)
    }

    /// Array bounds (`int[]` is -1) and negative integers in DDL: libpg_query's JSON writes any
    /// Integer node that is not positive as `{}`, so the port returns nil and the caller falls
    /// back to libpg_query's own fingerprint. A cast of a constant (`'{}'::int[]`) is not
    /// fingerprinted at all, so its bounds do not matter.
    @Test("texts the JSON does not determine are declined", arguments: declined)
    func declinedQuery(_ sql: String) throws {
        let comparison = try #require(Self.compare(sql))
        #expect(comparison.port == nil)
        #expect(comparison.hasUndecidableInteger)
    }

    static let declined = [
        "SELECT a::int[] FROM t",
        "SELECT ARRAY[1,2]::bigint[] FROM t",
        "SELECT ARRAY[[1,2],[3,4]], ARRAY[]::int[] FROM t",
        "SELECT CAST(a AS text ARRAY) FROM t",
        "SELECT a::int[0] FROM t",
        "ALTER TABLE t ALTER COLUMN a SET STATISTICS -1",
        "CREATE SEQUENCE s2 INCREMENT BY -1",
        "CREATE TABLE t (a int[])",
    ]

    /// A long VALUES list and a deep call chain whose sorted argument lists reach past depth 100.
    @Test("large trees")
    func largeTrees() {
        let rows = (1...300).map { "(nextval($\($0)), \($0), 'x\($0 % 7)', $\($0 + 1)::int)" }.joined(separator: ", ")
        Self.check("INSERT INTO tbl VALUES " + rows, id: "insert rows", requireValue: true)
        var call = "doc"
        for index in 1...40 { call = "jsonb_set(\(call), ARRAY[$\(index)], $\(index + 1), true)" }
        Self.check("UPDATE tbl SET doc = " + call, id: "jsonb_set chain", requireValue: true)
        Self.check("SELECT " + call + " FROM tbl", id: "jsonb_set select", requireValue: true)
        // Set operations nest through SelectStmt *larg, a field libpg_query does not check
        // for depth: the chain is written past depth 100.
        let unions = (1...150).map { "SELECT \($0) AS n, c\($0 % 5) FROM t\($0 % 3)" }.joined(separator: " UNION ALL ")
        Self.check(unions, id: "union chain", requireValue: true)
        let intersections = (1...120).map { "(SELECT a FROM t WHERE b = \($0)" }.joined(separator: " INTERSECT ") + String(repeating: ")", count: 120)
        Self.check(intersections, id: "intersect nesting", requireValue: true)
        let wide = (1...500).map { "c\($0 % 37)" }.joined(separator: ", ")
        Self.check("SELECT \(wide) FROM t WHERE a IN (\(wide))", id: "wide", requireValue: true)
    }

    @Test("the benchmark queries are ported")
    func benchmarkQueries() throws {
        for sql in Self.benchmarkQueries {
            let comparison = try #require(Self.compare(sql))
            let port = try #require(comparison.port)
            #expect(port == comparison.expected)
        }
    }

    /// libpg_query stops at depth 100; the port must stop at exactly the same place.
    @Test("nesting around and beyond libpg_query's depth limit", arguments: [30, 45, 46, 47, 48, 49, 50, 60, 99, 100, 101, 150, 300])
    func deepNesting(depth: Int) {
        let shapes: [(String, String, String)] = [
            ("(", "a", ")"), ("abs(", "a", ")"), ("(SELECT ", "a", ")"), ("NOT ", "a", ""), ("ARRAY[", "a", "]"),
            ("a + ", "b", ""), ("coalesce(a, ", "b", ")"), ("CASE WHEN a THEN ", "b", " END"), ("(SELECT a FROM t WHERE b = ", "c", ")"),
            ("ROW(a, ", "b", ")"), ("a::text || ", "b", ""), ("(VALUES (", "a", "))"), ("- ", "a", ""),
        ]
        for (open, middle, close) in shapes {
            let sql = "SELECT " + String(repeating: open, count: depth) + middle + String(repeating: close, count: depth)
            Self.check(sql, id: "\(open)×\(depth)", requireValue: true)
        }
        // A list with exactly one null element (DISTINCT) just at and past the limit.
        let distinct = "SELECT " + String(repeating: "(SELECT DISTINCT ", count: depth / 3) + "a" + String(repeating: ")", count: depth / 3)
        Self.check(distinct, id: "distinct×\(depth / 3)", requireValue: true)
    }

    static let benchmarkQueries = PolicyBenchmarkHooks.queries.map(\.sql)

    static let queries: [String] = benchmarkQueries + [
        // Plain selects, constants of every kind, parameters.
        "SELECT 1",
        "SELECT",
        "",
        "SELECT true, false, NULL, 1.5, -3, 0, 1e10, B'1010', X'FF', 'text', E'\\n\\t', $1, $2::int",
        "SELECT a FROM t WHERE b = $1 AND c = $2 OR d = $1",
        "SELECT * FROM t WHERE a = -1 AND b = -1.5 AND c = - d",
        "SELECT a, b, a FROM t",
        "SELECT a AS x, b AS y FROM t",
        "SELECT t.* , s.a FROM t, s",
        // Quoted identifiers, unicode, escapes the JSON writes as \\u00XX.
        "SELECT \"Weird \"\"Name\"\"\", \"ünïcødé\", 'ß😀' FROM \"Schema\".\"Täble\"",
        "SELECT a FROM t WHERE b < c AND d > e AND f <> g AND h <= i AND j >= k AND l & m = 0",
        "SELECT \"a\\b\", \"tab\there\" FROM t",
        "SELECT * FROM U&\"d\\0061t\\+000061\"",
        // Relation names with digits, temporary relations, schemas, catalogs.
        "SELECT * FROM orders_2024_01 JOIN t1 ON true JOIN a1b22c333 ON true JOIN \"9x99\" ON true",
        "SELECT * FROM db.sch.tbl, sch.tbl2",
        "SELECT * FROM ONLY parent",
        // Casts, array bounds, collations.
        "SELECT a::int, b::text, c::varchar(20), CAST(d AS numeric(10,2)), '1'::int, $1::text FROM t",
        "SELECT a::int[5], b::text[3][4] FROM t",
        "SELECT '{1,2}'::int[], $1::bigint[], '{}'::text[] FROM t",
        "SELECT '1'::int::text, $1::int::text, ('{}'::int[])[1] FROM t",
        "SELECT a COLLATE \"C\", b::timestamptz AT TIME ZONE 'UTC' FROM t",
        "SELECT interval '1 day', x::interval day to second, timestamp '2020-01-01' FROM t",
        // IN lists with duplicates, ANY, ALL, BETWEEN, LIKE, IS tests.
        "SELECT * FROM t WHERE a IN (1, 2, 2, 3, 1) AND b NOT IN ('x', 'y', 'x')",
        "SELECT * FROM t WHERE a IN (b, c, b, d) AND e IN (1)",
        "SELECT * FROM t WHERE a = ANY(ARRAY[1,2]) AND b = ALL(c) AND d <> SOME(SELECT 1)",
        "SELECT * FROM t WHERE a BETWEEN 1 AND 2 AND b NOT BETWEEN SYMMETRIC c AND d",
        "SELECT * FROM t WHERE a LIKE 'x%' AND b ILIKE c AND d NOT LIKE e ESCAPE '!' AND f SIMILAR TO 'g'",
        "SELECT * FROM t WHERE a IS NULL AND b IS NOT NULL AND c IS TRUE AND d IS NOT FALSE AND e IS UNKNOWN",
        "SELECT * FROM t WHERE a IS DISTINCT FROM b AND c IS NOT DISTINCT FROM d AND NULLIF(e, f) IS NULL",
        "SELECT * FROM t WHERE (a, b) = (1, 2) AND (c, d) < (e, f) AND ROW(g, h) IN ((1, 2), (3, 4))",
        // CASE, COALESCE, GREATEST, functions, aggregates, FILTER, ORDER BY in aggregates.
        "SELECT CASE WHEN a > 1 THEN 'x' WHEN a > 0 THEN 'y' ELSE 'z' END, CASE b WHEN 1 THEN c END FROM t",
        "SELECT coalesce(a, b, 0), greatest(a, b), least(c, d), nullif(e, f) FROM t",
        "SELECT f(a, b), f(b, a), g(a => 1, b => 2), pg_catalog.lower(c), now(), current_date, current_user FROM t",
        "SELECT count(*), count(DISTINCT a), sum(b) FILTER (WHERE c > 0), string_agg(d, ',' ORDER BY e DESC) FROM t",
        "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY a), array_agg(b ORDER BY b NULLS FIRST) FROM t",
        "SELECT variadic_fn(VARIADIC ARRAY[1,2]), extract(epoch from a), substring(b from 1 for 2), trim(both 'x' from c), position('a' in d), overlay(e placing 'x' from 1) FROM t",
        // Window functions.
        "SELECT row_number() OVER (PARTITION BY a ORDER BY b), sum(c) OVER w, rank() OVER () FROM t WINDOW w AS (ORDER BY d ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)",
        "SELECT avg(a) OVER (ORDER BY b RANGE BETWEEN INTERVAL '1 day' PRECEDING AND UNBOUNDED FOLLOWING EXCLUDE TIES) FROM t",
        // Joins, LATERAL, subqueries, table functions.
        "SELECT * FROM a JOIN b ON a.id = b.id LEFT JOIN c USING (id) RIGHT OUTER JOIN d ON true FULL JOIN e ON false CROSS JOIN f NATURAL JOIN g",
        "SELECT * FROM t AS x(a, b) JOIN u USING (k) AS j, LATERAL (SELECT x.a) AS l",
        "SELECT * FROM t, LATERAL unnest(t.arr) WITH ORDINALITY AS u(v, n), generate_series(1, 10) g",
        "SELECT * FROM ROWS FROM (f(1), g(2)) AS r",
        "SELECT * FROM t TABLESAMPLE SYSTEM (10) REPEATABLE (1)",
        "SELECT (SELECT max(a) FROM u), EXISTS (SELECT 1 FROM v WHERE v.a = t.a), ARRAY(SELECT b FROM w) FROM t",
        "SELECT * FROM (SELECT a, b FROM t) s WHERE s.a IN (SELECT a FROM u)",
        "SELECT * FROM xmltable('/r' PASSING x COLUMNS a int PATH 'a') AS xt",
        // CTEs, recursive CTEs, set operations.
        "WITH a AS (SELECT 1 AS x), b AS MATERIALIZED (SELECT x FROM a) SELECT * FROM b",
        "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 10) SEARCH DEPTH FIRST BY n SET ord SELECT * FROM r",
        "SELECT a FROM t UNION SELECT a FROM u UNION ALL SELECT a FROM v",
        "SELECT a FROM t INTERSECT SELECT a FROM u EXCEPT ALL SELECT a FROM v ORDER BY 1 LIMIT 5",
        "(SELECT 1) UNION (SELECT 1)",
        // VALUES.
        "VALUES (1, 'a'), (2, 'b'), (1, 'a')",
        "SELECT * FROM (VALUES (1, a), (2, b), (1, a)) AS v(x, y)",
        // GROUP BY, HAVING, ORDER BY, LIMIT, DISTINCT, locking.
        "SELECT a, count(*) FROM t GROUP BY a HAVING count(*) > 1 ORDER BY a DESC NULLS LAST, 2 USING < LIMIT 10 OFFSET 5",
        "SELECT a, b FROM t GROUP BY GROUPING SETS ((a), (b), ()), ROLLUP (a, b), CUBE (b)",
        "SELECT a FROM t GROUP BY DISTINCT a, b",
        "SELECT DISTINCT a FROM t",
        "SELECT DISTINCT ON (a, b) a, b, c FROM t ORDER BY a, b",
        "SELECT a FROM t ORDER BY a FETCH FIRST 3 ROWS WITH TIES",
        "SELECT a FROM t ORDER BY a FETCH FIRST 3 ROWS ONLY",
        "SELECT a FROM t FOR UPDATE OF t SKIP LOCKED",
        "SELECT a FROM t FOR NO KEY UPDATE NOWAIT FOR SHARE OF u",
        "SELECT a INTO new_table FROM t",
        // Arrays, subscripts, field access, JSON operators.
        "SELECT a[1], a[1:2], a[:3], (b).f, (c).*, d -> 'k' ->> 'j', e #> '{a,b}', f @> '{}' FROM t",
        "SELECT ARRAY[[1,2],[3,4]], ARRAY[a, b], ARRAY(SELECT 1) FROM t",
        "SELECT OPERATOR(pg_catalog.+)(a, b), a OPERATOR(public.===) b FROM t",
        "SELECT NOT a, a AND b OR c AND NOT d FROM t",
        // DML and DDL (denied statements are fingerprinted too).
        "INSERT INTO t (a, b) VALUES (1, DEFAULT), (2, 3) ON CONFLICT (a) DO UPDATE SET b = excluded.b RETURNING a AS z, *",
        "INSERT INTO t SELECT * FROM u ON CONFLICT DO NOTHING",
        "INSERT INTO t DEFAULT VALUES",
        "UPDATE t SET a = 1, b = b + 1, (c, d) = (SELECT 1, 2) FROM u WHERE t.id = u.id RETURNING t.a",
        "DELETE FROM t USING u WHERE t.a = u.a AND t.b = $1 RETURNING *",
        "MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN UPDATE SET a = s.a WHEN NOT MATCHED THEN INSERT (id, a) VALUES (s.id, s.a)",
        "CREATE TABLE t (id serial PRIMARY KEY, a text NOT NULL DEFAULT 'x', b int REFERENCES u (id) ON DELETE CASCADE, CHECK (b > 0))",
        "CREATE TEMP TABLE tt (a int)",
        "CREATE UNLOGGED TABLE IF NOT EXISTS log_2024 (a int) WITH (fillfactor = 70)",
        "CREATE TABLE t2 AS SELECT * FROM t WITH NO DATA",
        "CREATE VIEW v AS SELECT a FROM t WHERE b",
        "CREATE MATERIALIZED VIEW mv AS SELECT 1",
        "CREATE INDEX CONCURRENTLY idx ON t USING btree (a DESC, lower(b)) WHERE c",
        "CREATE UNIQUE INDEX ON t (a) INCLUDE (b)",
        "ALTER TABLE t ADD COLUMN c int, DROP COLUMN d, ALTER COLUMN e TYPE text USING e::text",
        "ALTER TABLE t ALTER COLUMN a SET STATISTICS 100",
        "DROP TABLE IF EXISTS t, u CASCADE",
        "TRUNCATE t RESTART IDENTITY",
        "CREATE SEQUENCE s INCREMENT BY 2 START 10",
        "CREATE FUNCTION f(a int, b text DEFAULT 'x') RETURNS int LANGUAGE sql AS 'SELECT 1'",
        "CREATE FUNCTION g() RETURNS trigger AS $$ BEGIN RETURN NEW; END $$ LANGUAGE plpgsql",
        "DO $$ BEGIN PERFORM 1; END $$",
        "CREATE FOREIGN TABLE ft (a int) SERVER s OPTIONS (table_name 'x')",
        "CREATE TYPE mood AS ENUM ('sad', 'ok')",
        "CREATE DOMAIN d AS int CHECK (VALUE > 0)",
        "CREATE POLICY p ON t USING (tenant = current_setting('app.tenant'))",
        "CREATE TRIGGER trg BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION g()",
        "CREATE ROLE r LOGIN PASSWORD 'x'",
        "GRANT SELECT, INSERT ON t TO r",
        "REVOKE ALL ON SCHEMA s FROM PUBLIC",
        "COMMENT ON TABLE t IS 'quote \" and backslash \\\\ '",
        "COPY t (a, b) FROM STDIN WITH (FORMAT csv)",
        "COPY (SELECT 1) TO '/tmp/x'",
        "VACUUM (ANALYZE, VERBOSE) t",
        "ANALYZE t",
        "EXPLAIN (ANALYZE, BUFFERS) SELECT 1",
        "EXPLAIN SELECT * FROM t WHERE a = 1",
        "SET search_path = a, b",
        "SET LOCAL statement_timeout = 0",
        "RESET ALL",
        "SHOW work_mem",
        "SELECT set_config('a', 'b', false)",
        "BEGIN ISOLATION LEVEL SERIALIZABLE READ ONLY",
        "COMMIT",
        "ROLLBACK TO SAVEPOINT s1",
        "SAVEPOINT s1",
        "PREPARE p1 (int) AS SELECT $1",
        "EXECUTE p1 (1)",
        "DEALLOCATE p1",
        "DECLARE c1 CURSOR WITH HOLD FOR SELECT 1",
        "FETCH ALL FROM c1",
        "FETCH 5 FROM c1",
        "FETCH BACKWARD ALL FROM c1",
        "MOVE -2 IN c1",
        "CLOSE c1",
        "LISTEN chan",
        "NOTIFY chan, 'payload'",
        "UNLISTEN *",
        "LOCK TABLE t IN ACCESS EXCLUSIVE MODE",
        "REFRESH MATERIALIZED VIEW CONCURRENTLY mv",
        "CLUSTER t USING idx",
        "REINDEX TABLE t",
        "DISCARD ALL",
        "LOAD 'x'",
        "CHECKPOINT",
        "ALTER SYSTEM SET work_mem = '1MB'",
        "CREATE EXTENSION IF NOT EXISTS pgcrypto",
        "SELECT 1; SELECT 2; UPDATE t SET a = 1",
        "SELECT 1;;",
        // Misc expressions.
        "SELECT current_timestamp(3), localtime, session_user, current_schema, CURRENT_ROLE FROM t",
        "SELECT xmlelement(name foo, xmlattributes(a AS b), 'c'), xmlforest(a, b), xmlserialize(content x AS text) FROM t",
        "SELECT a IS DOCUMENT, b IS NORMALIZED, c IS NFC NORMALIZED FROM t",
        "SELECT GROUPING(a, b), a FROM t GROUP BY a, b",
        "SELECT $1, $2, $10 FROM t WHERE a = $1",
        "SELECT 1 FROM t WHERE a = 1 OR a = 1 OR a = 2",
        "SELECT * FROM t WHERE a = 'it''s' AND b = $$dollar$$ AND c = U&'\\0041'",
        "SELECT 9223372036854775807, 2147483648, 123456789012345678901234567890 FROM t",
        "SELECT a FROM t1 WHERE a > 10 AND b IN (SELECT c FROM t2 WHERE d IN (SELECT e FROM t3))",
        // From libpg_query's own fingerprint tests.
        "SELECT INTERVAL (0) $2",
        "-- nothing",
        "SELECT * FROM t_20210301_x UNION SELECT * FROM t_1",
        "CREATE FOREIGN TABLE ft1 () SERVER no_server",
        "CREATE TEMPORARY TABLE my_temp_table (test_id integer NOT NULL) ON COMMIT DROP",
        "CREATE TEMPORARY TABLE my_temp_table AS SELECT 1",
        "SELECT * FROM x WHERE y IN ( $1::uuid, $2::uuid, $3::uuid )",
        "CREATE VIEW view_a (a, b) AS WITH RECURSIVE view_a (a, b) AS (SELECT * FROM a(1)) SELECT \"a\", \"b\" FROM \"view_a\"",
        "CREATE PROCEDURE insert_data(a integer, b integer) LANGUAGE SQL AS $$ INSERT INTO tbl VALUES (a); $$",
        "CALL insert_data(1, 2)",
    ]
}
