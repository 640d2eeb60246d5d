import Crypto
import Dispatch
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
import Encoding
#endif

public enum AuditError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A write, sync or file operation failed. The log is failed from then on (fail closed).
    case io(operation: String, path: String, errno: Int32)
    /// The log on disk does not check, and it is not a torn tail recovery may cut.
    case corrupt(String)
    /// Another process (or another AuditLog in this one) has the directory open.
    case locked(path: String)
    case closed
    case invalidRecord(String)
    case badConfiguration(String)

    public var description: String {
        switch self {
        case .io(let operation, let path, let code):
            "audit log failed: \(operation) \(path): \(String(cString: strerror(code))) (errno \(code)); no further entries are accepted"
        case .corrupt(let reason): "audit log is corrupt: \(reason)"
        case .locked(let path): "audit log \(path) is already open in another process"
        case .closed: "audit log is closed"
        case .invalidRecord(let reason): "audit record rejected: \(reason)"
        case .badConfiguration(let reason): "audit log configuration: \(reason)"
        }
    }
}

public struct AuditLogConfiguration: Sendable {
    public var directory: String
    public var signingKey: AuditSigningKey
    /// The checkpoint origin: names this log to verifiers (a schema-less URL by convention).
    public var origin: String
    /// How often a checkpoint is signed while the log grows; also at rotation and close.
    public var checkpointInterval: Duration
    public var rotationBytes: Int
    public var rotationInterval: Duration?
    /// A second directory (another disk, a mount owned by someone else) that receives every
    /// checkpoint. Required once configured: if it cannot be written, the log fails closed.
    public var checkpointMirror: String?

    public init(directory: String, signingKey: AuditSigningKey, origin: String,
                checkpointInterval: Duration = .seconds(5), rotationBytes: Int = 64 << 20,
                rotationInterval: Duration? = .seconds(86_400), checkpointMirror: String? = nil) {
        self.directory = directory
        self.signingKey = signingKey
        self.origin = origin
        self.checkpointInterval = checkpointInterval
        self.rotationBytes = rotationBytes
        self.rotationInterval = rotationInterval
        self.checkpointMirror = checkpointMirror
    }
}

/// The system calls the writer makes, replaceable so tests can make the disk fail on demand.
/// Each returns what the system call returns, with errno set on failure.
struct AuditIO: Sendable {
    var write: @Sendable (Int32, UnsafeRawBufferPointer) -> Int
    var sync: @Sendable (Int32) -> Int32
    /// Writes at an offset (segments, whose reserved space is written in place).
    var writeAt: @Sendable (Int32, UnsafeRawBufferPointer, Int) -> Int = { fd, bytes, offset in
        pwrite(fd, bytes.baseAddress, bytes.count, off_t(offset))
    }

    static let system = AuditIO(
        write: { fd, bytes in Glibc.write(fd, bytes.baseAddress, bytes.count) },
        sync: { fd in fdatasync(fd) })

    /// Writes all of `bytes` at `offset` (at the file position if nil), again where a write was
    /// interrupted. Returns how much was written and the errno that stopped it (0 if none;
    /// ENOSPC for a write that wrote nothing).
    func writeFully(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, at offset: Int?) -> (written: Int, error: Int32) {
        var done = 0
        while done < bytes.count {
            let rest = UnsafeRawBufferPointer(rebasing: bytes[done...])
            let result = offset.map { writeAt(fd, rest, $0 + done) } ?? write(fd, rest)
            if result < 0 {
                if errno == EINTR { continue }
                return (done, errno)
            }
            if result == 0 { return (done, ENOSPC) }
            done += result
        }
        return (done, 0)
    }
}

