import CPalisadeSupport

/// What the analyzer found in an admitted statement.
struct Analysis {
    var rule: Rule
    var statementType: String
    var tables: [String] = []
    var functions: [String] = []
    /// Byte offsets of every constant outside type modifiers, for normalization.
    var constantOffsets: [Int] = []
    var highestParameter = 0
    /// Whether the statement is a query whose every constant was recorded.
    var isQuery = false
    /// Whether the query has a shape whose size only the planner can estimate: a join (also a
    /// subquery in an expression), a set-returning function, WITH RECURSIVE, or a function outside
    /// pg_catalog.
    var mayExplode = false
    /// Whether a rule read the value of a constant (see `Analyzer.constantValue`).
    var readsConstantValues = false
    /// Where the string constants start that are operands of a comparison (`=`, `<>`, `<`, `>`,
    /// `<=`, `>=`, IS [NOT] DISTINCT FROM, [NOT] IN (…) and BETWEEN): the server reads such a string
    /// with the other side's input function and compares it, and no rule reads it, so texts that
    /// differ only in them may share a decision (`LiteralBlindKey`).
    var comparedStringOffsets: Set<Int> = []
    /// The most bytes the query's allocating calls make together (`checkArgumentLimits`).
    var allocatedBytes = 0.0
    /// What the query's sized calls and padding casts make, all of it: `allocatedBytes`, with
    /// arrays of numbers and `char(n)` casts, which only their own limits bound (for sizing what an
    /// accumulating aggregate keeps a row, `Analyzer.checkAccumulations`).
    var madeBytes = 0.0
    /// The most bytes the text adds to each input row of one of its accumulating aggregates (0 if
    /// none adds any): bounded over the planner's rows (`CostBudget.accumulation`).
    var accumulatedBytesPerRow = 0.0
    /// Parameters whose values an accumulating aggregate keeps in every row: their Bind's values may
    /// take `Analyzer.boundParameterBytes` together (`Decision.boundParameters`).
    var boundParameters: Set<Int> = []
    /// Parameters the text refers to more than once, with how many times: the server copies a
    /// bound value into each place when it plans (`Decision.repeatedParameters`).
    var repeatedParameters: [Int: Int] = [:]
    /// The most rows the query's set-returning calls may make from its text, multiplied together
    /// (`Analyzer.rowsFromText`, and `generate_series`'s steps): what an accumulating aggregate's
    /// per-row bytes are multiplied by before the planner is asked.
    var textMadeRows = 1.0
    /// Whether an ARRAY(subquery) gathers rows (`CostBudget.Accumulation.gathersSubplans`).
    var gathersSubqueryRows = false
    /// What a row costs in a hash table of INTERSECT, EXCEPT or a hashed subplan where the text
    /// makes rows or values for it (`CostBudget.hashedRows`); 0 where it makes none.
    var hashedRowBytes = 0.0
}

/// Why a statement is refused; `offset` is a byte offset into the text.
struct Denial: Error {
    var rule: Rule
    var message: String
    var hint: String?
    var offset: Int?
    var statementType: String
}

