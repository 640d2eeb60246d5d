/// Growth through the rows a query makes: a WITH query or subquery whose column is `x || x` over
/// another's doubles a value at every level (2^depth), which no single call shows (seventh red
/// team). Every value is sized as copies of the query's inputs plus bytes of its text:
/// - an input is a table's column (by name), a parameter, a whole row, what an accumulating
///   aggregate or an ARRAY(subquery) gathers over rows, or what a recursive query grows, each of
///   a size only the data decides;
/// - `copies` says how many copies of each input the value may hold, and `bytes` how many bytes the
///   text's constants, and what functions make of them, add.
/// A reference to a column of rows the query makes (WITH query, subquery, VALUES, function in FROM)
/// takes that column's size, so sizes compose through every level: `x || x` over a column of 4
/// copies holds 8. A value may hold at most `maxCopies` copies of one input, and at most the
/// policy's `max_function_result_bytes` of the text's bytes; functions that escape or encode
/// multiply by their worst case, and their results over the text's bytes count toward the limit
/// on what the query's allocating calls make together.

/// What kind of value a size is, where it changes what a conversion makes of it.
enum ValueForm: Equatable {
    /// `escapedText` is text without control characters, such as a json's text (`->>`,
    /// `jsonb_each_text`, whose control characters are already `\u0001`) or a label the query
    /// writes: escaping it for json at most doubles it (a backslash or a quote each), where other
    /// text may take 6 bytes a byte. `json_build_object('sku', i->>'sku', …)` counted 36 copies a
    /// field before.
    case text, escapedText, json, jsonb, other

    var isText: Bool { self == .text || self == .escapedText }
}

struct ValueSize {
    /// Input → how many copies of it the value may hold.
    var copies: [String: Double] = [:]
    /// Bytes the text's constants add.
    var bytes: Double = 0
    /// Whether the value comes through a column of rows the query makes.
    var made = false
    var form: ValueForm = .other
    /// Parse-tree nodes the value's expression stands for, with the expressions of the columns of
    /// rows the query makes that it reads put in their place (as the planner pulls them up).
    var nodes: Double = 0
    /// Relations of the subqueries the value's expression holds, those of the columns it reads put
    /// in place too: each reference to such a column is another copy for the planner to plan. A
    /// scalar subquery over information_schema.columns, its column read twice at each of 7 levels
    /// (`x AND x`), took 289 MB where the relations were counted once (sixteenth red team, third pass).
    var relations: Double = 0
    /// Numeric powers (`^`, power, exp) the value's expression holds, those of the columns it reads
    /// put in place too: the planner folds each copy over constants on its own (`checkNumericFolds`).
    var folds: Double = 0

    /// Distinct inputs kept apart in one value; past this they count as one (their copies added).
    static let maxInputs = 256

    var factor: Double { copies.values.max() ?? 0 }

    static func fixed(_ bytes: Double) -> ValueSize { ValueSize(bytes: bytes) }
    /// A value of a few bytes whatever its arguments (a number, a date, a hash): an input of its
    /// own, so that doubling it through rows the query makes counts, but no bytes of the text's.
    static func sized(site: Int) -> ValueSize { .input("#value@\(site)") }
    static func input(_ key: String) -> ValueSize { ValueSize(copies: [key: 1]) }
    /// What Palisade cannot bound: over every limit.
    static var unbounded: ValueSize { ValueSize(copies: ["*": .infinity], bytes: 0, made: true) }

    /// The value holds both (a concatenation).
    mutating func add(_ other: ValueSize) {
        for (key, count) in other.copies { copies[key, default: 0] += count }
        bytes += other.bytes
        made = made || other.made
        nodes += other.nodes
        folds += other.folds
        fold()
    }

    /// The value is one or the other.
    mutating func join(_ other: ValueSize) {
        for (key, count) in other.copies { copies[key] = max(copies[key] ?? 0, count) }
        bytes = max(bytes, other.bytes)
        made = made || other.made
        nodes = max(nodes, other.nodes)
        folds = max(folds, other.folds)
        if form != other.form { form = .other }
        fold()
    }

    func scaled(_ factor: Double) -> ValueSize {
        guard factor > 0 else { return ValueSize(made: made, form: form) }
        return ValueSize(copies: copies.mapValues { $0 * factor }, bytes: bytes * factor, made: made, form: form, nodes: nodes, folds: folds)
    }

    func with(form: ValueForm) -> ValueSize {
        var copy = self
        copy.form = form
        return copy
    }

    private mutating func fold() {
        guard copies.count > Self.maxInputs else { return }
        copies = ["…": copies.values.reduce(0, +)]
    }

    /// The size as a count of bytes with each input taken as one byte (a table's column, as
    /// `Analyzer.sizeBound` counts it).
    var textBytes: Double { bytes + copies.values.reduce(0, +) }

    static func sum(_ sizes: [ValueSize]) -> ValueSize {
        var total = ValueSize()
        for size in sizes { total.add(size) }
        return total
    }

    /// A column of a set operation's arms: a row's value is one arm's, but where the planner puts the
    /// operation in place (a UNION ALL is pulled up arm by arm) each arm's expression is planned,
    /// so the nodes, relations and powers add up (a WITH query read by 100 arms, 3.1 KB, took 1.41 GB
    /// where one arm's nodes were counted; thirty-eighth red team, fifth pass).
    static func armsOf(_ first: ValueSize, _ second: ValueSize) -> ValueSize {
        var result = either([first, second])
        result.nodes = first.nodes + second.nodes
        result.relations = first.relations + second.relations
        result.folds = first.folds + second.folds
        return result
    }

