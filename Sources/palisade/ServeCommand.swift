import ArgumentParser
import AuditChain
import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import PalisadeProxy
import QueryPolicy
import Yams

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the firewall in front of a PostgreSQL server.",
        discussion: """
        Every key of the configuration file can also be given as a flag; flags win. Before listening,
        Palisade refuses to start if a policy or the keys file is invalid, the server cannot be reached,
        or Palisade's own server role is a superuser or has BYPASSRLS (row-level security would not apply).
        """)

    @Option(help: "Configuration file (YAML).") var config: String?
    @Option(help: "Address to listen on, HOST:PORT (default 127.0.0.1:6432).") var listen: String?
    @Option(help: "The real server: postgres://USER:PASSWORD@HOST:PORT/DB.") var backend: String?
    @Option(help: "Policy file for the 'agent' profile (default Policies/readonly.yaml).") var policy: String?
    @Option(help: "A profile and its policy file, NAME=FILE (repeatable; default analyst=Policies/analyst.yaml).") var profile: [String] = []
    @Option(name: .customLong("api-keys"), help: "API keys file (hashes only), from `palisade keys create`.") var apiKeys: String?
    @Option(name: .customLong("tls-cert"), help: "TLS certificate chain (PEM).") var tlsCert: String?
    @Option(name: .customLong("tls-key"), help: "TLS private key (PEM).") var tlsKey: String?
    @Option(name: .customLong("tls-mode"), help: "disable | allow | require (default require; disable sends passwords in clear, for loopback development).") var tlsMode: String?
    @Option(name: .customLong("max-message-bytes"), help: "Largest client message accepted (default 1048576).") var maxMessageBytes: Int?
    @Flag(name: .customLong("allow-privileged-backend"), help: "Start even if Palisade's server role is a superuser or has BYPASSRLS.") var allowPrivilegedBackend = false
    @Option(name: .customLong("audit-dir"), help: "Directory of the audit log (required).") var auditDir: String?
    @Option(name: .customLong("audit-key"), help: "Checkpoint signing key, from `palisade audit keygen`.") var auditKey: String?
    @Option(name: .customLong("audit-mirror"), help: "Second directory every checkpoint is also written to (ideally another disk or host).") var auditMirror: String?
    @Option(name: .customLong("audit-origin"), help: "The log's name in its checkpoints (default palisade).") var auditOrigin: String?
    @Option(name: .customLong("audit-checkpoint-seconds"), help: "Seconds between checkpoints while the log grows (default 5).") var auditCheckpointSeconds: Int?
    @Flag(name: .customLong("audit-unsigned"), help: "Run without a signing key: checkpoints are signed with a throwaway key no reviewer can trust.") var auditUnsigned = false

    func run() async throws {
        let settings = try ServeSettings(self)
        let audit = try settings.openAuditLog()
        let proxyConfiguration: ProxyConfiguration
        do {
            proxyConfiguration = try settings.proxyConfiguration(audit: audit)
            try await settings.checkBackend()
            for (name, path) in settings.profiles.sorted(by: { $0.key < $1.key }) {
                try await audit.append(.policyLoaded(version: proxyConfiguration.engines[name]!.policy.version, path: "\(name)=\(path)"))
            }
        } catch {
            audit.close()
            throw error
        }
        let server = ProxyServer(configuration: proxyConfiguration)
        let channel = try await server.start()
        // Watch for signals before announcing: a supervisor may stop Palisade as soon as it reads the line.
        let signals = SignalWatcher { channel.close(promise: nil) }
        let address = channel.localAddress.map { "\($0.ipAddress ?? "?"):\($0.port ?? 0)" } ?? "?"
        FileHandle.standardOutput.write(Data("palisade: listening on \(address); backend \(settings.backend.user)@\(settings.backend.host):\(settings.backend.port)/\(settings.backend.database); tls \(settings.tlsMode.rawValue); profiles \(settings.profiles.keys.sorted().joined(separator: ", "))\n".utf8))
        try await channel.closeFuture.get()
        signals.cancel()
        try await server.shutdown()
        audit.close()
    }
}

