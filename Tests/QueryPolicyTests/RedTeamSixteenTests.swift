import Testing
@testable import QueryPolicy

/// After the sixteenth round: what the planner and executor build from a short text without the
/// rows or values growing (views and NOT MATERIALIZED WITH queries put in place at every reference,
/// the hash table of INTERSECT and EXCEPT), and server-wide counters of other tenants' work.
@Suite struct RedTeamSixteenTests {
    private func rule(_ sql: String, _ profile: PolicyEngine) -> Rule { profile.evaluate(sql).rule }

    /// A chain of WITH queries, each reading the one before twice.
    private func doublingChain(levels: Int, materialized: String = "NOT MATERIALIZED", seed: String = "SELECT 1 AS x") -> String {
        var ctes = ["a0 AS \(materialized) (\(seed))"]
        for level in 1...levels {
            ctes.append("a\(level) AS \(materialized) (SELECT t0.x FROM a\(level - 1) t0, a\(level - 1) t1)")
        }
        return "WITH \(ctes.joined(separator: ", ")) SELECT count(*) FROM a\(levels)"
    }

    /// A WITH query marked NOT MATERIALIZED is put in place at every reference, so each level that
    /// reads the one before twice doubles what the planner builds: 672 bytes of text took a backend
    /// 251 MB at 11 levels, 535 MB at 12.
    @Test func notMaterializedChainsAreCountedAtEveryReference() {
        refused(doublingChain(levels: 11), .planning)
        refused(doublingChain(levels: 9), .planning)
        // Seeded with a view the planner expands to tens of relations, fewer levels are enough.
        refused(doublingChain(levels: 6, seed: "SELECT count(*) AS x FROM information_schema.columns"), .planning)
        // A few levels, and any depth of WITH queries the server computes once, stay admitted.
        admitted(doublingChain(levels: 6))
        admitted(doublingChain(levels: 30, materialized: ""))
        admitted(doublingChain(levels: 30, materialized: "MATERIALIZED"))
        admitted("WITH t AS NOT MATERIALIZED (SELECT id, amount FROM orders) SELECT count(*) FROM t a JOIN t b ON a.id = b.id")
    }

    /// information_schema.columns expands to 177 KB of query tree at each reference: 120 scalar
    /// subqueries over it, 6 KB of text, took a backend 261 MB, linear in the references.
    @Test func viewsCountWhatTheyExpandTo() {
        let reference = "(SELECT count(*) FROM information_schema.columns)"
        refused("SELECT " + Array(repeating: reference, count: 120).joined(separator: ", "), .planning)
        refused("SELECT " + Array(repeating: reference, count: 25).joined(separator: ", "), .planning)
        admitted("SELECT " + Array(repeating: reference, count: 20).joined(separator: ", "))
        // Schema discovery over a few views, and many plain tables, stay admitted.
        admitted("SELECT (SELECT count(*) FROM information_schema.columns WHERE table_name = 'orders') AS order_columns, (SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public') AS tables")
        admitted("SELECT count(*) FROM " + (1...200).map { "orders o\($0)" }.joined(separator: ", "))
        #expect(PG15Catalog.viewPlanningWeights["information_schema.columns"] == 44)
        // The server's own views count what they expand to, as read at start.
        let server = PolicyEngine(policy: Profiles.readonly.policy, serverFunctions: ServerFunctions(viewWeights: ["public": ["order_report": 300]]))
        #expect(server.evaluate("SELECT (SELECT count(*) FROM order_report), (SELECT count(*) FROM public.order_report)").isAllowed)
        #expect(server.evaluate("SELECT " + Array(repeating: "(SELECT count(*) FROM order_report)", count: 4).joined(separator: ", ")).rule == .planning)
        #expect(server.evaluate("SELECT " + Array(repeating: "(SELECT count(*) FROM public.order_report)", count: 4).joined(separator: ", ")).rule == .planning)
        #expect(Profiles.readonly.evaluate("SELECT " + Array(repeating: "(SELECT count(*) FROM order_report)", count: 4).joined(separator: ", ")).isAllowed)
    }

