import CPgQuery
/// Queries: SELECT bodies, WITH clauses and common table expressions.
extension Analyzer {
    /// A SelectStmt body. CTE names must be known before the FROM clause that may use them, and
    /// libpg_query writes `withClause` after it, so the WITH clause is read first.
    mutating func selectStatement(topLevel: Bool) throws {
        let scopeMark = visibleCTEs.count
        defer { hideCTEs(from: scopeMark) }
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
        var hashesRows = false
        var except = false
        var unboundedAfterLeft: Int?
        let unboundedBefore = unboundedRowSources
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
            case "targetList", "valuesLists":
                if case "valuesLists" = key {
                    // Its rows are the text's (10 joined to themselves six times made a million).
                    var probe = analyzer.cursor
                    var rows = 0.0
                    try probe.expect(UInt8(ascii: "["))
                    while try probe.nextElement() {
                        rows += 1
                        try probe.skipValue()
                    }
                    analyzer.analysis.textMadeRows *= max(rows, 1)
                }
                // Set operations unify their branches' targets column by column, and VALUES its rows.
                try analyzer.unifiedExpressionList()
            case "windowClause":
                try analyzer.expressionList()
            case "groupClause", "sortClause", "distinctClause":
                if case "groupClause" = key { try analyzer.checkGroupingSets() }
                // A SortBy's own node, a GROUP BY item itself or a DISTINCT ON item may be a column
                // position (a window's ORDER BY 1 is the constant).
                try analyzer.list { analyzer in
                    analyzer.integerIsColumnPosition = true
                    try analyzer.expression()
                }
            case "whereClause":
                analyzer.noteJoinableSublinks()
                try analyzer.expression()
            case "havingClause", "limitOffset", "limitCount":
                try analyzer.expression()
            case "larg", "rarg":
                try analyzer.enter()
                try analyzer.selectStatement(topLevel: false)
                analyzer.leave()
                if case "larg" = key { unboundedAfterLeft = analyzer.unboundedRowSources }
            case "groupDistinct", "all": _ = try analyzer.cursor.boolean()
            case "op":
                switch try analyzer.cursor.string() {
                case "SETOP_INTERSECT": hashesRows = true
                case "SETOP_EXCEPT": hashesRows = true; except = true
                default: break
                }
            case "limitOption": try analyzer.cursor.skipString()
            default: throw analyzer.unsupportedField(key)
            }
        }
        // A hashed EXCEPT keeps its left rows only: the right ones are looked up (a subtree's rows
        // of WITH RECURSIVE on the right are no hazard).
        let unboundedRead = (except ? unboundedAfterLeft ?? unboundedRowSources : unboundedRowSources) > unboundedBefore
        if hashesRows { noteHashedRows(readingUnboundedRows: unboundedRead) }
    }

    /// A hash table of every distinct row of its input (`checkHashedSetOperation`), whose rows may
    /// be ones the text does not bound (WITH RECURSIVE, generate_series with run-time bounds).
    mutating func noteHashedRows(readingUnboundedRows: Bool) {
        hashesSetOperationRows = true
        if readingUnboundedRows { hashesUnboundedRows = true }
    }

    mutating func withClause() throws {
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
                            if case "ctename" = key { analyzer.showCTE(try analyzer.cursor.string()) } else { try analyzer.cursor.skipValue() }
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
                        let name = try analyzer.commonTableExpression(recursive: recursive)
                        // A plain WITH makes each CTE visible to the ones after it and the main query.
                        if !recursive { analyzer.showCTE(name) }
                    }
                    analyzer.leave()
                }
            case "recursive": _ = try analyzer.cursor.boolean()
            case "location": _ = try analyzer.cursor.integer()
            default: throw analyzer.unsupportedField(key)
            }
        }
    }

    mutating func commonTableExpression(recursive: Bool) throws -> String {
        var name = ""
        var columnNames: [String] = []
        var notMaterialized = false
        try object { analyzer, key in
            switch key {
            case "ctename":
                name = try analyzer.cursor.string()
                if recursive { analyzer.recursiveQueries.insert(name) }
            case "aliascolnames": columnNames = try analyzer.nameList()
            case "ctematerialized": notMaterialized = try analyzer.cursor.string() == "CTEMaterializeNever"
            case "ctequery":
                if recursive {
                    try analyzer.checkRecursiveUnion(name)
                    try analyzer.checkRecursiveGrowth(name, columnNames: columnNames)
                }
                try analyzer.wrapped { analyzer, type in
                    guard case "SelectStmt" = type else {
                        let tag = StatementTags.tag(forNodeType: type, cursor: analyzer.cursor)
                        throw Denial(rule: .dmlInCTE,
                                     message: "WITH \(name) AS (\(tag) …) is not allowed: a data-modifying statement inside WITH runs even if the query never reads it",
                                     hint: "Every WITH query must be a SELECT; leave out INSERT, UPDATE, DELETE and MERGE.",
                                     offset: nil, statementType: analyzer.analysis.statementType)
                    }
                    analyzer.cteColumns[name] = columnNames.isEmpty ? Analyzer.outputColumnNames(of: analyzer.cursor) : Set(columnNames)
                    // Its rows count where it is read, once a reference (`cteTextMadeRows`).
                    let rowsBefore = analyzer.analysis.textMadeRows
                    analyzer.planning.beginWithQuery(name)
                    try analyzer.selectStatement(topLevel: false)
                    analyzer.planning.end()
                    analyzer.cteTextMadeRows[name] = analyzer.analysis.textMadeRows / rowsBefore
                    analyzer.analysis.textMadeRows = rowsBefore
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
        if notMaterialized { planning.markNotMaterialized(name) }
        return name
    }

    /// A recursive query joined by UNION keeps every distinct row it has made in a hash table that
    /// work_mem does not bound: one that does not end grew to 3.9 GB in 20 s on PostgreSQL 15
    /// (red team, 2026-12-06), where UNION ALL's work table stays in memory's bounds and spills.
    /// The cursor stands on the CTE's query (read ahead on a copy).
    func checkRecursiveUnion(_ name: String) throws {
        var probe = cursor
        var isUnion = false, all = false
        try probe.forEachKey { probe, type in
            guard case "SelectStmt" = type else { try probe.skipValue(); return }
            try probe.forEachKey { probe, key in
                switch key {
                case "op": isUnion = try probe.string() == "SETOP_UNION"
                case "all": all = try probe.boolean()
                default: try probe.skipValue()
                }
            }
        }
        guard isUnion, !all else { return }
        throw Denial(rule: .recursiveUnion,
                     message: "WITH RECURSIVE \(name) AS (… UNION …) is not allowed: UNION keeps every distinct row the recursion makes in memory the server does not bound",
                     hint: "Use UNION ALL and stop the recursion with a depth column (WHERE depth < 100), or PostgreSQL's CYCLE clause to stop at repeated rows.",
                     offset: remainingLocation(), statementType: analysis.statementType)
    }
}
