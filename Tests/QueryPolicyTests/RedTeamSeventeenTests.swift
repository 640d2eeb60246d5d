import Testing
@testable import QueryPolicy

/// After the seventeenth round: a regular expression's pattern built where the sizing did not
/// follow it (a number's digits joined in, a call that rewrites its constants, a column of rows
/// the query makes, a jsonpath's escapes). 32 such patterns held 215 MB of a backend.
@Suite struct RedTeamSeventeenTests {
    private func rule(_ sql: String) -> Rule { Profiles.readonly.evaluate(sql).rule }

    @Test func aPatternIsSizedAsPostgreSQLJoinsIt() {
        // The digits of a number are part of the pattern `||` makes.
        // In this order, so that the second cannot take the first's decision as a text that differs only in its numbers.
        #expect(rule(#"SELECT 'a' ~ ('(\w{1,20}){1,' || 19 || '}')"#) == .query)
        #expect(rule(#"SELECT 'a' ~ ('(\w{1,200}){1,' || 199 || '}')"#) == .argumentLimit)
        // Calls that rewrite, reorder or unescape their constants cannot be followed.
        for built in [#"reverse('}991,1{)}002,1{w\(')"#, #"('(\w' || chr(123) || '1,200})' || chr(123) || '1,199}')"#,
                      #"translate('(\wA1,200})', 'A', '{')"#, #"upper('(\w{1,60}){1,60}')"#, #"('{"p":"x"}'::json->>'p')"#,
                      #"(SELECT '(\w{1,200})' UNION SELECT 'b')"#, #"(VALUES ('a'))"#, "('ab'::varchar(1))"] {
            #expect(rule("SELECT 'a' ~ \(built)") == .argumentLimit, "\(built)")
        }
        // Joining, choosing and casting to text keep the constants in order.
        #expect(rule(#"SELECT 'a' ~ concat('(\w{1,200})', '{1,199}')"#) == .argumentLimit)
        #expect(rule(#"SELECT 'a' ~ coalesce(NULL, '(\w{1,200})' || '{1,199}')"#) == .argumentLimit)
        #expect(rule(#"SELECT 'a' ~ (CASE WHEN true THEN '(\w{1,200})' END || '{1,199}'::text)"#) == .argumentLimit)
        #expect(rule(#"SELECT x FROM t WHERE x ~ concat('^', 'abc', '[0-9]+$')"#) == .query)
        // Calls Palisade follows: chr, lower and upper exactly, replace and string_agg over the data.
        #expect(rule("SELECT regexp_replace(notes, chr(13) || chr(10), ' ', 'g') FROM t") == .query)
        #expect(rule("SELECT x FROM t WHERE x ~* lower('ABC.*')") == .query)
        #expect(rule(#"SELECT x FROM t WHERE x ~ replace(t.domain, '.', '\.')"#) == .query)
        #expect(rule("SELECT x FROM t WHERE x ~* (SELECT string_agg(word, '|') FROM banned_words)") == .query)
        #expect(rule("SELECT x FROM t WHERE x ~* ANY (ARRAY(SELECT pattern FROM spam_rules WHERE enabled = true))") == .query)
        // A column or parameter between constants may put a count of up to 255 in a bound.
        #expect(rule(#"SELECT 1 FROM orders WHERE region ~ ANY (SELECT '(\w{1,200}){1,' || id || '}' FROM orders)"#) == .argumentLimit)
        #expect(rule(#"SELECT 'a' ~ ('(\w{1,200}){1,' || $1 || '}')"#) == .argumentLimit)
        // Text the session or the query makes: current_query() is the text itself, an alias a key of row_to_json.
        #expect(rule(#"SELECT 'a' ~ current_query() -- (\w{1,200}){1,199}"#) == .argumentLimit)
        #expect(rule("WITH r AS (SELECT current_query() AS p) SELECT 'a' ~ p FROM r") == .argumentLimit)
        #expect(rule(#"SELECT count(*) FROM (SELECT id AS "(\w{1,200}){1,199}" FROM orders LIMIT 1) s, json_object_keys(row_to_json(s)) k WHERE 'a' ~ k"#) == .argumentLimit)
        #expect(rule(#"SELECT count(*) FROM (SELECT id AS "(\w{1,200}){1,199}" FROM orders LIMIT 1) s, json_object_keys(to_jsonb(s.*)) k WHERE 'a' ~ k"#) == .argumentLimit)
        #expect(rule(#"SELECT p.id FROM posts p CROSS JOIN LATERAL unnest(p.tags) AS tag WHERE p.body ~* ('#' || tag || '\M')"#) == .query)
        #expect(rule("SELECT x FROM t WHERE x ~ current_user") == .query)
        // Expanded and basic modes, and back-references.
        for pattern in [#"(?x)(\w{1, 200}){1, 199}"#, #"(?b)\(a\{1,200\}\)\{1,199\}"#, #"(\w{1,200})\1{1,199}"#] {
            #expect(rule("SELECT 'a' ~ '\(pattern)'") == .argumentLimit, "\(pattern)")
        }
        #expect(rule(#"SELECT x FROM t WHERE x ~ ANY (ARRAY['^a', 'b$'])"#) == .query)
    }

