import CryptoExtras
import Foundation
import JWTKit
import Testing
@testable import TenantIdentity

@Suite struct KeyLoadingTests {
    @Test func secretFileDropsItsTrailingNewline() async throws {
        let dir = TemporaryDirectory()
        for ending in ["", "\n", "\r\n"] {
            let configuration = try TokenVerifierConfiguration.load(secretFile: dir.write("secret", hmacSecret + ending))
            #expect(configuration.algorithms == [.hs256])
            let verifier = try await TokenVerifier(configuration)
            #expect(try await verifier.verify(Mint.hs256(TestClaims.valid()), now: now).get().tenant == "acme")
            // The newline is not part of the secret: a token signed with it must fail.
            let withNewline = try await Mint.hs256(TestClaims.valid(), secret: hmacSecret + "\n")
            #expect(await verifier.verify(withNewline, now: now).rejection?.reason == .badSignature)
        }
    }

    @Test func shortOrMissingSecretFilesAreNamedInTheError() throws {
        let dir = TemporaryDirectory()
        let path = dir.write("short", String(repeating: "s", count: 31) + "\n")
        let error = #expect(throws: KeyLoadingError.self) { try TokenVerifierConfiguration.load(secretFile: path) }
        #expect(error?.file == path)
        #expect(error?.description.hasPrefix(path + ": the HS256 secret is 31 bytes; at least 32 are required") == true)
        #expect(throws: Never.self) { try TokenVerifierConfiguration.load(secretFile: dir.write("ok", String(repeating: "s", count: 32))) }
        let missing = #expect(throws: KeyLoadingError.self) { try TokenVerifierConfiguration.load(secretFile: dir.path + "/nope") }
        #expect(missing?.file == dir.path + "/nope")
        #expect(missing?.problem.hasPrefix("cannot read secret file") == true)
    }

    @Test func pemFileWithRSAECAndEd25519KeysVerifiesEachAlgorithm() async throws {
        let dir = TemporaryDirectory()
        let pem = [TestKeys.rsa.publicKey.pemRepresentation, TestKeys.ecdsa.publicKey.pemRepresentation,
                   TestKeys.eddsa.publicKey.pemRepresentation].joined(separator: "\n")
        let configuration = try TokenVerifierConfiguration.load(publicKeysFile: dir.write("keys.pem", pem))
        #expect(configuration.keys.map(\.algorithm) == [.rs256, .es256, .edDSA])
        #expect(configuration.algorithms == [.rs256, .es256, .edDSA])
        let verifier = try await TokenVerifier(configuration)
        let tokens = [try await Mint.sign(TestClaims.valid(tenant: "r"), rsa: TestKeys.rsa),
                      try await Mint.sign(TestClaims.valid(tenant: "e"), ecdsa: TestKeys.ecdsa),
                      try await Mint.sign(TestClaims.valid(tenant: "d"), eddsa: TestKeys.eddsa)]
        #expect(try await tokens.asyncMap { try await verifier.verify($0, now: now).get().tenant } == ["r", "e", "d"])
        // Keys not in the file sign nothing acceptable.
        let stranger = try await Mint.sign(TestClaims.valid(), rsa: TestKeys.otherRSA)
        #expect(await verifier.verify(stranger, now: now).rejection?.reason == .badSignature)
        let otherEC = try await Mint.sign(TestClaims.valid(), ecdsa: ES256PrivateKey())
        #expect(await verifier.verify(otherEC, now: now).rejection?.reason == .badSignature)
        let otherEd = try await Mint.sign(TestClaims.valid(), eddsa: try EdDSA.PrivateKey(curve: .ed25519))
        #expect(await verifier.verify(otherEd, now: now).rejection?.reason == .badSignature)
    }

    @Test func onlyTheConfiguredAlgorithmsAreAccepted() async throws {
        let dir = TemporaryDirectory()
        let configuration = try TokenVerifierConfiguration.load(publicKeysFile: dir.write("rsa.pem", TestKeys.rsa.publicKey.pemRepresentation))
        let verifier = try await TokenVerifier(configuration)
        let es256 = try await Mint.sign(TestClaims.valid(), ecdsa: TestKeys.ecdsa)
        let rejection = await verifier.verify(es256, now: now).rejection
        #expect(rejection?.reason == .algorithmNotAllowed)
        #expect(rejection?.message == "token algorithm 'ES256' is not accepted (accepted: RS256)")
    }

