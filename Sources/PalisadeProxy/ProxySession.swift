import AuditChain
import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import PostgresWire
import QueryPolicy
import TenantIdentity

/// One client connection and the server connection Palisade opens for it. Both channels live on
/// the same event loop, so the session needs no locks; its protocol logic is in `QueryRelay` and
/// `BackendStartup`, and this class only moves bytes and keeps the two channels in step.
final class ProxySession {
    private enum State {
        case awaitingStartup(tls: Bool)
        case awaitingPassword(parameters: [String: String], tls: Bool)
        /// SCRAM-SHA-256 with an API key's verifier; `answered` once the server-first message went out.
        case awaitingSCRAM(parameters: [String: String], exchange: SCRAMServer, answered: Bool)
        case connecting(Login, buffered: [Frame])
        /// Queries flow; the relay is kept outside the enum so it is mutated in place, not copied.
        case relaying
        /// Ended, waiting only for audit records to be durable before the last answer goes out.
        case closing
        case closed
    }

    fileprivate struct Login {
        var identity: Identity
        var engine: PolicyEngine
        var parameters: [String: String]
        var startup: BackendStartup
    }

    /// Who the session acts for, from a verified API key or token.
    fileprivate struct Identity {
        var tenant: String
        var profile: String
        var credentialID: String
        var claims: String
        /// When the token expires, and the last moment it is accepted (`TokenVerifier.acceptedUntil`);
        /// nil for API keys.
        var expiresAt: Date?
        var acceptedUntil: Date?
    }

    private let configuration: ProxyConfiguration
    private let cancels: CancelRegistry
    private let eventLoop: EventLoop
    private let auditInbox: AuditInbox
    let sessionID: String
    private var state: State = .awaitingStartup(tls: false)
    private var clientContext: ChannelHandlerContext?
    private var backendChannel: Channel?
    private var clientAddress = ""
    private var cancelKey: (processID: Int32, secretKey: Int32)?
    private var relay: QueryRelay?
    /// What the current reads produced, written once when the read batch completes.
    private var output = QueryRelay.Output()
    /// Audit records appended but not yet on disk. While any is outstanding, nothing goes to the
    /// client: neither a refusal nor an admitted query's rows is released before its record is durable.
    private var outstandingAudits = 0
    private var heldForClient: ByteBuffer?
    private var clientWritable = true
    private var backendWritable = true
    private var readingClient = true
    private var readingBackend = true
    private var closeWhenAudited = false
    /// The tenant counted against its session limit, released when the session ends.
    private var sessionTenant: String?
    /// When the session's token expires, and the last moment it is accepted, checked before each query.
    private var expiresAt: Date?
    private var acceptedUntil: Date?
    /// Whether the sessions gauge counts this session.
    private var countedAsSession = false
    /// When the oldest unanswered write to the server left, for the backend-latency metric.
    private var backendWaitingSince: UInt64?
    /// Armed while the session waits for the server: a server that sends nothing for the profile's
    /// statement_timeout plus `stalledServerGrace` is stalled (its own timeout cannot fire while it
    /// is stopped), and the session ends with 08006 instead of waiting forever.
    private var serverAnswerDeadline: Scheduled<Void>?
    private var serverAnswerAllowance = TimeAmount.seconds(35)
    static let stalledServerGrace = TimeAmount.seconds(5)
    /// Palisade is shutting down: end the session as soon as no query is in flight.
    private var shuttingDown = false
    /// Session events; metadata is ids and rules only, never credentials or literal values.
    private var logger = Logger(label: "palisade.session")

    init(configuration: ProxyConfiguration, cancels: CancelRegistry, eventLoop: EventLoop, auditInbox: AuditInbox) {
        self.configuration = configuration
        self.cancels = cancels
        self.eventLoop = eventLoop
        self.auditInbox = auditInbox
        sessionID = String(format: "%08x", UInt32.random(in: 0...UInt32.max))
        logger[metadataKey: "session"] = "\(sessionID)"
    }

    // MARK: - Client side

    func clientAdded(_ context: ChannelHandlerContext) {
        clientContext = context
        clientAddress = context.channel.remoteAddress.map { "\($0.ipAddress ?? "?"):\($0.port ?? 0)" } ?? ""
        let bound = NIOLoopBound(self, eventLoop: eventLoop)
        loginDeadline = eventLoop.scheduleTask(in: configuration.loginTimeout) {
            bound.value.loginTimedOut()
        }
    }

    /// A client that does not finish logging in (TLS, startup, password) in time is let go, so that
    /// idle half-open connections cannot pile up.
    private var loginDeadline: Scheduled<Void>?

