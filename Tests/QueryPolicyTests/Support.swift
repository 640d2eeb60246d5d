import Foundation
import Testing
@testable import QueryPolicy

/// The repository root, found from this file's path so tests run from any directory.
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

enum Profiles {
    static let readonly = PolicyEngine(policy: try! Policy.load(path: repositoryRoot.appendingPathComponent("Policies/readonly.yaml").path))
    static let analyst = PolicyEngine(policy: try! Policy.load(path: repositoryRoot.appendingPathComponent("Policies/analyst.yaml").path))

    static func engine(_ profile: String) -> PolicyEngine {
        profile == "analyst" ? analyst : readonly
    }
}

/// The red-team suites' two checks: both shipped profiles refuse `sql` with `rule`, or admit it.
func refused(_ sql: String, _ rule: Rule = .argumentLimit, sourceLocation: SourceLocation = #_sourceLocation) {
    for profile in [Profiles.readonly, Profiles.analyst] {
        let decision = profile.evaluate(sql)
        #expect(decision.rule == rule, "\(sql): \(decision.rule) \(decision.message)", sourceLocation: sourceLocation)
    }
}

func admitted(_ sql: String, sourceLocation: SourceLocation = #_sourceLocation) {
    for profile in [Profiles.readonly, Profiles.analyst] {
        let decision = profile.evaluate(sql)
        #expect(decision.isAllowed, "\(sql): \(decision.message)", sourceLocation: sourceLocation)
    }
}

/// One line of a case file in the shared corpus's format.
struct CorpusCase: Decodable, Sendable, CustomTestStringConvertible {
    var id: String
    var profile: String
    var expect: String
    var sql: String
    var rule: String?
    var testDescription: String { id }

    static func load(_ url: URL) -> [CorpusCase] {
        guard let text = try? String(contentsOf: url, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").map { try! JSONDecoder().decode(CorpusCase.self, from: Data($0.utf8)) }
    }
}

import Testing
