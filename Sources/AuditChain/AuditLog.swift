import Crypto
import Dispatch
import Encoding
import Foundation
#if canImport(Glibc)
import Glibc
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
    /// When an entry's answer may go out.
    public var durability: AuditDurability

    public init(directory: String, signingKey: AuditSigningKey, origin: String,
                checkpointInterval: Duration = .seconds(5), rotationBytes: Int = 64 << 20,
                rotationInterval: Duration? = .seconds(86_400), checkpointMirror: String? = nil,
                durability: AuditDurability = .flushed) {
        self.durability = durability
        self.directory = directory
        self.signingKey = signingKey
        self.origin = origin
        self.checkpointInterval = checkpointInterval
        self.rotationBytes = rotationBytes
        self.rotationInterval = rotationInterval
        self.checkpointMirror = checkpointMirror
    }
}

/// When an entry counts as recorded, so that its answer may go out (`audit_durability`).
public enum AuditDurability: Sendable, Equatable {
    /// On disk: written and flushed with fdatasync (group commit). It survives a crash of the
    /// machine. The default.
    case flushed
    /// Written to the segment file, which puts it in the kernel's page cache: it survives a crash
    /// or `kill -9` of Palisade, but a crash of the machine or a power loss loses the entries
    /// written since the last flush. Entries are flushed at least every `flushInterval` and before
    /// every checkpoint, so no checkpoint signs an entry that is not on disk, and what a machine
    /// crash loses is a tail no checkpoint covers. Opt-in, like PostgreSQL's
    /// `synchronous_commit = off`.
    case written(flushInterval: Duration)
}

extension AuditDurability: CustomStringConvertible {
    /// As the start entry records it: `flush`, or `write` with the flush interval (`write, flushed within 200 ms`).
    public var description: String {
        switch self {
        case .flushed: "flush"
        case .written(let interval):
            "write, flushed within \(interval.components.seconds * 1000 + interval.components.attoseconds / 1_000_000_000_000_000) ms"
        }
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
/// everything pending), an entry acknowledged only once it is on disk (or, with `.written`
/// durability, in the file), and fail-closed on any disk error. Call `close()` when done: it
/// writes the stop entry and the final checkpoint.
public final class AuditLog: Sendable {
    public struct Statistics: Sendable, Equatable {
        /// Entries written by this process (lifecycle entries included).
        public var entries: UInt64 = 0
        /// fdatasync calls on segments; entries / syncs is the group-commit factor.
        public var syncs: UInt64 = 0
        /// Time spent in those writes and fdatasyncs, for the mean commit latency (with `.written`
        /// durability, in the fdatasyncs alone).
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

    /// Commits the entries on the calling thread, with one write and one fdatasync, if the writer
    /// thread has nothing else to do, and returns their results as `append`'s completions would:
    /// blocking the caller for the commit, it saves waking the writer and being woken by it.
    /// Returns nil when the writer is busy (the entries would then wait behind its batch): `append`
    /// them instead.
    public func commitInline(_ records: [AuditRecord]) -> [Result<UInt64, AuditError>]? {
        core.commitInline(records)
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
