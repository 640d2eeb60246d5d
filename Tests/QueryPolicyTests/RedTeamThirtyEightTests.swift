import Testing
@testable import QueryPolicy

/// Thirty-eighth red team: what PostgreSQL's parser expands before its own limits apply. `(expr).*`
/// copies expr once for each field (nested, 113 bytes took 869 MB), and a GROUP BY's grouping sets
/// are built in full before the server counts them (2,000 CUBEs, 60 KB, took 1.49 GB).
/// Readonly refuses `sql` by one of `rules`, and analyst refuses it too.
func expectRefused(_ sql: String, by rules: Set<Rule>, sourceLocation: SourceLocation = #_sourceLocation) {
    let decision = Profiles.readonly.evaluate(sql)
    #expect(rules.contains(decision.rule), "\(sql.prefix(120)): \(decision.rule)", sourceLocation: sourceLocation)
    #expect(!Profiles.analyst.evaluate(sql).isAllowed, "\(sql.prefix(120))", sourceLocation: sourceLocation)
}

@Suite struct RedTeamThirtyEightTests {
    private func decide(_ sql: String, _ engine: PolicyEngine = Profiles.readonly) -> Decision { engine.evaluate(sql) }

    /// `body` over a cursor on the first node of the text's parse tree that starts with `prefix`.
    static func atFirst<R>(_ prefix: String, in sql: String, _ body: (ParseTreeCursor) throws -> R) throws -> R {
        try PgQuery.withParseTree(sql) { parsed in
            let offset = try #require(parsed.json.firstRange(of: Array(prefix.utf8))).lowerBound
            var cursor = ParseTreeCursor(parsed.json)
            cursor.offset = offset
            return try body(cursor)
        }
    }

    static func row(_ items: Int, _ item: String = "1") -> String { "ROW(" + Array(repeating: item, count: items).joined(separator: ",") + ")" }

    /// `(ROW(…)).*` of n fields inside itself `levels` times.
    static func nestedExpansion(fields: Int, levels: Int, item: String = "1") -> String {
        var expression = "(\(row(fields, item))).*"
        for _ in 1..<levels { expression = "(ROW(\(expression))).*" }
        return expression
    }

    @Test func nestedRowExpansionsMultiplyTheirCopies() {
        for sql in ["SELECT \(Self.nestedExpansion(fields: 40, levels: 3))",
                    "SELECT count(*) FROM (SELECT \(Self.nestedExpansion(fields: 40, levels: 3))) s",
                    "SELECT \(Self.nestedExpansion(fields: 100, levels: 2))",
                    "SELECT \(Self.nestedExpansion(fields: 20, levels: 3, item: "repeat('x', 12000)"))",
                    "SELECT 1 WHERE ROW(\(Self.nestedExpansion(fields: 40, levels: 3))) IS NOT NULL",
                    "VALUES ((\(Self.nestedExpansion(fields: 40, levels: 3))))",
                    "SELECT ((((((\(Array(repeating: "1", count: 40).joined(separator: ",")))).*, 0)).*, 0)).*",
                    "SELECT (r).* FROM (SELECT ROW(\(Self.nestedExpansion(fields: 40, levels: 2))) r) s",
                    "WITH c AS (SELECT ROW(\(Self.nestedExpansion(fields: 40, levels: 2))) r) SELECT (r).* FROM c",
                    "SELECT ((ROW(\(Self.nestedExpansion(fields: 40, levels: 2)))).f1).*"] {
            let decision = decide(sql)
            #expect(!decision.isAllowed, "\(sql.prefix(120))")
            // Copies of a 1 MB repeat(…) count as its allocations too.
            #expect(decision.rule == .valueGrowth || decision.rule == .argumentLimit, "\(sql.prefix(120)): \(decision.rule)")
            #expect(!decide(sql, Profiles.analyst).isAllowed, "\(sql.prefix(120))")
        }
    }

    @Test func rowsFieldsAreCountedThroughTheirItems() throws {
        func fields(_ expression: String) throws -> Double {
            try Self.atFirst("{\"RowExpr\":", in: "SELECT \(expression)") { try Analyzer.rowFields($0) }
        }
        #expect(try fields("ROW(1, 2, 3)") == 3)
        #expect(try fields("(1, 2, 3, 4)") == 4)
        #expect(try fields("ROW((ROW(1, 2)).*, 3)") == 3)
        #expect(try fields("ROW(t.*, 1)") == Analyzer.mostRowFields)
    }

