// Fuzz target `wire`: the client side of a session as the proxy reads it, from the first byte on.
//
// The input is a sequence of records: one tag byte (even: bytes from the client, odd: bytes from
// the server), a 16-bit big-endian length, then that many bytes (fewer at the end of the input).
// Bytes go through the decoders the proxy's channel handlers use, then the session's phases:
// startup (SSL, GSS and cancel requests), a cleartext password or a SCRAM-SHA-256 exchange (user
// names starting "scram"), then QueryRelay with a real policy engine, fed server responses too.
//
// Invariants: no crash; a decoder that waits for more bytes holds at most one message under its
// limit; a malformed message ends in a thrown WireError, a SCRAM failure, or a FATAL
// ErrorResponse to the client; whatever the relay writes either way is whole protocol frames.
import Foundation
import FuzzSupport
import NIOCore
import PalisadeProxy
import PostgresWire
import QueryPolicy

/// Static rather than top-level: top-level variables belong to the main actor, and libFuzzer calls in from outside it.
enum Fixture {
    /// The smallest limit `palisade serve` accepts (max_message_bytes), so lengths near it are cheap to reach.
    static let maxMessageBytes = 1024
    static let password = "fuzz-secret"
    static let scramUser = "scram"
    static let scramVerifier = SCRAMVerifier(password: password, salt: Array("fuzz-salt".utf8), iterations: 2)
    static let serverNonce = "fuzzservernonce"
    static let clientNonce = "fuzzclientnonce"
    static let claims = #"{"tenant":"fuzz"}"#

    static let engine: PolicyEngine = {
        let path = FuzzDriver.repositoryRoot + "/Policies/readonly.yaml"
        do {
            return PolicyEngine(policy: try Policy.load(path: path))
        } catch {
            fatalError("cannot load \(path): \(error)")
        }
    }()
}

/// As ProxySession answers: a denial is an ErrorResponse with the decision's SQLSTATE. Declared
/// parameter types are checked against the server's pg_type, which the fuzzer has none of.
func decide(_ sql: String, _ kind: QueryRelay.MessageKind, _ parameterTypes: [UInt32]) -> (Decision, ServerNotice?) {
    let decision = kind == .functionCall
        ? Decision(rule: .functionCallMessage, message: "fast-path function call", policyVersion: Fixture.engine.policy.version)
        : Fixture.engine.evaluate(sql)
    guard !decision.isAllowed else { return (decision, nil) }
    return (decision, ServerNotice(sqlstate: decision.sqlstate, message: "Palisade: " + decision.message, hint: decision.hint,
                                   position: decision.position))
}

enum Phase {
    case startup
    case password
    case scram(SCRAMServer, answered: Bool)
    case relaying(QueryRelay)
    /// The session is over: refused, failed, or ended by the client.
    case ended
}

/// Checks that `buffer` is nothing but whole frames, and returns their types.
func frameTypes(_ buffer: ByteBuffer, what: String) -> [UInt8] {
    var buffer = buffer
    var types: [UInt8] = []
    let decoder = FrameDecoder(maxLength: Int(Int32.max))
    do {
        while let frame = try decoder.decode(&buffer) { types.append(frame.type) }
    } catch {
        FuzzDriver.violated("\(what) holds a bad frame: \(error)")
    }
    guard buffer.readableBytes == 0 else { FuzzDriver.violated("\(what) ends with \(buffer.readableBytes) bytes of a partial frame") }
    return types
}

struct Session {
    var phase = Phase.startup
    var fromClient = ByteBuffer()
    var fromServer = ByteBuffer()
    let clientFrames = FrameDecoder(maxLength: Fixture.maxMessageBytes)
    // As BackendFrameDecoder: rows can be large; the server bounds them.
    let serverFrames = FrameDecoder(maxLength: 1 << 30)

    mutating func client(_ bytes: UnsafeRawBufferPointer) {
        fromClient.writeBytes(bytes)
        do {
            while try clientStep() {}
        } catch {
            // A thrown WireError is the clear end the channel handler turns into a closed connection.
            phase = .ended
        }
    }

