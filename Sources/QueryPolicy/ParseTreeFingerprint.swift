import CPgQuery
#if canImport(Glibc)
import Glibc
#endif

/// libpg_query's query fingerprint, recomputed from the JSON parse tree libpg_query already wrote.
///
/// `pg_query_fingerprint_node` (libpg_query 15-4.0.0) walks the tree once and feeds a stream of
/// tokens into a seeded XXH3 state; for every child field it copies the state and takes a digest,
/// so that it can take the field's name back if the child added nothing. That bookkeeping is most
/// of its cost. Here the same tokens go into one byte buffer, where taking a name back is a
/// truncation, and the buffer is hashed once at the end (streaming and one-shot XXH3 with the same
/// seed give the same value).
///
/// The rules, as libpg_query 15-4.0.0 applies them (its generated pg_query_fingerprint_defs.c and
/// pg_query_fingerprint.c, checked against the installed library):
/// - A node is its type name followed by its non-default fields in byte order of the field name,
///   each as the field name and then the value. The JSON has the same field names but in struct
///   order and omits the same defaults (null pointers, empty lists, zero, false), so each field is
///   written as a piece and the pieces are put in order afterwards. Enums are always written.
/// - Node and list fields whose child writes nothing are dropped with their name, except a list
///   field holding exactly one null element (`SELECT DISTINCT`'s `[{}]`), which keeps its name.
///   `location` fields never count.
/// - Not fingerprinted at all: A_Const, Alias, ParamRef, SetToDefault, IntList, OidList, Null, and
///   a TypeCast of an A_Const or ParamRef. Fields skipped per node: see `Kind.skips`.
/// - The elements of a list under a field named fromClause, targetList, cols, rexpr, valuesLists or
///   args (also nested lists under such a field) are hashed one by one (seeded XXH3), ordered by
///   that hash, and written once per distinct hash.
/// - Special forms: String is `String str <sval>`, Float and BitString write `str` too,
///   Integer is `Integer ival <n>` (nothing if 0); Boolean nodes write nothing (15-4.0.0 has no
///   case for them).
///   A_Expr kinds AEXPR_OP_ANY and AEXPR_IN are written as AEXPR_OP; a ResTarget's `name` is
///   skipped in a SELECT's target list; a RangeVar's relname loses every run of two or more digits
///   and is skipped for temporary relations (relpersistence `t`).
/// - Nothing at depth 100 or more is written: the statement list is depth 0, each field or list
///   element one deeper. Fields whose type is a specific node (written in the JSON as an object
///   without a type name, such as `relation` or `typeName`) write no type name and are not checked
///   for depth themselves, only their children are.
///
/// One thing the JSON cannot tell: libpg_query 15-4.0.0 writes an Integer node of 0 and of any
/// negative value alike as `{"Integer":{}}` (array bounds `int[]` are -1, `START -1` in DDL), so
/// such a tree gets nil and the caller falls back to libpg_query's own function.
enum ParseTreeFingerprint {
    /// libpg_query's fingerprint of the statement list in `json` (the output of pg_query_parse /
    /// pg_query_nodes_to_json), or nil if the tree holds something this port does not reproduce
    /// exactly (the caller then uses libpg_query's own function).
    static func fingerprint(json: UnsafeBufferPointer<UInt8>) -> UInt64? {
        tokenStream(json: json) { XXH3_64bits_withSeed($0.baseAddress, $0.count, seed) }
    }

    /// PG_QUERY_FINGERPRINT_VERSION, the seed of every XXH3 state libpg_query uses.
    static let seed: UInt64 = 3

    /// The concatenated tokens libpg_query hashes for `json`, handed to `body` (for the fingerprint
    /// and for tests that compare token streams); nil where `fingerprint` gives nil.
    static func tokenStream<R>(json: UnsafeBufferPointer<UInt8>, _ body: (UnsafeBufferPointer<UInt8>) -> R) -> R? {
        guard json.baseAddress != nil, json.count > 0 else { return nil }
        // Most trees fit buffers on the stack; larger ones move to the heap as they grow.
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 1024) { bytes in
            withUnsafeTemporaryAllocation(of: Piece.self, capacity: 24) { pieces in
                var walker = Walker(json, bytes: bytes, pieces: pieces)
                // The JSON is the tree plus punctuation and locations: an upper bound that
                // avoids regrowing the buffer for trees too large for the stack.
                walker.out.reserve(json.count + 256)
                defer { walker.release() }
                do {
                    try walker.statements()
                } catch {
                    return nil
                }
                return body(UnsafeBufferPointer(start: walker.out.base, count: walker.out.count))
            }
        }
    }
}

/// A construct whose fingerprint the JSON does not determine.
private struct Unsupported: Error {}

private typealias Bytes = ParseTreeCursor.Bytes
private typealias Malformed = ParseTreeCursor.Malformed

private extension ParseTreeCursor.Bytes {
    /// Equal to `text`: the cursor's pattern match, spelled as a method for the many name tests here.
    @inline(__always) func `is`(_ text: StaticString) -> Bool {
        text ~= self
    }

    /// Field-name order: byte order, a prefix first (Ruby's `sort_by` on the names).
    @inline(__always) func precedes(_ other: Bytes) -> Bool {
        let common = Swift.min(count, other.count)
        for index in 0..<common where start[index] != other.start[index] {
            return start[index] < other.start[index]
        }
        return count < other.count
    }

    /// The first byte (a name is never empty in libpg_query's JSON; an empty one reads its quote).
    @inline(__always) var first: UInt8 { start[0] }
}

private extension UInt8 {
    static let quote = UInt8(ascii: "\""), backslash = UInt8(ascii: "\\"), colon = UInt8(ascii: ":"), comma = UInt8(ascii: ",")
    static let openBrace = UInt8(ascii: "{"), closeBrace = UInt8(ascii: "}"), openBracket = UInt8(ascii: "["), closeBracket = UInt8(ascii: "]")
    static let zero = UInt8(ascii: "0"), nine = UInt8(ascii: "9"), minus = UInt8(ascii: "-")
    var isDigit: Bool { self >= .zero && self <= .nine }
}

/// Node types whose fingerprint differs from the generic rule in some field.
private enum Kind {
    case plain, selectStmt, resTarget, aExpr, rawStmt
    case named, transaction, portal, condition, doStmt, createFunction, functionParameter

    /// Dispatches on the first letter, so that most types cost one comparison.
    init(_ type: Bytes) {
        self = .plain
        switch type.first {
        case UInt8(ascii: "A"): if type.is("A_Expr") { self = .aExpr }
        case UInt8(ascii: "S"): if type.is("SelectStmt") { self = .selectStmt }
        case UInt8(ascii: "R"): if type.is("ResTarget") { self = .resTarget }
        case UInt8(ascii: "P"): if type.is("PrepareStmt") { self = .named }
        case UInt8(ascii: "E"): if type.is("ExecuteStmt") { self = .named }
        case UInt8(ascii: "T"): if type.is("TransactionStmt") { self = .transaction }
        case UInt8(ascii: "L"): if type.is("ListenStmt") { self = .condition }
        case UInt8(ascii: "U"): if type.is("UnlistenStmt") { self = .condition }
        case UInt8(ascii: "N"): if type.is("NotifyStmt") { self = .condition }
        case UInt8(ascii: "D"):
            if type.is("DeallocateStmt") { self = .named }
            else if type.is("DeclareCursorStmt") { self = .portal }
            else if type.is("DoStmt") { self = .doStmt }
        case UInt8(ascii: "F"):
            if type.is("FetchStmt") { self = .portal }
            else if type.is("FunctionParameter") { self = .functionParameter }
        case UInt8(ascii: "C"):
            if type.is("ClosePortalStmt") { self = .portal }
            else if type.is("CreateFunctionStmt") { self = .createFunction }
        default: break
        }
    }

