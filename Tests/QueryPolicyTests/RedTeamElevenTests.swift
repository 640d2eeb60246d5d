import Testing
@testable import QueryPolicy

/// After the eleventh round: what an accumulating aggregate keeps, counted over the rows the
/// text makes, and a jsonpath that rows the query makes carry.
@Suite struct RedTeamElevenTests {
    /// Text becomes a jsonpath only by a cast, so a query that casts to jsonpath may build any path
    /// in its rows (10^8 items from four lists of 100 zeros, or copies of one list concatenated).
    @Test func aJSONPathThatRowsTheQueryMakeCarryIsRefused() {
        let zeros = "[" + Array(repeating: "0", count: 100).joined(separator: ",") + "]"
        refused("SELECT jsonb_path_query_array('1', s.p) FROM (SELECT '$\(zeros)\(zeros)\(zeros)\(zeros)'::jsonpath AS p) s")
        refused("SELECT count(*) FROM (SELECT '$\(zeros)\(zeros)'::jsonpath AS p) s, jsonb_path_query('1', s.p)")
        refused("WITH a AS (SELECT '$[0,0,0,0,0,0,0,0]'::text AS x) SELECT jsonb_path_query_array('1', b.y) FROM (SELECT (x || x || x)::jsonpath AS y FROM a) b")
        refused("SELECT '1'::jsonb @? s.p FROM (SELECT CAST('$\(zeros)\(zeros)' AS pg_catalog.jsonpath) AS p) s")
        refused("SELECT jsonb_path_query('1', v.p) FROM (VALUES (jsonpath '$\(zeros)\(zeros)')) v(p)")
        refused("SELECT jsonb_path_query('1', p) FROM unnest(ARRAY['$\(zeros)\(zeros)']::jsonpath[]) p")
        // Full-text search over a query made in FROM has no jsonpath: it stays admitted.
        admitted("SELECT count(*) FROM orders, websearch_to_tsquery('english', 'north') AS q WHERE to_tsvector(region) @@ q")
        admitted("SELECT jsonb_path_query_array('[1, 2]', '$[*] ? (@ > 1)')")
    }

    /// What a row of an aggregate holds is sized by the copy reader, which sees copies, escaping
    /// and numbers' places the plain walk counted as a few bytes (each measured on PostgreSQL 15).
    @Test func whatARowHoldsIsSizedThroughCopiesEscapesAndPlaces() {
        // 16,385 characters a row, counted as 20 (1.6 GB).
        refused("SELECT length(string_agg(round(1::numeric, 16383)::text, '')) FROM generate_series(1, 50000)")
        // Three levels of eight copies of a 900-byte value: 460 KB a row (904 MB).
        refused("SELECT length(string_agg(d, '')) FROM (SELECT c||c||c||c||c||c||c||c AS d FROM (SELECT b||b||b||b||b||b||b||b AS c FROM (SELECT a||a||a||a||a||a||a||a AS b FROM (SELECT repeat('x', 900) AS a) s0) s1) s2) s3, generate_series(1, 1000)")
        // quote_literal nested ten times doubles twenty quotes to 21 KB (877 MB).
        let quoted = (0..<10).reduce("'" + String(repeating: "''", count: 20) + "'") { inner, _ in "quote_literal(\(inner))" }
        refused("SELECT length(string_agg(\(quoted), '')) FROM generate_series(1, 20000)")
        // ARRAY(subquery) keeps its rows as an aggregate does (1 GB).
        refused("SELECT array_length(ARRAY(SELECT repeat('x', 1000) FROM generate_series(1, 500000)), 1)")
        // Two places for a report, and a number's few bytes, stay admitted.
        admitted("SELECT region, round(avg(total), 2) FROM orders GROUP BY region")
        admitted("SELECT string_agg(round(total, 2)::text, ', ') FROM orders")
    }

    /// A window form gives each row what the rows before it gathered: gathering those rows again
    /// keeps the square of them (40,000 rows: 1.5 GB).
    @Test func gatheringARunningAggregateAgainIsRefused() {
        refused("SELECT length(string_agg(s, '')) FROM (SELECT string_agg('x', '') OVER (ORDER BY g) AS s FROM generate_series(1, 40000) g) t")
        refused("SELECT length(string_agg(s, '')) FROM (SELECT string_agg('x', '') OVER () AS s FROM generate_series(1, 30000) g) t")
        refused("SELECT array_length(ARRAY(SELECT string_agg(name, ',') OVER (ORDER BY id) FROM orders), 1)")
        // Returned as rows they stream; a grouped aggregate gathered again is linear.
        admitted("SELECT id, string_agg(name, ', ') OVER (ORDER BY id) FROM orders")
        admitted("SELECT string_agg(names, '; ') FROM (SELECT region, string_agg(name, ', ') AS names FROM orders GROUP BY region) r")
    }

