import AuditChain
import Foundation
import NIOCore
import NIOSSL
import PostgresWire
import QueryPolicy
import TenantIdentity

public enum TLSMode: String, Sendable, CaseIterable {
    /// No TLS; passwords travel in clear. For loopback development only.
    case disable
    /// TLS offered; a client that does not use it cannot send a password (with SCRAM, which sends
    /// none, it may log in, and its session runs in clear).
    case allow
    /// TLS required before the startup message.
    case require
}

/// How clients prove who they are.
public enum ClientAuth: String, Sendable, CaseIterable {
    /// The password is an API key or a JWT, sent in clear (so only over TLS, unless TLS is disabled).
    case password
    /// SCRAM-SHA-256 against the keys file's verifiers: the user name is the key's id, and the key
    /// itself never crosses the wire. API keys only (a JWT cannot be checked without being sent).
    case scramSHA256 = "scram-sha-256"
}

/// Where the real server is and how Palisade logs in to it.
public struct BackendAddress: Sendable, Equatable {
    public var host: String
    public var port: Int
    public var user: String
    public var password: String?
    public var database: String

    /// Parses `postgres://USER:PASSWORD@HOST:PORT/DB` (also `postgresql://`).
    public init?(url: String) {
        guard let components = URLComponents(string: url), ["postgres", "postgresql"].contains(components.scheme ?? ""),
              let host = components.host, !host.isEmpty, let user = components.user, !user.isEmpty
        else { return nil }
        self.host = host
        port = components.port ?? 5432
        self.user = user.removingPercentEncoding ?? user
        password = components.password.map { $0.removingPercentEncoding ?? $0 }
        let path = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
        database = path.isEmpty ? self.user : path
    }

    public init(host: String, port: Int, user: String, password: String?, database: String) {
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.database = database
    }
}

public struct ProxyConfiguration: Sendable {
    public var listenHost: String
    public var listenPort: Int
    public var backend: BackendAddress
    /// Policy engines by profile name; an API key names its profile.
    public var policies: PolicyRegistry
    public var keys: APIKeyStore
    public var tlsMode: TLSMode
    public var tls: NIOSSLContext?
    public var maxMessageBytes: Int
    /// Every decision is durable here before its answer reaches the client.
    public var audit: AuditLog
    /// Verifies JWTs given as the password; nil when only API keys are accepted.
    public var tokens: TokenVerifier?
    /// Which profile a token's capability selects; the first capability with a profile wins.
    public var capabilityProfiles: [String: String]
    public var budgets: TenantBudgets
    /// End a session at its next query once its token has expired.
    public var endSessionOnTokenExpiry: Bool
    /// TLS towards the real server; nil for none.
    public var backendTLS: BackendTLS?
    /// Client connections held at once, logged in or not; more are refused with 53300.
    public var maxClientConnections: Int
    /// How long a client may take from connecting to being logged in (TLS, startup, password).
    public var loginTimeout: TimeAmount
    /// How long a connection over `maxClientConnections` stays open after its 53300, so that the
    /// client reads it before the close (at most `ProxyServer.maxLingeringRefusals` at once).
    public var refusalLinger: TimeAmount
    public var clientAuth: ClientAuth

    public init(listenHost: String, listenPort: Int, backend: BackendAddress, policies: PolicyRegistry, keys: APIKeyStore,
                tlsMode: TLSMode, tls: NIOSSLContext?, maxMessageBytes: Int = 1 << 20, audit: AuditLog,
                tokens: TokenVerifier? = nil, capabilityProfiles: [String: String] = ["agent": "agent", "analyst": "analyst"],
                budgets: TenantBudgets = TenantBudgets(), endSessionOnTokenExpiry: Bool = true, backendTLS: BackendTLS? = nil,
                maxClientConnections: Int = 1000, loginTimeout: TimeAmount = .seconds(60), refusalLinger: TimeAmount = .seconds(1), clientAuth: ClientAuth = .password) {
        self.listenHost = listenHost
        self.listenPort = listenPort
        self.backend = backend
        self.policies = policies
        self.keys = keys
        self.tlsMode = tlsMode
        self.tls = tls
        self.maxMessageBytes = maxMessageBytes
        self.audit = audit
        self.tokens = tokens
        self.capabilityProfiles = capabilityProfiles
        self.budgets = budgets
        self.endSessionOnTokenExpiry = endSessionOnTokenExpiry
        self.backendTLS = backendTLS
        self.maxClientConnections = maxClientConnections
        self.loginTimeout = loginTimeout
        self.refusalLinger = refusalLinger
        self.clientAuth = clientAuth
    }

    /// Startup parameters a client may set on its session; all others (`options` above all) are
    /// dropped, because they set server settings before any query is checked.
    static let forwardedStartupParameters: Set<String> = ["application_name", "DateStyle", "TimeZone", "extra_float_digits", "IntervalStyle"]
}
