#if canImport(Glibc)
import Glibc
#endif

/// Client text compared as PostgreSQL compares it: byte for byte.
///
/// Swift's `String` equality and hashing follow Unicode canonical equivalence, so U+212A KELVIN
/// SIGN equals "K" and U+037E GREEK QUESTION MARK equals ";". To the server those are different
/// statements (it folds only ASCII A–Z in identifiers), so a cache keyed by `String` would answer
/// one text with the decision made for another.
struct ExactText: Hashable, Sendable {
    let text: String

    init(_ text: String) {
        self.text = text
    }

    static func == (left: ExactText, right: ExactText) -> Bool {
        var left = left.text, right = right.text
        return left.withUTF8 { a in
            right.withUTF8 { b in a.count == b.count && (a.count == 0 || memcmp(a.baseAddress!, b.baseAddress!, a.count) == 0) }
        }
    }

    func hash(into hasher: inout Hasher) {
        var text = text
        text.withUTF8 { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
    }
}

extension String {
    /// Lower case as PostgreSQL folds names: ASCII A–Z only (`lowercased()` would also map, say,
    /// U+212A KELVIN SIGN to "k", naming a setting the server does not see).
    var asciiLowercased: String {
        guard utf8.contains(where: { $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") }) else { return self }
        return String(decoding: utf8.map { $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") ? $0 + 32 : $0 }, as: UTF8.self)
    }

    /// Equal byte for byte (see `ExactText`).
    func isExactly(_ other: String) -> Bool {
        ExactText(self) == ExactText(other)
    }
}
