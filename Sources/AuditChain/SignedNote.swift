import Crypto
import Foundation
import Encoding

/// C2SP signed-note (https://c2sp.org/signed-note), Ed25519 only: the format Go's sumdb/note and
/// every transparency-log tool reads, so checkpoints can be checked without Palisade.
public struct NoteError: Error, Sendable, Equatable, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}

/// Ed25519's algorithm byte in key hashes and encoded keys.
let ed25519Algorithm: UInt8 = 0x01

func isValidKeyName(_ name: String) -> Bool {
    !name.isEmpty && !name.unicodeScalars.contains { $0 == "+" || $0.properties.isWhitespace || $0.value < 0x20 }
}

/// key hash = first 4 bytes of SHA-256(name ‖ "\n" ‖ 0x01 ‖ public key), big-endian.
func noteKeyHash(name: String, publicKey: [UInt8]) -> UInt32 {
    var hasher = SHA256()
    hasher.update(data: Array(name.utf8) + [0x0A, ed25519Algorithm] + publicKey)
    return Array(hasher.finalize()).prefix(4).reduce(0) { $0 << 8 | UInt32($1) }
}

func hex8(_ value: UInt32) -> String {
    let hex = String(value, radix: 16)
    return String(repeating: "0", count: 8 - hex.count) + hex
}

/// A verifier key, `<name>+<hex key hash>+<base64(0x01 ‖ public key)>`: what reviewers are given.
public struct NoteVerifierKey: Sendable, Hashable, CustomStringConvertible {
    public let name: String
    public let keyHash: UInt32
    public let publicKey: [UInt8]

    public init(name: String, publicKey: [UInt8]) throws(NoteError) {
        guard isValidKeyName(name) else { throw NoteError("key name \"\(name)\" is empty or has spaces or '+'") }
        guard publicKey.count == 32 else { throw NoteError("an Ed25519 public key is 32 bytes") }
        self.name = name
        self.publicKey = publicKey
        keyHash = noteKeyHash(name: name, publicKey: publicKey)
    }

    public init(parsing text: String) throws(NoteError) {
        let parts = text.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "+", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, parts[1].utf8.count == 8, let hashBytes = Hex.decode(parts[1]),
              let key = Base64.decode(parts[2]), key.count == 33
        else { throw NoteError("not a verifier key <name>+<8 hex digits>+<base64 key>") }
        guard key[0] == ed25519Algorithm else { throw NoteError("verifier key is not an Ed25519 key (algorithm \(key[0]))") }
        try self.init(name: String(parts[0]), publicKey: Array(key[1...]))
        guard hashBytes.reduce(0, { $0 << 8 | UInt32($1) }) == keyHash else {
            throw NoteError("verifier key hash \(parts[1]) does not match its name and key")
        }
    }

    public var encoded: String {
        "\(name)+\(hex8(keyHash))+\(Base64.encode([ed25519Algorithm] + publicKey))"
    }

    public var description: String { encoded }

    public func isValidSignature(_ signature: [UInt8], for text: [UInt8]) -> Bool {
        guard let key = try? Curve25519.Signing.PublicKey(rawRepresentation: publicKey) else { return false }
        return key.isValidSignature(signature, for: text)
    }
}

/// The audit signing key, stored as Go's note signer key `PRIVATE+KEY+<name>+<hash>+<base64(0x01 ‖ seed)>`.
public struct AuditSigningKey: Sendable {
    public let name: String
    private let key: Curve25519.Signing.PrivateKey
    public let verifierKey: NoteVerifierKey

    public init(name: String, seed: [UInt8]) throws(NoteError) {
        guard seed.count == 32 else { throw NoteError("an Ed25519 seed is 32 bytes") }
        let key: Curve25519.Signing.PrivateKey
        do {
            key = try Curve25519.Signing.PrivateKey(rawRepresentation: seed)
        } catch {
            throw NoteError("bad Ed25519 seed: \(error)")
        }
        self.name = name
        self.key = key
        verifierKey = try NoteVerifierKey(name: name, publicKey: Array(key.publicKey.rawRepresentation))
    }

    public static func generate(name: String) throws(NoteError) -> AuditSigningKey {
        try AuditSigningKey(name: name, seed: Array(Curve25519.Signing.PrivateKey().rawRepresentation))
    }

