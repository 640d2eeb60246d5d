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
    /// inserted 1,000 rows. Page- and checkpoint-level counters stay readable.
    @Test func serverWideCountersOfSingleWritesAreRefused() {
        refused("SELECT wal_records, wal_bytes FROM pg_stat_wal", .statistics)
        #expect(rule("SELECT spill_txns FROM pg_stat_replication_slots", Profiles.analyst) == .statistics)
        #expect(Profiles.analyst.evaluate("SELECT checkpoints_timed, buffers_checkpoint FROM pg_stat_bgwriter").isAllowed)
    }
}