/// The append-only audit log: one writer thread, group commit (one write and one fdatasync for
/// everything pending), an entry acknowledged only once it is on disk, and fail-closed on any disk
/// error. Call `close()` when done: it writes the stop entry and the final checkpoint.
public final class AuditLog: Sendable {
    public struct Statistics: Sendable, Equatable {
        /// Entries made durable by this process (lifecycle entries included).
        public var entries: UInt64 = 0
        /// fdatasync calls on segments; entries / syncs is the group-commit factor.
        public var syncs: UInt64 = 0
        /// Time spent in those writes and fdatasyncs, for the mean commit latency.
        public var syncNanoseconds: UInt64 = 0
        public var checkpoints: UInt64 = 0
        /// Entries in the log, from the first segment on: the next sequence number.
        public var treeSize: UInt64 = 0
    }

    private let core: LogCore
    public let configuration: AuditLogConfiguration

    public convenience init(_ configuration: AuditLogConfiguration) throws(AuditError) {
        try self.init(configuration, io: .system)
    }

    init(_ configuration: AuditLogConfiguration, io: AuditIO) throws(AuditError) {
        self.configuration = configuration
        core = try LogCore(configuration, io: io)
    }

    deinit { core.close(abandon: false) }

    /// Queues an entry. `completion` runs once the fdatasync covering the entry has returned (with
    /// its sequence number), or with the reason it was not recorded. It runs on the writer thread
    /// (or a dispatch queue for an immediate refusal), never on the caller's: keep it short.
    public func append(_ record: AuditRecord, completion: @escaping @Sendable (Result<UInt64, AuditError>) -> Void) {
        core.submit(.record(record), completion: completion)
    }

    /// Appends and returns the entry's sequence number once it is durable. Throws at once if the
    /// log has failed or is closed.
    public func append(_ record: AuditRecord) async throws(AuditError) -> UInt64 {
        if let refusal = core.refusal(for: record) { throw refusal }
        let result = await withUnsafeContinuation { continuation in
            core.submit(.record(record)) { continuation.resume(returning: $0) }
        }
        return try result.get()
    }

    /// Signs a checkpoint now over everything appended before this call; returns its tree size.
    public func checkpoint() async throws(AuditError) -> UInt64 {
        let result = await withUnsafeContinuation { continuation in
            core.submit(.checkpoint) { continuation.resume(returning: $0) }
        }
        return try result.get()
    }

    /// Records a `key_rotation` entry naming the new key, signs a checkpoint covering it with the
    /// old key (so the old key vouches for the new one), then signs with the new key from then on.
    public func rotateSigningKey(to key: AuditSigningKey) async throws(AuditError) -> UInt64 {
        let result = await withUnsafeContinuation { continuation in
            core.submit(.rotateKey(key)) { continuation.resume(returning: $0) }
        }
        return try result.get()
    }

    /// Flushes what is pending, writes the stop entry and a final checkpoint, and releases the
    /// directory. Later appends fail with `.closed`. Safe to call more than once. Called from a
    /// completion (the writer thread) it only asks the writer to stop, since waiting would deadlock.
    public func close() { core.close(abandon: false) }

    /// Why the log stopped accepting entries, if it failed.
    public var failure: AuditError? { core.shared.withLock { $0.failure } }

    public var statistics: Statistics { core.shared.withLock { $0.statistics } }

    /// Stops as `kill -9` would: no stop entry, no final checkpoint. Tests use it to exercise recovery.
    func abandonForTesting() { core.close(abandon: true) }
}

// MARK: - The writer

private struct Request: Sendable {
    enum Kind: Sendable {
        case record(AuditRecord)
        case checkpoint
        case rotateKey(AuditSigningKey)
    }

    var kind: Kind
    var completion: @Sendable (Result<UInt64, AuditError>) -> Void
}

private struct Shared {
    var pending: [Request] = []
    var failure: AuditError?
    var closing = false
    var abandon = false
    /// The writer is (about to be) waiting: the next append must wake it.
    var writerIdle = false
    var statistics = AuditLog.Statistics()
}

