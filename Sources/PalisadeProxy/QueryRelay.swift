import NIOCore
import PostgresWire
import QueryPolicy

/// The query phase of one client session, as a value that consumes messages and returns bytes to
/// send: the channel handlers only execute what it returns.
///
/// Every message forwarded to the server leaves an expectation in `pending`, in order. Backend
/// responses are matched against it, so a denial can be answered at exactly its place in a
/// pipeline: after the responses to everything forwarded before it. Messages Palisade adds itself
/// (the claims statement, the extended-protocol form of a simple query) are expectations whose
/// responses are not relayed.
public struct QueryRelay {
    public typealias Decide = (_ sql: String, _ kind: MessageKind) -> (Decision, ServerNotice?)

    /// Which client message carried the text, for decisions and their records.
    public enum MessageKind: String, Sendable {
        case simpleQuery = "Q"
        case parse = "P"
        case bind = "B"
        case execute = "E"
        case functionCall = "F"
        case protocolMessage = "?"
    }

    /// Bytes to send, accumulated across messages so that one read becomes one write each way.
    public struct Output {
        public var toBackend: ByteBuffer
        public var toClient: ByteBuffer
        /// End the session after sending `toClient`.
        public var close = false
        /// Answers cut at the result budget, for the session to audit and count.
        public var resultLimits: [ResultLimitEvent] = []

        public init(allocator: ByteBufferAllocator = ByteBufferAllocator()) {
            toBackend = allocator.buffer(capacity: 512)
            toClient = allocator.buffer(capacity: 2048)
        }
    }

    enum Expectation {
        case parseComplete(relay: Bool)
        case bindComplete(relay: Bool)
        /// Describe: a statement's answer starts with ParameterDescription. A simple query's client
        /// never sees NoData, so the Describe Palisade adds for one does not relay it.
        case description(relay: Bool, ofStatement: Bool, relaysNoData: Bool)
        case execution(relay: Bool)
        /// A relayed execution whose rows count against the result budget of `portal`.
        case limitedExecution(portal: String)
        case closeComplete(relay: Bool)
        case readyForQuery
        /// What Palisade answers itself (a refusal, or what the server answers to empty text) once
        /// everything before it is answered.
        case answer(ByteBuffer, endsWithReadyForQuery: Bool)
    }

    /// What an admitted prepared statement or portal holds. Empty text (only white space or
    /// comments, as JDBC's Connection.isValid sends) is no statement: Palisade answers for it as
    /// the server would, and it never reaches the server.
    enum Admitted {
        case query
        case transactionControl
        case empty
    }

    private let decide: Decide
    /// The verified claims (JSON) set at the start of every transaction, or nil for none.
    private let claims: String?
    /// The profile's statement_timeout, set with the claims (as the server reads it, e.g. "30000ms").
    private let statementTimeout: String
    private var pending: [Expectation] = []
    private var pendingHead = 0
    /// After a refusal in the extended protocol, the client's messages up to Sync are dropped,
    /// as the server itself drops them after an error.
    private var discardingUntilSync = false
    public private(set) var transactionStatus: TransactionStatus = .idle
    /// Admitted prepared statements and bound portals.
    private var statements: [String: Admitted] = [:]
    private var portals: [String: Admitted] = [:]
    private var claimsStatementPrepared = false
    private var claimsSetInTransaction = false
    private let budget: ResultBudget
    /// For the request ids of result-limit errors: "session-N", N counting decisions as the session does.
    private let sessionID: String
    private var decisions = 0
    /// With a budget: the request number that admitted each prepared statement, and each portal's usage.
    private var statementRequests: [String: Int] = [:]
    private var portalUsage: [String: ResultBudget.Usage] = [:]
    /// After an answer cut at the budget, the server's answers up to ReadyForQuery are dropped: it
    /// ran on, but the client was told of an error and expects nothing more before ReadyForQuery.
    private var silencedUntilReadyForQuery = false