    public init(parsing text: String) throws(NoteError) {
        let parts = text.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "+", maxSplits: 4, omittingEmptySubsequences: false)
        guard parts.count == 5, parts[0] == "PRIVATE", parts[1] == "KEY", parts[3].utf8.count == 8,
              let hashBytes = Hex.decode(parts[3]), let seed = Base64.decode(parts[4]), seed.count == 33
        else { throw NoteError("not a signing key PRIVATE+KEY+<name>+<8 hex digits>+<base64 seed>") }
        guard seed[0] == ed25519Algorithm else { throw NoteError("signing key is not an Ed25519 key") }
        try self.init(name: String(parts[2]), seed: Array(seed[1...]))
        guard hashBytes.reduce(0, { $0 << 8 | UInt32($1) }) == verifierKey.keyHash else {
            throw NoteError("signing key hash \(parts[3]) does not match its name and key")
        }
    }

    public var encoded: String {
        "PRIVATE+KEY+\(name)+\(hex8(verifierKey.keyHash))+\(Base64.encode([ed25519Algorithm] + Array(key.rawRepresentation)))"
    }

    public func signature(for text: [UInt8]) -> [UInt8] {
        // Ed25519 signing only fails on a broken key object, which init already ruled out.
        Array(try! key.signature(for: text))
    }
}

public struct NoteSignature: Sendable, Equatable {
    public var name: String
    public var keyHash: UInt32
    public var signature: [UInt8]
}

public struct SignedNote: Sendable, Equatable {
    /// The signed text, ending in a newline.
    public var text: String
    public var signatures: [NoteSignature]

    static let dash = "\u{2014} "
    static let maxSignatures = 100

    /// Blank lines would make the text/signature boundary ambiguous to readers that split at the
    /// first blank line, and control characters have no place in a human-readable note.
    static func validateText(_ text: String) throws(NoteError) {
        guard text.hasSuffix("\n") else { throw NoteError("note text must end with a newline") }
        guard !text.hasPrefix("\n"), !text.contains("\n\n") else { throw NoteError("note text must not contain a blank line") }
        guard !text.unicodeScalars.contains(where: { $0.value < 0x20 && $0 != "\n" }) else {
            throw NoteError("note text must not contain control characters")
        }
    }

    public static func sign(_ text: String, with keys: [AuditSigningKey]) throws(NoteError) -> SignedNote {
        try validateText(text)
        let bytes = Array(text.utf8)
        return SignedNote(text: text, signatures: keys.map {
            NoteSignature(name: $0.name, keyHash: $0.verifierKey.keyHash, signature: $0.signature(for: bytes))
        })
    }

    public var encoded: String {
        var out = text + "\n"
        for signature in signatures {
            let blob = withUnsafeBytes(of: signature.keyHash.bigEndian) { Array($0) } + signature.signature
            out += Self.dash + signature.name + " " + Base64.encode(blob) + "\n"
        }
        return out
    }

    public init(text: String, signatures: [NoteSignature]) {
        self.text = text
        self.signatures = signatures
    }

    /// Splits at the last blank line, as Go's note.Open does (`bytes.LastIndex(msg, "\n\n")`, on
    /// bytes: a `\r\n` is no line break here); checks the syntax, not the signatures.
    public init(parsing message: String) throws(NoteError) {
        let bytes = Array(message.utf8)
        let newline = UInt8(ascii: "\n")
        guard let split = bytes.indices.dropLast().last(where: { bytes[$0] == newline && bytes[$0 + 1] == newline }) else {
            throw NoteError("no blank line between the note text and its signatures")
        }
        let text = String(decoding: bytes[...split], as: UTF8.self)
        let block = bytes[(split + 2)...]
        guard block.last == newline else { throw NoteError("signature block must end with a newline") }
        var signatures: [NoteSignature] = []
        for line in block.dropLast().split(separator: newline, omittingEmptySubsequences: false) {
            signatures.append(try Self.parseSignatureLine(Substring(String(decoding: line, as: UTF8.self))))
        }
        guard !signatures.isEmpty else { throw NoteError("note has no signatures") }
        guard signatures.count <= Self.maxSignatures else { throw NoteError("note has too many signatures") }
        try Self.validateText(text)
        self.init(text: text, signatures: signatures)
    }

    static func parseSignatureLine(_ line: Substring) throws(NoteError) -> NoteSignature {
        guard line.hasPrefix(dash) else { throw NoteError("signature line does not start with \"— \"") }
        let fields = line.dropFirst(dash.count).split(separator: " ", omittingEmptySubsequences: false)
        guard fields.count == 2, isValidKeyName(String(fields[0])), let blob = Base64.decode(fields[1]), blob.count > 4
        else { throw NoteError("malformed signature line") }
        return NoteSignature(name: String(fields[0]), keyHash: blob.prefix(4).reduce(0) { $0 << 8 | UInt32($1) },
                             signature: Array(blob.dropFirst(4)))
    }

    /// The keys among `keys` with a valid signature on this note. Signatures by other keys are
    /// ignored, as the spec says: a note may carry cosignatures this reader does not know.
    public func verifiedSigners(_ keys: [NoteVerifierKey]) -> [NoteVerifierKey] {
        let bytes = Array(text.utf8)
        return keys.filter { key in
            signatures.contains { $0.name == key.name && $0.keyHash == key.keyHash && key.isValidSignature($0.signature, for: bytes) }
        }
    }
}
