import NIOCore
import Testing
@testable import PalisadeProxy
import PostgresWire
import QueryPolicy

/// The relay as a value: client and server messages in, bytes out, no sockets.
@Suite struct QueryRelayTests {
    /// A stand-in policy: empty text, DELETE and everything else, by the text alone.
    static func decide(_ sql: String, _ kind: QueryRelay.MessageKind, _ parameterTypes: [UInt32]) -> (Decision, ServerNotice?) {
        let trimmed = sql.trimmingCharacters(in: .whitespaces)
        if trimmed.isEmpty || trimmed.hasPrefix("--") {
            return (Decision(rule: .empty, message: "empty", policyVersion: ""), ServerNotice(sqlstate: "42601", message: "empty"))
        }
        if trimmed.hasPrefix("DELETE") {
            return (Decision(rule: .dml, message: "DML", policyVersion: ""), ServerNotice(sqlstate: "42501", message: "Palisade: DML"))
        }
        if ["BEGIN", "COMMIT", "ROLLBACK"].contains(where: trimmed.hasPrefix) {
            return (Decision(rule: .transactionControl, message: "ok", policyVersion: ""), nil)
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

        /// Server messages by type; ReadyForQuery reports `status`.
        mutating func server(_ types: String, status: Character = "I") {
            for type in types.utf8 {
                var body = ByteBuffer()
                if type == UInt8(ascii: "Z") { body.writeInteger(status.asciiValue!) }
                relay.backendFrame(Frame(type: type, body: body), into: &output)
            }
        }

        /// The message types sent so far each way, and clears them.
        mutating func sent() -> (toServer: String, toClient: String) {
            defer { output = QueryRelay.Output() }
            return (Self.types(output.toBackend), Self.types(output.toClient))
        }

        /// The messages sent to the server so far, decoded, and clears them.
        mutating func sentToServer() -> [FrontendMessage] {
            defer { output.toBackend.clear() }
            return Self.frames(output.toBackend).map { try! FrontendMessage($0) }
        }

        /// The SQLSTATE of the first ErrorResponse sent to the client, and clears what was sent.
        mutating func clientError() -> String? {
            defer { output = QueryRelay.Output() }
            guard let error = Self.frames(output.toClient).first(where: { $0.type == UInt8(ascii: "E") }) else { return nil }
            return ServerNotice(error.body).sqlstate
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
        // The transaction ended with the Sync, and the claims portal with it.
        harness.client { FrontendEncoder.query("SELECT 2", into: &$0) }
        #expect(harness.sent().toServer == "BEPBDES")
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

    /// Every execution of a prepared statement is admitted again (the lockout), and every one after
    /// the first counts toward the tenant's rate: a refusal comes in the Bind's place, and the rest
    /// up to Sync is dropped.
    @Test func eachExecutionAfterTheFirstIsAdmittedAgain() {
        final class Asked: @unchecked Sendable { var requests: [Int] = []; var countedTowardRate: [Bool] = []; var refuse = false }
        let asked = Asked()
        var harness = Harness()
        harness.relay = QueryRelay(claims: nil, statementTimeoutMilliseconds: 1000, decide: { sql, kind, types, _, _ in
            QueryRelayTests.decide(sql, kind, types)
        }, admitExecution: { request, countsTowardRate, _ in
            asked.requests.append(request)
            asked.countedTowardRate.append(countsTowardRate)
            return asked.refuse ? ServerNotice(sqlstate: "53400", message: "Palisade: rate") : nil
        })
        func round(parse: Bool) {
            harness.client { buffer in
                if parse { FrontendEncoder.parse(statement: "s", query: "SELECT 1", into: &buffer) }
                FrontendEncoder.bind(portal: "", statement: "s", parameters: [], into: &buffer)
                FrontendEncoder.execute(portal: "", into: &buffer)
                FrontendEncoder.sync(into: &buffer)
            }
        }
        round(parse: true)
        // The first execution is admitted too (a lockout applies), but the Parse's decision counted it toward the rate.
        #expect(asked.requests == [2] && asked.countedTowardRate == [false])
        #expect(harness.sent().toServer == "PBES")
        harness.server("12CZ")
        _ = harness.sent()
        round(parse: false)
        #expect(asked.requests == [2, 2] && asked.countedTowardRate == [false, true])
        #expect(harness.sent().toServer == "BES")
        harness.server("2CZ")
        _ = harness.sent()
        asked.refuse = true
        round(parse: false)
        // An admitted execution takes no request number; a refusal takes the next one.
        #expect(asked.requests == [2, 2, 2])
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

    @Test func clientNamesNeverReachTheServer() {
        var harness = Harness()
        harness.client { buffer in
            FrontendEncoder.parse(statement: "palisade_claims", query: "SELECT 1", into: &buffer)
            FrontendEncoder.bind(portal: "palisade_claims", statement: "palisade_claims", parameters: [], into: &buffer)
            FrontendEncoder.execute(portal: "palisade_claims", into: &buffer)
            FrontendEncoder.sync(into: &buffer)
        }
        let sent = harness.sentToServer()
        // The client's Parse as s1, the claims (Palisade's own names), the client's Bind and Execute as p2.
        #expect(sent[0] == .parse(statement: "s1", query: "SELECT 1", parameterTypes: []))
        #expect(sent[2] == .bind(portal: QueryRelay.claimsStatement, statement: QueryRelay.claimsStatement))
        #expect(sent[4] == .bind(portal: "p2", statement: "s1"))
        #expect(sent[5] == .execute(portal: "p2"))
        // The name is the client's own statement's, on the server too.
        harness.client { buffer in
            buffer.writeFrame("D") { $0.writeInteger(UInt8(ascii: "S")); $0.writeCString(QueryRelay.claimsStatement) }
            FrontendEncoder.sync(into: &buffer)
        }
        #expect(harness.sentToServer() == [.describe(kind: UInt8(ascii: "S"), name: "s1"), .sync])
        // A name the client has not made is refused before anything reaches the server.
        harness.client { buffer in
            buffer.writeFrame("D") { $0.writeInteger(UInt8(ascii: "P")); $0.writeCString("never-bound") }
            FrontendEncoder.sync(into: &buffer)
        }
        #expect(harness.sent().toServer == "S")
    }

    @Test func everyTransactionInAPipelineGetsTheClaims() {
        var harness = Harness()
        harness.client { buffer in
            FrontendEncoder.parse(statement: "q", query: "SELECT 1", into: &buffer)
            FrontendEncoder.parse(statement: "c", query: "COMMIT AND CHAIN", into: &buffer)
            FrontendEncoder.sync(into: &buffer)
        }
        harness.server("11Z")
        _ = harness.sent()
        harness.client { buffer in
            for _ in 0..<2 {
                FrontendEncoder.bind(portal: "", statement: "q", parameters: [], into: &buffer)
                FrontendEncoder.execute(portal: "", into: &buffer)
                FrontendEncoder.sync(into: &buffer)
            }
        }
        // Before the server has answered the first Sync, the second transaction gets the claims too
        // (with the claims portal closed first, in case the transaction went on).
        #expect(harness.sent().toServer == "PBE" + "BES" + "CBE" + "BES")
        harness.client { buffer in
            for statement in ["q", "c", "q"] {
                FrontendEncoder.bind(portal: "", statement: statement, parameters: [], into: &buffer)
                FrontendEncoder.execute(portal: "", into: &buffer)
            }
            FrontendEncoder.sync(into: &buffer)
        }
        // COMMIT AND CHAIN starts a transaction: the claims again after it, none before it.
        #expect(harness.sent().toServer == "CBE" + "BE" + "BE" + "CBE" + "BE" + "S")
    }

    @Test func aFailedTransactionStillGetsTheClaimsForItsNextQuery() {
        var harness = Harness()
        harness.client { FrontendEncoder.query("BEGIN", into: &$0) }
        harness.server("12nCZ", status: "T")
        harness.client { FrontendEncoder.query("SELECT 1", into: &$0) }
        harness.server("12DC" + "12T" + "E" + "Z", status: "E")
        _ = harness.sent()
        // ROLLBACK and a query in one write: the status Palisade last saw is "failed", but the query
        // runs after the ROLLBACK, in a new transaction.
        harness.client { buffer in
            FrontendEncoder.query("ROLLBACK", into: &buffer)
            FrontendEncoder.query("SELECT 2", into: &buffer)
        }
        #expect(harness.sent().toServer == "PBDES" + "CBE" + "PBDES")
    }

    @Test func aNameThatExistsKeepsWhatWasAdmittedUnderIt() {
        var harness = Harness()
        harness.client { buffer in
            FrontendEncoder.parse(statement: "s", query: "SELECT 1", into: &buffer)
            FrontendEncoder.sync(into: &buffer)
            FrontendEncoder.parse(statement: "s", query: "COMMIT", into: &buffer)
            FrontendEncoder.sync(into: &buffer)
        }
        #expect(harness.sent().toServer == "PSS")
        harness.server("1Z")
        #expect(harness.clientError() == "42P05")
    }

    @Test func whatAFailedOrSkippedMessageWouldHaveMadeIsTakenBack() {
        var harness = Harness()
        harness.client { buffer in
            FrontendEncoder.parse(statement: "bad", query: "SELECT nothing", into: &buffer)
            FrontendEncoder.parse(statement: "skipped", query: "SELECT 1", into: &buffer)
            FrontendEncoder.sync(into: &buffer)
        }
        harness.server("EZ")
        _ = harness.sent()
        // Neither exists on the server: Bind is refused by Palisade, and the names are free again.
        harness.client { buffer in
            FrontendEncoder.bind(portal: "", statement: "skipped", parameters: [], into: &buffer)
            FrontendEncoder.sync(into: &buffer)
        }
        #expect(harness.clientError() == "26000")
        harness.client { buffer in
            FrontendEncoder.parse(statement: "bad", query: "SELECT 2", into: &buffer)
            FrontendEncoder.sync(into: &buffer)
        }
        #expect(harness.sent().toServer == "PS")
    }

    @Test func aClaimsStatementTheServerSkippedIsPreparedAgain() {
        var harness = Harness()
        harness.client { buffer in
            FrontendEncoder.parse(statement: "bad", query: "SELECT nothing", into: &buffer)
            FrontendEncoder.bind(portal: "", statement: "bad", parameters: [], into: &buffer)
            FrontendEncoder.sync(into: &buffer)
        }
        #expect(harness.sent().toServer == "P" + "PBE" + "B" + "S")
        harness.server("EZ")
        _ = harness.sent()
        harness.client { FrontendEncoder.query("SELECT 1", into: &$0) }
        #expect(harness.sent().toServer == "PBE" + "PBDES")
    }
}

/// The relay's bounds on what one client makes it hold (seventeenth red team).
@Suite struct QueryRelayBoundsTests {
    @Test func answersOwedBehindTheServerHoldTheClientAndAskTheServerToFlush() {
        var harness = QueryRelayTests.Harness()
        harness.client { FrontendEncoder.parse(statement: "", query: "SELECT 1", into: &$0) }
        _ = harness.sent()
        // Closes of a portal that does not exist are answered by Palisade, behind the ParseComplete.
        for _ in 1..<QueryRelay.mostOutstanding - 1 { harness.client { FrontendEncoder.close(portal: "nope", into: &$0) } }
        #expect(!harness.relay.isHoldingClientMessages)
        #expect(harness.sent() == ("", ""))
        harness.client { FrontendEncoder.close(portal: "nope", into: &$0) }
        #expect(harness.relay.isHoldingClientMessages)
        // One Flush, however many more messages come before the session stops reading.
        harness.client { FrontendEncoder.close(portal: "nope", into: &$0) }
        #expect(harness.sent() == ("H", ""))
        harness.server("1")
        #expect(!harness.relay.isHoldingClientMessages)
        let answered = harness.sent().toClient
        #expect(answered.first == "1" && answered.dropFirst().allSatisfy { $0 == "3" } && answered.count == QueryRelay.mostOutstanding + 1)
    }

    @Test func namedStatementsHoldAtMostTheirTextBound() {
        var harness = QueryRelayTests.Harness()
        let text = "SELECT '" + String(repeating: "x", count: 60_000) + "'"
        let fits = QueryRelay.mostNamedTextBytes / text.utf8.count
        harness.client {
            for index in 0..<fits { FrontendEncoder.parse(statement: "s\(index)", query: text, into: &$0) }
            FrontendEncoder.sync(into: &$0)
        }
        harness.server(String(repeating: "1", count: fits) + "Z")
        #expect(harness.clientError() == nil)
        harness.client {
            FrontendEncoder.parse(statement: "one-more", query: text, into: &$0)
            FrontendEncoder.sync(into: &$0)
        }
        harness.server("Z")
        #expect(harness.clientError() == "54000")
        // Closing one makes room again.
        harness.client {
            FrontendEncoder.close(statement: "s0", into: &$0)
            FrontendEncoder.parse(statement: "one-more", query: text, into: &$0)
            FrontendEncoder.sync(into: &$0)
        }
        harness.server("31Z")
        #expect(harness.clientError() == nil)
    }

    /// A reload that narrows a policy reaches statements prepared before it (seventeenth red team).
    @Test func aStatementPreparedBeforeAReloadIsDecidedAgainAtItsNextBind() {
        final class Reload: @unchecked Sendable { var generation = 0 }
        let reload = Reload()
        var harness = QueryRelayTests.Harness()
        harness.relay = QueryRelay(claims: nil, statementTimeoutMilliseconds: 1000, decide: { sql, _, _, _, _ in
            if reload.generation > 0, sql.contains("customers") {
                return (Decision(rule: .relationSchema, message: "no", policyVersion: "2"), ServerNotice(sqlstate: "42501", message: "Palisade: no"))
            }
            return (Decision(rule: .query, message: "ok", policyVersion: "\(reload.generation + 1)"), nil)
        }, policyGeneration: { reload.generation })
        harness.client {
            FrontendEncoder.parse(statement: "s", query: "SELECT count(*) FROM customers", into: &$0)
            FrontendEncoder.bind(portal: "", statement: "s", parameters: [], into: &$0)
            FrontendEncoder.execute(portal: "", into: &$0)
            FrontendEncoder.sync(into: &$0)
        }
        harness.server("12CZ")
        #expect(harness.clientError() == nil)
        reload.generation = 1
        harness.client {
            FrontendEncoder.bind(portal: "", statement: "s", parameters: [], into: &$0)
            FrontendEncoder.execute(portal: "", into: &$0)
            FrontendEncoder.sync(into: &$0)
        }
        #expect(harness.sentToServer().map { if case .sync = $0 { "S" } else { "other" } } == ["S"])
        harness.server("Z")
        #expect(harness.clientError() == "42501")
    }

    @Test func anErrorBeforeTheSyncIsReadSkipsWhatComesUntilIt() {
        var harness = QueryRelayTests.Harness()
        harness.client {
            FrontendEncoder.parse(statement: "", query: "SELECT 1/0", into: &$0)
            FrontendEncoder.bind(portal: "", statement: "", parameters: [], into: &$0)
            FrontendEncoder.execute(portal: "", into: &$0)
        }
        _ = harness.sent()
        var error = ByteBuffer()
        BackendEncoder.error(ServerNotice(sqlstate: "22012", message: "division by zero"), into: &error)
        for frame in QueryRelayTests.Harness.frames(error) { harness.relay.backendFrame(frame, into: &harness.output) }
        // The rest of the pipeline comes after the error: the server skips it, and so does Palisade.
        harness.client {
            QueryRelayTests.Harness.run("SELECT 2", into: &$0)
            FrontendEncoder.sync(into: &$0)
        }
        #expect(harness.sent() == ("S", "E"))
        harness.server("Z")
        #expect(harness.sent().toClient == "Z")
        #expect(harness.relay.isIdle)
    }

    @Test func parametersAnAggregateKeepsAreHeldAtEachBind() {
        var harness = QueryRelayTests.Harness()
        harness.relay = QueryRelay(claims: nil, statementTimeoutMilliseconds: 1000, decide: { _, _, _ in
            var decision = Decision(rule: .query, message: "ok", policyVersion: "")
            decision.boundParameters = [1]
            return (decision, nil)
        })
        harness.client {
            FrontendEncoder.parse(statement: "s", query: "SELECT string_agg(name, $1) FROM users WHERE team_id = $2", into: &$0)
            FrontendEncoder.bind(portal: "", statement: "s", parameters: [", ", String(repeating: "7", count: 1000)], into: &$0)
            FrontendEncoder.sync(into: &$0)
        }
        harness.server("12Z")
        #expect(harness.clientError() == nil, "a short delimiter, whatever the other parameter")
        harness.client {
            FrontendEncoder.bind(portal: "", statement: "s", parameters: [String(repeating: "x", count: Decision.maxBoundParameterBytes + 1), "1"], into: &$0)
            FrontendEncoder.sync(into: &$0)
        }
        #expect(harness.output.resultLimits.map(\.rule) == [.argumentLimit])
        harness.server("Z")
        #expect(harness.clientError() == "54000")
        // A Bind whose values are cut short cannot be measured: the session ends, as for an estimate's.
        var cut = ByteBuffer()
        cut.writeCString("")
        cut.writeCString("s")
        cut.writeInteger(Int16(0))
        cut.writeInteger(Int16(1))
        cut.writeInteger(Int32(1000))
        cut.writeString("xyz")
        harness.relay.clientFrame(Frame(type: UInt8(ascii: "B"), body: cut), into: &harness.output)
        #expect(harness.output.close)
    }

    @Test func aSessionHoldsAFewNamedPortals() {
        var harness = QueryRelayTests.Harness()
        harness.relay = QueryRelay(claims: nil, statementTimeoutMilliseconds: 1000, decide: QueryRelayTests.decide)
        harness.client {
            FrontendEncoder.parse(statement: "s", query: "SELECT 1", into: &$0)
            for index in 0..<QueryRelay.mostNamedPortals { FrontendEncoder.bind(portal: "p\(index)", statement: "s", parameters: [], into: &$0) }
            FrontendEncoder.sync(into: &$0)
        }
        #expect(harness.clientError() == nil)
        harness.client {
            FrontendEncoder.bind(portal: "one more", statement: "s", parameters: [], into: &$0)
            FrontendEncoder.sync(into: &$0)
        }
        harness.server("1" + String(repeating: "2", count: QueryRelay.mostNamedPortals) + "ZZ", status: "T")
        #expect(harness.clientError() == "54000")
    }

    @Test func rebindingANamedPortalClosesTheServersEarlierOne() {
        var harness = QueryRelayTests.Harness()
        harness.client {
            FrontendEncoder.parse(statement: "s", query: "SELECT 1", into: &$0)
            FrontendEncoder.bind(portal: "p", statement: "s", parameters: [], into: &$0)
            FrontendEncoder.bind(portal: "p", statement: "s", parameters: [], into: &$0)
            FrontendEncoder.sync(into: &$0)
        }
        let toServer = harness.sentToServer()
        let closes = toServer.filter { if case .close = $0 { true } else { false } }
        #expect(closes.count == 1)
        harness.server("1") // ParseComplete
        _ = harness.sent()
    }
}
