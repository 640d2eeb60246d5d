import AuditChain
import Foundation
import NIOCore
import PostgresWire
import QueryPolicy
import TenantIdentity

/// One client session's protocol, as a value that consumes events and returns what to do: the
/// channel handler (`ProxySession`) only executes the actions, sends `output` and appends the
/// records in it. No sockets, timers or clocks here: time comes in with the events.
///
/// Phases: startup → password or SCRAM → connecting (Palisade logs in to the server) → relaying
/// (`QueryRelay`) → draining (shutdown, waiting for the query in flight) → closed.
struct SessionStateMachine {
    enum Phase {
        case awaitingStartup(tls: Bool)
        case awaitingPassword(tls: Bool)
        /// SCRAM-SHA-256 with an API key's verifier; `answered` once the server-first message went out.
        case awaitingSCRAM(exchange: SCRAMServer, answered: Bool)
        /// Client messages sent before the server has logged Palisade in wait in `buffered`.
        case connecting(BackendStartup, buffered: [Frame])
        /// Queries flow; the relay is kept outside the enum so it is mutated in place, not copied.
        case relaying
        /// Palisade is shutting down: the session ends as soon as no query is in flight.
        case draining
        case closed
    }

    enum Action: Equatable {
        case none
        /// Answer 'S' went out: start TLS on the client connection before anything else.
        case startTLS
        /// Open the connection to the server; the login follows on `backendConnected`.
        case connectBackend
        /// A CancelRequest for a server process: send it there, then close.
        case forwardCancel(processID: Int32, secretKey: Int32)
        /// The server logged Palisade in: queries flow from here.
        case started
        /// End the session (after sending `output`).
        case close
        /// End the session as `close` does, while the server still runs a request of its: send the
        /// server a CancelRequest with its own key for that backend too. The Terminate that ends
        /// the server connection is read only once the query is over, and PostgreSQL notices a
        /// closed socket only when it next writes: without the cancel, a query a client left kept
        /// its backend busy until statement_timeout (sixteenth red team, second pass: one tenant that dropped 49
        /// sessions mid-query five times held 108 server connections against its limit of 49).
        case cancelAndClose(processID: Int32, secretKey: Int32)

        /// Whether the session ends with this action.
        var closes: Bool {
            switch self {
            case .close, .cancelAndClose: true
            default: false
            }
        }
    }

    let configuration: ProxyConfiguration
    let cancels: CancelRegistry
    let sessionID: String
    private(set) var phase: Phase = .awaitingStartup(tls: false)
    /// Set once the credential is verified; the one place the session's identity is kept (tests
    /// change its expiry).
    var identity: SessionIdentity?
    private(set) var engine: PolicyEngine?
    /// The client's startup parameters (user, database, application_name, …).
    private(set) var parameters: [String: String] = [:]
    private(set) var relay: QueryRelay?
    /// Bytes to send each way, and the records the session owes, since the handler last took them.
    var output = QueryRelay.Output()
    /// The tenant counted against its session limit, to release when the session ends.
    private(set) var countedTenant: String?
    /// Whether the server session was started with the claims as a startup parameter.
    private(set) var claimsSetAtStartup = false
    /// The client-facing cancel key handed out at login, to remove when the session ends.
    private(set) var cancelKey: (processID: Int32, secretKey: Int32)?
    /// The server's own key for this session's backend (BackendKeyData at login): what stops the
    /// query in flight when the session ends mid-query.
    private(set) var serverKey: CancelRegistry.Target?

    init(configuration: ProxyConfiguration, cancels: CancelRegistry, sessionID: String) {
        self.configuration = configuration
        self.cancels = cancels
        self.sessionID = sessionID
    }

    var user: String { parameters["user"] ?? "" }
    var isClosed: Bool { if case .closed = phase { true } else { false } }
    var isRelaying: Bool {
        switch phase {
        case .relaying, .draining: true
        default: false
        }
    }

    /// Whether a query has been sent on that the server has not answered to its end.
    var awaitsServer: Bool { isRelaying && !(relay?.isIdle ?? true) }

