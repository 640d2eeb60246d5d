import Crypto
import Foundation
import Testing
@testable import QueryPolicy

@Suite struct PolicyFileTests {
    static let readonlyText = try! String(contentsOf: repositoryRoot.appendingPathComponent("Policies/readonly.yaml"), encoding: .utf8)

    func load(_ text: String) throws(PolicyError) -> Policy {
        let directory = repositoryRoot.appendingPathComponent("Policies").path
        return try Policy.parse(Data(text.utf8), file: "test.yaml") { relative throws(PolicyError) in
            guard let data = FileManager.default.contents(atPath: directory + "/" + relative) else {
                throw PolicyError(file: relative, reason: "missing")
            }
            return data
        }
    }

    func error(_ text: String) -> String {
        do {
            _ = try load(text)
            return "no error"
        } catch {
            return error.description
        }
    }

    @Test func shippedPoliciesLoad() throws {
        #expect(try load(Self.readonlyText).profile == "readonly")
        #expect(Profiles.analyst.policy.allowsCatalog)
        #expect(!Profiles.readonly.policy.allowsCatalog)
    }

    @Test func versionIsTheFileDigest() throws {
        let digest = SHA256.hash(data: Data(Self.readonlyText.utf8)).map { String(format: "%02x", $0) }.joined()
        #expect(Profiles.readonly.policy.version == digest)
        #expect(try load(Self.readonlyText + "\n").version != digest)
    }

    @Test func unknownKeyNamesFileLineAndKey() {
        let text = Self.readonlyText.replacingOccurrences(of: "  max_nesting_depth: 64", with: "  max_nesting_depht: 64")
        let line = text.components(separatedBy: "\n").firstIndex { $0.contains("max_nesting_depht") }! + 1
        #expect(error(text).hasPrefix("test.yaml:\(line): limits.max_nesting_depht: unknown key"))
    }

    @Test func wrongTypeIsNamed() {
        let text = Self.readonlyText.replacingOccurrences(of: "max_query_bytes: 65536", with: "max_query_bytes: lots")
        #expect(error(text).contains("limits.max_query_bytes: expected an integer"))
    }

    @Test func dangerousSettingsCanNeverBeAllowed() {
        let text = Self.readonlyText.replacingOccurrences(of: "    - extra_float_digits\n    - application_name\n    - datestyle", with: "    - extra_float_digits\n    - search_path\n    - datestyle")
        #expect(error(text).contains("SET search_path can never be allowed"))
    }

    @Test func forbiddenFunctionsCanNeverBeAllowed() {
        let text = Self.readonlyText.replacingOccurrences(of: "allow: []", with: "allow: [public.dblink_exec]")
        #expect(error(text).contains("public.dblink_exec can never be allowed"))
    }

    @Test func alteredFunctionListIsRefused() {
        let text = Self.readonlyText.replacingOccurrences(of: "builtin_list_sha256: ", with: "builtin_list_sha256: 00")
        #expect(error(text).contains("not the pinned"))
    }

    /// Settings stored on roles and databases can hold secrets (issue 14): no policy reads every setting.
    @Test func currentSettingAnyIsRefused() throws {
        let text = Self.readonlyText.replacingOccurrences(of: "current_setting: claim_only", with: "current_setting: any")
        #expect(error(text).contains("functions.current_setting: 'any' is no longer accepted"))
        let reviewed = try load(Self.readonlyText.replacingOccurrences(of: "current_setting: claim_only", with: "current_setting: reviewed"))
        #expect(reviewed.allowsReviewedSettings)
        #expect(Profiles.analyst.policy.allowsReviewedSettings && !Profiles.readonly.policy.allowsReviewedSettings)
    }

    @Test func argumentLimitsAndRowLevelSecurityAreRead() throws {
        #expect(Profiles.readonly.policy.maxFunctionResultBytes == 1_048_576 && Profiles.readonly.policy.maxGeneratedRows == 1_000_000)
        #expect(Profiles.readonly.policy.hidesStatistics && Profiles.analyst.policy.hidesStatistics)
        let unscoped = try load(Self.readonlyText.replacingOccurrences(of: "row_level_security: true", with: "row_level_security: false"))
        #expect(!unscoped.hidesStatistics)
        let absent = try load(Self.readonlyText.replacingOccurrences(of: "  row_level_security: true", with: "").replacingOccurrences(of: "  max_function_result_bytes: 1048576", with: ""))
        #expect(absent.hidesStatistics && absent.maxFunctionResultBytes == 1_048_576)
        #expect(error(Self.readonlyText.replacingOccurrences(of: "max_function_result_bytes: 1048576", with: "max_function_result_bytes: 0")).contains("limits.max_function_result_bytes: must be between"))
    }

    @Test func requiredKeysAndRanges() {
        #expect(error("limits: {}\n").contains("profile: required key is missing"))
        let text = Self.readonlyText.replacingOccurrences(of: "max_nesting_depth: 64", with: "max_nesting_depth: 100000")
        #expect(error(text).contains("must be between"))
        #expect(error("profile: [a\n").contains("not valid YAML"))
    }
}
