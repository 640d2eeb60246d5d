import Encoding
/// What an entry records. Decisions come from the proxy; most lifecycle events are written by the
/// log itself, so that no caller can forge a "stop" or hide a recovery.
public enum AuditEvent: String, Sendable, CaseIterable {
    /// A statement allowed or denied by the policy (simple or extended protocol).
    case decision
    /// A message refused at the protocol level (unsupported message, COPY, replication, …).
    case protocolRefusal = "protocol_refusal"
    case authFailure = "auth_failure"
    case lockout
    case start
    case stop
    case policyLoaded = "policy_loaded"
    case keyRotation = "key_rotation"
    case segmentOpened = "segment_opened"
    case recovery
    /// An admitted query's answer cut at the profile's result budget (its decision entry came first).
    case resultLimit = "result_limit"
    /// An admitted query refused before it ran, at the profile's cost budget (its decision entry came first).
    case costLimit = "cost_limit"

    public var isLifecycle: Bool {
        switch self {
        case .decision, .protocolRefusal, .authFailure, .lockout, .resultLimit, .costLimit: false
        default: true
        }
    }

    /// Events only the log writes: start, stop, rotation of keys and segments, recovery.
    public var isWrittenByLog: Bool {
        switch self {
        case .start, .stop, .keyRotation, .segmentOpened, .recovery: true
        default: false
        }
    }
}

public enum AuditDecision: String, Sendable {
    case allow
    case deny
}

/// A value in an entry's `detail` object. Integers only, never floats (the canonical form has none),
/// and within ±(2^53 − 1) so JavaScript and other double-based JSON readers see the same number.
public enum AuditDetailValue: Sendable, Hashable, CustomStringConvertible {
    case string(String)
    case int(Int64)

    public var description: String {
        switch self {
        case .string(let text): text
        case .int(let value): String(value)
        }
    }

    static let safeIntegerRange: ClosedRange<Int64> = -(1 << 53 - 1)...(1 << 53 - 1)
}

/// One thing to record, as the proxy knows it. The log adds the sequence number, the time and the
/// hashes; a record has no way to set them.
public struct AuditRecord: Sendable, Equatable {
    public var event: AuditEvent
    public var requestID: String?
    public var sessionID: String?
    public var tenant: String?
    /// The credential's id, never the credential.
    public var credentialID: String?
    public var clientAddress: String?
    public var databaseUser: String?
    /// The protocol message that carried the statement: "Query", "Parse", "Execute", "StartupMessage", …
    public var messageKind: String?
    public var decision: AuditDecision?
    public var rule: String?
    public var sqlstate: String?
    public var message: String?
    public var statementType: String?
    public var tables: [String]
    public var functions: [String]
    public var fingerprint: String?
    /// The statement with constants replaced by `$n`: literal values never reach the log.
    public var normalized: String?
    public var policyVersion: String?
    /// Lifecycle facts (segment number, bytes trimmed, key ids, …).
    public var detail: [String: AuditDetailValue]

    public init(
        event: AuditEvent = .decision, requestID: String? = nil, sessionID: String? = nil, tenant: String? = nil,
        credentialID: String? = nil, clientAddress: String? = nil, databaseUser: String? = nil,
        messageKind: String? = nil, decision: AuditDecision? = nil, rule: String? = nil, sqlstate: String? = nil,
        message: String? = nil, statementType: String? = nil, tables: [String] = [], functions: [String] = [],
        fingerprint: String? = nil, normalized: String? = nil, policyVersion: String? = nil,
        detail: [String: AuditDetailValue] = [:]
    ) {
        self.event = event
        self.requestID = requestID
        self.sessionID = sessionID
        self.tenant = tenant
        self.credentialID = credentialID
        self.clientAddress = clientAddress
        self.databaseUser = databaseUser
        self.messageKind = messageKind
        self.decision = decision
        self.rule = rule
        self.sqlstate = sqlstate
        self.message = message
        self.statementType = statementType
        self.tables = tables
        self.functions = functions
        self.fingerprint = fingerprint
        self.normalized = normalized
        self.policyVersion = policyVersion
        self.detail = detail
    }

    /// A lifecycle entry such as `policy_loaded`; the version hash goes in `policy_version`.
    public static func policyLoaded(version: String, path: String) -> AuditRecord {
        AuditRecord(event: .policyLoaded, message: "policy loaded from \(path)", policyVersion: version,
                    detail: ["path": .string(path)])
    }

    static func lifecycle(_ event: AuditEvent, _ message: String, _ detail: [String: AuditDetailValue]) -> AuditRecord {
        AuditRecord(event: event, message: message, detail: detail)
    }

    /// Why this record cannot be written, or nil. Checked before the log assigns a sequence number.
    public var invalidReason: String? {
        for (key, value) in detail {
            if key.isEmpty { return "detail has an empty key" }
            if case .int(let number) = value, !AuditDetailValue.safeIntegerRange.contains(number) {
                return "detail \"\(key)\" is outside ±(2^53 − 1)"
            }
        }
        return nil
    }
}

/// An entry as it stands in the log: the record plus what the log assigned.
public struct AuditEntry: Sendable, Equatable {
    public var seq: UInt64
    /// Microseconds since the Unix epoch, UTC.
    public var timeMicros: Int64
    public var record: AuditRecord
    public var prevHash: AuditHash
    public var entryHash: AuditHash

    public var time: String { UTCTime.format(timeMicros) }

    public init(seq: UInt64, timeMicros: Int64, record: AuditRecord, prevHash: AuditHash, entryHash: AuditHash) {
        self.seq = seq
        self.timeMicros = timeMicros
        self.record = record
        self.prevHash = prevHash
        self.entryHash = entryHash
    }
}

// MARK: - The line format

/// The keys of an entry, in the order RFC 8785 puts them (sorted by code unit). Every entry has all
/// of them, `null` where a field does not apply, so a line's shape never depends on its content.
enum EntryKey {
    static let all = [
        "client_addr", "credential_id", "db_user", "decision", "detail", "entry_hash", "event", "fingerprint",
        "functions", "message", "message_kind", "normalized", "policy_version", "prev_hash", "request_id", "rule",
        "seq", "session_id", "sqlstate", "statement_type", "tables", "tenant", "time",
    ]
    static let allSet = Set(all)

    static func prefix(_ key: String, first: Bool = false) -> [UInt8] {
        Array(((first ? "{\"" : ",\"") + key + "\":").utf8)
    }

    static let clientAddr = prefix("client_addr", first: true)
    static let credentialID = prefix("credential_id")
    static let dbUser = prefix("db_user")
    static let decision = prefix("decision")
    static let detail = prefix("detail")
    static let entryHash = Array(",\"entry_hash\":\"".utf8)
    static let event = prefix("event")
    static let fingerprint = prefix("fingerprint")
    static let functions = prefix("functions")
    static let message = prefix("message")
    static let messageKind = prefix("message_kind")
    static let normalized = prefix("normalized")
    static let policyVersion = prefix("policy_version")
    static let prevHash = prefix("prev_hash")
    static let requestID = prefix("request_id")
    static let rule = prefix("rule")
    static let seq = prefix("seq")
    static let sessionID = prefix("session_id")
    static let sqlstate = prefix("sqlstate")
    static let statementType = prefix("statement_type")
    static let tables = prefix("tables")
    static let tenant = prefix("tenant")
    static let time = prefix("time")
    static let null = Array("null".utf8)
}

