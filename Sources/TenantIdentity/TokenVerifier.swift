import Crypto
import Foundation
import JWTKit
import Encoding

/// A token that passed every check, reduced to what the proxy needs for the session.
public struct VerifiedToken: Sendable, Equatable {
    public let tenant: String
    public let capabilities: [String]
    public let expiresAt: Date
    public let subject: String?
    /// The payload's claims as compact JSON, in the token's member order and with its number
    /// spellings: what PostgREST puts in `request.jwt.claims`.
    public let claimsJSON: String
    /// A short stable name for the credential in audit entries and lockouts; never the token.
    public let credentialID: String
}

/// Verifies signed JWTs against configured keys, refusing anything it was not told to accept.
///
/// jwt-kit supplies the signature primitives; the surrounding checks are done here, because
/// jwt-kit's key collection picks a key without comparing the token's `alg` to it and its
/// claim types would re-encode the claims the database later reads.
public struct TokenVerifier: Sendable {
    public let configuration: TokenVerifierConfiguration
    private let verifiers: [(key: VerificationKey, algorithm: any JWTAlgorithm)]

    public init(_ configuration: TokenVerifierConfiguration) async throws(KeyLoadingError) {
        guard !configuration.keys.isEmpty else { throw KeyLoadingError(file: nil, problem: "no verification keys are configured") }
        guard !configuration.tenantClaim.isEmpty else { throw KeyLoadingError(file: nil, problem: "the tenant claim name is empty") }
        var verifiers: [(key: VerificationKey, algorithm: any JWTAlgorithm)] = []
        for key in configuration.keys {
            let collection = JWTKeyCollection()
            switch key.material {
            case .hmac(let secret): await collection.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
            case .rsa(let publicKey): await collection.add(rsa: publicKey, digestAlgorithm: .sha256)
            case .p256(let publicKey): await collection.add(ecdsa: publicKey)
            case .ed25519(let publicKey): await collection.add(eddsa: publicKey)
            }
            let algorithm: any JWTAlgorithm
            do { algorithm = try await collection.getKey() } catch {
                throw KeyLoadingError(file: nil, problem: "\(key) cannot be used: \(error)")
            }
            // A key must only ever verify its own algorithm; anything else is a wiring bug.
            guard algorithm.name == key.algorithm.rawValue else {
                throw KeyLoadingError(file: nil, problem: "\(key) produced a \(algorithm.name) verifier")
            }
            verifiers.append((key, algorithm))
        }
        self.configuration = configuration
        self.verifiers = verifiers
    }

    public func verify(_ token: String, now: Date) async -> Result<VerifiedToken, TokenRejection> {
        verifySync(token, now: now)
    }

    /// The same as `verify`, for callers (a NIO handler, a state machine) that cannot await.
    public func verifySync(_ token: String, now: Date) -> Result<VerifiedToken, TokenRejection> {
        do throws(TokenRejection) {
            return .success(try check(token, now: now))
        } catch {
            return .failure(error)
        }
    }

    /// The last moment a token whose `exp` is `expiresAt` is accepted: `exp` plus the allowed clock
    /// skew. Login and a running session (checked before each query, because a connection can
    /// outlive the token that opened it) both follow this one rule.
    public func acceptedUntil(expiresAt: Date) -> Date {
        expiresAt.addingTimeInterval(Formatting.seconds(configuration.clockSkew))
    }

    /// Whether a session authenticated by `token` must end.
    public func isExpired(_ token: VerifiedToken, now: Date) -> Bool {
        now >= acceptedUntil(expiresAt: token.expiresAt)
    }

    // MARK: - Structure and signature

