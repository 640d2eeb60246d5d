import AuditChain
import Foundation
import PostgresWire
import QueryPolicy
import TenantIdentity

/// An audit record a session owes, with what its metrics and log line need.
public struct SessionRecord: Sendable {
    public var kind: String
    public var tenant: String
    public var credential: String
    public var user: String
    public var decision: Decision
    public var requestID: String?
    public var event: AuditEvent
    /// The raw text, when the profile logs it instead of the normalized text.
    public var normalized: String?
    /// Monitor mode: the policy would deny this, but it was forwarded.
    public var monitorOnly: Bool

    public init(kind: String, tenant: String, credential: String, user: String, _ decision: Decision, requestID: String? = nil,
                event: AuditEvent = .decision, normalized: String? = nil, monitorOnly: Bool = false) {
        self.kind = kind
        self.tenant = tenant
        self.credential = credential
        self.user = user
        self.decision = decision
        self.requestID = requestID
        self.event = event
        self.normalized = normalized
        self.monitorOnly = monitorOnly
    }

    func auditRecord(sessionID: String, clientAddress: String) -> AuditRecord {
        var record = AuditRecord(
            event: event, requestID: requestID ?? "\(sessionID)-0", sessionID: sessionID, tenant: tenant, credentialID: credential,
            clientAddress: clientAddress, databaseUser: user, messageKind: kind,
            decision: decision.isAllowed ? .allow : .deny, rule: decision.rule.rawValue, sqlstate: decision.sqlstate,
            message: decision.message, statementType: decision.statementType, tables: decision.tables, functions: decision.functions,
            fingerprint: decision.fingerprint, normalized: normalized ?? decision.normalized, policyVersion: decision.policyVersion)
        if monitorOnly, !decision.isAllowed {
            // Monitor mode: the policy would deny this, but the query was forwarded.
            record.detail["mode"] = .string("monitor")
            record.detail["enforced"] = .string("no")
        }
        return record
    }
}

/// Decides a relaying session's texts: the rate budget, the policy (reloaded policies apply from
/// the next text on), declared parameter types, monitor mode and the lockout. What the decision
/// leaves behind (its records, a lockout) goes into the relay's output; nothing here refers back
/// to the session.
struct SessionDecisions {
    let identity: SessionIdentity
    let user: String
    let sessionID: String
    let policies: PolicyRegistry
    /// The profile's engine when the session started, should a reload ever drop the profile.
    let loginEngine: PolicyEngine
    let budgets: TenantBudgets

    func decide(_ sql: String, _ kind: QueryRelay.MessageKind, parameterTypes: [UInt32], request: Int,
                into output: inout QueryRelay.Output) -> (Decision, ServerNotice?) {
        let engine = policies.engine(for: identity.profile) ?? loginEngine
        // One copy: `Policy` is a large value, and each read of `engine.policy` copied it (1.1k
        // instructions a read, callgrind).
        let policy = engine.policy
        let requestID = "\(sessionID)-\(request)"
        let now = Date()
        var decision: Decision
        if kind == .functionCall {
            decision = budgetRefusal(now: now, countsTowardRate: false, policyVersion: policy.version, into: &output)
                ?? Decision(rule: .functionCallMessage, message: "fast-path function calls are not admitted",
                            hint: "Call functions from a SELECT statement.", policyVersion: policy.version)
        } else if let refused = budgetRefusal(now: now, countsTowardRate: true, policyVersion: policy.version, into: &output) {
            decision = refused
        } else {
            let started = DispatchTime.now().uptimeNanoseconds
            decision = engine.evaluate(sql)
            if decision.isAllowed, !parameterTypes.isEmpty {
                decision = engine.checkParameterTypes(parameterTypes, of: policies.serverTypes, admitting: decision)
            }
            ProxyMetrics.shared.decisionTook(nanoseconds: Int64(DispatchTime.now().uptimeNanoseconds - started))
        }
        output.records.append(SessionRecord(
            kind: kind.rawValue, tenant: identity.tenant, credential: identity.credentialID, user: user, decision, requestID: requestID,
            event: kind == .functionCall ? .protocolRefusal : .decision,
            normalized: policy.logsRawQueryText && kind != .functionCall ? sql : nil,
            monitorOnly: policy.isMonitorOnly && !decision.rule.isBudget && kind != .functionCall))
        let enforced = decision.rule.isBudget || kind == .functionCall || !policy.isMonitorOnly
        guard !decision.isAllowed, enforced else { return (decision, nil) }
        // Empty text is a driver's ping (JDBC's isValid), answered as the server would: not a denial to count.
        if !decision.rule.isBudget, decision.rule != .empty, let lockout = budgets.lockout,
           let event = lockout.recordDenial(credential: identity.credentialID, now: now) {
            output.records.append(SessionRecord(
                kind: kind.rawValue, tenant: identity.tenant, credential: identity.credentialID, user: user,
                Decision(rule: .lockedOut, message: event.refusal.message, policyVersion: policy.version),
                requestID: requestID, event: .lockout))
            output.lockout = event.refusal.message
        }
        return (decision, ServerNotice(
            sqlstate: decision.sqlstate, message: "Palisade: " + decision.message, detail: "rule \(decision.rule.rawValue); request \(requestID)",
            hint: decision.hint, position: decision.position))
    }

