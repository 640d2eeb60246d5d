import NIOCore
import Testing
@testable import PalisadeProxy
import PostgresWire
import QueryPolicy

/// The cost budget as the relay applies it: a query flagged by the policy is first planned with
/// EXPLAIN in its own transaction, the client's later messages wait, and the query runs or is
/// refused in its place.
@Suite struct CostBudgetRelayTests {
    typealias Harness = QueryRelayTests.Harness

    /// Texts with "JOIN" need an estimate, as the engine flags joins.
    static func decide(_ sql: String, _ kind: QueryRelay.MessageKind, _ parameterTypes: [UInt32]) -> (Decision, ServerNotice?) {
        var (decision, notice) = QueryRelayTests.decide(sql, kind, parameterTypes)
        if decision.rule == .query, sql.contains("JOIN") { decision.costBudget = CostBudget(maxCost: 1000, maxEstimatedRows: 5000) }
        return (decision, notice)
    }

    static func harness() -> Harness {
        var harness = Harness()
        harness.relay = QueryRelay(claims: #"{"tenant_id":"acme"}"#, statementTimeoutMilliseconds: 1000,
                                   sessionID: "s1", decide: decide)
        return harness
    }

    /// EXPLAIN (FORMAT JSON)'s one row, as PostgreSQL 15 writes it (pretty-printed, children after their parent's fields).
    static func explainRow(cost: Double, rows: Double, childRows: Double = 1) -> Frame {
        let json = """
        [
          {
            "Plan": {
              "Node Type": "Aggregate",
              "Startup Cost": 1.00,
              "Total Cost": \(cost),
              "Plan Rows": \(rows),
              "Plan Width": 8,
              "Plans": [
                {
                  "Node Type": "Nested Loop",
                  "Alias": "\\"Total Cost\\": 99999999",
                  "Total Cost": 5.00,
                  "Plan Rows": \(childRows),
                  "Plan Width": 0
                }
              ]
            }
          }
        ]
        """
        var body = ByteBuffer()
        body.writeInteger(Int16(1))
        body.writeInteger(Int32(json.utf8.count))
        body.writeString(json)
        return Frame(type: UInt8(ascii: "D"), body: body)
    }

    @Test func theEstimateReadsTheTopCostAndTheLargestRowsOfAnyNode() {
        var buffer = Self.explainRow(cost: 12.5, rows: 1, childRows: 4e9).body
        buffer.moveReaderIndex(forwardBy: 6)
        let estimate = CostBudget.estimate(fromExplainJSON: buffer.readableBytesView)
        #expect(estimate == CostBudget.Estimate(totalCost: 12.5, rows: 4e9), "a quoted key inside a value is not a key")
        let budget = CostBudget(maxCost: 1000, maxEstimatedRows: 5000)
        #expect(budget.violation(of: estimate!) == .estimatedRows)
        #expect(budget.violation(of: .init(totalCost: 1e12, rows: 1)) == .costLimit)
        #expect(budget.violation(of: .init(totalCost: .nan, rows: 1)) == .costLimit, "what cannot be compared is over")
        #expect(budget.violation(of: .init(totalCost: 1000, rows: 5000)) == nil)
        #expect(CostBudget.estimate(fromExplainJSON: Array("[{\"Plan\": {}}]".utf8)) == nil)
        // The client is told the limit, never the estimate (it counts other tenants' rows); the audit record keeps it.
        let overCost = CostBudget.Estimate(totalCost: 1.5e12, rows: 25_270_729)
        for rule in [Rule.costLimit, .estimatedRows] {
            let message = budget.message(for: rule, estimate: overCost)
            #expect(!message.contains("1.5e+12") && !message.contains("25270729") && !message.contains("2.53e+07"))
            #expect(message.contains(rule == .costLimit ? "max_cost of 1000" : "max_estimated_rows of 5000"))
        }
        #expect(budget.auditMessage(for: .costLimit, estimate: overCost).contains("cost 1.5e+12, 25270729 rows"))
    }

    @Test func aSimpleQueryWithinBudgetRunsAfterItsEstimate() {
        var harness = Self.harness()
        harness.client { FrontendEncoder.query("SELECT * FROM a JOIN b ON a.id = b.id", into: &$0) }
        let explain = harness.sentToServer()
        #expect(explain.count == 7, "claims Parse/Bind/Execute, then the EXPLAIN's Parse/Bind/Execute and a Flush, no Sync")
        guard case .parse(_, let text, _) = explain[3] else { Issue.record("no Parse"); return }
        #expect(text == "EXPLAIN (VERBOSE, FORMAT JSON) SELECT * FROM a JOIN b ON a.id = b.id")
        #expect(harness.relay.isHoldingClientMessages)

        harness.client { FrontendEncoder.query("SELECT 2", into: &$0) }
        #expect(harness.output.toBackend.readableBytes == 0, "the next query waits for the estimate")
        harness.server("12C" + "12")
        harness.relay.backendFrame(Self.explainRow(cost: 10, rows: 100), into: &harness.output)
        harness.server("C")
        #expect(!harness.relay.isHoldingClientMessages)
        let (toServer, toClient) = harness.sent()
        #expect(toServer == "PBDES" + "CBE" + "PBDES", "the query in the estimate's transaction, then the held one with its claims")
        #expect(toClient == "", "nothing of the estimate reaches the client")
    }

    @Test func aSimpleQueryOverBudgetIsRefusedInItsPlaceAndAudited() {
        var harness = Self.harness()
        harness.client { FrontendEncoder.query("SELECT * FROM a JOIN b ON true", into: &$0) }
        harness.client { FrontendEncoder.query("SELECT 2", into: &$0) }
        _ = harness.sent()
        harness.server("12C" + "12")
        harness.relay.backendFrame(Self.explainRow(cost: 2e9, rows: 1e12), into: &harness.output)
        harness.server("C")
        #expect(harness.output.resultLimits.map(\.rule) == [.costLimit])
        #expect(harness.output.resultLimits.first?.request == 1)
        let refusal = Harness.frames(harness.output.toClient).first { $0.type == UInt8(ascii: "E") }.map { ServerNotice($0.body) }
        #expect(refusal?.sqlstate == "54000" && refusal?.detail == "rule limit.cost; request s1-1")
        #expect(refusal?.hint?.contains("JOIN") == true)
        let (toServer, toClient) = harness.sent()
        #expect(toServer == "S" + "CBE" + "PBDES", "a Sync ends the estimate's transaction; the held query goes on")
        #expect(toClient == "E")
        harness.server("Z")
        #expect(harness.sent().toClient == "Z", "the refusal's answer ends with the server's ReadyForQuery")
        harness.server("32C12TDCZ")
        #expect(harness.sent().toClient == "TDCZ")
        #expect(harness.relay.isIdle)
    }

    @Test func aBindIsEstimatedWithItsOwnParametersAndHeld() {
        var harness = Self.harness()
        harness.client {
            FrontendEncoder.parse(statement: "q", query: "SELECT * FROM a JOIN b ON a.n < $1", parameterTypes: [23], into: &$0)
            FrontendEncoder.bind(portal: "", statement: "q", parameters: ["1000000"], into: &$0)
            FrontendEncoder.execute(portal: "", into: &$0)
            FrontendEncoder.sync(into: &$0)
        }
        let sent = harness.sentToServer()
        // Parse q; claims Parse/Bind/Execute; Close portal, Close statement, Parse, Bind, Execute of the estimate.
        #expect(sent.count == 10, "and a Flush")
        guard case .parse(let name, let text, let types) = sent[6], case .bind(let portal, let statement) = sent[7] else {
            Issue.record("no estimate"); return
        }
        #expect(name == "palisade_estimate" && types == [23] && text.hasPrefix("EXPLAIN (VERBOSE, FORMAT JSON) SELECT"))
        #expect(portal == "palisade_estimate" && statement == "palisade_estimate")
        #expect(harness.relay.isHoldingClientMessages, "the Execute and Sync wait")

        harness.server("1" + "12C" + "33" + "12")
        harness.relay.backendFrame(Self.explainRow(cost: 10, rows: 10, childRows: 1e7), into: &harness.output)
        harness.server("C")
        #expect(harness.output.resultLimits.map(\.rule) == [.estimatedRows])
        let (toServer, toClient) = harness.sent()
        #expect(toServer == "S", "the Bind and Execute are dropped up to the Sync, which goes on")
        #expect(toClient == "1E")
        harness.server("Z")
        #expect(harness.sent().toClient == "Z")
        #expect(harness.relay.isIdle)
    }

    @Test func aFailedEstimateStandsForTheQuerysError() {
        var harness = Self.harness()
        harness.client { FrontendEncoder.query("SELECT * FROM a JOIN missing ON true", into: &$0) }
        _ = harness.sent()
        harness.server("12C" + "E")
        #expect(!harness.relay.isHoldingClientMessages)
        let (toServer, toClient) = harness.sent()
        #expect(toServer == "S" && toClient == "E")
        harness.server("Z")
        #expect(harness.sent().toClient == "Z")
        #expect(harness.relay.isIdle)
    }

