/// The type byte of each message protocol 3.0 defines, so that no code spells them as literals.
public enum BackendMessageType: UInt8, Sendable {
    case authentication = 0x52  // R
    case backendKeyData = 0x4B  // K
    case bindComplete = 0x32  // 2
    case closeComplete = 0x33  // 3
    case commandComplete = 0x43  // C
    case dataRow = 0x44  // D
    case emptyQueryResponse = 0x49  // I
    case errorResponse = 0x45  // E
    case negotiateProtocolVersion = 0x76  // v
    case noData = 0x6E  // n
    case noticeResponse = 0x4E  // N
    case notificationResponse = 0x41  // A
    case parameterDescription = 0x74  // t
    case parameterStatus = 0x53  // S
    case parseComplete = 0x31  // 1
    case portalSuspended = 0x73  // s
    case readyForQuery = 0x5A  // Z
    case rowDescription = 0x54  // T

    /// Messages the server may send at any time, outside any answer.
    public var isAsynchronous: Bool {
        self == .noticeResponse || self == .parameterStatus || self == .notificationResponse
    }
}

public enum FrontendMessageType: UInt8, Sendable {
    case bind = 0x42  // B
    case close = 0x43  // C
    case describe = 0x44  // D
    case execute = 0x45  // E
    case flush = 0x48  // H
    case functionCall = 0x46  // F
    case parse = 0x50  // P
    /// Password, SASLInitialResponse and SASLResponse share this type.
    case password = 0x70  // p
    case query = 0x51  // Q
    case sync = 0x53  // S
    case terminate = 0x58  // X
}

/// What Describe and Close name: a prepared statement or a portal.
public enum TargetKind: UInt8, Sendable {
    case statement = 0x53  // S
    case portal = 0x50  // P
}

/// The answers to SSLRequest and GSSENCRequest.
public enum EncryptionAnswer: UInt8, Sendable {
    case willing = 0x53  // S
    case unwilling = 0x4E  // N
}

extension Frame {
    public var backendType: BackendMessageType? { BackendMessageType(rawValue: type) }
    public var frontendType: FrontendMessageType? { FrontendMessageType(rawValue: type) }
}

/// The SQLSTATE codes Palisade itself answers with (PostgreSQL's errcodes.txt).
public enum SQLState {
    public static let connectionFailure = "08006"
    public static let protocolViolation = "08P01"
    public static let invalidSQLStatementName = "26000"
    public static let invalidAuthorization = "28000"
    public static let invalidPassword = "28P01"
    public static let invalidCursorName = "34000"
    public static let insufficientPrivilege = "42501"
    public static let duplicatePreparedStatement = "42P05"
    public static let tooManyConnections = "53300"
    public static let programLimitExceeded = "54000"
    public static let queryCanceled = "57014"
    public static let adminShutdown = "57P01"
    public static let idleInTransactionSessionTimeout = "25P03"
    public static let ioError = "58030"
    public static let internalError = "XX000"
}
