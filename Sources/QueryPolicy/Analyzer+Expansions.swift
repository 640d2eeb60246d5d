/// What PostgreSQL's parser expands before any of its own limits apply: `(expr).*` into a copy of
/// expr for each field, and a GROUP BY's grouping sets into every set they stand for.
extension Analyzer {
    /// The most columns a row may have (MaxHeapAttributeNumber): the fields of `(expr).*` where the
    /// text does not show them.
    static let mostRowFields = 1600.0

    /// How many copies of its argument the A_Indirection `body` (`{"arg":…,"indirection":[…]}`)
    /// stands for. For `(expr).*` PostgreSQL's parser makes one FieldSelect over a copy of expr for
    /// each field (ExpandRowReference, parse_target.c), so nested ones multiply: three levels of a
    /// 40-field ROW, 113 bytes, took 869 MB in parse analysis alone, and 100 fields 15.7 GB
    /// (thirty-eighth red team). 1 without a trailing `*`.
    static func rowExpansionCopies(_ body: ParseTreeCursor) throws -> Double {
        var cursor = body
        var argument: ParseTreeCursor?
        var steps = 0
        var endsInStar = false
        try cursor.forEachKey { cursor, key in
            if case "indirection" = key {
                try cursor.expect(UInt8(ascii: "["))
                while try cursor.nextElement() {
                    steps += 1
                    endsInStar = cursor.startsWith("{\"A_Star\":")
                    try cursor.skipValue()
                }
            } else {
                if case "arg" = key { argument = cursor }
                try cursor.skipValue()
            }
        }
        guard endsInStar else { return 1 }
        // `((expr).name).*` copies `(expr).name`, a row the text does not show.
        guard steps == 1, let argument else { return mostRowFields }
        return try rowFields(argument)
    }

    /// The fields of the row the wrapped node `node` makes: a ROW(…) or a parenthesized row counts
    /// its items, an item `(e).*` the fields of e, and `t.*` or anything else as many as a row may
    /// have.
    static func rowFields(_ node: ParseTreeCursor) throws -> Double {
        guard node.startsWith("{\"RowExpr\":") else { return mostRowFields }
        var fields = 0.0
        try forEachRowItem(node) { item, end in
            if item.startsWith("{\"A_Indirection\":") {
                var wrapper = item
                try wrapper.forEachKey { body, _ in
                    fields += try rowExpansionCopies(body)
                    try body.skipValue()
                }
            } else if item.startsWith("{\"ColumnRef\":"),
                      UnsafeBufferPointer(start: item.base + item.offset, count: end - item.offset).contains("{\"A_Star\":{}}") {
                fields += mostRowFields
            } else {
                fields += 1
            }
        }
        return min(max(fields, 1), mostRowFields)
    }

    /// Hands each item of the wrapped RowExpr `node` to `body`, with the offset where it ends.
    static func forEachRowItem(_ node: ParseTreeCursor, _ body: (ParseTreeCursor, Int) throws -> Void) throws {
        var cursor = node
        try cursor.forEachKey { cursor, _ in
            try cursor.forEachKey { cursor, key in
                guard case "args" = key else { return try cursor.skipValue() }
                try cursor.expect(UInt8(ascii: "["))
                while try cursor.nextElement() {
                    let item = cursor
                    try cursor.skipValue()
                    try body(item, cursor.offset)
                }
            }
        }
    }

    /// What a GROUP BY item expands to: its grouping sets, and their items counted together.
    struct GroupingExpansion {
        var sets: Double
        var items: Double

        /// Items side by side: every set of one with every set of the other.
        func times(_ other: GroupingExpansion) -> GroupingExpansion {
            GroupingExpansion(sets: sets * other.sets, items: items * other.sets + other.items * sets)
        }
    }

