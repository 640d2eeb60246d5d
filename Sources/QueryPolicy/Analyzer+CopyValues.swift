/// Sizes of expressions, for `Analyzer.checkCopies` (see `ValueSize`).
extension Analyzer {
    /// The size of the wrapped node at the cursor (`{"Type":{…}}`), which it reads.
    mutating func copyValue(_ cursor: inout ParseTreeCursor) throws -> ValueSize {
        let mark = copies.nodes
        let relationsMark = copies.relations
        let foldsMark = copies.folds
        let start = cursor.offset
        var result = try copyNode(&cursor)
        copies.nodes += 1
        result.nodes = copies.nodes - mark
        result.relations = copies.relations - relationsMark
        result.folds = copies.folds - foldsMark
        copies.largestRelations = max(copies.largestRelations, result.relations)
        if exceedsExpandedNodes(result.nodes, limit: Self.maxExpandedNodes) {
            throw Denial(rule: .valueGrowth,
                         message: "an expression of this query stands for \(Self.describe(result.nodes)) nodes once PostgreSQL's planner puts the expressions of the WITH queries and subqueries it reads in place of their columns, over the limit of \(Int(Self.maxExpandedNodes)): a chain of WITH queries each using a column twice (x AND x, x || x, x + x) doubles it at every level, in the planner's memory (21 levels of `x AND x` took 1.7 GB)",
                         hint: "Use each column of rows the query makes at most a few times in the next WITH query or subquery.",
                         offset: Self.location(in: tree, start..<cursor.offset), statementType: analysis.statementType)
        }
        return result
    }

    /// Whether the argument of the A_Indirection `body` is a relation's whole row by its name
    /// (`(s).*` over `FROM (…) s`), which PostgreSQL expands into a column reference a field rather
    /// than copies: the name is no column in scope, whose columns Palisade all knows.
    mutating func copyNamesWholeRow(argumentOf body: ParseTreeCursor) throws -> Bool {
        var cursor = body
        var fields: [String?] = []
        try cursor.forEachKey { cursor, key in
            if case "arg" = key, cursor.startsWith("{\"ColumnRef\":") { fields = try Self.columnFields(&cursor) } else { try cursor.skipValue() }
        }
        guard fields.count == 1, let name = fields[0] else { return false }
        for level in copies.scopes.indices.reversed() {
            let index = copies.index(level)
            if index.named[name] != nil || index.othersUnnamed != nil || index.readsTable || index.othersPassBase { return false }
            if index.byAlias[name] != nil { return true }
        }
        return false
    }

    /// Nodes an expression may stand for once the planner pulls up the subqueries and WITH queries
    /// it reads (each reference to a column replaced by a copy of its expression): about 800 bytes
    /// of the planner's memory a node (21 levels of `x AND x` over `true`, 2^21 nodes, took 1.7 GB
    /// in 3 s on PostgreSQL 15). A text's own expressions are far below it; doubling passes it at
    /// about 15 levels.
    static let maxExpandedNodes = 20_000.0
    /// The same, for all of a query's expressions together.
    static let maxExpandedNodesInAll = 100_000.0

    private mutating func copyNode(_ cursor: inout ParseTreeCursor) throws -> ValueSize {
        copies.depth += 1
        defer { copies.depth -= 1 }
        // The walk admitted the query, so its depth is within the policy's; deeper than that here
        // is not read (fail closed).
        guard copies.depth <= shared.policy.maxNestingDepth + 16 else {
            try cursor.skipValue()
            return .unbounded
        }
        var probe = cursor
        try probe.expect(UInt8(ascii: "{"))
        guard let type = try probe.nextKey() else { cursor = probe; return ValueSize() }
        switch type {
        case "ColumnRef":
            let column = copyResolve(try Self.columnFields(&cursor))
            // The expression the column stands for, which the planner may put in its place, and
            // plans the subqueries of again (`ValueSize.relations`).
            copies.nodes += column.nodes
            copies.relations += column.relations
            copies.folds += column.folds
            try referenced(column)
            return column
        case "A_Const": return try copyConstant(&cursor)
        case "FuncCall": return try copyFunctionCall(&cursor)
        case "TypeCast": return try copyCast(&cursor)
        case "A_Expr": return try copyOperator(&cursor)
        case "SubLink": return try copySubLink(&cursor)
        case "ParamRef":
            var number = 0
            try cursor.forEachKey { cursor, _ in
                try cursor.forEachKey { cursor, key in
                    if case "number" = key { number = try cursor.integer() } else { try cursor.skipValue() }
                }
            }
            return .input("$\(number)")
        case "SQLValueFunction", "GroupingFunc", "SetToDefault":
            let start = cursor.offset
            try cursor.skipValue()
            return .sized(site: start)
        default:
            return try copyOtherNode(&cursor, type: type.string)
        }
    }

    /// What any value at the cursor adds up to: a wrapped node, a plain object (its fields), a
    /// list (its elements) or a scalar (nothing). Every node inside is sized and checked.
    mutating func copyChildren(_ cursor: inout ParseTreeCursor) throws -> ValueSize {
        switch try cursor.peek() {
        case UInt8(ascii: "{"):
            var probe = cursor
            try probe.expect(UInt8(ascii: "{"))
            if probe.consume(UInt8(ascii: "}")) { cursor = probe; return ValueSize() }
            try probe.expect(UInt8(ascii: "\""))
            let first = try probe.peek()
            if first >= UInt8(ascii: "A"), first <= UInt8(ascii: "Z") { return try copyValue(&cursor) }
            var result = ValueSize()
            try cursor.forEachKey { cursor, _ in result.add(try copyChildren(&cursor)) }
            return result
        case UInt8(ascii: "["):
            var result = ValueSize()
            try cursor.expect(UInt8(ascii: "["))
            while try cursor.nextElement() { result.add(try copyChildren(&cursor)) }
            return result
        default:
            try cursor.skipValue()
            return ValueSize()
        }
    }

