import Encoding

/// A selection of entries, as `palisade audit list` takes it on its command line. The reviewer
/// report counts through these, so every number it prints comes with the filter that reproduces it.
public struct AuditFilter: Sendable, Hashable {
    public var decision: AuditDecision?
    public var event: AuditEvent?
    public var tenant: String?
    public var credentialID: String?
    public var rule: String?
    public var requestID: String?
    public var fingerprint: String?
    public var policyVersion: String?
    /// Entries whose message contains this text.
    public var messageContains: String?
    /// Inclusive, microseconds since the epoch.
    public var since: Int64?
    /// Exclusive.
    public var until: Int64?

    public init(decision: AuditDecision? = nil, event: AuditEvent? = nil, tenant: String? = nil, credentialID: String? = nil,
                rule: String? = nil, requestID: String? = nil, fingerprint: String? = nil, policyVersion: String? = nil,
                messageContains: String? = nil, since: Int64? = nil, until: Int64? = nil) {
        self.decision = decision
        self.event = event
        self.tenant = tenant
        self.credentialID = credentialID
        self.rule = rule
        self.requestID = requestID
        self.fingerprint = fingerprint
        self.policyVersion = policyVersion
        self.messageContains = messageContains
        self.since = since
        self.until = until
    }

    public func matches(_ entry: AuditEntry) -> Bool {
        let record = entry.record
        if let since, entry.timeMicros < since { return false }
        if let until, entry.timeMicros >= until { return false }
        if let decision, record.decision != decision { return false }
        if let event, record.event != event { return false }
        if let tenant, record.tenant != tenant { return false }
        if let credentialID, record.credentialID != credentialID { return false }
        if let rule, record.rule != rule { return false }
        if let requestID, record.requestID != requestID { return false }
        if let fingerprint, record.fingerprint != fingerprint { return false }
        if let policyVersion, record.policyVersion != policyVersion { return false }
        if let messageContains, !(record.message ?? "").contains(messageContains) { return false }
        return true
    }

    /// The `palisade audit list` options that select the same entries, in a fixed order.
    public var arguments: [String] {
        var out: [String] = []
        func add(_ option: String, _ value: String?) {
            if let value { out += [option, value] }
        }
        add("--event", event?.rawValue)
        add("--decision", decision?.rawValue)
        add("--rule", rule)
        add("--tenant", tenant)
        add("--credential-id", credentialID)
        add("--request-id", requestID)
        add("--fingerprint", fingerprint)
        add("--policy-version", policyVersion)
        add("--message", messageContains)
        add("--since", since.map(UTCTime.format))
        add("--until", until.map(UTCTime.format))
        return out
    }

    /// The arguments as one shell line: words quoted only where the shell would split or expand them.
    public var shellArguments: String {
        arguments.map(Self.shellQuoted).joined(separator: " ")
    }

    public static func shellQuoted(_ word: String) -> String {
        let plain = !word.isEmpty && word.unicodeScalars.allSatisfy { scalar in
            scalar.isASCII && (scalar.properties.isAlphabetic || ("0"..."9").contains(scalar) || "-_.:/+=@,".unicodeScalars.contains(scalar))
        }
        return plain ? word : "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}