    /// One message from the client; false when more bytes are needed or the session is over.
    mutating func clientStep() throws(WireError) -> Bool {
        switch phase {
        case .ended:
            return false
        case .startup:
            guard let message = try StartupMessage.decode(&fromClient) else {
                guard fromClient.readableBytes < StartupMessage.maxLength else {
                    FuzzDriver.violated("the startup decoder holds \(fromClient.readableBytes) bytes")
                }
                return false
            }
            switch message {
            case .sslRequest, .gssEncryptionRequest:
                // As ClientMessageDecoder: plaintext sent before a TLS handshake is refused; 'N' is answered otherwise.
                if fromClient.readableBytes > 0 { throw .bytesAfterSSLRequest }
            case .cancel:
                phase = .ended
            case .startup(let major, _, let parameters):
                guard major == 3 else { phase = .ended; return false }
                let user = parameters["user"] ?? ""
                if user.hasPrefix(Fixture.scramUser) {
                    // An unknown user runs the exchange against a made-up verifier, as in the proxy.
                    let exchange = SCRAMServer(verifier: user == Fixture.scramUser ? Fixture.scramVerifier : nil, mockSalt: Array(user.utf8), nonce: Fixture.serverNonce)
                    phase = .scram(exchange, answered: false)
                } else {
                    phase = .password
                }
            }
            return true
        case .password:
            guard let frame = try nextClientFrame() else { return false }
            var body = frame.body
            guard frame.type == UInt8(ascii: "p"), body.readCString() == Fixture.password else { phase = .ended; return false }
            admit()
            return true
        case .scram(var exchange, let answered):
            guard let frame = try nextClientFrame() else { return false }
            guard frame.type == UInt8(ascii: "p") else { phase = .ended; return false }
            let message: [UInt8]
            if answered {
                message = Array(frame.body.readableBytesView)
            } else {
                guard let initial = SCRAMServer.initialResponse(frame.body), initial.mechanism == SCRAMClient.mechanism else {
                    phase = .ended
                    return false
                }
                message = initial.message
            }
            do {
                switch try exchange.respond(to: message) {
                case .challenge:
                    guard !answered else { FuzzDriver.violated("a second SCRAM challenge") }
                    phase = .scram(exchange, answered: true)
                case .authenticated:
                    guard answered else { FuzzDriver.violated("authenticated by a client-first-message") }
                    admit()
                }
            } catch {
                // Every failure ends the exchange: a second attempt on the same exchange must fail too.
                guard (try? exchange.respond(to: message)) == nil else { FuzzDriver.violated("a failed SCRAM exchange went on") }
                phase = .ended
                return false
            }
            return true
        case .relaying(var relay):
            guard let frame = try nextClientFrame() else { return false }
            var output = QueryRelay.Output()
            phase = .ended  // so that the relay is not copied while it changes
            relay.clientFrame(frame, into: &output)
            let toClient = frameTypes(output.toClient, what: "the answer to the client")
            _ = frameTypes(output.toBackend, what: "what is sent to the server")
            if output.close {
                guard frame.type == UInt8(ascii: "X") || toClient.last == UInt8(ascii: "E") else {
                    FuzzDriver.violated("the relay closed the session after '\(frame.typeName)' without an ErrorResponse")
                }
                return false
            }
            phase = .relaying(relay)
            return true
        }
    }

    mutating func nextClientFrame() throws(WireError) -> Frame? {
        guard let frame = try clientFrames.decode(&fromClient) else {
            // Waiting for the rest of a frame: at most its header and a body under the limit.
            guard fromClient.readableBytes <= 5 + Fixture.maxMessageBytes else {
                FuzzDriver.violated("the frame decoder holds \(fromClient.readableBytes) bytes, over the limit of \(Fixture.maxMessageBytes)")
            }
            return nil
        }
        guard frame.body.readableBytes <= Fixture.maxMessageBytes else { FuzzDriver.violated("a frame over the limit was decoded") }
        return frame
    }

