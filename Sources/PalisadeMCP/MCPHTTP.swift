import Encoding
import Foundation
import Locking
import MCP
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import QueryPolicy
import TenantIdentity

/// `palisade mcp --mcp-listen HOST:PORT`: MCP's Streamable HTTP at `/mcp`, the way remote agents
/// reach a server. The SDK's `StatefulHTTPServerTransport` speaks the protocol (one per MCP
/// session, by `Mcp-Session-Id`); this serves it on SwiftNIO, and in front of it checks the
/// credential of every request: `Authorization: Bearer` with an API key or a JWT. A request
/// without a valid one gets 401 with a JSON error, and nothing else.
///
/// The credential is checked on the request's head, before any of its body is kept: the sixteenth red team
/// held 1 MiB per anonymous connection (300 connections, 56 MB -> 384 MB) while Palisade waited
/// for bodies it was going to refuse. A request has `requestTimeout` to arrive whole, and at most
/// `maxConnections` connections are held (20,000 half-sent heads had used up the process's file
/// descriptors); the next ones are answered 503 and closed.
///
/// A session belongs to the verified identity that opened it (tenant, profile, credential and
/// claims), and holds one server connection (opened at its first tool call) and one of its
/// tenant's sessions (`max_sessions_per_tenant`) until the agent ends it (DELETE) or leaves it idle
/// past the idle timeout.
public final class MCPHTTPFrontDoor: Sendable {
    public static let path = "/mcp"
    /// The request line and headers a client may send: a JWT of a few KB fits; NIO's default is 80 KB
    /// per connection before anything is checked.
    static let maxHeadBytes = 16 * 1024
    /// Connections over the limit being told so at once; the rest are closed without a word, as
    /// `palisade serve` does (`ProxyServer.maxLingeringRefusals`).
    static let maxLingeringRefusals = 128
    private let sessions: HTTPSessions
    private let tls: NIOSSLContext?
    private let group: EventLoopGroup
    private let limits: HTTPLimits
    /// Connections held, and those over the limit being answered 503.
    private let connections = Locked((open: 0, lingering: 0))

    /// `loopbackOnly`: the listener is on a loopback address, so requests must name it in `Host`
    /// (and a browser's `Origin` must be local): a page elsewhere cannot rebind a name to it.
    public init(firewall: MCPFirewall, group: EventLoopGroup, tls: NIOSSLContext?, idleTimeout: TimeAmount, loopbackOnly: Bool) {
        sessions = HTTPSessions(firewall: firewall, group: group, idleTimeout: idleTimeout, loopbackOnly: loopbackOnly)
        self.tls = tls
        self.group = group
        limits = HTTPLimits(maxBodyBytes: firewall.maxMessageBytes, maxConnections: firewall.maxConnections,
                            requestTimeout: firewall.requestTimeout, refusalLinger: firewall.refusalLinger)
    }

    public func start(host: String, port: Int) async throws -> Channel {
        let sessions = self.sessions
        let tls = self.tls
        let limits = self.limits
        let connections = self.connections
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.backlog, value: 256)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let admitted = connections.withLock { counts in
                        guard counts.open < limits.maxConnections else { return false }
                        counts.open += 1
                        return true
                    }
                    if admitted {
                        channel.closeFuture.whenComplete { _ in connections.withLock { $0.open -= 1 } }
                    } else {
                        let lingering = connections.withLock { counts in
                            guard counts.lingering < Self.maxLingeringRefusals else { return false }
                            counts.lingering += 1
                            return true
                        }
                        guard lingering else { throw TooManyConnections() }
                        channel.closeFuture.whenComplete { _ in connections.withLock { $0.lingering -= 1 } }
                    }
                    if let tls { try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls)) }
                    guard admitted else {
                        return try channel.pipeline.syncOperations.addHandler(OverCapacityHandler(limits: limits))
                    }
                    var decoderLimits = NIOHTTPDecoderLimitConfiguration()
                    decoderLimits.maxHeaderFieldSize = Self.maxHeadBytes
                    decoderLimits.maxHeaderListSize = Self.maxHeadBytes
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withEncoderConfiguration: .init(),
                                                                                    withDecoderLimitConfiguration: decoderLimits)
                    try channel.pipeline.syncOperations.addHandler(HTTPRequestHandler(sessions: sessions, limits: limits))
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