    /// A constant: a string's bytes as written (escapes count as written, so never fewer), a
    /// number's at most 24 (as `ConstantExpression` counts them; numbers that grow in digits are
    /// not sized).
    mutating func copyConstant(_ cursor: inout ParseTreeCursor) throws -> ValueSize {
        var size = ValueSize.fixed(0)
        let isCompared = comparedStringNodes.contains(cursor.offset)
        try cursor.forEachKey { cursor, _ in
            try cursor.forEachKey { cursor, key in
                switch key {
                case "sval", "bsval":
                    // Its numbers count by their digits: a value rules read (`LiteralBlindKey`).
                    if !isCompared { analysis.readsConstantValues = true }
                    var controlCharacters = true
                    try cursor.forEachKey { cursor, _ in
                        let text = try cursor.string()
                        // Numbers inside it ('{1e131071,…}'::numeric[]) are as long as text as their
                        // literals, unless it is only compared.
                        let numbers = !isCompared && text.contains { $0 == "e" || $0 == "E" }
                        size.bytes = max(1, Double(text.utf8.count)) + (numbers ? Self.embeddedNumbersTextBytes(text) : 0)
                        controlCharacters = text.utf8.contains { $0 < 0x20 }
                    }
                    // A label without control characters at most doubles when json escapes it (a
                    // quote or a backslash each): `CASE … THEN 'Waiting for the customer' …` in json_agg.
                    size.form = controlCharacters ? .text : .escapedText
                // Numbers are taken out of the text for the decision cache (`LiteralBlindKey`): their
                // values must not decide, so an integer counts 8 bytes and any other number 24, or
                // its length where that is longer (such numbers stay in the key).
                case "ival": size.bytes = 8; try cursor.skipValue()
                // An exponent is not taken out (the `e` ends the digit run): `1e131071` is 131,072 digits.
                case "fval":
                    try cursor.forEachKey { cursor, _ in
                        let literal = try cursor.string()
                        size.bytes = literal.contains(where: { $0 == "e" || $0 == "E" })
                            ? Self.numericTextBytes(literal) : max(Double(LiteralBlindKey.longestBlindNumber), Double(literal.utf8.count))
                    }
                case "boolval": size.bytes = 1; try cursor.skipValue()
                default: try cursor.skipValue()
                }
            }
        }
        return size
    }

    /// Nodes whose value is one of their parts, all of them, or a boolean.
    mutating func copyOtherNode(_ cursor: inout ParseTreeCursor, type: String) throws -> ValueSize {
        let start = cursor.offset
        var result = ValueSize()
        switch type {
        case "BoolExpr", "NullTest", "BooleanTest":
            try cursor.forEachKey { cursor, _ in _ = try copyChildren(&cursor) }
            return .fixed(1)
        case "CoalesceExpr", "MinMaxExpr":
            var alternatives: [ValueSize] = []
            try cursor.forEachKey { cursor, _ in
                try cursor.forEachKey { cursor, key in
                    guard case "args" = key else { try cursor.skipValue(); return }
                    try cursor.expect(UInt8(ascii: "["))
                    while try cursor.nextElement() { alternatives.append(try copyValue(&cursor)) }
                }
            }
            result = ValueSize.either(alternatives)
        case "CaseExpr":
            var alternatives: [ValueSize] = []
            try cursor.forEachKey { cursor, _ in
                try cursor.forEachKey { cursor, key in
                    switch key {
                    case "defresult": alternatives.append(try copyChildren(&cursor))
                    case "args":
                        try cursor.expect(UInt8(ascii: "["))
                        while try cursor.nextElement() {
                            try cursor.forEachKey { cursor, _ in
                                try cursor.forEachKey { cursor, key in
                                    switch key {
                                    case "result": alternatives.append(try copyChildren(&cursor))
                                    default: _ = try copyChildren(&cursor)
                                    }
                                }
                            }
                        }
                    default: _ = try copyChildren(&cursor)
                    }
                }
            }
            result = ValueSize.either(alternatives)
        case "A_ArrayExpr", "RowExpr":
            var count = 0.0
            try cursor.forEachKey { cursor, _ in
                try cursor.forEachKey { cursor, key in
                    switch key {
                    case "elements", "args":
                        try cursor.expect(UInt8(ascii: "["))
                        while try cursor.nextElement() {
                            result.add(Self.nested(try copyValue(&cursor)))
                            count += 1
                        }
                    default: try cursor.skipValue()
                    }
                }
            }
            result.form = .other
        case "A_Indirection", "CollateClause":
            var expansion = 1.0
            if case "A_Indirection" = type {
                var probe = cursor
                try probe.forEachKey { body, _ in
                    expansion = try Self.rowExpansionCopies(body)
                    if expansion > 1, try copyNamesWholeRow(argumentOf: body) { expansion = 1 }
                    try body.skipValue()
                }
            }
            try cursor.forEachKey { cursor, _ in
                try cursor.forEachKey { cursor, key in
                    guard case "arg" = key else { _ = try copyChildren(&cursor); return }
                    let marks = copies.marks
                    result = try copyChildren(&cursor)
                    // `(expr).*`: each field's FieldSelect holds a copy of expr, to plan and pull up.
                    copies.copy(since: marks, times: expansion)
                }
            }
        case "XmlExpr", "XmlSerialize":
            // Text in XML is escaped: `&` becomes `&amp;`, `"` `&quot;`.
            try cursor.forEachKey { cursor, _ in result = try copyChildren(&cursor) }
            let before = result.bytes
            result = result.scaled(6).with(form: .text)
            try copyAllocate(result, over: before, within: start..<cursor.offset)
        default:
            try cursor.forEachKey { cursor, _ in result = try copyChildren(&cursor) }
        }
        try copyCheck(result, within: start..<cursor.offset)
        return result
    }

