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

    /// What the text adds to every row an accumulating aggregate keeps is bounded over the rows the
    /// planner expects (1 KiB a row passed the per-row check, and a million generated rows made 1 GB).
    @Test func anAccumulatingAggregateIsBoundedOverThePlannersRows() throws {
        // A table's rows: only the planner knows how many.
        let attack = Profiles.readonly.evaluate("SELECT string_agg(repeat('x', 1000), '') FROM orders")
        #expect(attack.rule == .query, "\(attack.message)")
        let budget = try #require(attack.costBudget)
        let accumulation = try #require(budget.accumulation)
        #expect(accumulation.bytesPerRow >= 1000)
        #expect(accumulation.maxBytes == 64 * 1_048_576)
        #expect(budget.violation(of: .init(totalCost: 10, rows: 1_000_000)) == .argumentLimit)
        #expect(budget.violation(of: .init(totalCost: 10, rows: 1_000)) == nil)
        #expect(budget.message(for: .argumentLimit, estimate: .init(totalCost: 10, rows: 1_000_000)).contains("keeps every input row"))
        #expect(!budget.message(for: .argumentLimit, estimate: .init(totalCost: 10, rows: 1_000_000)).contains("1000000"), "the estimate stays in the audit record")

        // A table's rows count as generated ones do: the plain scan is planned too, in any profile.
        let overTable = Profiles.readonly.evaluate("SELECT length(string_agg(name || repeat('x', 1000), '')) FROM orders")
        #expect(overTable.costBudget?.maxCost == nil)
        #expect(try #require(overTable.costBudget?.accumulation).bytesPerRow >= 1000)

        // Delimiters, labels and formats add about what a row holds, the data's order: no detour
        // (the planner's group estimates would refuse monthly reports).
        #expect(!Profiles.readonly.evaluate("SELECT json_agg(json_build_object('id', id, 'name', name)) FROM orders").needsCostEstimate)
        #expect(!Profiles.readonly.evaluate("SELECT json_agg(json_build_object('month', to_char(m, 'YYYY-MM'), 'total', t)) FROM (SELECT date_trunc('month', created_at) AS m, sum(total) AS t FROM orders GROUP BY 1) s").needsCostEstimate)
        // Aggregating the rows' own values adds nothing the text makes: no detour.
        #expect(!Profiles.readonly.evaluate("SELECT json_agg(o) FROM orders o").needsCostEstimate)
        #expect(!Profiles.readonly.evaluate("SELECT array_agg(id) FROM orders").needsCostEstimate)
    }

    /// Rows the text's own set-returning calls make are counted before the planner is asked, which
    /// estimates a split or an unnest of a computed value at 1,000 rows (500,001 on PostgreSQL 15).
    @Test(arguments: [
        "SELECT length(string_agg(repeat('x', 1000), '')) FROM generate_series(1, 1000000)",
        "SELECT length(string_agg(repeat('x', 1000), '') OVER ()) FROM generate_series(1, 1000000)",
        "SELECT length(string_agg(repeat('x', 1000), '')) FROM regexp_split_to_table(repeat('a,', 500000), ',')",
        "SELECT length(string_agg(repeat('x', 1000), '')) FROM string_to_table(repeat('a,', 500000), ',')",
        "SELECT length(array_agg(lpad('x', 250))::text) FROM regexp_split_to_table(repeat('a', 400000), '')",
        "SELECT length(json_agg(repeat('x', 500))::text) FROM generate_series(1, 1000) a, generate_series(1, 1000) b",
        // A parameter is at most a message's 1 MiB, an array element two bytes of it.
        "SELECT length(string_agg(repeat('x', 200), '')) FROM unnest($1::int[])",
        // A WITH query read twice, and VALUES rows read six times: their rows multiply, whatever
        // the planner guesses of the join's condition (5,000 and 10 rows estimated, a million made).
        "WITH t AS (SELECT g FROM generate_series(1, 1000) g) SELECT length(string_agg(repeat('x', 1000), '')) FROM t a JOIN t b ON a.g * 0 = b.g * 0",
        "WITH v(x) AS (VALUES (1), (2), (3), (4), (5), (6), (7), (8), (9), (10)) SELECT length(string_agg(repeat('y', 500), '')) FROM v a, v b, v c, v d, v e, v f",
        // Several aggregates keep their rows side by side.
        "SELECT length(string_agg(repeat('a', 900), '')), length(string_agg(repeat('b', 900), '')) FROM generate_series(1, 60000)",
        // ARRAY(subquery) keeps its rows as an aggregate does.
        "SELECT array_length(ARRAY(SELECT repeat('x', 1000) FROM generate_series(1, 500000)), 1)",
    ])
    func textMadeRowsBoundAnAggregate(_ sql: String) {
        let decision = Profiles.readonly.evaluate(sql)
        #expect(decision.rule == .argumentLimit, "\(decision.message)")
        #expect(decision.message.contains("every input row's value"), "\(decision.message)")
    }

    @Test(arguments: [
        "SELECT string_agg(i::text, ',') FROM generate_series(1, 1000000) i",
        "SELECT length(string_agg(repeat('x', 1000), '')) FROM generate_series(1, 1000)",
        "SELECT string_agg(w, ' ') FROM regexp_split_to_table('the quick brown fox', ' ') w",
        "SELECT json_agg(x) FROM jsonb_array_elements('[1, 2, 3]') x",
        "SELECT string_agg(word, ', ') FROM orders, regexp_split_to_table(note, ' ') word",
        "SELECT d::date, count(*) FROM generate_series('2024-01-01'::date, '2024-12-31', '1 day') d GROUP BY 1",
        "SELECT jsonb_agg(jsonb_build_object('id', c.id, 'name', c.name, 'email', c.email, 'country', c.country, 'since', c.created_at)) FROM customers c JOIN unnest($1::int[]) u(id) ON u.id = c.id",
        // Labels in a CASE are one or another, not all of them a row; a subquery's IN list is not in its rows.
        "SELECT json_agg(json_build_object('id', id, 'status', CASE status WHEN 'a' THEN '\(String(repeating: "Waiting for the customer to confirm. ", count: 10))' WHEN 'b' THEN '\(String(repeating: "Shipped to the customer. ", count: 10))' ELSE '\(String(repeating: "Unknown. ", count: 30))' END)) FROM orders",
        "SELECT string_agg(name, ', ') FROM (SELECT name FROM customers WHERE email IN (\((0..<60).map { "'user\($0)@example.com'" }.joined(separator: ", ")))) c",
        "SELECT o.id, json_build_object('sku', i->>'sku', 'qty', i->>'qty', 'price', i->>'price') FROM orders o, jsonb_array_elements(o.items) i",
        "WITH o AS (SELECT id, format('ORD-%s', id) AS code FROM orders) SELECT code FROM o",
    ])
    func fewTextMadeRowsStayAdmitted(_ sql: String) {
        let decision = Profiles.readonly.evaluate(sql)
        #expect(decision.rule == .query, "\(decision.message)")
    }
}
