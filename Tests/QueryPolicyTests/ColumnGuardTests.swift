import Foundation
import Testing
@testable import QueryPolicy

/// Guarded columns (credentials, settings stored on roles and databases, statistics) are found by
/// their decoded names, whatever libpg_query escapes in its JSON.
@Suite struct ColumnGuardTests {
    /// Aliases holding each class of character that JSON escapes, or that the tree spells otherwise:
    /// quote, backslash, `<`, `>`, `&`, apostrophe, control characters, non-ASCII, and U& escapes.
    static let aliases = [
        "\"u<\"", "\"u>\"", "\"u\"\"\"", "\"u\\\"", "\"u&\"", "\"u'\"", "\"u\nv\"", "\"u\tv\"", "\"u\u{1}\"",
        "\"ü\"", "\"u\u{2028}\"", "U&\"u\\003c\"", "U&\"\\+01F600\"", "\"<\\u003c>\"",
    ]

    @Test("whole rows under escaped aliases are denied", arguments: aliases)
    func wholeRowUnderEscapedAlias(alias: String) {
        let decision = Profiles.analyst.evaluate("SELECT \(alias) FROM pg_catalog.pg_user_mappings AS \(alias)")
        #expect(decision.rule == .secretRelation, "\(alias): \(decision.rule.rawValue) \(decision.message)")
        #expect(Profiles.analyst.evaluate("SELECT \(alias).* FROM pg_user_mappings AS \(alias)").rule == .secretRelation)
        #expect(Profiles.analyst.evaluate("SELECT to_jsonb(\(alias)) FROM pg_db_role_setting \(alias)").rule == .secretRelation)
        #expect(Profiles.analyst.evaluate("SELECT \(alias).srvname, \(alias).umuser FROM pg_user_mappings AS \(alias)").isAllowed)
    }

    @Test func columnsNamedWithEscapesAreFound() {
        for sql in ["SELECT U&\"umopt\\0069ons\" FROM pg_user_mappings",
                    "SELECT srvname FROM pg_user_mappings NATURAL JOIN (VALUES ('{}'::text[])) AS v(\"umoptions\")",
                    "SELECT srvname FROM pg_user_mappings JOIN (SELECT NULL::text[] AS umoptions) AS v USING (umoptions)"] {
            #expect(Profiles.analyst.evaluate(sql).rule == .secretRelation, "\(sql)")
        }
    }

    @Test("settings stored on roles and databases are secret in every profile")
    func roleAndDatabaseSettings() {
        for sql in ["SELECT setconfig FROM pg_db_role_setting", "SELECT * FROM pg_catalog.pg_db_role_setting",
                    "SELECT rolname, rolconfig FROM pg_roles", "SELECT r FROM pg_roles r", "SELECT r.* FROM pg_roles AS r",
                    "SELECT usename, useconfig FROM pg_user", "SELECT array_to_string(s.setconfig, ',') FROM pg_db_role_setting s"] {
            #expect(Profiles.analyst.evaluate(sql).rule == .secretRelation, "\(sql)")
            #expect(!Profiles.readonly.evaluate(sql).isAllowed, "\(sql)")
        }
        #expect(Profiles.analyst.evaluate("SELECT rolname, rolsuper FROM pg_roles").isAllowed)
        #expect(Profiles.analyst.evaluate("SELECT usename FROM pg_user").isAllowed)
        #expect(Profiles.analyst.evaluate("SELECT setrole, setdatabase FROM pg_db_role_setting").isAllowed)
    }

