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
                    try channel.pipeline.syncOperations.addHandler(AdminHandler(server: server, listenHost: host))
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

    /// A request the admin door does not answer, and why: the door has no credential, so it
    /// refuses what a web page could make a browser send. A page cannot rebind a name of its own
    /// to the door (the sixteenth red team: `GET /metrics` with `Host: rebind.evil.example` read the tenants'
    /// names), nor post a form to it (`POST /reload` with a foreign `Origin` and a form's
    /// `Content-Type` reloaded the policies): a form's content types are the ones a browser sends
    /// across sites without asking first (CORS "simple requests").
    struct Refusal: Equatable {
        var status: Int
        var message: String
    }

    static func refusal(method: String, host: String?, origin: String?, contentType: String?, listenHost: String) -> Refusal? {
        if let host {
            guard let name = hostName(host), isAcceptedHost(name, listenHost: listenHost) else {
                return Refusal(status: 421, message: "the admin port answers to an IP address, localhost or \(listenHost), not to Host \(host)")
            }
        }
        guard method == "POST" else { return nil }
        if let origin {
            // The admin door's own origin is the one the request names in Host (checked above); a
            // browser sends Origin on every cross-site POST.
            guard let host, origin.lowercased() == "http://" + host.lowercased() else {
                return Refusal(status: 403, message: "a POST from another origin (\(origin)) is refused")
            }
        }
        if let contentType {
            let mediaType = contentType.split(separator: ";", maxSplits: 1).first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
            if ["application/x-www-form-urlencoded", "multipart/form-data", "text/plain"].contains(mediaType) {
                return Refusal(status: 403, message: "a POST with a form's Content-Type (\(mediaType)) is refused")
            }
        }
        return nil
    }

    /// The name or address in a Host header, without its port; nil if it is not one.
    static func hostName(_ host: String) -> String? {
        let value = host.trimmingCharacters(in: .whitespaces)
        if value.hasPrefix("[") {
            guard let close = value.firstIndex(of: "]") else { return nil }
            let rest = value[value.index(after: close)...]
            guard rest.isEmpty || (rest.first == ":" && rest.dropFirst().allSatisfy({ $0.isASCII && $0.isNumber })) else { return nil }
            return String(value[value.index(after: value.startIndex)..<close])
        }
        let parts = value.split(separator: ":", omittingEmptySubsequences: false)
        guard !parts[0].isEmpty, parts.count <= 2, parts.count == 1 || parts[1].allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        return String(parts[0])
    }

    static func isAcceptedHost(_ name: String, listenHost: String) -> Bool {
        var name = name.lowercased()
        if name.hasSuffix(".") { name.removeLast() }
        if name == "localhost" || name == listenHost.lowercased() { return true }
        var address = in6_addr()
        return inet_pton(AF_INET, name, &address) == 1 || inet_pton(AF_INET6, name, &address) == 1
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
    private let listenHost: String
    private var head: HTTPRequestHead?

    init(server: AdminServer, listenHost: String) {
        self.server = server
        self.listenHost = listenHost
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
            let refusal = AdminServer.refusal(method: method.rawValue, host: head.headers.first(name: "Host"), origin: head.headers.first(name: "Origin"),
                                              contentType: head.headers.first(name: "Content-Type"), listenHost: listenHost)
            Task {
                let (status, body) = if let refusal {
                    (HTTPResponseStatus(statusCode: refusal.status), refusal.message + "\n")
                } else {
                    await server.respond(method: method, path: path)
                }
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
