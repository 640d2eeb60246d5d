import Locking

/// A thread-safe map that holds at most about `2 × capacity` entries and `2 × bytesPerGeneration`
/// of their stated sizes.
///
/// Two generations instead of an LRU list: a lookup that hits the old generation promotes the
/// entry, and when the young generation fills up the old one is dropped whole. Recently used
/// entries survive, memory stays bounded, and every operation is O(1) without per-entry links.
/// The byte bound matters because keys are client text: without it, unique 64 KiB queries would
/// hold gigabytes.
final class BoundedCache<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    private struct Generation {
        var entries: [Key: (value: Value, bytes: Int)] = [:]
        var bytes = 0
    }

    private struct Generations {
        var young = Generation()
        var old = Generation()
    }

    private let capacity: Int
    private let bytesPerGeneration: Int
    private let generations = Locked(Generations())

    init(capacity: Int, bytesPerGeneration: Int) {
        precondition(capacity > 0 && bytesPerGeneration > 0)
        self.capacity = capacity
        self.bytesPerGeneration = bytesPerGeneration
    }

    func value(for key: Key) -> Value? {
        generations.withLock { state in
            if let entry = state.young.entries[key] { return entry.value }
            guard let entry = state.old.entries.removeValue(forKey: key) else { return nil }
            state.old.bytes -= entry.bytes
            insert(key, entry, into: &state)
            return entry.value
        }
    }

    /// Whether `key` is held, without promoting it (for tests of the bounds).
    func contains(_ key: Key) -> Bool {
        generations.withLock { $0.young.entries[key] != nil || $0.old.entries[key] != nil }
    }

    /// Stores `value` unless its size in `bytes` is more than a generation may hold.
    func store(_ value: Value, for key: Key, bytes: Int) {
        guard bytes <= bytesPerGeneration else { return }
        generations.withLock { insert(key, (value, bytes), into: &$0) }
    }

    private func insert(_ key: Key, _ entry: (value: Value, bytes: Int), into state: inout Generations) {
        if state.young.entries.count >= capacity || state.young.bytes + entry.bytes > bytesPerGeneration {
            state.old = state.young
            state.young = Generation()
            state.young.entries.reserveCapacity(capacity)
        }
        if let replaced = state.young.entries.updateValue(entry, forKey: key) { state.young.bytes -= replaced.bytes }
        state.young.bytes += entry.bytes
    }
}
