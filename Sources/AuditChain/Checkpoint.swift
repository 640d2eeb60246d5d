import Encoding

/// A C2SP tlog-checkpoint (https://c2sp.org/tlog-checkpoint): origin, tree size, root hash, and
/// extension lines. Palisade adds one extension line, `palisade-time <UTC>`, the signing time.
public struct Checkpoint: Sendable, Equatable {
    public var origin: String
    public var size: UInt64
    public var rootHash: AuditHash
    public var extensions: [String]

    static let timePrefix = "palisade-time "

    public init(origin: String, size: UInt64, rootHash: AuditHash, timeMicros: Int64? = nil) {
        self.origin = origin
        self.size = size
        self.rootHash = rootHash
        extensions = timeMicros.map { [Self.timePrefix + UTCTime.format($0)] } ?? []
    }

    public var timeMicros: Int64? {
        extensions.lazy.compactMap { line in
            line.hasPrefix(Self.timePrefix) ? UTCTime.parseEntryTime(String(line.dropFirst(Self.timePrefix.count))) : nil
        }.first
    }

    public var body: String {
        ([origin, String(size), rootHash.base64] + extensions).joined(separator: "\n") + "\n"
    }

    public init(body: String) throws(NoteError) {
        guard body.hasSuffix("\n") else { throw NoteError("checkpoint must end with a newline") }
        let lines = body.dropLast().split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard lines.count >= 3 else { throw NoteError("checkpoint needs origin, size and root lines") }
        guard !lines[0].isEmpty else { throw NoteError("checkpoint origin is empty") }
        // Decimal without leading zeros: one spelling per size.
        guard let size = UInt64(lines[1]), String(size) == lines[1] else { throw NoteError("checkpoint size \"\(lines[1])\" is not a decimal number") }
        guard let root = Base64.decode(lines[2]).flatMap({ AuditHash(bytes: $0) }) else {
            throw NoteError("checkpoint root is not a base64 SHA-256 hash")
        }
        guard lines.dropFirst(3).allSatisfy({ !$0.isEmpty }) else { throw NoteError("checkpoint has an empty extension line") }
        origin = lines[0]
        self.size = size
        rootHash = root
        extensions = Array(lines.dropFirst(3))
    }

    public func signed(with key: AuditSigningKey) throws(NoteError) -> SignedCheckpoint {
        SignedCheckpoint(checkpoint: self, note: try SignedNote.sign(body, with: [key]))
    }
}

public struct SignedCheckpoint: Sendable, Equatable {
    public var checkpoint: Checkpoint
    public var note: SignedNote

    public init(checkpoint: Checkpoint, note: SignedNote) {
        self.checkpoint = checkpoint
        self.note = note
    }

    public init(parsing text: String) throws(NoteError) {
        note = try SignedNote(parsing: text)
        checkpoint = try Checkpoint(body: note.text)
    }

    public var encoded: String { note.encoded }
}

/// The checkpoint history file: signed checkpoints one after another, each followed by a blank
/// line. Checkpoint bodies have no blank lines, so the notes can be told apart without a length.
public enum CheckpointHistory {
    public static let fileName = "checkpoints.txt"
    /// The newest checkpoint alone, as tlog tooling expects to find it.
    public static let latestFileName = "checkpoint"

    public static func append(_ checkpoint: SignedCheckpoint, to out: inout String) {
        out += checkpoint.encoded + "\n"
    }

    public struct Item: Sendable {
        /// Where the note starts (1-based line), for messages.
        public var line: Int
        /// The UTF-8 offset just past the note and its separator: where a torn tail would be cut.
        public var endOffset: Int
        /// False for a note not followed by its blank line: cut short by a crash mid-write.
        public var isComplete: Bool
        public var result: Result<SignedCheckpoint, NoteError>
    }

    public static func parse(_ text: String) -> [Item] {
        var items: [Item] = []
        // Lines of bytes, not of Characters: no grapheme breaking, and a "\r\n" is no line break.
        let newline = UInt8(ascii: "\n")
        let bytes = Array(text.utf8)
        let lines = bytes.split(separator: newline, omittingEmptySubsequences: false)
        var offsets: [Int] = [0]
        for line in lines { offsets.append(offsets.last! + line.count + 1) }
        let dash = Array(SignedNote.dash.utf8)
        var index = 0
        // A file that does not end in a newline was cut mid-write; the pieces are still reported.
        while index < lines.count {
            if lines[index].isEmpty { index += 1; continue }
            let start = index
            // The note as SignedNote reads it: its text lines, a blank line, its signature lines.
            var note: [UInt8] = []
            while index < lines.count, !lines[index].isEmpty { note += lines[index]; note.append(newline); index += 1 }
            note.append(newline)
            if index < lines.count { index += 1 }  // the blank separator
            while index < lines.count, lines[index].starts(with: dash) { note += lines[index]; note.append(newline); index += 1 }
            // Every checkpoint is written with a blank line after it; without one it was cut short,
            // perhaps inside a signature that still decodes.
            let complete = index + 1 < lines.count && lines[index].isEmpty
            let result: Result<SignedCheckpoint, NoteError>
            do throws(NoteError) {
                guard complete else { throw NoteError("checkpoint cut short (no blank line after it)") }
                result = .success(try SignedCheckpoint(parsing: String(decoding: note, as: UTF8.self)))
            } catch {
                result = .failure(error)
            }
            let end = min(offsets[index] + (index < lines.count && lines[index].isEmpty ? 1 : 0), bytes.count)
            items.append(Item(line: start + 1, endOffset: end, isComplete: complete, result: result))
        }
        return items
    }
}
