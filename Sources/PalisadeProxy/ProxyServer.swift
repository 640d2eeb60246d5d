import Foundation
import NIOCore
import NIOPosix
import PostgresWire
import Locking

/// Listens for clients and gives each its own session.
public final class ProxyServer: Sendable {
    public let configuration: ProxyConfiguration
    private let group: MultiThreadedEventLoopGroup
    /// The listening socket's own loop: a session's loop may block for its audit commit
    /// (`AuditInbox.servesOneSession`), and accepting must not wait for it.
    private let acceptor = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    private let cancels = CancelRegistry()
    private let auditInboxes = AuditInboxes()
    /// Open sessions, so that shutdown can ask each to finish; each is touched only on its loop.
    /// Their count is what `maxClientConnections` bounds.
    private let sessions = Locked<[ObjectIdentifier: NIOLoopBound<ProxySession>]>([:])
    /// Connections over the limit that are being told so (each stays up to `refusalLinger`, so that the
    /// refusal is read). Beyond `maxLingeringRefusals` they are closed without a word: a flood of
    /// them must not use up the file descriptors the sessions were promised.
    private let lingeringRefusals = Locked(0)
    public static let maxLingeringRefusals = 128
    /// A value each time a session ends, for `drain` to look again; at most one is kept.
    private let sessionEnded: AsyncStream<Void>
    private let sessionEndedSink: AsyncStream<Void>.Continuation

    public init(configuration: ProxyConfiguration, threads: Int) {
        self.configuration = configuration
        group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        (sessionEnded, sessionEndedSink) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Binds the listening socket; returns the channel (its local address has the actual port).
    public func start() async throws -> Channel {
        let configuration = configuration
        let cancels = cancels
        let auditInboxes = auditInboxes
        let server = self
        return try await ServerBootstrap(group: acceptor, childGroup: group)
            .serverChannelOption(ChannelOptions.backlog, value: 256)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(ChannelOptions.writeBufferWaterMark, value: .init(low: 256 * 1024, high: 1024 * 1024))
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let inbox = auditInboxes.inbox(for: channel.eventLoop)
                    inbox.sessionOpened()
                    channel.closeFuture.whenComplete { _ in inbox.sessionClosed() }
                    let session = ProxySession(configuration: configuration, cancels: cancels, eventLoop: channel.eventLoop,
                                               auditInbox: inbox)
                    let key = ObjectIdentifier(session)
                    let bound = NIOLoopBound(session, eventLoop: channel.eventLoop)
                    let admitted = server.sessions.withLock { sessions in
                        guard sessions.count < configuration.maxClientConnections else { return false }
                        sessions[key] = bound
                        return true
                    }
                    if admitted {
                        // Registered first, so that no failure below can keep the slot.
                        channel.closeFuture.whenComplete { _ in
                            _ = server.sessions.withLock { $0.removeValue(forKey: key) }
                            server.sessionEndedSink.yield()
                        }
                    } else {
                        let lingering = server.lingeringRefusals.withLock { count in
                            guard count < Self.maxLingeringRefusals else { return false }
                            count += 1
                            return true
                        }
                        guard lingering else { throw TooManyConnections() }
                        channel.closeFuture.whenComplete { _ in server.lingeringRefusals.withLock { $0 -= 1 } }
                    }
                    try channel.pipeline.syncOperations.addHandlers(
                        ByteToMessageHandler(ClientMessageDecoder(maxMessageBytes: configuration.maxMessageBytes, session: session)),
                        ClientHandler(session: session))
                    if !admitted {
                        session.refusal = ServerNotice(
                            severity: "FATAL", sqlstate: SQLState.tooManyConnections,
                            message: "sorry, too many clients already (Palisade holds at most \(configuration.maxClientConnections) connections)")
                    }
                }
            }
            .bind(host: configuration.listenHost, port: configuration.listenPort)
            .get()
    }

    /// Asks every session to end once its current query is answered (idle ones at once) and
    /// returns when all have ended, or at once when the task is cancelled (the shutdown's time is up).
    public func drain() async {
        for bound in sessions.withLock({ Array($0.values) }) {
            bound.eventLoop.execute { bound.value.shutDown() }
        }
        var ended = sessionEnded.makeAsyncIterator()
        while !sessions.withLock({ $0.isEmpty }) {
            guard await ended.next() != nil else { return }
        }
    }

    /// Closes the sessions that are left and stops the event loops.
    public func stop() async throws {
        for bound in sessions.withLock({ Array($0.values) }) {
            bound.eventLoop.execute { bound.value.shutDown(force: true) }
        }
        try await Task.sleep(for: .milliseconds(100))
        try await group.shutdownGracefully()
        try await acceptor.shutdownGracefully()
    }
}

/// A connection over the limit while as many refusals as allowed are still being delivered:
/// NIO closes it at once.
private struct TooManyConnections: Error {}