    mutating func copySubLink(_ cursor: inout ParseTreeCursor) throws -> ValueSize {
        let start = cursor.offset
        let relationsBefore = copies.relations
        var textRelations = 0.0
        var kind = ""
        var relation = CopyRelation()
        try cursor.forEachKey { cursor, _ in
            try cursor.forEachKey { cursor, key in
                switch key {
                case "subLinkType": kind = try cursor.string()
                case "subselect":
                    let subselect = cursor.offset
                    try cursor.forEachKey { cursor, type in
                        guard case "SelectStmt" = type else { _ = try copyChildren(&cursor); return }
                        relation = try copySelect(&cursor)
                    }
                    textRelations = plannedRelations(in: subselect..<cursor.offset)
                default: _ = try copyChildren(&cursor)
                }
            }
        }
        // The planner plans a subquery again wherever it puts an expression holding it in place
        // (`ValueSize.relations`): itself, the relations its text reads, and the copies its output
        // holds (not the subqueries its FROM defines: those count where they are read).
        copies.relations = relationsBefore + 1 + textRelations + relation.firstColumn.relations
        copies.writtenRelations += 1 + textRelations
        switch kind {
        case "EXPR_SUBLINK": return relation.firstColumn
        case "ARRAY_SUBLINK":
            copies.gathersSubqueryRows = true
            if Self.convertsElementsAtLength(UnsafeBufferPointer(rebasing: tree[start..<cursor.offset])) {
                copies.accumulatedRowBytes += Self.convertedElementBytes
            }
            return try copyAccumulated(relation.firstColumn, site: start)
        case "ANY_SUBLINK", "ALL_SUBLINK":
            // A hashed subplan keeps every row, and does not spill.
            try refuseWindowGathered(relation.sizes + (relation.unnamed.map { [$0] } ?? []), site: start)
            return .fixed(1)
        default: return .fixed(1)
        }
    }

