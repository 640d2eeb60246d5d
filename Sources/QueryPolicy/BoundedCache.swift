import Synchronization

/// A thread-safe map that holds at most about `2 × capacity` entries.
///
/// Two generations instead of an LRU list: a lookup that hits the old generation promotes the
/// entry, and when the young generation fills up the old one is dropped whole. Recently used
/// entries survive, memory stays bounded, and every operation is O(1) without per-entry links.
final class BoundedCache<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    private struct Generations {
        var young: [Key: Value] = [:]
        var old: [Key: Value] = [:]
    }

    private let capacity: Int
    private let generations = Mutex(Generations())

    init(capacity: Int) {
        precondition(capacity > 0)
        self.capacity = capacity
    }

    func value(for key: Key) -> Value? {
        generations.withLock { state in
            if let value = state.young[key] { return value }
            guard let value = state.old.removeValue(forKey: key) else { return nil }
            Self.insert(key, value, into: &state, capacity: capacity)
            return value
        }
    }

    func store(_ value: Value, for key: Key) {
        generations.withLock { Self.insert(key, value, into: &$0, capacity: capacity) }
    }

    private static func insert(_ key: Key, _ value: Value, into state: inout Generations, capacity: Int) {
        if state.young.count >= capacity {
            state.old = state.young
            state.young = [:]
            state.young.reserveCapacity(capacity)
        }
        state.young[key] = value
    }
}
