import Foundation
import JWTKit
import Testing
@testable import TenantIdentity

@Suite struct TokenVerifierTests {
    @Test func validHS256TokenGivesTenantCapabilitiesAndClaims() async throws {
        let verifier = try await hmacVerifier()
        let token = try await Mint.hs256(TestClaims.valid())
        let verified = try await verifier.verify(token, now: now).get()
        #expect(verified.tenant == "acme")
        #expect(verified.capabilities == ["reader", "writer"])
        #expect(verified.subject == "user-7")
        #expect(verified.expiresAt == now.addingTimeInterval(3600))
        // The claims are the payload's, member for member.
        let ours = try JSONSerialization.jsonObject(with: Data(verified.claimsJSON.utf8)) as! NSDictionary
        let theirs = try JSONSerialization.jsonObject(with: Data(Mint.payloadJSON(of: token).utf8)) as! NSDictionary
        #expect(ours == theirs)
        #expect(!verified.claimsJSON.contains(" "))
        #expect(verified.credentialID.hasPrefix("jwt:") && verified.credentialID.count == 16)
        #expect(!token.contains(verified.credentialID.dropFirst(4)))
    }

    @Test func claimsJSONKeepsOrderNumbersAndUnicodeExactly() async throws {
        let verifier = try await hmacVerifier()
        let payload = #"{"tenant_id":"acmé","exp":1795420800,"n":1.50e3,"nested":{"a":[1,true,null]},"q":"say \"hi\"\n"}"#
        let spaced = #"{ "tenant_id" : "acmé", "exp" : 1795420800, "n" : 1.50e3, "nested" : { "a" : [ 1, true, null ] }, "q" : "say \"hi\"\n" }"#
        for text in [payload, spaced] {
            let verified = try await verifier.verify(Mint.rawHS256(payload: text), now: now).get()
            #expect(verified.claimsJSON == payload)
            #expect(verified.tenant == "acmé")
            #expect(verified.capabilities == [])
        }
    }