    /// A function of pg_catalog written in SQL whose body reads a catalog is planned as a query of
    /// its own at each call site: 1,000 calls of col_description took a backend 43 MB, 300
    /// subqueries over ts_debug 43 MB.
    @Test func sqlFunctionsCountTheQueriesTheyRun() {
        let descriptions = (1...1100).map { "col_description(1259, \($0 % 30 + 1))" }
        refused("SELECT " + descriptions.joined(separator: ", "), .planning)
        admitted("SELECT " + descriptions.prefix(100).joined(separator: ", "))
        let debugs = Array(repeating: "(SELECT count(*) FROM ts_debug('a'))", count: 150)
        refused("SELECT " + debugs.joined(separator: ", "), .planning)
        admitted("SELECT " + debugs.prefix(20).joined(separator: ", "))
        #expect(PG15Catalog.sqlFunctionPlanningWeights["ts_debug"] == 5)
    }

    /// PostgreSQL 15 hashes INTERSECT and EXCEPT when its count of groups fits work_mem, and a
    /// made column's count is a default 200 even when its rows are known: the hash table, which
    /// never spills, took 233 MB for 200,000 rows of 500 bytes and 149 MB for a million integer pairs.
    @Test func intersectAndExceptOverManyMadeRowsAreRefused() {
        refused("SELECT count(*) FROM (SELECT g, lpad('x', 10000, 'y') FROM generate_series(1, 1000000) g EXCEPT SELECT 1, '') s")
        refused("SELECT count(*) FROM (SELECT g, h FROM generate_series(1, 1000) g, generate_series(1, 1000) h EXCEPT SELECT 1, 1) s")
        refused("SELECT count(*) FROM (SELECT g FROM generate_series(1, 1000000) g INTERSECT ALL SELECT 1) s")
        // A set operation over a table's rows, a few made rows, and UNION (whose hash spills) stay admitted.
        admitted("SELECT count(*) FROM (SELECT customer_id FROM orders EXCEPT SELECT id FROM customers) s")
        admitted("SELECT region FROM customers INTERSECT SELECT 'north'")
        admitted("SELECT g FROM generate_series(1, 1000) g EXCEPT SELECT id FROM orders")
        admitted("SELECT count(*) FROM (SELECT g FROM generate_series(1, 1000000) g UNION SELECT 1) s")
    }

    /// pg_stat_bgwriter's page counts count every tenant's writes (buffers_checkpoint rose by 3 after
    /// another tenant updated 10 rows); the server gives backends consecutive process ids, and the
    /// kernel Palisade's connections to it ports in sequence, so the gap between two of a tenant's
    /// sessions counts those others opened.
    @Test func countersOfOtherTenantsWorkAreRefused() {
        for sql in ["SELECT buffers_checkpoint FROM pg_stat_bgwriter",
                    "SELECT * FROM pg_stat_bgwriter",
                    "SELECT b.buffers_alloc FROM pg_stat_bgwriter b",
                    "SELECT to_jsonb(b) FROM pg_stat_bgwriter b"] {
            #expect(rule(sql, Profiles.analyst) == .statistics, "\(sql)")
        }
        #expect(Profiles.analyst.evaluate("SELECT checkpoints_timed, checkpoints_req, checkpoint_write_time FROM pg_stat_bgwriter").isAllowed)
        refused("SELECT pg_backend_pid()", .functionNotAllowed)
        refused("SELECT inet_client_port()", .functionNotAllowed)
    }

    // MARK: A second pass, against the fixes above

    /// PostgreSQL also puts in place an unmarked WITH query read once, inside the WITH query that
    /// reads it: a NOT MATERIALIZED level reading an unmarked one that reads the level before twice
    /// doubled the planner's memory every 84 bytes (946 bytes: 222 MB), while each counted one.
    @Test func anUnmarkedWithQueryReadOnceIsPutInPlaceToo() {
        var ctes = ["l0 AS NOT MATERIALIZED (SELECT 1 AS x)"]
        for level in 1...11 {
            ctes.append("d\(level) AS (SELECT a.x FROM l\(level - 1) a, l\(level - 1) b)")
            ctes.append("l\(level) AS NOT MATERIALIZED (SELECT x FROM d\(level))")
        }
        refused("WITH \(ctes.joined(separator: ", ")) SELECT count(*) FROM l11", .planning)
        // Unmarked levels that each read the one before twice are planned once each.
        var planned = ["a0 AS (SELECT 1 AS x)"]
        for level in 1...30 { planned.append("a\(level) AS (SELECT t0.x FROM a\(level - 1) t0, a\(level - 1) t1)") }
        admitted("WITH \(planned.joined(separator: ", ")) SELECT count(*) FROM a30")
        // A chain of unmarked WITH queries each read once is put in place once each.
        var chain = ["c0 AS (SELECT id FROM orders)"]
        for level in 1...40 { chain.append("c\(level) AS (SELECT id FROM c\(level - 1))") }
        admitted("WITH \(chain.joined(separator: ", ")) SELECT count(*) FROM c40")
        // A recursive query reads itself, and is planned once.
        admitted("WITH RECURSIVE r(n) AS NOT MATERIALIZED (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 10) SELECT count(*) FROM r a, r b")
    }

