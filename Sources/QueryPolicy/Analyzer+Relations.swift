import CPgQuery
/// Relations: schemas, catalogs, secret and guarded columns.
extension Analyzer {
    mutating func rangeVariable() throws {
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
        if schema == nil, isVisibleCTE(relation) {
            // Every reference to a WITH query is its rows again, through other WITH queries too: a
            // join of it with itself multiplies them, whatever the planner guesses of the join's
            // condition (`ON a.g * 0 = b.g * 0`: 5,000 rows estimated, a million made; eleventh round).
            analysis.textMadeRows *= cteTextMadeRows[relation] ?? 1
            addMadeRows(aliasName ?? relation, columns: renamesColumns ? [] : cteColumns[relation] ?? [])
            planning.reference(withQuery: relation, copies: expressionCopies)
            if recursiveQueries.contains(relation) { unboundedRowSources += 1 }
        } else {
            tableAliases.insert(aliasName ?? relation)
            planning.add(planningWeight(schema: schema, relation: relation) * expressionCopies)
        }
        let special = SpecialRelation.byName.value(for: relation)
        try checkRelation(catalog: catalogName, schema: schema, name: relation, special: special, offset: offset)
        guard let special, special.isPgCatalog, schema == nil || schema == "pg_catalog",
              schema != nil || !isVisibleCTE(relation) else { return }
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

    /// The relations the planner may build for one query. Each takes a backend tens of kilobytes
    /// while it plans (sixteenth red team, PostgreSQL 15: a 672-byte chain of eleven WITH queries
    /// marked NOT MATERIALIZED, each reading the one before twice, made 4,095 subqueries and took
    /// 251 MB, about 61 KB each; Palisade counts it 12,261, the levels' own bodies included. 120
    /// scalar subqueries over information_schema.columns, 5,400 by weight, took 261 MB.) Of the
    /// corpora's benign queries, 976 read a relation, and the largest counts 58
    /// (information_schema.tables NATURAL JOIN information_schema.columns, with pg_class).
    static let maxPlannedRelations = 1000.0

    /// What a reference to `relation` makes the planner build: a view by its weight (of pg_catalog
    /// and information_schema generated, `PG15Catalog.viewPlanningWeights`; the server's own read
    /// at start, `ServerFunctions.viewWeights`), anything else one. An unqualified name that is a
    /// pg_catalog relation resolves there first, then along the search path.
    func planningWeight(schema: String?, relation: String) -> Double {
        let weight: Int?
        switch schema {
        case nil: weight = PG15Catalog.viewPlanningWeights["pg_catalog." + relation] ?? shared.searchPathViewWeights[relation]
        case "pg_catalog", "information_schema": weight = PG15Catalog.viewPlanningWeights[schema! + "." + relation]
        case let schema?: weight = shared.viewWeights[schema + "." + relation]
        }
        return Double(weight ?? 1)
    }

    /// The relations of the tree's bytes in `range` by weight, each RangeVar read where it stands (a
    /// WITH query's name counts one).
    func plannedRelations(in range: Range<Int>) -> Double {
        var relations = 0.0
        UnsafeBufferPointer(rebasing: tree[range]).forEachOccurrence(of: "{\"RangeVar\":") { offset in
            var probe = ParseTreeCursor(tree)
            probe.offset = range.lowerBound + offset
            var schema: String?, name = ""
            _ = try? probe.forEachKey { probe, _ in
                try probe.forEachKey { probe, key in
                    switch key {
                    case "schemaname": schema = try probe.string()
                    case "relname": name = try probe.string()
                    default: try probe.skipValue()
                    }
                }
            }
            relations += planningWeight(schema: schema, relation: name)
        }
        return relations
    }

    /// Whether `nodes` is over `limit`, or over what a longer text allows: a text's own expressions
    /// may be as large as the text (a long IN list), and a node of the tree takes 16 bytes and more
    /// of it. The tree's length also counts numbers' digits and the locations after them, which
    /// texts that share a decision (`LiteralBlindKey`) do not share, so a decision that needed the
    /// longer allowance is not shared (eighteenth red team, sixth pass: a text of short numbers
    /// admitted through the entry of the same text with long ones, 1.5 % over the limit).
    mutating func exceedsExpandedNodes(_ nodes: Double, limit: Double) -> Bool {
        guard nodes > limit else { return false }
        analysis.readsConstantValues = true
        return nodes > Double(tree.count) / 16
    }

    /// The rewriter puts a view's query in place at every reference, and the planner a WITH query
    /// marked NOT MATERIALIZED, so a short text can stand for relations without end: each level of
    /// such a chain that reads the one before twice doubles them. A catalog function written in SQL
    /// plans its body at each call site (`PG15Catalog.sqlFunctionPlanningWeights`).
    mutating func checkPlanning() throws {
        if exceedsExpandedNodes(copiedNodes, limit: Self.maxExpandedNodesInAll) {
            throw Denial(rule: .valueGrowth,
                         message: "this query's expressions stand for \(Self.describe(copiedNodes)) nodes once PostgreSQL's parser copies the tested operand of each BETWEEN (twice, four times SYMMETRIC) and of each IN list (once for every item that reads a column), over the limit of \(Int(Self.maxExpandedNodesInAll)): nested ones multiply, in the server's memory",
                         hint: "Do not nest BETWEEN or IN lists inside each other's tested operand; compare the value once, in a subquery or WITH query, and test its column.",
                         offset: nil, statementType: analysis.statementType)
        }
        let plannedRelations = planning.total() + copies.copiedRelations
        guard plannedRelations > Self.maxPlannedRelations else { return }
        throw Denial(rule: .planning,
                     message: "this query makes PostgreSQL's planner build about \(Self.describe(plannedRelations)) relations, over the limit of \(Int(Self.maxPlannedRelations)): each FROM item and subquery counts one, a WITH query the planner puts in place (marked NOT MATERIALIZED, or read once) all of its own again at every reference, a catalog view what it expands to (information_schema.columns counts 44), and a catalog function written in SQL the query it runs (col_description 1), and each takes the server's memory while it plans",
                     hint: "Leave out NOT MATERIALIZED on a WITH query read more than once (it is then computed once), read fewer information_schema views (pg_catalog's tables are smaller), or split the work into several queries.",
                     offset: nil, statementType: analysis.statementType)
    }

    /// Over a relation with guarded columns, the query may not name such a column anywhere (as a
    /// column, in USING, a column alias list or a string), use `*` over it, take its whole row, or
    /// join naturally (which compares columns without naming them).
    /// Names are compared decoded: libpg_query escapes `"`, `\\`, `<`, `>`, `&` and control
    /// characters in the tree's JSON, so an alias such as `"u<"` is written `u\u003c` there.
    mutating func checkGuardedColumns() throws {
        guard !guardedRelations.isEmpty else { return }
        // Strings count as names here, so this reads every string constant's value.
        analysis.readsConstantValues = true
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
            } else if guarded.joinedNaturally {
                // `pg_class NATURAL JOIN (SELECT 1::real AS reltuples) x` filters on reltuples, which
                // no name in the text shows (fifteenth red team).
                found = "every column a NATURAL JOIN compares"
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

    mutating func checkRelation(catalog: String?, schema: String?, name: String, special: SpecialRelation?, offset: Int?) throws {
        func deny(_ rule: Rule, _ message: String, _ hint: String) -> Denial {
            Denial(rule: rule, message: message, hint: hint, offset: offset, statementType: analysis.statementType)
        }
        var readable: String { shared.policy.readableSchemas.sorted().joined(separator: ", ") }
        if let catalog {
            throw deny(.relationSchema, "relation \(catalog).\(schema ?? "").\(name) names another database",
                       "Leave out the database name; read tables in \(readable).")
        }
        if schema == nil, isVisibleCTE(name) { return }
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
            if shared.policy.hidesStatistics, shared.searchPathSequences.contains(name) { throw sequenceDenial(name, offset) }
            listTable(shared.unqualifiedTablePrefix.map { $0 + name } ?? name)
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
        } else if shared.policy.hidesStatistics, shared.sequences.contains(qualified) {
            throw sequenceDenial(qualified, offset)
        }
        listTable(qualified)
    }

    /// A sequence is no table: row-level security does not apply to it, and its `last_value`
    /// counts what every tenant inserted.
    func sequenceDenial(_ name: String, _ offset: Int?) -> Denial {
        Denial(rule: .statistics,
               message: "relation \(name) is a sequence: its last_value counts every tenant's rows, which row-level security does not filter",
               hint: "Count the rows you can see with count(*) on the table itself.", offset: offset, statementType: analysis.statementType)
    }
}