    @Test func rowExpansionsPeopleWriteStayAdmitted() {
        for sql in ["SELECT (jsonb_populate_record(NULL::orders, '{}')).*", "SELECT (jsonb_each('{\"a\":1}')).*",
                    "SELECT (o).* FROM orders o", "SELECT (s).* FROM (SELECT a + b + c + d AS c, e * f * g AS d FROM t) s",
                    "SELECT (ROW(1, 2, 3)).*", "SELECT (jsonb_each(data)).* FROM t", "SELECT \(Self.nestedExpansion(fields: 40, levels: 2))"] {
            #expect(decide(sql).isAllowed, "\(sql)")
        }
    }

    static func cubes(_ count: Int, of items: String = Array(repeating: "1", count: 12).joined(separator: ",")) -> String {
        Array(repeating: "CUBE(\(items))", count: count).joined(separator: ",")
    }

    @Test func groupingSetsAreCountedBeforeTheServerBuildsThem() {
        let positions = (1...300).map(String.init).joined(separator: ",")
        for sql in ["SELECT 1 GROUP BY GROUPING SETS (\(Self.cubes(500)))",
                    "SELECT 1 GROUP BY DISTINCT GROUPING SETS (\(Self.cubes(100)))",
                    "SELECT (SELECT 1 GROUP BY GROUPING SETS (\(Self.cubes(100))))",
                    "SELECT 1 GROUP BY GROUPING SETS (\(Self.cubes(100, of: Array(repeating: "(1)", count: 12).joined(separator: ","))))",
                    "SELECT 1 GROUP BY GROUPING SETS (\(Array(repeating: "ROLLUP(\(Array(repeating: "1", count: 12).joined(separator: ",")))", count: 500).joined(separator: ",")))",
                    "SELECT x FROM t GROUP BY CUBE(a, b, c, d, e, f, g, h, i, j, k, l, m)",
                    "SELECT x FROM t GROUP BY CUBE(a, b, c, d, e, f, g, h, i, j)",
                    "SELECT x FROM t GROUP BY CUBE(a, b, c, d, e, f, g), CUBE(h, i, j, k, l, m)",
                    "SELECT \(positions) FROM generate_series(1, 1) GROUP BY CUBE(\(Array(repeating: "(\(positions))", count: 12).joined(separator: ",")))",
                    "SELECT 1 GROUP BY ROLLUP(\(positions), \(positions))"] {
            let decision = decide(sql)
            #expect(decision.rule == .planning, "\(sql.prefix(120)): \(decision.rule)")
            #expect(!decide(sql, Profiles.analyst).isAllowed, "\(sql.prefix(120))")
        }
    }

    @Test func groupingSetsPeopleWriteStayAdmitted() {
        for sql in ["SELECT region, status, count(*) FROM orders GROUP BY CUBE(region, status)",
                    "SELECT region, status, count(*) FROM orders GROUP BY ROLLUP(region, status), GROUPING SETS ((region), ())",
                    "SELECT 1 FROM t GROUP BY CUBE(a, b, c, d, e, f, g, h, i)",
                    "SELECT region, count(*) FROM orders GROUP BY GROUPING SETS (region, (region, status), ())",
                    "SELECT region FROM orders GROUP BY region, (status, id)"] {
            #expect(decide(sql).isAllowed, "\(sql)")
        }
    }

    @Test func expansionsAreCountedAsPostgreSQLCountsThem() throws {
        func expansion(_ clause: String) throws -> Analyzer.GroupingExpansion {
            try Self.atFirst("{\"GroupingSet\":", in: "SELECT 1 GROUP BY \(clause)") { try Analyzer.groupingExpansion($0) }
        }
        // CUBE(a, b): (), (a), (b), (a, b).
        let cube = try expansion("CUBE(a, b)")
        #expect(cube.sets == 4 && cube.items == 4)
        // ROLLUP(a, (b, c)): (a, b, c), (a), ().
        let rollup = try expansion("ROLLUP(a, (b, c))")
        #expect(rollup.sets == 3 && rollup.items == 4)
        // GROUPING SETS ((a), (b, c), (), CUBE(d)): (a), (b, c), (), (d), ().
        let sets = try expansion("GROUPING SETS ((a), (b, c), (), CUBE(d))")
        #expect(sets.sets == 5 && sets.items == 4)
    }
}

