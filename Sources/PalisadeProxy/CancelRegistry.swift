import Locking

/// Maps the cancel keys Palisade hands to clients to the server's own, which clients never see.
final class CancelRegistry: Sendable {
    struct Target: Sendable, Equatable {
        var processID: Int32
        var secretKey: Int32
    }

    private let targets = Locked<[UInt64: Target]>([:])

    private static func key(_ processID: Int32, _ secretKey: Int32) -> UInt64 {
        UInt64(UInt32(bitPattern: processID)) << 32 | UInt64(UInt32(bitPattern: secretKey))
    }

    /// Registers a session and returns the key data to give its client.
    func register(_ target: Target) -> (processID: Int32, secretKey: Int32) {
        targets.withLock { targets in
            while true {
                let processID = Int32.random(in: 1...Int32.max)
                let secretKey = Int32.random(in: Int32.min...Int32.max)
                let key = Self.key(processID, secretKey)
                if targets[key] == nil {
                    targets[key] = target
                    return (processID, secretKey)
                }
            }
        }
    }

    func remove(processID: Int32, secretKey: Int32) {
        _ = targets.withLock { $0.removeValue(forKey: Self.key(processID, secretKey)) }
    }

    func target(processID: Int32, secretKey: Int32) -> Target? {
        targets.withLock { $0[Self.key(processID, secretKey)] }
    }
}
