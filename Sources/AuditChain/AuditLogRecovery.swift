import Crypto
import Dispatch
import Encoding
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Opening a log directory: the lock, the checkpoint history, and recovery after an unclean stop.
extension Writer {
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
            // A reviewer reads from the log itself whether answers waited for the disk.
            "durability": .string(configuration.durability.description),
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
}
