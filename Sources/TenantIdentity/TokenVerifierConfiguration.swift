import Foundation

public struct TokenVerifierConfiguration: Sendable {
    public var keys: [VerificationKey]
    /// Algorithms a token may name. A token naming any other (or `none`) is refused before any
    /// key is touched; by default exactly the algorithms of the loaded keys.
    public var algorithms: Set<TokenAlgorithm>
    /// Tolerance for clocks that disagree between the token issuer and this proxy.
    public var clockSkew: Duration
    /// When set, `iss` must equal it.
    public var issuer: String?
    /// When set, `aud` (a string or an array of strings) must include it.
    public var audience: String?
    /// The claim holding the tenant; PostgREST-style setups use `tenant_id`.
    public var tenantClaim: String
    /// The claim listing capabilities (a string or an array of strings); nil ignores capabilities.
    public var capabilityClaim: String?
    /// Tokens longer than this are refused before decoding, so a hostile client cannot make the
    /// proxy base64-decode and parse megabytes per connection attempt.
    public var maxTokenBytes: Int

    public init(keys: [VerificationKey], algorithms: Set<TokenAlgorithm>? = nil, clockSkew: Duration = .seconds(30),
                issuer: String? = nil, audience: String? = nil, tenantClaim: String = "tenant_id",
                capabilityClaim: String? = "role", maxTokenBytes: Int = 16 << 10) {
        self.keys = keys
        self.algorithms = algorithms ?? Set(keys.map(\.algorithm))
        self.clockSkew = clockSkew
        self.issuer = issuer
        self.audience = audience
        self.tenantClaim = tenantClaim
        self.capabilityClaim = capabilityClaim
        self.maxTokenBytes = maxTokenBytes
    }

    /// An HS256 configuration from a file holding the raw secret. One trailing newline (`\n` or
    /// `\r\n`, as `echo` and editors leave) is not part of the secret.
    public static func load(secretFile path: String) throws(KeyLoadingError) -> TokenVerifierConfiguration {
        var secret = try KeyFile.read(path, kind: "secret file")
        if secret.last == 0x0A {
            secret.removeLast()
            if secret.last == 0x0D { secret.removeLast() }
        }
        do {
            return TokenVerifierConfiguration(keys: [try VerificationKey.hmac(secret: secret)])
        } catch {
            throw KeyLoadingError(file: path, problem: error.problem)
        }
    }

    /// A configuration from a file of PEM public keys or a JWKS document (RS256, ES256, EdDSA).
    public static func load(publicKeysFile path: String) throws(KeyLoadingError) -> TokenVerifierConfiguration {
        let bytes = try KeyFile.read(path, kind: "public key file")
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw KeyLoadingError(file: path, problem: "is not UTF-8 text (PEM or JWKS expected)")
        }
        do {
            return TokenVerifierConfiguration(keys: try VerificationKey.publicKeys(from: text))
        } catch {
            throw KeyLoadingError(file: path, problem: error.problem)
        }
    }
}
