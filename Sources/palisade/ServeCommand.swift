import ArgumentParser
import AuditChain
import Foundation
import Synchronization
import NIOCore
import NIOPosix
import NIOSSL
import PalisadeProxy
import QueryPolicy
import TenantIdentity
import Yams

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the firewall in front of a PostgreSQL server.",
        discussion: """
        Every key of the configuration file can also be given as a flag; flags win. Before listening,
        Palisade refuses to start if a policy or the keys file is invalid, the server cannot be reached,
        or Palisade's own server role is a superuser or has BYPASSRLS (row-level security would not apply).
        """)

    @Option(help: "Configuration file (YAML).") var config: String?
    @Option(help: "Address to listen on, HOST:PORT (default 127.0.0.1:6432).") var listen: String?
    @Option(help: "The real server: postgres://USER:PASSWORD@HOST:PORT/DB.") var backend: String?
    @Option(help: "Policy file for the 'agent' profile (default Policies/readonly.yaml).") var policy: String?
    @Option(help: "A profile and its policy file, NAME=FILE (repeatable; default analyst=Policies/analyst.yaml).") var profile: [String] = []
    @Option(name: .customLong("api-keys"), help: "API keys file (hashes only), from `palisade keys create`.") var apiKeys: String?
    @Option(name: .customLong("tls-cert"), help: "TLS certificate chain (PEM).") var tlsCert: String?
    @Option(name: .customLong("tls-key"), help: "TLS private key (PEM).") var tlsKey: String?
    @Option(name: .customLong("tls-mode"), help: "disable | allow | require (default require; disable sends passwords in clear, for loopback development).") var tlsMode: String?
    @Option(name: .customLong("client-auth"), help: "password (an API key or JWT as the password; default) | scram-sha-256 (API keys only, the key's id as the user name; the key never crosses the wire).") var clientAuth: String?
    @Option(name: .customLong("max-message-bytes"), help: "Largest client message accepted (default 1048576).") var maxMessageBytes: Int?
    @Flag(name: .customLong("allow-privileged-backend"), help: "Start even if Palisade's server role is a superuser or has BYPASSRLS.") var allowPrivilegedBackend = false
    @Option(name: .customLong("audit-dir"), help: "Directory of the audit log (required).") var auditDir: String?
    @Option(name: .customLong("audit-key"), help: "Checkpoint signing key, from `palisade audit keygen`.") var auditKey: String?
    @Option(name: .customLong("audit-mirror"), help: "Second directory every checkpoint is also written to (ideally another disk or host).") var auditMirror: String?
    @Option(name: .customLong("audit-origin"), help: "The log's name in its checkpoints (default palisade).") var auditOrigin: String?
    @Option(name: .customLong("audit-checkpoint-seconds"), help: "Seconds between checkpoints while the log grows (default 5).") var auditCheckpointSeconds: Int?
    @Flag(name: .customLong("audit-unsigned"), help: "Run without a signing key: checkpoints are signed with a throwaway key no reviewer can trust.") var auditUnsigned = false
    @Option(name: .customLong("jwt-secret-file"), help: "HS256 secret: clients may send a JWT as their password.") var jwtSecretFile: String?
    @Option(name: .customLong("jwt-public-keys"), help: "PEM public keys or a JWKS document (RS256, ES256, EdDSA).") var jwtPublicKeys: String?
    @Option(name: .customLong("jwt-issuer"), help: "Required iss of tokens.") var jwtIssuer: String?
    @Option(name: .customLong("jwt-audience"), help: "Required aud of tokens.") var jwtAudience: String?
    @Option(name: .customLong("jwt-tenant-claim"), help: "The claim naming the tenant (default tenant_id).") var jwtTenantClaim: String?
    @Option(name: .customLong("jwt-clock-skew"), help: "Seconds of clock skew allowed for exp, nbf, iat (default 30).") var jwtClockSkew: Int?
    @Option(name: .customLong("capability-profile"), help: "A token capability and the profile it selects, CAP=PROFILE (repeatable; default agent=agent, analyst=analyst).") var capabilityProfile: [String] = []
    @Option(name: .customLong("max-sessions-per-tenant"), help: "Concurrent sessions a tenant may hold (default 100).") var maxSessionsPerTenant: Int?
    @Option(name: .customLong("max-client-connections"), help: "Client connections Palisade holds at once, logged in or not (default 1000).") var maxClientConnections: Int?
    @Option(name: .customLong("login-timeout"), help: "Seconds a client has from connecting to being logged in (default 60).") var loginTimeout: Int?
    @Option(name: .customLong("refusal-linger-seconds"), help: "Seconds a connection over max-client-connections stays open so that its 53300 is read (default 1; at most 128 at once).") var refusalLingerSeconds: Int?
    @Option(name: .customLong("tenant-rate"), help: "Queries per second a tenant may send (token bucket; default unlimited).") var tenantRate: Double?
    @Option(name: .customLong("tenant-burst"), help: "Queries a tenant may send at once (default: the rate, at least 1).") var tenantBurst: Int?
    @Option(name: .customLong("lockout-denials"), help: "Denied queries within the window that lock a credential out (default 20).") var lockoutDenials: Int?
    @Option(name: .customLong("lockout-window"), help: "The lockout window in seconds (default 60).") var lockoutWindow: Int?
    @Option(name: .customLong("lockout-seconds"), help: "How long a locked-out credential is refused (default 300).") var lockoutSeconds: Int?
    @Option(name: .customLong("backend-tls"), help: "TLS to the server: disable (default), require (encrypted), verify-full (certificate and host name checked).") var backendTLS: String?
    @Option(name: .customLong("backend-tls-ca"), help: "CA certificates (PEM) for verify-full; default: the system's.") var backendTLSCA: String?
    @Option(name: .customLong("log-format"), help: "text or json (one object per line on standard error; default text).") var logFormat: String?
    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error, critical (default info).") var logLevel: String?
    @Option(name: .customLong("shutdown-seconds"), help: "On SIGTERM, how long running queries may take to finish (default 10).") var shutdownSeconds: Int?
    @Option(name: .customLong("admin-listen"), help: "Admin HTTP (/healthz, /readyz, /metrics, POST /reload): PORT (on 127.0.0.1) or HOST:PORT; off by default.") var adminListen: String?
    @Flag(name: .customLong("require-signed-policies"), help: "Refuse any policy without a valid FILE.sig from a trusted key (at start and reload).") var requireSignedPolicies = false
    @Option(name: .customLong("policy-key"), help: "A verifier key trusted to sign policies, or a file of them (repeatable).") var policyKey: [String] = []

    func run() async throws {
        var loaded = try ServeSettings(self)
        try LogSetup.bootstrap(format: loaded.logFormat, level: loaded.logLevel)
        let metrics = AdminServer.bootstrapMetrics()
        let audit = try loaded.openAuditLog()
        let proxyConfiguration: ProxyConfiguration
        let settings: ServeSettings
        do {
            (loaded.serverFunctions, loaded.serverTypes) = try await loaded.checkBackend()
            settings = loaded
            proxyConfiguration = try await settings.proxyConfiguration(audit: audit)
            for (name, path) in settings.profiles.sorted(by: { $0.key < $1.key }) {
                try await audit.append(.policyLoaded(version: proxyConfiguration.policies.engine(for: name)!.policy.version, path: "\(name)=\(path)"))
            }
        } catch {
            audit.close()
            throw error
        }
        let server = ProxyServer(configuration: proxyConfiguration)
        let channel = try await server.start()
        // Watch for signals before announcing: a supervisor may stop Palisade as soon as it reads the line.
        let signals = SignalWatcher(signals: [SIGINT, SIGTERM]) { channel.close(promise: nil) }
        let reloads = SignalWatcher(signals: [SIGHUP]) {
            Task {
                _ = await Self.reloadPolicies(settings: settings, registry: proxyConfiguration.policies, audit: audit)
                Self.rotateAuditKeyIfChanged(settings: settings, audit: audit)
            }
        }
        var adminChannel: Channel?
        if let adminPort = settings.adminPort {
            let admin = AdminServer(registry: metrics, audit: audit, backend: settings.backend) {
                await Self.reloadPolicies(settings: settings, registry: proxyConfiguration.policies, audit: audit)
            }
            do {
                adminChannel = try await admin.start(host: settings.adminHost, port: adminPort, group: MultiThreadedEventLoopGroup.singleton)
            } catch {
                channel.close(promise: nil)
                throw configError("admin_listen", "cannot listen on \(settings.adminHost):\(adminPort): \(error)")
            }
        }
        let adminAddress = adminChannel?.localAddress.map { "; admin http://\($0.ipAddress ?? "?"):\($0.port ?? 0)" } ?? ""
        let address = channel.localAddress.map { "\($0.ipAddress ?? "?"):\($0.port ?? 0)" } ?? "?"
        FileHandle.standardOutput.write(Data("palisade: listening on \(address); backend \(settings.backend.user)@\(settings.backend.host):\(settings.backend.port)/\(settings.backend.database); tls \(settings.tlsMode.rawValue); profiles \(settings.profiles.keys.sorted().joined(separator: ", "))\(adminAddress)\n".utf8))
        try await channel.closeFuture.get()
        signals.cancel()
        reloads.cancel()
        try? await adminChannel?.close()
        try await server.shutdown(deadline: .seconds(settings.shutdownSeconds))
        audit.close()
    }
}