    mutating func admit() {
        phase = .relaying(QueryRelay(claims: Fixture.claims, statementTimeoutMilliseconds: 30_000,
                                       budget: ResultBudget(maxRows: 3, maxBytes: 4096), decide: decide))
    }

    mutating func server(_ bytes: UnsafeRawBufferPointer) {
        fromServer.writeBytes(bytes)
        guard case .relaying(var relay) = phase else { return }
        phase = .ended
        do {
            while let frame = try serverFrames.decode(&fromServer) {
                var output = QueryRelay.Output()
                relay.backendFrame(frame, into: &output)
                let toClient = frameTypes(output.toClient, what: "the relayed answer")
                if output.close {
                    guard toClient.last == UInt8(ascii: "E") else { FuzzDriver.violated("the relay closed on a server frame without an ErrorResponse") }
                    return
                }
            }
        } catch {
            return
        }
        phase = .relaying(relay)
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data else { return 0 }
    let input = UnsafeRawBufferPointer(start: data, count: size)
    var session = Session()
    var offset = 0
    while offset + 3 <= input.count {
        let tag = input[offset]
        let length = Int(input[offset + 1]) << 8 | Int(input[offset + 2])
        let start = offset + 3
        let end = min(start + length, input.count)
        let bytes = UnsafeRawBufferPointer(rebasing: input[start..<end])
        if tag & 1 == 0 { session.client(bytes) } else { session.server(bytes) }
        offset = end
    }
    return 0
}

// MARK: - Seeds: whole sessions in the record format

struct Script {
    var bytes: [UInt8] = []

    mutating func record(_ tag: UInt8, _ write: (inout ByteBuffer) -> Void) {
        var buffer = ByteBuffer()
        write(&buffer)
        let body = Array(buffer.readableBytesView)
        bytes += [tag, UInt8(body.count >> 8), UInt8(body.count & 0xFF)] + body
    }

    mutating func client(_ write: (inout ByteBuffer) -> Void) { record(0, write) }
    mutating func server(_ write: (inout ByteBuffer) -> Void) { record(1, write) }

    mutating func startup(user: String) {
        client { FrontendEncoder.startup([("user", user), ("database", "app")], into: &$0) }
    }

    mutating func loggedIn() {
        startup(user: "app")
        client { FrontendEncoder.password(Fixture.password, into: &$0) }
    }

