import Testing
@testable import PalisadeServer

/// Sixteenth red team (rt19-admin-reload-cross-origin): what a web page can make a browser send to the
/// admin port is refused; what curl, Prometheus and the tests send is not.
@Suite struct AdminServerTests {
    func refusal(_ method: String = "GET", host: String? = "127.0.0.1:9519", origin: String? = nil, contentType: String? = nil,
                 listenHost: String = "127.0.0.1") -> Int? {
        AdminServer.refusal(method: method, host: host, origin: origin, contentType: contentType, listenHost: listenHost)?.status
    }

    @Test func aRequestNamingAnotherHostIsMisdirected() {
        #expect(refusal(host: "rebind.evil.example") == 421)
        #expect(refusal(host: "rebind.evil.example:9519") == 421)
        #expect(refusal("POST", host: "localhost.evil.example:9519") == 421)
        #expect(refusal(host: "") == 421)
        #expect(refusal(host: "127.0.0.1:x") == 421)
        #expect(refusal(host: "::1") == 421)
        // The admin listener's own host, a name the operator chose.
        #expect(refusal(host: "evil.example:9519", listenHost: "admin.internal") == 421)
        #expect(refusal(host: "Admin.Internal:9187", listenHost: "admin.internal") == nil)
    }

    @Test func addressesLocalhostAndNoHostAreAnswered() {
        for host in ["127.0.0.1:9519", "127.0.0.1", "10.1.2.3:9187", "[::1]:9519", "[::1]", "localhost:9519", "LOCALHOST", "localhost.:1"] {
            #expect(refusal(host: host) == nil, "\(host)")
        }
        // HTTP/1.0 tools may send no Host; a browser always sends one.
        #expect(refusal(host: nil) == nil)
    }

    @Test func aCrossSitePostIsForbidden() {
        #expect(refusal("POST", origin: "http://evil.example") == 403)
        #expect(refusal("POST", origin: "null") == 403)
        #expect(refusal("POST", origin: "http://127.0.0.1:9520") == 403)
        #expect(refusal("POST", host: nil, origin: "http://127.0.0.1:9519") == 403)
        for form in ["application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "text/plain;charset=UTF-8", "Text/Plain"] {
            #expect(refusal("POST", contentType: form) == 403, "\(form)")
        }
        // A GET carries no side effect: only its Host matters.
        #expect(refusal("GET", origin: "http://evil.example", contentType: "text/plain") == nil)
    }

    @Test func aPostFromTheAdminsOwnOriginOrWithoutOneIsAnswered() {
        #expect(refusal("POST") == nil)
        #expect(refusal("POST", origin: "http://127.0.0.1:9519") == nil)
        #expect(refusal("POST", contentType: "application/json") == nil)
        #expect(refusal("POST", host: "localhost:9519", origin: "http://localhost:9519") == nil)
    }
}