    private func loginTimedOut() {
        switch state {
        case .relaying, .closing, .closed: return
        case .awaitingStartup, .awaitingPassword, .awaitingSCRAM, .connecting: break
        }
        logger.notice("login timed out", metadata: ["client": "\(clientAddress)"])
        if case .connecting = state {
            return fail("the database server did not answer within the login timeout (\(configuration.loginTimeout.nanoseconds / 1_000_000_000) s); Palisade could not log in to it",
                        sqlstate: "08006")
        }
        fail("canceling authentication due to timeout: Palisade allows \(configuration.loginTimeout.nanoseconds / 1_000_000_000) s to log in",
             sqlstate: "57014")
    }

    /// Set before the connection is active to turn it away (Palisade holds as many as it may).
    var refusal: ServerNotice?

    func clientActive() {
        guard let refusal, let channel = clientContext?.channel else { return }
        logger.notice("connection refused", metadata: ["client": "\(clientAddress)", "sqlstate": "\(refusal.sqlstate)"])
        loginDeadline?.cancel()
        state = .closed
        writeToClient { BackendEncoder.error(refusal, into: &$0) }
        sendOutput()
        // Only the sending side closes at once: a client's startup message that crosses the refusal
        // on the wire is read and dropped, where a full close would answer it with a reset that
        // discards the refusal before the client reads it.
        channel.close(mode: .output, promise: nil)
        channel.eventLoop.scheduleTask(in: configuration.refusalLinger) { channel.close(promise: nil) }
    }