    @Test func aPatternInAColumnOfRowsTheQueryMakesIsRefused() {
        for sql in [#"SELECT 'a' ~ p.pat FROM (SELECT '(\w{1,200}){1,199}' AS pat) p"#,
                    "WITH p AS (SELECT 'abc' AS pat) SELECT 'a' ~ pat FROM p",
                    "SELECT 'a' ~ pat FROM (VALUES ('abc')) v(pat)",
                    "SELECT 'a' ~ pat FROM unnest(ARRAY['abc']) pat",
                    "SELECT x FROM t, (SELECT 'abc' p) s WHERE x SIMILAR TO p"] {
            #expect(rule(sql) == .argumentLimit, "\(sql)")
        }
        // A table's column is the data's, with or without constants around it.
        #expect(rule("SELECT name FROM t WHERE name ~* ('^' || t.prefix)") == .query)
        #expect(rule("SELECT 'a' ~ (SELECT p FROM t WHERE id = 1)") == .query)
        #expect(rule("SELECT 'a' ~ lower(t.x) FROM t") == .query)
        // A tsquery in FROM matched with @@ is no jsonpath.
        #expect(rule("SELECT title FROM docs, websearch_to_tsquery('english', 'cat') q WHERE tsv @@ q") == .query)
        // SIMILAR TO is sized as the regex it becomes; a prefix ~ is bitwise NOT.
        #expect(rule("SELECT x FROM t WHERE x NOT SIMILAR TO 'ab_c%'") == .query)
        #expect(rule(#"SELECT x FROM t WHERE x SIMILAR TO '(\w{1,200}){1,199}'"#) == .argumentLimit)
        #expect(rule("SELECT ~ B'1010'") == .query)
    }

    @Test func jsonPathEscapesAreReadAsItsScannerReadsThem() {
        #expect(RegexSize.likeRegexPatterns(inJSONPath: #"$ ? (@ like_regex "a\u007b1,2}\x7d\"\\")"#) == [#"a{1,2}}"\"#])
        #expect(RegexSize.likeRegexPatterns(inJSONPath: #"$ ? (@ like_regex /* "x" */ "b{2}" flag "i")"#) == ["b{2}"])
        #expect(RegexSize.likeRegexPatterns(inJSONPath: #"$ ? (@ like_regex "\u{7b}")"#) == ["{"])
        #expect(rule(#"SELECT jsonb_path_exists('{}', '$ ? (@ like_regex "(\\w\u007b1,200}){1,199}")')"#) == .argumentLimit)
        #expect(rule(#"SELECT jsonb_path_exists('{}', ('$ ? (@ like_regex "(\\w{1,200}){1,' || 199 || '}")')::jsonpath)"#) == .argumentLimit)
        #expect(rule(#"SELECT jsonb_path_exists('{}', '$ ? (@ like_regex "^ab")')"#) == .query)
    }
}

/// Server-wide counters on a standby, and SERIALIZABLE's predicate locks.
@Suite struct RedTeamSeventeenTransactionAndStatisticsTests {
    @Test func everyStatisticsViewOfPgCatalogIsGuardedOrListedAsReadable() {
        for name in PG15Catalog.pgCatalogRelations where name.hasPrefix("pg_stat") {
            let special = SpecialRelation.byName.value(for: name)
            #expect(special?.isStatistics == true || special?.isSecret == true || StatisticsCatalog.readableStatisticsViews.contains(name), "\(name)")
        }
        #expect(Profiles.analyst.evaluate("SELECT prefetch, hit FROM pg_stat_recovery_prefetch").rule == .statistics)
        #expect(Profiles.analyst.evaluate("SELECT confl_snapshot FROM pg_stat_database_conflicts").rule == .statistics)
    }

    @Test func serializableIsAdmittedOnlyAsReadOnlyDeferrable() {
        for sql in ["BEGIN ISOLATION LEVEL SERIALIZABLE", "BEGIN ISOLATION LEVEL SERIALIZABLE READ ONLY",
                    "START TRANSACTION ISOLATION LEVEL SERIALIZABLE, READ ONLY, NOT DEFERRABLE",
                    "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", "SET TRANSACTION NOT DEFERRABLE",
                    "SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL SERIALIZABLE",
                    "SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL SERIALIZABLE, READ ONLY, DEFERRABLE"] {
            #expect(Profiles.readonly.evaluate(sql).rule == .serializableTransaction, "\(sql)")
        }
        for sql in ["BEGIN ISOLATION LEVEL SERIALIZABLE, READ ONLY, DEFERRABLE", "BEGIN READ ONLY DEFERRABLE ISOLATION LEVEL SERIALIZABLE",
                    "BEGIN ISOLATION LEVEL REPEATABLE READ", "BEGIN ISOLATION LEVEL READ COMMITTED, NOT DEFERRABLE", "BEGIN",
                    "BEGIN READ ONLY NOT DEFERRABLE", "SET SESSION CHARACTERISTICS AS TRANSACTION NOT DEFERRABLE",
                    "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE, READ ONLY, DEFERRABLE"] {
            #expect(Profiles.readonly.evaluate(sql).isAllowed, "\(sql)")
        }
    }
}

