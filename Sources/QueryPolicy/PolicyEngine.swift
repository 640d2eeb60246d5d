/// Decides, for one piece of SQL text, whether it may reach the database under one policy.
///
/// Safe to share between threads. Decisions for exact repeats of a text (prepared statements,
/// retries, dashboards) come from a bounded cache; the cache belongs to this engine, so it is
/// keyed by the policy version implicitly.
public final class PolicyEngine: Sendable {
    let shared: SharedPolicy
    private let decisions: BoundedCache<ExactText, Decision>
    /// Admissions shared by texts that differ only in their numbers and compared strings (see
    /// `LiteralBlindKey`).
    private let literalBlindDecisions: BoundedCache<LiteralBlindKey, Decision>

    public var policy: Policy { shared.policy }

    /// `serverFunctions`: what the server defines in its search-path schemas (see `ServerFunctions`);
    /// without it (`palisade check`) the engine judges the text as if there were none.
    public init(policy: Policy, serverFunctions: ServerFunctions = ServerFunctions(), cacheCapacity: Int = 10_000, cacheBytes: Int = 32 << 20) {
        shared = SharedPolicy(policy, serverFunctions: serverFunctions)
        decisions = BoundedCache(capacity: cacheCapacity, bytesPerGeneration: cacheBytes / 2)
        literalBlindDecisions = BoundedCache(capacity: cacheCapacity, bytesPerGeneration: cacheBytes / 4)
    }

    /// Measured with callgrind under `pgbench -S -M simple -c 1` (2026-12-05): the parse, its JSON
    /// and the walk were 74k of Palisade's 237k instructions per transaction, every one a new text.
    public func evaluate(_ sql: String) -> Decision {
        if let cached = decisions.value(for: ExactText(sql)) { return cached }
        var text = sql
        let literalBlind = text.withUTF8 { bytes in
            // The key marks constants with NUL bytes, so a text holding one never gets a key.
            bytes.count <= shared.policy.maxQueryBytes && !Self.hasNULByte(bytes) ? LiteralBlindKey.of(bytes) : nil
        }
        if let key = literalBlind?.key, let cached = literalBlindDecisions.value(for: key) { return cached }
        let (decision, isShareable) = decide(sql, blindOffsets: literalBlind?.offsets)
        // The texts dominate an entry's size; the rest of the decision is a few hundred bytes.
        if let key = literalBlind?.key, isShareable {
            literalBlindDecisions.store(decision, for: key, bytes: key.bytes.count + decision.normalized.utf8.count + 512)
        } else {
            decisions.store(decision, for: ExactText(sql), bytes: sql.utf8.count + decision.normalized.utf8.count + 512)
        }
        return decision
    }

    /// Whether a decision for `sql` is cached (for tests of the cache's bounds).
    func isCached(_ sql: String) -> Bool { decisions.contains(ExactText(sql)) }

    /// Whether a decision for `sql`'s literal-blind key is cached (for tests of what is shared).
    func isSharedByLiterals(_ sql: String) -> Bool {
        var text = sql
        return text.withUTF8 { LiteralBlindKey.of($0) }.map { literalBlindDecisions.contains($0.key) } ?? false
    }

    /// The full decision without consulting or filling the decision cache.
    public func evaluateUncached(_ sql: String) -> Decision {
        decide(sql, blindOffsets: nil).decision
    }

    private static func hasNULByte(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        guard let base = bytes.baseAddress else { return false }
        return memchr(base, 0, bytes.count) != nil
    }

