import ArgumentParser
import AuditChain
import Foundation
import Encoding

struct AuditProve: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prove", abstract: "Print an RFC 6962 inclusion proof of one entry against the latest checkpoint (JSON).",
        discussion: "The log is verified first; the proof uses the largest checkpoint that is authentic and matches it.")

    @Option(help: "The entry's sequence number.") var seq: UInt64
    @Option(name: .customLong("checkpoints"), help: ArgumentHelp("A checkpoint mirror directory; repeatable.", valueName: "DIR")) var mirrors: [String] = []
    @Option(help: ArgumentHelp("A trusted verifier key, or a file of them; repeatable.", valueName: "VKEY-or-FILE")) var key: [String] = []
    @Argument(help: ArgumentHelp("The log directory.", valueName: "LOGDIR")) var logDirectory: String

    func run() throws {
        let keys = try AuditCLI.trustedKeys(key, logDirectory: logDirectory)
        var entry: AuditEntry?
        let wanted = seq
        let (report, leaves) = try AuditCLI.verify(logDirectory, mirrors: mirrors, keys: keys, collectLeaves: true) {
            if $0.seq == wanted { entry = $0 }
        }
        guard [.ok, .unanchored].contains(report.outcome) else {
            throw AuditCLI.fail(report.outcome, "palisade audit prove: the log does not verify: \(report.problem ?? "")")
        }
        guard let entry else { throw AuditCLI.fail(.malformed, "palisade audit prove: the log has no entry \(seq) (it has \(report.entries))") }
        guard let checkpoint = report.latestCheckpoint, seq < checkpoint.checkpoint.size else {
            throw AuditCLI.fail(.unanchored, "palisade audit prove: entry \(seq) is after the last checkpoint (\(report.anchoredSize) entries); try again after the next one")
        }
        let path = MerkleTree.inclusionProof(index: Int(seq), leaves: leaves[..<Int(checkpoint.checkpoint.size)])
        print(InclusionProofDocument(entry: entry, path: path, checkpoint: checkpoint).json.canonicalString)
    }
}

struct AuditCheckProof: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-proof", abstract: "Verify an inclusion proof from 'palisade audit prove'.",
        discussion: """
        Checks the entry's hash, its inclusion path, and the checkpoint's signature. With \
        --checkpoint, the proof is checked against that checkpoint (one you obtained yourself, \
        e.g. from the mirror) instead of the copy inside the proof; it must have the same size.

        Exit codes: 0 valid, 2 usage, 3 malformed, 4 the proof does not hold, 6 bad signature.
        """)

    @Option(help: ArgumentHelp("A trusted verifier key, or a file of them; repeatable.", valueName: "VKEY-or-FILE")) var key: [String] = []
    @Option(help: ArgumentHelp("A signed checkpoint file to check against.", valueName: "FILE")) var checkpoint: String?
    @Argument(help: ArgumentHelp("The proof (JSON), or - for standard input.", valueName: "FILE")) var proof = "-"

    func validate() throws {
        if key.isEmpty { throw ValidationError("give the log's verifier key with --key") }
    }

    func run() throws {
        let keys = try AuditCLI.trustedKeys(key, logDirectory: nil)
        let document: InclusionProofDocument
        do {
            document = try InclusionProofDocument(json: try JSONValue.parse(AuditCLI.readInput(proof).trimmingCharacters(in: .whitespacesAndNewlines), .canonical))
        } catch let error as EvidenceCheck {
            throw AuditCLI.fail(error.outcome, "palisade audit check-proof: \(error.message)")
        } catch let error as JSONParseError {
            throw AuditCLI.fail(.malformed, "palisade audit check-proof: not JSON: \(error)")
        }
        var independent: SignedCheckpoint?
        if let checkpoint {
            do {
                independent = try SignedCheckpoint(parsing: try AuditCLI.readInput(checkpoint))
            } catch let error as NoteError {
                throw AuditCLI.fail(.malformed, "palisade audit check-proof: \(checkpoint): \(error)")
            }
        }
        let result = document.check(trustedKeys: keys, independentCheckpoint: independent)
        guard result.outcome == .ok else { throw AuditCLI.fail(result.outcome, "palisade audit check-proof: \(AuditCLI.label(result.outcome)): \(result.message)") }
        print("palisade audit check-proof: OK: \(result.message)")
    }
}
