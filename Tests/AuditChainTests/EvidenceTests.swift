import Foundation
import Testing
@testable import AuditChain
import Encoding

/// Inclusion proofs and evidence packs, built from a real log the way the CLI builds them.
@Suite struct EvidenceTests {
    struct Built {
        var entries: [AuditEntry]
        var leaves: [AuditHash]
        var report: VerificationReport
    }

    static func load(_ directory: String) throws -> Built {
        let history = try #require(try LogFiles.checkpointHistory(in: directory))
        var verifier = LogVerifier(trustedKeys: [Fixture.key.verifierKey], checkpointSources: [("log", history)])
        verifier.collectLeaves = true
        var entries: [AuditEntry] = []
        verifier.onEntry = { entries.append($0) }
        for segment in try LogFiles.segments(in: directory) {
            verifier.feed(segment: segment.number, bytes: try LogFiles.read(segment.path))
        }
        return Built(entries: entries, leaves: verifier.leaves, report: verifier.finish())
    }

    @Test func proofsHoldForEveryEntryAndBreakWhenAltered() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        try await Fixture.log(in: dir.path, count: 12)
        let built = try Self.load(dir.path)
        let checkpoint = try #require(built.report.latestCheckpoint)
        for entry in built.entries {
            let path = MerkleTree.inclusionProof(index: Int(entry.seq), leaves: built.leaves)
            let document = try InclusionProofDocument(json: try JSONValue.parse(
                InclusionProofDocument(entry: entry, path: path, checkpoint: checkpoint).json.canonicalString, .canonical))
            #expect(document.check(trustedKeys: [Fixture.key.verifierKey]).outcome == .ok)
        }
        let entry = built.entries[5]
        let path = MerkleTree.inclusionProof(index: 5, leaves: built.leaves)
        var altered = entry
        altered.record.tenant = "other"
        #expect(InclusionProofDocument(entry: altered, path: path, checkpoint: checkpoint).check(trustedKeys: [Fixture.key.verifierKey]).outcome == .tampered)
        altered.entryHash = altered.computedHash
        #expect(InclusionProofDocument(entry: altered, path: path, checkpoint: checkpoint).check(trustedKeys: [Fixture.key.verifierKey]).outcome == .tampered)
        #expect(InclusionProofDocument(entry: entry, path: path, checkpoint: checkpoint).check(trustedKeys: [Fixture.otherKey.verifierKey]).outcome == .badSignature)
        let history = try #require(try LogFiles.checkpointHistory(in: dir.path))
        let older = try #require(try CheckpointHistory.parse(history).first?.result.get())
        #expect(InclusionProofDocument(entry: entry, path: path, checkpoint: checkpoint)
            .check(trustedKeys: [Fixture.key.verifierKey], independentCheckpoint: older).outcome == .malformed)
    }

    @Test func anEvidencePackVerifiesAndEveryAlterationIsCaught() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let policy = Array("rules: readonly\n".utf8)
        let version = EvidencePack.policyVersion(of: policy)
        let log = try AuditLog(Fixture.configuration(dir.path))
        for n in 0..<10 {
            var record = Fixture.decision(n, deny: n % 2 == 0)
            record.policyVersion = version
            _ = try await log.append(record)
        }
        log.close()
        let built = try Self.load(dir.path)
        let checkpoint = try #require(built.report.latestCheckpoint)
        let range = Array(built.entries[3...8])
        func pack(_ entries: [AuditEntry], policy content: [UInt8] = policy, key: AuditSigningKey = Fixture.key) throws -> String {
            try EvidencePack.build(
                entries: entries, checkpoint: checkpoint,
                path: MerkleTree.inclusionProof(index: Int(entries.last!.seq), leaves: built.leaves),
                since: entries.first!.timeMicros, until: nil, policies: [version: .init(name: "readonly.yaml", content: content)],
                verification: built.report, signingKey: key, createdMicros: 0)
        }
        let text = try pack(range)
        #expect(text.components(separatedBy: "\n").count == 4)  // one JSON line, blank line, signature, final newline
        let (check, contents) = EvidencePack.check(text, trustedKeys: [Fixture.key.verifierKey])
        #expect(check.outcome == .ok, "\(check.message)")
        #expect(contents?.entries == range)
        #expect(contents?.policies[version]?.content == policy)

        // Edited after signing.
        let edited = text.replacingOccurrences(of: "decision number 4", with: "decision number 5")
        #expect(edited != text)
        #expect(EvidencePack.check(edited, trustedKeys: [Fixture.key.verifierKey]).0.outcome == .badSignature)
        // Re-signed by someone else: fine for itself, not for the real key.
        #expect(EvidencePack.check(try pack(range, key: Fixture.otherKey), trustedKeys: [Fixture.key.verifierKey]).0.outcome == .badSignature)
        // Signed honestly, but the content does not hold together.
        var changed = range
        changed[2].record.decision = changed[2].record.decision == .allow ? .deny : .allow
        #expect(EvidencePack.check(try pack(changed), trustedKeys: [Fixture.key.verifierKey]).0.outcome == .tampered)
        var gap = range
        gap.remove(at: 2)
        #expect(EvidencePack.check(try pack(gap), trustedKeys: [Fixture.key.verifierKey]).0.outcome == .tampered)
        #expect(EvidencePack.check(try pack(range, policy: policy + [0x0A]), trustedKeys: [Fixture.key.verifierKey]).0.outcome == .tampered)
        // Without a key, the pack's own signer is used and a warning says what that means.
        let unkeyed = EvidencePack.check(text, trustedKeys: [])
        #expect(unkeyed.0.outcome == .ok)
        #expect(unkeyed.0.warnings.count == 1)
        #expect(EvidencePack.check("not a pack\n", trustedKeys: []).0.outcome == .malformed)
    }
}
