import NIOCore
import Testing
@testable import PalisadeProxy
import PostgresWire
import QueryPolicy

/// The result budget as the relay applies it: the server is asked for one row past the budget,
/// the rows past it are dropped, and 54000 takes the place of the answer's end.
@Suite struct ResultBudgetTests {
    typealias Harness = QueryRelayTests.Harness

    static func harness(maxRows: Int? = nil, maxBytes: Int? = nil) -> Harness {
        var harness = Harness()
        harness.relay = QueryRelay(claims: #"{"tenant_id":"acme"}"#, statementTimeoutMilliseconds: 1000,
                                   budget: ResultBudget(maxRows: maxRows, maxBytes: maxBytes), sessionID: "s1",
                                   decide: QueryRelayTests.decide)
        return harness
    }

    /// The row count of each Execute sent to the server.
    static func executeRowLimits(_ buffer: ByteBuffer) -> [Int32] {
        Harness.frames(buffer).filter { $0.type == UInt8(ascii: "E") }.map {
            $0.body.getInteger(at: $0.body.writerIndex - 4, as: Int32.self)!
        }
    }

    static func dataRow(bytes: Int) -> Frame {
        var body = ByteBuffer()
        body.writeInteger(Int16(1))
        body.writeInteger(Int32(bytes))
        body.writeRepeatingByte(UInt8(ascii: "x"), count: bytes)
        return Frame(type: UInt8(ascii: "D"), body: body)
    }

    @Test func usageCountsOnlyRelayedRowsAndNamesTheLimitPassed() {
        let budget = ResultBudget(maxRows: 2, maxBytes: 100)
        var usage = ResultBudget.Usage(request: 7)
        #expect(budget.admit(rowOf: 40, into: &usage))
        #expect(budget.admit(rowOf: 40, into: &usage))
        #expect(!budget.admit(rowOf: 1, into: &usage))
        #expect(usage == ResultBudget.Usage(request: 7, rows: 2, bytes: 80, exceeded: .resultRows))
        #expect(!budget.admit(rowOf: 1, into: &usage), "nothing more is relayed once past")

        var bytes = ResultBudget.Usage(request: 1)
        #expect(budget.admit(rowOf: 60, into: &bytes))
        #expect(!budget.admit(rowOf: 41, into: &bytes))
        #expect(bytes.exceeded == .resultBytes && bytes.rows == 1 && bytes.bytes == 60)
        let notice = budget.notice(for: bytes, sessionID: "s1")
        #expect(notice.sqlstate == "54000" && notice.detail == "rule limit.result-bytes; request s1-1")
        #expect(notice.hint?.contains("LIMIT") == true)
    }

    @Test func theServerIsAskedForOneRowPastWhatIsLeft() {
        let budget = ResultBudget(maxRows: 10)
        #expect(budget.serverRowLimit(requested: 0, used: .init(request: 1)) == 11)
        #expect(budget.serverRowLimit(requested: 5, used: .init(request: 1)) == nil, "a smaller fetch goes as asked")
        #expect(budget.serverRowLimit(requested: 50, used: .init(request: 1, rows: 8)) == 3)
        #expect(ResultBudget(maxBytes: 10).serverRowLimit(requested: 0, used: .init(request: 1)) == nil)
        #expect(budget.serverRowLimit(requested: -1, used: .init(request: 1)) == 11, "PostgreSQL reads a negative count as all rows")
        #expect(budget.serverRowLimit(requested: .min, used: .init(request: 1)) == 11)
    }

    /// Portals end with their transaction, and their usage with them: a client binding new portal
    /// names in one transaction after another leaves nothing behind.
    @Test func portalNamesAreForgottenWhenTheirTransactionEnds() {
        var harness = Harness()
        harness.relay = QueryRelay(claims: nil, statementTimeoutMilliseconds: 1000, budget: ResultBudget(maxRows: 10), sessionID: "s1",
                                   decide: QueryRelayTests.decide)
        harness.client {
            FrontendEncoder.parse(statement: "s", query: "SELECT 1", parameterTypes: [], into: &$0)
            FrontendEncoder.sync(into: &$0)
        }
        harness.server("1Z")
        _ = harness.sent()
        for round in 0..<50 {
            harness.client {
                FrontendEncoder.bind(portal: "portal \(round)", statement: "s", parameters: [], into: &$0)
                FrontendEncoder.sync(into: &$0)
            }
            #expect(harness.sent().toServer == "BS")
            harness.server("2Z")
        }
        #expect(harness.relay.heldNames == (statements: 1, portals: 0, usages: 0))
    }

    @Test func aSessionHoldsABoundedNumberOfNamedStatements() {
        var harness = Self.harness()
        harness.client {
            for index in 0..<QueryRelay.mostNamed { FrontendEncoder.parse(statement: "s\(index)", query: "SELECT 1", parameterTypes: [], into: &$0) }
            FrontendEncoder.parse(statement: "one more", query: "SELECT 1", parameterTypes: [], into: &$0)
            FrontendEncoder.sync(into: &$0)
        }
        harness.server(String(repeating: "1", count: QueryRelay.mostNamed))
        #expect(harness.clientError() == "54000")
        #expect(harness.relay.heldNames.statements == QueryRelay.mostNamed)
    }