    @Test func simpleShapesAreNotEstimated() {
        var harness = Self.harness()
        harness.client { FrontendEncoder.query("SELECT abalance FROM pgbench_accounts WHERE aid = 1", into: &$0) }
        #expect(!harness.relay.isHoldingClientMessages)
        #expect(harness.sent().toServer == "PBEPBDES")
    }

    /// An error in an earlier Sync's messages is not the estimate's: the estimate runs after that
    /// Sync, and the held Bind with it. (Taken for the estimate's, the error once released the held
    /// messages, whose own estimate then read the first one's plan: a query over budget ran.)
    @Test func anEarlierSegmentsErrorLeavesTheEstimateToRun() {
        var harness = Self.harness()
        harness.client {
            FrontendEncoder.parse(statement: "", query: "SELECT 1/0", parameterTypes: [], into: &$0)
            FrontendEncoder.bind(portal: "", statement: "", parameters: [], into: &$0)
            FrontendEncoder.execute(portal: "", into: &$0)
            FrontendEncoder.sync(into: &$0)
            FrontendEncoder.parse(statement: "j", query: "SELECT * FROM a JOIN b ON true", parameterTypes: [], into: &$0)
            FrontendEncoder.bind(portal: "", statement: "j", parameters: [], into: &$0)
            FrontendEncoder.execute(portal: "", into: &$0)
            FrontendEncoder.sync(into: &$0)
        }
        #expect(harness.sent().toServer == "PPBEBES" + "PCBECCPBEH", "the first segment, then Parse j and the estimate of its Bind")
        harness.server("112CE")
        #expect(harness.relay.isHoldingClientMessages, "the error is the first segment's")
        harness.server("Z")
        #expect(harness.sent().toClient == "1EZ")
        harness.server("1" + "32C" + "33" + "12")
        harness.relay.backendFrame(Self.explainRow(cost: 2e9, rows: 1e12), into: &harness.output)
        harness.server("C")
        #expect(harness.output.resultLimits.map(\.rule) == [.costLimit], "the estimate read is the join's own")
        let (toServer, toClient) = harness.sent()
        #expect(toServer == "S" && toClient == "1E", "refused in its place: its Bind and Execute are skipped up to the Sync")
        harness.server("Z")
        #expect(harness.sent().toClient == "Z")
        #expect(harness.relay.isIdle)
    }

    /// An answer cut at max_rows skips the client's messages up to Sync; an estimate already sent for
    /// one of them answers into that silence, and the Sync it held goes on, so the session does not
    /// wait forever (holding its transaction's locks).
    @Test func anAnswerCutWhileAnEstimateIsOutGoesOnToTheSync() {
        var harness = Harness()
        harness.relay = QueryRelay(claims: #"{"tenant_id":"acme"}"#, statementTimeoutMilliseconds: 1000,
                                   budget: ResultBudget(maxRows: 2), sessionID: "s1", decide: Self.decide)
        harness.client {
            FrontendEncoder.parse(statement: "", query: "SELECT id FROM big", parameterTypes: [], into: &$0)
            FrontendEncoder.bind(portal: "", statement: "", parameters: [], into: &$0)
            FrontendEncoder.execute(portal: "", into: &$0)
            FrontendEncoder.parse(statement: "j", query: "SELECT * FROM a JOIN b ON true", parameterTypes: [], into: &$0)
            FrontendEncoder.bind(portal: "", statement: "j", parameters: [], into: &$0)
            FrontendEncoder.execute(portal: "", into: &$0)
            FrontendEncoder.sync(into: &$0)
        }
        _ = harness.sent()
        #expect(harness.relay.isHoldingClientMessages)
        harness.server("112C2" + "DDD" + "s")
        #expect(!harness.relay.isHoldingClientMessages, "the estimated Bind is skipped with the rest")
        let (toServer, toClient) = harness.sent()
        #expect(toServer == "S", "the held Sync goes on")
        #expect(toClient == "12DDE")
        harness.server("1" + "33" + "12" + "DC" + "Z")
        #expect(harness.sent().toClient == "Z", "the estimate's answers are dropped; its ReadyForQuery ends the answer")
        #expect(harness.relay.isIdle)
    }
}