    /// libpg_query's FINGERPRINT_OVERRIDE_FIELDS (15-4.0.0) other than `location`, which is
    /// skipped everywhere: names that vary per session (prepared statements, cursors, savepoints,
    /// channels) and the bodies of DO blocks and functions do not change the fingerprint.
    @inline(__always) func skips(_ key: Bytes, inSelectTargetList: Bool) -> Bool {
        switch self {
        case .plain, .selectStmt, .aExpr: false
        case .resTarget: inSelectTargetList && key.is("name")
        case .rawStmt: key.is("stmt_len") || key.is("stmt_location")
        case .named, .functionParameter: key.is("name")
        case .transaction: key.is("options") || key.is("gid") || key.is("savepoint_name")
        case .portal: key.is("portalname")
        case .condition: key.is("conditionname")
        case .doStmt: key.is("args")
        case .createFunction: key.is("options")
        }
    }
}

/// Where a node or list sits, as far as the fingerprint cares.
private struct Slot {
    /// The field is one whose list elements libpg_query orders by hash.
    var sorted = false
    /// The field is a SelectStmt's targetList (ResTarget names are skipped there).
    var selectTargetList = false

    init() {}

    @inline(__always) init(field key: Bytes, of kind: Kind) {
        switch key.first {
        case UInt8(ascii: "t"):
            if key.is("targetList") {
                sorted = true
                selectTargetList = kind == .selectStmt
            }
        case UInt8(ascii: "f"): sorted = key.is("fromClause")
        case UInt8(ascii: "a"): sorted = key.is("args")
        case UInt8(ascii: "r"): sorted = key.is("rexpr")
        case UInt8(ascii: "c"): sorted = key.is("cols")
        case UInt8(ascii: "v"): sorted = key.is("valuesLists")
        default: break
        }
    }
}

/// A field's or a list element's output: bytes `start..<end` of the output buffer.
private struct Piece {
    var start: Int
    var end: Int
    /// Field pieces: the field name, the order libpg_query writes fields in.
    /// List element pieces: the element's own seeded XXH3, the order of sorted lists.
    var key: Bytes
    var hash: UInt64
}

/// A buffer that starts in the caller's stack storage and moves to the heap only if it outgrows it.
private struct SpillBuffer<Element> {
    var base: UnsafeMutablePointer<Element>
    var count = 0
    var capacity: Int
    /// Whether `base` was allocated here (else it is the caller's stack buffer).
    var owned = false

    init(_ buffer: UnsafeMutableBufferPointer<Element>) {
        base = buffer.baseAddress!
        capacity = buffer.count
    }

    @inline(__always) mutating func reserve(_ extra: Int) {
        if count + extra > capacity { grow(to: count + extra) }
    }

    mutating func grow(to needed: Int) {
        capacity = max(needed, capacity * 2)
        let larger = UnsafeMutablePointer<Element>.allocate(capacity: capacity)
        larger.moveInitialize(from: base, count: count)
        if owned { base.deallocate() }
        base = larger
        owned = true
    }

    func release() {
        if owned { base.deallocate() }
    }
}

/// The token stream.
private typealias Output = SpillBuffer<UInt8>

extension SpillBuffer<UInt8> {
    @inline(__always) mutating func append(_ bytes: UnsafePointer<UInt8>, _ length: Int) {
        reserve(length)
        let target = UnsafeMutableRawPointer(base + count)
        let source = UnsafeRawPointer(bytes)
        // Names and values are short: two overlapping word copies beat a memmove call.
        if length >= 8 && length <= 16 {
            target.storeBytes(of: source.loadUnaligned(as: UInt64.self), as: UInt64.self)
            (target + length - 8).storeBytes(of: (source + length - 8).loadUnaligned(as: UInt64.self), as: UInt64.self)
        } else if length >= 4 && length < 8 {
            target.storeBytes(of: source.loadUnaligned(as: UInt32.self), as: UInt32.self)
            (target + length - 4).storeBytes(of: (source + length - 4).loadUnaligned(as: UInt32.self), as: UInt32.self)
        } else if length < 4 {
            for index in 0..<length { base[count + index] = bytes[index] }
        } else {
            (base + count).update(from: bytes, count: length)
        }
        count += length
    }

    @inline(__always) mutating func append(_ bytes: Bytes) { append(bytes.start, bytes.count) }

    @inline(__always) mutating func append(_ text: StaticString) {
        append(text.utf8Start, text.utf8CodeUnitCount)
    }

    @inline(__always) mutating func append(byte: UInt8) {
        reserve(1)
        base[count] = byte
        count += 1
    }
}