extension Serve {
    /// The key the audit log signs with now; SIGHUP rotates to the key file's key when it changed.
    private static let currentAuditKey = Mutex<String?>(nil)

    static func rotateAuditKeyIfChanged(settings: ServeSettings, audit: AuditLog) {
        guard let path = settings.auditKey, let key = try? AuditCLI.signingKey(path) else { return }
        let changed = currentAuditKey.withLock { current in
            let initial = current ?? audit.configuration.signingKey.verifierKey.encoded
            current = key.verifierKey.encoded
            return initial != key.verifierKey.encoded
        }
        guard changed else { return }
        Task {
            do {
                _ = try await audit.rotateSigningKey(to: key)
                FileHandle.standardError.write(Data("palisade: audit signing key rotated to \(key.verifierKey.encoded)\n".utf8))
            } catch {
                FileHandle.standardError.write(Data("palisade: audit key rotation failed: \(error)\n".utf8))
            }
        }
    }

    /// SIGHUP: load every profile's policy again, with the functions the server defines now, and
    /// install them together. A policy that does not load, or a server that cannot be read, leaves
    /// all the old ones in place; each installed policy is an audit entry.
    @discardableResult
    static func reloadPolicies(settings: ServeSettings, registry: PolicyRegistry, audit: AuditLog) async -> String {
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
        } catch {
            message = "palisade: policy reload refused, the current policies stay: \(error)"
        }
        FileHandle.standardError.write(Data((message + "\n").utf8))
        return message
    }
}