    static let claimsStatement = "palisade_claims"
    static let claimsQuery =
        "SELECT pg_catalog.set_config('\(Policy.claimSetting)', $1, true), pg_catalog.set_config('statement_timeout', $2, true)"

    public init(claims: String?, statementTimeoutMilliseconds: Int, budget: ResultBudget = ResultBudget(), sessionID: String = "",
                decide: @escaping Decide) {
        self.claims = claims
        statementTimeout = "\(statementTimeoutMilliseconds)ms"
        self.budget = budget
        self.sessionID = sessionID
        self.decide = decide
    }

    public var isIdle: Bool { pendingHead == pending.count }

    // MARK: - Client messages

    public mutating func clientFrame(_ frame: Frame, into output: inout Output) {
        let message: FrontendMessage
        do {
            message = try FrontendMessage(frame)
        } catch {
            return protocolViolation("\(error)", into: &output)
        }
        if discardingUntilSync {
            switch message {
            case .sync: discardingUntilSync = false
            case .terminate: output.close = true; return
            default: return
            }
        }
        switch message {
        case .query(let sql):
            decisions += 1
            let (decision, notice) = decide(sql, .simpleQuery)
            if decision.rule == .empty {
                answer(endsWithReadyForQuery: true, into: &output) { BackendEncoder.bodiless("I", into: &$0) }
            } else if let notice {
                refuse(notice, endsWithReadyForQuery: true, output: &output)
            } else {
                simpleQuery(sql, isTransactionControl: decision.rule == .transactionControl, into: &output)
            }
        case .parse(let statement, let sql):
            decisions += 1
            if !budget.isUnlimited { statementRequests[statement] = decisions }
            let (decision, notice) = decide(sql, .parse)
            if decision.rule == .empty {
                statements[statement] = .empty
                answer(into: &output) { BackendEncoder.bodiless("1", into: &$0) }
            } else if let notice {
                statements[statement] = nil
                refuseInPipeline(notice, output: &output)
            } else {
                statements[statement] = decision.rule == .transactionControl ? .transactionControl : .query
                forward(frame, expecting: .parseComplete(relay: true), into: &output)
            }
        case .bind(let portal, let statement):
            guard let admitted = statements[statement] else {
                return refuseInPipeline(notAdmitted("prepared statement", statement), output: &output)
            }
            portals[portal] = admitted
            switch admitted {
            case .empty: return answer(into: &output) { BackendEncoder.bodiless("2", into: &$0) }
            case .query:
                setClaimsIfNeeded(into: &output)
                if !budget.isUnlimited { portalUsage[portal] = ResultBudget.Usage(request: statementRequests[statement] ?? 0) }
            case .transactionControl: break
            }
            forward(frame, expecting: .bindComplete(relay: true), into: &output)
        case .execute(let portal):
            guard let admitted = portals[portal] else {
                return refuseInPipeline(notAdmitted("portal", portal), output: &output)
            }
            switch admitted {
            case .empty: return answer(into: &output) { BackendEncoder.bodiless("I", into: &$0) }
            case .query: setClaimsIfNeeded(into: &output)
            case .transactionControl: break
            }
            if admitted == .query, !budget.isUnlimited { return executeWithinBudget(frame, portal: portal, into: &output) }
            forward(frame, expecting: .execution(relay: true), into: &output)
        case .describe(let kind, let name):
            let ofStatement = kind == UInt8(ascii: "S")
            if (ofStatement ? statements[name] : portals[name]) == .empty {
                return answer(into: &output) { buffer in
                    if ofStatement { BackendEncoder.noParameters(into: &buffer) }
                    BackendEncoder.bodiless("n", into: &buffer)
                }
            }
            forward(frame, expecting: .description(relay: true, ofStatement: ofStatement, relaysNoData: true), into: &output)
        case .close(let kind, let name):
            let closed = kind == UInt8(ascii: "S") ? statements.removeValue(forKey: name) : portals.removeValue(forKey: name)
            if kind == UInt8(ascii: "S") { statementRequests[name] = nil } else { portalUsage[name] = nil }
            if closed == .empty { return answer(into: &output) { BackendEncoder.bodiless("3", into: &$0) } }
            forward(frame, expecting: .closeComplete(relay: true), into: &output)
        case .flush:
            output.toBackend.writeFrame(frame)
        case .sync:
            forward(frame, expecting: .readyForQuery, into: &output)
        case .terminate:
            FrontendEncoder.terminate(into: &output.toBackend)
            output.close = true
        case .functionCall:
            decisions += 1
            let (_, notice) = decide("", .functionCall)
            refuse(notice ?? Self.functionCallNotice, endsWithReadyForQuery: true, output: &output)
        case .copyData, .copyDone, .copyFail:
            // As the server does outside COPY mode: accept and ignore. COPY itself never starts.
            break
        case .password:
            return protocolViolation("unexpected password message after authentication", into: &output)
        case .unknown(let type):
            return protocolViolation("invalid frontend message type \(type)", into: &output)
        }
    }

