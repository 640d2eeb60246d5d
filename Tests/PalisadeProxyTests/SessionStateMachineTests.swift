import AuditChain
import Foundation
import NIOCore
import Testing
@testable import PalisadeProxy
import PostgresWire
import QueryPolicy
import TenantIdentity

/// The session's protocol without sockets: logins, lockouts, token expiry and shutdown, driven by
/// events, with the bytes and records the machine leaves for its handler.
@Suite struct SessionStateMachineTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let engine = PolicyEngine(policy: try! Policy.load(path: root.appendingPathComponent("Policies/readonly.yaml").path))
    static let issued = APIKeyStore.generate(tenant: "acme", profile: "agent")
    static let audit: AuditLog = {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("palisade-machine-\(UUID().uuidString)").path
        let key = try! AuditSigningKey(name: "machine.test/key", seed: [UInt8](repeating: 7, count: 32))
        return try! AuditLog(AuditLogConfiguration(directory: directory, signingKey: key, origin: "machine.test"))
    }()

    static func machine(lockout: Lockout? = nil, tokens: TokenVerifier? = nil) -> SessionStateMachine {
        let configuration = ProxyConfiguration(
            listenHost: "127.0.0.1", listenPort: 0,
            backend: BackendAddress(host: "127.0.0.1", port: 5432, user: "app", password: "secret", database: "db"),
            policies: PolicyRegistry(["agent": engine]), keys: APIKeyStore(keys: [issued.record]), tlsMode: .disable, tls: nil,
            audit: audit, tokens: tokens, budgets: TenantBudgets(lockout: lockout))
        return SessionStateMachine(configuration: configuration, cancels: CancelRegistry(), sessionID: "s1")
    }

    static func password(_ text: String) -> Frame {
        var body = ByteBuffer()
        body.writeCString(text)
        return Frame(type: UInt8(ascii: "p"), body: body)
    }

    static func query(_ sql: String) -> Frame {
        var buffer = ByteBuffer()
        FrontendEncoder.query(sql, into: &buffer)
        return QueryRelayTests.Harness.frames(buffer)[0]
    }

    /// The server's answers to Palisade's login: AuthenticationOk, a parameter, the key, ReadyForQuery.
    static func serverLogsIn(_ machine: inout SessionStateMachine) -> SessionStateMachine.Action {
        var buffer = ByteBuffer()
        BackendEncoder.authenticationOk(into: &buffer)
        BackendEncoder.parameterStatus("server_version", "15", into: &buffer)
        BackendEncoder.backendKeyData(processID: 42, secretKey: 7, into: &buffer)
        BackendEncoder.readyForQuery(.idle, into: &buffer)
        var last = SessionStateMachine.Action.none
        for frame in QueryRelayTests.Harness.frames(buffer) { last = machine.backendFrame(frame) }
        return last
    }

    /// A machine whose API key logged in and whose server login finished.
    static func loggedIn(_ machine: SessionStateMachine) -> SessionStateMachine {
        var machine = machine
        _ = machine.startup(major: 3, parameters: ["user": "agent"])
        _ = machine.clientFrame(password(issued.key), now: Date())
        machine.backendConnected()
        _ = serverLogsIn(&machine)
        return machine
    }

    static func clientTypes(_ machine: inout SessionStateMachine) -> String {
        defer { machine.output = QueryRelay.Output() }
        return QueryRelayTests.Harness.types(machine.output.toClient)
    }

    @Test func anAPIKeyLogsInAndQueriesFlowOnceTheServerHasLoggedPalisadeIn() {
        var machine = Self.machine()
        #expect(machine.startup(major: 3, parameters: ["user": "agent", "database": "db"]) == .none)
        #expect(Self.clientTypes(&machine) == "R", "AuthenticationCleartextPassword")
        #expect(machine.clientFrame(Self.password(Self.issued.key), now: Date()) == .connectBackend)
        #expect(machine.identity?.tenant == "acme" && machine.identity?.profile == "agent")
        #expect(machine.clientFrame(Self.query("SELECT 1"), now: Date()) == .none)
        #expect(machine.holdsClientMessages, "a query sent before ReadyForQuery waits for the server's login")
        machine.backendConnected()
        let startup = machine.output.toBackend.readableBytesView
        #expect(String(decoding: startup, as: UTF8.self).contains("default_transaction_read_only\u{0}on"))
        machine.output.toBackend.clear()
        #expect(Self.serverLogsIn(&machine) == .started)
        #expect(Self.clientTypes(&machine) == "RSKZ")
        #expect(machine.isRelaying && !machine.holdsClientMessages)
        #expect(machine.relay?.isIdle == false, "the buffered query went to the server")
    }

    @Test func aWrongKeyIsRefusedAndRecorded() {
        var machine = Self.machine()
        _ = machine.startup(major: 3, parameters: ["user": "agent"])
        machine.output = QueryRelay.Output()
        #expect(machine.clientFrame(Self.password("pal_nope"), now: Date()) == .close)
        #expect(machine.output.records.map(\.decision.rule) == [.authenticationFailed])
        #expect(Self.clientTypes(&machine) == "E")
        #expect(machine.isClosed)
    }

    @Test func repeatedDenialsLockTheCredentialOutAndTheNextLoginIsRefused() {
        let lockout = Lockout(maxDenials: 2, window: .seconds(60), coolDown: .seconds(60))
        var machine = Self.loggedIn(Self.machine(lockout: lockout))
        machine.output = QueryRelay.Output()
        #expect(machine.clientFrame(Self.query("DELETE FROM t"), now: Date()) == .none)
        #expect(machine.clientFrame(Self.query("DROP TABLE t"), now: Date()) == .close)
        #expect(machine.output.records.map(\.event) == [.decision, .decision, .lockout])
        #expect(machine.isClosed)

        var next = Self.machine(lockout: lockout)
        _ = next.startup(major: 3, parameters: ["user": "agent"])
        #expect(next.clientFrame(Self.password(Self.issued.key), now: Date()) == .close)
        #expect(next.output.records.map(\.decision.rule) == [.lockedOut])
    }

    @Test func theSessionMarkerFitsTheServersApplicationName() {
        #expect(SessionStateMachine.applicationName(client: "psql", sessionID: "s1") == "psql [palisade s1]")
        #expect(SessionStateMachine.applicationName(client: nil, sessionID: "s1") == "[palisade s1]")
        let long = SessionStateMachine.applicationName(client: String(repeating: "é", count: 80), sessionID: "1234567890abcdef-42")
        #expect(long.utf8.count <= 63 && long.hasSuffix(" [palisade 1234567890abcdef-42]"))
    }

    /// Messages the relay refuses itself count as denials too: each writes an audit entry.
    @Test func protocolRefusalsCountTowardTheLockout() {
        let lockout = Lockout(maxDenials: 3, window: .seconds(60), coolDown: .seconds(60))
        var machine = Self.loggedIn(Self.machine(lockout: lockout))
        machine.output = QueryRelay.Output()
        func executeUnknownPortal() -> SessionStateMachine.Action {
            var buffer = ByteBuffer()
            FrontendEncoder.execute(portal: "nope", into: &buffer)
            FrontendEncoder.sync(into: &buffer)
            var first = SessionStateMachine.Action.none
            for frame in QueryRelayTests.Harness.frames(buffer) {
                let action = machine.clientFrame(frame, now: Date())
                if first == .none { first = action }
            }
            return first
        }
        #expect(executeUnknownPortal() == .none)
        #expect(executeUnknownPortal() == .none)
        #expect(executeUnknownPortal() != .none, "the session ends")
        #expect(machine.output.records.map(\.event) == [.protocolRefusal, .protocolRefusal, .protocolRefusal, .lockout])
        #expect(machine.isClosed)
    }

    @Test func shutdownWaitsForTheQueryInFlightThenEnds() {
        var machine = Self.loggedIn(Self.machine())
        _ = machine.clientFrame(Self.query("SELECT 1"), now: Date())
        machine.output = QueryRelay.Output()
        #expect(machine.shutDown(force: false) == .none, "a query is in flight")
        var answers = ByteBuffer()
        // The claims went in the server's startup packet: the query is the only execution.
        #expect(machine.claimsSetAtStartup)
        for type in "12TDC".unicodeScalars { BackendEncoder.bodiless(type, into: &answers) }
        for frame in QueryRelayTests.Harness.frames(answers) { #expect(machine.backendFrame(frame) == .none) }
        var ready = ByteBuffer()
        BackendEncoder.readyForQuery(.idle, into: &ready)
        #expect(machine.backendFrame(QueryRelayTests.Harness.frames(ready)[0]) == .close)
        let error = QueryRelayTests.Harness.frames(machine.output.toClient).last.map { ServerNotice($0.body) }
        #expect(error?.sqlstate == "57P01")
    }

    /// The server's whole answer to one simple query, through the machine.
    static func serverAnswers(_ machine: inout SessionStateMachine) -> SessionStateMachine.Action {
        var answers = ByteBuffer()
        for type in "12TDC".unicodeScalars { BackendEncoder.bodiless(type, into: &answers) }
        BackendEncoder.readyForQuery(.idle, into: &answers)
        var last = SessionStateMachine.Action.none
        for frame in QueryRelayTests.Harness.frames(answers) { last = machine.backendFrame(frame) }
        return last
    }

    /// A client that left while its query ran: PostgreSQL kept running it until statement_timeout
    /// (it reads the Terminate only after the query, and notices a closed socket only when it
    /// writes), so one tenant held 108 server connections against a limit of 49 (sixteenth red team, second pass).
    @Test func aClientLeavingMidQueryCancelsTheQueryWithTheServersKey() {
        var machine = Self.loggedIn(Self.machine())
        _ = machine.clientFrame(Self.query("SELECT 1"), now: Date())
        #expect(machine.awaitsServer)
        // 42/7: the server's BackendKeyData, never the key the client was given.
        #expect(machine.end() == .cancelAndClose(processID: 42, secretKey: 7))
        #expect(machine.isClosed)
        #expect(machine.end() == .close, "ending twice cancels once")
    }

    @Test func aClientLeavingWhileIdleCancelsNothing() {
        var machine = Self.loggedIn(Self.machine())
        #expect(machine.end() == .close, "right after login")

        var answered = Self.loggedIn(Self.machine())
        _ = answered.clientFrame(Self.query("SELECT 1"), now: Date())
        #expect(Self.serverAnswers(&answered) == .none)
        #expect(!answered.awaitsServer)
        #expect(answered.end() == .close, "after the query was answered")

        var loggingIn = Self.machine()
        _ = loggingIn.startup(major: 3, parameters: ["user": "agent"])
        _ = loggingIn.clientFrame(Self.password(Self.issued.key), now: Date())
        loggingIn.backendConnected()
        #expect(loggingIn.end() == .close, "no BackendKeyData yet, no query")
    }

    @Test func palisadeEndingASessionMidQueryCancelsItUnlessTheServerLeft() {
        var forced = Self.loggedIn(Self.machine())
        _ = forced.clientFrame(Self.query("SELECT 1"), now: Date())
        #expect(forced.shutDown(force: true) == .cancelAndClose(processID: 42, secretKey: 7))

        var stalled = Self.loggedIn(Self.machine())
        _ = stalled.clientFrame(Self.query("SELECT 1"), now: Date())
        #expect(stalled.fail("the database server did not answer", sqlstate: SQLState.connectionFailure) == .cancelAndClose(processID: 42, secretKey: 7))

        var gone = Self.loggedIn(Self.machine())
        _ = gone.clientFrame(Self.query("SELECT 1"), now: Date())
        #expect(gone.backendClosed() == .close, "the backend left with its connection: nothing to cancel")
    }

    @Test func aSessionEndsAtTheTokensLastAcceptedMoment() {
        var machine = Self.loggedIn(Self.machine())
        #expect(machine.identity?.acceptedUntil == nil, "an API key does not expire")
        #expect(machine.clientFrame(Self.query("SELECT 1"), now: Date.distantFuture) == .none)

        // A token's session: accepted up to exp plus the clock skew (TokenVerifier.acceptedUntil), then ended.
        let expiresAt = Date(timeIntervalSince1970: 1_795_417_200)
        machine.identity?.expiresAt = expiresAt
        machine.identity?.acceptedUntil = expiresAt + 30
        machine.output = QueryRelay.Output()
        #expect(machine.clientFrame(Self.query("SELECT 2"), now: expiresAt + 29) == .none)
        // SELECT 1 and 2 went to the server unanswered: ending the session cancels them there.
        #expect(machine.clientFrame(Self.query("SELECT 3"), now: expiresAt + 30) == .cancelAndClose(processID: 42, secretKey: 7))
        #expect(machine.output.records.last?.decision.rule == .tokenExpired)
        let error = QueryRelayTests.Harness.frames(machine.output.toClient).last.map { ServerNotice($0.body) }
        #expect(error?.sqlstate == "28000" && error?.message.contains("2026-11-23T07:00:00") == true)
    }

    @Test func aLoginThatTakesTooLongEndsWith57014() {
        var machine = Self.machine()
        _ = machine.startup(major: 3, parameters: ["user": "agent"])
        machine.output = QueryRelay.Output()
        #expect(machine.loginTimedOut(after: 60) == .close)
        let error = QueryRelayTests.Harness.frames(machine.output.toClient).last.map { ServerNotice($0.body) }
        #expect(error?.sqlstate == "57014")
        #expect(machine.loginTimedOut(after: 60) == .none)
    }
}