/// A `policy_keys` entry: a verifier key as is, or a file path relative to the configuration file.
enum NoteVerifierKeyOrPath {
    static func resolve(_ value: String, relativeTo base: String) -> String {
        if (try? NoteVerifierKey(parsing: value)) != nil || value.hasPrefix("/") { return value }
        return base + value
    }
}

/// The settings of `palisade serve`, from the configuration file and flags.
struct ServeSettings {
    var listenHost = "127.0.0.1"
    var listenPort = 6432
    var backend: BackendAddress
    var profiles: [String: String]
    var apiKeys: String?
    var tlsMode: TLSMode = .require
    var clientAuth: ClientAuth = .password
    var tlsCert: String?
    var tlsKey: String?
    var maxMessageBytes = 1 << 20
    var allowPrivilegedBackend = false
    var auditDir: String?
    var auditKey: String?
    var auditMirror: String?
    var auditOrigin = "palisade"
    var auditCheckpointSeconds = 5
    var auditUnsigned = false
    var jwtSecretFile: String?
    var jwtPublicKeys: String?
    var jwtIssuer: String?
    var jwtAudience: String?
    var jwtTenantClaim = "tenant_id"
    var jwtClockSkew = 30
    var capabilityProfiles = ["agent": "agent", "analyst": "analyst"]
    var maxSessionsPerTenant = 100
    /// What the server defines outside its system schemas, read at start and at each reload (`checkBackend`).
    var serverFunctions = ServerFunctions()
    /// The server's pg_type, read with the functions.
    var serverTypes = ServerTypes()
    var maxClientConnections = 1000
    var loginTimeout = 60
    var refusalLingerSeconds = 1
    var tenantRate: Double?
    var tenantBurst: Int?
    var lockoutDenials = 20
    var lockoutWindow = 60
    var lockoutSeconds = 300
    var requireSignedPolicies = false
    var policyKeys: [String] = []
    var shutdownSeconds = 10
    var backendTLSMode = "disable"
    var backendTLSCA: String?
    var logFormat = "text"
    var logLevel = "info"
    var adminHost = "127.0.0.1"
    var adminPort: Int?

