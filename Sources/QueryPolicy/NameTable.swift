/// A fixed table of names looked up by their UTF-8 bytes, as the server compares names: byte for
/// byte (see `ExactText`).
///
/// A `Set<String>` or `Dictionary` would compare names by Unicode canonical equivalence and hash
/// them with SipHash, which costs more than the rest of a point query's walk of the node that
/// names them; names are short, and FNV-1a over the bytes is enough for a table whose keys are
/// fixed when it is built.
struct NameTable<Value: Sendable>: Sendable {
    /// Every key's bytes, one after another.
    private let bytes: [UInt8]
    /// For each entry: where its key starts in `bytes`, its length, and its value.
    private let entries: [(start: Int, count: Int, value: Value)]
    /// Open addressing: an index into `entries`, or -1 for an empty slot.
    private let slots: [Int]
    private let mask: Int

    init(_ pairs: some Sequence<(String, Value)>) {
        var bytes: [UInt8] = []
        var entries: [(start: Int, count: Int, value: Value)] = []
        // The empty name is never a key (no relation, function or operator is named so).
        for (name, value) in pairs where !name.isEmpty {
            entries.append((bytes.count, name.utf8.count, value))
            bytes += name.utf8
        }
        // At most half full, so that probes stay short.
        var capacity = 8
        while capacity < entries.count * 2 { capacity *= 2 }
        var slots = Array(repeating: -1, count: capacity)
        for (index, entry) in entries.enumerated() {
            var slot = bytes.withUnsafeBufferPointer { Self.hash($0.baseAddress! + entry.start, entry.count) } & (capacity - 1)
            while slots[slot] >= 0 { slot = (slot + 1) & (capacity - 1) }
            slots[slot] = index
        }
        self.bytes = bytes
        self.entries = entries
        self.slots = slots
        mask = capacity - 1
    }

    @inline(__always) static func hash(_ start: UnsafePointer<UInt8>, _ count: Int) -> Int {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for index in 0..<count {
            hash = (hash ^ UInt64(start[index])) &* 0x0000_0100_0000_01b3
        }
        return Int(truncatingIfNeeded: hash ^ hash >> 29)
    }

    private func value(for name: ParseTreeCursor.Bytes) -> Value? {
        bytes.withUnsafeBufferPointer { storage in
            var slot = Self.hash(name.start, name.count) & mask
            while true {
                let index = slots[slot]
                guard index >= 0 else { return nil }
                let entry = entries[index]
                if entry.count == name.count, ParseTreeCursor.Bytes.equalBytes(storage.baseAddress! + entry.start, name.start, name.count) {
                    return entry.value
                }
                slot = (slot + 1) & mask
            }
        }
    }

    func value(for name: String) -> Value? {
        var name = name
        return name.withUTF8 { utf8 in
            guard let start = utf8.baseAddress, !utf8.isEmpty else { return nil }
            return value(for: ParseTreeCursor.Bytes(start: start, count: utf8.count))
        }
    }

    func contains(_ name: String) -> Bool { value(for: name) != nil }
}

extension NameTable where Value == Void {
    init(_ names: some Sequence<String>) {
        self.init(names.lazy.map { ($0, ()) })
    }
}