/// Walks libpg_query's JSON tree of one piece of text and decides it under a policy.
///
/// Every node type and every field is on an allowlist: anything the walker does not know ends
/// the walk with a deny, so syntax added by a newer grammar fails closed. Depth is bounded by the
/// policy before each step down, so the walk's own recursion is bounded too.
struct Analyzer {
    typealias Bytes = ParseTreeCursor.Bytes
    var cursor: ParseTreeCursor
    let shared: SharedPolicy
    let mayHaveCTEs: Bool
    var depth = 0
    /// Above zero where libpg_query's normalization leaves constants alone (type modifiers, CYCLE marks).
    var unnormalizedDepth = 0
    /// Set for the one expression that is an ORDER BY or GROUP BY item, where an integer constant
    /// is a column position, which libpg_query's normalization leaves alone.
    var integerIsColumnPosition = false
    /// Set for a parenthesized row that is an item of a grouping set: its items are GROUP BY items.
    var rowItemsAreColumnPositions = false
    /// Whether the text builds an xml value (see `untypedMayBecomeXML`).
    let buildsXML: Bool
    /// Where in the tree the string constants start whose text offsets are
    /// `Analysis.comparedStringOffsets`: the readers of strings' values pass over them.
    var comparedStringNodes: Set<Int> = []
    /// Set for the one expression whose type PostgreSQL unifies with its neighbours' (COALESCE,
    /// CASE results, GREATEST/LEAST, ARRAY[], VALUES rows, SELECT targets of set operations,
    /// polymorphic functions). There an untyped literal or parameter takes the common type, so
    /// beside an xml value it is parsed as an XML document: `COALESCE('<r>…', xmlelement(name a))`.
    var untypedMayBecomeXML = false
    /// WITH queries in scope, innermost last, and how many of each name (a reference looks one
    /// up: scanning the list for each was quadratic, 0.43 s for a 45 KB text, eighteenth red team).
    private(set) var visibleCTEs: [String] = []
    private var visibleCTECounts: [ExactText: Int] = [:]
    /// The names already in `analysis.tables` and `analysis.functions` (a list's `contains` for
    /// each of 10,000 tables took 2.4 billion instructions).
    private var listedTables: Set<ExactText> = []
    private var listedFunctions: Set<ExactText> = []
    /// The rows each WITH query's text makes (`Analysis.textMadeRows` over its query): every
    /// reference to it multiplies them.
    var cteTextMadeRows: [String: Double] = [:]
    /// The relations the planner builds for the query (`checkPlanning`): one a FROM item or
    /// subquery, a view or catalog SQL function by its weight, and the WITH queries the planner
    /// puts in place, again at every reference.
    var planning = PlannedRelations()
    /// The copies of the expression being read that the parser makes: it copies the tested operand
    /// of BETWEEN (twice, four times SYMMETRIC) and of an IN list once per item that reads a column
    /// (`x = a OR x = b …`), so nested ones multiply (sixteenth red team, fourth pass: eight levels
    /// of BETWEEN SYMMETRIC, 301 bytes, took 275 MB; eight IN lists of four columns 95 MB).
    var expressionCopies = 1.0
    /// Numeric powers the text holds, each as many times as it is copied (`checkNumericFolds`).
    var numericFolds = 0.0
    /// Nodes read, each as many times as it is copied (`checkPlanning`).
    var copiedNodes = 0.0
    /// Whether the query has an INTERSECT or EXCEPT, or a subquery under IN, ANY or ALL, which the
    /// server may run as a hash table of every distinct row of its inputs (`checkHashedSetOperation`).
    var hashesSetOperationRows = false
    /// Whether such a hash table's input reads rows the text does not bound, and how many such
    /// sources were read so far: a WITH RECURSIVE query (each of a RECURSIVE clause, by name), and
    /// generate_series with bounds computed at run time (`(SELECT 25000)`: the planner guessed
    /// 1,000 rows, and 25,000 under NOT IN took 260 MB).
    var hashesUnboundedRows = false
    var recursiveQueries: Set<String> = []
    var unboundedRowSources = 0
    /// Where subqueries stand that PostgreSQL may join instead (`noteJoinableSublinks`).
    var joinableSublinks: Set<Int> = []
    /// Relations with columns the query may not read, the name the query refers to each by, and
    /// the rule that guards them.
    var guardedRelations: [GuardedRelation] = []
    /// Whole rows can reach a function through attribute notation (`r.f` is `f(r)` when the
    /// relation `r` has no column `f`): each such call on a qualified name, as (qualifier, function).
    var attributeCalls: [(qualifier: String, name: String)] = []
    /// Whole rows can reach a function through a join alias.
    var usesJoinAlias = false
    /// Names of row sources the query makes (subqueries, functions, joins and WITH queries by alias).
    var madeRowAliases: Set<String> = []
    /// The columns each of them is known to have: there `q.name` is the column, not a call.
    var madeRowColumns: [String: Set<String>] = [:]
    /// The columns of each WITH query, given to the names it is read under.
    var cteColumns: [String: Set<String>] = [:]
    /// Names and aliases of tables read (whose rows are the data, not the query's making).
    var tableAliases: Set<String> = []
    /// Whether the query makes rows itself, and whether those rows call an allocating function
    /// (`Analyzer.queryMakesRows`, `allocatingMadeRows`): read once, on first need, since every
    /// allocating call asks and each answer scans the whole tree.
    var makesRowsCache: Bool?
    /// The row sources the query makes (`madeRowSources`), and whether they may carry a value of
    /// its text (`madeRowsCarryTheTextsValues`): asked for each pattern and aggregate, each a scan
    /// of the whole tree (8,000 patterns over one subquery took 27 s to decide, eighteenth red team).
    var madeRowSourcesCache: [Range<Int>?]?
    var madeRowsCarryCache: Bool?
    var joinsMadeRowsCache: Bool?
    var treeNamesTypeCache: [String: Bool] = [:]
    var madeRowsAllocateCache: [Range<Int>]?
    var madeRowsLiteralCache: Double?
    /// Function calls in the whole query (`jsonDepthBound`), counted once per query.
    var functionCallCountCache: Double?
    /// Accumulating aggregate calls, checked once the whole query is read.
    var accumulations: [Accumulation] = []
    /// The copy reader's scopes (`Analyzer.checkCopies`).
    var copies = CopyState()
    let tree: UnsafeBufferPointer<UInt8>
    /// The statement's text, for constants the tree does not spell out (see `ConstantExpression`).
    let text: UnsafeBufferPointer<UInt8>
    var analysis = Analysis(rule: .query, statementType: "SELECT")