/// The second pass: other copies the parser and planner make, and the planner's own work on many
/// grouping sets.
@Suite struct RedTeamThirtyEightSecondPassTests {
    private func decide(_ sql: String, _ engine: PolicyEngine = Profiles.readonly) -> Decision { engine.evaluate(sql) }


    /// Items of an IN list that are rows, or beside a row, each copy the left operand.
    @Test func inListsOfRowsCopyTheirLeftOperandForEachItem() {
        var expression = "1"
        for level in 0..<5 {
            expression = "ROW(\(expression)) IN (\(Array(repeating: level == 0 ? "ROW(1)" : "ROW(true)", count: 20).joined(separator: ",")))"
        }
        expectRefused("SELECT \(expression)", by: [.valueGrowth])
        expectRefused("SELECT ROW(repeat('x', 1000000)) IN (\(Array(repeating: "ROW('0')", count: 40).joined(separator: ",")))", by: [.argumentLimit])
        #expect(decide("SELECT * FROM orders WHERE (region, status) IN (('north', 'paid'), ('south', 'open'))").isAllowed)
        #expect(decide("SELECT * FROM orders WHERE status IN ('paid', 'open', 'shipped')").isAllowed)
    }

    /// A value the parser copies is made once for each copy.
    @Test func copiesOfAnAllocatingCallCountAsItsAllocations() {
        var between = "repeat('x', 1000000) BETWEEN 'a' AND 'b'"
        for _ in 0..<9 { between = "(\(between)) BETWEEN false AND true" }
        expectRefused("SELECT \(between)", by: [.argumentLimit])
        expectRefused("SELECT CASE repeat('x', 1000000)" + String(repeating: " WHEN '' THEN 1", count: 1000) + " END", by: [.argumentLimit])
        #expect(decide("SELECT CASE status WHEN 'paid' THEN 1 WHEN 'open' THEN 2 ELSE 3 END FROM orders").isAllowed)
        #expect(decide("SELECT CASE repeat('-', 20) WHEN '' THEN 1 WHEN 'x' THEN 2 END").isAllowed)
        #expect(decide("SELECT repeat('x', 100000) BETWEEN 'a' AND 'b'").isAllowed)
    }

    /// Sets that do not nest make the planner's choice among their rollups cubic.
    @Test func groupingSetsSideBySideAreCountedTogether() {
        let columns = (0..<32).map { "c\($0)" }
        let lists = (0..<4).map { "GROUPING SETS(\(columns[($0 * 8)..<($0 * 8 + 8)].joined(separator: ",")))" }.joined(separator: ", ")
        expectRefused("SELECT count(*) FROM t GROUP BY \(lists)", by: [.planning])
    }

    /// A WITH query put in place at each reference plans its grouping sets again.
    @Test func groupingSetsOfAWithQueryCountAtEachReference() {
        let cube = "c AS NOT MATERIALIZED (SELECT count(*) n FROM t GROUP BY CUBE(a, b, c, d, e, f, g, h, i))"
        expectRefused("WITH \(cube) " + Array(repeating: "SELECT n FROM c", count: 30).joined(separator: " UNION ALL "), by: [.planning])
        #expect(decide("WITH \(cube) SELECT n FROM c UNION ALL SELECT n FROM c").isAllowed)
    }
}

/// The third pass: rows behind a wrapper in IN lists, numeric powers the planner folds without a
/// cancel check, and the merged columns of FULL JOINs put in place at every reference.
@Suite struct RedTeamThirtyEightThirdPassTests {
    private func decide(_ sql: String, _ engine: PolicyEngine = Profiles.readonly) -> Decision { engine.evaluate(sql) }


