import Foundation
import JWTKit
import Encoding

/// The signature algorithms Palisade accepts. Deliberately short: each one is bound to one kind
/// of key, so a token can never choose how its own signature is checked.
public enum TokenAlgorithm: String, Sendable, Hashable, CaseIterable, Comparable {
    case hs256 = "HS256"
    case rs256 = "RS256"
    case es256 = "ES256"
    case edDSA = "EdDSA"

    public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }
}

/// A key that verifies tokens for exactly one algorithm.
public struct VerificationKey: Sendable, CustomStringConvertible {
    public let algorithm: TokenAlgorithm
    /// The JWKS `kid`; PEM keys have none and are tried for any token of their algorithm.
    public let keyID: String?
    let material: Material

    enum Material: Sendable {
        case hmac([UInt8])
        case rsa(Insecure.RSA.PublicKey)
        case p256(ES256PublicKey)
        case ed25519(EdDSA.PublicKey)
    }

    /// Never shows secret material: this ends up in logs and startup banners.
    public var description: String {
        algorithm.rawValue + (keyID.map { " key '\($0)'" } ?? " key")
    }

    /// RFC 7518 3.2: an HS256 key shorter than the hash is guessable offline from one token.
    public static let minimumSecretBytes = 32

    public static func hmac(secret: some Collection<UInt8>) throws(KeyLoadingError) -> VerificationKey {
        guard secret.count >= minimumSecretBytes else {
            throw KeyLoadingError(file: nil, problem: "the HS256 secret is \(secret.count) bytes; at least \(minimumSecretBytes) are required (e.g. `openssl rand -base64 48`)")
        }
        return VerificationKey(algorithm: .hs256, keyID: nil, material: .hmac(Array(secret)))
    }

    /// Public keys from PEM text ("BEGIN PUBLIC KEY" for RSA, P-256 and Ed25519, or
    /// "BEGIN RSA PUBLIC KEY") or from a JWKS document, whichever the text holds.
    public static func publicKeys(from text: String) throws(KeyLoadingError) -> [VerificationKey] {
        let keys: [VerificationKey]
        if text.contains("-----BEGIN ") {
            keys = try pemKeys(text)
        } else if text.drop(while: \.isWhitespace).first == "{" {
            keys = try jwksKeys(text)
        } else {
            throw KeyLoadingError(file: nil, problem: "holds neither PEM public keys nor a JWKS document")
        }
        guard !keys.isEmpty else { throw KeyLoadingError(file: nil, problem: "holds no usable public key") }
        return keys
    }

    // MARK: PEM

    private static func pemKeys(_ text: String) throws(KeyLoadingError) -> [VerificationKey] {
        var keys: [VerificationKey] = []
        var rest = Substring(text)
        var number = 0
        while let begin = rest.range(of: "-----BEGIN ") {
            number += 1
            guard let labelEnd = rest[begin.upperBound...].range(of: "-----") else {
                throw KeyLoadingError(file: nil, problem: "PEM block \(number) has a broken BEGIN line")
            }
            let label = String(rest[begin.upperBound..<labelEnd.lowerBound])
            guard let end = rest[labelEnd.upperBound...].range(of: "-----END \(label)-----") else {
                throw KeyLoadingError(file: nil, problem: "PEM block \(number) (\(label)) has no END line")
            }
            let block = String(rest[begin.lowerBound..<end.upperBound])
            let body = rest[labelEnd.upperBound..<end.lowerBound]
            rest = rest[end.upperBound...]
            let what = "PEM block \(number) (\(label))"
            if label.contains("PRIVATE KEY") {
                throw KeyLoadingError(file: nil, problem: "\(what) is a private key; give only the public key (e.g. `openssl pkey -pubout`), the proxy must not be able to sign tokens")
            }
            if label == "CERTIFICATE" {
                throw KeyLoadingError(file: nil, problem: "\(what) is a certificate; extract its public key with `openssl x509 -pubkey -noout`")
            }
            guard label == "PUBLIC KEY" || label == "RSA PUBLIC KEY" else {
                throw KeyLoadingError(file: nil, problem: "\(what) is not a public key")
            }
            guard let der = Base64.decode(String(decoding: body.utf8.filter { ![UInt8(ascii: "="), 0x20, 0x09, 0x0A, 0x0D].contains($0) }, as: UTF8.self), padded: false) else {
                throw KeyLoadingError(file: nil, problem: "\(what) is not valid base64")
            }
            keys.append(try pemKey(block: block, der: der, isPKCS1: label == "RSA PUBLIC KEY", what: what))
        }
        return keys
    }

