import Foundation
import Testing
@testable import AuditChain

/// A fresh directory under the system temporary directory, removed by `remove()`.
struct TemporaryDirectory {
    let path: String

    init() {
        var template = Array((NSTemporaryDirectory() + "/palisade-audit-XXXXXX").utf8CString)
        path = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)) }
    }

    func remove() { try? FileManager.default.removeItem(atPath: path) }

    func sub(_ name: String) -> String { path + "/" + name }
}

enum Fixture {
    static let key = try! AuditSigningKey(name: "audit.test/key", seed: [UInt8](repeating: 7, count: 32))
    static let otherKey = try! AuditSigningKey(name: "audit.test/key", seed: [UInt8](repeating: 9, count: 32))
    static let origin = "audit.test/log"

    static func configuration(_ directory: String, rotationBytes: Int = 64 << 20, checkpointInterval: Duration = .seconds(3600),
                              rotationInterval: Duration? = nil, mirror: String? = nil) -> AuditLogConfiguration {
        AuditLogConfiguration(directory: directory, signingKey: key, origin: origin, checkpointInterval: checkpointInterval,
                              rotationBytes: rotationBytes, rotationInterval: rotationInterval, checkpointMirror: mirror)
    }

    static func decision(_ n: Int, deny: Bool = false, tenant: String = "acme") -> AuditRecord {
        AuditRecord(requestID: "req-\(n)", sessionID: "s-1", tenant: tenant, credentialID: "cred-1",
                    clientAddress: "10.0.0.1:5000", databaseUser: "analyst", messageKind: "Query",
                    decision: deny ? .deny : .allow, rule: deny ? "stmt.dml" : "allow.query",
                    sqlstate: deny ? "42501" : "00000", message: "decision number \(n)",
                    statementType: deny ? "DELETE" : "SELECT", tables: ["public.orders"], functions: ["sum"],
                    fingerprint: "fp\(n)", normalized: "SELECT sum(amount) FROM orders WHERE id = $1",
                    policyVersion: "p1")
    }

    /// A closed log with `count` decisions (every third one a deny).
    static func log(in directory: String, count: Int, rotationBytes: Int = 64 << 20, mirror: String? = nil) async throws -> Void {
        let log = try AuditLog(configuration(directory, rotationBytes: rotationBytes, mirror: mirror))
        for n in 0..<count { _ = try await log.append(decision(n, deny: n % 3 == 0)) }
        log.close()
        #expect(log.failure == nil)
    }

    /// A log stopped as `kill -9` stops it (no stop entry, no final checkpoint) after `count` decisions.
    static func abandonedLog(in directory: String, count: Int) async throws {
        let log = try AuditLog(configuration(directory))
        for n in 0..<count { _ = try await log.append(decision(n)) }
        log.abandonForTesting()
    }

    static func verify(_ directory: String, keys: [NoteVerifierKey] = [key.verifierKey], mirror: String? = nil) throws -> VerificationReport {
        let sources = try LogFiles.checkpointSources(in: directory) + (mirror.map(LogFiles.checkpointSources(in:)) ?? [])
        var verifier = LogVerifier(trustedKeys: keys, checkpointSources: sources)
        for segment in try LogFiles.segments(in: directory) {
            verifier.feed(segment: segment.number, bytes: try LogFiles.read(segment.path))
        }
        return verifier.finish()
    }

    static func entries(_ directory: String) throws -> [AuditEntry] {
        var verifier = LogVerifier()
        var entries: [AuditEntry] = []
        verifier.onEntry = { entries.append($0) }
        for segment in try LogFiles.segments(in: directory) {
            verifier.feed(segment: segment.number, bytes: try LogFiles.read(segment.path))
        }
        return entries
    }
}

/// A segment as lines (without newlines), to edit and write back.
struct SegmentFile {
    let path: String
    var lines: [[UInt8]]

    /// The zeros after the last line: space the writer reserved. `write` leaves them out.
    let reservedBytes: Int

    init(_ path: String) throws {
        self.path = path
        var bytes = try LogFiles.read(path)
        let entriesEnd = (bytes.lastIndex { $0 != 0 } ?? -1) + 1
        reservedBytes = bytes.count - entriesEnd
        bytes.removeSubrange(entriesEnd...)
        lines = bytes.split(separator: 0x0A, omittingEmptySubsequences: false).map(Array.init)
        if lines.last?.isEmpty == true { lines.removeLast() }
    }

    static func last(in directory: String) throws -> SegmentFile {
        try SegmentFile(LogFiles.segments(in: directory).last!.path)
    }

    func index(ofSeq seq: UInt64) -> Int? {
        lines.firstIndex { (try? AuditEntry(line: $0))?.seq == seq }
    }

    func write(trailing: [UInt8] = []) throws {
        let bytes = lines.flatMap { $0 + [0x0A] } + trailing
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }
}

func replacing(_ line: [UInt8], _ old: String, _ new: String) -> [UInt8] {
    let text = String(decoding: line, as: UTF8.self)
    #expect(text.contains(old), "the line has no \(old)")
    return Array(text.replacingOccurrences(of: old, with: new).utf8)
}