    init(tree: UnsafeBufferPointer<UInt8>, text: UnsafeBufferPointer<UInt8>, policy: SharedPolicy) {
        cursor = ParseTreeCursor(tree)
        self.tree = tree
        self.text = text
        shared = policy
        mayHaveCTEs = tree.contains("\"withClause\":")
        // XML expressions, and names that may be xmlagg, xmlcomment, xpath and the like. Over-broad
        // on purpose: a false match only asks for typed literals. Names only: a string constant's
        // bytes (`format = 'xml'`) make nothing XML, and compared strings share a decision.
        buildsXML = tree.contains("{\"XmlExpr\":") || tree.contains("{\"String\":{\"sval\":\"xml") || tree.contains("{\"String\":{\"sval\":\"xpath")
            || policy.xmlColumnPatterns.contains(where: tree.contains)
    }

    static func analyze(tree: UnsafeBufferPointer<UInt8>, text: UnsafeBufferPointer<UInt8>, policy: SharedPolicy) -> Result<Analysis, Denial> {
        var analyzer = Analyzer(tree: tree, text: text, policy: policy)
        do {
            try analyzer.document()
            try analyzer.checkAccumulations()
            analyzer.holdParametersOfKeptRows()
            try analyzer.checkCopies()
            // After the copy reader: the copies of parameters column references stand for count too.
            analyzer.countParameterReferences()
            try analyzer.checkAccumulatedRows()
            try analyzer.checkGuardedColumns()
            try analyzer.checkAttributeCallsOnMadeRows()
            try analyzer.checkNumericFolds()
            try analyzer.checkNumberSizes()
            try analyzer.checkWindowDefinitions()
            try analyzer.checkPlanning()
            return .success(analyzer.analysis)
        } catch let denial as Denial {
            return .failure(denial)
        } catch {
            return .failure(Denial(
                rule: .unsupportedSyntax,
                message: "Palisade could not read the parse tree of this statement, so it cannot show that it is read-only",
                hint: "Send one plain SELECT statement.", offset: nil, statementType: analyzer.analysis.statementType))
        }
    }
}