    /// Whether the client sent messages without a Sync since: the server's transaction stays open.
    var leftOpenWithoutSync: Bool { isRelaying && (relay?.sentSinceSync ?? false) }

    /// Whether the client has yet to prove who it is: its messages then are a password, a token
    /// or SCRAM's, a few KB at most.
    var isAuthenticating: Bool {
        switch phase {
        case .awaitingStartup, .awaitingPassword, .awaitingSCRAM: true
        default: false
        }
    }

    var isLoggingIn: Bool {
        switch phase {
        case .awaitingStartup, .awaitingPassword, .awaitingSCRAM, .connecting: true
        case .relaying, .draining, .closed: false
        }
    }

    /// Whether the client's next messages must wait: for the server's login, or behind an estimate.
    var holdsClientMessages: Bool {
        if case .connecting(_, let buffered) = phase { return !buffered.isEmpty }
        return relay?.isHoldingClientMessages ?? false
    }

    // MARK: - Client events

    mutating func sslRequest() -> Action {
        guard case .awaitingStartup(let tls) = phase else { return protocolViolation() }
        guard !tls, configuration.tlsMode != .disable, configuration.tls != nil else {
            output.toClient.writeInteger(EncryptionAnswer.unwilling.rawValue)
            return .none
        }
        output.toClient.writeInteger(EncryptionAnswer.willing.rawValue)
        phase = .awaitingStartup(tls: true)
        return .startTLS
    }

    mutating func gssEncryptionRequest() -> Action {
        guard case .awaitingStartup = phase else { return protocolViolation() }
        output.toClient.writeInteger(EncryptionAnswer.unwilling.rawValue)
        return .none
    }

    mutating func cancelRequest(processID: Int32, secretKey: Int32) -> Action {
        guard case .awaitingStartup = phase else { return protocolViolation() }
        phase = .closed
        // Unknown keys are dropped silently, as the server does.
        guard let target = cancels.target(processID: processID, secretKey: secretKey) else { return .close }
        return .forwardCancel(processID: target.processID, secretKey: target.secretKey)
    }

    mutating func startup(major: Int16, parameters: [String: String]) -> Action {
        guard case .awaitingStartup(let tls) = phase else { return protocolViolation() }
        guard major == 3 else { return fail("unsupported frontend protocol \(major); Palisade speaks protocol 3.0", sqlstate: SQLState.protocolViolation) }
        if let replication = parameters["replication"], !["false", "off", "no", "0"].contains(replication.lowercased()) {
            return fail("replication connections are not allowed through Palisade", sqlstate: SQLState.invalidAuthorization)
        }
        self.parameters = parameters
        switch configuration.clientAuth {
        case .password:
            if !tls, configuration.tlsMode != .disable {
                return fail("Palisade accepts passwords only over TLS; connect with sslmode=require", sqlstate: SQLState.invalidAuthorization)
            }
            phase = .awaitingPassword(tls: tls)
            BackendEncoder.authenticationCleartextPassword(into: &output.toClient)
        case .scramSHA256:
            // The key never crosses the wire, so no TLS is needed for it; `require` still requires TLS.
            if !tls, configuration.tlsMode == .require {
                return fail("Palisade requires TLS; connect with sslmode=require", sqlstate: SQLState.invalidAuthorization)
            }
            let exchange = SCRAMServer(verifier: configuration.keys.key(id: user)?.scram, mockSalt: configuration.keys.mockSalt(forID: user))
            phase = .awaitingSCRAM(exchange: exchange, answered: false)
            BackendEncoder.authenticationSASL(into: &output.toClient)
        }
        return .none
    }

