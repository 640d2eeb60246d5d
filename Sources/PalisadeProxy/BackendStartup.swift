import NIOCore
import PostgresWire

/// Palisade's own login to the real server: answers its authentication requests with Palisade's
/// credentials and collects what the server reports until it is ready for queries.
struct BackendStartup {
    enum Step {
        case send(ByteBuffer)
        case wait
        case ready(parameters: [(String, String)], processID: Int32, secretKey: Int32)
        case failed(String)
    }

    private let user: String
    private let password: String?
    private var scram: SCRAMClient?
    private var parameters: [(String, String)] = []
    private var key: (Int32, Int32) = (0, 0)

    init(user: String, password: String?) {
        self.user = user
        self.password = password
    }

    mutating func frame(_ frame: Frame) -> Step {
        var body = frame.body
        switch frame.backendType {
        case .authentication:
            guard let code: Int32 = body.readInteger() else { return .failed("malformed authentication request") }
            return authenticationRequest(code, &body)
        case .parameterStatus:
            if let name = body.readCString(), let value = body.readCString() { parameters.append((name, value)) }
            return .wait
        case .backendKeyData:
            guard let processID: Int32 = body.readInteger(), let secretKey: Int32 = body.readInteger() else {
                return .failed("malformed BackendKeyData")
            }
            key = (processID, secretKey)
            return .wait
        case .readyForQuery:
            return .ready(parameters: parameters, processID: key.0, secretKey: key.1)
        case .errorResponse:
            return .failed(ServerNotice(frame.body).description)
        case .noticeResponse, .negotiateProtocolVersion:
            return .wait
        default:
            return .failed("unexpected message '\(frame.typeName)' during login")
        }
    }

    private mutating func authenticationRequest(_ code: Int32, _ body: inout ByteBuffer) -> Step {
        var out = ByteBuffer()
        switch code {
        case 0:
            return .wait
        case 3:
            guard let password else { return .failed("the server asks for a password and none is configured") }
            FrontendEncoder.password(password, into: &out)
        case 5:
            guard let password, let salt = body.readBytes(length: 4) else { return .failed("the server asks for an md5 password and none is configured") }
            FrontendEncoder.password(MD5Password.response(user: user, password: password, salt: salt), into: &out)
        case 10:
            var mechanisms: [String] = []
            while let mechanism = body.readCString(), !mechanism.isEmpty { mechanisms.append(mechanism) }
            guard mechanisms.contains(SCRAMClient.mechanism), let password else {
                return .failed("the server offers SASL \(mechanisms.joined(separator: ", ")); Palisade speaks SCRAM-SHA-256 with a password")
            }
            let client = SCRAMClient(password: password)
            scram = client
            FrontendEncoder.saslInitialResponse(mechanism: SCRAMClient.mechanism, client.clientFirstMessage(), into: &out)
        case 11:
            guard var client = scram else { return .failed("SASL continue without SASL start") }
            do {
                let final = try client.clientFinalMessage(serverFirst: body.readBytes(length: body.readableBytes) ?? [])
                scram = client
                FrontendEncoder.saslResponse(final, into: &out)
            } catch {
                return .failed("\(error)")
            }
        case 12:
            guard let client = scram else { return .failed("SASL final without SASL start") }
            do { try client.verifyServerFinal(body.readBytes(length: body.readableBytes) ?? []) } catch { return .failed("\(error)") }
            return .wait
        default:
            return .failed("the server asks for an authentication method Palisade does not speak (\(code))")
        }
        return .send(out)
    }
}
