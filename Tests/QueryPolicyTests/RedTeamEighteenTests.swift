import Testing
@testable import QueryPolicy

/// After the eighteenth round: a pattern that takes the query's own text through a call beside a
/// column, and parameters that rows PostgreSQL keeps in memory (or a call multiplies) took as
/// small. Each held 150–610 MB of a backend.
@Suite struct RedTeamEighteenTests {
    private func decide(_ sql: String) -> Decision { Profiles.readonly.evaluate(sql) }

    /// Every call in a pattern the walker does not follow must read a column or a parameter itself.
    @Test func aCallBesideAColumnDoesNotMakeThePatternTheData() {
        for pattern in ["concat_ws(name, current_query())", "rtrim(current_query(), region)", "concat_ws($1, current_query())",
                        "concat_ws(name, (SELECT current_query()))", "concat_ws(name, current_query()::text)",
                        "concat_ws(name, version())"] {
            #expect(decide(#"SELECT count(name) FROM customers WHERE 'x' ~ \#(pattern) --(\w{1,200}){1,100}"#).rule == .argumentLimit, "\(pattern)")
        }
        // The data's own text, through calls that each read it, stays admitted.
        #expect(decide("SELECT count(name) FROM customers WHERE 'x' ~ concat_ws(name, lower(region))").isAllowed)
        #expect(decide("SELECT count(*) FROM customers WHERE name ~ btrim(region)").isAllowed)
    }

    /// ARRAY(subquery), hashed IN and NOT IN, INTERSECT, EXCEPT and WITH RECURSIVE keep every row
    /// in memory: a parameter in the query's values is held at each Bind, as for aggregates.
    @Test func parametersOfRowsKeptInMemoryAreHeldAtBind() {
        for sql in ["SELECT cardinality(ARRAY(SELECT $1::text FROM generate_series(1, 300)))",
                    "SELECT 1 WHERE 'a' NOT IN (SELECT $1::text || g FROM generate_series(1, 300) g)",
                    "SELECT count(*) FROM (SELECT $1::text || g FROM generate_series(1, 300) g EXCEPT SELECT 'a') s",
                    "SELECT count(*) FROM (SELECT $1::text || g FROM generate_series(1, 300) g INTERSECT SELECT $1::text || g FROM generate_series(1, 300) g) s",
                    "WITH p AS (SELECT $1::text AS v) SELECT cardinality(ARRAY(SELECT p.v || g FROM p, generate_series(1, 300) g))",
                    "SELECT cardinality(ARRAY(SELECT $1::int[] || g FROM generate_series(1, 300) g))"] {
            let decision = decide(sql)
            #expect(!decision.isAllowed || decision.boundParameters == [1], "\(sql) \(decision.boundParameters)")
        }
        // Parameters that only choose rows, or that unnest into numbers, stay free.
        #expect(decide("SELECT * FROM orders WHERE id IN (SELECT id FROM orders WHERE region = $1)").boundParameters == [])
        #expect(decide("SELECT * FROM orders WHERE id IN (SELECT unnest($1::int[]))").boundParameters == [])
        #expect(decide("SELECT ARRAY(SELECT name FROM customers WHERE region = $1 ORDER BY name)").boundParameters == [])
        // Without such rows a value's parameter is the client's, sent once.
        #expect(decide("SELECT $1::text AS label, name FROM customers").boundParameters == [])
    }

    /// A parameter whose size a call multiplies is held at each Bind and counts as much.
    @Test func parametersACallMultipliesAreHeldAtBind() {
        for sql in ["SELECT replace($1, 'x', $2)", "SELECT length(regexp_replace($1, 'x', $2, 'g'))", "SELECT repeat($1, 3)"] {
            let decision = decide(sql)
            #expect(decision.isAllowed, "\(sql)")
            #expect(!decision.boundParameters.isEmpty && decision.boundParameters.allSatisfy { $0 >= 1 }, "\(sql)")
        }
        #expect(decide("SELECT replace($1, 'x', $2)").boundParameters == [1, 2])
        #expect(decide("SELECT replace(name, 'x', 'y') FROM customers WHERE region = $1").boundParameters == [])
    }
}