    static func either(_ sizes: [ValueSize]) -> ValueSize {
        guard var result = sizes.first else { return ValueSize() }
        for size in sizes.dropFirst() { result.join(size) }
        return result
    }
}

/// The columns of rows the query makes, or a table (whose columns Palisade does not know).
struct CopyRelation {
    var names: [String?] = []
    var sizes: [ValueSize] = []
    var byName: [String: ValueSize] = [:]
    /// Columns Palisade cannot name (or whose name it does not work out as PostgreSQL does): a
    /// name not among `byName` may be any of them.
    var unnamed: ValueSize?
    /// Whether it passes on a table's columns it does not name (`SELECT * FROM t`, or a table).
    var passesBase = false
    /// Whether `sizes` are the columns in their order (no table's columns expanded among them).
    var ordered = true
    /// The whole row.
    var whole = ValueSize()
    var isBase = false
    /// The arms of the set operations it is made of (`… UNION ALL …`): the planner copies a
    /// condition on its rows into each (`copyQual`).
    var arms = 1.0

    static func base(_ name: String) -> CopyRelation {
        CopyRelation(passesBase: true, ordered: false, whole: .input(name), isBase: true)
    }

    init(passesBase: Bool = false, ordered: Bool = true, whole: ValueSize = ValueSize(), isBase: Bool = false) {
        self.passesBase = passesBase
        self.ordered = ordered
        self.whole = whole
        self.isBase = isBase
    }

    /// `certain`: whether PostgreSQL gives each column the name given (an alias, a column's name).
    init(names: [String?], sizes: [ValueSize], certain: [Bool], passesBase: Bool, ordered: Bool) {
        self.names = names
        self.sizes = sizes
        self.passesBase = passesBase
        self.ordered = ordered
        var whole = ValueSize()
        for (index, size) in sizes.enumerated() {
            whole.add(Analyzer.nested(size))
            if let name = names[index] {
                if let known = byName[name] { byName[name] = ValueSize.either([known, size]) } else { byName[name] = size }
            }
            if names[index] == nil || !certain[index] {
                if var other = unnamed { other.join(size); unnamed = other } else { unnamed = size }
            }
        }
        if passesBase { whole.add(.input("*row")) }
        self.whole = whole
    }

    /// The column `name` (nil where this relation has none of that name).
    func column(_ name: String) -> ValueSize? {
        if let size = byName[name] {
            // A table's column of the same name would make the reference ambiguous.
            return size
        }
        var result: ValueSize?
        if let unnamed { result = unnamed }
        if passesBase {
            if var known = result { known.join(.input(name)); result = known } else { result = .input(name) }
        }
        return result
    }

    /// Any one column.
    var anyColumn: ValueSize {
        var result = ValueSize.either(sizes)
        if let unnamed { result.join(unnamed) }
        if passesBase { result.join(.input("*column")) }
        return result
    }

    var firstColumn: ValueSize {
        if ordered, let first = sizes.first { return first }
        return anyColumn
    }

    /// The columns renamed by an alias list (`AS s(a, b)`, `WITH c(a, b) AS`).
    func renamed(_ aliases: [String]) -> CopyRelation {
        guard !aliases.isEmpty else { return self }
        guard ordered else {
            var relation = CopyRelation(passesBase: true, ordered: false, whole: whole)
            relation.unnamed = anyColumn
            return relation
        }
        var names = self.names
        for (index, alias) in aliases.enumerated() where index < names.count { names[index] = alias }
        var certain = names.map { _ in true }
        for index in aliases.count..<max(aliases.count, names.count) { certain[index] = byName[names[index] ?? ""] != nil }
        var relation = CopyRelation(names: names, sizes: sizes, certain: certain, passesBase: passesBase, ordered: ordered)
        if let unnamed, !passesBase { relation.unnamed = ValueSize.either([relation.unnamed ?? unnamed, unnamed]) }
        return relation
    }
}

struct CopyItem {
    var alias: String
    var relation: CopyRelation
}

/// What one scope's FROM items offer a column reference, worked out once per scope (and again
/// after an item is added): each reference scanned every item in scope, 2.8 s for a 40 KB text of
/// 10,000 tables and references (eighteenth red team).
struct CopyScopeIndex {
    /// The last item of each alias.
    var byAlias: [String: Int] = [:]
    /// A name's sizes, joined, over the items that name their columns.
    var named: [String: ValueSize] = [:]
    /// Whether a table is in scope whose columns are all its own (`.input(name)`).
    var readsTable = false
    /// What the other items offer any name they do not name: their unnamed columns, and a table's
    /// column they pass on.
    var othersUnnamed: ValueSize?
    var othersPassBase = false

    init(_ items: [CopyItem]) {
        for (offset, item) in items.enumerated() {
            byAlias[item.alias] = offset
            let relation = item.relation
            for (name, size) in relation.byName {
                if var known = named[name] { known.join(size); named[name] = known } else { named[name] = size }
            }
            if relation.isBase, relation.unnamed == nil {
                readsTable = true
                continue
            }
            if let unnamed = relation.unnamed {
                if var known = othersUnnamed { known.join(unnamed); othersUnnamed = known } else { othersUnnamed = unnamed }
            }
            if relation.passesBase { othersPassBase = true }
        }
    }
}

/// The state of the copy reader: scopes of FROM items and of WITH queries, innermost last.
struct CopyState {
    /// Changed only through `pushScope`, `popScope` and `add`, which keep `indexes` in step.
    private(set) var scopes: [[CopyItem]] = []
    private var indexes: [CopyScopeIndex?] = []

    mutating func pushScope() {
        scopes.append([])
        indexes.append(nil)
    }

    mutating func popScope() {
        scopes.removeLast()
        indexes.removeLast()
    }

    /// Adds a FROM item to the innermost scope.
    mutating func add(_ item: CopyItem) {
        scopes[scopes.count - 1].append(item)
        indexes[indexes.count - 1] = nil
    }

    mutating func index(_ level: Int) -> CopyScopeIndex {
        if let known = indexes[level] { return known }
        let index = CopyScopeIndex(scopes[level])
        indexes[level] = index
        return index
    }

    /// The innermost item named `alias`, from the innermost scope out.
    mutating func item(aliased alias: String) -> CopyItem? {
        for level in scopes.indices.reversed() {
            if let offset = index(level).byAlias[alias] { return scopes[level][offset] }
        }
        return nil
    }
    var ctes: [[String: CopyRelation]] = []
    var depth = 0
    /// Sites of accumulating aggregates and ARRAY subqueries, for their inputs' keys.
    var sites = 0
    /// Nodes read so far, with the expressions that column references stand for (`ValueSize.nodes`),
    /// and the same of subqueries' relations (`ValueSize.relations`).
    var nodes = 0.0
    var relations = 0.0
    /// Numeric powers read so far, with those column references stand for (`ValueSize.folds`).
    var folds = 0.0

    /// Where the running counts stand, for `copy(since:times:)`.
    var marks: (nodes: Double, relations: Double, folds: Double) { (nodes, relations, folds) }

    /// What was read since `marks` is copied `times` times in all: the parser's copies of an
    /// expression, each put in place and planned on its own.
    mutating func copy(since marks: (nodes: Double, relations: Double, folds: Double), times: Double) {
        guard times > 1 else { return }
        nodes += (nodes - marks.nodes) * (times - 1)
        relations += (relations - marks.relations) * (times - 1)
        folds += (folds - marks.folds) * (times - 1)
    }
    /// The bytes of the text's making that column references stand for, all of them: the planner
    /// puts a subquery's expression in each place its column is read, and a row of many columns
    /// is built whole (`Analyzer.maxReferencedBytesMultiple`).
    var referencedBytes = 0.0
    /// The copies of each parameter that column references stand for (`(SELECT $1::text AS x) s`
    /// read 1,000 times is 1,000 copies the planner makes of one `$1` in the text).
    var referencedParameters: [String: Double] = [:]
    /// The most relations one expression, or the query's output columns together, hold so
    /// (`Analyzer.checkPlanning`), and those of the subqueries as the text writes them, which the
    /// walk counts: the copies are the difference.
    var largestRelations = 0.0
    var writtenRelations = 0.0
    var copiedRelations: Double { max(0, largestRelations - writtenRelations) }
    /// Whether a SELECT's FROM may be read where it stands: the query has no WITH query (see `copySelect`).
    var fromInPlace = false
    /// The text's bytes a row of each accumulating aggregate and ARRAY(subquery) holds, added up,
    /// and the largest of them (`Analyzer.checkAccumulatedRows`).
    var accumulatedRowBytes = 0.0
    var largestAccumulatedRow = 0.0
    /// Whether an ARRAY(subquery) gathers a subquery's rows (a subplan's, in the plan).
    var gathersSubqueryRows = false
}

extension Analyzer {
    /// Copies of one input a value may hold: `x || x` doubled 6 times over rows the query makes.
    /// Ordinary text holds a table's column once or a few times (`name || ' <' || email || '>'`,
    /// `json_build_object(…)` escaping it up to 6 times); 2^depth from a chain of WITH queries
    /// passes it within a few levels.
    static let maxCopies = 64.0

