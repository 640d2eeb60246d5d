import ArgumentParser
import AuditChain
import Foundation
import PalisadeServer
import Encoding

struct AuditExport: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export", abstract: "Write a signed evidence pack of the entries in a time range.",
        discussion: """
        The pack holds the entries (a contiguous run, so their prev_hash links hold), the latest \
        checkpoint and the inclusion path of the last entry (which, through the links, commits the \
        whole run), the policy files whose versions the entries name (with --policy-dir), and the \
        result of verifying the whole log. It is one signed note: a single JSON line, a blank line, \
        and an Ed25519 signature by the audit key. Check it with 'palisade audit verify-export'. \
        The log must verify; entries after the last checkpoint cannot be proven and are left out.
        """)

    @Option(help: "Entries at or after this time (ISO 8601).") var since: String?
    @Option(help: "Entries before this time (ISO 8601).") var until: String?
    @Option(help: "Where to write the pack.") var out: String
    @Option(name: .customLong("signing-key"), help: ArgumentHelp("The audit signing key file.", valueName: "FILE")) var signingKey: String
    @Option(name: .customLong("policy-dir"), help: ArgumentHelp("A directory of policy files to include by version.", valueName: "DIR")) var policyDirectory: String?
    @Option(name: .customLong("checkpoints"), help: ArgumentHelp("A checkpoint mirror directory; repeatable.", valueName: "DIR")) var mirrors: [String] = []
    @Option(help: ArgumentHelp("Another trusted verifier key (the signing key is trusted already); repeatable.", valueName: "VKEY-or-FILE")) var key: [String] = []
    @Argument(help: ArgumentHelp("The log directory.", valueName: "LOGDIR")) var logDirectory: String

    func run() throws {
        let signer = try KeyFiles.signingKey(signingKey)
        let keys = try AuditCLI.trustedKeys(key, logDirectory: nil) + [signer.verifierKey]
        let since = try AuditCLI.time(since, "--since")
        let until = try AuditCLI.time(until, "--until")
        var entries: [AuditEntry] = []
        var lastMatch: UInt64?
        var done = false
        let (report, leaves) = try AuditCLI.verify(logDirectory, mirrors: mirrors, keys: keys, collectLeaves: true) { entry in
            if done { return }
            if let until, entry.timeMicros >= until {
                done = !entries.isEmpty
                return
            }
            if let since, entry.timeMicros < since, entries.isEmpty { return }
            entries.append(entry)
            lastMatch = entry.seq
        }
        guard [.ok, .unanchored].contains(report.outcome) else {
            throw AuditCLI.fail(report.outcome, "palisade audit export: the log does not verify (\(AuditCLI.label(report.outcome))): \(report.problem ?? "")")
        }
        if let lastMatch { entries.removeAll { $0.seq > lastMatch } }
        guard let checkpoint = report.latestCheckpoint else {
            throw AuditCLI.fail(.unanchored, "palisade audit export: the log has no checkpoint yet")
        }
        let size = checkpoint.checkpoint.size
        let unanchored = entries.filter { $0.seq >= size }.count
        if unanchored > 0 {
            AuditCLI.warn("\(unanchored) entries in the range come after the last checkpoint and are left out")
            entries.removeAll { $0.seq >= size }
        }
        guard let last = entries.last else { throw ValidationError("no anchored entries in the range") }

        var policies: [String: EvidencePack.PolicyFile] = [:]
        let versions = Set(entries.compactMap(\.record.policyVersion))
        if let policyDirectory {
            let names = try FileManager.default.contentsOfDirectory(atPath: policyDirectory).sorted()
            for name in names {
                guard let content = FileManager.default.contents(atPath: policyDirectory + "/" + name) else { continue }
                let version = EvidencePack.policyVersion(of: Array(content))
                if versions.contains(version) { policies[version] = .init(name: name, content: Array(content)) }
            }
            let missing = versions.subtracting(policies.keys).sorted()
            if !missing.isEmpty { AuditCLI.warn("no policy file in \(policyDirectory) for version(s) \(missing.joined(separator: ", "))") }
        }

        let path = MerkleTree.inclusionProof(index: Int(last.seq), leaves: leaves[..<Int(size)])
        let pack = try EvidencePack.build(entries: entries, checkpoint: checkpoint, path: path, since: since, until: until,
                                          policies: policies, verification: report, signingKey: signer,
                                          createdMicros: UTCTime.nowMicros())
        do {
            try Data(pack.utf8).write(to: URL(fileURLWithPath: out), options: .atomic)
        } catch {
            throw ConfigurationError(description: "cannot write \(out): \(error.localizedDescription)")
        }
        print("palisade audit export: \(out): \(entries.count) entries (seq \(entries[0].seq)…\(last.seq)), checkpoint of size \(size), \(policies.count) policy file(s); log verification: \(report.outcome.rawValue)")
    }
}

struct AuditVerifyExport: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify-export", abstract: "Check an evidence pack from 'palisade audit export'.",
        discussion: """
        Checks the pack's signature, every entry's hash and link, the inclusion of the last entry \
        in the signed checkpoint, and each policy file against its version.

        Exit codes: 0 valid, 2 usage, 3 malformed, 4 tampered, 6 bad signature.
        """)

    @Option(help: ArgumentHelp("The trusted verifier key, or a file of them; repeatable. Without it, the key named in the pack is used (a warning says what that proves).", valueName: "VKEY-or-FILE"))
    var key: [String] = []
    @Argument(help: ArgumentHelp("The evidence pack.", valueName: "FILE")) var file: String

    func run() throws {
        let keys = try AuditCLI.trustedKeys(key, logDirectory: nil)
        let (result, contents) = EvidencePack.check(try AuditCLI.readInput(file), trustedKeys: keys)
        for warning in result.warnings { AuditCLI.warn(warning) }
        guard result.outcome == .ok, let contents else {
            throw AuditCLI.fail(result.outcome, "palisade audit verify-export: \(AuditCLI.label(result.outcome)): \(result.message)")
        }
        print("palisade audit verify-export: OK: \(result.message)")
        let denies = contents.entries.filter { $0.record.decision == .deny }.count
        print("  denies: \(denies); policy files: \(contents.policies.values.map(\.name).sorted().joined(separator: ", "))")
        if let outcome = contents.verification["outcome"]?.stringValue {
            print("  the whole log, when exported: \(outcome)" + (contents.verification["problem"]?.stringValue.map { ": \($0)" } ?? ""))
        }
    }
}