/// The settings of `palisade serve`, from the configuration file and flags.
struct ServeSettings {
    var listenHost = "127.0.0.1"
    var listenPort = 6432
    var backend: BackendAddress
    var profiles: [String: String]
    var apiKeys: String?
    var tlsMode: TLSMode = .require
    var tlsCert: String?
    var tlsKey: String?
    var maxMessageBytes = 1 << 20
    var allowPrivilegedBackend = false
    var auditDir: String?
    var auditKey: String?
    var auditMirror: String?
    var auditOrigin = "palisade"
    var auditCheckpointSeconds = 5
    var auditUnsigned = false

    static let keys: Set<String> = ["listen", "backend", "policy", "profiles", "api_keys", "tls_cert", "tls_key", "tls_mode",
                                    "max_message_bytes", "allow_privileged_backend", "audit_dir", "audit_key", "audit_mirror",
                                    "audit_origin", "audit_checkpoint_seconds", "audit_unsigned"]

    init(_ command: Serve) throws {
        var file: [String: Yams.Node] = [:]
        var base = ""
        if let path = command.config {
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw configError("config", "cannot read \(path)") }
            do {
                guard let mapping = try Yams.compose(yaml: text)?.mapping else { throw configError("config", "\(path) must be a mapping of keys") }
                for (key, value) in mapping {
                    guard let name = key.string, Self.keys.contains(name) else {
                        throw configError(key.string ?? "?", "\(path):\(key.mark?.line ?? 0): unknown key (expected one of: \(Self.keys.sorted().joined(separator: ", ")))")
                    }
                    file[name] = value
                }
            } catch let error as ConfigurationError {
                throw error
            } catch {
                throw configError("config", "\(path) is not valid YAML: \(error)")
            }
            base = URL(fileURLWithPath: path).deletingLastPathComponent().path + "/"
        }
        func relative(_ path: String) -> String { path.hasPrefix("/") ? path : base + path }
        func string(_ key: String) throws -> String? {
            guard let node = file[key] else { return nil }
            guard let value = node.string else { throw configError(key, "expected a string") }
            return value
        }

        if let listen = try command.listen ?? string("listen") {
            let parts = listen.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count >= 2, let port = Int(parts.last!), (0...65535).contains(port) else {
                throw configError("listen", "expected HOST:PORT, got '\(listen)'")
            }
            listenHost = parts.dropLast().joined(separator: ":")
            listenPort = port
        }
        guard let backendURL = try command.backend ?? string("backend") else {
            throw configError("backend", "required: postgres://USER:PASSWORD@HOST:PORT/DB")
        }
        guard let backend = BackendAddress(url: backendURL) else {
            throw configError("backend", "expected postgres://USER:PASSWORD@HOST:PORT/DB")
        }
        self.backend = backend