    /// The decision, and whether it holds for every text with the same `LiteralBlindKey`, whose
    /// constants start at `blindOffsets` (see there for why the checks below suffice).
    private func decide(_ sql: String, blindOffsets: LiteralBlindKey.Offsets?) -> (decision: Decision, isShareable: Bool) {
        let length = sql.utf8.count
        guard length <= shared.policy.maxQueryBytes else {
            return (denied(sql, Denial(
                rule: .tooLarge, message: "the query is \(length) bytes, over this policy's limit of \(shared.policy.maxQueryBytes) bytes",
                hint: "Send a shorter query: select fewer literal values, or split the work into several queries.",
                offset: nil, statementType: "")), false)
        }
        var text = sql
        var isShareable = false
        let decision = text.withUTF8 { bytes in
            if Self.hasNULByte(bytes) {
                return denied(sql, Denial(rule: .nulByte, message: "the query contains a NUL byte, which PostgreSQL does not accept in query text",
                                          hint: "Remove the NUL character.", offset: nil, statementType: ""))
            }
            let lexer = SQLLexer(bytes: bytes)
            // Every level takes an opening bracket, and every rescanned run is longer than the
            // limit on runs: a text no longer than both limits cannot pass them.
            let shape = length > min(shared.policy.maxNestingDepth, SQLLexer.longestOperatorRun) ? lexer.shape() : SQLLexer.Shape()
            if shape.bracketDepth > shared.policy.maxNestingDepth {
                return denied(sql, Denial(
                    rule: .tooDeep, message: "the query nests parentheses or brackets \(shape.bracketDepth) deep, over this policy's limit of \(shared.policy.maxNestingDepth)",
                    hint: "Flatten the query: use WITH (CTEs) or joins instead of deeply nested expressions and subqueries.",
                    offset: nil, statementType: ""))
            }
            if shape.longestRescannedRun > SQLLexer.longestOperatorRun {
                return denied(sql, Denial(
                    rule: .tooDeep,
                    message: "the query has a run of \(shape.longestRescannedRun) operator characters (such as +-+-… or /*/*…); PostgreSQL's scanner reads such runs in time that grows with the square of their length",
                    hint: "Separate operators and comment markers with spaces or values; no operator is longer than \(SQLLexer.longestOperatorRun) characters.",
                    offset: nil, statementType: ""))
            }
            let outcome: Result<Analysis, Denial>
            let fingerprint: UInt64?
            do {
                (outcome, fingerprint) = try PgQuery.withParseTree(sql, walkDepth: shared.policy.maxNestingDepth) { parsed in
                    (Analyzer.analyze(tree: parsed.json, text: bytes, policy: shared), parsed.fingerprint)
                }
            } catch let error as PgQuery.ParseError {
                return denied(sql, Denial(
                    rule: .syntaxError, message: "syntax error: \(error.message)",
                    hint: "Send one valid PostgreSQL 15 SELECT statement.",
                    offset: nil, statementType: ""),
                    position: error.cursorPosition > 0 ? error.cursorPosition : nil, normalized: lexer.replacingAllConstants())
            } catch {
                return denied(sql, Denial(
                    rule: .tooLarge, message: "Palisade has no resources to check this query right now",
                    hint: "Retry shortly.", offset: nil, statementType: ""))
            }
            switch outcome {
            case .failure(let denial):
                return denied(sql, denial, normalized: PgQuery.normalize(sql) ?? lexer.replacingAllConstants(), fingerprint: fingerprint)
            case .success(let analysis):
                var normalized: String?
                if analysis.isQuery {
                    normalized = lexer.replacingConstants(at: analysis.constantOffsets, firstParameter: analysis.highestParameter + 1)
                }
                let normalizedText = normalized ?? PgQuery.normalize(sql) ?? lexer.replacingAllConstants()
                var decision = Decision(
                    rule: analysis.rule, message: StatementTags.admittedMessage(forTag: analysis.statementType), hint: nil, position: nil,
                    statementType: analysis.statementType, tables: analysis.tables, functions: analysis.functions,
                    fingerprint: fingerprint,
                    normalized: normalizedText, policyVersion: shared.policy.version)
                if analysis.rule == .query {
                    var budget = analysis.mayExplode ? shared.policy.costBudget : nil
                    if analysis.accumulatedBytesPerRow > Analyzer.accumulatedBytesBelowNotice {
                        // Planned whatever its shape: a table's rows multiply it as generated rows do.
                        budget = budget ?? CostBudget(maxCost: nil, maxEstimatedRows: nil)
                        budget?.accumulation = CostBudget.Accumulation(
                            bytesPerRow: analysis.accumulatedBytesPerRow,
                            maxBytes: Analyzer.maxAccumulatedBytes(shared.policy),
                            gathersSubplans: analysis.gathersSubqueryRows)
                    }
                    if analysis.hashedRowBytes > 0 {
                        budget = budget ?? CostBudget(maxCost: nil, maxEstimatedRows: nil)
                        budget?.hashedRows = CostBudget.Accumulation(bytesPerRow: analysis.hashedRowBytes,
                                                                     maxBytes: Analyzer.maxAccumulatedBytes(shared.policy))
                    }
                    decision.costBudget = budget
                    decision.boundParameters = analysis.boundParameters.sorted()
                    decision.repeatedParameters = analysis.repeatedParameters
                }
                if let blindOffsets, analysis.rule == .query, normalized != nil, !analysis.readsConstantValues {
                    // Each constant must be one that normalization replaces, where the parser put
                    // it, and each string an operand only a comparison reads.
                    let replaced = Set(analysis.constantOffsets)
                    isShareable = blindOffsets.numbers.allSatisfy(replaced.contains)
                        && blindOffsets.strings.allSatisfy { replaced.contains($0) && analysis.comparedStringOffsets.contains($0) }
                }
                return decision
            }
        }
        return (decision, isShareable)
    }

