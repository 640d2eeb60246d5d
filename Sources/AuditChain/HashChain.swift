import Crypto
import Foundation
import Encoding

/// A SHA-256 value: an entry hash, a Merkle node or a tree root.
public struct AuditHash: Hashable, Sendable, CustomStringConvertible {
    public let bytes: [UInt8]

    public init?(bytes: some Collection<UInt8>) {
        guard bytes.count == 32 else { return nil }
        self.bytes = Array(bytes)
    }

    init(digest: SHA256.Digest) {
        // Not Array(digest): a digest is copied through its iterator, 4k instructions a line (callgrind).
        bytes = digest.withUnsafeBytes { Array($0) }
    }

    public init?(hex: some StringProtocol) {
        guard hex.utf8.count == 64, let decoded = Hex.decode(hex) else { return nil }
        bytes = decoded
    }

    /// The `prev_hash` of the very first entry: there is nothing before it to link to.
    public static let zero = AuditHash(bytes: [UInt8](repeating: 0, count: 32))!

    public var hex: String { Hex.encode(bytes) }
    public var base64: String { Base64.encode(bytes) }
    public var description: String { hex }
}

/// The two RFC 6962 hashes. The entry hash of the chain *is* the Merkle leaf hash, so the chain
/// and the tree commit to the same bytes and one computation serves both.
public enum RFC6962 {
    public static func leafHash(_ data: some Collection<UInt8>) -> AuditHash {
        var hasher = SHA256()
        hasher.update(data: [0x00])
        hasher.update(data: Array(data))
        return AuditHash(digest: hasher.finalize())
    }

    static func leafHash(_ data: UnsafeRawBufferPointer) -> AuditHash {
        var hasher = SHA256()
        hasher.update(data: [0x00])
        hasher.update(bufferPointer: data)
        return AuditHash(digest: hasher.finalize())
    }

    public static func nodeHash(_ left: AuditHash, _ right: AuditHash) -> AuditHash {
        var hasher = SHA256()
        hasher.update(data: [0x01])
        hasher.update(data: left.bytes)
        hasher.update(data: right.bytes)
        return AuditHash(digest: hasher.finalize())
    }

    /// MTH({}) = SHA-256 of nothing.
    public static let emptyRoot = AuditHash(digest: SHA256.hash(data: [UInt8]()))
}

/// Where the chain stands after an entry: what the next entry must carry.
public struct ChainHead: Sendable, Equatable {
    public var nextSeq: UInt64
    public var lastHash: AuditHash

    public static let genesis = ChainHead(nextSeq: 0, lastHash: .zero)
}
