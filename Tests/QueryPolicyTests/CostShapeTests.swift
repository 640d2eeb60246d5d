import Testing
@testable import QueryPolicy

/// Which admitted queries are planned (EXPLAIN) before they run: shapes whose size only the planner
/// can tell, and never the simple ones on the hot path.
@Suite struct CostShapeTests {
    @Test(arguments: [
        "SELECT count(*) FROM pgbench_accounts a, pgbench_accounts b",
        "SELECT * FROM orders o JOIN customers c ON c.id = o.customer_id",
        "SELECT * FROM orders CROSS JOIN customers",
        "SELECT * FROM orders NATURAL JOIN customers",
        "SELECT g FROM generate_series(1, $1) g",
        "SELECT generate_series(1, 10)",
        "SELECT unnest(ARRAY[1, 2])",
        "SELECT * FROM orders WHERE id IN (SELECT jsonb_array_elements_text($1::jsonb)::int)",
        "SELECT pg_catalog.regexp_split_to_table(note, ' ') FROM orders",
        "WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t WHERE n < 10) SELECT * FROM t",
        "SELECT * FROM (SELECT * FROM orders a, orders b) AS pairs",
        "SELECT (SELECT count(*) FROM orders a, orders b) AS n",
        "SELECT * FROM orders, LATERAL (SELECT * FROM customers WHERE customers.id = orders.customer_id) c",
        "SELECT (SELECT count(*) FROM orders b WHERE b.id <> a.id) FROM orders a",
        "SELECT * FROM orders WHERE customer_id IN (SELECT id FROM customers WHERE name = 'x')",
        "SELECT * FROM orders o WHERE EXISTS (SELECT 1 FROM customers c WHERE c.id = o.customer_id)",
    ])
    func explosiveShapesAreEstimated(_ sql: String) {
        let decision = Profiles.analyst.evaluate(sql)
        #expect(decision.rule == .query, "\(decision.message)")
        #expect(decision.needsCostEstimate)
    }

    @Test(arguments: [
        "SELECT abalance FROM pgbench_accounts WHERE aid = $1",
        "SELECT * FROM orders WHERE id = 42",
        "SELECT count(*), sum(total) FROM orders",
        "SELECT customer_id, count(*) FROM orders GROUP BY customer_id ORDER BY 2 DESC LIMIT 10",
        "SELECT * FROM (SELECT * FROM orders WHERE id > 10) AS recent",
        "WITH recent AS (SELECT * FROM orders WHERE id > 10) SELECT count(*) FROM recent",
        "SELECT 1",
    ])
    func simpleShapesAreNot(_ sql: String) {
        let decision = Profiles.analyst.evaluate(sql)
        #expect(decision.rule == .query, "\(decision.message)")
        #expect(!decision.needsCostEstimate)
    }

    @Test func onlyAProfileWithACostBudgetEstimates() throws {
        let files = PolicyFileTests()
        let text = PolicyFileTests.readonlyText
        #expect(try files.load(text).costBudget == CostBudget(maxCost: 1_000_000, maxEstimatedRows: 10_000_000))
        let unbudgeted = try files.load(text.replacingOccurrences(of: "  max_cost: 1000000\n", with: "")
            .replacingOccurrences(of: "  max_estimated_rows: 10000000\n", with: ""))
        #expect(unbudgeted.costBudget == nil)
        #expect(!PolicyEngine(policy: unbudgeted).evaluate("SELECT * FROM orders a, orders b").needsCostEstimate)
        #expect(files.error(text.replacingOccurrences(of: "max_cost: 1000000", with: "max_cost: 0")).contains("limits.max_cost: must be at least 1"))
        #expect(!Profiles.readonly.evaluate("EXPLAIN SELECT * FROM orders a, orders b").needsCostEstimate, "EXPLAIN runs nothing")
    }
}
