import Testing
@testable import QueryPolicy

/// Declared parameter types against a small pg_type: the engine's type rules, through what a type is made of.
@Suite struct ParameterTypesTests {
    static let types = ServerTypes([
        23: .init(schema: "pg_catalog", name: "int4"),
        142: .init(schema: "pg_catalog", name: "xml"),
        4096: .init(schema: "pg_catalog", name: "regrole"),
        4097: .init(schema: "pg_catalog", name: "_regrole", components: [4096]),
        90001: .init(schema: "public", name: "wrapped", components: [90002]),
        90002: .init(schema: "public", name: "note_domain", components: [142]),
        90003: .init(schema: "secret", name: "payroll"),
        90004: .init(schema: "public", name: "cycle", components: [90004, 23]),
        90005: .init(schema: "public", name: "dangling", components: [99999]),
    ])
    static let admitted = Decision(rule: .query, message: "ok", statementType: "SELECT", normalized: "SELECT $1::text", policyVersion: "v")

    func check(_ declared: [UInt32], _ engine: PolicyEngine = Profiles.readonly) -> Decision {
        engine.checkParameterTypes(declared, of: Self.types, admitting: Self.admitted)
    }

    @Test func unspecifiedAndOrdinaryTypesKeepTheAdmission() {
        #expect(check([]) == Self.admitted)
        #expect(check([0, 23, 90004]) == Self.admitted)
    }

    @Test func refusedTypesGetTheRuleOfACastToThem() {
        let regrole = check([23, 4096])
        #expect(regrole.rule == .catalogRelation)
        #expect(regrole.message.hasPrefix("parameter $2 is declared as pg_catalog.regrole: "))
        #expect(!regrole.message.contains("at character"))
        #expect(regrole.normalized == "SELECT $1::text" && regrole.statementType == "SELECT")
        #expect(check([4097]).rule == .catalogRelation)
        #expect(check([90003]).rule == .relationSchema)
        // The analyst profile reads the catalogs; xml is refused in every profile.
        #expect(check([4096], Profiles.analyst) == Self.admitted)
        #expect(check([142], Profiles.analyst).rule == .xmlParse)
    }

    @Test func aTypeMadeOfARefusedTypeIsRefused() {
        let wrapped = check([90001])
        #expect(wrapped.rule == .xmlParse)
        #expect(wrapped.message.hasPrefix("parameter $1 is declared as public.wrapped, which holds pg_catalog.xml: "))
    }

    @Test func unknownTypesAreRefused() {
        #expect(check([12345]).rule == .parameterType)
        let dangling = check([90005])
        #expect(dangling.rule == .parameterType && dangling.message.contains("which holds type OID 99999"))
    }
}
