import Testing
@testable import QueryPolicy

/// After the fifteenth round: catalog columns read without being named, and transaction ids that
/// reach the server's counters by other routes than a cast.
@Suite struct RedTeamFifteenTests {
    private func rule(_ sql: String, _ profile: PolicyEngine) -> Rule { profile.evaluate(sql).rule }

    /// A NATURAL JOIN filters on every column its sides share, named nowhere in the text: joined to
    /// a list of guesses it read pg_class's row counts of every tenant (1,200 orders where the
    /// tenant sees 120) and confirmed a guessed user-mapping password.
    @Test func aNaturalJoinOverGuardedColumnsIsRefused() {
        refused("SELECT relname, x.n FROM pg_class NATURAL JOIN (SELECT g::real AS reltuples, g AS n FROM generate_series(0, 5000) g) x WHERE relname IN ('orders', 'customers')",
                .statistics)
        refused("SELECT relname FROM pg_class NATURAL JOIN (SELECT g AS relpages FROM generate_series(0, 100) g) x", .statistics)
        refused("SELECT relname FROM (SELECT 1 AS one) o CROSS JOIN (pg_class NATURAL LEFT JOIN (SELECT 5::real AS reltuples) x)", .statistics)
        #expect(rule("SELECT 1 FROM pg_user_mappings NATURAL JOIN (SELECT ARRAY['password=hunter2'] AS umoptions) x", Profiles.analyst) == .secretRelation)
        #expect(rule("SELECT 1 FROM pg_db_role_setting NATURAL JOIN (SELECT ARRAY['app.jwt_secret=hunter2'] AS setconfig) x", Profiles.analyst) == .secretRelation)
        #expect(rule("SELECT sequencename FROM pg_sequences NATURAL JOIN (SELECT 37::bigint AS last_value) x", Profiles.analyst) == .statistics)
        // Natural joins of the tenant's own tables, and catalogs joined on named columns, stay admitted.
        admitted("SELECT a.id FROM orders a NATURAL JOIN orders b")
        admitted("SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public'")
    }

    /// Every transaction-id column of the catalogs is guarded, from the catalog's own types: age() of
    /// pg_database.datfrozenxid rose by 5 with 5 writes of another tenant, as relfrozenxid's did.
    @Test func everyCatalogTransactionIDColumnIsGuarded() {
        for sql in ["SELECT age(datfrozenxid) FROM pg_database WHERE datname = current_database()",
                    "SELECT mxid_age(datminmxid) FROM pg_database",
                    "SELECT datfrozenxid::text FROM pg_database",
                    "SELECT * FROM pg_database",
                    "SELECT to_jsonb(d) FROM pg_database d",
                    "SELECT datname FROM pg_database NATURAL JOIN (SELECT '3'::text AS datfrozenxid) x"] {
            #expect(rule(sql, Profiles.analyst) == .statistics, "\(sql)")
        }
        for relation in PG15Catalog.transactionIDRowTypes {
            #expect(StatisticsCatalog.columns[relation]?.isEmpty == false, "\(relation)")
            for column in PG15Catalog.transactionIDColumns[relation] ?? [] {
                #expect(GuardedRelationColumns.byRelation[relation]?.contains(column) == true, "\(relation).\(column)")
            }
        }
        #expect(Profiles.analyst.evaluate("SELECT datname, datconnlimit FROM pg_database ORDER BY datname").isAllowed)
    }

    /// A function whose every form takes a transaction id turns an untyped literal into one without
    /// a cast: mxid_age('1') read the multixact counter.
    @Test func functionsThatOnlyTakeTransactionIDsAreRefused() {
        for sql in ["SELECT mxid_age('1')", "SELECT mxid_age($1)", "SELECT pg_catalog.mxid_age('42')"] {
            #expect(rule(sql, Profiles.analyst) == .statistics, "\(sql)")
        }
        #expect(PG15Catalog.transactionIDArgumentFunctions.contains("mxid_age"))
        // age() of dates and times is another form of the same name.
        admitted("SELECT age(now(), created_at) FROM orders")
    }

