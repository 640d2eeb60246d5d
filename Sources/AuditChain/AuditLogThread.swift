import CPalisadeSupport
import Crypto
import Dispatch
import Encoding
import Foundation
import Locking
#if canImport(Glibc)
import Glibc
#endif

// The writer thread: requests in, batches committed, completions out.

struct Request: Sendable {
    enum Kind: Sendable {
        case record(AuditRecord)
        case checkpoint
        case rotateKey(AuditSigningKey)
    }

    var kind: Kind
    var completion: @Sendable (Result<UInt64, AuditError>) -> Void
}

struct Shared {
    var pending: [Request] = []
    var failure: AuditError?
    var closing = false
    var abandon = false
    /// The writer is (about to be) waiting: the next append must wake it.
    var writerIdle = false
    /// A caller is committing on its own thread (`commitInline`); at most one at a time.
    var committingInline = false
    var statistics = AuditLog.Statistics()
}

extension AuditRecord {
    /// An entry no caller may append: the log writes it itself, or it cannot be encoded.
    var isRefusedByLog: Bool { event.isWrittenByLog || invalidReason != nil }
}

final class LogCore: Sendable {
    let shared = Locked(Shared())
    /// Only the writer thread touches it once the thread runs; the lock just makes that provable.
    let writer: Locked<Writer>
    let wake = DispatchSemaphore(value: 0)
    let running = DispatchGroup()
    let writerThread = Locked<pthread_t?>(nil)

    init(_ configuration: AuditLogConfiguration, io: AuditIO) throws(AuditError) {
        let writer = try Writer.open(configuration, io: io)
        shared.withLock { $0.statistics = writer.statistics }
        self.writer = Locked(writer)
        running.enter()
        let thread = Thread { [self] in run() }
        thread.start()
    }

    func refusal(for record: AuditRecord) -> AuditError? {
        if record.event.isWrittenByLog { return .invalidRecord("\(record.event.rawValue) entries are written by the log itself") }
        if let reason = record.invalidReason { return .invalidRecord(reason) }
        return shared.withLock { $0.failure ?? ($0.closing ? .closed : nil) }
    }

    func submit(_ kind: Request.Kind, completion: @escaping @Sendable (Result<UInt64, AuditError>) -> Void) {
        if case .record(let record) = kind, record.isRefusedByLog {
            let refusal = refusal(for: record)!
            DispatchQueue.global().async { completion(.failure(refusal)) }
            return
        }
        let (refusal, signal): (AuditError?, Bool) = shared.withLock { state in
            if let failure = state.failure { return (failure, false) }
            if state.closing { return (.closed, false) }
            state.pending.append(Request(kind: kind, completion: completion))
            guard state.writerIdle else { return (nil, false) }
            state.writerIdle = false
            return (nil, true)
        }
        if let refusal {
            DispatchQueue.global().async { completion(.failure(refusal)) }
        } else if signal {
            wake.signal()
        }
    }

    /// Zeros that must lie ahead of the entries for a commit on the caller's thread (an entry is
    /// about 750 bytes); a larger batch takes the writer thread's way.
    static let inlineHeadroom = 64 << 10

    /// Commits `records` on the caller's thread when the writer has nothing to do, with one write
    /// over reserved zeros and one fdatasync, and returns their results; nil when the writer is
    /// busy, a rotation or a new reservation is due, or a record is not the caller's to write
    /// (submit them instead). It saves the two thread wakes of a submit.
    func commitInline(_ records: [AuditRecord]) -> [Result<UInt64, AuditError>]? {
        guard !records.contains(where: \.isRefusedByLog) else { return nil }
        let claimed = shared.withLock { state in
            guard state.failure == nil, !state.closing, state.writerIdle, state.pending.isEmpty, !state.committingInline else { return false }
            state.committingInline = true
            return true
        }
        guard claimed else { return nil }
        let batch = records.map { Request(kind: .record($0), completion: { _ in }) }
        let committed: (results: [Result<UInt64, AuditError>], failure: AuditError?, orphans: [Request], earlierDeadline: Bool)?
        committed = writer.withLock { writer in
            // Rotating, or writing the next reservation of zeros, is the writer thread's work: the
            // caller may be an event loop.
            guard writer.commitsInPlace(Self.inlineHeadroom) else { return nil }
            // The writer sleeps until the deadline it last computed; a commit that brings one
            // closer (the first entries to sign, or with `.written` durability the first to flush)
            // must wake it to take the new one. Within a millisecond it is the same deadline, read
            // from two clocks.
            let before = writer.nextDeadline().uptimeNanoseconds
            let outcome = writer.commit(batch)
            let after = writer.nextDeadline().uptimeNanoseconds
            return (outcome.results, outcome.failure, record(outcome.failure, writer.statistics), after < before && before - after > 1_000_000)
        }
        shared.withLock { $0.committingInline = false }
        guard let committed else { return nil }
        fail(committed.orphans, committed.failure)
        if committed.earlierDeadline || committed.failure != nil { wake.signal() }
        return committed.results
    }

