/// What a regular expression's pattern is made of, read in the order PostgreSQL joins it: the
/// text's own constants, with `255` where a column or a parameter lies between them, and whether
/// a column does.
struct PatternPieces {
    var constants = ""
    var readsColumn = false
}

/// A pattern built through something whose output Palisade cannot follow from its input:
/// `reverse` and `translate` reorder and rewrite, `->>` of a constant unescapes JSON,
/// `current_query()` returns the text itself.
private struct UnsizablePattern: Error {}

extension Analyzer {
    /// A pattern the text states, or builds from its constants, may weigh at most
    /// `RegexSize.maxCopies` once compiled (`RegexSize.weight`). A built pattern is followed
    /// through what keeps its pieces in order (`||`, `concat`, casts to text, a choice among them,
    /// a subquery's one column) and through the calls `readTransformed` works out; anything else
    /// that a constant feeds is refused, as is a column where the query's own rows may carry its
    /// text. A whole pattern of a parameter, or of a table's column, is the client's or the data's.
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
        var pieces = PatternPieces()
        var cursor = argument
        do {
            try readPattern(&cursor, level: 0, castTo: castTo, into: &pieces)
        } catch is UnsizablePattern {
            throw Denial(rule: .argumentLimit,
                         message: "this \(what) is built from the query's constants through a function or operator Palisade does not follow (repeat, format, reverse, translate, ->> of a constant, a cast to another type, …), so it cannot size what PostgreSQL compiles",
                         hint: "Write the pattern out as one constant, or pass it as a parameter.", offset: offset, statementType: analysis.statementType)
        }
        // A column is a jsonpath only where the query casts something to one (`@@` also matches a
        // tsquery, `websearch_to_tsquery(…) q` in FROM).
        if pieces.readsColumn, madeRowsCarryTheTextsValues, castTo.map({ namesType("\($0)") }) ?? true {
            // `'a' ~ p FROM (SELECT '(\w{1,200}){1,199}' AS p) s` compiles the subquery's constant.
            throw Denial(rule: .argumentLimit,
                         message: "this \(what) reads a column, and the query makes rows of its own (a subquery, WITH query, VALUES list or function in FROM) whose columns may carry any pattern its text builds, so Palisade cannot size what PostgreSQL compiles",
                         hint: "Write the pattern out as one constant, pass it as a parameter, or read it from a table directly.", offset: offset, statementType: analysis.statementType)
        }
        return pieces
    }

    /// Whether a row source the query makes may carry a value of its text into a column: unless
    /// it only passes columns on. A subquery or WITH query whose select list holds anything but
    /// columns (a constant, a parameter, a call: `row_to_json(s)` makes keys of its aliases,
    /// `current_query()` its text), any VALUES list, a function in FROM given anything but a
    /// table's columns (`generate_series(1, 255)` makes the digits of a repetition), a table
    /// function. `WITH rules AS (SELECT id, pattern FROM alert_rules WHERE enabled)` and
    /// `unnest(p.tags)` pass their table's columns on, which are the data's.
    private var madeRowsCarryTheTextsValues: Bool {
        mutating get {
            if let known = madeRowsCarryCache { return known }
            let carries = madeRowsCarry()
            madeRowsCarryCache = carries
            return carries
        }
    }

    /// Whether the tree names the type `name` anywhere (a cast to it), asked once per query.
    private mutating func namesType(_ name: String) -> Bool {
        if let known = treeNamesTypeCache[name] { return known }
        let names = tree.contains("{\"String\":{\"sval\":\"\(name)\"}}")
        treeNamesTypeCache[name] = names
        return names
    }

    private mutating func madeRowsCarry() -> Bool {
        // The session's own texts, the comment of this one included, are rows of these views
        // (32 patterns read from pg_cursors.statement held 685 MB, eighteenth red team, second pass).
        if tree.contains("\"relname\":\"pg_cursors\"") || tree.contains("\"relname\":\"pg_prepared_statements\"") { return true }
        guard queryMakesRows else { return false }
        for source in madeRowSources() {
            guard let source else { return true }
            let node = UnsafeBufferPointer(rebasing: tree[source])
            if node.starts(with: "{\"RangeTableFunc\":".utf8) || node.contains("\"valuesLists\":") { return true }
            if node.starts(with: "{\"RangeFunction\":".utf8) {
                guard Self.onlyColumns(node, qualified: true) else { return true }
                continue
            }
            var carries = false
            node.forEachOccurrence(of: "\"targetList\":") { offset in
                guard !carries else { return }
                var probe = ParseTreeCursor(node)
                probe.offset = offset + "\"targetList\":".utf8.count
                let start = probe.offset
                guard (try? probe.skipValue()) != nil else { carries = true; return }
                carries = !Self.onlyColumns(UnsafeBufferPointer(rebasing: node[start..<probe.offset]), qualified: false)
            }
            if carries { return true }
        }
        return false
    }

    /// Whether every node in `node` is a column reference or what lists and names them (a select
    /// list's entries, casts of columns), and (`qualified`) every column is named with its table's
    /// name: a one-name reference may be a whole row of rows the query makes.
    private static func onlyColumns(_ node: UnsafeBufferPointer<UInt8>, qualified: Bool) -> Bool {
        var only = true
        node.forEachOccurrence(of: "{\"") { offset in
            guard only, offset + 2 < node.count, node[offset + 2] >= UInt8(ascii: "A"), node[offset + 2] <= UInt8(ascii: "Z") else { return }
            let rest = UnsafeBufferPointer(rebasing: node[(offset + 2)...])
            let allowed: [String] = ["String\"", "ColumnRef\"", "ResTarget\"", "A_Star\"", "TypeCast\"", "RangeFunction\"", "FuncCall\"", "List\""]
            guard let type = allowed.first(where: { rest.starts(with: $0.utf8) }) else { only = false; return }
            // A call only as the function of a RangeFunction over a table's columns (`unnest(p.tags)`).
            if type == "FuncCall\"" { only = qualified }
            if type == "ColumnRef\"", qualified {
                // `s` and `s.*` are whole rows: `to_jsonb(s.*)` makes keys of the query's aliases.
                var probe = ParseTreeCursor(node)
                probe.offset = offset
                let fields = (try? Analyzer.columnFields(&probe)) ?? []
                only = fields.count >= 2 && !fields.contains(nil)
            }
        }
        return only
    }

    /// What stands for a column's or a parameter's text between the constants: the largest bound a
    /// repetition takes, so that `'(\w{1,200}){1,' || id || '}'` is sized with the count a column
    /// of numbers may put there (seventeenth red team); elsewhere it is three characters.
    private static let gap = "255"

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
            pieces.constants += Self.gap
            return
        case "ParamRef":
            pieces.constants += Self.gap
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
            var kind = ""
            var symbol = ""
            try reader.forEachKey { reader, key in
                switch key {
                case "kind": kind = try reader.string()
                case "name": symbol = try Analyzer.stringList(&reader).last ?? ""
                case "lexpr", "rexpr":
                    children.append(reader)
                    try reader.skipValue()
                default: try reader.skipValue()
                }
            }
            if kind == "AEXPR_NULLIF", children.count == 2 {
                // NULLIF(a, b) is a or NULL.
                children.removeLast()
            } else if kind == "AEXPR_OP", ["->>", "#>>"].contains(symbol), children.count == 2, var document = children.first {
                // A json value of the data (`r.config ->> 'regex'`): the key picks, it adds nothing.
                let start = document.offset
                try document.skipValue()
                let value = UnsafeBufferPointer(rebasing: tree[start..<document.offset])
                guard !value.contains("{\"A_Const\":"), !value.contains("{\"ParamRef\":") else { throw UnsizablePattern() }
                return try readOpaque(value, into: &pieces)
            } else if kind != "AEXPR_OP" || symbol != "||" || children.count != 2 {
                return try readOpaque(node, into: &pieces)
            }
        case "FuncCall":
            var joins = false
            var similar = false
            var plain = true
            var function = ""
            try reader.forEachKey { reader, key in
                switch key {
                case "funcname":
                    // A built-in's name, alone or in pg_catalog; any other schema's is opaque.
                    let names = try Analyzer.stringList(&reader)
                    let builtin = names.count == 1 || (names.count == 2 && names[0] == "pg_catalog") ? names.last ?? "" : ""
                    joins = builtin == "concat" || builtin == "textcat"
                    similar = builtin == "similar_to_escape" || builtin == "similar_escape"
                    if ["chr", "lower", "upper", "replace", "string_agg"].contains(builtin) { function = builtin }
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
            if plain, !function.isEmpty {
                return try readTransformed(function, arguments: children, level: level, into: &pieces)
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
                // A scalar subquery's value, or ARRAY(SELECT …)'s elements (`~ ANY (ARRAY(…))`).
                case "subLinkType": scalar = ["EXPR_SUBLINK", "ARRAY_SUBLINK"].contains(try reader.string())
                case "subselect":
                    select = reader
                    try reader.skipValue()
                default: try reader.skipValue()
                }
            }
            guard scalar, let select else { return try readOpaque(node, into: &pieces) }
            children.append(select)
        case "SelectStmt":
            // A subquery's one column (a scalar subquery's, or each row's of `~ ANY (SELECT …)`).
            var select = nodeCursor
            try select.expect(UInt8(ascii: "{"))
            _ = try select.nextKey()
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

    /// Calls whose output Palisade follows: `chr(n)` is one character, `lower` and `upper` change the
    /// case of their argument's constants (`upper('\w')` is `\W`, which weighs every color), and
    /// `replace(column, 'x', 'y')` puts a literal `y` in the data's text (`replace(domain, '.', '\.')`).
    private mutating func readTransformed(_ function: String, arguments: [ParseTreeCursor], level: Int, into pieces: inout PatternPieces) throws {
        switch function {
        case "chr":
            guard arguments.count == 1, let code = constantValue(arguments[0])?.number, code >= 1, code < 0x110000,
                  let scalar = Unicode.Scalar(UInt32(code)) else { throw UnsizablePattern() }
            pieces.constants.unicodeScalars.append(scalar)
        case "lower", "upper":
            guard arguments.count == 1, var argument = arguments.first else { throw UnsizablePattern() }
            var inner = PatternPieces()
            try readPattern(&argument, level: level + 1, into: &inner)
            pieces.readsColumn = pieces.readsColumn || inner.readsColumn
            pieces.constants += function == "lower" ? inner.constants.lowercased() : inner.constants.uppercased()
        default:
            // replace(text, from, to) and string_agg(text, delimiter): the data's text with a literal
            // put in (`string_agg(word, '|')`); a constant text is refused.
            let literal = function == "replace" ? 2 : 1
            guard arguments.count == literal + 1, var text = arguments.first, let replacement = constantValue(arguments[literal])?.string,
                  function != "replace" || constantValue(arguments[1])?.string != nil,
                  !replacement.unicodeScalars.contains(where: { "{}()[]*+?".unicodeScalars.contains($0) })
            else { throw UnsizablePattern() }
            let start = text.offset
            try text.skipValue()
            let value = UnsafeBufferPointer(rebasing: tree[start..<text.offset])
            guard !value.contains("{\"A_Const\":"), !value.contains("{\"ParamRef\":") else { throw UnsizablePattern() }
            try readOpaque(value, into: &pieces)
            pieces.constants += replacement
        }
    }

    /// A node whose text the pattern cannot be followed through: the data's where no constant of
    /// the query feeds it (`lower(name)`, `now()::text`), otherwise not to be sized.
    private func readOpaque(_ node: UnsafeBufferPointer<UInt8>, into pieces: inout PatternPieces) throws {
        if node.contains("{\"A_Const\":") { throw UnsizablePattern() }
        // A row made json has its columns' names as keys, and the query names them: an alias is text
        // of the query (`json_object_keys(row_to_json(s))`, seventeenth red team, third pass).
        for rowToJSON in ["row_to_json", "to_json", "to_jsonb", "json_agg", "jsonb_agg", "array_to_json", "hstore"]
        where node.contains("{\"String\":{\"sval\":\"\(rowToJSON)\"}}") {
            throw UnsizablePattern()
        }
        // Every call in it must read the data or a parameter itself: one column beside a call that
        // reads neither made the whole node the data's (`concat_ws(name, current_query())`, eighteenth
        // red team: 32 of them held 582 MB of a backend).
        try node.forEachOccurrence(of: "{\"FuncCall\":") { offset in
            var probe = ParseTreeCursor(node)
            probe.offset = offset
            guard (try? probe.skipValue()) != nil else { throw UnsizablePattern() }
            let call = UnsafeBufferPointer(rebasing: node[offset..<probe.offset])
            guard call.contains("{\"ColumnRef\":") || call.contains("{\"ParamRef\":") || call.contains("\"agg_star\":true"),
                  !call.contains("{\"String\":{\"sval\":\"current_query\"}}") else { throw UnsizablePattern() }
        }
        if node.contains("{\"ColumnRef\":") || node.contains("\"agg_star\":true") {
            pieces.readsColumn = true
        } else if !node.contains("{\"ParamRef\":"), !node.starts(with: "{\"SQLValueFunction\":".utf8) {
            // A call that reads neither the data nor a parameter makes its text from the session or
            // the query: `current_query()` is the text itself, comment and all (seventeenth red team,
            // third pass: 32 of them held 904 MB of a backend).
            throw UnsizablePattern()
        }
        pieces.constants += Self.gap
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
            case "names": names = try Analyzer.stringList(&reader)
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
