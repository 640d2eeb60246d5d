import Crypto
import Foundation

/// A SHA-256 value: an entry hash, a Merkle node or a tree root.
public struct AuditHash: Hashable, Sendable, CustomStringConvertible {
    public let bytes: [UInt8]

    public init?(bytes: some Collection<UInt8>) {
        guard bytes.count == 32 else { return nil }
        self.bytes = Array(bytes)
    }

    init(digest: SHA256.Digest) {
        bytes = Array(digest)
    }

    public init?(hex: some StringProtocol) {
        guard hex.utf8.count == 64, let decoded = HexCoding.decode(hex) else { return nil }
        bytes = decoded
    }

    /// The `prev_hash` of the very first entry: there is nothing before it to link to.
    public static let zero = AuditHash(bytes: [UInt8](repeating: 0, count: 32))!

    public var hex: String { HexCoding.encode(bytes) }
    public var base64: String { Data(bytes).base64EncodedString() }
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

public enum HexCoding {
    public static func encode(_ bytes: some Collection<UInt8>) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 2)
        append(bytes, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    @inline(__always)
    static func append(_ bytes: some Collection<UInt8>, to out: inout [UInt8]) {
        for byte in bytes {
            out.append(CanonicalJSON.hexDigits[Int(byte >> 4)])
            out.append(CanonicalJSON.hexDigits[Int(byte & 0xF)])
        }
    }

    /// Lowercase only: the log writes lowercase, and accepting uppercase would give one hash two spellings.
    public static func decode(_ text: some StringProtocol) -> [UInt8]? {
        let utf8 = Array(text.utf8)
        guard utf8.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(utf8.count / 2)
        func nibble(_ c: UInt8) -> UInt8? {
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): c - 0x30
            case UInt8(ascii: "a")...UInt8(ascii: "f"): c - 0x61 + 10
            default: nil
            }
        }
        var index = 0
        while index < utf8.count {
            guard let high = nibble(utf8[index]), let low = nibble(utf8[index + 1]) else { return nil }
            out.append(high << 4 | low)
            index += 2
        }
        return out
    }
}

enum Base64 {
    /// Standard alphabet with padding, and only the one canonical spelling of each value.
    static func decode(_ text: some StringProtocol) -> [UInt8]? {
        guard let data = Data(base64Encoded: String(text)) else { return nil }
        guard data.base64EncodedString() == text else { return nil }
        return Array(data)
    }

    static func encode(_ bytes: some Collection<UInt8>) -> String {
        Data(bytes).base64EncodedString()
    }
}

/// Where the chain stands after an entry: what the next entry must carry.
public struct ChainHead: Sendable, Equatable {
    public var nextSeq: UInt64
    public var lastHash: AuditHash

    public static let genesis = ChainHead(nextSeq: 0, lastHash: .zero)
}
