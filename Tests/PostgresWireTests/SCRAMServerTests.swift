import Foundation
import NIOCore
import Testing
@testable import PostgresWire

@Suite struct SCRAMServerTests {
    /// RFC 7677's example exchange, byte for byte.
    @Test func reproducesTheRFC7677Exchange() throws {
        let verifier = SCRAMVerifier(password: "pencil", salt: Array(Data(base64Encoded: "W22ZaJ0SNY7soEsUEjb6gQ==")!), iterations: 4096)
        var server = SCRAMServer(verifier: verifier, mockSalt: [], nonce: "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0")
        let challenge = try server.respond(to: Array("n,,n=user,r=rOprNGfwEbeRWgbNEkqO".utf8))
        #expect(challenge == .challenge(Array("r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096".utf8)))
        let final = try server.respond(to: Array(
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=".utf8))
        #expect(final == .authenticated(Array("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=".utf8)))
    }

    private func exchange(password: String, against verifier: SCRAMVerifier?) throws(SCRAMServer.Failure) {
        var client = SCRAMClient(password: password)
        var server = SCRAMServer(verifier: verifier, mockSalt: Array(repeating: 7, count: 16))
        guard case .challenge(let serverFirst) = try server.respond(to: client.clientFirstMessage()) else {
            Issue.record("no challenge")
            return
        }
        let clientFinal = try! client.clientFinalMessage(serverFirst: serverFirst)
        guard case .authenticated(let serverFinal) = try server.respond(to: clientFinal) else {
            Issue.record("not authenticated")
            return
        }
        try! client.verifyServerFinal(serverFinal)
    }

    @Test func theRightPasswordLogsInAndTheClientChecksTheServer() throws {
        try exchange(password: "pal_0000_secret", against: SCRAMVerifier(password: "pal_0000_secret"))
    }

    @Test func aWrongPasswordOrAnUnknownUserFailsOnlyAtTheProof() {
        #expect(throws: SCRAMServer.Failure.wrongProof) { try exchange(password: "wrong", against: SCRAMVerifier(password: "right")) }
        #expect(throws: SCRAMServer.Failure.wrongProof) { try exchange(password: "", against: nil) }
    }

    @Test func anUnknownUserSeesTheSaltItIsGiven() throws {
        var server = SCRAMServer(verifier: nil, mockSalt: Array(repeating: 1, count: 16), nonce: "s")
        let answer = try server.respond(to: Array("n,,n=,r=c".utf8))
        #expect(answer == .challenge(Array("r=cs,s=\(Data(repeating: 1, count: 16).base64EncodedString()),i=4096".utf8)))
    }

    @Test(arguments: [
        "p=tls-server-end-point,,n=,r=abc",  // channel binding: not offered
        "n,a=admin,n=,r=abc",                // an authorization identity
        "n,,n=,r=abc,m=ext",                 // a mandatory extension
        "n,,r=abc",                          // no user attribute
        "x,,n=,r=abc",
    ])
    func refusesClientFirstMessagesItDoesNotSupport(_ message: String) {
        var server = SCRAMServer(verifier: SCRAMVerifier(password: "p"), mockSalt: [])
        #expect(throws: SCRAMServer.Failure.self) { try server.respond(to: Array(message.utf8)) }
    }

    @Test func refusesAFinalMessageWithAnotherNonceOrBinding() throws {
        let zeroProof = Data(count: 32).base64EncodedString()
        for (final, failure) in [("c=biws,r=other,p=" + zeroProof, "nonce does not match"),
                                 ("c=eSws,r=cs,p=" + zeroProof, "channel-binding data must repeat the gs2 header"),
                                 ("c=biws,r=cs", "client-final-message has no proof")] {
            var server = SCRAMServer(verifier: SCRAMVerifier(password: "p"), mockSalt: [], nonce: "s")
            _ = try server.respond(to: Array("n,,n=,r=c".utf8))
            // The specific failure: a zero proof would also fail as .wrongProof if the check were missing.
            #expect(throws: SCRAMServer.Failure.malformed(failure)) { try server.respond(to: Array(final.utf8)) }
        }
    }

    @Test func aFailedMessageEndsTheExchange() throws {
        var server = SCRAMServer(verifier: SCRAMVerifier(password: "p"), mockSalt: [], nonce: "s")
        _ = try server.respond(to: Array("n,,n=,r=c".utf8))
        #expect(throws: SCRAMServer.Failure.malformed("not UTF-8")) { try server.respond(to: [0xFF]) }
        #expect(throws: SCRAMServer.Failure.malformed("the exchange is over")) { try server.respond(to: Array("c=biws,r=cs,p=".utf8)) }
    }

    @Test func verifiersRoundTripInPostgreSQLsFormat() {
        let verifier = SCRAMVerifier(password: "pencil", salt: Array(Data(base64Encoded: "W22ZaJ0SNY7soEsUEjb6gQ==")!), iterations: 4096)
        #expect(verifier.encoded.hasPrefix("SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$"))
        #expect(SCRAMVerifier(encoded: verifier.encoded) == verifier)
        for bad in ["", "SCRAM-SHA-256$4096:abc", "md5abc", "SCRAM-SHA-256$0:W22Z$AAAA:AAAA"] { #expect(SCRAMVerifier(encoded: bad) == nil) }
        // Well-formed but for the iteration count, which must be 1 to 10,000,000.
        for iterations in ["0", "10000001", "-1"] {
            #expect(SCRAMVerifier(encoded: verifier.encoded.replacingOccurrences(of: "$4096:", with: "$\(iterations):")) == nil, "\(iterations)")
        }
    }

    @Test func readsTheInitialResponse() {
        var body = ByteBuffer()
        body.writeString("SCRAM-SHA-256\0")
        body.writeInteger(Int32(9))
        body.writeString("n,,n=,r=c")
        let parsed = SCRAMServer.initialResponse(body)
        #expect(parsed?.mechanism == "SCRAM-SHA-256" && parsed?.message == Array("n,,n=,r=c".utf8))
        body.writeString("trailing")
        #expect(SCRAMServer.initialResponse(body) == nil)
    }
}