    static let functionCallNotice = ServerNotice(
        sqlstate: "42501", message: "Palisade does not admit fast-path function calls",
        hint: "Call functions from a SELECT statement.")

    private func notAdmitted(_ what: String, _ name: String) -> ServerNotice {
        ServerNotice(sqlstate: what == "portal" ? "34000" : "26000",
                     message: "\(what) \"\(name)\" was not admitted by Palisade",
                     hint: "Parse the statement first; only statements Palisade admitted can be bound and executed.")
    }

    /// A simple query runs as Parse/Bind/Describe/Execute/Sync in one write, so that the claims
    /// statement can share its implicit transaction with a bound parameter.
    private mutating func simpleQuery(_ sql: String, isTransactionControl: Bool, into output: inout Output) {
        if !isTransactionControl { setClaimsIfNeeded(into: &output) }
        FrontendEncoder.parse(statement: "", query: sql, into: &output.toBackend)
        expect(.parseComplete(relay: false))
        FrontendEncoder.bind(portal: "", statement: "", parameters: [], into: &output.toBackend)
        expect(.bindComplete(relay: false))
        FrontendEncoder.describePortal("", into: &output.toBackend)
        expect(.description(relay: true, ofStatement: false, relaysNoData: false))
        if isTransactionControl || budget.isUnlimited {
            FrontendEncoder.execute(portal: "", into: &output.toBackend)
            expect(.execution(relay: true))
        } else {
            portalUsage[""] = ResultBudget.Usage(request: decisions)
            let limit = budget.serverRowLimit(requested: 0, used: portalUsage[""]!) ?? 0
            FrontendEncoder.execute(portal: "", maxRows: limit, into: &output.toBackend)
            expect(.limitedExecution(portal: ""))
        }
        FrontendEncoder.sync(into: &output.toBackend)
        expect(.readyForQuery)
        // A simple query destroys the unnamed statement and portal, as on the server.
        statements[""] = nil
        portals[""] = nil
    }

    /// Sets the claims for the transaction the next statement runs in, once per transaction.
    private mutating func setClaimsIfNeeded(into output: inout Output) {
        guard let claims, !claimsSetInTransaction, transactionStatus != .failed else { return }
        if !claimsStatementPrepared {
            FrontendEncoder.parse(statement: Self.claimsStatement, query: Self.claimsQuery, into: &output.toBackend)
            expect(.parseComplete(relay: false))
            claimsStatementPrepared = true
        }
        FrontendEncoder.bind(portal: Self.claimsStatement, statement: Self.claimsStatement, parameters: [claims, statementTimeout],
                             into: &output.toBackend)
        expect(.bindComplete(relay: false))
        FrontendEncoder.execute(portal: Self.claimsStatement, into: &output.toBackend)
        expect(.execution(relay: false))
        // No Close: a portal ends with its transaction, and claims are bound once per transaction.
        claimsSetInTransaction = true
    }

