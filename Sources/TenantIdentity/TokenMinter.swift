import Crypto
import Foundation
import Encoding

/// HS256 tokens for development, demos and tests: what an identity provider would issue.
public enum TokenMinter {
    public static func hs256(secret: [UInt8], tenantClaim: String = "tenant_id", tenant: String, role: String,
                             lifetime: TimeInterval, issuer: String? = nil, audience: String? = nil, now: Date = Date()) -> String {
        let issuedAt = Int(now.timeIntervalSince1970)
        var claims = "{\(JSONText.quoted(tenantClaim)):\(JSONText.quoted(tenant)),\"role\":\(JSONText.quoted(role))"
        claims += ",\"iat\":\(issuedAt),\"exp\":\(issuedAt + Int(lifetime))"
        if let issuer { claims += ",\"iss\":\(JSONText.quoted(issuer))" }
        if let audience { claims += ",\"aud\":\(JSONText.quoted(audience))" }
        claims += "}"
        let signingInput = Base64URL.encode(Array("{\"alg\":\"HS256\",\"typ\":\"JWT\"}".utf8)) + "." + Base64URL.encode(Array(claims.utf8))
        let signature = HMAC<SHA256>.authenticationCode(for: Array(signingInput.utf8), using: SymmetricKey(data: secret))
        return signingInput + "." + Base64URL.encode(Array(signature))
    }
}
