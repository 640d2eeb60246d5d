import NIOCore

/// One typed protocol message: its type byte and its body (the bytes after the length word).
public struct Frame: Sendable, Equatable {
    public var type: UInt8
    public var body: ByteBuffer

    public init(type: UInt8, body: ByteBuffer) {
        self.type = type
        self.body = body
    }

    public var typeName: String { String(UnicodeScalar(type)) }
}

public enum WireError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A message declared a length over the limit; refused before its body was buffered.
    case messageTooLarge(type: UInt8?, length: Int, limit: Int)
    case invalidLength(Int)
    case malformed(String)
    /// Bytes arrived after an SSLRequest before the TLS handshake: they would be read as if encrypted.
    case bytesAfterSSLRequest

    public var description: String {
        switch self {
        case .messageTooLarge(let type, let length, let limit):
            let name = type.map { " '\(String(UnicodeScalar($0)))'" } ?? ""
            return "message\(name) of \(length) bytes is over the limit of \(limit) bytes"
        case .invalidLength(let length): return "invalid message length \(length)"
        case .malformed(let what): return "malformed message: \(what)"
        case .bytesAfterSSLRequest: return "unexpected data after SSLRequest"
        }
    }
}

/// Splits a byte stream into frames (`type`, `Int32 length`, body), reassembling frames split
/// across reads and refusing a length over `maxLength` as soon as the header is read.
public struct FrameDecoder: Sendable {
    public var maxLength: Int

    public init(maxLength: Int) {
        self.maxLength = maxLength
    }

    public func decode(_ buffer: inout ByteBuffer) throws(WireError) -> Frame? {
        guard buffer.readableBytes >= 5,
              let type = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self),
              let length = buffer.getInteger(at: buffer.readerIndex + 1, as: Int32.self)
        else { return nil }
        guard length >= 4 else { throw .invalidLength(Int(length)) }
        guard Int(length) - 4 <= maxLength else {
            throw .messageTooLarge(type: type, length: Int(length) - 4, limit: maxLength)
        }
        guard buffer.readableBytes >= 1 + Int(length) else { return nil }
        buffer.moveReaderIndex(forwardBy: 5)
        let body = buffer.readSlice(length: Int(length) - 4)!
        return Frame(type: type, body: body)
    }
}

/// The untyped messages a client may send first.
public enum StartupMessage: Sendable, Equatable {
    case sslRequest
    case gssEncryptionRequest
    case cancel(processID: Int32, secretKey: Int32)
    case startup(majorVersion: Int16, minorVersion: Int16, parameters: [String: String])

    static let sslCode: Int32 = 80_877_103
    static let gssCode: Int32 = 80_877_104
    static let cancelCode: Int32 = 80_877_102

    /// Startup packets are small; PostgreSQL itself caps them at 10000 bytes.
    public static let maxLength = 10_000

    public static func decode(_ buffer: inout ByteBuffer) throws(WireError) -> StartupMessage? {
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: Int32.self) else { return nil }
        guard length >= 8, length <= maxLength else {
            if length > maxLength { throw .messageTooLarge(type: nil, length: Int(length), limit: maxLength) }
            throw .invalidLength(Int(length))
        }
        guard buffer.readableBytes >= Int(length) else { return nil }
        var body = buffer.getSlice(at: buffer.readerIndex + 4, length: Int(length) - 4)!
        buffer.moveReaderIndex(forwardBy: Int(length))
        let code: Int32 = body.readInteger()!
        switch code {
        case sslCode: return .sslRequest
        case gssCode: return .gssEncryptionRequest
        case cancelCode:
            guard let processID: Int32 = body.readInteger(), let secretKey: Int32 = body.readInteger() else {
                throw .malformed("CancelRequest")
            }
            return .cancel(processID: processID, secretKey: secretKey)
        default:
            var parameters: [String: String] = [:]
            while true {
                guard let name = body.readCString() else { throw .malformed("StartupMessage parameters") }
                if name.isEmpty { break }
                guard let value = body.readCString() else { throw .malformed("StartupMessage parameter \(name)") }
                parameters[name] = value
            }
            return .startup(majorVersion: Int16(truncatingIfNeeded: code >> 16), minorVersion: Int16(truncatingIfNeeded: code & 0xFFFF), parameters: parameters)
        }
    }
}

extension ByteBuffer {
    /// Reads a NUL-terminated string; nil if there is no NUL or the bytes are not UTF-8.
    public mutating func readCString() -> String? {
        guard let nul = readableBytesView.firstIndex(of: 0) else { return nil }
        let length = nul - readerIndex
        guard let bytes = readBytes(length: length) else { return nil }
        moveReaderIndex(forwardBy: 1)
        var string = ""
        guard String(validatingUTF8: bytes.map { CChar(bitPattern: $0) } + [0]).map({ string = $0 }) != nil else { return nil }
        return string
    }

    public mutating func writeCString(_ string: String) {
        writeString(string)
        writeInteger(UInt8(0))
    }

    /// Writes a typed message, filling in its length word.
    public mutating func writeFrame(_ type: Unicode.Scalar, _ body: (inout ByteBuffer) -> Void) {
        writeInteger(UInt8(ascii: type))
        let lengthIndex = writerIndex
        writeInteger(Int32(0))
        body(&self)
        setInteger(Int32(writerIndex - lengthIndex), at: lengthIndex)
    }

    public mutating func writeFrame(_ frame: Frame) {
        writeInteger(frame.type)
        writeInteger(Int32(frame.body.readableBytes + 4))
        writeImmutableBuffer(frame.body)
    }
}
