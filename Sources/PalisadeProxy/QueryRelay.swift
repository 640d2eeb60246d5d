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
///
/// Two invariants keep the tenant's claims in every transaction:
/// - A client's statement and portal names never reach the server. Each named statement or portal
///   a client makes gets a fresh server-side name (`s1`, `p2`, …), so Palisade's own statement and
///   portal cannot be named, a name the server truncates to 63 bytes cannot stand for another, and
///   what a name holds on the server is exactly what Palisade admitted under it. The unnamed
///   statement and portal stay unnamed; Palisade uses them only for a simple query, which replaces
///   them on the server too.
/// - The claims are set right before a query's Bind or Execute unless they were set since the last
///   point where a transaction may have ended or begun: a Sync (an implicit transaction ends
///   there), a transaction-control statement (`COMMIT AND CHAIN` starts a new one) or a statement
///   admitted only by monitor mode. Nothing else ends a transaction, and after an error the server
///   skips everything up to the next Sync.
///
/// A query whose shape can explode (`Decision.needsCostEstimate`) is first planned with EXPLAIN in
/// the same transaction, with the claims and, for a Bind, the client's own parameter values. The
/// client's later messages wait (`isHoldingClientMessages`) until the estimate decides whether the
/// query runs or is refused in its place.
public struct QueryRelay {
    /// Decides one text; `request` numbers the session's decisions (request ids), and what the
    /// decision must leave behind (audit records, a lockout) goes into `output`.
    public typealias Decide = (_ sql: String, _ kind: MessageKind, _ parameterTypes: [UInt32], _ request: Int,
                               _ output: inout Output) -> (Decision, ServerNotice?)
    /// Admits an execution of an admitted prepared statement (a Bind): the credential's lockout
    /// applies to every execution, and the tenant's rate to every one after the first, which the
    /// Parse's decision counted. A refusal's notice, or nil; what it leaves behind goes into `output`.
    public typealias AdmitExecution = (_ request: Int, _ countsTowardRate: Bool, _ output: inout Output) -> ServerNotice?

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
        /// Answers cut at the result budget, and queries refused at the cost budget, for the
        /// session to audit and count.
        public var resultLimits: [ResultLimitEvent] = []
        /// Audit records of the decisions made, to be durable before the answers go out.
        public var records: [SessionRecord] = []
        /// Set when a denial locked the credential out: the session ends with this message.
        public var lockout: String?
        /// Messages Palisade refused itself, outside any policy decision (a Bind of a statement it
        /// never admitted, a malformed message), for the session to audit.
        public var protocolRefusals: [String] = []

