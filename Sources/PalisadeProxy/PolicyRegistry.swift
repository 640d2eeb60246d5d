import QueryPolicy
import Synchronization

/// The policy engine of each profile, replaced whole on reload: a query is decided by the policies
/// that were current when it arrived, never by a mix of old and new.
public final class PolicyRegistry: Sendable {
    private let engines: Mutex<[String: PolicyEngine]>

    public init(_ engines: [String: PolicyEngine]) {
        self.engines = Mutex(engines)
    }

    public func engine(for profile: String) -> PolicyEngine? {
        engines.withLock { $0[profile] }
    }

    public var all: [String: PolicyEngine] {
        engines.withLock { $0 }
    }

    /// Installs a complete new set; profiles missing from it would strand their sessions, so it must
    /// name the same profiles.
    public func replace(with new: [String: PolicyEngine]) -> Bool {
        engines.withLock { engines in
            guard Set(new.keys) == Set(engines.keys) else { return false }
            engines = new
            return true
        }
    }
}