    @Test func aRowBehindAWrapperIsStillARow() {
        for (left, item) in [("ROW(%@)::record", "ROW(1)::record"), ("COALESCE(ROW(%@))", "COALESCE(ROW(1))"), ("(SELECT ROW(%@))", "(SELECT ROW(1))")] {
            var expression = "1"
            for _ in 0..<5 {
                expression = "\(left.replacingOccurrences(of: "%@", with: expression)) IN (\(Array(repeating: item, count: 20).joined(separator: ",")))"
            }
            expectRefused("SELECT \(expression)", by: [.valueGrowth, .planning])
        }
        expectRefused("SELECT COALESCE(ROW(repeat('x', 1000000))) IN (\(Array(repeating: "COALESCE(ROW('0'::text))", count: 30).joined(separator: ",")))", by: [.argumentLimit])
        // Constants gathered into one array read the left operand once; a lone one, or rows, once each.
        func copies(_ sql: String) throws -> Double {
            try RedTeamThirtyEightTests.atFirst("{\"A_Expr\":{\"kind\":\"AEXPR_IN\"", in: sql) { node in
                var fields = node
                fields.offset += "{\"A_Expr\":{\"kind\":\"AEXPR_IN\"".utf8.count
                return Analyzer.inListCopies(fields, in: UnsafeBufferPointer(start: node.base, count: node.end))
            }
        }
        #expect(try! copies("SELECT 1 FROM t WHERE status IN ('a', 'b', 'c')") == 0)
        #expect(try! copies("SELECT 1 FROM t WHERE status IN ('a')") == 1)
        #expect(try! copies("SELECT 1 FROM t WHERE status IN ('a', b, c)") == 3)
        #expect(try! copies("SELECT 1 FROM t WHERE status IN ('a', 'z', b, c)") == 2)
        #expect(try! copies("SELECT 1 FROM t WHERE (a, b) IN ((1, 2), (3, 4))") == 2)
        #expect(try! copies("SELECT 1 FROM t WHERE COALESCE(r) IN ('(1)', '(2)', '(3)')") == 3)
    }

    @Test func numericPowersAreCountedWithTheirCopies() {
        expectRefused("SELECT " + (0..<40).map { "9.9::numeric ^ \(130_000 + $0) < 1" }.joined(separator: ", "), by: [.planning])
        expectRefused("SELECT " + (0..<40).map { "9.9 ^ \(130_000 + $0) < 1" }.joined(separator: ", "), by: [.planning])
        // Each reference to a subquery's column puts the power in place again.
        expectRefused("SELECT " + Array(repeating: "x < 1", count: 40).joined(separator: ", ") + " FROM (SELECT 9.9::numeric ^ 130000 AS x) s", by: [.planning])
        #expect(decide("SELECT power(total, 2), sqrt(total), 2 ^ 10 FROM orders").isAllowed)
    }

    /// A balanced tree of FULL JOINs over one column: its merged column stands for the whole tree.
    static func fullJoins(_ leaves: Int, natural: Bool) -> String {
        var items = (0..<leaves).map { "generate_series(1, 1) t\($0)(x)" }
        while items.count > 1 {
            items = stride(from: 0, to: items.count, by: 2).map { natural ? "(\(items[$0]) NATURAL FULL JOIN \(items[$0 + 1]))" : "(\(items[$0]) FULL JOIN \(items[$0 + 1]) USING (x))" }
        }
        return items[0]
    }

    @Test func mergedColumnsOfFullJoinsStandForTheirTree() {
        for natural in [false, true] {
            expectRefused("SELECT count(*) FROM \(Self.fullJoins(256, natural: natural)) WHERE greatest(\(Array(repeating: "x", count: 5000).joined(separator: ","))) > 0", by: [.valueGrowth])
        }
        #expect(decide("SELECT count(*) FROM \(Self.fullJoins(8, natural: false)) WHERE x > 0 AND x < 10").isAllowed)
        #expect(decide("SELECT id, a.total, b.total FROM orders a FULL JOIN orders b USING (id)").isAllowed)
    }
}

/// The fourth pass: numbers of tens of thousands of digits the planner computes with, merged
/// columns read through a join's alias, IN lists over a row column, and many window definitions.
@Suite struct RedTeamThirtyEightFourthPassTests {
    private func decide(_ sql: String, _ engine: PolicyEngine = Profiles.readonly) -> Decision { engine.evaluate(sql) }


    @Test func numbersOfManyDigitsAreRefused() {
        expectRefused("SELECT " + Array(repeating: "(1e65000/7)*(1e65000/7)>0", count: 20).joined(separator: " AND "), by: [.argumentLimit])
        expectRefused("SELECT 1e131071/7" + String(repeating: "+0", count: 50) + " > 0", by: [.argumentLimit])
        expectRefused("SELECT '1e65000'::numeric * '1e65000'::numeric > 0", by: [.argumentLimit])
        #expect(decide("SELECT 1e300::float8, 1.5e3, 2.5e-10, 1e999 > 0").isAllowed)
        expectRefused("SELECT " + Array(repeating: "factorial(30000) * factorial(30000) > 0", count: 20).joined(separator: " AND "), by: [.planning])
    }