    /// Reads the admitted query once more, sizing every value (see `ValueSize`), and refuses one
    /// that may hold more than `maxCopies` copies of an input or more of the text's bytes than the
    /// policy's limit. Linear in the tree: each node is read once per enclosing SELECT (which
    /// `max_nesting_depth` bounds), and a column reference looks up the FROM items in scope.
    mutating func checkCopies() throws {
        guard analysis.isQuery else { return }
        // Without rows the query makes, functions, casts, subqueries or XML, every value is the
        // text's operands added up (operators are additive), which the text's size bounds: the
        // pass is not needed (pgbench's point lookup never takes it).
        guard tree.containsNode(ofAnyType: ["RangeSubselect", "CommonTableExpr", "RangeFunction", "RangeTableFunc", "FuncCall",
                                             "TypeCast", "SubLink", "XmlExpr", "XmlSerialize"]) else { return }
        // The field holds its WithClause unwrapped (`"withClause":{"ctes":[…]}`): the key is what
        // shows one. A FROM read before its WITH would take the WITH queries for tables.
        copies.fromInPlace = !tree.contains("\"withClause\":")
        var probe = ParseTreeCursor(tree)
        // {"version":…,"stmts":[{"stmt":{"SelectStmt":{…}},…}]}
        try probe.forEachKey { probe, key in
            guard case "stmts" = key else { try probe.skipValue(); return }
            try probe.expect(UInt8(ascii: "["))
            while try probe.nextElement() {
                try probe.forEachKey { probe, key in
                    guard case "stmt" = key else { try probe.skipValue(); return }
                    try probe.forEachKey { probe, type in
                        guard case "SelectStmt" = type else { try probe.skipValue(); return }
                        let relation = try copySelect(&probe)
                        for size in relation.sizes { try copyCheck(size, within: nil) }
                        // What the planner plans in the end: the query's output columns, with the
                        // expressions of the rows they read in place (not each level again).
                        let planned = relation.sizes.reduce(0) { $0 + $1.nodes }
                        // And the subqueries its columns hold, each copy planned (`SELECT *, *` over
                        // a column holding one doubled them at each level: 164 MB at 6).
                        copies.largestRelations = max(copies.largestRelations, relation.sizes.reduce(0) { $0 + $1.relations })
                        if exceedsExpandedNodes(planned, limit: Self.maxExpandedNodesInAll) {
                            throw copyDenial(
                                "the query's output columns stand for \(Self.describe(planned)) nodes once PostgreSQL's planner puts the expressions of the WITH queries and subqueries they read in place of their columns, over the limit of \(Int(Self.maxExpandedNodesInAll)): each use of a column copies its expression, in the planner's memory",
                                "Use each column of rows the query makes fewer times, or build it in fewer levels.",
                                rule: .valueGrowth, at: nil)
                        }
                    }
                }
            }
        }
    }

    private func copyDenial(_ message: String, _ hint: String, rule: Rule, at offset: Int?) -> Denial {
        Denial(rule: rule, message: message, hint: hint, offset: offset, statementType: analysis.statementType)
    }

    /// Refuses a value over the bounds.
    /// The offset is read only for a refusal: finding it scans the node, and every node is checked.
    func copyCheck(_ size: ValueSize, within range: Range<Int>?) throws {
        func offset() -> Int? { range.flatMap { Self.location(in: tree, $0) } }
        let factor = size.factor
        if factor > Self.maxCopies {
            let how = factor.isFinite
                ? "may hold \(Self.describe(factor.rounded(.up))) copies of one value"
                : "holds what Palisade cannot size (a function it does not know the size of, over rows the query makes)"
            throw copyDenial(
                "a value of this query \(how), over the limit of \(Int(Self.maxCopies)): a chain of WITH queries or subqueries each doubling a column (x || x, concat(x, x), repeat(x, 2), format('%s%s', x, x), encode, to_json, …) makes 2^depth copies",
                "Combine each column of rows the query makes at most a few times; do not feed a column doubled in one WITH query or subquery to another that doubles it again.",
                rule: .valueGrowth, at: offset())
        }
        let limit = Double(shared.policy.maxFunctionResultBytes)
        if size.bytes > limit {
            throw copyDenial(
                "a value of this query could take \(Self.describe(size.bytes)) bytes of its text's making (constants repeated, encoded or escaped, or doubled through rows the query makes), over this policy's limit of \(shared.policy.maxFunctionResultBytes) bytes",
                "Build less text in one query; results over \(shared.policy.maxFunctionResultBytes) bytes are refused before they reach the server.",
                rule: .argumentLimit, at: offset())
        }
    }

    /// Adds what a call that multiplies its argument's size makes (encode, quote_literal, to_json,
    /// array_to_string, a cast to text) to what the query's allocating calls make together.
    mutating func copyAllocate(_ result: ValueSize, over arguments: Double, within range: Range<Int>?) throws {
        let tree = tree
        func offset() -> Int? { range.flatMap { Self.location(in: tree, $0) } }
        let made = result.bytes - arguments
        guard made > 0 else { return }
        analysis.allocatedBytes += made
        let limit = shared.policy.maxFunctionResultBytes
        guard analysis.allocatedBytes > Double(limit) else { return }
        let (message, hint) = Self.allocatedTogether(analysis.allocatedBytes, limit: limit)
        throw copyDenial(message, hint, rule: .argumentLimit, at: offset())
    }

    // MARK: SELECT