    func close(abandon: Bool) {
        shared.withLock { state in
            if !state.closing { state.abandon = abandon }
            state.closing = true
        }
        wake.signal()
        if let writer = writerThread.withLock({ $0 }), pthread_equal(writer, pthread_self()) != 0 { return }
        running.wait()
    }

    private enum Step { case work, idle, close(abandon: Bool) }

    private func run() {
        writerThread.withLock { $0 = pthread_self() }
        // Named for top, perf and /proc (Benchmarks/pgbench-compare splits CPU by it). Foundation's
        // `Thread.name` does not reach the kernel on Linux: the thread kept the name of the dispatch
        // worker that started it.
        _ = palisade_name_thread("palisade-audit")
        var batch: [Request] = []
        while true {
            let step: Step = shared.withLock { state in
                state.writerIdle = false
                if !state.pending.isEmpty, !state.abandon {
                    swap(&batch, &state.pending)
                    return .work
                }
                if state.closing { return .close(abandon: state.abandon) }
                state.writerIdle = true
                return .idle
            }
            switch step {
            case .work:
                let (results, failure, orphans) = writer.withLock { writer in
                    let outcome = writer.commit(batch)
                    return (outcome.results, outcome.failure, record(outcome.failure, writer.statistics))
                }
                for (request, result) in zip(batch, results) { request.completion(result) }
                fail(orphans, failure)
                batch.removeAll(keepingCapacity: true)
                tick()
            case .idle:
                let deadline = writer.withLock { $0.nextDeadline() }
                _ = wake.wait(timeout: deadline)
                // Busy from here (signing or flushing): no caller commits behind it and waits.
                shared.withLock { $0.writerIdle = false }
                tick()
            case .close(let abandon):
                let (failure, orphans) = writer.withLock { writer in
                    let failure = writer.shutdown(abandon: abandon)
                    return (failure, record(failure, writer.statistics))
                }
                fail(orphans, failure)
                // Requests queued before `closing` but never run (an abandoned log) are refused, not dropped.
                let stranded = shared.withLock { state in
                    defer { state.pending.removeAll() }
                    return state.pending
                }
                fail(stranded, .closed)
                running.leave()
                return
            }
        }
    }

    /// Flushes written entries and signs a checkpoint if either is due; a failure there fails the
    /// log like any disk error.
    private func tick() {
        let (failure, orphans) = writer.withLock { writer in
            let failure = writer.flushIfDue() ?? writer.checkpointIfDue()
            return (failure, record(failure, writer.statistics))
        }
        fail(orphans, failure)
    }

    /// Publishes statistics and, on failure, the failed state, taking whatever was queued meanwhile:
    /// from this point every append is refused at once. Called under the writer's lock (the only
    /// order in which the two locks are taken), so that two threads' snapshots go out in order.
    private func record(_ failure: AuditError?, _ statistics: AuditLog.Statistics) -> [Request] {
        shared.withLock { state in
            state.statistics = statistics
            guard let failure, state.failure == nil else { return [] }
            state.failure = failure
            defer { state.pending.removeAll() }
            return state.pending
        }
    }

    private func fail(_ requests: [Request], _ failure: AuditError?) {
        guard let failure else { return }
        for request in requests { request.completion(.failure(failure)) }
    }
}
