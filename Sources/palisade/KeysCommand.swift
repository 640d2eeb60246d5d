import ArgumentParser
import Foundation
import TenantIdentity

struct KeysCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "keys", abstract: "Manage API keys.", subcommands: [Create.self])

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create an API key; prints it once, stores only its hash.")

        @Option(help: "The tenant the key reads as.") var tenant: String
        @Option(help: "The profile (policy) the key uses, e.g. agent or analyst.") var profile: String = "agent"
        @Option(name: .customLong("keys-file"), help: "The keys file to append to (created with mode 0600).") var keysFile: String

        func run() throws {
            let (key, record) = APIKeyStore.generate(tenant: tenant, profile: profile)
            do { try APIKeyStore.append(record, toFile: keysFile) } catch { throw ValidationError(error.description) }
            print(key)
            Console.standardError("palisade: key \(record.id) for tenant \(tenant), profile \(profile), stored as a SHA-256 hash and a SCRAM verifier in \(keysFile) (with client_auth scram-sha-256 the user name is \(record.id)); it is not shown again")
        }
    }
}
