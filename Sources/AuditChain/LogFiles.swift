import Foundation

/// The files of a log directory: `audit-000001.jsonl`, … (the segments), `checkpoints.txt` (every
/// checkpoint), `checkpoint` (the latest), `audit.vkey` (every public key the log has signed
/// with, for convenience only: a reviewer should get the key from elsewhere) and `LOCK`.
public enum LogFiles {
    public static let vkeyFileName = "audit.vkey"
    static let lockFileName = "LOCK"

    public static func segmentName(_ number: Int) -> String {
        let digits = String(number)
        return "audit-" + String(repeating: "0", count: max(0, 6 - digits.count)) + digits + ".jsonl"
    }

    public static func segmentNumber(_ name: String) -> Int? {
        guard name.hasPrefix("audit-"), name.hasSuffix(".jsonl") else { return nil }
        let digits = name.dropFirst(6).dropLast(6)
        guard digits.count >= 6, digits.allSatisfy(\.isASCII), let number = Int(digits), number > 0,
              segmentName(number) == name else { return nil }
        return number
    }

    /// Segment files in order. Gaps are left for the verifier to report.
    public static func segments(in directory: String) throws -> [(number: Int, path: String)] {
        try FileManager.default.contentsOfDirectory(atPath: directory)
            .compactMap { name in segmentNumber(name).map { ($0, directory + "/" + name) } }
            .sorted { $0.0 < $1.0 }
    }

    /// Through FileHandle, not `Data(contentsOf:)`: on Linux, swift-foundation 6.3's
    /// `Data(contentsOf:)` (and `FileManager.contents(atPath:)`) leaks a 4 KiB buffer for every
    /// empty file, such as a new log's checkpoint history (LeakSanitizer, `scripts/fuzz.sh audit`).
    public static func read(_ path: String) throws -> [UInt8] {
        let handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        return Array(try handle.readToEnd() ?? Data())
    }

    static func readOrFail(_ path: String) throws(AuditError) -> [UInt8] {
        do {
            return try read(path)
        } catch {
            throw .io(operation: "read", path: path, errno: EIO)
        }
    }

    /// The checkpoint history of a directory (log or mirror), or nil if it has none.
    public static func checkpointHistory(in directory: String) throws -> String? {
        let path = directory + "/" + CheckpointHistory.fileName
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        return String(decoding: try read(path), as: UTF8.self)
    }

    /// Every signed checkpoint a directory holds, for the verifier: its history and its newest
    /// checkpoint file, each labelled by its path. The newest counts by itself: a history cut back
    /// together with the log (38 entries to 4) left `checkpoint`, signed over 38, to tell
    /// (sixteenth red team).
    public static func checkpointSources(in directory: String) throws -> [(source: String, text: String)] {
        var sources: [(source: String, text: String)] = []
        if let history = try checkpointHistory(in: directory) {
            sources.append((directory + "/" + CheckpointHistory.fileName, history))
        }
        let latest = directory + "/" + CheckpointHistory.latestFileName
        if FileManager.default.fileExists(atPath: latest) {
            // Written alone, without the blank line that ends each note of the history.
            sources.append((latest, String(decoding: try read(latest), as: UTF8.self) + "\n"))
        }
        return sources
    }
}