/// A connection over the limit while as many 503s as allowed are still being delivered: NIO closes it at once.
private struct TooManyConnections: Error {}

struct HTTPLimits: Sendable {
    var maxBodyBytes: Int
    var maxConnections: Int
    var requestTimeout: TimeAmount
    var refusalLinger: TimeAmount
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
    nonisolated static func bearer(_ request: HTTPRequest) -> String? {
        guard let value = request.header(HTTPHeaderName.authorization)?.trimmingCharacters(in: .whitespaces),
              value.count > 7, value.prefix(7).lowercased() == "bearer "
        else { return nil }
        let credential = value.dropFirst(7).trimmingCharacters(in: .whitespaces)
        return credential.isEmpty ? nil : credential
    }

    /// What a request's head decides, before any of its body is read.
    enum HeadAdmission {
        /// Read the body (up to the largest message), then `handle` the request.
        case admitted(MCPIdentity)
        /// Answered from the head; the body is dropped as it comes.
        case answered(FrontDoorResponse)
        /// 401, once `refuse` has recorded it.
        case refused(CredentialRefusal, challenge: String)
    }

    /// The path and the credential decide, from the head alone; then a declared body over
    /// `maxBodyBytes` is refused before it is sent. Only a verified credential's body is kept.
    nonisolated static func admission(of head: HTTPRequest, contentLength: Int?, maxBodyBytes: Int,
                                      identify: (String) -> Result<MCPIdentity, CredentialRefusal>) -> HeadAdmission {
        guard head.path == MCPHTTPFrontDoor.path else {
            return .answered(.json(status: 404, body: "{\"error\":\"not_found\",\"error_description\":\"MCP is served at \(MCPHTTPFrontDoor.path)\"}"))
        }
        guard let credential = bearer(head) else {
            return .refused(CredentialRefusal(rule: .authenticationFailed, message: "no credential: send Authorization: Bearer with an API key or a JWT",
                                              sqlstate: "28000"), challenge: "Bearer realm=\"palisade\"")
        }
        switch identify(credential) {
        case .failure(let refusal):
            return .refused(refusal, challenge: "Bearer realm=\"palisade\", error=\"invalid_token\"")
        case .success(let identity):
            if let contentLength, contentLength > maxBodyBytes { return .answered(tooLarge(maxBodyBytes)) }
            return .admitted(identity)
        }
    }

    nonisolated static func tooLarge(_ maxBodyBytes: Int) -> FrontDoorResponse {
        .json(status: 413, body: "{\"error\":\"too_large\",\"error_description\":\"the request body is over \(maxBodyBytes) bytes\"}")
    }

    nonisolated func admission(of head: HTTPRequest, contentLength: Int?, maxBodyBytes: Int) -> HeadAdmission {
        Self.admission(of: head, contentLength: contentLength, maxBodyBytes: maxBodyBytes) { firewall.identify($0) }
    }