    // Object identifiers as they appear in DER, enough to tell the key types apart.
    private static let rsaOID: [UInt8] = [0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x01]
    private static let ecOID: [UInt8] = [0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01]
    private static let p256OID: [UInt8] = [0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07]
    private static let ed25519OID: [UInt8] = [0x06, 0x03, 0x2B, 0x65, 0x70]

    private static func pemKey(block: String, der: [UInt8], isPKCS1: Bool, what: String) throws(KeyLoadingError) -> VerificationKey {
        do {
            if isPKCS1 || contains(der, rsaOID) {
                return VerificationKey(algorithm: .rs256, keyID: nil, material: .rsa(try rsaKey { try Insecure.RSA.PublicKey(pem: block) }))
            }
            if contains(der, ecOID) {
                guard contains(der, p256OID) else {
                    throw KeyLoadingError(file: nil, problem: "\(what) is an EC key on a curve other than P-256; only ES256 is supported")
                }
                return VerificationKey(algorithm: .es256, keyID: nil, material: .p256(try ES256PublicKey(pem: block)))
            }
            if contains(der, ed25519OID) {
                return VerificationKey(algorithm: .edDSA, keyID: nil, material: .ed25519(try EdDSA.PublicKey(pem: block)))
            }
        } catch let error as KeyLoadingError {
            throw error
        } catch {
            throw KeyLoadingError(file: nil, problem: "\(what) does not parse: \(error)")
        }
        throw KeyLoadingError(file: nil, problem: "\(what) is not an RSA, P-256 or Ed25519 key")
    }

    private static func rsaKey(_ make: () throws -> Insecure.RSA.PublicKey) throws -> Insecure.RSA.PublicKey {
        do { return try make() } catch {
            // jwt-kit and swift-crypto each refuse keys under 2048 bits, with different errors.
            if "\(error)".contains("keySizeTooSmall") || "\(error)".contains("incorrectParameterSize") {
                throw KeyLoadingError(file: nil, problem: "RSA key is shorter than 2048 bits")
            }
            throw error
        }
    }

