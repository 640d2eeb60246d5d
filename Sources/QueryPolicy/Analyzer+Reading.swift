/// Reading helpers over the parse tree cursor.
extension Analyzer {
    /// Stack one nesting level of the walk may take (measured: about 3 KiB in debug builds, 1 KiB optimized).
    static let stackBytesPerLevel = 4096

    mutating func enter() throws {
        depth += 1
        guard depth <= shared.policy.maxNestingDepth else {
            throw Denial(rule: .tooDeep,
                         message: "the query nests deeper than this policy's limit of \(shared.policy.maxNestingDepth) levels",
                         hint: "Flatten the query: use WITH (CTEs) or joins instead of deeply nested expressions and subqueries.",
                         offset: nil, statementType: analysis.statementType)
        }
    }

    mutating func leave() { depth -= 1 }

    /// Reads an object's fields, handing each key to `body` with the cursor on its value.
    mutating func object(_ body: (inout Analyzer, Bytes) throws -> Void) throws {
        try cursor.expect(UInt8(ascii: "{"))
        while let key = try cursor.nextKey() { try body(&self, key) }
    }

    /// Reads a wrapped node `{"Type":{…}}`, handing its type to `body` with the cursor on the body.
    mutating func wrapped(_ body: (inout Analyzer, Bytes) throws -> Void) throws {
        try cursor.expect(UInt8(ascii: "{"))
        guard let type = try cursor.nextKey() else { return }
        try body(&self, type)
        guard try cursor.nextKey() == nil else { throw ParseTreeCursor.Malformed() }
    }

    mutating func list(_ element: (inout Analyzer) throws -> Void) throws {
        try cursor.expect(UInt8(ascii: "["))
        while try cursor.nextElement() { try element(&self) }
    }

    /// A list of `String` nodes: a qualified name, operator name or column list.
    mutating func nameList() throws -> [String] {
        var names: [String] = []
        try forEachName { names.append($0) }
        return names
    }

