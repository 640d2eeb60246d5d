import Testing
@testable import QueryPolicy

/// The fourth red team's findings (2026-12-06), each at its mechanism: values the query makes
/// itself, sizes of texts Palisade cannot work out, functions that multiply a text, intervals of
/// both signs, recursive UNION, padded arrays, and transaction counters in pg_class.
@Suite struct RedTeamFourTests {
    /// A column of a subquery, WITH query, VALUES list or function in FROM may carry a constant of
    /// the text: it is the text's to bound, not the data's.
    @Test func aCountLaunderedThroughRowsTheQueryMakesIsTheTexts() {
        refused("SELECT repeat('x', n) FROM (SELECT 1000000000 AS n) s")
        refused("WITH c AS (SELECT 1000000000 AS n) SELECT repeat('x', n) FROM c")
        refused("SELECT repeat('x', n) FROM (VALUES (1000000000)) v(n)")
        refused("SELECT lpad('x', n) FROM (SELECT 1000000000 AS n) s")
        refused("SELECT repeat('x', n) FROM generate_series(1000000000, 1000000000) n")
        refused("SELECT repeat('x', count(*)::int) FROM generate_series(1, 1000000)")
        refused("SELECT length(repeat(x, 1000)) FROM (SELECT repeat('x', 1000000) AS x) s")
        // least() bounds a count whatever feeds it, also through a cast to an integer.
        admitted("SELECT status, repeat('*', least(count(*) / 10, 60)::int) FROM orders GROUP BY status")
        admitted("SELECT repeat('-', least(id, 40)) FROM orders")
        admitted("SELECT repeat('  ', least(n - 1, 50)) FROM (SELECT 3 AS n) s")
        refused("SELECT repeat('x', least(n, 1000000000)) FROM (SELECT 1 AS n) s")
    }

    /// A call over the limit by itself is refused with what it does, not with the query's total
    /// (which was checked first and hid every call's own message); calls within it add up.
    @Test func aCallOverTheLimitAloneIsToldWhatItDoes() {
        let cases = [
            ("SELECT repeat('x', 100000000)", "repeat() could make"),
            ("SELECT lpad('x', 100000000)", "lpad() would make a text"),
            ("SELECT format('%100000000s', 'x')", "format() would pad"),
            ("SELECT array_fill(repeat('x', 1000), ARRAY[5000])", "array_fill() would make"),
            ("SELECT regexp_matches(repeat('x', 100000), '(((((((((())))))))))', 'g')", "regexp_matches() could keep"),
        ]
        for (sql, said) in cases {
            let decision = Profiles.readonly.evaluate(sql)
            #expect(decision.rule == .argumentLimit && decision.message.contains(said), "\(sql): \(decision.message)")
        }
        let together = Profiles.readonly.evaluate("SELECT repeat('x', 600000), repeat('y', 600000)")
        #expect(together.rule == .argumentLimit && together.message.contains("together"), "\(together.message)")
    }

    /// The fifth red team: a column or count(*) mixed into a count, text through a column of a
    /// table, and many allocating calls together.
    @Test func aCountNeedsABoundWhateverFeedsIt() {
        refused("SELECT repeat('x', 150000000 + 0 * id) FROM orders")
        refused("SELECT repeat('x', (count(*) * 150000000)::int)")
        refused("SELECT lpad('', (count(*) OVER ())::int * 50000000, 'x')")
        refused("SELECT format('%*s', (count(*) * 150000000)::int, 'x')")
        refused("SELECT array_fill(1, ARRAY[(count(*) * 40000000)::int])")
        refused("SELECT repeat('x', $1)")
        refused("SELECT length(repeat(repeat('x', 1000000) || substr(name, 1, 0), 1000)) FROM users")
        refused("SELECT length(concat(" + Array(repeating: "repeat('x', 500000)", count: 3).joined(separator: ", ") + "))")
        refused("SELECT count(*) FROM generate_series('2024-01-01'::timestamp, 'infinity', '1 second')")
        refused("SELECT count(*) FROM generate_series('2024-01-01'::timestamp, '2024-01-02', '1 second'::interval / 1000000)")
        admitted("SELECT format('%s', name) FROM (SELECT name FROM users) c")
        admitted("WITH c AS (SELECT name FROM users) SELECT replace(name, '_', ' '), regexp_replace(name, '\\s+', ' ', 'g') FROM c")
        admitted("SELECT repeat('x', 100), repeat('y', 200), lpad('z', 10)")
    }

