import Foundation
import Testing
@testable import TenantIdentity

@Suite struct BudgetTests {
    @Test func tokenBucketRefillsContinuouslyUpToItsBurst() {
        var bucket = TokenBucket(ratePerSecond: 10, burst: 3, now: now)
        #expect((0..<3).map { _ in bucket.take(now: now) } == [.admitted, .admitted, .admitted])
        #expect(bucket.take(now: now) == .limited(retryAfter: .milliseconds(100)))
        #expect(bucket.take(now: now.addingTimeInterval(0.05)) == .limited(retryAfter: .milliseconds(50)))
        #expect(bucket.take(now: now.addingTimeInterval(0.1)) == .admitted)
        #expect(bucket.take(now: now.addingTimeInterval(0.1)) == .limited(retryAfter: .milliseconds(100)))
        // A long pause refills to the burst, not beyond it.
        let later = now.addingTimeInterval(3600)
        #expect((0..<4).map { _ in bucket.take(now: later) } == [.admitted, .admitted, .admitted, .limited(retryAfter: .milliseconds(100))])
        // A clock stepping back grants nothing.
        #expect(bucket.take(now: later.addingTimeInterval(-10)) == .limited(retryAfter: .milliseconds(100)))
    }

    @Test func slowRatesRoundRetryUp() {
        var bucket = TokenBucket(ratePerSecond: 3, burst: 1, now: now)
        #expect(bucket.take(now: now) == .admitted)
        #expect(bucket.take(now: now) == .limited(retryAfter: .milliseconds(334)))
    }