    /// Every Bind of an admitted prepared statement: a credential locked out meanwhile ends this
    /// session, and each execution after the one its Parse counted counts toward the tenant's rate
    /// (200 Bind/Execute rounds of one Parse went past a 1-a-second rate, ninth red team). Audited
    /// only when refused: the statement's decision is already in the log.
    func admitExecution(request: Int, countsTowardRate: Bool, into output: inout QueryRelay.Output) -> ServerNotice? {
        // The policy's version only for a refusal: each read of an engine's policy copies it.
        guard let decision = budgetRefusal(now: Date(), countsTowardRate: countsTowardRate,
                                           policyVersion: (policies.engine(for: identity.profile) ?? loginEngine).policy.version,
                                           into: &output) else { return nil }
        let requestID = "\(sessionID)-\(request)"
        output.records.append(SessionRecord(kind: "B", tenant: identity.tenant, credential: identity.credentialID, user: user, decision,
                                            requestID: requestID))
        return ServerNotice(sqlstate: decision.sqlstate, message: "Palisade: " + decision.message,
                            detail: "rule \(decision.rule.rawValue); request \(requestID)", hint: decision.hint)
    }

    /// The credential's lockout, if any of its sessions locked it (this session then ends too, with
    /// its end left in `output`, or it could go on probing), and the tenant's rate where the text
    /// or execution counts toward it: the refusal, or nil.
    private func budgetRefusal(now: Date, countsTowardRate: Bool, policyVersion: @autoclosure () -> String,
                               into output: inout QueryRelay.Output) -> Decision? {
        if let lockout = budgets.lockout, case .locked(let until) = lockout.check(credential: identity.credentialID, now: now) {
            let refusal = lockout.refusal(credential: identity.credentialID, until: until)
            output.lockout = refusal.message
            return Decision(rule: .lockedOut, message: refusal.message, hint: refusal.hint, policyVersion: policyVersion())
        }
        if countsTowardRate, let rate = budgets.rate, case .limited(let retryAfter) = rate.admit(tenant: identity.tenant, now: now) {
            let refusal = rate.refusal(tenant: identity.tenant, retryAfter: retryAfter)
            return Decision(rule: .rateLimited, message: refusal.message, hint: refusal.hint, policyVersion: policyVersion())
        }
        return nil
    }
}

extension Rule {
    /// The tenant's and the credential's budgets, which monitor mode enforces too and which are
    /// not denials a lockout counts.
    var isBudget: Bool { self == .rateLimited || self == .lockedOut }
}