    private func check(_ token: String, now: Date) throws(TokenRejection) -> VerifiedToken {
        let size = token.utf8.count
        guard size <= configuration.maxTokenBytes else {
            throw TokenRejection(.tooLarge, "token is \(size) bytes, more than the \(configuration.maxTokenBytes) accepted")
        }
        let bytes = Array(token.utf8)
        let dots = bytes.indices.filter { bytes[$0] == UInt8(ascii: ".") }
        guard dots.count == 2 else {
            throw TokenRejection(.malformed, "token is malformed: it has \(dots.count + 1) parts, a signed JWT has 3 (header.payload.signature)")
        }
        let headerPart = bytes[..<dots[0]], payloadPart = bytes[(dots[0] + 1)..<dots[1]], signaturePart = bytes[(dots[1] + 1)...]
        guard let headerBytes = Base64URL.decode(headerPart), !headerBytes.isEmpty else {
            throw TokenRejection(.malformed, "token is malformed: the header is not base64url")
        }
        guard let payloadBytes = Base64URL.decode(payloadPart), !payloadBytes.isEmpty else {
            throw TokenRejection(.malformed, "token is malformed: the payload is not base64url")
        }
        let header: JSONObject
        do throws(JSONParseError) {
            guard let object = try JSONValue.parse(headerBytes).objectValue else { throw JSONParseError(offset: 0, reason: "not an object") }
            header = object
        } catch {
            throw TokenRejection(.malformed, "token is malformed: the header is not a JSON object (\(error.reason))")
        }
        guard let alg = header["alg"]?.stringValue else {
            throw TokenRejection(.malformed, "token is malformed: the header has no alg")
        }
        // Never fall back to unsigned, whatever else is configured.
        if alg.lowercased() == "none" { throw TokenRejection(.unsigned, "token is unsigned (alg none)") }
        guard let algorithm = TokenAlgorithm(rawValue: alg), configuration.algorithms.contains(algorithm) else {
            let accepted = configuration.algorithms.sorted().map(\.rawValue).joined(separator: ", ")
            throw TokenRejection(.algorithmNotAllowed, "token algorithm \(Formatting.quoted(alg)) is not accepted (accepted: \(accepted))")
        }
        if signaturePart.isEmpty { throw TokenRejection(.unsigned, "token is unsigned (empty signature)") }
        // RFC 7515 4.1.11: extensions marked critical must be understood; none are here.
        if header["crit"] != nil {
            throw TokenRejection(.malformed, "token header lists critical extensions (crit), which are not supported")
        }
        let kid: String?
        switch header["kid"] {
        case nil, .null?: kid = nil
        case .string(let value)?: kid = value
        default: throw TokenRejection(.malformed, "token is malformed: the header's kid is not a string")
        }
        // Keys embedded in or pointed at by the header (jwk, jku, x5u, x5c) are ignored on purpose:
        // only configured keys decide.
        let candidates = verifiers.filter {
            $0.key.algorithm == algorithm && (kid == nil || $0.key.keyID == nil || $0.key.keyID == kid)
        }
        guard !candidates.isEmpty else {
            if let kid { throw TokenRejection(.unknownKey, "token key id \(Formatting.quoted(kid)) names no configured \(alg) key") }
            throw TokenRejection(.unknownKey, "no \(alg) key is configured for this token")
        }
        guard let signature = Base64URL.decode(signaturePart) else {
            throw TokenRejection(.malformed, "token is malformed: the signature is not base64url")
        }
        let signingInput = bytes[..<dots[1]]
        let verified = candidates.contains { candidate in
            (try? candidate.algorithm.verify(signature, signs: signingInput)) == true
        }
        guard verified else { throw TokenRejection(.badSignature, "token signature does not verify") }
        return try claims(payloadBytes, signingInput: signingInput, now: now)
    }

    // MARK: - Claims

