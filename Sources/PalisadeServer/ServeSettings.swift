import AuditChain
import Foundation
import NIOCore
import PalisadeProxy
import QueryPolicy

/// The settings of `palisade serve`, from the configuration file, the environment and flags.
public struct ServeSettings: Sendable {
    public var listenHost = "127.0.0.1"
    public var listenPort = 6432
    public var backend: BackendAddress
    public var profiles: [String: String]
    public var apiKeys: String?
    public var tlsMode: TLSMode = .require
    public var clientAuth: ClientAuth = .password
    public var tlsCert: String?
    public var tlsKey: String?
    public var maxMessageBytes = 1 << 20
    public var allowPrivilegedBackend = false
    public var auditDir: String?
    public var auditKey: String?
    public var auditMirror: String?
    public var auditOrigin = "palisade"
    public var auditCheckpointSeconds = 5
    public var auditDurability = AuditDurability.flushed
    public var auditUnsigned = false
    public var jwtSecretFile: String?
    public var jwtPublicKeys: String?
    public var jwtIssuer: String?
    public var jwtAudience: String?
    public var jwtTenantClaim = "tenant_id"
    public var jwtClockSkew = 30
    public var capabilityProfiles = ["agent": "agent", "analyst": "analyst"]
    /// nil: derived from the server's connections at start (`sessionLimit`).
    public var maxSessionsPerTenant: Int?
    /// What the server defines outside its system schemas, read at start and at each reload (`checkBackend`).
    public var serverFunctions = ServerFunctions()
    /// The server's pg_type, read with the functions.
    public var serverTypes = ServerTypes()
    public var maxClientConnections = 1000
    public var loginTimeout = 60
    public var refusalLingerSeconds = 1
    public var tenantRate: Double?
    public var tenantBurst: Int?
    public var lockoutDenials = 20
    public var lockoutWindow = 60
    public var lockoutSeconds = 300
    public var requireSignedPolicies = false
    public var policyKeys: [String] = []
    public var shutdownSeconds = 10
    public var backendTLSMode = "disable"
    public var backendTLSCA: String?
    public var logFormat = "text"
    public var logLevel = "info"
    public var adminHost = "127.0.0.1"
    public var adminPort: Int?
    public var threads = System.coreCount

