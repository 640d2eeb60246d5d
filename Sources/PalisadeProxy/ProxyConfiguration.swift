import AuditChain
import Foundation
import NIOSSL
import PostgresWire
import QueryPolicy

public enum TLSMode: String, Sendable, CaseIterable {
    /// No TLS; passwords travel in clear. For loopback development only.
    case disable
    /// TLS offered; a client that does not use it cannot send a password.
    case allow
    /// TLS required before the startup message.
    case require
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
    public var engines: [String: PolicyEngine]
    public var keys: APIKeyStore
    public var tlsMode: TLSMode
    public var tls: NIOSSLContext?
    public var maxMessageBytes: Int
    /// Every decision is durable here before its answer reaches the client.
    public var audit: AuditLog

    public init(listenHost: String, listenPort: Int, backend: BackendAddress, engines: [String: PolicyEngine], keys: APIKeyStore,
                tlsMode: TLSMode, tls: NIOSSLContext?, maxMessageBytes: Int = 1 << 20, audit: AuditLog) {
        self.listenHost = listenHost
        self.listenPort = listenPort
        self.backend = backend
        self.engines = engines
        self.keys = keys
        self.tlsMode = tlsMode
        self.tls = tls
        self.maxMessageBytes = maxMessageBytes
        self.audit = audit
    }

    /// Startup parameters a client may set on its session; all others (`options` above all) are
    /// dropped, because they set server settings before any query is checked.
    static let forwardedStartupParameters: Set<String> = ["application_name", "DateStyle", "TimeZone", "extra_float_digits", "IntervalStyle"]
}