    mutating func clientFrame(_ frame: Frame, now: Date) -> Action {
        switch phase {
        case .awaitingPassword where frame.frontendType == .password:
            var body = frame.body
            let resolver = CredentialResolver(keys: configuration.keys, tokens: configuration.tokens, capabilityProfiles: configuration.capabilityProfiles)
            switch resolver.resolve(password: body.readCString() ?? "", now: now) {
            case .failure(let refusal): return refuseLogin(refusal)
            case .success(let identity): return admit(identity, now: now)
            }
        case .awaitingSCRAM(let exchange, let answered) where frame.frontendType == .password:
            return continueSCRAM(frame.body, exchange: exchange, answered: answered, now: now)
        case .connecting(let startup, var buffered):
            // A client may send its first queries before it has read ReadyForQuery. They wait until
            // the server has logged Palisade in, and the client is not read meanwhile.
            phase = .closed  // so that the append does not copy the array `phase` holds
            buffered.append(frame)
            phase = .connecting(startup, buffered: buffered)
            return .none
        case .relaying, .draining:
            if configuration.endSessionOnTokenExpiry, frame.frontendType != .terminate, let message = identity?.expiry(at: now) {
                owe(SessionRecord(kind: frame.typeName, tenant: identity!.tenant, credential: identity!.credentialID, user: "",
                                  Decision(rule: .tokenExpired, message: message, policyVersion: ""), event: .authFailure))
                return fail(message, sqlstate: SQLState.invalidAuthorization)
            }
            relay!.clientFrame(frame, into: &output)
            return afterRelay(now: now)
        case .closed:
            return .none
        default:
            return protocolViolation()
        }
    }

    /// Malformed client bytes: recorded, then the session ends.
    mutating func clientError(_ error: WireError) -> Action {
        if isClosed { return .none }
        let tooLarge: Bool
        if case .messageTooLarge = error { tooLarge = true } else { tooLarge = false }
        owe(SessionRecord(kind: "?", tenant: identity?.tenant ?? "", credential: identity?.credentialID ?? "", user: "",
                          Decision(rule: tooLarge ? .messageTooLarge : .protocolViolation, message: error.description, policyVersion: ""),
                          event: .protocolRefusal))
        return fail(error.description + "; the session is closed", sqlstate: tooLarge ? SQLState.programLimitExceeded : SQLState.protocolViolation)
    }

    /// The client took too long to log in; idle half-open connections must not pile up.
    mutating func loginTimedOut(after seconds: Int64) -> Action {
        guard isLoggingIn else { return .none }
        if case .connecting = phase {
            return fail("the database server did not answer within the login timeout (\(seconds) s); Palisade could not log in to it", sqlstate: SQLState.connectionFailure)
        }
        return fail("canceling authentication due to timeout: Palisade allows \(seconds) s to log in", sqlstate: SQLState.queryCanceled)
    }

    /// Shutdown: end now if idle (or if forced), otherwise once the query in flight is answered.
    mutating func shutDown(force: Bool) -> Action {
        switch phase {
        case .closed: return .none
        case .relaying, .draining:
            phase = .draining
            if force || relay!.isIdle { return endForShutdown() }
            return .none
        default: return endForShutdown()
        }
    }

    // MARK: - Login

    private mutating func continueSCRAM(_ body: ByteBuffer, exchange: SCRAMServer, answered: Bool, now: Date) -> Action {
        var exchange = exchange
        let message: [UInt8]
        if answered {
            message = Array(body.readableBytesView)
        } else {
            guard let initial = SCRAMServer.initialResponse(body), initial.mechanism == SCRAMClient.mechanism else {
                return refuseLogin(CredentialRefusal(message: "expected a SASLInitialResponse for \(SCRAMClient.mechanism)", sqlstate: SQLState.protocolViolation))
            }
            message = initial.message
        }
        let answer: SCRAMServer.Answer
        do {
            answer = try exchange.respond(to: message)
        } catch .wrongProof {
            return refuseLogin(CredentialRefusal(message: "password authentication failed for user \"\(user)\": the user name must be an API key's id and the password the key",
                                                 sqlstate: SQLState.invalidPassword))
        } catch {
            // Recorded like a wrong proof: a probe of the login is an authentication failure too.
            return refuseLogin(CredentialRefusal(message: "\(error)", sqlstate: SQLState.protocolViolation))
        }
        switch answer {
        case .challenge(let serverFirst):
            phase = .awaitingSCRAM(exchange: exchange, answered: true)
            BackendEncoder.authenticationSASLContinue(serverFirst, into: &output.toClient)
            return .none
        case .authenticated(let serverFinal):
            // A proof can only match a real verifier, so the key exists.
            guard let key = configuration.keys.key(id: user) else { return fail("the API key is gone", sqlstate: SQLState.invalidPassword) }
            BackendEncoder.authenticationSASLFinal(serverFinal, into: &output.toClient)
            return admit(CredentialResolver.identity(of: key), now: now)
        }
    }

