import Foundation
import Testing
@testable import QueryPolicy

/// `x.name` is a column, else the call `name(x)`, else the cast `x::name` (PostgreSQL's
/// ParseFuncOrColumn): the type rules and the per-function argument rules apply to each reading.
@Suite struct FieldNotationTests {
    @Test func fieldNotationCastsFollowTheTypeRules() {
        for sql in ["SELECT (g::oid).regrole FROM generate_series(1, 20000) AS g", "SELECT (10::oid)._regrole",
                    "SELECT t.x.regrole FROM (SELECT 10::oid AS x) AS t", "SELECT x.regrole FROM (SELECT 10::oid) AS t(x)"] {
            #expect(Profiles.readonly.evaluate(sql).rule == .catalogRelation, "\(sql)")
        }
        for sql in ["SELECT ('{\"<a/>\"}'::text)._xml", "SELECT x._xml FROM (VALUES ('{\"<a/>\"}'::text)) AS t(x)",
                    "SELECT ('<a/>'::text).xml"] {
            #expect(Profiles.readonly.evaluate(sql).rule != .query, "\(sql)")
            #expect(!Profiles.analyst.evaluate(sql).isAllowed, "\(sql)")
        }
        #expect(Profiles.analyst.evaluate("SELECT ('{\"<a/>\"}'::text)._xml").rule == .xmlParse)
    }

    @Test func aggregatesInFieldNotationKeepTheirArgumentRules() {
        for sql in ["SELECT ('<a/>').xmlagg", "SELECT ($1).xmlagg", "SELECT ('<a/>'::text).xmlagg"] {
            let decision = Profiles.analyst.evaluate(sql)
            #expect(!decision.isAllowed, "\(sql)")
        }
        #expect(Profiles.analyst.evaluate("SELECT ('<a/>').xmlagg").rule == .xmlParse)
        #expect(Profiles.analyst.evaluate("SELECT ($1).xmlagg").rule == .xmlParse)
        // An accumulating aggregate on an expression is admitted only as a call, where its rows
        // are counted (fifteenth red team, second pass): xmlagg(xmlelement(name a)).
        #expect(Profiles.analyst.evaluate("SELECT (xmlelement(name a)).xmlagg").rule == .functionNotAllowed)
        #expect(Profiles.analyst.evaluate("SELECT xmlagg(xmlelement(name a))").isAllowed)
    }

    @Test func ordinaryColumnAndFieldAccessStaysAdmitted() {
        for sql in ["SELECT o.id, o.total FROM orders o", "SELECT (t).id FROM orders AS t", "SELECT o.date, o.text, o.name FROM orders o",
                    "SELECT (x).int4 FROM (SELECT 1.5 AS x) AS s", "SELECT u.name, u.email FROM users u", "SELECT (o).total FROM orders o"] {
            #expect(Profiles.readonly.evaluate(sql).isAllowed, "\(sql)")
        }
        #expect(Profiles.analyst.evaluate("SELECT c.oid, c.relname FROM pg_class c").isAllowed)
        #expect(Profiles.analyst.evaluate("SELECT (g::oid).regrole FROM generate_series(1, 20) AS g").isAllowed)
    }
}

/// Functions that allocate by a constant argument (issue 14, finding 8).
@Suite struct ArgumentLimitTests {
    @Test func constantArgumentsOverTheLimitsAreDenied() {
        for sql in ["SELECT repeat('x', 1073741000)", "SELECT repeat('abc', 400000)", "SELECT repeat(name, 2000000) FROM users",
                    "SELECT repeat('x', (10^9)::int)", "SELECT repeat('x', (1e9)::int)", "SELECT repeat('x', '1000000000')",
                    "SELECT repeat('x', 1000 * 1000 * 1000)", "SELECT pg_catalog.repeat('x', power(10, 9)::int)",
                    "SELECT lpad('', 100000000)", "SELECT rpad('x', 2000000, 'y')",
                    "SELECT array_fill(0, ARRAY[100000, 100000])", "SELECT array_fill(0, '{1000000000}')",
                    "SELECT generate_series(1, 1e12)", "SELECT count(*) FROM generate_series(1, 1000000000)",
                    "SELECT * FROM generate_series(0.0, 1e7, 0.001)", "SELECT generate_series(10000000, 1, -1)",
                    "SELECT generate_series('2000-01-01'::timestamp, '2030-01-01', '1 second')",
                    "SELECT generate_series('2020-01-01 00:00'::timestamptz, '2021-01-01 00:00'::timestamptz, interval '10 ms')",
                    "SELECT format('%1000000000s', 'x')", "SELECT format('%1$-2000000s', 'x')", "SELECT format('%*s', 1000000000, 'x')",
                    "SELECT 'x'::char(10000000)", "SELECT CAST('x' AS character(5000000))", "SELECT B'1'::bit(100000000)",
                    "SELECT repeat(repeat('x', 1000000), 1000)", "SELECT repeat(lpad('', 100000) || 'x', 100)",
                    "SELECT repeat(repeat(repeat('ab', 1000), 1000), 1000)"] {
            let decision = Profiles.readonly.evaluate(sql)
            #expect(decision.rule == .argumentLimit, "\(sql): \(decision.rule.rawValue) \(decision.message)")
            #expect(decision.sqlstate == "54000")
        }
    }

    @Test func ordinaryArgumentsAreAdmitted() {
        for sql in ["SELECT repeat('-', 40)", "SELECT lpad(id::text, 8, '0') FROM orders", "SELECT rpad('x', 10, 'y')",
                    "SELECT array_fill(1, ARRAY[3])", "SELECT generate_series(1, 1000)", "SELECT generate_series(1, 10000000, 100)",
                    "SELECT generate_series('2024-01-01'::date, '2024-12-31'::date, '1 day'::interval)",
                    "SELECT generate_series(now(), now() + interval '1 year', '1 day')", "SELECT format('%s-%10s', id, total) FROM orders",
                    "SELECT 'x'::varchar(10000000)", "SELECT 'x'::char(10)", "SELECT repeat(name, 3) FROM users",
                    "SELECT repeat(repeat('-', 10) || '+', 20)"] {
            #expect(Profiles.readonly.evaluate(sql).isAllowed, "\(sql): \(Profiles.readonly.evaluate(sql).message)")
        }
    }

    @Test func limitsComeFromThePolicy() {
        var policy = Profiles.readonly.policy
        policy.maxFunctionResultBytes = 10
        policy.maxGeneratedRows = 5
        let engine = PolicyEngine(policy: policy)
        #expect(engine.evaluate("SELECT repeat('x', 11)").rule == .argumentLimit)
        #expect(engine.evaluate("SELECT repeat('x', 10)").isAllowed)
        #expect(engine.evaluate("SELECT generate_series(1, 6)").rule == .argumentLimit)
        #expect(engine.evaluate("SELECT generate_series(1, 5)").isAllowed)
    }
}
