import ArgumentParser
import Foundation
import PalisadeServer
import TenantIdentity

struct TokensCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "tokens", abstract: "Mint development tokens.", subcommands: [Mint.self])

    struct Mint: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print an HS256 JWT for a tenant, signed with the secret `palisade serve --jwt-secret-file` checks.",
            discussion: "For development and tests; in production an identity provider issues tokens.")

        @Option(name: .customLong("secret-file"), help: "The HS256 secret (at least 32 bytes).") var secretFile: String
        @Option(help: "The tenant the token reads as.") var tenant: String
        @Option(help: "The role (capability) that selects the profile.") var role = "agent"
        @Option(help: "Seconds until the token expires (negative for an expired token).") var ttl = 3600
        @Option(help: "The claim naming the tenant.") var tenantClaim = "tenant_id"
        @Option(help: "iss claim.") var issuer: String?
        @Option(help: "aud claim.") var audience: String?

        func run() throws {
            guard var secret = FileManager.default.contents(atPath: secretFile).map(Array.init) else {
                throw ConfigurationError(description: "cannot read \(secretFile)")
            }
            while secret.last == UInt8(ascii: "\n") || secret.last == UInt8(ascii: "\r") { secret.removeLast() }
            guard secret.count >= 32 else { throw ConfigurationError(description: "\(secretFile): the secret must be at least 32 bytes") }
            print(TokenMinter.hs256(secret: secret, tenantClaim: tenantClaim, tenant: tenant, role: role, lifetime: TimeInterval(ttl),
                                    issuer: issuer, audience: audience))
        }
    }
}
