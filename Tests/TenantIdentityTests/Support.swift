import Crypto
import CryptoExtras
import Foundation
import JWTKit
@testable import TenantIdentity

/// 2026-11-23T07:00:00Z: messages in tests read as real dates.
let now = Date(timeIntervalSince1970: 1_795_417_200)
let hmacSecret = "palisade-test-secret-that-is-long-enough-0123456789"

/// Claims as a test wants them: nil fields are left out of the token entirely.
struct TestClaims: JWTPayload, Equatable {
    var exp: Double?
    var nbf: Double?
    var iat: Double?
    var iss: String?
    var aud: AudienceClaim?
    var sub: String?
    var jti: String?
    var tenant_id: String?
    var role: [String]?

    static func valid(tenant: String? = "acme", role: [String]? = ["reader", "writer"]) -> TestClaims {
        TestClaims(exp: now.timeIntervalSince1970 + 3600, iat: now.timeIntervalSince1970 - 10, sub: "user-7", tenant_id: tenant, role: role)
    }

    func verify(using algorithm: some JWTAlgorithm) async throws {}
}

enum Mint {
    static func hs256(_ claims: some JWTPayload, secret: String = hmacSecret) async throws -> String {
        let keys = JWTKeyCollection()
        await keys.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
        return try await keys.sign(claims)
    }

    static func sign(_ claims: some JWTPayload, rsa key: JWTKit.Insecure.RSA.PrivateKey, kid: String? = nil) async throws -> String {
        let keys = JWTKeyCollection()
        await keys.add(rsa: key, digestAlgorithm: .sha256, kid: kid.map { JWKIdentifier(string: $0) })
        return try await keys.sign(claims, kid: kid.map { JWKIdentifier(string: $0) })
    }

    static func sign(_ claims: some JWTPayload, ecdsa key: ES256PrivateKey, kid: String? = nil) async throws -> String {
        let keys = JWTKeyCollection()
        await keys.add(ecdsa: key, kid: kid.map { JWKIdentifier(string: $0) })
        return try await keys.sign(claims, kid: kid.map { JWKIdentifier(string: $0) })
    }

    static func sign(_ claims: some JWTPayload, eddsa key: EdDSA.PrivateKey, kid: String? = nil) async throws -> String {
        let keys = JWTKeyCollection()
        await keys.add(eddsa: key, kid: kid.map { JWKIdentifier(string: $0) })
        return try await keys.sign(claims, kid: kid.map { JWKIdentifier(string: $0) })
    }

    /// A token built by hand, for payloads jwt-kit would never produce (duplicate keys, say).
    static func rawHS256(header: String = #"{"alg":"HS256","typ":"JWT"}"#, payload: String, secret: String = hmacSecret) -> String {
        let input = b64(Array(header.utf8)) + "." + b64(Array(payload.utf8))
        let mac = HMAC<SHA256>.authenticationCode(for: Array(input.utf8), using: SymmetricKey(data: Array(secret.utf8)))
        return input + "." + b64(Array(mac))
    }

    static func b64(_ bytes: some Sequence<UInt8>) -> String {
        Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    static func payloadJSON(of token: String) -> String {
        var part = String(token.split(separator: ".", omittingEmptySubsequences: false)[1])
            .replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while part.count % 4 != 0 { part += "=" }
        return String(decoding: Data(base64Encoded: part)!, as: UTF8.self)
    }
}

/// Keys generated once per test run; RSA generation is the slow part.
enum TestKeys {
    static let rsa = try! JWTKit.Insecure.RSA.PrivateKey(backing: _RSA.Signing.PrivateKey(keySize: .bits2048))
    static let otherRSA = try! JWTKit.Insecure.RSA.PrivateKey(backing: _RSA.Signing.PrivateKey(keySize: .bits2048))
    static let ecdsa = ES256PrivateKey()
    static let eddsa = try! EdDSA.PrivateKey(curve: .ed25519)

    static var rsaJWK: String {
        let (n, e) = try! rsa.publicKey.getKeyPrimitives()
        return #"{"kty":"RSA","use":"sig","alg":"RS256","kid":"rsa-1","n":"\#(Mint.b64(n))","e":"\#(Mint.b64(e))"}"#
    }

    static var ecJWK: String {
        let p = ecdsa.parameters!
        return #"{"kty":"EC","crv":"P-256","kid":"ec-1","x":"\#(p.x)","y":"\#(p.y)"}"#
    }

    static var edJWK: String {
        #"{"kty":"OKP","crv":"Ed25519","kid":"ed-1","x":"\#(Mint.b64(eddsa.publicKey.rawRepresentation))"}"#
    }
}

final class TemporaryDirectory {
    let path: String

    init() {
        path = NSTemporaryDirectory() + "tenant-identity-\(UUID().uuidString)"
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func write(_ name: String, _ text: String) -> String {
        write(name, bytes: Array(text.utf8))
    }

    func write(_ name: String, bytes: [UInt8]) -> String {
        let file = path + "/" + name
        _ = FileManager.default.createFile(atPath: file, contents: Data(bytes))
        return file
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}

func verifier(_ configuration: TokenVerifierConfiguration) async throws -> TokenVerifier {
    try await TokenVerifier(configuration)
}

func hmacVerifier(configure: (inout TokenVerifierConfiguration) -> Void = { _ in }) async throws -> TokenVerifier {
    var configuration = TokenVerifierConfiguration(keys: [try VerificationKey.hmac(secret: Array(hmacSecret.utf8))])
    configure(&configuration)
    return try await TokenVerifier(configuration)
}

extension Result where Failure == TokenRejection {
    var rejection: TokenRejection? {
        if case .failure(let rejection) = self { rejection } else { nil }
    }
}
