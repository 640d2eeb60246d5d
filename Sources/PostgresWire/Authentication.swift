import Crypto
import Foundation

/// The client side of SCRAM-SHA-256 (RFC 5802, RFC 7677) as PostgreSQL uses it: no channel
/// binding, the user name left empty (the server takes it from the startup message).
public struct SCRAMClient: Sendable {
    public enum Failure: Error, Sendable, CustomStringConvertible {
        case malformedServerMessage(String)
        case serverSignatureMismatch
        case nonceMismatch

        public var description: String {
            switch self {
            case .malformedServerMessage(let message): "malformed SCRAM server message: \(message)"
            case .serverSignatureMismatch: "the server's SCRAM signature is wrong (it does not know the password)"
            case .nonceMismatch: "the server's SCRAM nonce does not extend ours"
            }
        }
    }

    private let password: String
    private let clientNonce: String
    private var clientFirstBare: String { "n=,r=\(clientNonce)" }
    private var expectedServerSignature: [UInt8] = []

    public init(password: String, nonce: String? = nil) {
        self.password = password
        var random = SystemRandomNumberGenerator()
        clientNonce = nonce ?? Data((0..<18).map { _ in UInt8.random(in: 0...255, using: &random) }).base64EncodedString()
    }

    public static let mechanism = "SCRAM-SHA-256"

    public func clientFirstMessage() -> [UInt8] {
        Array("n,,\(clientFirstBare)".utf8)
    }

    public mutating func clientFinalMessage(serverFirst: [UInt8]) throws(Failure) -> [UInt8] {
        let serverFirstText = String(decoding: serverFirst, as: UTF8.self)
        var attributes: [Character: String] = [:]
        for part in serverFirstText.split(separator: ",") where part.count >= 2 {
            attributes[part.first!] = String(part.dropFirst(2))
        }
        guard let nonce = attributes["r"], let saltText = attributes["s"], let salt = Data(base64Encoded: saltText),
              let iterations = attributes["i"].flatMap({ Int($0) }), iterations > 0, iterations <= 1_000_000
        else { throw .malformedServerMessage(serverFirstText) }
        guard nonce.hasPrefix(clientNonce) else { throw .nonceMismatch }

        let saltedPassword = Self.pbkdf2(password: Array(password.utf8), salt: Array(salt), iterations: iterations)
        let clientKey = Self.hmac(saltedPassword, Array("Client Key".utf8))
        let storedKey = Array(SHA256.hash(data: clientKey))
        let withoutProof = "c=biws,r=\(nonce)"
        let authMessage = Array("\(clientFirstBare),\(serverFirstText),\(withoutProof)".utf8)
        let clientSignature = Self.hmac(storedKey, authMessage)
        let proof = zip(clientKey, clientSignature).map { $0 ^ $1 }
        let serverKey = Self.hmac(saltedPassword, Array("Server Key".utf8))
        expectedServerSignature = Self.hmac(serverKey, authMessage)
        return Array("\(withoutProof),p=\(Data(proof).base64EncodedString())".utf8)
    }

    public func verifyServerFinal(_ message: [UInt8]) throws(Failure) {
        let text = String(decoding: message, as: UTF8.self)
        guard text.hasPrefix("v="), let signature = Data(base64Encoded: String(text.dropFirst(2))) else {
            throw .malformedServerMessage(text)
        }
        guard Array(signature) == expectedServerSignature else { throw .serverSignatureMismatch }
    }

    static func hmac(_ key: [UInt8], _ message: [UInt8]) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: key)))
    }

    /// PBKDF2-HMAC-SHA-256 with a 32-byte output (one block), as SCRAM-SHA-256 needs.
    static func pbkdf2(password: [UInt8], salt: [UInt8], iterations: Int) -> [UInt8] {
        let key = SymmetricKey(data: password)
        var block = Array(HMAC<SHA256>.authenticationCode(for: salt + [0, 0, 0, 1], using: key))
        var result = block
        for _ in 1..<iterations {
            block = Array(HMAC<SHA256>.authenticationCode(for: block, using: key))
            for index in 0..<result.count { result[index] ^= block[index] }
        }
        return result
    }
}

/// PostgreSQL's md5 password exchange: "md5" + md5(md5(password + user) + salt).
public enum MD5Password {
    public static func response(user: String, password: String, salt: [UInt8]) -> String {
        func hex(_ bytes: some Sequence<UInt8>) -> String { bytes.map { String(format: "%02x", $0) }.joined() }
        let inner = hex(Insecure.MD5.hash(data: Array((password + user).utf8)))
        return "md5" + hex(Insecure.MD5.hash(data: Array(inner.utf8) + salt))
    }
}