    /// A text only the query decides, that Palisade cannot work out, counts as the policy's limit
    /// where it calls an allocating function, so it cannot be multiplied past it.
    @Test func aTextPalisadeCannotSizeIsNotMultiplied() {
        refused("SELECT length(repeat(upper(repeat('x', 1000000)), 1000))")
        refused("SELECT length(repeat((SELECT repeat('x', 1000000)), 1000))")
        refused("SELECT length(replace(repeat('a', 1000000), 'a', repeat('b', 1000)))")
        refused("SELECT length(regexp_replace(repeat('a', 1000000), 'a', repeat('b', 1000), 'g'))")
        refused("SELECT cardinality(array_fill(repeat('x', 1000000), ARRAY[1000]))")
        refused("SELECT length(format('%' || '1000000000' || 's', 'x'))")
        refused("SELECT length(format('%*s', (SELECT 1000000000), 'x'))")
        refused("SELECT length(format(repeat('%1$s', 20000), repeat('x', 50000)))")
        refused("SELECT format('%1$s%1$s', format('%1$s%1$s', repeat('x', 1000000)))")
        refused("SELECT octet_length(lpad('', 1048576, 'x'))")
        admitted("SELECT repeat(upper('ab'), 3), replace(name, ' ', '_'), format('%s: %s', name, now()) FROM users")
        admitted("SELECT format('%s orders', count(*)), array_fill('x'::text, ARRAY[3]), lpad(id::text, 8, '0') FROM orders")
    }

    @Test func formatCountsItsConversions() {
        #expect(Analyzer.formatShape("%s and %1$s, 100%%").conversions == 2)
        #expect(Analyzer.formatShape("%-10s|%*s").widest == 10)
        #expect(Analyzer.formatShape("%-10s|%*s").takesWidthArgument)
    }

    /// Parts of both signs may leave any step: no length, and a stated step Palisade cannot read is
    /// refused where it decides the count.
    @Test func anIntervalOfBothSignsHasNoLength() {
        #expect(TimeLiteral.seconds(ofInterval: "1 day -86399.999 seconds") == nil)
        #expect(TimeLiteral.seconds(ofInterval: "-1 day 00:00:01") == nil)
        #expect(TimeLiteral.seconds(ofInterval: "-6 hours") == 21_600)
        #expect(TimeLiteral.seconds(ofInterval: "1 day 02:00:00") == 93_600)
        refused("SELECT count(*) FROM generate_series('2000-01-01'::timestamp, '2030-01-01', '1 day -86399.999 seconds')")
        refused("SELECT count(*) FROM generate_series('Jan 1 2000'::timestamp, 'Jan 1 2030', 'PT1S')")
        admitted("SELECT generate_series(timestamp '2024-01-02', timestamp '2024-01-01', interval '-6 hours')")
        admitted("SELECT d::date FROM generate_series(now() - interval '7 days', now(), interval '1 day') d")
    }

    @Test func recursiveUnionIsRefusedAndUnionAllAdmitted() {
        refused("WITH RECURSIVE t(n) AS (SELECT 1 UNION SELECT n + 1 FROM t) SELECT count(*) FROM t", .recursiveUnion)
        refused("WITH RECURSIVE a AS (SELECT 1), t(n) AS (VALUES (1) UNION SELECT n + 1 FROM t) SELECT count(*) FROM t", .recursiveUnion)
        admitted("WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t WHERE n < 100) SELECT sum(n) FROM t")
        admitted("WITH t AS (SELECT 1 AS n UNION SELECT 2) SELECT * FROM t")
    }

    @Test func aPaddedArrayTypeCountsEveryElement() {
        refused("SELECT '{a,b}'::char(100000)[]")
        admitted("SELECT '{a,b}'::char(10)[], 'x'::char(100000)")
    }

    @Test func transactionCountersInPgClassAreStatistics() {
        refused("SELECT age(relfrozenxid) FROM pg_class WHERE relname = 'orders'", .statistics)
        refused("SELECT c.relminmxid FROM pg_class c", .statistics)
        admitted("SELECT relname, relkind FROM pg_class WHERE relname = 'orders'")
    }
}
