import Testing
@testable import QueryPolicy

/// After the eleventh round: what an accumulating aggregate keeps, counted over the rows the
/// text makes, and a jsonpath that rows the query makes carry.
@Suite struct RedTeamElevenTests {
    private func refused(_ sql: String, sourceLocation: SourceLocation = #_sourceLocation) {
        for profile in [Profiles.readonly, Profiles.analyst] {
            let decision = profile.evaluate(sql)
            #expect(decision.rule == .argumentLimit, "\(sql): \(decision.rule) \(decision.message)", sourceLocation: sourceLocation)
        }
    }

    private func admitted(_ sql: String, sourceLocation: SourceLocation = #_sourceLocation) {
        for profile in [Profiles.readonly, Profiles.analyst] {
            let decision = profile.evaluate(sql)
            #expect(decision.isAllowed, "\(sql): \(decision.message)", sourceLocation: sourceLocation)
        }
    }

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
}
