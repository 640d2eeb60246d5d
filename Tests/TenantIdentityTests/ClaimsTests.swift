import Foundation
import Testing
@testable import TenantIdentity

@Suite struct ClaimsTests {
    @Test func apiKeyClaimsHaveTheTokenShape() {
        let json = TenantClaims.apiKeyClaims(tenant: "acme", role: "reader", capabilities: ["reader", "export"], keyID: "k1")
        #expect(json == #"{"tenant_id":"acme","role":"reader","capabilities":["reader","export"],"key_id":"k1"}"#)
        #expect(TenantClaims.apiKeyClaims(tenant: "a", role: "r", capabilities: [], keyID: "k")
            == #"{"tenant_id":"a","role":"r","capabilities":[],"key_id":"k"}"#)
    }

    @Test func apiKeyClaimsEscapeEverythingJSONRequires() throws {
        let tenant = "ac\"me\\\n\t\u{1}\u{1F}é😀/"
        let json = TenantClaims.apiKeyClaims(tenant: tenant, role: "r\"", capabilities: ["\u{0}"], keyID: "</script>")
        #expect(json.hasPrefix(#"{"tenant_id":"ac\"me\\\n\t\u0001\u001fé😀/","#))
        let parsed = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        #expect(parsed["tenant_id"] as? String == tenant)
        #expect(parsed["role"] as? String == "r\"")
        #expect(parsed["capabilities"] as? [String] == ["\u{0}"])
        #expect(parsed["key_id"] as? String == "</script>")
    }

    @Test func timesAndDurationsReadNaturally() {
        #expect(Formatting.utc(now) == "2026-11-23T07:00:00Z")
        #expect(Formatting.utc(Date(timeIntervalSince1970: 0.5)) == "1970-01-01T00:00:00Z")
        #expect(Formatting.utc(Date(timeIntervalSince1970: 0.5), roundUp: true) == "1970-01-01T00:00:01Z")
        #expect(Formatting.utc(Date(timeIntervalSince1970: 951_782_400)) == "2000-02-29T00:00:00Z")
        #expect(Formatting.utc(Date(timeIntervalSince1970: -1)) == "1969-12-31T23:59:59Z")
        #expect(Formatting.duration(.milliseconds(120)) == "120 ms")
        #expect(Formatting.duration(.microseconds(120_001)) == "121 ms")
        #expect(Formatting.duration(.seconds(60)) == "60 s")
        #expect(Formatting.duration(.milliseconds(1500)) == "1.5 s")
        #expect(Formatting.quoted("a\nb") == "'a?b'")
        #expect(Formatting.quoted(String(repeating: "x", count: 100)) == "'" + String(repeating: "x", count: 64) + "…'")
    }
}