    private mutating func refuseLogin(_ refusal: CredentialRefusal) -> Action {
        owe(SessionRecord(kind: "p", tenant: "", credential: "", user: user,
                          Decision(rule: .authenticationFailed, message: refusal.message, policyVersion: ""), event: .authFailure))
        return fail(refusal.message, sqlstate: refusal.sqlstate)
    }

    /// The server's application_name: the client's, cut so that the session's marker fits in the
    /// 63 bytes the server keeps (an 80-character name pushed it out, seventeenth red team).
    static func applicationName(client: String?, sessionID: String) -> String {
        let marker = "[palisade \(sessionID)]"
        guard let client, !client.isEmpty else { return marker }
        var room = max(0, 63 - marker.utf8.count - 1)
        var kept = ""
        for character in client {
            let bytes = character.utf8.count
            guard bytes <= room else { break }
            kept.append(character)
            room -= bytes
        }
        return kept.isEmpty ? marker : kept + " " + marker
    }

    /// A verified credential: the lockout, the profile and the tenant's session budget decide
    /// whether the session starts, and then Palisade logs in to the server for it.
    private mutating func admit(_ identity: SessionIdentity, now: Date) -> Action {
        if let failure = configuration.audit.failure {
            return fail("Palisade cannot write its audit log (\(failure)); no queries are admitted", sqlstate: SQLState.ioError)
        }
        let budgets = configuration.budgets
        if let lockout = budgets.lockout, case .locked(let until) = lockout.check(credential: identity.credentialID, now: now) {
            let refusal = lockout.refusal(credential: identity.credentialID, until: until)
            owe(SessionRecord(kind: "p", tenant: identity.tenant, credential: identity.credentialID, user: user,
                              Decision(rule: .lockedOut, message: refusal.message, policyVersion: ""), event: .authFailure))
            return fail(refusal.message, sqlstate: refusal.sqlstate)
        }
        guard let engine = configuration.policies.engine(for: identity.profile) else {
            return fail("the credential selects profile \"\(identity.profile)\", which this Palisade does not configure", sqlstate: SQLState.invalidAuthorization)
        }
        if let sessions = budgets.sessions {
            guard sessions.open(tenant: identity.tenant) else {
                let refusal = sessions.refusal(tenant: identity.tenant)
                owe(SessionRecord(kind: "p", tenant: identity.tenant, credential: identity.credentialID, user: user,
                                  Decision(rule: .tooManySessions, message: refusal.message, policyVersion: engine.policy.version),
                                  event: .authFailure))
                return fail(refusal.message, sqlstate: refusal.sqlstate)
            }
            countedTenant = identity.tenant
        }
        self.identity = identity
        self.engine = engine
        phase = .connecting(BackendStartup(user: configuration.backend.user, password: configuration.backend.password), buffered: [])
        return .connectBackend
    }

    // MARK: - Server events

    /// The server connection is open: Palisade's own startup message, with the profile's limits.
    mutating func backendConnected() {
        guard case .connecting = phase, let engine else { return }
        let policy = engine.policy
        var startup = BackendConnection.startupParameters(
            for: configuration.backend, policy: policy,
            applicationName: Self.applicationName(client: parameters["application_name"], sessionID: sessionID))
        for name in ProxyConfiguration.forwardedStartupParameters.sorted() where name != "application_name" {
            if let value = parameters[name] { startup.append((name, value)) }
        }
        // One server session serves one client, and an enforcing profile denies everything that
        // could change a setting (SET, RESET, DISCARD, set_config), so the claims set once for the
        // session hold in every transaction, and no query needs a second execution to set them.
        // Monitor mode forwards such statements: its sessions, and claims too long for a startup
        // packet (PostgreSQL takes at most 10,000 bytes), set them in every transaction instead.
        if let identity, !policy.isMonitorOnly, identity.claims.utf8.count <= Self.longestStartupClaims {
            startup.append((Policy.claimSetting, identity.claims))
            claimsSetAtStartup = true
        }
        FrontendEncoder.startup(startup, into: &output.toBackend)
    }