extension AuditEntry {
    /// Appends the entry's line (with its newline) to `out` and returns its hash:
    /// SHA-256(0x00 ‖ the canonical entry without `entry_hash`). Written byte by byte rather than
    /// through an encoder because this runs once per decision on the log's single writer thread.
    @discardableResult
    static func encodeLine(seq: UInt64, timeMicros: Int64, record: AuditRecord, prevHash: AuditHash,
                           scratch: inout [UInt8], into out: inout [UInt8]) -> AuditHash {
        scratch.removeAll(keepingCapacity: true)
        func optional(_ key: [UInt8], _ value: String?) {
            scratch.append(contentsOf: key)
            if let value { JSONText.appendQuoted(value, to: &scratch) } else { scratch.append(contentsOf: EntryKey.null) }
        }
        func list(_ key: [UInt8], _ values: [String]) {
            scratch.append(contentsOf: key)
            scratch.append(UInt8(ascii: "["))
            for (index, value) in values.enumerated() {
                if index > 0 { scratch.append(UInt8(ascii: ",")) }
                JSONText.appendQuoted(value, to: &scratch)
            }
            scratch.append(UInt8(ascii: "]"))
        }
        func hash(_ key: [UInt8], _ value: AuditHash) {
            scratch.append(contentsOf: key)
            scratch.append(0x22)
            Hex.append(value.bytes, to: &scratch)
            scratch.append(0x22)
        }

        optional(EntryKey.clientAddr, record.clientAddress)
        optional(EntryKey.credentialID, record.credentialID)
        optional(EntryKey.dbUser, record.databaseUser)
        optional(EntryKey.decision, record.decision?.rawValue)
        scratch.append(contentsOf: EntryKey.detail)
        scratch.append(UInt8(ascii: "{"))
        if !record.detail.isEmpty {
            for (index, key) in record.detail.keys.sorted(by: JSONText.keyPrecedes).enumerated() {
                if index > 0 { scratch.append(UInt8(ascii: ",")) }
                JSONText.appendQuoted(key, to: &scratch)
                scratch.append(UInt8(ascii: ":"))
                switch record.detail[key]! {
                case .string(let text): JSONText.appendQuoted(text, to: &scratch)
                case .int(let number): JSONText.appendInt(number, to: &scratch)
                }
            }
        }
        scratch.append(UInt8(ascii: "}"))
        // `entry_hash` sorts here; the hashed form leaves it out, the line has it.
        let hashOffset = scratch.count
        optional(EntryKey.event, record.event.rawValue)
        optional(EntryKey.fingerprint, record.fingerprint)
        list(EntryKey.functions, record.functions)
        optional(EntryKey.message, record.message)
        optional(EntryKey.messageKind, record.messageKind)
        optional(EntryKey.normalized, record.normalized)
        optional(EntryKey.policyVersion, record.policyVersion)
        hash(EntryKey.prevHash, prevHash)
        optional(EntryKey.requestID, record.requestID)
        optional(EntryKey.rule, record.rule)
        scratch.append(contentsOf: EntryKey.seq)
        JSONText.appendUInt(seq, to: &scratch)
        optional(EntryKey.sessionID, record.sessionID)
        optional(EntryKey.sqlstate, record.sqlstate)
        optional(EntryKey.statementType, record.statementType)
        list(EntryKey.tables, record.tables)
        optional(EntryKey.tenant, record.tenant)
        scratch.append(contentsOf: EntryKey.time)
        scratch.append(0x22)
        UTCTime.append(timeMicros, to: &scratch)
        scratch.append(0x22)
        scratch.append(UInt8(ascii: "}"))

        let entryHash = scratch.withUnsafeBytes { RFC6962.leafHash($0) }
        scratch.withUnsafeBufferPointer { bytes in
            out.append(contentsOf: bytes[..<hashOffset])
            out.append(contentsOf: EntryKey.entryHash)
            Hex.append(entryHash.bytes, to: &out)
            out.append(0x22)
            out.append(contentsOf: bytes[hashOffset...])
        }
        out.append(0x0A)
        return entryHash
    }

    /// The canonical line (without its newline) and the hash the content implies, whatever the
    /// `entry_hash` field says: the line carries the computed hash, not the stored one.
    public var encoded: (line: [UInt8], hash: AuditHash) {
        var scratch: [UInt8] = []
        var out: [UInt8] = []
        let hash = Self.encodeLine(seq: seq, timeMicros: timeMicros, record: record, prevHash: prevHash, scratch: &scratch, into: &out)
        out.removeLast()
        return (out, hash)
    }

    public var canonicalLine: [UInt8] { encoded.line }
    public var computedHash: AuditHash { encoded.hash }

    /// The entry as a JSON value, for documents (proofs, evidence packs) that embed entries.
    public var json: JSONValue {
        // The canonical line is valid JSON by construction.
        try! JSONValue.parse(canonicalLine, .canonical)
    }
}

public struct AuditEntryError: Error, Sendable, Equatable, CustomStringConvertible {
    public var description: String
}

