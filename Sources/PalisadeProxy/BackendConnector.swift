import NIOCore
import NIOPosix
import PostgresWire

/// Opens Palisade's connections to the server: a session's own, and the short one a cancel takes.
enum BackendConnector {
    static func connect(_ backend: BackendAddress, tls: BackendTLS?, for session: NIOLoopBound<ProxySession>) -> EventLoopFuture<Channel> {
        ClientBootstrap(group: session.eventLoop)
            .channelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .connectTimeout(.seconds(10))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls { try channel.pipeline.syncOperations.addHandler(BackendTLSNegotiator(tls: tls)) }
                    try channel.pipeline.syncOperations.addHandlers(
                        ByteToMessageHandler(BackendFrameDecoder(session: session.value)), BackendHandler(session: session.value))
                }
            }
            .connect(host: backend.host, port: backend.port)
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
