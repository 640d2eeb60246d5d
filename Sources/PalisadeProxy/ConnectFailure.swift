import Foundation
import NIOCore
import NIOPosix

/// What a client is told when Palisade cannot reach or keep its server: the system's reason
/// ("connection refused"), never SwiftNIO's internal description of the attempt.
enum ConnectFailure {
    static func describe(_ error: Error) -> String {
        switch error {
        case let error as NIOConnectionError:
            // One failure per address tried; the first names the reason well enough.
            if let first = error.connectionErrors.first { return describe(first.error) }
            if let dnsError = error.dnsAAAAError ?? error.dnsAError { return "cannot resolve \(error.host): \(describe(dnsError))" }
            return "no address to connect to for \(error.host)"
        case let error as IOError:
            return String(cString: strerror(error.errnoCode)).lowercased()
        case ChannelError.connectTimeout(let amount):
            return "no answer within \(amount.nanoseconds / 1_000_000_000) s"
        case ChannelError.ioOnClosedChannel, ChannelError.alreadyClosed, ChannelError.eof:
            return "the connection was closed"
        default:
            return "\(error)"
        }
    }
}