    static let keys: Set<String> = ["listen", "backend", "policy", "profiles", "api_keys", "tls_cert", "tls_key", "tls_mode", "client_auth",
                                    "max_message_bytes", "allow_privileged_backend", "audit_dir", "audit_key", "audit_mirror",
                                    "audit_origin", "audit_checkpoint_seconds", "audit_unsigned", "jwt_secret_file", "jwt_public_keys",
                                    "jwt_issuer", "jwt_audience", "jwt_tenant_claim", "jwt_clock_skew", "capability_profiles",
                                    "max_sessions_per_tenant", "max_client_connections", "login_timeout", "refusal_linger_seconds", "tenant_rate", "tenant_burst", "lockout_denials", "lockout_window",
                                    "lockout_seconds", "require_signed_policies", "policy_keys", "admin_listen", "shutdown_seconds", "log_format", "log_level", "backend_tls", "backend_tls_ca"]

    init(_ command: Serve) throws {
        var file: [String: Yams.Node] = [:]
        var base = ""
        if let path = command.config {
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw configError("config", "cannot read \(path)") }
            do {
                guard let mapping = try Yams.compose(yaml: text)?.mapping else { throw configError("config", "\(path) must be a mapping of keys") }
                for (key, value) in mapping {
                    guard let name = key.string, Self.keys.contains(name) else {
                        throw configError(key.string ?? "?", "\(path):\(key.mark?.line ?? 0): unknown key (expected one of: \(Self.keys.sorted().joined(separator: ", ")))")
                    }
                    file[name] = value
                }
            } catch let error as ConfigurationError {
                throw error
            } catch {
                throw configError("config", "\(path) is not valid YAML: \(error)")
            }
            base = URL(fileURLWithPath: path).deletingLastPathComponent().path + "/"
        }
        // PALISADE_<KEY> overrides the file; a flag overrides both. Values are YAML scalars or flow
        // mappings ({agent: policy.yaml}); paths from the environment are taken as given.
        var fromEnvironment: Set<String> = []
        for key in Self.keys {
            guard let value = ProcessInfo.processInfo.environment["PALISADE_" + key.uppercased()] else { continue }
            do {
                guard let node = try Yams.compose(yaml: value) else { continue }
                file[key] = node
                fromEnvironment.insert(key)
            } catch {
                throw configError(key, "PALISADE_\(key.uppercased()) is not a valid value: \(error)")
            }
        }
        func relative(_ key: String, _ path: String) -> String {
            path.hasPrefix("/") || fromEnvironment.contains(key) ? path : base + path
        }
        func string(_ key: String) throws -> String? {
            guard let node = file[key] else { return nil }
            guard let value = node.string else { throw configError(key, "expected a string") }
            return value
        }
        func path(_ key: String) throws -> String? {
            try string(key).map { relative(key, $0) }
        }

        if let listen = try command.listen ?? string("listen") {
            let parts = listen.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count >= 2, let port = Int(parts.last!), (0...65535).contains(port) else {
                throw configError("listen", "expected HOST:PORT, got '\(listen)'")
            }
            listenHost = parts.dropLast().joined(separator: ":")
            listenPort = port
        }
        guard let backendURL = try command.backend ?? string("backend") else {
            throw configError("backend", "required: postgres://USER:PASSWORD@HOST:PORT/DB")
        }
        guard let backend = BackendAddress(url: backendURL) else {
            throw configError("backend", "expected postgres://USER:PASSWORD@HOST:PORT/DB")
        }
        self.backend = backend

