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
    private typealias Bytes = ParseTreeCursor.Bytes
    private var cursor: ParseTreeCursor
    private let shared: SharedPolicy
    private let mayHaveCTEs: Bool
    private var depth = 0
    /// Above zero where libpg_query's normalization leaves constants alone (type modifiers, CYCLE marks).
    private var unnormalizedDepth = 0
    /// Set for the one expression that is an ORDER BY or GROUP BY item, where an integer constant
    /// is a column position, which libpg_query's normalization leaves alone.
    private var integerIsColumnPosition = false
    private var visibleCTEs: [String] = []
    /// Relations with columns the query may not read, the name the query refers to each by, and
    /// the rule that guards them.
    private var guardedRelations: [GuardedRelation] = []
    /// Whole rows can reach a function through attribute notation (`r.f` is `f(r)` when the
    /// relation `r` has no column `f`): each such call on a qualified name, as (qualifier, function).
    private var attributeCalls: [(qualifier: String, name: String)] = []
    /// Whole rows can reach a function through a join alias.
    private var usesJoinAlias = false
    private let tree: UnsafeBufferPointer<UInt8>
    /// The statement's text, for constants the tree does not spell out (see `ConstantExpression`).
    private let text: UnsafeBufferPointer<UInt8>
    private var analysis = Analysis(rule: .query, statementType: "SELECT")

    init(tree: UnsafeBufferPointer<UInt8>, text: UnsafeBufferPointer<UInt8>, policy: SharedPolicy) {
        cursor = ParseTreeCursor(tree)
        self.tree = tree
        self.text = text
        shared = policy
        mayHaveCTEs = tree.contains("withClause\"")
    }

    static func analyze(tree: UnsafeBufferPointer<UInt8>, text: UnsafeBufferPointer<UInt8>, policy: SharedPolicy) -> Result<Analysis, Denial> {
        var analyzer = Analyzer(tree: tree, text: text, policy: policy)
        do {
            try analyzer.document()
            try analyzer.checkGuardedColumns()
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

    // MARK: - Document and statements

    private mutating func document() throws {
        try cursor.expect(UInt8(ascii: "{"))
        while let key = try cursor.nextKey() {
            switch key {
            case "version": _ = try cursor.integer()
            case "stmts": try statements()
            default: throw ParseTreeCursor.Malformed()
            }
        }
    }

    /// The `stmts` array. The first statement is walked directly; only if it is denied or followed
    /// by another are the statements counted, so admitted queries are read once.
    private mutating func statements() throws {
        let start = cursor.offset
        try cursor.expect(UInt8(ascii: "["))
        guard try cursor.nextElement() else {
            throw Denial(rule: .empty, message: "the query is empty (it holds no statement, only white space or comments)",
                         hint: "Send one SELECT statement.", offset: nil, statementType: "")
        }
        do {
            try firstStatement()
        } catch let denial as Denial {
            cursor.offset = start
            try rejectMultipleStatements()
            throw denial
        }
        if try cursor.nextElement() {
            cursor.offset = start
            try rejectMultipleStatements()
        }
    }

    private mutating func firstStatement() throws {
        try object { analyzer, key in
            switch key {
            case "stmt": try analyzer.topLevelStatement()
            case "stmt_location", "stmt_len": _ = try analyzer.cursor.integer()
            default: throw ParseTreeCursor.Malformed()
            }
        }
    }

    private mutating func rejectMultipleStatements() throws {
        var types: [String] = []
        try cursor.expect(UInt8(ascii: "["))
        while try cursor.nextElement() {
            types.append(try peekStatementType())
            try cursor.skipValue()
        }
        guard types.count > 1 else { return }
        throw Denial(
            rule: .multipleStatements,
            message: "found \(types.count) statements (\(types.joined(separator: "; "))); Palisade admits exactly one statement per query",
            hint: "Send a single SELECT; split the work into separate queries, and leave out anything that is not a SELECT.",
            offset: nil, statementType: types.joined(separator: "; "))
    }

    /// The command tag of the statement at the cursor (`{"stmt":{"SelectStmt":…`), without moving.
    private mutating func peekStatementType() throws -> String {
        var probe = cursor
        try probe.expect(UInt8(ascii: "{"))
        while let key = try probe.nextKey() {
            if case "stmt" = key {
                try probe.expect(UInt8(ascii: "{"))
                guard let type = try probe.nextKey() else { return "?" }
                return StatementTags.tag(forNodeType: type, cursor: probe)
            }
            try probe.skipValue()
        }
        return "?"
    }

    private mutating func topLevelStatement() throws {
        try cursor.expect(UInt8(ascii: "{"))
        guard let type = try cursor.nextKey() else { throw ParseTreeCursor.Malformed() }
        analysis.statementType = StatementTags.tag(forNodeType: type, cursor: cursor)
        switch type {
        case "SelectStmt":
            try enter()
            try selectStatement(topLevel: true)
            leave()
            analysis.isQuery = true
        case "TransactionStmt": try transactionStatement()
        case "VariableSetStmt": try setStatement()
        case "VariableShowStmt": try showStatement()
        case "ExplainStmt": try explainStatement()
        default: throw StatementTags.denial(forNodeType: type.string, tag: analysis.statementType)
        }
        guard try cursor.nextKey() == nil else { throw ParseTreeCursor.Malformed() }
    }

    private mutating func transactionStatement() throws {
        var kind = ""
        try cursor.expect(UInt8(ascii: "{"))
        while let key = try cursor.nextKey() {
            switch key {
            case "kind": kind = try cursor.string()
            case "options": try transactionModes()
            case "chain": _ = try cursor.boolean()
            case "location": _ = try cursor.integer()
            case "savepoint_name", "gid":
                throw Denial(rule: kind.contains("PREPARED") || kind == "TRANS_STMT_PREPARE" ? .twoPhaseCommit : .savepoint,
                             message: "\(analysis.statementType) is not allowed: savepoints and two-phase commit are not available through Palisade",
                             hint: "Use plain BEGIN, COMMIT and ROLLBACK, or send the SELECT on its own.",
                             offset: nil, statementType: analysis.statementType)
            default: throw unsupportedField(key)
            }
        }
        switch kind {
        case "TRANS_STMT_BEGIN", "TRANS_STMT_START", "TRANS_STMT_COMMIT", "TRANS_STMT_ROLLBACK":
            guard shared.policy.allowsTransactionControl else {
                throw Denial(rule: .transactionDenied, message: "\(analysis.statementType) is not allowed by this policy",
                             hint: "Send the SELECT on its own; each query runs in its own read-only transaction.",
                             offset: nil, statementType: analysis.statementType)
            }
            analysis.rule = .transactionControl
        case "TRANS_STMT_SAVEPOINT", "TRANS_STMT_RELEASE", "TRANS_STMT_ROLLBACK_TO":
            throw Denial(rule: .savepoint, message: "\(analysis.statementType) is not allowed: savepoints are not available through Palisade",
                         hint: "Use plain BEGIN, COMMIT and ROLLBACK.", offset: nil, statementType: analysis.statementType)
        default:
            throw Denial(rule: .twoPhaseCommit, message: "\(analysis.statementType) is not allowed: two-phase commit is not available through Palisade",
                         hint: "Use plain BEGIN, COMMIT and ROLLBACK.", offset: nil, statementType: analysis.statementType)
        }
    }

    /// `BEGIN`/`SET TRANSACTION` modes: isolation levels and READ ONLY pass; READ WRITE never does.
    private mutating func transactionModes() throws {
        try list { analyzer in
            try analyzer.wrapped { analyzer, type in
                guard case "DefElem" = type else { throw analyzer.unsupportedNode(type) }
                var name = ""
                var offset: Int?
                try analyzer.object { analyzer, key in
                    switch key {
                    case "defname": name = try analyzer.cursor.string()
                    case "arg" where name != "transaction_read_only":
                        try analyzer.cursor.skipValue()
                    case "arg":
                        if try analyzer.integerConstant() == 0 {
                            throw Denial(rule: .readWriteTransaction,
                                         message: "READ WRITE transactions are not allowed: every transaction through Palisade is read-only",
                                         hint: "Leave out READ WRITE; BEGIN on its own starts a read-only transaction.",
                                         offset: offset, statementType: analyzer.analysis.statementType)
                        }
                    case "defaction": try analyzer.cursor.skipString()
                    case "location": offset = try analyzer.cursor.integer()
                    default: throw analyzer.unsupportedField(key)
                    }
                }
                guard ["transaction_isolation", "transaction_read_only", "transaction_deferrable"].contains(name) else {
                    throw analyzer.unsupportedNode(type)
                }
            }
        }
    }

    /// The integer value of an `A_Const` at the cursor (`{"ival":{}}` is 0), or nil if it is none.
    private mutating func integerConstant() throws -> Int? {
        var value: Int?
        try wrapped { analyzer, type in
            guard case "A_Const" = type else { try analyzer.cursor.skipValue(); return }
            try analyzer.object { analyzer, key in
                switch key {
                case "ival":
                    value = 0
                    try analyzer.object { analyzer, _ in value = try analyzer.cursor.integer() }
                default: try analyzer.cursor.skipValue()
                }
            }
        }
        return value
    }

    /// The string value of an `A_Const` at the cursor, or nil if it is not a string constant.
    private mutating func stringConstant() throws -> String? {
        var value: String?
        try wrapped { analyzer, type in
            guard case "A_Const" = type else { try analyzer.cursor.skipValue(); return }
            try analyzer.object { analyzer, key in
                switch key {
                case "sval": try analyzer.object { analyzer, _ in value = try analyzer.cursor.string() }
                case "location": analyzer.analysis.constantOffsets.append(try analyzer.cursor.integer())
                default: try analyzer.cursor.skipValue()
                }
            }
        }
        return value
    }

    private mutating func setStatement() throws {
        var kind = ""
        var name = ""
        try cursor.expect(UInt8(ascii: "{"))
        while let key = try cursor.nextKey() {
            switch key {
            case "kind":
                kind = try cursor.string()
                if kind == "VAR_RESET" || kind == "VAR_RESET_ALL" {
                    throw Denial(rule: .reset, message: "RESET is not allowed: session settings are fixed by Palisade",
                                 hint: "Leave the setting as it is; only \(settableList) may be SET.",
                                 offset: nil, statementType: "RESET")
                }
            case "name": name = try cursor.string().asciiLowercased
            case "args":
                if kind == "VAR_SET_MULTI" {
                    try transactionModes()
                } else if let required = Policy.requiredSettingValues[name] {
                    try list { analyzer in
                        let value = try analyzer.stringConstant()?.asciiLowercased
                        guard let value, required.contains(value) else {
                            throw Denial(rule: .setDenied, message: "SET \(name) may only be set to \(required.sorted().first!.uppercased())",
                                         hint: "Keep \(name) at its default; Palisade and the server must read query text the same way.",
                                         offset: nil, statementType: "SET")
                        }
                    }
                } else {
                    try expressionList()
                }
            case "is_local": _ = try cursor.boolean()
            default: throw unsupportedField(key)
            }
        }
        switch kind {
        case "VAR_SET_MULTI" where name == "transaction" || name == "session characteristics":
            guard shared.policy.allowsTransactionControl else {
                throw Denial(rule: .setDenied, message: "SET \(name.uppercased()) is not allowed by this policy",
                             hint: "Send the SELECT on its own.", offset: nil, statementType: "SET")
            }
        case "VAR_SET_VALUE" where shared.policy.settableSettings.contains(name),
             "VAR_SET_DEFAULT" where shared.policy.settableSettings.contains(name):
            break
        default:
            throw Denial(rule: .setDenied, message: "SET \(name) is not allowed: it could change how queries are checked or what they see",
                         hint: "Only \(settableList) may be SET; leave other settings as they are.",
                         offset: nil, statementType: "SET")
        }
        analysis.rule = .setSetting
    }

    private var settableList: String {
        shared.policy.settableSettings.isEmpty ? "no settings" : shared.policy.settableSettings.sorted().joined(separator: ", ")
    }

    private mutating func showStatement() throws {
        var name = ""
        try object { analyzer, key in
            guard case "name" = key else { throw analyzer.unsupportedField(key) }
            name = try analyzer.cursor.string().asciiLowercased
        }
        guard name != "all", shared.policy.showableSettings.contains(name) else {
            let shown = shared.policy.showableSettings.sorted().joined(separator: ", ")
            throw Denial(rule: .showDenied,
                         message: name == "all" ? "SHOW ALL is not allowed: it reveals the server's whole configuration" : "SHOW \(name) is not allowed by this policy",
                         hint: shown.isEmpty ? "No settings may be shown." : "These settings may be shown: \(shown).",
                         offset: nil, statementType: "SHOW")
        }
        analysis.rule = .showSetting
    }

    private mutating func explainStatement() throws {
        var sawQuery = false
        // EXPLAIN shows costs unless told not to; the last COSTS option wins, as in the server.
        var showsCosts = true
        try object { analyzer, key in
            switch key {
            case "query":
                try analyzer.wrapped { analyzer, type in
                    guard case "SelectStmt" = type else {
                        let tag = StatementTags.tag(forNodeType: type, cursor: analyzer.cursor)
                        throw StatementTags.denial(forNodeType: type.string, tag: tag)
                    }
                    sawQuery = true
                    try analyzer.enter()
                    try analyzer.selectStatement(topLevel: true)
                    analyzer.leave()
                }
            case "options":
                try analyzer.list { analyzer in
                    try analyzer.wrapped { analyzer, type in
                        guard case "DefElem" = type else { throw analyzer.unsupportedNode(type) }
                        var option = ""
                        var argument: ConstantExpression?
                        var hasArgument = false
                        try analyzer.object { analyzer, key in
                            switch key {
                            case "defname":
                                option = try analyzer.cursor.string()
                                if option == "analyze" {
                                    throw Denial(rule: .explainAnalyze, message: "EXPLAIN ANALYZE is not allowed: it runs the statement",
                                                 hint: "Use EXPLAIN without ANALYZE to see the plan.", offset: nil, statementType: "EXPLAIN")
                                }
                                guard ["verbose", "costs", "settings", "buffers", "wal", "timing", "summary", "format"].contains(option) else {
                                    throw analyzer.unsupportedNode(type)
                                }
                            case "arg":
                                hasArgument = true
                                argument = ConstantExpression.at(analyzer.cursor, text: analyzer.text)
                                try analyzer.cursor.skipValue()
                            case "defaction", "location": try analyzer.cursor.skipValue()
                            default: throw analyzer.unsupportedField(key)
                            }
                        }
                        if option == "costs" {
                            // The server reads booleans as true/false/on/off/1/0 in any case; anything
                            // else it refuses, and only a clear "off" turns costs off here.
                            let off: Set<String> = ["false", "off", "0"]
                            let text = argument?.string?.asciiLowercased ?? argument?.number.map { $0 == 0 ? "0" : "1" }
                            showsCosts = !(hasArgument && text.map { off.contains($0) } == true)
                        }
                    }
                }
            default: throw analyzer.unsupportedField(key)
            }
        }
        guard shared.policy.allowsExplain else {
            throw Denial(rule: .explainDenied, message: "EXPLAIN is not allowed by this policy",
                         hint: "Send the SELECT itself.", offset: nil, statementType: "EXPLAIN")
        }
        guard sawQuery else { throw ParseTreeCursor.Malformed() }
        if showsCosts, shared.policy.hidesStatistics {
            throw Denial(rule: .explainCosts,
                         message: "EXPLAIN with costs is not allowed with this profile: its row estimates come from statistics over every tenant's rows, which row-level security does not filter",
                         hint: "Add COSTS OFF: EXPLAIN (COSTS OFF) SELECT …", offset: nil, statementType: "EXPLAIN")
        }
        analysis.rule = .explain
        analysis.isQuery = false
    }

    // MARK: - Queries

    /// A SelectStmt body. CTE names must be known before the FROM clause that may use them, and
    /// libpg_query writes `withClause` after it, so the WITH clause is read first.
    private mutating func selectStatement(topLevel: Bool) throws {
        let scopeMark = visibleCTEs.count
        defer { visibleCTEs.removeSubrange(scopeMark...) }
        let start = cursor.offset
        var hasWith = false
        // Constants inside the WITH clause, numbered where libpg_query's walk meets the clause.
        var withConstants: [Int] = []
        if mayHaveCTEs {
            try cursor.expect(UInt8(ascii: "{"))
            while let key = try cursor.nextKey() {
                if case "withClause" = key {
                    let mark = analysis.constantOffsets.count
                    try withClause()
                    withConstants = Array(analysis.constantOffsets[mark...])
                    analysis.constantOffsets.removeSubrange(mark...)
                    hasWith = true
                } else {
                    try cursor.skipValue()
                }
            }
            cursor.offset = start
        }
        try object { analyzer, key in
            switch key {
            case "withClause":
                guard hasWith else { throw ParseTreeCursor.Malformed() }
                try analyzer.cursor.skipValue()
                analyzer.analysis.constantOffsets += withConstants
            case "intoClause":
                throw Denial(rule: .selectInto, message: "SELECT … INTO is not allowed: it creates a table",
                             hint: "Leave out INTO; the rows are returned to you.", offset: nil, statementType: "SELECT INTO")
            case "lockingClause":
                throw Denial(rule: .lockingClause,
                             message: "locking clauses (FOR UPDATE, FOR NO KEY UPDATE, FOR SHARE, FOR KEY SHARE) are not allowed: they lock rows",
                             hint: "Leave out the FOR UPDATE/SHARE clause; reads need no row locks.", offset: nil,
                             statementType: analyzer.analysis.statementType)
            case "fromClause":
                var items = 0
                try analyzer.list { analyzer in
                    items += 1
                    try analyzer.expression()
                }
                // FROM a, b is a join; its condition, if any, is somewhere in WHERE.
                if items > 1 { analyzer.analysis.mayExplode = true }
            case "targetList", "windowClause", "distinctClause", "valuesLists":
                try analyzer.expressionList()
            case "groupClause", "sortClause":
                // A SortBy's own node, or a GROUP BY item itself, may be a column position.
                try analyzer.list { analyzer in
                    analyzer.integerIsColumnPosition = true
                    try analyzer.expression()
                }
            case "whereClause", "havingClause", "limitOffset", "limitCount":
                try analyzer.expression()
            case "larg", "rarg":
                try analyzer.enter()
                try analyzer.selectStatement(topLevel: false)
                analyzer.leave()
            case "groupDistinct", "all": _ = try analyzer.cursor.boolean()
            case "limitOption", "op": try analyzer.cursor.skipString()
            default: throw analyzer.unsupportedField(key)
            }
        }
    }

    private mutating func withClause() throws {
        let start = cursor.offset
        var recursive = false
        try object { analyzer, key in
            if case "recursive" = key { recursive = try analyzer.cursor.boolean() } else { try analyzer.cursor.skipValue() }
        }
        cursor.offset = start
        if recursive {
            analysis.mayExplode = true
            // In WITH RECURSIVE every CTE of the clause is visible to every other.
            let afterNames = cursor.offset
            try object { analyzer, key in
                guard case "ctes" = key else { try analyzer.cursor.skipValue(); return }
                try analyzer.list { analyzer in
                    try analyzer.wrapped { analyzer, _ in
                        try analyzer.object { analyzer, key in
                            if case "ctename" = key { analyzer.visibleCTEs.append(try analyzer.cursor.string()) } else { try analyzer.cursor.skipValue() }
                        }
                    }
                }
            }
            cursor.offset = afterNames
        }
        try object { analyzer, key in
            switch key {
            case "ctes":
                try analyzer.list { analyzer in
                    try analyzer.enter()
                    try analyzer.wrapped { analyzer, type in
                        guard case "CommonTableExpr" = type else { throw analyzer.unsupportedNode(type) }
                        let name = try analyzer.commonTableExpression()
                        // A plain WITH makes each CTE visible to the ones after it and the main query.
                        if !recursive { analyzer.visibleCTEs.append(name) }
                    }
                    analyzer.leave()
                }
            case "recursive": _ = try analyzer.cursor.boolean()
            case "location": _ = try analyzer.cursor.integer()
            default: throw analyzer.unsupportedField(key)
            }
        }
    }

    private mutating func commonTableExpression() throws -> String {
        var name = ""
        try object { analyzer, key in
            switch key {
            case "ctename": name = try analyzer.cursor.string()
            case "aliascolnames": try analyzer.skipNameList()
            case "ctematerialized": try analyzer.cursor.skipString()
            case "ctequery":
                try analyzer.wrapped { analyzer, type in
                    guard case "SelectStmt" = type else {
                        let tag = StatementTags.tag(forNodeType: type, cursor: analyzer.cursor)
                        throw Denial(rule: .dmlInCTE,
                                     message: "WITH \(name) AS (\(tag) …) is not allowed: a data-modifying statement inside WITH runs even if the query never reads it",
                                     hint: "Every WITH query must be a SELECT; leave out INSERT, UPDATE, DELETE and MERGE.",
                                     offset: nil, statementType: analyzer.analysis.statementType)
                    }
                    try analyzer.selectStatement(topLevel: false)
                }
            case "search_clause":
                try analyzer.object { analyzer, key in
                    switch key {
                    case "search_col_list": try analyzer.skipNameList()
                    case "search_breadth_first": _ = try analyzer.cursor.boolean()
                    case "search_seq_column": try analyzer.cursor.skipString()
                    case "location": _ = try analyzer.cursor.integer()
                    default: throw analyzer.unsupportedField(key)
                    }
                }
            case "cycle_clause":
                try analyzer.object { analyzer, key in
                    switch key {
                    case "cycle_col_list": try analyzer.skipNameList()
                    case "cycle_mark_column", "cycle_path_column": try analyzer.cursor.skipString()
                    case "cycle_mark_value", "cycle_mark_default":
                        analyzer.unnormalizedDepth += 1
                        defer { analyzer.unnormalizedDepth -= 1 }
                        try analyzer.expression()
                    case "location": _ = try analyzer.cursor.integer()
                    default: throw analyzer.unsupportedField(key)
                    }
                }
            case "location": _ = try analyzer.cursor.integer()
            default: throw analyzer.unsupportedField(key)
            }
        }
        return name
    }

    // MARK: - Expressions and FROM items

    private mutating func expressionList() throws {
        try list { analyzer in try analyzer.expression() }
    }

    /// Any node that may stand in an expression, target list or FROM clause.
    private mutating func expression() throws {
        let isColumnPosition = integerIsColumnPosition
        integerIsColumnPosition = false
        try enter()
        defer { leave() }
        try cursor.expect(UInt8(ascii: "{"))
        guard let type = try cursor.nextKey() else { return }
        // Most frequent node types first: a switch over byte patterns tries the cases in order.
        switch type {
        case "String", "Integer", "Float", "Boolean", "BitString", "A_Star":
            try cursor.skipValue()
        case "ColumnRef":
            try object { analyzer, key in
                switch key {
                case "fields": try analyzer.columnNameFields()
                case "location": _ = try analyzer.cursor.integer()
                default: throw analyzer.unsupportedField(key)
                }
            }
        case "A_Const": try constant(isColumnPosition: isColumnPosition)
        case "ParamRef":
            try object { analyzer, key in
                switch key {
                case "number": analyzer.analysis.highestParameter = max(analyzer.analysis.highestParameter, try analyzer.cursor.integer())
                case "location": _ = try analyzer.cursor.integer()
                default: throw analyzer.unsupportedField(key)
                }
            }
        case "ResTarget":
            try object { analyzer, key in
                switch key {
                case "name": try analyzer.cursor.skipString()
                case "indirection": try analyzer.indirectionList(firstObject: .value)
                case "val": try analyzer.expression()
                case "location": _ = try analyzer.cursor.integer()
                default: throw analyzer.unsupportedField(key)
                }
            }
        case "A_Expr": try operatorExpression()
        case "BoolExpr", "CoalesceExpr", "MinMaxExpr", "GroupingFunc", "A_ArrayExpr", "RowExpr", "GroupingSet", "List",
             "CaseExpr", "CaseWhen", "NullTest", "BooleanTest", "A_Indices", "NamedArgExpr":
            try genericExpression(type)
        case "A_Indirection":
            var argument: ParseTreeCursor?
            try object { analyzer, key in
                switch key {
                case "arg":
                    argument = analyzer.cursor
                    try analyzer.expression()
                case "indirection": try analyzer.indirectionList(firstObject: argument.map(FieldObject.expression) ?? .value)
                default: throw analyzer.unsupportedField(key)
                }
            }
        case "SortBy":
            try genericExpression(type, isSortItem: isColumnPosition)
        case "FuncCall": try functionCall()
        case "TypeCast":
            try object { analyzer, key in
                switch key {
                case "arg": try analyzer.expression()
                case "typeName": try analyzer.typeName()
                case "location": _ = try analyzer.cursor.integer()
                default: throw analyzer.unsupportedField(key)
                }
            }
        case "CollateClause":
            try object { analyzer, key in
                switch key {
                case "arg": try analyzer.expression()
                case "collname": try analyzer.skipNameList()
                case "location": _ = try analyzer.cursor.integer()
                default: throw analyzer.unsupportedField(key)
                }
            }
        case "SubLink":
            // A subquery in an expression may run once per outer row: a join by another name.
            analysis.mayExplode = true
            try subLink()
        case "SQLValueFunction":
            try object { analyzer, key in
                switch key {
                case "op": try analyzer.cursor.skipString()
                case "typmod", "location", "type": _ = try analyzer.cursor.integer()
                default: throw analyzer.unsupportedField(key)
                }
            }
        case "WindowDef": try windowDefinition()
        case "XmlExpr": try xmlExpression()
        case "XmlSerialize":
            throw Denial(rule: .xmlParse, message: "XMLSERIALIZE is not allowed: its argument may be text parsed as an XML document",
                         hint: "Leave out XMLSERIALIZE; Palisade admits no XML parsing.",
                         offset: remainingLocation(), statementType: analysis.statementType)
        case "RangeVar": try rangeVariable()
        case "JoinExpr":
            analysis.mayExplode = true
            try object { analyzer, key in
                switch key {
                case "jointype": try analyzer.cursor.skipString()
                case "isNatural": _ = try analyzer.cursor.boolean()
                case "larg", "rarg", "quals": try analyzer.expression()
                case "usingClause": try analyzer.skipNameList()
                case "join_using_alias", "alias":
                    analyzer.usesJoinAlias = true
                    try analyzer.alias()
                case "rtindex": _ = try analyzer.cursor.integer()
                default: throw analyzer.unsupportedField(key)
                }
            }
        case "RangeSubselect":
            try object { analyzer, key in
                switch key {
                case "lateral": _ = try analyzer.cursor.boolean()
                case "subquery": try analyzer.subquery()
                case "alias": try analyzer.alias()
                default: throw analyzer.unsupportedField(key)
                }
            }
        case "RangeFunction":
            analysis.mayExplode = true
            try object { analyzer, key in
                switch key {
                case "lateral", "ordinality", "is_rowsfrom": _ = try analyzer.cursor.boolean()
                case "functions": try analyzer.expressionList()
                case "alias": try analyzer.alias()
                case "coldeflist": try analyzer.expressionList()
                default: throw analyzer.unsupportedField(key)
                }
            }
        case "ColumnDef":
            try object { analyzer, key in
                switch key {
                case "colname": try analyzer.cursor.skipString()
                case "typeName": try analyzer.typeName()
                case "is_local", "is_not_null", "is_from_type": _ = try analyzer.cursor.boolean()
                case "inhcount", "location": _ = try analyzer.cursor.integer()
                case "collClause":
                    try analyzer.object { analyzer, key in
                        switch key {
                        case "collname": try analyzer.skipNameList()
                        case "location": _ = try analyzer.cursor.integer()
                        default: throw analyzer.unsupportedField(key)
                        }
                    }
                default: throw analyzer.unsupportedField(key)
                }
            }
        case "RangeTableSample": try tableSample()
        case "RangeTableFunc":
            throw Denial(rule: .xmlParse, message: "XMLTABLE is not allowed: it parses an XML document",
                         hint: "Leave out XMLTABLE; build XML with xmlelement/xmlforest instead.",
                         offset: remainingLocation(), statementType: analysis.statementType)
        case "SelectStmt":
            // A bare SelectStmt only appears as a set-operation arm or sub-select in these positions.
            try selectStatement(topLevel: false)
        default:
            throw unsupportedNode(type)
        }
        guard try cursor.nextKey() == nil else { throw ParseTreeCursor.Malformed() }
    }

    /// Nodes whose fields are all expressions, lists of expressions, or plain scalars.
    private mutating func genericExpression(_ type: Bytes, isSortItem: Bool = false) throws {
        try object { analyzer, key in
            switch key {
            case "args", "elements", "content", "items", "partitionClause", "orderClause":
                try analyzer.expressionList()
            case "arg", "defresult", "expr", "result", "lidx", "uidx":
                try analyzer.expression()
            case "node":
                analyzer.integerIsColumnPosition = isSortItem
                try analyzer.expression()
            case "location", "argnumber", "row_typeid", "casetype", "coalescetype", "minmaxtype":
                _ = try analyzer.cursor.integer()
            case "boolop", "op", "row_format", "kind", "nulltesttype", "booltesttype", "sortby_dir", "sortby_nulls", "name":
                try analyzer.cursor.skipString()
            case "is_slice", "argisrow": _ = try analyzer.cursor.boolean()
            case "colnames": try analyzer.skipNameList()
            case "useOp": try analyzer.checkOperator(try analyzer.operatorName())
            default: throw analyzer.unsupportedField(key)
            }
        }
    }

    private mutating func constant(isColumnPosition: Bool) throws {
        var isInteger = false
        try object { analyzer, key in
            switch key {
            case "ival": isInteger = true; try analyzer.cursor.skipValue()
            case "fval", "boolval", "sval", "bsval": try analyzer.cursor.skipValue()
            case "isnull": _ = try analyzer.cursor.boolean()
            case "location":
                let offset = try analyzer.cursor.integer()
                if analyzer.unnormalizedDepth == 0, offset >= 0, !(isColumnPosition && isInteger) {
                    analyzer.analysis.constantOffsets.append(offset)
                }
            default: throw analyzer.unsupportedField(key)
            }
        }
    }

    private mutating func operatorExpression() throws {
        var isBetween = false
        try object { analyzer, key in
            switch key {
            case "kind":
                switch try analyzer.cursor.rawString() {
                case "AEXPR_BETWEEN", "AEXPR_NOT_BETWEEN", "AEXPR_BETWEEN_SYM", "AEXPR_NOT_BETWEEN_SYM": isBetween = true
                default: break
                }
            case "name":
                let name = try analyzer.operatorName()
                // BETWEEN's "name" is the keyword; its comparisons are resolved from the operand types.
                if !isBetween { try analyzer.checkOperator(name) }
            case "lexpr", "rexpr": try analyzer.expression()
            case "location": _ = try analyzer.cursor.integer()
            default: throw analyzer.unsupportedField(key)
            }
        }
    }

    /// An operator's name as written: `=`, or `OPERATOR(schema.=)` with its qualifiers. Almost every
    /// name is one symbol, which is read without building an array.
    private struct OperatorName {
        var qualifiers: [String] = []
        var symbol = ""
    }

    private static let operatorSymbols = NameTable(PG15Catalog.operatorSymbols)

    private mutating func operatorName() throws -> OperatorName {
        // Nearly every operator is one symbol.
        if let symbol = try soleName() { return OperatorName(symbol: try ParseTreeCursor.decoded(symbol.bytes, escaped: symbol.escaped)) }
        var name = OperatorName()
        var count = 0
        try forEachName { part in
            if count > 0 { name.qualifiers.append(name.symbol) }
            name.symbol = part
            count += 1
        }
        return name
    }

    /// Checks an operator name; the cursor stands inside the node that uses it.
    private func checkOperator(_ name: OperatorName) throws {
        let allowed = (name.qualifiers.isEmpty || name.qualifiers == ["pg_catalog"])
            && Self.operatorSymbols.contains(name.symbol)
        guard allowed else {
            let written = name.qualifiers.isEmpty ? name.symbol : "OPERATOR(\((name.qualifiers + [name.symbol]).joined(separator: ".")))"
            throw Denial(rule: .operatorNotAllowed,
                         message: "operator \(written) is not allowed: only PostgreSQL's built-in operators may be used",
                         hint: "Use a built-in operator (=, <, +, ||, ->>, @>, …) without an OPERATOR(schema.op) qualifier outside pg_catalog.",
                         offset: remainingLocation(), statementType: analysis.statementType)
        }
    }

    private mutating func subLink() throws {
        try object { analyzer, key in
            switch key {
            case "subLinkType": try analyzer.cursor.skipString()
            case "subLinkId", "location": _ = try analyzer.cursor.integer()
            case "testexpr": try analyzer.expression()
            case "operName": try analyzer.checkOperator(try analyzer.operatorName())
            case "subselect": try analyzer.subquery()
            default: throw analyzer.unsupportedField(key)
            }
        }
    }

    /// A wrapped node that must be a SELECT (sub-selects, FROM-clause subqueries).
    private mutating func subquery() throws {
        try enter()
        defer { leave() }
        try wrapped { analyzer, type in
            guard case "SelectStmt" = type else { throw analyzer.unsupportedNode(type) }
            try analyzer.selectStatement(topLevel: false)
        }
    }

    private mutating func windowDefinition() throws {
        try object { analyzer, key in
            switch key {
            case "name", "refname": try analyzer.cursor.skipString()
            case "partitionClause", "orderClause": try analyzer.expressionList()
            case "frameOptions", "location": _ = try analyzer.cursor.integer()
            case "startOffset", "endOffset": try analyzer.expression()
            default: throw analyzer.unsupportedField(key)
            }
        }
    }

    /// XML expressions that parse text: XMLPARSE itself, and XMLROOT, whose first argument is xml.
    private static let xmlParsingOperations = ["IS_XMLPARSE": "XMLPARSE", "IS_XMLROOT": "XMLROOT"]
    /// XML expressions whose every argument is xml: text given to them is parsed as a document.
    private static let xmlArgumentOperations = ["IS_XMLCONCAT": "XMLCONCAT", "IS_DOCUMENT": "IS DOCUMENT"]

    private mutating func xmlExpression() throws {
        var xmlArguments: String?
        try object { analyzer, key in
            switch key {
            case "op":
                let operation = try analyzer.cursor.string()
                if let construct = Self.xmlParsingOperations[operation] {
                    throw Denial(rule: .xmlParse, message: "\(construct) is not allowed: it parses text as an XML document, which can reach external entities",
                                 hint: "Leave out \(construct) and casts to xml; build XML with xmlelement/xmlforest instead.",
                                 offset: analyzer.remainingLocation(), statementType: analyzer.analysis.statementType)
                }
                xmlArguments = Self.xmlArgumentOperations[operation]
            case "name": try analyzer.cursor.skipString()
            case "args":
                if let construct = xmlArguments { try analyzer.requireXMLArguments(of: construct) }
                try analyzer.expressionList()
            case "named_args": try analyzer.expressionList()
            case "arg_names": try analyzer.skipNameList()
            case "xmloption": try analyzer.cursor.skipString()
            case "type", "typmod", "location": _ = try analyzer.cursor.integer()
            default: throw analyzer.unsupportedField(key)
            }
        }
    }

    /// An argument that must be xml may be a column or an expression that builds XML, never text or
    /// a parameter: PostgreSQL would parse those as a document. The cursor stands at the list.
    private func requireXMLArguments(of construct: String) throws {
        var probe = cursor
        try probe.expect(UInt8(ascii: "["))
        while try probe.nextElement() {
            try requireXMLArgument(at: probe, of: construct)
            try probe.skipValue()
        }
    }

    /// The same rule for one argument node at `argument`.
    private func requireXMLArgument(at argument: ParseTreeCursor, of construct: String) throws {
        var probe = argument
        try probe.expect(UInt8(ascii: "{"))
        let type = try probe.nextKey()
        guard let type, "ColumnRef" ~= type || "XmlExpr" ~= type || "FuncCall" ~= type else {
            throw Denial(rule: .xmlParse,
                         message: "\(construct) takes xml, and this argument would be parsed from text as an XML document",
                         hint: "Give \(construct) columns of type xml or XML built with xmlelement/xmlforest.",
                         offset: remainingLocation(), statementType: analysis.statementType)
        }
    }

    private mutating func typeName() throws {
        unnormalizedDepth += 1
        defer { unnormalizedDepth -= 1 }
        var padsTo: (type: String, bytesPerUnit: Double)?
        try object { analyzer, key in
            switch key {
            case "names":
                let names = try analyzer.nameList()
                // After the names, so that the check's position is read from here.
                try analyzer.checkTypeName(names)
                if names.count == 1 || names.first == "pg_catalog" {
                    // A cast to char(n) pads to n characters, one to bit(n) to n bits.
                    switch names.last {
                    case "bpchar": padsTo = ("char", 1)
                    case "bit": padsTo = ("bit", 1.0 / 8)
                    default: break
                    }
                }
            case "typmods":
                if let padding = padsTo, let length = analyzer.firstListElement().flatMap({ ConstantExpression.at($0, text: analyzer.text)?.number }),
                   length * padding.bytesPerUnit > Double(analyzer.shared.policy.maxFunctionResultBytes) {
                    throw Denial(rule: .argumentLimit,
                                 message: "a cast to \(padding.type)(\(Self.describe(length))) pads every value to that length, over this policy's limit of \(analyzer.shared.policy.maxFunctionResultBytes) bytes",
                                 hint: "Use varchar or text, which do not pad, or a shorter length.",
                                 offset: analyzer.remainingLocation(), statementType: analyzer.analysis.statementType)
                }
                try analyzer.expressionList()
            case "arrayBounds": try analyzer.cursor.skipValue()
            case "setof", "pct_type": _ = try analyzer.cursor.boolean()
            case "typeOid", "typemod", "location": _ = try analyzer.cursor.integer()
            default: throw analyzer.unsupportedField(key)
            }
        }
    }

    /// Checks a type name with the type rules (`TypeRules`); a violation is denied at this node.
    private func checkTypeName(_ names: [String]) throws {
        if let violation = TypeRules.violation(forTypeNamed: names, policy: shared.policy) {
            throw Denial(rule: violation.rule, message: violation.message, hint: violation.hint, offset: remainingLocation(),
                         statementType: analysis.statementType)
        }
    }

    /// The first element of the list at the cursor, without moving.
    private func firstListElement() -> ParseTreeCursor? {
        var probe = cursor
        guard (try? probe.expect(UInt8(ascii: "["))) != nil, (try? probe.nextElement()) == true else { return nil }
        return probe
    }

    private mutating func alias() throws {
        try object { analyzer, key in
            switch key {
            case "aliasname": try analyzer.cursor.skipString()
            case "colnames": try analyzer.skipNameList()
            default: throw analyzer.unsupportedField(key)
            }
        }
    }

    private mutating func tableSample() throws {
        try object { analyzer, key in
            switch key {
            case "relation", "repeatable": try analyzer.expression()
            case "args": try analyzer.expressionList()
            case "method":
                let method = try analyzer.nameList()
                let name = method.count == 2 && method[0] == "pg_catalog" ? method[1] : (method.count == 1 ? method[0] : "")
                guard name == "bernoulli" || name == "system" else {
                    throw Denial(rule: .functionNotAllowed,
                                 message: "TABLESAMPLE method \(method.joined(separator: ".")) is not allowed",
                                 hint: "Use TABLESAMPLE BERNOULLI or TABLESAMPLE SYSTEM.",
                                 offset: analyzer.remainingLocation(), statementType: analyzer.analysis.statementType)
                }
            case "location": _ = try analyzer.cursor.integer()
            default: throw analyzer.unsupportedField(key)
            }
        }
    }

    // MARK: - Functions

    private mutating func functionCall() throws {
        var takesXML = false
        try object { analyzer, key in
            switch key {
            case "funcname":
                let name = try analyzer.nameList()
                try analyzer.checkFunction(name)
                takesXML = name.last == "xmlagg"
            case "args":
                if takesXML { try analyzer.requireXMLArguments(of: "xmlagg") }
                try analyzer.expressionList()
            case "agg_order": try analyzer.expressionList()
            case "agg_filter": try analyzer.expression()
            case "over": try analyzer.windowDefinition()
            case "agg_within_group", "agg_star", "agg_distinct", "func_variadic": _ = try analyzer.cursor.boolean()
            case "funcformat": try analyzer.cursor.skipString()
            case "location": _ = try analyzer.cursor.integer()
            default: throw analyzer.unsupportedField(key)
            }
        }
    }

    /// Resolves a function name as Postgres does and checks it; the cursor stands after `funcname`.
    private mutating func checkFunction(_ name: [String]) throws {
        let baseName = name.last ?? ""
        let allowed: Bool
        switch name.count {
        case 1:
            // Unqualified names find pg_catalog first, then the search path.
            allowed = shared.policy.builtinFunctions.contains(baseName)
                || shared.policy.searchPath.contains { shared.policy.extraFunctions.contains("\($0).\(baseName)") }
        case 2:
            allowed = name[0] == "pg_catalog" ? shared.policy.builtinFunctions.contains(baseName) : shared.policy.extraFunctions.contains("\(name[0]).\(baseName)")
        default:
            allowed = false
        }
        let written = name.joined(separator: ".")
        if allowed, name.count == 1, let schema = shared.searchPathFunctions[baseName],
           !shared.policy.extraFunctions.contains("\(schema).\(baseName)") {
            throw Denial(rule: .functionNotAllowed,
                         message: "function \(baseName)() is also defined in schema \(schema), and PostgreSQL may call that one instead of the built-in",
                         hint: "Call pg_catalog.\(baseName)() to mean the built-in; \(schema).\(baseName) runs only if the policy allows it.",
                         offset: remainingLocation(), statementType: analysis.statementType)
        }
        // Loading a policy refuses lists that name a forbidden function, so allowed names are never forbidden.
        guard allowed else {
            if let reason = ForbiddenFunctions.reason(for: baseName) {
                throw Denial(rule: .forbiddenFunction, message: "function \(written)() is never allowed: \(reason)",
                             hint: "Remove the call to \(written); no policy admits it.",
                             offset: remainingLocation(), statementType: analysis.statementType)
            }
            throw Denial(rule: .functionNotAllowed, message: "function \(written)() is not on this policy's allowlist",
                         hint: "Use built-in functions for math, text, dates, aggregates, window functions, JSON, arrays and full-text search; other functions are denied.",
                         offset: remainingLocation(), statementType: analysis.statementType)
        }
        let isBuiltin = name.count == 1 || name[0] == "pg_catalog"
        if !isBuiltin || PG15Catalog.setReturningFunctions.contains(baseName) { analysis.mayExplode = true }
        if baseName == "current_setting" {
            let arguments = try argumentCursors()
            try checkSettingName(arguments.first.flatMap { ConstantExpression.at($0, text: text)?.string }, offset: remainingLocation())
        }
        if isBuiltin {
            if shared.policy.hidesStatistics, StatisticsCatalog.functions.contains(baseName) {
                throw Denial(rule: .statistics,
                             message: "function \(written)() is not allowed with this profile: sizes on disk count every tenant's rows, which row-level security does not filter",
                             hint: "Count the rows you can see with count(*) instead.",
                             offset: remainingLocation(), statementType: analysis.statementType)
            }
            try checkArgumentLimits(baseName, offset: remainingLocation())
        }
        if baseName == "ts_rewrite", name.count == 1 || name[0] == "pg_catalog", try argumentCount() != 3 {
            throw Denial(rule: .forbiddenFunction, message: "function \(written)() is not allowed here: \(ForbiddenFunctions.queryRunningRewrite)",
                         hint: "Use ts_rewrite(query, target, substitute) with three tsquery values; no policy admits the form that runs a query.",
                         offset: remainingLocation(), statementType: analysis.statementType)
        }
        analysis.functions.appendIfMissing(written)
    }

    /// The number of arguments of the FuncCall the cursor stands in, after funcname (read ahead on a copy).
    private func argumentCount() throws -> Int {
        var probe = cursor
        var count = 0
        while let key = try probe.nextKey() {
            guard case "args" = key else { try probe.skipValue(); continue }
            try probe.expect(UInt8(ascii: "["))
            while try probe.nextElement() {
                count += 1
                try probe.skipValue()
            }
        }
        return count
    }

    /// current_setting may read the tenant claim and, where the policy says so, the reviewed
    /// harmless settings and the metadata list's settings; the name must be a literal. Settings are
    /// looked up without regard to case.
    private func checkSettingName(_ setting: String?, offset: Int?) throws {
        let name = setting?.asciiLowercased
        let policy = shared.policy
        guard let name, name == Policy.claimSetting || (policy.allowsReviewedSettings && Policy.reviewedSettings.contains(name))
                || policy.readableSettings.contains(name) else {
            let settings = (policy.allowsReviewedSettings ? Policy.reviewedSettings : []).union(policy.readableSettings)
            let readable = settings.isEmpty
                ? "only the tenant claim, current_setting('\(Policy.claimSetting)', true)"
                : "the tenant claim ('\(Policy.claimSetting)') and these settings: \(settings.sorted().joined(separator: ", "))"
            throw Denial(rule: .currentSetting,
                         message: "current_setting(\(setting.map { "'\($0)'" } ?? "…")) is not allowed: settings can hold secrets (a custom setting stored on a role or database is in every session)",
                         hint: "current_setting may read \(readable), named by a literal in a direct call.",
                         offset: offset, statementType: analysis.statementType)
        }
    }

    /// The argument nodes of the FuncCall the cursor stands in, after funcname (read ahead on a copy).
    private func argumentCursors() throws -> [ParseTreeCursor] {
        var probe = cursor
        var arguments: [ParseTreeCursor] = []
        while let key = try probe.nextKey() {
            guard case "args" = key else { try probe.skipValue(); continue }
            try probe.expect(UInt8(ascii: "["))
            while try probe.nextElement() {
                arguments.append(probe)
                try probe.skipValue()
            }
        }
        return arguments
    }

    /// Functions that allocate by an argument: where the text states the argument, the result
    /// must fit the policy's limits. Checked before the server would allocate (`repeat('x', 1e9)`
    /// is a gigabyte in the server before statement_timeout can end it).
    private func checkArgumentLimits(_ name: String, offset: Int?) throws {
        let policy = shared.policy
        func deny(_ message: String, _ hint: String) -> Denial {
            Denial(rule: .argumentLimit, message: message, hint: hint, offset: offset, statementType: analysis.statementType)
        }
        let bytesLimit = Double(policy.maxFunctionResultBytes)
        let rowsLimit = Double(policy.maxGeneratedRows)
        switch name {
        case "repeat":
            let arguments = try argumentCursors()
            guard arguments.count == 2, let count = ConstantExpression.at(arguments[1], text: text)?.number else { return }
            // A text the query does not state is at least one byte; an empty one makes nothing.
            let bytes = count * (ConstantExpression.at(arguments[0], text: text)?.textBytes ?? 1)
            if bytes > bytesLimit {
                throw deny("repeat() would make \(Self.describe(bytes)) bytes, over this policy's limit of \(policy.maxFunctionResultBytes) bytes",
                           "Repeat fewer times; results over \(policy.maxFunctionResultBytes) bytes are refused before they reach the server.")
            }
        case "lpad", "rpad":
            let arguments = try argumentCursors()
            guard arguments.count >= 2, let length = ConstantExpression.at(arguments[1], text: text)?.number, length > bytesLimit else { return }
            throw deny("\(name)() would make a text of \(Self.describe(length)) characters, over this policy's limit of \(policy.maxFunctionResultBytes) bytes",
                       "Pad to a shorter length; results over \(policy.maxFunctionResultBytes) bytes are refused before they reach the server.")
        case "array_fill":
            let arguments = try argumentCursors()
            guard arguments.count >= 2, let dimensions = ConstantExpression.at(arguments[1], text: text)?.numbers, !dimensions.isEmpty else { return }
            let elements = dimensions.reduce(1.0) { $0 * max($1, 0) }
            if elements > rowsLimit {
                throw deny("array_fill() would make an array of \(Self.describe(elements)) elements, over this policy's limit of \(policy.maxGeneratedRows)",
                           "Fill a smaller array; at most \(policy.maxGeneratedRows) elements are admitted.")
            }
        case "generate_series":
            let arguments = try argumentCursors()
            guard arguments.count >= 2, let steps = Self.seriesLength(arguments, text: text), steps > rowsLimit else { return }
            throw deny("generate_series() would make \(Self.describe(steps)) rows, over this policy's limit of \(policy.maxGeneratedRows)",
                       "Generate fewer rows (narrower bounds or a larger step); at most \(policy.maxGeneratedRows) are admitted.")
        case "format":
            let arguments = try argumentCursors()
            guard let first = arguments.first, let format = ConstantExpression.at(first, text: text)?.string else { return }
            let (widest, takesWidthArgument) = Self.widestFormatWidth(format)
            var width = widest
            if takesWidthArgument {
                // `%*s` takes its width from an argument: the widest constant one counts.
                for argument in arguments.dropFirst() {
                    if let value = ConstantExpression.at(argument, text: text)?.number { width = max(width, abs(value)) }
                }
            }
            if width > bytesLimit {
                throw deny("format() would pad a value to \(Self.describe(width)) characters, over this policy's limit of \(policy.maxFunctionResultBytes) bytes",
                           "Use a narrower width; results over \(policy.maxFunctionResultBytes) bytes are refused before they reach the server.")
            }
        default: break
        }
    }

    private static func describe(_ value: Double) -> String {
        value < 1e15 ? String(Int(value)) : String(value)
    }

    /// The number of rows of generate_series(start, stop[, step]) with constant arguments: numbers
    /// (step 1 by default), or timestamps with an interval step. Nil where the text does not say.
    private static func seriesLength(_ arguments: [ParseTreeCursor], text: UnsafeBufferPointer<UInt8>) -> Double? {
        let values = arguments.prefix(3).map { ConstantExpression.at($0, text: text) }
        guard let startValue = values[0], let stopValue = values[1] else { return nil }
        let start: Double, stop: Double, step: Double
        if let first = startValue.number, let last = stopValue.number {
            start = first
            stop = last
            if values.count == 3 {
                guard let given = values[2]?.number else { return nil }
                step = given
            } else {
                step = 1
            }
        } else if let first = startValue.string.flatMap(TimeLiteral.seconds(ofTimestamp:)),
                  let last = stopValue.string.flatMap(TimeLiteral.seconds(ofTimestamp:)),
                  values.count == 3, let interval = values[2]?.string.flatMap(TimeLiteral.seconds(ofInterval:)) {
            start = first
            stop = last
            step = stop >= start ? interval : -interval
        } else {
            return nil
        }
        guard step != 0, (stop - start) / step >= 0 else { return step == 0 ? nil : 0 }
        return ((stop - start) / step).rounded(.down) + 1
    }

    /// The widest width a format() string states (`%1000000s`, `%-5$20s`), and whether one is
    /// taken from an argument (`%*s`).
    private static func widestFormatWidth(_ format: String) -> (Double, Bool) {
        let bytes = Array(format.utf8)
        var widest = 0.0
        var fromArgument = false
        var index = 0
        while index < bytes.count {
            guard bytes[index] == UInt8(ascii: "%") else { index += 1; continue }
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "%") { index += 1; continue }
            // Digits may be an argument position (`n$`), after which come flags and the width.
            var value = 0.0
            while index < bytes.count {
                let byte = bytes[index]
                if byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") {
                    value = value * 10 + Double(byte - UInt8(ascii: "0"))
                } else if byte == UInt8(ascii: "$") {
                    value = 0
                } else if byte == UInt8(ascii: "-") {
                    // a flag
                } else if byte == UInt8(ascii: "*") {
                    fromArgument = true
                } else {
                    break
                }
                index += 1
            }
            widest = max(widest, value)
        }
        return (widest, fromArgument)
    }

    // MARK: - Relations

    private mutating func rangeVariable() throws {
        var catalogName: String?
        var schema: String?
        var relation = ""
        var offset: Int?
        var aliasName: String?
        var renamesColumns = false
        try object { analyzer, key in
            switch key {
            case "catalogname": catalogName = try analyzer.cursor.string()
            case "schemaname": schema = try analyzer.cursor.string()
            case "relname": relation = try analyzer.cursor.string()
            case "inh": _ = try analyzer.cursor.boolean()
            case "relpersistence": try analyzer.cursor.skipString()
            case "alias":
                try analyzer.object { analyzer, key in
                    switch key {
                    case "aliasname": aliasName = try analyzer.cursor.string()
                    case "colnames": renamesColumns = true; try analyzer.skipNameList()
                    default: throw analyzer.unsupportedField(key)
                    }
                }
            case "location": offset = try analyzer.cursor.integer()
            default: throw analyzer.unsupportedField(key)
            }
        }
        let special = SpecialRelation.byName.value(for: relation)
        try checkRelation(catalog: catalogName, schema: schema, name: relation, special: special, offset: offset)
        guard let special, special.isPgCatalog, schema == nil || schema == "pg_catalog",
              schema != nil || !visibleCTEs.contains(where: { $0.isExactly(relation) }) else { return }
        var guards = [GuardedRelation]()
        if !special.secretColumns.isEmpty {
            guards.append(GuardedRelation(relation: relation, reference: aliasName ?? relation, columns: special.secretColumns, rule: .secretRelation))
        }
        if shared.policy.hidesStatistics, !special.statisticsColumns.isEmpty {
            guards.append(GuardedRelation(relation: relation, reference: aliasName ?? relation, columns: special.statisticsColumns, rule: .statistics))
        }
        for guarded in guards {
            if renamesColumns {
                throw Denial(rule: guarded.rule, message: "\(relation) may not be read with renamed columns: \(guarded.why)",
                             hint: "Name the columns you need, other than \(guarded.columnList).", offset: offset, statementType: analysis.statementType)
            }
            guardedRelations.append(guarded)
        }
    }

    /// Over a relation with guarded columns, the query may not name such a column anywhere (as a
    /// column, in USING, a column alias list or a string), use `*` over it, or take its whole row.
    /// Names are compared decoded: libpg_query escapes `"`, `\\`, `<`, `>`, `&` and control
    /// characters in the tree's JSON, so an alias such as `"u<"` is written `u\u003c` there.
    private func checkGuardedColumns() throws {
        guard !guardedRelations.isEmpty else { return }
        let references = try TreeNames(tree)
        for guarded in guardedRelations {
            let found: String?
            if references.hasUnqualifiedStar || references.starQualifiers.contains(guarded.reference) || references.hasOtherStar {
                found = "*"
            } else if let call = attributeCalls.first(where: { call in
                call.qualifier == guarded.reference && GuardedRelationColumns.byRelation[guarded.relation]?.contains(call.name) != true
            }) {
                found = "the whole row \(guarded.reference) through attribute notation (\(guarded.reference).\(call.name) is \(call.name)(\(guarded.reference)))"
            } else if usesJoinAlias {
                found = "a whole row through a join alias"
            } else if let column = guarded.columns.first(where: references.names.contains) {
                found = column
            } else if references.wholeRows.contains(guarded.reference) {
                found = "the whole row \(guarded.reference)"
            } else {
                found = nil
            }
            if let found {
                throw Denial(rule: guarded.rule,
                             message: "reading \(found) from \(guarded.relation) is not allowed: \(guarded.why)",
                             hint: "Name the columns you need, other than \(guarded.columnList).", offset: nil, statementType: analysis.statementType)
            }
        }
    }

    private mutating func checkRelation(catalog: String?, schema: String?, name: String, special: SpecialRelation?, offset: Int?) throws {
        func deny(_ rule: Rule, _ message: String, _ hint: String) -> Denial {
            Denial(rule: rule, message: message, hint: hint, offset: offset, statementType: analysis.statementType)
        }
        var readable: String { shared.policy.readableSchemas.sorted().joined(separator: ", ") }
        if let catalog {
            throw deny(.relationSchema, "relation \(catalog).\(schema ?? "").\(name) names another database",
                       "Leave out the database name; read tables in \(readable).")
        }
        if schema == nil, visibleCTEs.contains(where: { $0.isExactly(name) }) { return }
        if shared.policy.hidesStatistics, special?.isStatistics == true, special?.isPgCatalog == true, schema == nil || schema == "pg_catalog" {
            throw deny(.statistics, "relation \(name) is not readable with this profile: its counts include every tenant's rows, which row-level security does not filter",
                       "Count the rows you can see with count(*) on the table itself.")
        }
        if special?.isSecret == true {
            throw deny(.secretRelation, "relation \(name) is never readable: it holds credentials, server configuration or other sessions' data",
                       shared.schemaDiscoveryHint)
        }
        let resolvedSchema: String
        if let schema {
            resolvedSchema = schema
        } else if special?.isPgCatalog == true {
            resolvedSchema = "pg_catalog"
        } else {
            // The name is found in the first search_path schema that has it: all must be readable.
            guard shared.searchPathIsReadable else {
                throw deny(.relationSchema, "relation \(name) is not schema-qualified and the search path reaches schemas outside \(readable)",
                           "Qualify the table with its schema (\(readable)).")
            }
            analysis.tables.appendIfMissing(shared.unqualifiedTablePrefix.map { $0 + name } ?? name)
            return
        }
        let qualified = "\(resolvedSchema).\(name)"
        if resolvedSchema == "pg_catalog" || resolvedSchema == "information_schema" {
            // catalog_relations names pg_catalog relations unqualified, information_schema ones qualified.
            guard shared.policy.allowsCatalog || shared.policy.catalogRelations.contains(resolvedSchema == "pg_catalog" ? name : qualified) else {
                throw deny(.catalogRelation, "catalog relation \(qualified) is not readable with this profile", shared.schemaDiscoveryHint)
            }
        } else if !shared.policy.readableSchemas.contains(resolvedSchema) {
            throw deny(.relationSchema, "relation \(qualified) is outside the readable schemas (\(readable))", shared.schemaDiscoveryHint)
        }
        analysis.tables.appendIfMissing(qualified)
    }

    // MARK: - Reading helpers

    /// Stack one nesting level of the walk may take (measured: about 3 KiB in debug builds, 1 KiB optimized).
    static let stackBytesPerLevel = 4096

    private mutating func enter() throws {
        depth += 1
        guard depth <= shared.policy.maxNestingDepth else {
            throw Denial(rule: .tooDeep,
                         message: "the query nests deeper than this policy's limit of \(shared.policy.maxNestingDepth) levels",
                         hint: "Flatten the query: use WITH (CTEs) or joins instead of deeply nested expressions and subqueries.",
                         offset: nil, statementType: analysis.statementType)
        }
    }

    private mutating func leave() { depth -= 1 }

    /// Reads an object's fields, handing each key to `body` with the cursor on its value.
    private mutating func object(_ body: (inout Analyzer, Bytes) throws -> Void) throws {
        try cursor.expect(UInt8(ascii: "{"))
        while let key = try cursor.nextKey() { try body(&self, key) }
    }

    /// Reads a wrapped node `{"Type":{…}}`, handing its type to `body` with the cursor on the body.
    private mutating func wrapped(_ body: (inout Analyzer, Bytes) throws -> Void) throws {
        try cursor.expect(UInt8(ascii: "{"))
        guard let type = try cursor.nextKey() else { return }
        try body(&self, type)
        guard try cursor.nextKey() == nil else { throw ParseTreeCursor.Malformed() }
    }

    private mutating func list(_ element: (inout Analyzer) throws -> Void) throws {
        try cursor.expect(UInt8(ascii: "["))
        while try cursor.nextElement() { try element(&self) }
    }

    /// A list of `String` nodes: a qualified name, operator name or column list.
    private mutating func nameList() throws -> [String] {
        var names: [String] = []
        try forEachName { names.append($0) }
        return names
    }

    /// Reads a list of String nodes (a qualified name), handing each name to `body`.
    private mutating func forEachName(_ body: (String) throws -> Void) throws {
        try list { analyzer in
            try analyzer.wrapped { analyzer, type in
                guard case "String" = type else { throw analyzer.unsupportedNode(type) }
                try analyzer.object { analyzer, key in
                    guard case "sval" = key else { throw analyzer.unsupportedField(key) }
                    try body(try analyzer.cursor.string())
                }
            }
        }
    }

    private mutating func skipNameList() throws { try forEachName { _ in } }

    /// The name of a list of one String node, `[{"String":{"sval":"…"}}]` (a bare column, an
    /// unqualified operator), read in one step as raw bytes (see `ParseTreeCursor.decoded`);
    /// nil, without moving, for any other list.
    private mutating func soleName() throws -> (bytes: Bytes, escaped: Bool)? {
        guard cursor.startsWith("[{\"String\":{\"sval\":\"") else { return nil }
        var probe = cursor
        probe.offset += 20
        let name = try probe.stringBody()
        guard probe.startsWith("}}]") else { return nil }
        cursor.offset = probe.offset + 3
        return name
    }

    /// A ColumnRef's fields: names and `*`, nothing else. Every name after the first may be a
    /// function call: PostgreSQL reads `x.f` as `f(x)` when x has no column f.
    private mutating func columnNameFields() throws {
        // A bare column name has nothing to check.
        if try soleName() != nil { return }
        var index = 0
        // The name before the current one: the relation whose whole row `x.f` would hand to f.
        var qualifier: ParseTreeCursor?
        try list { analyzer in
            try analyzer.wrapped { analyzer, type in
                switch type {
                case "String":
                    let name = analyzer.cursor
                    if index > 0 { try analyzer.fieldName(object: .value, qualifier: qualifier) } else { try analyzer.cursor.skipValue() }
                    qualifier = name
                case "A_Star": try analyzer.cursor.skipValue()
                default: throw analyzer.unsupportedNode(type)
                }
            }
            index += 1
        }
    }

    /// Field selection `(expr).name`: names are read as in a ColumnRef. The first name's object is
    /// the expression in brackets; a later name's object is a field of a composite value.
    private mutating func indirectionList(firstObject: FieldObject) throws {
        var object = firstObject
        try list { analyzer in
            var probe = analyzer.cursor
            try probe.expect(UInt8(ascii: "{"))
            if case "String"? = try probe.nextKey() {
                try analyzer.wrapped { analyzer, _ in try analyzer.fieldName(object: object, qualifier: nil) }
            } else {
                try analyzer.expression()
            }
            object = .value
        }
    }

    /// What `x` is in field notation `x.name`.
    enum FieldObject {
        /// A column, a whole row or a field of a composite value: a value the query reads.
        case value
        /// The expression in `(expr).name`, at its node.
        case expression(ParseTreeCursor)
    }

    /// The body of a `String` node used as a field name. PostgreSQL's ParseFuncOrColumn reads
    /// `x.name` as a column or field of x if there is one, else as the call `name(x)` if a
    /// one-argument function `name` exists (aggregates included), else as the cast `x::name` if
    /// `name` is a type (array types `_name` too). The text cannot tell a column from the others,
    /// so a name that can be a function is checked as that call, and one that can be a type as
    /// that cast.
    private mutating func fieldName(object: FieldObject, qualifier: ParseTreeCursor?) throws {
        var name = ""
        try self.object { analyzer, key in
            guard case "sval" = key else { throw analyzer.unsupportedField(key) }
            name = try analyzer.cursor.string()
        }
        let kind = FieldNameKind.byName.value(for: name)
        if try checkAttributeFunction(name, object: object, isBuiltinOneArgument: kind?.isOneArgumentFunction == true) {
            if var qualifier {
                // The body of the qualifier's String node: {"sval":"…"}.
                var relation = ""
                try qualifier.forEachKey { cursor, _ in relation = try cursor.string() }
                attributeCalls.append((relation, name))
            }
            return
        }
        if kind?.isType == true {
            try checkTypeName([name])
        }
    }

    /// Checks `x.name` as the call `name(x)`; false if no one-argument function `name` is known.
    private mutating func checkAttributeFunction(_ name: String, object: FieldObject, isBuiltinOneArgument: Bool) throws -> Bool {
        let forbidden = ForbiddenFunctions.reason(for: name)
        let serverSchema = shared.searchPathOneArgumentFunctions[name]
        guard forbidden != nil || serverSchema != nil || isBuiltinOneArgument else { return false }
        let message = "'.\(name)' is a call of the function \(name)() in attribute notation (x.\(name) means \(name)(x))"
        if let forbidden {
            throw Denial(rule: .forbiddenFunction, message: "\(message), which is never allowed: \(forbidden)",
                         hint: "Remove .\(name); no policy admits \(name)().", offset: nil, statementType: analysis.statementType)
        }
        if let schema = serverSchema {
            // The server's function may be the one PostgreSQL picks: it runs only if the policy allows it.
            guard shared.policy.extraFunctions.contains("\(schema).\(name)") else {
                throw Denial(rule: .functionNotAllowed, message: "\(message), and \(schema).\(name)() is a function of the server this policy does not allow",
                             hint: "Remove .\(name); if it is a column, select it from a subquery under another name.",
                             offset: nil, statementType: analysis.statementType)
            }
            return true
        }
        guard shared.policy.builtinFunctions.contains(name) else {
            throw Denial(rule: .functionNotAllowed, message: "\(message), which is not on this policy's allowlist",
                         hint: "Remove .\(name); if it is a column, select it from a subquery under another name.",
                         offset: nil, statementType: analysis.statementType)
        }
        // The object is the argument: the per-function argument rules apply to it.
        switch name {
        case "current_setting":
            var setting: String?
            if case .expression(let argument) = object { setting = ConstantExpression.at(argument, text: text)?.string }
            try checkSettingName(setting, offset: nil)
        case "xmlagg":
            if case .expression(let argument) = object { try requireXMLArgument(at: argument, of: "xmlagg") }
        default: break
        }
        analysis.functions.appendIfMissing(name)
        return true
    }

    /// The `location` of the object the cursor is inside, read ahead without moving.
    private func remainingLocation() -> Int? {
        var probe = cursor
        while let key = try? probe.nextKey() {
            if case "location" = key { return try? probe.integer() }
            guard (try? probe.skipValue()) != nil else { return nil }
        }
        return nil
    }

    private func unsupportedNode(_ type: Bytes) -> Denial {
        Denial(rule: .unsupportedSyntax,
               message: "Palisade does not admit \(type.string) nodes here, so it cannot show the query is read-only",
               hint: "Rewrite the query with plain SELECT syntax.", offset: remainingLocation(),
               statementType: analysis.statementType)
    }

    private func unsupportedField(_ key: Bytes) -> Denial {
        Denial(rule: .unsupportedSyntax,
               message: "Palisade does not admit the syntax behind '\(key.string)' here, so it cannot show the query is read-only",
               hint: "Rewrite the query with plain SELECT syntax.", offset: remainingLocation(),
               statementType: analysis.statementType)
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

    var columnList: String { columns.joined(separator: ", ") }

    var why: String {
        let subject = columns.count == 1 ? "its \(columns[0]) column" : "its columns \(columnList)"
        return rule == .statistics
            ? "\(subject) count every tenant's rows, which row-level security does not filter"
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

extension Array where Element == String {
    mutating func appendIfMissing(_ value: String) {
        if !contains(value) { append(value) }
    }
}

extension UnsafeBufferPointer where Element == UInt8 {
    /// Hands the offset of every occurrence of `needle` in the tree's text to `body`.
    func forEachOccurrence(of needle: StaticString, _ body: (Int) throws -> Void) rethrows {
        let length = needle.utf8CodeUnitCount
        guard let base = baseAddress, length > 0, count >= length else { return }
        let pattern = needle.utf8Start
        var index = 0
        while index <= count - length {
            guard let found = memchr(base + index, Int32(pattern.pointee), count - length + 1 - index) else { return }
            index = UnsafePointer<UInt8>(found.assumingMemoryBound(to: UInt8.self)) - base
            if memcmp(base + index, pattern, length) == 0 { try body(index) }
            index += 1
        }
    }

    /// Whether the bytes of `needle` occur anywhere in the tree's text. The trees are short and
    /// the first byte of a needle is rare in them: memchr finds the candidates.
    func contains(_ needle: String) -> Bool {
        var needle = needle
        return needle.withUTF8 { needle in
            guard let pattern = needle.baseAddress, !needle.isEmpty else { return true }
            guard let base = baseAddress, count >= needle.count else { return false }
            var index = 0
            while index <= count - needle.count {
                guard let found = memchr(base + index, Int32(pattern.pointee), count - needle.count + 1 - index) else { return false }
                index = UnsafePointer<UInt8>(found.assumingMemoryBound(to: UInt8.self)) - base
                if memcmp(base + index, pattern, needle.count) == 0 { return true }
                index += 1
            }
            return false
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif
