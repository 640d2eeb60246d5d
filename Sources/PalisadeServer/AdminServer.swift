import AuditChain
import Foundation
import Metrics
import NIOCore
import NIOHTTP1
import NIOPosix
import PalisadeProxy
import Prometheus

/// `--admin-listen`: `/healthz` (the process answers), `/readyz` (the server is reachable and the
/// audit log writable), `/metrics` (Prometheus text) and `POST /reload` (as SIGHUP).
final class AdminServer: Sendable {
    let registry: PrometheusCollectorRegistry
    private let audit: AuditLog
    private let backend: BackendAddress
    private let reload: @Sendable () async -> String
    private let auditEntries: Prometheus.Gauge
    private let auditSyncs: Prometheus.Gauge
    private let auditEntriesPerSync: Prometheus.Gauge
    private let auditSyncSeconds: Prometheus.Gauge

    init(registry: PrometheusCollectorRegistry, audit: AuditLog, backend: BackendAddress, reload: @escaping @Sendable () async -> String) {
        self.registry = registry
        self.audit = audit
        self.backend = backend
        self.reload = reload
        auditEntries = registry.makeGauge(name: "palisade_audit_entries", help: "Entries appended to the audit log since start")
        auditSyncs = registry.makeGauge(name: "palisade_audit_syncs", help: "fdatasync calls of the audit log since start")
        auditEntriesPerSync = registry.makeGauge(name: "palisade_audit_entries_per_sync", help: "Group commit batch size since start")
        auditSyncSeconds = registry.makeGauge(name: "palisade_audit_sync_seconds_mean", help: "Mean time of one group commit (write and fdatasync) since start")
    }

    /// Installs the Prometheus backend for swift-metrics, once per process.
    static func bootstrapMetrics() -> PrometheusCollectorRegistry {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = [.microseconds(5), .microseconds(10), .microseconds(25), .microseconds(50),
                                                   .microseconds(100), .microseconds(250), .milliseconds(1), .milliseconds(10)]
        MetricsSystem.bootstrap(factory)
        return registry
    }

    func start(host: String, port: Int, group: EventLoopGroup) async throws -> Channel {
        let server = self
        return try await ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(AdminHandler(server: server))
                }
            }
            .bind(host: host, port: port).get()
    }

    func respond(method: HTTPMethod, path: String) async -> (HTTPResponseStatus, String) {
        switch (method, path) {
        case (.GET, "/healthz"):
            return (.ok, "ok\n")
        case (.GET, "/readyz"):
            if let failure = audit.failure { return (.serviceUnavailable, "audit log not writable: \(failure)\n") }
            guard await backendReachable() else {
                return (.serviceUnavailable, "database server \(backend.host):\(backend.port) not reachable\n")
            }
            return (.ok, "ready\n")
        case (.GET, "/metrics"):
            let statistics = audit.statistics
            auditEntries.set(Int64(statistics.entries))
            auditSyncs.set(Int64(statistics.syncs))
            auditEntriesPerSync.set(statistics.syncs == 0 ? 0 : Double(statistics.entries) / Double(statistics.syncs))
            auditSyncSeconds.set(statistics.syncs == 0 ? 0 : Double(statistics.syncNanoseconds) / Double(statistics.syncs) / 1e9)
            var buffer: [UInt8] = []
            registry.emit(into: &buffer)
            return (.ok, String(decoding: buffer, as: UTF8.self))
        case (.POST, "/reload"):
            let message = await reload()
            return (message.contains("refused") ? .unprocessableEntity : .ok, message + "\n")
        default:
            return (.notFound, "not found: \(path)\n")
        }
    }

    private func backendReachable() async -> Bool {
        let group = MultiThreadedEventLoopGroup.singleton
        do {
            let channel = try await ClientBootstrap(group: group).connectTimeout(.seconds(1)).connect(host: backend.host, port: backend.port).get()
            try? await channel.close()
            return true
        } catch {
            return false
        }
    }
}

private final class AdminHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart
    private let server: AdminServer
    private var head: HTTPRequestHead?

    init(server: AdminServer) {
        self.server = server
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): self.head = head
        case .body: break
        case .end:
            guard let head else { return }
            let server = server
            let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
            let path = String(head.uri.split(separator: "?").first ?? "")
            let method = head.method
            let keepAlive = head.isKeepAlive
            let version = head.version
            Task {
                let (status, body) = await server.respond(method: method, path: path)
                bound.eventLoop.execute {
                    let context = bound.value
                    var headers = HTTPHeaders()
                    headers.add(name: "Content-Type", value: path == "/metrics" ? "text/plain; version=0.0.4" : "text/plain")
                    headers.add(name: "Content-Length", value: "\(body.utf8.count)")
                    context.write(NIOAny(HTTPServerResponsePart.head(HTTPResponseHead(version: version, status: status, headers: headers))), promise: nil)
                    context.write(NIOAny(HTTPServerResponsePart.body(.byteBuffer(ByteBuffer(string: body)))), promise: nil)
                    context.writeAndFlush(NIOAny(HTTPServerResponsePart.end(nil))).whenComplete { _ in
                        if !keepAlive { context.close(promise: nil) }
                    }
                }
            }
            self.head = nil
        }
    }
}
