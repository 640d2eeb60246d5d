/// Claims for sessions that did not come with a token, in the same shape a token's claims have,
/// so row-level security policies read `request.jwt.claims` one way whatever the credential.
public enum TenantClaims {
    /// `{"tenant_id":…,"role":…,"capabilities":[…],"key_id":…}` as compact JSON.
    public static func apiKeyClaims(tenant: String, role: String, capabilities: [String], keyID: String) -> String {
        var out = "{\"tenant_id\":"
        JSONWriter.appendQuoted(tenant, into: &out)
        out += ",\"role\":"
        JSONWriter.appendQuoted(role, into: &out)
        out += ",\"capabilities\":["
        for (n, capability) in capabilities.enumerated() {
            if n > 0 { out += "," }
            JSONWriter.appendQuoted(capability, into: &out)
        }
        out += "],\"key_id\":"
        JSONWriter.appendQuoted(keyID, into: &out)
        out += "}"
        return out
    }

    /// `text` as a JSON string literal, quotes included.
    public static func jsonString(_ text: String) -> String {
        var out = ""
        JSONWriter.appendQuoted(text, into: &out)
        return out
    }
}