        profiles = ["agent": "Policies/readonly.yaml", "analyst": "Policies/analyst.yaml"]
        if let mapping = file["profiles"] {
            guard let entries = mapping.mapping else { throw configError("profiles", "expected a mapping of profile names to policy files") }
            for (name, value) in entries {
                guard let name = name.string, let path = value.string else { throw configError("profiles", "expected NAME: FILE entries") }
                profiles[name] = relative(path)
            }
        }
        if let policy = try string("policy") { profiles["agent"] = relative(policy) }
        if let policy = command.policy { profiles["agent"] = policy }
        for entry in command.profile {
            let parts = entry.split(separator: "=", maxSplits: 1)
            guard parts.count == 2 else { throw configError("profile", "expected NAME=FILE, got '\(entry)'") }
            profiles[String(parts[0])] = String(parts[1])
        }
        apiKeys = try command.apiKeys ?? string("api_keys").map(relative)
        if let mode = try command.tlsMode ?? string("tls_mode") {
            guard let parsed = TLSMode(rawValue: mode) else { throw configError("tls_mode", "expected disable, allow or require, got '\(mode)'") }
            tlsMode = parsed
        }
        tlsCert = try command.tlsCert ?? string("tls_cert").map(relative)
        tlsKey = try command.tlsKey ?? string("tls_key").map(relative)
        if let bytes = command.maxMessageBytes ?? file["max_message_bytes"]?.int {
            guard (1024...(64 << 20)).contains(bytes) else { throw configError("max_message_bytes", "must be between 1024 and 67108864") }
            maxMessageBytes = bytes
        }
        allowPrivilegedBackend = command.allowPrivilegedBackend || file["allow_privileged_backend"]?.bool == true
        auditDir = try command.auditDir ?? string("audit_dir").map(relative)
        auditKey = try command.auditKey ?? string("audit_key").map(relative)
        auditMirror = try command.auditMirror ?? string("audit_mirror").map(relative)
        auditOrigin = try command.auditOrigin ?? string("audit_origin") ?? auditOrigin
        if let seconds = command.auditCheckpointSeconds ?? file["audit_checkpoint_seconds"]?.int {
            guard (1...3600).contains(seconds) else { throw configError("audit_checkpoint_seconds", "must be between 1 and 3600") }
            auditCheckpointSeconds = seconds
        }
        auditUnsigned = command.auditUnsigned || file["audit_unsigned"]?.bool == true
    }

    /// Every decision is recorded before it is answered, so there is no running without a log.
    func openAuditLog() throws -> AuditLog {
        guard let auditDir else { throw configError("audit_dir", "required: the directory of the audit log (--audit-dir)") }
        let key: AuditSigningKey
        if let auditKey {
            key = try AuditCLI.signingKey(auditKey)
        } else if auditUnsigned {
            key = try AuditSigningKey.generate(name: "palisade-unsigned")
            FileHandle.standardError.write(Data("palisade: warning: --audit-unsigned: checkpoints are signed with a throwaway key; reviewers cannot trust them\n".utf8))
        } else {
            throw configError("audit_key", "required: create one with `palisade audit keygen --out FILE`, or pass --audit-unsigned")
        }
        try FileManager.default.createDirectory(atPath: auditDir, withIntermediateDirectories: true)
        do {
            return try AuditLog(AuditLogConfiguration(
                directory: auditDir, signingKey: key, origin: auditOrigin,
                checkpointInterval: .seconds(auditCheckpointSeconds), checkpointMirror: auditMirror))
        } catch {
            throw configError("audit_dir", "cannot open the audit log in \(auditDir): \(error)")
        }
    }

    func proxyConfiguration(audit: AuditLog) throws -> ProxyConfiguration {
        var engines: [String: PolicyEngine] = [:]
        for (name, path) in profiles {
            do { engines[name] = PolicyEngine(policy: try Policy.load(path: path)) } catch {
                throw configError("profiles.\(name)", error.description)
            }
        }
        guard let apiKeys else { throw configError("api_keys", "required: create keys with `palisade keys create --tenant T --profile P --keys-file FILE`") }
        let keys: APIKeyStore
        do { keys = try APIKeyStore.load(path: apiKeys) } catch { throw configError("api_keys", error.description) }
        for key in keys.keys where engines[key.profile] == nil {
            throw configError("api_keys", "key \(key.id) names profile '\(key.profile)', which is not configured (profiles: \(engines.keys.sorted().joined(separator: ", ")))")
        }
        var tls: NIOSSLContext?
        switch (tlsCert, tlsKey) {
        case let (cert?, key?):
            do {
                let configuration = TLSConfiguration.makeServerConfiguration(
                    certificateChain: try NIOSSLCertificate.fromPEMFile(cert).map { .certificate($0) },
                    privateKey: .privateKey(try NIOSSLPrivateKey(file: key, format: .pem)))
                tls = try NIOSSLContext(configuration: configuration)
            } catch {
                throw configError("tls_cert", "cannot load \(cert) and \(key): \(error)")
            }
        case (nil, nil):
            if tlsMode != .disable {
                throw configError("tls_mode", "\(tlsMode.rawValue) needs --tls-cert and --tls-key; use --tls-mode disable only for loopback development")
            }
        default:
            throw configError("tls_cert", "give both --tls-cert and --tls-key")
        }
        return ProxyConfiguration(listenHost: listenHost, listenPort: listenPort, backend: backend, engines: engines, keys: keys,
                                  tlsMode: tlsMode, tls: tls, maxMessageBytes: maxMessageBytes, audit: audit)
    }

    /// The server must be reachable, and row-level security must apply to Palisade's role.
    func checkBackend() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let rows: [[String?]]
        do {
            rows = try await BackendProbe.query(
                "SELECT rolsuper::text, rolbypassrls::text FROM pg_catalog.pg_roles WHERE rolname = current_user", on: backend, group: group)
            try? await group.shutdownGracefully()
        } catch {
            try? await group.shutdownGracefully()
            throw configError("backend", "\(error)")
        }
        guard let row = rows.first, row.count == 2 else { throw configError("backend", "cannot read the role's attributes") }
        if row[0] == "true" || row[1] == "true", !allowPrivilegedBackend {
            throw configError("backend", "role \(backend.user) is \(row[0] == "true" ? "a superuser" : "BYPASSRLS"): row-level security would not apply to it; use a role that owns nothing and can only SELECT (or pass --allow-privileged-backend)")
        }
    }
}

