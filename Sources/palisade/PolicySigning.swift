import ArgumentParser
import AuditChain
import Crypto
import Foundation
import PalisadeServer

extension PolicyCommand {
    struct Sign: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Sign policy files (writes FILE.sig) with a key from `palisade audit keygen`.")

        @Option(help: "The signing key file.") var key: String
        @Argument(help: "Policy files.") var files: [String]

        func run() throws {
            let signingKey = try KeyFiles.signingKey(key)
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
