import ArgumentParser
import PalisadeServer

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the firewall in front of a PostgreSQL server.",
        discussion: """
        Every key of the configuration file can also be given as a flag or a PALISADE_<KEY> variable; flags win
        over the environment, the environment over the file. Before listening, Palisade refuses to start if a
        policy or the keys file is invalid, the server cannot be reached, or Palisade's own server role is a
        superuser or has BYPASSRLS (row-level security would not apply).
        """)

    private static func name(_ key: String) -> NameSpecification { .customLong(Setting.named(key).flag) }
    private static func help(_ key: String) -> ArgumentHelp { ArgumentHelp(Setting.named(key).flagHelp) }

    @Option(help: "Configuration file (YAML).") var config: String?
    @Option(name: Self.name("listen"), help: Self.help("listen")) var listen: String?
    @Option(name: Self.name("backend"), help: Self.help("backend")) var backend: String?
    @Option(name: Self.name("policy"), help: Self.help("policy")) var policy: String?
    @Option(name: Self.name("profiles"), help: Self.help("profiles")) var profile: [String] = []
    @Option(name: Self.name("api_keys"), help: Self.help("api_keys")) var apiKeys: String?
    @Option(name: Self.name("tls_cert"), help: Self.help("tls_cert")) var tlsCert: String?
    @Option(name: Self.name("tls_key"), help: Self.help("tls_key")) var tlsKey: String?
    @Option(name: Self.name("tls_mode"), help: Self.help("tls_mode")) var tlsMode: String?
    @Option(name: Self.name("client_auth"), help: Self.help("client_auth")) var clientAuth: String?
    @Option(name: Self.name("max_message_bytes"), help: Self.help("max_message_bytes")) var maxMessageBytes: String?
    @Flag(name: Self.name("allow_privileged_backend"), help: Self.help("allow_privileged_backend")) var allowPrivilegedBackend: Bool = false
    @Option(name: Self.name("audit_dir"), help: Self.help("audit_dir")) var auditDir: String?
    @Option(name: Self.name("audit_key"), help: Self.help("audit_key")) var auditKey: String?
    @Option(name: Self.name("audit_mirror"), help: Self.help("audit_mirror")) var auditMirror: String?
    @Option(name: Self.name("audit_origin"), help: Self.help("audit_origin")) var auditOrigin: String?
    @Option(name: Self.name("audit_checkpoint_seconds"), help: Self.help("audit_checkpoint_seconds")) var auditCheckpointSeconds: String?
    @Option(name: Self.name("audit_durability"), help: Self.help("audit_durability")) var auditDurability: String?
    @Option(name: Self.name("audit_flush_ms"), help: Self.help("audit_flush_ms")) var auditFlushMilliseconds: String?
    @Flag(name: Self.name("audit_unsigned"), help: Self.help("audit_unsigned")) var auditUnsigned: Bool = false
    @Option(name: Self.name("jwt_secret_file"), help: Self.help("jwt_secret_file")) var jwtSecretFile: String?
    @Option(name: Self.name("jwt_public_keys"), help: Self.help("jwt_public_keys")) var jwtPublicKeys: String?
    @Option(name: Self.name("jwt_issuer"), help: Self.help("jwt_issuer")) var jwtIssuer: String?
    @Option(name: Self.name("jwt_audience"), help: Self.help("jwt_audience")) var jwtAudience: String?
    @Option(name: Self.name("jwt_tenant_claim"), help: Self.help("jwt_tenant_claim")) var jwtTenantClaim: String?
    @Option(name: Self.name("jwt_clock_skew"), help: Self.help("jwt_clock_skew")) var jwtClockSkew: String?
    @Option(name: Self.name("capability_profiles"), help: Self.help("capability_profiles")) var capabilityProfile: [String] = []
    @Option(name: Self.name("max_sessions_per_tenant"), help: Self.help("max_sessions_per_tenant")) var maxSessionsPerTenant: String?
    @Option(name: Self.name("max_client_connections"), help: Self.help("max_client_connections")) var maxClientConnections: String?
    @Option(name: Self.name("login_timeout"), help: Self.help("login_timeout")) var loginTimeout: String?
    @Option(name: Self.name("refusal_linger_seconds"), help: Self.help("refusal_linger_seconds")) var refusalLingerSeconds: String?
    @Option(name: Self.name("tenant_rate"), help: Self.help("tenant_rate")) var tenantRate: String?
    @Option(name: Self.name("tenant_burst"), help: Self.help("tenant_burst")) var tenantBurst: String?
    @Option(name: Self.name("lockout_denials"), help: Self.help("lockout_denials")) var lockoutDenials: String?
    @Option(name: Self.name("lockout_window"), help: Self.help("lockout_window")) var lockoutWindow: String?
    @Option(name: Self.name("lockout_seconds"), help: Self.help("lockout_seconds")) var lockoutSeconds: String?
    @Flag(name: Self.name("require_signed_policies"), help: Self.help("require_signed_policies")) var requireSignedPolicies: Bool = false
    @Option(name: Self.name("policy_keys"), help: Self.help("policy_keys")) var policyKey: [String] = []
    @Option(name: Self.name("admin_listen"), help: Self.help("admin_listen")) var adminListen: String?
    @Option(name: Self.name("shutdown_seconds"), help: Self.help("shutdown_seconds")) var shutdownSeconds: String?
    @Option(name: Self.name("log_format"), help: Self.help("log_format")) var logFormat: String?
    @Option(name: Self.name("log_level"), help: Self.help("log_level")) var logLevel: String?
    @Option(name: Self.name("backend_tls"), help: Self.help("backend_tls")) var backendTLS: String?
    @Option(name: Self.name("backend_tls_ca"), help: Self.help("backend_tls_ca")) var backendTLSCA: String?
    @Option(name: Self.name("threads"), help: Self.help("threads")) var threads: String?

    /// The given flags by setting key.
    var flags: [String: [String]] {
        let values: [String: [String]] = [
            "listen": listen.map { [$0] } ?? [],
            "backend": backend.map { [$0] } ?? [],
            "policy": policy.map { [$0] } ?? [],
            "profiles": profile,
            "api_keys": apiKeys.map { [$0] } ?? [],
            "tls_cert": tlsCert.map { [$0] } ?? [],
            "tls_key": tlsKey.map { [$0] } ?? [],
            "tls_mode": tlsMode.map { [$0] } ?? [],
            "client_auth": clientAuth.map { [$0] } ?? [],
            "max_message_bytes": maxMessageBytes.map { [$0] } ?? [],
            "allow_privileged_backend": allowPrivilegedBackend ? ["true"] : [],
            "audit_dir": auditDir.map { [$0] } ?? [],
            "audit_key": auditKey.map { [$0] } ?? [],
            "audit_mirror": auditMirror.map { [$0] } ?? [],
            "audit_origin": auditOrigin.map { [$0] } ?? [],
            "audit_checkpoint_seconds": auditCheckpointSeconds.map { [$0] } ?? [],
            "audit_durability": auditDurability.map { [$0] } ?? [],
            "audit_flush_ms": auditFlushMilliseconds.map { [$0] } ?? [],
            "audit_unsigned": auditUnsigned ? ["true"] : [],
            "jwt_secret_file": jwtSecretFile.map { [$0] } ?? [],
            "jwt_public_keys": jwtPublicKeys.map { [$0] } ?? [],
            "jwt_issuer": jwtIssuer.map { [$0] } ?? [],
            "jwt_audience": jwtAudience.map { [$0] } ?? [],
            "jwt_tenant_claim": jwtTenantClaim.map { [$0] } ?? [],
            "jwt_clock_skew": jwtClockSkew.map { [$0] } ?? [],
            "capability_profiles": capabilityProfile,
            "max_sessions_per_tenant": maxSessionsPerTenant.map { [$0] } ?? [],
            "max_client_connections": maxClientConnections.map { [$0] } ?? [],
            "login_timeout": loginTimeout.map { [$0] } ?? [],
            "refusal_linger_seconds": refusalLingerSeconds.map { [$0] } ?? [],
            "tenant_rate": tenantRate.map { [$0] } ?? [],
            "tenant_burst": tenantBurst.map { [$0] } ?? [],
            "lockout_denials": lockoutDenials.map { [$0] } ?? [],
            "lockout_window": lockoutWindow.map { [$0] } ?? [],
            "lockout_seconds": lockoutSeconds.map { [$0] } ?? [],
            "require_signed_policies": requireSignedPolicies ? ["true"] : [],
            "policy_keys": policyKey,
            "admin_listen": adminListen.map { [$0] } ?? [],
            "shutdown_seconds": shutdownSeconds.map { [$0] } ?? [],
            "log_format": logFormat.map { [$0] } ?? [],
            "log_level": logLevel.map { [$0] } ?? [],
            "backend_tls": backendTLS.map { [$0] } ?? [],
            "backend_tls_ca": backendTLSCA.map { [$0] } ?? [],
            "threads": threads.map { [$0] } ?? [],
        ]
        return values.filter { !$0.value.isEmpty }
    }

    func settings() throws -> ServeSettings {
        try ServeSettings(configFile: config, flags: flags)
    }

    func run() async throws {
        try await PalisadeServer.run(try settings())
    }
}
