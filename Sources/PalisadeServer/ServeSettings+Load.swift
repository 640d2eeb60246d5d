import AuditChain
import Foundation
import Logging
import NIOSSL
import PalisadeProxy
import QueryPolicy
import TenantIdentity

/// What the settings name, loaded: policies, keys, TLS, token keys, budgets and the audit log.
extension ServeSettings {
    public func tokenVerifier() async throws -> TokenVerifier? {
        var configuration: TokenVerifierConfiguration
        do {
            if let jwtSecretFile {
                configuration = try TokenVerifierConfiguration.load(secretFile: jwtSecretFile)
            } else if let jwtPublicKeys {
                configuration = try TokenVerifierConfiguration.load(publicKeysFile: jwtPublicKeys)
            } else {
                return nil
            }
        } catch {
            throw configError(jwtSecretFile != nil ? "jwt_secret_file" : "jwt_public_keys", error.description)
        }
        configuration.issuer = jwtIssuer
        configuration.audience = jwtAudience
        configuration.tenantClaim = jwtTenantClaim
        configuration.clockSkew = .seconds(jwtClockSkew)
        do {
            return try await TokenVerifier(configuration)
        } catch {
            throw configError(jwtSecretFile != nil ? "jwt_secret_file" : "jwt_public_keys", error.description)
        }
    }

    /// Every decision is recorded before it is answered, so there is no running without a log.
    public func openAuditLog() throws -> AuditLog {
        let (auditDir, key) = try auditSettings(warn: true)
        if case .written = auditDurability {
            Logger(label: "palisade").warning("audit_durability \(auditDurability): answers wait for their entry's write, not its fdatasync; a crash of the machine loses the entries answered since the last flush")
        }
        try FileManager.default.createDirectory(atPath: auditDir, withIntermediateDirectories: true)
        do {
            return try AuditLog(AuditLogConfiguration(
                directory: auditDir, signingKey: key, origin: auditOrigin,
                checkpointInterval: .seconds(auditCheckpointSeconds), checkpointMirror: auditMirror,
                durability: auditDurability))
        } catch {
            throw configError("audit_dir", "cannot open the audit log in \(auditDir): \(error)")
        }
    }

    public func auditSettings(warn: Bool) throws -> (directory: String, key: AuditSigningKey) {
        guard let auditDir else { throw configError("audit_dir", "required: the directory of the audit log (--audit-dir)") }
        let key: AuditSigningKey
        if let auditKey {
            do { key = try KeyFiles.signingKey(auditKey) } catch { throw configError("audit_key", "\(error)") }
        } else if auditUnsigned && !warn {
            key = try AuditSigningKey.generate(name: "palisade-unsigned")
        } else if auditUnsigned {
            key = try AuditSigningKey.generate(name: "palisade-unsigned")
            Logger(label: "palisade").warning("--audit-unsigned: checkpoints are signed with a throwaway key; reviewers cannot trust them")
        } else {
            throw configError("audit_key", "required: create one with `palisade audit keygen --out FILE`, or pass --audit-unsigned")
        }
        return (auditDir, key)
    }

    /// Everything `serve` reads before it opens the audit log and reaches the server.
    public struct Loaded {
        public var engines: [String: PolicyEngine]
        public var keys: APIKeyStore
        var tls: NIOSSLContext?
        public var tokens: TokenVerifier?
        public var budgets: TenantBudgets
    }

    /// Each client connection takes two file descriptors (its socket and its server's), and each
    /// connection being refused one: make sure the process may open them all, raising its soft
    /// limit if the hard one allows. Running out would leave new connections waiting in the
    /// listen queue with no answer at all.
    func reserveFileDescriptors() throws {
        let needed = rlim_t(maxClientConnections * 2 + ProxyServer.maxLingeringRefusals + 256)
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else {
            throw configError("max_client_connections", "cannot read this process's open-file limit (errno \(errno)) to check that \(maxClientConnections) connections fit")
        }
        guard limit.rlim_cur < needed else { return }
        if limit.rlim_max >= needed {
            limit.rlim_cur = needed
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 { return }
        }
        throw configError("max_client_connections", "\(maxClientConnections) connections need \(needed) open files, and this process may open only \(limit.rlim_max) (ulimit -n); lower max_client_connections or raise the limit")
    }

    public func proxyConfiguration(audit: AuditLog) async throws -> ProxyConfiguration {
        try reserveFileDescriptors()
        var loaded = try await load()
        loaded.budgets.sessions = SessionLimiter(maxSessionsPerTenant: sessionLimit(serverSlots: try await serverConnectionSlots()))
        return ProxyConfiguration(listenHost: listenHost, listenPort: listenPort, backend: backend, policies: PolicyRegistry(loaded.engines, serverTypes: serverTypes),
                                  keys: loaded.keys, tlsMode: tlsMode, tls: loaded.tls, maxMessageBytes: maxMessageBytes, audit: audit,
                                  tokens: loaded.tokens, capabilityProfiles: capabilityProfiles, budgets: loaded.budgets,
                                  backendTLS: try backendTLS(), maxClientConnections: maxClientConnections,
                                  loginTimeout: .seconds(Int64(loginTimeout)), refusalLinger: .seconds(Int64(refusalLingerSeconds)),
                                  clientAuth: clientAuth)
    }