    /// Each `.**` after the first walks every depth again under every item (316,251 items from a
    /// 50-deep array of 100 bytes).
    @Test func aPathWalksEveryDepthOnce() {
        let deep = String(repeating: "[", count: 50) + "1" + String(repeating: "]", count: 50)
        refused("SELECT jsonb_path_query_array('\(deep)', 'lax $.**.**.**.**')")
        refused("SELECT count(*) FROM jsonb_path_query('\(deep)', '$.**.**')")
        refused("SELECT count(*) FROM orders WHERE region::jsonb @? '$.** ? (@.** == 1)'")
        admitted("SELECT jsonb_path_query_array('\(deep)', 'lax $.**')")
        #expect(JSONPathShape("$.**.a.**").everyDepthWalks == 2)
        #expect(JSONPathShape("$.\"**\".**").everyDepthWalks == 1, "a key named ** is a string")
    }

    /// Labels the query writes, and a json's own text, at most double when json escapes them.
    @Test func labelsAndAJSONsTextAreEscapedOnce() {
        admitted("SELECT o.id, json_build_object('sku', i->>'sku', 'qty', i->>'qty', 'price', i->>'price') FROM orders o, jsonb_array_elements(o.items) i")
        admitted("WITH o AS (SELECT id, format('ORD-%s', id) AS code FROM orders) SELECT code FROM o")
        // A control character still counts six bytes a byte (`\u0001`).
        refused("SELECT length(string_agg(json_build_object('k', repeat(E'\\x01', 200))::text, '')) FROM generate_series(1, 1000)")
    }

    /// The review of these fixes (each measured on PostgreSQL 15).
    @Test func theReviewsEvasionsAreRefused() {
        let ones = Array(repeating: "1", count: 1500).joined(separator: ",")
        let sixteen = "[" + Array(repeating: "0", count: 16).joined(separator: ",") + "]"
        // 1,500 elements through 256 copies: 384,000 rows the planner took for 1,000 (800 MB).
        refused("SELECT length(string_agg(repeat('x', 1000), '')) FROM jsonb_path_query('[\(ones)]', 'lax $[*]\(sixteen)\(sixteen)')")
        // 256 copies of a 1 MB string (996 MB), and a copying path over another one's result.
        refused("SELECT octet_length(jsonb_path_query_array(to_jsonb(repeat('x', 1000000)), 'lax $\(sixteen)\(sixteen)')::text)")
        refused("SELECT jsonb_path_query_array(jsonb_path_query_array(to_jsonb(repeat('x', 2000)), 'lax $\(sixteen)\(sixteen)'), 'lax $[*]\(sixteen)\(sixteen)')")
        refused("SELECT jsonb_path_query_array(s.a, 'lax $[*]\(sixteen)\(sixteen)') FROM (SELECT jsonb_path_query_array(to_jsonb(repeat('x', 2000)), 'lax $\(sixteen)\(sixteen)') AS a) s")
        // A WITH query read through another one, three times (1.9 GB).
        refused("WITH a AS (SELECT g FROM generate_series(1, 100) g), b AS (SELECT g FROM a) SELECT length(string_agg(repeat('x', 1000), '')) FROM b b1 JOIN b b2 ON b1.g * 0 = b2.g * 0 JOIN b b3 ON b2.g * 0 = b3.g * 0")
        // jsonb_pretty of a 100-deep array in an aggregate: 40,401 bytes a row (1.5 GB).
        let deep = String(repeating: "[", count: 100) + String(repeating: "]", count: 100)
        refused("SELECT length(string_agg(jsonb_pretty('\(deep)'), '')) FROM generate_series(1, 20000)")
        // Distinct subscripts of a small json, and a single path query over a table, stay admitted.
        admitted("SELECT jsonb_path_query_array('[1, 2, 3]', '$[0, 2]')")
        admitted("WITH items AS (SELECT jsonb_path_query(items, '$[*]') AS item FROM orders) SELECT format('Item: %s', item) FROM items")
        // A function's columns named in its alias are its own, with its form.
        admitted("SELECT json_agg(json_build_object('k', k, 'v', v)) FROM orders, jsonb_each_text(items) AS kv(k, v)")
    }

