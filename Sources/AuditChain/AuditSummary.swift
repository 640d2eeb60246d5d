/// What a reviewer report shows, gathered from entries in one pass with bounded memory: per-key
/// tables are `BoundedCounter`s, event lists keep only the latest few, and the timeline never has
/// more than `Timeline.maxBuckets` buckets. Every count is taken through an `AuditFilter`, so each
/// one can be reproduced with `palisade audit list`.
public struct AuditSummary {
    /// An entry as a row of an event list.
    public struct EventRow: Sendable {
        public var seq: UInt64
        public var timeMicros: Int64
        public var tenant: String?
        public var credentialID: String?
        public var rule: String?
        public var requestID: String?
        public var message: String?
        public var detail: [String: AuditDetailValue]

        init(_ entry: AuditEntry) {
            seq = entry.seq
            timeMicros = entry.timeMicros
            tenant = entry.record.tenant
            credentialID = entry.record.credentialID
            rule = entry.record.rule
            requestID = entry.record.requestID
            message = entry.record.message
            detail = entry.record.detail
        }
    }

    /// A count over a filter, with the first and last times and the latest matching entries.
    public struct EventCount: Sendable {
        public var title: String
        public var filter: AuditFilter
        public var count: UInt64 = 0
        public var firstMicros: Int64?
        public var lastMicros: Int64?
        public var latest: LatestRows

        init(_ title: String, _ filter: AuditFilter, keep: Int) {
            self.title = title
            self.filter = filter
            latest = LatestRows(capacity: keep)
        }

        mutating func add(_ entry: AuditEntry) {
            count += 1
            if firstMicros == nil { firstMicros = entry.timeMicros }
            lastMicros = entry.timeMicros
            latest.append(EventRow(entry))
        }
    }

    /// The last `capacity` rows, oldest first.
    public struct LatestRows: Sendable {
        public let capacity: Int
        private var ring: [EventRow] = []
        private var next = 0

        init(capacity: Int) { self.capacity = capacity }

        mutating func append(_ row: EventRow) {
            if ring.count < capacity {
                ring.append(row)
            } else {
                ring[next] = row
                next = (next + 1) % capacity
            }
        }

        public var rows: [EventRow] { Array(ring[next...] + ring[..<next]) }
    }

    public struct FingerprintKey: Hashable, Sendable {
        public var fingerprint: String
        public var rule: String
    }

    public struct PolicyVersion {
        public var version: String
        /// Entries in scope that name this version: its decisions and its loads.
        public var entries: UInt64 = 0
        /// Its `policy_loaded` entries anywhere in the log (not only in scope): when it came into force.
        public var loads: EventCount
    }

    /// How many of each kind a table shows and how many keys the bounded counters keep: beyond
    /// `trackedKeys` distinct keys the counts become Space-Saving estimates, which the report marks.
    public static let trackedKeys = 1000
    public static let latestRows = 20
    static let maxPolicyVersions = 256

    /// since, until and tenant: every filter on the page starts from this one.
    public let scope: AuditFilter
    public private(set) var entriesInScope: UInt64 = 0
    public private(set) var firstMicros: Int64?
    public private(set) var lastMicros: Int64?
    public private(set) var allowed: UInt64 = 0
    public private(set) var denied: UInt64 = 0
    public private(set) var timeline: Timeline
    public private(set) var deniedByRule = BoundedCounter<String, Void>(capacity: AuditSummary.trackedKeys)
    public private(set) var deniedByTenant = BoundedCounter<String, Void>(capacity: AuditSummary.trackedKeys)
    /// Payload: the tenant the credential belongs to, as first seen.
    public private(set) var deniedByCredential = BoundedCounter<String, String?>(capacity: AuditSummary.trackedKeys)
    /// Payload: the logged text (normalized unless a policy logs raw text: the renderer normalizes again).
    public private(set) var deniedFingerprints = BoundedCounter<FingerprintKey, String?>(capacity: AuditSummary.trackedKeys)
    public private(set) var securityEvents: [EventCount]
    /// Lifecycle events in the time range (they have no tenant, so the tenant filter does not apply).
    public private(set) var lifecycle: [EventCount]
    public private(set) var policyVersions: [PolicyVersion] = []
    private var policyIndexByVersion: [String: Int] = [:]
    /// Policy versions past `maxPolicyVersions`, not shown.
    public private(set) var policyVersionsDropped: UInt64 = 0

