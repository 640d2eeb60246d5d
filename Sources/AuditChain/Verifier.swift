import Foundation
import Encoding

/// What a verification found. The outcomes are distinct because a reviewer acts differently on
/// each: a torn file after a crash is not an altered entry, and a missing tail is not a bad key.
public struct VerificationReport: Sendable, Equatable {
    public enum Outcome: String, Sendable, CaseIterable {
        /// Every entry checks, and the last one is covered by an authentic checkpoint.
        case ok
        /// Input that is not a log: no segments, a torn or zero-filled tail, an unreadable checkpoint.
        case malformed
        /// An entry was changed, removed, inserted or reordered, or the chain does not reach a checkpoint's root.
        case tampered
        /// An authentic checkpoint covers more entries than the log has: its tail was cut off.
        case truncated
        /// A checkpoint is not signed by a trusted key (or is for another log).
        case badSignature = "bad_signature"
        /// Entries after the last checkpoint: intact as far as anyone can tell, but not yet signed.
        case unanchored
    }

    public var outcome: Outcome
    /// What is wrong, for every outcome but `ok`.
    public var problem: String?
    /// The first entry the problem concerns (for unanchored, the first unanchored entry).
    public var firstBadSeq: UInt64?
    /// Segment file and line, when the problem is in a segment.
    public var location: String?
    public var entries: UInt64
    public var segments: Int
    /// Checkpoints that are authentic and match the log.
    public var checkpointsVerified: Int
    public var anchoredSize: UInt64
    public var origin: String?
    public var latestCheckpoint: SignedCheckpoint?
    public var warnings: [String]

    public var json: JSONValue {
        .object([
            "outcome": .string(outcome.rawValue),
            "problem": problem.map(JSONValue.string) ?? .null,
            "first_bad_seq": firstBadSeq.map { .int(Int64($0)) } ?? .null,
            "location": location.map(JSONValue.string) ?? .null,
            "entries": .int(Int64(entries)),
            "segments": .int(Int64(segments)),
            "checkpoints_verified": .int(Int64(checkpointsVerified)),
            "anchored_size": .int(Int64(anchoredSize)),
            "origin": origin.map(JSONValue.string) ?? .null,
            "warnings": .array(warnings.map(JSONValue.string)),
        ])
    }
}

extension VerificationReport.Outcome {
    /// The exit code of `palisade audit verify` for this outcome (its --help and README.md list them).
    public var exitCode: Int32 {
        switch self {
        case .ok: 0
        case .malformed: 3
        case .tampered: 4
        case .truncated: 5
        case .badSignature: 6
        case .unanchored: 7
        }
    }
}

/// Checks a log from its bytes: canonical form, gapless sequence numbers, every hash and link, the
/// segment structure, and every checkpoint's signature and root. Pure: the caller reads the files
/// and feeds the segments in order, one at a time, so memory stays at one segment.
public struct LogVerifier {
    public struct Problem: Sendable, Equatable {
        public var outcome: VerificationReport.Outcome
        public var message: String
        public var seq: UInt64?
        public var segment: Int?
        public var line: Int?
        /// Byte offset of the bad line in its segment: where recovery would cut.
        public var offset: Int?
    }

    struct SourcedCheckpoint {
        var source: String
        var line: Int
        var checkpoint: SignedCheckpoint
    }

    let trustedKeys: [NoteVerifierKey]
    var checkpoints: [SourcedCheckpoint] = []
    var checkpointProblems: [Problem] = []
    var wantedSizes: Set<UInt64> = []
    var rootsAtSize: [UInt64: AuditHash] = [:]
    var announcedKeys: [(seq: UInt64, key: NoteVerifierKey)] = []
    var lastSegment = 0
    var emptySegment: Int?
    var segmentLength = 0
    var warnings: [String] = []

    /// Keep every leaf hash (for inclusion proofs); off by default to keep memory flat.
    public var collectLeaves = false
    /// Called for every entry that checks, in order.
    public var onEntry: ((AuditEntry) -> Void)?

    public private(set) var head = ChainHead.genesis
    public private(set) var frontier = MerkleFrontier()
    public private(set) var leaves: [AuditHash] = []
    public private(set) var origin: String?
    public private(set) var lastEntry: AuditEntry?
    /// Bytes of the last segment fed that hold entries; the rest of it, if any, is zeros: space
    /// the writer reserved and has not written yet.
    public private(set) var endOfEntries = 0
    /// The first problem in the entries; verification of entries stops there.
    public private(set) var problem: Problem?
    public private(set) var segmentsSeen = 0