    /// `flags` holds each given flag's values by setting key (a switch that is on: `["true"]`).
    public init(configFile: String?, environment: [String: String] = ProcessInfo.processInfo.environment,
                flags: [String: [String]] = [:]) throws {
        let source = try SettingSources(configFile: configFile, environment: environment, flags: flags)
        if let listen = try source.string("listen") {
            let parts = listen.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count >= 2, let port = Int(parts.last!), (0...65535).contains(port) else {
                throw configError("listen", "expected HOST:PORT, got '\(listen)'")
            }
            listenHost = parts.dropLast().joined(separator: ":")
            listenPort = port
        }
        guard let backendURL = try source.string("backend") else {
            throw configError("backend", "required: postgres://USER:PASSWORD@HOST:PORT/DB")
        }
        guard let backend = BackendAddress(url: backendURL) else {
            throw configError("backend", "expected postgres://USER:PASSWORD@HOST:PORT/DB")
        }
        self.backend = backend

        profiles = ["agent": "Policies/readonly.yaml", "analyst": "Policies/analyst.yaml"]
        let profileEntries = try source.mapping("profiles", flagForm: "NAME=FILE")
        for entry in profileEntries where entry.origin != .flag { profiles[entry.name] = source.resolve(entry.value, origin: entry.origin) }
        if let policy = try source.path("policy") { profiles["agent"] = policy }
        for entry in profileEntries where entry.origin == .flag { profiles[entry.name] = entry.value }
        apiKeys = try source.path("api_keys")
        if let mode = try source.string("tls_mode") {
            guard let parsed = TLSMode(rawValue: mode) else { throw configError("tls_mode", "expected disable, allow or require, got '\(mode)'") }
            tlsMode = parsed
        }
        if let mode = try source.string("client_auth") {
            guard let parsed = ClientAuth(rawValue: mode) else { throw configError("client_auth", "expected password or scram-sha-256, got '\(mode)'") }
            clientAuth = parsed
        }
        tlsCert = try source.path("tls_cert")
        tlsKey = try source.path("tls_key")
        maxMessageBytes = try source.integer("max_message_bytes") ?? maxMessageBytes
        allowPrivilegedBackend = source.isOn("allow_privileged_backend")
        auditDir = try source.path("audit_dir")
        auditKey = try source.path("audit_key")
        auditMirror = try source.path("audit_mirror")
        auditOrigin = try source.string("audit_origin") ?? auditOrigin
        auditCheckpointSeconds = try source.integer("audit_checkpoint_seconds") ?? auditCheckpointSeconds
        let flushMilliseconds = try source.integer("audit_flush_ms") ?? 200
        switch try source.string("audit_durability") ?? "flush" {
        case "flush": auditDurability = .flushed
        case "write": auditDurability = .written(flushInterval: .milliseconds(flushMilliseconds))
        case let other: throw configError("audit_durability", "expected flush or write, got '\(other)'")
        }
        auditUnsigned = source.isOn("audit_unsigned")
        jwtSecretFile = try source.path("jwt_secret_file")
        jwtPublicKeys = try source.path("jwt_public_keys")
        if jwtSecretFile != nil, jwtPublicKeys != nil {
            throw configError("jwt_secret_file", "give either jwt_secret_file (HS256) or jwt_public_keys, not both")
        }
        jwtIssuer = try source.string("jwt_issuer")
        jwtAudience = try source.string("jwt_audience")
        jwtTenantClaim = try source.string("jwt_tenant_claim") ?? jwtTenantClaim
        jwtClockSkew = try source.integer("jwt_clock_skew") ?? jwtClockSkew
        maxSessionsPerTenant = try source.integer("max_sessions_per_tenant") ?? maxSessionsPerTenant
        maxClientConnections = try source.integer("max_client_connections") ?? maxClientConnections
        loginTimeout = try source.integer("login_timeout") ?? loginTimeout
        refusalLingerSeconds = try source.integer("refusal_linger_seconds") ?? refusalLingerSeconds
        tenantBurst = try source.integer("tenant_burst")
        lockoutDenials = try source.integer("lockout_denials") ?? lockoutDenials
        lockoutWindow = try source.integer("lockout_window") ?? lockoutWindow
        lockoutSeconds = try source.integer("lockout_seconds") ?? lockoutSeconds
        if let rate = try source.number("tenant_rate") {
            guard rate > 0, rate <= 1_000_000 else { throw configError("tenant_rate", "must be above 0 and at most 1000000") }
            tenantRate = rate
        }
        if let admin = try source.string("admin_listen") {
            let parts = admin.split(separator: ":", omittingEmptySubsequences: false)
            guard let port = Int(parts.last ?? ""), (0...65535).contains(port) else {
                throw configError("admin_listen", "expected PORT or HOST:PORT, got '\(admin)'")
            }
            if parts.count > 1 { adminHost = parts.dropLast().joined(separator: ":") }
            adminPort = port
        }
        shutdownSeconds = try source.integer("shutdown_seconds") ?? shutdownSeconds
        backendTLSMode = try source.string("backend_tls") ?? backendTLSMode
        guard ["disable", "require", "verify-full"].contains(backendTLSMode) else {
            throw configError("backend_tls", "expected disable, require or verify-full, got '\(backendTLSMode)'")
        }
        backendTLSCA = try source.path("backend_tls_ca")
        logFormat = try source.string("log_format") ?? logFormat
        logLevel = try source.string("log_level") ?? logLevel
        requireSignedPolicies = source.isOn("require_signed_policies")
        // A verifier key is taken as is; anything else is a key file's path.
        policyKeys = try source.list("policy_keys").map { entry in
            (try? NoteVerifierKey(parsing: entry.value)) != nil ? entry.value : source.resolve(entry.value, origin: entry.origin)
        }
        if requireSignedPolicies, policyKeys.isEmpty {
            throw configError("policy_keys", "require_signed_policies needs at least one trusted key (--policy-key)")
        }
        for entry in try source.mapping("capability_profiles", flagForm: "CAP=PROFILE") { capabilityProfiles[entry.name] = entry.value }
        threads = try source.integer("threads") ?? threads
    }
}
