import ArgumentParser
import AuditChain
import Foundation
import Logging
import MCP
import NIOCore
import NIOPosix
import NIOSSL
import PalisadeMCP
import PalisadeProxy
import PalisadeServer
import Locking
import UnixSignals

struct MCPCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mcp",
        abstract: "Serve the firewall to agents as Model Context Protocol tools: query, list_tables, describe_table, check, explain.",
        discussion: """
        Takes the configuration of `palisade serve` (file, PALISADE_* variables, flags) and checks the server the same way.
        Over stdio (the default, as desktop agents start servers) the credential, an API key or a JWT, comes from
        PALISADE_CREDENTIAL. With --mcp-listen, Streamable HTTP is served at /mcp, and every request carries its credential
        as Authorization: Bearer; with --tls-cert and --tls-key it is HTTPS, without them it needs --tls-mode disable.
        The credential is checked on each request's head, before its body is read; a request has --login-timeout
        seconds to arrive whole, and at most --max-client-connections connections are held (the next are answered 503).
        Every tool call is decided by the credential's profile, counted toward its budgets and lockout, recorded in the
        audit log before it answers, and run in a read-only transaction with the tenant's claims.
        """)

    @OptionGroup var serve: Serve
    @Option(name: .customLong("mcp-listen"), help: "Serve Streamable HTTP at HOST:PORT (path /mcp) instead of stdio.") var mcpListen: String?
    @Option(name: .customLong("mcp-session-idle-seconds"), help: "An HTTP session idle this long is ended, with its server connection (default 900).")
    var mcpSessionIdleSeconds = 900

    func run() async throws {
        var settings = try serve.settings()
        let listen = try mcpListen.map(Self.hostAndPort)
        guard (1...86_400).contains(mcpSessionIdleSeconds) else { throw configError("mcp_session_idle_seconds", "must be between 1 and 86400") }
        if listen == nil {
            // Over stdio there is no listener, so no client TLS to set up.
            settings.tlsMode = .disable
            settings.tlsCert = nil
            settings.tlsKey = nil
        }
        try LogSetup.bootstrap(format: settings.logFormat, level: settings.logLevel)
        let credential = ProcessInfo.processInfo.environment["PALISADE_CREDENTIAL"]
        if listen == nil, credential?.isEmpty ?? true {
            throw configError("PALISADE_CREDENTIAL", "required over stdio: the agent's API key (palisade keys create) or JWT")
        }
        let audit = try settings.openAuditLog()
        let firewall: MCPFirewall
        let tls: NIOSSLContext?
        do {
            (settings.serverFunctions, settings.serverTypes) = try await settings.checkBackend()
            let proxyConfiguration = try await settings.proxyConfiguration(audit: audit)
            for (name, path) in settings.profiles.sorted(by: { $0.key < $1.key }) {
                _ = try await audit.append(.policyLoaded(version: proxyConfiguration.policies.engine(for: name)!.policy.version, path: "\(name)=\(path)"))
            }
            firewall = MCPFirewall(proxyConfiguration)
            tls = proxyConfiguration.tls
        } catch {
            audit.close()
            throw error
        }
        defer { audit.close() }
        let group = MultiThreadedEventLoopGroup.singleton
        let backend = settings.backend
        let backendName = "\(backend.user)@\(backend.host):\(backend.port)/\(backend.database)"
        guard let (host, port) = listen else {
            let running = Locked<Server?>(nil)
            let signals = Task {
                for await _ in await UnixSignalsSequence(trapping: .sigterm, .sigint) {
                    if let server = running.withLock({ $0 }) { await server.stop() }
                    return
                }
            }
            defer { signals.cancel() }
            do {
                try await MCPStdio.serve(firewall: firewall, credential: credential, group: group) { server in
                    running.withLock { $0 = server }
                    Logger(label: "palisade").info("MCP over stdio", metadata: ["backend": "\(backendName)"])
                }
            } catch let failure as MCPStdio.StartFailure {
                throw ConfigurationError(description: "palisade mcp: \(failure.description)")
            }
            return
        }
        let frontDoor = MCPHTTPFrontDoor(firewall: firewall, group: group, tls: tls, idleTimeout: .seconds(Int64(mcpSessionIdleSeconds)),
                                         loopbackOnly: ["127.0.0.1", "localhost", "::1"].contains(host))
        let channel: Channel
        do {
            channel = try await frontDoor.start(host: host, port: port)
        } catch {
            throw configError("mcp_listen", "cannot listen on \(host):\(port): \(error)")
        }
        let signals = Task {
            for await _ in await UnixSignalsSequence(trapping: .sigterm, .sigint) {
                channel.close(promise: nil)
                return
            }
        }
        let address = channel.localAddress.map { "\($0.ipAddress ?? "?"):\($0.port ?? 0)" } ?? "?"
        FileHandle.standardOutput.write(Data("palisade: MCP listening on \(tls == nil ? "http" : "https")://\(address)\(MCPHTTPFrontDoor.path); backend \(backendName); profiles \(settings.profiles.keys.sorted().joined(separator: ", "))\n".utf8))
        try await channel.closeFuture.get()
        signals.cancel()
        await frontDoor.shutdown()
    }

    static func hostAndPort(_ text: String) throws -> (String, Int) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count >= 2, let port = Int(parts.last!), (0...65535).contains(port) else {
            throw configError("mcp_listen", "expected HOST:PORT, got '\(text)'")
        }
        return (parts.dropLast().joined(separator: ":"), port)
    }
}
