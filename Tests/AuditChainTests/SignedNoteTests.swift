import Testing
@testable import AuditChain

@Suite struct SignedNoteTests {
    // The example of golang.org/x/mod/sumdb/note, the reference implementation of the format.
    static let skey = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
    static let vkey = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
    static let text = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
    static let note = text + "\n\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"

    @Test func reproducesTheReferenceNoteByteForByte() throws {
        let key = try AuditSigningKey(parsing: Self.skey)
        #expect(key.name == "PeterNeumann")
        #expect(key.verifierKey.keyHash == 0xc74f20a3)
        #expect(key.verifierKey.encoded == Self.vkey)
        #expect(key.encoded == Self.skey)
        #expect(try SignedNote.sign(Self.text, with: [key]).encoded == Self.note)
    }

    @Test func verifiesWithTheRightKeyOnly() throws {
        let vkey = try NoteVerifierKey(parsing: Self.vkey)
        let note = try SignedNote(parsing: Self.note)
        #expect(note.text == Self.text)
        #expect(note.verifiedSigners([vkey]) == [vkey])

        let other = try AuditSigningKey.generate(name: "PeterNeumann").verifierKey
        #expect(note.verifiedSigners([other]).isEmpty)

        var altered = note
        altered.text = Self.text.replacingOccurrences(of: "problem,", with: "problem;")
        #expect(altered.verifiedSigners([vkey]).isEmpty)
        let reparsed = try SignedNote(parsing: Self.note.replacingOccurrences(of: "answer", with: "Answer"))
        #expect(reparsed.verifiedSigners([vkey]).isEmpty)
    }

    @Test func rejectsMalformedKeysAndNotes() {
        #expect(throws: NoteError.self) { try NoteVerifierKey(parsing: "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW") }
        #expect(throws: NoteError.self) { try NoteVerifierKey(parsing: "PeterNeumann+c74f20a3+ApHc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW") }
        #expect(throws: NoteError.self) { try NoteVerifierKey(parsing: "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW") }
        #expect(throws: NoteError.self) { try SignedNote(parsing: Self.text) }
        #expect(throws: NoteError.self) { try SignedNote(parsing: Self.text + "\n— PeterNeumann !!!\n") }
        #expect(throws: NoteError.self) { try SignedNote(parsing: Self.text + "\n- PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n") }
        // Lines end at "\n" bytes, as in Go's note.Open: with "\r\n" the signature line ends in "\r".
        #expect(throws: NoteError.self) { try SignedNote(parsing: Self.note.replacingOccurrences(of: "\n", with: "\r\n")) }
        #expect(throws: NoteError.self) { try SignedNote.sign("no newline", with: []) }
        #expect(throws: NoteError.self) { try SignedNote.sign("a\n\nb\n", with: []) }
    }

    @Test func checkpointsRoundTripAndVerify() throws {
        let key = try AuditSigningKey.generate(name: "audit.example/log")
        let root = RFC6962.leafHash(Array("x".utf8))
        let checkpoint = Checkpoint(origin: "audit.example/log", size: 42, rootHash: root, timeMicros: 1_000_000)
        #expect(checkpoint.body == "audit.example/log\n42\n\(root.base64)\npalisade-time 1970-01-01T00:00:01.000000Z\n")
        let signed = try checkpoint.signed(with: key)
        let parsed = try SignedCheckpoint(parsing: signed.encoded)
        #expect(parsed == signed)
        #expect(parsed.checkpoint.timeMicros == 1_000_000)
        #expect(parsed.note.verifiedSigners([key.verifierKey]) == [key.verifierKey])
        #expect(throws: NoteError.self) { try Checkpoint(body: "o\n042\n\(root.base64)\n") }
        #expect(throws: NoteError.self) { try Checkpoint(body: "o\n42\nAAAA\n") }
    }

    @Test func historyHoldsManyCheckpointsAndReportsATornOne() throws {
        let key = try AuditSigningKey.generate(name: "k")
        var history = ""
        for size in 1...3 {
            CheckpointHistory.append(try Checkpoint(origin: "o", size: UInt64(size), rootHash: .zero).signed(with: key), to: &history)
        }
        let complete = CheckpointHistory.parse(history)
        #expect(complete.map { try? $0.result.get().checkpoint.size } == [1, 2, 3])
        #expect(complete.last?.endOffset == history.utf8.count)
        let torn = String(history.dropLast(30))
        let items = CheckpointHistory.parse(torn)
        #expect(items.count == 3)
        #expect((try? items[2].result.get()) == nil)
        #expect(items[1].endOffset == complete[1].endOffset)
        // A history whose lines end in "\r\n" holds no blank line, so no checkpoint is complete.
        let crlf = CheckpointHistory.parse(history.replacingOccurrences(of: "\n", with: "\r\n"))
        #expect(!crlf.isEmpty && crlf.allSatisfy { (try? $0.result.get()) == nil })
        // Multi-byte text before a checkpoint: offsets count UTF-8 bytes.
        let prefixed = "é\n\n" + history
        #expect(CheckpointHistory.parse(prefixed).last?.endOffset == prefixed.utf8.count)
    }
}