    /// A subquery under NOT IN, IN, ANY or ALL may run as a hashed subplan: PostgreSQL guessed a
    /// text value at 32 bytes, and 30,000 rows of `lpad(…, 10000, …)` took 309 MB. WITH RECURSIVE
    /// rows, which the planner guessed at 31 where 100,000 took 231 MB, count as many as a
    /// set-returning call may make.
    @Test func hashedSubplansAndRecursiveRowsAreHeldLikeIntersect() {
        refused("SELECT 'a' NOT IN (SELECT lpad(g::text, 10000, 'y') FROM generate_series(1, 30000) g)")
        refused("SELECT count(*) FROM orders WHERE customer_id::text NOT IN (SELECT lpad(g::text, 10000, 'y') FROM generate_series(1, 20000) g)")
        refused("SELECT 'a' = ANY (SELECT lpad(g::text, 10000, 'y') FROM generate_series(1, 20000) g)")
        refused("WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 100000) SELECT count(*) FROM (SELECT n, lpad('x', 1000, 'y') FROM r EXCEPT SELECT 1, '') s")
        refused("WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 100000) SELECT 'a' NOT IN (SELECT lpad(n::text, 1000, 'y') FROM r)")
        // IN over a table's rows, a few made ones, and a recursive query beside a set operation
        // that does not read it stay admitted.
        admitted("SELECT count(*) FROM orders WHERE customer_id IN (SELECT id FROM customers WHERE region = 'north')")
        admitted("SELECT count(*) FROM orders WHERE id NOT IN (SELECT g FROM generate_series(1, 1000) g)")
        // IN that is the condition or one of its ANDed terms becomes a semi-join, which spills:
        // a parameter's list of ids stays admitted there; under OR it may be hashed.
        admitted("SELECT * FROM orders WHERE id IN (SELECT jsonb_array_elements_text($1::jsonb)::int)")
        admitted("SELECT * FROM orders o JOIN customers c ON c.id = o.customer_id AND o.id IN (SELECT jsonb_array_elements_text($1::jsonb)::int) WHERE o.amount > 0 AND o.id IN (SELECT unnest($2::int[]))")
        refused("SELECT count(*) FROM orders WHERE amount > 0 OR customer_id::text IN (SELECT lpad(g::text, 10000, 'y') FROM generate_series(1, 20000) g)")
        refused("SELECT count(*) FROM orders WHERE amount > 0 AND customer_id::text NOT IN (SELECT lpad(g::text, 10000, 'y') FROM generate_series(1, 20000) g)")
        admitted("WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 10) SELECT n FROM r WHERE n IN (SELECT id FROM orders)")
        admitted("WITH RECURSIVE tree(id) AS (SELECT id FROM customers WHERE id = 1 UNION ALL SELECT c.id FROM customers c JOIN tree t ON c.id = t.id + 1) SELECT count(*) FROM orders WHERE customer_id IN (SELECT id FROM customers)")
    }

