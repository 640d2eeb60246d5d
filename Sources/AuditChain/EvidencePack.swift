import Crypto
import Encoding

/// The result of checking a proof or an evidence pack: the verifier's outcomes, so the CLI maps
/// them to the same exit codes.
public struct EvidenceCheck: Error, Sendable, Equatable {
    public var outcome: VerificationReport.Outcome
    public var message: String
    public var warnings: [String] = []

    static func fail(_ outcome: VerificationReport.Outcome, _ message: String) -> EvidenceCheck {
        EvidenceCheck(outcome: outcome, message: message)
    }
}

func requireString(_ value: JSONValue?, _ name: String) throws(EvidenceCheck) -> String {
    guard let text = value?.stringValue else { throw .fail(.malformed, "\(name) is missing or not a string") }
    return text
}

func requireHashes(_ value: JSONValue?, _ name: String) throws(EvidenceCheck) -> [AuditHash] {
    guard let items = value?.arrayValue else { throw .fail(.malformed, "\(name) is missing or not an array") }
    var hashes: [AuditHash] = []
    for item in items {
        guard let hash = item.stringValue.flatMap({ AuditHash(hex: $0) }) else { throw .fail(.malformed, "\(name) holds a non-hash") }
        hashes.append(hash)
    }
    return hashes
}

func parseCheckpoint(_ text: String) throws(EvidenceCheck) -> SignedCheckpoint {
    do {
        return try SignedCheckpoint(parsing: text)
    } catch {
        throw .fail(.malformed, "checkpoint: \(error)")
    }
}

/// Checks the checkpoint's signature against trusted keys, then that the entry is leaf `seq` of
/// the tree the checkpoint signs.
func checkInclusion(of entry: AuditEntry, path: [AuditHash], in checkpoint: SignedCheckpoint,
                    trustedKeys: [NoteVerifierKey]) -> EvidenceCheck? {
    if checkpoint.note.verifiedSigners(trustedKeys).isEmpty {
        return .fail(.badSignature, "the checkpoint of size \(checkpoint.checkpoint.size) has no valid signature by a trusted key")
    }
    guard entry.computedHash == entry.entryHash else {
        return .fail(.tampered, "entry \(entry.seq): entry_hash does not match the entry's content")
    }
    guard MerkleTree.verifyInclusion(index: entry.seq, size: checkpoint.checkpoint.size, leaf: entry.entryHash,
                                     proof: path, root: checkpoint.checkpoint.rootHash) else {
        return .fail(.tampered, "entry \(entry.seq) is not leaf \(entry.seq) of the tree of size \(checkpoint.checkpoint.size) the checkpoint signs")
    }
    return nil
}

/// `palisade audit prove`: one entry, its RFC 6962 inclusion path, and the checkpoint it leads to.
public struct InclusionProofDocument: Sendable, Equatable {
    public static let format = "palisade-audit-proof/1"
    public var entry: AuditEntry
    public var path: [AuditHash]
    public var checkpoint: SignedCheckpoint

    public init(entry: AuditEntry, path: [AuditHash], checkpoint: SignedCheckpoint) {
        self.entry = entry
        self.path = path
        self.checkpoint = checkpoint
    }

    public var json: JSONValue {
        .object([
            "format": .string(Self.format),
            "origin": .string(checkpoint.checkpoint.origin),
            "leaf_index": .int(Int64(entry.seq)),
            "tree_size": .int(Int64(checkpoint.checkpoint.size)),
            "entry": entry.json,
            "inclusion_path": .array(path.map { .string($0.hex) }),
            "checkpoint": .string(checkpoint.encoded),
        ])
    }

    public init(json: JSONValue) throws(EvidenceCheck) {
        guard json["format"]?.stringValue == Self.format else { throw .fail(.malformed, "not a \(Self.format) document") }
        do {
            entry = try AuditEntry(json: json["entry"] ?? .null)
        } catch {
            throw .fail(.malformed, "entry: \(error)")
        }
        path = try requireHashes(json["inclusion_path"], "inclusion_path")
        checkpoint = try parseCheckpoint(try requireString(json["checkpoint"], "checkpoint"))
        guard json["leaf_index"]?.int64Value == Int64(entry.seq), json["tree_size"]?.int64Value == Int64(checkpoint.checkpoint.size) else {
            throw .fail(.malformed, "leaf_index or tree_size does not match the entry and checkpoint")
        }
    }

    /// `independentCheckpoint`: one the reviewer got elsewhere (the mirror, a witness); it must be
    /// for the same tree size, since an inclusion path is tied to one tree.
    public func check(trustedKeys: [NoteVerifierKey], independentCheckpoint: SignedCheckpoint? = nil) -> EvidenceCheck {
        var against = checkpoint
        if let independentCheckpoint {
            guard independentCheckpoint.checkpoint.size == checkpoint.checkpoint.size else {
                return .fail(.malformed, "the proof is for tree size \(checkpoint.checkpoint.size), the checkpoint given has size \(independentCheckpoint.checkpoint.size)")
            }
            against = independentCheckpoint
        }
        if let failure = checkInclusion(of: entry, path: path, in: against, trustedKeys: trustedKeys) { return failure }
        return EvidenceCheck(outcome: .ok, message: "entry \(entry.seq) is included in the tree of size \(against.checkpoint.size) signed by \(against.note.verifiedSigners(trustedKeys).map(\.encoded).joined(separator: ", "))")
    }
}

/// `palisade audit export`: a range of entries with what proves them, in one signed file. The
/// file is a C2SP signed note whose text is a single canonical JSON line, so `head -1 | jq` reads
/// it and the note's Ed25519 signature covers every byte of it.
public enum EvidencePack {
    public static let format = "palisade-audit-evidence/1"

    public struct PolicyFile: Sendable {
        public var name: String
        public var content: [UInt8]
        public init(name: String, content: [UInt8]) {
            self.name = name
            self.content = content
        }
    }

    /// `entries` must be contiguous and end inside the checkpoint's tree; `path` is the inclusion
    /// path of the last one. The chain links (prev_hash) then commit every earlier entry too.
    public static func build(entries: [AuditEntry], checkpoint: SignedCheckpoint, path: [AuditHash],
                             since: Int64?, until: Int64?, policies: [String: PolicyFile], verification: VerificationReport,
                             signingKey: AuditSigningKey, createdMicros: Int64) throws(NoteError) -> String {
        let document = JSONValue.object([
            "format": .string(format),
            "origin": .string(checkpoint.checkpoint.origin),
            "created": .string(UTCTime.format(createdMicros)),
            "since": since.map { .string(UTCTime.format($0)) } ?? .null,
            "until": until.map { .string(UTCTime.format($0)) } ?? .null,
            "entries": .array(entries.map(\.json)),
            "checkpoint": .string(checkpoint.encoded),
            "inclusion_path": .array(path.map { .string($0.hex) }),
            "policies": .object(JSONObject(policies.mapValues { file in
                .object(["name": .string(file.name), "content_base64": .string(Base64.encode(file.content))])
            })),
            "verification": verification.json,
            "signer": .string(signingKey.verifierKey.encoded),
        ])
        return try SignedNote.sign(document.canonicalString + "\n", with: [signingKey]).encoded
    }

    /// A policy's version as the policy engine computes it: SHA-256 (hex) of the file's bytes.
    public static func policyVersion(of content: [UInt8]) -> String {
        Hex.encode(Array(SHA256.hash(data: content)))
    }

    public struct Contents: Sendable {
        public var entries: [AuditEntry]
        public var checkpoint: SignedCheckpoint
        public var policies: [String: PolicyFile]
        public var verification: JSONValue
        public var signer: NoteVerifierKey
    }

