/// One row per setting of `palisade serve`. The flags and their help, the `PALISADE_*` variables,
/// the configuration file's keys, `palisade.example.yaml` and the README's list all come from this
/// table, and a test checks that the last two agree with it.
public struct Setting: Sendable {
    public enum Kind: Sendable, Equatable {
        case string
        case integer(ClosedRange<Int>)
        case number
        /// A switch: a flag without a value; `true` or `false` in the file.
        case flag
        /// `NAME: VALUE` entries in the file; the flag is repeatable, `NAME=VALUE`.
        case mapping
        /// A value or a list of values; the flag is repeatable.
        case list
    }

    public let key: String
    public let kind: Kind
    /// As a person would write it, nil when there is none.
    public let defaultValue: String?
    public let help: String
    /// Relative paths in the configuration file are relative to that file; from the environment or
    /// a flag they are taken as given.
    public let isPath: Bool
    /// Read again on SIGHUP (and `POST /reload`); any other change needs a restart.
    public let reloadable: Bool
    /// The long flag; the key with dashes, except where the flag names one entry of a mapping or list.
    public let flag: String

    init(_ key: String, _ kind: Kind, _ defaultValue: String?, _ help: String, isPath: Bool = false, reloadable: Bool = false,
         flag: String? = nil) {
        self.key = key
        self.kind = kind
        self.defaultValue = defaultValue
        self.help = help
        self.isPath = isPath
        self.reloadable = reloadable
        self.flag = flag ?? key.replacingOccurrences(of: "_", with: "-")
    }

    public var environmentName: String { "PALISADE_" + key.uppercased() }

    public var flagHelp: String { help + (defaultValue.map { " (default \($0))" } ?? "") + (reloadable ? "; reloaded on SIGHUP" : "") }