/// The second pass: values the planner copies into every place they are read, rows of one key a
/// hash join cannot spill, a separator repeated between elements, the session's own texts as a
/// pattern, and parameters referred to many times. 600 MB to 2.4 GB of a backend each.
@Suite struct RedTeamEighteenSecondPassTests {
    private func decide(_ sql: String, _ engine: PolicyEngine = Profiles.readonly) -> Decision { engine.evaluate(sql) }

    @Test func whatColumnReferencesStandForIsCountedTogether() {
        let many = Array(repeating: "x <> ''", count: 40).joined(separator: " AND ")
        #expect(decide("SELECT count(*) FROM (SELECT repeat('x', 1000000) AS x) s WHERE \(many)").rule == .argumentLimit)
        let columns = Array(repeating: "w.v", count: 40).joined(separator: ", ")
        #expect(decide("WITH w AS MATERIALIZED (SELECT repeat('x', 1000000) AS v) SELECT \(columns) FROM w").rule == .argumentLimit)
        // A short constant read in many places stays admitted.
        let few = Array(repeating: "label <> ''", count: 40).joined(separator: " AND ")
        #expect(decide("SELECT count(*) FROM (SELECT 'shipped' AS label) s WHERE \(few)").isAllowed)
    }

    @Test func aJoinOfLargeRowsTheTextMakesIsHeldAsAHashedSetIs() {
        #expect(decide("SELECT count(*) FROM (SELECT repeat('x', 1000000) AS v, 1 AS k FROM generate_series(1, 1000)) a JOIN (SELECT 1 AS k) b ON a.k = b.k").rule == .argumentLimit)
        #expect(decide("SELECT count(*) FROM (SELECT $1::text AS v, 1 AS k FROM generate_series(1, 1000)) a JOIN (SELECT 1 AS k) b ON a.k = b.k").boundParameters == [1])
        // Joining a parameter's elements, each once, keeps what the Bind holds.
        #expect(decide("SELECT p.name FROM products p JOIN unnest($1::text[]) AS u(sku) ON u.sku = p.sku").boundParameters == [])
        #expect(decide("SELECT * FROM orders WHERE region IN (SELECT unnest($1::text[]))").boundParameters == [])
        #expect(decide("SELECT o.id FROM orders o JOIN customers c ON c.id = o.customer_id, generate_series(1, 3) g").isAllowed)
    }

    @Test func separatorsAndRecursiveQueriesHoldTheirParameters() {
        #expect(decide("SELECT array_to_string(ARRAY(SELECT 'a' FROM generate_series(1, 300)), $1)").boundParameters == [1])
        #expect(decide("WITH RECURSIVE r(n, v) AS (SELECT 1, $1::text UNION ALL SELECT n + 1, v FROM r WHERE n < 10) SELECT count(*) FROM r").boundParameters == [1])
    }

    @Test func theSessionsOwnTextsAreNotThePattern() {
        #expect(decide(#"SELECT 1 FROM pg_cursors WHERE 'x' ~ statement --(\w{1,200}){1,100}"#, Profiles.analyst).rule == .argumentLimit)
        #expect(decide(#"SELECT 1 FROM pg_prepared_statements WHERE 'x' ~ statement"#, Profiles.analyst).rule == .argumentLimit)
    }