    /// What an aggregate or ARRAY(subquery) gathers over rows: an input of its own (the rows are
    /// the data's), holding the copies of each input a row holds (a row's copies of a table's
    /// column are copies of that column's rows). What the text adds to each row is kept for
    /// `checkAccumulatedRows`, which bounds it over the rows.
    ///
    /// A window form (`string_agg(…) OVER (ORDER BY g)`) gives every row what the rows before it
    /// gathered, so gathering those rows again keeps the square of them: an outer `string_agg` over
    /// 40,000 such rows took 1.5 GB (eleventh round). That is refused; returned to the client, the
    /// rows stream and the result budget bounds them.
    mutating func copyAccumulated(_ row: ValueSize, site: Int, window: Bool = false) throws -> ValueSize {
        try refuseWindowGathered([row], site: site)
        copies.accumulatedRowBytes += row.bytes
        copies.largestAccumulatedRow = max(copies.largestAccumulatedRow, row.bytes)
        var result = ValueSize(copies: row.copies, bytes: 0, made: row.made, form: row.form)
        result.copies["\(window ? Self.windowGatheredKey : "#rows")@\(site)", default: 0] += 1
        return result
    }

    static let windowGatheredKey = "#window-rows"

    /// Refuses keeping rows (an aggregate, ARRAY(…), a hashed IN or NOT IN, INTERSECT, EXCEPT) that
    /// each hold what a window function gathered from the rows before them: what is kept grows
    /// with the square of the rows (`NOT IN (SELECT string_agg(…) OVER (ORDER BY g) …)` over 25,000
    /// rows took 1.68 GB, eighteenth red team, fifth pass).
    func refuseWindowGathered(_ values: [ValueSize], site: Int) throws {
        guard values.contains(where: { $0.copies.keys.contains(where: { $0.hasPrefix(Self.windowGatheredKey) }) }) else { return }
        throw Denial(rule: .argumentLimit,
                     message: "an aggregate, ARRAY(…), IN or NOT IN (subquery), INTERSECT or EXCEPT keeps rows that each hold what a window function (string_agg, array_agg, json_agg … OVER) gathered from the rows before them: what it keeps grows with the square of the rows",
                     hint: "Aggregate the rows' own values once (GROUP BY), or return the window function's rows without gathering them again.",
                     offset: Self.location(in: tree, site..<(site + 1)), statementType: analysis.statementType)
    }
    /// The most places numeric's text takes after the point (`round(x, 16383)`), and a few before.
    static let mostNumericScale = 16_383.0 + 24

    // MARK: Operators

    /// Operators whose result is a boolean.
    static let booleanOperators: Set<String> = [
        "=", "<>", "!=", "<", ">", "<=", ">=", "~~", "~~*", "!~~", "!~~*", "~", "~*", "!~", "!~*", "@>", "<@",
        "?", "?|", "?&", "@@", "@@@", "&<", "&>", "<<|", "|>>", "&<|", "|&>", "-|-", "<^", ">^", "?#", "?-", "?|", "?-|", "?||", "~=",
        "@?", "<<=", ">>=", "^@",
    ]

    mutating func copyOperator(_ cursor: inout ParseTreeCursor) throws -> ValueSize {
        let start = cursor.offset
        var kind = ""
        var names: [String] = []
        var left = ValueSize(), right = ValueSize()
        var leftCopies = 1.0, items = 1.0
        try cursor.forEachKey { cursor, _ in
            try cursor.forEachKey { cursor, key in
                switch key {
                case "kind":
                    kind = try cursor.string()
                    switch kind {
                    case "AEXPR_BETWEEN", "AEXPR_NOT_BETWEEN": leftCopies = 2
                    case "AEXPR_BETWEEN_SYM", "AEXPR_NOT_BETWEEN_SYM": leftCopies = 4
                    case "AEXPR_IN":
                        leftCopies = max(1, Self.inListCopies(cursor, in: tree))
                        items = Self.inListItems(cursor)
                    default: break
                    }
                case "name": names = try Self.stringList(&cursor)
                case "lexpr":
                    // The parser's copies of the tested operand, each pulled up and planned.
                    let marks = copies.marks
                    left = try copyChildren(&cursor)
                    // A column that stands for an expression may be a row (a subquery's ROW(…),
                    // or its whole row), whose constants PostgreSQL cannot gather into an array:
                    // five levels of `r IN (NULL, …×20)` over `ROW(…) AS r`, 688 bytes, took 3 GB
                    // (thirty-eighth red team, fourth pass).
                    if kind == "AEXPR_IN", left.nodes > 1 { leftCopies = max(leftCopies, items) }
                    copies.copy(since: marks, times: leftCopies)
                case "rexpr": right = try copyChildren(&cursor)
                default: try cursor.skipValue()
                }
            }
        }
        let symbol = names.last ?? ""
        if symbol == "^" { copies.folds += 1 }
        var result: ValueSize
        switch kind {
        case "AEXPR_OP":
            if names.count > 1, names[0] != "pg_catalog" {
                var both = left
                both.add(right)
                result = copyUnknown(both, site: start)
            } else if Self.booleanOperators.contains(symbol) {
                result = .fixed(1)
            } else if symbol == "->>" || symbol == "#>>" {
                // A part of a jsonb as text: its strings escaped.
                result = left.scaled(6).with(form: .escapedText)
            } else if symbol == "->" || symbol == "#>" {
                result = left
            } else {
                // Concatenation, arithmetic, set and geometric operators: at most both operands.
                result = left
                result.add(right)
                if symbol == "||" {
                    result.form = left.form == .jsonb || right.form == .jsonb ? .jsonb
                        : (left.form.isText || right.form.isText ? .text : .other)
                }
            }
        case "AEXPR_NULLIF":
            result = left
        default:
            result = .fixed(1)
        }
        try copyCheck(result, within: start..<cursor.offset)
        return result
    }

    static func stringList(_ cursor: inout ParseTreeCursor) throws -> [String] {
        var names: [String] = []
        try cursor.expect(UInt8(ascii: "["))
        while try cursor.nextElement() {
            try cursor.expect(UInt8(ascii: "{"))
            while let part = try cursor.nextKey() {
                if case "String" = part {
                    try cursor.forEachKey { cursor, _ in names.append(try cursor.string()) }
                } else {
                    try cursor.skipValue()
                }
            }
        }
        return names
    }

    /// A function or operator Palisade does not know the size of. Over a value of rows the query
    /// makes it counts as at the limit on copies (fail closed: combining it again passes the
    /// limit); over a table's values, it is an input of its own.
    func copyUnknown(_ arguments: ValueSize, site: Int) -> ValueSize {
        if arguments.made { return arguments.scaled(Self.maxCopies) }
        var result = ValueSize.input("#call@\(site)")
        result.bytes = arguments.bytes
        return result
    }

    // MARK: Casts

    /// Types whose values take a few bytes whatever they are cast from.
    static let fixedTypes: Set<String> = [
        "int2", "int4", "int8", "smallint", "integer", "bigint", "int", "float4", "float8", "real", "bool", "boolean",
        "date", "time", "timetz", "timestamp", "timestamptz", "interval", "uuid", "oid", "money", "inet", "cidr",
        "macaddr", "macaddr8", "regclass", "regtype", "regproc", "regprocedure", "regoper", "regoperator",
        "regnamespace", "regconfig", "regdictionary", "regcollation", "char", "pg_lsn", "point", "line", "lseg", "box", "circle",
    ]
    /// Types to which a cast writes a value's text form.
    static let copyTextTypes: Set<String> = ["text", "varchar", "bpchar", "name", "citext"]

    mutating func copyCast(_ cursor: inout ParseTreeCursor) throws -> ValueSize {
        let start = cursor.offset
        var argument = ValueSize()
        var target = ""
        var isArray = false
        try cursor.forEachKey { cursor, _ in
            try cursor.forEachKey { cursor, key in
                switch key {
                case "arg": argument = try copyChildren(&cursor)
                case "typeName":
                    try cursor.forEachKey { cursor, key in
                        switch key {
                        case "names": target = try Self.stringList(&cursor).last ?? ""
                        case "arrayBounds": isArray = true; try cursor.skipValue()
                        default: try cursor.skipValue()
                        }
                    }
                default: try cursor.skipValue()
                }
            }
        }
        let result: ValueSize
        if isArray {
            // Text parsed into elements, each with a header: '{a,b}' takes 2 bytes an element.
            result = argument.scaled(8).with(form: .other)
        } else if Self.copyTextTypes.contains(target) {
            // Text is itself; arrays, rows and bytea escape (2), jsonb's strings may be escaped \uXXXX (6).
            if argument.form.isText {
                result = argument
            } else if argument.form == .json {
                result = argument.with(form: .escapedText)
            } else {
                result = argument.scaled(6).with(form: .text)
            }
        } else if target == "json" {
            result = (argument.form == .jsonb ? argument.scaled(6) : argument).with(form: .json)
        } else if target == "jsonb" {
            // Small numbers take more in jsonb than written ('[0,0,…]').
            result = (argument.form == .jsonb ? argument : argument.scaled(6)).with(form: .jsonb)
        } else if target == "bytea" || target == "numeric" || target == "decimal" {
            result = argument.with(form: .other)
        } else if Self.fixedTypes.contains(target) {
            result = .sized(site: start)
        } else {
            // Other types (tsvector, ranges, domains, …): a conversion Palisade does not size.
            result = argument.scaled(8).with(form: .other)
        }
        let site = start..<cursor.offset
        try copyCheck(result, within: site)
        try copyAllocate(result, over: argument.bytes, within: site)
        return result
    }
}

// MARK: Functions

extension Analyzer {
    /// Functions whose result takes a few bytes whatever their arguments (numbers, booleans,
    /// dates, lengths, hashes).
    static let copyFixedFunctions: Set<String> = [
        "length", "char_length", "character_length", "octet_length", "bit_length", "cardinality", "array_length",
        "array_upper", "array_lower", "array_ndims", "array_dims", "array_position", "md5", "sha224", "sha256", "sha384",
        "sha512", "crc32", "crc32c", "position", "strpos", "abs", "mod", "round", "trunc", "floor", "ceil", "ceiling", "sqrt",
        "cbrt", "sign", "power", "pow", "exp", "ln", "log", "log10", "div", "gcd", "lcm", "degrees", "radians", "pi", "sin",
        "cos", "tan", "cot", "asin", "acos", "atan", "atan2", "sind", "cosd", "tand", "sinh", "cosh", "tanh", "random",
        "random_normal", "date_trunc", "date_part", "extract", "to_date", "to_timestamp", "to_number", "age", "make_date",
        "make_time", "make_timestamp", "make_timestamptz", "make_interval", "date_bin", "justify_days", "justify_hours",
        "justify_interval", "jsonb_typeof", "json_typeof", "jsonb_array_length", "json_array_length", "hashtext", "ascii",
        "chr", "starts_with", "num_nonnulls", "num_nulls", "isfinite", "width_bucket", "pg_column_size", "now",
        "clock_timestamp", "statement_timestamp", "transaction_timestamp", "timeofday", "count", "sum", "avg", "bool_and",
        "bool_or", "every", "stddev", "stddev_pop", "stddev_samp", "variance", "var_pop", "var_samp", "corr", "covar_pop",
        "covar_samp", "regr_avgx", "regr_avgy", "regr_count", "regr_intercept", "regr_r2", "regr_slope", "regr_sxx",
        "regr_sxy", "regr_syy", "bit_and", "bit_or", "bit_xor", "row_number", "rank", "dense_rank", "percent_rank",
        "cume_dist", "ntile", "int2", "int4", "int8", "float4", "float8", "scale", "min_scale", "timezone", "regexp_count",
        "regexp_instr", "regexp_like", "gen_random_uuid", "percentile_cont", "generate_series", "pg_typeof", "isempty",
        "lower_inf", "upper_inf", "lower_inc", "upper_inc", "to_hex", "numnode", "ts_rank", "ts_rank_cd", "jsonb_path_exists",
        "jsonb_path_match", "overlaps", "pg_size_pretty", "date", "bool", "factorial", "host", "masklen", "family", "netmask",
        "network", "broadcast", "abbrev", "hashtextextended", "to_regclass", "to_regtype", "is_normalized", "array_ndims",
        "jsonb_exists", "current_setting", "pg_get_userbyid",
        // Catalog readers: their text is the catalog's (an index's or a constraint's definition, a
        // type's name, a comment), which no query can write; schema discovery (SQLAlchemy's index
        // reflection) gathers them in array_agg over rows it makes.
        "pg_get_indexdef", "pg_get_constraintdef", "pg_get_expr", "pg_get_viewdef", "pg_get_triggerdef",
        "pg_get_functiondef", "pg_get_function_arguments", "pg_get_function_result", "pg_get_function_identity_arguments",
        "pg_get_ruledef", "pg_get_statisticsobjdef", "pg_get_partkeydef", "pg_get_partition_constraintdef",
        "pg_get_serial_sequence", "format_type", "obj_description", "col_description", "shobj_description",
        "pg_encoding_to_char",
    ]

