import AuditChain
import Foundation
import MCP
import NIOCore
import PalisadeProxy
import PostgresWire
import QueryPolicy

/// One MCP session (a stdio process, or one `Mcp-Session-Id` over HTTP) and the server connection
/// it opens on its first call. Every tool call that touches the database goes the proxy's way:
/// the profile's engine decides, the rate limit and lockout count it, its decision is durable in
/// the audit log before anything runs, and it runs in a read-only transaction with the tenant's
/// claims and the profile's statement_timeout set as bound parameters.
///
/// Calls run one at a time, in the order they came: each is one transaction on the one connection.
public actor MCPToolSession {
    public nonisolated let sessionID: String
    public nonisolated let identity: MCPIdentity
    private let firewall: MCPFirewall
    private let transport: MCPTransport
    private let clientAddress: String
    private let group: EventLoopGroup
    private var requests = 0
    private var connection: BackendConnection?
    private var busy = false
    private var waiting: [CheckedContinuation<Void, Never>] = []

    /// Rows and bytes an answer may have when the profile sets no limit: every answer goes into an
    /// agent's context, so none is unbounded.
    static let defaultMaxRows = 10_000
    static let defaultMaxResultBytes = 8 << 20

    public init(firewall: MCPFirewall, identity: MCPIdentity, transport: MCPTransport, clientAddress: String,
                group: EventLoopGroup) {
        sessionID = Self.newSessionID()
        self.firewall = firewall
        self.identity = identity
        self.transport = transport
        self.clientAddress = clientAddress
        self.group = group
    }

    /// 128 random bits (SystemRandomNumberGenerator) in hex: over HTTP the id is what names the
    /// session (the sixteenth red team found 32 bits).
    static func newSessionID() -> String {
        String(format: "%016llx%016llx", UInt64.random(in: .min ... .max), UInt64.random(in: .min ... .max))
    }

    /// The tools this session's profile offers.
    public nonisolated var tools: [Tool] {
        ToolCatalog.tools(allowsExplain: firewall.policies.engine(for: identity.profile)?.policy.allowsExplain ?? false)
    }

    /// Ends the server session.
    public func close() {
        connection?.close()
        connection = nil
    }

    /// One tools/call. `credential` is the one this call came with (each HTTP request carries its
    /// own): it is verified again, so an expired token or a locked-out key stops at the next call.
    public func call(_ name: String, arguments: [String: Value]?, credential: String?) async -> CallTool.Result {
        guard let tool = ToolCatalog.Name(rawValue: name) else {
            return Self.error("There is no tool named '\(name)'. The tools are: \(tools.map(\.name).joined(separator: ", ")).")
        }
        let parsed: ToolCatalog.Arguments
        do {
            parsed = try ToolCatalog.arguments(for: tool, arguments)
        } catch {
            return Self.error("Invalid arguments for \(name): \(error.description).")
        }
        switch firewall.identify(credential ?? "") {
        case .failure(let refusal):
            do { try await firewall.recordRefusal(refusal, transport: transport, clientAddress: clientAddress) } catch { return auditFailure(error) }
            return Self.refusal(rule: refusal.rule.rawValue, sqlstate: refusal.sqlstate, message: refusal.message, hint: nil, requestID: nil)
        case .success(let current) where current != identity:
            // The whole identity (tenant, profile, credential, claims), as the HTTP door matches a session.
            return Self.error("This MCP session was opened with another identity; start a new session.")
        case .success:
            break
        }
        await acquire()
        defer { release() }
        switch (tool, parsed) {
        case (.query, .sql(let sql)): return await query(sql)
        case (.check, .sql(let sql)): return await check(sql)
        case (.explain, .sql(let sql)): return await explain(sql)
        case (.listTables, _): return await listTables()
        case (.describeTable, .table(let schema, let name)): return await describeTable(schema: schema, name: name)
        default: return Self.error("Invalid arguments for \(name).")
        }
    }

    // MARK: - Tools

    private func query(_ sql: String) async -> CallTool.Result {
        let admission = await admit(sql, tool: .query, admitting: [.query, .showSetting, .explain])
        guard case .run(let decision, let request, let policy) = admission else { return admission.refusal }
        return await inTransaction(policy: policy, request: request) { connection in
            if let costBudget = decision.costBudget {
                if let refusal = try await self.estimate(sql, costBudget: costBudget, policy: policy, request: request, on: connection) {
                    return refusal
                }
            }
            let budget = ResultBudget(maxRows: policy.maxResultRows ?? Self.defaultMaxRows,
                                      maxBytes: policy.maxResultBytes ?? Self.defaultMaxResultBytes)
            let result = try await self.execute(sql, policy: policy, budget: budget, on: connection)
            if let exceeded = result.exceeded {
                return try await self.resultLimited(exceeded, budget: budget, rows: result.rows.count, bytes: result.rowBytes,
                                                    policy: policy, request: request)
            }
            // The server's rows fit max_result_bytes; the answer, JSON in JSON, must too.
            switch ResultJSON.document(columns: self.columns(of: result), rows: result.rows, requestID: request,
                                       maxBytes: budget.maxBytes ?? .max) {
            case .document(let document):
                return Self.success(document)
            case .tooLarge(let rows, let bytes):
                return try await self.resultLimited(.resultBytes, budget: budget, rows: rows, bytes: bytes, policy: policy, request: request)
            }
        }
    }

    private func explain(_ sql: String) async -> CallTool.Result {
        guard let engine = firewall.policies.engine(for: identity.profile) else { return Self.error("The profile is gone.") }
        // Under row-level security costs and row estimates tell of other tenants' rows (rule stmt.explain-costs).
        let text = (engine.policy.hidesStatistics ? "EXPLAIN (COSTS OFF) " : "EXPLAIN ") + sql
        let admission = await admit(text, tool: .explain, admitting: [.explain])
        guard case .run(_, let request, let policy) = admission else { return admission.refusal }
        return await inTransaction(policy: policy, request: request) { connection in
            let result = try await self.execute(text, policy: policy, on: connection)
            return Self.success(result.rows.compactMap { $0.first ?? nil }.joined(separator: "\n"))
        }
    }

    private func check(_ sql: String) async -> CallTool.Result {
        guard let engine = firewall.policies.engine(for: identity.profile) else { return Self.error("The profile is gone.") }
        let decision = engine.evaluate(sql)
        let request = nextRequestID()
        // A dry run: recorded, and not a query toward the rate; but a denial counts toward the
        // lockout as a denied query does, or check would be a free oracle for probing the policy
        // (the sixteenth red team: 40 denied checks after the lockout's 20, and the next query still ran).
        do {
            try await record(decision, request: request, tool: .check, policy: engine.policy, sql: sql, detail: ["dry_run": .string("yes")])
            if !decision.isAllowed, !engine.policy.isMonitorOnly, decision.rule != .empty {
                try await countDenial(request: request, tool: .check, policy: engine.policy)
            }
        } catch {
            return auditFailure(error)
        }
        return Self.success(CatalogQueries.checkDocument(decision, requestID: request))
    }

    private func listTables() async -> CallTool.Result {
        guard let engine = firewall.policies.engine(for: identity.profile) else { return Self.error("The profile is gone.") }
        let sql = CatalogQueries.tables(readableSchemas: engine.policy.readableSchemas)
        let admission = await admit(sql, tool: .listTables, admitting: [.query])
        guard case .run(_, let request, let policy) = admission else { return admission.refusal }
        return await inTransaction(policy: policy, request: request) { connection in
            let result = try await self.execute(sql, policy: policy, on: connection)
            return Self.success(ResultJSON.document(columns: self.columns(of: result), rows: result.rows, requestID: request))
        }
    }

    private func describeTable(schema: String?, name: String) async -> CallTool.Result {
        guard let engine = firewall.policies.engine(for: identity.profile) else { return Self.error("The profile is gone.") }
        let columnsSQL = CatalogQueries.columns(readableSchemas: engine.policy.readableSchemas)
        let admission = await admit(columnsSQL, tool: .describeTable, admitting: [.query])
        guard case .run(_, let request, let policy) = admission else { return admission.refusal }
        let columnsResult: BackendConnection.StatementResult
        let keysResult: BackendConnection.StatementResult
        do {
            (columnsResult, keysResult) = try await transaction(policy: policy, request: request) { connection in
                let columns = try await self.execute(columnsSQL, parameters: [schema, name], policy: policy, on: connection)
                guard let resolved = CatalogQueries.resolveSchema(of: columns.rows, searchPath: policy.searchPath) else {
                    return (columns, BackendConnection.StatementResult())
                }
                let keysSQL = CatalogQueries.keys
                let keysDecision = await self.admit(keysSQL, tool: .describeTable, admitting: [.query])
                guard case .run = keysDecision else { throw RefusedInTransaction(result: keysDecision.refusal) }
                let keys = try await self.execute(keysSQL, parameters: [resolved, name], policy: policy, on: connection)
                return (columns, keys)
            }
        } catch let refused as RefusedInTransaction {
            return refused.result
        } catch let failure as TransactionFailure {
            return failure.result
        } catch {
            return Self.error("\(error)")
        }
        guard let document = CatalogQueries.describeDocument(columns: columnsResult.rows, keys: keysResult.rows,
                                                             searchPath: policy.searchPath, requestID: request)
        else {
            let qualified = schema.map { "\($0).\(name)" } ?? name
            return Self.error("There is no table or view '\(qualified)' that this profile may read (request \(request)). Call list_tables to see the tables.")
        }
        return Self.success(document)
    }

    // MARK: - Deciding

    private enum Admission {
        case run(Decision, request: String, policy: Policy)
        case refused(CallTool.Result)

        var refusal: CallTool.Result {
            if case .refused(let result) = self { return result }
            return MCPToolSession.error("internal error: an admitted statement taken for a refusal")
        }
    }

    /// The proxy's decision for `sql`, plus the front door's own rule: each call is its own
    /// read-only transaction, so only the statements in `admitting` run (a COMMIT would end the
    /// transaction the claims were set in). Recorded before anything runs.
    private func admit(_ sql: String, tool: ToolCatalog.Name, admitting: Set<Rule>) async -> Admission {
        guard let engine = firewall.policies.engine(for: identity.profile) else { return .refused(Self.error("The profile is gone.")) }
        let policy = engine.policy
        let request = nextRequestID()
        let now = Date()
        var decision: Decision
        var frontDoorRefusal = false
        if let rate = firewall.budgets.rate, case .limited(let retryAfter) = rate.admit(tenant: identity.tenant, now: now) {
            let refusal = rate.refusal(tenant: identity.tenant, retryAfter: retryAfter)
            decision = Decision(rule: .rateLimited, message: refusal.message, hint: refusal.hint, policyVersion: policy.version)
        } else {
            decision = engine.evaluate(sql)
            if decision.isAllowed, !admitting.contains(decision.rule) {
                frontDoorRefusal = true
                let admitted = decision
                decision = Decision(rule: decision.rule == .setSetting ? .setDenied : .transactionDenied,
                                    message: "each \(tool.rawValue) call runs alone in its own read-only transaction, so \(admitted.statementType.isEmpty ? "this statement" : admitted.statementType) is not admitted here",
                                    hint: "Send only the SELECT itself.", statementType: admitted.statementType, tables: admitted.tables,
                                    functions: admitted.functions, fingerprint: admitted.fingerprintValue, normalized: admitted.normalized,
                                    policyVersion: policy.version)
            }
        }
        let monitorOnly = policy.isMonitorOnly && decision.rule != .rateLimited && !frontDoorRefusal
        do {
            try await record(decision, request: request, tool: tool, policy: policy, sql: sql,
                             detail: monitorOnly && !decision.isAllowed ? ["mode": .string("monitor"), "enforced": .string("no")] : [:])
        } catch {
            return .refused(auditFailure(error))
        }
        guard !decision.isAllowed, !monitorOnly else { return .run(decision, request: request, policy: policy) }
        if decision.rule != .rateLimited {
            do { try await countDenial(request: request, tool: tool, policy: policy, now: now) } catch { return .refused(auditFailure(error)) }
        }
        return .refused(Self.refusal(rule: decision.rule.rawValue, sqlstate: decision.sqlstate, message: decision.message,
                                     hint: decision.hint, requestID: request))
    }

    /// Counts a denial toward the credential's lockout, and records the lockout it may start.
    private func countDenial(request: String, tool: ToolCatalog.Name, policy: Policy, now: Date = Date()) async throws(AuditError) {
        guard let lockout = firewall.budgets.lockout, let event = lockout.recordDenial(credential: identity.credentialID, now: now) else { return }
        try await record(Decision(rule: .lockedOut, message: event.refusal.message, policyVersion: policy.version),
                         request: request, tool: tool, policy: policy, event: .lockout)
    }

    private func nextRequestID() -> String {
        requests += 1
        return "\(sessionID)-\(requests)"
    }

    /// Appends an entry as the proxy's `ProxySession.record` builds one, and waits until it is durable.
    /// `sql`: the text decided, kept whole where the profile logs raw query text (audit.raw_query_text).
    private func record(_ decision: Decision, request: String, tool: ToolCatalog.Name, policy: Policy, sql: String? = nil,
                        event: AuditEvent = .decision, detail: [String: AuditDetailValue] = [:]) async throws(AuditError) {
        _ = try await firewall.audit.append(AuditRecord(
            event: event, requestID: request, sessionID: sessionID, tenant: identity.tenant, credentialID: identity.credentialID,
            clientAddress: clientAddress, databaseUser: firewall.backend.user, messageKind: "mcp/\(transport.rawValue)/\(tool.rawValue)",
            decision: decision.isAllowed ? .allow : .deny, rule: decision.rule.rawValue, sqlstate: decision.sqlstate,
            message: decision.message, statementType: decision.statementType, tables: decision.tables, functions: decision.functions,
            fingerprint: decision.fingerprint, normalized: policy.logsRawQueryText ? sql ?? decision.normalized : decision.normalized, policyVersion: decision.policyVersion, detail: detail))
    }

    // MARK: - Running

    /// What ends a transaction early with an answer for the agent (a server error, a refusal).
    private struct TransactionFailure: Error {
        var result: CallTool.Result
    }

    private struct RefusedInTransaction: Error {
        var result: CallTool.Result
    }

    /// BEGIN READ ONLY, the claims and statement_timeout (bound parameters, local to the
    /// transaction), `body`, then COMMIT; ROLLBACK if anything failed.
    private func transaction<T: Sendable>(policy: Policy, request: String,
                                          _ body: @Sendable (BackendConnection) async throws -> T) async throws -> T {
        let connection: BackendConnection
        do {
            connection = try await serverConnection(policy: policy)
        } catch {
            throw TransactionFailure(result: Self.error("Palisade cannot reach the database server: \(error) (request \(request))."))
        }
        do {
            _ = try await execute("BEGIN READ ONLY", policy: policy, on: connection)
            _ = try await execute(BackendConnection.claimsQuery, parameters: [identity.claims, "\(policy.statementTimeoutMilliseconds)ms"],
                                  policy: policy, on: connection)
            let value = try await body(connection)
            _ = try await execute("COMMIT", policy: policy, on: connection)
            return value
        } catch let failure as StatementFailure {
            await rollBack(connection, policy: policy)
            throw TransactionFailure(result: Self.serverError(failure.notice, requestID: request))
        } catch let failure as BackendConnection.Failure {
            self.connection = nil
            throw TransactionFailure(result: Self.error("Palisade lost the database server: \(failure.description) (request \(request))."))
        } catch {
            await rollBack(connection, policy: policy)
            throw error
        }
    }

    /// `transaction` for tools whose body answers the agent itself.
    private func inTransaction(policy: Policy, request: String,
                               _ body: @Sendable (BackendConnection) async throws -> CallTool.Result) async -> CallTool.Result {
        do {
            return try await transaction(policy: policy, request: request, body)
        } catch let failure as TransactionFailure {
            return failure.result
        } catch let refused as RefusedInTransaction {
            return refused.result
        } catch {
            return Self.error("\(error) (request \(request)).")
        }
    }

    private func rollBack(_ connection: BackendConnection, policy: Policy) async {
        guard connection.isOpen else { self.connection = nil; return }
        do { _ = try await connection.run("ROLLBACK", deadline: deadline(policy)) } catch { self.connection = nil }
    }

    private struct StatementFailure: Error {
        var notice: ServerNotice
    }

    private func execute(_ sql: String, parameters: [String?] = [], policy: Policy, budget: ResultBudget = ResultBudget(),
                         on connection: BackendConnection) async throws -> BackendConnection.StatementResult {
        let result = try await connection.run(sql, parameters: parameters, budget: budget, deadline: deadline(policy))
        if let error = result.error { throw StatementFailure(notice: error) }
        return result
    }

    private func deadline(_ policy: Policy) -> TimeAmount {
        ServerWait.allowance(statementTimeoutMilliseconds: policy.statementTimeoutMilliseconds)
    }

    private func serverConnection(policy: Policy) async throws -> BackendConnection {
        if let connection, connection.isOpen { return connection }
        let parameters = BackendConnection.startupParameters(for: firewall.backend, policy: policy,
                                                             applicationName: "[palisade mcp \(sessionID)]")
        let opened = try await BackendConnection.connect(to: firewall.backend, tls: firewall.backendTLS, parameters: parameters, group: group)
        connection = opened
        return opened
    }

    /// Plans the query with `EXPLAIN (VERBOSE, FORMAT JSON)` in its own transaction, with the claims, as the
    /// proxy does; a refusal if the plan is over the profile's cost budget.
    private func estimate(_ sql: String, costBudget: CostBudget, policy: Policy, request: String,
                          on connection: BackendConnection) async throws -> CallTool.Result? {
        let plan = try await execute(CostBudget.explainPrefix + sql, policy: policy, on: connection)
        let estimate = (plan.rows.first?.first ?? nil).flatMap { CostBudget.estimate(fromExplainJSON: Array($0.utf8)) }
        guard let rule = estimate.map(costBudget.violation) ?? .costLimit else { return nil }
        let message = costBudget.message(for: rule, estimate: estimate)
        try await record(Decision(rule: rule, message: costBudget.auditMessage(for: rule, estimate: estimate), policyVersion: policy.version),
                         request: request, tool: .query,
                         policy: policy, event: .costLimit)
        return Self.refusal(rule: rule.rawValue, sqlstate: rule.sqlstate, message: message, hint: costBudget.hint(for: rule), requestID: request)
    }

    /// `rows` and `bytes`: what was kept before the cut (DataRow bytes of the server's rows, or
    /// the answer's bytes as sent when it is the answer that went past max_result_bytes).
    private func resultLimited(_ rule: Rule, budget: ResultBudget, rows: Int, bytes: Int, policy: Policy,
                               request: String) async throws -> CallTool.Result {
        let limit = rule == .resultBytes ? "\(budget.maxBytes ?? 0) bytes (max_result_bytes)" : "\(budget.maxRows ?? 0) rows (max_rows)"
        let message = "Palisade: the result is larger than this profile's limit of \(limit); no rows were returned"
        try await record(Decision(rule: rule, message: message, policyVersion: policy.version), request: request, tool: .query,
                         policy: policy, event: .resultLimit,
                         detail: ["rows": .int(Int64(rows)), "bytes": .int(Int64(bytes))])
        throw RefusedInTransaction(result: Self.refusal(
            rule: rule.rawValue, sqlstate: rule.sqlstate, message: message,
            hint: "Aggregate in SQL (count, sum, GROUP BY) or add a LIMIT, and select only the columns you need.", requestID: request))
    }

    private nonisolated func columns(of result: BackendConnection.StatementResult) -> [ResultJSON.Column] {
        let types = firewall.policies.serverTypes
        return result.columns.map { ResultJSON.Column(name: $0.name, type: types.byOID[$0.typeOID]?.name ?? "oid \($0.typeOID)") }
    }

    // MARK: - One call at a time

    private func acquire() async {
        guard busy else { busy = true; return }
        await withCheckedContinuation { waiting.append($0) }
    }

    private func release() {
        if waiting.isEmpty { busy = false } else { waiting.removeFirst().resume() }
    }

    // MARK: - Answers

    static func success(_ text: String) -> CallTool.Result {
        CallTool.Result(content: [.text(text: text, annotations: nil, _meta: nil)], isError: false)
    }

    static func error(_ text: String) -> CallTool.Result {
        CallTool.Result(content: [.text(text: text, annotations: nil, _meta: nil)], isError: true)
    }

    /// A refusal the agent can correct itself from: the rule, SQLSTATE, message, hint and request id.
    static func refusal(rule: String, sqlstate: String, message: String, hint: String?, requestID: String?) -> CallTool.Result {
        var text = "Palisade refused this (rule \(rule), SQLSTATE \(sqlstate)\(requestID.map { ", request \($0)" } ?? "")): \(message)"
        if let hint { text += "\nHint: \(hint)" }
        var fields: [String: Value] = ["rule": .string(rule), "sqlstate": .string(sqlstate), "message": .string(message)]
        if let hint { fields["hint"] = .string(hint) }
        if let requestID { fields["request_id"] = .string(requestID) }
        return CallTool.Result(content: [.text(text: text, annotations: nil, _meta: nil)], structuredContent: .object(fields), isError: true)
    }

    /// The server's own error for an admitted statement (a missing column, a cancelled statement, …).
    static func serverError(_ notice: ServerNotice, requestID: String) -> CallTool.Result {
        var text = "The database refused this (SQLSTATE \(notice.sqlstate), request \(requestID)): \(notice.message)"
        if let detail = notice.detail { text += "\nDetail: \(detail)" }
        if let hint = notice.hint { text += "\nHint: \(hint)" }
        return error(text)
    }

    private func auditFailure(_ error: AuditError) -> CallTool.Result {
        Self.refusal(rule: "audit.unavailable", sqlstate: "58030",
                     message: "Palisade cannot write its audit log (\(error)); no queries are admitted", hint: nil, requestID: nil)
    }
}