    func clientInbound(_ inbound: ClientInbound) {
        switch (state, inbound) {
        case (.awaitingStartup(let tls), .startup(.sslRequest)):
            if !tls, configuration.tlsMode != .disable, let tlsContext = configuration.tls, let context = clientContext {
                writeToClient { $0.writeInteger(UInt8(ascii: "S")) }
                sendOutput()
                do {
                    try context.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tlsContext), position: .first)
                } catch {
                    return fail("could not start TLS: \(error)", sqlstate: "08006")
                }
                state = .awaitingStartup(tls: true)
            } else {
                writeToClient { $0.writeInteger(UInt8(ascii: "N")) }
            }
        case (.awaitingStartup, .startup(.gssEncryptionRequest)):
            writeToClient { $0.writeInteger(UInt8(ascii: "N")) }
        case (.awaitingStartup, .startup(.cancel(let processID, let secretKey))):
            forwardCancel(processID: processID, secretKey: secretKey)
            close()
        case (.awaitingStartup(let tls), .startup(.startup(let major, _, let parameters))):
            startup(major: major, parameters: parameters, tls: tls)
        case (.awaitingPassword(let parameters, _), .frame(let frame)) where frame.type == UInt8(ascii: "p"):
            var body = frame.body
            authenticate(password: body.readCString() ?? "", parameters: parameters)
        case (.awaitingSCRAM(let parameters, let exchange, let answered), .frame(let frame)) where frame.type == UInt8(ascii: "p"):
            continueSCRAM(frame.body, parameters: parameters, exchange: exchange, answered: answered)
        case (.connecting(let login, var buffered), .frame(let frame)):
            // A client may send its first queries before it has read ReadyForQuery. They are kept
            // until the server has logged Palisade in, and the client is not read meanwhile.
            state = .closing  // so that the append does not copy the array `state` holds
            buffered.append(frame)
            state = .connecting(login, buffered: buffered)
            applyBackpressure()
        case (.relaying, .frame(let frame)):
            if let expiresAt, let acceptedUntil, configuration.endSessionOnTokenExpiry, Date() >= acceptedUntil, frame.type != UInt8(ascii: "X") {
                let message = "the session's token expired at \(ISO8601DateFormatter().string(from: expiresAt)); reconnect with a fresh token"
                record(kind: frame.typeName, tenant: currentTenant, credential: currentCredential, user: "",
                       Decision(rule: .tokenExpired, message: message, policyVersion: ""), event: .authFailure)
                return fail(message, sqlstate: "28000")
            }
            relay!.clientFrame(frame, into: &output)
            if relay!.isHoldingClientMessages != holdingClientMessages { applyBackpressure() }
            if let lockoutMessage {
                return fail(lockoutMessage, sqlstate: "28000")
            }
            if output.close { sendOutput(); close() }
        case (.closing, _), (.closed, _):
            break
        default:
            fail("unexpected message during connection startup", sqlstate: "08P01")
        }
    }

    private func startup(major: Int16, parameters: [String: String], tls: Bool) {
        guard major == 3 else { return fail("unsupported frontend protocol \(major); Palisade speaks protocol 3.0", sqlstate: "08P01") }
        if let replication = parameters["replication"], !["false", "off", "no", "0"].contains(replication.lowercased()) {
            return fail("replication connections are not allowed through Palisade", sqlstate: "28000")
        }
        switch configuration.clientAuth {
        case .password:
            if !tls, configuration.tlsMode != .disable {
                return fail("Palisade accepts passwords only over TLS; connect with sslmode=require", sqlstate: "28000")
            }
            state = .awaitingPassword(parameters: parameters, tls: tls)
            writeToClient { BackendEncoder.authenticationCleartextPassword(into: &$0) }
        case .scramSHA256:
            // The key never crosses the wire, so no TLS is needed for it; `require` still requires TLS.
            if !tls, configuration.tlsMode == .require {
                return fail("Palisade requires TLS; connect with sslmode=require", sqlstate: "28000")
            }
            let id = parameters["user"] ?? ""
            let exchange = SCRAMServer(verifier: configuration.keys.key(id: id)?.scram, mockSalt: configuration.keys.mockSalt(forID: id))
            state = .awaitingSCRAM(parameters: parameters, exchange: exchange, answered: false)
            writeToClient { BackendEncoder.authenticationSASL(into: &$0) }
        }
    }

    private func authenticate(password: String, parameters: [String: String]) {
        switch verifyCredential(password) {
        case .failure(let refusal): refuseLogin(refusal, user: parameters["user"] ?? "")
        case .success(let identity): admit(identity, parameters: parameters)
        }
    }

    /// SCRAM-SHA-256: the user name is the API key's id, and the key proves itself without being sent.
    private func continueSCRAM(_ body: ByteBuffer, parameters: [String: String], exchange: SCRAMServer, answered: Bool) {
        let id = parameters["user"] ?? ""
        var exchange = exchange
        let message: [UInt8]
        if answered {
            message = Array(body.readableBytesView)
        } else {
            guard let initial = SCRAMServer.initialResponse(body), initial.mechanism == SCRAMClient.mechanism else {
                return refuseLogin(CredentialRefusal(message: "expected a SASLInitialResponse for \(SCRAMClient.mechanism)", sqlstate: "08P01"), user: id)
            }
            message = initial.message
        }
        let answer: SCRAMServer.Answer
        do {
            answer = try exchange.respond(to: message)
        } catch .wrongProof {
            return refuseLogin(CredentialRefusal(message: "password authentication failed for user \"\(id)\": the user name must be an API key's id and the password the key",
                                                 sqlstate: "28P01"), user: id)
        } catch {
            // Recorded like a wrong proof: a probe of the login is an authentication failure too.
            return refuseLogin(CredentialRefusal(message: "\(error)", sqlstate: "08P01"), user: id)
        }
        switch answer {
        case .challenge(let serverFirst):
            state = .awaitingSCRAM(parameters: parameters, exchange: exchange, answered: true)
            writeToClient { BackendEncoder.authenticationSASLContinue(serverFirst, into: &$0) }
        case .authenticated(let serverFinal):
            // A proof can only match a real verifier, so the key exists.
            guard let key = configuration.keys.key(id: id) else { return fail("the API key is gone", sqlstate: "28P01") }
            writeToClient { BackendEncoder.authenticationSASLFinal(serverFinal, into: &$0) }
            admit(Self.identity(of: key), parameters: parameters)
        }
    }

    private func refuseLogin(_ refusal: CredentialRefusal, user: String) {
        record(kind: "p", tenant: "", credential: "", user: user,
               Decision(rule: .authenticationFailed, message: refusal.message, policyVersion: ""), event: .authFailure)
        fail(refusal.message, sqlstate: refusal.sqlstate)
    }

    /// A verified credential: the lockout, the profile and the tenant's session budget decide
    /// whether the session starts, and then Palisade logs in to the server for it.
    private func admit(_ identity: Identity, parameters: [String: String]) {
        let user = parameters["user"] ?? ""
        if let failure = configuration.audit.failure {
            return fail("Palisade cannot write its audit log (\(failure)); no queries are admitted", sqlstate: "58030")
        }
        let now = Date()
        if let lockout = configuration.budgets.lockout, case .locked(let until) = lockout.check(credential: identity.credentialID, now: now) {
            let refusal = lockout.refusal(credential: identity.credentialID, until: until)
            record(kind: "p", tenant: identity.tenant, credential: identity.credentialID, user: user,
                   Decision(rule: .lockedOut, message: refusal.message, policyVersion: ""), event: .authFailure)
            return fail(refusal.message, sqlstate: refusal.sqlstate)
        }
        guard let engine = configuration.policies.engine(for: identity.profile) else {
            return fail("the credential selects profile \"\(identity.profile)\", which this Palisade does not configure", sqlstate: "28000")
        }
        if let sessions = configuration.budgets.sessions {
            guard sessions.open(tenant: identity.tenant) else {
                let refusal = sessions.refusal(tenant: identity.tenant)
                record(kind: "p", tenant: identity.tenant, credential: identity.credentialID, user: user,
                       Decision(rule: .tooManySessions, message: refusal.message, policyVersion: engine.policy.version), event: .authFailure)
                return fail(refusal.message, sqlstate: refusal.sqlstate)
            }
            sessionTenant = identity.tenant
        }
        state = .connecting(Login(identity: identity, engine: engine, parameters: parameters,
                                  startup: BackendStartup(user: configuration.backend.user, password: configuration.backend.password)),
                            buffered: [])
        connectBackend()
    }

    /// A password is a JWT when it has a JWT's shape and tokens are configured; otherwise an API key.
    fileprivate struct CredentialRefusal: Error {
        var message: String
        var sqlstate: String
    }

    private func verifyCredential(_ password: String) -> Result<Identity, CredentialRefusal> {
        if let tokens = configuration.tokens, password.hasPrefix("eyJ"), password.utf8.count(where: { $0 == UInt8(ascii: ".") }) == 2 {
            switch tokens.verifySync(password, now: Date()) {
            case .failure(let rejection):
                return .failure(CredentialRefusal(message: rejection.message, sqlstate: rejection.sqlstate))
            case .success(let token):
                let profile = token.capabilities.lazy.compactMap { self.configuration.capabilityProfiles[$0] }.first
                    ?? configuration.capabilityProfiles["agent"] ?? "agent"
                return .success(Identity(tenant: token.tenant, profile: profile, credentialID: token.credentialID,
                                         claims: token.claimsJSON, expiresAt: token.expiresAt,
                                         acceptedUntil: tokens.acceptedUntil(expiresAt: token.expiresAt)))
            }
        }
        guard let key = configuration.keys.authenticate(password) else {
            return .failure(CredentialRefusal(message: "password authentication failed: the API key or token is not valid", sqlstate: "28P01"))
        }
        return .success(Self.identity(of: key))
    }

    private static func identity(of key: APIKey) -> Identity {
        Identity(tenant: key.tenant, profile: key.profile, credentialID: key.id,
                 claims: TenantClaims.apiKeyClaims(tenant: key.tenant, role: key.profile, capabilities: [key.profile], keyID: key.id),
                 expiresAt: nil, acceptedUntil: nil)
    }

    func clientReadComplete() {
        sendOutput()
    }

    func clientWritabilityChanged(isWritable: Bool) {
        clientWritable = isWritable
        applyBackpressure()
    }

    func backendWritabilityChanged(isWritable: Bool) {
        backendWritable = isWritable
        applyBackpressure()
    }

    /// Answers held for the audit log past this size stop the reading on both sides until they go out.
    static let heldBytesLimit = 1 << 20
    /// Whether the relay holds the client's messages behind a query waiting for its estimate; the
    /// client is not read meanwhile, so what it pipelines waits in TCP, not in Palisade's memory.
    private var holdingClientMessages = false

    /// Reads only what can be passed on: rows from the server while the client takes them, and the
    /// client's next messages while both the server and the client keep up. A client that sends
    /// without reading its answers is then held back by TCP, as the server itself would hold it,
    /// instead of filling Palisade's memory.
    private func applyBackpressure() {
        let holdingTooMuch = (heldForClient?.readableBytes ?? 0) >= Self.heldBytesLimit
        let readBackend = clientWritable && !holdingTooMuch
        var waitingForServerLogin = false
        if case .connecting(_, let buffered) = state { waitingForServerLogin = !buffered.isEmpty }
        holdingClientMessages = relay?.isHoldingClientMessages ?? false
        let readClient = readBackend && backendWritable && !waitingForServerLogin && !holdingClientMessages
        if readBackend != readingBackend, let backendChannel {
            readingBackend = readBackend
            backendChannel.setOption(ChannelOptions.autoRead, value: readBackend).whenFailure { _ in }
            // A server held back because the client does not read is not stalled.
            if !readBackend { disarmServerAnswerDeadline() } else if !(relay?.isIdle ?? true) { armServerAnswerDeadline() }
        }
        if readClient != readingClient, let channel = clientContext?.channel {
            readingClient = readClient
            channel.setOption(ChannelOptions.autoRead, value: readClient).whenFailure { _ in }
        }
    }

    func clientError(_ error: Error) {
        if let error = error as? WireError {
            let tooLarge: Bool
            if case .messageTooLarge = error { tooLarge = true } else { tooLarge = false }
            record(kind: "?", tenant: currentTenant, credential: currentCredential, user: "",
                   Decision(rule: tooLarge ? .messageTooLarge : .protocolViolation, message: error.description, policyVersion: ""),
                   event: .protocolRefusal)
            fail(error.description + "; the session is closed", sqlstate: tooLarge ? "54000" : "08P01")
        } else {
            close()
        }
    }

    func clientClosed() {
        close()
    }

    // MARK: - Server side

    private func connectBackend() {
        let bound = NIOLoopBound(self, eventLoop: eventLoop)
        let tls = configuration.backendTLS
        ClientBootstrap(group: eventLoop)
            .channelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .connectTimeout(.seconds(10))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls { try channel.pipeline.syncOperations.addHandler(BackendTLSNegotiator(tls: tls)) }
                    try channel.pipeline.syncOperations.addHandlers(
                        ByteToMessageHandler(BackendFrameDecoder(session: bound.value)), BackendHandler(session: bound.value))
                }
            }
            .connect(host: configuration.backend.host, port: configuration.backend.port)
            .whenComplete { result in
                let session = bound.value
                switch result {
                case .success(let channel):
                    if case .closed = session.state { channel.close(promise: nil); return }
                    session.backendChannel = channel
                case .failure(let error):
                    session.fail("Palisade cannot reach the database server at \(session.configuration.backend.host):\(session.configuration.backend.port): \(ConnectFailure.describe(error))",
                                 sqlstate: "08006")
                }
            }
    }

    func backendActive(_ channel: Channel) {
        guard case .connecting(let login, _) = state else { return }
        backendChannel = channel
        let policy = login.engine.policy
        var parameters: [(String, String)] = [
            ("user", configuration.backend.user),
            ("database", configuration.backend.database),
            ("client_encoding", "UTF8"),
            // The server itself refuses writes if anything ever slipped through the policy.
            ("default_transaction_read_only", "on"),
            ("statement_timeout", "\(policy.statementTimeoutMilliseconds)"),
            ("idle_in_transaction_session_timeout", "\(policy.idleInTransactionTimeoutMilliseconds)"),
            ("application_name", (login.parameters["application_name"].map { $0 + " " } ?? "") + "[palisade \(sessionID)]"),
        ]
        for name in ProxyConfiguration.forwardedStartupParameters.sorted() where name != "application_name" {
            if let value = login.parameters[name] { parameters.append((name, value)) }
        }
        FrontendEncoder.startup(parameters, into: &output.toBackend)
        sendOutput()
    }

    private func armServerAnswerDeadline() {
        guard serverAnswerDeadline == nil, readingBackend, case .relaying = state else { return }
        let allowance = serverAnswerAllowance
        serverAnswerDeadline = eventLoop.scheduleTask(in: allowance) { [weak self] in
            guard let self else { return }
            self.serverAnswerDeadline = nil
            guard case .relaying = self.state, !(self.relay?.isIdle ?? true) else { return }
            self.logger.warning("database server stalled", metadata: ["waited_ms": "\(allowance.nanoseconds / 1_000_000)"])
            self.fail("the database server did not answer within \(allowance.nanoseconds / 1_000_000_000) s (the profile's statement_timeout plus \(Self.stalledServerGrace.nanoseconds / 1_000_000_000) s); the session is closed",
                      sqlstate: "08006")
        }
    }

    private func disarmServerAnswerDeadline() {
        serverAnswerDeadline?.cancel()
        serverAnswerDeadline = nil
    }

    func backendFrame(_ frame: Frame) {
        disarmServerAnswerDeadline()
        switch state {
        case .relaying:
            if frame.type == UInt8(ascii: "Z"), let since = backendWaitingSince {
                ProxyMetrics.shared.backendAnswered(nanoseconds: Int64(DispatchTime.now().uptimeNanoseconds - since))
                backendWaitingSince = nil
            }
            relay!.backendFrame(frame, into: &output)
            if !output.resultLimits.isEmpty { recordResultLimits() }
            if relay!.isHoldingClientMessages != holdingClientMessages { applyBackpressure() }
            if output.close { sendOutput(); close() }
            if shuttingDown, relay?.isIdle ?? false { endForShutdown() }
            if !(relay?.isIdle ?? true) { armServerAnswerDeadline() }
        case .connecting(var login, let buffered):
            let step = login.startup.frame(frame)
            state = .connecting(login, buffered: buffered)
            switch step {
            case .send(let buffer):
                output.toBackend.writeImmutableBuffer(buffer)
            case .wait:
                break
            case .ready(let parameters, let processID, let secretKey):
                ready(login, buffered: buffered, parameters: parameters, backendKey: CancelRegistry.Target(processID: processID, secretKey: secretKey))
            case .failed(let reason):
                fail("Palisade could not log in to the database server: \(reason)", sqlstate: "08006")
            }
        case .awaitingStartup, .awaitingPassword, .awaitingSCRAM, .closing, .closed:
            break
        }
    }

    private func ready(_ login: Login, buffered: [Frame], parameters: [(String, String)], backendKey: CancelRegistry.Target) {
        let key = cancels.register(backendKey)
        cancelKey = key
        writeToClient { buffer in
            BackendEncoder.authenticationOk(into: &buffer)
            for (name, value) in parameters { BackendEncoder.parameterStatus(name, value, into: &buffer) }
            BackendEncoder.backendKeyData(processID: key.processID, secretKey: key.secretKey, into: &buffer)
            BackendEncoder.readyForQuery(.idle, into: &buffer)
        }
        let context = DecisionContext(session: self, login: login, budgets: configuration.budgets, policies: configuration.policies)
        expiresAt = login.identity.expiresAt
        acceptedUntil = login.identity.acceptedUntil
        identityTenant = login.identity.tenant
        identityCredential = login.identity.credentialID
        serverAnswerAllowance = .milliseconds(Int64(login.engine.policy.statementTimeoutMilliseconds)) + Self.stalledServerGrace
        let policy = login.engine.policy
        relayUser = login.parameters["user"] ?? ""
        relayPolicyVersion = policy.version
        relay = QueryRelay(claims: login.identity.claims, statementTimeoutMilliseconds: policy.statementTimeoutMilliseconds,
                           budget: ResultBudget(maxRows: policy.maxResultRows, maxBytes: policy.maxResultBytes),
                           costBudget: policy.costBudget, sessionID: sessionID) { sql, kind, parameterTypes in
            context.decide(sql, kind, parameterTypes: parameterTypes)
        }
        state = .relaying
        loginDeadline?.cancel()
        logger[metadataKey: "tenant"] = "\(login.identity.tenant)"
        logger[metadataKey: "credential"] = "\(login.identity.credentialID)"
        logger.info("session started", metadata: ["profile": "\(login.identity.profile)", "client": "\(clientAddress)"])
        countedAsSession = true
        ProxyMetrics.shared.sessionOpened()
        for frame in buffered { relay!.clientFrame(frame, into: &output) }
        sendOutput()
        if output.close { close() }
        applyBackpressure()
    }

    func backendReadComplete() {
        sendOutput()
    }

    func backendClosed() {
        backendChannel = nil
        switch state {
        case .closed, .closing: break
        case .relaying, .connecting: fail("the database server closed the connection", sqlstate: "57P01")
        default: close()
        }
    }

    func backendError(_ error: Error) {
        fail("lost the connection to the database server: \(ConnectFailure.describe(error))", sqlstate: "08006")
    }

    private func forwardCancel(processID: Int32, secretKey: Int32) {
        // Unknown keys are dropped silently, as the server does.
        guard let target = cancels.target(processID: processID, secretKey: secretKey) else { return }
        let backend = configuration.backend
        ClientBootstrap(group: eventLoop).connect(host: backend.host, port: backend.port).whenSuccess { channel in
            var buffer = channel.allocator.buffer(capacity: 16)
            FrontendEncoder.cancel(processID: target.processID, secretKey: target.secretKey, into: &buffer)
            channel.writeAndFlush(buffer).whenComplete { _ in channel.close(promise: nil) }
        }
    }

    /// Shutdown: end now if idle (or if forced), otherwise once the current query is answered.
    func shutDown(force: Bool = false) {
        shuttingDown = true
        if force || relay?.isIdle ?? true { endForShutdown() }
    }

    private func endForShutdown() {
        fail("terminating connection: Palisade is shutting down", sqlstate: "57P01")
        sendOutput()
    }

    // MARK: - Sending

    private func writeToClient(_ body: (inout ByteBuffer) -> Void) {
        body(&output.toClient)
    }

    /// Writes what the reads produced: one write and one flush per direction.
    private func sendOutput() {
        if output.toBackend.readableBytes > 0, let backendChannel {
            if backendWaitingSince == nil, case .relaying = state { backendWaitingSince = DispatchTime.now().uptimeNanoseconds }
            armServerAnswerDeadline()
            backendChannel.writeAndFlush(output.toBackend, promise: nil)
            output.toBackend = backendChannel.allocator.buffer(capacity: 512)
        }
        guard output.toClient.readableBytes > 0, let clientContext else { return }
        if outstandingAudits > 0 {
            if heldForClient == nil {
                heldForClient = output.toClient
            } else {
                heldForClient!.writeImmutableBuffer(output.toClient)
            }
            applyBackpressure()
        } else {
            clientContext.writeAndFlush(NIOAny(output.toClient), promise: nil)
        }
        output.toClient = clientContext.channel.allocator.buffer(capacity: 2048)
    }

    private func auditCompleted(_ result: Result<UInt64, AuditError>) {
        outstandingAudits -= 1
        if case .failure(let error) = result {
            logger.critical("audit log not writable; closing the session", metadata: ["error": "\(error)"])
            // Fail closed: what the unrecorded decision answered is never released.
            heldForClient = nil
            output.toClient.clear()
            outstandingAudits = 0
            closeWhenAudited = false
            if case .closed = state { return }
            writeToClient {
                BackendEncoder.error(ServerNotice(severity: "FATAL", sqlstate: "58030",
                                                  message: "Palisade cannot write its audit log (\(error)); no queries are admitted"), into: &$0)
            }
            close()
            return
        }
        guard outstandingAudits == 0 else { return }
        if let held = heldForClient, let clientContext {
            clientContext.writeAndFlush(NIOAny(held), promise: nil)
        }
        heldForClient = nil
        applyBackpressure()
        sendOutput()
        if closeWhenAudited { close() }
    }

    /// Sends a FATAL error to the client and ends the session.
    func fail(_ message: String, sqlstate: String) {
        switch state {
        case .closed, .closing: return
        default: break
        }
        writeToClient { BackendEncoder.error(ServerNotice(severity: "FATAL", sqlstate: sqlstate, message: message), into: &$0) }
        close()
    }

    private func close() {
        if case .closed = state { return }
        loginDeadline?.cancel()
        disarmServerAnswerDeadline()
        if outstandingAudits > 0, clientContext != nil {
            // The refusal that ends this session is written once its record is durable.
            closeWhenAudited = true
            relay = nil
            state = .closing
            return
        }
        state = .closed
        relay = nil
        if countedAsSession {
            ProxyMetrics.shared.sessionClosed()
            logger.info("session ended")
        }
        countedAsSession = false
        if let sessionTenant { configuration.budgets.sessions?.close(tenant: sessionTenant) }
        sessionTenant = nil
        output.toBackend.clear()
        sendOutput()
        if let cancelKey { cancels.remove(processID: cancelKey.processID, secretKey: cancelKey.secretKey) }
        if let backendChannel {
            var buffer = backendChannel.allocator.buffer(capacity: 5)
            FrontendEncoder.terminate(into: &buffer)
            backendChannel.writeAndFlush(buffer).whenComplete { _ in backendChannel.close(promise: nil) }
        }
        backendChannel = nil
        clientContext?.close(promise: nil)
        clientContext = nil
    }

    // MARK: - Decisions

    private var identityTenant = ""
    private var identityCredential = ""

    private var currentTenant: String {
        if case .connecting(let login, _) = state { return login.identity.tenant }
        return identityTenant
    }

    private var currentCredential: String {
        if case .connecting(let login, _) = state { return login.identity.credentialID }
        return identityCredential
    }

    private var relayUser = ""
    private var relayPolicyVersion = ""

    /// Audits answers cut at the result budget, each an entry of its own with the request id of the
    /// decision that admitted the query (that entry is already durable). The 54000 error that ends
    /// the answer is held until this entry is durable too.
    private func recordResultLimits() {
        for event in output.resultLimits {
            let message = event.message ?? "the answer was cut after \(event.relayedRows) rows (\(event.relayedBytes) bytes) at the profile's " +
                (event.rule == .resultBytes ? "max_result_bytes" : "max_rows")
            ProxyMetrics.shared.resultLimited(event.rule)
            record(kind: "D", tenant: currentTenant, credential: currentCredential, user: relayUser,
                   Decision(rule: event.rule, message: message, policyVersion: relayPolicyVersion),
                   requestID: "\(sessionID)-\(event.request)", event: event.isCostLimit ? .costLimit : .resultLimit)
        }
        output.resultLimits.removeAll()
    }

    /// Set by a decision whose denial locked the credential out; the session ends after that message.
    fileprivate var lockoutMessage: String?

    fileprivate func record(kind: String, tenant: String, credential: String, user: String, _ decision: Decision,
                            requestID: String? = nil, event: AuditEvent = .decision, normalized: String? = nil,
                            monitorOnly: Bool = false) {
        var record = AuditRecord(
            event: event, requestID: requestID ?? "\(sessionID)-0", sessionID: sessionID, tenant: tenant, credentialID: credential,
            clientAddress: clientAddress, databaseUser: user, messageKind: kind,
            decision: decision.isAllowed ? .allow : .deny, rule: decision.rule.rawValue, sqlstate: decision.sqlstate,
            message: decision.message, statementType: decision.statementType, tables: decision.tables, functions: decision.functions,
            fingerprint: decision.fingerprint, normalized: normalized ?? decision.normalized, policyVersion: decision.policyVersion)
        ProxyMetrics.shared.decided(decision, tenant: tenant, monitorOnly: monitorOnly)
        if !decision.isAllowed {
            logger.notice("denied", metadata: [
                "request": "\(record.requestID ?? "")", "rule": "\(decision.rule.rawValue)", "sqlstate": "\(decision.sqlstate)",
                "kind": "\(kind)", "normalized": "\(record.normalized ?? "")", "enforced": "\(monitorOnly ? "no" : "yes")",
            ])
        }
        if monitorOnly, !decision.isAllowed {
            // Monitor mode: the policy would deny this, but the query was forwarded.
            record.detail["mode"] = .string("monitor")
            record.detail["enforced"] = .string("no")
        }
        outstandingAudits += 1
        let bound = NIOLoopBound(self, eventLoop: eventLoop)
        auditInbox.append(record, to: configuration.audit) { result in bound.value.auditCompleted(result) }
    }
}

