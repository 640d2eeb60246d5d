import NIOCore
import NIOSSL
import NIOTLS
import PostgresWire

/// How Palisade talks TLS to the real server.
public struct BackendTLS: Sendable {
    public var context: NIOSSLContext
    /// The name the certificate must carry (verify-full); nil when the certificate is not verified.
    public var serverHostname: String?

    public init(context: NIOSSLContext, serverHostname: String?) {
        self.context = context
        self.serverHostname = serverHostname
    }
}

/// First handler of a server connection with TLS: sends SSLRequest, and on the server's `S` puts a
/// TLS client in front of itself. The handlers behind it see the connection become active only once
/// the handshake has completed, so the login never travels in clear.
final class BackendTLSNegotiator: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum State { case awaitingReply, handshaking, ready }
    private var state = State.awaitingReply
    private let tls: BackendTLS

    init(tls: BackendTLS) {
        self.tls = tls
    }

    func channelActive(context: ChannelHandlerContext) {
        var request = context.channel.allocator.buffer(capacity: 8)
        request.writeInteger(Int32(8))
        request.writeInteger(Int32(80_877_103))
        context.writeAndFlush(NIOAny(request), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard state == .awaitingReply else { return context.fireChannelRead(data) }
        var reply = unwrapInboundIn(data)
        guard reply.readableBytes == 1, reply.readInteger(as: UInt8.self) == EncryptionAnswer.willing.rawValue else {
            context.fireErrorCaught(WireError.malformed("the database server does not offer TLS (it answered the SSLRequest with no)"))
            return
        }
        state = .handshaking
        do {
            let handler = try NIOSSLClientHandler(context: tls.context, serverHostname: tls.serverHostname)
            try context.pipeline.syncOperations.addHandler(handler, position: .before(self))
        } catch {
            context.fireErrorCaught(error)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case TLSUserEvent.handshakeCompleted = event, state == .handshaking {
            state = .ready
            context.fireChannelActive()
        }
        context.fireUserInboundEventTriggered(event)
    }
}
