import Crypto
import Testing
@testable import AuditChain

@Suite struct CanonicalJSONTests {
    @Test func escapesOnlyWhatRFC8785Escapes() throws {
        let text = "q\"b\\s/\u{08}\u{09}\u{0A}\u{0C}\u{0D}\u{01}\u{1F}\u{7F}é\u{2028}😀"
        let encoded = JSONValue.string(text).canonicalString
        #expect(encoded == "\"q\\\"b\\\\s/\\b\\t\\n\\f\\r\\u0001\\u001f\u{7F}é\u{2028}😀\"")
        #expect(try CanonicalJSON.parse(encoded) == .string(text))
    }

    @Test func sortsKeysByUTF16CodeUnits() {
        // U+1F600 is D83D DE00 in UTF-16, so it sorts before U+FFFF; by scalar value it would sort after.
        let value = JSONValue.object(["\u{FFFF}": .int(1), "😀": .int(2), "b": .int(3), "a": .array([.null, .bool(true)])])
        #expect(value.canonicalString == "{\"a\":[null,true],\"b\":3,\"😀\":2,\"\u{FFFF}\":1}")
    }

    @Test func writesIntegersWithoutDecoration() throws {
        let value = JSONValue.array([.int(0), .int(-1), .int(42), .int(Int64.max), .int(Int64.min)])
        #expect(value.canonicalString == "[0,-1,42,9223372036854775807,-9223372036854775808]")
        #expect(try CanonicalJSON.parse(value.canonicalString) == value)
    }

    @Test(arguments: [
        "1.5", "1e3", "01", "-", "{\"a\":1,\"a\":2}", "\"\\ud800\"", "\"\\udc00x\"", "[1,]", "{} x",
        "\"a\u{01}\"", "nul", "9223372036854775808", "\"\\x\"",
    ])
    func rejectsWhatTheWriterNeverProduces(_ text: String) {
        #expect(throws: CanonicalJSON.ParseError.self) { try CanonicalJSON.parse(text) }
    }

    @Test func rejectsInvalidUTF8() {
        #expect(throws: CanonicalJSON.ParseError.self) { try CanonicalJSON.parse([0x22, 0xFF, 0x22]) }
    }

    @Test func decodesSurrogatePairsAndShortEscapes() throws {
        #expect(try CanonicalJSON.parse("\"\\ud83d\\ude00\\/\\u00e9\"") == .string("😀/é"))
    }

    @Test func entryKeysAreInCanonicalOrder() {
        #expect(EntryKey.all == EntryKey.all.sorted(by: CanonicalJSON.keyPrecedes))
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
        let parsed = try CanonicalJSON.parse(line)
        #expect(parsed.canonicalBytes == line)
        #expect(parsed["time"] == .string("2023-11-14T22:13:20.123456Z"))
        #expect(parsed["detail"] == .object(["a": .string("x"), "z": .int(-5)]))
        #expect(parsed["credential_id"] == .string("cred-7"))
        // hash = SHA-256(0x00 ‖ canonical entry without entry_hash)
        guard case .object(var fields) = parsed else { Issue.record("not an object"); return }
        #expect(fields.removeValue(forKey: "entry_hash") == .string(hash.hex))
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

    @Test func utcTimeFormatsAndParses() {
        #expect(UTCTime.format(0) == "1970-01-01T00:00:00.000000Z")
        #expect(UTCTime.format(951_782_400_123_456) == "2000-02-29T00:00:00.123456Z")
        #expect(UTCTime.format(-1) == "1969-12-31T23:59:59.999999Z")
        #expect(UTCTime.parseISO8601("2000-02-29") == 951_782_400_000_000)
        #expect(UTCTime.parseISO8601("2000-02-29T01:00:00+01:00") == 951_782_400_000_000)
        #expect(UTCTime.parseISO8601("2000-02-28T23:30-00:30") == 951_782_400_000_000)
        #expect(UTCTime.parseISO8601("2000-02-29T00:00:00.5Z") == 951_782_400_500_000)
        #expect(UTCTime.parseISO8601("2001-02-29") == nil)
        #expect(UTCTime.parseISO8601("2000-02-29T24:00:00Z") == nil)
        #expect(UTCTime.parseEntryTime("2000-02-29T00:00:00.123456Z") == 951_782_400_123_456)
        #expect(UTCTime.parseEntryTime("2000-02-29T00:00:00.123Z") == nil)
        for micros: Int64 in [0, 1, 86_399_999_999, 4_102_444_800_000_000, 1_709_164_800_000_001] {
            #expect(UTCTime.parseEntryTime(UTCTime.format(micros)) == micros)
        }
    }
}
