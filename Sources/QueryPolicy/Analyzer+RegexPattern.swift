/// What a regular expression's pattern is made of, read in the order PostgreSQL joins it: the
/// text's own constants, and whether a column or a parameter lies between them.
struct PatternPieces {
    var constants = ""
    var readsColumn = false
}

/// A pattern built through something whose output Palisade cannot follow from its input: `chr(123)`
/// makes a `{` of a number, `reverse` and `translate` reorder and rewrite, `->>` unescapes JSON.
private struct UnsizablePattern: Error {}

extension Analyzer {
    /// A pattern the text states, or builds from its constants, may weigh at most
    /// `RegexSize.maxCopies` once compiled (`RegexSize.weight`). A built pattern may only join
    /// its pieces (`||`, `concat`, casts to text, a choice among them: COALESCE, CASE, GREATEST, a
    /// scalar subquery's one column), so that its constants in order are the pattern, or bound it
    /// where a column lies between them; anything else that a constant feeds is refused, as is a
    /// column of rows the query makes. A pattern of a parameter, or of a table's column, is the
    /// client's or the data's.
    mutating func checkRegexPattern(_ argument: ParseTreeCursor, offset: Int?) throws {
        if let constant = constantValue(argument)?.string { return try checkRegexWeight(constant, offset: offset) }
        let pieces = try patternPieces(argument, of: "regular expression", offset: offset)
        if !pieces.constants.isEmpty { try checkRegexWeight(pieces.constants, offset: offset) }
    }

    /// The like_regex patterns of a jsonpath, sized as `checkRegexPattern` sizes a pattern.
    mutating func checkJSONPathPatterns(_ path: ParseTreeCursor, offset: Int?) throws {
        let text: String
        if let constant = constantValue(path)?.string {
            text = constant
        } else {
            text = try patternPieces(path, of: "jsonpath", offset: offset, castTo: "jsonpath").constants
        }
        guard text.contains("like_regex") else { return }
        for pattern in RegexSize.likeRegexPatterns(inJSONPath: text) { try checkRegexWeight(pattern, offset: offset) }
    }

    func checkRegexWeight(_ pattern: String, offset: Int?) throws {
        let weight = RegexSize.weight(pattern)
        guard weight > RegexSize.maxCopies else { return }
        throw Denial(rule: .argumentLimit,
                     message: "this regular expression weighs \(Self.describe(weight)) once PostgreSQL compiles it, over the limit of \(Int(RegexSize.maxCopies)): a bounded repetition {m,n} is n copies of what it repeats, nested ones the product, each the heavier for every set of characters its parts match (a bracket expression its members, a negated one or . every set the pattern tells apart), and the server keeps 32 compiled patterns a session (32 of (\\w{1,200}){1,199} held 208 MB)",
                     hint: "Bound repetitions less tightly ({1,200} inside {1,199} is 39,800 copies; use + or * where the length does not matter), or check lengths with length() instead.",
                     offset: offset, statementType: analysis.statementType)
    }

    /// The pieces of a pattern the query builds (`what`: how the message names it). `castTo` is a
    /// type the whole argument may be cast to as written (a jsonpath's `'…'::jsonpath`).
    private mutating func patternPieces(_ argument: ParseTreeCursor, of what: String, offset: Int?, castTo: StaticString? = nil) throws -> PatternPieces {
        var probe = argument
        let start = probe.offset
        try probe.skipValue()
        if Self.callsAllocatingFunction(UnsafeBufferPointer(rebasing: tree[start..<probe.offset])) {
            throw Denial(rule: .argumentLimit,
                         message: "this \(what) is built by a call that may repeat its parts (repeat, lpad, format, replace, …), so Palisade cannot size what PostgreSQL compiles",
                         hint: "Write the pattern out as one constant, or pass it as a parameter.", offset: offset, statementType: analysis.statementType)
        }
        var pieces = PatternPieces()
        var cursor = argument
        do {
            try readPattern(&cursor, level: 0, castTo: castTo, into: &pieces)
        } catch is UnsizablePattern {
            // `'(\w{1,200}){1,' || 199 || '}'` joins a number's digits; `chr(123)` makes a `{`.
            throw Denial(rule: .argumentLimit,
                         message: "this \(what) is built from the query's constants through a function or operator other than || and concat (chr, reverse, translate, ->>, a cast to another type, …), so Palisade cannot size what PostgreSQL compiles",
                         hint: "Write the pattern out as one constant, or pass it as a parameter.", offset: offset, statementType: analysis.statementType)
        }
        // A column is a jsonpath only where the query casts something to one (`@@` also matches a
        // tsquery, `websearch_to_tsquery(…) q` in FROM).
        if pieces.readsColumn, queryMakesRows, castTo == nil || tree.contains("{\"String\":{\"sval\":\"\(castTo!)\"}}") {
            // `'a' ~ p FROM (SELECT '(\w{1,200}){1,199}' AS p) s` compiles the subquery's constant.
            throw Denial(rule: .argumentLimit,
                         message: "this \(what) reads a column, and the query makes rows of its own (a subquery, WITH query, VALUES list or function in FROM) whose columns may carry any pattern its text builds, so Palisade cannot size what PostgreSQL compiles",
                         hint: "Write the pattern out as one constant, pass it as a parameter, or read it from a table directly.", offset: offset, statementType: analysis.statementType)
        }
        return pieces
    }