    static let longestStartupClaims = 4096

    mutating func backendFrame(_ frame: Frame) -> Action {
        switch phase {
        case .relaying, .draining:
            relay!.backendFrame(frame, into: &output)
            return afterRelay()
        case .connecting(var startup, let buffered):
            let step = startup.frame(frame)
            phase = .connecting(startup, buffered: buffered)
            switch step {
            case .send(let buffer):
                output.toBackend.writeImmutableBuffer(buffer)
                return .none
            case .wait:
                return .none
            case .ready(let parameters, let processID, let secretKey):
                return ready(parameters: parameters, backendKey: CancelRegistry.Target(processID: processID, secretKey: secretKey), buffered: buffered)
            case .failed(let reason):
                return fail("Palisade could not log in to the database server: \(reason)", sqlstate: SQLState.connectionFailure)
            }
        case .awaitingStartup, .awaitingPassword, .awaitingSCRAM, .closed:
            return .none
        }
    }

    mutating func backendClosed() -> Action {
        switch phase {
        case .closed: return .none
        case .relaying, .draining, .connecting:
            // The backend has gone with its connection: there is nothing left to cancel.
            serverKey = nil
            return fail("the database server closed the connection", sqlstate: SQLState.adminShutdown)
        default: phase = .closed; return .close
        }
    }

    private mutating func ready(parameters serverParameters: [(String, String)], backendKey: CancelRegistry.Target, buffered: [Frame]) -> Action {
        guard let identity, let engine else { return fail("no identity", sqlstate: SQLState.internalError) }
        let key = cancels.register(backendKey)
        cancelKey = key
        serverKey = backendKey
        BackendEncoder.authenticationOk(into: &output.toClient)
        for (name, value) in serverParameters { BackendEncoder.parameterStatus(name, value, into: &output.toClient) }
        BackendEncoder.backendKeyData(processID: key.processID, secretKey: key.secretKey, into: &output.toClient)
        BackendEncoder.readyForQuery(.idle, into: &output.toClient)
        let policy = engine.policy
        let decisions = SessionDecisions(identity: identity, user: user, sessionID: sessionID, policies: configuration.policies,
                                         loginEngine: engine, budgets: configuration.budgets)
        relay = QueryRelay(claims: identity.claims, claimsSetAtStartup: claimsSetAtStartup,
                           statementTimeoutMilliseconds: policy.statementTimeoutMilliseconds,
                           budget: ResultBudget(maxRows: policy.maxResultRows, maxBytes: policy.maxResultBytes),
                           sessionID: sessionID,
                           decide: { sql, kind, parameterTypes, request, output in
                               decisions.decide(sql, kind, parameterTypes: parameterTypes, request: request, into: &output)
                           },
                           admitExecution: { request, countsTowardRate, output in
                               decisions.admitExecution(request: request, countsTowardRate: countsTowardRate, into: &output)
                           },
                           policyGeneration: { [policies = configuration.policies] in policies.generation })
        phase = .relaying
        for frame in buffered {
            relay!.clientFrame(frame, into: &output)
            let action = afterRelay()
            if action.closes { return action }
        }
        return .started
    }

    /// After the relay consumed a message: a lockout, a result or cost limit, a protocol end, a
    /// drained shutdown.
    private mutating func afterRelay(now: Date? = nil) -> Action {
        if !output.resultLimits.isEmpty { oweResultLimits() }
        if !output.protocolRefusals.isEmpty { oweProtocolRefusals(now: now ?? Date()) }
        if let lockout = output.lockout {
            output.lockout = nil
            return fail(lockout, sqlstate: SQLState.invalidAuthorization)
        }
        if output.close {
            // A Terminate (or a protocol violation) while a query is still in flight: the server
            // would only read the Terminate once the query is over.
            output.close = false
            return closing()
        }
        if case .draining = phase, relay!.isIdle { return endForShutdown() }
        return .none
    }

