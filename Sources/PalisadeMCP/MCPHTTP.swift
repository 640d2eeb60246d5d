import Encoding
import Foundation
import MCP
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import TenantIdentity

/// `palisade mcp --mcp-listen HOST:PORT`: MCP's Streamable HTTP at `/mcp`, the way remote agents
/// reach a server. The SDK's `StatefulHTTPServerTransport` speaks the protocol (one per MCP
/// session, by `Mcp-Session-Id`); this serves it on SwiftNIO, and in front of it checks the
/// credential of every request: `Authorization: Bearer` with an API key or a JWT. A request
/// without a valid one gets 401 with a JSON error, and nothing else.
///
/// A session belongs to the credential that opened it, and holds one server connection (opened at
/// its first tool call) and one of its tenant's sessions (`max_sessions_per_tenant`) until the
/// agent ends it (DELETE) or leaves it idle past the idle timeout.
public final class MCPHTTPFrontDoor: Sendable {
    public static let path = "/mcp"
    private let sessions: HTTPSessions
    private let tls: NIOSSLContext?
    private let group: EventLoopGroup
    private let maxBodyBytes: Int

    /// `loopbackOnly`: the listener is on a loopback address, so requests must name it in `Host`
    /// (and a browser's `Origin` must be local): a page elsewhere cannot rebind a name to it.
    public init(firewall: MCPFirewall, group: EventLoopGroup, tls: NIOSSLContext?, idleTimeout: TimeAmount, loopbackOnly: Bool) {
        sessions = HTTPSessions(firewall: firewall, group: group, idleTimeout: idleTimeout, loopbackOnly: loopbackOnly)
        self.tls = tls
        self.group = group
        maxBodyBytes = firewall.maxMessageBytes
    }

    public func start(host: String, port: Int) async throws -> Channel {
        let sessions = self.sessions
        let tls = self.tls
        let maxBodyBytes = self.maxBodyBytes
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.backlog, value: 256)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls { try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls)) }
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(HTTPRequestHandler(sessions: sessions, maxBodyBytes: maxBodyBytes))
                }
            }
            .bind(host: host, port: port).get()
        await sessions.startIdleSweep(on: channel.eventLoop)
        return channel
    }

    /// Ends every session (their server connections and tenant counts).
    public func shutdown() async {
        await sessions.closeAll()
    }
}

/// What the front door answers: the transport's answer, or its own JSON.
enum FrontDoorResponse: Sendable {
    case mcp(HTTPResponse)
    case json(status: Int, body: String, headers: [String: String] = [:])

    /// `{"error":…,"error_description":…}` as RFC 6750 words a bearer refusal, plus Palisade's rule and SQLSTATE.
    static func refusal(status: Int, error: String, description: String, rule: String, sqlstate: String,
                        headers: [String: String] = [:]) -> FrontDoorResponse {
        let body = "{\"error\":\(JSONText.quoted(error)),\"error_description\":\(JSONText.quoted(description))," +
            "\"rule\":\(JSONText.quoted(rule)),\"sqlstate\":\(JSONText.quoted(sqlstate))}"
        return .json(status: status, body: body, headers: headers)
    }
}