    @Test func capabilityClaimMayBeAStringAndTenantANumber() async throws {
        let verifier = try await hmacVerifier()
        let single = try await verifier.verify(Mint.rawHS256(payload: #"{"exp":1795420800,"tenant_id":42,"role":"admin"}"#), now: now).get()
        #expect(single.tenant == "42")
        #expect(single.capabilities == ["admin"])
        let badRole = await verifier.verify(Mint.rawHS256(payload: #"{"exp":1795420800,"tenant_id":"a","role":[1]}"#), now: now)
        #expect(badRole.rejection?.reason == .invalidClaim)
        let custom = try await hmacVerifier { $0.tenantClaim = "org"; $0.capabilityClaim = "scopes" }
        let verified = try await custom.verify(Mint.rawHS256(payload: #"{"exp":1795420800,"org":"o1","scopes":["a","b"],"role":"x"}"#), now: now).get()
        #expect(verified.tenant == "o1")
        #expect(verified.capabilities == ["a", "b"])
    }

    @Test func expiredTokenIsRefusedWithItsExpiry() async throws {
        let verifier = try await hmacVerifier()
        var claims = TestClaims.valid()
        claims.exp = now.timeIntervalSince1970 - 31
        let rejection = try #require(await verifier.verify(Mint.hs256(claims), now: now).rejection)
        #expect(rejection.reason == .expired)
        #expect(rejection.sqlstate == "28000")
        #expect(rejection.message == "token expired at 2026-11-23T06:59:29Z")
        // Within the 30 s skew it still passes, and the exact message format holds for round times.
        claims.exp = now.timeIntervalSince1970 - 29
        #expect(try await verifier.verify(Mint.hs256(claims), now: now).get().tenant == "acme")
        claims.exp = now.timeIntervalSince1970
        let atExpiry = await verifier.verify(try await Mint.hs256(claims), now: now.addingTimeInterval(30)).rejection
        #expect(atExpiry?.message == "token expired at 2026-11-23T07:00:00Z")
    }

    @Test func notBeforeAndIssuedAtInTheFutureAreRefused() async throws {
        let verifier = try await hmacVerifier()
        var claims = TestClaims.valid()
        claims.nbf = now.timeIntervalSince1970 + 60
        let early = try #require(await verifier.verify(Mint.hs256(claims), now: now).rejection)
        #expect(early.reason == .notYetValid)
        #expect(early.message == "token is not valid before 2026-11-23T07:01:00Z")
        #expect(early.sqlstate == "28000")
        claims.nbf = now.timeIntervalSince1970 + 20  // inside the skew
        let inside = try await Mint.hs256(claims)
        #expect(verifier.verifySync(inside, now: now).rejection == nil)

        claims = TestClaims.valid()
        claims.iat = now.timeIntervalSince1970 + 3600
        let future = try #require(await verifier.verify(Mint.hs256(claims), now: now).rejection)
        #expect(future.reason == .issuedInFuture)
        #expect(future.message == "token was issued in the future (iat 2026-11-23T08:00:00Z)")
        claims.iat = now.timeIntervalSince1970 + 25
        #expect(try await verifier.verify(Mint.hs256(claims), now: now).get().tenant == "acme")
    }

    @Test func missingExpiryIsRefused() async throws {
        let verifier = try await hmacVerifier()
        var claims = TestClaims.valid()
        claims.exp = nil
        let rejection = try #require(await verifier.verify(Mint.hs256(claims), now: now).rejection)
        #expect(rejection.reason == .missingExpiry)
        #expect(rejection.sqlstate == "28000")
        #expect(rejection.message.contains("no exp claim"))
        let stringExp = await verifier.verify(Mint.rawHS256(payload: #"{"exp":"1795420800","tenant_id":"a"}"#), now: now)
        #expect(stringExp.rejection?.reason == .invalidClaim)
        let hugeExp = await verifier.verify(Mint.rawHS256(payload: #"{"exp":1e300,"tenant_id":"a"}"#), now: now)
        #expect(hugeExp.rejection?.message == "token claim exp is out of range")
    }

    @Test func missingOrUnusableTenantIsRefused() async throws {
        let verifier = try await hmacVerifier()
        let missing = try #require(await verifier.verify(Mint.hs256(TestClaims.valid(tenant: nil)), now: now).rejection)
        #expect(missing.reason == .missingTenant)
        #expect(missing.sqlstate == "28000")
        #expect(missing.message == "token has no tenant_id claim")
        let empty = await verifier.verify(try await Mint.hs256(TestClaims.valid(tenant: "")), now: now).rejection
        #expect(empty?.message == "token claim tenant_id is empty")
        let control = await verifier.verify(try await Mint.hs256(TestClaims.valid(tenant: "acme\u{1}")), now: now).rejection
        #expect(control?.reason == .invalidClaim)
        let object = await verifier.verify(Mint.rawHS256(payload: #"{"exp":1795420800,"tenant_id":{"id":1}}"#), now: now).rejection
        #expect(object?.reason == .missingTenant)
        let fraction = await verifier.verify(Mint.rawHS256(payload: #"{"exp":1795420800,"tenant_id":1.5}"#), now: now).rejection
        #expect(fraction?.reason == .missingTenant)
        let long = await verifier.verify(try await Mint.hs256(TestClaims.valid(tenant: String(repeating: "t", count: 300))), now: now).rejection
        #expect(long?.reason == .invalidClaim)
    }

    /// `{"tenant_id":"a","tenant_id":"b"}`: the proxy and jsonb would disagree on the tenant.
    @Test func duplicateClaimsAndNULAreRefused() async throws {
        let verifier = try await hmacVerifier()
        let duplicate = await verifier.verify(Mint.rawHS256(payload: #"{"exp":1795420800,"tenant_id":"a","tenant_id":"b"}"#), now: now).rejection
        #expect(duplicate?.reason == .malformed)
        #expect(duplicate?.sqlstate == "28P01")
        let nul = await verifier.verify(Mint.rawHS256(payload: #"{"exp":1795420800,"tenant_id":"a\u0000b"}"#), now: now).rejection
        #expect(nul?.reason == .invalidClaim)
    }

    @Test func issuerAndAudienceAreCheckedWhenConfigured() async throws {
        let verifier = try await hmacVerifier { $0.issuer = "https://idp.example"; $0.audience = "palisade" }
        var claims = TestClaims.valid()
        let noIssuer = try #require(await verifier.verify(Mint.hs256(claims), now: now).rejection)
        #expect(noIssuer.reason == .wrongIssuer)
        claims.iss = "https://evil.example"
        claims.aud = "palisade"
        let wrongIssuer = try #require(await verifier.verify(Mint.hs256(claims), now: now).rejection)
        #expect(wrongIssuer.message == "token issuer 'https://evil.example' is not 'https://idp.example'")
        #expect(wrongIssuer.sqlstate == "28000")
        claims.iss = "https://idp.example"
        #expect(try await verifier.verify(Mint.hs256(claims), now: now).get().tenant == "acme")
        claims.aud = AudienceClaim(value: ["other", "palisade"])
        #expect(try await verifier.verify(Mint.hs256(claims), now: now).get().tenant == "acme")
        claims.aud = AudienceClaim(value: ["other", "more"])
        let wrongAudience = try #require(await verifier.verify(Mint.hs256(claims), now: now).rejection)
        #expect(wrongAudience.reason == .wrongAudience)
        #expect(wrongAudience.message == "token audience 'other', 'more' does not include 'palisade'")
        claims.aud = nil
        #expect(await verifier.verify(try await Mint.hs256(claims), now: now).rejection?.reason == .wrongAudience)
    }

    @Test func signatureFromAnotherKeyOrTamperedPayloadIsRefused() async throws {
        let verifier = try await hmacVerifier()
        let forged = try await Mint.hs256(TestClaims.valid(), secret: "another-secret-that-is-also-long-enough-xx")
        let rejection = try #require(await verifier.verify(forged, now: now).rejection)
        #expect(rejection.reason == .badSignature)
        #expect(rejection.sqlstate == "28P01")
        #expect(rejection.message == "token signature does not verify")

        let genuine = try await Mint.hs256(TestClaims.valid(tenant: "acme"))
        let other = try await Mint.hs256(TestClaims.valid(tenant: "globex"))
        var parts = genuine.split(separator: ".").map(String.init)
        parts[1] = String(other.split(separator: ".")[1])
        let tampered = parts.joined(separator: ".")
        #expect(await verifier.verify(tampered, now: now).rejection?.reason == .badSignature)
        // Flipping one signature bit must fail too (and a non-canonical spelling is malformed).
        parts = genuine.split(separator: ".").map(String.init)
        parts[2] = String(parts[2].dropLast()) + (parts[2].last == "A" ? "Q" : "A")
        #expect(await verifier.verify(parts.joined(separator: "."), now: now).rejection != nil)
    }

    @Test func unsignedTokensAreRefusedWhateverTheSpelling() async throws {
        let verifier = try await hmacVerifier()
        let payload = Mint.b64(Array(#"{"exp":1795420800,"tenant_id":"acme"}"#.utf8))
        for header in [#"{"alg":"none"}"#, #"{"alg":"NONE","typ":"JWT"}"#, #"{"alg":"None"}"#] {
            for signature in ["", "c2ln"] {
                let token = Mint.b64(Array(header.utf8)) + "." + payload + "." + signature
                let rejection = try #require(await verifier.verify(token, now: now).rejection)
                #expect(rejection.reason == .unsigned)
                #expect(rejection.message == "token is unsigned (alg none)")
                #expect(rejection.sqlstate == "28P01")
            }
        }
        #expect(await verifier.verify("eyJhbGciOiJub25lIn0." + payload + ".", now: now).rejection?.reason == .unsigned)
        // HS256 with its signature stripped is unsigned too, not a signature to compare.
        let stripped = try await Mint.hs256(TestClaims.valid()).split(separator: ".").prefix(2).joined(separator: ".") + "."
        #expect(await verifier.verify(stripped, now: now).rejection?.reason == .unsigned)
    }

    /// The classic confusion: sign HS256 with the RSA public key as the HMAC secret.
    @Test func hs256SignedWithThePublicKeyIsRefusedWhenOnlyPublicKeysAreConfigured() async throws {
        let dir = TemporaryDirectory()
        let pem = TestKeys.rsa.publicKey.pemRepresentation
        let configuration = try TokenVerifierConfiguration.load(publicKeysFile: dir.write("keys.pem", pem))
        let verifier = try await TokenVerifier(configuration)
        let confused = try await Mint.hs256(TestClaims.valid(), secret: pem)
        let rejection = try #require(await verifier.verify(confused, now: now).rejection)
        #expect(rejection.reason == .algorithmNotAllowed)
        #expect(rejection.message == "token algorithm 'HS256' is not accepted (accepted: RS256)")
        #expect(rejection.sqlstate == "28P01")
        // Even an operator who allows HS256 by mistake has no HMAC key for it.
        var permissive = configuration
        permissive.algorithms.insert(.hs256)
        let rejection2 = try await TokenVerifier(permissive).verify(confused, now: now).rejection
        #expect(rejection2?.reason == .unknownKey)
        // And the genuine RS256 token passes.
        #expect(try await verifier.verify(Mint.sign(TestClaims.valid(), rsa: TestKeys.rsa), now: now).get().tenant == "acme")
    }

    @Test func malformedTokensAreRefused() async throws {
        let verifier = try await hmacVerifier()
        let good = try await Mint.hs256(TestClaims.valid())
        let parts = good.split(separator: ".").map(String.init)
        let cases: [String] = [
            "", "abc", parts[0], parts[0] + "." + parts[1], good + ".extra", "!!!.@@@.###",
            "." + parts[1] + "." + parts[2], parts[0] + ".." + parts[2],
            Mint.b64(Array("not json".utf8)) + "." + parts[1] + "." + parts[2],
            Mint.b64(Array("[1,2]".utf8)) + "." + parts[1] + "." + parts[2],
            parts[0] + "=." + parts[1] + "." + parts[2],
            Mint.b64(Array(#"{"typ":"JWT"}"#.utf8)) + "." + parts[1] + "." + parts[2],
            Mint.rawHS256(payload: "not json"), Mint.rawHS256(payload: "[1]"), Mint.rawHS256(payload: #"{"exp":1}garbage"#),
        ]
        for token in cases {
            let rejection = await verifier.verify(token, now: now).rejection
            #expect(rejection?.reason == .malformed, "\(token)")
            #expect(rejection?.sqlstate == "28P01")
        }
        #expect(await verifier.verify("abc", now: now).rejection?.message == "token is malformed: it has 1 parts, a signed JWT has 3 (header.payload.signature)")
        #expect(await verifier.verify(Mint.rawHS256(header: #"{"alg":"HS256","crit":["exp"]}"#, payload: #"{"exp":1795420800,"tenant_id":"a"}"#), now: now).rejection?.reason == .malformed)
        #expect(await verifier.verify(Mint.rawHS256(header: #"{"alg":"HS512"}"#, payload: "{}"), now: now).rejection?.reason == .algorithmNotAllowed)
    }

    /// Refused by size before any decoding; with the limit lifted, refused as malformed without
    /// crashing (the JSON reader's depth limit). What is checked is the rule that refused, not a time.
    @Test func hugeTokensAreRefusedBeforeTheyAreDecoded() async throws {
        let verifier = try await hmacVerifier()
        let huge = String(repeating: "A", count: 50_000) + "." + String(repeating: "B", count: 50_000) + ".C"
        let rejection = try #require(await verifier.verify(huge, now: now).rejection)
        #expect(rejection.reason == .tooLarge)
        #expect(rejection.message == "token is 100003 bytes, more than the 16384 accepted")
        // With the size limit lifted the same input is still refused, without crashing.
        let lifted = try await hmacVerifier { $0.maxTokenBytes = 1 << 20 }
        let deep = Mint.rawHS256(payload: String(repeating: "[", count: 60_000) + String(repeating: "]", count: 60_000))
        #expect(await lifted.verify(huge, now: now).rejection?.reason == .malformed)
        #expect(await lifted.verify(deep, now: now).rejection?.reason == .malformed)
    }

    @Test func rejectionMessagesNeverContainTheToken() async throws {
        let verifier = try await hmacVerifier { $0.issuer = "i" }
        var claims = TestClaims.valid()
        claims.exp = 1
        let tokens = [try await Mint.hs256(claims), try await Mint.hs256(TestClaims.valid(), secret: String(repeating: "x", count: 40)),
                      try await Mint.hs256(TestClaims.valid())]
        for token in tokens {
            let rejection = try #require(await verifier.verify(token, now: now).rejection)
            for part in token.split(separator: ".") where part.count > 8 {
                #expect(!rejection.message.contains(part))
                #expect(!rejection.description.contains(part))
            }
        }
    }

    @Test func credentialIDIsStableAndNamesTheJTIWhenPresent() async throws {
        let verifier = try await hmacVerifier()
        let token = try await Mint.hs256(TestClaims.valid())
        let a = try await verifier.verify(token, now: now).get().credentialID
        let b = try await verifier.verify(token, now: now.addingTimeInterval(5)).get().credentialID
        #expect(a == b)
        #expect(try await verifier.verify(Mint.hs256(TestClaims.valid(tenant: "other")), now: now).get().credentialID != a)
        var first = TestClaims.valid(), second = TestClaims.valid(tenant: "other")
        first.jti = "token-1"
        second.jti = "token-1"
        let j1 = try await verifier.verify(Mint.hs256(first), now: now).get().credentialID
        let j2 = try await verifier.verify(Mint.hs256(second), now: now).get().credentialID
        #expect(j1 == j2)
        #expect(j1 != a)
    }

    @Test func longSessionsEndWhenTheTokenExpires() async throws {
        let verifier = try await hmacVerifier()
        let verified = try await verifier.verify(Mint.hs256(TestClaims.valid()), now: now).get()
        #expect(!verifier.isExpired(verified, now: now))
        #expect(!verifier.isExpired(verified, now: verified.expiresAt.addingTimeInterval(29)))
        #expect(verifier.isExpired(verified, now: verified.expiresAt.addingTimeInterval(30)))
    }

    /// Login and a running session follow one rule: a token is accepted until exp plus the skew,
    /// so a session never outlives the moment the same token would be refused at login.
    @Test func loginAndRunningSessionsShareOneExpiryRule() async throws {
        let verifier = try await hmacVerifier()
        let token = try await Mint.hs256(TestClaims.valid())
        let verified = try await verifier.verify(token, now: now).get()
        let last = verifier.acceptedUntil(expiresAt: verified.expiresAt)
        #expect(last == verified.expiresAt.addingTimeInterval(30))
        for offset in [-1.0, 0.0, 1.0] {
            let moment = last.addingTimeInterval(offset)
            let refusedAtLogin: Bool
            switch await verifier.verify(token, now: moment) {
            case .success: refusedAtLogin = false
            case .failure: refusedAtLogin = true
            }
            #expect(refusedAtLogin == verifier.isExpired(verified, now: moment), "at \(offset) s from the last accepted moment")
        }
    }
}
