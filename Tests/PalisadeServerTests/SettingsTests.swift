import Foundation
import Testing
@testable import PalisadeServer

@Suite struct SettingsTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    func configFile(_ text: String) throws -> String {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("palisade-settings-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let path = directory.appendingPathComponent("palisade.yaml").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func flagsWinOverTheEnvironmentAndTheEnvironmentOverTheFile() throws {
        let file = try configFile("backend: postgres://u@h:1/d\nlisten: 127.0.0.1:1\nlogin_timeout: 5\nlockout_denials: 7\n")
        let settings = try ServeSettings(configFile: file, environment: ["PALISADE_LISTEN": "127.0.0.1:2", "PALISADE_LOGIN_TIMEOUT": "6"],
                                         flags: ["listen": ["127.0.0.1:3"]])
        #expect(settings.listenPort == 3)
        #expect(settings.loginTimeout == 6)
        #expect(settings.lockoutDenials == 7)
        #expect(settings.lockoutSeconds == 300)
    }

    @Test func pathsInTheFileAreRelativeToItAndOthersAreTakenAsGiven() throws {
        let file = try configFile("backend: postgres://u@h:1/d\napi_keys: keys.yaml\naudit_dir: /var/audit\nprofiles: {monitor: monitor.yaml}\n")
        let base = URL(fileURLWithPath: file).deletingLastPathComponent().path + "/"
        let settings = try ServeSettings(configFile: file, environment: ["PALISADE_TLS_CERT": "cert.pem"],
                                         flags: ["tls_key": ["key.pem"], "profiles": ["extra=extra.yaml"]])
        #expect(settings.apiKeys == base + "keys.yaml")
        #expect(settings.auditDir == "/var/audit")
        #expect(settings.tlsCert == "cert.pem")
        #expect(settings.tlsKey == "key.pem")
        #expect(settings.profiles == ["agent": "Policies/readonly.yaml", "analyst": "Policies/analyst.yaml",
                                      "monitor": base + "monitor.yaml", "extra": "extra.yaml"])
    }

    @Test func valuesAreCheckedAgainstTheTable() throws {
        #expect(throws: ConfigurationError.self) { try ServeSettings(configFile: nil, environment: [:], flags: [:]) }
        let backend = ["backend": ["postgres://u@h:1/d"]]
        #expect(throws: ConfigurationError.self) { try ServeSettings(configFile: nil, environment: ["PALISADE_THREADS": "0"], flags: backend) }
        #expect(try ServeSettings(configFile: nil, environment: ["PALISADE_THREADS": "3"], flags: backend).threads == 3)
        #expect(throws: ConfigurationError.self) { try ServeSettings(configFile: try configFile("tls_mod: require\n"), environment: [:], flags: backend) }
        #expect(try ServeSettings(configFile: nil, environment: [:], flags: backend.merging(["audit_unsigned": ["true"]]) { $1 }).auditUnsigned)
        #expect(try ServeSettings(configFile: nil, environment: [:], flags: backend).auditDurability == .flushed)
        let written = try ServeSettings(configFile: try configFile("audit_durability: write\naudit_flush_ms: 50\n"), environment: [:], flags: backend)
        #expect(written.auditDurability == .written(flushInterval: .milliseconds(50)))
        #expect(throws: ConfigurationError.self) {
            try ServeSettings(configFile: nil, environment: ["PALISADE_AUDIT_DURABILITY": "off"], flags: backend)
        }
        #expect(throws: ConfigurationError.self) {
            try ServeSettings(configFile: nil, environment: ["PALISADE_AUDIT_FLUSH_MS": "0"], flags: backend)
        }
    }

    /// One tenant's sessions took every connection the server had (sixteenth red team): unset, the
    /// limit is a quarter of the server's connections for Palisade's role, at most 100.
    @Test func theTenantSessionLimitLeavesTheServerConnectionsForOthers() throws {
        let backend = ["backend": ["postgres://u@h:1/d"]]
        let derived = try ServeSettings(configFile: nil, environment: [:], flags: backend)
        #expect(derived.maxSessionsPerTenant == nil)
        #expect(derived.sessionLimit(serverSlots: 97) == 24)
        #expect(derived.sessionLimit(serverSlots: 3) == 1)
        #expect(derived.sessionLimit(serverSlots: 5000) == 100)
        let set = try ServeSettings(configFile: nil, environment: ["PALISADE_MAX_SESSIONS_PER_TENANT": "200"], flags: backend)
        #expect(set.sessionLimit(serverSlots: 97) == 200, "an operator's limit stands, with a warning")
    }

    @Test func theExampleFileHasEveryKeyAndNoOther() throws {
        let text = try String(contentsOf: Self.root.appendingPathComponent("palisade.example.yaml"), encoding: .utf8)
        var keys: [String] = []
        for line in text.split(separator: "\n") {
            let body = line.hasPrefix("# ") ? line.dropFirst(2) : line[...]
            guard let colon = body.firstIndex(of: ":"), body.first?.isLetter == true else { continue }
            let key = String(body[..<colon])
            if key.allSatisfy({ $0.isLowercase || $0 == "_" }) { keys.append(key) }
        }
        #expect(keys.filter { key in Setting.all.contains { $0.key == key } }.sorted() == Setting.all.map(\.key).sorted())
    }

    @Test func theReadmeListIsTheTable() throws {
        let text = try String(contentsOf: Self.root.appendingPathComponent("README.md"), encoding: .utf8)
        let start = try #require(text.range(of: "<!-- settings table: generated from Setting.all -->\n"))
        let end = try #require(text.range(of: "<!-- end of settings table -->"))
        let listed = String(text[start.upperBound..<end.lowerBound])
        if listed != Setting.markdownTable {
            let expected = FileManager.default.temporaryDirectory.appendingPathComponent("palisade-settings-table.md")
            try Setting.markdownTable.write(to: expected, atomically: true, encoding: .utf8)
            Issue.record("README's settings table differs from Setting.all; the table as it should be is in \(expected.path)")
        }
    }

    @Test func flagsAndEnvironmentNamesAreUnique() {
        #expect(Set(Setting.all.map(\.flag)).count == Setting.all.count)
        #expect(Set(Setting.all.map(\.environmentName)).count == Setting.all.count)
    }
}
