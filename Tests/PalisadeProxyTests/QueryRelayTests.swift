import NIOCore
import Testing
@testable import PalisadeProxy
import PostgresWire
import QueryPolicy

/// The relay as a value: client and server messages in, bytes out, no sockets.
@Suite struct QueryRelayTests {
    /// A stand-in policy: empty text, DELETE and everything else, by the text alone.
    static func decide(_ sql: String, _ kind: QueryRelay.MessageKind) -> (Decision, ServerNotice?) {
        let trimmed = sql.trimmingCharacters(in: .whitespaces)
        if trimmed.isEmpty || trimmed.hasPrefix("--") {
            return (Decision(rule: .empty, message: "empty", policyVersion: ""), ServerNotice(sqlstate: "42601", message: "empty"))
        }
        if trimmed.hasPrefix("DELETE") {
            return (Decision(rule: .dml, message: "DML", policyVersion: ""), ServerNotice(sqlstate: "42501", message: "Palisade: DML"))
        }
        return (Decision(rule: .query, message: "ok", policyVersion: ""), nil)
    }

    struct Harness {
        var relay = QueryRelay(claims: #"{"tenant_id":"acme"}"#, statementTimeoutMilliseconds: 1000, decide: QueryRelayTests.decide)
        var output = QueryRelay.Output()

        mutating func client(_ write: (inout ByteBuffer) -> Void) {
            var buffer = ByteBuffer()
            write(&buffer)
            for frame in Self.frames(buffer) { relay.clientFrame(frame, into: &output) }
        }

        mutating func server(_ types: String) {
            for type in types.utf8 {
                var body = ByteBuffer()
                if type == UInt8(ascii: "Z") { body.writeInteger(UInt8(ascii: "I")) }
                relay.backendFrame(Frame(type: type, body: body), into: &output)
            }
        }

        /// The message types sent so far each way, and clears them.
        mutating func sent() -> (toServer: String, toClient: String) {
            defer { output = QueryRelay.Output() }
            return (Self.types(output.toBackend), Self.types(output.toClient))
        }

        /// Parse, Bind and Execute of `query` as the unnamed statement and portal.
        static func run(_ query: String, into buffer: inout ByteBuffer) {
            FrontendEncoder.parse(statement: "", query: query, into: &buffer)
            FrontendEncoder.bind(portal: "", statement: "", parameters: [], into: &buffer)
            FrontendEncoder.execute(portal: "", into: &buffer)
        }

        static func frames(_ buffer: ByteBuffer) -> [Frame] {
            var buffer = buffer
            var frames: [Frame] = []
            let decoder = FrameDecoder(maxLength: 1 << 20)
            while let frame = try! decoder.decode(&buffer) { frames.append(frame) }
            return frames
        }

        static func types(_ buffer: ByteBuffer) -> String {
            String(frames(buffer).map { Character(UnicodeScalar($0.type)) })
        }
    }

    @Test func anAdmittedSimpleQueryRunsWithTheClaimsAndOnlyItsAnswerIsRelayed() {
        var harness = Harness()
        harness.client { FrontendEncoder.query("SELECT 1", into: &$0) }
        // The claims statement (prepared once), then the query as Parse/Bind/Describe/Execute/Sync.
        #expect(harness.sent() == ("PBEPBDES", ""))
        harness.server("12DC" + "12TDCZ")
        #expect(harness.sent() == ("", "TDCZ"))
    }

    @Test func aDeniedSimpleQueryNeverReachesTheServer() {
        var harness = Harness()
        harness.client { FrontendEncoder.query("DELETE FROM t", into: &$0) }
        #expect(harness.sent() == ("", "EZ"))
    }

    @Test func aDenialInAPipelineComesInItsPlaceAndTheRestUpToSyncIsDropped() {
        var harness = Harness()
        harness.client { buffer in
            Harness.run("SELECT 1", into: &buffer)
            Harness.run("DELETE FROM t", into: &buffer)
            FrontendEncoder.sync(into: &buffer)
        }
        #expect(harness.sent() == ("PPBEBES", ""))
        harness.server("1" + "12DC" + "2DC")
        #expect(harness.sent().toClient == "12DCE")
        harness.server("Z")
        #expect(harness.sent().toClient == "Z")
    }

    @Test func bindAndExecuteReachOnlyAdmittedStatements() {
        var harness = Harness()
        harness.client { buffer in
            FrontendEncoder.bind(portal: "", statement: "never-parsed", parameters: [], into: &buffer)
            FrontendEncoder.execute(portal: "", into: &buffer)
            FrontendEncoder.sync(into: &buffer)
        }
        // The refusal, the Execute dropped up to Sync, and Sync forwarded for the ReadyForQuery.
        #expect(harness.sent() == ("S", "E"))
    }

    @Test func anEmptySimpleQueryIsAnsweredAsTheServerWould() {
        var harness = Harness()
        harness.client { FrontendEncoder.query("  ", into: &$0) }
        #expect(harness.sent() == ("", "IZ"))
    }

    /// JDBC's Connection.isValid prepares and runs empty text.
    @Test func anEmptyPreparedStatementIsAnsweredInOrderWithoutReachingTheServer() {
        var harness = Harness()
        harness.client { buffer in
            FrontendEncoder.parse(statement: "S_1", query: "", into: &buffer)
            FrontendEncoder.bind(portal: "", statement: "S_1", parameters: [], into: &buffer)
            FrontendEncoder.describePortal("", into: &buffer)
            FrontendEncoder.execute(portal: "", into: &buffer)
            FrontendEncoder.sync(into: &buffer)
        }
        #expect(harness.sent() == ("S", "12nI"))
        harness.server("Z")
        #expect(harness.sent().toClient == "Z")
    }

    @Test func anEmptyStatementAfterARealOneWaitsForItsAnswer() {
        var harness = Harness()
        harness.client { buffer in
            FrontendEncoder.parse(statement: "", query: "SELECT 1", into: &buffer)
            FrontendEncoder.parse(statement: "e", query: "", into: &buffer)
            FrontendEncoder.sync(into: &buffer)
        }
        #expect(harness.sent() == ("PS", ""))
        harness.server("1Z")
        #expect(harness.sent().toClient == "11Z")
    }
}
