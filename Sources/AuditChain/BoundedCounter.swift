/// Counts occurrences of keys in a stream while keeping at most `capacity` keys: the Space-Saving
/// algorithm (Metwally, Agrawal, El Abbadi 2005). While no more than `capacity` distinct keys have
/// been seen, every count is exact. Past that, a new key takes the place of the key with the
/// smallest count and inherits that count as its possible overcount (`error`): its true count is
/// between `count - error` and `count`, and any key that occurs more than total / capacity times is
/// kept. The smallest count is found through a min-heap, so each step is O(log capacity).
public struct BoundedCounter<Key: Hashable, Payload> {
    public struct Item {
        public var key: Key
        public var count: UInt64
        /// How much of `count` may belong to the keys this one replaced; 0 means exact.
        public var error: UInt64
        /// Time of the first occurrence counted here (since the key was last taken in).
        public var firstMicros: Int64
        public var lastMicros: Int64
        /// What the caller keeps about the key, taken from its first occurrence counted here.
        public var payload: Payload

        public var isExact: Bool { error == 0 }
    }

    public let capacity: Int
    /// A min-heap on count: the first item is the one to replace.
    private var heap: [Item] = []
    private var positions: [Key: Int] = [:]
    /// Keys replaced so far; 0 means every count is exact and every key is here.
    public private(set) var evictions: UInt64 = 0
    public private(set) var total: UInt64 = 0

    public init(capacity: Int) {
        precondition(capacity > 0)
        self.capacity = capacity
    }

    public var isExact: Bool { evictions == 0 }

    public mutating func add(_ key: Key, at micros: Int64, payload: () -> Payload) {
        total += 1
        if let index = positions[key] {
            heap[index].count += 1
            heap[index].lastMicros = micros
            siftDown(index)
            return
        }
        let item = Item(key: key, count: 1, error: 0, firstMicros: micros, lastMicros: micros, payload: payload())
        if heap.count < capacity {
            heap.append(item)
            positions[key] = heap.count - 1
            siftUp(heap.count - 1)
            return
        }
        let smallest = heap[0].count
        positions[heap[0].key] = nil
        evictions += 1
        heap[0] = Item(key: key, count: smallest + 1, error: smallest, firstMicros: micros, lastMicros: micros, payload: payload())
        positions[key] = 0
        siftDown(0)
    }

    /// The kept items, largest count first (ties: earliest first occurrence first).
    public func top(_ limit: Int = .max) -> [Item] {
        Array(heap.sorted { $0.count != $1.count ? $0.count > $1.count : $0.firstMicros < $1.firstMicros }.prefix(limit))
    }

    public subscript(key: Key) -> Item? { positions[key].map { heap[$0] } }

    private mutating func swapAt(_ a: Int, _ b: Int) {
        heap.swapAt(a, b)
        positions[heap[a].key] = a
        positions[heap[b].key] = b
    }

    private mutating func siftUp(_ start: Int) {
        var child = start
        while child > 0 {
            let parent = (child - 1) / 2
            guard heap[child].count < heap[parent].count else { return }
            swapAt(child, parent)
            child = parent
        }
    }

    private mutating func siftDown(_ start: Int) {
        var parent = start
        while true {
            let left = 2 * parent + 1
            guard left < heap.count else { return }
            let right = left + 1
            let smaller = right < heap.count && heap[right].count < heap[left].count ? right : left
            guard heap[smaller].count < heap[parent].count else { return }
            swapAt(parent, smaller)
            parent = smaller
        }
    }
}

extension BoundedCounter where Payload == Void {
    public mutating func add(_ key: Key, at micros: Int64) {
        add(key, at: micros) { () }
    }
}