    @Test func aSimpleQueryPastMaxRowsEndsWith54000AndTheNextQueryRuns() {
        var harness = Self.harness(maxRows: 2)
        harness.client { FrontendEncoder.query("SELECT * FROM big", into: &$0) }
        #expect(Self.executeRowLimits(harness.output.toBackend) == [0, 3], "the claims run whole; the query stops at 3 rows")
        _ = harness.sent()
        harness.server("12DC" + "12T")
        for _ in 0..<3 { harness.relay.backendFrame(Self.dataRow(bytes: 4), into: &harness.output) }
        harness.server("s")
        #expect(harness.output.resultLimits == [ResultLimitEvent(rule: .resultRows, request: 1, relayedRows: 2, relayedBytes: 2 * 15)])
        #expect(harness.sent().toClient == "TDDE")
        harness.server("Z")
        #expect(harness.sent().toClient == "Z")
        #expect(harness.relay.isIdle)

        harness.client { FrontendEncoder.query("SELECT 1", into: &$0) }
        _ = harness.sent()
        harness.server("2DC" + "12TDCZ")
        #expect(harness.sent().toClient == "TDCZ", "a fresh budget for the next query")
    }

    @Test func aResultWithExactlyMaxRowsIsRelayedWhole() {
        var harness = Self.harness(maxRows: 2)
        harness.client { FrontendEncoder.query("SELECT * FROM two", into: &$0) }
        _ = harness.sent()
        harness.server("12DC" + "12TDDCZ")
        #expect(harness.sent().toClient == "TDDCZ")
        #expect(harness.output.resultLimits.isEmpty)
    }

    @Test func rowsPastMaxBytesAreDroppedUntilTheEndThen54000() {
        // Each row is a 21-byte DataRow: two fit in 50 bytes.
        var harness = Self.harness(maxBytes: 50)
        harness.client { FrontendEncoder.query("SELECT * FROM wide", into: &$0) }
        _ = harness.sent()
        harness.server("12DC" + "12T")
        for _ in 0..<5 { harness.relay.backendFrame(Self.dataRow(bytes: 10), into: &harness.output) }
        harness.server("CZ")
        #expect(harness.sent().toClient == "TDDEZ")
    }

    /// A notice the server sends while it answers reaches the client as a row's bytes do: a
    /// one-row answer relayed a million of them, 160 MB, before they counted (sixteenth red team).
    @Test func noticesDuringAnAnswerCountTowardItsBytes() {
        var notice = ByteBuffer()
        notice.writeRepeatingByte(UInt8(ascii: "n"), count: 16)
        var harness = Self.harness(maxBytes: 50)
        harness.client { FrontendEncoder.query("SELECT count(to_tsquery('english', 'the')) FROM big", into: &$0) }
        _ = harness.sent()
        harness.server("12DC" + "12T")
        // Each notice is a 21-byte frame: two fit in 50 bytes, the rest and the row are dropped.
        for _ in 0..<1000 { harness.relay.backendFrame(Frame(type: UInt8(ascii: "N"), body: notice), into: &harness.output) }
        harness.relay.backendFrame(Self.dataRow(bytes: 4), into: &harness.output)
        harness.server("CZ")
        #expect(harness.output.resultLimits == [ResultLimitEvent(rule: .resultBytes, request: 1, relayedRows: 0, relayedBytes: 2 * 21)])
        #expect(harness.sent().toClient == "TNNEZ")
        // Outside an answer a notice is the server's to send.
        harness.server("N")
        #expect(harness.sent().toClient == "N")
    }

    @Test func anExtendedPipelinePastTheBudgetSkipsTheRestUpToSyncWhileTheServerRunsIt() {
        var harness = Self.harness(maxRows: 1)
        harness.client { buffer in
            Harness.run("SELECT * FROM big", into: &buffer)
            Harness.run("SELECT 2", into: &buffer)
            FrontendEncoder.sync(into: &buffer)
        }
        #expect(Self.executeRowLimits(harness.output.toBackend) == [0, 2, 2])
        _ = harness.sent()
        // Claims, then the first query's answer cut after one row; the second query's answer is dropped.
        harness.server("1" + "12DC" + "2" + "DDs" + "12DC")
        #expect(harness.sent().toClient == "12DE")
        harness.server("Z")
        #expect(harness.sent().toClient == "Z")
    }

    @Test func aClientFetchingInBatchesSharesOnePortalBudget() {
        var harness = Self.harness(maxRows: 3)
        harness.client { buffer in
            FrontendEncoder.parse(statement: "", query: "SELECT * FROM big", into: &buffer)
            FrontendEncoder.bind(portal: "c", statement: "", parameters: [], into: &buffer)
            FrontendEncoder.execute(portal: "c", maxRows: 2, into: &buffer)
            buffer.writeFrame("H") { _ in }
        }
        #expect(Self.executeRowLimits(harness.output.toBackend) == [0, 2])
        _ = harness.sent()
        harness.server("1" + "12DC" + "2DDs")
        #expect(harness.sent().toClient == "12DDs")
        harness.client { buffer in
            FrontendEncoder.execute(portal: "c", maxRows: 2, into: &buffer)
            FrontendEncoder.sync(into: &buffer)
        }
        #expect(Self.executeRowLimits(harness.output.toBackend) == [2], "one row left, and one past it")
        _ = harness.sent()
        harness.server("DDs")
        #expect(harness.sent().toClient == "DE")
        harness.server("Z")
        #expect(harness.sent().toClient == "Z")
        // Executing the cut portal again is refused without reaching the server: its transaction
        // ended at the Sync, and the portal with it.
        harness.client { buffer in
            FrontendEncoder.execute(portal: "c", into: &buffer)
            FrontendEncoder.sync(into: &buffer)
        }
        #expect(harness.sent() == ("S", "E"))
        harness.server("Z")
        #expect(harness.sent().toClient == "Z")
    }
}