    /// Counters of single writes across the server: wal_records rose by 1,000 when another tenant
    /// inserted 1,000 rows. Checkpoint counters stay readable (pg_stat_bgwriter's page counts do
    /// not since the sixteenth round: `RedTeamSixteenTests`).
    @Test func serverWideCountersOfSingleWritesAreRefused() {
        refused("SELECT wal_records, wal_bytes FROM pg_stat_wal", .statistics)
        #expect(rule("SELECT spill_txns FROM pg_stat_replication_slots", Profiles.analyst) == .statistics)
        #expect(Profiles.analyst.evaluate("SELECT checkpoints_timed, checkpoints_req FROM pg_stat_bgwriter").isAllowed)
    }

    // MARK: A second pass, against the fixes above

    /// Attribute notation is a call: the statistics functions and the value passes see it as one.
    @Test func attributeNotationIsCheckedAsTheCallItIs() {
        for sql in ["SELECT ('1').mxid_age", "SELECT ('orders'::regclass).pg_relation_size",
                    "SELECT relname, (c.oid::regclass).pg_table_size FROM pg_class c WHERE relname = 'orders'",
                    "SELECT (current_database()).pg_database_size"] {
            #expect(rule(sql, Profiles.analyst) == .statistics, "\(sql)")
        }
        // An accumulating aggregate, a set-returning function and a growing function on an
        // expression: each is refused in attribute notation and counted as a call.
        refused("SELECT length((lpad('x', 1000, 'y')).array_agg::text) FROM generate_series(1, 1000000)", .functionNotAllowed)
        refused("SELECT length((1::numeric(1000, 999)).json_agg::text) FROM generate_series(1, 500000)", .functionNotAllowed)
        refused("SELECT (ARRAY[1, 2]).unnest", .functionNotAllowed)
        refused("SELECT ((repeat('x', 1000)).quote_literal).quote_literal", .functionNotAllowed)
        // On the whole row of a subquery or WITH query, and on what an earlier name made.
        refused("SELECT length(s.array_agg::text) FROM (SELECT lpad('x', 1000, 'y') AS x FROM generate_series(1, 1000000)) s", .functionNotAllowed)
        refused("WITH w AS (SELECT lpad('x', 1000, 'y') AS x FROM generate_series(1, 1000000)) SELECT length(w.json_agg::text) FROM w", .functionNotAllowed)
        refused("SELECT (lpad('x', 1000, 'y')).upper.array_agg FROM generate_series(1, 1000000)", .functionNotAllowed)
        admitted("SELECT s.id, s.count FROM (SELECT customer_id AS id, count(*) FROM orders GROUP BY customer_id) s")
        // Fields and columns that share a function's name, and functions of a few bytes, read as before.
        admitted("SELECT o.count FROM orders o")
        admitted("SELECT (now()).date, ('x').upper, (ARRAY[1, 2]).cardinality")
    }

    /// TABLESAMPLE SYSTEM keeps or drops whole pages, and REPEATABLE repeats a choice made by page
    /// and position: sixteen samples told a tenant's rows per page (as ctid would).
    @Test func onlyBernoulliSamplesWithoutASeed() {
        refused("SELECT count(*) FROM orders TABLESAMPLE SYSTEM (10)", .statistics)
        refused("SELECT count(*) FROM orders TABLESAMPLE BERNOULLI (10) REPEATABLE (7)", .statistics)
        admitted("SELECT count(*) FROM orders TABLESAMPLE BERNOULLI (10)")
    }