    /// A SelectStmt body (the object inside `{"SelectStmt":…}`): its output columns.
    mutating func copySelect(_ cursor: inout ParseTreeCursor) throws -> CopyRelation {
        copies.depth += 1
        defer { copies.depth -= 1 }
        guard copies.depth <= shared.policy.maxNestingDepth + 8 else {
            try cursor.skipValue()
            return CopyRelation(names: [nil], sizes: [.unbounded], certain: [false], passesBase: false, ordered: true)
        }
        copies.ctes.append([:])
        copies.pushScope()
        defer {
            copies.ctes.removeLast()
            copies.popScope()
        }
        // The fields are read out of their order (WITH, then FROM, then the rest), so each is first
        // skipped to find it, and a subquery in FROM is skipped once more at every level it is
        // nested in (93k of TPC-H Q9's 819k instructions). Without a WITH query anywhere, nothing
        // FROM reads comes later in the text, so FROM is read where it stands.
        var fields: [(String, ParseTreeCursor)] = []
        var fromRead = false
        try cursor.forEachKey { cursor, key in
            if copies.fromInPlace, case "fromClause" = key {
                try cursor.expect(UInt8(ascii: "["))
                while try cursor.nextElement() { try copyFromItem(&cursor) }
                fromRead = true
                return
            }
            fields.append((key.string, cursor))
            try cursor.skipValue()
        }
        func field(_ name: String) -> ParseTreeCursor? { fields.first { $0.0 == name }?.1 }
        if var with = field("withClause") { try copyWith(&with) }
        if var left = field("larg"), var right = field("rarg") {
            let setStart = left.offset
            let first = try copySelect(&left)
            let second = try copySelect(&right)
            if var operation = field("op"), ["SETOP_INTERSECT", "SETOP_EXCEPT"].contains(try operation.string()) {
                // A hashed set keeps every row, and does not spill.
                try refuseWindowGathered(first.sizes + second.sizes + [first.unnamed, second.unnamed].compactMap { $0 }, site: setStart)
            }
            for name in ["sortClause", "limitOffset", "limitCount"] {
                if var other = field(name) { _ = try copyChildren(&other) }
            }
            var sizes = first.sizes
            guard first.ordered, second.ordered, first.sizes.count == second.sizes.count else {
                var relation = CopyRelation(passesBase: first.passesBase || second.passesBase, ordered: false)
                relation.unnamed = ValueSize.armsOf(first.anyColumn, second.anyColumn)
                relation.whole = ValueSize.armsOf(first.whole, second.whole)
                relation.arms = first.arms + second.arms
                return relation
            }
            for index in sizes.indices { sizes[index] = ValueSize.armsOf(sizes[index], second.sizes[index]) }
            var relation = CopyRelation(names: first.names, sizes: sizes, certain: first.names.map { _ in false }, passesBase: false, ordered: true)
            relation.arms = first.arms + second.arms
            return relation
        }
        if !fromRead, var from = field("fromClause") {
            try from.expect(UInt8(ascii: "["))
            while try from.nextElement() { try copyFromItem(&from) }
        }
        var names: [String?] = []
        var sizes: [ValueSize] = []
        var certain: [Bool] = []
        var passesBase = false
        var ordered = true
        if var values = field("valuesLists") {
            try values.expect(UInt8(ascii: "["))
            while try values.nextElement() {
                // {"List":{"items":[…]}}
                var index = 0
                try values.forEachKey { values, _ in
                    try values.forEachKey { values, key in
                        guard case "items" = key else { try values.skipValue(); return }
                        try values.expect(UInt8(ascii: "["))
                        while try values.nextElement() {
                            let start = values.offset
                            let size = try copyValue(&values)
                            try copyCheck(size, within: start..<values.offset)
                            if index < sizes.count { sizes[index].join(size) } else {
                                sizes.append(size)
                                names.append("column\(index + 1)")
                                certain.append(true)
                            }
                            index += 1
                        }
                    }
                }
            }
        }
        if var targets = field("targetList") {
            try targets.expect(UInt8(ascii: "["))
            while try targets.nextElement() {
                let start = targets.offset
                var name: String?
                var isCertain = false
                var star: [String?]?
                var size = ValueSize()
                try targets.forEachKey { targets, _ in
                    try targets.forEachKey { targets, key in
                        switch key {
                        case "name":
                            name = try targets.string()
                            isCertain = true
                        case "val":
                            if let fields = try Self.starFields(targets) {
                                star = fields
                                try targets.skipValue()
                                return
                            }
                            if name == nil { (name, isCertain) = try Self.derivedName(targets) }
                            size = try copyValue(&targets)
                        default: try targets.skipValue()
                        }
                    }
                }
                if let star {
                    let expanded = copyExpand(star)
                    // Each column a star stands for is read as a reference is (1,000 stars over one
                    // 1 MB subquery column took 2.9 GB, eighteenth red team, third pass).
                    for size in expanded.sizes + (expanded.unnamed.map { [$0] } ?? []) {
                        try copyCheck(size, within: start..<targets.offset)
                        try referenced(size)
                    }
                    names += expanded.names
                    sizes += expanded.sizes
                    certain += expanded.names.map { $0 != nil }
                    if expanded.passesBase { passesBase = true; ordered = false }
                    if let unnamed = expanded.unnamed {
                        names.append(nil)
                        sizes.append(unnamed)
                        certain.append(false)
                        ordered = false
                    }
                    continue
                }
                try copyCheck(size, within: start..<targets.offset)
                names.append(name)
                sizes.append(size)
                certain.append(isCertain)
            }
        }
        // A condition on rows made of set operations' arms is copied into each arm.
        let arms = copies.scopes.last?.map(\.relation.arms).max() ?? 1
        for name in ["whereClause", "havingClause"] {
            if var condition = field(name) { try copyQual(&condition, arms: arms) }
        }
        for name in ["groupClause", "sortClause", "distinctClause", "windowClause", "limitOffset", "limitCount"] {
            if var other = field(name) { _ = try copyChildren(&other) }
        }
        var relation = CopyRelation(names: names, sizes: sizes, certain: certain, passesBase: passesBase, ordered: ordered)
        relation.arms = arms
        return relation
    }

    /// The fields of a target `*` or `x.*` (nil for `*`), or nil where the target is not one.
    static func starFields(_ value: ParseTreeCursor) throws -> [String?]? {
        guard value.startsWith("{\"ColumnRef\":{\"fields\":[") else { return nil }
        var probe = value
        let fields = try columnFields(&probe)
        guard let last = fields.last, last == nil else { return nil }
        return fields
    }