    /// The planner's rows an aggregate takes are the input of the node that computes it, read from
    /// EXPLAIN VERBOSE, not the largest node: a monthly report over 2 million rows has twelve.
    @Test func thePlannersRowsAreThoseTheAggregateTakes() throws {
        let plan = """
        [{"Plan": {"Node Type": "Aggregate", "Plan Rows": 1, "Total Cost": 50000, "Output": ["json_agg((to_char(big.ts, 'YYYY-MM'::text)))"],
          "Plans": [{"Node Type": "Aggregate", "Parent Relationship": "Outer", "Plan Rows": 12, "Output": ["(to_char(big.ts, 'YYYY-MM'::text))"],
            "Plans": [{"Node Type": "Seq Scan", "Parent Relationship": "Outer", "Plan Rows": 2000000, "Output": ["to_char(big.ts, 'YYYY-MM'::text)"]}]}]}}]
        """
        let monthly = try #require(CostBudget.estimate(fromExplainJSON: Array(plan.utf8)))
        #expect(monthly.rows == 2_000_000 && monthly.accumulatedRows(includingSubplans: true) == 12)
        let array = """
        [{"Plan": {"Node Type": "Result", "Plan Rows": 1, "Total Cost": 10, "Output": ["array_length($0, 1)"],
          "Plans": [{"Node Type": "Seq Scan", "Parent Relationship": "InitPlan", "Subplan Name": "InitPlan 1 (returns $0)", "Plan Rows": 2000000, "Output": ["'zz'::text"]}]}}]
        """
        let gathered = try #require(CostBudget.estimate(fromExplainJSON: Array(array.utf8)))
        #expect(gathered.accumulatedRows(includingSubplans: true) == 2_000_000, "ARRAY(subquery) gathers its subplan's rows")
        // A node above the aggregate passes its value on; a WITH query's subplan is not gathered.
        let limited = """
        [{"Plan": {"Node Type": "Limit", "Plan Rows": 100, "Total Cost": 10, "Output": ["(json_agg(x))"],
          "Plans": [{"Node Type": "Nested Loop", "Parent Relationship": "Outer", "Plan Rows": 1000000, "Output": ["(json_agg(x))"],
            "Plans": [{"Node Type": "Aggregate", "Parent Relationship": "Inner", "Plan Rows": 1, "Output": ["json_agg(x)"],
              "Plans": [{"Node Type": "Seq Scan", "Parent Relationship": "Outer", "Plan Rows": 3, "Output": ["x"]}]}]},
            {"Node Type": "CTE Scan", "Parent Relationship": "InitPlan", "Subplan Name": "CTE s", "Plan Rows": 5000000, "Output": ["x"]}]}}]
        """
        let lateral = try #require(CostBudget.estimate(fromExplainJSON: Array(limited.utf8)))
        #expect(lateral.accumulatedRows(includingSubplans: true) == 3)
        let none = """
        [{"Plan": {"Node Type": "Seq Scan", "Plan Rows": 300, "Total Cost": 10, "Output": ["id"]}}]
        """
        #expect(try #require(CostBudget.estimate(fromExplainJSON: Array(none.utf8))).accumulatedRows(includingSubplans: false) == 300, "where no node shows one, the largest")
        let budget = CostBudget(maxCost: nil, maxEstimatedRows: nil, accumulation: .init(bytesPerRow: 400, maxBytes: 64 * 1_048_576))
        #expect(budget.violation(of: monthly) == nil)
        #expect(budget.violation(of: .init(totalCost: 1, rows: 2_000_000)) == .argumentLimit)
    }

    /// The fourth pass: a width `%*s` takes from an argument, and numeric(p, s)'s places, pad what
    /// each row holds (784 MB and 1.9 GB on PostgreSQL 15).
    @Test func widthsFromArgumentsAndNumericPlacesPadARow() {
        refused("SELECT length(string_agg(format('%*s', 400, 'x'), '')) FROM generate_series(1, 1000000)")
        refused("SELECT length(string_agg(format('%*s', 10000, 'x'), '')) FROM orders")
        refused("SELECT length(string_agg('x', format('%*s', 1000, '-'))) FROM generate_series(1, 500000)")
        refused("SELECT length(string_agg(1::numeric(1000, 999)::text, '')) FROM generate_series(1, 500000)")
        refused("SELECT length(json_agg(CAST(1 AS decimal(1000, 999)))::text) FROM generate_series(1, 500000)")
        // The width is the argument `*` takes, not every argument (`category` is the value).
        admitted("SELECT format('%-*s %8s', 12, region, count(*)) FROM orders GROUP BY region")
        admitted("SELECT json_agg(json_build_object('total', total::numeric(12, 2))) FROM orders")
        #expect(Analyzer.formatWidthArguments("%-*s %8s") == [1])
        #expect(Analyzer.formatWidthArguments("%2$s %*1$s") == [1])
        #expect(Analyzer.formatWidthArguments("%*s|%*s") == [1, 3])
        #expect(Analyzer.formatWidthArguments("%*2$s %s") == [2], "after a position, the next is the one after it")
        #expect(Analyzer.formatWidthArguments("%10s %%*s") == [])
    }
}