    /// What the server answers to one admitted simple query (claims first, then the query's rows).
    mutating func serverAnswersQuery() {
        server {
            for type in ["1", "2", "C", "1", "2"] as [Unicode.Scalar] { BackendEncoder.bodiless(type, into: &$0) }
            $0.writeFrame("T") { $0.writeInteger(Int16(0)) }
            $0.writeFrame("D") { $0.writeInteger(Int16(0)) }
            $0.writeFrame("C") { $0.writeCString("SELECT 1") }
            BackendEncoder.readyForQuery(.idle, into: &$0)
        }
    }
}

func seeds() -> [[UInt8]] {
    var seeds: [[UInt8]] = []
    func add(_ build: (inout Script) -> Void) {
        var script = Script()
        build(&script)
        seeds.append(script.bytes)
    }
    add { $0.client { $0.writeInteger(Int32(8)); $0.writeInteger(Int32(80_877_103)) }; $0.startup(user: "app") }
    add { $0.client { $0.writeInteger(Int32(8)); $0.writeInteger(Int32(80_877_104)) }; $0.startup(user: "app") }
    add { $0.client { FrontendEncoder.cancel(processID: 42, secretKey: 7, into: &$0) } }
    add { $0.startup(user: "app"); $0.client { FrontendEncoder.password("wrong", into: &$0) } }
    add { script in
        var client = SCRAMClient(password: Fixture.password, nonce: Fixture.clientNonce)
        script.startup(user: Fixture.scramUser)
        script.client { FrontendEncoder.saslInitialResponse(mechanism: SCRAMClient.mechanism, client.clientFirstMessage(), into: &$0) }
        let serverFirst = "r=\(Fixture.clientNonce)\(Fixture.serverNonce),s=\(Data(Fixture.scramVerifier.salt).base64EncodedString()),i=\(Fixture.scramVerifier.iterations)"
        let clientFinal = (try? client.clientFinalMessage(serverFirst: Array(serverFirst.utf8))) ?? []
        script.client { FrontendEncoder.saslResponse(clientFinal, into: &$0) }
        script.client { FrontendEncoder.query("SELECT 1", into: &$0) }
        script.serverAnswersQuery()
    }
    add { script in
        script.startup(user: Fixture.scramUser + "-unknown")
        script.client { FrontendEncoder.saslInitialResponse(mechanism: SCRAMClient.mechanism, Array("n,,n=,r=abc".utf8), into: &$0) }
        script.client { FrontendEncoder.saslResponse(Array("c=biws,r=abc,p=AAAA".utf8), into: &$0) }
    }
    add { script in
        script.loggedIn()
        script.client { FrontendEncoder.query("SELECT id FROM users WHERE id = 1", into: &$0) }
        script.serverAnswersQuery()
        script.client { FrontendEncoder.query("BEGIN", into: &$0) }
        script.client { FrontendEncoder.query("DELETE FROM users", into: &$0) }
        script.client { FrontendEncoder.query("", into: &$0) }
        script.client { FrontendEncoder.terminate(into: &$0) }
    }
    add { script in
        script.loggedIn()
        script.client {
            FrontendEncoder.parse(statement: "s1", query: "SELECT $1::int", into: &$0)
            FrontendEncoder.bind(portal: "p1", statement: "s1", parameters: ["1"], into: &$0)
            FrontendEncoder.describePortal("p1", into: &$0)
            FrontendEncoder.execute(portal: "p1", into: &$0)
            $0.writeFrame("C") { $0.writeInteger(UInt8(ascii: "S")); $0.writeCString("s1") }
            $0.writeFrame("D") { $0.writeInteger(UInt8(ascii: "S")); $0.writeCString("s1") }
            $0.writeFrame("H") { _ in }
            FrontendEncoder.sync(into: &$0)
        }
        script.server {
            for type in ["1", "1", "2", "C", "2"] as [Unicode.Scalar] { BackendEncoder.bodiless(type, into: &$0) }
            $0.writeFrame("T") { $0.writeInteger(Int16(0)) }
            $0.writeFrame("D") { $0.writeInteger(Int16(0)) }
            $0.writeFrame("C") { $0.writeCString("SELECT 1") }
            BackendEncoder.bodiless("3", into: &$0)
            BackendEncoder.error(ServerNotice(sqlstate: "26000", message: "no statement"), into: &$0)
            BackendEncoder.readyForQuery(.idle, into: &$0)
        }
    }
    add { script in
        script.loggedIn()
        script.client {
            FrontendEncoder.parse(statement: "", query: "UPDATE users SET a = 1", into: &$0)
            FrontendEncoder.bind(portal: "", statement: "", parameters: [], into: &$0)
            FrontendEncoder.execute(portal: "", into: &$0)
            FrontendEncoder.sync(into: &$0)
            $0.writeFrame("F") { $0.writeInteger(Int32(1)) }
            $0.writeFrame("d") { $0.writeBytes([1, 2, 3]) }
            $0.writeFrame("c") { _ in }
            $0.writeFrame("f") { $0.writeCString("stop") }
            $0.writeFrame("p") { $0.writeCString("late password") }
        }
    }
    add { script in
        script.loggedIn()
        script.client { $0.writeFrame("Z") { _ in } }
    }
    add { script in
        script.loggedIn()
        script.server { $0.writeFrame("N") { $0.writeCString("notice") }; $0.writeFrame("D") { _ in } }
    }
    add { script in
        script.loggedIn()
        script.client { $0.writeInteger(UInt8(ascii: "Q")); $0.writeInteger(Int32(Fixture.maxMessageBytes + 5)) }
    }
    return seeds
}

FuzzDriver.run(testOneInput, seeds: seeds)