    /// Reads a list of String nodes (a qualified name), handing each name to `body`.
    mutating func forEachName(_ body: (String) throws -> Void) throws {
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

    mutating func skipNameList() throws { try forEachName { _ in } }

    /// The name of a list of one String node, `[{"String":{"sval":"…"}}]` (a bare column, an
    /// unqualified operator), read in one step as raw bytes (see `ParseTreeCursor.decoded`);
    /// nil, without moving, for any other list.
    mutating func soleName() throws -> (bytes: Bytes, escaped: Bool)? {
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
    mutating func columnNameFields() throws {
        if let name = try soleName() {
            // A bare column name has nothing else to check.
            // Every such system column's name has four letters: others are not decoded.
            if shared.policy.hidesStatistics, !name.escaped, name.bytes.count == 4 {
                try checkSystemColumn(String(decoding: UnsafeBufferPointer(start: name.bytes.start, count: 4), as: UTF8.self))
            }
            return
        }
        var index = 0
        // The name before the current one: the relation whose whole row `x.f` would hand to f.
        var qualifier: ParseTreeCursor?
        var last: ParseTreeCursor?
        try list { analyzer in
            try analyzer.wrapped { analyzer, type in
                switch type {
                case "String":
                    let name = analyzer.cursor
                    if index > 0 { try analyzer.fieldName(object: .value, qualifier: qualifier) } else { try analyzer.cursor.skipValue() }
                    qualifier = name
                    last = name
                case "A_Star":
                    try analyzer.cursor.skipValue()
                    last = nil
                default: throw analyzer.unsupportedNode(type)
                }
            }
            index += 1
        }
        if shared.policy.hidesStatistics, var last {
            var name = ""
            try last.forEachKey { cursor, _ in name = try cursor.string() }
            try checkSystemColumn(name)
        }
    }

    /// System columns that show what row-level security hides. `ctid` is a row's place in the heap:
    /// a tenant's own rows then give the table's page count and, by the gaps between them, how many
    /// rows of other tenants lie in between. `xmin` and `xmax` are the ids of the transactions that
    /// wrote and locked a row, a count of every tenant's writes; `cmin`/`cmax` come with them.
    static let revealingSystemColumns: Set<String> = ["ctid", "xmin", "xmax", "cmin", "cmax"]

    func checkSystemColumn(_ name: String) throws {
        guard Self.revealingSystemColumns.contains(name) else { return }
        throw Denial(rule: .statistics,
                     message: "the system column \(name) is not allowed with this profile: it shows how other tenants' rows are stored or written",
                     hint: "Select the table's own columns; use a key column to tell rows apart.",
                     offset: remainingLocation(), statementType: analysis.statementType)
    }

    /// Field selection `(expr).name`: names are read as in a ColumnRef. The first name's object is
    /// the expression in brackets; a later name's object is a field of a composite value.
    mutating func indirectionList(firstObject: FieldObject) throws {
        var object = firstObject
        // After a name of an expression's, each object is what the previous step made:
        // `(lpad('x', 1000, 'y')).upper.array_agg` is array_agg(upper(…)).
        let madeByTheQuery: Bool = if case .value = firstObject { false } else { true }
        try list { analyzer in
            var probe = analyzer.cursor
            try probe.expect(UInt8(ascii: "{"))
            if case "String"? = try probe.nextKey() {
                try analyzer.wrapped { analyzer, _ in try analyzer.fieldName(object: object, qualifier: nil) }
            } else {
                try analyzer.expression()
            }
            object = madeByTheQuery ? .computed : .value
        }
    }

    /// What `x` is in field notation `x.name`.
    enum FieldObject {
        /// A column, a whole row or a field of a composite value: a value the query reads.
        case value
        /// The expression in `(expr).name`, at its node.
        case expression(ParseTreeCursor)
        /// What a name after `(expr)` made of it: a field or a call's result.
        case computed
    }

    /// The body of a `String` node used as a field name. PostgreSQL's ParseFuncOrColumn reads
    /// `x.name` as a column or field of x if there is one, else as the call `name(x)` if a
    /// one-argument function `name` exists (aggregates included), else as the cast `x::name` if
    /// `name` is a type (array types `_name` too). The text cannot tell a column from the others,
    /// so a name that can be a function is checked as that call, and one that can be a type as
    /// that cast.
    mutating func fieldName(object: FieldObject, qualifier: ParseTreeCursor?) throws {
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

    /// One-argument functions admitted in attribute notation on an expression, `(expr).name`: a
    /// result of a few bytes, one of its values, or at most its argument, and neither keeping rows
    /// nor making them. Field names that are also such functions (`name`, `date`, `count`) read as
    /// before.
    static let attributeCallable: Set<String> = {
        let atMostTheArgument: Set<String> = ["upper", "lower", "initcap", "btrim", "ltrim", "rtrim", "trim", "reverse"]
        let fixedCasts: Set<String> = ["name", "date", "time", "timetz", "timestamp", "timestamptz", "interval", "bool", "int2",
                                       "int4", "int8", "float4", "float8", "numeric", "uuid", "inet", "cidr", "macaddr", "money"]
        return copyFixedFunctions.union(copyChoosingFunctions).union(atMostTheArgument).union(fixedCasts)
            .subtracting(accumulatingAggregates).subtracting(PG15Catalog.setReturningFunctions)
    }()

    /// Functions that keep rows, make them or grow what they are given: on the whole row of a
    /// subquery, a WITH query or a function (`s.array_agg` is array_agg(s)) they would act on rows
    /// the query makes, uncounted (`checkAttributeCallsOnMadeRows`).
    static let functionOnlyAttributes: Set<String> = accumulatingAggregates.union(PG15Catalog.setReturningFunctions).union([
        "quote_literal", "quote_ident", "quote_nullable", "to_json", "to_jsonb", "row_to_json", "array_to_json",
        "json_build_array", "json_build_object", "jsonb_build_array", "jsonb_build_object", "json_object", "jsonb_object",
        "jsonb_pretty", "xmlcomment", "to_tsvector", "array_to_tsvector", "tsvector_to_array",
    ])

    /// `q.name` on a row source the query makes, read once the whole query is (a target list comes
    /// before its FROM clause). Only a table's alias, and no row source's the query makes, may be
    /// read so without a column of that name: an unaliased function in FROM goes by a name
    /// PostgreSQL works out (`coalesce`, a cast's type), and a name may be reused in another scope.
    func checkAttributeCallsOnMadeRows() throws {
        guard let call = attributeCalls.first(where: { call in
            guard Self.functionOnlyAttributes.contains(call.name) else { return false }
            if madeRowAliases.contains(call.qualifier) { return madeRowColumns[call.qualifier]?.contains(call.name) != true }
            return !tableAliases.contains(call.qualifier)
        }) else { return }
        throw Denial(rule: .functionNotAllowed,
                     message: "'\(call.qualifier).\(call.name)' is a call of the function \(call.name)() in attribute notation on the rows \(call.qualifier) makes, which Palisade admits only as \(call.name)(…)",
                     hint: "Write \(call.name)(\(call.qualifier)), where its rows and sizes are counted; if \(call.name) is a column of \(call.qualifier), name it otherwise there (AS …).",
                     offset: nil, statementType: analysis.statementType)
    }

    /// Checks `x.name` as the call `name(x)`; false if no one-argument function `name` is known.
    mutating func checkAttributeFunction(_ name: String, object: FieldObject, isBuiltinOneArgument: Bool) throws -> Bool {
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
        if let reason = statisticsReason(ofFunction: name) {
            throw Denial(rule: .statistics, message: "\(message), which is not allowed with this profile: \(reason.why)",
                         hint: reason.hint, offset: nil, statementType: analysis.statementType)
        }
        // The object is the argument: the per-function argument rules apply to it.
        switch name {
        case "current_setting":
            var setting: String?
            if case .expression(let argument) = object { setting = constantValue(argument)?.string }
            try checkSettingName(setting, offset: nil)
        case "xmlagg":
            if case .expression(let argument) = object { try requireXMLArgument(at: argument, of: "xmlagg") }
        default: break
        }
        // The value passes (rows, growth, copies, accumulation) read calls, not attribute notation:
        // `(lpad('x', 1000, 'y')).array_agg` kept a million rows, where array_agg(…) is counted.
        // On an expression only what those passes could not size differently is admitted. On a
        // qualified name (`o.count`, often a column) the row source decides, once it is known.
        var madeByTheQuery: Bool { if case .value = object { false } else { true } }
        if madeByTheQuery, !Self.attributeCallable.contains(name) {
            throw Denial(rule: .functionNotAllowed, message: "\(message), which Palisade admits only as \(name)(…)",
                         hint: "Write \(name)(x); if \(name) is a field of the row x, read it as to_jsonb(x)->>'\(name)'.",
                         offset: nil, statementType: analysis.statementType)
        }
        listFunction(name)
        return true
    }

    /// The `location` of the object the cursor is inside, read ahead without moving.
    func remainingLocation() -> Int? {
        var probe = cursor
        while let key = try? probe.nextKey() {
            if case "location" = key { return try? probe.integer() }
            guard (try? probe.skipValue()) != nil else { return nil }
        }
        return nil
    }

    func unsupportedNode(_ type: Bytes) -> Denial {
        Denial(rule: .unsupportedSyntax,
               message: "Palisade does not admit \(type.string) nodes here, so it cannot show the query is read-only",
               hint: "Rewrite the query with plain SELECT syntax.", offset: remainingLocation(),
               statementType: analysis.statementType)
    }

    func unsupportedField(_ key: Bytes) -> Denial {
        Denial(rule: .unsupportedSyntax,
               message: "Palisade does not admit the syntax behind '\(key.string)' here, so it cannot show the query is read-only",
               hint: "Rewrite the query with plain SELECT syntax.", offset: remainingLocation(),
               statementType: analysis.statementType)
    }
}