    /// The fields of the ColumnRef at the cursor (nil for `*` or what is not a name).
    static func columnFields(_ cursor: inout ParseTreeCursor) throws -> [String?] {
        var fields: [String?] = []
        try cursor.forEachKey { cursor, _ in fields = try columnRefFields(&cursor) }
        return fields
    }

    /// The fields of a ColumnRef's body (`{"fields":[…],"location":N}`): each name, nil for `*`.
    static func columnRefFields(_ cursor: inout ParseTreeCursor) throws -> [String?] {
        var fields: [String?] = []
        try cursor.forEachKey { cursor, key in
            guard case "fields" = key else { try cursor.skipValue(); return }
            try cursor.expect(UInt8(ascii: "["))
            while try cursor.nextElement() {
                try cursor.expect(UInt8(ascii: "{"))
                switch try cursor.nextKey() {
                case "String"?: try cursor.forEachKey { cursor, _ in fields.append(try cursor.string()) }
                default:
                    try cursor.skipValue()
                    fields.append(nil)
                }
                guard try cursor.nextKey() == nil else { throw ParseTreeCursor.Malformed() }
            }
        }
        return fields
    }

    /// The name PostgreSQL gives an unaliased target, where Palisade is sure of it: a column's,
    /// or a function's. Otherwise nil, or a guess that is not certain.
    static func derivedName(_ value: ParseTreeCursor) throws -> (String?, Bool) {
        var probe = value
        if value.startsWith("{\"ColumnRef\":") {
            let fields = try columnFields(&probe)
            if let last = fields.last, let name = last { return (name, true) }
            return (nil, false)
        }
        if value.startsWith("{\"FuncCall\":{\"funcname\":") {
            var name: String?
            try probe.forEachKey { probe, _ in
                try probe.forEachKey { probe, key in
                    guard case "funcname" = key else { try probe.skipValue(); return }
                    try probe.expect(UInt8(ascii: "["))
                    while try probe.nextElement() {
                        try probe.forEachKey { probe, _ in try probe.forEachKey { probe, _ in name = try probe.string() } }
                    }
                }
            }
            return (name, name != nil)
        }
        return (nil, false)
    }

    /// The columns `*` or `x.*` stands for.
    mutating func copyExpand(_ fields: [String?]) -> CopyRelation {
        var result = CopyRelation(names: [], sizes: [], certain: [], passesBase: false, ordered: true)
        var items: [CopyItem] = []
        if fields.count >= 2, let qualifier = fields[fields.count - 2] {
            if let item = copies.item(aliased: qualifier) { items = [item] }
            if items.isEmpty { items = [CopyItem(alias: qualifier, relation: .base(qualifier))] }
        } else {
            items = copies.scopes.last ?? []
        }
        var names: [String?] = [], sizes: [ValueSize] = [], certain: [Bool] = []
        var unnamed: ValueSize?
        for item in items {
            let relation = item.relation
            if relation.isBase { result.passesBase = true; continue }
            for (index, size) in relation.sizes.enumerated() {
                names.append(relation.names[index])
                sizes.append(size)
                certain.append(relation.names[index].map { relation.byName[$0] != nil } ?? false)
            }
            if relation.passesBase { result.passesBase = true }
            if let other = relation.unnamed { unnamed = ValueSize.either([unnamed ?? other, other]) }
        }
        var expanded = CopyRelation(names: names, sizes: sizes, certain: certain, passesBase: result.passesBase, ordered: true)
        if let unnamed { expanded.unnamed = ValueSize.either([expanded.unnamed ?? unnamed, unnamed]) }
        return expanded
    }

    /// A WITH clause: each query's columns, visible to the ones after it and the query's body. In
    /// WITH RECURSIVE a query's own columns, as its recursive term reads them, are an input that
    /// grows by steps (like an aggregate's rows): doubling that input later counts.
    mutating func copyWith(_ cursor: inout ParseTreeCursor) throws {
        var recursive = false
        var probe = cursor
        try probe.forEachKey { probe, key in
            if case "recursive" = key { recursive = try probe.boolean() } else { try probe.skipValue() }
        }
        try cursor.forEachKey { cursor, key in
            guard case "ctes" = key else { try cursor.skipValue(); return }
            try cursor.expect(UInt8(ascii: "["))
            while try cursor.nextElement() {
                var name = ""
                var aliases: [String] = []
                var query: ParseTreeCursor?
                try cursor.forEachKey { cursor, _ in
                    try cursor.forEachKey { cursor, key in
                        switch key {
                        case "ctename": name = try cursor.string()
                        case "aliascolnames": aliases = try Self.stringList(&cursor)
                        case "ctequery": query = cursor; try cursor.skipValue()
                        default: try cursor.skipValue()
                        }
                    }
                }
                guard var query else { continue }
                let key = "#recursive:\(name)@\(query.offset)"
                if recursive {
                    var growing = CopyRelation(passesBase: false, ordered: false, whole: .input(key))
                    var stand = ValueSize.input(key)
                    stand.made = true
                    growing.unnamed = stand
                    copies.ctes[copies.ctes.count - 1][name] = growing
                }
                var relation = CopyRelation()
                try query.forEachKey { query, type in
                    guard case "SelectStmt" = type else { try query.skipValue(); return }
                    relation = try copySelect(&query)
                }
                relation = relation.renamed(aliases)
                if recursive {
                    var stand = ValueSize.input(key)
                    stand.made = true
                    relation.sizes = relation.sizes.map { var size = $0; size.add(stand); return size }
                    relation = CopyRelation(names: relation.names, sizes: relation.sizes,
                                            certain: relation.names.map { name in name.map { relation.byName[$0] != nil } ?? false },
                                            passesBase: relation.passesBase, ordered: relation.ordered)
                    if var other = relation.unnamed { other.add(stand); relation.unnamed = other }
                }
                relation = Self.markedMade(relation)
                copies.ctes[copies.ctes.count - 1][name] = relation
            }
        }
    }