    /// Nested pieces deeper than this are not followed (refused when a constant feeds them).
    private static let deepestPatternLevel = 32

    /// Reads the node at `cursor` (`{"Type":{…}}`) into `pieces` and moves past it.
    private mutating func readPattern(_ cursor: inout ParseTreeCursor, level: Int, castTo: StaticString? = nil, into pieces: inout PatternPieces) throws {
        let nodeCursor = cursor
        let start = cursor.offset
        try cursor.skipValue()
        let node = UnsafeBufferPointer(rebasing: tree[start..<cursor.offset])
        var reader = nodeCursor
        try reader.expect(UInt8(ascii: "{"))
        guard level < Self.deepestPatternLevel, let type = try reader.nextKey() else { return try readOpaque(node, into: &pieces) }
        var children: [ParseTreeCursor] = []
        switch type {
        case "A_Const":
            if node.contains("\"isnull\":true") { return }
            switch constantValue(nodeCursor) {
            case .string(let text)?: pieces.constants += text
            // An integer's digits are what `||` joins; a float's text depends on its type.
            case .number(let value)? where !node.contains("\"fval\":") && abs(value) < 1e15: pieces.constants += String(Int64(value))
            default: throw UnsizablePattern()
            }
            return
        case "ColumnRef":
            pieces.readsColumn = true
            return
        case "ParamRef":
            return
        case "TypeCast":
            var keepsText = false
            try reader.forEachKey { reader, key in
                switch key {
                case "arg": children.append(reader)
                case "typeName": keepsText = Self.namesUncutText(reader, or: castTo)
                default: break
                }
                try reader.skipValue()
            }
            guard keepsText else { return try readOpaque(node, into: &pieces) }
        case "A_Expr":
            var joins = false
            try reader.forEachKey { reader, key in
                switch key {
                case "kind": joins = try reader.string() == "AEXPR_OP"
                case "name":
                    joins = joins && (reader.startsWith("[{\"String\":{\"sval\":\"||\"}}]")
                        || reader.startsWith("[{\"String\":{\"sval\":\"pg_catalog\"}},{\"String\":{\"sval\":\"||\"}}]"))
                    try reader.skipValue()
                case "lexpr", "rexpr":
                    children.append(reader)
                    try reader.skipValue()
                default: try reader.skipValue()
                }
            }
            guard joins, children.count == 2 else { return try readOpaque(node, into: &pieces) }
        case "FuncCall":
            var joins = false
            var similar = false
            var plain = true
            try reader.forEachKey { reader, key in
                switch key {
                case "funcname":
                    joins = Self.startsWithName(reader, "concat") || Self.startsWithName(reader, "textcat")
                    similar = Self.startsWithName(reader, "similar_to_escape") || Self.startsWithName(reader, "similar_escape")
                    try reader.skipValue()
                case "args": try Self.elements(of: &reader, into: &children)
                case "funcformat", "location": try reader.skipValue()
                // VARIADIC, aggregates and windows build from rows or arrays, not from their arguments in order.
                default:
                    plain = false
                    try reader.skipValue()
                }
            }
            if similar, plain, var pattern = children.first {
                // SIMILAR TO's pattern as the regex PostgreSQL translates it to: % is .* and _ is .
                var similarPieces = PatternPieces()
                try readPattern(&pattern, level: level + 1, into: &similarPieces)
                pieces.readsColumn = pieces.readsColumn || similarPieces.readsColumn
                for character in similarPieces.constants {
                    switch character {
                    case "%": pieces.constants += ".*"
                    case "_": pieces.constants += "."
                    default: pieces.constants.append(character)
                    }
                }
                return
            }
            guard joins, plain else { return try readOpaque(node, into: &pieces) }
        case "CollateClause":
            try reader.forEachKey { reader, key in
                if case "arg" = key { children.append(reader) }
                try reader.skipValue()
            }
        case "CoalesceExpr", "MinMaxExpr", "A_ArrayExpr":
            // One of its arguments, or (`~ ANY (ARRAY[…])`) each of them: all of them in order bound it.
            try reader.forEachKey { reader, key in
                if case "args" = key { try Self.elements(of: &reader, into: &children) } else if case "elements" = key {
                    try Self.elements(of: &reader, into: &children)
                } else {
                    try reader.skipValue()
                }
            }
        case "CaseExpr":
            try reader.forEachKey { reader, key in
                switch key {
                case "args":
                    var whens: [ParseTreeCursor] = []
                    try Self.elements(of: &reader, into: &whens)
                    for var when in whens {
                        try when.expect(UInt8(ascii: "{"))
                        guard case "CaseWhen"? = try when.nextKey() else { throw UnsizablePattern() }
                        try when.forEachKey { when, key in
                            if case "result" = key { children.append(when) }
                            try when.skipValue()
                        }
                    }
                case "defresult":
                    children.append(reader)
                    try reader.skipValue()
                default: try reader.skipValue()
                }
            }
        case "SubLink":
            // A scalar subquery's one column; its other clauses choose a row, they make no text.
            var scalar = false
            var select: ParseTreeCursor?
            try reader.forEachKey { reader, key in
                switch key {
                case "subLinkType": scalar = try reader.string() == "EXPR_SUBLINK"
                case "subselect":
                    select = reader
                    try reader.skipValue()
                default: try reader.skipValue()
                }
            }
            guard scalar, var select else { return try readOpaque(node, into: &pieces) }
            try select.expect(UInt8(ascii: "{"))
            guard case "SelectStmt"? = try select.nextKey() else { return try readOpaque(node, into: &pieces) }
            var targets: [ParseTreeCursor] = []
            var simple = true
            try select.forEachKey { select, key in
                switch key {
                case "targetList": try Self.elements(of: &select, into: &targets)
                case "op": simple = try select.string() == "SETOP_NONE"
                case "valuesLists", "larg", "rarg":
                    simple = false
                    try select.skipValue()
                default: try select.skipValue()
                }
            }
            guard simple, targets.count == 1, var target = targets.first else { return try readOpaque(node, into: &pieces) }
            try target.expect(UInt8(ascii: "{"))
            guard case "ResTarget"? = try target.nextKey() else { return try readOpaque(node, into: &pieces) }
            try target.forEachKey { target, key in
                if case "val" = key { children.append(target) }
                try target.skipValue()
            }
        default:
            return try readOpaque(node, into: &pieces)
        }
        for var child in children { try readPattern(&child, level: level + 1, into: &pieces) }
    }