    /// `checkpointSources` are checkpoint history texts (the log's own, a mirror's), labelled for messages.
    public init(trustedKeys: [NoteVerifierKey] = [], checkpointSources: [(source: String, text: String)] = []) {
        self.trustedKeys = trustedKeys
        var seen: Set<String> = []
        for (source, text) in checkpointSources {
            for item in CheckpointHistory.parse(text) {
                switch item.result {
                case .success(let checkpoint):
                    // The same checkpoint in the log directory and in the mirror counts once.
                    if seen.insert(checkpoint.encoded).inserted {
                        checkpoints.append(SourcedCheckpoint(source: source, line: item.line, checkpoint: checkpoint))
                        wantedSizes.insert(checkpoint.checkpoint.size)
                    }
                case .failure(let error):
                    checkpointProblems.append(Problem(outcome: .malformed, message: "checkpoint at \(source) line \(item.line): \(error)"))
                }
            }
        }
        checkpoints.sort { $0.checkpoint.checkpoint.size < $1.checkpoint.checkpoint.size }
        if wantedSizes.contains(0) { rootsAtSize[0] = RFC6962.emptyRoot }
    }

    public mutating func feed(segment number: Int, bytes: [UInt8]) {
        guard problem == nil else { return }
        segmentsSeen += 1
        if let empty = emptySegment {
            fail(.tampered, "segment \(LogFiles.segmentName(empty)) is empty but \(LogFiles.segmentName(number)) follows it",
                 seq: head.nextSeq, segment: empty, line: nil, offset: nil)
            return
        }
        if endOfEntries < segmentLength {
            // The log cuts a segment's unwritten space off before it starts the next one.
            fail(.malformed, "segment \(LogFiles.segmentName(lastSegment)) has \(segmentLength - endOfEntries) zero bytes after its last entry but \(LogFiles.segmentName(number)) follows it",
                 seq: head.nextSeq, segment: lastSegment, line: nil, offset: endOfEntries)
            return
        }
        if number != lastSegment + 1 {
            let expected = LogFiles.segmentName(lastSegment + 1)
            fail(.tampered, "segment \(expected) is missing (found \(LogFiles.segmentName(number)))",
                 seq: head.nextSeq, segment: number, line: nil, offset: nil)
            return
        }
        lastSegment = number
        segmentLength = bytes.count
        endOfEntries = bytes.count
        bytes.withUnsafeBufferPointer { buffer in
            var start = 0
            var lineNumber = 0
            while start < buffer.count, problem == nil {
                if buffer[start] == 0, buffer[start...].allSatisfy({ $0 == 0 }) {
                    // Space the writer reserved for entries and has not written yet.
                    endOfEntries = start
                    break
                }
                lineNumber += 1
                guard let found = memchr(buffer.baseAddress! + start, 0x0A, buffer.count - start) else {
                    fail(.malformed, "the segment ends with an incomplete line of \(buffer.count - start) bytes (a crash before the log was reopened?)",
                         seq: head.nextSeq, segment: number, line: lineNumber, offset: start)
                    return
                }
                let end = buffer.baseAddress!.distance(to: found.assumingMemoryBound(to: UInt8.self))
                let line = UnsafeBufferPointer(rebasing: buffer[start..<end])
                if !line.isEmpty, line.allSatisfy({ $0 == 0 }) {
                    fail(.malformed, "zero-filled line (a crash before the log was reopened?)",
                         seq: head.nextSeq, segment: number, line: lineNumber, offset: start)
                    return
                }
                check(line, segment: number, first: lineNumber == 1, lineNumber: lineNumber, offset: start)
                start = end + 1
            }
        }
        if problem == nil, endOfEntries == 0 {
            emptySegment = number
            warnings.append("\(LogFiles.segmentName(number)) is empty (the log stopped right after creating it)")
        }
    }

    private mutating func fail(_ outcome: VerificationReport.Outcome, _ message: String, seq: UInt64?, segment: Int?, line: Int?, offset: Int?) {
        problem = Problem(outcome: outcome, message: message, seq: seq, segment: segment, line: line, offset: offset)
    }

    private mutating func check(_ line: UnsafeBufferPointer<UInt8>, segment: Int, first: Bool, lineNumber: Int, offset: Int) {
        let expected = head.nextSeq
        func tampered(_ message: String) {
            fail(.tampered, message, seq: expected, segment: segment, line: lineNumber, offset: offset)
        }
        let entry: AuditEntry
        do {
            entry = try AuditEntry(line: line)
        } catch {
            tampered("not a valid entry: \(error)")
            return
        }
        guard entry.seq == expected else {
            tampered("expected seq \(expected), found \(entry.seq): an entry was removed, inserted or moved")
            return
        }
        guard entry.prevHash == head.lastHash else {
            tampered(expected == 0 ? "the first entry's prev_hash is not zero"
                                   : "prev_hash does not match the hash of entry \(expected - 1): the chain is broken here")
            return
        }
        let (canonical, computed) = entry.encoded
        guard computed == entry.entryHash else {
            tampered("entry_hash does not match the entry's content: a field was changed")
            return
        }
        guard canonical.count == line.count,
              canonical.withUnsafeBytes({ memcmp($0.baseAddress!, line.baseAddress!, line.count) }) == 0 else {
            tampered("the line is not in canonical form (the content hashes correctly, the bytes were rewritten)")
            return
        }
        if first {
            guard entry.record.event == .segmentOpened, entry.record.detail["segment"] == .int(Int64(segment)) else {
                tampered("the first entry of \(LogFiles.segmentName(segment)) is not its segment_opened entry")
                return
            }
        } else if entry.record.event == .segmentOpened {
            tampered("segment_opened in the middle of \(LogFiles.segmentName(segment))")
            return
        }
        if entry.record.event == .segmentOpened {
            guard case .string(let entryOrigin)? = entry.record.detail["origin"] else {
                tampered("segment_opened without an origin")
                return
            }
            if let origin, origin != entryOrigin {
                tampered("segment_opened names origin \"\(entryOrigin)\", earlier segments \"\(origin)\"")
                return
            }
            origin = entryOrigin
        }
        if entry.record.event == .keyRotation, case .string(let text)? = entry.record.detail["new_key"],
           let key = try? NoteVerifierKey(parsing: text) {
            announcedKeys.append((entry.seq, key))
        }
        head = ChainHead(nextSeq: expected + 1, lastHash: computed)
        frontier.append(computed)
        if collectLeaves { leaves.append(computed) }
        if wantedSizes.contains(frontier.size) { rootsAtSize[frontier.size] = frontier.root }
        lastEntry = entry
        onEntry?(entry)
    }