/// What the relay's decisions need from the session, without keeping the session alive.
private final class DecisionContext {
    private weak var session: ProxySession?
    private let policies: PolicyRegistry
    private let profile: String
    /// The profile's engine when the session started, should a reload ever drop the profile.
    private let loginEngine: PolicyEngine
    private let tenant: String
    private let credential: String
    private let user: String
    private let sessionID: String
    private let budgets: TenantBudgets
    private var requests = 0

    init(session: ProxySession, login: ProxySession.Login, budgets: TenantBudgets, policies: PolicyRegistry) {
        self.session = session
        self.policies = policies
        profile = login.identity.profile
        loginEngine = login.engine
        tenant = login.identity.tenant
        credential = login.identity.credentialID
        user = login.parameters["user"] ?? ""
        sessionID = session.sessionID
        self.budgets = budgets
    }

    func decide(_ sql: String, _ kind: QueryRelay.MessageKind, parameterTypes: [UInt32]) -> (Decision, ServerNotice?) {
        // A reloaded policy applies from the next query on.
        let engine = policies.engine(for: profile) ?? loginEngine
        requests += 1
        let requestID = "\(sessionID)-\(requests)"
        let now = Date()
        var decision: Decision
        if kind == .functionCall {
            decision = Decision(rule: .functionCallMessage, message: "fast-path function calls are not admitted",
                                hint: "Call functions from a SELECT statement.", policyVersion: engine.policy.version)
        } else if let rate = budgets.rate, case .limited(let retryAfter) = rate.admit(tenant: tenant, now: now) {
            let refusal = rate.refusal(tenant: tenant, retryAfter: retryAfter)
            decision = Decision(rule: .rateLimited, message: refusal.message, hint: refusal.hint, policyVersion: engine.policy.version)
        } else {
            let started = DispatchTime.now().uptimeNanoseconds
            decision = engine.evaluate(sql)
            if decision.isAllowed, !parameterTypes.isEmpty {
                decision = engine.checkParameterTypes(parameterTypes, of: policies.serverTypes, admitting: decision)
            }
            ProxyMetrics.shared.decisionTook(nanoseconds: Int64(DispatchTime.now().uptimeNanoseconds - started))
        }
        session?.record(kind: kind.rawValue, tenant: tenant, credential: credential, user: user, decision, requestID: requestID,
                        event: kind == .functionCall ? .protocolRefusal : .decision,
                        normalized: engine.policy.logsRawQueryText && kind != .functionCall ? sql : nil,
                        monitorOnly: engine.policy.isMonitorOnly && decision.rule != .rateLimited && kind != .functionCall)
        let enforced = decision.rule == .rateLimited || kind == .functionCall || !engine.policy.isMonitorOnly
        guard !decision.isAllowed, enforced else { return (decision, nil) }
        // Empty text is a driver's ping (JDBC's isValid), answered as the server would: not a denial to count.
        if decision.rule != .rateLimited, decision.rule != .empty, let lockout = budgets.lockout,
           let event = lockout.recordDenial(credential: credential, now: now) {
            let message = event.refusal.message
            session?.record(kind: kind.rawValue, tenant: tenant, credential: credential, user: user,
                            Decision(rule: .lockedOut, message: message, policyVersion: engine.policy.version),
                            requestID: requestID, event: .lockout)
            session?.lockoutMessage = message
        }
        return (decision, ServerNotice(
            sqlstate: decision.sqlstate, message: "Palisade: " + decision.message, detail: "rule \(decision.rule.rawValue); request \(requestID)",
            hint: decision.hint, position: decision.position))
    }
}
