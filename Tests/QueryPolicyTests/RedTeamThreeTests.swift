import Foundation
import Testing
@testable import QueryPolicy

/// The third red team's findings, each at its mechanism: type unification, system columns,
/// transaction ids, arguments Palisade does not evaluate, and casts that change a setting's name.
@Suite struct RedTeamThreeTests {
    /// PostgreSQL gives every member of COALESCE, CASE, GREATEST/LEAST, ARRAY[], a VALUES column, a
    /// set operation's column, a polymorphic function and an array operator one type: beside an xml
    /// value an untyped literal or parameter becomes xml, and xml_in parses it.
    @Test func anUntypedValueBesideXMLIsRefusedWhereverTypesAreUnified() {
        let unified = [
            "SELECT COALESCE('<r>unclosed', xmlelement(name a))",
            "SELECT CASE WHEN true THEN '<r>' ELSE xmlelement(name a) END",
            "SELECT ARRAY[xmlelement(name a), '<r>']",
            "SELECT x FROM (VALUES (xmlelement(name a)), ('<r>')) v(x)",
            "SELECT xmlelement(name a) UNION ALL SELECT '<r>'",
            "SELECT GREATEST(xmlelement(name a), '<r>')",
            "SELECT array_append(ARRAY[xmlelement(name a)], '<r>')",
            "SELECT COALESCE($1, xmlelement(name a))",
            "SELECT ARRAY[xmlelement(name a)] || $1",
            "SELECT ARRAY[xmlelement(name a)] @> '{<r>}'",
            "SELECT COALESCE((SELECT '<r>'), (SELECT xmlelement(name a)))",
            "SELECT xmlagg(x) FROM (SELECT COALESCE('<r>', xmlelement(name a)) x) s",
        ]
        for sql in unified {
            #expect(Profiles.readonly.evaluate(sql).rule == .xmlParse, "\(sql)")
            #expect(Profiles.analyst.evaluate(sql).rule == .xmlParse, "\(sql)")
        }
        let admitted = [
            // A typed literal keeps its type; building XML from columns and constants parses nothing.
            "SELECT COALESCE('<r>'::text, xmlelement(name a)::text)",
            "SELECT xmlelement(name user, xmlattributes(id AS id, name), xmlforest(email, country)) FROM users",
            "SELECT xmlforest('abc' AS foo, 123 AS bar), xmlelement(name foo, xmlattributes('xyz' AS bar), 'content')",
            "SELECT xmlagg(xmlelement(name o, xmlattributes(id AS id), total) ORDER BY id) FROM orders",
            // Without XML in the query, untyped literals are unified as before.
            "SELECT COALESCE(name, 'n/a'), CASE WHEN id > 1 THEN 'x' ELSE 'y' END, ARRAY['a', 'b'] FROM users",
            "SELECT 'a' UNION ALL SELECT 'b'",
        ]
        for sql in admitted {
            #expect(Profiles.readonly.evaluate(sql).isAllowed, "\(sql)")
        }
    }

    /// ctid gives the heap's page count and, by the gaps between a tenant's rows, how many rows
    /// other tenants have; xmin and xmax count every tenant's writes.
    @Test func systemColumnsThatShowOtherTenantsAreRefusedUnderRowLevelSecurity() {
        for sql in ["SELECT min(ctid), max(ctid) FROM orders", "SELECT o.xmin FROM orders o", "SELECT \"xmax\" FROM orders",
                    "SELECT public.orders.cmin FROM orders", "SELECT age(xmin) FROM orders", "SELECT id FROM orders ORDER BY ctid"] {
            #expect(Profiles.readonly.evaluate(sql).rule == .statistics, "\(sql)")
            #expect(Profiles.analyst.evaluate(sql).rule == .statistics, "\(sql)")
        }
        for sql in ["SELECT tableoid::regclass, id FROM orders", "SELECT id, \"CTID\" FROM orders", "SELECT ctid_note FROM orders"] {
            #expect(Profiles.readonly.evaluate(sql).isAllowed, "\(sql)")
        }
    }

    @Test func transactionIdsAreRefusedUnderRowLevelSecurity() {
        for sql in ["SELECT age('3'::xid)", "SELECT NULL::pg_catalog.xid8", "SELECT '10:20:'::pg_snapshot", "SELECT CAST('3' AS xid)"] {
            #expect(Profiles.readonly.evaluate(sql).rule == .statistics, "\(sql)")
        }
        #expect(Profiles.readonly.evaluate("SELECT age(placed_at) FROM orders").isAllowed)
    }

    /// An allocating function's argument that no column or parameter feeds is decided by the text
    /// alone: Palisade evaluates it or refuses it, instead of leaving a gigabyte to the server.
    @Test func allocatingArgumentsFromTheTextAloneAreEvaluatedOrRefused() {
        let refused = [
            "SELECT length(repeat('x', @ -1000000000))", "SELECT length(repeat('x', E'\\f1000000000'))",
            "SELECT length(repeat('x', E'\\r1000000000'::int))", "SELECT count(*) FROM generate_series(1, ~ -1000000000001::bigint)",
            "SELECT count(*) FROM generate_series(1, U&'\\000B1000000000000')", "SELECT length(lpad('x', 2000000000 >> 1))",
            "SELECT cardinality(array_fill(0, ARRAY[@ -100000, @ -100000]))", "SELECT length(repeat('x', 1000000000 | 0))",
            "SELECT length(repeat('x', |/ 1000000000000000000))", "SELECT length(repeat('x', (SELECT 1000000000)))",
            "SELECT length(repeat('x', abs(-1000000000)))", "SELECT length(repeat('x', greatest(1000000000, 1)))",
            "SELECT length(rpad('x', length('abc') * 1000000000))", "SELECT count(*) FROM generate_series(1, least(10000000000, 20000000000))",
        ]
        for sql in refused {
            #expect(Profiles.readonly.evaluate(sql).rule == .argumentLimit, "\(sql)")
        }
        // A count from a column or parameter needs a bound too since the fifth red team
        // (`repeat('x', 150000000 + 0 * id)` made 164 MB): least() gives one.
        for sql in ["SELECT repeat('-', least(depth, 40)) FROM t", "SELECT lpad(id::text, 6, '0') FROM t", "SELECT repeat('ab', @ -3)",
                    "SELECT repeat('x', least($1, 100))", "SELECT count(*) FROM generate_series(1, ~ -11)", "SELECT lpad('7', 3 | 4, '0')"] {
            #expect(Profiles.readonly.evaluate(sql).isAllowed, "\(sql)")
        }
        for sql in ["SELECT repeat('-', depth) FROM t", "SELECT repeat('x', $1)"] {
            #expect(Profiles.readonly.evaluate(sql).rule == .argumentLimit, "\(sql)")
        }
    }

    /// varchar(n), char(n), "char" and name keep a prefix of the text: the server reads another name.
    @Test func aSettingNameThroughACastThatCutsItIsRefused() {
        for sql in ["SELECT current_setting('request.jwt.claims'::varchar(11))", "SELECT current_setting('request.jwt.claims'::char(17))",
                    "SELECT current_setting('request.jwt.claims'::\"char\")", "SELECT current_setting('request.jwt.claims'::name)"] {
            #expect(Profiles.readonly.evaluate(sql).rule == .currentSetting, "\(sql)")
        }
        #expect(Profiles.readonly.evaluate("SELECT current_setting('request.jwt.claims'::text, true)").isAllowed)
    }

    /// What only the server shows: an extension's operators and types, sequences, xml columns.
    static let server = ServerFunctions(
        names: ["public": ["intarray_del_elem", "hstore_in"]],
        operators: ["public": ["-": ["public.intarray_del_elem"], "->": ["public.fetchval"], "=": ["pg_catalog.abs"]]],
        typeInputs: ["public": ["hstore": "public.hstore_in"]],
        sequences: ["public": ["orders_id_seq"]],
        xmlColumns: ["body"])

    @Test func anExtensionsOperatorOnTheSearchPathNeedsTheAllowlist() {
        let engine = PolicyEngine(policy: Profiles.readonly.policy, serverFunctions: Self.server)
        for sql in ["SELECT ARRAY[1,2,3] - 2", "SELECT total - 1 FROM orders", "SELECT x FROM t WHERE a - b > 0"] {
            #expect(engine.evaluate(sql).rule == .operatorNotAllowed, "\(sql)")
        }
        // The built-in one, named as such; an operator that runs an admitted built-in; other symbols.
        for sql in ["SELECT total OPERATOR(pg_catalog.-) 1 FROM orders", "SELECT 1 = 1", "SELECT total + 1 FROM orders"] {
            #expect(engine.evaluate(sql).isAllowed, "\(sql)")
        }
        var policy = Profiles.readonly.policy
        policy.extraFunctions.insert("public.intarray_del_elem")
        #expect(PolicyEngine(policy: policy, serverFunctions: Self.server).evaluate("SELECT ARRAY[1,2,3] - 2").isAllowed)
        #expect(Profiles.readonly.evaluate("SELECT ARRAY[1,2,3] - 2").isAllowed, "without such an operator the built-ins are all there is")
    }

    @Test func aCastRunsTheTypesInputFunctionUnderTheAllowlist() {
        let engine = PolicyEngine(policy: Profiles.readonly.policy, serverFunctions: Self.server)
        for sql in ["SELECT 'a=>1'::hstore", "SELECT CAST('a=>1' AS public.hstore)", "SELECT '{}'::_hstore"] {
            #expect(engine.evaluate(sql).rule == .functionNotAllowed, "\(sql)")
        }
        #expect(engine.evaluate("SELECT 'a'::text, 1::int").isAllowed)
    }

    @Test func aSequenceIsNotReadableUnderRowLevelSecurity() {
        let engine = PolicyEngine(policy: Profiles.readonly.policy, serverFunctions: Self.server)
        for sql in ["SELECT last_value FROM orders_id_seq", "SELECT * FROM public.orders_id_seq"] {
            #expect(engine.evaluate(sql).rule == .statistics, "\(sql)")
        }
        #expect(engine.evaluate("WITH orders_id_seq AS (SELECT 1 AS n) SELECT n FROM orders_id_seq").isAllowed)
        #expect(engine.evaluate("SELECT id FROM orders").isAllowed)
    }

    @Test func anXMLColumnMakesUntypedNeighboursRefused() {
        let engine = PolicyEngine(policy: Profiles.readonly.policy, serverFunctions: Self.server)
        #expect(engine.evaluate("SELECT COALESCE(body, '<r>') FROM docs").rule == .xmlParse)
        #expect(engine.evaluate("SELECT COALESCE(body::text, '<r>'::text) FROM docs").isAllowed)
        // A column whose name libpg_query escapes in its tree (`<`, `>`, quotes, control characters).
        let odd = "b<o>d\"y\\\u{01}\n"
        let oddEngine = PolicyEngine(policy: Profiles.readonly.policy, serverFunctions: ServerFunctions(xmlColumns: [odd]))
        let quoted = "\"" + odd.replacingOccurrences(of: "\"", with: "\"\"") + "\""
        #expect(oddEngine.evaluate("SELECT COALESCE(\(quoted), '<r>') FROM docs").rule == .xmlParse)
        #expect(engine.evaluate("SELECT COALESCE(title, 'untitled') FROM docs").isAllowed)
    }
}
