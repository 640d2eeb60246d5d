// Fuzz target `policy`: the policy engine under the shipped readonly and analyst profiles.
//
// Invariants, for any text:
// - the engine neither crashes nor overflows the stack (AddressSanitizer reports both);
// - it decides the same way every time: without its cache, through it on a miss, and from it;
// - a text that differs only in its digits, or in the letters and digits inside its quotes, gets the
//   decision it gets alone, also when the engine answers it from a decision shared by texts that
//   differ only in their numbers and compared strings;
// - an admitted text, parsed again by libpg_query itself, is exactly one statement, of the kind the
//   rule names and the profile allows;
// - a text libpg_query rejects is never admitted.
import CPgQuery
import Foundation
import FuzzSupport
import QueryPolicy

/// Static rather than top-level: top-level variables belong to the main actor, and libFuzzer calls in from outside it.
enum Engines {
    static let all: [PolicyEngine] = ["readonly", "analyst"].map { profile in
        let path = FuzzDriver.repositoryRoot + "/Policies/\(profile).yaml"
        do {
            return PolicyEngine(policy: try Policy.load(path: path))
        } catch {
            fatalError("cannot load \(path): \(error)")
        }
    }
}

/// The parse-tree node an admitted statement must be, for each admitting rule.
func admittedNode(_ rule: Rule, _ policy: Policy) -> String? {
    switch rule {
    case .query: "SelectStmt"
    case .transactionControl: policy.allowsTransactionControl ? "TransactionStmt" : nil
    case .showSetting: policy.showableSettings.isEmpty ? nil : "VariableShowStmt"
    case .setSetting: policy.settableSettings.isEmpty ? nil : "VariableSetStmt"
    case .explain: policy.allowsExplain ? "ExplainStmt" : nil
    default: nil
    }
}

/// libpg_query's own reading of the text: the top-level node of each statement, or nil if it rejects the text.
func statementNodes(_ sql: String) -> [String]? {
    let result = pg_query_parse(sql)
    defer { pg_query_free_parse_result(result) }
    guard result.error == nil, let tree = result.parse_tree else { return nil }
    guard let object = try? JSONSerialization.jsonObject(with: Data(String(cString: tree).utf8)) as? [String: Any] else {
        FuzzDriver.violated("libpg_query's parse tree is not a JSON object")
    }
    let statements = object["stmts"] as? [[String: Any]] ?? []
    return statements.map { statement in (statement["stmt"] as? [String: Any])?.keys.first ?? "" }
}

func check(_ sql: String, _ engine: PolicyEngine) {
    let decision = engine.evaluateUncached(sql)
    // The first `evaluate` decides again unless an earlier input left the text in the cache; the
    // second answers from the cache.
    guard engine.evaluate(sql) == decision else { FuzzDriver.violated("two decisions for the same text differ") }
    guard engine.evaluate(sql) == decision else { FuzzDriver.violated("the cached decision differs from the uncached one") }
    for variant in digitVariants(sql) where engine.evaluate(variant) != engine.evaluateUncached(variant) {
        FuzzDriver.violated("a text whose digits were changed got a shared decision other than its own: \(variant)")
    }
    for variant in quotedVariants(sql) where engine.evaluate(variant) != engine.evaluateUncached(variant) {
        FuzzDriver.violated("a text whose quoted letters were changed got a shared decision other than its own: \(variant)")
    }
    guard decision.isAllowed else { return }
    guard let expected = admittedNode(decision.rule, engine.policy) else {
        FuzzDriver.violated("rule \(decision.rule.rawValue) admitted a text under profile \(engine.policy.profile), which does not allow it")
    }
    guard let nodes = statementNodes(sql) else { FuzzDriver.violated("admitted a text libpg_query rejects") }
    guard nodes == [expected] else {
        FuzzDriver.violated("admitted as \(decision.rule.rawValue) a text libpg_query reads as \(nodes), not one \(expected)")
    }
}

/// `sql` with every digit changed, and with every run of digits made 2147483648 (an integer that
/// PostgreSQL's scanner reads as FCONST): after `sql` itself was decided, the engine may answer
/// these from the decision it shares between texts that differ only in their numbers.
func digitVariants(_ sql: String) -> [String] {
    func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }
    let bytes = Array(sql.utf8)
    guard bytes.contains(where: isDigit) else { return [] }
    let shifted = bytes.map { isDigit($0) ? UInt8(ascii: "0") + ($0 - UInt8(ascii: "0") + 7) % 10 : $0 }
    var widened: [UInt8] = []
    for (index, byte) in bytes.enumerated() {
        if !isDigit(byte) {
            widened.append(byte)
        } else if index == 0 || !isDigit(bytes[index - 1]) {
            widened.append(contentsOf: "2147483648".utf8)
        }
    }
    return [String(decoding: shifted, as: UTF8.self), String(decoding: widened, as: UTF8.self)]
}

/// `sql` with the letters and digits between single quotes (as a naive reader pairs them) written
/// over with words that rules look for in strings: an exponent, `xml`, a range type. Each keeps the
/// text's length and every other byte, as the strings of texts that share a decision differ.
func quotedVariants(_ sql: String) -> [String] {
    let bytes = Array(sql.utf8)
    guard bytes.contains(UInt8(ascii: "'")) else { return [] }
    func isWordByte(_ byte: UInt8) -> Bool {
        (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
            || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
    }
    return ["1e131071", "xmlxpath", "int4range"].map { word in
        let fill = Array(word.utf8)
        var inside = false
        var written = 0
        let variant = bytes.map { byte -> UInt8 in
            if byte == UInt8(ascii: "'") { inside.toggle(); written = 0; return byte }
            guard inside, isWordByte(byte) else { return byte }
            defer { written += 1 }
            return fill[written % fill.count]
        }
        return String(decoding: variant, as: UTF8.self)
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    // The proxy refuses text that is not UTF-8 before the engine sees it.
    guard let data, let sql = String(validating: UnsafeBufferPointer(start: data, count: size), as: UTF8.self) else { return 0 }
    for engine in Engines.all { check(sql, engine) }
    return 0
}

/// The SQL of every case in the project's corpora.
func corpusTexts() -> [[UInt8]] {
    let files = ["Tests/corpus/palisade-cases.jsonl", "Tests/corpus/redteam-cases.jsonl", "Tests/corpus/number-blind-probes.jsonl",
                 "Tests/corpus/string-blind-probes.jsonl", "../shared/corpus/cases.jsonl"]
    var texts: [[UInt8]] = []
    for file in files {
        let path = FuzzDriver.repositoryRoot + "/" + file
        guard let data = FileManager.default.contents(atPath: path) else {
            FileHandle.standardError.write(Data("warning: no corpus at \(path)\n".utf8))
            continue
        }
        for line in data.split(separator: UInt8(ascii: "\n")) {
            if let object = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any], let sql = object["sql"] as? String {
                texts.append(Array(sql.utf8))
            }
        }
    }
    return texts
}

FuzzDriver.run(testOneInput, seeds: corpusTexts)
