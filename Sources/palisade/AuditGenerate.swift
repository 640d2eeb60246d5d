import ArgumentParser
import AuditChain
import Foundation
import PalisadeServer
import Encoding

/// `palisade audit generate` (hidden): writes a large, valid, signed log of synthetic traffic, to
/// measure `audit report` and `audit verify` on logs of production size. Entries are built and
/// hashed by AuditChain as the writer builds them; only the times are chosen (spread over
/// `--days`), which the real writer cannot do. Not for production logs.
struct AuditGenerate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate", abstract: "Write a synthetic signed log (for measuring the report on big logs).",
        shouldDisplay: false)

    @Option(help: "How many entries.") var entries = 1_000_000
    @Option(help: "The days the entries spread over, ending now.") var days = 30
    @Option(help: "Distinct query fingerprints among the denials.") var fingerprints = 5000
    @Option(name: .customLong("signing-key"), help: ArgumentHelp("The audit signing key file.", valueName: "FILE")) var signingKey: String
    @Option(help: "The log directory to create (must not exist).") var out: String

    static let origin = "generated.palisade/audit"
    static let segmentBytes = 64 << 20
    static let checkpointEvery: UInt64 = 100_000
    static let restartEvery: UInt64 = 250_000
    static let policyVersions = ["7a0c5b1e9d2f4a6b8c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b",
                                 "e31f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f"]
    static let deniedRules: [(rule: String, statement: String, message: String)] = [
        ("stmt.dml", "DELETE", "DELETE is not allowed: only SELECT queries are admitted"),
        ("stmt.ddl", "DROP", "DROP is not allowed: only SELECT queries are admitted"),
        ("fn.not-allowed", "SELECT", "function archive_orders() is not on this policy's allowlist"),
        ("rel.catalog", "SELECT", "pg_catalog.pg_class is a catalog relation, which this policy does not admit"),
        ("parse.error", "", "syntax error: syntax error at or near \"FORM\""),
        ("stmt.multiple", "SELECT", "only one statement is admitted, found 2"),
        ("rel.secret", "SELECT", "pg_catalog.pg_authid holds secrets and is never readable"),
        ("fn.forbidden", "SELECT", "function set_config() is never allowed: it changes session settings, including the tenant claim"),
        ("stmt.set", "SET", "SET request.jwt.claims is not allowed: it could change how queries are checked or what they see"),
        ("stmt.copy", "COPY", "COPY is not allowed"),
    ]

    func run() throws {
        guard entries > 0, days > 0, fingerprints > 0 else { throw ValidationError("--entries, --days and --fingerprints must be positive") }
        let key = try KeyFiles.signingKey(signingKey)
        guard !FileManager.default.fileExists(atPath: out) else { throw ValidationError("\(out) exists") }
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        var writer = try GeneratedLog(directory: out, key: key)
        let end = UTCTime.nowMicros()
        let start = end - Int64(days) * 86_400_000_000
        let step = max(1, (end - start) / Int64(entries))
        var random = SplitMix(seed: 20)
        var restarts = 0
        writer.startSegment(at: start)
        writer.start(at: start)
        while writer.seq < UInt64(entries) {
            let now = start + Int64(writer.seq) * step
            if writer.seq % Self.restartEvery == 0 && writer.seq > 0 {
                restarts += 1
                // Every third restart is a crash: no stop entry, a recovery entry after it.
                if restarts % 3 != 0 { writer.append(.init(event: .stop, message: "audit log closed"), at: now) }
                try writer.checkpoint(at: now)
                if restarts % 3 == 0 {
                    writer.append(.init(event: .recovery, message: "recovered after an unclean stop", detail: [
                        "bytes_trimmed": .int(0), "segment": .int(Int64(writer.segment)), "reason": .string("the log was not closed"),
                        "last_seq": .int(Int64(writer.seq) - 1), "checkpoint_bytes_trimmed": .int(0),
                    ]), at: now)
                }
                writer.start(at: now)
                continue
            }
            writer.append(Self.traffic(&random, fingerprints: fingerprints, seq: writer.seq, version: Self.policyVersions[restarts % 2]), at: now)
            if writer.seq % Self.checkpointEvery == 0 { try writer.checkpoint(at: now) }
            if writer.bytesInSegment >= Self.segmentBytes { try writer.rotateSegment(at: now) }
        }
        writer.append(.init(event: .stop, message: "audit log closed"), at: end)
        try writer.checkpoint(at: end)
        try writer.finish()
        print("palisade audit generate: \(writer.seq) entries in \(writer.segment) segment(s) in \(out)")
    }

    static func traffic(_ random: inout SplitMix, fingerprints: Int, seq: UInt64, version: String) -> AuditRecord {
        let tenantNumber = Int(random.next() % 1000 < 600 ? random.next() % 10 : random.next() % 200)
        let tenant = "tenant-\(tenantNumber)"
        let credential = String(format: "k%03d%04x", tenantNumber, tenantNumber * 7 % 3)
        let session = "s\(seq / 40)"
        let request = "\(session)-\(seq % 40)"
        var record = AuditRecord(requestID: request, sessionID: session, tenant: tenant, credentialID: credential,
                                 clientAddress: "10.0.\(tenantNumber % 250).\(tenantNumber % 7 + 2):5\(tenantNumber % 1000)",
                                 databaseUser: "agent", messageKind: "Q", policyVersion: version)
        let roll = random.next() % 10_000
        if roll < 8_800 {
            let shape = random.next() % 50
            record.decision = .allow
            record.rule = "allow.query"
            record.sqlstate = "00000"
            record.message = "SELECT admitted"
            record.statementType = "SELECT"
            record.tables = ["public.orders"]
            record.functions = ["sum"]
            record.fingerprint = String(format: "%016llx", 0xa11_0000 + shape)
            record.normalized = "SELECT region, sum(amount) FROM orders WHERE id > $1 GROUP BY \(shape % 3 + 1)"
        } else if roll < 9_950 {
            // Zipf-like: a few shapes are refused again and again, most rarely.
            let rank = min(fingerprints - 1, Int(Double(fingerprints) * pow(Double(random.next() % 1_000_000) / 1_000_000, 3)))
            let denial = deniedRules[rank % deniedRules.count]
            record.decision = .deny
            record.rule = denial.rule
            record.sqlstate = "42501"
            record.message = denial.message
            record.statementType = denial.statement
            record.fingerprint = denial.rule == "parse.error" ? "" : String(format: "%016llx", 0xd000_0000 + rank)
            record.normalized = "\(denial.statement.isEmpty ? "SELECT * FORM" : denial.statement) shape_\(rank) WHERE id = $1"
        } else if roll < 9_990 {
            record.event = .authFailure
            record.decision = .deny
            record.rule = "auth.failed"
            record.sqlstate = "28P01"
            record.message = "password authentication failed: unknown API key"
            record.tenant = ""
            record.credentialID = ""
            record.messageKind = "p"
            record.policyVersion = ""
        } else {
            record.event = .lockout
            record.decision = .deny
            record.rule = "auth.locked"
            record.sqlstate = "28000"
            record.message = "credential \(credential) is locked for 300 s after 20 denials in 60 s"
        }
        return record
    }
}

