import ArgumentParser
import Foundation
import QueryPolicy
import Encoding

/// `palisade check --jsonl`: one decision per input line, in order, streaming.
struct JSONLinesChecker {
    let engine: PolicyEngine

    /// A string id as it is; a number as spelled; anything else as compact JSON.
    static func idText(_ value: JSONValue) -> String? {
        switch value {
        case .null: nil
        case .string(let text): text
        case .number(let literal): literal
        default: value.compactString
        }
    }

    func run() throws {
        var output = BufferedOutput()
        var lineNumber = 0
        var failures = 0
        while let line = readLine(strippingNewline: true) {
            lineNumber += 1
            if line.allSatisfy(\.isWhitespace) { continue }
            let object = (try? JSONValue.parse(line))?.objectValue
            let id = object?["id"].flatMap(Self.idText)
            guard let sql = object?["sql"]?.stringValue else {
                failures += 1
                output.write(DecisionJSON.inputError(id: id, line: lineNumber))
                continue
            }
            output.write(DecisionJSON.line(id: id, engine.evaluate(sql)))
        }
        output.flush()
        if failures > 0 {
            Console.standardError("palisade check: \(failures) input line(s) were not {\"id\", \"sql\"} objects")
            throw ExitCode(2)
        }
    }
}

/// Collects output and writes it in large blocks: 100,000 decisions must not mean 100,000 writes.
struct BufferedOutput {
    private var buffer: [UInt8] = []

    mutating func write(_ line: String) {
        buffer.append(contentsOf: line.utf8)
        buffer.append(0x0A)
        if buffer.count >= 1 << 16 { flush() }
    }

    mutating func flush() {
        buffer.withUnsafeBytes { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = Foundation.write(1, bytes.baseAddress! + offset, bytes.count - offset)
                if written <= 0 { if errno == EINTR { continue }; return }
                offset += written
            }
        }
        buffer.removeAll(keepingCapacity: true)
    }
}

enum DecisionJSON {
    static func line(id: String?, _ decision: Decision) -> String {
        var fields: [(String, String)] = []
        if let id { fields.append(("id", quoted(id))) }
        fields += [
            ("decision", quoted(decision.verdict.rawValue)),
            ("rule", quoted(decision.rule.rawValue)),
            ("sqlstate", quoted(decision.sqlstate)),
            ("message", quoted(decision.message)),
            ("hint", decision.hint.map(quoted) ?? "null"),
            ("statement_type", quoted(decision.statementType)),
            ("tables", "[" + decision.tables.map(quoted).joined(separator: ",") + "]"),
            ("functions", "[" + decision.functions.map(quoted).joined(separator: ",") + "]"),
            ("fingerprint", quoted(decision.fingerprint)),
            ("normalized", quoted(decision.normalized)),
            ("policy_version", quoted(decision.policyVersion)),
            ("estimate_limits", decision.costBudget.map(estimateLimits) ?? "null"),
        ]
        return "{" + fields.map { "\(quoted($0.0)):\($0.1)" }.joined(separator: ",") + "}"
    }

    /// What the planner's estimate is checked against before an admitted query runs (the proxy and
    /// MCP refuse it there): so `check` shows that `string_agg(…)` over many rows is not simply run.
    private static func estimateLimits(_ budget: CostBudget) -> String {
        func number(_ value: Double?) -> String { value.map { String(Int64($0.rounded(.up))) } ?? "null" }
        let fields = [
            ("max_cost", number(budget.maxCost)),
            ("max_estimated_rows", number(budget.maxEstimatedRows)),
            ("accumulated_bytes_per_row", number(budget.accumulation?.bytesPerRow)),
            ("max_accumulated_bytes", number(budget.accumulation?.maxBytes)),
        ]
        return "{" + fields.map { "\(quoted($0.0)):\($0.1)" }.joined(separator: ",") + "}"
    }

    static func inputError(id: String?, line: Int) -> String {
        "{\"id\":\(id.map(quoted) ?? "null"),\"decision\":\"error\",\"message\":\(quoted("input line \(line) is not a JSON object with a string \"sql\""))}"
    }

    static func quoted(_ text: String) -> String {
        JSONText.quoted(text)
    }
}
