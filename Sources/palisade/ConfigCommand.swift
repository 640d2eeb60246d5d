import ArgumentParser
import PalisadeServer

struct ConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "config", abstract: "Work with configurations.", subcommands: [Check.self])

    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate a configuration (file, PALISADE_* variables and flags) as `palisade serve` would, without starting.",
            discussion: "Loads every policy, the keys file, TLS files, token keys and the audit key; exit 0 if all are valid, 2 otherwise. The server is not contacted.")

        @OptionGroup var serve: Serve

        func run() async throws {
            let settings = try serve.settings()
            let loaded = try await settings.load()
            _ = try settings.auditSettings(warn: false)
            let profiles = loaded.engines.sorted { $0.key < $1.key }.map { "\($0.key) (\($0.value.policy.version.prefix(12)))" }
            print("configuration ok: listen \(settings.listenHost):\(settings.listenPort); profiles \(profiles.joined(separator: ", ")); "
                  + "\(loaded.keys.keys.count) API keys; tokens \(loaded.tokens == nil ? "off" : "on"); tls \(settings.tlsMode.rawValue)")
        }
    }
}
