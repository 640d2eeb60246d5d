import ArgumentParser
import AuditChain
import Crypto
import Foundation
import Encoding

/// Signed policy packs: `FILE.sig` beside a policy is a C2SP signed note (Ed25519) over the file's
/// name and SHA-256. The policy pins its function list's SHA-256, so the signature covers both.
enum PolicySignature {
    static func signatureFile(for policy: String) -> String { policy + ".sig" }

    static func noteText(for policy: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: policy) else { throw ConfigurationError(description: "cannot read \(policy)") }
        let digest = Hex.encode(SHA256.hash(data: data))
        return "palisade-policy/1\n\(URL(fileURLWithPath: policy).lastPathComponent)\nsha256 \(digest)\n"
    }

    static func sign(_ policy: String, with key: AuditSigningKey) throws {
        let note = try SignedNote.sign(try noteText(for: policy), with: [key])
        guard FileManager.default.createFile(atPath: signatureFile(for: policy), contents: Data(note.encoded.utf8)) else {
            throw ConfigurationError(description: "cannot write \(signatureFile(for: policy))")
        }
    }

    /// Nil if a trusted key signed exactly this content; otherwise why not.
    static func problem(with policy: String, trusting keys: [NoteVerifierKey]) -> String? {
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

extension PolicyCommand {
    struct Sign: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Sign policy files (writes FILE.sig) with a key from `palisade audit keygen`.")

        @Option(help: "The signing key file.") var key: String
        @Argument(help: "Policy files.") var files: [String]

        func run() throws {
            let signingKey = try AuditCLI.signingKey(key)
            for file in files {
                _ = try loadEngine(file)
                try PolicySignature.sign(file, with: signingKey)
                print("\(PolicySignature.signatureFile(for: file)): signed by \(signingKey.verifierKey.encoded)")
            }
        }
    }

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Check policy files' signatures; exit 0 if every file is signed by a trusted key, 1 if not.")

        @Option(help: "A trusted verifier key, or a file of them (repeatable).") var key: [String]
        @Argument(help: "Policy files.") var files: [String]

        func run() throws {
            let keys = try AuditCLI.trustedKeys(key, logDirectory: nil)
            guard !keys.isEmpty else { throw ValidationError("give the verifier key with --key") }
            var failed = false
            for file in files {
                if let problem = PolicySignature.problem(with: file, trusting: keys) {
                    print("\(file): \(problem)")
                    failed = true
                } else {
                    print("\(file): ok")
                }
            }
            if failed { throw ExitCode(1) }
        }
    }
}