actor HTTPSessions {
    private struct Entry {
        let session: MCPToolSession
        let server: Server
        let transport: StatefulHTTPServerTransport
        var lastUsed: NIODeadline
    }

    private let firewall: MCPFirewall
    private let group: EventLoopGroup
    private let idleTimeout: TimeAmount
    private let loopbackOnly: Bool
    private var entries: [String: Entry] = [:]
    private var sweep: RepeatedTask?

    init(firewall: MCPFirewall, group: EventLoopGroup, idleTimeout: TimeAmount, loopbackOnly: Bool) {
        self.firewall = firewall
        self.group = group
        self.idleTimeout = idleTimeout
        self.loopbackOnly = loopbackOnly
    }

    /// The credential of a request: `Authorization: Bearer CREDENTIAL`.
    static func bearer(_ request: HTTPRequest) -> String? {
        guard let value = request.header(HTTPHeaderName.authorization)?.trimmingCharacters(in: .whitespaces),
              value.count > 7, value.prefix(7).lowercased() == "bearer "
        else { return nil }
        let credential = value.dropFirst(7).trimmingCharacters(in: .whitespaces)
        return credential.isEmpty ? nil : credential
    }

    func handle(_ request: HTTPRequest, clientAddress: String) async -> FrontDoorResponse {
        guard request.path == MCPHTTPFrontDoor.path else {
            return .json(status: 404, body: "{\"error\":\"not_found\",\"error_description\":\"MCP is served at \(MCPHTTPFrontDoor.path)\"}")
        }
        guard let credential = Self.bearer(request) else {
            let refusal = CredentialRefusal(rule: .authenticationFailed, message: "no credential: send Authorization: Bearer with an API key or a JWT",
                                            sqlstate: "28000")
            return await refuse(refusal, clientAddress: clientAddress, challenge: "Bearer realm=\"palisade\"")
        }
        let identity: MCPIdentity
        switch firewall.identify(credential) {
        case .failure(let refusal):
            return await refuse(refusal, clientAddress: clientAddress, challenge: "Bearer realm=\"palisade\", error=\"invalid_token\"")
        case .success(let verified):
            identity = verified
        }
        if let sessionID = request.header(HTTPHeaderName.sessionID) {
            // Another credential's session is not found, rather than named as someone else's.
            guard var entry = entries[sessionID], entry.session.identity.credentialID == identity.credentialID else {
                return .mcp(.error(statusCode: 404, .invalidRequest("Not Found: no such MCP session; initialize a new one")))
            }
            entry.lastUsed = .now()
            entries[sessionID] = entry
            let response = await entry.transport.handleRequest(request)
            if request.method.uppercased() == "DELETE", response.statusCode == 200 { await close(sessionID) }
            return .mcp(response)
        }
        guard request.method.uppercased() == "POST", let body = request.body, Self.isInitializeRequest(body) else {
            return .mcp(.error(statusCode: 400, .invalidRequest("Bad Request: send initialize first, then \(HTTPHeaderName.sessionID) with every request")))
        }
        return await open(request, identity: identity, clientAddress: clientAddress)
    }

    /// Whether a POST body is the JSON-RPC `initialize` request that opens a session.
    static func isInitializeRequest(_ body: Data) -> Bool {
        guard let message = try? JSONSerialization.jsonObject(with: body) as? [String: Any] else { return false }
        return message["method"] as? String == "initialize" && message["id"] != nil
    }

    private func refuse(_ refusal: CredentialRefusal, clientAddress: String, challenge: String) async -> FrontDoorResponse {
        do {
            try await firewall.recordRefusal(refusal, transport: .http, clientAddress: clientAddress)
        } catch {
            return FrontDoorResponse.refusal(status: 503, error: "audit_unavailable", description: "Palisade cannot write its audit log; nothing is served",
                                             rule: "audit.unavailable", sqlstate: "58030")
        }
        return FrontDoorResponse.refusal(status: 401, error: "invalid_token", description: refusal.message, rule: refusal.rule.rawValue,
                                         sqlstate: refusal.sqlstate, headers: [HTTPHeaderName.wwwAuthenticate: challenge])
    }

    private struct FixedSessionID: SessionIDGenerator {
        let id: String
        func generateSessionID() -> String { id }
    }

    private func open(_ request: HTTPRequest, identity: MCPIdentity, clientAddress: String) async -> FrontDoorResponse {
        if let sessions = firewall.budgets.sessions, !sessions.open(tenant: identity.tenant) {
            let refusal = sessions.refusal(tenant: identity.tenant)
            return FrontDoorResponse.refusal(status: 429, error: "too_many_sessions", description: refusal.message,
                                             rule: "budget.sessions", sqlstate: refusal.sqlstate)
        }
        let session = MCPToolSession(firewall: firewall, identity: identity, transport: .http, clientAddress: clientAddress, group: group)
        let transport = StatefulHTTPServerTransport(
            sessionIDGenerator: FixedSessionID(id: session.sessionID),
            validationPipeline: StandardValidationPipeline(validators: [
                loopbackOnly ? OriginValidator.localhost() : OriginValidator.disabled,
                AcceptHeaderValidator(mode: .sseRequired),
                ContentTypeValidator(),
                ProtocolVersionValidator(),
                SessionValidator(),
            ]))
        let server = await MCPServerFactory.server(for: session) {
            Server.currentHandlerContext?.httpContext.flatMap(HTTPSessions.bearer)
        }
        do {
            try await server.start(transport: transport)
        } catch {
            firewall.budgets.sessions?.close(tenant: identity.tenant)
            return .mcp(.error(statusCode: 500, .internalError("cannot start the MCP session: \(error)")))
        }
        entries[session.sessionID] = Entry(session: session, server: server, transport: transport, lastUsed: .now())
        let response = await transport.handleRequest(request)
        if case .error = response { await close(session.sessionID) }
        return .mcp(response)
    }

    private func close(_ sessionID: String) async {
        guard let entry = entries.removeValue(forKey: sessionID) else { return }
        await entry.server.stop()
        await entry.session.close()
        firewall.budgets.sessions?.close(tenant: entry.session.identity.tenant)
    }

    func startIdleSweep(on eventLoop: EventLoop) {
        let interval = TimeAmount.seconds(max(1, min(60, idleTimeout.nanoseconds / 1_000_000_000 / 2)))
        sweep = eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { [self] _ in
            Task { await self.closeIdle() }
        }
    }

    private func closeIdle() async {
        let now = NIODeadline.now()
        for (sessionID, entry) in entries where now - entry.lastUsed > idleTimeout {
            await close(sessionID)
        }
    }

    func closeAll() async {
        sweep?.cancel()
        sweep = nil
        for sessionID in Array(entries.keys) { await close(sessionID) }
    }
}