func configError(_ key: String, _ reason: String) -> ConfigurationError {
    ConfigurationError(description: "configuration error: \(key): \(reason)")
}

/// The write end of the pipe the signal handler writes to (a handler may only call async-signal-safe functions).
nonisolated(unsafe) private var signalPipeWriteEnd: Int32 = -1

/// Runs `action` once on SIGINT or SIGTERM. The handler is installed before this returns and only
/// writes a byte to a pipe, so a signal that comes at once is never lost (a Dispatch signal source
/// arms itself asynchronously and can miss it).
final class SignalWatcher {
    private let readEnd: Int32

    init(_ action: @escaping @Sendable () -> Void) {
        var ends: [Int32] = [-1, -1]
        pipe(&ends)
        readEnd = ends[0]
        signalPipeWriteEnd = ends[1]
        for number in [SIGINT, SIGTERM] {
            signal(number) { _ in
                var byte: UInt8 = 1
                _ = write(signalPipeWriteEnd, &byte, 1)
            }
        }
        let readEnd = readEnd
        Thread.detachNewThread {
            var byte: UInt8 = 0
            while read(readEnd, &byte, 1) < 0, errno == EINTR {}
            action()
        }
    }

    func cancel() {
        signal(SIGINT, SIG_DFL)
        signal(SIGTERM, SIG_DFL)
    }
}

struct KeysCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "keys", abstract: "Manage API keys.", subcommands: [Create.self])

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create an API key; prints it once, stores only its hash.")

        @Option(help: "The tenant the key reads as.") var tenant: String
        @Option(help: "The profile (policy) the key uses, e.g. agent or analyst.") var profile: String = "agent"
        @Option(name: .customLong("keys-file"), help: "The keys file to append to (created with mode 0600).") var keysFile: String

        func run() throws {
            let (key, record) = APIKeyStore.generate(tenant: tenant, profile: profile)
            do { try APIKeyStore.append(record, toFile: keysFile) } catch { throw ValidationError(error.description) }
            print(key)
            FileHandle.standardError.write(Data("palisade: key \(record.id) for tenant \(tenant), profile \(profile), stored as a SHA-256 hash in \(keysFile); it is not shown again\n".utf8))
        }
    }
}
