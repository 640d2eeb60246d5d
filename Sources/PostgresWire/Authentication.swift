import Crypto
import Foundation
import NIOCore
import Locking
import Encoding

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
        clientNonce = nonce ?? Data(Self.randomBytes(18)).base64EncodedString()
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

        let (clientKey, storedKey, serverKey) = Self.cachedKeys(password: password, salt: Array(salt), iterations: iterations)
        let withoutProof = "c=biws,r=\(nonce)"
        let authMessage = Array("\(clientFirstBare),\(serverFirstText),\(withoutProof)".utf8)
        let clientSignature = Self.hmac(storedKey, authMessage)
        let proof = zip(clientKey, clientSignature).map { $0 ^ $1 }
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

    private struct KeyInputs: Hashable {
        var password: String
        var salt: [UInt8]
        var iterations: Int
    }

    /// The server keeps one salt per role until its password changes, so every login of Palisade's
    /// role derives the same keys: 4096 HMAC rounds, 1.3 s of a debug build's CPU per session on a
    /// loaded CI machine (seen with strace between the server's challenge and the answer). They are
    /// derived once per password, salt and iteration count, and kept for a few such inputs.
    private static let derivedKeys = Locked<[KeyInputs: (client: [UInt8], stored: [UInt8], server: [UInt8])]>([:])

    static func cachedKeys(password: String, salt: [UInt8], iterations: Int) -> (client: [UInt8], stored: [UInt8], server: [UInt8]) {
        let inputs = KeyInputs(password: password, salt: salt, iterations: iterations)
        if let keys = derivedKeys.withLock({ $0[inputs] }) { return keys }
        let keys = keys(password: password, salt: salt, iterations: iterations)
        derivedKeys.withLock { cache in
            if cache.count >= 16 { cache.removeAll() }
            cache[inputs] = keys
        }
        return keys
    }

    /// RFC 5802's keys for a password: ClientKey (the proof's), StoredKey and ServerKey (a verifier's).
    static func keys(password: String, salt: [UInt8], iterations: Int) -> (client: [UInt8], stored: [UInt8], server: [UInt8]) {
        let salted = pbkdf2(password: Array(password.utf8), salt: salt, iterations: iterations)
        let clientKey = hmac(salted, Array("Client Key".utf8))
        return (clientKey, Array(SHA256.hash(data: clientKey)), hmac(salted, Array("Server Key".utf8)))
    }

    static func randomBytes(_ count: Int) -> [UInt8] {
        var random = SystemRandomNumberGenerator()
        return (0..<count).map { _ in UInt8.random(in: 0...255, using: &random) }
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
        let inner = Hex.encode(Insecure.MD5.hash(data: Array((password + user).utf8)))
        return "md5" + Hex.encode(Insecure.MD5.hash(data: Array(inner.utf8) + salt))
    }
}

/// A SCRAM-SHA-256 verifier as PostgreSQL stores one in pg_authid:
/// `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>` (base64). It lets a server check a
/// password without holding it or anything a client could log in with.
public struct SCRAMVerifier: Sendable, Equatable {
    public var iterations: Int
    public var salt: [UInt8]
    public var storedKey: [UInt8]
    public var serverKey: [UInt8]

    /// PostgreSQL's scram_iterations default, which Palisade's keys are made with.
    public static let defaultIterations = 4096

    public init(password: String, salt: [UInt8]? = nil, iterations: Int = defaultIterations) {
        let salt = salt ?? SCRAMClient.randomBytes(16)
        let keys = SCRAMClient.keys(password: password, salt: salt, iterations: iterations)
        self.iterations = iterations
        self.salt = salt
        storedKey = keys.stored
        serverKey = keys.server
    }

    public init(iterations: Int, salt: [UInt8], storedKey: [UInt8], serverKey: [UInt8]) {
        self.iterations = iterations
        self.salt = salt
        self.storedKey = storedKey
        self.serverKey = serverKey
    }

    public init?(encoded: String) {
        let parts = encoded.split(separator: "$", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == "SCRAM-SHA-256" else { return nil }
        let parameters = parts[1].split(separator: ":", omittingEmptySubsequences: false)
        let keys = parts[2].split(separator: ":", omittingEmptySubsequences: false)
        guard parameters.count == 2, keys.count == 2, let iterations = Int(parameters[0]), (1...10_000_000).contains(iterations),
              let salt = Data(base64Encoded: String(parameters[1])), !salt.isEmpty,
              let storedKey = Data(base64Encoded: String(keys[0])), storedKey.count == 32,
              let serverKey = Data(base64Encoded: String(keys[1])), serverKey.count == 32
        else { return nil }
        self.iterations = iterations
        self.salt = Array(salt)
        self.storedKey = Array(storedKey)
        self.serverKey = Array(serverKey)
    }

    public var encoded: String {
        "SCRAM-SHA-256$\(iterations):\(Data(salt).base64EncodedString())$\(Data(storedKey).base64EncodedString()):\(Data(serverKey).base64EncodedString())"
    }
}

/// The server side of SCRAM-SHA-256 as PostgreSQL runs it: no channel binding (only
/// `SCRAM-SHA-256` is offered, never `-PLUS`), the user name taken from the startup message.
/// A value that consumes the client's two messages and returns what to answer.
public struct SCRAMServer: Sendable {
    public enum Failure: Error, Sendable, Equatable, CustomStringConvertible {
        case malformed(String)
        case unsupported(String)
        /// The proof does not match: a wrong password, or a user without a verifier.
        case wrongProof

