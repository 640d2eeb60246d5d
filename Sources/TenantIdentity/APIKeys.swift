import Crypto
import Encoding
import Foundation
import PostgresWire
import Yams

/// API keys as stored: a public id, the SHA-256 of the whole key, its SCRAM-SHA-256 verifier, and
/// what the key may do. The key itself is printed once by `palisade keys create` and never stored.
public struct APIKey: Sendable, Equatable {
    public var id: String
    public var sha256: [UInt8]
    /// For `client_auth: scram-sha-256`, where the key never crosses the wire; nil in files
    /// written before Palisade stored verifiers.
    public var scram: SCRAMVerifier?
    public var tenant: String
    public var profile: String
    public var created: String
}

public struct APIKeyStore: Sendable {
    public private(set) var keys: [APIKey]
    private let byID: [String: APIKey]
    /// Makes the salt an unknown key id is shown in a SCRAM exchange: the same for the same id
    /// while Palisade runs, and telling nothing about which ids exist.
    private let mockSaltKey = SymmetricKey(size: .bits256)

    public init(keys: [APIKey]) {
        self.keys = keys
        byID = Dictionary(keys.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
    }

    /// The key a SCRAM login names by its id (the user name), or nil.
    public func key(id: String) -> APIKey? { byID[id] }

    public func mockSalt(forID id: String) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: Array(id.utf8), using: mockSaltKey).prefix(16))
    }

    /// Keys look like `pal_<8 hex id>_<43 base64url characters>`.
    public static func generate(tenant: String, profile: String, now: Date = Date()) -> (key: String, record: APIKey) {
        var random = SystemRandomNumberGenerator()
        let id = Hex.encode((0..<4).map { _ in UInt8.random(in: 0...255, using: &random) })
        let secret = Base64URL.encode((0..<32).map { _ in UInt8.random(in: 0...255, using: &random) })
        let key = "pal_\(id)_\(secret)"
        let record = APIKey(id: id, sha256: Array(SHA256.hash(data: Array(key.utf8))), scram: SCRAMVerifier(password: key),
                            tenant: tenant, profile: profile, created: UTCTime.formatSeconds(Int64(now.timeIntervalSince1970.rounded(.down))))
        return (key, record)
    }

    /// The key's record if `presented` is a valid key. The same work is done whether or not the id
    /// exists and whatever the hash's first differing byte, so timing tells nothing.
    public func authenticate(_ presented: String) -> APIKey? {
        let digest = Array(SHA256.hash(data: Array(presented.utf8)))
        let parts = presented.split(separator: "_", maxSplits: 2, omittingEmptySubsequences: false)
        let candidate = parts.count == 3 && parts[0] == "pal" ? byID[String(parts[1])] : nil
        let expected = candidate?.sha256 ?? Self.decoy
        var difference: UInt8 = 0
        for index in 0..<32 { difference |= digest[index] ^ expected[index] }
        return difference == 0 ? candidate : nil
    }

    private static let decoy = Array(SHA256.hash(data: Array("palisade-decoy".utf8)))

    // MARK: - File

    public struct FileError: Error, CustomStringConvertible {
        public var description: String
    }

    public static func load(path: String) throws(FileError) -> APIKeyStore {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw FileError(description: "\(path): cannot read the API keys file")
        }
        let root: Yams.Node?
        do { root = try Yams.compose(yaml: text) } catch { throw FileError(description: "\(path): not valid YAML: \(error)") }
        guard let entries = root?.mapping?["keys"]?.sequence else {
            if root == nil { return APIKeyStore(keys: []) }
            throw FileError(description: "\(path): expected a top-level 'keys' list")
        }
        var keys: [APIKey] = []
        for entry in entries {
            let line = entry.mark.map { ":\($0.line)" } ?? ""
            guard let mapping = entry.mapping else { throw FileError(description: "\(path)\(line): each key must be a mapping") }
            for (key, _) in mapping where !["id", "sha256", "scram", "tenant", "profile", "created"].contains(key.string ?? "") {
                throw FileError(description: "\(path)\(key.mark.map { ":\($0.line)" } ?? ""): unknown key '\(key.string ?? "?")'")
            }
            guard let id = mapping["id"]?.string, let hash = mapping["sha256"]?.string, let digest = Hex.decode(hash.lowercased()), digest.count == 32,
                  let tenant = mapping["tenant"]?.string, !tenant.isEmpty, let profile = mapping["profile"]?.string
            else { throw FileError(description: "\(path)\(line): each key needs id, sha256 (64 hex digits), tenant and profile") }
            var scram: SCRAMVerifier?
            if let encoded = mapping["scram"] {
                guard let verifier = encoded.string.flatMap(SCRAMVerifier.init(encoded:)) else {
                    throw FileError(description: "\(path)\(encoded.mark.map { ":\($0.line)" } ?? line): scram must be a SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey> verifier")
                }
                scram = verifier
            }
            keys.append(APIKey(id: id, sha256: digest, scram: scram, tenant: tenant, profile: profile, created: mapping["created"]?.string ?? ""))
        }
        return APIKeyStore(keys: keys)
    }

    /// Appends a key record, creating the file (mode 0600) if needed.
    public static func append(_ record: APIKey, toFile path: String) throws(FileError) {
        let manager = FileManager.default
        var text = (manager.contents(atPath: path).flatMap { String(data: $0, encoding: .utf8) }) ?? ""
        if text.isEmpty { text = "# Palisade API keys: only SHA-256 hashes and SCRAM verifiers of the keys are stored.\nkeys:\n" }
        if !text.hasSuffix("\n") { text += "\n" }
        var lines = ["  - id: \(record.id)", "    sha256: \(Hex.encode(record.sha256))"]
        if let scram = record.scram { lines.append("    scram: \(yamlQuoted(scram.encoded))") }
        lines += ["    tenant: \(yamlQuoted(record.tenant))", "    profile: \(yamlQuoted(record.profile))", "    created: \(record.created)"]
        text += lines.joined(separator: "\n") + "\n"
        guard manager.createFile(atPath: path, contents: Data(text.utf8), attributes: [.posixPermissions: 0o600]) else {
            throw FileError(description: "\(path): cannot write the API keys file")
        }
    }

    private static func yamlQuoted(_ value: String) -> String {
        "'" + value.replacingOccurrences(of: "'", with: "''") + "'"
    }
}