    /// Messages the relay refused itself: each is an entry, as a framing error is (`clientError`),
    /// and a denial toward the credential's lockout, as a policy's is: an Execute of an unknown
    /// portal and a Sync, 19 bytes, wrote a 650-byte entry, 20 MB of log a second from one session
    /// (seventeenth red team).
    private mutating func oweProtocolRefusals(now: Date) {
        let version = engine?.policy.version ?? ""
        for message in output.protocolRefusals {
            owe(SessionRecord(kind: "?", tenant: identity?.tenant ?? "", credential: identity?.credentialID ?? "", user: user,
                              Decision(rule: .protocolViolation, message: message, policyVersion: version),
                              event: .protocolRefusal))
            guard let identity, output.lockout == nil, let lockout = configuration.budgets.lockout else { continue }
            if let event = lockout.recordDenial(credential: identity.credentialID, now: now) {
                owe(SessionRecord(kind: "?", tenant: identity.tenant, credential: identity.credentialID, user: user,
                                  Decision(rule: .lockedOut, message: event.refusal.message, policyVersion: version), event: .lockout))
                output.lockout = event.refusal.message
            } else if case .locked(let until) = lockout.check(credential: identity.credentialID, now: now) {
                // Locked by another of its sessions: this one ends too.
                output.lockout = lockout.refusal(credential: identity.credentialID, until: until).message
            }
        }
        output.protocolRefusals.removeAll()
    }

    /// Answers cut at the result budget and queries refused at the cost budget, each an entry of
    /// its own with the request id of the decision that admitted the query (already owed before it).
    private mutating func oweResultLimits() {
        guard let identity else { return }
        for event in output.resultLimits {
            let message = event.message ?? "the answer was cut after \(event.relayedRows) rows (\(event.relayedBytes) bytes) at the profile's " +
                (event.rule == .resultBytes ? "max_result_bytes" : "max_rows")
            ProxyMetrics.shared.resultLimited(event.rule, beforeRunning: event.isCostLimit)
            owe(SessionRecord(kind: "D", tenant: identity.tenant, credential: identity.credentialID, user: user,
                              Decision(rule: event.rule, message: message, policyVersion: engine?.policy.version ?? ""),
                              requestID: "\(sessionID)-\(event.request)", event: event.isCostLimit ? .costLimit : .resultLimit))
        }
        output.resultLimits.removeAll()
    }

    // MARK: - Ending

    private mutating func endForShutdown() -> Action {
        fail("terminating connection: Palisade is shutting down", sqlstate: SQLState.adminShutdown)
    }

    /// A FATAL error to the client, and the end of the session.
    mutating func fail(_ message: String, sqlstate: String) -> Action {
        if isClosed { return .none }
        BackendEncoder.error(ServerNotice(severity: "FATAL", sqlstate: sqlstate, message: message), into: &output.toClient)
        return closing()
    }

    /// The session is over without a word to the client (it left: closed, reset or shut its
    /// socket; or the handler already answered it).
    @discardableResult
    mutating func end() -> Action {
        if isClosed { return .close }
        return closing()
    }

    /// Every end of a session comes here: the session is closed, and if the server still owes
    /// answers to a request (a query runs there), the action asks for a cancel of it.
    private mutating func closing() -> Action {
        let inFlight = awaitsServer ? serverKey : nil
        phase = .closed
        relay = nil
        guard let inFlight else { return .close }
        return .cancelAndClose(processID: inFlight.processID, secretKey: inFlight.secretKey)
    }

    private mutating func protocolViolation() -> Action {
        fail("unexpected message during connection startup", sqlstate: SQLState.protocolViolation)
    }

    private mutating func owe(_ record: SessionRecord) {
        output.records.append(record)
    }

    /// What the handler releases once the session has ended: the tenant's session slot, the cancel key.
    mutating func release() {
        if let countedTenant { configuration.budgets.sessions?.close(tenant: countedTenant) }
        countedTenant = nil
        if let cancelKey { cancels.remove(processID: cancelKey.processID, secretKey: cancelKey.secretKey) }
        cancelKey = nil
    }
}
