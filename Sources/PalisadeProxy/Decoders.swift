import NIOCore
import PostgresWire

/// What a client sends: untyped startup-phase messages, then typed frames.
enum ClientInbound {
    case startup(StartupMessage)
    case frame(Frame)
}

final class ClientMessageDecoder: ByteToMessageDecoder {
    typealias InboundOut = ClientInbound
    private var expectingStartup = true
    private let frames: FrameDecoder

    init(maxMessageBytes: Int) {
        frames = FrameDecoder(maxLength: maxMessageBytes)
    }

    func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        if expectingStartup {
            guard let message = try StartupMessage.decode(&buffer) else { return .needMoreData }
            switch message {
            case .sslRequest, .gssEncryptionRequest:
                // Plaintext sent before the TLS handshake would later be read as if it came through TLS.
                if buffer.readableBytes > 0 { throw WireError.bytesAfterSSLRequest }
            case .startup, .cancel:
                expectingStartup = false
            }
            context.fireChannelRead(wrapInboundOut(.startup(message)))
            return .continue
        }
        guard let frame = try frames.decode(&buffer) else { return .needMoreData }
        context.fireChannelRead(wrapInboundOut(.frame(frame)))
        return .continue
    }

    func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        .needMoreData
    }
}

final class BackendFrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = Frame
    // Rows can be large; the server bounds them, Palisade only reframes them.
    private let frames = FrameDecoder(maxLength: 1 << 30)

    func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let frame = try frames.decode(&buffer) else { return .needMoreData }
        context.fireChannelRead(wrapInboundOut(frame))
        return .continue
    }

    func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        .needMoreData
    }
}
