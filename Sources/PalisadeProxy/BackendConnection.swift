import NIOCore
import NIOPosix
import PostgresWire
import QueryPolicy

/// A server connection of Palisade's own, for front doors that speak something other than the
/// PostgreSQL protocol to their clients (`palisade mcp`): it logs in as `BackendStartup` does for
/// a proxied session, then runs one statement at a time with the extended protocol
/// (Parse/Bind/Describe/Execute/Sync, text results, parameters bound, never spliced into the text).
///
/// One statement at a time: a caller awaits each `run` before the next. A connection that fails or
/// is closed by the server stays failed; the caller opens another.
public final class BackendConnection: Sendable {
    public struct Column: Sendable, Equatable {
        public var name: String
        public var typeOID: UInt32
    }

    /// What the server answered to one statement.
    public struct StatementResult: Sendable {
        public var columns: [Column] = []
        /// Text values, nil for NULL; only the rows within the budget.
        public var rows: [[String?]] = []
        /// Bytes of the relayed rows' DataRow frames, as the result budget counts them.
        public var rowBytes = 0
        public var commandTag: String?
        /// The server's error, if the statement failed (the transaction is then aborted).
        public var error: ServerNotice?
        /// Which of the budget's limits the answer went past (the rows past it were dropped).
        public var exceeded: Rule?
        public var transactionStatus: TransactionStatus = .idle

        public init() {}
    }

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    private let channel: Channel
    private let handler: NIOLoopBound<ConnectionHandler>

    private init(channel: Channel, handler: NIOLoopBound<ConnectionHandler>) {
        self.channel = channel
        self.handler = handler
    }

    /// Connects and logs in with `parameters` as the startup message's (user and database first).
    public static func connect(to backend: BackendAddress, tls: BackendTLS?, parameters: [(String, String)],
                               group: EventLoopGroup) async throws -> BackendConnection {
        let eventLoop = group.next()
        let loggedIn = eventLoop.makePromise(of: Void.self)
        let channel: Channel
        do {
            channel = try await BackendConnector.connect(backend, tls: tls, on: eventLoop) { pipeline in
                try pipeline.addHandlers(ByteToMessageHandler(BackendFrameDecoder()),
                                         ConnectionHandler(backend: backend, parameters: parameters, loggedIn: loggedIn))
            }.get()
        } catch {
            let failure = Failure(description: "cannot reach the database server at \(backend.host):\(backend.port): \(ConnectFailure.describe(error))")
            loggedIn.fail(failure)
            throw failure
        }
        do {
            try await loggedIn.futureResult.get()
        } catch {
            channel.close(promise: nil)
            throw error
        }
        let handler = try await channel.eventLoop.submit {
            NIOLoopBound(try channel.pipeline.syncOperations.handler(type: ConnectionHandler.self), eventLoop: channel.eventLoop)
        }.get()
        return BackendConnection(channel: channel, handler: handler)
    }

    /// Runs one statement to completion and waits for ReadyForQuery. `budget` caps the rows kept:
    /// the server is asked for one row past `max_rows` (it stops there), and rows past either
    /// limit are dropped and reported in `exceeded`. `deadline` bounds the wait for a server that
    /// stops answering (its own statement_timeout cannot fire then): the connection is closed.
    public func run(_ sql: String, parameters: [String?] = [], budget: ResultBudget = ResultBudget(),
                    deadline: TimeAmount) async throws -> StatementResult {
        let handler = self.handler
        let channel = self.channel
        return try await channel.eventLoop.flatSubmit {
            handler.value.run(sql, parameters: parameters, budget: budget, deadline: deadline, context: channel)
        }.get()
    }

    public var isOpen: Bool { channel.isActive }

    /// Ends the server session (Terminate) and closes the connection.
    public func close() {
        let channel = self.channel
        var buffer = channel.allocator.buffer(capacity: 5)
        FrontendEncoder.terminate(into: &buffer)
        channel.writeAndFlush(buffer).whenComplete { _ in channel.close(promise: nil) }
    }

    private final class ConnectionHandler: ChannelInboundHandler, RemovableChannelHandler {
        typealias InboundIn = Frame

        private struct Running {
            var promise: EventLoopPromise<StatementResult>
            var result = StatementResult()
            var budget: ResultBudget
            var usage = ResultBudget.Usage(request: 0)
            var deadline: Scheduled<Void>?
        }

        private var startup: BackendStartup
        private let backend: BackendAddress
        private let parameters: [(String, String)]
        private var loggedIn: EventLoopPromise<Void>?
        private var running: Running?
        private var failure: Failure?

        init(backend: BackendAddress, parameters: [(String, String)], loggedIn: EventLoopPromise<Void>) {
            self.backend = backend
            self.parameters = parameters
            self.loggedIn = loggedIn
            startup = BackendStartup(user: backend.user, password: backend.password)
        }

        func channelActive(context: ChannelHandlerContext) {
            var buffer = context.channel.allocator.buffer(capacity: 256)
            FrontendEncoder.startup(parameters, into: &buffer)
            context.writeAndFlush(NIOAny(buffer), promise: nil)
        }

