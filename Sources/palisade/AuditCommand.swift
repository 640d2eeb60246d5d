import ArgumentParser

/// `palisade audit …`: reviewer tooling for the audit log (issue 5).
struct AuditCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit", abstract: "Create signing keys for, verify, list and export the audit log.", subcommands: [])
}
