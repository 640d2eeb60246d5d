import Testing
@testable import QueryPolicy

@Suite struct NameTableTests {
    @Test func findsEveryKeyAndNothingElse() {
        let names = (0..<500).map { "relation_\($0)" }
        let table = NameTable(names.enumerated().map { ($0.element, $0.offset) })
        for (index, name) in names.enumerated() { #expect(table.value(for: name) == index, "\(name)") }
        for absent in ["relation_500", "relation_", "Relation_1", "relation_1 ", ""] { #expect(table.value(for: absent) == nil, "\(absent)") }
    }

    /// The server compares names byte for byte; so must the table, unlike `Set<String>`.
    @Test func comparesBytesNotCanonicalEquivalence() {
        let table = NameTable(["pg_\u{212A}"])  // KELVIN SIGN, canonically equivalent to "K"
        #expect(Set(["pg_\u{212A}"]).contains("pg_K"))
        #expect(!table.contains("pg_K"))
        #expect(table.contains("pg_\u{212A}"))
        #expect(SpecialRelation.byName.value(for: "pg_authid")?.isSecret == true)
        #expect(SpecialRelation.byName.value(for: "PG_AUTHID") == nil)
    }
}