    private mutating func forward(_ frame: Frame, expecting expectation: Expectation, into output: inout Output) {
        output.toBackend.writeFrame(frame)
        expect(expectation)
    }

    private mutating func expect(_ expectation: Expectation) {
        pending.append(expectation)
    }

    private mutating func refuse(_ notice: ServerNotice, endsWithReadyForQuery: Bool, output: inout Output) {
        answer(endsWithReadyForQuery: endsWithReadyForQuery, into: &output) { BackendEncoder.error(notice, into: &$0) }
    }

    /// Queues what Palisade answers itself, in its place after the server's answers to what came before.
    private mutating func answer(endsWithReadyForQuery: Bool = false, into output: inout Output, _ message: (inout ByteBuffer) -> Void) {
        var buffer = ByteBuffer()
        message(&buffer)
        expect(.answer(buffer, endsWithReadyForQuery: endsWithReadyForQuery))
        emitAnswersAtHead(into: &output)
    }

    private mutating func refuseInPipeline(_ notice: ServerNotice, output: inout Output) {
        discardingUntilSync = true
        refuse(notice, endsWithReadyForQuery: false, output: &output)
    }

    private mutating func protocolViolation(_ reason: String, into output: inout Output) {
        BackendEncoder.error(ServerNotice(severity: "FATAL", sqlstate: "08P01", message: reason), into: &output.toClient)
        FrontendEncoder.terminate(into: &output.toBackend)
        output.close = true
    }

    // MARK: - Server messages

    public mutating func backendFrame(_ frame: Frame, into output: inout Output) {
        if silencedUntilReadyForQuery {
            switch frame.type {
            case UInt8(ascii: "N"), UInt8(ascii: "S"), UInt8(ascii: "A"): break
            case UInt8(ascii: "Z"): silencedUntilReadyForQuery = false
            default: return
            }
        }
        switch frame.type {
        case UInt8(ascii: "N"), UInt8(ascii: "S"), UInt8(ascii: "A"):
            // Notices, parameter changes and notifications may come at any time.
            output.toClient.writeFrame(frame)
            return
        case UInt8(ascii: "E"):
            output.toClient.writeFrame(frame)
            // The server skips everything up to the next Sync after an error; so do the expectations.
            while let head = head, !head.isReadyForQuery { pendingHead += 1 }
            return
        case UInt8(ascii: "Z"):
            guard case .readyForQuery? = head, let status = frame.body.getInteger(at: frame.body.readerIndex, as: UInt8.self),
                  let transactionStatus = TransactionStatus(rawValue: status)
            else { return serverProtocolViolation(frame, into: &output) }
            pop()
            self.transactionStatus = transactionStatus
            if transactionStatus == .idle { claimsSetInTransaction = false }
            output.toClient.writeFrame(frame)
            emitAnswersAtHead(into: &output)
            return
        default:
            break
        }
        guard let head else { return serverProtocolViolation(frame, into: &output) }
        let type = Character(UnicodeScalar(frame.type))
        switch (head, type) {
        case (.parseComplete(let relay), "1"), (.bindComplete(let relay), "2"), (.closeComplete(let relay), "3"):
            finish(frame, relay: relay, into: &output)
        case (.description(let relay, true, _), "t"):
            if relay { output.toClient.writeFrame(frame) }
        case (.description(let relay, _, _), "T"):
            finish(frame, relay: relay, into: &output)
        case (.description(let relay, _, let relaysNoData), "n"):
            finish(frame, relay: relay && relaysNoData, into: &output)
        case (.execution(let relay), "D"):
            if relay { output.toClient.writeFrame(frame) }
        case (.execution(let relay), "C"), (.execution(let relay), "I"), (.execution(let relay), "s"):
            finish(frame, relay: relay, into: &output)
        case (.limitedExecution(let portal), "D"):
            if budget.admit(rowOf: frame.body.readableBytes + 5, into: &portalUsage[portal, default: ResultBudget.Usage(request: 0)]) {
                output.toClient.writeFrame(frame)
            }
        case (.limitedExecution(let portal), "C"), (.limitedExecution(let portal), "I"), (.limitedExecution(let portal), "s"):
            if let usage = portalUsage[portal], usage.exceeded != nil {
                endOverBudget(usage, into: &output)
            } else {
                finish(frame, relay: true, into: &output)
            }
        default:
            return serverProtocolViolation(frame, into: &output)
        }
    }