    /// Grouping sets of one GROUP BY. PostgreSQL's own limit is 4,096 (parse_agg.c), which it checks
    /// only once it has expanded each item in full; and the planner's choice among the sets' rollups
    /// (DiscreteKnapsack, which no cancel interrupts) grows about as the cube of the rollups: 4,096
    /// sets that do not nest (four GROUPING SETS lists of 8 columns side by side, 406 bytes) took
    /// 66 s, 512 such sets 29 ms (thirty-eighth red team, second pass).
    static let mostGroupingSets = 512.0
    /// Relations of the planner's budget (`checkPlanning`) that a grouping set counts: a WITH query
    /// put in place at each reference plans its sets again (CUBE of 12 columns took 0.4 s and 60 MB
    /// a plan, read 30 times 10.7 s and 802 MB).
    static let planningRelationsPerGroupingSet = 0.25
    /// Items of all grouping sets together. `CUBE(1, …)` of 12 items is 4,096 sets of 24,576 items;
    /// 2,000 of them in GROUPING SETS (60 KB) took 1.49 GB before the server's limit refused them,
    /// and 12 rows of 1,000 positions in a CUBE 646 MB, where the server dedupes each set's
    /// positions pairwise (thirty-eighth red team).
    static let mostGroupingSetItems = 50_000.0

    /// Refuses a GROUP BY list (the cursor on its `[`) whose grouping sets stand for more sets or
    /// items than the server can expand in bounded memory (expand_grouping_sets).
    mutating func checkGroupingSets() throws {
        var cursor = self.cursor
        var total = GroupingExpansion(sets: 1, items: 0)
        var hasGroupingSet = false
        try cursor.expect(UInt8(ascii: "["))
        while try cursor.nextElement() {
            let item = cursor
            try cursor.skipValue()
            guard item.startsWith("{\"GroupingSet\":") else {
                total = total.times(GroupingExpansion(sets: 1, items: try Self.groupingItems(item)))
                continue
            }
            hasGroupingSet = true
            total = total.times(try Self.groupingExpansion(item))
        }
        guard hasGroupingSet else { return }
        planning.add(total.sets * Self.planningRelationsPerGroupingSet * expressionCopies)
        guard total.sets > Self.mostGroupingSets || total.items > Self.mostGroupingSetItems else { return }
        throw Denial(rule: .planning,
                     message: "this query's GROUP BY stands for \(Self.describe(total.sets)) grouping sets of \(Self.describe(total.items)) items in all, over the limits of \(Int(Self.mostGroupingSets)) sets and \(Int(Self.mostGroupingSetItems)) items: CUBE of n items makes 2^n sets, ROLLUP n + 1, GROUPING SETS the sets of its items together, and items side by side multiply, and PostgreSQL builds them all in its memory before it counts them, then plans each way to compute them",
                     hint: "Use fewer items in CUBE (each one doubles the sets), or split the question into several queries.",
                     offset: nil, statementType: analysis.statementType)
    }

    /// The sets and items of a wrapped GroupingSet node.
    static func groupingExpansion(_ node: ParseTreeCursor) throws -> GroupingExpansion {
        var cursor = node
        var kind = ""
        var parts: [GroupingExpansion] = []
        try cursor.forEachKey { cursor, _ in
            try cursor.forEachKey { cursor, key in
                switch key {
                case "kind": kind = try cursor.string()
                case "content":
                    try cursor.expect(UInt8(ascii: "["))
                    while try cursor.nextElement() {
                        let item = cursor
                        try cursor.skipValue()
                        parts.append(item.startsWith("{\"GroupingSet\":")
                            ? try groupingExpansion(item) : GroupingExpansion(sets: 1, items: try groupingItems(item)))
                    }
                default: try cursor.skipValue()
                }
            }
        }
        let items = parts.map(\.items)
        switch kind {
        case "GROUPING_SET_EMPTY": return GroupingExpansion(sets: 1, items: 0)
        case "GROUPING_SET_SIMPLE": return GroupingExpansion(sets: 1, items: items.reduce(0, +))
        case "GROUPING_SET_ROLLUP":
            // The sets are the prefixes: item j is in n - j + 1 of them.
            let n = Double(items.count)
            return GroupingExpansion(sets: n + 1, items: items.enumerated().reduce(0) { $0 + $1.element * (n - Double($1.offset)) })
        case "GROUPING_SET_CUBE":
            // Every subset: each item is in half of them.
            let sets = Double(sign: .plus, exponent: items.count, significand: 1)
            return GroupingExpansion(sets: sets, items: sets / 2 * items.reduce(0, +))
        case "GROUPING_SET_SETS":
            return GroupingExpansion(sets: parts.reduce(0) { $0 + $1.sets }, items: parts.reduce(0) { $0 + $1.items })
        default: throw ParseTreeCursor.Malformed()
        }
    }