/// The type rules, apart from any parse tree: for casts and field notation in a query, and for
/// types resolved otherwise (a parameter type the client declares, looked up in the server's pg_type).
public enum TypeRules {
    public struct Violation: Sendable, Equatable {
        public var rule: Rule
        public var message: String
        public var hint: String
    }

    /// The reg* types look names up in the system catalogs. Most reveal nothing a profile without
    /// catalog access cannot already read: pg_type and pg_namespace (readable for drivers) name
    /// every relation, type and schema, full-text configurations are public, and drivers rely on
    /// them (`'english'::regconfig`, `tableoid::regclass`, pgjdbc's `'pg_catalog.array_in'::regproc`).
    /// Role names are another matter: `oid::regrole` lists every role of the server.
    private static let catalogLookupTypes: Set<String> = ["regrole"]

    /// Transaction ids and snapshots: with them `age(xid)` and the snapshot functions read the
    /// server's transaction counter, which every tenant's writes advance.
    private static let transactionIDTypes: Set<String> = ["xid", "xid8", "cid", "txid_snapshot", "pg_snapshot"]

    /// Resolves a type name (`[name]` or `[schema, name]`) as PostgreSQL does (unqualified names find
    /// pg_catalog first) and checks it like a relation: a type in another schema is as often a
    /// table's row type, whose columns come with it (`NULL::secret.payroll`); the xml type parses
    /// text; and the reg* types read the catalogs. Nil if the policy admits the type.
    public static func violation(forTypeNamed names: [String], policy: Policy) -> Violation? {
        // Spelled out only for a denial: every cast passes here.
        var written: String { names.joined(separator: ".") }
        var readable: String { policy.readableSchemas.sorted().joined(separator: ", ") }
        guard names.count <= 2 else {
            return Violation(rule: .relationSchema, message: "type \(written) names another database", hint: "Leave out the database name of the type.")
        }
        let schema = names.count == 2 ? names[0] : "pg_catalog"
        let base = names.last ?? ""
        switch schema {
        case "pg_catalog":
            if base == "xml" || base == "_xml" {
                return Violation(rule: .xmlParse, message: "the xml type is not allowed: converting text to xml parses an XML document",
                                 hint: "Leave out casts to xml; build XML with xmlelement/xmlforest instead.")
            }
            let element = base.hasPrefix("_") ? String(base.dropFirst()) : base
            if transactionIDTypes.contains(element), policy.hidesStatistics {
                return Violation(rule: .statistics,
                                 message: "the type \(written) is not allowed with this profile: transaction ids count every tenant's writes (age('3'::xid) reads the server's transaction counter)",
                                 hint: "Leave out transaction ids; use the table's own columns, such as timestamps.")
            }
            // A catalog's row type has its columns' types: `(jsonb_populate_record(NULL::pg_class,
            // '{"relfrozenxid":"3"}')).relfrozenxid` makes the xid that '3'::xid would (ninth red team).
            if PG15Catalog.transactionIDRowTypes.contains(element), policy.hidesStatistics {
                return Violation(rule: .statistics,
                                 message: "the type \(written) is not allowed with this profile: it is a catalog's row type with transaction-id columns, which count every tenant's writes",
                                 hint: "Leave out the catalog's row type; read the columns you need from the catalog itself, where this profile may.")
            }
            if catalogLookupTypes.contains(element), !policy.allowsCatalog {
                return Violation(rule: .catalogRelation, message: "the type \(written) is not allowed with this profile: it reads the server's role names",
                                 hint: "Leave out regrole; roles and the system catalogs are not available to this profile.")
            }
        case "information_schema" where policy.allowsCatalog:
            break
        default:
            guard policy.readableSchemas.contains(schema) else {
                return Violation(rule: .relationSchema, message: "type \(written) is outside the readable schemas (\(readable))",
                                 hint: "Use built-in types or types of \(readable).")
            }
        }
        return nil
    }
}

/// A relation whose columns `columns` the query may not read, under the name `reference`.
struct GuardedRelation {
    var relation: String
    var reference: String
    var columns: [String]
    var rule: Rule
    /// Read on a side of a NATURAL JOIN, which compares its columns without naming them.
    var joinedNaturally = false

