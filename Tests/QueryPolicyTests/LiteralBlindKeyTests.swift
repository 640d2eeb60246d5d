import Foundation
import Testing
@testable import QueryPolicy

/// Decisions shared by texts that differ only in their numbers (`LiteralBlindKey`): which digits
/// are numbers, and that a shared decision is the one the text would get by itself.
@Suite struct LiteralBlindKeyTests {
    static func numbers(_ sql: String) -> [String] {
        var text = sql
        return text.withUTF8 { bytes in
            var found: [String] = []
            SQLLexer(bytes: bytes).forEachBlindConstant { start, end, kind in
                guard case .number = kind else { return }
                found.append(String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<end]), as: UTF8.self))
            }
            return found
        }
    }

    static func key(_ sql: String) -> LiteralBlindKey? {
        var text = sql
        return text.withUTF8 { LiteralBlindKey.of($0)?.key }
    }

    static func strings(_ sql: String) -> [String] {
        var text = sql
        return text.withUTF8 { bytes in
            var found: [String] = []
            SQLLexer(bytes: bytes).forEachBlindConstant { start, end, kind in
                guard kind == .string else { return }
                found.append(String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<end]), as: UTF8.self))
            }
            return found
        }
    }

    /// Every blind string of `sql` replaced by `'…'` around what `content` gives for its length.
    static func replacingStrings(_ sql: String, _ content: (Int) -> String) -> String {
        var text = sql
        return text.withUTF8 { bytes in
            var result = ""
            var copied = 0
            SQLLexer(bytes: bytes).forEachBlindConstant { start, end, kind in
                guard kind == .string else { return }
                result += String(decoding: UnsafeBufferPointer(rebasing: bytes[copied..<start]), as: UTF8.self)
                result += "'" + content(end - start - 2) + "'"
                copied = end
            }
            return result + String(decoding: UnsafeBufferPointer(rebasing: bytes[copied...]), as: UTF8.self)
        }
    }

    /// Every number of `sql` replaced by what `replacement` gives for its index.
    static func replacingNumbers(_ sql: String, _ replacement: (Int) -> String) -> String {
        var text = sql
        return text.withUTF8 { bytes in
            var result = ""
            var copied = 0
            var index = 0
            SQLLexer(bytes: bytes).forEachBlindConstant { start, end, kind in
                guard case .number = kind else { return }
                result += String(decoding: UnsafeBufferPointer(rebasing: bytes[copied..<start]), as: UTF8.self)
                result += replacement(index)
                index += 1
                copied = end
            }
            return result + String(decoding: UnsafeBufferPointer(rebasing: bytes[copied...]), as: UTF8.self)
        }
    }

    @Test func onlyDigitsThatAreTokensOfTheirOwnAreNumbers() {
        #expect(Self.numbers("SELECT abalance FROM pgbench_accounts WHERE aid = 4242") == ["4242"])
        #expect(Self.numbers("SELECT 1.5, 2::int, (3), x[4], 5+6, 7<8") == ["1.5", "2", "3", "4", "5", "6", "7", "8"])
        // Inside strings, names, comments, dollar quotes and parameters; glued to names or points.
        let none = [
            "SELECT 't1 42', \"c 7\", $1, a1, x.y2, t$3, 1e5, 1E+5, .5, 5., 1..2, 1.2.3, 4abc, 9_000",
            "SELECT E'\\' 42', B'101', X'1F', U&'\\0041 9', N'8' /* 9 /* 10 */ 11 */ -- 12\n",
            "SELECT $$ 42 $$, $t$ 7 $t$, $a1$ 3 $a1$",
            "SELECT 'a'\n'5'",
        ]
        for sql in none { #expect(Self.numbers(sql).isEmpty, "\(sql): \(Self.numbers(sql))") }
        #expect(Self.key("SELECT E'no numbers'") == nil)
    }

    /// PostgreSQL's scanner makes an integer over 2^31 - 1 an FCONST, which the grammar treats
    /// differently: the key keeps the class, not the value.
    @Test func theKeyKeepsEachNumbersTokenClass() {
        #expect(Self.key("SELECT 1") == Self.key("SELECT 2147483647"))
        #expect(Self.key("SELECT 1") == Self.key("SELECT 0000000000002147483647"))
        #expect(Self.key("SELECT 1") != Self.key("SELECT 2147483648"))
        #expect(Self.key("SELECT 2147483648") == Self.key("SELECT 99999999999999999999"))
        #expect(Self.key("SELECT 1") != Self.key("SELECT 1.0"))
        #expect(Self.key("SELECT 1.5") == Self.key("SELECT 12345.678"))
        #expect(Self.key("SELECT 1 ") != Self.key("SELECT 1"))
    }

    @Test func anAdmittedQueryIsSharedByTextsThatDifferInTheirNumbers() {
        let engine = PolicyEngine(policy: Profiles.readonly.policy)
        let first = engine.evaluate("SELECT id, name FROM users WHERE id = 4242 AND total > 1.5 LIMIT 10")
        #expect(first.isAllowed)
        #expect(engine.isSharedByLiterals("SELECT id, name FROM users WHERE id = 7 AND total > 0.25 LIMIT 99"))
        let second = engine.evaluate("SELECT id, name FROM users WHERE id = 7 AND total > 0.25 LIMIT 99")
        #expect(second == engine.evaluateUncached("SELECT id, name FROM users WHERE id = 7 AND total > 0.25 LIMIT 99"))
        #expect(!engine.isCached("SELECT id, name FROM users WHERE id = 7 AND total > 0.25 LIMIT 99"))
    }

    /// Texts whose decision depends on a number, or whose number is not a replaced constant, are
    /// decided one by one.
    @Test func aDecisionThatSeesANumberIsNotShared() {
        let notShared: [(first: String, then: String, rule: Rule?)] = [
            ("SELECT repeat('x', 5)", "SELECT repeat('x', 100000000)", .argumentLimit),
            ("SELECT generate_series(1, 10)", "SELECT generate_series(1, 100000000)", .argumentLimit),
            ("SELECT lpad('x', 5)", "SELECT lpad('x', 100000000)", .argumentLimit),
            ("SELECT array_fill(0, ARRAY[2])", "SELECT array_fill(0, ARRAY[100000000])", .argumentLimit),
            ("SELECT format('%5s', 'x')", "SELECT format('%500000000s', 'x')", nil),
            // An accumulating aggregate counts a number's digits a row (a number's text is its digits).
            ("SELECT string_agg(12345678901::text, '') FROM users", "SELECT string_agg(\(String(repeating: "9", count: 3000))::text, '') FROM users",
             .argumentLimit),
            // A column position stays in the normalized text: ORDER BY, GROUP BY, its grouping
            // sets and the rows in them, DISTINCT ON.
            ("SELECT id, name FROM users ORDER BY 1", "SELECT id, name FROM users ORDER BY 2", nil),
            ("SELECT id, name FROM users GROUP BY 1, 2", "SELECT id, name FROM users GROUP BY 2, 1", nil),
            ("SELECT id, name FROM users GROUP BY ROLLUP(1, (1, 2))", "SELECT id, name FROM users GROUP BY ROLLUP(2, (2, 1))", nil),
            ("SELECT DISTINCT ON (1) id, name FROM users", "SELECT DISTINCT ON (2) id, name FROM users", nil),
            // Type modifiers and array bounds are not replaced constants.
            ("SELECT name::varchar(3) FROM users", "SELECT name::varchar(30) FROM users", nil),
            ("SELECT '{}'::int[3]", "SELECT '{}'::int[4]", nil),
            // A negated constant is located at its sign.
            ("SELECT id FROM users WHERE id = -5", "SELECT id FROM users WHERE id = -6", nil),
        ]
        for (first, then, rule) in notShared {
            let engine = PolicyEngine(policy: Profiles.readonly.policy)
            _ = engine.evaluate(first)
            #expect(!engine.isSharedByLiterals(first), "\(first)")
            let decision = engine.evaluate(then)
            #expect(decision == engine.evaluateUncached(then), "\(then)")
            if let rule { #expect(decision.rule == rule, "\(then): \(decision.rule.rawValue)") }
        }
        // A refusal is never shared: its message may point into the text.
        let engine = PolicyEngine(policy: Profiles.readonly.policy)
        #expect(!engine.evaluate("DELETE FROM users WHERE id = 5").isAllowed)
        #expect(!engine.isSharedByLiterals("DELETE FROM users WHERE id = 5"))
    }

    /// The property itself, over every corpus text with a number: after the text's own decision
    /// is cached, each variant of its numbers gets exactly the decision it gets alone.
    /// Every corpus text, with the probes of this mechanism (no expectation; only the property counts):
    /// the fourth red team's (scanner edge cases, numbers that shape the grammar, numbers that
    /// rules read) and compared strings in the places where rules read strings' values.
    static let corpusCases = [
        repositoryRoot.deletingLastPathComponent().appendingPathComponent("shared/corpus/cases.jsonl"),
        repositoryRoot.appendingPathComponent("Tests/corpus/palisade-cases.jsonl"),
        repositoryRoot.appendingPathComponent("Tests/corpus/redteam-cases.jsonl"),
        repositoryRoot.appendingPathComponent("Tests/corpus/number-blind-probes.jsonl"),
        repositoryRoot.appendingPathComponent("Tests/corpus/string-blind-probes.jsonl"),
    ].flatMap(CorpusCase.load)

    @Test func everyCorpusVariantGetsTheDecisionItGetsAlone() throws {
        let cases = Self.corpusCases
        #expect(cases.count > 1000)
        let engines = ["readonly": PolicyEngine(policy: Profiles.readonly.policy), "analyst": PolicyEngine(policy: Profiles.analyst.policy)]
        let values = ["0", "7", "2147483647", "2147483648", "99999999999999999999", "000123", "100000000"]
        var variants = 0
        var shared = 0
        for corpusCase in cases where !Self.numbers(corpusCase.sql).isEmpty {
            let engine = try #require(engines[corpusCase.profile == "analyst" ? "analyst" : "readonly"])
            _ = engine.evaluate(corpusCase.sql)
            if engine.isSharedByLiterals(corpusCase.sql) { shared += 1 }
            var texts = values.map { value in Self.replacingNumbers(corpusCase.sql) { _ in value } }
            texts.append(Self.replacingNumbers(corpusCase.sql) { "\(($0 + 1) * 1_000_003)" })
            texts.append(Self.replacingNumbers(corpusCase.sql) { "\($0 + 2).5" })
            for text in texts {
                variants += 1
                let alone = engine.evaluateUncached(text)
                let got = engine.evaluate(text)
                #expect(got == alone, "\(corpusCase.id): \(text)\n got \(got.rule.rawValue) \(got.normalized)\n alone \(alone.rule.rawValue) \(alone.normalized)")
            }
        }
        // Most admitted corpus texts with numbers share their decision.
        #expect(shared > 100, "\(shared) shared of \(variants / 9) texts with numbers")
    }

    /// Plain strings are taken out with their length; prefixed, escaped, continued and long ones
    /// stay in the key as written.
    @Test func onlyPlainStringsAreTakenOutWithTheirLength() {
        #expect(Self.strings("SELECT 1 FROM t WHERE a = 'alice' AND b IN ('x', '') AND c BETWEEN '2024-01-01' AND '2024-12-31'")
            == ["'alice'", "'x'", "''", "'2024-01-01'", "'2024-12-31'"])
        let none = [
            "SELECT E'abc', B'101', X'1F', U&'d', N'e', $$f$$, \"g\" /* 'h' */ -- 'i'\n",
            "SELECT 'it''s', 'a\\b', 'a\"b', 'x<y', 'x>y', 'a&b', 'tab\there', 'caf\u{e9}'",
            "SELECT 'a'\n'b'",
            "SELECT '\(String(repeating: "x", count: SQLLexer.longestBlindString + 1))'",
            "SELECT 'never closed",
        ]
        for sql in none { #expect(Self.strings(sql).isEmpty, "\(sql): \(Self.strings(sql))") }
        #expect(Self.key("SELECT 1 FROM t WHERE a = 'alice'") == Self.key("SELECT 1 FROM t WHERE a = 'bobby'"))
        #expect(Self.key("SELECT 1 FROM t WHERE a = 'alice'") != Self.key("SELECT 1 FROM t WHERE a = 'bob'"))
        #expect(Self.key("SELECT 1 FROM t WHERE a = 'alice'") != Self.key("SELECT 1 FROM t WHERE a = E'alice'"))
        #expect(Self.key("SELECT 1 FROM t WHERE a = ''") != Self.key("SELECT 1 FROM t WHERE a = 0"))
    }

    @Test func aComparedStringIsSharedAndOtherStringsAreNot() {
        let engine = PolicyEngine(policy: Profiles.readonly.policy)
        let shared = [
            ("SELECT id, name FROM users WHERE name = 'alice' AND id > 5", "SELECT id, name FROM users WHERE name = 'carol' AND id > 7"),
            ("SELECT id FROM users WHERE name IN ('a', 'bb') OR name NOT IN ('c')", "SELECT id FROM users WHERE name IN ('x', 'yy') OR name NOT IN ('z')"),
            ("SELECT id FROM users WHERE name BETWEEN 'a' AND 'm'", "SELECT id FROM users WHERE name BETWEEN 'n' AND 'z'"),
            ("SELECT id FROM users WHERE name IS DISTINCT FROM 'ann' AND 'bob' <> name", "SELECT id FROM users WHERE name IS DISTINCT FROM 'xml' AND 'ab;' <> name"),
        ]
        for (first, then) in shared {
            #expect(engine.evaluate(first).isAllowed, "\(first)")
            #expect(engine.isSharedByLiterals(then), "\(then)")
            #expect(engine.evaluate(then) == engine.evaluateUncached(then), "\(then)")
        }
        // A string that a rule or the server reads as more than a compared value.
        let notShared = [
            "SELECT id FROM users WHERE name ~ 'abc'",
            "SELECT id FROM users WHERE name LIKE 'ab%'",
            "SELECT id FROM users WHERE name = 'abc'::text",
            "SELECT id FROM users WHERE name = upper('abc')",
            "SELECT id FROM users WHERE name = 'a' || 'b'",
            "SELECT id FROM users WHERE name = ANY('{a,b}')",
            "SELECT 'abc' FROM users",
            "SELECT id FROM users WHERE 'abc' = (SELECT name FROM users LIMIT 1) AND length('xyz') = 3",
        ]
        for sql in notShared {
            let engine = PolicyEngine(policy: Profiles.readonly.policy)
            #expect(engine.evaluate(sql).isAllowed, "\(sql)")
            #expect(!engine.isSharedByLiterals(sql), "\(sql)")
        }
        // Over a relation with guarded columns a string naming one is refused, so there the
        // decision reads every string.
        let analyst = PolicyEngine(policy: Profiles.analyst.policy)
        #expect(analyst.evaluate("SELECT rolname FROM pg_roles WHERE rolname = 'abcdefghi'").isAllowed)
        #expect(!analyst.isSharedByLiterals("SELECT rolname FROM pg_roles WHERE rolname = 'rolconfig'"))
        #expect(analyst.evaluate("SELECT rolname FROM pg_roles WHERE rolname = 'rolconfig'").rule == .secretRelation)
    }

    /// The property for strings, over every corpus text with a plain string: after the text's own
    /// decision is cached, each variant of its strings (of the same lengths, with contents that
    /// rules look for) gets exactly the decision it gets alone.
    @Test func everyCorpusStringVariantGetsTheDecisionItGetsAlone() throws {
        let cases = Self.corpusCases
        let engines = ["readonly": PolicyEngine(policy: Profiles.readonly.policy), "analyst": PolicyEngine(policy: Profiles.analyst.policy)]
        let guardedNames = GuardedRelationColumns.byRelation.values.flatMap { $0 } + SecretColumns.byRelation.values.flatMap { $0 }
        let words = ["x", "xml", "xpath", "1e131071", "1e9 ", "int4range", "int4multirange", "current_query", "row_to_json",
                     "pg_read_file", "jsonb_path_query", "$1", "%s%n", "{1,2,3}", "(a*)*b", "[1:2]", "-- /* ; */", "9999999999",
                     "pg_catalog", "public", "users", "*", "^$.a ? (@ > 1)", " ",
                     // The tree's field names, which a string's value in the tree matches between its quotes.
                     "fromClause", "valuesLists", "withClause", "targetList", "location", "A_Const"] + Set(guardedNames).sorted()
        var variants = 0
        var shared = 0
        for corpusCase in cases where !Self.strings(corpusCase.sql).isEmpty {
            let engine = try #require(engines[corpusCase.profile == "analyst" ? "analyst" : "readonly"])
            _ = engine.evaluate(corpusCase.sql)
            guard engine.isSharedByLiterals(corpusCase.sql) else { continue }
            shared += 1
            for word in words {
                let text = Self.replacingStrings(corpusCase.sql) { length in
                    String(String(repeating: word, count: length / max(1, word.count) + 1).prefix(length))
                }
                variants += 1
                let alone = engine.evaluateUncached(text)
                let got = engine.evaluate(text)
                #expect(got == alone, "\(corpusCase.id): \(text)\n got \(got.rule.rawValue) \(got.normalized)\n alone \(alone.rule.rawValue) \(alone.message)")
            }
        }
        #expect(shared > 50, "\(shared) corpus texts share their decision by their strings")
        #expect(variants > 1000)
    }

    /// Limits that grow with the length of the text's tree, which its numbers' digits and the
    /// locations after them lengthen: a text of short numbers may not pass through the entry of the
    /// same text with long ones (eighteenth red team, sixth pass: denied alone, 1.5 % over).
    @Test func aLimitThatGrowsWithTheTreeIsNotShared() {
        func text(number: String) -> String {
            var condition = "x+x+x"
            for _ in 0..<7 { condition = "(\(condition)) BETWEEN SYMMETRIC c AND d" }
            let columns = Array(repeating: "b", count: 22_100).joined(separator: ",")
            return "SELECT \(columns) FROM t WHERE \(condition) AND y IN (\(Array(repeating: number, count: 300).joined(separator: ",")))"
        }
        let engine = PolicyEngine(policy: Profiles.readonly.policy)
        let long = text(number: "1000000000"), short = text(number: "1")
        #expect(engine.evaluate(long) == engine.evaluateUncached(long))
        #expect(!engine.isSharedByLiterals(short))
        #expect(engine.evaluate(short) == engine.evaluateUncached(short))
    }

    /// An integer that PostgreSQL reads as a column position keeps its place in the normalized text
    /// (a window's ORDER BY 1 is the constant 1).
    @Test func columnPositionsStayInTheNormalizedText() {
        let engine = PolicyEngine(policy: Profiles.readonly.policy)
        let cases = [
            ("SELECT DISTINCT ON (1) id, name FROM users ORDER BY 1, 2 LIMIT 5",
             "SELECT DISTINCT ON (1) id, name FROM users ORDER BY 1, 2 LIMIT $1"),
            ("SELECT id, name FROM users GROUP BY GROUPING SETS ((1, 2), 1, ROLLUP(1), CUBE(2)), 2",
             "SELECT id, name FROM users GROUP BY GROUPING SETS ((1, 2), 1, ROLLUP(1), CUBE(2)), 2"),
            ("SELECT id, rank() OVER (ORDER BY 1) FROM users", "SELECT id, rank() OVER (ORDER BY $1) FROM users"),
        ]
        for (sql, normalized) in cases {
            let decision = engine.evaluate(sql)
            #expect(decision.isAllowed, "\(sql): \(decision.message)")
            #expect(decision.normalized == normalized)
        }
    }

    /// A field name with its colon: `'fromClause'` in a subquery with no FROM read as one.
    @Test func aStringThatSpellsAFieldNameIsNotAField() {
        let engine = PolicyEngine(policy: Profiles.readonly.policy)
        let first = "SELECT t.id FROM (SELECT $1::text AS q WHERE 'aaaaaaaaaa' = 'bbbbbbbbbb') s JOIN t ON t.x = s.q"
        let then = "SELECT t.id FROM (SELECT $1::text AS q WHERE 'aaaaaaaaaa' = 'fromClause') s JOIN t ON t.x = s.q"
        _ = engine.evaluate(first)
        #expect(engine.evaluate(then) == engine.evaluateUncached(then))
        #expect(engine.evaluateUncached(then).boundParameters == engine.evaluateUncached(first).boundParameters)
    }
}
