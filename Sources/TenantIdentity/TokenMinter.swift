import Crypto
import Foundation

/// HS256 tokens for development, demos and tests: what an identity provider would issue.
public enum TokenMinter {
    public static func hs256(secret: [UInt8], tenantClaim: String = "tenant_id", tenant: String, role: String,
                             lifetime: TimeInterval, issuer: String? = nil, audience: String? = nil, now: Date = Date()) -> String {
        let issuedAt = Int(now.timeIntervalSince1970)
        var claims = "{\(TenantClaims.jsonString(tenantClaim)):\(TenantClaims.jsonString(tenant)),\"role\":\(TenantClaims.jsonString(role))"
        claims += ",\"iat\":\(issuedAt),\"exp\":\(issuedAt + Int(lifetime))"
        if let issuer { claims += ",\"iss\":\(TenantClaims.jsonString(issuer))" }
        if let audience { claims += ",\"aud\":\(TenantClaims.jsonString(audience))" }
        claims += "}"
        let signingInput = base64URL(Array("{\"alg\":\"HS256\",\"typ\":\"JWT\"}".utf8)) + "." + base64URL(Array(claims.utf8))
        let signature = HMAC<SHA256>.authenticationCode(for: Array(signingInput.utf8), using: SymmetricKey(data: secret))
        return signingInput + "." + base64URL(Array(signature))
    }

    static func base64URL(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }
}