    private mutating func finish(_ frame: Frame, relay: Bool, into output: inout Output) {
        if relay { output.toClient.writeFrame(frame) }
        pop()
        emitAnswersAtHead(into: &output)
    }

    private var head: Expectation? { pendingHead < pending.count ? pending[pendingHead] : nil }

    private mutating func pop() {
        pendingHead += 1
        if pendingHead == pending.count {
            pending.removeAll(keepingCapacity: true)
            pendingHead = 0
        }
    }

    private mutating func emitAnswersAtHead(into output: inout Output) {
        while case .answer(let message, let endsWithReadyForQuery)? = head {
            output.toClient.writeImmutableBuffer(message)
            if endsWithReadyForQuery { BackendEncoder.readyForQuery(transactionStatus, into: &output.toClient) }
            pop()
        }
    }

    // MARK: - Result budget

    /// Executes an admitted portal asking the server for at most one row past what the budget has
    /// left, so the server stops there (PortalSuspended) instead of streaming the rest.
    private mutating func executeWithinBudget(_ frame: Frame, portal: String, into output: inout Output) {
        let usage = portalUsage[portal] ?? ResultBudget.Usage(request: 0)
        if usage.exceeded != nil {
            return refuseInPipeline(budget.notice(for: usage, sessionID: sessionID), output: &output)
        }
        let requested = frame.body.getInteger(at: frame.body.writerIndex - 4, as: Int32.self) ?? 0
        if let limit = budget.serverRowLimit(requested: requested, used: usage) {
            FrontendEncoder.execute(portal: portal, maxRows: limit, into: &output.toBackend)
            expect(.limitedExecution(portal: portal))
        } else {
            forward(frame, expecting: .limitedExecution(portal: portal), into: &output)
        }
    }

    /// Ends an answer cut at the budget: the rows relayed so far, then 54000 in place of the
    /// server's CommandComplete or PortalSuspended. The server's statement ended by itself (the row
    /// limit) or ran to completion while its rows were dropped, so no cancel is needed and the
    /// connection stays usable. Like a server error, it skips the client's messages up to Sync.
    private mutating func endOverBudget(_ usage: ResultBudget.Usage, into output: inout Output) {
        BackendEncoder.error(budget.notice(for: usage, sessionID: sessionID), into: &output.toClient)
        output.resultLimits.append(ResultLimitEvent(rule: usage.exceeded ?? .resultRows, request: usage.request,
                                                    relayedRows: usage.rows, relayedBytes: usage.bytes))
        pop()
        while let head = head, !head.isReadyForQuery { pendingHead += 1 }
        if head == nil { discardingUntilSync = true }
        silencedUntilReadyForQuery = true
    }

    private func serverProtocolViolation(_ frame: Frame, into output: inout Output) {
        BackendEncoder.error(ServerNotice(severity: "FATAL", sqlstate: "08P01",
                                          message: "Palisade lost track of the server's responses (unexpected '\(frame.typeName)'); the session is closed"),
                             into: &output.toClient)
        output.close = true
    }
}

extension QueryRelay.Expectation {
    var isReadyForQuery: Bool {
        if case .readyForQuery = self { return true }
        return false
    }
}