    @Test func rateLimiterKeepsTenantsApart() {
        let limiter = RateLimiter(ratePerSecond: 10, burst: 2)
        #expect(limiter.admit(tenant: "acme", now: now) == .admitted)
        #expect(limiter.admit(tenant: "acme", now: now) == .admitted)
        guard case .limited(let retry) = limiter.admit(tenant: "acme", now: now) else {
            Issue.record("third query in the same instant was admitted")
            return
        }
        #expect(limiter.admit(tenant: "globex", now: now) == .admitted)
        let refusal = limiter.refusal(tenant: "acme", retryAfter: retry)
        #expect(refusal.sqlstate == "53400")
        #expect(refusal.message == "tenant acme is over its query rate (10 per second); retry in 100 ms")
        #expect(RateLimiter(ratePerSecond: 2.5, burst: 1).refusal(tenant: "a", retryAfter: .milliseconds(400)).message
            == "tenant a is over its query rate (2.5 per second); retry in 400 ms")
    }

    @Test func rateLimiterIsExactUnderConcurrency() async {
        let limiter = RateLimiter(ratePerSecond: 0.001, burst: 100)
        let admitted = await withTaskGroup(of: Int.self) { group in
            for _ in 0..<8 {
                group.addTask { (0..<125).filter { _ in limiter.admit(tenant: "acme", now: now) == .admitted }.count }
            }
            return await group.reduce(0, +)
        }
        #expect(admitted == 100)
    }

    @Test func rateLimiterDropsIdleTenants() {
        let limiter = RateLimiter(ratePerSecond: 10, burst: 5, pruneAbove: 4)
        for n in 0..<4 { _ = limiter.admit(tenant: "t\(n)", now: now) }
        #expect(limiter.trackedTenants == 4)
        // t0..t3 are full again a second later; the fifth tenant's arrival prunes them.
        _ = limiter.admit(tenant: "busy", now: now.addingTimeInterval(1))
        #expect(limiter.trackedTenants == 1)
    }

    /// Forgetting a drained bucket would hand its tenant a fresh burst, so only full ones go.
    @Test func rateLimiterKeepsTenantsThatOweTokens() {
        let limiter = RateLimiter(ratePerSecond: 1, burst: 5, pruneAbove: 2)
        _ = limiter.admit(tenant: "idle", now: now)
        for _ in 0..<5 { _ = limiter.admit(tenant: "hot", now: now) }
        #expect(limiter.admit(tenant: "hot", now: now) != .admitted)
        let later = now.addingTimeInterval(2)
        _ = limiter.admit(tenant: "new", now: later)
        #expect(limiter.trackedTenants == 2)
        #expect([limiter.admit(tenant: "hot", now: later), limiter.admit(tenant: "hot", now: later), limiter.admit(tenant: "hot", now: later)]
            == [.admitted, .admitted, .limited(retryAfter: .seconds(1))])
    }

    @Test func sessionLimiterCountsOpenSessions() {
        let limiter = SessionLimiter(maxSessionsPerTenant: 2)
        #expect(limiter.open(tenant: "acme"))
        #expect(limiter.open(tenant: "acme"))
        #expect(!limiter.open(tenant: "acme"))
        #expect(limiter.open(tenant: "globex"))
        #expect(limiter.sessions(tenant: "acme") == 2)
        limiter.close(tenant: "acme")
        #expect(limiter.open(tenant: "acme"))
        // Closing what was never opened must not make room for an extra session.
        limiter.close(tenant: "nobody")
        limiter.close(tenant: "globex")
        limiter.close(tenant: "globex")
        #expect(limiter.trackedTenants == 1)
        #expect(limiter.open(tenant: "globex") && limiter.open(tenant: "globex") && !limiter.open(tenant: "globex"))
        let refusal = limiter.refusal(tenant: "acme")
        #expect(refusal.sqlstate == "53300")
        #expect(refusal.message == "tenant acme already has 2 sessions")
    }

    @Test func lockoutTriggersOnceAtTheThreshold() {
        let lockout = Lockout(maxDenials: 3, window: .seconds(60), coolDown: .seconds(300))
        #expect(lockout.recordDenial(credential: "jwt:abc", now: now) == nil)
        #expect(lockout.recordDenial(credential: "jwt:abc", now: now.addingTimeInterval(1)) == nil)
        #expect(lockout.check(credential: "jwt:abc", now: now.addingTimeInterval(1)) == .open)
        let event = try! #require(lockout.recordDenial(credential: "jwt:abc", now: now.addingTimeInterval(2)))
        let until = now.addingTimeInterval(302)
        #expect(event == LockoutEvent(credential: "jwt:abc", denials: 3, window: .seconds(60), at: now.addingTimeInterval(2), lockedUntil: until))
        // Further denials while locked neither report again nor extend the lock.
        for n in 3..<10 { #expect(lockout.recordDenial(credential: "jwt:abc", now: now.addingTimeInterval(Double(n))) == nil) }
        #expect(lockout.check(credential: "jwt:abc", now: now.addingTimeInterval(100)) == .locked(until: until))
        #expect(lockout.check(credential: "jwt:other", now: now) == .open)
        #expect(event.refusal.sqlstate == "28000")
        #expect(event.refusal.message == "credential jwt:abc is locked after 3 denied queries in 60 s; retry after 2026-11-23T07:05:02Z")
        #expect(lockout.refusal(credential: "jwt:abc", until: until) == event.refusal)
    }

    @Test func lockoutWindowSlides() {
        let lockout = Lockout(maxDenials: 3, window: .seconds(60), coolDown: .seconds(300))
        #expect(lockout.recordDenial(credential: "k", now: now) == nil)
        #expect(lockout.recordDenial(credential: "k", now: now.addingTimeInterval(30)) == nil)
        // The first denial is exactly 60 s old: out of the window.
        #expect(lockout.recordDenial(credential: "k", now: now.addingTimeInterval(60)) == nil)
        #expect(lockout.check(credential: "k", now: now.addingTimeInterval(60)) == .open)
        #expect(lockout.recordDenial(credential: "k", now: now.addingTimeInterval(61)) != nil)
    }

    @Test func lockoutOpensAfterCoolDownWithACleanCount() {
        let lockout = Lockout(maxDenials: 2, window: .seconds(60), coolDown: .seconds(120))
        _ = lockout.recordDenial(credential: "k", now: now)
        #expect(lockout.recordDenial(credential: "k", now: now.addingTimeInterval(1)) != nil)
        #expect(lockout.check(credential: "k", now: now.addingTimeInterval(120.9)) == .locked(until: now.addingTimeInterval(121)))
        #expect(lockout.check(credential: "k", now: now.addingTimeInterval(121)) == .open)
        // Denials from before the lock do not carry over.
        #expect(lockout.recordDenial(credential: "k", now: now.addingTimeInterval(122)) == nil)
        #expect(lockout.recordDenial(credential: "k", now: now.addingTimeInterval(123)) != nil)
        // Without a check in between, a denial after the cool-down also starts clean.
        #expect(lockout.recordDenial(credential: "k", now: now.addingTimeInterval(300)) == nil)
    }

    @Test func lockoutDropsIdleCredentialsButKeepsLockedOnes() {
        let lockout = Lockout(maxDenials: 2, window: .seconds(10), coolDown: .seconds(1000), pruneAbove: 4)
        _ = lockout.recordDenial(credential: "bad", now: now)
        _ = lockout.recordDenial(credential: "bad", now: now)
        for n in 0..<3 { _ = lockout.recordDenial(credential: "c\(n)", now: now) }
        #expect(lockout.trackedCredentials == 4)
        _ = lockout.recordDenial(credential: "new", now: now.addingTimeInterval(20))
        #expect(lockout.trackedCredentials == 2)
        #expect(lockout.check(credential: "bad", now: now.addingTimeInterval(20)) == .locked(until: now.addingTimeInterval(1000)))
    }
}
