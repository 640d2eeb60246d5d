import AuditChain
import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import PostgresWire
import QueryPolicy
import TenantIdentity

/// One client connection and the server connection Palisade opens for it, on one event loop (so
/// no locks). The protocol is `SessionStateMachine`'s; this class executes its actions and keeps
/// what only channels have: backpressure, timers, and answers held until their audit records are
/// durable.
final class ProxySession {
    private var machine: SessionStateMachine
    var isAuthenticating: Bool { machine.isAuthenticating }
    private let configuration: ProxyConfiguration
    private let eventLoop: EventLoop
    private let auditInbox: AuditInbox
    let sessionID: String
    private var clientContext: ChannelHandlerContext?
    private var backendChannel: Channel?
    private var clientAddress = ""
    /// Audit records appended but not yet on disk. While any is outstanding, nothing goes to the
    /// client: neither a refusal nor an admitted query's rows is released before its record is durable.
    private var outstandingAudits = 0
    private var heldForClient: ByteBuffer?
    /// A lone session's records from the client messages of the current read: committed on the
    /// loop once those messages' requests are on their way to the server (`commitRecordsHere`).
    private var recordsToCommitHere: [AuditRecord] = []
    /// Set while a client message runs through the machine: only its records wait for the read's end.
    private var readingClientFrame = false
    private var clientWritable = true
    private var backendWritable = true
    private var readingClient = true
    private var readingBackend = true
    /// Whether the client is not read because the machine holds its messages (login, an estimate).
    private var holdingClientMessages = false
    /// The session ended while records were outstanding: its last answer goes out once they are durable.
    private var closeWhenAudited = false
    private var channelsClosed = false
    /// Set when the session ends mid-query: the server's key for the backend whose query `close`
    /// cancels.
    private var cancelOnClose: CancelRegistry.Target?
    /// A connection to the server is being opened (`connectBackend`): it may still arrive.
    private var connectingBackend = false
    /// Closes the server connection if the server has not ended it after the Terminate in time.
    private var backendLinger: Scheduled<Void>?
    /// The next CancelRequest for the query of a session that ended, while its backend is still there.
    private var cancelAgain: Scheduled<Void>?
    /// Whether the sessions gauge counts this session.
    private var countedAsSession = false
    /// A client that does not finish logging in (TLS, startup, password) in time is let go.
    private var loginDeadline: Scheduled<Void>?
    /// Armed while the client leaves messages without a Sync and is silent (see `watchUnsyncedClient`).
    private var unsyncedDeadline: Scheduled<Void>?
    /// Client messages read so far, to tell whether the client spoke while a deadline ran.
    private var clientHeardCount = 0
    private let serverWait: ServerWait
    /// Answers held for the audit log past this size stop the reading on both sides until they go out.
    static let heldBytesLimit = 1 << 20
    /// Session events; metadata is ids and rules only, never credentials or literal values.
    private var logger = Logger(label: "palisade.session")
    /// Set before the connection is active to turn it away (Palisade holds as many as it may).
    var refusal: ServerNotice?

    init(configuration: ProxyConfiguration, cancels: CancelRegistry, eventLoop: EventLoop, auditInbox: AuditInbox) {
        self.configuration = configuration
        self.eventLoop = eventLoop
        self.auditInbox = auditInbox
        sessionID = String(format: "%08x", UInt32.random(in: 0...UInt32.max))
        machine = SessionStateMachine(configuration: configuration, cancels: cancels, sessionID: sessionID)
        serverWait = ServerWait(eventLoop: eventLoop)
        logger[metadataKey: "session"] = "\(sessionID)"
        // A server held back because the client does not read is not stalled.
        serverWait.isWaiting = { [weak self] in self.map { $0.readingBackend && $0.machine.awaitsServer } ?? false }
        serverWait.stalled = { [weak self] in self?.serverStalled() }
    }

    // MARK: - Client side

    func clientAdded(_ context: ChannelHandlerContext) {
        clientContext = context
        clientAddress = context.channel.remoteAddress.map { "\($0.ipAddress ?? "?"):\($0.port ?? 0)" } ?? ""
        let bound = NIOLoopBound(self, eventLoop: eventLoop)
        loginDeadline = eventLoop.scheduleTask(in: configuration.loginTimeout) {
            let session = bound.value
            if session.machine.isLoggingIn { session.logger.notice("login timed out", metadata: ["client": "\(session.clientAddress)"]) }
            session.run(session.machine.loginTimedOut(after: session.configuration.loginTimeout.nanoseconds / 1_000_000_000))
            session.sendOutput()
        }
    }

