import QueryPolicy
import Locking

/// The policy engine of each profile and the server's types, replaced whole on reload: a query is
/// decided by the policies that were current when it arrived, never by a mix of old and new.
public final class PolicyRegistry: Sendable {
    private struct Current {
        var engines: [String: PolicyEngine]
        /// The server's pg_type, for the parameter types clients declare (see `ServerTypes`).
        var serverTypes: ServerTypes
        /// Advanced by each reload: statements prepared under an earlier one are decided again.
        var generation = 0
    }

    private let current: Locked<Current>

    public init(_ engines: [String: PolicyEngine], serverTypes: ServerTypes = ServerTypes()) {
        current = Locked(Current(engines: engines, serverTypes: serverTypes))
    }

    public func engine(for profile: String) -> PolicyEngine? {
        current.withLock { $0.engines[profile] }
    }

    public var all: [String: PolicyEngine] {
        current.withLock { $0.engines }
    }

    public var serverTypes: ServerTypes {
        current.withLock { $0.serverTypes }
    }

    public var generation: Int {
        current.withLock { $0.generation }
    }

    /// Installs a complete new set; profiles missing from it would strand their sessions, so it must
    /// name the same profiles.
    public func replace(with new: [String: PolicyEngine], serverTypes: ServerTypes) -> Bool {
        current.withLock { current in
            guard Set(new.keys) == Set(current.engines.keys) else { return false }
            current = Current(engines: new, serverTypes: serverTypes, generation: current.generation + 1)
            return true
        }
    }
}
