import Foundation
import Locking
import Testing
@testable import AuditChain

@Suite struct AuditLogTests {
    @Test func concurrentAppendsGetGaplessSequenceNumbers() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let log = try AuditLog(Fixture.configuration(dir.path))
        let seqs = try await withThrowingTaskGroup(of: UInt64.self) { group in
            for n in 0..<200 { group.addTask { try await log.append(Fixture.decision(n)) } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(Set(seqs) == Set(2..<202))  // 0 and 1 are segment_opened and start
        log.close()
        let entries = try Fixture.entries(dir.path)
        #expect(entries.map(\.seq) == Array(0..<203))
        #expect(entries.map(\.record.event).prefix(2) == [.segmentOpened, .start])
        #expect(entries.last?.record.event == .stop)
        #expect(log.statistics.entries == 203)
        #expect(log.statistics.treeSize == 203)
    }

    /// top, perf and Benchmarks/pgbench-compare tell the writer's CPU from the event loops' by this name.
    @Test func theWriterThreadIsNamedForTheKernel() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let log = try AuditLog(Fixture.configuration(dir.path))
        defer { log.close() }
        // Durable means the writer ran, and it names itself before anything else.
        _ = try await log.append(Fixture.decision(0))
        let names = try FileManager.default.contentsOfDirectory(atPath: "/proc/self/task").compactMap { task in
            try? String(contentsOfFile: "/proc/self/task/\(task)/comm", encoding: .utf8).trimmingCharacters(in: .newlines)
        }
        #expect(names.contains("palisade-audit"), "\(names)")
    }