        func run(_ sql: String, parameters: [String?], budget: ResultBudget, deadline: TimeAmount,
                 context channel: Channel) -> EventLoopFuture<StatementResult> {
            let promise = channel.eventLoop.makePromise(of: StatementResult.self)
            if let failure {
                promise.fail(failure)
                return promise.futureResult
            }
            guard running == nil else {
                promise.fail(Failure(description: "a statement is already running on this server connection"))
                return promise.futureResult
            }
            var buffer = channel.allocator.buffer(capacity: 256 + sql.utf8.count)
            FrontendEncoder.parse(statement: "", query: sql, into: &buffer)
            FrontendEncoder.bind(portal: "", statement: "", parameters: parameters, into: &buffer)
            FrontendEncoder.describePortal("", into: &buffer)
            FrontendEncoder.execute(portal: "", maxRows: budget.serverRowLimit(requested: 0, used: ResultBudget.Usage(request: 0)) ?? 0,
                                    into: &buffer)
            FrontendEncoder.sync(into: &buffer)
            let bound = NIOLoopBound(self, eventLoop: channel.eventLoop)
            let timer = channel.eventLoop.scheduleTask(in: deadline) {
                bound.value.fail(Failure(description: "the database server did not answer within \(deadline.nanoseconds / 1_000_000_000) s"))
                channel.close(promise: nil)
            }
            running = Running(promise: promise, budget: budget, deadline: timer)
            channel.writeAndFlush(buffer, promise: nil)
            return promise.futureResult
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let frame = unwrapInboundIn(data)
            if let loggedIn {
                switch startup.frame(frame) {
                case .send(let buffer): context.writeAndFlush(NIOAny(buffer), promise: nil)
                case .wait: break
                case .ready:
                    self.loggedIn = nil
                    loggedIn.succeed(())
                case .failed(let reason):
                    fail(Failure(description: "cannot log in to the database server as \(backend.user): \(reason)"))
                    context.close(promise: nil)
                }
                return
            }
            guard var current = running else { return }
            var body = frame.body
            switch frame.type {
            case UInt8(ascii: "T"):
                current.result.columns = Self.columns(&body)
            case UInt8(ascii: "D"):
                if current.budget.admit(rowOf: frame.body.readableBytes + 5, into: &current.usage) {
                    current.result.rows.append(Self.values(&body))
                    current.result.rowBytes = current.usage.bytes
                } else {
                    current.result.exceeded = current.usage.exceeded
                }
            case UInt8(ascii: "C"):
                current.result.commandTag = body.readCString()
            case UInt8(ascii: "s"):
                // Suspended at the row limit: one row past max_rows was asked for and dropped.
                current.result.exceeded = current.usage.exceeded ?? .resultRows
            case UInt8(ascii: "E"):
                current.result.error = ServerNotice(frame.body)
            case UInt8(ascii: "Z"):
                current.result.transactionStatus = body.readInteger(as: UInt8.self).flatMap(TransactionStatus.init(rawValue:)) ?? .failed
                running = nil
                current.deadline?.cancel()
                current.promise.succeed(current.result)
                return
            default:
                // ParseComplete, BindComplete, NoData, EmptyQueryResponse, notices, parameter changes.
                break
            }
            running = current
        }

        func errorCaught(context: ChannelHandlerContext, error: Error) {
            fail(Failure(description: "lost the connection to the database server: \(ConnectFailure.describe(error))"))
            context.close(promise: nil)
        }

        func channelInactive(context: ChannelHandlerContext) {
            fail(Failure(description: "the database server closed the connection"))
        }

        private func fail(_ failure: Failure) {
            if self.failure == nil { self.failure = failure }
            loggedIn?.fail(failure)
            loggedIn = nil
            if let running {
                running.deadline?.cancel()
                running.promise.fail(failure)
            }
            running = nil
        }

        /// RowDescription: each field's name, table, column, type, size, modifier and format.
        private static func columns(_ body: inout ByteBuffer) -> [Column] {
            let count: Int16 = body.readInteger() ?? 0
            var columns: [Column] = []
            for _ in 0..<max(0, Int(count)) {
                guard let name = body.readCString(), let _: UInt32 = body.readInteger(), let _: Int16 = body.readInteger(),
                      let type: UInt32 = body.readInteger(), body.readSlice(length: 8) != nil
                else { break }
                columns.append(Column(name: name, typeOID: type))
            }
            return columns
        }

        private static func values(_ body: inout ByteBuffer) -> [String?] {
            let count: Int16 = body.readInteger() ?? 0
            return (0..<max(0, Int(count))).map { _ in
                let length: Int32 = body.readInteger() ?? -1
                return length < 0 ? nil : body.readString(length: Int(length))
            }
        }
    }
}

extension BackendConnection {
    /// The statement that sets the tenant's claims and the profile's statement_timeout for the
    /// current transaction only, both as bound parameters: the proxy's own (`QueryRelay`).
    public static let claimsQuery = QueryRelay.claimsQuery

    /// The startup parameters of a server session for `policy`, as the proxy logs in for a client:
    /// the server itself refuses writes, and the profile's timeouts apply.
    public static func startupParameters(for backend: BackendAddress, policy: Policy, applicationName: String) -> [(String, String)] {
        [
            ("user", backend.user),
            ("database", backend.database),
            ("client_encoding", "UTF8"),
            ("default_transaction_read_only", "on"),
            ("statement_timeout", "\(policy.statementTimeoutMilliseconds)"),
            ("idle_in_transaction_session_timeout", "\(policy.idleInTransactionTimeoutMilliseconds)"),
            ("application_name", applicationName),
        ]
    }
}
