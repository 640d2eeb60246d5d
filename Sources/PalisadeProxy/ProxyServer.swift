import Foundation
import NIOCore
import NIOPosix

/// Listens for clients and gives each its own session.
public final class ProxyServer: Sendable {
    public let configuration: ProxyConfiguration
    private let group: MultiThreadedEventLoopGroup
    private let cancels = CancelRegistry()
    private let auditInboxes = AuditInboxes()

    public init(configuration: ProxyConfiguration, threads: Int = Int(ProcessInfo.processInfo.environment["PALISADE_THREADS"] ?? "") ?? System.coreCount) {
        self.configuration = configuration
        group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
    }

    /// Binds the listening socket; returns the channel (its local address has the actual port).
    public func start() async throws -> Channel {
        let configuration = configuration
        let cancels = cancels
        let auditInboxes = auditInboxes
        return try await ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.backlog, value: 256)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(ChannelOptions.writeBufferWaterMark, value: .init(low: 256 * 1024, high: 1024 * 1024))
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let session = ProxySession(configuration: configuration, cancels: cancels, eventLoop: channel.eventLoop,
                                               auditInbox: auditInboxes.inbox(for: channel.eventLoop))
                    try channel.pipeline.syncOperations.addHandlers(
                        ByteToMessageHandler(ClientMessageDecoder(maxMessageBytes: configuration.maxMessageBytes, session: session)),
                        ClientHandler(session: session))
                }
            }
            .bind(host: configuration.listenHost, port: configuration.listenPort)
            .get()
    }

    public func shutdown() async throws {
        try await group.shutdownGracefully()
    }
}