    private func claims(_ payloadBytes: [UInt8], signingInput: ArraySlice<UInt8>, now: Date) throws(TokenRejection) -> VerifiedToken {
        let payload: JSONObject
        do {
            let parsed = try JSONValue.parse(payloadBytes)
            guard let object = parsed.objectValue else { throw JSONParseError(offset: 0, reason: "not an object") }
            if parsed.containsNUL {
                throw TokenRejection(.invalidClaim, "token claims contain a NUL character (\\u0000), which PostgreSQL cannot store")
            }
            payload = object
        } catch let error as TokenRejection {
            throw error
        } catch {
            throw TokenRejection(.malformed, "token is malformed: the payload is not a JSON object (\((error as? JSONParseError)?.reason ?? "\(error)"))")
        }
        let skew = Formatting.seconds(configuration.clockSkew)

        guard let expValue = payload["exp"] else {
            throw TokenRejection(.missingExpiry, "token has no exp claim; tokens that never expire are refused")
        }
        let expiresAt = try time(expValue, claim: "exp")
        if now >= acceptedUntil(expiresAt: expiresAt) {
            throw TokenRejection(.expired, "token expired at \(Formatting.utc(expiresAt))")
        }
        if let nbfValue = payload["nbf"] {
            let notBefore = try time(nbfValue, claim: "nbf")
            if now.addingTimeInterval(skew) < notBefore {
                throw TokenRejection(.notYetValid, "token is not valid before \(Formatting.utc(notBefore))")
            }
        }
        if let iatValue = payload["iat"] {
            let issuedAt = try time(iatValue, claim: "iat")
            if issuedAt > now.addingTimeInterval(skew) {
                throw TokenRejection(.issuedInFuture, "token was issued in the future (iat \(Formatting.utc(issuedAt)))")
            }
        }
        if let issuer = configuration.issuer {
            guard let value = payload["iss"] else {
                throw TokenRejection(.wrongIssuer, "token has no iss claim; issuer \(Formatting.quoted(issuer)) is required")
            }
            guard let tokenIssuer = value.stringValue else { throw TokenRejection(.invalidClaim, "token claim iss is not a string") }
            guard tokenIssuer == issuer else {
                throw TokenRejection(.wrongIssuer, "token issuer \(Formatting.quoted(tokenIssuer)) is not \(Formatting.quoted(issuer))")
            }
        }
        if let audience = configuration.audience {
            guard let value = payload["aud"] else {
                throw TokenRejection(.wrongAudience, "token has no aud claim; audience \(Formatting.quoted(audience)) is required")
            }
            guard let audiences = strings(value) else { throw TokenRejection(.invalidClaim, "token claim aud is not a string or an array of strings") }
            guard audiences.contains(audience) else {
                let shown = audiences.isEmpty ? "(none)" : audiences.prefix(5).map(Formatting.quoted).joined(separator: ", ")
                throw TokenRejection(.wrongAudience, "token audience \(shown) does not include \(Formatting.quoted(audience))")
            }
        }
        let tenant = try tenant(payload)
        var capabilities: [String] = []
        if let claim = configuration.capabilityClaim, let value = payload[claim] {
            guard let list = strings(value) else {
                throw TokenRejection(.invalidClaim, "token claim \(claim) is not a string or an array of strings")
            }
            capabilities = list
        }
        let claimsJSON = JSONValue.object(payload).compactString
        return VerifiedToken(tenant: tenant, capabilities: capabilities, expiresAt: expiresAt, subject: payload["sub"]?.stringValue,
                             claimsJSON: claimsJSON, credentialID: Self.credentialID(payload: payload, signingInput: signingInput))
    }

    /// PostgreSQL settings are C strings and tenants end up in SQL and audit lines: a tenant
    /// with control characters, or an unbounded one, is refused rather than cleaned.
    public static let maxTenantBytes = 256

    private func tenant(_ payload: JSONObject) throws(TokenRejection) -> String {
        let name = configuration.tenantClaim
        let tenant: String
        switch payload[name] {
        case nil, .null?: throw TokenRejection(.missingTenant, "token has no \(name) claim")
        case .string(let value)?: tenant = value
        // Integer tenant ids are common; the literal as written is the tenant's name.
        case .number(let literal)? where literal.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == "-") }): tenant = literal
        default: throw TokenRejection(.missingTenant, "token claim \(name) is not a string")
        }
        guard !tenant.isEmpty else { throw TokenRejection(.missingTenant, "token claim \(name) is empty") }
        guard tenant.utf8.count <= Self.maxTenantBytes else {
            throw TokenRejection(.invalidClaim, "token claim \(name) is longer than \(Self.maxTenantBytes) bytes")
        }
        guard !tenant.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw TokenRejection(.invalidClaim, "token claim \(name) contains control characters")
        }
        return tenant
    }

    /// Seconds since the epoch, bounded so the arithmetic and the message stay sane.
    private func time(_ value: JSONValue, claim: String) throws(TokenRejection) -> Date {
        guard let seconds = value.doubleValue else { throw TokenRejection(.invalidClaim, "token claim \(claim) is not a number") }
        guard seconds.isFinite, abs(seconds) <= 1e11 else { throw TokenRejection(.invalidClaim, "token claim \(claim) is out of range") }
        return Date(timeIntervalSince1970: seconds)
    }

    /// A string or an array of strings, as `aud` and role claims are commonly spelled.
    private func strings(_ value: JSONValue) -> [String]? {
        switch value {
        case .string(let s): return [s]
        case .array(let items):
            var out: [String] = []
            for item in items {
                guard let s = item.stringValue else { return nil }
                out.append(s)
            }
            return out
        default: return nil
        }
    }

    /// Keyed by `iss` and `jti` when the issuer names tokens, else by the signed header and
    /// payload: never by the signature, whose encoding (and, for ECDSA, value) a holder can vary
    /// to dodge a lockout.
    static func credentialID(payload: JSONObject, signingInput: ArraySlice<UInt8>) -> String {
        let digest: SHA256.Digest
        if let jti = payload["jti"]?.stringValue, !jti.isEmpty {
            digest = SHA256.hash(data: Array("jti\u{0}\(payload["iss"]?.stringValue ?? "")\u{0}\(jti)".utf8))
        } else {
            digest = SHA256.hash(data: Array(signingInput))
        }
        return "jwt:" + Hex.encode(digest.prefix(6))
    }
}