    @Test func pendingEntriesShareOneSync() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        // A slow disk: while one sync runs, everything appended meanwhile waits for the next one.
        let slow = AuditIO(write: AuditIO.system.write, sync: { fd in usleep(20_000); return fdatasync(fd) })
        let log = try AuditLog(Fixture.configuration(dir.path), io: slow)
        let before = log.statistics
        let done = Locked(0)
        await withCheckedContinuation { (finished: CheckedContinuation<Void, Never>) in
            for n in 0..<100 {
                log.append(Fixture.decision(n)) { result in
                    #expect((try? result.get()) != nil)
                    if done.withLock({ $0 += 1; return $0 }) == 100 { finished.resume() }
                }
            }
        }
        let after = log.statistics
        #expect(after.entries - before.entries == 100)
        #expect(after.syncs - before.syncs <= 3, "\(after.syncs - before.syncs) syncs for 100 entries")
        log.close()
    }

    /// Retries `commitInline` until the writer thread has gone idle (it is busy for a moment after
    /// opening and after each batch), and returns its result with the thread that called it; nil
    /// only if the writer never goes idle.
    static func commitWhenIdle(_ log: AuditLog, _ record: AuditRecord) async throws -> (Result<UInt64, AuditError>, caller: UInt)? {
        for _ in 0..<30_000 {
            let caller = UInt(pthread_self())
            if let results = log.commitInline([record]) { return (results[0], caller) }
            try await Task.sleep(for: .milliseconds(1))
        }
        return nil
    }

    /// A lone session's entry: committed by the caller itself (its write and fdatasync run on the
    /// calling thread), durable when the call returns, chained like any other.
    @Test func anIdleWritersEntryIsCommittedOnTheCallersThread() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let syncingThreads = Locked<[UInt]>([])
        let recording = AuditIO(write: AuditIO.system.write, sync: { fd in
            syncingThreads.withLock { $0.append(UInt(pthread_self())) }
            return fdatasync(fd)
        })
        let log = try AuditLog(Fixture.configuration(dir.path), io: recording)
        _ = try await log.append(Fixture.decision(0))
        for n in 1...3 {
            let before = syncingThreads.withLock { $0.count }
            let (result, caller) = try #require(try await Self.commitWhenIdle(log, Fixture.decision(n)))
            #expect(try result.get() == UInt64(n) + 2)  // after segment_opened, start and decision 0
            let syncs = syncingThreads.withLock { $0 }
            #expect(syncs.count == before + 1 && syncs.last == caller, "entry \(n)'s fdatasync did not run on the caller's thread")
        }
        log.close()
        #expect(try Fixture.entries(dir.path).filter { $0.record.requestID?.hasPrefix("req-") == true }.count == 4)
        #expect(try Fixture.verify(dir.path).outcome == .ok)
    }

    /// The writer sleeps until its next deadline, and after the checkpoint at open it has none: an
    /// entry committed on the caller's thread must give it one, or nothing would ever sign it.
    @Test func anEntryCommittedByTheCallerIsSignedByTheWriter() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let log = try AuditLog(Fixture.configuration(dir.path, checkpointInterval: .milliseconds(20)))
        let (result, _) = try #require(try await Self.commitWhenIdle(log, Fixture.decision(0)))
        #expect(try result.get() == 2)
        for _ in 0..<30_000 where log.statistics.checkpoints < 2 { try await Task.sleep(for: .milliseconds(1)) }
        #expect(log.statistics.checkpoints == 2, "the entry committed on the caller's thread was never signed")
        log.close()
    }

    /// With `write` durability, the writer sleeps until its checkpoint once it has flushed; an entry
    /// then committed on the caller's thread must bring its flush deadline forward, or the entry
    /// would stay unflushed for the checkpoint interval instead of `audit_flush_ms`.
    @Test func anEntryCommittedByTheCallerIsFlushedWithinTheInterval() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        var configuration = Fixture.configuration(dir.path)
        configuration.durability = .written(flushInterval: .milliseconds(20))
        let log = try AuditLog(configuration)
        let opened = log.statistics.syncs
        _ = try await log.append(Fixture.decision(0))
        for _ in 0..<30_000 where log.statistics.syncs == opened { try await Task.sleep(for: .milliseconds(1)) }
        let flushed = log.statistics.syncs
        #expect(flushed > opened, "the writer never flushed its own entry")
        // Now only the hour-long checkpoint is due.
        let (result, _) = try #require(try await Self.commitWhenIdle(log, Fixture.decision(1)))
        #expect(try result.get() == 3)
        for _ in 0..<30_000 where log.statistics.syncs == flushed { try await Task.sleep(for: .milliseconds(1)) }
        #expect(log.statistics.syncs > flushed, "the entry committed on the caller's thread was not flushed within the interval")
        log.close()
    }

    /// A caller commits only a write over zeros already reserved: rotating a segment, or writing
    /// the next reservation, stays the writer thread's, and so does a shut-down log.
    @Test func onlyACommitOverReservedZerosIsTheCallers() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        var writer = try Writer.open(Fixture.configuration(dir.sub("log")), io: .system)
        let withinReservation = writer.commitsInPlace(LogCore.inlineHeadroom)
        let pastReservation = writer.commitsInPlace(Writer.reservationBytes + 1)
        _ = writer.shutdown(abandon: false)
        let shutDown = writer.commitsInPlace(1)
        var rotating = try Writer.open(Fixture.configuration(dir.sub("small"), rotationBytes: 16 << 10), io: .system)
        let rotationDue = rotating.commitsInPlace(LogCore.inlineHeadroom)
        _ = rotating.shutdown(abandon: false)
        #expect(withinReservation)
        #expect(!pastReservation, "past the reserved zeros")
        #expect(!shutDown, "a shut-down log")
        #expect(!rotationDue, "a rotation is due first")
    }

    /// A closed or failed log commits nothing on the caller's thread: the caller appends, and is refused.
    @Test func aClosedLogCommitsNothingOnTheCallersThread() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let log = try AuditLog(Fixture.configuration(dir.path))
        log.close()
        #expect(log.commitInline([Fixture.decision(0)]) == nil)
        await #expect(throws: AuditError.closed) { try await log.append(Fixture.decision(1)) }
    }

    /// `audit_durability: write`: an append is acknowledged once it is in the file, before any
    /// fdatasync; a `kill -9` of Palisade keeps it (the page cache is the kernel's), and a checkpoint
    /// flushes before it signs.
    @Test func writtenDurabilityAcknowledgesEntriesInTheFileBeforeTheyAreFlushed() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let segmentSyncs = Locked(0)
        let counting = AuditIO(write: AuditIO.system.write, sync: { fd in
            var status = stat()
            if fstat(fd, &status) == 0, status.st_mode & S_IFMT == S_IFREG { segmentSyncs.withLock { $0 += 1 } }
            return fdatasync(fd)
        })
        var configuration = Fixture.configuration(dir.path)
        configuration.durability = .written(flushInterval: .seconds(3600))
        let log = try AuditLog(configuration, io: counting)
        let before = segmentSyncs.withLock { $0 }
        for n in 0..<20 { _ = try await log.append(Fixture.decision(n)) }
        #expect(segmentSyncs.withLock { $0 } == before, "an acknowledged entry waited for an fdatasync")
        // Acknowledged entries are in the file though the log never flushed them, and a writer
        // stopped as kill -9 stops it leaves them for the next start to recover.
        #expect(try Fixture.entries(dir.path).count == 22)
        let start = try #require(try Fixture.entries(dir.path).first { $0.record.event == .start })
        #expect(start.record.detail["durability"] == .string("write, flushed within 3600000 ms"))
        log.abandonForTesting()
        let reopened = try AuditLog(Fixture.configuration(dir.path))
        reopened.close()
        #expect(try Fixture.verify(dir.path).outcome == .ok)
        #expect(try Fixture.entries(dir.path).filter { $0.record.requestID?.hasPrefix("req-") == true }.count == 20)
    }

    /// No checkpoint signs an entry that is only in the page cache: with `write` durability, the
    /// segment is flushed before each checkpoint is written (here the one at close).
    @Test func aCheckpointIsWrittenOnlyAfterTheEntriesItSignsAreFlushed() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        struct Disk { var segment: Int32 = -1; var unflushed = false; var checkpointsOverUnflushed = 0; var checkpoints = 0 }
        let disk = Locked(Disk())
        // Segments are written at an offset; checkpoints, like the other small files, are appended
        // (see `Writer.appendDurably`).
        let watching = AuditIO(write: { fd, bytes in
            let path = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(fd)")) ?? ""
            if path.contains("checkpoint") {
                disk.withLock { disk in
                    disk.checkpoints += 1
                    if disk.unflushed { disk.checkpointsOverUnflushed += 1 }
                }
            }
            return Glibc.write(fd, bytes.baseAddress, bytes.count)
        }, sync: { fd in
            disk.withLock { disk in if fd == disk.segment { disk.unflushed = false } }
            return fdatasync(fd)
        }, writeAt: { fd, bytes, offset in
            disk.withLock { disk in
                disk.segment = fd
                disk.unflushed = true
            }
            return pwrite(fd, bytes.baseAddress, bytes.count, off_t(offset))
        })
        var configuration = Fixture.configuration(dir.path)
        configuration.durability = .written(flushInterval: .seconds(3600))
        let log = try AuditLog(configuration, io: watching)
        for n in 0..<10 { _ = try await log.append(Fixture.decision(n)) }
        log.close()
        let seen = disk.withLock { $0 }
        #expect(seen.checkpoints > 0)
        #expect(seen.checkpointsOverUnflushed == 0, "\(seen.checkpointsOverUnflushed) checkpoints written over unflushed entries")
    }

    /// What a power loss can do to `write` durability: the unflushed tail of the segment is gone,
    /// down to the middle of a line (the page cache is lost by pages). The signed part is on disk,
    /// since a checkpoint flushes first; the next start trims the rest and the log verifies.
    @Test func aLostUnflushedTailIsTrimmedAndTheSignedLogStillVerifies() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        try await Fixture.log(in: dir.path, count: 3)
        var configuration = Fixture.configuration(dir.path)
        configuration.durability = .written(flushInterval: .seconds(3600))
        let log = try AuditLog(configuration)
        for n in 3..<13 { _ = try await log.append(Fixture.decision(n)) }
        log.abandonForTesting()
        var segment = try SegmentFile.last(in: dir.path)
        let firstLost = try #require(segment.lines.firstIndex { (try? AuditEntry(line: $0))?.record.requestID == "req-8" })
        let torn = Array(segment.lines[firstLost].prefix(40))
        segment.lines.removeSubrange(firstLost...)
        try segment.write(trailing: torn + [UInt8](repeating: 0, count: 4096))

        try await Fixture.log(in: dir.path, count: 0)
        let entries = try Fixture.entries(dir.path)
        #expect(entries.compactMap(\.record.requestID).filter { $0.hasPrefix("req-") }.count == 8)  // req-0 … req-7
        #expect(entries.contains { $0.record.event == .recovery })
        #expect(try Fixture.verify(dir.path).outcome == .ok)
    }

    /// The writer's own steps, without its thread or a clock to wait on: a written entry is not
    /// flushed before its interval is up, is flushed once it is, and makes the writer wake for it.
    @Test func writtenEntriesAreFlushedOnceTheIntervalIsUp() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        for (interval, due) in [(Duration.seconds(3600), false), (.zero, true)] {
            let path = dir.sub(due ? "due" : "not-due")
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
            var configuration = Fixture.configuration(path)
            configuration.durability = .written(flushInterval: interval)
            var writer = try Writer.open(configuration, io: .system)
            defer { writer.closeFiles() }
            let before = writer.statistics.syncs
            let (results, failure) = writer.commit([Request(kind: .record(Fixture.decision(0)), completion: { _ in })])
            #expect(failure == nil && (try? results[0].get()) != nil)
            #expect(writer.statistics.syncs == before, "a written entry was flushed before its answer")
            #expect(writer.unflushedSince != nil)
            // The idle writer wakes for the flush, not only for the next checkpoint (an hour away).
            if due { #expect(writer.nextDeadline() <= .now()) }
            #expect(writer.flushIfDue() == nil)
            #expect((writer.statistics.syncs > before) == due, "interval \(interval)")
            #expect((writer.unflushedSince == nil) == due)
        }
    }

    @Test func zerosReservedAfterEntriesThatExtendedTheFileLeaveThemIntact() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        // The disk refuses the reservation's zeros for a while (nearly full), so entries extend the
        // file; once space returns, the zeros must go after those entries, never over them.
        let refusals = Locked(40)
        let tight = AuditIO(write: AuditIO.system.write, sync: AuditIO.system.sync, writeAt: { fd, bytes, offset in
            let isZeros = bytes.count >= 4096 && bytes.allSatisfy { $0 == 0 }
            if isZeros, refusals.withLock({ $0 -= 1; return $0 >= 0 }) {
                errno = ENOSPC
                return -1
            }
            return pwrite(fd, bytes.baseAddress, bytes.count, off_t(offset))
        })
        let log = try AuditLog(Fixture.configuration(dir.path), io: tight)
        for n in 0..<60 { _ = try await log.append(Fixture.decision(n)) }
        #expect(refusals.withLock { $0 } < 0, "the reservation was granted again before the end")
        log.abandonForTesting()
        #expect(try SegmentFile.last(in: dir.path).reservedBytes > 0)
        #expect(try Fixture.verify(dir.path).outcome == .unanchored)
        #expect(try Fixture.entries(dir.path).map(\.seq) == Array(0..<62))
    }

    @Test func aReopenedLogContinuesTheChain() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        try await Fixture.log(in: dir.path, count: 3)
        try await Fixture.log(in: dir.path, count: 3)
        let events = try Fixture.entries(dir.path).map(\.record.event)
        #expect(events == [.segmentOpened, .start, .decision, .decision, .decision, .stop,
                           .start, .decision, .decision, .decision, .stop])
        #expect(try Fixture.verify(dir.path).outcome == .ok)
    }

    @Test func aTornLastLineIsTrimmedAndRecorded() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        try await Fixture.abandonedLog(in: dir.path, count: 3)
        let torn = Array("{\"client_addr\":\"10.0.0.1:5000\",\"credential_id\":\"cr".utf8)
        try SegmentFile.last(in: dir.path).write(trailing: torn)

        let reopened = try AuditLog(Fixture.configuration(dir.path))
        _ = try await reopened.append(Fixture.decision(3))
        reopened.close()
        let entries = try Fixture.entries(dir.path)
        let recovery = try #require(entries.first { $0.record.event == .recovery })
        #expect(recovery.seq == 5)
        #expect(recovery.record.detail["bytes_trimmed"] == .int(Int64(torn.count)))
        #expect(recovery.record.detail["last_seq"] == .int(4))
        #expect(entries.map(\.record.event).suffix(4) == [.recovery, .start, .decision, .stop])
        #expect(try Fixture.verify(dir.path).outcome == .ok)
    }

    @Test func anUncleanStopWithoutATornLineIsStillRecorded() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        try await Fixture.abandonedLog(in: dir.path, count: 1)
        try await Fixture.log(in: dir.path, count: 1)
        let recovery = try #require(try Fixture.entries(dir.path).first { $0.record.event == .recovery })
        #expect(recovery.record.detail["bytes_trimmed"] == .int(0))
        #expect(try Fixture.verify(dir.path).outcome == .ok)
    }

    @Test func reservedSpaceIsWrittenInPlaceAndCutOffWhenTheLogCloses() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        try await Fixture.abandonedLog(in: dir.path, count: 3)
        // A crash leaves the reserved zeros after the last entry: the log verifies, and reopening
        // writes on after the entries without cutting anything.
        #expect(try SegmentFile.last(in: dir.path).reservedBytes > 0)
        #expect(try Fixture.verify(dir.path).outcome == .unanchored)
        try await Fixture.log(in: dir.path, count: 1)
        let recovery = try #require(try Fixture.entries(dir.path).first { $0.record.event == .recovery })
        #expect(recovery.record.detail["bytes_trimmed"] == .int(0))
        #expect(try SegmentFile.last(in: dir.path).reservedBytes == 0)
        #expect(try Fixture.verify(dir.path).outcome == .ok)
    }

    @Test func aTornLineBeforeTheReservedSpaceIsTrimmed() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        try await Fixture.abandonedLog(in: dir.path, count: 3)
        let segment = try SegmentFile.last(in: dir.path)
        let torn = Array("{\"client_addr\":\"10.0.0.1:5000\",\"credential_id\":\"cr".utf8)
        try segment.write(trailing: torn + [UInt8](repeating: 0, count: segment.reservedBytes - torn.count))

        try await Fixture.log(in: dir.path, count: 1)
        let recovery = try #require(try Fixture.entries(dir.path).first { $0.record.event == .recovery })
        #expect(recovery.record.detail["bytes_trimmed"] == .int(Int64(segment.reservedBytes)))
        #expect(try Fixture.verify(dir.path).outcome == .ok)
    }

    @Test func reservedSpaceBeforeAnotherSegmentIsReported() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        try await Fixture.log(in: dir.path, count: 40, rotationBytes: 3_000)
        let first = try SegmentFile(LogFiles.segments(in: dir.path)[0].path)
        try first.write(trailing: [UInt8](repeating: 0, count: 4096))
        let report = try Fixture.verify(dir.path)
        #expect(report.outcome == .malformed)
        #expect(report.problem?.contains("zero bytes after its last entry") == true)
    }

    @Test func recoveryNeverCutsSignedOrMiddleEntries() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        try await Fixture.log(in: dir.path, count: 5)
        var segment = try SegmentFile.last(in: dir.path)
        // The stop entry is covered by the final checkpoint: cutting it short is not a crash to repair.
        let stop = segment.lines.removeLast()
        try segment.write(trailing: Array(stop.prefix(40)))
        #expect(throws: AuditError.self) { try AuditLog(Fixture.configuration(dir.path)) }
        segment.lines.append(stop)
        // A changed entry in the middle is not a torn tail either.
        let index = try #require(segment.index(ofSeq: 3))
        segment.lines[index] = replacing(segment.lines[index], "decision number 1", "decision number 2")
        try segment.write()
        do {
            _ = try AuditLog(Fixture.configuration(dir.path))
            Issue.record("opened a tampered log")
        } catch {
            #expect(error.description.contains("entry_hash does not match"), "\(error)")
        }
    }

    @Test func rotationBySizeStartsEachSegmentWithItsEntry() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        try await Fixture.log(in: dir.path, count: 40, rotationBytes: 3_000)
        let segments = try LogFiles.segments(in: dir.path)
        #expect(segments.count >= 3)
        for segment in segments {
            let first = try AuditEntry(line: try SegmentFile(segment.path).lines[0])
            #expect(first.record.event == .segmentOpened)
            #expect(first.record.detail["segment"] == .int(Int64(segment.number)))
            #expect(try LogFiles.read(segment.path).count < 3_000 + 1_000)
            #expect(try SegmentFile(segment.path).reservedBytes == 0)
        }
        let report = try Fixture.verify(dir.path)
        #expect(report.outcome == .ok)
        #expect(report.checkpointsVerified == segments.count + 1)  // open, each rotation, close
    }

    @Test func rotationByTime() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let log = try AuditLog(Fixture.configuration(dir.path, rotationInterval: .milliseconds(50)))
        _ = try await log.append(Fixture.decision(0))
        try await Task.sleep(for: .milliseconds(120))
        _ = try await log.append(Fixture.decision(1))
        log.close()
        // At least the rotation before decision 1, whose segment is 120 ms old; on a loaded machine
        // (this failed under scripts/sanitize.sh address) also one before decision 0, if opening the
        // log took longer than 50 ms. No third: a segment rotates only past its first entry.
        #expect((2...3).contains(try LogFiles.segments(in: dir.path).count))
        #expect(try Fixture.verify(dir.path).outcome == .ok)
    }

    @Test func checkpointsAreSignedPeriodicallyAndMirrored() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let mirror = dir.sub("mirror")
        let log = try AuditLog(Fixture.configuration(dir.sub("log"), checkpointInterval: .milliseconds(50), mirror: mirror))
        _ = try await log.append(Fixture.decision(0))
        try await Task.sleep(for: .milliseconds(400))
        #expect(log.statistics.checkpoints == 2)  // the one at open, one more for the new entry, none while idle
        let latest = try SignedCheckpoint(parsing: String(contentsOfFile: mirror + "/" + CheckpointHistory.latestFileName, encoding: .utf8))
        #expect(latest.checkpoint.size == 3)
        #expect(latest.note.verifiedSigners([Fixture.key.verifierKey]).count == 1)
        log.close()
        #expect(try Fixture.verify(dir.sub("log"), mirror: mirror).outcome == .ok)
    }

    @Test func aWriteErrorFailsTheLogClosed() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let syncs = Locked(0)
        let failing = AuditIO(write: AuditIO.system.write, sync: { fd in
            // Open syncs the segment, the directory files and checkpoints; fail a little after that.
            if syncs.withLock({ $0 += 1; return $0 }) > 12 { errno = EIO; return -1 }
            return fdatasync(fd)
        })
        let log = try AuditLog(Fixture.configuration(dir.path), io: failing)
        var failure: AuditError?
        for n in 0..<20 {
            do {
                _ = try await log.append(Fixture.decision(n))
            } catch {
                failure = error
                break
            }
        }
        let error = try #require(failure)
        #expect(error == .io(operation: "fdatasync", path: dir.path + "/audit-000001.jsonl", errno: EIO))
        #expect(error.description.contains("Input/output error"))
        #expect(log.failure == error)
        // Refused at once from now on, with the same reason.
        await #expect(throws: error) { try await log.append(Fixture.decision(99)) }
        let refused = await withCheckedContinuation { continuation in
            log.append(Fixture.decision(100)) { continuation.resume(returning: $0) }
        }
        #expect(refused == .failure(error))
        log.close()
    }

    @Test(.enabled(if: geteuid() == 0, "mounting a tmpfs needs root"))
    func aFullDiskFailsTheLogClosed() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        guard mount("tmpfs", dir.path, "tmpfs", 0, "size=64k") == 0 else {
            Issue.record("mount tmpfs failed: errno \(errno)")
            return
        }
        defer { umount2(dir.path, Int32(MNT_DETACH)) }
        let log = try AuditLog(Fixture.configuration(dir.path))
        defer { log.close() }
        var failure: AuditError?
        for n in 0..<1_000 {
            do {
                _ = try await log.append(Fixture.decision(n))
            } catch {
                failure = error
                break
            }
        }
        guard case .io(_, _, let code)? = failure else {
            Issue.record("64 KiB took 1,000 entries: \(String(describing: failure))")
            return
        }
        #expect(code == ENOSPC)
        #expect(log.failure == failure)
        await #expect(throws: AuditError.self) { try await log.append(Fixture.decision(0)) }
    }

    @Test func aDirectoryHasOneWriter() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let log = try AuditLog(Fixture.configuration(dir.path))
        #expect(throws: AuditError.locked(path: dir.path)) { try AuditLog(Fixture.configuration(dir.path)) }
        log.close()
        try AuditLog(Fixture.configuration(dir.path)).close()
    }

    @Test func lifecycleEventsOfTheLogCannotBeForged() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let log = try AuditLog(Fixture.configuration(dir.path))
        for event in AuditEvent.allCases where event.isWrittenByLog {
            await #expect(throws: AuditError.self) { try await log.append(AuditRecord(event: event)) }
        }
        await #expect(throws: AuditError.self) { try await log.append(AuditRecord(detail: ["n": .int(1 << 60)])) }
        let seq = try await log.append(.policyLoaded(version: "abc", path: "/etc/palisade/policy.yaml"))
        #expect(seq == 2)
        log.close()
        await #expect(throws: AuditError.closed) { try await log.append(Fixture.decision(0)) }
    }

    /// Regression (scripts/fuzz.sh audit, LeakSanitizer): reading an empty file, as a new log's
    /// checkpoint history, leaked 4 KiB through swift-foundation's `Data(contentsOf:)` on Linux.
    /// `scripts/sanitize.sh address` fails on this test if the leak comes back.
    @Test func anEmptyFileReadsAsNoBytesWithoutLeaking() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let empty = dir.path + "/empty", small = dir.path + "/small"
        #expect(FileManager.default.createFile(atPath: empty, contents: Data()))
        #expect(FileManager.default.createFile(atPath: small, contents: Data("{}\n".utf8)))
        #expect(try LogFiles.read(empty) == [])
        #expect(try LogFiles.read(small) == Array("{}\n".utf8))
        #expect(throws: (any Error).self) { try LogFiles.read(dir.path + "/missing") }
    }
}

