import Encoding
import PostgresWire
import Foundation

/// Who a session acts for, from a verified API key or token; stored once, in the session's machine.
public struct SessionIdentity: Sendable, Equatable {
    public var tenant: String
    public var profile: String
    public var credentialID: String
    /// The verified claims (JSON) set in every transaction.
    public var claims: String
    /// When the token expires, and the last moment it is accepted (`TokenVerifier.acceptedUntil`);
    /// nil for API keys.
    public var expiresAt: Date?
    public var acceptedUntil: Date?

    public init(tenant: String, profile: String, credentialID: String, claims: String, expiresAt: Date? = nil, acceptedUntil: Date? = nil) {
        self.tenant = tenant
        self.profile = profile
        self.credentialID = credentialID
        self.claims = claims
        self.expiresAt = expiresAt
        self.acceptedUntil = acceptedUntil
    }

    /// Why the session must end before its next message at `now`, or nil: a token is accepted up to
    /// its `acceptedUntil` (exp plus the clock skew), the same rule as at login.
    public func expiry(at now: Date) -> String? {
        guard let expiresAt, let acceptedUntil, now >= acceptedUntil else { return nil }
        return "the session's token expired at \(UTCTime.formatSeconds(Int64(expiresAt.timeIntervalSince1970))); reconnect with a fresh token"
    }
}

/// A login the credential check turned away.
public struct CredentialRefusal: Error, Equatable {
    public var message: String
    public var sqlstate: String

    public init(message: String, sqlstate: String) {
        self.message = message
        self.sqlstate = sqlstate
    }
}

/// Resolves a credential to an identity: an API key, or a JWT whose capabilities select the profile.
public struct CredentialResolver: Sendable {
    public var keys: APIKeyStore
    public var tokens: TokenVerifier?
    public var capabilityProfiles: [String: String]

    public init(keys: APIKeyStore, tokens: TokenVerifier?, capabilityProfiles: [String: String]) {
        self.keys = keys
        self.tokens = tokens
        self.capabilityProfiles = capabilityProfiles
    }

    /// A password is a JWT when it has a JWT's shape and tokens are configured; otherwise an API key.
    public func resolve(password: String, now: Date) -> Result<SessionIdentity, CredentialRefusal> {
        if let tokens, password.hasPrefix("eyJ"), password.utf8.count(where: { $0 == UInt8(ascii: ".") }) == 2 {
            switch tokens.verifySync(password, now: now) {
            case .failure(let rejection):
                return .failure(CredentialRefusal(message: rejection.message, sqlstate: rejection.sqlstate))
            case .success(let token):
                let profile = token.capabilities.lazy.compactMap { capabilityProfiles[$0] }.first ?? capabilityProfiles["agent"] ?? "agent"
                return .success(SessionIdentity(tenant: token.tenant, profile: profile, credentialID: token.credentialID,
                                                claims: token.claimsJSON, expiresAt: token.expiresAt,
                                                acceptedUntil: tokens.acceptedUntil(expiresAt: token.expiresAt)))
            }
        }
        guard let key = keys.authenticate(password) else {
            return .failure(CredentialRefusal(message: "password authentication failed: the API key or token is not valid", sqlstate: SQLState.invalidPassword))
        }
        return .success(Self.identity(of: key))
    }

    public static func identity(of key: APIKey) -> SessionIdentity {
        SessionIdentity(tenant: key.tenant, profile: key.profile, credentialID: key.id,
                        claims: TenantClaims.apiKeyClaims(tenant: key.tenant, role: key.profile, capabilities: [key.profile], keyID: key.id),
                        expiresAt: nil, acceptedUntil: nil)
    }
}

