import NIOCore

/// The parts of client messages that the proxy must read; everything is forwarded as sent.
public enum FrontendMessage: Sendable, Equatable {
    case query(String)
    /// `parameterTypes`: the type OIDs the client declares, 0 for unspecified.
    case parse(statement: String, query: String, parameterTypes: [UInt32])
    case bind(portal: String, statement: String)
    case describe(kind: UInt8, name: String)
    case execute(portal: String)
    case close(kind: UInt8, name: String)
    case sync
    case flush
    case terminate
    case password(ByteBuffer)
    case functionCall
    case copyData, copyDone, copyFail
    case unknown(UInt8)

    /// The longest statement or portal name PostgreSQL tells apart, in bytes.
    public static let longestName = 63

    /// Reads the fields the proxy needs. Text that is not UTF-8 is malformed: the proxy must judge
    /// exactly the bytes the server would run.
    public init(_ frame: Frame) throws(WireError) {
        var body = frame.body
        func cString(_ what: String) throws(WireError) -> String {
            guard let value = body.readCString() else { throw .malformed("\(what) is not a NUL-terminated UTF-8 string") }
            return value
        }
        // PostgreSQL keys prepared statements and portals by their first 63 bytes (NAMEDATALEN - 1):
        // longer names are the same statement to it, and a proxy that kept them whole would hold
        // a megabyte per name.
        func name(_ what: String) throws(WireError) -> String {
            let value = try cString(what)
            return value.utf8.count <= Self.longestName ? value : String(decoding: value.utf8.prefix(Self.longestName), as: UTF8.self)
        }
        switch frame.type {
        case UInt8(ascii: "Q"): self = .query(try cString("Query text"))
        case UInt8(ascii: "P"):
            let statement = try name("Parse statement name")
            let query = try cString("Parse query text")
            guard let count: Int16 = body.readInteger(), count >= 0, body.readableBytes == 4 * Int(count) else {
                throw .malformed("Parse parameter types")
            }
            let parameterTypes = (0..<Int(count)).map { _ in body.readInteger(as: UInt32.self)! }
            self = .parse(statement: statement, query: query, parameterTypes: parameterTypes)
        case UInt8(ascii: "B"):
            let portal = try name("Bind portal name")
            self = .bind(portal: portal, statement: try name("Bind statement name"))
        case UInt8(ascii: "D"), UInt8(ascii: "C"):
            guard let kind: UInt8 = body.readInteger(), kind == UInt8(ascii: "S") || kind == UInt8(ascii: "P") else {
                throw .malformed("Describe/Close kind")
            }
            let target = try name("Describe/Close name")
            self = frame.type == UInt8(ascii: "D") ? .describe(kind: kind, name: target) : .close(kind: kind, name: target)
        case UInt8(ascii: "E"): self = .execute(portal: try name("Execute portal name"))
        case UInt8(ascii: "S"): self = .sync
        case UInt8(ascii: "H"): self = .flush
        case UInt8(ascii: "X"): self = .terminate
        case UInt8(ascii: "p"): self = .password(body)
        case UInt8(ascii: "F"): self = .functionCall
        case UInt8(ascii: "d"): self = .copyData
        case UInt8(ascii: "c"): self = .copyDone
        case UInt8(ascii: "f"): self = .copyFail
        default: self = .unknown(frame.type)
        }
    }
}

/// Encoders for the messages the proxy itself sends to a server.
public enum FrontendEncoder {
    public static func startup(_ parameters: [(String, String)], into buffer: inout ByteBuffer) {
        let lengthIndex = buffer.writerIndex
        buffer.writeInteger(Int32(0))
        buffer.writeInteger(Int32(196_608))
        for (name, value) in parameters {
            buffer.writeCString(name)
            buffer.writeCString(value)
        }
        buffer.writeInteger(UInt8(0))
        buffer.setInteger(Int32(buffer.writerIndex - lengthIndex), at: lengthIndex)
    }

    public static func cancel(processID: Int32, secretKey: Int32, into buffer: inout ByteBuffer) {
        buffer.writeInteger(Int32(16))
        buffer.writeInteger(StartupMessage.cancelCode)
        buffer.writeInteger(processID)
        buffer.writeInteger(secretKey)
    }

    public static func password(_ password: String, into buffer: inout ByteBuffer) {
        buffer.writeFrame("p") { $0.writeCString(password) }
    }

    public static func saslInitialResponse(mechanism: String, _ response: [UInt8], into buffer: inout ByteBuffer) {
        buffer.writeFrame("p") {
            $0.writeCString(mechanism)
            $0.writeInteger(Int32(response.count))
            $0.writeBytes(response)
        }
    }

    public static func saslResponse(_ response: [UInt8], into buffer: inout ByteBuffer) {
        buffer.writeFrame("p") { $0.writeBytes(response) }
    }

    public static func query(_ text: String, into buffer: inout ByteBuffer) {
        buffer.writeFrame("Q") { $0.writeCString(text) }
    }

    /// Parse; `parameterTypes` are type OIDs, 0 for unspecified.
    public static func parse(statement: String, query: String, parameterTypes: [UInt32] = [], into buffer: inout ByteBuffer) {
        buffer.writeFrame("P") {
            $0.writeCString(statement)
            $0.writeCString(query)
            $0.writeInteger(Int16(parameterTypes.count))
            for type in parameterTypes { $0.writeInteger(type) }
        }
    }