        profiles = ["agent": "Policies/readonly.yaml", "analyst": "Policies/analyst.yaml"]
        if let mapping = file["profiles"] {
            guard let entries = mapping.mapping else { throw configError("profiles", "expected a mapping of profile names to policy files") }
            for (name, value) in entries {
                guard let name = name.string, let path = value.string else { throw configError("profiles", "expected NAME: FILE entries") }
                profiles[name] = relative("profiles", path)
            }
        }
        if let policy = try path("policy") { profiles["agent"] = policy }
        if let policy = command.policy { profiles["agent"] = policy }
        for entry in command.profile {
            let parts = entry.split(separator: "=", maxSplits: 1)
            guard parts.count == 2 else { throw configError("profile", "expected NAME=FILE, got '\(entry)'") }
            profiles[String(parts[0])] = String(parts[1])
        }
        apiKeys = try command.apiKeys ?? path("api_keys")
        if let mode = try command.tlsMode ?? string("tls_mode") {
            guard let parsed = TLSMode(rawValue: mode) else { throw configError("tls_mode", "expected disable, allow or require, got '\(mode)'") }
            tlsMode = parsed
        }
        if let mode = try command.clientAuth ?? string("client_auth") {
            guard let parsed = ClientAuth(rawValue: mode) else { throw configError("client_auth", "expected password or scram-sha-256, got '\(mode)'") }
            clientAuth = parsed
        }
        tlsCert = try command.tlsCert ?? path("tls_cert")
        tlsKey = try command.tlsKey ?? path("tls_key")
        if let bytes = command.maxMessageBytes ?? file["max_message_bytes"]?.int {
            guard (1024...(64 << 20)).contains(bytes) else { throw configError("max_message_bytes", "must be between 1024 and 67108864") }
            maxMessageBytes = bytes
        }
        allowPrivilegedBackend = command.allowPrivilegedBackend || file["allow_privileged_backend"]?.bool == true
        auditDir = try command.auditDir ?? path("audit_dir")
        auditKey = try command.auditKey ?? path("audit_key")
        auditMirror = try command.auditMirror ?? path("audit_mirror")
        auditOrigin = try command.auditOrigin ?? string("audit_origin") ?? auditOrigin
        if let seconds = command.auditCheckpointSeconds ?? file["audit_checkpoint_seconds"]?.int {
            guard (1...3600).contains(seconds) else { throw configError("audit_checkpoint_seconds", "must be between 1 and 3600") }
            auditCheckpointSeconds = seconds
        }
        auditUnsigned = command.auditUnsigned || file["audit_unsigned"]?.bool == true
        jwtSecretFile = try command.jwtSecretFile ?? path("jwt_secret_file")
        jwtPublicKeys = try command.jwtPublicKeys ?? path("jwt_public_keys")
        if jwtSecretFile != nil, jwtPublicKeys != nil {
            throw configError("jwt_secret_file", "give either jwt_secret_file (HS256) or jwt_public_keys, not both")
        }
        jwtIssuer = try command.jwtIssuer ?? string("jwt_issuer")
        jwtAudience = try command.jwtAudience ?? string("jwt_audience")
        jwtTenantClaim = try command.jwtTenantClaim ?? string("jwt_tenant_claim") ?? jwtTenantClaim
        func integer(_ flag: Int?, _ key: String, _ range: ClosedRange<Int>) throws -> Int? {
            guard let value = flag ?? file[key]?.int else {
                if file[key] != nil { throw configError(key, "expected an integer") }
                return nil
            }
            guard range.contains(value) else { throw configError(key, "must be between \(range.lowerBound) and \(range.upperBound)") }
            return value
        }
        jwtClockSkew = try integer(command.jwtClockSkew, "jwt_clock_skew", 0...3600) ?? jwtClockSkew
        maxSessionsPerTenant = try integer(command.maxSessionsPerTenant, "max_sessions_per_tenant", 1...100_000) ?? maxSessionsPerTenant
        maxClientConnections = try integer(command.maxClientConnections, "max_client_connections", 1...1_000_000) ?? maxClientConnections
        loginTimeout = try integer(command.loginTimeout, "login_timeout", 1...3600) ?? loginTimeout
        refusalLingerSeconds = try integer(command.refusalLingerSeconds, "refusal_linger_seconds", 1...3600) ?? refusalLingerSeconds
        tenantBurst = try integer(command.tenantBurst, "tenant_burst", 1...1_000_000)
        lockoutDenials = try integer(command.lockoutDenials, "lockout_denials", 1...1_000_000) ?? lockoutDenials
        lockoutWindow = try integer(command.lockoutWindow, "lockout_window", 1...86_400) ?? lockoutWindow
        lockoutSeconds = try integer(command.lockoutSeconds, "lockout_seconds", 1...604_800) ?? lockoutSeconds
        if let rate = command.tenantRate ?? file["tenant_rate"]?.float {
            guard rate > 0, rate <= 1_000_000 else { throw configError("tenant_rate", "must be above 0 and at most 1000000") }
            tenantRate = rate
        }
        if let admin = try command.adminListen ?? string("admin_listen") {
            let parts = admin.split(separator: ":", omittingEmptySubsequences: false)
            guard let port = Int(parts.last ?? ""), (0...65535).contains(port) else {
                throw configError("admin_listen", "expected PORT or HOST:PORT, got '\(admin)'")
            }
            if parts.count > 1 { adminHost = parts.dropLast().joined(separator: ":") }
            adminPort = port
        }
        shutdownSeconds = try integer(command.shutdownSeconds, "shutdown_seconds", 0...3600) ?? shutdownSeconds
        backendTLSMode = try command.backendTLS ?? string("backend_tls") ?? backendTLSMode
        guard ["disable", "require", "verify-full"].contains(backendTLSMode) else {
            throw configError("backend_tls", "expected disable, require or verify-full, got '\(backendTLSMode)'")
        }
        backendTLSCA = try command.backendTLSCA ?? path("backend_tls_ca")
        logFormat = try command.logFormat ?? string("log_format") ?? logFormat
        logLevel = try command.logLevel ?? string("log_level") ?? logLevel
        requireSignedPolicies = command.requireSignedPolicies || file["require_signed_policies"]?.bool == true
        policyKeys = command.policyKey
        if policyKeys.isEmpty, let node = file["policy_keys"] {
            guard let list = node.sequence?.compactMap({ $0.string }) ?? node.string.map({ [$0] }) else {
                throw configError("policy_keys", "expected a verifier key or a list of them")
            }
            policyKeys = list.map { NoteVerifierKeyOrPath.resolve($0, relativeTo: base) }
        }
        if requireSignedPolicies, policyKeys.isEmpty {
            throw configError("policy_keys", "require_signed_policies needs at least one trusted key (--policy-key)")
        }
        if let mapping = file["capability_profiles"] {
            guard let entries = mapping.mapping else { throw configError("capability_profiles", "expected CAPABILITY: PROFILE entries") }
            for (capability, profile) in entries {
                guard let capability = capability.string, let profile = profile.string else { throw configError("capability_profiles", "expected CAPABILITY: PROFILE entries") }
                capabilityProfiles[capability] = profile
            }
        }
        for entry in command.capabilityProfile {
            let parts = entry.split(separator: "=", maxSplits: 1)
            guard parts.count == 2 else { throw configError("capability_profile", "expected CAP=PROFILE, got '\(entry)'") }
            capabilityProfiles[String(parts[0])] = String(parts[1])
        }
    }

    func tokenVerifier() async throws -> TokenVerifier? {
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
    func openAuditLog() throws -> AuditLog {
        let (auditDir, key) = try auditSettings(warn: true)
        try FileManager.default.createDirectory(atPath: auditDir, withIntermediateDirectories: true)
        do {
            return try AuditLog(AuditLogConfiguration(
                directory: auditDir, signingKey: key, origin: auditOrigin,
                checkpointInterval: .seconds(auditCheckpointSeconds), checkpointMirror: auditMirror))
        } catch {
            throw configError("audit_dir", "cannot open the audit log in \(auditDir): \(error)")
        }
    }

    func auditSettings(warn: Bool) throws -> (directory: String, key: AuditSigningKey) {
        guard let auditDir else { throw configError("audit_dir", "required: the directory of the audit log (--audit-dir)") }
        let key: AuditSigningKey
        if let auditKey {
            do { key = try AuditCLI.signingKey(auditKey) } catch { throw configError("audit_key", "\(error)") }
        } else if auditUnsigned && !warn {
            key = try AuditSigningKey.generate(name: "palisade-unsigned")
        } else if auditUnsigned {
            key = try AuditSigningKey.generate(name: "palisade-unsigned")
            FileHandle.standardError.write(Data("palisade: warning: --audit-unsigned: checkpoints are signed with a throwaway key; reviewers cannot trust them\n".utf8))
        } else {
            throw configError("audit_key", "required: create one with `palisade audit keygen --out FILE`, or pass --audit-unsigned")
        }
        return (auditDir, key)
    }

    /// Everything `serve` reads before it opens the audit log and reaches the server.
    struct Loaded {
        var engines: [String: PolicyEngine]
        var keys: APIKeyStore
        var tls: NIOSSLContext?
        var tokens: TokenVerifier?
        var budgets: TenantBudgets
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

    func proxyConfiguration(audit: AuditLog) async throws -> ProxyConfiguration {
        try reserveFileDescriptors()
        let loaded = try await load()
        return ProxyConfiguration(listenHost: listenHost, listenPort: listenPort, backend: backend, policies: PolicyRegistry(loaded.engines, serverTypes: serverTypes),
                                  keys: loaded.keys, tlsMode: tlsMode, tls: loaded.tls, maxMessageBytes: maxMessageBytes, audit: audit,
                                  tokens: loaded.tokens, capabilityProfiles: capabilityProfiles, budgets: loaded.budgets,
                                  backendTLS: try backendTLS(), maxClientConnections: maxClientConnections,
                                  loginTimeout: .seconds(Int64(loginTimeout)), refusalLinger: .seconds(Int64(refusalLingerSeconds)),
                                  clientAuth: clientAuth)
    }

    /// Every profile's policy, or the first that does not load.
    func loadPolicies() throws -> [String: PolicyEngine] {
        var engines: [String: PolicyEngine] = [:]
        let trusted = requireSignedPolicies ? try AuditCLI.trustedKeys(policyKeys, logDirectory: nil) : []
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

    func load() async throws -> Loaded {
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
            sessions: SessionLimiter(maxSessionsPerTenant: maxSessionsPerTenant),
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

    /// The server must be reachable, and row-level security must apply to Palisade's role. Returns
    /// the functions the server defines outside its system schemas, for the policy engines, and
    /// its types, for the parameter types clients declare.
    func checkBackend() async throws -> (ServerFunctions, ServerTypes) {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let role: [[String?]]
        let functions: [[String?]]
        let types: [[String?]]
        do {
            let tls = try backendTLS()
            role = try await BackendProbe.query(
                "SELECT rolsuper::text, rolbypassrls::text FROM pg_catalog.pg_roles WHERE rolname = current_user", on: backend,
                tls: tls, group: group)
            functions = try await BackendProbe.query(
                """
                SELECT n.nspname, p.proname, bool_or(p.pronargs = 1)::text FROM pg_catalog.pg_proc p
                JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
                WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp_)'
                GROUP BY 1, 2
                """, on: backend, tls: tls, group: group)
            // Each type with the types whose input functions reading it runs too (see ServerTypes).
            types = try await BackendProbe.query(
                """
                SELECT t.oid::text, n.nspname, t.typname, concat_ws(' ', nullif(t.typelem, 0), nullif(t.typbasetype, 0),
                       (SELECT r.rngsubtype FROM pg_catalog.pg_range r WHERE r.rngtypid = t.oid),
                       (SELECT r.rngtypid FROM pg_catalog.pg_range r WHERE r.rngmultitypid = t.oid),
                       (SELECT string_agg(a.atttypid::text, ' ') FROM pg_catalog.pg_attribute a
                        WHERE t.typrelid <> 0 AND a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped))
                FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
                """, on: backend, tls: tls, group: group)
            try? await group.shutdownGracefully()
        } catch {
            try? await group.shutdownGracefully()
            throw configError("backend", "\(error)")
        }
        guard let row = role.first, row.count == 2 else { throw configError("backend", "cannot read the role's attributes") }
        if row[0] == "true" || row[1] == "true", !allowPrivilegedBackend {
            throw configError("backend", "role \(backend.user) is \(row[0] == "true" ? "a superuser" : "BYPASSRLS"): row-level security would not apply to it; use a role that owns nothing and can only SELECT (or pass --allow-privileged-backend)")
        }
        var server = ServerFunctions()
        for row in functions where row.count == 3 {
            guard let schema = row[0], let name = row[1] else { continue }
            server.names[schema, default: []].insert(name)
            if row[2] == "true" { server.oneArgumentNames[schema, default: []].insert(name) }
        }
        var serverTypes = ServerTypes()
        for row in types where row.count == 4 {
            guard let oid = row[0].flatMap({ UInt32($0) }), let schema = row[1], let name = row[2] else { continue }
            let components = (row[3] ?? "").split(separator: " ").compactMap { UInt32($0) }
            serverTypes.byOID[oid] = ServerTypes.Entry(schema: schema, name: name, components: components)
        }
        return (server, serverTypes)
    }

}

func configError(_ key: String, _ reason: String) -> ConfigurationError {
    ConfigurationError(description: "configuration error: \(key): \(reason)")
}

/// Per signal number, the write end of the pipe its handler writes to (a handler may only call
/// async-signal-safe functions, such as write).
nonisolated(unsafe) private var signalPipes = [Int32](repeating: -1, count: 65)

/// Runs `action` on a thread for every delivery of the given signals. The handler is installed
/// before this returns and only writes a byte to a pipe, so a signal that comes at once is never
/// lost (a Dispatch signal source arms itself asynchronously and can miss it).
final class SignalWatcher {
    private let numbers: [Int32]

    init(signals numbers: [Int32], _ action: @escaping @Sendable () -> Void) {
        self.numbers = numbers
        var ends: [Int32] = [-1, -1]
        pipe(&ends)
        for number in numbers {
            signalPipes[Int(number)] = ends[1]
            signal(number) { number in
                var byte = UInt8(truncatingIfNeeded: number)
                _ = write(signalPipes[Int(number)], &byte, 1)
            }
        }
        let readEnd = ends[0]
        Thread.detachNewThread {
            var byte: UInt8 = 0
            while true {
                let count = read(readEnd, &byte, 1)
                if count < 0, errno == EINTR { continue }
                if count <= 0 { return }
                action()
            }
        }
    }

    func cancel() {
        for number in numbers { signal(number, SIG_DFL) }
    }
}

struct ConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "config", abstract: "Work with configurations.", subcommands: [Check.self])

    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate a configuration (file, PALISADE_* variables and flags) as `palisade serve` would, without starting.",
            discussion: "Loads every policy, the keys file, TLS files, token keys and the audit key; exit 0 if all are valid, 2 otherwise. The server is not contacted.")

        @OptionGroup var serve: Serve

        func run() async throws {
            let settings = try ServeSettings(serve)
            let loaded = try await settings.load()
            _ = try settings.auditSettings(warn: false)
            let profiles = loaded.engines.sorted { $0.key < $1.key }.map { "\($0.key) (\($0.value.policy.version.prefix(12)))" }
            print("configuration ok: listen \(settings.listenHost):\(settings.listenPort); profiles \(profiles.joined(separator: ", ")); "
                  + "\(loaded.keys.keys.count) API keys; tokens \(loaded.tokens == nil ? "off" : "on"); tls \(settings.tlsMode.rawValue)")
        }
    }
}

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
            FileHandle.standardError.write(Data("palisade: key \(record.id) for tenant \(tenant), profile \(profile), stored as a SHA-256 hash and a SCRAM verifier in \(keysFile) (with client_auth scram-sha-256 the user name is \(record.id)); it is not shown again\n".utf8))
        }
    }
}
