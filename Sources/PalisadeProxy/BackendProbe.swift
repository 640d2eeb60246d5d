import NIOCore
import NIOPosix
import PostgresWire

/// One simple query on a fresh server connection with Palisade's credentials: for the checks
/// `palisade serve` makes before it listens.
public enum BackendProbe {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// Rows as text (nil for NULL).
    public static func query(_ sql: String, on backend: BackendAddress, tls: BackendTLS? = nil, group: EventLoopGroup) async throws -> [[String?]] {
        let eventLoop = group.next()
        let promise = eventLoop.makePromise(of: [[String?]].self)
        let channel: Channel
        do {
            channel = try await ClientBootstrap(group: eventLoop)
                .connectTimeout(.seconds(10))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        if let tls { try channel.pipeline.syncOperations.addHandler(BackendTLSNegotiator(tls: tls)) }
                        try channel.pipeline.syncOperations.addHandlers(
                            ByteToMessageHandler(BackendFrameDecoder()), ProbeHandler(backend: backend, sql: sql, promise: promise))
                    }
                }
                .connect(host: backend.host, port: backend.port).get()
        } catch {
            let failure = Failure(description: "cannot reach the database server at \(backend.host):\(backend.port): \(error)")
            promise.fail(failure)
            throw failure
        }
        defer { channel.close(promise: nil) }
        return try await promise.futureResult.get()
    }

    private final class ProbeHandler: ChannelInboundHandler {
        typealias InboundIn = Frame
        private var startup: BackendStartup
        private let backend: BackendAddress
        private let sql: String
        private let promise: EventLoopPromise<[[String?]]>
        private var loggedIn = false
        private var rows: [[String?]] = []
        private var error: String?

        init(backend: BackendAddress, sql: String, promise: EventLoopPromise<[[String?]]>) {
            self.backend = backend
            self.sql = sql
            self.promise = promise
            startup = BackendStartup(user: backend.user, password: backend.password)
        }

        func channelActive(context: ChannelHandlerContext) {
            var buffer = context.channel.allocator.buffer(capacity: 128)
            FrontendEncoder.startup([("user", backend.user), ("database", backend.database), ("client_encoding", "UTF8")], into: &buffer)
            context.writeAndFlush(NIOAny(buffer), promise: nil)
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let frame = unwrapInboundIn(data)
            guard loggedIn else {
                switch startup.frame(frame) {
                case .send(let buffer): context.writeAndFlush(NIOAny(buffer), promise: nil)
                case .wait: break
                case .ready:
                    loggedIn = true
                    var buffer = context.channel.allocator.buffer(capacity: 64)
                    FrontendEncoder.query(sql, into: &buffer)
                    context.writeAndFlush(NIOAny(buffer), promise: nil)
                case .failed(let reason):
                    promise.fail(Failure(description: "cannot log in to the database server as \(backend.user): \(reason)"))
                }
                return
            }
            var body = frame.body
            switch frame.backendType {
            case .dataRow:
                let count: Int16 = body.readInteger() ?? 0
                rows.append((0..<Int(count)).map { _ in
                    let length: Int32 = body.readInteger() ?? -1
                    return length < 0 ? nil : body.readString(length: Int(length))
                })
            case .errorResponse:
                error = ServerNotice(frame.body).description
            case .readyForQuery:
                if let error { promise.fail(Failure(description: error)) } else { promise.succeed(rows) }
            default: break
            }
        }

        func errorCaught(context: ChannelHandlerContext, error: Error) {
            promise.fail(Failure(description: "\(error)"))
            context.close(promise: nil)
        }

        func channelInactive(context: ChannelHandlerContext) {
            promise.fail(Failure(description: "the database server closed the connection"))
        }
    }
}