    /// Each session of a client holds one connection to the server, and the server refuses logins
    /// past its slots: one tenant's 197 sessions through both doors left none for another, who was
    /// refused with 53300 (sixteenth red team, at max_connections 200 and a limit of 100 a door).
    static let sessionLimitCeiling = 100

    /// The tenant session limit: as set, or a quarter of the server's `slots` for Palisade's role
    /// (24 of PostgreSQL's default 100 connections), at most 100. A limit set as large as the slots
    /// is kept, with a warning: the operator may know of a pooler or other doors.
    func sessionLimit(serverSlots slots: Int) -> Int {
        guard let maxSessionsPerTenant else { return max(1, min(Self.sessionLimitCeiling, slots / 4)) }
        if maxSessionsPerTenant >= slots {
            PalisadeServer.logger.warning("max_sessions_per_tenant \(maxSessionsPerTenant) lets one tenant hold every connection the server allows Palisade's role (\(slots)); other tenants would then be refused with 53300")
        }
        return maxSessionsPerTenant
    }

    /// Every profile's policy, or the first that does not load.
    public func loadPolicies() throws -> [String: PolicyEngine] {
        var engines: [String: PolicyEngine] = [:]
        let trusted = requireSignedPolicies ? try KeyFiles.trustedKeys(policyKeys) : []
        for (name, path) in profiles {
            if requireSignedPolicies, let problem = PolicySignature.problem(with: path, trusting: trusted) {
                throw configError("profiles.\(name)", problem)
            }
            do { engines[name] = PolicyEngine(policy: try Policy.load(path: path), serverFunctions: serverFunctions) } catch {
                throw configError("profiles.\(name)", error.description)
            }
        }
        return engines
    }

    public func load() async throws -> Loaded {
        let engines = try loadPolicies()
        guard apiKeys != nil || jwtSecretFile != nil || jwtPublicKeys != nil else {
            throw configError("api_keys", "required (or jwt_secret_file / jwt_public_keys): create keys with `palisade keys create --tenant T --profile P --keys-file FILE`")
        }
        var keys = APIKeyStore(keys: [])
        if let apiKeys {
            do { keys = try APIKeyStore.load(path: apiKeys) } catch { throw configError("api_keys", error.description) }
        }
        for key in keys.keys where engines[key.profile] == nil {
            throw configError("api_keys", "key \(key.id) names profile '\(key.profile)', which is not configured (profiles: \(engines.keys.sorted().joined(separator: ", ")))")
        }
        if clientAuth == .scramSHA256 {
            if jwtSecretFile != nil || jwtPublicKeys != nil {
                throw configError("client_auth", "scram-sha-256 checks API keys only: a token cannot be verified without being sent; use client_auth password for JWTs")
            }
            if let key = keys.keys.first(where: { $0.scram == nil }) {
                throw configError("api_keys", "key \(key.id) has no SCRAM verifier (made before Palisade stored them); create it again with `palisade keys create` for client_auth scram-sha-256")
            }
        }
        var tls: NIOSSLContext?
        switch (tlsCert, tlsKey) {
        case let (cert?, key?):
            do {
                let configuration = TLSConfiguration.makeServerConfiguration(
                    certificateChain: try NIOSSLCertificate.fromPEMFile(cert).map { .certificate($0) },
                    privateKey: .privateKey(try NIOSSLPrivateKey(file: key, format: .pem)))
                tls = try NIOSSLContext(configuration: configuration)
            } catch {
                throw configError("tls_cert", "cannot load \(cert) and \(key): \(error)")
            }
        case (nil, nil):
            if tlsMode != .disable {
                throw configError("tls_mode", "\(tlsMode.rawValue) needs --tls-cert and --tls-key; use --tls-mode disable only for loopback development")
            }
        default:
            throw configError("tls_cert", "give both --tls-cert and --tls-key")
        }
        for (capability, profile) in capabilityProfiles where engines[profile] == nil {
            throw configError("capability_profiles", "capability \(capability) selects profile '\(profile)', which is not configured")
        }
        let budgets = TenantBudgets(
            sessions: SessionLimiter(maxSessionsPerTenant: maxSessionsPerTenant ?? Self.sessionLimitCeiling),
            rate: tenantRate.map { RateLimiter(ratePerSecond: $0, burst: tenantBurst ?? max(1, Int($0))) },
            lockout: Lockout(maxDenials: lockoutDenials, window: .seconds(lockoutWindow), coolDown: .seconds(lockoutSeconds)))
        return Loaded(engines: engines, keys: keys, tls: tls, tokens: try await tokenVerifier(), budgets: budgets)
    }

    func backendTLS() throws -> BackendTLS? {
        guard backendTLSMode != "disable" else { return nil }
        var configuration = TLSConfiguration.makeClientConfiguration()
        if backendTLSMode == "require" {
            configuration.certificateVerification = .none
        } else if let backendTLSCA {
            configuration.trustRoots = .file(backendTLSCA)
        }
        do {
            return BackendTLS(context: try NIOSSLContext(configuration: configuration),
                              serverHostname: backendTLSMode == "verify-full" ? backend.host : nil)
        } catch {
            throw configError("backend_tls_ca", "cannot set up TLS to the server: \(error)")
        }
    }
}