    public init(since: Int64? = nil, until: Int64? = nil, tenant: String? = nil) {
        scope = AuditFilter(tenant: tenant, since: since, until: until)
        timeline = Timeline(since: since, until: until)
        let keep = Self.latestRows
        func event(_ title: String, _ filter: AuditFilter) -> EventCount {
            var filter = filter
            filter.tenant = tenant
            filter.since = since
            filter.until = until
            return EventCount(title, filter, keep: keep)
        }
        securityEvents = [
            event("Lockouts", AuditFilter(event: .lockout)),
            event("Failed logins", AuditFilter(event: .authFailure, rule: "auth.failed")),
            event("Logins refused while locked out", AuditFilter(event: .authFailure, rule: "auth.locked")),
            event("Sessions ended by an expired token", AuditFilter(event: .authFailure, rule: "auth.token-expired")),
            event("Claim tampering: set_config()", AuditFilter(rule: "fn.forbidden", messageContains: "set_config() is never allowed")),
            event("Claim tampering: SET request.jwt.claims", AuditFilter(rule: "stmt.set", messageContains: "SET request.jwt.claims ")),
            event("Claim tampering: RESET (any RESET; RESET ALL clears the claim)", AuditFilter(rule: "stmt.reset")),
            event("Catalog secrets (pg_authid, pg_shadow, …)", AuditFilter(rule: "rel.secret")),
            event("Protocol refusals", AuditFilter(event: .protocolRefusal)),
            event("Budget: query rate", AuditFilter(rule: "budget.rate")),
            event("Budget: sessions per tenant", AuditFilter(rule: "budget.sessions")),
        ]
        func lifecycleEvent(_ title: String, _ kind: AuditEvent) -> EventCount {
            EventCount(title, AuditFilter(event: kind, since: since, until: until), keep: keep)
        }
        lifecycle = [
            lifecycleEvent("Starts (the first, then each restart)", .start),
            lifecycleEvent("Clean stops", .stop),
            lifecycleEvent("Crash recoveries", .recovery),
            lifecycleEvent("Segments opened", .segmentOpened),
            lifecycleEvent("Signing key rotations", .keyRotation),
        ]
    }

    public mutating func add(_ entry: AuditEntry) {
        let record = entry.record
        if record.event == .policyLoaded, let version = record.policyVersion {
            // Load entries count wherever they are: a version loaded before the range can be in force in it.
            if let index = policyIndex(version) { policyVersions[index].loads.add(entry) }
        }
        let inTime = (scope.since.map { entry.timeMicros >= $0 } ?? true) && (scope.until.map { entry.timeMicros < $0 } ?? true)
        guard inTime else { return }
        if record.event.isLifecycle {
            for index in lifecycle.indices where lifecycle[index].filter.matches(entry) { lifecycle[index].add(entry) }
        }
        guard scope.matches(entry) else { return }
        entriesInScope += 1
        if firstMicros == nil { firstMicros = entry.timeMicros }
        lastMicros = entry.timeMicros
        if let version = record.policyVersion, !version.isEmpty, let index = policyIndex(version) {
            policyVersions[index].entries += 1
        }
        guard let decision = record.decision else { return }
        let rule = record.rule ?? ""
        timeline.add(at: entry.timeMicros, decision: decision, rule: rule)
        if decision == .allow {
            allowed += 1
            return
        }
        denied += 1
        let time = entry.timeMicros
        deniedByRule.add(rule, at: time)
        deniedByTenant.add(record.tenant ?? "", at: time)
        deniedByCredential.add(record.credentialID ?? "", at: time) { record.tenant }
        if let fingerprint = record.fingerprint, !fingerprint.isEmpty {
            deniedFingerprints.add(FingerprintKey(fingerprint: fingerprint, rule: rule), at: time) {
                // Long texts are not kept: 1000 of them must stay small.
                record.normalized.flatMap { $0.utf8.count <= 8192 ? $0 : nil }
            }
        }
        for index in securityEvents.indices where securityEvents[index].filter.matches(entry) {
            securityEvents[index].add(entry)
        }
    }

    private mutating func policyIndex(_ version: String) -> Int? {
        if let index = policyIndexByVersion[version] { return index }
        guard policyVersions.count < Self.maxPolicyVersions else {
            policyVersionsDropped += 1
            return nil
        }
        let loads = EventCount("", AuditFilter(event: .policyLoaded, policyVersion: version), keep: 10)
        policyVersions.append(PolicyVersion(version: version, loads: loads))
        policyIndexByVersion[version] = policyVersions.count - 1
        return policyVersions.count - 1
    }
}