    /// A relation's columns as seen from outside it: every value comes through rows the query makes.
    static func markedMade(_ relation: CopyRelation) -> CopyRelation {
        var marked = relation
        marked.sizes = relation.sizes.map { var size = $0; size.made = true; return size }
        marked.byName = relation.byName.mapValues { var size = $0; size.made = true; return size }
        if var unnamed = relation.unnamed { unnamed.made = true; marked.unnamed = unnamed }
        marked.whole.made = true
        return marked
    }

    // MARK: FROM

    mutating func copyFromItem(_ cursor: inout ParseTreeCursor) throws {
        try cursor.expect(UInt8(ascii: "{"))
        guard let type = try cursor.nextKey() else { return }
        switch type {
        case "RangeVar":
            var relname = "", alias: String?, aliases: [String] = [], qualified = false
            try cursor.forEachKey { cursor, key in
                switch key {
                case "relname": relname = try cursor.string()
                case "schemaname", "catalogname": qualified = true; try cursor.skipValue()
                case "alias": (alias, aliases) = try Self.aliasNames(&cursor)
                default: try cursor.skipValue()
                }
            }
            var relation = CopyRelation.base(alias ?? relname)
            if !qualified, let made = copies.ctes.reversed().lazy.compactMap({ $0[relname] }).first {
                relation = made.renamed(aliases)
            }
            copies.add(CopyItem(alias: alias ?? relname, relation: relation))
        case "RangeSubselect":
            var relation = CopyRelation()
            var alias = "", aliases: [String] = []
            try cursor.forEachKey { cursor, key in
                switch key {
                case "subquery":
                    try cursor.forEachKey { cursor, type in
                        guard case "SelectStmt" = type else { try cursor.skipValue(); return }
                        relation = try copySelect(&cursor)
                    }
                case "alias":
                    let (name, names) = try Self.aliasNames(&cursor)
                    alias = name ?? ""
                    aliases = names
                default: try cursor.skipValue()
                }
            }
            copies.add(CopyItem(alias: alias, relation: Self.markedMade(relation.renamed(aliases))))
        case "RangeFunction":
            var row: ValueSize?
            var alias = ""
            var columnNames: [String] = []
            try cursor.forEachKey { cursor, key in
                switch key {
                case "functions":
                    // [{"List":{"items":[call, column definitions]}}]
                    try cursor.expect(UInt8(ascii: "["))
                    while try cursor.nextElement() {
                        try cursor.forEachKey { cursor, _ in
                            try cursor.forEachKey { cursor, key in
                                guard case "items" = key else { try cursor.skipValue(); return }
                                try cursor.expect(UInt8(ascii: "["))
                                var first = true
                                while try cursor.nextElement() {
                                    if first {
                                        let start = cursor.offset
                                        let size = try copyValue(&cursor)
                                        try copyCheck(size, within: start..<cursor.offset)
                                        // One function's columns keep its form (`jsonb_each_text`'s are
                                        // a json's text); ROWS FROM's several are any of them.
                                        if var other = row { other.join(size); row = other } else { row = size }
                                        first = false
                                    } else {
                                        try cursor.skipValue()
                                    }
                                }
                            }
                        }
                    }
                case "alias":
                    let names = try Self.aliasNames(&cursor)
                    alias = names.0 ?? ""
                    columnNames = names.1
                default: try cursor.skipValue()
                }
            }
            var made = row ?? ValueSize()
            var relation = CopyRelation(passesBase: false, ordered: false, whole: made)
            made.made = true
            relation.unnamed = made
            // Columns named in the alias are this item's, not a table's of the same name.
            for name in columnNames { relation.byName[name] = made }
            relation.whole.made = true
            copies.add(CopyItem(alias: alias, relation: relation))
        case "JoinExpr":
            var alias: String?
            var quals: ParseTreeCursor?
            let before = copies.scopes[copies.scopes.count - 1].count
            var middle = before
            var isFull = false, isNatural = false
            var using: [String] = []
            try cursor.forEachKey { cursor, key in
                switch key {
                case "larg":
                    try copyFromItem(&cursor)
                    middle = copies.scopes[copies.scopes.count - 1].count
                case "rarg": try copyFromItem(&cursor)
                case "jointype": isFull = try cursor.string() == "JOIN_FULL"
                case "isNatural": isNatural = try cursor.boolean()
                case "usingClause": using = try Self.stringList(&cursor)
                case "quals": quals = cursor; try cursor.skipValue()
                case "alias", "join_using_alias": alias = try Self.aliasNames(&cursor).0
                default: try cursor.skipValue()
                }
            }
            if var quals {
                try copyQual(&quals, arms: copies.scopes[copies.scopes.count - 1][before...].map(\.relation.arms).max() ?? 1)
            }
            if isFull, isNatural || !using.isEmpty {
                let items = copies.scopes[copies.scopes.count - 1]
                copies.add(CopyItem(alias: "", relation: Self.mergedColumns(using, natural: isNatural, left: items[before..<middle], right: items[middle...])))
            }
            if let alias {
                let joined = copies.scopes[copies.scopes.count - 1][before...]
                var relation = CopyRelation(passesBase: joined.contains { $0.relation.passesBase }, ordered: false,
                                            whole: ValueSize.sum(joined.map(\.relation.whole)))
                relation.unnamed = ValueSize.either(joined.map(\.relation.anyColumn))
                copies.add(CopyItem(alias: alias, relation: relation))
            }
        case "RangeTableSample":
            try cursor.forEachKey { cursor, key in
                if case "relation" = key { try copyFromItem(&cursor) } else { _ = try copyChildren(&cursor) }
            }
        default:
            try cursor.skipValue()
            var relation = CopyRelation(passesBase: true, ordered: false, whole: .unbounded)
            relation.unnamed = .unbounded
            copies.add(CopyItem(alias: "", relation: relation))
        }
        guard try cursor.nextKey() == nil else { throw ParseTreeCursor.Malformed() }
    }