    /// A client's Parse, Bind, Describe, Close or Execute as sent, except for the statement and
    /// portal names it starts with (after Describe's and Close's kind byte), which are `names`.
    public static func renamed(_ frame: Frame, names: [String], into buffer: inout ByteBuffer) {
        var rest = frame.body
        let kind: UInt8? = frame.type == UInt8(ascii: "D") || frame.type == UInt8(ascii: "C") ? rest.readInteger() : nil
        for _ in names {
            let nul = rest.readableBytesView.firstIndex(of: 0) ?? rest.writerIndex - 1
            rest.moveReaderIndex(to: nul + 1)
        }
        buffer.writeFrame(Unicode.Scalar(frame.type)) {
            if let kind { $0.writeInteger(kind) }
            for name in names { $0.writeCString(name) }
            $0.writeImmutableBuffer(rest)
        }
    }

    public static func close(statement: String, into buffer: inout ByteBuffer) {
        buffer.writeFrame("C") {
            $0.writeInteger(UInt8(ascii: "S"))
            $0.writeCString(statement)
        }
    }

    public static func close(portal: String, into buffer: inout ByteBuffer) {
        buffer.writeFrame("C") {
            $0.writeInteger(UInt8(ascii: "P"))
            $0.writeCString(portal)
        }
    }

    /// Bind with text parameters (nil is SQL NULL) and text results.
    public static func bind(portal: String, statement: String, parameters: [String?], into buffer: inout ByteBuffer) {
        buffer.writeFrame("B") {
            $0.writeCString(portal)
            $0.writeCString(statement)
            $0.writeInteger(Int16(0))
            $0.writeInteger(Int16(parameters.count))
            for parameter in parameters {
                if let parameter {
                    $0.writeInteger(Int32(parameter.utf8.count))
                    $0.writeString(parameter)
                } else {
                    $0.writeInteger(Int32(-1))
                }
            }
            $0.writeInteger(Int16(0))
        }
    }

    /// The lengths of a client's Bind's parameter values in order (-1 for NULL), or nil if the body
    /// is cut short.
    public static func parameterLengths(ofBind frame: Frame) -> [Int]? {
        bindParameters(frame)?.lengths
    }

    /// A Bind's parameter formats and values as sent, and the values' lengths.
    private static func bindParameters(_ frame: Frame) -> (formatsAndValues: ByteBuffer, lengths: [Int])? {
        var rest = frame.body
        for _ in 0..<2 {
            guard let nul = rest.readableBytesView.firstIndex(of: 0) else { return nil }
            rest.moveReaderIndex(to: nul + 1)
        }
        let parametersStart = rest.readerIndex
        guard let formats = rest.readInteger(as: Int16.self), formats >= 0, rest.readSlice(length: 2 * Int(formats)) != nil,
              let count = rest.readInteger(as: Int16.self), count >= 0 else { return nil }
        var lengths: [Int] = []
        for _ in 0..<count {
            guard let length = rest.readInteger(as: Int32.self) else { return nil }
            if length > 0, rest.readSlice(length: Int(length)) == nil { return nil }
            lengths.append(Int(length))
        }
        guard let parameters = frame.body.getSlice(at: parametersStart, length: rest.readerIndex - parametersStart) else { return nil }
        return (parameters, lengths)
    }

    /// A client's Bind with its parameter formats and values as sent, for another statement and
    /// portal, asking for text results. Nil if the body is cut short (the server would refuse it).
    @discardableResult
    public static func bind(portal: String, statement: String, parametersOf frame: Frame, into buffer: inout ByteBuffer) -> Bool {
        guard let parameters = bindParameters(frame)?.formatsAndValues else { return false }
        buffer.writeFrame("B") {
            $0.writeCString(portal)
            $0.writeCString(statement)
            $0.writeImmutableBuffer(parameters)
            $0.writeInteger(Int16(0))
        }
        return true
    }

    public static func describePortal(_ name: String, into buffer: inout ByteBuffer) {
        buffer.writeFrame("D") {
            $0.writeInteger(UInt8(ascii: "P"))
            $0.writeCString(name)
        }
    }

    /// Execute; `maxRows` 0 runs the portal to completion.
    public static func execute(portal: String, maxRows: Int32 = 0, into buffer: inout ByteBuffer) {
        buffer.writeFrame("E") {
            $0.writeCString(portal)
            $0.writeInteger(maxRows)
        }
    }

    /// Bind of the unnamed statement to the unnamed portal without parameters (text results),
    /// Describe and Execute of that portal, and Sync: how a simple query runs once its Parse is
    /// sent. The same bytes as `bind`, `describePortal`, `execute` and `sync`, written in three
    /// copies instead of twenty calls (those took 9k instructions a query, callgrind).
    public static func runUnnamedStatement(maxRows: Int32, into buffer: inout ByteBuffer) {
        buffer.writeBytes(unnamedBindDescribeExecuteHead)
        buffer.writeInteger(maxRows)
        buffer.writeBytes(syncMessage)
    }

    private static let unnamedBindDescribeExecuteHead: [UInt8] = [
        UInt8(ascii: "B"), 0, 0, 0, 12, 0, 0, 0, 0, 0, 0, 0, 0,
        UInt8(ascii: "D"), 0, 0, 0, 6, UInt8(ascii: "P"), 0,
        UInt8(ascii: "E"), 0, 0, 0, 9, 0,
    ]
    private static let syncMessage: [UInt8] = [UInt8(ascii: "S"), 0, 0, 0, 4]

    /// Asks the server to send what it has answered so far; it holds its answers until a Sync or this.
    public static func flush(into buffer: inout ByteBuffer) {
        buffer.writeFrame("H") { _ in }
    }

    public static func sync(into buffer: inout ByteBuffer) {
        buffer.writeFrame("S") { _ in }
    }

    public static func terminate(into buffer: inout ByteBuffer) {
        buffer.writeFrame("X") { _ in }
    }
}