    var columnList: String { columns.joined(separator: ", ") }

    var why: String {
        let subject = columns.count == 1 ? "its \(columns[0]) column" : "its columns \(columnList)"
        return rule == .statistics
            ? "\(subject) count every tenant's rows or writes, which row-level security does not filter"
            : "\(subject) can hold credentials or secret settings"
    }
}

/// What the query names, decoded, for the guarded-column check: read from the tree only when a
/// guarded relation occurs, so ordinary queries never pay for it.
struct TreeNames {
    /// Every string of the tree (column names, alias lists, USING lists, string constants).
    var names: Set<String> = []
    /// ColumnRefs of one name: a column, or a relation's whole row.
    var wholeRows: Set<String> = []
    /// The qualifiers of `x.*`.
    var starQualifiers: Set<String> = []
    var hasUnqualifiedStar = false
    /// A `*` outside a ColumnRef, such as `(x).*`.
    var hasOtherStar = false

    init(_ tree: UnsafeBufferPointer<UInt8>) throws {
        var starsInColumnRefs = 0
        var names: Set<String> = []
        var wholeRows: Set<String> = []
        var starQualifiers: Set<String> = []
        var hasUnqualifiedStar = false
        // Keys and structure are never escaped, and a quote inside a string always is: these
        // patterns occur only where libpg_query writes them.
        try tree.forEachOccurrence(of: "\"sval\":\"") { offset in
            var cursor = ParseTreeCursor(tree)
            cursor.offset = offset + 7
            names.insert(try cursor.string())
        }
        try tree.forEachOccurrence(of: "{\"ColumnRef\":{\"fields\":") { offset in
            var cursor = ParseTreeCursor(tree)
            cursor.offset = offset + 23
            var fields: [String?] = []
            try cursor.expect(UInt8(ascii: "["))
            while try cursor.nextElement() {
                try cursor.expect(UInt8(ascii: "{"))
                switch try cursor.nextKey() {
                case "String"?: try cursor.forEachKey { cursor, _ in fields.append(try cursor.string()) }
                case "A_Star"?:
                    try cursor.skipValue()
                    fields.append(nil)
                default: throw ParseTreeCursor.Malformed()
                }
                guard try cursor.nextKey() == nil else { throw ParseTreeCursor.Malformed() }
            }
            if fields.count == 1, let name = fields[0] { wholeRows.insert(name) }
            if let last = fields.last, last == nil {
                starsInColumnRefs += 1
                if fields.count == 1 {
                    hasUnqualifiedStar = true
                } else if let qualifier = fields[fields.count - 2] {
                    starQualifiers.insert(qualifier)
                }
            }
        }
        var stars = 0
        tree.forEachOccurrence(of: "{\"A_Star\":{}}") { _ in stars += 1 }
        self.names = names
        self.wholeRows = wholeRows
        self.starQualifiers = starQualifiers
        self.hasUnqualifiedStar = hasUnqualifiedStar
        hasOtherStar = stars > starsInColumnRefs
    }
}

/// What a field name `x.name` can be besides a column, by name.
struct FieldNameKind: Sendable {
    var isOneArgumentFunction = false
    var isType = false

    static let byName: NameTable<FieldNameKind> = {
        var table: [String: FieldNameKind] = [:]
        for name in PG15Catalog.oneArgumentFunctions { table[name, default: FieldNameKind()].isOneArgumentFunction = true }
        for name in PG15Catalog.pgCatalogTypes { table[name, default: FieldNameKind()].isType = true }
        return NameTable(table.lazy.map { ($0.key, $0.value) })
    }()
}

extension Analyzer {
    mutating func showCTE(_ name: String) {
        visibleCTEs.append(name)
        visibleCTECounts[ExactText(name), default: 0] += 1
    }

