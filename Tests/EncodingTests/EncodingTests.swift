import Testing
@testable import Encoding

@Suite struct CanonicalJSONTests {
    @Test func escapesOnlyWhatRFC8785Escapes() throws {
        let text = "q\"b\\s/\u{08}\u{09}\u{0A}\u{0C}\u{0D}\u{01}\u{1F}\u{7F}é\u{2028}😀"
        let encoded = JSONValue.string(text).canonicalString
        #expect(encoded == "\"q\\\"b\\\\s/\\b\\t\\n\\f\\r\\u0001\\u001f\u{7F}é\u{2028}😀\"")
        #expect(try JSONValue.parse(encoded, .canonical) == .string(text))
    }

    @Test func sortsKeysByUTF16CodeUnits() {
        // U+1F600 is D83D DE00 in UTF-16, so it sorts before U+FFFF; by scalar value it would sort after.
        let value = JSONValue.object(["\u{FFFF}": .int(1), "😀": .int(2), "b": .int(3), "a": .array([.null, .bool(true)])])
        #expect(value.canonicalString == "{\"a\":[null,true],\"b\":3,\"😀\":2,\"\u{FFFF}\":1}")
    }

    @Test func writesIntegersWithoutDecoration() throws {
        let value = JSONValue.array([.int(0), .int(-1), .int(42), .int(Int64.max), .int(Int64.min)])
        #expect(value.canonicalString == "[0,-1,42,9223372036854775807,-9223372036854775808]")
        #expect(try JSONValue.parse(value.canonicalString, .canonical) == value)
    }

    @Test(arguments: [
        "1.5", "1e3", "01", "-", "{\"a\":1,\"a\":2}", "\"\\ud800\"", "\"\\udc00x\"", "[1,]", "{} x",
        "\"a\u{01}\"", "nul", "9223372036854775808", "\"\\x\"",
    ])
    func rejectsWhatTheWriterNeverProduces(_ text: String) {
        #expect(throws: JSONParseError.self) { try JSONValue.parse(text, .canonical) }
    }

    @Test func rejectsInvalidUTF8() {
        #expect(throws: JSONParseError.self) { try JSONValue.parse([0x22, 0xFF, 0x22], .canonical) }
    }

    @Test func decodesSurrogatePairsAndShortEscapes() throws {
        #expect(try JSONValue.parse("\"\\ud83d\\ude00\\/\\u00e9\"", .canonical) == .string("😀/é"))
    }

    @Test func numbersThatAreNotIntegersAreWrittenAsECMAScriptWritesThem() {
        let cases: [(String, String)] = [
            ("1.0", "1"), ("-0", "0"), ("-0.0", "0"), ("1.5e2", "150"), ("0.000001", "0.000001"), ("1e-7", "1e-7"),
            ("1e21", "1e+21"), ("123456789012345678901.5", "123456789012345680000"), ("-2.50", "-2.5"), ("4.35E-10", "4.35e-10"),
        ]
        for (literal, canonical) in cases {
            #expect(JSONValue.number(literal).canonicalString == canonical, "\(literal)")
        }
    }

    @Test func objectsKeepTheirOrderInCompactFormAndSortInCanonicalForm() throws {
        let value = try JSONValue.parse(#" { "b" : -0.50E+2 , "a" : [ ] , "c" : "\u00e9\ud83d\ude00\/" } "#)
        #expect(value.compactString == #"{"b":-0.50E+2,"a":[],"c":"é😀/"}"#)
        #expect(value.canonicalString == #"{"a":[],"b":-50,"c":"é😀/"}"#)
    }
}

@Suite struct JSONParserTests {
    @Test func refusesWhatJSONForbids() {
        for bad in [#"{"a":1,"a":2}"#, #""\ud800""#, #""\udc00x""#, "01", "1.", "-", "1e", "[1,]", "{,}", #"{"a"}"#, "tru", "\"a\u{1}\"",
                    "\"unterminated", "[1] 2", #""\x""#, String(repeating: "[", count: 40) + String(repeating: "]", count: 40)] {
            #expect(throws: JSONParseError.self, "\(bad)") { try JSONValue.parse(bad) }
        }
        #expect(throws: JSONParseError.self) { try JSONValue.parse([0x22, 0xFF, 0x22]) }
    }

    @Test func namesTheDuplicateKeyAndWhereItIs() {
        #expect(throws: JSONParseError(offset: 7, reason: "duplicate key \"a\"")) { try JSONValue.parse(#"{"a":1,"a":2}"#) }
    }

    @Test func reportsNUL() throws {
        #expect(try JSONValue.parse(#"{"k":["a\u0000"]}"#).containsNUL)
        #expect(try JSONValue.parse(#"{"k\u0000":1}"#).containsNUL)
        #expect(try !JSONValue.parse(#""a\u0001""#).containsNUL)
    }

    @Test func readsIntegersStrictly() throws {
        #expect(try JSONValue.parse("-9223372036854775808").int64Value == Int64.min)
        #expect(try JSONValue.parse("9223372036854775808").int64Value == nil)
        #expect(try JSONValue.parse("1.0").int64Value == nil)
        #expect(try JSONValue.parse("2.5").doubleValue == 2.5)
    }