    public static let all: [Setting] = [
        Setting("listen", .string, "127.0.0.1:6432", "Address to listen on, HOST:PORT."),
        Setting("backend", .string, nil, "The real server: postgres://USER:PASSWORD@HOST:PORT/DB (required)."),
        Setting("policy", .string, "Policies/readonly.yaml", "Policy file for the 'agent' profile.", isPath: true, reloadable: true),
        Setting("profiles", .mapping, "agent=Policies/readonly.yaml, analyst=Policies/analyst.yaml",
                "A profile and its policy file, NAME=FILE (repeatable).", isPath: true, reloadable: true, flag: "profile"),
        Setting("api_keys", .string, nil, "API keys file (hashes only), from `palisade keys create`.", isPath: true),
        Setting("tls_cert", .string, nil, "TLS certificate chain (PEM).", isPath: true),
        Setting("tls_key", .string, nil, "TLS private key (PEM).", isPath: true),
        Setting("tls_mode", .string, "require", "disable | allow | require (disable sends passwords in clear, for loopback development)."),
        Setting("client_auth", .string, "password",
                "password (an API key or JWT as the password) | scram-sha-256 (API keys only, the key's id as the user name; the key never crosses the wire)."),
        Setting("max_message_bytes", .integer(1024...(64 << 20)), "1048576", "Largest client message accepted."),
        Setting("allow_privileged_backend", .flag, nil, "Start even if Palisade's server role is a superuser or has BYPASSRLS."),
        Setting("audit_dir", .string, nil, "Directory of the audit log (required).", isPath: true),
        Setting("audit_key", .string, nil, "Checkpoint signing key, from `palisade audit keygen`.", isPath: true, reloadable: true),
        Setting("audit_mirror", .string, nil, "Second directory every checkpoint is also written to (ideally another disk or host).", isPath: true),
        Setting("audit_origin", .string, "palisade", "The log's name in its checkpoints."),
        Setting("audit_checkpoint_seconds", .integer(1...3600), "5", "Seconds between checkpoints while the log grows."),
        Setting("audit_durability", .string, "flush",
                "When a decision's answer may go out: flush (its entry is on disk, fdatasync) | write (its entry is in the log file, which survives Palisade's crash but not the machine's: a power loss loses up to audit_flush_ms of answered entries)."),
        Setting("audit_flush_ms", .integer(1...60_000), "200", "With audit_durability write, the longest an answered entry waits for its fdatasync."),
        Setting("audit_unsigned", .flag, nil, "Run without a signing key: checkpoints are signed with a throwaway key no reviewer can trust."),
        Setting("jwt_secret_file", .string, nil, "HS256 secret: clients may send a JWT as their password.", isPath: true),
        Setting("jwt_public_keys", .string, nil, "PEM public keys or a JWKS document (RS256, ES256, EdDSA).", isPath: true),
        Setting("jwt_issuer", .string, nil, "Required iss of tokens."),
        Setting("jwt_audience", .string, nil, "Required aud of tokens."),
        Setting("jwt_tenant_claim", .string, "tenant_id", "The claim naming the tenant."),
        Setting("jwt_clock_skew", .integer(0...3600), "30", "Seconds of clock skew allowed for exp, nbf, iat."),
        Setting("capability_profiles", .mapping, "agent=agent, analyst=analyst",
                "A token capability and the profile it selects, CAP=PROFILE (repeatable).", flag: "capability-profile"),
        Setting("max_sessions_per_tenant", .integer(1...100_000), nil, "Concurrent sessions a tenant may hold; a session counts until its server connection is gone (a query its client left is cancelled first). Unset: a quarter of the connections the server allows Palisade's role (max_connections less superuser_reserved_connections, or the role's connection limit), at most 100, so that no tenant can take them all; set, and as large as those, a warning at start."),
        Setting("max_client_connections", .integer(1...1_000_000), "1000", "Client connections Palisade holds at once, logged in or not (for `mcp --mcp-listen`: HTTP connections; the next get 503)."),
        Setting("login_timeout", .integer(1...3600), "60", "Seconds a client has from connecting to being logged in (for `mcp --mcp-listen`: to send a whole HTTP request)."),
        Setting("refusal_linger_seconds", .integer(1...3600), "1",
                "Seconds a connection over max-client-connections stays open so that its 53300 (or `mcp`'s 503) is read (at most 128 at once)."),
        Setting("tenant_rate", .number, "unlimited", "Queries per second a tenant may send (token bucket)."),
        Setting("tenant_burst", .integer(1...1_000_000), "the rate, at least 1", "Queries a tenant may send at once."),
        Setting("lockout_denials", .integer(1...1_000_000), "20", "Denied queries within the window that lock a credential out."),
        Setting("lockout_window", .integer(1...86_400), "60", "The lockout window in seconds."),
        Setting("lockout_seconds", .integer(1...604_800), "300", "How long a locked-out credential is refused."),
        Setting("require_signed_policies", .flag, nil, "Refuse any policy without a valid FILE.sig from a trusted key (at start and reload)."),
        Setting("policy_keys", .list, nil, "A verifier key trusted to sign policies, or a file of them (repeatable).", flag: "policy-key"),
        Setting("admin_listen", .string, "off",
                "Admin HTTP (/healthz, /readyz, /metrics, POST /reload): PORT (on 127.0.0.1) or HOST:PORT."),
        Setting("shutdown_seconds", .integer(0...3600), "10", "On SIGTERM, how long running queries may take to finish."),
        Setting("log_format", .string, "text", "text or json (one object per line on standard error)."),
        Setting("log_level", .string, "info", "trace, debug, info, notice, warning, error, critical."),
        Setting("backend_tls", .string, "disable",
                "TLS to the server: disable, require (encrypted), verify-full (certificate and host name checked)."),
        Setting("backend_tls_ca", .string, "the system's", "CA certificates (PEM) for verify-full.", isPath: true),
        Setting("threads", .integer(1...1024), "the number of cores", "Event loop threads for client and server connections."),
    ]

    public static func named(_ key: String) -> Setting {
        guard let setting = all.first(where: { $0.key == key }) else { preconditionFailure("no setting \(key)") }
        return setting
    }

    /// The README's list of settings, one row each.
    public static var markdownTable: String {
        var lines = ["| key | flag | environment | default | reloaded on SIGHUP | what |", "| --- | --- | --- | --- | --- | --- |"]
        for setting in all {
            let flag = "`--\(setting.flag)`" + (setting.kind == .mapping || setting.kind == .list ? " (repeatable)" : "")
            lines.append("| `\(setting.key)` | \(flag) | `\(setting.environmentName)` | \(setting.defaultValue ?? "") | \(setting.reloadable ? "yes" : "") | \(setting.help.replacingOccurrences(of: "|", with: "\\|")) |")
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
