import AuditChain
import Crypto
import Foundation
import Encoding

/// Signed policy packs: `FILE.sig` beside a policy is a C2SP signed note (Ed25519) over the file's
/// name and SHA-256. The policy pins its function list's SHA-256, so the signature covers both.
public enum PolicySignature {
    public static func signatureFile(for policy: String) -> String { policy + ".sig" }

    public static func noteText(for policy: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: policy) else { throw ConfigurationError(description: "cannot read \(policy)") }
        let digest = Hex.encode(SHA256.hash(data: data))
        return "palisade-policy/1\n\(URL(fileURLWithPath: policy).lastPathComponent)\nsha256 \(digest)\n"
    }

    public static func sign(_ policy: String, with key: AuditSigningKey) throws {
        let note = try SignedNote.sign(try noteText(for: policy), with: [key])
        guard FileManager.default.createFile(atPath: signatureFile(for: policy), contents: Data(note.encoded.utf8)) else {
            throw ConfigurationError(description: "cannot write \(signatureFile(for: policy))")
        }
    }

    /// Nil if a trusted key signed exactly this content; otherwise why not.
    public static func problem(with policy: String, trusting keys: [NoteVerifierKey]) -> String? {
        guard let signature = try? String(contentsOfFile: signatureFile(for: policy), encoding: .utf8) else {
            return "\(policy) is not signed (no \(signatureFile(for: policy)))"
        }
        guard let note = try? SignedNote(parsing: signature) else { return "\(signatureFile(for: policy)) is not a signed note" }
        guard let expected = try? noteText(for: policy) else { return "cannot read \(policy)" }
        guard note.text == expected else { return "\(policy) was changed after it was signed" }
        guard !note.verifiedSigners(keys).isEmpty else { return "\(policy) is not signed by a trusted key" }
        return nil
    }
}

/// Key files as `serve` and the audit commands read them.
public enum KeyFiles {
    public static func signingKey(_ path: String) throws -> AuditSigningKey {
        do {
            return try AuditSigningKey(parsing: try String(contentsOfFile: path, encoding: .utf8))
        } catch let error as NoteError {
            throw ConfigurationError(description: "\(path): \(error)")
        } catch {
            throw ConfigurationError(description: "cannot read \(path): \(error.localizedDescription)")
        }
    }

    /// Each spec is a verifier key, or a file of them (one a line; a signing key file works too).
    public static func trustedKeys(_ specs: [String]) throws(ConfigurationError) -> [NoteVerifierKey] {
        var keys: [NoteVerifierKey] = []
        for spec in specs {
            if let key = try? NoteVerifierKey(parsing: spec) {
                keys.append(key)
                continue
            }
            guard let text = try? String(contentsOfFile: spec, encoding: .utf8) else {
                throw ConfigurationError(description: "--key \(spec) is neither a verifier key nor a readable file")
            }
            for line in text.split(separator: "\n") where !line.trimmingCharacters(in: .whitespaces).isEmpty {
                if let key = try? NoteVerifierKey(parsing: String(line)) {
                    keys.append(key)
                } else if let key = try? AuditSigningKey(parsing: String(line)) {
                    keys.append(key.verifierKey)
                } else {
                    throw ConfigurationError(description: "\(spec): \"\(line.prefix(40))\" is not a key")
                }
            }
        }
        return keys
    }
}
