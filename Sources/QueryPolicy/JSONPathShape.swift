/// What a jsonpath's text says about how often it walks its json, read without parsing it fully.
/// Work that grows with the square of the json comes from three things: `.**` gathers every item
/// at every depth; the root named again (`$` after the path's own start) is walked again for every
/// item a filter sees; and a variable (`$x`) is walked for every item too. In lax mode, the default,
/// a comparison unwraps arrays on both sides, so `@ == $` or `@ == $.a` walk the whole value
/// (ninth red team's review); in strict mode a member of the root (`$.a.b`, `$.a[0]`) is one lookup,
/// and only a wildcard, a range, a filter or keyvalue() after it walks. Strings, comments and
/// escapes are read as PostgreSQL's scanner reads them, so that none hides the rest of the path.
struct JSONPathShape: Equatable {
    var walksEveryDepth = false
    var walksRootAgain = false
    var usesVariables = false
    /// How many times the path may return each item: a subscript list returns an item once per
    /// subscript (lax mode takes a scalar as element 0 of itself, so `$[0,0,0]` is three of it), and
    /// lists along a chain of accessors multiply (100 zeros, four times: 10^8 items, about 17 GB;
    /// tenth red team), as does each keyvalue() after the first.
    var fanOut = 1.0
    /// How many `.**` the path has: each after the first walks every depth again below every item
    /// the one before returned (four over a 50-deep array: 316,251 items from 100 bytes of text,
    /// 774 MB; eleventh round).
    var everyDepthWalks = 0

    var mayCostSquare: Bool { walksEveryDepth || walksRootAgain || usesVariables }

    init(walksEveryDepth: Bool = false, walksRootAgain: Bool = false, usesVariables: Bool = false, fanOut: Double = 1, everyDepthWalks: Int = 0) {
        self.walksEveryDepth = walksEveryDepth
        self.walksRootAgain = walksRootAgain
        self.usesVariables = usesVariables
        self.fanOut = fanOut
        self.everyDepthWalks = everyDepthWalks
    }