    /// Functions whose result is at most their arguments together (a part, a selection, a
    /// concatenation, the elements of an array or a json value).
    static let copyAdditiveFunctions: Set<String> = [
        "concat", "substr", "substring", "left", "right", "btrim", "ltrim", "rtrim", "trim", "reverse", "split_part",
        "array_append", "array_prepend", "array_cat", "array_remove", "trim_array", "overlay", "regexp_substr",
        "regexp_match", "regexp_matches", "unnest", "array_positions", "jsonb_array_elements", "json_array_elements",
        "json_array_elements_text", "jsonb_each", "json_each", "json_each_text", "jsonb_object_keys", "json_object_keys",
        "jsonb_extract_path", "json_extract_path", "json_extract_path_text", "jsonb_strip_nulls", "json_strip_nulls",
        "jsonb_set", "jsonb_set_lax", "jsonb_insert",
        "string_to_table", "regexp_split_to_table", "decode", "setweight", "strip", "unistr", "to_ascii", "ts_delete",
        "array_sample", "array_shuffle", "nullif", "coalesce", "greatest", "least",
        // A range holds its two bounds (so range_agg over rows the query makes counts them once each).
        "int4range", "int8range", "numrange", "daterange", "tsrange", "tstzrange",
        "int4multirange", "int8multirange", "nummultirange", "datemultirange", "tsmultirange", "tstzmultirange",
    ]