    /// A denial; `normalized` stays empty and `fingerprint` nil when the text was refused before parsing.
    private func denied(_ sql: String, _ denial: Denial, position: Int? = nil, normalized: String = "", fingerprint: UInt64? = nil) -> Decision {
        let characterPosition = position ?? denial.offset.map { Self.characterPosition(ofByteOffset: $0, in: sql) }
        var message = denial.message
        if let characterPosition { message += " (at character \(characterPosition))" }
        return Decision(
            rule: denial.rule, message: message, hint: denial.hint, position: characterPosition,
            statementType: denial.statementType, tables: [], functions: [],
            fingerprint: fingerprint, normalized: normalized, policyVersion: shared.policy.version)
    }

    /// Postgres reports 1-based character positions; libpg_query's locations are byte offsets.
    static func characterPosition(ofByteOffset offset: Int, in text: String) -> Int {
        var characters = 1
        for (index, byte) in text.utf8.enumerated() {
            if index >= offset { break }
            if byte & 0xC0 != 0x80 { characters += 1 }
        }
        return characters
    }
}

#if canImport(Glibc)
import Glibc
#endif

/// Entry points for `palisade bench-policy`, which measures the engine against libpg_query itself.
public enum PolicyBenchmarkHooks {
    /// The two benchmark texts, by name: a point lookup and an analytic join.
    public static let queries: [(name: String, sql: String)] = [
        ("pgbench select", "SELECT abalance FROM pgbench_accounts WHERE aid = 4242"),
        ("TPC-H Q9", """
        select nation, o_year, sum(amount) as sum_profit
        from (select n_name as nation, extract(year from o_orderdate) as o_year,
                     l_extendedprice * (1 - l_discount) - ps_supplycost * l_quantity as amount
              from part, supplier, lineitem, partsupp, orders, nation
              where s_suppkey = l_suppkey and ps_suppkey = l_suppkey and ps_partkey = l_partkey
                and p_partkey = l_partkey and o_orderkey = l_orderkey and s_nationkey = n_nationkey
                and p_name like '%green%') as profit
        group by nation, o_year
        order by nation, o_year desc
        """),
    ]

    /// libpg_query's parse of `sql` to its JSON tree, and nothing else.
    public static func parseOnly(_ sql: String) -> Bool {
        (PgQuery.publicParseTreeLength(sql) ?? 0) > 0
    }

    public static func parseAndScan(_ sql: String) -> Bool {
        (try? PgQuery.withParseTree(sql) { parsed in
            var cursor = ParseTreeCursor(parsed.json)
            try cursor.skipValue()
            return true
        }) ?? false
    }

    /// The parse plus the policy walk, without normalization, fingerprint or the decision value.
    public static func parseAndWalk(_ sql: String, engine: PolicyEngine) -> Bool {
        var text = sql
        return text.withUTF8 { bytes in
            (try? PgQuery.withParseTree(sql, walkDepth: engine.policy.maxNestingDepth) { parsed in
                if case .success = Analyzer.analyze(tree: parsed.json, text: bytes, policy: engine.shared) { return true }
                return false
            }) ?? false
        }
    }
}
