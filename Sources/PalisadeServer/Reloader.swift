import AuditChain
import Logging
import PalisadeProxy
import QueryPolicy
import Locking

/// SIGHUP and `POST /reload`: the policies, and the audit key when its file holds another.
final class Reloader: Sendable {
    let settings: ServeSettings
    let registry: PolicyRegistry
    let audit: AuditLog
    /// The key the audit log signs with now.
    private let currentAuditKey: Locked<String>

    init(settings: ServeSettings, registry: PolicyRegistry, audit: AuditLog) {
        self.settings = settings
        self.registry = registry
        self.audit = audit
        currentAuditKey = Locked(audit.configuration.signingKey.verifierKey.encoded)
    }

    /// Load every profile's policy again, with the functions the server defines now, and install
    /// them together. A policy that does not load, or a server that cannot be read, leaves all the
    /// old ones in place; each installed policy is an audit entry.
    @discardableResult
    func reloadPolicies() async -> String {
        let message: String
        do {
            var current = settings
            // A function created since the last load may take over a name (see ServerFunctions), and
            // a type created since may be declared for a parameter (see ServerTypes).
            (current.serverFunctions, current.serverTypes) = try await settings.checkBackend()
            let engines = try current.loadPolicies()
            guard registry.replace(with: engines, serverTypes: current.serverTypes) else { throw ConfigurationError(description: "the set of profiles changed; restart to change it") }
            for (name, path) in settings.profiles.sorted(by: { $0.key < $1.key }) {
                audit.append(.policyLoaded(version: engines[name]!.policy.version, path: "\(name)=\(path)")) { _ in }
            }
            message = "palisade: policies reloaded: " + engines.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value.policy.version.prefix(12))" }.joined(separator: ", ")
            PalisadeServer.logger.notice("\(message)")
        } catch {
            message = "palisade: policy reload refused, the current policies stay: \(error)"
            PalisadeServer.logger.error("\(message)")
        }
        return message
    }

    func rotateAuditKeyIfChanged() async {
        guard let path = settings.auditKey, let key = try? KeyFiles.signingKey(path) else { return }
        let changed = currentAuditKey.withLock { current in
            defer { current = key.verifierKey.encoded }
            return current != key.verifierKey.encoded
        }
        guard changed else { return }
        do {
            _ = try await audit.rotateSigningKey(to: key)
            PalisadeServer.logger.notice("audit signing key rotated to \(key.verifierKey.encoded)")
        } catch {
            PalisadeServer.logger.error("audit key rotation failed: \(error)")
        }
    }
}
