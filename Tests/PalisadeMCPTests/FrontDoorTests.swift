import Foundation
import MCP
import NIOCore
import Testing
@testable import PalisadeMCP

/// Sixteenth red team (rt19-mcp-preauth-body-memory): the HTTP door decides a request on its head, and
/// keeps a body only for a verified credential, up to the largest message.
@Suite struct FrontDoorTests {
    static let acme = MCPIdentity(tenant: "acme", profile: "agent", credentialID: "k1", claims: #"{"tenant_id":"acme"}"#)

    func admission(path: String = "/mcp", headers: [String: String], contentLength: Int? = nil) -> (HTTPSessions.HeadAdmission, [String]) {
        var presented: [String] = []
        let head = HTTPRequest(method: "POST", headers: headers, body: nil, path: path)
        let result = HTTPSessions.admission(of: head, contentLength: contentLength, maxBodyBytes: 1 << 20) { credential in
            presented.append(credential)
            return credential == "good" ? .success(Self.acme)
                : .failure(CredentialRefusal(rule: .authenticationFailed, message: "no such key", sqlstate: "28P01"))
        }
        return (result, presented)
    }

    @Test func aHeadWithoutAValidCredentialIsRefusedWhateverItsBody() {
        for headers in [[:], ["Authorization": "Basic YWNtZTpz"], ["Authorization": "Bearer "], ["Authorization": "Bearer bad"]] {
            let (result, _) = admission(headers: headers, contentLength: 1 << 20)
            guard case .refused(let refusal, let challenge) = result else {
                Issue.record("\(headers) admitted")
                continue
            }
            #expect(challenge.hasPrefix("Bearer") && refusal.rule == .authenticationFailed)
        }
    }

    @Test func aVerifiedHeadIsAdmittedUnlessItsDeclaredBodyIsTooLarge() {
        guard case (.admitted(let identity), ["good"]) = admission(headers: ["Authorization": "Bearer good"], contentLength: 100) else {
            Issue.record("a valid credential refused")
            return
        }
        #expect(identity == Self.acme)
        guard case (.answered(.json(413, _, _)), _) = admission(headers: ["Authorization": "Bearer good"], contentLength: (1 << 20) + 1) else {
            Issue.record("a declared body over the limit admitted")
            return
        }
        // An anonymous client learns nothing from its Content-Length.
        guard case (.refused, _) = admission(headers: [:], contentLength: (1 << 20) + 1) else {
            Issue.record("an anonymous oversized body not refused 401")
            return
        }
        // Another path is not found, and no credential is looked at.
        guard case (.answered(.json(404, _, _)), []) = admission(path: "/other", headers: ["Authorization": "Bearer good"]) else {
            Issue.record("another path answered")
            return
        }
    }

    @Test func aBodyIsKeptUpToItsLimitAndLetGoPastIt() {
        var body = RequestBody(limit: 10)
        var chunk = ByteBuffer(string: "0123456789")
        body.append(&chunk)
        #expect(!body.tooLarge && body.bytes.readableBytes == 10)
        var more = ByteBuffer(string: "x")
        body.append(&more)
        #expect(body.tooLarge && body.bytes.readableBytes == 0 && body.bytes.capacity == 0)
        var again = ByteBuffer(string: "y")
        body.append(&again)
        #expect(body.tooLarge && body.bytes.readableBytes == 0)
    }

    @Test func sessionIDsAre128RandomBits() {
        let ids = (0..<64).map { _ in MCPToolSession.newSessionID() }
        #expect(ids.allSatisfy { $0.count == 32 && $0.allSatisfy(\.isHexDigit) })
        #expect(Set(ids).count == ids.count)
    }
}
