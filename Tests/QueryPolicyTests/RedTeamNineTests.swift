import Testing
@testable import QueryPolicy

/// After the ninth red team: calls whose result grows with the product of two inputs (ts_rewrite,
/// ts_headline, concat_ws over a VARIADIC array), a count that allocates (polygon), an aggregate
/// that keeps its input (range_agg), a jsonpath that walks its json again for every item (also
/// through the @? and @@ operators), and a catalog row type that carries transaction ids.
@Suite struct RedTeamNineTests {
    @Test func aRewriteThatCopiesItsSubstituteAtEveryMatchIsSized() {
        refused("SELECT numnode(ts_rewrite((repeat('a|', 30000) || 'a')::tsquery, 'a'::tsquery, (repeat('b|', 30000) || 'b')::tsquery))", .argumentLimit)
        refused("SELECT ts_rewrite(('" + Array(repeating: "a", count: 2000).joined(separator: "|") + "')::tsquery, 'a', ('"
                + Array(repeating: "b", count: 2000).joined(separator: "|") + "')::tsquery)", .argumentLimit)
        admitted("SELECT ts_rewrite('a & b'::tsquery, 'a'::tsquery, 'c'::tsquery)")
        #expect(Profiles.readonly.evaluate("SELECT ts_rewrite((repeat('a|', 30000) || 'a')::tsquery, 'a'::tsquery, (repeat('b|', 30000) || 'b')::tsquery)")
            .message.hasPrefix("ts_rewrite() could make"))
    }

    @Test func aHeadlineThatWrapsEveryMatchIsSized() {
        refused("SELECT ts_headline('simple', repeat('a ', 400000), 'a'::tsquery, 'HighlightAll=true, StartSel=' || repeat('x', 1000) || ', StopSel=' || repeat('y', 1000))", .argumentLimit)
        refused("SELECT ts_headline(repeat('a b ', 100000), 'a'::tsquery, 'MaxFragments=100000, FragmentDelimiter=' || repeat('z', 1000))", .argumentLimit)
        admitted("SELECT ts_headline('english', region, to_tsquery('english', 'north'), 'StartSel=<b>, StopSel=</b>') FROM orders")
        // ts_headline(config, document, query): its last argument is the query, not options.
        let text = "'" + Array(repeating: "lorem ipsum dolor sit amet", count: 2000).joined(separator: " ") + "'"
        admitted("SELECT ts_headline('english', \(text), to_tsquery('english', 'dolor'))")
        admitted("SELECT ts_headline(\(text), to_tsquery('english', 'dolor'), 'MaxWords=20')")
    }

    @Test func concatWithSeparatorOverAVariadicArrayIsSizedAsArrayToString() {
        refused("SELECT length(concat_ws(repeat('x', 1000), VARIADIC array_fill('a'::text, ARRAY[1000000])))", .argumentLimit)
        refused("SELECT length(concat_ws(repeat('x', 1000), VARIADIC array_fill(''::text, ARRAY[1000000])))", .argumentLimit)
        admitted("SELECT concat_ws(', ', VARIADIC ARRAY['a', 'b'])")
        admitted("SELECT concat_ws(', ', region, region) FROM orders")
    }

    @Test func aPolygonsPointsAreCounted() {
        refused("SELECT npoints(polygon(60000000, circle '((0,0),1)'))", .argumentLimit)
        refused("SELECT npoints(polygon(n, circle '((0,0),1)')) FROM (SELECT 60000000 AS n) s", .argumentLimit)
        admitted("SELECT polygon(8, circle '((0,0),1)')")
        admitted("SELECT polygon(box '((0,0),(1,1))')")
    }

    @Test func rangeAggKeepsEveryInputLikeArrayAgg() {
        refused("SELECT range_agg(numrange(0, 1e131071 - 1)) IS NULL FROM generate_series(1, 1000000)", .argumentLimit)
        admitted("SELECT region, range_agg(int4range(id, id + 1)) FROM orders GROUP BY region")
        // Gaps and islands over a subquery or WITH query: a range holds its bounds, once each.
        admitted("WITH r AS (SELECT id FROM orders) SELECT range_agg(int4range(id, id + 1)) FROM r")
        admitted("SELECT range_agg(tstzrange(t, t + interval '1 day')) FROM (SELECT now() AS t FROM orders) s")
    }

    @Test func aJSONPathThatWalksItsJSONAgainPerItemIsSized() {
        refused("SELECT jsonb_path_exists(to_jsonb(array_fill(1, ARRAY[30000])), '$[*] ? ($[*] == 2)')", .argumentLimit)
        refused("SELECT to_jsonb(array_fill(1, ARRAY[30000])) @? '$[*] ? ($[*] == 2)'", .argumentLimit)
        refused("SELECT to_jsonb(array_fill(1, ARRAY[30000])) @@ '$[*] == $[*]'", .argumentLimit)
        // A small target, and a variable the text makes large.
        refused("SELECT jsonb_path_exists('[1]', '$[*] ? (@ == $v[*])', jsonb_build_object('v', to_jsonb(array_fill(1, ARRAY[30000]))))", .argumentLimit)
        // The root walked again over a table's json: its size is the data's, and so is the square.
        refused("SELECT count(*) FROM orders WHERE region::jsonb @? '$[*] ? (@ == $[*])'", .argumentLimit)
        refused("SELECT jsonb_path_query(region::jsonb, '$.a[*] ? (@ == $.b.*)') FROM orders", .argumentLimit)
        // Lax mode (the default) unwraps arrays in a comparison, so the root named again walks it
        // (review of the ninth red team's fix): `@ == $`, `@ == $.a`, a range with a tab.
        refused("SELECT count(*) FROM orders WHERE region::jsonb @? '$[*] ? (@ == $)'", .argumentLimit)
        refused("SELECT count(*) FROM orders WHERE region::jsonb @? '$.a[*] ? (@ == $.a)'", .argumentLimit)
        refused("SELECT count(*) FROM orders WHERE region::jsonb @? 'strict $.a ? (@ == $.b[0 to\t5000])'", .argumentLimit)
        // Variables from a table, a path Palisade cannot read, a parameter's json.
        refused("SELECT jsonb_path_exists(region::jsonb, '$[*] ? (@ == $v[*])', jsonb_build_object('v', region::jsonb)) FROM orders", .argumentLimit)
        refused("SELECT count(*) FROM orders WHERE region::jsonb @? ('$[*] ? (@ == $[*])' || '')::jsonpath", .argumentLimit)
        refused("SELECT jsonb_path_exists(region::jsonb, $1) FROM orders", .argumentLimit)
        refused("SELECT $1::jsonb @? '$[*] ? (@ == $)'", .argumentLimit)
        refused("SELECT jsonb_path_query($1::jsonb, '$.**')", .argumentLimit)
        refused("SELECT jsonb_pretty($1::jsonb)", .argumentLimit)
        // In strict mode a member of the root is one lookup per item; a scalar variable too;
        // full-text search's @@, with a query written out or built from calls.
        admitted("SELECT count(*) FROM orders WHERE region::jsonb @? 'strict $.items[*] ? (@.sku == $.featured)'")
        admitted("SELECT count(*) FROM orders WHERE region::jsonb @? 'strict $.items[*] ? (@.price > $.min && @.tags[*] == \"x\")'")
        admitted("SELECT jsonb_path_query('{\"a\":[1,2]}', '$.a[*] ? (@ > $min)', '{\"min\": 1}')")
        admitted("SELECT jsonb_path_query(region::jsonb, '$.a[*] ? (@ > $min)', jsonb_build_object('min', 10)) FROM orders")
        admitted("SELECT count(*) FROM orders WHERE to_tsvector(region) @@ to_tsquery('north')")
        admitted("SELECT count(*) FROM orders WHERE to_tsvector(region) @@ (to_tsquery('a') && to_tsquery('b'))")
        admitted("SELECT count(*) FROM orders WHERE region::jsonb @? '$.price ? (@ like_regex \"^\\\\$[0-9]*\")'")
        admitted("SELECT jsonb_build_object('a', 1) @? '$.a ? (@ > 0)'")
        admitted("SELECT $1::jsonb @? '$.a ? (@ > 1)'")
    }

    @Test func aJSONPathsShapeIsReadFromItsText() {
        #expect(JSONPathShape("$[*] ? (@ == $[*])").walksRootAgain)
        #expect(JSONPathShape("$[*] ? (@ == $)").walksRootAgain)
        #expect(!JSONPathShape("strict $[*] ? (@ == $.a.b[0])").walksRootAgain)
        #expect(JSONPathShape("strict $.a ? (@ == $.b[0 to last])").walksRootAgain)
        #expect(JSONPathShape("strict $.a ? (@ == $.b.keyvalue())").walksRootAgain)
        #expect(JSONPathShape("strict $.a ? (@ == $.b.*)").walksRootAgain)
        // Keywords in any case, as PostgreSQL reads them.
        #expect(JSONPathShape("STRICT $.a ? (@ == $.b[0 TO 1])").walksRootAgain)
        #expect(JSONPathShape("Strict $.a ? (@ == $.b.KeyValue())").walksRootAgain)
        #expect(!JSONPathShape("STRICT $.a ? (@ == $.b)").walksRootAgain)
        #expect(JSONPathShape("$.a[*] ? (@ == $x[*])") == JSONPathShape(usesVariables: true))
        #expect(JSONPathShape("$.a ? (@ == $\"my var\")") == JSONPathShape(usesVariables: true))
        #expect(JSONPathShape("lax $.**") == JSONPathShape(walksEveryDepth: true, everyDepthWalks: 1))
        #expect(JSONPathShape("$.price ? (@ like_regex \"^\\\\$[0-9]\")") == JSONPathShape())
        #expect(JSONPathShape("$.a ? (@ > 1)") == JSONPathShape())
    }

    @Test func aCatalogRowTypeWithTransactionIDsIsATransactionIDType() {
        let readonly = Profiles.readonly
        for sql in ["SELECT age((jsonb_populate_record(NULL::pg_class, '{\"relfrozenxid\":\"3\"}')).relfrozenxid)",
                    "SELECT (jsonb_populate_record(NULL::pg_stat_activity, '{\"backend_xid\":\"3\"}')).backend_xid",
                    "SELECT * FROM jsonb_to_record('{\"a\":\"3\"}') AS x(a pg_locks)",
                    "SELECT (jsonb_populate_record(NULL::pg_catalog._pg_class, '{}'))"] {
            let decision = readonly.evaluate(sql)
            #expect(decision.rule == .statistics, "\(sql): \(decision.rule) \(decision.message)")
        }
        #expect(PG15Catalog.transactionIDRowTypes.isSuperset(of: ["pg_class", "pg_stat_activity", "pg_locks", "pg_database"]))
        #expect(!PG15Catalog.transactionIDRowTypes.contains("pg_namespace"))
    }
}