    @Test func jwksSelectsKeysByKidAndAlgorithm() async throws {
        let dir = TemporaryDirectory()
        let jwks = #"{"keys":[\#(TestKeys.rsaJWK),\#(TestKeys.ecJWK),\#(TestKeys.edJWK),{"kty":"RSA","use":"enc","kid":"enc-1","n":"AQAB","e":"AQAB"}]}"#
        let configuration = try TokenVerifierConfiguration.load(publicKeysFile: dir.write("jwks.json", jwks))
        #expect(configuration.keys.map(\.keyID) == ["rsa-1", "ec-1", "ed-1"])
        let verifier = try await TokenVerifier(configuration)
        let rs = try await Mint.sign(TestClaims.valid(tenant: "r"), rsa: TestKeys.rsa, kid: "rsa-1")
        let es = try await Mint.sign(TestClaims.valid(tenant: "e"), ecdsa: TestKeys.ecdsa, kid: "ec-1")
        let ed = try await Mint.sign(TestClaims.valid(tenant: "d"), eddsa: TestKeys.eddsa, kid: "ed-1")
        let noKid = try await Mint.sign(TestClaims.valid(tenant: "n"), eddsa: TestKeys.eddsa)
        #expect(try await [rs, es, ed, noKid].asyncMap { try await verifier.verify($0, now: now).get().tenant } == ["r", "e", "d", "n"])
        let unknown = try await Mint.sign(TestClaims.valid(), rsa: TestKeys.rsa, kid: "rsa-9")
        let rejection = await verifier.verify(unknown, now: now).rejection
        #expect(rejection?.reason == .unknownKey)
        #expect(rejection?.message == "token key id 'rsa-9' names no configured RS256 key")
        #expect(rejection?.sqlstate == "28P01")
    }

    @Test func keyFilesThatMustNotBeUsedAreRefused() throws {
        let dir = TemporaryDirectory()
        func problem(_ text: String) -> String? {
            let path = dir.write("k", text)
            do { _ = try TokenVerifierConfiguration.load(publicKeysFile: path); return nil } catch {
                #expect(error.file == path)
                return error.problem
            }
        }
        #expect(problem(TestKeys.ecdsa.pemRepresentation)?.contains("is a private key") == true)
        #expect(problem("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")?.contains("is a certificate") == true)
        #expect(problem("hello") == "holds neither PEM public keys nor a JWKS document")
        #expect(problem("-----BEGIN PUBLIC KEY-----\nAAAA") == "PEM block 1 (PUBLIC KEY) has no END line")
        #expect(problem("-----BEGIN PUBLIC KEY-----\n!!!!\n-----END PUBLIC KEY-----") == "PEM block 1 (PUBLIC KEY) is not valid base64")
        #expect(problem(#"{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}"#)?.contains("symmetric (oct) key") == true)
        let privateJWK = #"{"keys":[{"kty":"OKP","crv":"Ed25519","x":"\#(Mint.b64(TestKeys.eddsa.publicKey.rawRepresentation))","d":"AAAA"}]}"#
        #expect(problem(privateJWK)?.contains("holds a private key") == true)
        #expect(problem(#"{"keys":[{"kty":"RSA","alg":"RS512","kid":"b","n":"AQAB","e":"AQAB"}]}"#)
            == "holds no usable signing key (skipped key 1 ('b'): alg RS512)")
        #expect(problem(#"{"keys":[{"kty":"EC","crv":"P-256","kid":"x"}]}"#) == #"key 1 ('x') (EC) has no "x""#)
        #expect(problem(#"{"keys":[]}"#) == "holds no usable public key")
        #expect(problem(#"{"keys":[\#(TestKeys.edJWK),\#(TestKeys.edJWK)]}"#)?.contains("repeats a kid") == true)
        #expect(problem(#"{"nokeys":1}"#) == #"is not a JWKS document (no "keys" array)"#)
    }

    @Test func shortRSAKeysAreRefused() throws {
        let weak = try _RSA.Signing.PrivateKey(unsafeKeySize: .init(bitCount: 1024))
        let error = #expect(throws: KeyLoadingError.self) { try VerificationKey.publicKeys(from: weak.publicKey.pemRepresentation) }
        #expect(error?.problem == "RSA key is shorter than 2048 bits")
    }

    @Test func keyDescriptionsNeverShowSecrets() throws {
        let key = try VerificationKey.hmac(secret: Array(hmacSecret.utf8))
        #expect(key.description == "HS256 key")
        #expect(!String(describing: key).contains(hmacSecret))
        #expect(throws: KeyLoadingError.self) { try VerificationKey.hmac(secret: [UInt8](repeating: 1, count: 31)) }
    }
}

extension Array where Element: Sendable {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var out: [T] = []
        for element in self { out.append(try await transform(element)) }
        return out
    }
}
