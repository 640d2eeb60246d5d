import ArgumentParser
import AuditChain
import Foundation
import PalisadeServer
import Locking

struct AuditBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Measure durable decisions per second with group commit.",
        discussion: """
        Appends decision entries from 1, 8 and 64 concurrent writers; each writer waits for its \
        entry to be on disk (fdatasync) before appending the next, as the proxy waits before \
        answering. Run it on the disk the log will live on: on tmpfs fdatasync costs nothing.
        """)

    @Option(help: ArgumentHelp("Directory to create the scratch logs in (removed afterwards).", valueName: "DIR")) var dir = "."
    @Option(help: "Seconds per writer count.") var seconds = 3.0
    @Option(help: "Writer counts to measure.") var writers: [Int] = [1, 8, 64]
    @Flag(help: "Keep the logs (and the signing key, bench.key) to try the other audit commands on.") var keep = false

    func run() throws {
        let base = (dir as NSString).standardizingPath + "/palisade-audit-bench-\(getpid())"
        defer { if !keep { try? FileManager.default.removeItem(atPath: base) } }
        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        let key = try AuditSigningKey.generate(name: "bench")
        if keep {
            try (key.encoded + "\n").write(toFile: base + "/bench.key", atomically: true, encoding: .utf8)
            try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: base + "/bench.key")
        }
        print("palisade audit bench: \(base)")
        print("  one fdatasync of a small append: \(String(format: "%.0f", try fsyncMicros(base))) µs")
        print("  writers   decisions/s   entries/fsync   mean latency")
        for count in writers {
            let directory = base + "/w\(count)"
            let log = try AuditLog(AuditLogConfiguration(directory: directory, signingKey: key, origin: "bench.palisade/audit"))
            let before = log.statistics
            let start = ContinuousClock.now
            let deadline = start + .seconds(seconds)
            let appended = try blocking {
                try await withThrowingTaskGroup(of: Int.self) { group in
                    for writer in 0..<count {
                        group.addTask {
                            var n = 0
                            while ContinuousClock.now < deadline {
                                _ = try await log.append(Self.record(writer: writer, n: n))
                                n += 1
                            }
                            return n
                        }
                    }
                    return try await group.reduce(0, +)
                }
            }
            let elapsed = start.duration(to: .now)
            let after = log.statistics
            log.close()
            let secondsTaken = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            let rate = Double(appended) / secondsTaken
            let perSync = Double(after.entries - before.entries) / Double(max(1, after.syncs - before.syncs))
            let latency = secondsTaken * Double(count) / Double(max(1, appended)) * 1e6
            print(String(format: "  %7d   %11.0f   %13.1f   %9.0f µs", count, rate, perSync, latency))
            if !keep { try? FileManager.default.removeItem(atPath: directory) }
        }
    }

    static func record(writer: Int, n: Int) -> AuditRecord {
        AuditRecord(requestID: "w\(writer)-\(n)", sessionID: "session-\(writer)", tenant: "acme", credentialID: "cred-42",
                    clientAddress: "10.1.2.3:54321", databaseUser: "analyst", messageKind: "Query",
                    decision: n % 5 == 0 ? .deny : .allow, rule: n % 5 == 0 ? "stmt.dml" : "allow.query",
                    sqlstate: n % 5 == 0 ? "42501" : "00000", message: n % 5 == 0 ? "DELETE is not a query" : "admitted",
                    statementType: n % 5 == 0 ? "DELETE" : "SELECT", tables: ["public.orders", "public.customers"],
                    functions: ["sum"], fingerprint: "3f1c9a7be2d04e15",
                    normalized: "SELECT c.region, sum(o.amount) FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.created_at > $1 GROUP BY 1",
                    policyVersion: "9b0c1f2e3d4c5b6a79880706f5e4d3c2b1a09f8e7d6c5b4a3928170605f4e3d2")
    }

    /// What one durable append costs on this disk without any batching: the floor group commit beats.
    func fsyncMicros(_ directory: String) throws -> Double {
        let path = directory + "/fsync-probe"
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw ConfigurationError(description: "cannot create \(path)") }
        defer { close(fd); unlink(path) }
        let line = [UInt8](repeating: 0x61, count: 400) + [0x0A]
        let rounds = 200
        let start = ContinuousClock.now
        for _ in 0..<rounds {
            guard write(fd, line, line.count) == line.count, fdatasync(fd) == 0 else { throw ConfigurationError(description: "write/fdatasync failed") }
        }
        let elapsed = start.duration(to: .now)
        return (Double(elapsed.components.seconds) * 1e6 + Double(elapsed.components.attoseconds) / 1e12) / Double(rounds)
    }
}

/// Runs async work from a synchronous command: the command's thread waits, the work runs on the
/// concurrency pool.
func blocking<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) throws -> T {
    let result = Locked<Result<T, any Error>?>(nil)
    let done = DispatchSemaphore(value: 0)
    Task.detached {
        do {
            let value = try await body()
            result.withLock { $0 = .success(value) }
        } catch {
            result.withLock { $0 = .failure(error) }
        }
        done.signal()
    }
    done.wait()
    return try result.withLock { $0! }.get()
}