    /// Ends the scope of the WITH queries shown since `mark` (`visibleCTEs.count` then).
    mutating func hideCTEs(from mark: Int) {
        for name in visibleCTEs[mark...] {
            let key = ExactText(name)
            if visibleCTECounts[key] == 1 { visibleCTECounts[key] = nil } else { visibleCTECounts[key]! -= 1 }
        }
        visibleCTEs.removeSubrange(mark...)
    }

    func isVisibleCTE(_ name: String) -> Bool {
        visibleCTECounts[ExactText(name)] != nil
    }

    mutating func listTable(_ name: String) {
        if listedTables.insert(ExactText(name)).inserted { analysis.tables.append(name) }
    }

    mutating func listFunction(_ name: String) {
        if listedFunctions.insert(ExactText(name)).inserted { analysis.functions.append(name) }
    }
}

extension UnsafeBufferPointer where Element == UInt8 {
    /// Hands the offset of every occurrence of `needle` in the tree's text to `body`. A needle of
    /// a field (`"fval":"`) is found with memmem: a memchr for its first byte, `"`, stopped at nearly
    /// every token (two such scans took 72k instructions of a fresh decision's 1.64M in a debug
    /// build, callgrind, 2026-12-07). A needle of two bytes (`{"`, every node) occurs so often that
    /// memchr and a compare cost less than a memmem call each time (119k against 52k instructions a
    /// decision for `containsNode`).
    func forEachOccurrence(of needle: StaticString, _ body: (Int) throws -> Void) rethrows {
        let length = needle.utf8CodeUnitCount
        guard let base = baseAddress, length > 0, count >= length else { return }
        let pattern = needle.utf8Start
        var index = 0
        while index <= count - length {
            let found = length <= 2
                ? UnsafeRawPointer(memchr(base + index, Int32(pattern.pointee), count - length + 1 - index))
                : palisade_memmem(base + index, count - index, pattern, length)
            guard let found else { return }
            index = found.assumingMemoryBound(to: UInt8.self) - base
            if length <= 2, memcmp(base + index, pattern, length) != 0 { index += 1; continue }
            try body(index)
            index += 1
        }
    }

    /// Whether the tree has a node of one of `types` (`{"FuncCall":`): one pass over its text, where
    /// a `contains` for each read it once per type (memmem was 7k of a pgbench decision's 67k
    /// instructions for the 9 types `checkCopies` asks about, callgrind, 2026-12-06). Each node's
    /// name is compared only with the types of its length: all 9 for each node was 14k of a fresh
    /// decision's 306k (2026-12-07).
    func containsNode(ofAnyType types: [StaticString]) -> Bool {
        guard let base = baseAddress else { return false }
        var found = false
        forEachOccurrence(of: "{\"") { offset in
            let name = offset + 2
            // Node types are capitalized (`{"FuncCall":`); field names are not.
            guard !found, name < count, base[name] >= UInt8(ascii: "A"), base[name] <= UInt8(ascii: "Z"),
                  let quote = memchr(base + name, Int32(UInt8(ascii: "\"")), count - name) else { return }
            let length = UnsafePointer<UInt8>(quote.assumingMemoryBound(to: UInt8.self)) - (base + name)
            guard name + length + 1 < count, base[name + length + 1] == UInt8(ascii: ":") else { return }
            found = types.contains { $0.utf8CodeUnitCount == length && memcmp(base + name, $0.utf8Start, length) == 0 }
        }
        return found
    }

    /// Whether the bytes of `needle` occur anywhere in the tree's text. glibc's memmem is linear;
    /// a memchr for the needle's first byte stopped at every `{` and `"` of the tree, 14k of the
    /// 74k instructions of a pgbench decision (callgrind, 2026-12-05).
    func contains(_ needle: String) -> Bool {
        var needle = needle
        return needle.withUTF8 { needle in
            guard let pattern = needle.baseAddress, !needle.isEmpty else { return true }
            guard let base = baseAddress else { return false }
            return palisade_memmem(base, count, pattern, needle.count) != nil
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif
