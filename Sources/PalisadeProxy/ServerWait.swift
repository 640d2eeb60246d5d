import NIOCore

/// A session's waits for its server: how long a request took to be answered (the backend-latency
/// metric), and whether a server it waits for has stalled.
///
/// A server that stays quiet for the profile's statement_timeout plus `grace` while the session
/// waits is stalled: its own timer cannot fire while it is stopped. One timer is armed per quiet
/// period, and reads only move `lastHeard`; re-arming a timer per server frame was 3 % of Palisade's
/// CPU at pgbench -c 1.
public final class ServerWait {
    /// How long past the profile's statement_timeout a silent server is waited for.
    static let grace = TimeAmount.seconds(5)

    /// The longest a server may stay silent while it owes an answer under this statement_timeout.
    public static func allowance(statementTimeoutMilliseconds: Int) -> TimeAmount {
        .milliseconds(Int64(statementTimeoutMilliseconds)) + grace
    }

    private let eventLoop: EventLoop
    /// Replaced at login by the profile's (`useStatementTimeout`).
    private(set) var allowance = ServerWait.allowance(statementTimeoutMilliseconds: 30_000)
    private var lastHeard = NIODeadline.now()
    /// When the oldest unanswered request left.
    private var requestSentAt: NIODeadline?
    /// The server answered everything sent so far (a Flush), though no ReadyForQuery ended it:
    /// the next request's quiet time starts when it leaves, not at the last answer.
    private var caughtUp = false
    private var timer: Scheduled<Void>?
    /// Asked whenever the timer would be armed or fires: whether the session still waits for the server.
    var isWaiting: () -> Bool = { false }
    /// Called once the server has been silent past the allowance while the session waits.
    var stalled: () -> Void = {}

    init(eventLoop: EventLoop) {
        self.eventLoop = eventLoop
    }

    func useStatementTimeout(milliseconds: Int) {
        allowance = Self.allowance(statementTimeoutMilliseconds: milliseconds)
    }

    /// A request went to the server: its quiet time counts from the first one it has not answered.
    func requestSent() {
        if requestSentAt == nil || caughtUp {
            // One clock read for both: the metric's start and the start of the quiet time.
            lastHeard = .now()
            if requestSentAt == nil { requestSentAt = lastHeard }
            caughtUp = false
        }
        watch()
    }

    /// The server owes nothing now (it answered up to a Flush): a client that thinks before its
    /// Sync is not a server that stalls.
    func serverCaughtUp() {
        caughtUp = true
    }

    /// The server finished answering (ReadyForQuery).
    func answered() {
        caughtUp = false
        guard let since = requestSentAt else { return }
        ProxyMetrics.shared.backendAnswered(nanoseconds: (NIODeadline.now() - since).nanoseconds)
        requestSentAt = nil
    }

    /// The server was read from, or its quiet time starts again (it was held back while the client did not read).
    func heard() {
        lastHeard = .now()
    }

    /// Arms the timer for the current quiet period, unless one is armed or the session does not wait.
    func watch() {
        guard timer == nil, isWaiting() else { return }
        timer = eventLoop.scheduleTask(deadline: lastHeard + allowance) { [weak self] in
            guard let self else { return }
            self.timer = nil
            guard self.isWaiting() else { return }
            guard NIODeadline.now() >= self.lastHeard + self.allowance else { return self.watch() }
            self.stalled()
        }
    }

    func stop() {
        timer?.cancel()
        timer = nil
        isWaiting = { false }
        stalled = {}
    }
}
