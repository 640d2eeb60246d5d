import Crypto
import Testing
@testable import AuditChain
import Encoding

@Suite struct EntryEncodingTests {
    @Test func entryKeysAreInCanonicalOrder() {
        #expect(EntryKey.all == EntryKey.all.sorted(by: JSONText.keyPrecedes))
        #expect(EntryKey.allSet.count == 23)
    }

    static let record = AuditRecord(
        event: .decision, requestID: "req-1", sessionID: "sess-9", tenant: "acme", credentialID: "cred-7",
        clientAddress: "10.0.0.5:51234", databaseUser: "analyst", messageKind: "Query", decision: .deny,
        rule: "stmt.dml", sqlstate: "42501", message: "DELETE is not a query \"quoted\"\nsecond line\t😀",
        statementType: "DELETE", tables: ["public.orders", "ü"], functions: [], fingerprint: "a1b2",
        normalized: "DELETE FROM orders WHERE id = $1", policyVersion: "abc123",
        detail: ["z": .int(-5), "a": .string("x")])

    @Test func entryLineIsTheCanonicalFormOfItsFields() throws {
        var scratch: [UInt8] = []
        var out: [UInt8] = []
        let hash = AuditEntry.encodeLine(seq: 7, timeMicros: 1_700_000_000_123_456, record: Self.record,
                                         prevHash: AuditHash.zero, scratch: &scratch, into: &out)
        #expect(out.last == 0x0A)
        let line = Array(out.dropLast())
        // An independent route to the same bytes: generic JCS of the parsed line.
        let parsed = try JSONValue.parse(line, .canonical)
        #expect(parsed.canonicalBytes == line)
        #expect(parsed["time"] == .string("2023-11-14T22:13:20.123456Z"))
        #expect(parsed["detail"] == .object(["a": .string("x"), "z": .int(-5)]))
        #expect(parsed["credential_id"] == .string("cred-7"))
        // hash = SHA-256(0x00 ‖ canonical entry without entry_hash)
        guard case .object(var fields) = parsed else { Issue.record("not an object"); return }
        #expect(fields["entry_hash"] == .string(hash.hex))
        fields["entry_hash"] = nil
        let expected = Array(SHA256.hash(data: [0x00] + JSONValue.object(fields).canonicalBytes))
        #expect(hash.bytes == expected)

        let entry = try AuditEntry(line: line)
        #expect(entry.record == Self.record)
        #expect(entry.seq == 7)
        #expect(entry.entryHash == hash)
        #expect(entry.canonicalLine == line)
    }

    @Test func lifecycleEntriesUseNullsAndEmptyArrays() throws {
        let record = AuditRecord(event: .stop, message: "bye")
        let entry = AuditEntry(seq: 0, timeMicros: 0, record: record, prevHash: .zero, entryHash: .zero)
        let text = String(decoding: entry.canonicalLine, as: UTF8.self)
        #expect(text.hasPrefix("{\"client_addr\":null,\"credential_id\":null,\"db_user\":null,\"decision\":null,\"detail\":{},\"entry_hash\":\""))
        #expect(text.hasSuffix("\"tables\":[],\"tenant\":null,\"time\":\"1970-01-01T00:00:00.000000Z\"}"))
    }

    @Test func entryDecodingNamesWhatIsWrong() throws {
        let line = String(decoding: AuditEntry(seq: 1, timeMicros: 0, record: AuditRecord(), prevHash: .zero, entryHash: .zero).canonicalLine, as: UTF8.self)
        let cases: [(String, String)] = [
            (line.replacingOccurrences(of: "\"rule\":null,", with: ""), "missing rule"),
            (line.replacingOccurrences(of: "\"seq\":1", with: "\"seq\":-1"), "seq"),
            (line.replacingOccurrences(of: "\"event\":\"decision\"", with: "\"event\":\"party\""), "unknown event"),
            (line.replacingOccurrences(of: "00.000000Z", with: "00Z"), "time"),
            (line.replacingOccurrences(of: "\"tables\":[]", with: "\"tables\":[1]"), "tables"),
        ]
        for (text, expected) in cases {
            #expect(text != line)
            do {
                _ = try AuditEntry(line: Array(text.utf8))
                Issue.record("accepted: \(expected)")
            } catch {
                #expect(error.description.contains(expected), "\(error.description)")
            }
        }
    }
}
