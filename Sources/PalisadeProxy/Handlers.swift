import NIOCore
import PostgresWire

/// Thin adapters: each hands its channel's events to the session (messages arrive through the decoders).
final class ClientHandler: ChannelInboundHandler {
    typealias InboundIn = Never
    private let session: ProxySession

    init(session: ProxySession) {
        self.session = session
    }

    func handlerAdded(context: ChannelHandlerContext) {
        session.clientAdded(context)
    }

    func channelActive(context: ChannelHandlerContext) {
        session.clientActive()
        context.fireChannelActive()
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        session.clientReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        session.clientWritabilityChanged(isWritable: context.channel.isWritable)
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        session.clientError(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        session.clientClosed()
    }
}

final class BackendHandler: ChannelInboundHandler {
    typealias InboundIn = Never
    private let session: ProxySession

    init(session: ProxySession) {
        self.session = session
    }

    func channelActive(context: ChannelHandlerContext) {
        session.backendActive(context.channel)
        context.fireChannelActive()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        session.backendWritabilityChanged(isWritable: context.channel.isWritable)
        context.fireChannelWritabilityChanged()
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        session.backendReadComplete()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        session.backendError(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        session.backendClosed()
    }
}