        public var description: String {
            switch self {
            case .malformed(let what): "malformed SCRAM message: \(what)"
            case .unsupported(let what): "unsupported SCRAM option: \(what)"
            case .wrongProof: "password authentication failed"
            }
        }
    }

    public enum Answer: Sendable, Equatable {
        /// The server-first message: send as AuthenticationSASLContinue and wait for the client's proof.
        case challenge([UInt8])
        /// The server-final message: send as AuthenticationSASLFinal; the client is authenticated.
        case authenticated([UInt8])
    }

    private enum Phase: Sendable {
        case awaitingClientFirst
        case awaitingClientFinal(clientFirstBare: String, serverFirst: String, nonce: String, gs2Header: String)
        case done
    }

    private let verifier: SCRAMVerifier
    /// An unknown user runs the same exchange against a made-up verifier and fails only at the
    /// proof, as PostgreSQL does, so the answers do not tell which users exist.
    private let isMock: Bool
    private let serverNonce: String
    private var phase = Phase.awaitingClientFirst

    /// `verifier` nil means the user is unknown; `mockSalt` is then the salt to show (the same for
    /// the same user every time, so a probe cannot tell a made-up user from a real one).
    public init(verifier: SCRAMVerifier?, mockSalt: [UInt8], nonce: String? = nil) {
        isMock = verifier == nil
        // Random keys, not a derived password: an unknown user must cost no PBKDF2 either.
        self.verifier = verifier ?? SCRAMVerifier(iterations: SCRAMVerifier.defaultIterations, salt: mockSalt,
                                                  storedKey: SCRAMClient.randomBytes(32), serverKey: SCRAMClient.randomBytes(32))
        serverNonce = nonce ?? Data(SCRAMClient.randomBytes(18)).base64EncodedString()
    }

    /// The mechanism and client-first-message of a SASLInitialResponse ('p') body.
    public static func initialResponse(_ body: ByteBuffer) -> (mechanism: String, message: [UInt8])? {
        var body = body
        guard let mechanism = body.readCString(), let length: Int32 = body.readInteger(), length >= 0,
              let message = body.readBytes(length: Int(length)), body.readableBytes == 0 else { return nil }
        return (mechanism, message)
    }

    public mutating func respond(to message: [UInt8]) throws(Failure) -> Answer {
        let current = phase
        // Any failure ends the exchange; only the challenge moves it on.
        phase = .done
        guard let text = String(validating: message, as: UTF8.self) else { throw .malformed("not UTF-8") }
        switch current {
        case .awaitingClientFirst:
            // gs2-header: "n,," (no channel binding) or "y,," (client could, thinks we cannot); no authzid.
            let gs2Header: String
            if text.hasPrefix("n,,") || text.hasPrefix("y,,") {
                gs2Header = String(text.prefix(3))
            } else if text.hasPrefix("p=") {
                throw .unsupported("channel binding (SCRAM-SHA-256-PLUS is not offered)")
            } else {
                throw .malformed("client-first-message must start with n,, or y,,")
            }
            let bare = String(text.dropFirst(3))
            let attributes = bare.split(separator: ",", omittingEmptySubsequences: false)
            guard attributes.count >= 2, attributes[0].hasPrefix("n="), attributes[1].hasPrefix("r="),
                  attributes[1].count > 2 else { throw .malformed("client-first-message needs n= and r=") }
            if attributes.count > 2 { throw .unsupported("extensions in client-first-message") }
            let clientNonce = attributes[1].dropFirst(2)
            guard clientNonce.utf8.allSatisfy({ $0 >= 0x21 && $0 <= 0x7E && $0 != UInt8(ascii: ",") }) else {
                throw .malformed("nonce must be printable")
            }
            let nonce = clientNonce + serverNonce
            let serverFirst = "r=\(nonce),s=\(Data(verifier.salt).base64EncodedString()),i=\(verifier.iterations)"
            phase = .awaitingClientFinal(clientFirstBare: bare, serverFirst: serverFirst, nonce: String(nonce), gs2Header: gs2Header)
            return .challenge(Array(serverFirst.utf8))
        case .awaitingClientFinal(let clientFirstBare, let serverFirst, let nonce, let gs2Header):
            guard let proofStart = text.range(of: ",p=", options: .backwards) else { throw .malformed("client-final-message has no proof") }
            let withoutProof = String(text[..<proofStart.lowerBound])
            let attributes = withoutProof.split(separator: ",", omittingEmptySubsequences: false)
            guard attributes.count == 2, attributes[0] == "c=" + Data(gs2Header.utf8).base64EncodedString() else {
                throw .malformed("channel-binding data must repeat the gs2 header")
            }
            guard attributes[1] == "r=" + nonce else { throw .malformed("nonce does not match") }
            guard let proof = Data(base64Encoded: String(text[proofStart.upperBound...])), proof.count == 32 else {
                throw .malformed("proof must be 32 bytes of base64")
            }
            let authMessage = Array("\(clientFirstBare),\(serverFirst),\(withoutProof)".utf8)
            let clientSignature = SCRAMClient.hmac(verifier.storedKey, authMessage)
            let clientKey = zip(proof, clientSignature).map { $0 ^ $1 }
            let candidate = Array(SHA256.hash(data: clientKey))
            var difference: UInt8 = isMock ? 1 : 0
            for index in 0..<32 { difference |= candidate[index] ^ verifier.storedKey[index] }
            guard difference == 0 else { throw .wrongProof }
            let serverSignature = SCRAMClient.hmac(verifier.serverKey, authMessage)
            return .authenticated(Array("v=\(Data(serverSignature).base64EncodedString())".utf8))
        case .done:
            throw .malformed("the exchange is over")
        }
    }
}
