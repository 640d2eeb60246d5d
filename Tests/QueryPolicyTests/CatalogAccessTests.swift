import Crypto
import Foundation
import Testing
@testable import QueryPolicy

/// `relations.catalog: none | metadata | full`, the reviewed metadata list, result budgets, and
/// the hint a relation denial gives.
@Suite struct CatalogAccessTests {
    let files = PolicyFileTests()
    static let listText = try! String(contentsOf: repositoryRoot.appendingPathComponent("Policies/catalog/metadata.tsv"), encoding: .utf8)

    /// The error loading the readonly policy with `list` as its metadata list (pinned by its digest).
    func errorWith(list: String) -> String {
        let digest = SHA256.hash(data: Data(list.utf8)).map { String(format: "%02x", $0) }.joined()
        let text = PolicyFileTests.readonlyText
            .replacingOccurrences(of: #"metadata_list_sha256: [0-9a-f]+"#, with: "metadata_list_sha256: \(digest)", options: .regularExpression)
        let directory = repositoryRoot.appendingPathComponent("Policies").path
        do {
            _ = try Policy.parse(Data(text.utf8), file: "test.yaml") { relative throws(PolicyError) in
                if relative == "catalog/metadata.tsv" { return Data(list.utf8) }
                guard let data = FileManager.default.contents(atPath: directory + "/" + relative) else {
                    throw PolicyError(file: relative, reason: "missing")
                }
                return data
            }
            return "no error"
        } catch {
            return error.description
        }
    }

    @Test func theShippedProfilesReadMetadataAndEverything() throws {
        let readonly = Profiles.readonly.policy
        #expect(readonly.catalogAccess == .metadata && !readonly.allowsCatalog)
        #expect(readonly.catalogRelations.isSuperset(of: ["pg_class", "pg_attribute", "pg_type", "information_schema.columns"]))
        #expect(readonly.builtinFunctions.isSuperset(of: ["format_type", "pg_get_userbyid", "pg_table_is_visible"]))
        #expect(!readonly.builtinFunctions.contains("pg_table_size") && !readonly.builtinFunctions.contains("pg_relation_size"))
        #expect(readonly.readableSettings == ["default_table_access_method"])
        #expect(readonly.maxResultRows == 10000 && readonly.maxResultBytes == 8_388_608)
        let analyst = Profiles.analyst.policy
        #expect(analyst.catalogAccess == .full && analyst.maxResultRows == nil && analyst.maxResultBytes == nil)
    }

    @Test func catalogTakesThreeValuesAndTheOldBooleans() throws {
        let text = PolicyFileTests.readonlyText
        #expect(try files.load(text.replacingOccurrences(of: "catalog: metadata", with: "catalog: none")).catalogAccess == .none)
        #expect(try files.load(text.replacingOccurrences(of: "catalog: metadata", with: "catalog: false")).catalogAccess == .none)
        #expect(try files.load(text.replacingOccurrences(of: "catalog: metadata", with: "catalog: true")).catalogAccess == .full)
        #expect(files.error(text.replacingOccurrences(of: "catalog: metadata", with: "catalog: some")).contains("relations.catalog: expected none, metadata or full"))
        let none = try files.load(text.replacingOccurrences(of: "catalog: metadata", with: "catalog: none"))
        #expect(none.catalogRelations == ["pg_type", "pg_namespace"] && !none.builtinFunctions.contains("format_type"))
    }

    @Test func theMetadataListIsPinnedAndReviewed() {
        #expect(files.error(PolicyFileTests.readonlyText.replacingOccurrences(of: "metadata_list_sha256: ", with: "metadata_list_sha256: 00"))
            .contains("review the list's changes, then pin the new digest"))
        let cases: [(String, String)] = [
            ("relation\tpg_catalog.pg_authid\tx\n", "pg_catalog.pg_authid can never be listed"),
            ("relation\tinformation_schema.user_mapping_options\tx\n", "can never be listed"),
            ("relation\tpg_catalog.pg_user_mapping\tx\n", "can never be listed"),
            ("relation\tpublic.users\tx\n", "write pg_catalog.name or information_schema.name"),
            ("function\tpg_read_file\tx\n", "pg_read_file can never be allowed"),
            ("function\tpg_stat_get_backend_activity\tx\n", "is not in the reviewed function list"),
            ("setting\tdata_directory\tx\n", "is not a setting schema discovery may read"),
            ("relation\tpg_catalog.pg_class\n", "expected kind<TAB>name<TAB>the client query that needs it"),
            ("table\tpg_catalog.pg_class\tx\n", "unknown kind 'table'"),
        ]
        #expect(errorWith(list: Self.listText) == "no error")
        for (line, reason) in cases {
            let error = errorWith(list: Self.listText + line)
            #expect(error.contains(reason), "\(line): \(error)")
        }
    }

    @Test func resultBudgetsAreOptionalAndPositive() throws {
        let text = PolicyFileTests.readonlyText
        #expect(files.error(text.replacingOccurrences(of: "max_rows: 10000", with: "max_rows: 0")).contains("limits.max_rows: must be at least 1"))
        let unlimited = try files.load(text.replacingOccurrences(of: "  max_rows: 10000", with: "  # no max_rows"))
        #expect(unlimited.maxResultRows == nil)
    }

    @Test func aRelationDenialNamesWhatCanBeRead() {
        let denied = Profiles.readonly.evaluate("SELECT * FROM secret.payroll")
        #expect(denied.rule == .relationSchema)
        #expect(denied.hint == "Readable schemas: public. List tables with SELECT table_schema, table_name FROM information_schema.tables WHERE table_schema IN ('public'), and columns with information_schema.columns.")
        #expect(Profiles.readonly.evaluate("SELECT proname FROM pg_proc").hint == denied.hint)
        #expect(Profiles.readonly.evaluate("SELECT * FROM pg_authid").hint == denied.hint)
        #expect(Profiles.readonly.evaluate(String(denied.hint!.split(separator: "with ")[1].split(separator: ", and")[0])).rule == .query)
        let none = PolicyEngine(policy: try! files.load(PolicyFileTests.readonlyText.replacingOccurrences(of: "catalog: metadata", with: "catalog: none")))
        #expect(none.evaluate("SELECT * FROM information_schema.tables").hint
            == "Readable schemas: public. This profile cannot list tables; use the table names you were given.")
    }
}