/// A stack of pieces shared by all levels: each node or list uses the entries above its mark.
private typealias PieceStack = SpillBuffer<Piece>

extension SpillBuffer<Piece> {
    @inline(__always) mutating func push(_ piece: Piece) {
        reserve(1)
        (base + count).initialize(to: piece)
        count += 1
    }
}

private struct Walker {
    var cursor: ParseTreeCursor
    var out: Output
    var pieces: PieceStack

    init(_ json: UnsafeBufferPointer<UInt8>, bytes: UnsafeMutableBufferPointer<UInt8>, pieces: UnsafeMutableBufferPointer<Piece>) {
        cursor = ParseTreeCursor(json)
        out = Output(bytes)
        self.pieces = PieceStack(pieces)
    }

    func release() {
        out.release()
        pieces.release()
    }

    // MARK: Tree structure

    /// `{"version":…,"stmts":[{RawStmt fields}, …]}`: the statement list is depth 0 and is not
    /// sorted; each RawStmt (written without its type name in the JSON) is depth 1.
    mutating func statements() throws {
        try cursor.expect(.openBrace)
        while let key = try cursor.nextKey() {
            guard key.is("stmts") else { try cursor.skipValue(); continue }
            try cursor.expect(.openBracket)
            while try cursor.nextElement() {
                out.append("RawStmt")
                try fields(of: .rawStmt, in: Slot(), depth: 1)
            }
        }
    }

    /// A node value (`{"Type":{…}}`, or `{}` for a null pointer) at `depth`: libpg_query's
    /// _fingerprintNode.
    mutating func node(in slot: Slot, depth: Int) throws {
        guard depth < 100 else { return try cursor.skipValue() }
        // `{"String":{"sval":"…"}}` is the most common node (names in ColumnRefs, funcnames,
        // TypeNames): read in one step.
        if cursor.startsWith("{\"String\":{\"sval\":\"") {
            cursor.offset += 19
            let (value, escaped) = try cursor.stringBody()
            out.append("Stringstr")
            try append(value, escaped: escaped)
            try cursor.expect(.closeBrace)
            return try cursor.expect(.closeBrace)
        }
        try cursor.expect(.openBrace)
        guard let type = try cursor.nextKey() else { return }
        switch type.first {
        case UInt8(ascii: "S") where type.is("String"):
            // sval is never null here (libpg_query would crash on it); `{}` would be "".
            out.append("Stringstr")
            try valueField("sval")
        case UInt8(ascii: "A") where type.is("A_Const") || type.is("Alias"),
             UInt8(ascii: "P") where type.is("ParamRef"),
             UInt8(ascii: "S") where type.is("SetToDefault"),
             UInt8(ascii: "I") where type.is("IntList"),
             UInt8(ascii: "O") where type.is("OidList"),
             UInt8(ascii: "N") where type.is("Null"),
             // Boolean is new in PostgreSQL 15 and unknown to 15-4.0.0's fingerprint (no case
             // for T_Boolean: it logs a warning and writes nothing).
             UInt8(ascii: "B") where type.is("Boolean"):
            try cursor.skipValue()
        case UInt8(ascii: "T") where type.is("TypeCast") && (cursor.startsWith("{\"arg\":{\"A_Const\"") || cursor.startsWith("{\"arg\":{\"ParamRef\"")):
            // A cast constant or parameter is a constant: nothing, as libpg_query's conds file says.
            try cursor.skipValue()
        case UInt8(ascii: "L") where type.is("List"):
            try cursor.expect(.openBrace)
            if let key = try cursor.nextKey() {
                guard key.is("items") else { throw Unsupported() }
                _ = try list(in: slot, depth: depth)
                guard try cursor.nextKey() == nil else { throw Unsupported() }
            }
        case UInt8(ascii: "I") where type.is("Integer"):
            // 0 writes nothing, but the JSON writes negative values as `{}` too: undecidable.
            try cursor.expect(.openBrace)
            guard let key = try cursor.nextKey(), key.is("ival") else { throw Unsupported() }
            out.append("Integerival")
            try number(field: key)
            guard try cursor.nextKey() == nil else { throw Unsupported() }
        case UInt8(ascii: "F") where type.is("Float"):
            try valueField("fval", prefix: "Floatstr")
        case UInt8(ascii: "B") where type.is("BitString"):
            try valueField("bsval", prefix: "BitStringstr")
        default:
            out.append(type)
            try fields(of: Kind(type), in: slot, depth: depth)
        }
        try cursor.expect(.closeBrace)
    }

    /// The list at the cursor (`[…]`) at `depth`, its elements one deeper. Returns whether it is
    /// exactly one null element, whose field keeps its name even though nothing is written.
    mutating func list(in slot: Slot, depth: Int) throws -> Bool {
        let onlyNull = cursor.startsWith("[{}]")
        guard depth < 100 else {
            try cursor.skipValue()
            return onlyNull
        }
        try cursor.expect(.openBracket)
        guard slot.sorted else {
            while try cursor.nextElement() { try node(in: slot, depth: depth + 1) }
            return onlyNull
        }
        // Each element is hashed on its own; libpg_query then writes them in hash order, once
        // per distinct hash. Elements that write nothing cannot change the stream and are left out.
        let regionStart = out.count
        let mark = pieces.count
        var ordered = true
        while try cursor.nextElement() {
            let start = out.count
            try node(in: slot, depth: depth + 1)
            guard out.count > start else { continue }
            // Most such lists hold one element, which needs no hash: hashes are taken from the
            // second element on (the first one's then).
            if pieces.count == mark + 1 { pieces.base[mark].hash = hash(pieces.base[mark]) }
            var piece = Piece(start: start, end: out.count, key: Bytes(start: cursor.base, count: 0), hash: 0)
            if pieces.count > mark {
                piece.hash = hash(piece)
                if pieces.base[pieces.count - 1].hash >= piece.hash { ordered = false }
            }
            pieces.push(piece)
        }
        if !ordered {
            let elements = UnsafeMutableBufferPointer(start: pieces.base + mark, count: pieces.count - mark)
            sort(elements) { $0.hash < $1.hash }
            rewrite(from: regionStart, elements, skippingRepeatedHashes: true)
        }
        pieces.count = mark
        return onlyNull
    }

    /// The fields object of a node (`{…}` after its type name) at `depth`: each field is written
    /// as a piece, then the pieces are put in libpg_query's order (by field name).
    mutating func fields(of kind: Kind, in slot: Slot, depth: Int) throws {
        try cursor.expect(.openBrace)
        let regionStart = out.count
        let mark = pieces.count
        var ordered = true
        var relname: Int?
        while true {
            // `,"location":<n>` is in almost every node and never counts: skipped without
            // reading it as a key.
            if cursor.startsWith(",\"location\":") {
                cursor.offset += 12
                if cursor.offset < cursor.end, cursor.base[cursor.offset] == .minus { cursor.offset += 1 }
                while cursor.offset < cursor.end, cursor.base[cursor.offset].isDigit { cursor.offset += 1 }
                continue
            }
            guard let key = try cursor.nextKey() else { break }
            if key.is("location") || kind.skips(key, inSelectTargetList: slot.selectTargetList) {
                try cursor.skipValue()
                continue
            }
            let start = out.count
            if let relname, key.is("relpersistence"), cursor.startsWith("\"t\"") {
                // A temporary relation's name is not fingerprinted (RangeVar only).
                pieces.base[relname].end = pieces.base[relname].start
                ordered = false
            }
            try field(key, of: kind, depth: depth)
            guard out.count > start else { continue }
            if key.is("relname") { relname = pieces.count }
            if pieces.count > mark, !pieces.base[pieces.count - 1].key.precedes(key) { ordered = false }
            pieces.push(Piece(start: start, end: out.count, key: key, hash: 0))
        }
        if !ordered {
            let fields = UnsafeMutableBufferPointer(start: pieces.base + mark, count: pieces.count - mark)
            sort(fields) { $0.key.precedes($1.key) }
            rewrite(from: regionStart, fields, skippingRepeatedHashes: false)
        }
        pieces.count = mark
    }

    /// One field: its name and value, or nothing if the value writes nothing.
    mutating func field(_ key: Bytes, of kind: Kind, depth: Int) throws {
        let keyStart = out.count
        switch try cursor.peek() {
        case .quote:
            // char *, char and enum fields.
            out.append(key)
            cursor.offset += 1
            let (value, escaped) = try cursor.stringBody()
            if key.is("relname") {
                try appendRelname(value, escaped: escaped)
            } else if kind == .aExpr, key.is("kind"), value.is("AEXPR_OP_ANY") || value.is("AEXPR_IN") {
                out.append("AEXPR_OP")
            } else {
                try append(value, escaped: escaped)
            }
        case UInt8(ascii: "t"):
            guard try cursor.boolean() else { throw Unsupported() }
            out.append(key)
            out.append("true")
        case UInt8(ascii: "f"):
            _ = try cursor.boolean()
        case .minus, .zero ... .nine:
            out.append(key)
            try number(field: key)
        case .openBracket:
            // A List * field: its elements sit two levels below the node.
            out.append(key)
            let valueStart = out.count
            let onlyNull = try list(in: Slot(field: key, of: kind), depth: depth + 1)
            if out.count == valueStart, !onlyNull { out.count = keyStart }
        case .openBrace:
            if cursor.startsWith("{\""), isUppercase(cursor.offset + 2) {
                // A Node * field: `{"Type":{…}}`.
                out.append(key)
                let valueStart = out.count
                try node(in: Slot(field: key, of: kind), depth: depth + 1)
                if out.count == valueStart { out.count = keyStart }
            } else if key.is("alias") || key.is("join_using_alias") {
                // Alias * fields: Alias is never fingerprinted.
                try cursor.skipValue()
            } else if key.is("base") {
                // CreateForeignTableStmt's embedded CreateStmt: written at the same depth, and
                // never taken back (its oncommit enum always writes something).
                out.append(key)
                try fields(of: .plain, in: Slot(), depth: depth)
            } else {
                // A field of a specific node type (RangeVar *, TypeName *, …): no type name and
                // no depth check of its own. The JSON names no type; the only one whose rules
                // differ is a set operation's SelectStmt *larg and *rarg.
                out.append(key)
                let valueStart = out.count
                let specific: Kind = key.is("larg") || key.is("rarg") ? .selectStmt : .plain
                try fields(of: specific, in: Slot(), depth: depth + 1)
                if out.count == valueStart { out.count = keyStart }
            }
        case UInt8(ascii: "n"):
            // `null`: an embedded node field that is empty; nothing to write.
            try cursor.skipValue()
        default:
            throw Malformed()
        }
    }

    // MARK: Values

    /// The single-field object of a String, Float or BitString node: `{"<name>":"…"}` writes
    /// `prefix` and the text, `{}` (a null pointer) writes nothing.
    mutating func valueField(_ name: StaticString, prefix: StaticString = "") throws {
        try cursor.expect(.openBrace)
        guard let key = try cursor.nextKey() else { return }
        guard key.is(name) else { throw Unsupported() }
        out.append(prefix)
        try cursor.expect(.quote)
        let (value, escaped) = try cursor.stringBody()
        try append(value, escaped: escaped)
        guard try cursor.nextKey() == nil else { throw Unsupported() }
    }

    /// An integer field as libpg_query prints it: `%d` for int fields, `%ld` for FetchStmt's long
    /// howMany. The JSON prints unsigned fields (Oid, bits32, …) with `%u`, so values above
    /// INT32_MAX are printed back as the negative `int` libpg_query's `%d` gives.
    mutating func number(field key: Bytes) throws {
        let start = cursor.offset
        var position = start
        if position < cursor.end, cursor.base[position] == .minus { position += 1 }
        let digitsStart = position
        while position < cursor.end, cursor.base[position].isDigit { position += 1 }
        let digits = position - digitsStart
        guard digits > 0, digits <= 19 else { throw Malformed() }
        cursor.offset = position
        if digits < 10 || key.is("howMany") {
            out.append(cursor.base + start, position - start)
            return
        }
        var value: Int64 = 0
        for index in digitsStart..<position {
            let (product, overflow) = value.multipliedReportingOverflow(by: 10)
            guard !overflow else { throw Unsupported() }
            value = product + Int64(cursor.base[index] - .zero)
        }
        if start != digitsStart { value = -value }
        if value > Int64(UInt32.max) || value < Int64(Int32.min) { throw Unsupported() }
        for byte in String(Int32(truncatingIfNeeded: value)).utf8 { out.append(byte: byte) }
    }

    /// A RangeVar's relname without its runs of two or more digits, so that `orders_2024_01` and
    /// `orders_2025_02` fingerprint alike (libpg_query's FINGERPRINT_RANGE_VAR_RELNAME).
    mutating func appendRelname(_ raw: Bytes, escaped: Bool) throws {
        let start = out.count
        try append(raw, escaped: escaped)
        guard Self.hasDigitRun(out.base + start, out.count - start) else { return }
        let text = out.base
        var write = start
        var previousIsDigit = false
        for index in start..<out.count {
            let byte = text[index]
            let nextIsDigit = index + 1 < out.count && text[index + 1].isDigit
            if !(byte.isDigit && (previousIsDigit || nextIsDigit)) {
                text[write] = byte
                write += 1
            }
            previousIsDigit = byte.isDigit
        }
        out.count = write
    }

    /// Whether two digits stand side by side (most table names have none).
    static func hasDigitRun(_ text: UnsafePointer<UInt8>, _ count: Int) -> Bool {
        var previousIsDigit = false
        for index in 0..<count {
            let isDigit = text[index].isDigit
            if isDigit && previousIsDigit { return true }
            previousIsDigit = isDigit
        }
        return false
    }

    /// The bytes of a JSON string, its escapes decoded.
    @inline(__always) mutating func append(_ raw: Bytes, escaped: Bool) throws {
        if escaped {
            try ParseTreeCursor.unescape(raw) { out.append(byte: $0) }
        } else {
            out.append(raw)
        }
    }

    // MARK: Reading JSON

    /// Node type names start with a capital letter, field names never do.
    @inline(__always) func isUppercase(_ position: Int) -> Bool {
        position < cursor.end && cursor.base[position] >= UInt8(ascii: "A") && cursor.base[position] <= UInt8(ascii: "Z")
    }

    // MARK: Ordering

    /// A list element's own seeded XXH3, which orders sorted lists.
    @inline(__always) func hash(_ piece: Piece) -> UInt64 {
        XXH3_64bits_withSeed(out.base + piece.start, piece.end - piece.start, ParseTreeFingerprint.seed)
    }

    /// Sorts a few pieces (the fields of a node, the elements of a list).
    func sort(_ pieces: UnsafeMutableBufferPointer<Piece>, by precedes: (Piece, Piece) -> Bool) {
        guard pieces.count > 16 else {
            for index in pieces.indices.dropFirst() {
                let piece = pieces[index]
                var slot = index
                while slot > 0, precedes(piece, pieces[slot - 1]) {
                    pieces[slot] = pieces[slot - 1]
                    slot -= 1
                }
                pieces[slot] = piece
            }
            return
        }
        var pieces = pieces
        pieces.sort(by: precedes)
    }

    /// Rewrites the output from `regionStart` as `pieces` in their order; every byte written
    /// since `regionStart` belongs to one piece or to none (dropped). With
    /// `skippingRepeatedHashes`, a piece with the same hash as the one before it is dropped.
    mutating func rewrite(from regionStart: Int, _ pieces: UnsafeMutableBufferPointer<Piece>, skippingRepeatedHashes: Bool) {
        // Leading pieces already in place stay.
        var write = regionStart
        var first = 0
        while first < pieces.count, pieces[first].start == write, !skippingRepeatedHashes || first == 0 || pieces[first - 1].hash != pieces[first].hash {
            write = pieces[first].end
            first += 1
        }
        let length = out.count - write
        // The copy goes just past the end of the output, then the pieces come back in order.
        out.reserve(length)
        let copy = out.base + out.count
        copy.update(from: out.base + write, count: length)
        let copyStart = write
        for index in pieces.indices.dropFirst(first) {
            let piece = pieces[index]
            if skippingRepeatedHashes, index > 0, pieces[index - 1].hash == piece.hash { continue }
            let count = piece.end - piece.start
            (out.base + write).update(from: copy + (piece.start - copyStart), count: count)
            write += count
        }
        out.count = write
    }
}