    /// The NATURAL JOIN rule holds for the join's own sides, not for a catalog read elsewhere.
    @Test func aNaturalJoinIsJudgedByItsOwnSides() {
        admitted("SELECT o.id, c.name FROM orders o NATURAL JOIN customers c WHERE EXISTS (SELECT 1 FROM pg_class WHERE relname = 'orders' AND relrowsecurity)")
        #expect(Profiles.analyst.evaluate("SELECT table_name, column_name, c.relkind FROM information_schema.tables NATURAL JOIN information_schema.columns JOIN pg_class c ON c.relname = table_name WHERE table_schema = 'public'").isAllowed)
        refused("SELECT 1 FROM orders o JOIN (pg_class NATURAL JOIN (SELECT 9::real AS reltuples) x) ON true", .statistics)
        #expect(rule("SELECT blks_hit FROM pg_stat_slru WHERE name = 'Xact'", Profiles.analyst) == .statistics)
    }

    // MARK: A third pass

    /// A function in FROM without an alias goes by its name, and a real column of a subquery or
    /// WITH query named after a function is that column.
    @Test func functionRowsGoByTheirNameAndRealColumnsStayColumns() {
        refused("SELECT length(repeat.array_agg::text) FROM generate_series(1, 10), repeat('x', 1000000)", .functionNotAllowed)
        refused("SELECT length(repeat.jsonb_agg::text) FROM generate_series(1, 10), ROWS FROM (pg_catalog.repeat('x', 1000000))", .functionNotAllowed)
        refused("WITH w AS (SELECT array_agg(g) FROM generate_series(1, 10) g) SELECT length(v.array_agg::text) FROM w AS v(a)", .functionNotAllowed)
        refused("SELECT s.json_agg FROM (SELECT json_agg(t) FROM (VALUES (1), (2)) t(a)) s(x)", .functionNotAllowed)
        // (Fewer generated rows than a join of large made rows is refused for: that rule comes first.)
        // A WITH query of the same name elsewhere, an unaliased coalesce or cast in FROM (named as
        // PostgreSQL names the expression), and `q.*` (q's columns, not one named q).
        refused("SELECT q.array_agg FROM (SELECT g, lpad('x', 1000, 'y') AS v FROM generate_series(1, 1000000) g) q WHERE EXISTS (WITH q AS (SELECT 1 AS array_agg) SELECT 1)", .functionNotAllowed)
        refused("SELECT coalesce.array_agg FROM generate_series(1, 1000) g, coalesce(lpad('x', 1000, 'y'))", .functionNotAllowed)
        refused("SELECT text.array_agg FROM generate_series(1, 1000) g, CAST(lpad('x', 1000, 'y') || '' AS text)", .functionNotAllowed)
        refused("SELECT q.array_agg FROM (SELECT array_agg.* FROM (SELECT g, lpad('x', 1000, 'y') AS v FROM generate_series(1, 1000000) g) array_agg) q", .functionNotAllowed)
        admitted("WITH x AS (SELECT array_agg(g) FROM generate_series(1, 10) g) SELECT x.array_agg FROM x")
        admitted("SELECT s.json_agg FROM (SELECT json_agg(t) FROM (VALUES (1), (2)) t(a)) s")
        admitted("SELECT u.unnest FROM (SELECT unnest(ARRAY[1, 2, 3])) u")
        admitted("SELECT s.array_agg FROM (SELECT 1 AS array_agg UNION ALL SELECT 2) s")
    }

    /// A row or array inside another is quoted again in the outer one's text form: twenty levels
    /// of ROW around 1,000 quotes made 1 GB (15 levels: 32.8 M characters, measured).
    @Test func nestedRowsDoubleTheirTextAtEveryLevel() {
        let nested = (0..<20).reduce("repeat('\"', 1000)") { inner, _ in "ROW(\(inner))" }
        refused("SELECT length(\(nested)::text)")
        var subqueries = "(SELECT repeat('\"', 1000) AS x) s1"
        for level in 2...20 { subqueries = "(SELECT s\(level - 1) FROM \(subqueries)) s\(level)" }
        refused("SELECT length(concat(s20)) FROM \(subqueries)")
        admitted("SELECT ROW(ROW(id, total), region)::text FROM orders")
    }
}
