import AuditChain
import Foundation
import NIOCore
import PalisadeProxy
import QueryPolicy
import TenantIdentity

/// The parts of the firewall the MCP front door shares with `palisade serve`: the same policy
/// engines and profiles, keys and token verifier, budgets and lockout, audit log and server, as
/// `ServeSettings` builds them for the proxy.
public struct MCPFirewall: Sendable {
    public var backend: BackendAddress
    public var backendTLS: BackendTLS?
    public var policies: PolicyRegistry
    public var keys: APIKeyStore
    public var tokens: TokenVerifier?
    public var capabilityProfiles: [String: String]
    public var budgets: TenantBudgets
    public var audit: AuditLog
    /// The largest HTTP request body accepted, as the proxy bounds a client message.
    public var maxMessageBytes: Int
    /// HTTP connections held at once, authenticated or not (`max_client_connections`).
    public var maxConnections: Int
    /// How long a client has to send a whole request, head and body, from connecting or from the
    /// end of its previous answer (`login_timeout`, the wire's time to log in).
    public var requestTimeout: TimeAmount
    /// How long a connection over `maxConnections` stays open so that its 503 is read (`refusal_linger_seconds`).
    public var refusalLinger: TimeAmount

    public init(_ proxy: ProxyConfiguration) {
        backend = proxy.backend
        backendTLS = proxy.backendTLS
        policies = proxy.policies
        keys = proxy.keys
        tokens = proxy.tokens
        capabilityProfiles = proxy.capabilityProfiles
        budgets = proxy.budgets
        audit = proxy.audit
        maxMessageBytes = proxy.maxMessageBytes
        maxConnections = proxy.maxClientConnections
        requestTimeout = proxy.loginTimeout
        refusalLinger = proxy.refusalLinger
    }
}

/// How the agent reached Palisade, for the audit entries' kind (`mcp/stdio/query`).
public enum MCPTransport: String, Sendable {
    case stdio
    case http
}

/// Who an MCP session acts for, from a verified API key or token.
public struct MCPIdentity: Sendable, Equatable {
    public var tenant: String
    public var profile: String
    public var credentialID: String
    /// The claims set in every transaction (`request.jwt.claims`), as the proxy sets them.
    public var claims: String
}

/// A credential that does not let its holder in, and why.
public struct CredentialRefusal: Error, Sendable, Equatable {
    public var rule: Rule
    public var message: String
    public var sqlstate: String
    /// The credential's id when it was valid but is locked out; "" otherwise.
    public var credentialID = ""
    public var tenant = ""
}

extension MCPFirewall {
    /// Verifies an API key or a JWT as the proxy does for a password: a JWT's shape with tokens
    /// configured is a token, anything else an API key; then the lockout and the profile decide.
    public func identify(_ credential: String, now: Date = Date()) -> Result<MCPIdentity, CredentialRefusal> {
        // The same resolution as a wire login: a JWT by its shape, otherwise an API key.
        let identity: MCPIdentity
        switch CredentialResolver(keys: keys, tokens: tokens, capabilityProfiles: capabilityProfiles).resolve(password: credential, now: now) {
        case .failure(let refusal):
            return .failure(CredentialRefusal(rule: .authenticationFailed, message: refusal.message, sqlstate: refusal.sqlstate))
        case .success(let resolved):
            identity = MCPIdentity(tenant: resolved.tenant, profile: resolved.profile, credentialID: resolved.credentialID, claims: resolved.claims)
        }
        if let lockout = budgets.lockout, case .locked(let until) = lockout.check(credential: identity.credentialID, now: now) {
            let refusal = lockout.refusal(credential: identity.credentialID, until: until)
            return .failure(CredentialRefusal(rule: .lockedOut, message: refusal.message, sqlstate: refusal.sqlstate,
                                              credentialID: identity.credentialID, tenant: identity.tenant))
        }
        guard policies.engine(for: identity.profile) != nil else {
            return .failure(CredentialRefusal(rule: .authenticationFailed,
                                              message: "the credential selects profile \"\(identity.profile)\", which this Palisade does not configure",
                                              sqlstate: "28000", credentialID: identity.credentialID, tenant: identity.tenant))
        }
        return .success(identity)
    }

    /// Records a request of a verified credential that names an MCP session it may not use (none
    /// by that id, or one another identity opened), and counts it toward the credential's lockout
    /// as a denied query: a guess at session ids is a probe like a denied statement.
    public func recordSessionRefusal(_ message: String, identity: MCPIdentity, transport: MCPTransport,
                                     clientAddress: String, now: Date = Date()) async throws(AuditError) {
        _ = try await audit.append(AuditRecord(
            event: .authFailure, requestID: nil, sessionID: nil, tenant: identity.tenant, credentialID: identity.credentialID,
            clientAddress: clientAddress, messageKind: "mcp/\(transport.rawValue)/session", decision: .deny,
            rule: Rule.authenticationFailed.rawValue, sqlstate: "28000", message: message))
        if let lockout = budgets.lockout, let event = lockout.recordDenial(credential: identity.credentialID, now: now) {
            _ = try await audit.append(AuditRecord(
                event: .lockout, requestID: nil, sessionID: nil, tenant: identity.tenant, credentialID: identity.credentialID,
                clientAddress: clientAddress, messageKind: "mcp/\(transport.rawValue)/session", decision: .deny,
                rule: Rule.lockedOut.rawValue, sqlstate: Rule.lockedOut.sqlstate, message: event.refusal.message))
        }
    }

    /// Records a refused credential (durable before the refusal is answered), as the proxy records a failed login.
    public func recordRefusal(_ refusal: CredentialRefusal, transport: MCPTransport, clientAddress: String) async throws(AuditError) {
        _ = try await audit.append(AuditRecord(
            event: .authFailure, requestID: nil, sessionID: nil, tenant: refusal.tenant, credentialID: refusal.credentialID,
            clientAddress: clientAddress, messageKind: "mcp/\(transport.rawValue)/login", decision: .deny, rule: refusal.rule.rawValue,
            sqlstate: refusal.sqlstate, message: refusal.message))
    }
}