/// Decisions per time bucket and rule. The bucket width comes from the range: with both ends
/// given it is fixed up front; otherwise it starts at a minute and doubles up the ladder whenever
/// the entries would need more than `maxBuckets` buckets, merging the buckets it has (each width
/// divides the next, and all are aligned to a Monday 00:00 UTC, so a bucket never straddles two).
public struct Timeline: Sendable {
    public static let widthsSeconds: [Int64] = [60, 300, 900, 3600, 3 * 3600, 6 * 3600, 86_400, 7 * 86_400, 28 * 86_400]
    public static let maxBuckets: Int64 = 60
    /// 1970-01-05T00:00:00Z, a Monday.
    static let originMicros: Int64 = 4 * 86_400 * 1_000_000
    /// Distinct rules kept apart; more are counted under `otherRule` (a log has about 55).
    static let maxRules = 256
    public static let otherRule = "(other rules)"

    public struct Cell: Hashable, Sendable {
        public var bucket: Int64
        public var decision: AuditDecision
        public var rule: Int
    }

    public let since: Int64?
    public let until: Int64?
    public private(set) var widthIndex: Int
    private let fixedWidth: Bool
    public private(set) var counts: [Cell: UInt64] = [:]
    public private(set) var rules: [String] = []
    private var ruleIndex: [String: Int] = [:]
    public private(set) var firstBucket: Int64?
    public private(set) var lastBucket: Int64?

    init(since: Int64?, until: Int64?) {
        self.since = since
        self.until = until
        if let since, let until, until > since {
            let span = until - since
            widthIndex = Self.widthsSeconds.firstIndex { span <= $0 * 1_000_000 * (Self.maxBuckets - 1) } ?? Self.widthsSeconds.count - 1
            fixedWidth = true
            firstBucket = bucket(since)
            lastBucket = bucket(until - 1)
        } else {
            widthIndex = 0
            fixedWidth = false
        }
    }

    public var widthMicros: Int64 { Self.widthsSeconds[widthIndex] * 1_000_000 }

    func bucket(_ micros: Int64) -> Int64 { Self.bucket(micros, width: widthMicros) }

    static func bucket(_ micros: Int64, width: Int64) -> Int64 {
        let offset = micros - originMicros
        return offset >= 0 ? offset / width : (offset - width + 1) / width
    }

    /// The bucket's time range, cut to the report's range: the filter that reproduces its counts.
    public func range(ofBucket index: Int64) -> (since: Int64, until: Int64) {
        var start = Self.originMicros + index * widthMicros
        var end = start + widthMicros
        if let since { start = max(start, since) }
        if let until { end = min(end, until) }
        return (start, end)
    }

    mutating func add(at micros: Int64, decision: AuditDecision, rule: String) {
        var index = bucket(micros)
        if !fixedWidth {
            while let first = firstBucket, let last = lastBucket, max(last, index) - min(first, index) + 1 > Self.maxBuckets,
                  widthIndex < Self.widthsSeconds.count - 1 {
                coarsen()
                index = bucket(micros)
            }
            firstBucket = min(firstBucket ?? index, index)
            lastBucket = max(lastBucket ?? index, index)
        }
        counts[Cell(bucket: index, decision: decision, rule: intern(rule)), default: 0] += 1
    }

    private mutating func intern(_ rule: String) -> Int {
        if let index = ruleIndex[rule] { return index }
        let name = rules.count < Self.maxRules ? rule : Self.otherRule
        if let index = ruleIndex[name] { return index }
        rules.append(name)
        ruleIndex[name] = rules.count - 1
        return rules.count - 1
    }

    private mutating func coarsen() {
        let oldWidth = widthMicros
        widthIndex += 1
        let newWidth = widthMicros
        func remap(_ index: Int64) -> Int64 { Self.bucket(Self.originMicros + index * oldWidth, width: newWidth) }
        var merged: [Cell: UInt64] = [:]
        for (cell, count) in counts {
            merged[Cell(bucket: remap(cell.bucket), decision: cell.decision, rule: cell.rule), default: 0] += count
        }
        counts = merged
        firstBucket = firstBucket.map(remap)
        lastBucket = lastBucket.map(remap)
    }
}
