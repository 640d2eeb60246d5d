import Foundation
import Testing
@testable import PalisadeMCP

@Suite struct ResultJSONTests {
    @Test func valuesKeepTheirJSONTypesAndExactDigits() {
        #expect(ResultJSON.value(nil, type: "int4") == "null")
        #expect(ResultJSON.value("t", type: "bool") == "true")
        #expect(ResultJSON.value("f", type: "bool") == "false")
        #expect(ResultJSON.value("-42", type: "int8") == "-42")
        // A numeric is never rounded through a double.
        #expect(ResultJSON.value("12345678901234567890.000000000001", type: "numeric") == "12345678901234567890.000000000001")
        #expect(ResultJSON.value("1.5e-07", type: "float8") == "1.5e-07")
        // What JSON has no number for stays the server's text.
        #expect(ResultJSON.value("NaN", type: "numeric") == #""NaN""#)
        #expect(ResultJSON.value("-Infinity", type: "float8") == #""-Infinity""#)
        #expect(ResultJSON.value(#"{"a": [1, 2]}"#, type: "jsonb") == #"{"a": [1, 2]}"#)
        #expect(ResultJSON.value("{1,2}", type: "_int4") == #""{1,2}""#)
        #expect(ResultJSON.value("2026-01-02 00:00:00+00", type: "timestamptz") == #""2026-01-02 00:00:00+00""#)
        #expect(ResultJSON.value("say \"hi\"\n", type: "text") == #""say \"hi\"\n""#)
    }

    @Test func jsonNumbersFollowTheGrammar() {
        for number in ["0", "-0", "10", "1.25", "1e5", "1E+5", "-2.5e-3"] { #expect(ResultJSON.isJSONNumber(number), "\(number)") }
        for text in ["", "-", "01", "1.", ".5", "+1", "1e", "0x10", "1 ", "NaN", "Infinity"] { #expect(!ResultJSON.isJSONNumber(text), "\(text)") }
    }

    @Test func aDocumentHasColumnsRowsInColumnOrderAndTheRequest() throws {
        let document = ResultJSON.document(
            columns: [ResultJSON.Column(name: "id", type: "int4"), ResultJSON.Column(name: "id", type: "text")],
            rows: [["1", "one"], ["2", nil]], requestID: "abc-3")
        #expect(document == #"{"columns":[{"name":"id","type":"int4"},{"name":"id","type":"text"}],"rows":[[1,"one"],[2,null]],"row_count":2,"request_id":"abc-3"}"#)
        _ = try JSONSerialization.jsonObject(with: Data(document.utf8))
    }

    /// Sixteenth red team (rt19-mcp-result-bytes-escape): max_result_bytes bounds the answer as it is sent.
    @Test func sentBytesCountTheAnswerAsTheSDKEncodesIt() throws {
        for text in ["plain", "say \"hi\"\n", "\u{01}\u{1f}\t\\/", "grüße ✓", "{\"a\":\"\\u0001\"}"] {
            // As the SDK's encoder writes it, less the fixed `{"text":""}`.
            let withoutSlashes = JSONEncoder()
            withoutSlashes.outputFormatting = [.withoutEscapingSlashes]
            let sent = try withoutSlashes.encode(["text": text]).count - #"{"text":""}"#.utf8.count
            #expect(ResultJSON.sentBytes(text) == sent, "\(text)")
        }
    }

    @Test func aValueIsCountedAsItIsSentBeforeItIsBuilt() {
        let texts: [String?] = [nil, "t", "f", "x", "-1.5e3", "NaN", "say \"hi\"\n", "\u{01}\u{08}\u{0c}\r\t\\", "grüße ✓", #"{"a": "\u0001"}"#, ""]
        for type in ["bool", "int4", "numeric", "text", "jsonb", "_int4"] {
            for text in texts {
                #expect(ResultJSON.sentBytes(ofValue: text, type: type) == ResultJSON.sentBytes(ResultJSON.value(text, type: type)),
                        "\(type) \(String(describing: text))")
            }
        }
    }

    @Test func aDocumentStopsAtTheBudgetInTheBytesItIsSent() {
        let columns = [ResultJSON.Column(name: "x", type: "text")]
        // 8 rows of 1,000 bytes of \x01: 8 KB of rows, 7 bytes each once sent (\\u0001).
        let rows = Array(repeating: [String(repeating: "\u{01}", count: 1000)], count: 8)
        guard case .tooLarge(let kept, let bytes) = ResultJSON.document(columns: columns, rows: rows, requestID: "r-1", maxBytes: 8 * 1024) else {
            Issue.record("8 KB of rows sent as 56 KB fit an 8 KB budget")
            return
        }
        #expect(kept == 1 && bytes > 8 * 1024 && bytes <= 2 * (7 * 1000 + 8) + 100)
        // Under the budget the document is the one `document` builds, and its sent size is within it.
        let small = Array(rows.prefix(1))
        let unbounded = ResultJSON.document(columns: columns, rows: small, requestID: "r-1")
        #expect(ResultJSON.document(columns: columns, rows: small, requestID: "r-1", maxBytes: 8 * 1024) == .document(unbounded))
        #expect(ResultJSON.sentBytes(unbounded) <= 8 * 1024)
        #expect(ResultJSON.document(columns: columns, rows: small, requestID: "r-1", maxBytes: ResultJSON.sentBytes(unbounded)) == .document(unbounded))
        #expect(ResultJSON.document(columns: columns, rows: small, requestID: "r-1", maxBytes: ResultJSON.sentBytes(unbounded) - 1) != .document(unbounded))
    }
}