    /// A star stands for its columns, each read as a reference is; a parameter a subquery's column
    /// holds is copied wherever the column is read (third pass: 2.9 GB and 975 MB).
    @Test func starsAndColumnsOfAParameterCountAsTheirReferences() {
        let stars = Array(repeating: "*", count: 40).joined(separator: ", ")
        #expect(decide("SELECT \(stars) FROM (SELECT repeat('x', 1000000) AS x) s").rule == .argumentLimit)
        let qualified = Array(repeating: "s.*", count: 40).joined(separator: ", ")
        #expect(decide("SELECT \(qualified) FROM (SELECT repeat('x', 1000000) AS x) s").rule == .argumentLimit)
        #expect(decide("SELECT *, * FROM customers").isAllowed)
        let lengths = Array(repeating: "length(x)", count: 50).joined(separator: ", ")
        #expect((decide("SELECT \(lengths) FROM (SELECT $1::text AS x) s").repeatedParameters[1] ?? 0) > 50)
        // One row of plain values beside a table is not a sink (a join's hash table of it is one row).
        #expect(decide("SELECT c.name, s.q FROM (SELECT $1::text AS q) s CROSS JOIN customers c").boundParameters == [])
        #expect(decide("SELECT c.name, s.q FROM (SELECT $1::text AS q FROM generate_series(1, 1000)) s CROSS JOIN customers c").boundParameters == [1])
    }

    /// Balanced UNION ALL arms (a left-deep chain meets the nesting limit first).
    static func unionArms(_ count: Int) -> String {
        if count == 1 { return "SELECT name AS a FROM customers" }
        return "(" + unionArms(count / 2) + " UNION ALL " + unionArms(count - count / 2) + ")"
    }

    /// A condition over rows made of UNION ALL arms is copied into each arm (fourth pass: 900 arms of
    /// a 1 MB constant took 997 MB).
    @Test func aConditionOverSetOperationArmsCountsOnceAnArm() {
        #expect(decide("SELECT count(*) FROM \(Self.unionArms(64)) s WHERE a = repeat('x', 1000000)").rule == .argumentLimit)
        #expect(decide("SELECT count(*) FROM \(Self.unionArms(4)) s WHERE a = repeat('x', 1000000)").isAllowed)
        #expect(decide("SELECT count(*) FROM \(Self.unionArms(64)) s WHERE a = 'acme'").isAllowed)
        #expect((decide("SELECT count(*) FROM \(Self.unionArms(64)) s WHERE a = $1").repeatedParameters[1] ?? 0) >= 64)
    }

    /// Ranges and rows cost the server kilobytes each when an array or range_agg of them is put out
    /// as text; a window's running value kept by a hashed set grows with the square of the rows
    /// (fifth pass: 3.3 GB and 1.68 GB from about 100 bytes of text).
    @Test func convertedElementsAndWindowRowsKeptByHashedSets() {
        #expect(decide("SELECT length(range_agg(int4range(g * 2, g * 2 + 1))::text) FROM generate_series(1, 1000000) g").rule == .argumentLimit)
        #expect(decide("SELECT array_agg(row(g))::text FROM generate_series(1, 1000000) g").rule == .argumentLimit)
        #expect(decide("SELECT ARRAY(SELECT int4range(g, g + 1) FROM generate_series(1, 300000) g)").rule == .argumentLimit)
        #expect(decide("SELECT range_agg(int4range(g, g + 1)) FROM generate_series(1, 100) g").isAllowed)
        #expect(decide("SELECT 1 WHERE 'a' NOT IN (SELECT string_agg(g::text, '') OVER (ORDER BY g) FROM generate_series(1, 25000) g)").rule == .argumentLimit)
        #expect(decide("SELECT count(*) FROM (SELECT string_agg(g::text, '') OVER (ORDER BY g) FROM generate_series(1, 25000) g EXCEPT SELECT 'a') s").rule == .argumentLimit)
        #expect(decide("SELECT string_agg(name, ', ') OVER (ORDER BY id) FROM customers").isAllowed)
    }

    @Test func parametersReferredToManyTimesAreCounted() {
        let decision = decide("SELECT count(*) FROM customers WHERE name = $1 OR name = $1 OR region = $2")
        #expect(decision.repeatedParameters == [1: 2])
        #expect(decide("SELECT name FROM customers WHERE region = $1 AND name = $2").repeatedParameters.isEmpty)
    }
}