/// Thin NIO adapter: gathers a request, hands it to the sessions, and writes the answer (an SSE
/// stream as its events come).
private final class HTTPRequestHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let sessions: HTTPSessions
    private let maxBodyBytes: Int
    private var head: HTTPRequestHead?
    private var body = ByteBuffer()
    private var tooLarge = false

    init(sessions: HTTPSessions, maxBodyBytes: Int) {
        self.sessions = sessions
        self.maxBodyBytes = maxBodyBytes
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body.clear()
            tooLarge = false
        case .body(var chunk):
            if body.readableBytes + chunk.readableBytes > maxBodyBytes { tooLarge = true } else { body.writeBuffer(&chunk) }
        case .end:
            guard let head else { return }
            self.head = nil
            let writer = ResponseWriter(context: context, version: head.version, keepAlive: head.isKeepAlive)
            if tooLarge {
                return writer.write(.json(status: 413, body: "{\"error\":\"too_large\",\"error_description\":\"the request body is over \(maxBodyBytes) bytes\"}"))
            }
            var headers: [String: String] = [:]
            for (name, value) in head.headers {
                headers[name] = headers[name].map { $0 + ", " + value } ?? value
            }
            let request = HTTPRequest(method: head.method.rawValue, headers: headers,
                                      body: body.readableBytes > 0 ? Data(body.readableBytesView) : nil,
                                      path: String(head.uri.split(separator: "?", maxSplits: 1).first ?? ""))
            body.clear()
            let clientAddress = context.channel.remoteAddress.map { "\($0.ipAddress ?? "?"):\($0.port ?? 0)" } ?? ""
            let sessions = self.sessions
            Task {
                writer.write(await sessions.handle(request, clientAddress: clientAddress))
            }
        }
    }
}

/// Writes one response on the channel's event loop, from any task.
private struct ResponseWriter: Sendable {
    private let context: NIOLoopBound<ChannelHandlerContext>
    private let eventLoop: EventLoop
    private let version: HTTPVersion
    private let keepAlive: Bool

    init(context: ChannelHandlerContext, version: HTTPVersion, keepAlive: Bool) {
        self.context = NIOLoopBound(context, eventLoop: context.eventLoop)
        eventLoop = context.eventLoop
        self.version = version
        self.keepAlive = keepAlive
    }

    func write(_ response: FrontDoorResponse) {
        switch response {
        case .json(let status, let body, let headers):
            send(status: status, headers: headers.merging([HTTPHeaderName.contentType: "application/json"]) { first, _ in first },
                 body: Data(body.utf8), end: true)
        case .mcp(.stream(let stream, let headers)):
            send(status: 200, headers: headers, body: nil, end: false)
            Task {
                do {
                    for try await chunk in stream { sendBody(chunk) }
                } catch {
                    // The stream ended with its session; the response ends here too.
                }
                sendEnd()
            }
        case .mcp(let response):
            send(status: response.statusCode, headers: response.headers, body: response.bodyData, end: true)
        }
    }

    private func send(status: Int, headers: [String: String], body: Data?, end: Bool) {
        let context = self.context
        let version = self.version
        let keepAlive = self.keepAlive
        eventLoop.execute {
            var head = HTTPResponseHead(version: version, status: HTTPResponseStatus(statusCode: status))
            for (name, value) in headers { head.headers.add(name: name, value: value) }
            if let body { head.headers.replaceOrAdd(name: "Content-Length", value: "\(body.count)") }
            if !keepAlive { head.headers.replaceOrAdd(name: "Connection", value: "close") }
            let context = context.value
            context.write(NIOAny(HTTPServerResponsePart.head(head)), promise: nil)
            if let body {
                context.write(NIOAny(HTTPServerResponsePart.body(.byteBuffer(ByteBuffer(bytes: body)))), promise: nil)
            }
            if end { Self.end(context, keepAlive: keepAlive) } else { context.flush() }
        }
    }

    private func sendBody(_ chunk: Data) {
        let context = self.context
        eventLoop.execute {
            context.value.writeAndFlush(NIOAny(HTTPServerResponsePart.body(.byteBuffer(ByteBuffer(bytes: chunk)))), promise: nil)
        }
    }

    private func sendEnd() {
        let context = self.context
        let keepAlive = self.keepAlive
        eventLoop.execute { Self.end(context.value, keepAlive: keepAlive) }
    }

    private static func end(_ context: ChannelHandlerContext, keepAlive: Bool) {
        let written = context.writeAndFlush(NIOAny(HTTPServerResponsePart.end(nil)))
        if !keepAlive {
            let channel = context.channel
            written.whenComplete { _ in channel.close(promise: nil) }
        }
    }
}