    /// The columns a FULL JOIN merges (USING, or NATURAL: the names both sides have), each
    /// `COALESCE(left.x, right.x)` over the sides' own merged columns. The planner puts that whole
    /// tree in place at every reference (flatten_join_alias_vars): 256 functions joined so in a
    /// balanced tree, their merged column read 5,000 times, 23 KB, took 1.42 GB (thirty-eighth red
    /// team, third pass). Where a NATURAL join's sides do not name all their columns, any other
    /// name may be a merged one.
    static func mergedColumns(_ using: [String], natural: Bool, left: ArraySlice<CopyItem>, right: ArraySlice<CopyItem>) -> CopyRelation {
        /// The innermost column of that name on a side: a join's merged one comes after its sides.
        func column(_ name: String, _ side: ArraySlice<CopyItem>) -> ValueSize {
            for item in side.reversed() { if let size = item.relation.column(name) { return size } }
            return .input(name)
        }
        func merged(_ left: ValueSize, _ right: ValueSize) -> ValueSize {
            var size = ValueSize.either([left, right])
            size.nodes = left.nodes + right.nodes + 3
            size.relations = left.relations + right.relations
            size.folds = left.folds + right.folds
            return size
        }
        var names = using
        if natural {
            let leftNames = Set(left.flatMap { $0.relation.byName.keys })
            names = Set(right.flatMap { $0.relation.byName.keys }).filter(leftNames.contains).sorted()
        }
        var relation = CopyRelation()
        for name in names {
            let size = merged(column(name, left), column(name, right))
            relation.byName[name] = size
            // Also among its columns, which a join alias (`AS j(y)`, `USING (x) AS u`) reads.
            relation.names.append(name)
            relation.sizes.append(size)
        }
        let unknown = { (side: ArraySlice<CopyItem>) in side.contains { $0.relation.unnamed != nil || $0.relation.passesBase } }
        if natural, unknown(left) || unknown(right) {
            relation.unnamed = merged(ValueSize.either(left.map(\.relation.anyColumn)), ValueSize.either(right.map(\.relation.anyColumn)))
        }
        return relation
    }

    /// An Alias node's name and column names.
    static func aliasNames(_ cursor: inout ParseTreeCursor) throws -> (String?, [String]) {
        var name: String?
        var names: [String] = []
        try cursor.forEachKey { cursor, key in
            switch key {
            case "aliasname": name = try cursor.string()
            case "colnames": names = try Self.stringList(&cursor)
            default: try cursor.skipValue()
            }
        }
        return (name, names)
    }

    /// What a column reference stands for, through the FROM items in scope, innermost first.
    mutating func copyResolve(_ fields: [String?]) -> ValueSize {
        if fields.count >= 2 {
            let name = fields[fields.count - 1]
            guard let qualifier = fields[fields.count - 2] else { return .unbounded }
            if let item = copies.item(aliased: qualifier) {
                guard let name else { return item.relation.whole }
                if let column = item.relation.column(name) { return column }
                // Not a column: attribute notation (`r.f` is `f(r)`) or an error.
                return item.relation.whole
            }
            return .input(name ?? qualifier)
        }
        guard let first = fields.first, let name = first else {
            return ValueSize.sum((copies.scopes.last ?? []).map(\.relation.whole))
        }
        // Candidates from inner scopes whose columns Palisade does not all know.
        var candidates: ValueSize?
        func consider(_ size: ValueSize) {
            if var known = candidates { known.join(size); candidates = known } else { candidates = size }
        }
        for level in copies.scopes.indices.reversed() {
            let index = copies.index(level)
            if let found = index.named[name] {
                consider(found)
                return candidates ?? found
            }
            // Every table in scope offers the same candidate, the column as an input of its own:
            // taken once, not joined once a table (six tables in TPC-H Q9's FROM, each a dictionary).
            if let unnamed = index.othersUnnamed { consider(unnamed) }
            if index.readsTable || index.othersPassBase { consider(.input(name)) }
            // A whole row by its relation's name (where no column has the name).
            if let offset = index.byAlias[name] { consider(copies.scopes[level][offset].relation.whole) }
        }
        return candidates ?? .input(name)
    }
}