    @Test func objectMembersCanBeSetAndRemoved() {
        var object: JSONObject = ["a": .int(1), "b": .int(2)]
        object["a"] = .int(3)
        object["b"] = nil
        object["c"] = .null
        #expect(object.keys == ["a", "c"])
        #expect(object == ["c": .null, "a": .int(3)])
    }
}

@Suite struct HexAndBase64Tests {
    @Test func hexIsLowercase() {
        #expect(Hex.encode([0x00, 0xAB, 0xFF]) == "00abff")
        #expect(Hex.decode("00abff") == [0x00, 0xAB, 0xFF])
        #expect(Hex.decode("00ABFF") == nil)
        #expect(Hex.decode("abc") == nil)
        #expect(Hex.decode("zz") == nil)
    }

    /// Contiguous bytes are written in place, other sequences byte by byte: both after what the
    /// buffer already holds, with every byte's two digits.
    @Test func hexAppendsEveryByteAfterWhatIsThere() {
        let all = (0...255).map { UInt8($0) }
        let spelling = Array("0123456789abcdef".utf8)
        let expected = Array("x:".utf8) + all.flatMap { [spelling[Int($0 >> 4)], spelling[Int($0 & 0xF)]] }
        var contiguous = Array("x:".utf8)
        Hex.append(all, to: &contiguous)
        var sequential = Array("x:".utf8)
        Hex.append(all.lazy.map { $0 }, to: &sequential)
        #expect(contiguous == expected)
        #expect(sequential == expected)
        #expect(Hex.decode(String(decoding: contiguous.dropFirst(2), as: UTF8.self)) == all)
    }

    @Test func base64URLIsStrict() {
        #expect(Base64URL.decode(Array("aGk".utf8)) == Array("hi".utf8))
        #expect(Base64URL.decode(Array("-_8".utf8)) == [0xFB, 0xFF])
        #expect(Base64URL.decode(Array("aGk=".utf8)) == nil)  // padding
        #expect(Base64URL.decode(Array("aGl".utf8)) == nil)  // non-zero unused bits
        #expect(Base64URL.decode(Array("a".utf8)) == nil)  // impossible length
        #expect(Base64URL.decode(Array("a+b/".utf8)) == nil)  // standard alphabet
        #expect(Base64URL.encode([0xFB, 0xFF]) == "-_8")
    }

    @Test func base64HasOneSpellingPerValue() {
        for length in 0..<8 {
            let bytes = (0..<length).map { UInt8(truncatingIfNeeded: $0 * 77 + 250) }
            let text = Base64.encode(bytes)
            #expect(Base64.decode(text) == bytes)
        }
        #expect(Base64.encode(Array("hi".utf8)) == "aGk=")
        #expect(Base64.decode("aGk") == nil)  // padding missing
        #expect(Base64.decode("aGk", padded: false) == Array("hi".utf8))
        #expect(Base64.decode("aGl=") == nil)  // non-zero unused bits
        #expect(Base64.decode("aG==") == nil)
        #expect(Base64.decode("a===") == nil)
        #expect(Base64.decode("-_8=") == nil)  // URL alphabet
        #expect(Base64.decode("aGk=\n") == nil)
    }

    /// Every one of the 256 byte values, in each position of a 4-symbol group: the 64 of the
    /// alphabet decode to their index, every other byte (including the other alphabet's two) is refused.
    /// The standard alphabet's decode takes a String, so there a byte of 0x80 or more arrives as
    /// U+FFFD's three bytes, as any text would; base64url takes the bytes themselves.
    @Test func base64DecodesExactlyItsAlphabet() {
        for (alphabet, decode) in [(Base64.standardAlphabet, { Base64.decode(String(decoding: $0, as: UTF8.self), padded: false) }), (Base64.urlAlphabet, Base64URL.decode)]
            as [([UInt8], ([UInt8]) -> [UInt8]?)] {
            for byte in UInt8.min...UInt8.max {
                for position in 0..<4 {
                    var group = Array("AAAA".utf8)
                    group[position] = byte
                    let expected: [UInt8]? = alphabet.firstIndex(of: byte).map { value in
                        let bits = UInt32(value) << UInt32(6 * (3 - position))
                        return [UInt8(bits >> 16), UInt8(truncatingIfNeeded: bits >> 8), UInt8(truncatingIfNeeded: bits)]
                    }
                    #expect(decode(group) == expected, "byte \(byte) at \(position)")
                }
            }
        }
    }
}

@Suite struct UTCTimeTests {
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

    @Test func wholeSecondsForMessages() {
        #expect(UTCTime.formatSeconds(0) == "1970-01-01T00:00:00Z")
        #expect(UTCTime.formatSeconds(-1) == "1969-12-31T23:59:59Z")
        #expect(UTCTime.formatSeconds(951_782_400) == "2000-02-29T00:00:00Z")
    }
}

@Suite struct TerminalTextTests {
    @Test func controlsAreShownNotObeyed() {
        #expect(TerminalText.escaped("plain text, ünïcode ✓") == "plain text, ünïcode ✓")
        #expect(TerminalText.escaped("\u{1B}[2K\r\u{1B}]0;pwned\u{07}") == "\\x1b[2K\\x0d\\x1b]0;pwned\\x07")
        #expect(TerminalText.escaped("a\nb\tc\u{7F}\u{9B}") == "a\\x0ab\\x09c\\x7f\\x9b")
        #expect(TerminalText.escaped("abc\u{202E}fed") == "abc\\u{202e}fed")
        // A backslash is escaped too, so that the escaped form reads back one way.
        #expect(TerminalText.escaped("\\x1b") == "\\\\x1b")
    }
}
