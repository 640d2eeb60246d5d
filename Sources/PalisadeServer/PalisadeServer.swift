import AuditChain
import Foundation
import Logging
import NIOCore
import NIOPosix
import PalisadeProxy
import ServiceLifecycle
import UnixSignals

/// `palisade serve`: checks the server and the configuration, listens, and runs until SIGTERM or
/// SIGINT; SIGHUP (or `POST /reload` on the admin port) reloads the policies and the audit key.
public enum PalisadeServer {
    static let logger = Logger(label: "palisade")

    public static func run(_ loaded: ServeSettings) async throws {
        var settings = loaded
        try LogSetup.bootstrap(format: settings.logFormat, level: settings.logLevel)
        let metrics = AdminServer.bootstrapMetrics()
        let audit = try settings.openAuditLog()
        let proxyConfiguration: ProxyConfiguration
        do {
            (settings.serverFunctions, settings.serverTypes) = try await settings.checkBackend()
            proxyConfiguration = try await settings.proxyConfiguration(audit: audit)
            for (name, path) in settings.profiles.sorted(by: { $0.key < $1.key }) {
                try await audit.append(.policyLoaded(version: proxyConfiguration.policies.engine(for: name)!.policy.version, path: "\(name)=\(path)"))
            }
        } catch {
            audit.close()
            throw error
        }
        let reloader = Reloader(settings: settings, registry: proxyConfiguration.policies, audit: audit)
        let server = ProxyServer(configuration: proxyConfiguration, threads: settings.threads)
        let channel = try await server.start()
        var adminChannel: Channel?
        if let adminPort = settings.adminPort {
            let admin = AdminServer(registry: metrics, audit: audit, backend: settings.backend) { await reloader.reloadPolicies() }
            do {
                adminChannel = try await admin.start(host: settings.adminHost, port: adminPort, group: MultiThreadedEventLoopGroup.singleton)
            } catch {
                channel.close(promise: nil)
                throw configError("admin_listen", "cannot listen on \(settings.adminHost):\(adminPort): \(error)")
            }
        }
        // Trap the signals before announcing: a supervisor may stop Palisade as soon as it reads the line.
        let signals = await UnixSignalsSequence(trapping: .sigterm, .sigint, .sighup)
        let adminAddress = adminChannel?.localAddress.map { "; admin http://\($0.ipAddress ?? "?"):\($0.port ?? 0)" } ?? ""
        let address = channel.localAddress.map { "\($0.ipAddress ?? "?"):\($0.port ?? 0)" } ?? "?"
        FileHandle.standardOutput.write(Data("palisade: listening on \(address); backend \(settings.backend.user)@\(settings.backend.host):\(settings.backend.port)/\(settings.backend.database); tls \(settings.tlsMode.rawValue); profiles \(settings.profiles.keys.sorted().joined(separator: ", "))\(adminAddress)\n".utf8))

        var configuration = ServiceGroupConfiguration(
            services: [
                .init(service: ListenerService(server: server, channel: channel)),
                .init(service: SignalService(signals: signals, reloader: reloader), successTerminationBehavior: .gracefullyShutdownGroup),
            ],
            logger: logger)
        configuration.maximumGracefulShutdownDuration = .seconds(settings.shutdownSeconds)
        let services = ServiceGroup(configuration: configuration)
        try await services.run()
        try await server.stop()
        try? await adminChannel?.close()
        audit.close()
    }
}

/// Listens until the graceful shutdown begins, then lets the sessions finish; the group cancels
/// the wait when `shutdown_seconds` have passed.
struct ListenerService: Service {
    let server: ProxyServer
    let channel: Channel

    func run() async throws {
        try await withGracefulShutdownHandler {
            try await channel.closeFuture.get()
        } onGracefulShutdown: {
            channel.close(promise: nil)
        }
        await server.drain()
    }
}

/// SIGHUP reloads; SIGTERM or SIGINT ends this service, which shuts the group down gracefully.
struct SignalService: Service {
    let signals: UnixSignalsSequence
    let reloader: Reloader

    func run() async throws {
        for await signal in signals {
            guard signal == .sighup else { return }
            await reloader.reloadPolicies()
            await reloader.rotateAuditKeyIfChanged()
        }
    }
}
