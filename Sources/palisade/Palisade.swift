import ArgumentParser
import Foundation
import PalisadeServer

@main
struct Palisade: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "palisade",
        abstract: "A SQL firewall for PostgreSQL: admits one read-only SELECT at a time.",
        subcommands: [Serve.self, MCPCommand.self, Check.self, ConfigCommand.self, PolicyCommand.self, KeysCommand.self, TokensCommand.self, BenchPolicy.self, AuditCommand.self]
    )

    /// Exit codes: 0 success or allow, 1 deny, 2 usage or configuration error.
    static func main() async {
        do {
            var command = try parseAsRoot()
            if var command = command as? AsyncParsableCommand {
                try await command.run()
            } else {
                try command.run()
            }
        } catch let exit as ExitCode {
            Foundation.exit(exit.rawValue)
        } catch {
            let code = exitCode(for: error)
            if code == .success {
                print(fullMessage(for: error))
            } else {
                Console.standardError(fullMessage(for: error))
            }
            Foundation.exit(code == .success ? 0 : 2)
        }
    }
}

struct PolicyOption: ParsableArguments {
    @Option(name: .long, help: "Policy file (YAML).")
    var policy: String = "Policies/readonly.yaml"
}
