import NIOCore
import PostgresWire

/// What a client sends: untyped startup-phase messages, then typed frames.
enum ClientInbound {
    case startup(StartupMessage)
    case frame(Frame)
}

/// Frames go straight to the session rather than down the pipeline: boxing each message in
/// `NIOAny` and passing it through handler contexts cost more than the relay itself.
final class ClientMessageDecoder: ByteToMessageDecoder {
    typealias InboundOut = Never
    private var expectingStartup = true
    private var frames: FrameDecoder
    private let maxMessageBytes: Int
    private var authenticated = false
    private let session: ProxySession

    /// The largest message before the client has logged in: a password, a token or a SCRAM
    /// message. Unauthenticated peers had each buffered a password message of up to
    /// `max_message_bytes` (200 connections held 189 MB, seventeenth red team).
    static let mostBytesBeforeLogin = 32 << 10

    init(maxMessageBytes: Int, session: ProxySession) {
        frames = FrameDecoder(maxLength: min(maxMessageBytes, Self.mostBytesBeforeLogin))
        self.maxMessageBytes = maxMessageBytes
        self.session = session
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
            session.clientInbound(.startup(message))
            return .continue
        }
        if !authenticated, !session.isAuthenticating {
            authenticated = true
            frames.maxLength = maxMessageBytes
        }
        guard let frame = try frames.decode(&buffer) else { return .needMoreData }
        session.clientInbound(.frame(frame))
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
    /// The proxy's server connections hand frames to their session directly; the startup probe
    /// has none and reads them from the pipeline.
    private let session: ProxySession?

    init(session: ProxySession? = nil) {
        self.session = session
    }

    func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let frame = try frames.decode(&buffer) else { return .needMoreData }
        if let session {
            session.backendFrame(frame)
        } else {
            context.fireChannelRead(wrapInboundOut(frame))
        }
        return .continue
    }

    func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        .needMoreData
    }
}