    /// The text's rows alone were within the limit, but 120 rows of a table joined to them under
    /// EXCEPT took 267 MB: such a query is planned first, and the rows the planner expects into a
    /// hashed SetOp or hashed subplan are held to the same limit.
    @Test func hashedRowsOverATablesRowsArePlannedFirst() throws {
        let sql = "SELECT count(*) FROM (SELECT o.id * 100000 + g, lpad('x', 1000, 'y') FROM orders o, generate_series(1, 1000) g EXCEPT SELECT 1, '') s"
        let decision = Profiles.readonly.evaluate(sql)
        #expect(decision.isAllowed)
        let hashed = try #require(decision.costBudget?.hashedRows)
        #expect(hashed.bytesPerRow >= 1150, "150 a row and the lpad's characters, at up to 4 bytes each")
        let plan = #"[{"Plan": {"Node Type": "Aggregate", "Total Cost": 10, "Plan Rows": 1, "Plans": [{"Node Type": "SetOp", "Strategy": "Hashed", "Command": "Except", "Plan Rows": 200, "Plans": [{"Node Type": "Append", "Plan Rows": 120001}]}]}}]"#
        let estimate = try #require(CostBudget.estimate(fromExplainJSON: Array(plan.utf8)))
        #expect(estimate.hashedRows == 120001)
        #expect(decision.costBudget?.violation(of: estimate) == .argumentLimit)
        #expect(decision.costBudget?.message(for: .argumentLimit, estimate: estimate).contains("hash table") == true)
        let subplan = #"[{"Plan": {"Node Type": "Result", "Total Cost": 10, "Plan Rows": 1, "Plans": [{"Node Type": "Nested Loop", "Parent Relationship": "SubPlan", "Subplan Name": "hashed SubPlan 1", "Plan Rows": 120001}]}}]"#
        #expect(try #require(CostBudget.estimate(fromExplainJSON: Array(subplan.utf8))).hashedRows == 120001)
        let small = try #require(CostBudget.estimate(fromExplainJSON: Array(plan.replacingOccurrences(of: "120001", with: "1000").utf8)))
        #expect(decision.costBudget?.violation(of: small) == nil)
        // A set operation over a table's own columns is the planner's to size.
        #expect(Profiles.readonly.evaluate("SELECT customer_id FROM orders EXCEPT SELECT id FROM customers").costBudget?.hashedRows == nil)
    }

    /// PostgreSQL compiles a bounded repetition into copies of what it repeats and keeps 32 compiled
    /// patterns a session: 32 patterns of 39,800 copies held 208 MB of a backend for the rest of its
    /// session; 32 just under the limit of 4,096 took 16 MB.
    @Test func regularExpressionsAreSizedAsTheyCompile() {
        #expect(RegexSize.copies("(\\w{1,200}){1,199}") == 39_800)
        #expect(RegexSize.copies("^[a-z0-9._%+-]{1,64}@[a-z0-9.-]{1,255}\\.[a-z]{2,63}$") < 400)
        #expect(RegexSize.copies("[]{}]{1,5}x{3,}") == 5 + 4)
        #expect(RegexSize.copies("[[:alpha:]]{10}") == 10)
        for sql in ["SELECT 1 WHERE 'a' ~ '(\\w{1,200}){1,199}'",
                    "SELECT 1 WHERE 'a' !~* E'(\\\\w{1,100}){1,100}'",
                    "SELECT 'a' SIMILAR TO '(a{1,200}){1,100}'",
                    "SELECT regexp_replace('a', '(x{1,90}){1,90}', 'b')",
                    "SELECT regexp_matches('a', '((a{1,20}){1,20}){1,20}', 'g')",
                    "SELECT substring('abc' from '(b{1,100}){1,100}')"] {
            refused(sql)
        }
        admitted("SELECT count(*) FROM customers WHERE email ~ '^[a-z0-9._%+-]{1,64}@[a-z0-9.-]{1,255}\\.[a-z]{2,63}$'")
        admitted("SELECT substring(name, 2), substring(name from '[0-9]{4}'), regexp_replace(name, '(\\d{3})(\\d{4})', '\\1-\\2') FROM customers")
        admitted("SELECT '{{1,200},{1,300}}'::int[]")
    }

    // MARK: A third pass

    /// A subquery in a pulled-up subquery's select list is copied to every use of its column, and
    /// planned again each time: `x AND x` at each of 7 levels over a scalar subquery of
    /// information_schema.columns took 289 MB, counted once.
    @Test func aSubqueryCopiedWithItsColumnIsPlannedAgain() {
        func levels(_ count: Int) -> String {
            var query = "SELECT (SELECT count(*) FROM information_schema.columns) > 0 AS v"
            for level in 0..<count { query = "SELECT s\(level).v AND s\(level).v AS v FROM (\(query)) s\(level)" }
            return query
        }
        refused(levels(7), .planning)
        refused(levels(5), .planning)
        admitted(levels(3))
        // Nested scalar subqueries of constants double cheaply (2^7 subqueries took 7 MB): admitted.
        var nested = "SELECT 'x'::text x"
        for level in 0..<7 { nested = "SELECT (SELECT x || x FROM (\(nested)) a\(level)) AS x" }
        admitted(nested)
    }