/// Values the client or the text makes large where the sizing took them as small.
@Suite struct RedTeamSeventeenValueSizeTests {
    private func rule(_ sql: String) -> Rule { Profiles.readonly.evaluate(sql).rule }

    /// A parameter an aggregate keeps in every row is held to 256 bytes at each Bind (the relay's
    /// `parametersAnAggregateKeepsAreHeldAtEachBind`), and counts as many here.
    @Test func aParameterAnAggregateKeepsIsHeldAtBind() {
        for sql in ["SELECT length(string_agg($1::text, '')) FROM generate_series(1, 900)",
                    "SELECT length(string_agg(x, '')) FROM (SELECT $1::text AS x FROM generate_series(1, 100000)) s",
                    "SELECT string_agg(x, '') FROM unnest($1::text[]) u(x), generate_series(1, 1000)",
                    "SELECT array_agg($1::int[]) FROM generate_series(1, 100)"] {
            let decision = Profiles.readonly.evaluate(sql)
            #expect(!decision.isAllowed || decision.boundParameters == [1], "\(sql)")
        }
        // Parameters that filter, or carry numbers, stay admitted.
        #expect(rule("SELECT string_agg(name, ', ') FROM customers WHERE id > $1") == .query)
        #expect(rule("SELECT array_agg(CASE WHEN status = $1 THEN id END) FROM orders") == .query)
        #expect(rule("WITH o AS (SELECT id, total FROM orders WHERE customer_id = $1) SELECT json_agg(o) FROM o") == .query)
        // A delimiter or a key kept in every row is admitted, its values held at each Bind.
        let delimiter = Profiles.readonly.evaluate("SELECT string_agg(users.name, $1) FROM users WHERE team_id = $2")
        #expect(delimiter.isAllowed && delimiter.boundParameters == [1])
        #expect(Profiles.readonly.evaluate("SELECT json_agg(json_build_object($1, name)) FROM customers").boundParameters == [1])
        #expect(rule("SELECT jsonb_agg(jsonb_build_object('id', c.id)) FROM customers c JOIN unnest($1::int[]) u(id) ON u.id = c.id") == .query)
    }

    /// Made rows feed one another: a parameter that reaches a kept value through a join's alias or
    /// a LATERAL subquery's renamed column is held at Bind too (third pass).
    @Test func aParameterThroughAnotherAliasIsHeldAtBind() {
        for sql in ["SELECT string_agg(j.y, '') FROM ((SELECT $1::text AS y) s CROSS JOIN generate_series(1, 300) g) j",
                    "SELECT string_agg(w.z, '') FROM (SELECT $1::text AS y) s, LATERAL (SELECT s.y AS z) w, generate_series(1, 300)",
                    "SELECT string_agg(z, '') FROM (SELECT $1::text) s(y), LATERAL (SELECT y AS z) w, generate_series(1, 300)"] {
            let decision = Profiles.readonly.evaluate(sql)
            #expect(!decision.isAllowed || decision.boundParameters == [1], "\(sql)")
        }
        #expect(Profiles.readonly.evaluate("SELECT json_agg(p) FROM products p JOIN unnest($1::text[]) AS u(sku) ON u.sku = p.sku").boundParameters == [])
    }

    @Test func aLongNumberIsSizedByItsLengthAndKeptInTheSharedKey() {
        let long = String(repeating: "1", count: 60_000) + ".5"
        let short = "1.5"
        func aggregate(_ number: String) -> String {
            "SELECT length(string_agg(x::text, '')) FROM (SELECT \(number) AS x FROM generate_series(1, 15000)) s"
        }
        // The short one first: the long one must not take its decision as a text that differs only in its numbers.
        #expect(rule(aggregate(short)) == .query)
        #expect(rule(aggregate(long)) == .argumentLimit)
        let key = { (text: String) in Array(text.utf8).withUnsafeBufferPointer { LiteralBlindKey.of($0)?.key } }
        #expect(key("SELECT 1.5, 2") == key("SELECT 7.25, 3"))
        #expect(key("SELECT 2, \(long)") != nil && key("SELECT 2, \(long)") != key("SELECT 3, 9\(long.dropFirst())"))
    }
}