    /// Functions whose result is one of their values.
    static let copyChoosingFunctions: Set<String> = [
        "max", "min", "first_value", "last_value", "nth_value", "lag", "lead", "any_value",
    ]

    /// Builders of json (their text arguments escaped, up to 6 bytes a byte: \u0001) and of jsonb.
    static let jsonBuilders: Set<String> = ["to_json", "row_to_json", "array_to_json", "json_build_object", "json_build_array", "json_object"]
    static let jsonbBuilders: Set<String> = ["to_jsonb", "jsonb_build_object", "jsonb_build_array", "jsonb_object"]

    /// Functions that multiply their first argument's size by a constant (worst case), the rest added.
    static let copyScalingFunctions: [String: (Double, ValueForm)] = [
        // Upper and lower case may take more bytes ('ɐ' is 2 bytes, 'Ɐ' 3).
        "upper": (1.5, .text), "lower": (1.5, .text), "initcap": (1.5, .text),
        "translate": (4, .text), "normalize": (18, .text),
        "convert": (4, .other), "convert_from": (4, .text), "convert_to": (4, .other),
        "string_to_array": (8, .other), "regexp_split_to_array": (8, .other), "tsvector_to_array": (8, .other),
        "array_to_tsvector": (8, .other), "to_tsvector": (4, .other), "to_tsquery": (8, .other), "plainto_tsquery": (8, .other),
        "phraseto_tsquery": (8, .other), "websearch_to_tsquery": (8, .other),
        "jsonb_each_text": (6, .escapedText), "jsonb_array_elements_text": (6, .escapedText), "jsonb_extract_path_text": (6, .escapedText),
        "text": (6, .text), "varchar": (6, .text),
    ]

    mutating func copyFunctionCall(_ cursor: inout ParseTreeCursor) throws -> ValueSize {
        let start = cursor.offset
        var names: [String] = []
        var arguments: [ValueSize] = []
        var argumentCursors: [ParseTreeCursor] = []
        var ordered: [ValueSize] = []
        var variadic = false
        var window = false
        try cursor.forEachKey { cursor, _ in
            try cursor.forEachKey { cursor, key in
                switch key {
                case "funcname": names = try Self.stringList(&cursor)
                case "func_variadic": variadic = try cursor.boolean()
                case "args":
                    try cursor.expect(UInt8(ascii: "["))
                    while try cursor.nextElement() {
                        argumentCursors.append(cursor)
                        arguments.append(try copyValue(&cursor))
                    }
                case "agg_order":
                    try cursor.expect(UInt8(ascii: "["))
                    while try cursor.nextElement() { ordered.append(try copyChildren(&cursor)) }
                case "over":
                    window = true
                    _ = try copyChildren(&cursor)
                case "agg_filter": _ = try copyChildren(&cursor)
                default: try cursor.skipValue()
                }
            }
        }
        let site = start..<cursor.offset
        let name = names.last ?? ""
        let builtin = names.count == 1 || (names.count == 2 && names[0] == "pg_catalog")
        if builtin, Self.numericFoldFunctions.contains(name) { copies.folds += 1 }
        let result: ValueSize
        if builtin {
            result = try copyBuiltin(name, arguments, argumentCursors, ordered: ordered, variadic: variadic, window: window, site: start, within: site)
        } else {
            result = copyUnknown(ValueSize.sum(arguments), site: start)
        }
        try copyCheck(result, within: site)
        return result
    }

    /// What json escapes of a value: text up to 6 times (\u0001), json as it stands.
    static func jsonEscaped(_ size: ValueSize) -> ValueSize {
        var escaped = size.form == .json ? size : size.scaled(size.form == .escapedText ? 2 : 6)
        escaped.bytes += 4
        return escaped
    }

    /// A row or array inside a row or array: the outer text form quotes the inner one again, doubling
    /// each `"` and `\\` (twenty rows deep, 1,000 quotes made 1 GB of text; fifteenth red team).
    static func nested(_ element: ValueSize) -> ValueSize {
        element.form == .other ? element.scaled(2) : element
    }

    static func jsonbStored(_ size: ValueSize) -> ValueSize {
        var stored = size.form == .other ? size.scaled(6) : size
        stored.bytes += 4
        return stored
    }

    /// `a` times `b` (a text whose every position may become another): where both hold inputs,
    /// over rows the query makes nothing bounds it; over a table's values it stays the data's.
    static func product(_ a: ValueSize, _ b: ValueSize) -> ValueSize {
        var result = ValueSize(bytes: a.bytes * b.bytes, made: a.made || b.made)
        for (key, count) in a.copies where b.bytes > 0 { result.copies[key, default: 0] += count * b.bytes }
        for (key, count) in b.copies where a.bytes > 0 { result.copies[key, default: 0] += count * a.bytes }
        if !a.copies.isEmpty, !b.copies.isEmpty {
            if result.made { return .unbounded }
            result.add(ValueSize(copies: a.copies))
            result.add(ValueSize(copies: b.copies))
        }
        return result
    }

    mutating func copyBuiltin(_ name: String, _ arguments: [ValueSize], _ cursors: [ParseTreeCursor], ordered: [ValueSize],
                              variadic: Bool = false, window: Bool = false, site: Int, within range: Range<Int>) throws -> ValueSize {
        let all = ValueSize.sum(arguments)
        func argument(_ index: Int) -> ValueSize { index < arguments.count ? arguments[index] : ValueSize() }
        if name.hasPrefix("jsonb_path_query") {
            // Each item once per subscript of its path's lists (`$[0,0]`): a table's json copied
            // 256 times a row took 1.1 GB over 2,000 rows in jsonb_agg (eleventh round).
            let fanOut = cursors.count >= 2 ? constantValue(cursors[1])?.string.map { JSONPathShape($0).fanOut } : nil
            guard let fanOut else { return copyUnknown(all, site: site) }
            var result = argument(0).scaled(fanOut)
            for other in arguments.dropFirst() { result.add(other) }
            return result.with(form: .jsonb)
        }
        if name == "round" || name == "trunc", cursors.count >= 2 {
            // numeric's text to that many places: round(1::numeric, 16383) is 16,385 characters
            // (eleventh round), which a number's few bytes would not count.
            var rounded = ValueSize.sized(site: site)
            rounded.bytes = min(upperBound(cursors[1]) ?? .infinity, Self.mostNumericScale)
            return rounded
        }
        if Self.copyFixedFunctions.contains(name) || name.hasPrefix("has_") { return .sized(site: site) }
        if Self.copyAdditiveFunctions.contains(name) {
            return all.with(form: arguments.contains { $0.form.isText } ? .text : (arguments.first?.form ?? .other))
        }
        if Self.copyChoosingFunctions.contains(name) { return ValueSize.either(arguments.isEmpty ? ordered : arguments) }
        if Self.accumulatingAggregates.contains(name) {
            var row = ValueSize.sum(arguments)
            var form = ValueForm.other
            if name.hasPrefix("json_") {
                row = ValueSize.sum(arguments.map(Self.jsonEscaped))
                form = .json
            } else if name.hasPrefix("jsonb_") {
                row = ValueSize.sum(arguments.map(Self.jsonbStored))
                form = .jsonb
            } else if name == "string_agg" {
                form = .text
            }
            return try copyAccumulated(row, site: site, window: window).with(form: form)
        }
        if let (factor, form) = Self.copyScalingFunctions[name] {
            var result = argument(0).scaled(factor)
            for other in arguments.dropFirst() { result.add(other) }
            let grown = result.with(form: form)
            try copyAllocate(grown, over: all.bytes, within: range)
            return grown
        }
        if Self.jsonBuilders.contains(name) || Self.jsonbBuilders.contains(name) {
            let json = Self.jsonBuilders.contains(name)
            let result = ValueSize.sum(arguments.map(json ? Self.jsonEscaped : Self.jsonbStored)).with(form: json ? .json : .jsonb)
            try copyAllocate(result, over: all.bytes, within: range)
            return result
        }
        switch name {
        case "concat_ws" where variadic:
            // concat_ws(sep, VARIADIC array) puts the separator between every element, as
            // array_to_string does (a 1 KB separator over a million elements made 1 GB, ninth red team).
            var separator = argument(0)
            separator.bytes += 1
            var result = Self.product(argument(1), separator)
            result.form = .text
            try copyAllocate(result, over: all.bytes, within: range)
            return result
        case "concat_ws":
            var result = argument(0).scaled(Double(max(0, arguments.count - 2)))
            for other in arguments.dropFirst() { result.add(other) }
            return result.with(form: .text)
        case "repeat":
            guard cursors.count == 2, let count = upperBound(cursors[1]) else { return .unbounded }
            return argument(0).scaled(max(0, count)).with(form: .text)
        case "lpad", "rpad":
            guard cursors.count >= 2, let length = upperBound(cursors[1]) else { return .unbounded }
            var result = ValueSize.fixed(max(0, length) * ConstantExpression.maxBytesPerCharacter).with(form: .text)
            result.made = all.made
            return result
        case "ts_rewrite" where arguments.count == 3:
            // Every node of the query may become the substitute (checkArgumentLimits).
            var query = argument(0)
            query.bytes += 1
            var substitute = argument(2)
            if substitute.bytes < 1 { substitute.bytes = 1 }
            return Self.product(query, substitute).with(form: .other)
        case "ts_headline" where arguments.count >= 3:
            // Every word of the document may be wrapped in the options' markers (checkArgumentLimits,
            // which also counts the bytes, as for replace).
            var document = ValueSize.either([argument(0), argument(1)])
            document.bytes += 1
            var options = headlineOptionsAreLast(cursors) ? argument(arguments.count - 1) : ValueSize.fixed(Self.defaultHeadlineMarkers)
            if options.bytes < 1 { options.bytes = 1 }
            return Self.product(document, options).with(form: .text)
        case "replace", "regexp_replace":
            var source = argument(0)
            source.bytes += 1
            var replacement = argument(2)
            if replacement.bytes < 1 { replacement.bytes = 1 }
            var result = Self.product(source, replacement)
            result.form = .text
            return result
        case "array_to_string":
            var separators = argument(1)
            separators.add(argument(2))
            separators.bytes += 1
            var result = Self.product(argument(0), separators)
            result.form = .text
            try copyAllocate(result, over: all.bytes, within: range)
            return result
        case "array_fill":
            guard cursors.count >= 2, let dimensions = constantValue(cursors[1])?.numbers else { return .unbounded }
            let elements = max(1, dimensions.reduce(1.0) { $0 * max($1, 0) })
            // Numbers: their own limit (max_generated_rows) bounds the elements, 8 bytes each.
            guard argument(0).form.isText || !argument(0).copies.isEmpty else { return .sized(site: site) }
            return argument(0).scaled(elements).with(form: .other)
        case "to_char":
            var result = argument(1).scaled(8)
            result.add(.sized(site: site))
            // Digits, names and the format's own text: no control character the format lacks.
            return result.with(form: argument(1).form == .escapedText ? .escapedText : .text)
        case "encode":
            let format = cursors.count >= 2 ? constantValue(cursors[1])?.string?.lowercased() : nil
            let factor: Double = switch format {
            case "hex": 2
            case "base64": 1.4
            default: 4
            }
            var result = argument(0).scaled(factor)
            result.bytes += 2
            result.form = .text
            try copyAllocate(result, over: all.bytes, within: range)
            return result
        case "quote_literal", "quote_nullable", "quote_ident":
            var result = argument(0).scaled(2)
            result.bytes += 4
            result.form = .text
            try copyAllocate(result, over: all.bytes, within: range)
            return result
        case "format":
            guard let first = cursors.first else { return ValueSize() }
            let values = ValueSize.either(Array(arguments.dropFirst()))
            guard let format = constantValue(first)?.string else {
                // A format from a column: each conversion takes at least two of its bytes.
                var result = Self.product(argument(0), values)
                result.add(argument(0))
                return result.with(form: .text)
            }
            var (widest, _, conversions) = Self.formatShape(format)
            // A width `%*s` takes from an argument pads as one written in the format (a million
            // rows of `format('%*s', 400, 'x')` took 784 MB in string_agg; eleventh round).
            for index in Self.formatWidthArguments(format) where index < cursors.count {
                widest = max(widest, upperBound(cursors[index]).map(abs) ?? Double(shared.policy.maxFunctionResultBytes))
            }
            // %I and %L quote (each byte may become two).
            let quoting: Double = format.contains("I") || format.contains("L") ? 2 : 1
            var result = values.scaled(Double(conversions) * quoting)
            result.bytes += Double(format.utf8.count) + Double(conversions) * widest * ConstantExpression.maxBytesPerCharacter
            return result.with(form: .text)
        case "mode", "percentile_disc":
            // One of the ordered values a fraction; an array of fractions (8 bytes and more each) makes an array of them.
            let fractions = max(1, argument(0).bytes / 8)
            return ValueSize.either(ordered).scaled(fractions)
        case "jsonb_pretty":
            // A line and its indentation per item: at most twice the value, while it nests only as
            // deep as the data or a short text (`checkArgumentLimits` bounds the square of the
            // depth the text can make). Counted as unknown, `jsonb_pretty(to_jsonb(t))` over a
            // subquery's rows was refused. Of the text's own bytes, the square: every line of a json
            // the text nests is indented by its depth (a 100-deep array of 403 bytes is 40,401; 20,000
            // of them in string_agg took 1.5 GB, eleventh round).
            let text = argument(0).bytes
            var pretty = argument(0).scaled(2)
            pretty.bytes = max(pretty.bytes, 2 * text * text + text)
            return pretty.with(form: .text)
        default:
            // Any function Palisade does not know the size of.
            return copyUnknown(all, site: site)
        }
    }
}

extension Analyzer {
    /// What all the query's column references may stand for together, in multiples of the
    /// policy's max_function_result_bytes: 16 MiB at the default, so that a constant of a few KB
    /// read in many places stays admitted, while 2,500 references to a 1 MB subquery column (2.4 GB
    /// of planner copies from 30 KB of text) or 400 output columns of one 1 MB WITH value (782 MB,
    /// built as one row) do not (eighteenth red team, second pass).
    static let maxReferencedBytesMultiple = 16.0

