import NIOCore

/// Transaction status in ReadyForQuery.
public enum TransactionStatus: UInt8, Sendable {
    case idle = 73          // 'I'
    case inTransaction = 84 // 'T'
    case failed = 69        // 'E'
}

/// An ErrorResponse or NoticeResponse, by field code.
public struct ServerNotice: Sendable, Equatable, CustomStringConvertible {
    public var severity: String
    public var sqlstate: String
    public var message: String
    public var detail: String?
    public var hint: String?
    /// 1-based character position in the query text.
    public var position: Int?

    public init(severity: String = "ERROR", sqlstate: String, message: String, detail: String? = nil, hint: String? = nil, position: Int? = nil) {
        self.severity = severity
        self.sqlstate = sqlstate
        self.message = message
        self.detail = detail
        self.hint = hint
        self.position = position
    }

    public init(_ body: ByteBuffer) {
        var body = body
        var fields: [UInt8: String] = [:]
        while let code: UInt8 = body.readInteger(), code != 0, let value = body.readCString() {
            fields[code] = value
        }
        severity = fields[UInt8(ascii: "V")] ?? fields[UInt8(ascii: "S")] ?? "ERROR"
        sqlstate = fields[UInt8(ascii: "C")] ?? "XX000"
        message = fields[UInt8(ascii: "M")] ?? ""
        detail = fields[UInt8(ascii: "D")]
        hint = fields[UInt8(ascii: "H")]
        position = fields[UInt8(ascii: "P")].flatMap { Int($0) }
    }

    public var description: String { "\(severity) \(sqlstate): \(message)" }
}

/// Encoders for the messages the proxy itself sends to a client.
public enum BackendEncoder {
    public static func authenticationOk(into buffer: inout ByteBuffer) {
        buffer.writeFrame("R") { $0.writeInteger(Int32(0)) }
    }

    public static func authenticationCleartextPassword(into buffer: inout ByteBuffer) {
        buffer.writeFrame("R") { $0.writeInteger(Int32(3)) }
    }

    /// AuthenticationSASL offering only SCRAM-SHA-256.
    public static func authenticationSASL(into buffer: inout ByteBuffer) {
        buffer.writeFrame("R") {
            $0.writeInteger(Int32(10))
            $0.writeCString(SCRAMClient.mechanism)
            $0.writeInteger(UInt8(0))
        }
    }

    public static func authenticationSASLContinue(_ data: [UInt8], into buffer: inout ByteBuffer) {
        buffer.writeFrame("R") {
            $0.writeInteger(Int32(11))
            $0.writeBytes(data)
        }
    }

    public static func authenticationSASLFinal(_ data: [UInt8], into buffer: inout ByteBuffer) {
        buffer.writeFrame("R") {
            $0.writeInteger(Int32(12))
            $0.writeBytes(data)
        }
    }

    public static func parameterStatus(_ name: String, _ value: String, into buffer: inout ByteBuffer) {
        buffer.writeFrame("S") {
            $0.writeCString(name)
            $0.writeCString(value)
        }
    }

    public static func backendKeyData(processID: Int32, secretKey: Int32, into buffer: inout ByteBuffer) {
        buffer.writeFrame("K") {
            $0.writeInteger(processID)
            $0.writeInteger(secretKey)
        }
    }

    /// A message with no body: ParseComplete '1', BindComplete '2', CloseComplete '3', NoData 'n',
    /// EmptyQueryResponse 'I'.
    public static func bodiless(_ type: Unicode.Scalar, into buffer: inout ByteBuffer) {
        buffer.writeFrame(type) { _ in }
    }

    /// ParameterDescription of a statement without parameters.
    public static func noParameters(into buffer: inout ByteBuffer) {
        buffer.writeFrame("t") { $0.writeInteger(Int16(0)) }
    }

    public static func readyForQuery(_ status: TransactionStatus, into buffer: inout ByteBuffer) {
        buffer.writeFrame("Z") { $0.writeInteger(status.rawValue) }
    }

    public static func error(_ notice: ServerNotice, into buffer: inout ByteBuffer) {
        buffer.writeFrame("E") { body in
            func field(_ code: Character, _ value: String?) {
                guard let value else { return }
                body.writeInteger(code.asciiValue!)
                body.writeCString(value.replacingNUL())
            }
            field("S", notice.severity)
            field("V", notice.severity)
            field("C", notice.sqlstate)
            field("M", notice.message)
            field("D", notice.detail)
            field("H", notice.hint)
            field("P", notice.position.map(String.init))
            body.writeInteger(UInt8(0))
        }
    }
}

extension String {
    /// Protocol strings are NUL-terminated; a NUL inside one would end it early.
    func replacingNUL() -> String {
        contains("\u{0}") ? String(unicodeScalars.map { $0 == "\u{0}" ? "?" : Character($0) }) : self
    }
}