    func clientActive() {
        guard let refusal, let channel = clientContext?.channel else { return }
        logger.notice("connection refused", metadata: ["client": "\(clientAddress)", "sqlstate": "\(refusal.sqlstate)"])
        loginDeadline?.cancel()
        machine.end()
        BackendEncoder.error(refusal, into: &machine.output.toClient)
        sendOutput()
        channelsClosed = true
        // Only the sending side closes at once: a client's startup message that crosses the refusal
        // on the wire is read and dropped, where a full close would answer it with a reset that
        // discards the refusal before the client reads it.
        channel.close(mode: .output, promise: nil)
        channel.eventLoop.scheduleTask(in: configuration.refusalLinger) { channel.close(promise: nil) }
    }

    func clientInbound(_ inbound: ClientInbound) {
        switch inbound {
        case .startup(.sslRequest): run(machine.sslRequest())
        case .startup(.gssEncryptionRequest): run(machine.gssEncryptionRequest())
        case .startup(.cancel(let processID, let secretKey)): run(machine.cancelRequest(processID: processID, secretKey: secretKey))
        case .startup(.startup(let major, _, let parameters)): run(machine.startup(major: major, parameters: parameters))
        case .frame(let frame):
            clientHeardCount &+= 1
            if let deadline = unsyncedDeadline {
                deadline.cancel()
                unsyncedDeadline = nil
            }
            readingClientFrame = true
            run(machine.clientFrame(frame, now: Date()))
            readingClientFrame = false
        }
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

    func clientError(_ error: Error) {
        // A reset, or any other error of the client's connection: the client is gone.
        if let error = error as? WireError { run(machine.clientError(error)) } else { run(machine.end()) }
    }

    /// The client closed, reset or shut its socket (a half-close ends the channel too).
    func clientClosed() {
        run(machine.end())
    }

    /// Shutdown: end now if idle (or if forced), otherwise once the current query is answered.
    func shutDown(force: Bool = false) {
        run(machine.shutDown(force: force))
        sendOutput()
    }

    /// Executes what the machine asked for, and appends the records it owes.
    private func run(_ action: SessionStateMachine.Action) {
        if !readingClientFrame { commitRecordsHere() }
        if !machine.output.records.isEmpty { appendRecords() }
        switch action {
        case .none:
            break
        case .startTLS:
            sendOutput()
            guard let tls = configuration.tls, let context = clientContext else { return }
            do {
                try context.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls), position: .first)
            } catch {
                run(machine.fail("could not start TLS: \(error)", sqlstate: SQLState.connectionFailure))
            }
        case .connectBackend:
            connectBackend()
        case .forwardCancel(let processID, let secretKey):
            BackendConnector.sendCancel(processID: processID, secretKey: secretKey, to: configuration.backend, on: eventLoop)
            close()
        case .started:
            started()
        case .close:
            // Nothing more goes to the server but the Terminate that `close` sends.
            machine.output.toBackend.clear()
            sendOutput()
            close()
        case .cancelAndClose(let processID, let secretKey):
            cancelOnClose = CancelRegistry.Target(processID: processID, secretKey: secretKey)
            machine.output.toBackend.clear()
            sendOutput()
            close()
        }
        if machine.holdsClientMessages != holdingClientMessages { applyBackpressure() }
    }

    private func started() {
        loginDeadline?.cancel()
        guard let identity = machine.identity, let engine = machine.engine else { return }
        serverWait.useStatementTimeout(milliseconds: engine.policy.statementTimeoutMilliseconds)
        logger[metadataKey: "tenant"] = "\(identity.tenant)"
        logger[metadataKey: "credential"] = "\(identity.credentialID)"
        logger.info("session started", metadata: ["profile": "\(identity.profile)", "client": "\(clientAddress)"])
        countedAsSession = true
        ProxyMetrics.shared.sessionOpened()
        sendOutput()
    }

    /// Reads only what can be passed on: rows from the server while the client takes them, and the
    /// client's next messages while both the server and the client keep up and the machine is not
    /// holding them. A client that sends without reading its answers is then held back by TCP, as
    /// the server itself would hold it, instead of filling Palisade's memory.
    private func applyBackpressure() {
        // Once the session has ended, the server is read until it leaves (`endBackend`).
        if channelsClosed { return }
        let holdingTooMuch = (heldForClient?.readableBytes ?? 0) >= Self.heldBytesLimit
        let readBackend = clientWritable && !holdingTooMuch
        holdingClientMessages = machine.holdsClientMessages
        let readClient = readBackend && backendWritable && !holdingClientMessages
        if readBackend != readingBackend, let backendChannel {
            readingBackend = readBackend
            backendChannel.setOption(ChannelOptions.autoRead, value: readBackend).whenFailure { _ in }
            // Its quiet time starts again once it is read again.
            if readBackend { serverWait.heard(); serverWait.watch() }
        }
        if readClient != readingClient, let channel = clientContext?.channel {
            readingClient = readClient
            channel.setOption(ChannelOptions.autoRead, value: readClient).whenFailure { _ in }
        }
    }

    // MARK: - Server side

    private func connectBackend() {
        let bound = NIOLoopBound(self, eventLoop: eventLoop)
        connectingBackend = true
        BackendConnector.connect(configuration.backend, tls: configuration.backendTLS, for: bound).whenComplete { result in
            let session = bound.value
            session.connectingBackend = false
            switch result {
            case .success(let channel):
                session.backendChannel = channel
                // The session ended while the connection was being opened: it is a server
                // connection all the same, and the tenant's slot is held until it is closed.
                if session.channelsClosed { channel.close(promise: nil) }
            case .failure(let error):
                session.run(session.machine.fail(
                    "Palisade cannot reach the database server at \(session.configuration.backend.host):\(session.configuration.backend.port): \(ConnectFailure.describe(error))",
                    sqlstate: SQLState.connectionFailure))
                session.releaseOnceBackendGone()
            }
        }
    }

    func backendActive(_ channel: Channel) {
        backendChannel = channel
        if channelsClosed { return }
        machine.backendConnected()
        sendOutput()
    }

    func backendFrame(_ frame: Frame) {
        // After the session ended, what the server still sends before it leaves is dropped.
        if channelsClosed { return }
        if frame.backendType == .readyForQuery { serverWait.answered() }
        run(machine.backendFrame(frame))
    }

    func backendReadComplete() {
        if channelsClosed { return }
        // Once per read, not per frame: nothing else runs on the loop between a read's frames.
        serverWait.heard()
        if machine.isRelaying, !machine.awaitsServer {
            serverWait.serverCaughtUp()
            if machine.leftOpenWithoutSync { watchUnsyncedClient() }
        }
        sendOutput()
    }

    /// PostgreSQL arms idle_in_transaction_session_timeout only after ReadyForQuery: a client that
    /// parses or executes and flushes but never syncs would hold its transaction, snapshot and
    /// locks for as long as it keeps the socket. Palisade ends such a session after the profile's
    /// timeout, as the server ends an idle transaction. (Without a Flush the server answers nothing
    /// and owes the answers: the stalled-server watch ends that session.)
    private func watchUnsyncedClient() {
        guard unsyncedDeadline == nil, let engine = machine.engine else { return }
        let timeout = TimeAmount.milliseconds(Int64(engine.policy.idleInTransactionTimeoutMilliseconds))
        let bound = NIOLoopBound(self, eventLoop: eventLoop)
        let heardAt = clientHeardCount
        unsyncedDeadline = eventLoop.scheduleTask(in: timeout) {
            let session = bound.value
            session.unsyncedDeadline = nil
            // Only a client silent all along, with the exchange still open and answered.
            guard session.clientHeardCount == heardAt, session.machine.leftOpenWithoutSync, !session.machine.awaitsServer else { return }
            session.logger.notice("client left a transaction open without Sync", metadata: ["waited_ms": "\(timeout.nanoseconds / 1_000_000)"])
            session.run(session.machine.fail(
                "terminating connection due to idle-in-transaction timeout: the client sent messages without Sync and stayed silent for \(timeout.nanoseconds / 1_000_000) ms (the profile's idle_in_transaction_timeout_ms)",
                sqlstate: SQLState.idleInTransactionSessionTimeout))
            session.sendOutput()
        }
    }

    func backendClosed() {
        backendChannel = nil
        backendLinger?.cancel()
        backendLinger = nil
        cancelAgain?.cancel()
        cancelAgain = nil
        run(machine.backendClosed())
        releaseOnceBackendGone()
    }

    func backendError(_ error: Error) {
        if channelsClosed {
            backendChannel?.close(promise: nil)
            return
        }
        run(machine.fail("lost the connection to the database server: \(ConnectFailure.describe(error))", sqlstate: SQLState.connectionFailure))
    }

    private func serverStalled() {
        let allowance = serverWait.allowance
        logger.warning("database server stalled", metadata: ["waited_ms": "\(allowance.nanoseconds / 1_000_000)"])
        run(machine.fail("the database server did not answer within \(allowance.nanoseconds / 1_000_000_000) s (the profile's statement_timeout plus \(ServerWait.grace.nanoseconds / 1_000_000_000) s); the session is closed",
                         sqlstate: SQLState.connectionFailure))
    }

    // MARK: - Sending

    /// Writes what the machine produced: one write and one flush per direction.
    private func sendOutput() {
        if machine.output.toBackend.readableBytes > 0, let backendChannel {
            backendChannel.writeAndFlush(machine.output.toBackend, promise: nil)
            machine.output.toBackend = backendChannel.allocator.buffer(capacity: 512)
            if machine.isRelaying { serverWait.requestSent() }
        }
        if !recordsToCommitHere.isEmpty {
            commitRecordsHere()
            if outstandingAudits == 0, let held = heldForClient, let clientContext {
                clientContext.writeAndFlush(NIOAny(held), promise: nil)
                heldForClient = nil
                applyBackpressure()
            }
        }
        guard machine.output.toClient.readableBytes > 0, let clientContext else { return }
        if outstandingAudits > 0 {
            if heldForClient == nil {
                heldForClient = machine.output.toClient
            } else {
                heldForClient!.writeImmutableBuffer(machine.output.toClient)
            }
            applyBackpressure()
        } else {
            clientContext.writeAndFlush(NIOAny(machine.output.toClient), promise: nil)
        }
        machine.output.toClient = clientContext.channel.allocator.buffer(capacity: 2048)
    }

    private func auditCompleted(_ result: Result<UInt64, AuditError>) {
        outstandingAudits -= 1
        if case .failure(let error) = result {
            logger.critical("audit log not writable; closing the session", metadata: ["error": "\(error)"])
            // Fail closed: what the unrecorded decision answered is never released.
            heldForClient = nil
            machine.output.toClient.clear()
            outstandingAudits = 0
            closeWhenAudited = false
            if channelsClosed { return }
            BackendEncoder.error(ServerNotice(severity: "FATAL", sqlstate: SQLState.ioError,
                                              message: "Palisade cannot write its audit log (\(error)); no queries are admitted"),
                                 into: &machine.output.toClient)
            // The query whose record failed may be running on the server already (it is sent
            // before its record is durable): it is cancelled as when the client leaves.
            if case .cancelAndClose(let processID, let secretKey) = machine.end() {
                cancelOnClose = CancelRegistry.Target(processID: processID, secretKey: secretKey)
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
        if closeWhenAudited {
            closeWhenAudited = false
            close()
        }
    }

    /// Ends the session's channels; the last answer waits for outstanding records to be durable.
    private func close() {
        if channelsClosed { return }
        commitRecordsHere()
        loginDeadline?.cancel()
        unsyncedDeadline?.cancel()
        unsyncedDeadline = nil
        serverWait.stop()
        if outstandingAudits > 0, clientContext != nil {
            // The refusal that ends this session is written once its record is durable.
            closeWhenAudited = true
            return
        }
        channelsClosed = true
        if countedAsSession {
            ProxyMetrics.shared.sessionClosed()
            logger.info("session ended")
        }
        countedAsSession = false
        machine.output.toBackend.clear()
        if machine.output.toClient.readableBytes > 0, let clientContext {
            clientContext.writeAndFlush(NIOAny(machine.output.toClient), promise: nil)
            machine.output.toClient.clear()
        }
        if let backendChannel { endBackend(backendChannel) }
        clientContext?.close(promise: nil)
        clientContext = nil
        releaseOnceBackendGone()
    }

    /// Ends the server connection of a session that has ended: a CancelRequest first if a query of
    /// the session still runs there, then Terminate; the connection is then read (and what comes
    /// is dropped) until the server closes it, which it does once it has read the Terminate. So
    /// the tenant's slot is held for as long as the server holds a backend for the session. A
    /// server that has not left within the stall allowance (statement_timeout plus 5 s: a
    /// stopped server, or a cancel lost on the way) is closed on.
    private func endBackend(_ channel: Channel) {
        if let target = cancelOnClose {
            cancelOnClose = nil
            logger.notice("session ended while the server ran its query; cancel sent to the server")
            cancelWhileThere(target, then: .milliseconds(250))
        }
        var buffer = channel.allocator.buffer(capacity: 5)
        FrontendEncoder.terminate(into: &buffer)
        channel.writeAndFlush(buffer, promise: nil)
        // A server blocked writing rows the client no longer reads would not see the cancel.
        channel.setOption(ChannelOptions.autoRead, value: true).whenFailure { _ in }
        guard backendLinger == nil else { return }
        backendLinger = eventLoop.scheduleTask(in: serverWait.allowance) { channel.close(promise: nil) }
    }

    /// Sends the CancelRequest, and again after `delay`, doubled each time, while the backend is
    /// still there: PostgreSQL 15 loses a cancel that lands while a backend loads LLVM for its first
    /// JIT compilation (see test_cancel_request_reaches_the_right_backend), and the query would
    /// then run to statement_timeout. A cancel that reaches an idle backend is ignored by it.
    private func cancelWhileThere(_ target: CancelRegistry.Target, then delay: TimeAmount) {
        BackendConnector.sendCancel(processID: target.processID, secretKey: target.secretKey, to: configuration.backend, on: eventLoop)
        let bound = NIOLoopBound(self, eventLoop: eventLoop)
        cancelAgain = eventLoop.scheduleTask(in: delay) {
            let session = bound.value
            session.cancelAgain = nil
            guard session.backendChannel != nil else { return }
            session.cancelWhileThere(target, then: .nanoseconds(delay.nanoseconds * 2))
        }
    }

    /// Gives back the tenant's session slot and the cancel key once the session has ended and its
    /// server connection is gone (or never came), not when the client left: a slot stands for a
    /// server connection, and a backend still running a query the client left is one.
    private func releaseOnceBackendGone() {
        guard channelsClosed, !connectingBackend, backendChannel == nil else { return }
        machine.release()
    }

    // MARK: - Audit

    /// Appends the records the machine owes; answers wait until they are durable.
    private func appendRecords() {
        for owed in machine.output.records {
            let decision = owed.decision
            let record = owed.auditRecord(sessionID: sessionID, clientAddress: clientAddress)
            ProxyMetrics.shared.decided(decision, tenant: owed.tenant, monitorOnly: owed.monitorOnly, locksOut: owed.event == .lockout)
            if !decision.isAllowed {
                logger.notice("denied", metadata: [
                    "request": "\(record.requestID ?? "")", "rule": "\(decision.rule.rawValue)", "sqlstate": "\(decision.sqlstate)",
                    "kind": "\(owed.kind)", "normalized": "\(record.normalized ?? "")", "enforced": "\(owed.monitorOnly ? "no" : "yes")",
                ])
            }
            outstandingAudits += 1
            if readingClientFrame, auditInbox.servesOneSession {
                recordsToCommitHere.append(record)
            } else {
                let bound = NIOLoopBound(self, eventLoop: eventLoop)
                auditInbox.append(record, to: configuration.audit) { result in bound.value.auditCompleted(result) }
            }
        }
        machine.output.records.removeAll()
    }

    /// Commits the records of this read's client messages on the loop, once what they asked of the
    /// server has been sent (so the server works during the sync), or hands them to the writer if
    /// it is busy. Runs before anything else the session does, so none is left waiting.
    private func commitRecordsHere() {
        guard !recordsToCommitHere.isEmpty else { return }
        let records = recordsToCommitHere
        recordsToCommitHere.removeAll(keepingCapacity: true)
        let bound = NIOLoopBound(self, eventLoop: eventLoop)
        guard let results = configuration.audit.commitInline(records) else {
            for record in records {
                auditInbox.append(record, to: configuration.audit) { result in bound.value.auditCompleted(result) }
            }
            return
        }
        for result in results {
            // A failure is handled as the writer's would be, once this turn's work is done.
            if case .success = result { outstandingAudits -= 1 } else { eventLoop.execute { bound.value.auditCompleted(result) } }
        }
    }
}