    init(_ path: String) {
        let bytes = Array(path.utf8)
        var index = 0
        while index < bytes.count, Self.isSpace(bytes[index]) { index += 1 }
        // jsonpath's keywords are read without regard to case (`STRICT`, `[0 TO 1]`, PostgreSQL 15).
        let strict = bytes[index...].prefix(6).map { $0 | 0x20 }.elementsEqual("strict".utf8)
        var roots = 0
        // Fan-out multiplies along one chain of accessors (`$[0,0][0,0]` is 4 copies, and so is
        // `$[0,0] ? (…) [0,0]`), not across an operator (`@.a[0,1] == 1 || @.b[0,1] == 2` is 2).
        // One scope per open bracket or parenthesis, read in one pass whatever the nesting (a scan
        // from every `[` to its `]` was quadratic in the text).
        var scopes = [Scope(isBracket: false)]
        func endChain() {
            fanOut = max(fanOut, scopes[scopes.count - 1].chain)
            scopes[scopes.count - 1].chain = 1
            scopes[scopes.count - 1].keyvalues = 0
        }
        while index < bytes.count {
            let byte = bytes[index]
            let next = index + 1 < bytes.count ? bytes[index + 1] : 0
            switch byte {
            case UInt8(ascii: "\""):
                index = Self.afterString(bytes, from: index)
                continue
            case UInt8(ascii: "\\"):
                // An escape in an identifier (`$.x\"`): the next byte is part of the name, not a quote.
                index += 2
                continue
            case UInt8(ascii: "/") where next == UInt8(ascii: "*"):
                // A comment, whose text (quotes included) is not the path's.
                index = Self.afterComment(bytes, from: index)
                continue
            case UInt8(ascii: "["), UInt8(ascii: "("):
                scopes.append(Scope(isBracket: byte == UInt8(ascii: "[")))
            case UInt8(ascii: ","):
                if scopes.count > 1, scopes[scopes.count - 1].isBracket { scopes[scopes.count - 1].subscripts += 1 }
                endChain()
            case UInt8(ascii: "]"), UInt8(ascii: ")"):
                endChain()
                guard scopes.count > 1 else { break }
                let closed = scopes.removeLast()
                if closed.isBracket {
                    // A subscript list returns the item once per subscript, which multiplies the chain.
                    scopes[scopes.count - 1].chain *= closed.subscripts
                    fanOut = max(fanOut, scopes[scopes.count - 1].chain)
                }
            case UInt8(ascii: "="), UInt8(ascii: "!"), UInt8(ascii: "<"), UInt8(ascii: ">"), UInt8(ascii: "&"), UInt8(ascii: "|"),
                 UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "%"), UInt8(ascii: "/"):
                endChain()
            case UInt8(ascii: "*") where next == UInt8(ascii: "*"):
                walksEveryDepth = true
                everyDepthWalks += 1
                index += 2
                continue
            case UInt8(ascii: "."):
                // keyvalue() turns each object into one per key, three keys each: a second one in a
                // chain triples the items, and so on (12 in a row made 177,147 items, 588 MB; tenth red team).
                var end = index + 1
                while end < bytes.count, Self.isNameByte(bytes[end]) { end += 1 }
                if bytes[(index + 1)..<end].map({ $0 | 0x20 }).elementsEqual("keyvalue".utf8) {
                    if scopes[scopes.count - 1].keyvalues > 0 { scopes[scopes.count - 1].chain *= 3 }
                    scopes[scopes.count - 1].keyvalues += 1
                    fanOut = max(fanOut, scopes[scopes.count - 1].chain)
                }
            case UInt8(ascii: "$"):
                if next == UInt8(ascii: "\"") {
                    usesVariables = true
                    index = Self.afterString(bytes, from: index + 1)
                    continue
                }
                if Self.isNameByte(next) {
                    usesVariables = true
                } else {
                    roots += 1
                    // Once it walks, the rest need not be read: each read stops at the next `$`, so
                    // the reads together are linear in the text.
                    if roots > 1, !walksRootAgain, !strict || Self.accessorsWalk(bytes, from: index + 1) { walksRootAgain = true }
                }
            default: break
            }
            index += 1
        }
        for scope in scopes { fanOut = max(fanOut, scope.chain) }
    }

    /// An open bracket or parenthesis of the path, or the path itself.
    private struct Scope {
        var isBracket: Bool
        var subscripts = 1.0
        /// The copies the current chain of accessors makes so far, and its keyvalue() calls.
        var chain = 1.0
        var keyvalues = 0
    }

    /// Whether the accessors right after a `$` walk more than one item: `.*`, `[*]`, a range
    /// (`[0 to last]`) or `.keyvalue()`.
    static func accessorsWalk(_ bytes: [UInt8], from start: Int) -> Bool {
        var index = start
        while index < bytes.count {
            switch bytes[index] {
            case UInt8(ascii: "."):
                index += 1
                guard index < bytes.count else { return false }
                if bytes[index] == UInt8(ascii: "*") { return true }
                if bytes[index] == UInt8(ascii: "\"") {
                    index = afterString(bytes, from: index)
                    continue
                }
                let name = index
                while index < bytes.count, isNameByte(bytes[index]) || bytes[index] == UInt8(ascii: "\\") {
                    index += bytes[index] == UInt8(ascii: "\\") ? 2 : 1
                }
                index = min(index, bytes.count)
                if bytes[name..<index].map({ $0 | 0x20 }).elementsEqual("keyvalue".utf8) { return true }
                if index < bytes.count, bytes[index] == UInt8(ascii: "(") {
                    while index < bytes.count, bytes[index] != UInt8(ascii: ")") {
                        if bytes[index] == UInt8(ascii: "$") { return true }
                        index += 1
                    }
                    index += 1
                }
            case UInt8(ascii: "["):
                // A subscript that names the root or a variable again (`$[$.i]`) counts as walking.
                var close = index + 1
                while close < bytes.count, bytes[close] != UInt8(ascii: "]") {
                    if bytes[close] == UInt8(ascii: "$") { return true }
                    close += 1
                }
                guard close < bytes.count else { return true }
                let inside = bytes[(index + 1)..<close]
                if inside.contains(UInt8(ascii: "*")) { return true }
                // A range: the word `to` between the bounds, whatever spaces surround it.
                let words = inside.split { !isNameByte($0) }
                if words.contains(where: { $0.map { $0 | 0x20 }.elementsEqual("to".utf8) }) { return true }
                index = close + 1
            case let byte where isSpace(byte):
                index += 1
            case UInt8(ascii: "/") where index + 1 < bytes.count && bytes[index + 1] == UInt8(ascii: "*"):
                index = afterComment(bytes, from: index)
            case UInt8(ascii: "?"):
                // A filter on the root (`$ ? (@[*] == 2)`) walks it for every item that reaches it.
                return true
            default:
                return false
            }
        }
        return false
    }

    static func isNameByte(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: "_") || byte >= 0x80 || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte | 0x20)
            || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
    }

    static func isSpace(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r")
            || byte == 0x0B || byte == 0x0C
    }

    /// The index after a `/* … */` comment starting at `start` (the end of the text if it is not closed).
    static func afterComment(_ bytes: [UInt8], from start: Int) -> Int {
        var index = start + 2
        while index + 1 < bytes.count {
            if bytes[index] == UInt8(ascii: "*"), bytes[index + 1] == UInt8(ascii: "/") { return index + 2 }
            index += 1
        }
        return bytes.count
    }

    /// The index after a double-quoted string starting at `start`, with its backslash escapes.
    static func afterString(_ bytes: [UInt8], from start: Int) -> Int {
        var index = start + 1
        while index < bytes.count {
            if bytes[index] == UInt8(ascii: "\\") { index += 2; continue }
            if bytes[index] == UInt8(ascii: "\"") { return index + 1 }
            index += 1
        }
        return index
    }
}
