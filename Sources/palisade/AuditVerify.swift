import ArgumentParser
import AuditChain
import Foundation
import Encoding

struct AuditVerify: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check an audit log: canonical form, gapless sequence, every hash and link, every checkpoint.",
        discussion: """
        Reports the first bad entry with its sequence number and what is wrong with it. \
        Pass the checkpoint mirror with --checkpoints: checkpoints there that the log directory no \
        longer has are how a deleted tail is detected. "Tampered" also covers a rewritten chain \
        whose entries no longer hash to the root a checkpoint signs.


        """ + AuditCLI.exitCodeHelp)

    @Option(name: .customLong("checkpoints"), help: ArgumentHelp("A directory holding a copy of the checkpoints (the mirror); repeatable.", valueName: "DIR"))
    var mirrors: [String] = []

    @Option(name: .long, help: ArgumentHelp("A trusted verifier key, or a file of them; repeatable. Default: LOGDIR/audit.vkey, which is not independent of the log.", valueName: "VKEY-or-FILE"))
    var key: [String] = []

    @Flag(help: "Print the report as one JSON object.")
    var json = false

    @Argument(help: ArgumentHelp("The log directory.", valueName: "LOGDIR"))
    var logDirectory: String

    func run() throws {
        let keys = try AuditCLI.trustedKeys(key, logDirectory: logDirectory)
        let (report, _) = try AuditCLI.verify(logDirectory, mirrors: mirrors, keys: keys)
        let code = report.outcome.exitCode
        if json {
            var object = report.json
            if case .object(var members) = object {
                members["exit_code"] = .int(Int64(code))
                object = .object(members)
            }
            print(object.canonicalString)
        } else {
            print("palisade audit verify: \(AuditCLI.label(report.outcome))" + (code == 0 ? "" : " (exit \(code))"))
            if let problem = report.problem {
                if let seq = report.firstBadSeq { print("  first bad entry: seq \(seq)" + (report.location.map { " (\($0))" } ?? "")) }
                print("  problem:         \(problem)")
            }
            print("  origin:          \(report.origin ?? "-")")
            print("  entries:         \(report.entries) in \(report.segments) segment(s)")
            let signed = report.latestCheckpoint?.checkpoint.timeMicros.map { ", signed \(UTCTime.format($0))" } ?? ""
            print("  checkpoints:     \(report.checkpointsVerified) verified; the last covers \(report.anchoredSize) entries\(signed)")
            for warning in report.warnings { AuditCLI.warn(warning) }
        }
        if code != 0 { throw ExitCode(code) }
    }
}

struct AuditList: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list", abstract: "List audit entries, filtered.",
        discussion: """
        Entries are read through the verifier's entry checks (not the checkpoint signatures: use \
        'verify' for those); listing stops at the first bad entry, with exit code 4 (or 3).

        --since is inclusive, --until exclusive; both take ISO 8601 (a date means midnight UTC).
        """)

    @Option(help: ArgumentHelp("allow or deny.", valueName: "allow|deny")) var decision: String?
    @Option(help: "Only this event (decision, auth_failure, lockout, protocol_refusal, start, stop, policy_loaded, …).") var event: String?
    @Option(help: "Only this tenant.") var tenant: String?
    @Option(name: .customLong("credential-id"), help: "Only this credential id.") var credentialID: String?
    @Option(help: "Only this rule id (e.g. stmt.dml).") var rule: String?
    @Option(name: .customLong("request-id"), help: "Only this request id.") var requestID: String?
    @Option(help: "Only this fingerprint (16 hex digits).") var fingerprint: String?
    @Option(name: .customLong("policy-version"), help: "Only this policy version.") var policyVersion: String?
    @Option(help: "Only entries whose message contains this text.") var message: String?
    @Option(help: "Entries at or after this time.") var since: String?
    @Option(help: "Entries before this time.") var until: String?
    @Flag(help: "Print the matching entries as they are in the log (JSON Lines).") var json = false
    @Flag(help: "Print only the number of matching entries.") var count = false
    @Argument(help: ArgumentHelp("The log directory.", valueName: "LOGDIR")) var logDirectory: String

    func validate() throws {
        if let decision, AuditDecision(rawValue: decision) == nil { throw ValidationError("--decision must be allow or deny") }
        if let event, AuditEvent(rawValue: event) == nil {
            throw ValidationError("--event must be one of " + AuditEvent.allCases.map(\.rawValue).joined(separator: ", "))
        }
        if json && count { throw ValidationError("--json and --count exclude each other") }
    }

    func run() throws {
        let since = try AuditCLI.time(since, "--since")
        let until = try AuditCLI.time(until, "--until")
        let filter = AuditFilter(
            decision: decision.flatMap(AuditDecision.init(rawValue:)), event: event.flatMap(AuditEvent.init(rawValue:)), tenant: tenant,
            credentialID: credentialID, rule: rule, requestID: requestID, fingerprint: fingerprint, policyVersion: policyVersion,
            messageContains: message, since: since, until: until)
        var output = BufferedOutput()
        var matched: UInt64 = 0
        if !json && !count {
            output.write(row(["SEQ", "TIME", "EVENT", "DECISION", "RULE", "TENANT", "REQUEST", "WHAT"]))
        }
        let (report, _) = try AuditCLI.verify(logDirectory, mirrors: [], keys: []) { entry in
            guard filter.matches(entry) else { return }
            matched += 1
            if count { return }
            if json {
                output.write(String(decoding: entry.canonicalLine, as: UTF8.self))
                return
            }
            let record = entry.record
            let what = record.normalized.map { (record.statementType.map { $0 + ": " } ?? "") + $0 } ?? record.message ?? ""
            output.write(row([String(entry.seq), entry.time, record.event.rawValue, record.decision?.rawValue ?? "-",
                              record.rule ?? "-", record.tenant ?? "-", record.requestID ?? "-",
                              String(what.prefix(100))]))
        }
        if count { output.write(String(matched)) }
        output.flush()
        if [.malformed, .tampered].contains(report.outcome) {
            throw AuditCLI.fail(report.outcome, "palisade audit list: stopped at seq \(report.firstBadSeq.map(String.init) ?? "?"): \(report.problem ?? "")")
        }
    }

    /// One line for a terminal: every cell may hold what a client wrote (`TerminalText`).
    private func row(_ cells: [String]) -> String {
        let widths = [7, 27, 16, 8, 20, 12, 14]
        return cells.map(TerminalText.escaped).enumerated().map { index, cell in
            index < widths.count ? cell.padding(toLength: max(widths[index], cell.count), withPad: " ", startingAt: 0) : cell
        }.joined(separator: " ")
    }
}
