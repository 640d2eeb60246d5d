/// Expressions and FROM items.
extension Analyzer {
    mutating func expressionList() throws {
        try list { analyzer in try analyzer.expression() }
    }

    /// Any node that may stand in an expression, target list or FROM clause.
    mutating func expression() throws {
        let isColumnPosition = integerIsColumnPosition
        integerIsColumnPosition = false
        let mayBecomeXML = untypedMayBecomeXML && buildsXML
        untypedMayBecomeXML = false
        try enter()
        defer { leave() }
        let nodeStart = cursor.offset
        copiedNodes += expressionCopies
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
        case "A_Const":
            if mayBecomeXML, cursor.startsWith("{\"sval\":") { throw untypedBesideXML("a text literal") }
            try constant(isColumnPosition: isColumnPosition)
        case "ParamRef":
            if mayBecomeXML { throw untypedBesideXML("a parameter") }
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
                case "val":
                    analyzer.untypedMayBecomeXML = mayBecomeXML
                    try analyzer.expression()
                case "location": _ = try analyzer.cursor.integer()
                default: throw analyzer.unsupportedField(key)
                }
            }
        case "A_Expr": try operatorExpression()
        case "BoolExpr", "CoalesceExpr", "MinMaxExpr", "GroupingFunc", "A_ArrayExpr", "RowExpr", "GroupingSet", "List",
             "CaseExpr", "CaseWhen", "NullTest", "BooleanTest", "A_Indices", "NamedArgExpr":
            try genericExpression(type, unifiedRow: mayBecomeXML)
        case "A_Indirection":
            let copies = try Self.rowExpansionCopies(cursor)
            var argument: ParseTreeCursor?
            try object { analyzer, key in
                switch key {
                case "arg":
                    argument = analyzer.cursor
                    let outer = analyzer.expressionCopies
                    analyzer.expressionCopies *= copies
                    defer { analyzer.expressionCopies = outer }
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
            planning.add(expressionCopies)
            try subLink(joinable: joinableSublinks.contains(nodeStart))
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
            planning.add(expressionCopies)
            let guardedBefore = guardedRelations.count
            var natural = false
            var inner = false
            try object { analyzer, key in
                switch key {
                case "jointype": inner = try analyzer.cursor.string() == "JOIN_INNER"
                case "isNatural": natural = try analyzer.cursor.boolean()
                case "larg", "rarg": try analyzer.expression()
                case "quals":
                    // An outer join's condition may read the side it keeps, which PostgreSQL does
                    // not join a subquery to (a LEFT JOIN's ON a.a IN (…) was hashed: 260 MB).
                    if inner { analyzer.noteJoinableSublinks() }
                    try analyzer.expression()
                case "usingClause": try analyzer.skipNameList()
                case "join_using_alias", "alias":
                    analyzer.usesJoinAlias = true
                    try analyzer.alias()
                case "rtindex": _ = try analyzer.cursor.integer()
                default: throw analyzer.unsupportedField(key)
                }
            }
            // A NATURAL JOIN compares every column its sides share, named nowhere in the text.
            if natural {
                for index in guardedBefore..<guardedRelations.count { guardedRelations[index].joinedNaturally = true }
            }
        case "RangeSubselect":
            planning.add(expressionCopies)
            var columns: Set<String> = []
            try object { analyzer, key in
                switch key {
                case "lateral": _ = try analyzer.cursor.boolean()
                case "subquery":
                    var select = analyzer.cursor
                    try select.forEachKey { cursor, _ in
                        columns = Analyzer.outputColumnNames(of: cursor)
                        try cursor.skipValue()
                    }
                    try analyzer.subquery()
                case "alias": try analyzer.alias(columns: columns)
                default: throw analyzer.unsupportedField(key)
                }
            }
        case "RangeFunction":
            analysis.mayExplode = true
            planning.add(expressionCopies)
            var calledNames: [String] = []
            var aliased = false
            try object { analyzer, key in
                switch key {
                case "lateral", "ordinality", "is_rowsfrom": _ = try analyzer.cursor.boolean()
                case "functions":
                    calledNames = try analyzer.functionNames(in: analyzer.cursor)
                    try analyzer.expressionList()
                case "alias":
                    aliased = true
                    try analyzer.alias()
                case "coldeflist": try analyzer.expressionList()
                default: throw analyzer.unsupportedField(key)
                }
            }
            // Without an alias a function's rows go by the name PostgreSQL gives the expression
            // (`repeat`, but `coalesce` or a cast's type): known or not, it is no table's.
            if !aliased { madeRowAliases.formUnion(calledNames) }
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
    /// `unifiedRow`: a List that is a row of VALUES, whose items are unified column by column.
    mutating func genericExpression(_ type: Bytes, isSortItem: Bool = false, unifiedRow: Bool = false) throws {
        let argumentsAreColumnPositions = rowItemsAreColumnPositions && "RowExpr" ~= type
        rowItemsAreColumnPositions = false
        let unifies: Bool
        switch type {
        case "CoalesceExpr", "MinMaxExpr", "A_ArrayExpr", "CaseExpr", "CaseWhen": unifies = true
        case "List": unifies = unifiedRow
        default: unifies = false
        }
        try object { analyzer, key in
            switch key {
            case "content" where "GroupingSet" ~= type, "args" where argumentsAreColumnPositions:
                // A grouping set's items, and the items of a parenthesized row among them, are
                // GROUP BY items: an integer is a column position (`ROLLUP(1, (1, 2))`).
                try analyzer.list { analyzer in
                    analyzer.integerIsColumnPosition = true
                    analyzer.rowItemsAreColumnPositions = !argumentsAreColumnPositions && analyzer.cursor.startsWith("{\"RowExpr\":")
                    try analyzer.expression()
                }
            case "args" where unifies && !("CaseExpr" ~= type), "elements" where unifies, "items" where unifies:
                try analyzer.unifiedExpressionList()
            case "defresult" where unifies, "result" where unifies:
                analyzer.untypedMayBecomeXML = true
                try analyzer.expression()
            case "args", "elements", "content", "items", "partitionClause", "orderClause":
                try analyzer.expressionList()
            case "arg" where "CaseExpr" ~= type:
                // `CASE x WHEN …`: once x folds to a constant, the planner puts a copy of it in each
                // WHEN (eval_const_expressions; a 1 MB repeat(…) with 1,000 WHENs, 13 KB, took
                // 992 MB: thirty-eighth red team, second pass).
                let outer = analyzer.expressionCopies
                analyzer.expressionCopies *= try Self.caseWhens(analyzer.cursor)
                defer { analyzer.expressionCopies = outer }
                try analyzer.expression()
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

    /// The WHENs of the CaseExpr whose `arg` is at `cursor` (its keys in libpg_query's
    /// order: the list comes after `arg`), at least 1.
    static func caseWhens(_ cursor: ParseTreeCursor) throws -> Double {
        var probe = cursor
        try probe.skipValue()
        return Double(max(try probe.elementsAhead(in: "args"), 1))
    }

    /// A list whose members PostgreSQL gives one common type (see `untypedMayBecomeXML`).
    mutating func unifiedExpressionList() throws {
        try list { analyzer in
            analyzer.untypedMayBecomeXML = true
            try analyzer.expression()
        }
    }

    func untypedBesideXML(_ what: String) -> Denial {
        Denial(rule: .xmlParse,
               message: "in a query that builds XML, \(what) here takes the type of the values beside it, and beside an xml value PostgreSQL would parse it as an XML document",
               hint: "Give it a type: 'text'::text, or $1::text.",
               offset: remainingLocation(), statementType: analysis.statementType)
    }

    mutating func constant(isColumnPosition: Bool) throws {
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

    mutating func operatorExpression() throws {
        var isBetween = false
        var isComparisonKind = false
        var testCopies = 1.0
        var symbol = ""
        var left: ParseTreeCursor?, right: ParseTreeCursor?
        var location: Int?
        try object { analyzer, key in
            switch key {
            case "kind":
                switch try analyzer.cursor.rawString() {
                case "AEXPR_BETWEEN", "AEXPR_NOT_BETWEEN": isBetween = true; testCopies = 2
                case "AEXPR_BETWEEN_SYM", "AEXPR_NOT_BETWEEN_SYM": isBetween = true; testCopies = 4
                case "AEXPR_IN": isComparisonKind = true; testCopies = max(1, Self.inListCopies(analyzer.cursor, in: analyzer.tree))
                case "AEXPR_OP", "AEXPR_DISTINCT", "AEXPR_NOT_DISTINCT": isComparisonKind = true
                default: break
                }
            case "name":
                let name = try analyzer.operatorName()
                symbol = name.symbol
                // BETWEEN's "name" is the keyword; its comparisons are resolved from the operand types.
                if !isBetween { try analyzer.checkOperator(name) }
            case "lexpr":
                left = analyzer.cursor
                // Array operators (||, @>, =) give an untyped operand the other side's array type.
                analyzer.untypedMayBecomeXML = true
                let copies = analyzer.expressionCopies
                analyzer.expressionCopies *= testCopies
                defer { analyzer.expressionCopies = copies }
                try analyzer.expression()
            case "rexpr":
                right = analyzer.cursor
                analyzer.untypedMayBecomeXML = true
                try analyzer.expression()
            case "location": location = try analyzer.cursor.integer()
            default: throw analyzer.unsupportedField(key)
            }
        }
        if symbol == "^" { numericFolds += expressionCopies }
        if isBetween || (isComparisonKind && Self.comparisonOperators.contains(symbol)), let left, let right {
            noteComparedStrings(left)
            noteComparedStrings(right)
        }
        // jsonb @? jsonpath and jsonb @@ jsonpath are jsonb_path_exists and jsonb_path_match. @@ is
        // also full-text search's match: with to_tsquery(…) or to_tsvector(…) on a side it is that,
        // and a constant query ('north') reads as a path without `$`.
        if symbol == "@?" || symbol == "@@", let left, let right {
            if symbol == "@@", callsTextSearch(left) || callsTextSearch(right) { return }
            try checkSquareOfJSON("the operator \(symbol)", target: left, path: right, offset: location)
            try checkJSONPathPatterns(right, offset: location)
        }
        // Regular expression matches (SIMILAR TO's pattern is similar_to_escape(…): `regexArgument`).
        // A prefix ~ is bitwise NOT.
        if Self.regexOperators.contains(symbol), left != nil, let right { try checkRegexPattern(right, offset: location) }
    }

    static let regexOperators: Set<String> = ["~", "~*", "!~", "!~*"]
    /// IN's name is `=` and NOT IN's `<>`; the parser writes `!=` as `<>`.
    static let comparisonOperators: Set<String> = ["=", "<>", "<", ">", "<=", ">="]

    /// Records the string constant at `operand`, or each one that is an item of the list there (IN's
    /// and BETWEEN's right side), as read only by a comparison (`Analysis.comparedStringOffsets`).
    mutating func noteComparedStrings(_ operand: ParseTreeCursor) {
        var probe = operand
        let list: StaticString = "{\"List\":{\"items\":["
        if probe.startsWith(list) {
            probe.offset += list.utf8CodeUnitCount
            while (try? probe.nextElement()) == true {
                let node = probe.offset
                guard let location = Self.stringConstantLocation(probe), (try? probe.skipValue()) != nil else { return }
                noteComparedString(node: node, location: location)
            }
        } else if let location = Self.stringConstantLocation(probe) {
            noteComparedString(node: probe.offset, location: location)
        }
    }

    private mutating func noteComparedString(node: Int, location: Int) {
        guard location >= 0 else { return }
        analysis.comparedStringOffsets.insert(location)
        comparedStringNodes.insert(node)
    }

    /// Whether the string constant whose `"sval":{"sval":"` starts at `offset` of `node` (a part of
    /// the tree) is an operand only a comparison reads: its bytes are compared, never made text of
    /// another size, so the readers of strings' numbers pass over it.
    func isComparedString(valueAt offset: Int, of node: UnsafeBufferPointer<UInt8>) -> Bool {
        let constantStart = node.baseAddress! - tree.baseAddress! + offset - "{\"A_Const\":{".utf8.count
        return comparedStringNodes.contains(constantStart)
    }

    /// The location of the string constant (`{"A_Const":{"sval":{"sval":"…"},"location":N}}`) at
    /// `start`; -1 for any other node, nil if it cannot be read.
    static func stringConstantLocation(_ start: ParseTreeCursor) -> Int? {
        guard start.startsWith("{\"A_Const\":{\"sval\":") else { return -1 }
        var probe = start
        var location = -1
        let read: Void? = try? probe.forEachKey { probe, _ in
            try probe.forEachKey { probe, key in
                if case "location" = key { location = try probe.integer() } else { try probe.skipValue() }
            }
        }
        return read == nil ? nil : location
    }

    /// How many copies of its left operand the IN list whose fields follow `fields` (an A_Expr's,
    /// after its kind) makes. PostgreSQL (transformAExprIn) gathers two or more items that read no
    /// column into one `= ANY (array)`, which reads the left operand once, but only where their
    /// common type has an array type, which a row (record) has not; every other item is a
    /// comparison of its own over a copy of the left operand (thirty-eighth red team, second pass:
    /// five levels of 20 constant rows, 998 bytes, took 1.53 GB; third pass: the same rows behind
    /// `::record`, COALESCE or a subquery, 1.8 KB, 1.53 GB). So the constants count as one only
    /// where each is a plain constant or parameter and the left operand cannot be a row; an
    /// unreadable list is unbounded (fail closed).
    static func inListCopies(_ fields: ParseTreeCursor, in tree: UnsafeBufferPointer<UInt8>) -> Double {
        var probe = fields
        var readingColumns = 0.0, constants = 0.0
        var gathers = true
        let read: Void? = try? {
            while let key = try probe.nextKey() {
                switch key {
                case "lexpr":
                    let start = probe.offset
                    try probe.skipValue()
                    let left = UnsafeBufferPointer(rebasing: tree[start..<probe.offset])
                    if Self.mayMakeRow.contains(where: left.contains) { gathers = false }
                case "rexpr" where probe.startsWith("{\"List\":"):
                    try probe.forEachKey { probe, _ in
                        try probe.forEachKey { probe, key in
                            guard case "items" = key else { try probe.skipValue(); return }
                            try probe.expect(UInt8(ascii: "["))
                            while try probe.nextElement() {
                                let start = probe.offset
                                try probe.skipValue()
                                let item = UnsafeBufferPointer(rebasing: tree[start..<probe.offset])
                                if item.contains("{\"ColumnRef\":") {
                                    readingColumns += 1
                                } else {
                                    constants += 1
                                    if !Self.isPlainConstant(item) { gathers = false }
                                }
                            }
                        }
                    }
                default: try probe.skipValue()
                }
            }
        }()
        guard read != nil else { return .infinity }
        return readingColumns + (gathers && constants > 1 ? 0 : constants)
    }

    /// The items of the IN list whose fields follow `fields` (unbounded where it cannot be read).
    static func inListItems(_ fields: ParseTreeCursor) -> Double {
        var probe = fields
        let count: Int? = try? {
            while let key = try probe.nextKey() {
                guard case "rexpr" = key, probe.startsWith("{\"List\":") else { try probe.skipValue(); continue }
                var items = 0
                try probe.forEachKey { list, _ in
                    var body = list
                    try body.expect(UInt8(ascii: "{"))
                    items = try body.elementsAhead(in: "items")
                    try list.skipValue()
                }
                return items
            }
            return 1
        }()
        return count.map(Double.init) ?? .infinity
    }

    /// Nodes below which a value may be a row (record): a row constructor, a subquery, a field or
    /// row expansion, a cast to record, or a choice among values that may be any of those.
    static let mayMakeRow = ["{\"RowExpr\":", "{\"SubLink\":", "{\"A_Indirection\":", "{\"A_Star\":", "{\"String\":{\"sval\":\"record\"}}",
                             "{\"CoalesceExpr\":", "{\"CaseExpr\":", "{\"MinMaxExpr\":", "\"AEXPR_NULLIF\""]

    /// A constant or parameter, bare or cast to a type other than record.
    static func isPlainConstant(_ item: UnsafeBufferPointer<UInt8>) -> Bool {
        guard !mayMakeRow.contains(where: item.contains) else { return false }
        var probe = ParseTreeCursor(item)
        while true {
            if probe.startsWith("{\"A_Const\":") || probe.startsWith("{\"ParamRef\":") { return true }
            guard probe.startsWith("{\"TypeCast\":{\"arg\":") else { return false }
            probe.offset += "{\"TypeCast\":{\"arg\":".utf8.count
        }
    }

    /// An operator's name as written: `=`, or `OPERATOR(schema.=)` with its qualifiers. Almost every
    /// name is one symbol, which is read without building an array.
    struct OperatorName {
        var qualifiers: [String] = []
        var symbol = ""
    }

    static let operatorSymbols = NameTable(PG15Catalog.operatorSymbols)

    mutating func operatorName() throws -> OperatorName {
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
    func checkOperator(_ name: OperatorName) throws {
        let allowed = (name.qualifiers.isEmpty || name.qualifiers == ["pg_catalog"])
            && Self.operatorSymbols.contains(name.symbol)
        guard allowed else {
            let written = name.qualifiers.isEmpty ? name.symbol : "OPERATOR(\((name.qualifiers + [name.symbol]).joined(separator: ".")))"
            throw Denial(rule: .operatorNotAllowed,
                         message: "operator \(written) is not allowed: only PostgreSQL's built-in operators may be used",
                         hint: "Use a built-in operator (=, <, +, ||, ->>, @>, …) without an OPERATOR(schema.op) qualifier outside pg_catalog.",
                         offset: remainingLocation(), statementType: analysis.statementType)
        }
        // PostgreSQL picks among every operator of this symbol on the search path by the operand
        // types, which the text does not show: an extension's may run instead of pg_catalog's.
        guard !shared.searchPathOperators.isEmpty, name.qualifiers.isEmpty, let runs = shared.searchPathOperators[name.symbol] else { return }
        let unlisted = runs.filter { function in
            !shared.policy.extraFunctions.contains(function)
                && !(function.hasPrefix("pg_catalog.") && shared.policy.builtinFunctions.contains(String(function.dropFirst(11))))
        }.sorted()
        guard unlisted.isEmpty else {
            throw Denial(rule: .operatorNotAllowed,
                         message: "operator \(name.symbol) is also defined outside pg_catalog on the search path, where it runs \(unlisted.joined(separator: ", ")), not on this policy's allowlist; the operand types decide which one runs",
                         hint: "Write OPERATOR(pg_catalog.\(name.symbol)) to use the built-in one, or add the functions to the policy's functions.allow after review.",
                         offset: remainingLocation(), statementType: analysis.statementType)
        }
    }

    /// `joinable`: the whole of a WHERE or inner join's ON condition or one of its ANDed terms, where
    /// IN becomes a semi-join, whose hash table spills to disk, if its left side reads a column and
    /// calls nothing (PostgreSQL joins only a test that reads the query's rows and is not volatile:
    /// `'x' IN (…)` and `a || random()::text IN (…)` were hashed, 257 and 261 MB).
    mutating func subLink(joinable: Bool) throws {
        var hashesRows = false
        var joinsOnItsTest = false
        var isAny = false
        var isAll = false
        var symbol = ""
        var select: ParseTreeCursor?
        let unboundedBefore = unboundedRowSources
        try object { analyzer, key in
            switch key {
            case "subLinkType":
                // `x NOT IN (…)`, `x <> ALL (…)`, and `x IN (…)` or `x = ANY (…)` elsewhere (a
                // target list, under OR) may run as a hashed subplan, which holds the subquery's
                // rows as an INTERSECT does.
                switch try analyzer.cursor.string() {
                case "ANY_SUBLINK": hashesRows = true; isAny = true
                case "ALL_SUBLINK": hashesRows = true; isAll = true
                default: break
                }
            case "subLinkId", "location": _ = try analyzer.cursor.integer()
            case "testexpr":
                var probe = analyzer.cursor
                let start = probe.offset
                try probe.skipValue()
                let test = UnsafeBufferPointer(rebasing: analyzer.tree[start..<probe.offset])
                joinsOnItsTest = test.contains("{\"ColumnRef\":") && !test.contains("{\"FuncCall\":")
                try analyzer.expression()
            case "operName":
                let name = try analyzer.operatorName()
                symbol = name.symbol
                try analyzer.checkOperator(name)
            case "subselect":
                select = analyzer.cursor
                try analyzer.subquery()
            default: throw analyzer.unsupportedField(key)
            }
        }
        if hashesRows, !(joinable && joinsOnItsTest && isAny) { noteHashedRows(readingUnboundedRows: unboundedRowSources > unboundedBefore) }
        // `x ~ ANY (SELECT …)`: each row's value is a pattern (seventeenth red team: 32 of them, built
        // over generate_series, took a backend 212 MB from one statement).
        if isAny || isAll, Self.regexOperators.contains(symbol), let select { try checkRegexPattern(select, offset: nil) }
    }

    /// Records the subqueries of the condition at the cursor that PostgreSQL may join rather than
    /// hash (`subLink(joinable:)`): the condition itself, or each term of its ANDs, nested ones too
    /// (`a AND (b AND x IN (…))` is a semi-join), not under OR or NOT.
    mutating func noteJoinableSublinks() {
        noteJoinableSublinks(at: cursor)
    }

    private mutating func noteJoinableSublinks(at start: ParseTreeCursor) {
        var probe = start
        if probe.startsWith("{\"SubLink\":") { joinableSublinks.insert(probe.offset); return }
        guard probe.startsWith("{\"BoolExpr\":") else { return }
        var terms: [ParseTreeCursor] = []
        _ = try? probe.forEachKey { probe, _ in
            var conjunction = false
            try probe.forEachKey { probe, key in
                switch key {
                case "boolop": conjunction = try probe.string() == "AND_EXPR"
                case "args" where conjunction:
                    try probe.expect(UInt8(ascii: "["))
                    while try probe.nextElement() {
                        terms.append(probe)
                        try probe.skipValue()
                    }
                default: try probe.skipValue()
                }
            }
        }
        for term in terms { noteJoinableSublinks(at: term) }
    }

    /// A wrapped node that must be a SELECT (sub-selects, FROM-clause subqueries).
    mutating func subquery() throws {
        try enter()
        defer { leave() }
        try wrapped { analyzer, type in
            guard case "SelectStmt" = type else { throw analyzer.unsupportedNode(type) }
            try analyzer.selectStatement(topLevel: false)
        }
    }

    mutating func windowDefinition() throws {
        var defines = false
        try object { analyzer, key in
            switch key {
            case "name", "refname": try analyzer.cursor.skipString()
            case "partitionClause", "orderClause": defines = true; try analyzer.expressionList()
            case "frameOptions", "location": _ = try analyzer.cursor.integer()
            case "startOffset", "endOffset": defines = true; try analyzer.expression()
            default: throw analyzer.unsupportedField(key)
            }
        }
        // A plan step of its own, planned again wherever its query is put in place: 100 windows
        // in a WITH query read by a UNION ALL of many arms, 6.2 KB, took 1.91 GB (thirty-eighth red
        // team, fifth pass). A bare `OVER w` adds none; `OVER ()` is counted with the frames.
        if defines { planning.add(expressionCopies) }
    }

    /// XML expressions that parse text: XMLPARSE itself, and XMLROOT, whose first argument is xml.
    static let xmlParsingOperations = ["IS_XMLPARSE": "XMLPARSE", "IS_XMLROOT": "XMLROOT"]
    /// XML expressions whose every argument is xml: text given to them is parsed as a document.
    static let xmlArgumentOperations = ["IS_XMLCONCAT": "XMLCONCAT", "IS_DOCUMENT": "IS DOCUMENT"]

    mutating func xmlExpression() throws {
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
    func requireXMLArguments(of construct: String) throws {
        var probe = cursor
        try probe.expect(UInt8(ascii: "["))
        while try probe.nextElement() {
            try requireXMLArgument(at: probe, of: construct)
            try probe.skipValue()
        }
    }

    /// The same rule for one argument node at `argument`.
    func requireXMLArgument(at argument: ParseTreeCursor, of construct: String) throws {
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

    mutating func typeName() throws {
        unnormalizedDepth += 1
        defer { unnormalizedDepth -= 1 }
        var padsTo: (type: String, bytesPerUnit: Double)?
        var numericPrecision = false
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
                    case "numeric", "decimal": numericPrecision = true
                    default: break
                    }
                }
            case "typmods":
                if numericPrecision, let precision = analyzer.firstListElement().flatMap({ analyzer.constantValue($0)?.number }) {
                    // numeric(p, s) writes its s places, and what multiplies or takes a root of it
                    // keeps or adds them: `1::numeric(1000, 999)` is 1,001 characters as text
                    // (500,000 of them in json_agg took 1.9 GB; eleventh round). The digits and a
                    // sign and a point, for what keeps each row (`checkAccumulations`). An array's
                    // elements are stored without them and sized as arrays are when written out.
                    analyzer.analysis.madeBytes += max(precision + 2, 0)
                }
                if let padding = padsTo, let length = analyzer.firstListElement().flatMap({ analyzer.constantValue($0)?.number }) {
                    // An array type pads every element: as many as the text can state, one per two bytes
                    // ('{a,a,…}'::char(1000000)[] reached 1 GB from 2 KB of text).
                    let elements = try analyzer.typeNameIsArray() ? Double(analyzer.shared.policy.maxQueryBytes / 2) : 1
                    let bytes = length * padding.bytesPerUnit * elements
                    analyzer.analysis.madeBytes += max(length * padding.bytesPerUnit * ConstantExpression.maxBytesPerCharacter * elements, 0)
                    if bytes > Double(analyzer.shared.policy.maxFunctionResultBytes) {
                        let what = elements > 1 ? "every element of up to \(Self.describe(elements)) to that length" : "every value to that length"
                        throw Denial(rule: .argumentLimit,
                                     message: "a cast to \(padding.type)(\(Self.describe(length)))\(elements > 1 ? "[]" : "") pads \(what), over this policy's limit of \(analyzer.shared.policy.maxFunctionResultBytes) bytes",
                                     hint: "Use varchar or text, which do not pad, or a shorter length.",
                                     offset: analyzer.remainingLocation(), statementType: analyzer.analysis.statementType)
                    }
                }
                try analyzer.expressionList()
            case "arrayBounds": try analyzer.cursor.skipValue()
            case "setof", "pct_type": _ = try analyzer.cursor.boolean()
            case "typeOid", "typemod", "location": _ = try analyzer.cursor.integer()
            default: throw analyzer.unsupportedField(key)
            }
        }
    }

    /// Whether the TypeName whose `typmods` the cursor stands on names an array type (`arrayBounds`
    /// follows; read ahead on a copy).
    func typeNameIsArray() throws -> Bool {
        var probe = cursor
        try probe.skipValue()
        while let key = try probe.nextKey() {
            if case "arrayBounds" = key { return true }
            try probe.skipValue()
        }
        return false
    }

    /// Checks a type name with the type rules (`TypeRules`); a violation is denied at this node.
    func checkTypeName(_ names: [String]) throws {
        if let violation = TypeRules.violation(forTypeNamed: names, policy: shared.policy) {
            throw Denial(rule: violation.rule, message: violation.message, hint: violation.hint, offset: remainingLocation(),
                         statementType: analysis.statementType)
        }
        // A cast runs the type's input function (an array's, its element's): an extension's
        // function outside pg_catalog needs the allowlist as a call would.
        // Most servers define no such type: no per-cast lookup then.
        guard !shared.searchPathTypeInputs.isEmpty, names.count == 1 || (names.count == 2 && shared.policy.searchPath.contains(names[0])),
              let base = names.last else { return }
        let element = base.hasPrefix("_") ? String(base.dropFirst()) : base
        guard let input = shared.searchPathTypeInputs[base] ?? shared.searchPathTypeInputs[element],
              !shared.policy.extraFunctions.contains(input) else { return }
        throw Denial(rule: .functionNotAllowed,
                     message: "the type \(names.joined(separator: ".")) is read by \(input)(), which is not on this policy's allowlist",
                     hint: "Leave out the cast to \(base), or add \(input) to the policy's functions.allow after review.",
                     offset: remainingLocation(), statementType: analysis.statementType)
    }

    /// The first element of the list at the cursor, without moving.
    func firstListElement() -> ParseTreeCursor? {
        var probe = cursor
        guard (try? probe.expect(UInt8(ascii: "["))) != nil, (try? probe.nextElement()) == true else { return nil }
        return probe
    }

    /// The names of the functions called in the value at `start` (the last part of each funcname).
    func functionNames(in start: ParseTreeCursor) throws -> [String] {
        var end = start
        try end.skipValue()
        var names: [String] = []
        let needle: StaticString = "\"funcname\":"
        try UnsafeBufferPointer(rebasing: tree[start.offset..<end.offset]).forEachOccurrence(of: needle) { offset in
            var list = ParseTreeCursor(tree)
            list.offset = start.offset + offset + needle.utf8CodeUnitCount
            if let name = try Analyzer.stringList(&list).last { names.append(name) }
        }
        return names
    }

    /// The alias of a row source the query makes (a subquery, a function, a join), with the
    /// columns it is known to have (`columns`, unless the alias names them).
    mutating func alias(columns: Set<String> = []) throws {
        var name: String?
        var renamed: [String]?
        try object { analyzer, key in
            switch key {
            case "aliasname": name = try analyzer.cursor.string()
            case "colnames": renamed = try analyzer.nameList()
            default: throw analyzer.unsupportedField(key)
            }
        }
        if let name { addMadeRows(name, columns: renamed.map(Set.init) ?? columns) }
    }

    /// The same alias in two scopes keeps only the columns both have: the name must be a column
    /// wherever it is read.
    mutating func addMadeRows(_ alias: String, columns: Set<String>) {
        if madeRowAliases.insert(alias).inserted {
            madeRowColumns[alias] = columns
        } else {
            madeRowColumns[alias] = (madeRowColumns[alias] ?? []).intersection(columns)
        }
    }

    /// The names PostgreSQL gives the columns of a SELECT at the cursor (its first branch's, for a
    /// set operation), as FigureColname does for a name, a column and a call; others are left out.
    static func outputColumnNames(of start: ParseTreeCursor) -> Set<String> {
        var cursor = start
        var names: Set<String> = []
        var firstBranch: ParseTreeCursor?
        do {
            try cursor.forEachKey { cursor, key in
                switch key {
                case "targetList":
                    try cursor.expect(UInt8(ascii: "["))
                    while try cursor.nextElement() {
                        try cursor.forEachKey { cursor, _ in
                            var name: String?
                            var implicit: String?
                            try cursor.forEachKey { cursor, key in
                                switch key {
                                case "name": name = try cursor.string()
                                case "val":
                                    var node = cursor
                                    try cursor.skipValue()
                                    try node.forEachKey { node, type in
                                        switch type {
                                        case "FuncCall":
                                            try node.forEachKey { node, key in
                                                if case "funcname" = key { implicit = try Analyzer.stringList(&node).last } else { try node.skipValue() }
                                            }
                                        case "ColumnRef":
                                            try node.forEachKey { node, key in
                                                guard case "fields" = key else { try node.skipValue(); return }
                                                // The last field names the column; `q.*` is q's columns, not one named q.
                                                try node.expect(UInt8(ascii: "["))
                                                while try node.nextElement() {
                                                    implicit = nil
                                                    try node.forEachKey { node, type in
                                                        if case "String" = type {
                                                            try node.forEachKey { node, _ in implicit = try node.string() }
                                                        } else {
                                                            try node.skipValue()
                                                        }
                                                    }
                                                }
                                            }
                                        default: try node.skipValue()
                                        }
                                    }
                                default: try cursor.skipValue()
                                }
                            }
                            if let column = name ?? implicit { names.insert(column) }
                        }
                    }
                case "larg": firstBranch = cursor; try cursor.skipValue()
                default: try cursor.skipValue()
                }
            }
        } catch {
            return []
        }
        if names.isEmpty, let firstBranch { return outputColumnNames(of: firstBranch) }
        return names
    }

    /// Under row-level security only BERNOULLI without REPEATABLE: SYSTEM keeps or drops whole pages,
    /// and a seed repeats a choice made by page and position, so sixteen samples of a tenant's own
    /// rows told which share a page, the table's page count and how many rows others hold on them
    /// (what `ctid` is refused for; fifteenth red team, checked against `ctid` on PostgreSQL 15).
    mutating func tableSample() throws {
        var samplesPages = false
        let offset = remainingLocation()
        try object { analyzer, key in
            switch key {
            case "relation": try analyzer.expression()
            case "repeatable":
                // The seed's own calls are judged first: a forbidden one keeps its rule.
                try analyzer.expression()
                if analyzer.shared.policy.hidesStatistics {
                    throw Denial(rule: .statistics,
                                 message: "TABLESAMPLE … REPEATABLE is not allowed with this profile: a repeated sample is chosen by where rows are stored, which shows how other tenants' rows are stored",
                                 hint: "Leave out REPEATABLE; for a stable sample filter on the key instead (WHERE hashtext(id::text) % 100 < 10).",
                                 offset: nil, statementType: analyzer.analysis.statementType)
                }
            case "args": try analyzer.expressionList()
            case "method":
                let method = try analyzer.nameList()
                let name = method.count == 2 && method[0] == "pg_catalog" ? method[1] : (method.count == 1 ? method[0] : "")
                guard name == "bernoulli" || name == "system" else {
                    throw Denial(rule: .functionNotAllowed,
                                 message: "TABLESAMPLE method \(method.joined(separator: ".")) is not allowed",
                                 hint: "Use TABLESAMPLE BERNOULLI.",
                                 offset: analyzer.remainingLocation(), statementType: analyzer.analysis.statementType)
                }
                samplesPages = name == "system"
            case "location": _ = try analyzer.cursor.integer()
            default: throw analyzer.unsupportedField(key)
            }
        }
        // After the arguments and the seed, so that a forbidden call in them keeps its own rule.
        if samplesPages, shared.policy.hidesStatistics {
            throw Denial(rule: .statistics,
                         message: "TABLESAMPLE SYSTEM is not allowed with this profile: it keeps or drops whole pages, which shows how other tenants' rows are stored",
                         hint: "Use TABLESAMPLE BERNOULLI, which samples rows one by one.",
                         offset: offset, statementType: analysis.statementType)
        }
    }
}