extension AuditEntry {
    /// Decodes one line. Succeeds for any line with the right fields and types, canonical or not:
    /// whether the bytes are canonical and the hash right is for the verifier to judge and report.
    public init(line: some Collection<UInt8>) throws(AuditEntryError) {
        let value: JSONValue
        do {
            value = try JSONValue.parse(line, .canonical)
        } catch {
            throw AuditEntryError(description: "not JSON: \(error)")
        }
        try self.init(json: value)
    }

    public init(json: JSONValue) throws(AuditEntryError) {
        guard case .object(let fields) = json else { throw AuditEntryError(description: "not a JSON object") }
        let keys = Set(fields.keys)
        if keys != EntryKey.allSet {
            let missing = EntryKey.allSet.subtracting(keys).sorted()
            let extra = keys.subtracting(EntryKey.allSet).sorted()
            var parts: [String] = []
            if !missing.isEmpty { parts.append("missing " + missing.joined(separator: ", ")) }
            if !extra.isEmpty { parts.append("unexpected " + extra.joined(separator: ", ")) }
            throw AuditEntryError(description: "wrong fields: " + parts.joined(separator: "; "))
        }
        func optional(_ key: String) throws(AuditEntryError) -> String? {
            switch fields[key]! {
            case .null: return nil
            case .string(let text): return text
            default: throw AuditEntryError(description: "\(key) is not a string or null")
            }
        }
        func required(_ key: String) throws(AuditEntryError) -> String {
            guard let text = fields[key]!.stringValue else { throw AuditEntryError(description: "\(key) is not a string") }
            return text
        }
        func list(_ key: String) throws(AuditEntryError) -> [String] {
            guard let items = fields[key]!.arrayValue else { throw AuditEntryError(description: "\(key) is not an array") }
            var out: [String] = []
            for item in items {
                guard let text = item.stringValue else { throw AuditEntryError(description: "\(key) holds a non-string") }
                out.append(text)
            }
            return out
        }
        func hash(_ key: String) throws(AuditEntryError) -> AuditHash {
            guard let hash = AuditHash(hex: try required(key)) else {
                throw AuditEntryError(description: "\(key) is not 64 lowercase hex digits")
            }
            return hash
        }

        guard let seq = fields["seq"]!.int64Value, seq >= 0 else { throw AuditEntryError(description: "seq is not a non-negative integer") }
        let timeText = try required("time")
        guard let micros = UTCTime.parseEntryTime(timeText) else {
            throw AuditEntryError(description: "time \"\(timeText)\" is not YYYY-MM-DDTHH:MM:SS.ffffffZ")
        }
        let eventText = try required("event")
        guard let event = AuditEvent(rawValue: eventText) else { throw AuditEntryError(description: "unknown event \"\(eventText)\"") }
        var decision: AuditDecision?
        if let text = try optional("decision") {
            guard let parsed = AuditDecision(rawValue: text) else { throw AuditEntryError(description: "unknown decision \"\(text)\"") }
            decision = parsed
        }
        guard case .object(let detailFields) = fields["detail"]! else { throw AuditEntryError(description: "detail is not an object") }
        var detail: [String: AuditDetailValue] = [:]
        for (key, value) in detailFields.members {
            switch value {
            case .string(let text): detail[key] = .string(text)
            case .number: detail[key] = .int(value.int64Value!)  // the canonical parse admits only Int64 integers
            default: throw AuditEntryError(description: "detail \"\(key)\" is not a string or an integer")
            }
        }
        let record = AuditRecord(
            event: event, requestID: try optional("request_id"), sessionID: try optional("session_id"),
            tenant: try optional("tenant"), credentialID: try optional("credential_id"),
            clientAddress: try optional("client_addr"), databaseUser: try optional("db_user"),
            messageKind: try optional("message_kind"), decision: decision, rule: try optional("rule"),
            sqlstate: try optional("sqlstate"), message: try optional("message"),
            statementType: try optional("statement_type"), tables: try list("tables"), functions: try list("functions"),
            fingerprint: try optional("fingerprint"), normalized: try optional("normalized"),
            policyVersion: try optional("policy_version"), detail: detail)
        self.init(seq: UInt64(seq), timeMicros: micros, record: record, prevHash: try hash("prev_hash"),
                  entryHash: try hash("entry_hash"))
    }
}
