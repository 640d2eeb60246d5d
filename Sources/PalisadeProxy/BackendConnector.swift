import NIOCore
import NIOPosix
import PostgresWire

/// Opens Palisade's connections to the server: a session's own, an MCP session's, and the short
/// one a cancel takes.
enum BackendConnector {
    /// A connection with TLS negotiated first if configured, then the caller's handlers.
    static func connect(_ backend: BackendAddress, tls: BackendTLS?, on eventLoop: EventLoop,
                        handlers: @escaping @Sendable (ChannelPipeline.SynchronousOperations) throws -> Void) -> EventLoopFuture<Channel> {
        ClientBootstrap(group: eventLoop)
            .channelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .connectTimeout(.seconds(10))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls { try channel.pipeline.syncOperations.addHandler(BackendTLSNegotiator(tls: tls)) }
                    try handlers(channel.pipeline.syncOperations)
                }
            }
            .connect(host: backend.host, port: backend.port)
    }

    /// A proxy session's server connection, whose frames go to the session.
    static func connect(_ backend: BackendAddress, tls: BackendTLS?, for session: NIOLoopBound<ProxySession>) -> EventLoopFuture<Channel> {
        connect(backend, tls: tls, on: session.eventLoop) { pipeline in
            try pipeline.addHandlers(ByteToMessageHandler(BackendFrameDecoder(session: session.value)), BackendHandler(session: session.value))
        }
    }

    /// A CancelRequest on a connection of its own, as the protocol wants it.
    static func sendCancel(processID: Int32, secretKey: Int32, to backend: BackendAddress, on eventLoop: EventLoop) {
        ClientBootstrap(group: eventLoop).connect(host: backend.host, port: backend.port).whenSuccess { channel in
            var buffer = channel.allocator.buffer(capacity: 16)
            FrontendEncoder.cancel(processID: processID, secretKey: secretKey, into: &buffer)
            channel.writeAndFlush(buffer).whenComplete { _ in channel.close(promise: nil) }
        }
    }
}
