import Encoding
/// Claims for sessions that did not come with a token, in the same shape a token's claims have,
/// so row-level security policies read `request.jwt.claims` one way whatever the credential.
public enum TenantClaims {
    /// `{"tenant_id":…,"role":…,"capabilities":[…],"key_id":…}` as compact JSON.
    public static func apiKeyClaims(tenant: String, role: String, capabilities: [String], keyID: String) -> String {
        JSONValue.object([
            "tenant_id": .string(tenant), "role": .string(role),
            "capabilities": .array(capabilities.map(JSONValue.string)), "key_id": .string(keyID),
        ]).compactString
    }
}
