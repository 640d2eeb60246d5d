import Foundation
import Testing
@testable import QueryPolicy

/// The shared corpus beside the repository (`../shared/corpus`): attacks that must be denied and
/// real analytic and psql queries that must be admitted.
@Suite struct SharedCorpusTests {
    static let file = repositoryRoot.deletingLastPathComponent().appendingPathComponent("shared/corpus/cases.jsonl")
    static let cases: [CorpusCase] = {
        let cases = CorpusCase.load(file)
        if cases.isEmpty { print("notice: \(file.path) is absent; the shared corpus tests are skipped") }
        return cases
    }()

    @Test("shared corpus case", arguments: cases.filter { $0.expect == "allow" || $0.expect == "deny" })
    func sharedCase(_ corpusCase: CorpusCase) {
        let decision = Profiles.engine(corpusCase.profile).evaluate(corpusCase.sql)
        #expect(decision.verdict.rawValue == corpusCase.expect, "\(corpusCase.id): \(decision.rule.rawValue) \(decision.message)")
    }

    @Test("runtime and advisory cases are decided without failing")
    func undecidedCasesAreDecided() {
        for corpusCase in Self.cases where corpusCase.expect == "runtime" || corpusCase.expect == "advisory" {
            let decision = Profiles.engine(corpusCase.profile).evaluate(corpusCase.sql)
            #expect(!decision.policyVersion.isEmpty)
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
        // Rules only reachable from the wire protocol or resource exhaustion are covered by other tests.
        let elsewhere: Set<String> = [Rule.nulByte.rawValue]
        for rule in Rule.allCases where !covered.contains(rule.rawValue) && !elsewhere.contains(rule.rawValue) {
            Issue.record("no case in Tests/corpus/palisade-cases.jsonl expects \(rule.rawValue)")
        }
    }
}
