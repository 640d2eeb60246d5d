import Foundation
import Testing
@testable import QueryPolicy

/// The shared corpus beside the repository (`../shared/corpus`): attacks that must be denied and
/// real analytic and psql queries that must be admitted.
@Suite struct SharedCorpusTests {
    static let file = repositoryRoot.deletingLastPathComponent().appendingPathComponent("shared/corpus/cases.jsonl")
    static let cases: [CorpusCase] = {
        var cases = CorpusCase.load(file)
        if cases.isEmpty { print("notice: \(file.path) is absent; the shared corpus tests are skipped") }
        for index in cases.indices {
            if let expect = superseded[cases[index].id] { cases[index].expect = expect }
        }
        return cases
    }()

    /// Expectations a later issue changed, with the reason: Tests/corpus/superseded.tsv.
    static let superseded: [String: String] = {
        let url = repositoryRoot.appendingPathComponent("Tests/corpus/superseded.tsv")
        let text = (try? String(contentsOf: url, encoding: .utf8)) ?? ""
        var expectations: [String: String] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            let fields = line.split(separator: "\t", maxSplits: 2).map(String.init)
            if fields.count == 3 { expectations[fields[0]] = fields[1] }
        }
        return expectations
    }()

    @Test("every superseded expectation names a shared case")
    func supersededCasesExist() {
        guard !Self.cases.isEmpty else { return }
        #expect(!Self.superseded.isEmpty)
        for id in Self.superseded.keys { #expect(Self.cases.contains { $0.id == id }, "\(id) is not in the shared corpus") }
    }

    @Test("shared corpus case", arguments: cases.filter { $0.expect == "allow" || $0.expect == "deny" })
    func sharedCase(_ corpusCase: CorpusCase) {
        let decision = Profiles.engine(corpusCase.profile).evaluate(corpusCase.sql)
        #expect(decision.verdict.rawValue == corpusCase.expect, "\(corpusCase.id): \(decision.rule.rawValue) \(decision.message)")
    }

    /// Runtime cases are valid read-only SELECTs whose only harm is their cost: each must be
    /// admitted (statement_timeout ends it at the server), denied for what it reads, or denied for
    /// an argument over the profile's limits, never refused as text the engine did not understand.
    @Test("runtime cases are understood")
    func runtimeCasesAreUnderstood() {
        for corpusCase in Self.cases where corpusCase.expect == "runtime" {
            let decision = Profiles.engine(corpusCase.profile).evaluate(corpusCase.sql)
            #expect(decision.isAllowed || decision.rule == .catalogRelation || decision.rule == .argumentLimit, "\(corpusCase.id): \(decision.rule.rawValue)")
        }
    }
}

/// Our own cases (Tests/corpus/palisade-cases.jsonl): every rule id and every place a function can hide.
@Suite struct OwnCorpusTests {
    static let cases = CorpusCase.load(repositoryRoot.appendingPathComponent("Tests/corpus/palisade-cases.jsonl"))

    @Test("own case", arguments: cases.filter { $0.expect == "allow" || $0.expect == "deny" })
    func ownCase(_ corpusCase: CorpusCase) {
        let decision = Profiles.engine(corpusCase.profile).evaluate(corpusCase.sql)
        #expect(decision.verdict.rawValue == corpusCase.expect, "\(corpusCase.id): \(decision.rule.rawValue) \(decision.message)")
        if let rule = corpusCase.rule {
            #expect(decision.rule.rawValue == rule, "\(corpusCase.id): \(decision.message)")
        }
    }

    @Test("every deny rule the engine can give has a case")
    func everyRuleHasACase() {
        let covered = Set(Self.cases.compactMap(\.rule))
        // Rules the text engine never gives for the shipped profiles: the proxy's protocol,
        // authentication and budget refusals, cost budgets (the server's estimate) and declared parameter types (Tests/proxy),
        // BEGIN under a profile without transaction control (a unit test below), NUL bytes (a unit test), and the fallback
        // for statement types none of the others name.
        let elsewhere: Set<Rule> = [.nulByte, .transactionDenied, .otherStatement, .functionCallMessage, .parameterType, .messageTooLarge,
                                    .protocolViolation, .authenticationFailed, .tokenExpired, .lockedOut, .rateLimited, .tooManySessions,
                                    .resultRows, .resultBytes, .costLimit, .estimatedRows]
        let elsewhereIDs = Set(elsewhere.map(\.rawValue))
        for rule in Rule.allCases where !covered.contains(rule.rawValue) && !elsewhereIDs.contains(rule.rawValue) {
            Issue.record("no case in Tests/corpus/palisade-cases.jsonl expects \(rule.rawValue)")
        }
    }
}