    /// Adds what a column reference stands for to what all of them stand for together.
    mutating func referenced(_ column: ValueSize) throws {
        for (input, count) in column.copies where input.hasPrefix("$") || input == "…" {
            copies.referencedParameters[input, default: 0] += count
        }
        try addReferenced(column.bytes)
    }

    /// A condition (WHERE, HAVING, a join's ON) over rows made of `arms` set operations' arms: the
    /// planner pushes a copy into each arm, with its constants, the values its columns stand for and
    /// its parameters (900 arms of a 1 MB `repeat(…)` constant took 997 MB from 40 KB of text,
    /// eighteenth red team, fourth pass). A call that allocates counts as the policy's limit.
    mutating func copyQual(_ cursor: inout ParseTreeCursor, arms: Double) throws {
        let start = cursor.offset
        let bytesBefore = copies.referencedBytes
        let parametersBefore = copies.referencedParameters
        _ = try copyChildren(&cursor)
        guard arms > 1 else { return }
        let range = start..<cursor.offset
        let node = UnsafeBufferPointer(rebasing: tree[range])
        var bytes = copies.referencedBytes - bytesBefore + literalBytes(range)
        if callsAllocatingFunction(node) { bytes += Double(shared.policy.maxFunctionResultBytes) }
        var parameters: [String: Double] = [:]
        for (input, count) in copies.referencedParameters where count > parametersBefore[input] ?? 0 {
            parameters[input] = count - (parametersBefore[input] ?? 0)
        }
        for number in Self.parameterNumbers(in: node) {
            parameters[number == Self.unknownParameter ? "…" : "$\(number)", default: 0] += 1
        }
        for (input, count) in parameters { copies.referencedParameters[input, default: 0] += count * (arms - 1) }
        try addReferenced(bytes * (arms - 1))
    }

    private mutating func addReferenced(_ bytes: Double) throws {
        guard bytes > 0, bytes.isFinite else { return }
        copies.referencedBytes += bytes
        let limit = Double(shared.policy.maxFunctionResultBytes) * Self.maxReferencedBytesMultiple
        guard copies.referencedBytes > limit else { return }
        throw Denial(rule: .argumentLimit,
                     message: "the query's column references, and its conditions over set operations' arms, stand for \(Self.describe(copies.referencedBytes)) bytes of its text's making together (the planner copies a subquery's value into every place its column is read and a condition into every arm, and a row is built whole), over this policy's limit of \(Self.describe(limit)) bytes (16 × max_function_result_bytes)",
                     hint: "Read a large value the query builds in fewer places (or over fewer UNION arms), or build it once in the client.",
                     offset: nil, statementType: analysis.statementType)
    }
}