    /// Checks the pack's signature, every entry's hash and link, the inclusion of the last entry
    /// in the signed checkpoint, and every policy file against its version. Without trusted keys,
    /// the key named inside the pack is used, with a warning: it only shows the pack is intact.
    public static func check(_ text: String, trustedKeys: [NoteVerifierKey]) -> (EvidenceCheck, Contents?) {
        do throws(EvidenceCheck) {
            let contents = try parse(text)
            var warnings: [String] = []
            var keys = trustedKeys
            if keys.isEmpty {
                keys = [contents.signer]
                warnings.append("no --key given: trusting the key named inside the pack (\(contents.signer.encoded)); this shows the pack is intact, not who made it")
            }
            let note = try parseNote(text)
            if note.verifiedSigners(keys).isEmpty { throw .fail(.badSignature, "the evidence pack has no valid signature by a trusted key") }
            guard let first = contents.entries.first, let last = contents.entries.last else { throw .fail(.malformed, "the pack has no entries") }
            var previous: AuditEntry?
            for entry in contents.entries {
                if let previous {
                    guard entry.seq == previous.seq + 1 else { throw .fail(.tampered, "entry \(entry.seq) follows \(previous.seq): the range has a gap") }
                    guard entry.prevHash == previous.entryHash else { throw .fail(.tampered, "entry \(entry.seq) does not link to entry \(previous.seq)") }
                }
                guard entry.computedHash == entry.entryHash else { throw .fail(.tampered, "entry \(entry.seq): entry_hash does not match the entry's content") }
                previous = entry
            }
            let path = try requireHashes(try CanonicalJSONDocument.body(text)["inclusion_path"], "inclusion_path")
            if let failure = checkInclusion(of: last, path: path, in: contents.checkpoint, trustedKeys: keys) { throw failure }
            for (version, file) in contents.policies {
                guard policyVersion(of: file.content) == version else {
                    throw .fail(.tampered, "policy file \(file.name) does not hash to its version \(version)")
                }
            }
            let message = "\(contents.entries.count) entries (seq \(first.seq)…\(last.seq)) are intact and included in the tree of size \(contents.checkpoint.checkpoint.size) signed by \(contents.checkpoint.note.verifiedSigners(keys).map(\.name).joined(separator: ", "))"
            return (EvidenceCheck(outcome: .ok, message: message, warnings: warnings), contents)
        } catch {
            return (error, nil)
        }
    }

    static func parseNote(_ text: String) throws(EvidenceCheck) -> SignedNote {
        do {
            return try SignedNote(parsing: text)
        } catch {
            throw .fail(.malformed, "not a signed evidence pack: \(error)")
        }
    }

    public static func parse(_ text: String) throws(EvidenceCheck) -> Contents {
        let json = try CanonicalJSONDocument.body(text)
        guard json["format"]?.stringValue == format else { throw .fail(.malformed, "not a \(format) document") }
        var entries: [AuditEntry] = []
        for item in json["entries"]?.arrayValue ?? [] {
            do {
                entries.append(try AuditEntry(json: item))
            } catch {
                throw .fail(.malformed, "entry: \(error)")
            }
        }
        let checkpoint = try parseCheckpoint(try requireString(json["checkpoint"], "checkpoint"))
        let signerText = try requireString(json["signer"], "signer")
        let signer: NoteVerifierKey
        do {
            signer = try NoteVerifierKey(parsing: signerText)
        } catch {
            throw .fail(.malformed, "signer: \(error)")
        }
        var policies: [String: PolicyFile] = [:]
        if case .object(let members)? = json["policies"] {
            for (version, value) in members.members {
                guard let name = value["name"]?.stringValue, let content = value["content_base64"]?.stringValue.flatMap({ Base64.decode($0) }) else {
                    throw .fail(.malformed, "policy \(version) has no name or content")
                }
                policies[version] = PolicyFile(name: name, content: content)
            }
        }
        return Contents(entries: entries, checkpoint: checkpoint, policies: policies,
                        verification: json["verification"] ?? .null, signer: signer)
    }
}

/// The JSON line that is the text of a signed evidence note.
enum CanonicalJSONDocument {
    static func body(_ text: String) throws(EvidenceCheck) -> JSONValue {
        let note = try EvidencePack.parseNote(text)
        do {
            return try JSONValue.parse(Array(note.text.utf8.dropLast()), .canonical)
        } catch {
            throw .fail(.malformed, "the pack's text is not JSON: \(error)")
        }
    }
}