    /// A node whose text the pattern cannot be followed through: the data's where no constant of
    /// the query feeds it (`lower(name)`, `now()::text`), otherwise not to be sized.
    private func readOpaque(_ node: UnsafeBufferPointer<UInt8>, into pieces: inout PatternPieces) throws {
        if node.contains("{\"A_Const\":") { throw UnsizablePattern() }
        if node.contains("{\"ColumnRef\":") || node.contains("\"agg_star\":true") { pieces.readsColumn = true }
    }

    /// Whether a function name list (`[{"String":{"sval":…}},…]`) is `name` or `pg_catalog.name`.
    private static func startsWithName(_ reader: ParseTreeCursor, _ name: StaticString) -> Bool {
        var probe = reader
        guard (try? probe.expect(UInt8(ascii: "["))) != nil else { return false }
        var names: [String] = []
        while (try? probe.nextElement()) == true {
            var element = probe
            guard (try? element.expect(UInt8(ascii: "{"))) != nil, case "String"?? = try? element.nextKey(),
                  (try? element.forEachKey({ element, _ in names.append(try element.string()) })) != nil,
                  (try? probe.skipValue()) != nil
            else { return false }
        }
        return names.last == "\(name)" && (names.count == 1 || (names.count == 2 && names[0] == "pg_catalog"))
    }

    private static func elements(of reader: inout ParseTreeCursor, into list: inout [ParseTreeCursor]) throws {
        try reader.expect(UInt8(ascii: "["))
        while try reader.nextElement() {
            list.append(reader)
            try reader.skipValue()
        }
    }

    /// Whether a cast's type name (`{"names":[…],…}`) keeps a text as it is: text or varchar with no
    /// length, not an array; or `other`, the type the whole argument is cast to as written.
    private static func namesUncutText(_ typeName: ParseTreeCursor, or other: StaticString?) -> Bool {
        var reader = typeName
        var names: [String] = []
        var plain = true
        let read: ()? = try? reader.forEachKey { reader, key in
            switch key {
            case "names":
                try reader.expect(UInt8(ascii: "["))
                while try reader.nextElement() {
                    try reader.expect(UInt8(ascii: "{"))
                    guard case "String"? = try reader.nextKey() else { throw ParseTreeCursor.Malformed() }
                    try reader.forEachKey { reader, _ in names.append(try reader.string()) }
                    guard try reader.nextKey() == nil else { throw ParseTreeCursor.Malformed() }
                }
            case "typemod", "location": try reader.skipValue()
            default:
                plain = false
                try reader.skipValue()
            }
        }
        guard read != nil, plain, let last = names.last, names.count == 1 || (names.count == 2 && names[0] == "pg_catalog") else { return false }
        return last == "text" || last == "varchar" || other.map { last == "\($0)" } == true
    }
}
