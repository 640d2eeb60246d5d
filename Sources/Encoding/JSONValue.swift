/// A JSON value as read, strictly: numbers keep their spelling (a token's claims reach PostgreSQL
/// verbatim, so what was checked must be what the database sees), object members keep their order,
/// and a key appears at most once (`{"tenant_id":"a","tenant_id":"b"}` would let two readers disagree).
public enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    /// The literal as written, already checked against the JSON number grammar.
    case number(String)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)

    public static func int(_ value: Int64) -> JSONValue { .number(String(value)) }

    public subscript(key: String) -> JSONValue? { objectValue?[key] }

    public var stringValue: String? { if case .string(let text) = self { text } else { nil } }
    public var objectValue: JSONObject? { if case .object(let object) = self { object } else { nil } }
    public var arrayValue: [JSONValue]? { if case .array(let items) = self { items } else { nil } }
    public var doubleValue: Double? { if case .number(let literal) = self { Double(literal) } else { nil } }

    /// Only an integer literal (no fraction, no exponent) that fits an `Int64`.
    public var int64Value: Int64? {
        guard case .number(let literal) = self, JSONNumber.isInteger(literal) else { return nil }
        return Int64(literal)
    }

    /// U+0000 anywhere, in a key or a string: PostgreSQL text and jsonb cannot store it.
    public var containsNUL: Bool {
        switch self {
        case .null, .bool, .number: false
        case .string(let text): text.utf8.contains(0)
        case .array(let items): items.contains { $0.containsNUL }
        case .object(let object): object.members.contains { $0.key.utf8.contains(0) || $0.value.containsNUL }
        }
    }
}

/// Object members in the order they were written. Equality ignores the order, as JSON does.
public struct JSONObject: Sendable, Equatable, ExpressibleByDictionaryLiteral {
    public private(set) var members: [(key: String, value: JSONValue)] = []

    public init() {}

    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        for (key, value) in elements { self[key] = value }
    }

    public init(_ dictionary: [String: JSONValue]) {
        for key in dictionary.keys.sorted(by: JSONText.keyPrecedes) { members.append((key, dictionary[key]!)) }
    }

    public var keys: [String] { members.map(\.key) }

    /// Setting replaces a member in place or appends a new one; `nil` removes it.
    public subscript(key: String) -> JSONValue? {
        get { members.first { $0.key == key }?.value }
        set {
            let index = members.firstIndex { $0.key == key }
            switch (index, newValue) {
            case (let index?, let value?): members[index].value = value
            case (let index?, nil): members.remove(at: index)
            case (nil, let value?): members.append((key, value))
            case (nil, nil): break
            }
        }
    }

    public static func == (a: JSONObject, b: JSONObject) -> Bool {
        a.members.count == b.members.count && a.members.allSatisfy { b[$0.key] == $0.value }
    }
}

enum JSONNumber {
    /// `-?(0|[1-9][0-9]*)`: the grammar has been checked already, so no fraction or exponent is enough.
    static func isInteger(_ literal: String) -> Bool {
        !literal.utf8.contains { $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "e") || $0 == UInt8(ascii: "E") }
    }
}