@Suite struct AuditLogRecoveryTests {
    @Test func aCheckpointCutShortIsRemovedAtOpen() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let mirror = dir.sub("mirror")
        try await Fixture.log(in: dir.sub("log"), count: 2, mirror: mirror)
        for directory in [dir.sub("log"), mirror] {
            let path = directory + "/" + CheckpointHistory.fileName
            let text = try String(contentsOfFile: path, encoding: .utf8)
            try String(text.dropLast(20)).write(toFile: path, atomically: true, encoding: .utf8)
        }
        #expect(try Fixture.verify(dir.sub("log"), mirror: mirror).outcome == .malformed)
        try await Fixture.log(in: dir.sub("log"), count: 2, mirror: mirror)
        let report = try Fixture.verify(dir.sub("log"), mirror: mirror)
        #expect(report.outcome == .ok, "\(report)")
        let recovery = try #require(try Fixture.entries(dir.sub("log")).first { $0.record.event == .recovery })
        #expect(recovery.record.detail["checkpoint_bytes_trimmed"].map { if case .int(let n) = $0 { n > 0 } else { false } } == true)
    }

    @Test func closingFromACompletionDoesNotDeadlock() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let log = try AuditLog(Fixture.configuration(dir.path))
        let result = await withCheckedContinuation { continuation in
            log.append(Fixture.decision(0)) { result in
                log.close()
                continuation.resume(returning: result)
            }
        }
        #expect((try? result.get()) == 2)
        log.close()
        #expect(try Fixture.entries(dir.path).last?.record.event == .stop)
    }
}
