import CoreMetrics
import Foundation
import Metrics
import QueryPolicy
import Locking

/// What the proxy counts, through swift-metrics (the executable installs a Prometheus backend).
/// Metric objects are made once per label set: making one goes through the backend's registry.
final class ProxyMetrics: Sendable {
    static let shared = ProxyMetrics()

    private struct DecisionKey: Hashable {
        var rule: Rule
        var monitorOnly: Bool
    }

    private let decisions = Locked<[DecisionKey: Counter]>([:])
    private let denialsByTenant = Locked<[String: Counter]>([:])
    /// Tenants with their own denial series; the rest share "(other)", so a flood of token tenants
    /// cannot grow the registry without bound.
    static let maxTenantSeries = 1000
    private let sessions = Gauge(label: "palisade_sessions")
    private let sessionCount = Locked(0)
    private let lockouts = Counter(label: "palisade_lockouts_total")
    private let decisionTime = Timer(label: "palisade_decision_seconds")
    private let backendTime = Timer(label: "palisade_backend_seconds")

    /// `locksOut`: the decision locked its credential out (not a refusal while it is locked).
    func decided(_ decision: Decision, tenant: String, monitorOnly: Bool, locksOut: Bool) {
        let key = DecisionKey(rule: decision.rule, monitorOnly: monitorOnly)
        let counter = decisions.withLock { counters in
            if let counter = counters[key] { return counter }
            let counter = Counter(label: "palisade_decisions_total", dimensions: [
                ("decision", decision.verdict.rawValue), ("rule", decision.rule.rawValue), ("enforced", monitorOnly ? "no" : "yes"),
            ])
            counters[key] = counter
            return counter
        }
        counter.increment()
        if locksOut { lockouts.increment() }
        if !decision.isAllowed { denied(tenant: tenant) }
    }

    private func denied(tenant: String) {
        let counter = denialsByTenant.withLock { counters in
            let label = tenant.isEmpty ? "(none)" : counters[tenant] != nil || counters.count < Self.maxTenantSeries ? tenant : "(other)"
            if let counter = counters[label] { return counter }
            let counter = Counter(label: "palisade_denials_total", dimensions: [("tenant", label)])
            counters[label] = counter
            return counter
        }
        counter.increment()
    }

    private let resultLimits = [Rule.resultRows, .resultBytes].map { rule in
        (rule, Counter(label: "palisade_result_limits_total", dimensions: [("rule", rule.rawValue)]))
    }
    private let costLimits = [Rule.costLimit, .estimatedRows, .argumentLimit].map { rule in
        (rule, Counter(label: "palisade_cost_limits_total", dimensions: [("rule", rule.rawValue)]))
    }

    /// An admitted query's answer cut at the profile's max_rows or max_result_bytes, or the query
    /// refused at the planner's estimate before it ran.
    func resultLimited(_ rule: Rule, beforeRunning: Bool) {
        (beforeRunning ? costLimits : resultLimits).first { $0.0 == rule }?.1.increment()
    }

    func decisionTook(nanoseconds: Int64) {
        decisionTime.recordNanoseconds(nanoseconds)
    }

    func backendAnswered(nanoseconds: Int64) {
        backendTime.recordNanoseconds(nanoseconds)
    }

    func sessionOpened() {
        sessions.record(sessionCount.withLock { $0 += 1; return $0 })
    }

    func sessionClosed() {
        sessions.record(sessionCount.withLock { $0 -= 1; return $0 })
    }
}
