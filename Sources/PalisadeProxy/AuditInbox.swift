import AuditChain
import NIOCore
import Locking

/// Brings audit completions back to an event loop in batches: the writer finishes a whole group
/// commit at once, and one wake of the loop then delivers every completion of the group, instead of
/// one cross-thread task (an eventfd write and a wake-up) per record.
final class AuditInbox: Sendable {
    private struct State {
        var completions: [@Sendable () -> Void] = []
        var drainScheduled = false
    }

    private let eventLoop: EventLoop
    private let state = Locked(State())
    /// Client connections on this loop, counted from their channels' start to their close.
    private let sessions: NIOLoopBoundBox<Int>

    /// Made on `eventLoop`.
    init(eventLoop: EventLoop) {
        self.eventLoop = eventLoop
        sessions = NIOLoopBoundBox(0, eventLoop: eventLoop)
    }

    func sessionOpened() { sessions.value += 1 }

    func sessionClosed() { sessions.value -= 1 }

    /// Whether a session's records may be committed on this loop (`AuditLog.commitInline`, which
    /// blocks it for one write and fdatasync): it is the loop's only session, so no other one could
    /// share the sync or wait behind it.
    var servesOneSession: Bool { sessions.value == 1 }

    /// Appends `record` to `log`; `completion` runs on this inbox's event loop.
    func append(_ record: AuditRecord, to log: AuditLog, completion: @escaping @Sendable (Result<UInt64, AuditError>) -> Void) {
        log.append(record) { result in
            self.deliver { completion(result) }
        }
    }

    private func deliver(_ completion: @escaping @Sendable () -> Void) {
        let schedule = state.withLock { state in
            state.completions.append(completion)
            defer { state.drainScheduled = true }
            return !state.drainScheduled
        }
        if schedule { eventLoop.execute { self.drain() } }
    }

    private func drain() {
        let completions = state.withLock { state in
            defer {
                state.completions.removeAll(keepingCapacity: true)
                state.drainScheduled = false
            }
            return state.completions
        }
        for completion in completions { completion() }
    }
}

/// One inbox per event loop of the server's group.
final class AuditInboxes: Sendable {
    private let inboxes: Locked<[ObjectIdentifier: AuditInbox]> = Locked([:])

    func inbox(for eventLoop: EventLoop) -> AuditInbox {
        inboxes.withLock { inboxes in
            let key = ObjectIdentifier(eventLoop as AnyObject)
            if let inbox = inboxes[key] { return inbox }
            let inbox = AuditInbox(eventLoop: eventLoop)
            inboxes[key] = inbox
            return inbox
        }
    }
}