/// A deterministic generator (SplitMix64): the same log every run.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Writes segments and checkpoints as the log writer lays them out.
private struct GeneratedLog {
    let directory: String
    let key: AuditSigningKey
    var seq: UInt64 = 0
    var head = AuditHash.zero
    var frontier = MerkleFrontier()
    var segment = 0
    var bytesInSegment = 0
    var file: FileHandle?
    var buffer: [UInt8] = []
    var checkpoints = ""

    init(directory: String, key: AuditSigningKey) throws {
        self.directory = directory
        self.key = key
        try (key.verifierKey.encoded + "\n").write(toFile: directory + "/" + LogFiles.vkeyFileName, atomically: true, encoding: .utf8)
    }

    mutating func append(_ record: AuditRecord, at micros: Int64) {
        let entry = AuditEntry(seq: seq, timeMicros: micros, record: record, prevHash: head, entryHash: head)
        let (line, hash) = entry.encoded
        buffer.append(contentsOf: line)
        buffer.append(0x0A)
        bytesInSegment += line.count + 1
        head = hash
        frontier.append(hash)
        seq += 1
        if buffer.count >= 1 << 20 { flush() }
    }

    mutating func flush() {
        file?.write(Data(buffer))
        buffer.removeAll(keepingCapacity: true)
    }

    mutating func startSegment(at micros: Int64) {
        flush()
        try? file?.close()
        segment += 1
        let path = directory + "/" + LogFiles.segmentName(segment)
        FileManager.default.createFile(atPath: path, contents: nil)
        file = FileHandle(forWritingAtPath: path)
        bytesInSegment = 0
        append(AuditRecord(event: .segmentOpened, message: "segment \(segment) opened", detail: [
            "segment": .int(Int64(segment)), "origin": .string(AuditGenerate.origin), "format": .string("palisade-audit/1"),
        ]), at: micros)
    }

    mutating func rotateSegment(at micros: Int64) throws {
        try checkpoint(at: micros)
        startSegment(at: micros)
    }

    mutating func start(at micros: Int64) {
        append(AuditRecord(event: .start, message: "audit log opened", detail: [
            "origin": .string(AuditGenerate.origin), "key": .string(key.verifierKey.encoded), "pid": .int(4242),
        ]), at: micros)
        for (profile, version) in zip(["agent", "analyst"], AuditGenerate.policyVersions) {
            append(.policyLoaded(version: version, path: "Policies/\(profile == "agent" ? "readonly" : "analyst").yaml"), at: micros)
        }
    }

    mutating func checkpoint(at micros: Int64) throws {
        flush()
        let signed = try Checkpoint(origin: AuditGenerate.origin, size: frontier.size, rootHash: frontier.root, timeMicros: micros).signed(with: key)
        CheckpointHistory.append(signed, to: &checkpoints)
    }

    mutating func finish() throws {
        flush()
        try file?.close()
        try checkpoints.write(toFile: directory + "/" + CheckpointHistory.fileName, atomically: true, encoding: .utf8)
    }
}
