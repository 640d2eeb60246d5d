import Foundation
import Testing
@testable import AuditChain

/// The verifier against every kind of tampering, on logs the real writer produced.
@Suite struct VerifierTests {
    @Test func anIntactLogVerifies() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        try await Fixture.log(in: dir.path, count: 20)
        let report = try Fixture.verify(dir.path)
        #expect(report.outcome == .ok, "\(report)")
        #expect(report.entries == 23)  // segment_opened, start, 20 decisions, stop
        #expect(report.anchoredSize == 23)
        #expect(report.checkpointsVerified == 2)  // at open and at close
        #expect(report.origin == Fixture.origin)
    }

    @Test func oneChangedByteIsFoundWithItsSequenceNumber() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        try await Fixture.log(in: dir.path, count: 20)
        var segment = try SegmentFile.last(in: dir.path)
        let index = try #require(segment.index(ofSeq: 9))
        segment.lines[index] = replacing(segment.lines[index], "decision number 7", "decision number 8")
        try segment.write()
        let report = try Fixture.verify(dir.path)
        #expect(report.outcome == .tampered)
        #expect(report.firstBadSeq == 9)
        #expect(report.problem?.contains("entry_hash does not match") == true, "\(report.problem ?? "")")
        #expect(report.location == "audit-000001.jsonl line \(index + 1)")
    }

    @Test func aDeletedEntryIsFound() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        try await Fixture.log(in: dir.path, count: 20)
        var segment = try SegmentFile.last(in: dir.path)
        segment.lines.remove(at: try #require(segment.index(ofSeq: 10)))
        try segment.write()
        let report = try Fixture.verify(dir.path)
        #expect(report.outcome == .tampered)
        #expect(report.firstBadSeq == 10)
        #expect(report.problem?.contains("expected seq 10, found 11") == true, "\(report.problem ?? "")")
    }

    @Test func anInsertedEntryIsFound() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        try await Fixture.log(in: dir.path, count: 20)
        var segment = try SegmentFile.last(in: dir.path)
        let index = try #require(segment.index(ofSeq: 10))
        // A fabricated entry with the right seq and link and a correct hash: only its successor can tell.
        let previous = try AuditEntry(line: segment.lines[index - 1])
        var forged = AuditEntry(seq: 10, timeMicros: previous.timeMicros, record: Fixture.decision(99), prevHash: previous.entryHash, entryHash: .zero)
        forged.entryHash = forged.computedHash
        segment.lines.insert(forged.canonicalLine, at: index)
        try segment.write()
        let report = try Fixture.verify(dir.path)
        #expect(report.outcome == .tampered)
        #expect(report.firstBadSeq == 11)
    }

    @Test func swappedEntriesAreFound() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        try await Fixture.log(in: dir.path, count: 20)
        var segment = try SegmentFile.last(in: dir.path)
        let index = try #require(segment.index(ofSeq: 12))
        segment.lines.swapAt(index, index + 1)
        try segment.write()
        let report = try Fixture.verify(dir.path)
        #expect(report.outcome == .tampered)
        #expect(report.firstBadSeq == 12)
    }

    @Test func aRewrittenChainDoesNotReachTheSignedRoot() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        try await Fixture.log(in: dir.path, count: 20)
        var segment = try SegmentFile.last(in: dir.path)
        // Change a deny into an allow and recompute every hash after it: the chain is consistent
        // again, and only the signed checkpoint, which the forger cannot redo, gives it away.
        var previous = AuditHash.zero
        for index in segment.lines.indices {
            var entry = try AuditEntry(line: segment.lines[index])
            if entry.seq == 5 { entry.record.decision = .allow }
            entry.prevHash = previous
            entry.entryHash = entry.computedHash
            previous = entry.entryHash
            segment.lines[index] = entry.canonicalLine
        }
        try segment.write()
        let report = try Fixture.verify(dir.path)
        #expect(report.outcome == .tampered)
        #expect(report.problem?.contains("do not hash to the root") == true, "\(report.problem ?? "")")
        #expect(report.firstBadSeq == 2)  // after the checkpoint of size 2 written at open
    }

    @Test func aNonCanonicalLineIsFoundEvenIfItHashesCorrectly() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        try await Fixture.log(in: dir.path, count: 5)
        var segment = try SegmentFile.last(in: dir.path)
        let index = try #require(segment.index(ofSeq: 3))
        segment.lines[index] = replacing(segment.lines[index], "\"tenant\":\"acme\"", "\"tenant\": \"acme\"")
        try segment.write()
        let report = try Fixture.verify(dir.path)
        #expect(report.outcome == .tampered)
        #expect(report.firstBadSeq == 3)
        #expect(report.problem?.contains("canonical") == true)
    }

    @Test func cuttingTheTailIsTruncationIfACheckpointSawIt() async throws {
        let dir = TemporaryDirectory()
        let mirror = dir.sub("mirror")
        let logDir = dir.sub("log")
        defer { dir.remove() }
        try await Fixture.log(in: logDir, count: 20, mirror: mirror)
        var segment = try SegmentFile.last(in: logDir)
        segment.lines.removeLast(4)
        try segment.write()
        let report = try Fixture.verify(logDir)
        #expect(report.outcome == .truncated)
        #expect(report.firstBadSeq == 19)
        #expect(report.problem?.contains("entries 19…22 were cut off") == true, "\(report.problem ?? "")")

        // A careful attacker also cuts the log's own checkpoint history; its newest checkpoint,
        // a file of its own, still covers the entries cut (sixteenth red team: it was not read).
        let history = try #require(try LogFiles.checkpointHistory(in: logDir))
        let first = try #require(CheckpointHistory.parse(history).first)
        try Data(history.utf8.prefix(first.endOffset)).write(to: URL(fileURLWithPath: logDir + "/" + CheckpointHistory.fileName))
        let newest = try Fixture.verify(logDir)
        #expect(newest.outcome == .truncated)
        #expect(newest.problem?.contains(CheckpointHistory.latestFileName) == true, "\(newest.problem ?? "")")
        // One who removes that file too is left unanchored; the mirror still has both.
        try FileManager.default.removeItem(atPath: logDir + "/" + CheckpointHistory.latestFileName)
        #expect(try Fixture.verify(logDir).outcome == .unanchored)
        try FileManager.default.removeItem(atPath: mirror + "/" + CheckpointHistory.fileName)
        #expect(try Fixture.verify(logDir, mirror: mirror).outcome == .truncated, "a mirror's newest checkpoint alone is read")
        let withMirror = try Fixture.verify(logDir, mirror: mirror)
        #expect(withMirror.outcome == .truncated)
        #expect(withMirror.problem?.contains("mirror") == true)
    }

    @Test func entriesAfterTheLastCheckpointAreUnanchoredAndCuttingThemIsUndetectable() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let log = try AuditLog(Fixture.configuration(dir.path))
        for n in 0..<5 { _ = try await log.append(Fixture.decision(n)) }
        #expect(try await log.checkpoint() == 7)
        for n in 5..<10 { _ = try await log.append(Fixture.decision(n)) }
        log.abandonForTesting()

        let report = try Fixture.verify(dir.path)
        #expect(report.outcome == .unanchored)
        #expect(report.firstBadSeq == 7)
        #expect(report.anchoredSize == 7)

        var segment = try SegmentFile.last(in: dir.path)
        segment.lines.removeLast(2)
        try segment.write()
        #expect(try Fixture.verify(dir.path).outcome == .unanchored)
        // Cut back to exactly the checkpoint: nothing signed is missing, so nothing can be proven.
        segment.lines.removeLast(3)
        try segment.write()
        #expect(try Fixture.verify(dir.path).outcome == .ok)
    }

    @Test func replacedCheckpointsHaveBadSignatures() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        try await Fixture.log(in: dir.path, count: 5)
        let path = dir.path + "/" + CheckpointHistory.fileName
        let original = try #require(try LogFiles.checkpointHistory(in: dir.path))
        let items = CheckpointHistory.parse(original).compactMap { try? $0.result.get() }
        #expect(items.count == 2)
        let last = items[1].checkpoint

        func verifyWithLast(_ replacement: String) throws -> VerificationReport {
            try (items[0].encoded + "\n" + replacement + "\n").write(toFile: path, atomically: true, encoding: .utf8)
            return try Fixture.verify(dir.path)
        }
        // Signed by another key with the same name.
        let forged = try last.signed(with: Fixture.otherKey).encoded
        #expect(try verifyWithLast(forged).outcome == .badSignature)
        // The real signature over an edited body.
        let edited = items[1].encoded.replacingOccurrences(of: "\n\(last.size)\n", with: "\n\(last.size + 5)\n")
        #expect(edited != items[1].encoded)
        #expect(try verifyWithLast(edited).outcome == .badSignature)
        // The real key, but a checkpoint of another log.
        var elsewhere = last
        elsewhere.origin = "audit.test/other"
        let other = try verifyWithLast(try elsewhere.signed(with: Fixture.key).encoded)
        #expect(other.outcome == .badSignature)
        #expect(other.problem?.contains("origin") == true)
        // Not a checkpoint at all.
        #expect(try verifyWithLast("garbage\n").outcome == .malformed)
        // Back to the original: fine again, so the failures above came from the replacements.
        #expect(try verifyWithLast(items[1].encoded).outcome == .ok)
    }

    @Test func onlyTrustedKeysCount() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        try await Fixture.log(in: dir.path, count: 3)
        #expect(try Fixture.verify(dir.path, keys: [Fixture.otherKey.verifierKey]).outcome == .badSignature)
        let unkeyed = try Fixture.verify(dir.path, keys: [])
        #expect(unkeyed.outcome == .badSignature)
        #expect(unkeyed.problem?.contains("no verifier key") == true)
    }

    @Test func aTornOrZeroFilledTailIsMalformed() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        try await Fixture.log(in: dir.path, count: 3)
        let segment = try SegmentFile.last(in: dir.path)
        try segment.write(trailing: Array("{\"client_addr\":nu".utf8))
        let torn = try Fixture.verify(dir.path)
        #expect(torn.outcome == .malformed)
        #expect(torn.firstBadSeq == 6)
        try segment.write(trailing: [UInt8](repeating: 0, count: 100) + [0x0A])
        #expect(try Fixture.verify(dir.path).outcome == .malformed)
        let empty = TemporaryDirectory()
        defer { empty.remove() }
        #expect(try Fixture.verify(empty.path).outcome == .malformed)
    }

    @Test func aMissingSegmentIsFound() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        try await Fixture.log(in: dir.path, count: 60, rotationBytes: 2_000)
        let segments = try LogFiles.segments(in: dir.path)
        #expect(segments.count >= 4)
        #expect(try Fixture.verify(dir.path).outcome == .ok)
        try FileManager.default.removeItem(atPath: segments[1].path)
        let report = try Fixture.verify(dir.path)
        #expect(report.outcome == .tampered)
        #expect(report.problem?.contains("audit-000002.jsonl is missing") == true, "\(report.problem ?? "")")
    }

    @Test func aRotatedKeyIsTrustedThroughTheOldOne() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let log = try AuditLog(Fixture.configuration(dir.path))
        _ = try await log.append(Fixture.decision(1))
        let rotation = try await log.rotateSigningKey(to: Fixture.otherKey)
        _ = try await log.append(Fixture.decision(2))
        log.close()
        #expect(log.failure == nil)
        let entries = try Fixture.entries(dir.path)
        #expect(entries[Int(rotation)].record.event == .keyRotation)
        #expect(entries[Int(rotation)].record.detail["new_key"] == .string(Fixture.otherKey.verifierKey.encoded))
        #expect(try Fixture.verify(dir.path).outcome == .ok)
        #expect(try Fixture.verify(dir.path, keys: [Fixture.otherKey.verifierKey]).outcome == .badSignature)
        let recorded = try String(contentsOfFile: dir.path + "/" + LogFiles.vkeyFileName, encoding: .utf8)
        #expect(recorded == Fixture.key.verifierKey.encoded + "\n" + Fixture.otherKey.verifierKey.encoded + "\n")
    }
}
