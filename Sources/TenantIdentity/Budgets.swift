import Foundation
import Locking

// Per-tenant and per-credential budgets. Every call takes the current time from the caller, so
// tests step time instead of sleeping and the proxy reads the clock once per query. Wall-clock
// `Date` is used throughout because lockouts are reported to people as UTC times; a clock that
// steps backwards only ever makes a budget stricter for a moment, never looser.

public enum RateDecision: Sendable, Equatable {
    case admitted
    case limited(retryAfter: Duration)
}

/// A classic token bucket: `burst` tokens at most, refilled continuously at `ratePerSecond`.
public struct TokenBucket: Sendable, Equatable {
    public let ratePerSecond: Double
    public let burst: Double
    public private(set) var tokens: Double
    public private(set) var updated: Date

    public init(ratePerSecond: Double, burst: Int, now: Date) {
        precondition(ratePerSecond > 0 && burst >= 1, "a token bucket needs a positive rate and a burst of at least 1")
        self.ratePerSecond = ratePerSecond
        self.burst = Double(burst)
        self.tokens = Double(burst)
        self.updated = now
    }

    /// Date arithmetic on seconds since 2001 loses a few hundred nanoseconds; without this slack a
    /// token refilled in exactly its interval could count as 0.9999999 and be refused.
    private static let epsilon = 1e-6

    public mutating func take(now: Date) -> RateDecision {
        refill(now: now)
        if tokens + Self.epsilon >= 1 {
            tokens = max(0, tokens - 1)
            return .admitted
        }
        // Rounded up so a client that waits exactly this long finds a token; the small
        // allowance keeps float noise (0.0500000001 s) from adding a whole millisecond.
        let waitMs = (1 - tokens) / ratePerSecond * 1000
        return .limited(retryAfter: .milliseconds(max(1, Int64((waitMs - 0.001).rounded(.up)))))
    }

    public mutating func refill(now: Date) {
        let elapsed = now.timeIntervalSince(updated)
        guard elapsed > 0 else { return }
        tokens = min(burst, tokens + elapsed * ratePerSecond)
        updated = now
    }

    /// A full bucket carries no state worth keeping: forgetting it and starting afresh is the same.
    func isFull(now: Date) -> Bool {
        tokens + max(0, now.timeIntervalSince(updated)) * ratePerSecond + Self.epsilon >= burst
    }
}

/// Prunes a map only when it has doubled since the last prune, so that a map full of live
/// entries costs amortised O(1) per access instead of a scan every time.
struct PruneSchedule {
    let minimum: Int
    var next: Int

    init(minimum: Int) {
        self.minimum = max(1, minimum)
        self.next = self.minimum
    }

    mutating func due(count: Int) -> Bool { count > next }
    mutating func pruned(remaining: Int) { next = max(minimum, remaining * 2) }
}

public final class RateLimiter: Sendable {
    public let ratePerSecond: Double
    public let burst: Int
    private let state: Locked<(buckets: [String: TokenBucket], schedule: PruneSchedule)>

    /// `pruneAbove`: how many tenants are tracked before idle (full) buckets are dropped.
    public init(ratePerSecond: Double, burst: Int, pruneAbove: Int = 10_000) {
        precondition(ratePerSecond > 0 && burst >= 1, "a rate limiter needs a positive rate and a burst of at least 1")
        self.ratePerSecond = ratePerSecond
        self.burst = burst
        self.state = Locked(([:], PruneSchedule(minimum: pruneAbove)))
    }

    public func admit(tenant: String, now: Date) -> RateDecision {
        state.withLock { state in
            var bucket = state.buckets[tenant] ?? TokenBucket(ratePerSecond: ratePerSecond, burst: burst, now: now)
            let decision = bucket.take(now: now)
            state.buckets[tenant] = bucket
            if state.schedule.due(count: state.buckets.count) {
                state.buckets = state.buckets.filter { !$0.value.isFull(now: now) }
                state.schedule.pruned(remaining: state.buckets.count)
            }
            return decision
        }
    }

    public func refusal(tenant: String, retryAfter: Duration) -> BudgetRefusal {
        .rateLimited(tenant: tenant, ratePerSecond: ratePerSecond, retryAfter: retryAfter)
    }

    public var trackedTenants: Int { state.withLock { $0.buckets.count } }
}

public final class SessionLimiter: Sendable {
    public let maxSessionsPerTenant: Int
    // Tenants with no session are removed at once, so the map only holds tenants with sessions.
    private let open = Locked<[String: Int]>([:])

    public init(maxSessionsPerTenant: Int) {
        precondition(maxSessionsPerTenant >= 1, "a session limit must allow at least one session")
        self.maxSessionsPerTenant = maxSessionsPerTenant
    }

    /// Takes a session slot; false when the tenant is at its limit (nothing is taken then).
    public func open(tenant: String) -> Bool {
        open.withLock { open in
            let count = open[tenant, default: 0]
            guard count < maxSessionsPerTenant else { return false }
            open[tenant] = count + 1
            return true
        }
    }

    /// Gives a slot back. A close without an open is ignored rather than letting the count go
    /// negative and grant extra sessions later.
    public func close(tenant: String) {
        open.withLock { open in
            guard let count = open[tenant] else { return }
            open[tenant] = count > 1 ? count - 1 : nil
        }
    }

    public func sessions(tenant: String) -> Int { open.withLock { $0[tenant, default: 0] } }

    public var trackedTenants: Int { open.withLock { $0.count } }

