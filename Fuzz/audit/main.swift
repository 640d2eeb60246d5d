// Fuzz target `audit`: the audit log verifier (what `palisade audit verify` runs) on altered logs.
//
// The input is a log directory in one piece: sections separated by the byte 0x1E (which a log's
// canonical JSON and checkpoint notes never hold raw). The first section is checkpoints.txt, each
// further one the next segment file (audit-000001.jsonl, …); a section that is the single byte
// 0x1F stands for a segment file that is missing. The seeds are logs AuditLog writes.
//
// Invariants: no crash; the same report every time; a problem named for every outcome but ok,
// whose exit code is one of those `palisade audit verify` documents; and an ok log is covered
// entirely by a checkpoint signed with a key of the log's, whose root the leaves hash to.
import AuditChain
import Foundation
import FuzzSupport

func fixedKey(_ name: String, _ byte: UInt8) -> AuditSigningKey {
    do {
        return try AuditSigningKey(name: name, seed: Array(repeating: byte, count: 32))
    } catch {
        fatalError("cannot make the key \(name): \(error)")
    }
}

/// Static rather than top-level: top-level variables belong to the main actor, and libFuzzer calls in from outside it.
enum Fixture {
    static let signingKey = fixedKey("fuzz-audit", 1)
    /// The seed logs rotate to this key; the log announces it, so it is trusted once a checkpoint covers that.
    static let rotatedKey = fixedKey("fuzz-audit-rotated", 2)
    static let trustedKeys = [signingKey.verifierKey]
    static let documentedExitCodes: Set<Int32> = [0, 3, 4, 5, 6, 7]
    static let separator: UInt8 = 0x1E
    static let missingSegment: [UInt8] = [0x1F]
}

func verify(_ sections: [ArraySlice<UInt8>]) -> (VerificationReport, [AuditHash]) {
    let history = String(decoding: sections[0], as: UTF8.self)
    var verifier = LogVerifier(trustedKeys: Fixture.trustedKeys, checkpointSources: [(source: CheckpointHistory.fileName, text: history)])
    verifier.collectLeaves = true
    // As AuditCLI.verify: segments in order, stopping at the first problem.
    for (index, segment) in sections.dropFirst().enumerated() where Array(segment) != Fixture.missingSegment {
        verifier.feed(segment: index + 1, bytes: Array(segment))
        if verifier.problem != nil { break }
    }
    return (verifier.finish(), verifier.leaves)
}

@_cdecl("LLVMFuzzerTestOneInput")
func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data else { return 0 }
    let input = UnsafeBufferPointer(start: data, count: size)
    let sections = Array(input).split(separator: Fixture.separator, omittingEmptySubsequences: false)
    let (report, leaves) = verify(sections)
    guard verify(sections).0 == report else { FuzzDriver.violated("two verifications of the same log differ") }
    guard Fixture.documentedExitCodes.contains(report.outcome.exitCode) else { FuzzDriver.violated("undocumented exit code \(report.outcome.exitCode)") }
    guard report.outcome != .ok else {
        guard report.problem == nil else { FuzzDriver.violated("an ok log with a problem: \(report.problem!)") }
        guard report.anchoredSize == report.entries, UInt64(leaves.count) == report.entries else {
            FuzzDriver.violated("ok, but \(report.anchoredSize) of \(report.entries) entries are anchored (\(leaves.count) leaves)")
        }
        guard report.entries > 0 else { return 0 }
        guard let checkpoint = report.latestCheckpoint, checkpoint.checkpoint.size == report.entries,
              !checkpoint.note.verifiedSigners([Fixture.signingKey.verifierKey, Fixture.rotatedKey.verifierKey]).isEmpty,
              MerkleTree.root(leaves) == checkpoint.checkpoint.rootHash
        else { FuzzDriver.violated("ok, but no checkpoint signed by the log's keys covers its \(report.entries) entries") }
        return 0
    }
    guard let problem = report.problem, !problem.isEmpty else { FuzzDriver.violated("outcome \(report.outcome.rawValue) without a problem") }
    return 0
}

// MARK: - Seeds: logs written by AuditLog

/// Runs async work to completion from top-level code (which must not wait on its own actor).
func runBlocking(_ body: @escaping @Sendable () async throws -> Void) {
    let done = DispatchSemaphore(value: 0)
    Task.detached {
        do {
            try await body()
        } catch {
            fatalError("writing a seed log failed: \(error)")
        }
        done.signal()
    }
    done.wait()
}

/// One log directory in the input format.
func packed(_ directory: String) throws -> [UInt8] {
    var sections = [try LogFiles.read(directory + "/" + CheckpointHistory.fileName)]
    for segment in try LogFiles.segments(in: directory) { sections.append(try LogFiles.read(segment.path)) }
    return Array(sections.joined(separator: [Fixture.separator]))
}

func writeLog(rotationBytes: Int, records: Int, rotateKey: Bool) throws -> [UInt8] {
    let directory = NSTemporaryDirectory() + "palisade-fuzz-audit-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let log = try AuditLog(AuditLogConfiguration(directory: directory, signingKey: Fixture.signingKey, origin: "fuzz.example/audit",
                                                 rotationBytes: rotationBytes))
    runBlocking {
        for index in 0..<records {
            let denied = index % 2 == 1
            _ = try await log.append(AuditRecord(
                requestID: "r\(index)", sessionID: "s1", tenant: "acme", credentialID: "key-1", messageKind: "Query",
                decision: denied ? .deny : .allow, rule: denied ? "stmt.dml" : "allow.query", sqlstate: denied ? "42501" : "00000",
                statementType: denied ? "DELETE" : "SELECT", tables: ["public.users"], functions: denied ? [] : ["count"],
                fingerprint: "0123456789abcdef", normalized: denied ? "DELETE FROM users WHERE id = $1" : "SELECT count(*) FROM users WHERE id = $1",
                policyVersion: String(repeating: "a", count: 64)))
            if index == 1 { _ = try await log.checkpoint() }
            if rotateKey, index == records / 2 { _ = try await log.rotateSigningKey(to: Fixture.rotatedKey) }
        }
    }
    log.close()
    return try packed(directory)
}

func seeds() -> [[UInt8]] {
    do {
        return [
            try writeLog(rotationBytes: 64 << 20, records: 4, rotateKey: false),
            try writeLog(rotationBytes: 1500, records: 6, rotateKey: true),
        ]
    } catch {
        fatalError("cannot write the seed logs: \(error)")
    }
}

FuzzDriver.run(testOneInput, seeds: seeds)