    public func finish() -> VerificationReport {
        var report = VerificationReport(
            outcome: .ok, entries: head.nextSeq, segments: segmentsSeen, checkpointsVerified: 0, anchoredSize: 0,
            origin: origin, warnings: warnings)
        func finish(_ outcome: VerificationReport.Outcome, _ message: String, seq: UInt64?, location: String? = nil) -> VerificationReport {
            report.outcome = outcome
            report.problem = message
            report.firstBadSeq = seq
            report.location = location
            return report
        }
        if segmentsSeen == 0 { return finish(.malformed, "no segment files (audit-000001.jsonl, …)", seq: nil) }
        if let problem {
            let location = problem.segment.map { LogFiles.segmentName($0) + (problem.line.map { " line \($0)" } ?? "") }
            return finish(problem.outcome, problem.message, seq: problem.seq, location: location)
        }
        if let first = checkpointProblems.first { return finish(first.outcome, first.message, seq: nil) }

        var trusted = trustedKeys
        var truncation: (SourcedCheckpoint, UInt64)?
        var lastGood: UInt64 = 0
        for sourced in checkpoints {
            let checkpoint = sourced.checkpoint.checkpoint
            let name = "checkpoint of size \(checkpoint.size)" + (checkpoint.timeMicros.map { " signed at \(UTCTime.format($0))" } ?? "")
                + " (\(sourced.source) line \(sourced.line))"
            if let origin, checkpoint.origin != origin {
                return finish(.badSignature, "\(name) is for origin \"\(checkpoint.origin)\", this log's origin is \"\(origin)\"", seq: nil)
            }
            if sourced.checkpoint.note.verifiedSigners(trusted).isEmpty {
                let hint = trusted.isEmpty ? "; no verifier key was given" : ""
                return finish(.badSignature, "\(name) has no valid signature by a trusted key\(hint)", seq: nil)
            }
            guard checkpoint.size <= head.nextSeq else {
                if truncation == nil { truncation = (sourced, checkpoint.size) }
                continue
            }
            guard rootsAtSize[checkpoint.size] == checkpoint.rootHash else {
                return finish(.tampered, "the first \(checkpoint.size) entries do not hash to the root of the \(name): an entry in seq \(lastGood)…\(checkpoint.size - 1) was changed and the chain after it recomputed",
                              seq: lastGood)
            }
            lastGood = checkpoint.size
            report.checkpointsVerified += 1
            report.anchoredSize = checkpoint.size
            report.latestCheckpoint = sourced.checkpoint
            // A key announced inside the log is trusted once a checkpoint by an already trusted key covers the announcement.
            for announced in announcedKeys where announced.seq < checkpoint.size && !trusted.contains(announced.key) {
                trusted.append(announced.key)
            }
        }
        if let (sourced, size) = truncation {
            let checkpoint = sourced.checkpoint.checkpoint
            let when = checkpoint.timeMicros.map { " signed at \(UTCTime.format($0))" } ?? ""
            return finish(.truncated, "the log ends after \(head.nextSeq) entries, but the checkpoint\(when) (\(sourced.source) line \(sourced.line)) covers \(size): entries \(head.nextSeq)…\(size - 1) were cut off",
                          seq: head.nextSeq)
        }
        if report.anchoredSize < head.nextSeq {
            let count = head.nextSeq - report.anchoredSize
            let message = checkpoints.isEmpty
                ? "no checkpoints: none of the \(count) entries is anchored by a signature"
                : "\(count) entries (seq \(report.anchoredSize)…\(head.nextSeq - 1)) come after the last checkpoint and are not anchored by a signature"
            return finish(.unanchored, message, seq: report.anchoredSize)
        }
        return report
    }
}