    @Test func mergedColumnsReadThroughAJoinAliasStandForTheirTree() {
        let tree = RedTeamThirtyEightThirdPassTests.fullJoins(256, natural: false)
        expectRefused("SELECT count(*) FROM \(tree) AS j(y) WHERE greatest(\(Array(repeating: "y", count: 5000).joined(separator: ","))) > 0", by: [.valueGrowth])
        expectRefused("SELECT count(*) FROM \(tree) AS j WHERE greatest(\(Array(repeating: "j.x", count: 5000).joined(separator: ","))) > 0", by: [.valueGrowth])
        #expect(decide("SELECT j.id FROM (orders a FULL JOIN orders b USING (id)) AS j").isAllowed)
    }

    @Test func aColumnThatStandsForARowCopiesForEachItem() {
        var row = "SELECT ROW(1) AS r", whole = "SELECT 1 AS r"
        for level in 0..<5 {
            row = "SELECT ROW(r IN (\(Array(repeating: "NULL", count: 20).joined(separator: ",")))) AS r FROM (\(row)) s\(level)"
            whole = "SELECT s\(level) IN (\(Array(repeating: "NULL", count: 20).joined(separator: ","))) AS r FROM (\(whole)) s\(level)"
        }
        expectRefused(row, by: [.valueGrowth])
        expectRefused(whole, by: [.valueGrowth])
        #expect(decide("SELECT * FROM (SELECT id, total * 2 AS t2 FROM orders) s WHERE t2 IN (1, 2, 3)").isAllowed)
    }

    @Test func windowDefinitionsAreCountedAsWritten() {
        expectRefused("SELECT " + (0..<200).map { "sum(x) OVER (ROWS \($0) PRECEDING)" }.joined(separator: ",") + " FROM generate_series(1, 1) x", by: [.planning])
        expectRefused("SELECT " + (0..<200).map { "sum(x) OVER (PARTITION BY x + \($0))" }.joined(separator: ",") + " FROM generate_series(1, 1) x", by: [.planning])
        // References to a named window define nothing more.
        #expect(decide("SELECT " + Array(repeating: "sum(total) OVER w", count: 200).joined(separator: ",") + " FROM orders WINDOW w AS (PARTITION BY region)").isAllowed)
        #expect(decide("SELECT id, lag(total, 1) OVER (ORDER BY id), lag(total, 2) OVER (ORDER BY id) FROM orders").isAllowed)
    }
}

/// The fifth pass: what a WITH query put in place at every arm of a UNION ALL plans again.
@Suite struct RedTeamThirtyEightFifthPassTests {
    static func unionAllArms(_ arms: Int) -> String {
        var items = Array(repeating: "SELECT * FROM c", count: arms)
        while items.count > 1 {
            items = stride(from: 0, to: items.count, by: 2).map { $0 + 1 < items.count ? "(\(items[$0]) UNION ALL \(items[$0 + 1]))" : items[$0] }
        }
        return items[0]
    }

    @Test func setOperationArmsAddWhatTheyPlan() {
        var query = "SELECT ROW(1) AS r"
        for level in 0..<2 { query = "SELECT ROW(r IN (\(Array(repeating: "NULL", count: 20).joined(separator: ",")))) AS r FROM (\(query)) s\(level)" }
        expectRefused("WITH c AS NOT MATERIALIZED (\(query)) SELECT * FROM \(Self.unionAllArms(100)) u", by: [.valueGrowth])
        #expect(Profiles.readonly.evaluate("WITH c AS NOT MATERIALIZED (\(query)) SELECT * FROM \(Self.unionAllArms(2)) u").isAllowed)
    }

    @Test func windowDefinitionsArePlannedAtEveryCopy() {
        let windows = (0..<100).map { "sum(x) OVER (PARTITION BY x + \($0))" }.joined(separator: ",")
        expectRefused("WITH c AS NOT MATERIALIZED (SELECT \(windows) FROM generate_series(1, 1) x) SELECT * FROM \(Self.unionAllArms(20)) u", by: [.planning])
        #expect(Profiles.readonly.evaluate("WITH c AS NOT MATERIALIZED (SELECT \(windows) FROM generate_series(1, 1) x) SELECT * FROM \(Self.unionAllArms(2)) u").isAllowed)
    }
}