    public func refusal(tenant: String) -> BudgetRefusal {
        .tooManySessions(tenant: tenant, limit: maxSessionsPerTenant)
    }
}

public enum LockoutStatus: Sendable, Equatable {
    case open
    case locked(until: Date)
}

/// Emitted once per lock, for the audit log.
public struct LockoutEvent: Sendable, Equatable {
    public let credential: String
    public let denials: Int
    public let window: Duration
    public let at: Date
    public let lockedUntil: Date

    public var refusal: BudgetRefusal {
        .lockedOut(credential: credential, denials: denials, window: window, until: lockedUntil)
    }
}

/// Locks a credential out after `maxDenials` denied queries within a sliding `window`, for
/// `coolDown`; afterwards it starts again with a clean count.
public final class Lockout: Sendable {
    public let maxDenials: Int
    public let window: Duration
    public let coolDown: Duration

    private struct Entry {
        var denials: [Date] = []
        var lockedUntil: Date?
    }

    private let state: Locked<(entries: [String: Entry], schedule: PruneSchedule)>

    public init(maxDenials: Int, window: Duration, coolDown: Duration, pruneAbove: Int = 10_000) {
        precondition(maxDenials >= 1 && window > .zero && coolDown > .zero, "a lockout needs at least one denial, a window and a cool-down")
        self.maxDenials = maxDenials
        self.window = window
        self.coolDown = coolDown
        self.state = Locked(([:], PruneSchedule(minimum: pruneAbove)))
    }

    /// Records a denied query; returns an event only when this denial locks the credential.
    /// Denials while locked neither extend the lock nor produce another event.
    public func recordDenial(credential: String, now: Date) -> LockoutEvent? {
        let windowSeconds = Formatting.seconds(window)
        return state.withLock { state in
            var entry = state.entries[credential] ?? Entry()
            defer {
                state.entries[credential] = entry
                prune(&state, now: now)
            }
            if let until = entry.lockedUntil {
                if now < until { return nil }
                entry = Entry()
            }
            entry.denials.removeAll { now.timeIntervalSince($0) >= windowSeconds }
            entry.denials.append(now)
            guard entry.denials.count >= maxDenials else { return nil }
            let until = now.addingTimeInterval(Formatting.seconds(coolDown))
            entry = Entry(denials: [], lockedUntil: until)
            return LockoutEvent(credential: credential, denials: maxDenials, window: window, at: now, lockedUntil: until)
        }
    }

    public func check(credential: String, now: Date) -> LockoutStatus {
        state.withLock { state in
            guard let until = state.entries[credential]?.lockedUntil else { return .open }
            if now < until { return .locked(until: until) }
            state.entries[credential] = nil
            return .open
        }
    }

    public func refusal(credential: String, until: Date) -> BudgetRefusal {
        .lockedOut(credential: credential, denials: maxDenials, window: window, until: until)
    }

    public var trackedCredentials: Int { state.withLock { $0.entries.count } }

    private func prune(_ state: inout (entries: [String: Entry], schedule: PruneSchedule), now: Date) {
        guard state.schedule.due(count: state.entries.count) else { return }
        let windowSeconds = Formatting.seconds(window)
        state.entries = state.entries.filter { _, entry in
            if let until = entry.lockedUntil, now < until { return true }
            return entry.denials.contains { now.timeIntervalSince($0) < windowSeconds }
        }
        state.schedule.pruned(remaining: state.entries.count)
    }
}

/// A budget refusal as the client sees it: an ErrorResponse's SQLSTATE, message and hint.
public enum BudgetRefusal: Error, Sendable, Equatable, CustomStringConvertible {
    case rateLimited(tenant: String, ratePerSecond: Double, retryAfter: Duration)
    case tooManySessions(tenant: String, limit: Int)
    case lockedOut(credential: String, denials: Int, window: Duration, until: Date)

    public var sqlstate: String {
        switch self {
        case .rateLimited: "53400"  // configuration_limit_exceeded
        case .tooManySessions: "53300"  // too_many_connections
        case .lockedOut: "28000"  // invalid_authorization_specification
        }
    }

    public var message: String {
        switch self {
        case .rateLimited(let tenant, let rate, let retryAfter):
            "tenant \(tenant) is over its query rate (\(Formatting.number(rate)) per second); retry in \(Formatting.duration(retryAfter))"
        case .tooManySessions(let tenant, let limit):
            "tenant \(tenant) already has \(limit) session\(limit == 1 ? "" : "s")"
        case .lockedOut(let credential, let denials, let window, let until):
            "credential \(credential) is locked after \(denials) denied quer\(denials == 1 ? "y" : "ies") in \(Formatting.duration(window)); retry after \(Formatting.utc(until, roundUp: true))"
        }
    }

    public var hint: String {
        switch self {
        case .rateLimited: "Slow down and retry; the limit is per tenant, shared by all its sessions."
        case .tooManySessions: "Close idle sessions, or size the client's connection pool below the tenant's limit."
        case .lockedOut: "Too many queries from this credential were denied by policy; fix the client before retrying."
        }
    }

    public var description: String { "\(sqlstate): \(message)" }
}

/// Per-tenant limits: concurrent sessions, query rate, and the lockout after repeated denials.
public struct TenantBudgets: Sendable {
    public var sessions: SessionLimiter?
    public var rate: RateLimiter?
    public var lockout: Lockout?

    public init(sessions: SessionLimiter? = nil, rate: RateLimiter? = nil, lockout: Lockout? = nil) {
        self.sessions = sessions
        self.rate = rate
        self.lockout = lockout
    }
}