private final class LogCore: Sendable {
    let shared = Mutex(Shared())
    /// Only the writer thread touches it once the thread runs; the lock just makes that provable.
    let writer: Mutex<Writer>
    let wake = DispatchSemaphore(value: 0)
    let running = DispatchGroup()
    let writerThread = Mutex<pthread_t?>(nil)

    init(_ configuration: AuditLogConfiguration, io: AuditIO) throws(AuditError) {
        let writer = try Writer.open(configuration, io: io)
        shared.withLock { $0.statistics = writer.statistics }
        self.writer = Mutex(writer)
        running.enter()
        let thread = Thread { [self] in run() }
        thread.name = "palisade-audit-writer"
        thread.start()
    }

    func refusal(for record: AuditRecord) -> AuditError? {
        if record.event.isWrittenByLog { return .invalidRecord("\(record.event.rawValue) entries are written by the log itself") }
        if let reason = record.invalidReason { return .invalidRecord(reason) }
        return shared.withLock { $0.failure ?? ($0.closing ? .closed : nil) }
    }

    func submit(_ kind: Request.Kind, completion: @escaping @Sendable (Result<UInt64, AuditError>) -> Void) {
        if case .record(let record) = kind, record.event.isWrittenByLog || record.invalidReason != nil {
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
                let (results, failure, statistics) = writer.withLock { writer in
                    let outcome = writer.commit(batch)
                    return (outcome.results, outcome.failure, writer.statistics)
                }
                let orphans = record(failure, statistics)
                for (request, result) in zip(batch, results) { request.completion(result) }
                fail(orphans, failure)
                batch.removeAll(keepingCapacity: true)
                tick()
            case .idle:
                let deadline = writer.withLock { $0.nextDeadline() }
                _ = wake.wait(timeout: deadline)
                tick()
            case .close(let abandon):
                let (failure, statistics) = writer.withLock { writer in
                    (writer.shutdown(abandon: abandon), writer.statistics)
                }
                let orphans = record(failure, statistics)
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

    /// Signs a checkpoint if one is due; a failure there fails the log like any disk error.
    private func tick() {
        let (failure, statistics) = writer.withLock { writer in (writer.checkpointIfDue(), writer.statistics) }
        fail(record(failure, statistics), failure)
    }

    /// Publishes statistics and, on failure, the failed state, taking whatever was queued meanwhile:
    /// from this point every append is refused at once.
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

/// The writer thread's state: the open segment, the chain head, the Merkle frontier, the buffer.
private struct Writer {
    let configuration: AuditLogConfiguration
    let io: AuditIO
    var signingKey: AuditSigningKey
    var lockFD: Int32 = -1
    var segmentFD: Int32 = -1
    var segmentNumber = 0
    var segmentPath = ""
    /// Bytes of the segment known to be on disk.
    var segmentBytes = 0
    /// Length of the segment file: its entries, then zeros reserved for the next ones (see `reserve`).
    var segmentFileBytes = 0
    var segmentEntries = 0
    var segmentOpened = ContinuousClock.now
    var head = ChainHead.genesis
    var frontier = MerkleFrontier()
    var buffer: [UInt8] = []
    var bufferedEntries = 0
    var scratch: [UInt8] = []
    var checkpointFD: Int32 = -1
    var mirrorFD: Int32 = -1
    var lastCheckpointSize: UInt64 = 0
    var lastCheckpoint = ContinuousClock.now
    var failure: AuditError?
    var statistics = AuditLog.Statistics()
    /// Entries below this sequence number are on disk.
    var durableSeq: UInt64 = 0

    var directory: String { configuration.directory }

    // MARK: Opening and recovery

    static func open(_ configuration: AuditLogConfiguration, io: AuditIO) throws(AuditError) -> Writer {
        let origin = configuration.origin
        guard !origin.isEmpty, !origin.contains("\n"), !origin.unicodeScalars.contains(where: { $0.value < 0x20 }) else {
            throw .badConfiguration("origin must be one non-empty line")
        }
        guard configuration.rotationBytes > 0 else { throw .badConfiguration("rotation size must be positive") }
        guard configuration.checkpointInterval > .zero else { throw .badConfiguration("checkpoint interval must be positive") }
        if let interval = configuration.rotationInterval, interval <= .zero {
            throw .badConfiguration("rotation interval must be positive")
        }
        var writer = Writer(configuration: configuration, io: io, signingKey: configuration.signingKey)
        writer.buffer.reserveCapacity(1 << 16)
        writer.scratch.reserveCapacity(1 << 12)
        do {
            try writer.recover()
        } catch {
            writer.closeFiles()
            throw error
        }
        return writer
    }

    mutating func recover() throws(AuditError) {
        try makeDirectory(directory)
        if let mirror = configuration.checkpointMirror { try makeDirectory(mirror) }
        lockFD = Glibc.open(directory + "/" + LogFiles.lockFileName, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard lockFD >= 0 else { throw ioError("open", directory + "/" + LogFiles.lockFileName) }
        guard flock(lockFD, LOCK_EX | LOCK_NB) == 0 else { throw .locked(path: directory) }

        let existing: [(number: Int, path: String)]
        do {
            existing = try LogFiles.segments(in: directory)
        } catch {
            throw .io(operation: "list", path: directory, errno: EIO)
        }
        let history = try openCheckpointHistory()
        var recovery: [String: AuditDetailValue]?
        if let last = existing.last {
            var verifier = LogVerifier()
            for segment in existing {
                let bytes: [UInt8]
                do {
                    bytes = try LogFiles.read(segment.path)
                } catch {
                    throw .io(operation: "read", path: segment.path, errno: EIO)
                }
                verifier.feed(segment: segment.number, bytes: bytes)
            }
            head = verifier.head
            frontier = verifier.frontier
            segmentNumber = last.number
            segmentPath = last.path
            segmentFD = Glibc.open(last.path, O_WRONLY | O_CLOEXEC)
            guard segmentFD >= 0 else { throw ioError("open", last.path) }
            let size = Int(lseek(segmentFD, 0, SEEK_END))
            segmentFileBytes = size
            var trimmed = 0
            if let problem = verifier.problem {
                // Only the tail of the last segment may be cut, and only what no checkpoint covers:
                // anything else is damage or tampering an operator must look at.
                guard problem.segment == last.number, let offset = problem.offset,
                      Self.isTornTail(try LogFiles.readOrFail(last.path)[offset...]) else {
                    throw .corrupt("\(problem.message) (\(problem.segment.map(LogFiles.segmentName) ?? directory)); move the log aside to start a new one")
                }
                guard head.nextSeq >= history.maxSize else {
                    throw .corrupt("\(problem.message) at seq \(head.nextSeq), which a checkpoint covers (\(history.maxSize) entries); not cutting signed entries")
                }
                trimmed = size - offset
                let cut = try LogFiles.readOrFail(last.path)[offset...]
                guard ftruncate(segmentFD, off_t(offset)) == 0, io.sync(segmentFD) == 0 else { throw ioError("truncate", last.path) }
                segmentFileBytes = offset
                recovery = [
                    "bytes_trimmed": .int(Int64(trimmed)), "segment": .int(Int64(last.number)),
                    "trimmed_sha256": .string(Hex.encode(Array(SHA256.hash(data: Array(cut))))),
                    "reason": .string(problem.message),
                ]
            } else if verifier.lastEntry?.record.event != .stop || history.trimmedBytes > 0 {
                let reason = verifier.lastEntry?.record.event != .stop ? "the log was not closed" : "a checkpoint was cut short"
                recovery = ["bytes_trimmed": .int(0), "segment": .int(Int64(last.number)), "reason": .string(reason)]
            }
            segmentBytes = verifier.problem == nil ? verifier.endOfEntries : size - trimmed
            if segmentBytes == 0 {
                // The last segment holds nothing (it was being created): it still opens with its entry.
                segmentOpened = .now
                append(segmentOpenedRecord())
            } else {
                segmentEntries = 1  // at least its segment_opened; exact counts only matter for "is it empty"
            }
            if var recovery {
                recovery["last_seq"] = .int(verifier.lastEntry.map { Int64($0.seq) } ?? -1)
                recovery["checkpoint_bytes_trimmed"] = .int(Int64(history.trimmedBytes))
                append(.lifecycle(.recovery, "recovered after an unclean stop", recovery))
            }
        } else {
            try openSegment(1)
        }
        lastCheckpointSize = history.maxSize
        append(.lifecycle(.start, "audit log opened", [
            "origin": .string(configuration.origin), "key": .string(signingKey.verifierKey.encoded),
            "pid": .int(Int64(getpid())),
        ]))
        try flush()
        try recordVerifierKey(signingKey)
        try writeCheckpoint()
    }

    /// Keeps every key the log has signed with in `audit.vkey`, oldest first: after a rotation the
    /// old checkpoints still need the old key. A convenience copy; reviewers bring their own.
    func recordVerifierKey(_ key: AuditSigningKey) throws(AuditError) {
        let path = directory + "/" + LogFiles.vkeyFileName
        var lines = (try? LogFiles.read(path)).map { String(decoding: $0, as: UTF8.self).split(separator: "\n").map(String.init) } ?? []
        guard !lines.contains(key.verifierKey.encoded) else { return }
        lines.append(key.verifierKey.encoded)
        try writeTextFile(path, lines.joined(separator: "\n") + "\n")
    }

    /// What a crash can leave after the last complete entry: a line cut short by `kill -9`, or
    /// zero-filled blocks after a power loss. Anything else is not for recovery to cut.
    static func isTornTail(_ tail: ArraySlice<UInt8>) -> Bool {
        guard let lastNewline = tail.lastIndex(of: 0x0A) else { return true }
        return tail[..<lastNewline].allSatisfy { $0 == 0 || $0 == 0x0A }
    }

    struct History {
        var maxSize: UInt64
        var trimmedBytes: Int
    }

    /// Opens the checkpoint history for appending, cutting a checkpoint torn by a crash.
    mutating func openCheckpointHistory() throws(AuditError) -> History {
        let path = directory + "/" + CheckpointHistory.fileName
        checkpointFD = Glibc.open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard checkpointFD >= 0 else { throw ioError("open", path) }
        let text: String
        do {
            text = String(decoding: try LogFiles.read(path), as: UTF8.self)
        } catch {
            throw .io(operation: "read", path: path, errno: EIO)
        }
        let items = CheckpointHistory.parse(text)
        var maxSize: UInt64 = 0
        for item in items {
            if case .success(let checkpoint) = item.result { maxSize = max(maxSize, checkpoint.checkpoint.size) }
        }
        let trimmed = try trimTornCheckpoint(checkpointFD, path, text, items)
        if let mirror = configuration.checkpointMirror {
            let mirrorPath = mirror + "/" + CheckpointHistory.fileName
            mirrorFD = Glibc.open(mirrorPath, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
            guard mirrorFD >= 0 else { throw ioError("open", mirrorPath) }
            let mirrorText = String(decoding: try LogFiles.readOrFail(mirrorPath), as: UTF8.self)
            _ = try trimTornCheckpoint(mirrorFD, mirrorPath, mirrorText, CheckpointHistory.parse(mirrorText))
        }
        return History(maxSize: maxSize, trimmedBytes: trimmed)
    }

    /// A checkpoint cut short by a crash would read as a bad signature forever; it was never
    /// complete, so it goes. Only the last one: damage further up is for the verifier to report.
    func trimTornCheckpoint(_ fd: Int32, _ path: String, _ text: String, _ items: [CheckpointHistory.Item]) throws(AuditError) -> Int {
        guard let last = items.last, !last.isComplete else { return 0 }
        let keep = items.count > 1 ? items[items.count - 2].endOffset : 0
        guard ftruncate(fd, off_t(keep)) == 0, io.sync(fd) == 0 else { throw ioError("truncate", path) }
        return text.utf8.count - keep
    }

    // MARK: Appending

    @discardableResult
    mutating func append(_ record: AuditRecord) -> UInt64 {
        let seq = head.nextSeq
        let hash = AuditEntry.encodeLine(seq: seq, timeMicros: UTCTime.nowMicros(), record: record, prevHash: head.lastHash,
                                         scratch: &scratch, into: &buffer)
        head = ChainHead(nextSeq: seq + 1, lastHash: hash)
        frontier.append(hash)
        segmentEntries += 1
        bufferedEntries += 1
        return seq
    }

    func segmentOpenedRecord() -> AuditRecord {
        .lifecycle(.segmentOpened, "segment \(segmentNumber) opened", [
            "segment": .int(Int64(segmentNumber)), "origin": .string(configuration.origin),
            "format": .string("palisade-audit/1"),
        ])
    }

    mutating func openSegment(_ number: Int) throws(AuditError) {
        let path = directory + "/" + LogFiles.segmentName(number)
        let fd = Glibc.open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw ioError("create", path) }
        segmentFD = fd
        segmentNumber = number
        segmentPath = path
        segmentBytes = 0
        segmentFileBytes = 0
        segmentEntries = 0
        segmentOpened = .now
        // The new name must survive a crash too, or the entries in it would vanish with it.
        try syncDirectory(directory)
        append(segmentOpenedRecord())
    }

    mutating func rotateIfDue() throws(AuditError) {
        guard segmentEntries > 1 else { return }
        let bySize = segmentBytes + buffer.count >= configuration.rotationBytes
        let byTime = configuration.rotationInterval.map { segmentOpened.duration(to: .now) >= $0 } ?? false
        guard bySize || byTime else { return }
        try flush()
        try writeCheckpoint()
        try releaseReservedSpace()
        Glibc.close(segmentFD)
        segmentFD = -1
        try openSegment(segmentNumber + 1)
    }

    static let reservationBytes = 1 << 20
    private static let zeros = [UInt8](repeating: 0, count: 64 << 10)

    /// Makes room for `count` more bytes of entries by writing zeros ahead of them. An fdatasync of
    /// entries written in place over zeros already on disk is one data write; an append also has to
    /// write the file's new size, and space reserved with posix_fallocate is unwritten until its
    /// first write, which then rewrites the extent map (on the ext4 disk we measured, per durable
    /// write: append 190–400 µs, fallocate'd 125–160 µs, zero-filled 110 µs). The zeros ride on the
    /// next fdatasync, once per `reservationBytes`. Where the zeros do not fit (a nearly full disk),
    /// none are kept, so the entries still have the space left, and they just extend the file.
    mutating func reserve(_ count: Int) {
        // Zeros go only past everything the file holds, entries that extended it included.
        segmentFileBytes = max(segmentFileBytes, segmentBytes)
        guard segmentBytes + count > segmentFileBytes else { return }
        let length = max(segmentBytes + count - segmentFileBytes, min(Self.reservationBytes, configuration.rotationBytes))
        var written = 0
        Self.zeros.withUnsafeBytes { zeros in
            while written < length {
                let chunk = UnsafeRawBufferPointer(rebasing: zeros[..<min(zeros.count, length - written)])
                let result = io.writeFully(segmentFD, chunk, at: segmentFileBytes + written)
                written += result.written
                if result.error != 0 { break }
            }
        }
        if written == length {
            segmentFileBytes += length
        } else if ftruncate(segmentFD, off_t(segmentFileBytes)) != 0 {
            // The zeros that did fit stay; the entries are written over them all the same.
            segmentFileBytes += written
        }
    }

    /// Cuts the reserved zeros off the segment, so that only the last segment of a log can have them.
    /// A full fsync: the shorter size must be on disk before a next segment can exist.
    mutating func releaseReservedSpace() throws(AuditError) {
        guard segmentFileBytes > segmentBytes else { return }
        guard ftruncate(segmentFD, off_t(segmentBytes)) == 0, fsync(segmentFD) == 0 else { throw ioError("truncate", segmentPath) }
        segmentFileBytes = segmentBytes
    }

    /// One write and one fdatasync for everything buffered: the group commit.
    mutating func flush() throws(AuditError) {
        guard !buffer.isEmpty else { return }
        let started = DispatchTime.now().uptimeNanoseconds
        reserve(buffer.count)
        let result: AuditError? = buffer.withUnsafeBytes { bytes in
            let write = io.writeFully(segmentFD, bytes, at: segmentBytes)
            if write.error != 0 { return .io(operation: "write", path: segmentPath, errno: write.error) }
            // Where the write went past the reserved space, fdatasync also flushes the new file size.
            return io.sync(segmentFD) == 0 ? nil : ioError("fdatasync", segmentPath)
        }
        if let result {
            // Best effort: leave no unacknowledged bytes behind for recovery to puzzle over.
            _ = ftruncate(segmentFD, off_t(segmentBytes))
            segmentFileBytes = segmentBytes
            throw result
        }
        segmentBytes += buffer.count
        statistics.entries += UInt64(bufferedEntries)
        statistics.syncs += 1
        statistics.syncNanoseconds += DispatchTime.now().uptimeNanoseconds - started
        statistics.treeSize = head.nextSeq
        durableSeq = head.nextSeq
        buffer.removeAll(keepingCapacity: true)
        bufferedEntries = 0
    }

    /// Runs a batch; returns one result per request and the failure, if the disk failed. Results
    /// before the failing flush stay successes: those entries are on disk.
    mutating func commit(_ batch: [Request]) -> (results: [Result<UInt64, AuditError>], failure: AuditError?) {
        if let failure { return (batch.map { _ in .failure(failure) }, nil) }
        var results: [Result<UInt64, AuditError>] = []
        results.reserveCapacity(batch.count)
        do throws(AuditError) {
            for request in batch {
                switch request.kind {
                case .record(let record):
                    try rotateIfDue()
                    results.append(.success(append(record)))
                case .checkpoint:
                    try flush()
                    try writeCheckpoint()
                    results.append(.success(frontier.size))
                case .rotateKey(let key):
                    let seq = append(.lifecycle(.keyRotation, "signing key rotated", [
                        "old_key": .string(signingKey.verifierKey.encoded), "new_key": .string(key.verifierKey.encoded),
                    ]))
                    try flush()
                    try writeCheckpoint()
                    signingKey = key
                    try recordVerifierKey(key)
                    results.append(.success(seq))
                }
            }
            try flush()
            return (results, nil)
        } catch {
            failure = error
            for index in results.indices {
                if case .record = batch[index].kind, case .success(let seq) = results[index], seq >= durableSeq {
                    results[index] = .failure(error)
                }
            }
            while results.count < batch.count { results.append(.failure(error)) }
            return (results, error)
        }
    }

    // MARK: Checkpoints

    func nextDeadline() -> DispatchTime {
        guard failure == nil, frontier.size > lastCheckpointSize else { return .distantFuture }
        let remaining = configuration.checkpointInterval - lastCheckpoint.duration(to: .now)
        let nanoseconds = max(0, remaining.components.seconds * 1_000_000_000 + remaining.components.attoseconds / 1_000_000_000)
        return .now() + .nanoseconds(Int(nanoseconds))
    }

    mutating func checkpointIfDue() -> AuditError? {
        guard failure == nil, frontier.size > lastCheckpointSize,
              lastCheckpoint.duration(to: .now) >= configuration.checkpointInterval else { return nil }
        do {
            try writeCheckpoint()
            return nil
        } catch {
            failure = error
            return error
        }
    }

    /// Signs the current tree (only entries already on disk: callers flush first) and writes it to
    /// the history, the latest-checkpoint file, and the mirror.
    mutating func writeCheckpoint() throws(AuditError) {
        precondition(buffer.isEmpty, "a checkpoint must only cover durable entries")
        let checkpoint = Checkpoint(origin: configuration.origin, size: frontier.size, rootHash: frontier.root,
                                    timeMicros: UTCTime.nowMicros())
        let signed: SignedCheckpoint
        do {
            signed = try checkpoint.signed(with: signingKey)
        } catch {
            throw .badConfiguration("cannot sign a checkpoint: \(error)")
        }
        var entry = ""
        CheckpointHistory.append(signed, to: &entry)
        try appendDurably(checkpointFD, entry, directory + "/" + CheckpointHistory.fileName)
        try writeTextFile(directory + "/" + CheckpointHistory.latestFileName, signed.encoded)
        if let mirror = configuration.checkpointMirror {
            try appendDurably(mirrorFD, entry, mirror + "/" + CheckpointHistory.fileName)
            try writeTextFile(mirror + "/" + CheckpointHistory.latestFileName, signed.encoded)
        }
        lastCheckpointSize = frontier.size
        lastCheckpoint = .now
        statistics.checkpoints += 1
    }

    // MARK: Closing

    mutating func shutdown(abandon: Bool) -> AuditError? {
        defer { closeFiles() }
        guard !abandon, failure == nil else { return nil }
        do throws(AuditError) {
            append(.lifecycle(.stop, "audit log closed", [:]))
            try flush()
            try writeCheckpoint()
            try releaseReservedSpace()
            return nil
        } catch {
            failure = error
            return error
        }
    }

    mutating func closeFiles() {
        for fd in [segmentFD, checkpointFD, mirrorFD, lockFD] where fd >= 0 { Glibc.close(fd) }
        segmentFD = -1
        checkpointFD = -1
        mirrorFD = -1
        lockFD = -1
    }

    // MARK: Files

    func ioError(_ operation: String, _ path: String) -> AuditError {
        .io(operation: operation, path: path, errno: errno)
    }

    func appendDurably(_ fd: Int32, _ text: String, _ path: String) throws(AuditError) {
        let bytes = Array(text.utf8)
        let failure: Int32 = bytes.withUnsafeBytes { raw in
            let write = io.writeFully(fd, raw, at: nil)
            if write.error != 0 { return write.error }
            return io.sync(fd) == 0 ? 0 : errno
        }
        if failure != 0 { throw .io(operation: "write", path: path, errno: failure) }
    }

    /// Replaces a small file atomically: a reader sees the old or the new content, never a mix.
    func writeTextFile(_ path: String, _ text: String) throws(AuditError) {
        let temporary = path + ".tmp"
        let fd = Glibc.open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw ioError("create", temporary) }
        do {
            try appendDurably(fd, text, temporary)
        } catch {
            Glibc.close(fd)
            throw error
        }
        Glibc.close(fd)
        guard rename(temporary, path) == 0 else { throw ioError("rename", path) }
        try syncDirectory((path as NSString).deletingLastPathComponent)
    }

    func syncDirectory(_ path: String) throws(AuditError) {
        let fd = Glibc.open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw ioError("open", path) }
        defer { Glibc.close(fd) }
        guard io.sync(fd) == 0 else { throw ioError("fsync", path) }
    }

    func makeDirectory(_ path: String) throws(AuditError) {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
        } catch {
            throw .io(operation: "mkdir", path: path, errno: EACCES)
        }
    }
}
