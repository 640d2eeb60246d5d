import PostgresWire
import QueryPolicy

/// The profile's limits on one answer as Palisade relays it: `max_rows` DataRows and
/// `max_result_bytes` bytes of them and of the notices sent with them (whole frames, as they cross
/// the wire). nil is no limit.
public struct ResultBudget: Sendable, Equatable {
    public var maxRows: Int?
    public var maxBytes: Int?

    public init(maxRows: Int? = nil, maxBytes: Int? = nil) {
        self.maxRows = maxRows
        self.maxBytes = maxBytes
    }

    public var isUnlimited: Bool { maxRows == nil && maxBytes == nil }

    /// The rows to ask the server for when the client asks for `requested` (0 or less: all, as
    /// PostgreSQL reads it) and `used` have been relayed: one more than the budget has left, so that
    /// the server itself stops (PortalSuspended) one row past the limit instead of streaming the
    /// rest. nil: ask as the client did.
    func serverRowLimit(requested: Int32, used: Usage) -> Int32? {
        guard let maxRows else { return nil }
        let allowed = Int32(clamping: max(0, maxRows - used.rows) + 1)
        return requested <= 0 || requested > allowed ? allowed : nil
    }

    /// What one portal's answers have used so far (a portal may be executed several times with a
    /// row count, so the budget spans its executions).
    struct Usage: Equatable {
        /// The decision that admitted the statement: its request number in the session.
        var request: Int
        var rows = 0
        var bytes = 0
        /// Set by the first row past a limit; the portal relays nothing more.
        var exceeded: Rule?
    }

    /// Counts one DataRow of `frameBytes` bytes; false if it goes past the budget and must not be
    /// relayed. `usage` counts only relayed rows.
    func admit(rowOf frameBytes: Int, into usage: inout Usage) -> Bool {
        admit(frameBytes, rows: 1, into: &usage)
    }

    /// Counts a notice the server sends while it answers: its bytes reach the client as a row's do
    /// (to_tsquery of a stop word notices once a row: a one-row answer relayed a million notices,
    /// 160 MB, in the sixteenth red team).
    func admit(noticeOf frameBytes: Int, into usage: inout Usage) -> Bool {
        admit(frameBytes, rows: 0, into: &usage)
    }

    private func admit(_ frameBytes: Int, rows added: Int, into usage: inout Usage) -> Bool {
        if usage.exceeded != nil { return false }
        let rows = usage.rows + added
        let bytes = usage.bytes + frameBytes
        if let maxRows, rows > maxRows {
            usage.exceeded = .resultRows
        } else if let maxBytes, bytes > maxBytes {
            usage.exceeded = .resultBytes
        } else {
            usage.rows = rows
            usage.bytes = bytes
        }
        return usage.exceeded == nil
    }

    /// The 54000 error that ends an answer cut at the budget.
    func notice(for usage: Usage, sessionID: String) -> ServerNotice {
        let limit = usage.exceeded == .resultBytes
            ? "\(maxBytes ?? 0) bytes (max_result_bytes)" : "\(maxRows ?? 0) rows (max_rows)"
        return ServerNotice(
            sqlstate: SQLState.programLimitExceeded,
            message: "Palisade: the result is larger than this profile's limit of \(limit); the rest was not sent",
            detail: "rule \((usage.exceeded ?? .resultRows).rawValue); request \(sessionID)-\(usage.request)",
            hint: "Aggregate in SQL (count, sum, GROUP BY) or add a LIMIT, and select only the columns you need.")
    }
}

/// An answer cut at the result budget, or a query refused at the cost budget before it ran, for
/// the session to audit and count.
public struct ResultLimitEvent: Sendable, Equatable {
    public var rule: Rule
    /// The request number of the decision that admitted the statement (the audit entry's request id
    /// is the session id and this number).
    public var request: Int
    /// Rows and bytes of them relayed before the cut.
    public var relayedRows: Int
    public var relayedBytes: Int
    /// The refusal's message, for a cost budget's.
    public var message: String?
    /// Refused at the planner's estimate before it ran (max_cost, max_estimated_rows, or what an
    /// accumulating aggregate keeps over the planned rows), rather than cut while it answered.
    public var isCostLimit = false
}