    /// PostgreSQL joins IN only where its left side reads the query's rows, calls nothing volatile,
    /// and stands in a WHERE or inner join's condition; elsewhere it hashes (257–261 MB each). Rows
    /// of generate_series with bounds computed at run time count as many as it may make.
    @Test func onlyAJoinableInIsLeftToTheJoin() {
        let big = "(SELECT lpad(g::text, 10000, 'x') FROM generate_series(1, 25000) g)"
        refused("SELECT 1 WHERE 'x' IN \(big)")
        refused("SELECT a.a, b.b FROM (SELECT 'x' AS a) a LEFT JOIN (SELECT 1 AS b) b ON a.a IN \(big)")
        refused("SELECT count(*) FROM (SELECT 'x' AS a) a WHERE a.a || random()::text IN \(big)")
        refused("SELECT 1 WHERE 'x' NOT IN (SELECT lpad(g::text, 10000, 'x') FROM generate_series(1, (SELECT 25000)) g)")
        refused("SELECT count(*) FROM (SELECT lpad(g::text, 10000, 'x') FROM generate_series(1, (SELECT 25000)) g EXCEPT SELECT 'a') s")
        admitted("SELECT count(*) FROM customers c JOIN orders o ON o.customer_id = c.id AND o.id IN (SELECT jsonb_array_elements_text($1::jsonb)::int)")
        admitted("SELECT * FROM orders WHERE id IN (SELECT jsonb_array_elements_text($1::jsonb)::int)")
    }

    /// A compiled pattern weighs its copies times the sets of characters it tells apart (3,070
    /// copies of 128 colors kept 14.6 MB); a pattern the query computes from constants is sized from
    /// them (32 of them over generate_series took 334 MB), one built by a repeating call is refused,
    /// a jsonpath's like_regex is a pattern too (45 MB), and one the server takes literally weighs nothing.
    @Test func regularExpressionsWeighTheirColorsAndComputedOnesTheirConstants() {
        #expect(RegexSize.weight("***=(a{1,200}){1,199}") == 0)
        #expect(RegexSize.weight("(?q)(a{1,200}){1,199}") == 0)
        #expect(RegexSize.colors("[a-c][x-z]q") == 1 + 5 + 2 * 2, "five characters named, two ranges")
        refused("SELECT 'x' ~ '[abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ]([^a]{1,255}){1,12}'")
        refused("SELECT count(*) FROM generate_series(1, 32) g WHERE 'x' ~ ('(\\w{1,200}){1,199}' || g)")
        refused("SELECT 'x' ~ repeat('(a{1,9})', 3)")
        refused("SELECT jsonb_path_query('[\"a\"]', '$[*] ? (@ like_regex \"(a{1,200}){1,199}\")')")
        refused("SELECT '[\"a\"]'::jsonb @? '$[*] ? (@ like_regex \"(a{1,200}){1,199}\")'")
        admitted("SELECT jsonb_path_exists('[\"a\"]', '$[*] ? (@ like_regex \"^ab+c\" flag \"i\")')")
        admitted("SELECT 'x' ~ '***=(a{1,200}){1,199}'")
        admitted("SELECT name ~ ('^' || lower(name) || '$') FROM customers")
    }

    // MARK: A fourth pass

