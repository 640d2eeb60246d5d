/// Document and statements: the top of the tree and every statement kind.
extension Analyzer {
    mutating func document() throws {
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
    mutating func statements() throws {
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

    mutating func firstStatement() throws {
        try object { analyzer, key in
            switch key {
            case "stmt": try analyzer.topLevelStatement()
            case "stmt_location", "stmt_len": _ = try analyzer.cursor.integer()
            default: throw ParseTreeCursor.Malformed()
            }
        }
    }

    mutating func rejectMultipleStatements() throws {
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
    mutating func peekStatementType() throws -> String {
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

    mutating func topLevelStatement() throws {
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

    mutating func transactionStatement() throws {
        var kind = ""
        try cursor.expect(UInt8(ascii: "{"))
        while let key = try cursor.nextKey() {
            switch key {
            case "kind": kind = try cursor.string()
            case "options": try transactionModes(of: .begin)
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

    /// Where transaction modes are set: a BEGIN's own, SET TRANSACTION's (the transaction under
    /// way), SET SESSION CHARACTERISTICS' (every later transaction's defaults).
    enum TransactionModesScope { case begin, transaction, session }

    /// `BEGIN`/`SET TRANSACTION` modes: isolation levels and READ ONLY pass; READ WRITE never does.
    /// SERIALIZABLE passes only as READ ONLY DEFERRABLE, and only for one transaction: otherwise the
    /// server takes predicate locks on the pages a scan reads, which hold other tenants' rows too,
    /// and one tenant's SELECT made another's SERIALIZABLE write fail with 40001 (seventeenth red
    /// team). A deferrable read-only transaction waits for a snapshot that needs none. A session
    /// default of SERIALIZABLE is refused, so that a later `BEGIN NOT DEFERRABLE` cannot take it;
    /// NOT DEFERRABLE alone is refused only in SET TRANSACTION, after a deferrable BEGIN.
    mutating func transactionModes(of scope: TransactionModesScope) throws {
        var isolation: String?
        var readOnly = false
        var deferrable: Bool?
        var firstOffset: Int?
        try list { analyzer in
            try analyzer.wrapped { analyzer, type in
                guard case "DefElem" = type else { throw analyzer.unsupportedNode(type) }
                var name = ""
                var offset: Int?
                try analyzer.object { analyzer, key in
                    switch key {
                    case "defname": name = try analyzer.cursor.string()
                    case "arg" where name == "transaction_isolation":
                        isolation = analyzer.constantValue(analyzer.cursor)?.string ?? "unknown"
                        try analyzer.cursor.skipValue()
                    case "arg" where name == "transaction_deferrable":
                        deferrable = analyzer.constantValue(analyzer.cursor)?.number.map { $0 != 0 } ?? false
                        try analyzer.cursor.skipValue()
                    case "arg" where name != "transaction_read_only":
                        try analyzer.cursor.skipValue()
                    case "arg":
                        readOnly = true
                        if try analyzer.integerConstant() == 0 {
                            throw Denial(rule: .readWriteTransaction,
                                         message: "READ WRITE transactions are not allowed: every transaction through Palisade is read-only",
                                         hint: "Leave out READ WRITE; BEGIN on its own starts a read-only transaction.",
                                         offset: offset, statementType: analyzer.analysis.statementType)
                        }
                    case "defaction": try analyzer.cursor.skipString()
                    case "location":
                        offset = try analyzer.cursor.integer()
                        firstOffset = firstOffset ?? offset
                    default: throw analyzer.unsupportedField(key)
                    }
                }
                guard ["transaction_isolation", "transaction_read_only", "transaction_deferrable"].contains(name) else {
                    throw analyzer.unsupportedNode(type)
                }
            }
        }
        let serializable = isolation.map { $0 != "read committed" && $0 != "repeatable read" && $0 != "read uncommitted" } ?? false
        if serializable, scope == .session || !(readOnly && deferrable == true) {
            throw Denial(rule: .serializableTransaction,
                         message: scope == .session
                            ? "SERIALIZABLE is not allowed as the session's default: a later BEGIN could take it without READ ONLY DEFERRABLE, and then PostgreSQL locks the pages each scan reads, which hold other tenants' rows too, so one tenant's reads could make another tenant's transactions fail (40001)"
                            : "SERIALIZABLE transactions are allowed only as READ ONLY DEFERRABLE: otherwise PostgreSQL locks the pages each scan reads, which hold other tenants' rows too, so one tenant's reads could make another tenant's transactions fail (40001)",
                         hint: "Use ISOLATION LEVEL REPEATABLE READ (the same snapshot for a read-only transaction), or BEGIN ISOLATION LEVEL SERIALIZABLE, READ ONLY, DEFERRABLE for each transaction.",
                         offset: firstOffset, statementType: analysis.statementType)
        }
        // NOT DEFERRABLE after a deferrable SERIALIZABLE BEGIN, before the first query, would undo it.
        if scope == .transaction, deferrable == false, isolation == nil {
            throw Denial(rule: .serializableTransaction,
                         message: "SET TRANSACTION NOT DEFERRABLE is not allowed: in a SERIALIZABLE, READ ONLY, DEFERRABLE transaction it would take back DEFERRABLE, and PostgreSQL would then lock pages that hold other tenants' rows",
                         hint: "Leave DEFERRABLE as the transaction began, or begin it with the isolation level you need.",
                         offset: firstOffset, statementType: analysis.statementType)
        }
    }

    /// The integer value of an `A_Const` at the cursor (`{"ival":{}}` is 0), or nil if it is none.
    mutating func integerConstant() throws -> Int? {
        analysis.readsConstantValues = true
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
    mutating func stringConstant() throws -> String? {
        analysis.readsConstantValues = true
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

    mutating func setStatement() throws {
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
                    try transactionModes(of: name == "session characteristics" ? .session : .transaction)
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

    var settableList: String {
        shared.policy.settableSettings.isEmpty ? "no settings" : shared.policy.settableSettings.sorted().joined(separator: ", ")
    }

    mutating func showStatement() throws {
        var name = ""
        try object { analyzer, key in
            guard case "name" = key else { throw analyzer.unsupportedField(key) }
            name = try analyzer.cursor.string().asciiLowercased
        }
        // SHOW reads the settings current_setting may read (`SHOW search_path` where
        // current_setting('search_path') is admitted); the tenant claim only through current_setting.
        guard name != "all", shared.policy.showableSettings.contains(name) || (name != Policy.claimSetting && readsSetting(name)) else {
            let shown = shared.policy.showableSettings.sorted().joined(separator: ", ")
            throw Denial(rule: .showDenied,
                         message: name == "all" ? "SHOW ALL is not allowed: it reveals the server's whole configuration" : "SHOW \(name) is not allowed by this policy",
                         hint: shown.isEmpty ? "No settings may be shown." : "These settings may be shown: \(shown).",
                         offset: nil, statementType: "SHOW")
        }
        analysis.rule = .showSetting
    }

    mutating func explainStatement() throws {
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
                                argument = analyzer.constantValue(analyzer.cursor)
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
}