    /// The items a GROUP BY expression stands for: a parenthesized row its items (flattened, as
    /// PostgreSQL flattens them), anything else one.
    static func groupingItems(_ node: ParseTreeCursor) throws -> Double {
        guard node.startsWith("{\"RowExpr\":") else { return 1 }
        var items = 0.0
        try forEachRowItem(node) { item, _ in items += try groupingItems(item) }
        return items
    }

    /// Functions whose numeric results the planner computes over constants like `^` does.
    static let numericFoldFunctions: Set<String> = ["power", "pow", "exp", "factorial"]
    /// Numeric powers a query may hold, each copy counted (the parser's, and each column reference
    /// to one the planner puts in place). The planner folds each over constants while it plans, and
    /// numeric's multiplication has no cancel check: `9.9::numeric ^ 130000` took 0.25 s, 130 of
    /// them (3.5 KB) 33.9 s with a statement_timeout of 2 s (thirty-eighth red team, third pass).
    /// So at most about 8 s past the timeout; queries that compute powers of columns use a few.
    static let mostNumericFolds = 32.0

    func checkNumericFolds() throws {
        let folds = max(numericFolds, copies.folds)
        guard folds > Self.mostNumericFolds else { return }
        throw Denial(rule: .planning,
                     message: "this query computes \(Self.describe(folds)) numeric powers (^, power, exp), counting each copy PostgreSQL makes, over the limit of \(Int(Self.mostNumericFolds)): the planner computes each over constants before the query starts, where a cancel or statement_timeout cannot stop it, and one can take a quarter of a second",
                     hint: "Compute fewer powers in one query, or raise to small exponents by multiplication.",
                     offset: nil, statementType: analysis.statementType)
    }

    /// Window definitions written in a query (`OVER (…)` and the WINDOW clause's; a reference
    /// `OVER w` adds none). Each distinct one is a WindowAgg node of the plan carrying every window
    /// function's output, so the plan grows as their square, built where no cancel reaches: 1,600
    /// frames (50 KB) planned 17.8 s past a 5 s timeout, 800 partitions (25 KB) took 838 MB
    /// (thirty-eighth red team, fourth pass). Counted as written, not as distinct, so that the
    /// count does not depend on the values in them (`ROWS 5 PRECEDING`), which texts that share a
    /// decision may differ in.
    static let mostWindowDefinitions = 100

    func checkWindowDefinitions() throws {
        var definitions = 0
        // A function's `over` holds its WindowDef unwrapped; the WINDOW clause lists wrapped ones.
        for needle: StaticString in ["\"over\":{", "{\"WindowDef\":{"] {
            tree.forEachOccurrence(of: needle) { offset in
                var probe = ParseTreeCursor(tree)
                probe.offset = offset + needle.utf8CodeUnitCount - 1
                // A bare reference (`OVER w`) holds its name, frame options and location only.
                if let keys = try? probe.keysOfObject(), keys.contains("refname") || keys.contains("name"),
                   keys.subtracting(["name", "refname", "frameOptions", "location"]).isEmpty {
                    return
                }
                definitions += 1
            }
        }
        guard definitions > Self.mostWindowDefinitions else { return }
        throw Denial(rule: .planning,
                     message: "this query writes \(definitions) window definitions (OVER (…)), over the limit of \(Self.mostWindowDefinitions): PostgreSQL plans a step for each that carries every window function's result, so the plan grows as their square, before a cancel or statement_timeout can stop it",
                     hint: "Name a window once in a WINDOW clause and use OVER name, or split the query.",
                     offset: nil, statementType: analysis.statementType)
    }
}