    private static func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
        guard haystack.count >= needle.count else { return false }
        return (0...(haystack.count - needle.count)).contains { haystack[$0..<$0 + needle.count].elementsEqual(needle) }
    }

    // MARK: JWKS

    private static func jwksKeys(_ text: String) throws(KeyLoadingError) -> [VerificationKey] {
        let document: JSONValue
        do { document = try JSONValue.parse(text) } catch {
            throw KeyLoadingError(file: nil, problem: "is not valid JSON: \(error.reason)")
        }
        guard case .array(let entries)? = document["keys"] else {
            throw KeyLoadingError(file: nil, problem: "is not a JWKS document (no \"keys\" array)")
        }
        var keys: [VerificationKey] = []
        var skipped: [String] = []
        for (n, entry) in entries.enumerated() {
            guard let jwk = entry.objectValue else { throw KeyLoadingError(file: nil, problem: "key \(n + 1) is not a JSON object") }
            let kid = jwk["kid"]?.stringValue
            let what = "key \(n + 1)" + (kid.map { " ('\($0)')" } ?? "")
            if jwk["d"] != nil {
                throw KeyLoadingError(file: nil, problem: "\(what) holds a private key (member \"d\"); give only public keys, the proxy must not be able to sign tokens")
            }
            // Encryption keys share JWKS documents with signing keys at most providers.
            if let use = jwk["use"]?.stringValue, use != "sig" { skipped.append("\(what): use \(use)"); continue }
            let kty = jwk["kty"]?.stringValue ?? ""
            let alg = jwk["alg"]?.stringValue
            func member(_ name: String) throws(KeyLoadingError) -> String {
                guard let value = jwk[name]?.stringValue, !value.isEmpty else {
                    throw KeyLoadingError(file: nil, problem: "\(what) (\(kty)) has no \"\(name)\"")
                }
                return value
            }
            let algorithm: TokenAlgorithm
            switch kty {
            case "RSA": algorithm = .rs256
            case "EC":
                guard jwk["crv"]?.stringValue == "P-256" else { skipped.append("\(what): curve \(jwk["crv"]?.stringValue ?? "?")"); continue }
                algorithm = .es256
            case "OKP":
                guard jwk["crv"]?.stringValue == "Ed25519" else { skipped.append("\(what): curve \(jwk["crv"]?.stringValue ?? "?")"); continue }
                algorithm = .edDSA
            case "oct":
                throw KeyLoadingError(file: nil, problem: "\(what) is a symmetric (oct) key; an HS256 secret belongs in a secret file, never beside public keys")
            default:
                skipped.append("\(what): key type \(kty.isEmpty ? "missing" : kty)"); continue
            }
            // A key published for another algorithm (RS512, say) must not verify RS256 tokens.
            if let alg, alg != algorithm.rawValue { skipped.append("\(what): alg \(alg)"); continue }
            if let kid, keys.contains(where: { $0.keyID == kid && $0.algorithm == algorithm }) {
                throw KeyLoadingError(file: nil, problem: "\(what) repeats a kid already used by another \(algorithm.rawValue) key")
            }
            let material: Material
            do {
                switch algorithm {
                case .rs256: material = .rsa(try rsaKey { try Insecure.RSA.PublicKey(modulus: try member("n"), exponent: try member("e")) })
                case .es256: material = .p256(try ES256PublicKey(parameters: (x: try member("x"), y: try member("y"))))
                case .edDSA: material = .ed25519(try EdDSA.PublicKey(x: try member("x"), curve: .ed25519))
                case .hs256: continue
                }
            } catch let error as KeyLoadingError {
                throw KeyLoadingError(file: nil, problem: error.problem.hasPrefix(what) ? error.problem : "\(what): \(error.problem)")
            } catch {
                throw KeyLoadingError(file: nil, problem: "\(what) (\(kty)) does not parse: \(error)")
            }
            keys.append(VerificationKey(algorithm: algorithm, keyID: kid, material: material))
        }
        if keys.isEmpty && !skipped.isEmpty {
            throw KeyLoadingError(file: nil, problem: "holds no usable signing key (skipped \(skipped.joined(separator: "; ")))")
        }
        return keys
    }
}

/// Why a key could not be loaded, naming the file so an operator can fix it without guessing.
public struct KeyLoadingError: Error, Sendable, Equatable, CustomStringConvertible {
    public var file: String?
    public var problem: String

    public init(file: String?, problem: String) {
        self.file = file
        self.problem = problem
    }

    public var description: String {
        guard let file else { return problem }
        return "\(file): \(problem)"
    }
}

enum KeyFile {
    /// Key files are small; a bigger one is a wrong path (a log, a disk image), not a key.
    static let maxBytes = 1 << 20

    static func read(_ path: String, kind: String) throws(KeyLoadingError) -> [UInt8] {
        let data: Data
        do {
            let attributes = try FileManager.default.attributesOfItem(atPath: path)
            if let size = attributes[.size] as? NSNumber, size.intValue > maxBytes {
                throw KeyLoadingError(file: path, problem: "\(kind) is \(size.intValue) bytes; a key file is at most \(maxBytes)")
            }
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch let error as KeyLoadingError {
            throw error
        } catch {
            let reason = (error as NSError).localizedDescription
            throw KeyLoadingError(file: path, problem: "cannot read \(kind): \(reason)")
        }
        return Array(data)
    }
}
