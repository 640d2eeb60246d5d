/// Why a token was refused, in words a client can act on and the SQLSTATE PostgreSQL itself
/// would use for a failed login.
///
/// SQLSTATE mapping:
/// - `28P01` (invalid_password): the credential is not authentic. The token is malformed,
///   too large, unsigned (`alg: none`), names an algorithm that is not configured, names no
///   configured key, or its signature does not verify. Like a wrong password.
/// - `28000` (invalid_authorization_specification): the token is authentic but not acceptable
///   now or here: expired, not yet valid, issued in the future, no `exp`, wrong issuer or
///   audience, or no usable tenant or capability claim. Like a valid login for a role that may
///   not log in.
///
/// Messages never contain the token; values quoted from its claims are truncated and stripped
/// of control characters.
public struct TokenRejection: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Reason: String, Sendable, Equatable {
        case malformed, tooLarge, unsigned, algorithmNotAllowed, unknownKey, badSignature
        case expired, notYetValid, issuedInFuture, missingExpiry, wrongIssuer, wrongAudience
        case missingTenant, invalidClaim
    }

    public let reason: Reason
    public let message: String

    public init(_ reason: Reason, _ message: String) {
        self.reason = reason
        self.message = message
    }

    public var sqlstate: String {
        switch reason {
        case .malformed, .tooLarge, .unsigned, .algorithmNotAllowed, .unknownKey, .badSignature: "28P01"
        case .expired, .notYetValid, .issuedInFuture, .missingExpiry, .wrongIssuer, .wrongAudience,
             .missingTenant, .invalidClaim: "28000"
        }
    }

    public var description: String { "\(sqlstate): \(message)" }
}
