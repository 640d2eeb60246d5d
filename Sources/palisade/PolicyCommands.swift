import ArgumentParser
import Encoding
import Foundation
import QueryPolicy

func loadEngine(_ path: String) throws -> PolicyEngine {
    do {
        return PolicyEngine(policy: try Policy.load(path: path))
    } catch {
        throw ValidationError(error.description)
    }
}

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Decide SQL text under a policy.",
        discussion: """
        With SQL as an argument, prints the decision; exit 0 allow, 1 deny, 2 usage or configuration error.
        With --jsonl, reads lines {"id": …, "sql": …} from standard input and writes one decision per line, in order.
        """
    )

    @OptionGroup var options: PolicyOption

    @Flag(help: "Read JSON lines from standard input and write JSON lines.")
    var jsonl = false

    @Flag(help: "Print the single decision as one JSON object.")
    var json = false

    @Argument(help: "The SQL text to decide.")
    var sql: String?

    func validate() throws {
        if jsonl, sql != nil { throw ValidationError("give SQL as an argument or --jsonl, not both") }
        if !jsonl, sql == nil { throw ValidationError("missing SQL text (or use --jsonl)") }
    }

    func run() throws {
        let engine = try loadEngine(options.policy)
        if jsonl {
            try JSONLinesChecker(engine: engine).run()
            return
        }
        let decision = engine.evaluate(sql!)
        if json {
            print(DecisionJSON.line(id: nil, decision))
        } else {
            print(DecisionText.render(decision, profile: engine.policy.profile))
        }
        if !decision.isAllowed { throw ExitCode(1) }
    }
}

struct PolicyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "policy", abstract: "Work with policy files.", subcommands: [Lint.self, Sign.self, Verify.self])

    struct Lint: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Validate a policy file; exit 0 if valid, 2 if not.")

        @Argument(help: "Policy file (YAML).")
        var file: String

        func run() throws {
            let policy = try loadEngine(file).policy
            print("\(file): ok (profile \(policy.profile), version \(policy.version), \(policy.builtinFunctions.count + policy.extraFunctions.count) functions)")
        }
    }
}

enum DecisionText {
    /// Lines for a terminal: the message, tables and normalized text carry what the query wrote
    /// (`TerminalText`).
    static func render(_ decision: Decision, profile: String) -> String {
        var lines = ["\(decision.verdict.rawValue) \(decision.rule.rawValue) (SQLSTATE \(decision.sqlstate))"]
        if !decision.isAllowed { lines.append("message:     \(decision.message)") }
        if let hint = decision.hint { lines.append("hint:        \(hint)") }
        lines.append("statement:   \(decision.statementType)")
        lines.append("tables:      \(decision.tables.joined(separator: ", "))")
        lines.append("functions:   \(decision.functions.joined(separator: ", "))")
        lines.append("fingerprint: \(decision.fingerprint)")
        lines.append("normalized:  \(decision.normalized)")
        lines.append("policy:      \(profile) \(decision.policyVersion)")
        return lines.map(TerminalText.escaped).joined(separator: "\n")
    }
}