        public init(allocator: ByteBufferAllocator = ByteBufferAllocator()) {
            toBackend = allocator.buffer(capacity: 512)
            toClient = allocator.buffer(capacity: 2048)
        }
    }

    enum Expectation {
        case parseComplete(relay: Bool, undo: Undo?)
        case bindComplete(relay: Bool, undo: Undo?)
        /// Describe: a statement's answer starts with ParameterDescription. A simple query's client
        /// never sees NoData, so the Describe Palisade adds for one does not relay it.
        case description(relay: Bool, ofStatement: Bool, relaysNoData: Bool)
        case execution(relay: Bool)
        /// A relayed execution whose rows count against the result budget of the client's `portal`.
        case limitedExecution(portal: String)
        case closeComplete(relay: Bool, undo: Undo?)
        case readyForQuery
        /// What Palisade answers itself (a refusal, or what the server answers to empty text) once
        /// everything before it is answered.
        case answer(ByteBuffer, endsWithReadyForQuery: Bool)
        /// The EXPLAIN of a query waiting for its estimate: one row of JSON, then CommandComplete.
        case estimate
    }

    /// A query admitted by the policy and waiting for the planner's estimate before it runs.
    enum Estimating {
        /// A simple query's text: it runs as `simpleQuery` once within budget.
        case simpleQuery(sql: String, admitted: Admitted, request: Int, budget: CostBudget)
        /// A client's Bind: it is handled as sent once within budget.
        case bind(Frame, request: Int, budget: CostBudget)

        var request: Int {
            switch self {
            case .simpleQuery(_, _, let request, _), .bind(_, let request, _): request
            }
        }

        var budget: CostBudget {
            switch self {
            case .simpleQuery(_, _, _, let budget), .bind(_, _, let budget): budget
            }
        }
    }

    /// What Palisade's record of the server's statements and portals takes back when the server
    /// fails a message or skips it (after an error it skips everything up to the next Sync).
    enum Undo {
        case forget(Namespace, String, id: Int)
        case restore(Namespace, String, Named)
        case claimsStatementNotPrepared
    }

    enum Namespace {
        case statement, portal
    }

    /// What an admitted prepared statement or portal holds, and so how it runs with the claims.
    /// Empty text (only white space or comments, as JDBC's Connection.isValid sends) is no
    /// statement: Palisade answers for it as the server would, and it never reaches the server.
    enum Admitted {
        /// A query, SHOW, SET or EXPLAIN: runs in a transaction whose claims are set.
        case query
        /// BEGIN, COMMIT, ROLLBACK (also AND CHAIN): runs without the claims (ROLLBACK must work
        /// in a failed transaction), and may end a transaction and start another.
        case transactionControl
        /// A statement the policy denies, forwarded in monitor mode: runs with the claims, and
        /// anything may follow it, a new transaction too. Monitor mode's savepoints and two-phase
        /// commands are transaction control (ROLLBACK TO also takes back the claims set after its savepoint).
        case monitored
        case empty

        init(_ decision: Decision) {
            switch decision.rule {
            case .empty: self = .empty
            case .transactionControl: self = .transactionControl
            case .query, .showSetting, .setSetting, .explain: self = .query
            default: self = Self.transactionTags.contains(decision.statementType) ? .transactionControl : .monitored
            }
        }

        static let transactionTags: Set<String> = [
            "BEGIN", "START TRANSACTION", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE", "ROLLBACK TO SAVEPOINT",
            "PREPARE TRANSACTION", "COMMIT PREPARED", "ROLLBACK PREPARED",
        ]
    }

    /// A client's prepared statement or portal, as the server knows it.
    struct Named {
        var serverName: String
        var admitted: Admitted
        /// Which of Palisade's messages made it: tells it from a later one under the same client name.
        var id: Int
        /// Portals: how many Syncs went to the server before its Bind. Once the server reports no
        /// transaction after a later Sync, the portal is gone (portals end with their transaction).
        var syncsBefore = 0
        /// Statements whose every Bind is estimated first: the decision's request and budget.
        var estimated: (request: Int, budget: CostBudget)?
        /// Statements: the first Bind after the Parse is the execution the Parse's decision counted
        /// toward the tenant's rate.
        var executionCounted = true
        /// Statements: the text (which the server keeps parsed and planned) and declared types,
        /// decided again at a Bind after a policy reload.
        var sql = ""
        var parameterTypes: [UInt32] = []
        /// Statements: the generation of the policies that admitted the text (`PolicyGeneration`).
        var policyGeneration = 0
        /// Statements: parameters an accumulating aggregate keeps (`Decision.boundParameters`), and
        /// those the text refers to more than once (`Decision.repeatedParameters`).
        var boundParameters: [Int] = []
        var repeatedParameters: [Int: Int] = [:]
    }

    /// Statements or portals by the client's names, with the bytes of text they hold.
    struct NamedTable {
        private var byName: [String: Named] = [:]
        private(set) var textBytes = 0

        subscript(name: String) -> Named? {
            get { byName[name] }
            set {
                // One lookup each way: a simple query clears the unnamed statement and portal every time.
                if let newValue {
                    textBytes += newValue.sql.utf8.count - (byName.updateValue(newValue, forKey: name)?.sql.utf8.count ?? 0)
                } else if let removed = byName.removeValue(forKey: name) {
                    textBytes -= removed.sql.utf8.count
                }
            }
        }

        var count: Int { byName.count }
        var isEmpty: Bool { byName.isEmpty }

        mutating func removeValue(forKey name: String) -> Named? {
            defer { self[name] = nil }
            return byName[name]
        }

        mutating func removeAll(where shouldBeRemoved: (Named) -> Bool) {
            for (name, named) in byName where shouldBeRemoved(named) { self[name] = nil }
        }
    }

    private let decide: Decide
    private let admitExecution: AdmitExecution?
    /// The generation of the session's policies, which a reload advances; nil when they never change.
    private let policyGeneration: (@Sendable () -> Int)?
    /// The verified claims (JSON) set in every transaction, or nil for none.
    private let claims: String?
    /// The profile's statement_timeout, set with the claims (as the server reads it, e.g. "30000ms").
    private let statementTimeout: String
    private var pending: [Expectation] = []
    private var pendingHead = 0
    /// After a refusal in the extended protocol, the client's messages up to Sync are dropped,
    /// as the server itself drops them after an error.
    private var discardingUntilSync = false
    public private(set) var transactionStatus: TransactionStatus = .idle
    /// Admitted prepared statements and bound portals, by the client's names.
    private var statements = NamedTable()
    private var portals = NamedTable()
    /// Numbers the server-side names of the client's statements and portals.
    private var lastID = 0
    private var syncsSent = 0
    private var syncsAnswered = 0
    private var claimsStatementPrepared = false
    /// How many Syncs went to the server before the claims portal was last bound; nil once the
    /// server reported no transaction after a later Sync (the portal ended with its transaction).
    private var claimsPortalBoundBeforeSync: Int?
    /// Whether the claims were set since the last point where a transaction may have ended.
    private var claimsSetInTransaction = false
    /// Whether the claims were set for the whole server session at its start (a startup
    /// parameter), so no transaction needs them set again: true until a monitor-mode statement
    /// runs, which may change any setting (from then on they are set in every transaction).
    private var claimsHoldForSession: Bool
    private let budget: ResultBudget
    /// For the request ids of result-limit errors: "session-N", N counting decisions as the session does.
    private let sessionID: String
    private var decisions = 0
    /// With a budget: the request number that admitted each prepared statement, and each portal's
    /// usage, by the client's names.
    private var statementRequests: [String: Int] = [:]
    private var portalUsage: [String: ResultBudget.Usage] = [:]
    /// After an answer cut at the budget, the server's answers up to ReadyForQuery are dropped: it
    /// ran on, but the client was told of an error and expects nothing more before ReadyForQuery.
    private var silencedUntilReadyForQuery = false
    private var estimating: Estimating?
    /// The estimate's JSON, from its one DataRow.
    private var estimateJSON: ByteBuffer?
    /// Client messages that came while a query waited for its estimate, in order.
    private var heldFrames: [Frame] = []
    /// Whether the client's messages wait: for an estimate, or until the server has answered enough
    /// of those before them. The session stops reading them meanwhile.
    public var isHoldingClientMessages: Bool { estimating != nil || outstanding >= Self.mostOutstanding }

    /// Answers owed to the client, at most, before it is read again. Palisade answers some messages
    /// itself (a Close of an unknown name, a refusal), in their place behind the server's answers:
    /// behind a Parse sent with no Sync, 4 million of them (44 MB) took 1.1 GB of Palisade
    /// (seventeenth red team). 4,096 keep well under 2 MB.
    static let mostOutstanding = 4_096

    private var outstanding: Int { pending.count - pendingHead }

    /// Whether a Flush went to the server after the last message sent there: the server then
    /// answers everything before it, so a client held for answers owed is read again.
    private var flushedSinceLastMessage = false

    /// Named statements, and named portals, one session may hold at once. The server holds them in
    /// the session's own process; Palisade holds every session's in one, so each is bounded
    /// (drivers keep a few hundred at most: psycopg 3 and asyncpg cache 100 statements by default).
    static let mostNamed = 10_000

    /// Named portals one session may hold open: each keeps what its query holds until it ends (a
    /// suspended sort, work_mem), and 60 of them in one transaction took a backend 503 MB
    /// (seventeenth red team). Drivers hold one for each result read in batches (JDBC's fetchSize,
    /// asyncpg's cursors), a few at a time.
    static let mostNamedPortals = 16

    /// The text of named prepared statements one session may hold: the server keeps each parsed
    /// and planned, at about three times its text (10,000 statements of 60 KB took a backend
    /// 1.8 GB, seventeenth red team). Drivers' caches of 100 statements stay far below.
    static let mostNamedTextBytes = 8 << 20

    private func tooManyNamed(_ what: String, most: Int = mostNamed) -> ServerNotice {
        ServerNotice(sqlstate: SQLState.programLimitExceeded,
                     message: "Palisade holds at most \(most) named \(what) per session",
                     hint: "Close prepared statements and portals you no longer need (DEALLOCATE, or a Close message), or use unnamed ones.")
    }

    /// Palisade's statement and portal for estimates (the unnamed ones may be the client's).
    static let estimateStatement = "palisade_estimate"

    /// Palisade's own statement and portal. No client name reaches the server, so none can be this.
    static let claimsStatement = "palisade_claims"
    static let claimsQuery =
        "SELECT pg_catalog.set_config('\(Policy.claimSetting)', $1, true), pg_catalog.set_config('statement_timeout', $2, true)"

    /// `claimsSetAtStartup`: the server session was started with the claims as a startup parameter.
    public init(claims: String?, claimsSetAtStartup: Bool = false, statementTimeoutMilliseconds: Int, budget: ResultBudget = ResultBudget(),
                sessionID: String = "", decide: @escaping Decide, admitExecution: AdmitExecution? = nil,
                policyGeneration: (@Sendable () -> Int)? = nil) {
        self.admitExecution = admitExecution
        self.policyGeneration = policyGeneration
        self.claims = claims
        claimsHoldForSession = claimsSetAtStartup
        statementTimeout = "\(statementTimeoutMilliseconds)ms"
        self.budget = budget
        self.sessionID = sessionID
        self.decide = decide
    }

    /// With a decision function that leaves nothing behind (tests, the fuzz target).
    public init(claims: String?, statementTimeoutMilliseconds: Int, budget: ResultBudget = ResultBudget(),
                sessionID: String = "", decide: @escaping (_ sql: String, _ kind: MessageKind, _ parameterTypes: [UInt32]) -> (Decision, ServerNotice?)) {
        self.init(claims: claims, statementTimeoutMilliseconds: statementTimeoutMilliseconds, budget: budget,
                  sessionID: sessionID) { sql, kind, parameterTypes, _, _ in decide(sql, kind, parameterTypes) }
    }

    public var isIdle: Bool { pendingHead == pending.count }

    /// Whether messages went to the server since the last Sync: the server's transaction stays open
    /// until the client syncs, with the locks its Parse took and the snapshot its Execute holds.
    public private(set) var sentSinceSync = false

    /// How many names the relay holds, for tests of its bounds.
    var heldNames: (statements: Int, portals: Int, usages: Int) { (statements.count, portals.count, portalUsage.count) }

    // MARK: - Client messages

    public mutating func clientFrame(_ frame: Frame, into output: inout Output) {
        if estimating != nil { return heldFrames.append(frame) }
        handleClientFrame(frame, estimated: false, into: &output)
        flushIfHolding(into: &output)
    }

    /// Once the client is held for answers owed, the server is asked to send what it holds back
    /// until a Sync or Flush, so that they come.
    private mutating func flushIfHolding(into output: inout Output) {
        guard outstanding >= Self.mostOutstanding, !flushedSinceLastMessage else { return }
        FrontendEncoder.flush(into: &output.toBackend)
        flushedSinceLastMessage = true
    }

    /// `estimated`: a Bind coming back after its estimate was within budget.
    private mutating func handleClientFrame(_ frame: Frame, estimated: Bool, into output: inout Output) {
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
            // A simple query destroys the unnamed statement and portal, as on the server.
            statements[""] = nil
            portals[""] = nil
            decisions += 1
            let (decision, notice) = decide(sql, .simpleQuery, [], decisions, &output)
            if decision.rule == .empty {
                answer(endsWithReadyForQuery: true, into: &output) { BackendEncoder.bodiless("I", into: &$0) }
            } else if let notice {
                refuse(notice, endsWithReadyForQuery: true, output: &output)
            } else if let costBudget = decision.costBudget {
                setClaimsIfNeeded(into: &output)
                FrontendEncoder.parse(statement: "", query: CostBudget.explainPrefix + sql, into: &output.toBackend)
                expect(.parseComplete(relay: false, undo: nil))
                FrontendEncoder.bind(portal: "", statement: "", parameters: [], into: &output.toBackend)
                expect(.bindComplete(relay: false, undo: nil))
                FrontendEncoder.execute(portal: "", into: &output.toBackend)
                expect(.estimate)
                FrontendEncoder.flush(into: &output.toBackend)
                estimating = .simpleQuery(sql: sql, admitted: Admitted(decision), request: decisions, budget: costBudget)
            } else {
                simpleQuery(sql, Admitted(decision), into: &output)
            }
        case .parse(let name, let sql, let parameterTypes):
            decisions += 1
            // Read before deciding: a reload meanwhile makes the first Bind decide again.
            let generation = policyGeneration?() ?? 0
            let (decision, notice) = decide(sql, .parse, parameterTypes, decisions, &output)
            if decision.rule != .empty, let notice {
                // As on the server: a failed Parse leaves a named statement as it was, and the unnamed one gone.
                if name.isEmpty { statements[""] = nil }
                return refuseInPipeline(notice, output: &output)
            }
            if !name.isEmpty, statements[name] != nil {
                return refuseMessage(ServerNotice(sqlstate: SQLState.duplicatePreparedStatement, message: "prepared statement \"\(name)\" already exists"), output: &output)
            }
            if !name.isEmpty, statements.count >= Self.mostNamed {
                return refuseMessage(tooManyNamed("prepared statements"), output: &output)
            }
            if !name.isEmpty, statements.textBytes + sql.utf8.count > Self.mostNamedTextBytes {
                return refuseMessage(ServerNotice(sqlstate: SQLState.programLimitExceeded,
                                                  message: "Palisade holds at most \(Self.mostNamedTextBytes >> 20) MiB of named prepared statements' text per session",
                                                  hint: "Close prepared statements you no longer need (DEALLOCATE, or a Close message), or use the unnamed statement."),
                                     output: &output)
            }
            let id = nextID()
            let admitted = Admitted(decision)
            let serverName = name.isEmpty ? "" : "s\(id)"
            statements[name] = Named(serverName: serverName, admitted: admitted, id: id,
                                     estimated: decision.costBudget.map { (decisions, $0) },
                                     sql: sql, parameterTypes: parameterTypes, policyGeneration: generation,
                                     boundParameters: decision.boundParameters, repeatedParameters: decision.repeatedParameters)
            if !budget.isUnlimited { statementRequests[name] = decisions }
            if admitted == .empty { return answer(into: &output) { BackendEncoder.bodiless("1", into: &$0) } }
            forward(frame, names: [serverName], expecting: .parseComplete(relay: true, undo: .forget(.statement, name, id: id)), into: &output)
        case .bind(let portal, let statement):
            guard var prepared = statements[statement] else {
                return refuseMessage(notAdmitted("prepared statement", statement), output: &output)
            }
            if !estimated, let policyGeneration, case let generation = policyGeneration(), generation != prepared.policyGeneration,
               prepared.admitted != .empty {
                // Policies reloaded since the Parse: the text is decided again under them, so a
                // reload that narrows a policy reaches statements prepared before it.
                decisions += 1
                let (decision, notice) = decide(prepared.sql, .bind, prepared.parameterTypes, decisions, &output)
                if let notice { return refuseInPipeline(notice, output: &output) }
                prepared.policyGeneration = generation
                prepared.boundParameters = decision.boundParameters
                prepared.repeatedParameters = decision.repeatedParameters
                prepared.admitted = Admitted(decision)
                prepared.estimated = decision.costBudget.map { (decisions, $0) }
                statements[statement] = prepared
            }
            if !estimated, prepared.admitted == .query || prepared.admitted == .monitored, let admitExecution {
                let first = prepared.executionCounted
                if first {
                    prepared.executionCounted = false
                    statements[statement] = prepared
                }
                if let notice = admitExecution(decisions + 1, !first, &output) {
                    decisions += 1
                    return refuseInPipeline(notice, output: &output)
                }
            }
            if !estimated, !prepared.boundParameters.isEmpty || !prepared.repeatedParameters.isEmpty {
                // A Bind cut short would be refused by the server; it is refused here, as an estimate's is.
                guard let lengths = FrontendEncoder.parameterLengths(ofBind: frame) else { return protocolViolation("invalid Bind message", into: &output) }
                if let refusal = boundParametersRefusal(prepared.boundParameters, lengths: lengths)
                    ?? repeatedParametersRefusal(prepared.repeatedParameters, lengths: lengths) {
                    output.resultLimits.append(ResultLimitEvent(rule: .argumentLimit, request: statementRequests[statement] ?? decisions,
                                                                relayedRows: 0, relayedBytes: 0, message: refusal.message, isCostLimit: true))
                    return refuseInPipeline(refusal, output: &output)
                }
            }
            if let estimate = prepared.estimated, !estimated {
                return self.estimate((prepared.sql, prepared.parameterTypes, estimate.request, estimate.budget), bind: frame, into: &output)
            }
            if !portal.isEmpty, portals[portal] == nil, portals.count >= Self.mostNamedPortals {
                return refuseMessage(tooManyNamed("portals", most: Self.mostNamedPortals), output: &output)
            }
            if let earlier = portals[portal], !portal.isEmpty, earlier.admitted != .empty {
                // Each Bind gets a server portal of its own name: the one this name held would stay
                // open with what it holds (300 rebinds of a suspended sort took a backend 1.3 GB,
                // seventeenth red team). Closing a portal that has ended is no error.
                FrontendEncoder.close(portal: earlier.serverName, into: &output.toBackend)
                expect(.closeComplete(relay: false, undo: nil))
            }
            let id = nextID()
            let serverPortal = portal.isEmpty ? "" : "p\(id)"
            portals[portal] = Named(serverName: serverPortal, admitted: prepared.admitted, id: id, syncsBefore: syncsSent)
            switch prepared.admitted {
            case .empty: return answer(into: &output) { BackendEncoder.bodiless("2", into: &$0) }
            case .query, .monitored: setClaimsIfNeeded(into: &output)
            case .transactionControl: break
            }
            if prepared.admitted == .query, !budget.isUnlimited {
                portalUsage[portal] = ResultBudget.Usage(request: statementRequests[statement] ?? 0)
            }
            forward(frame, names: [serverPortal, prepared.serverName], expecting: .bindComplete(relay: true, undo: .forget(.portal, portal, id: id)),
                    into: &output)
        case .execute(let portal):
            guard let bound = portals[portal] else {
                return refuseMessage(notAdmitted("portal", portal), output: &output)
            }
            switch bound.admitted {
            case .empty: return answer(into: &output) { BackendEncoder.bodiless("I", into: &$0) }
            case .query: setClaimsIfNeeded(into: &output)
            case .monitored:
                setClaimsIfNeeded(into: &output)
                claimsSetInTransaction = false
                claimsHoldForSession = false
            case .transactionControl: claimsSetInTransaction = false
            }
            if bound.admitted == .query, !budget.isUnlimited {
                return executeWithinBudget(frame, portal: portal, serverName: bound.serverName, into: &output)
            }
            forward(frame, names: [bound.serverName], expecting: .execution(relay: true), into: &output)
        case .describe(let kind, let name):
            let ofStatement = kind == TargetKind.statement.rawValue
            guard let named = ofStatement ? statements[name] : portals[name] else {
                return refuseMessage(notAdmitted(ofStatement ? "prepared statement" : "portal", name), output: &output)
            }
            if named.admitted == .empty {
                return answer(into: &output) { buffer in
                    if ofStatement { BackendEncoder.noParameters(into: &buffer) }
                    BackendEncoder.bodiless("n", into: &buffer)
                }
            }
            forward(frame, names: [named.serverName], expecting: .description(relay: true, ofStatement: ofStatement, relaysNoData: true),
                    into: &output)
        case .close(let kind, let name):
            let namespace: Namespace = kind == TargetKind.statement.rawValue ? .statement : .portal
            if namespace == .statement { statementRequests[name] = nil } else { portalUsage[name] = nil }
            // Closing a name that does not exist is no error on the server either.
            guard let closed = self[namespace].removeValue(forKey: name), closed.admitted != .empty else {
                return answer(into: &output) { BackendEncoder.bodiless("3", into: &$0) }
            }
            forward(frame, names: [closed.serverName], expecting: .closeComplete(relay: true, undo: .restore(namespace, name, closed)), into: &output)
        case .flush:
            output.toBackend.writeFrame(frame)
        case .sync:
            output.toBackend.writeFrame(frame)
            synced()
        case .terminate:
            FrontendEncoder.terminate(into: &output.toBackend)
            output.close = true
        case .functionCall:
            decisions += 1
            let (_, notice) = decide("", .functionCall, [], decisions, &output)
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
        sqlstate: SQLState.insufficientPrivilege, message: "Palisade does not admit fast-path function calls",
        hint: "Call functions from a SELECT statement.")

    private func notAdmitted(_ what: String, _ name: String) -> ServerNotice {
        ServerNotice(sqlstate: what == "portal" ? SQLState.invalidCursorName : SQLState.invalidSQLStatementName,
                     message: "\(what) \"\(name)\" was not admitted by Palisade",
                     hint: "Parse the statement first; only statements Palisade admitted can be bound and executed.")
    }

    private subscript(namespace: Namespace) -> NamedTable {
        get { namespace == .statement ? statements : portals }
        _modify {
            if namespace == .statement { yield &statements } else { yield &portals }
        }
    }

    /// A Bind whose values of the parameters an aggregate keeps in every row are too long together
    /// (a 1 MB delimiter of string_agg over 900 rows took a backend 1.7 GB, seventeenth red team).
    private func boundParametersRefusal(_ parameters: [Int], lengths: [Int]) -> ServerNotice? {
        let bytes = parameters.reduce(0) { total, number in
            total + (number >= 1 && number <= lengths.count ? max(0, lengths[number - 1]) : 0)
        }
        guard bytes > Decision.maxBoundParameterBytes else { return nil }
        let names = parameters.map { "$\($0)" }.joined(separator: ", ")
        return ServerNotice(sqlstate: SQLState.programLimitExceeded,
                            message: "Palisade: \(names) \(parameters.count == 1 ? "is" : "are") kept in every row (by an aggregate, ARRAY(…), IN or NOT IN (subquery), INTERSECT, EXCEPT, WITH RECURSIVE or a join of rows the query makes) or multiplied (replace, repeat, a separator), and this Bind's values take \(bytes) bytes, over \(Decision.maxBoundParameterBytes)",
                            detail: "rule \(Rule.argumentLimit.rawValue)",
                            hint: "Keep such values short (delimiters, keys, labels), or write them into the text.")
    }

    private func repeatedParametersRefusal(_ references: [Int: Int], lengths: [Int]) -> ServerNotice? {
        let bytes = references.reduce(0) { total, reference in
            total + (reference.key >= 1 && reference.key <= lengths.count ? max(0, lengths[reference.key - 1]) * reference.value : 0)
        }
        guard bytes > Decision.maxRepeatedParameterBytes else { return nil }
        let names = references.keys.sorted().map { "$\($0) (\(references[$0]!) times)" }.joined(separator: ", ")
        return ServerNotice(sqlstate: SQLState.programLimitExceeded,
                            message: "Palisade: the text refers to \(names), and the server copies a bound value into each place when it plans: this Bind's values take \(bytes) bytes so, over \(Decision.maxRepeatedParameterBytes)",
                            detail: "rule \(Rule.argumentLimit.rawValue)",
                            hint: "Refer to a long value in fewer places, or send shorter values.")
    }

    private mutating func nextID() -> Int {
        lastID += 1
        return lastID
    }

    /// A simple query runs as Parse/Bind/Describe/Execute/Sync in one write, so that the claims
    /// statement can share its implicit transaction with a bound parameter.
    private mutating func simpleQuery(_ sql: String, _ admitted: Admitted, into output: inout Output) {
        if admitted != .transactionControl { setClaimsIfNeeded(into: &output) }
        FrontendEncoder.parse(statement: "", query: sql, into: &output.toBackend)
        expect(.parseComplete(relay: false, undo: nil))
        expect(.bindComplete(relay: false, undo: nil))
        expect(.description(relay: true, ofStatement: false, relaysNoData: false))
        var maxRows: Int32 = 0
        if admitted != .query || budget.isUnlimited {
            expect(.execution(relay: true))
        } else {
            portalUsage[""] = ResultBudget.Usage(request: decisions)
            maxRows = budget.serverRowLimit(requested: 0, used: portalUsage[""]!) ?? 0
            expect(.limitedExecution(portal: ""))
        }
        FrontendEncoder.runUnnamedStatement(maxRows: maxRows, into: &output.toBackend)
        synced()
        if admitted == .monitored { claimsHoldForSession = false }
    }

    /// A Sync went to the server: an implicit transaction ends there.
    private mutating func synced() {
        expect(.readyForQuery)
        syncsSent += 1
        claimsSetInTransaction = false
    }

    /// Sets the claims for the transaction the next message runs in, unless they are set in it already.
    private mutating func setClaimsIfNeeded(into output: inout Output) {
        guard let claims, !claimsSetInTransaction, !claimsHoldForSession else { return }
        if !claimsStatementPrepared {
            FrontendEncoder.parse(statement: Self.claimsStatement, query: Self.claimsQuery, into: &output.toBackend)
            expect(.parseComplete(relay: false, undo: .claimsStatementNotPrepared))
            claimsStatementPrepared = true
        }
        if claimsPortalBoundBeforeSync != nil {
            // It may still exist (a transaction block goes on across Syncs); a portal is bound only once.
            FrontendEncoder.close(portal: Self.claimsStatement, into: &output.toBackend)
            expect(.closeComplete(relay: false, undo: nil))
        }
        FrontendEncoder.bind(portal: Self.claimsStatement, statement: Self.claimsStatement, parameters: [claims, statementTimeout],
                             into: &output.toBackend)
        expect(.bindComplete(relay: false, undo: nil))
        FrontendEncoder.execute(portal: Self.claimsStatement, into: &output.toBackend)
        expect(.execution(relay: false))
        claimsPortalBoundBeforeSync = syncsSent
        claimsSetInTransaction = true
    }

    /// Forwards a client's message under the server-side names of the statements and portals it names.
    private mutating func forward(_ frame: Frame, names: [String], expecting expectation: Expectation, into output: inout Output) {
        if names.allSatisfy(\.isEmpty) {
            output.toBackend.writeFrame(frame)
        } else {
            FrontendEncoder.renamed(frame, names: names, into: &output.toBackend)
        }
        expect(expectation)
    }

    private mutating func expect(_ expectation: Expectation) {
        pending.append(expectation)
        switch expectation {
        case .readyForQuery:
            sentSinceSync = false
            flushedSinceLastMessage = false
        case .answer: break
        default:
            sentSinceSync = true
            flushedSinceLastMessage = false
        }
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

    /// A refusal of Palisade's own, not the policy's: audited as a protocol refusal.
    private mutating func refuseMessage(_ notice: ServerNotice, output: inout Output) {
        output.protocolRefusals.append("\(notice.sqlstate) \(notice.message)")
        refuseInPipeline(notice, output: &output)
    }

    private mutating func protocolViolation(_ reason: String, into output: inout Output) {
        output.protocolRefusals.append("\(SQLState.protocolViolation) \(reason)")
        BackendEncoder.error(ServerNotice(severity: "FATAL", sqlstate: SQLState.protocolViolation, message: reason), into: &output.toClient)
        FrontendEncoder.terminate(into: &output.toBackend)
        output.close = true
    }

    // MARK: - Server messages

    public mutating func backendFrame(_ frame: Frame, into output: inout Output) {
        guard let type = frame.backendType else { return serverProtocolViolation(frame, into: &output) }
        if silencedUntilReadyForQuery {
            if type == .readyForQuery { silencedUntilReadyForQuery = false } else if !type.isAsynchronous { return }
        }
        switch type {
        case .noticeResponse, .parameterStatus, .notificationResponse:
            // Notices, parameter changes and notifications may come at any time; a notice during a
            // budgeted answer counts toward its bytes, and past them is dropped like a row.
            if type == .noticeResponse, case .limitedExecution(let portal)? = head,
               !budget.admit(noticeOf: frame.body.readableBytes + 5, into: &portalUsage[portal, default: ResultBudget.Usage(request: 0)]) {
                return
            }
            output.toClient.writeFrame(frame)
            return
        case .errorResponse:
            output.toClient.writeFrame(frame)
            // The server skips everything up to the next Sync after an error; so do the expectations,
            // and what the failed and skipped messages would have made or closed is taken back.
            // The estimate failed only if it was among them: an error of an earlier Sync's messages
            // leaves it to run after that Sync (taken for it, the held query ran unestimated).
            if skipToReadyForQuery() { estimateFailed(into: &output) }
            // The client's Sync is not read yet: what it sends until then the server skips too, and
            // forwarded, it would be owed answers that never come (seventeenth red team: a pipeline
            // whose error came back before its Sync was read ended the session).
            if head == nil { discardingUntilSync = true }
            return
        case .readyForQuery:
            guard case .readyForQuery? = head, let status = frame.body.getInteger(at: frame.body.readerIndex, as: UInt8.self),
                  let transactionStatus = TransactionStatus(rawValue: status)
            else { return serverProtocolViolation(frame, into: &output) }
            pop()
            self.transactionStatus = transactionStatus
            syncsAnswered += 1
            if transactionStatus == .idle {
                // No transaction is open after this Sync: every portal bound before it is gone.
                if !portals.isEmpty { portals.removeAll { $0.syncsBefore < syncsAnswered } }
                // Usage goes with its portal (the unnamed one's stays: a pipelined query may have set it).
                if !portalUsage.isEmpty { portalUsage = portalUsage.filter { $0.key.isEmpty || portals[$0.key] != nil } }
                if let bound = claimsPortalBoundBeforeSync, bound < syncsAnswered { claimsPortalBoundBeforeSync = nil }
            }
            output.toClient.writeFrame(frame)
            emitAnswersAtHead(into: &output)
            return
        default:
            break
        }
        guard let head else { return serverProtocolViolation(frame, into: &output) }
        switch (head, type) {
        case (.parseComplete(let relay, _), .parseComplete), (.bindComplete(let relay, _), .bindComplete),
             (.closeComplete(let relay, _), .closeComplete):
            finish(frame, relay: relay, into: &output)
        case (.description(let relay, true, _), .parameterDescription):
            if relay { output.toClient.writeFrame(frame) }
        case (.description(let relay, _, _), .rowDescription):
            finish(frame, relay: relay, into: &output)
        case (.description(let relay, _, let relaysNoData), .noData):
            finish(frame, relay: relay && relaysNoData, into: &output)
        case (.execution(let relay), .dataRow):
            if relay { output.toClient.writeFrame(frame) }
        case (.execution(let relay), .commandComplete), (.execution(let relay), .emptyQueryResponse),
             (.execution(let relay), .portalSuspended):
            finish(frame, relay: relay, into: &output)
        case (.estimate, .dataRow):
            estimateJSON = frame.body
        case (.estimate, .commandComplete):
            pop()
            estimated(into: &output)
        case (.limitedExecution(let portal), .dataRow):
            if budget.admit(rowOf: frame.body.readableBytes + 5, into: &portalUsage[portal, default: ResultBudget.Usage(request: 0)]) {
                output.toClient.writeFrame(frame)
            }
        case (.limitedExecution(let portal), .commandComplete), (.limitedExecution(let portal), .emptyQueryResponse),
             (.limitedExecution(let portal), .portalSuspended):
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

    private mutating func undo(_ expectation: Expectation) {
        switch expectation {
        case .parseComplete(_, let undo?), .bindComplete(_, let undo?), .closeComplete(_, let undo?):
            switch undo {
            case .forget(let namespace, let name, let id):
                if self[namespace][name]?.id == id { self[namespace][name] = nil }
            case .restore(let namespace, let name, let named):
                if self[namespace][name] == nil { self[namespace][name] = named }
            case .claimsStatementNotPrepared:
                claimsStatementPrepared = false
            }
        default:
            break
        }
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
    private mutating func executeWithinBudget(_ frame: Frame, portal: String, serverName: String, into output: inout Output) {
        let usage = portalUsage[portal] ?? ResultBudget.Usage(request: 0)
        if usage.exceeded != nil {
            return refuseInPipeline(budget.notice(for: usage, sessionID: sessionID), output: &output)
        }
        let requested = frame.body.getInteger(at: frame.body.writerIndex - 4, as: Int32.self) ?? 0
        if let limit = budget.serverRowLimit(requested: requested, used: usage) {
            FrontendEncoder.execute(portal: serverName, maxRows: limit, into: &output.toBackend)
            expect(.limitedExecution(portal: portal))
        } else {
            forward(frame, names: [serverName], expecting: .limitedExecution(portal: portal), into: &output)
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
        // As after a server error: what the skipped messages would have made or closed is taken back.
        let skippedEstimate = skipToReadyForQuery()
        if head == nil { discardingUntilSync = true }
        silencedUntilReadyForQuery = true
        // An estimate sent behind the cut answers into the silence: the query it held is skipped as
        // the cut skips the rest, and the held messages go on, or the session would wait forever.
        if skippedEstimate { estimateFailed(into: &output) }
    }

    /// Drops the expectations up to the next ReadyForQuery, taking back what their messages would
    /// have made or closed; whether the estimate was among them.
    private mutating func skipToReadyForQuery() -> Bool {
        var skippedEstimate = false
        while let head = head, !head.isReadyForQuery {
            if case .estimate = head { skippedEstimate = true }
            undo(head)
            pendingHead += 1
        }
        return skippedEstimate && estimating != nil
    }

    // MARK: - Cost budget

    /// Plans a Bind's statement with the client's parameter values, in Palisade's own statement and
    /// portal (closed first: an earlier estimate's may remain), and holds the Bind meanwhile.
    private mutating func estimate(_ query: (sql: String, parameterTypes: [UInt32], request: Int, budget: CostBudget), bind frame: Frame,
                                   into output: inout Output) {
        setClaimsIfNeeded(into: &output)
        FrontendEncoder.close(portal: Self.estimateStatement, into: &output.toBackend)
        expect(.closeComplete(relay: false, undo: nil))
        FrontendEncoder.close(statement: Self.estimateStatement, into: &output.toBackend)
        expect(.closeComplete(relay: false, undo: nil))
        FrontendEncoder.parse(statement: Self.estimateStatement, query: CostBudget.explainPrefix + query.sql,
                              parameterTypes: query.parameterTypes, into: &output.toBackend)
        expect(.parseComplete(relay: false, undo: nil))
        guard FrontendEncoder.bind(portal: Self.estimateStatement, statement: Self.estimateStatement, parametersOf: frame,
                                   into: &output.toBackend)
        else { return protocolViolation("invalid Bind message", into: &output) }
        expect(.bindComplete(relay: false, undo: nil))
        FrontendEncoder.execute(portal: Self.estimateStatement, into: &output.toBackend)
        expect(.estimate)
        FrontendEncoder.flush(into: &output.toBackend)
        estimating = .bind(frame, request: query.request, budget: query.budget)
    }

    /// The estimate is in: the query runs, or is refused in its place; then the held messages go on.
    private mutating func estimated(into output: inout Output) {
        guard let waiting = estimating else { return }
        let costBudget = waiting.budget
        estimating = nil
        let estimate = estimateJSON.flatMap(Self.explainText).flatMap { CostBudget.estimate(fromExplainJSON: $0.readableBytesView) }
        estimateJSON = nil
        let rule = estimate.map(costBudget.violation) ?? .costLimit
        if let rule {
            let notice = ServerNotice(sqlstate: rule.sqlstate, message: costBudget.message(for: rule, estimate: estimate),
                                      detail: "rule \(rule.rawValue); request \(sessionID)-\(waiting.request)", hint: costBudget.hint(for: rule))
            output.resultLimits.append(ResultLimitEvent(rule: rule, request: waiting.request, relayedRows: 0, relayedBytes: 0,
                                                        message: costBudget.auditMessage(for: rule, estimate: estimate), isCostLimit: true))
            switch waiting {
            case .simpleQuery:
                // The estimate's implicit transaction ends here, as the query's would have.
                refuse(notice, endsWithReadyForQuery: false, output: &output)
                FrontendEncoder.sync(into: &output.toBackend)
                synced()
            case .bind:
                refuseInPipeline(notice, output: &output)
            }
        } else {
            switch waiting {
            case .simpleQuery(let sql, let admitted, _, _): simpleQuery(sql, admitted, into: &output)
            case .bind(let frame, _, _): handleClientFrame(frame, estimated: true, into: &output)
            }
        }
        releaseHeldFrames(into: &output)
    }

    /// The server failed the estimate (or something pipelined before it) and skips to the next Sync.
    private mutating func estimateFailed(into output: inout Output) {
        guard let waiting = estimating else { return }
        estimating = nil
        estimateJSON = nil
        switch waiting {
        case .simpleQuery:
            // The error stands for the query's; the server's ReadyForQuery ends its answer.
            FrontendEncoder.sync(into: &output.toBackend)
            synced()
        case .bind:
            discardingUntilSync = true
        }
        releaseHeldFrames(into: &output)
    }

    private mutating func releaseHeldFrames(into output: inout Output) {
        var index = 0
        while estimating == nil, index < heldFrames.count {
            handleClientFrame(heldFrames[index], estimated: false, into: &output)
            index += 1
        }
        flushIfHolding(into: &output)
        heldFrames.removeFirst(index)
    }

    /// The one text column of EXPLAIN's DataRow.
    private static func explainText(_ row: ByteBuffer) -> ByteBuffer? {
        var row = row
        guard row.readInteger(as: Int16.self) == 1, let length = row.readInteger(as: Int32.self), length >= 0 else { return nil }
        return row.readSlice(length: Int(length))
    }

    private func serverProtocolViolation(_ frame: Frame, into output: inout Output) {
        BackendEncoder.error(ServerNotice(severity: "FATAL", sqlstate: SQLState.protocolViolation,
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
