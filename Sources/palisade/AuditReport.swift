import ArgumentParser
import AuditChain
import Foundation
import PalisadeServer
import Encoding

struct AuditReport: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report", abstract: "Write a self-contained HTML page for security reviewers.",
        discussion: """
        Verifies the whole log (as 'verify' does) and, in the same pass, summarizes the entries in \
        the range: the chain's status, decisions over time by rule, denials by rule, tenant, \
        credential and fingerprint, security events (lockouts, failed logins, claim tampering, \
        catalog secrets, protocol and budget refusals) with their request ids, restarts and \
        recoveries, and the policy versions in force. Beside each table is the 'palisade audit \
        list' filter that reproduces its counts (add --count). The page loads nothing: no \
        scripts, fonts or network; charts are inline SVG. Its first line names the verification \
        result; a failed verification names the first bad entry. Memory stays bounded: per-key \
        tables keep \(AuditSummary.trackedKeys) keys (Space-Saving; counts that may be estimates \
        are marked), event lists their latest \(AuditSummary.latestRows) entries.

        The exit code is the verification's (the page is written in every case).

        """ + AuditCLI.exitCodeHelp)

    @Option(help: "Entries at or after this time (ISO 8601).") var since: String?
    @Option(help: "Entries before this time (ISO 8601).") var until: String?
    @Option(help: "Only this tenant's entries (lifecycle events are shown regardless).") var tenant: String?
    @Option(name: .customLong("checkpoints"), help: ArgumentHelp("A checkpoint mirror directory; repeatable.", valueName: "DIR"))
    var mirrors: [String] = []
    @Option(name: .long, help: ArgumentHelp("A trusted verifier key, or a file of them; repeatable.", valueName: "VKEY-or-FILE"))
    var key: [String] = []
    @Option(help: "Where to write the page.") var out: String
    @Argument(help: ArgumentHelp("The log directory.", valueName: "LOGDIR")) var logDirectory: String

    func run() throws {
        let since = try AuditCLI.time(since, "--since")
        let until = try AuditCLI.time(until, "--until")
        if let since, let until, until <= since { throw ValidationError("--until must be after --since") }
        let keys = try AuditCLI.trustedKeys(key, logDirectory: logDirectory)
        var summary = AuditSummary(since: since, until: until, tenant: tenant)
        var lastEntryMicros: Int64?
        let (verification, _) = try AuditCLI.verify(logDirectory, mirrors: mirrors, keys: keys) { entry in
            summary.add(entry)
            lastEntryMicros = entry.timeMicros
        }
        let page = ReportPage(summary: summary, verification: verification, logDirectory: logDirectory,
                              verifyArguments: mirrors.flatMap { ["--checkpoints", $0] } + (key.isEmpty ? [] : ["--key", "VKEY"]),
                              lastEntryMicros: lastEntryMicros, generatedMicros: UTCTime.nowMicros())
        do {
            try page.html().write(toFile: out, atomically: true, encoding: .utf8)
        } catch {
            throw ConfigurationError(description: "cannot write \(out): \(error.localizedDescription)")
        }
        let code = verification.outcome.exitCode
        print("palisade audit report: \(out): \(page.statusLine)")
        for warning in verification.warnings { AuditCLI.warn(warning) }
        if code != 0 { throw ExitCode(code) }
    }
}