    /// The parser copies the tested operand of BETWEEN (twice, four times SYMMETRIC) and of an IN
    /// list once per item that reads a column: nested, eight levels of BETWEEN SYMMETRIC (301 bytes)
    /// took 275 MB, eight IN lists of four columns 95 MB; a subquery on the left is planned again
    /// in every copy (120 items: 263 MB), and so is one that `SELECT *, *` doubles at each level.
    @Test func whatTheParserCopiesIsCountedAsOften() {
        var between = "(random() > 0.5)"
        for _ in 0..<8 { between = "(\(between) BETWEEN SYMMETRIC false AND true)" }
        refused("SELECT \(between)", .valueGrowth)
        var list = "(a)"
        for _ in 0..<8 { list = "(\(list) IN (a, b, a, b))" }
        refused("SELECT \(list) FROM (VALUES (true, false)) t(a, b)", .valueGrowth)
        refused("SELECT (SELECT count(*) FROM information_schema.columns) IN (" + Array(repeating: "a", count: 60).joined(separator: ", ") + ") FROM (VALUES (1)) t(a)", .planning)
        var stars = "SELECT (SELECT count(*) FROM information_schema.columns) AS v"
        for level in 0..<6 { stars = "SELECT *, * FROM (\(stars)) s\(level)" }
        refused(stars, .planning)
        admitted("SELECT count(*) FROM orders WHERE amount BETWEEN SYMMETRIC 100 AND 10")
        admitted("SELECT count(*) FROM orders WHERE customer_id IN (id, id + 1, 3) AND amount BETWEEN 1 AND 5")
        admitted("SELECT * FROM (SELECT *, * FROM (SELECT * FROM orders) a) b LIMIT 5")
        admitted("SELECT (SELECT count(*) FROM information_schema.columns) IN (1, 2, 3)")
    }

    // MARK: False positives found by a sweep of 303 real queries

    /// Bounds a clock gives with constant intervals around it span what the text says; a hashed
    /// EXCEPT keeps its left rows only; IN inside nested ANDs is joined; literal alternations weigh
    /// their characters, not the pattern's colors each.
    @Test func realQueriesTheNewLimitsRefusedAreAdmitted() {
        admitted("SELECT d::date FROM generate_series(current_date - 30, current_date, interval '1 day') d EXCEPT SELECT DISTINCT created_at::date FROM orders")
        admitted("SELECT * FROM orders o WHERE o.order_date NOT IN (SELECT generate_series(current_date - 7, current_date, '1 day')::date)")
        admitted("SELECT s FROM generate_series(date_trunc('day', now()) + interval '9 hours', date_trunc('day', now()) + interval '17 hours', interval '30 minutes') s EXCEPT SELECT start_time FROM appointments")
        admitted("SELECT m::date FROM generate_series(date_trunc('month', current_date) - interval '11 months', date_trunc('month', current_date), interval '1 month') m EXCEPT SELECT date_trunc('month', created_at)::date FROM subscriptions")
        admitted("SELECT d::date FROM generate_series('2024-01-01'::date, current_date, '1 day') d EXCEPT SELECT order_date FROM orders")
        admitted("WITH RECURSIVE t(id) AS (SELECT 1 UNION ALL SELECT id + 1 FROM t WHERE id < 5) SELECT id FROM customers EXCEPT SELECT id FROM t")
        admitted("WITH RECURSIVE t(id) AS (SELECT 1 UNION ALL SELECT id + 1 FROM t WHERE id < 5) SELECT count(*) FROM orders WHERE amount > 0 AND (region = 'x' AND customer_id IN (SELECT id FROM t))")
        admitted("SELECT count(*) FROM customers WHERE state ~* '^(alabama|alaska|arizona|arkansas|california|colorado|connecticut|delaware|florida|georgia|hawaii|idaho|illinois|indiana|iowa|kansas|kentucky|louisiana|maine|maryland|massachusetts|michigan|minnesota|mississippi|missouri|montana|nebraska|nevada|new hampshire|new jersey|new mexico|new york|north carolina|north dakota|ohio|oklahoma|oregon|pennsylvania|rhode island|south carolina|south dakota|tennessee|texas|utah|vermont|virginia|washington|west virginia|wisconsin|wyoming)$'")
        // Still refused: a clock span past the generated-rows limit, run-time bounds under a
        // hash, and recursive rows on EXCEPT's left.
        refused("SELECT d FROM generate_series(now() - interval '100 years', now(), '1 second') d")
        refused("SELECT count(*) FROM (SELECT lpad(g::text, 10000, 'x') FROM generate_series(1, (SELECT 25000)) g EXCEPT SELECT 'a') s")
        refused("WITH RECURSIVE t(id) AS (SELECT 1 UNION ALL SELECT id + 1 FROM t WHERE id < 5) SELECT id FROM t EXCEPT SELECT id FROM customers")
    }
}