    @Test("current_setting reads only the claim and the reviewed settings")
    func currentSettingIsLimited() {
        for sql in ["SELECT current_setting('app.jwt_secret')", "SELECT current_setting('app.jwt_secret', true)",
                    "SELECT pg_catalog.current_setting('APP.JWT_SECRET', true)", "SELECT current_setting('data_directory')",
                    "SELECT current_setting(name) FROM (VALUES ('app.jwt_secret')) AS s(name)",
                    "SELECT ('app.jwt_secret'::text).current_setting", "SELECT s.current_setting FROM (VALUES ('work_mem')) AS s"] {
            #expect(Profiles.analyst.evaluate(sql).rule == .currentSetting, "\(sql)")
            #expect(Profiles.readonly.evaluate(sql).rule == .currentSetting, "\(sql)")
        }
        for sql in ["SELECT current_setting('work_mem')", "SELECT current_setting('TimeZone', true)", "SELECT ('work_mem'::text).current_setting"] {
            #expect(Profiles.analyst.evaluate(sql).isAllowed, "\(sql)")
            #expect(Profiles.readonly.evaluate(sql).rule == .currentSetting, "\(sql)")
        }
        #expect(Profiles.readonly.evaluate("SELECT current_setting('request.jwt.claims', true)").isAllowed)
    }
}

/// Estimates, counts and sizes built from rows row-level security hides (issue 14, finding 5).
@Suite struct StatisticsTests {
    static let unscoped: PolicyEngine = {
        var policy = Profiles.analyst.policy
        policy.hidesStatistics = false
        return PolicyEngine(policy: policy)
    }()

    @Test func explainNeedsCostsOff() {
        for sql in ["EXPLAIN SELECT * FROM deals WHERE counterparty = 'x'", "EXPLAIN VERBOSE SELECT 1", "EXPLAIN (FORMAT JSON) SELECT 1",
                    "EXPLAIN (COSTS) SELECT 1", "EXPLAIN (COSTS ON) SELECT 1", "EXPLAIN (COSTS OFF, COSTS ON) SELECT 1", "EXPLAIN (COSTS 1) SELECT 1"] {
            let decision = Profiles.analyst.evaluate(sql)
            #expect(decision.rule == .explainCosts, "\(sql): \(decision.rule.rawValue)")
            #expect(decision.hint?.contains("COSTS OFF") == true)
            #expect(Self.unscoped.evaluate(sql).isAllowed, "\(sql)")
        }
        for sql in ["EXPLAIN (COSTS OFF) SELECT * FROM deals WHERE counterparty = 'x'", "EXPLAIN (COSTS false, VERBOSE) SELECT 1",
                    "EXPLAIN (COSTS 0) SELECT 1", "EXPLAIN (COSTS 'Off', FORMAT JSON) SELECT 1", "EXPLAIN (COSTS ON, COSTS OFF) SELECT 1"] {
            #expect(Profiles.analyst.evaluate(sql).isAllowed, "\(sql)")
        }
    }

    @Test func statisticsRelationsColumnsAndFunctions() {
        for sql in ["SELECT reltuples FROM pg_class WHERE relname = 'deals'", "SELECT c.relname, c.relpages FROM pg_catalog.pg_class c",
                    "SELECT * FROM pg_class", "SELECT c FROM pg_class c", "SELECT relallvisible FROM pg_class",
                    "SELECT n_live_tup FROM pg_stat_user_tables", "SELECT * FROM pg_catalog.pg_stat_all_tables",
                    "SELECT heap_blks_read FROM pg_statio_user_tables", "SELECT idx_scan FROM pg_stat_user_indexes",
                    "SELECT tup_returned FROM pg_stat_database", "SELECT n_tup_ins FROM pg_stat_xact_user_tables",
                    "SELECT pg_relation_size('deals')", "SELECT pg_catalog.pg_total_relation_size('deals'::regclass)",
                    "SELECT pg_table_size(oid) FROM pg_class", "SELECT pg_database_size(current_database())",
                    "SELECT pg_indexes_size('deals')", "SELECT last_value FROM pg_sequences"] {
            let decision = Profiles.analyst.evaluate(sql)
            #expect(decision.rule == .statistics, "\(sql): \(decision.rule.rawValue) \(decision.message)")
            #expect(Self.unscoped.evaluate(sql).isAllowed, "\(sql)")
        }
        for sql in ["SELECT c.oid, c.relname, c.relkind FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace",
                    "SELECT sequencename, increment_by FROM pg_sequences", "SELECT count(*) FROM deals",
                    "SELECT pg_column_size(name) FROM users", "SELECT checkpoints_timed FROM pg_stat_bgwriter"] {
            #expect(Profiles.analyst.evaluate(sql).isAllowed, "\(sql)")
        }
    }
}