    /// A request whose credential `admission` verified as `identity`, with its body.
    func handle(_ request: HTTPRequest, identity: MCPIdentity, clientAddress: String) async -> FrontDoorResponse {
        if let sessionID = request.header(HTTPHeaderName.sessionID) {
            guard var entry = entries[sessionID] else {
                return await refuseSession(identity: identity, clientAddress: clientAddress, message: "no MCP session \(sessionID.prefix(64))",
                                           response: .mcp(.error(statusCode: 404, .invalidRequest("Not Found: no such MCP session; initialize a new one"))))
            }
            // The whole verified identity, not only the credential's id: for a JWT that id is its
            // issuer and jti, and the sixteenth red team used another tenant's token with the same jti to read
            // the first tenant's rows through its session.
            guard entry.session.identity == identity else {
                return await refuseSession(
                    identity: identity, clientAddress: clientAddress,
                    message: "MCP session \(sessionID.prefix(64)) belongs to another identity (tenant \(entry.session.identity.tenant))",
                    response: FrontDoorResponse.refusal(status: 403, error: "forbidden",
                                                        description: "this MCP session was opened with another identity; initialize a new one",
                                                        rule: Rule.authenticationFailed.rawValue, sqlstate: "28000"))
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

    private func refuseSession(identity: MCPIdentity, clientAddress: String, message: String, response: FrontDoorResponse) async -> FrontDoorResponse {
        do {
            try await firewall.recordSessionRefusal(message, identity: identity, transport: .http, clientAddress: clientAddress)
        } catch {
            return Self.auditUnavailable
        }
        return response
    }

    static let auditUnavailable = FrontDoorResponse.refusal(status: 503, error: "audit_unavailable", description: "Palisade cannot write its audit log; nothing is served",
                                                            rule: "audit.unavailable", sqlstate: "58030")

    /// Whether a POST body is the JSON-RPC `initialize` request that opens a session.
    nonisolated static func isInitializeRequest(_ body: Data) -> Bool {
        guard let message = try? JSONSerialization.jsonObject(with: body) as? [String: Any] else { return false }
        return message["method"] as? String == "initialize" && message["id"] != nil
    }

    func refuse(_ refusal: CredentialRefusal, clientAddress: String, challenge: String) async -> FrontDoorResponse {
        do {
            try await firewall.recordRefusal(refusal, transport: .http, clientAddress: clientAddress)
        } catch {
            return Self.auditUnavailable
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

/// One request's body, kept up to `limit` bytes; past it nothing more is kept (and what was is
/// let go), and the request is answered 413.
struct RequestBody {
    let limit: Int
    private(set) var bytes = ByteBuffer()
    private(set) var tooLarge = false

    init(limit: Int) {
        self.limit = limit
    }

    mutating func append(_ chunk: inout ByteBuffer) {
        guard !tooLarge else { return }
        if bytes.readableBytes + chunk.readableBytes > limit {
            tooLarge = true
            bytes = ByteBuffer()
        } else {
            bytes.writeBuffer(&chunk)
        }
    }
}

/// Thin NIO adapter: decides each request on its head, gathers the body of an admitted one,
/// hands it to the sessions, and writes the answer (an SSE stream as its events come). While it
/// waits for a request (from connecting, or from the end of the previous answer) the request
/// has `requestTimeout` to arrive whole; then the connection is closed.
private final class HTTPRequestHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private enum State {
        /// For the next request's head.
        case waiting
        /// An admitted request's body.
        case reading(HTTPRequestHead, MCPIdentity, RequestBody)
        /// A request answered from its head: its body is dropped; the connection closes once both
        /// the request and the answer have ended.
        case discarding(requestEnded: Bool, answerEnded: Bool)
        /// The request has arrived whole; its answer is being written.
        case answering
    }

    private let sessions: HTTPSessions
    private let limits: HTTPLimits
    private var state = State.waiting
    private var deadline: Scheduled<Void>?

    init(sessions: HTTPSessions, limits: HTTPLimits) {
        self.sessions = sessions
        self.limits = limits
    }

    func channelActive(context: ChannelHandlerContext) {
        armDeadline(context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        deadline?.cancel()
        deadline = nil
        context.fireChannelInactive()
    }

    private func armDeadline(_ context: ChannelHandlerContext) {
        deadline?.cancel()
        let channel = context.channel
        deadline = context.eventLoop.scheduleTask(in: limits.requestTimeout) { channel.close(promise: nil) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            guard case .waiting = state else { return }
            let request = Self.request(head, body: nil)
            let contentLength = head.headers.first(name: "Content-Length").flatMap { Int($0) }
            switch sessions.admission(of: request, contentLength: contentLength, maxBodyBytes: limits.maxBodyBytes) {
            case .admitted(let identity):
                state = .reading(head, identity, RequestBody(limit: limits.maxBodyBytes))
            case .answered(let response):
                state = .discarding(requestEnded: false, answerEnded: false)
                writer(context, head: head, keepAlive: false).write(response)
            case .refused(let refusal, let challenge):
                state = .discarding(requestEnded: false, answerEnded: false)
                let writer = writer(context, head: head, keepAlive: false)
                let clientAddress = Self.clientAddress(context)
                let sessions = self.sessions
                Task { writer.write(await sessions.refuse(refusal, clientAddress: clientAddress, challenge: challenge)) }
            }
        case .body(var chunk):
            guard case .reading(let head, let identity, var body) = state else { return }
            state = .answering  // not to hold a second reference to the buffer while appending
            body.append(&chunk)
            state = .reading(head, identity, body)
        case .end:
            deadline?.cancel()
            deadline = nil
            switch state {
            case .reading(let head, let identity, let body):
                state = .answering
                let writer = writer(context, head: head, keepAlive: head.isKeepAlive)
                if body.tooLarge { return writer.write(HTTPSessions.tooLarge(limits.maxBodyBytes)) }
                let request = Self.request(head, body: body.bytes.readableBytes > 0 ? Data(body.bytes.readableBytesView) : nil)
                let clientAddress = Self.clientAddress(context)
                let sessions = self.sessions
                Task { writer.write(await sessions.handle(request, identity: identity, clientAddress: clientAddress)) }
            case .discarding(_, let answerEnded):
                state = .discarding(requestEnded: true, answerEnded: answerEnded)
                if answerEnded { context.close(promise: nil) }
            case .waiting, .answering:
                break
            }
        }
    }

    /// The answer's end is about to be written: the connection waits for the next request (set
    /// before the end is written, since the pipelining handler hands over a request that waited
    /// for this answer as the end goes out), or is closed once the end is written (true).
    fileprivate func answerEnding(context: ChannelHandlerContext, keepAlive: Bool) -> Bool {
        switch state {
        case .discarding(let requestEnded, _):
            // The client may still be sending the body of a refused request: closing now would
            // reset the connection and could lose the answer. The deadline still runs.
            state = .discarding(requestEnded: requestEnded, answerEnded: true)
            return requestEnded
        case .answering where keepAlive:
            state = .waiting
            armDeadline(context)
            return false
        default:
            return true
        }
    }

    private func writer(_ context: ChannelHandlerContext, head: HTTPRequestHead, keepAlive: Bool) -> ResponseWriter {
        ResponseWriter(context: context, handler: self, version: head.version, keepAlive: keepAlive)
    }

    private static func request(_ head: HTTPRequestHead, body: Data?) -> HTTPRequest {
        var headers: [String: String] = [:]
        for (name, value) in head.headers {
            headers[name] = headers[name].map { $0 + ", " + value } ?? value
        }
        return HTTPRequest(method: head.method.rawValue, headers: headers, body: body,
                           path: String(head.uri.split(separator: "?", maxSplits: 1).first ?? ""))
    }

    private static func clientAddress(_ context: ChannelHandlerContext) -> String {
        context.channel.remoteAddress.map { "\($0.ipAddress ?? "?"):\($0.port ?? 0)" } ?? ""
    }
}

/// A connection over `maxConnections`: a 503 is written at once, whatever the client sends (it
/// is dropped), and the connection is closed after `refusalLinger`, so that the answer is read
/// rather than lost to a reset.
private final class OverCapacityHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    private let limits: HTTPLimits

    init(limits: HTTPLimits) {
        self.limits = limits
    }

    func channelActive(context: ChannelHandlerContext) {
        let body = "{\"error\":\"too_many_connections\",\"error_description\":\"Palisade holds at most \(limits.maxConnections) MCP connections at once (max_client_connections); try again shortly\",\"sqlstate\":\"53300\"}"
        let answer = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n" +
            "Retry-After: 1\r\nConnection: close\r\n\r\n" + body
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: answer)), promise: nil)
        let channel = context.channel
        context.eventLoop.scheduleTask(in: limits.refusalLinger) { channel.close(promise: nil) }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}
}

/// Writes one response on the channel's event loop, from any task.
private struct ResponseWriter: Sendable {
    private let context: NIOLoopBound<ChannelHandlerContext>
    private let handler: NIOLoopBound<HTTPRequestHandler>
    private let eventLoop: EventLoop
    private let version: HTTPVersion
    private let keepAlive: Bool

    init(context: ChannelHandlerContext, handler: HTTPRequestHandler, version: HTTPVersion, keepAlive: Bool) {
        self.context = NIOLoopBound(context, eventLoop: context.eventLoop)
        self.handler = NIOLoopBound(handler, eventLoop: context.eventLoop)
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
        let handler = self.handler
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
            if end { Self.end(context, handler: handler, keepAlive: keepAlive) } else { context.flush() }
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
        let handler = self.handler
        let keepAlive = self.keepAlive
        eventLoop.execute { Self.end(context.value, handler: handler, keepAlive: keepAlive) }
    }

    private static func end(_ context: ChannelHandlerContext, handler: NIOLoopBound<HTTPRequestHandler>, keepAlive: Bool) {
        let close = handler.value.answerEnding(context: context, keepAlive: keepAlive)
        let written = context.writeAndFlush(NIOAny(HTTPServerResponsePart.end(nil)))
        if close {
            let channel = context.channel
            written.whenComplete { _ in channel.close(promise: nil) }
        }
    }
}
