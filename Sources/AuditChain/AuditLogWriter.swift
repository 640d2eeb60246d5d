import Crypto
import Dispatch
import Encoding
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The writer thread's state: the open segment, the chain head, the Merkle frontier, the buffer.
struct Writer {
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
    /// Entries below this sequence number are recorded: on disk, or with `.written` durability in the file.
    var durableSeq: UInt64 = 0
    /// Since when entries are in the file that no fdatasync has flushed (`.written` durability only).
    var unflushedSince: ContinuousClock.Instant?
    /// Set by `shutdown`: a commit on a caller's thread that lost the race with it writes nothing.
    var isShutDown = false

    var directory: String { configuration.directory }

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

    /// Whether the segment is due to rotate before `pending` more bytes of entries.
    func rotationDue(before pending: Int) -> Bool {
        guard segmentEntries > 1 else { return false }
        return segmentBytes + pending >= configuration.rotationBytes
            || configuration.rotationInterval.map { segmentOpened.duration(to: .now) >= $0 } ?? false
    }

    /// Whether `bytes` more of entries would go over zeros already reserved, with no rotation first,
    /// in a log that has neither failed nor shut down: one write and one fdatasync.
    func commitsInPlace(_ bytes: Int) -> Bool {
        failure == nil && !isShutDown && !rotationDue(before: buffer.count + bytes) && segmentBytes + buffer.count + bytes <= segmentFileBytes
    }

    mutating func rotateIfDue() throws(AuditError) {
        guard rotationDue(before: buffer.count) else { return }
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

    /// One write and one fdatasync for everything buffered: the group commit. With `.written`
    /// durability only the write; the fdatasync follows within the interval (`flushIfDue`).
    mutating func flush() throws(AuditError) {
        guard !buffer.isEmpty else { return }
        let started = DispatchTime.now().uptimeNanoseconds
        let flushes = configuration.durability == .flushed
        reserve(buffer.count)
        let result: AuditError? = buffer.withUnsafeBytes { bytes in
            let write = io.writeFully(segmentFD, bytes, at: segmentBytes)
            if write.error != 0 { return .io(operation: "write", path: segmentPath, errno: write.error) }
            // Where the write went past the reserved space, fdatasync also flushes the new file size.
            guard flushes else { return nil }
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
        if flushes {
            statistics.syncs += 1
            statistics.syncNanoseconds += DispatchTime.now().uptimeNanoseconds - started
        } else if unflushedSince == nil {
            unflushedSince = .now
        }
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

    /// Flushes the entries written since the last fdatasync (`.written` durability).
    mutating func flushWrittenEntries() throws(AuditError) {
        guard unflushedSince != nil else { return }
        let started = DispatchTime.now().uptimeNanoseconds
        guard io.sync(segmentFD) == 0 else { throw ioError("fdatasync", segmentPath) }
        unflushedSince = nil
        statistics.syncs += 1
        statistics.syncNanoseconds += DispatchTime.now().uptimeNanoseconds - started
    }

    /// With `.written` durability, flushes once the oldest unflushed entry is `flushInterval` old;
    /// a failure there fails the log like any disk error.
    mutating func flushIfDue() -> AuditError? {
        guard failure == nil, let since = unflushedSince, case .written(let interval) = configuration.durability,
              since.duration(to: .now) >= interval else { return nil }
        do {
            try flushWrittenEntries()
            return nil
        } catch {
            failure = error
            return error
        }
    }

    // MARK: Checkpoints

    /// When the writer must wake though nothing is appended: for the next checkpoint, or for the
    /// flush of written entries.
    func nextDeadline() -> DispatchTime {
        guard failure == nil else { return .distantFuture }
        var wait: Duration?
        if frontier.size > lastCheckpointSize { wait = configuration.checkpointInterval - lastCheckpoint.duration(to: .now) }
        if let since = unflushedSince, case .written(let interval) = configuration.durability {
            let flushWait = interval - since.duration(to: .now)
            wait = min(wait ?? flushWait, flushWait)
        }
        guard let wait else { return .distantFuture }
        let nanoseconds = max(0, wait.components.seconds * 1_000_000_000 + wait.components.attoseconds / 1_000_000_000)
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
        try flushWrittenEntries()
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
        defer {
            closeFiles()
            isShutDown = true
        }
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
