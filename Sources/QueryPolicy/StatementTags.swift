/// Command tags and deny reasons for statements other than a query.
enum StatementTags {
    private static let overrides: [String: String] = [
        "CreateStmt": "CREATE TABLE", "CreatedbStmt": "CREATE DATABASE",
        "DropdbStmt": "DROP DATABASE", "VariableShowStmt": "SHOW", "CheckPointStmt": "CHECKPOINT",
        "ClosePortalStmt": "CLOSE", "RefreshMatViewStmt": "REFRESH MATERIALIZED VIEW", "ViewStmt": "CREATE VIEW",
        "IndexStmt": "CREATE INDEX", "RuleStmt": "CREATE RULE", "CreateTableAsStmt": "CREATE TABLE AS",
        "DeclareCursorStmt": "DECLARE CURSOR", "GrantRoleStmt": "GRANT ROLE", "CreateFunctionStmt": "CREATE FUNCTION",
        "VacuumStmt": "VACUUM", "DefineStmt": "CREATE", "CompositeTypeStmt": "CREATE TYPE",
    ]

    /// The message of an admitted statement; written out for the common tags, so that the hot path
    /// does not build the string each time.
    static func admittedMessage(forTag tag: String) -> String {
        switch tag {
        case "SELECT": "admitted: SELECT"
        case "BEGIN": "admitted: BEGIN"
        case "COMMIT": "admitted: COMMIT"
        case "ROLLBACK": "admitted: ROLLBACK"
        case "SHOW": "admitted: SHOW"
        case "SET": "admitted: SET"
        default: "admitted: \(tag)"
        }
    }

    /// The command tag for a node type, e.g. `DeleteStmt` → `DELETE`, `AlterRoleSetStmt` → `ALTER ROLE SET`.
    /// `cursor` stands on the node's body, to tell BEGIN from COMMIT and SET from RESET.
    static func tag(forNodeType typeBytes: ParseTreeCursor.Bytes, cursor: ParseTreeCursor) -> String {
        // Nearly every statement Palisade sees: answered without spelling or hashing the name.
        if "SelectStmt" ~= typeBytes { return "SELECT" }
        let type = typeBytes.string
        if type == "TransactionStmt" || type == "VariableSetStmt" || type == "FetchStmt" || type == "VacuumStmt" {
            return refinedTag(type, cursor)
        }
        if let tag = overrides[type] { return tag }
        var words: [String] = []
        var current = ""
        for character in type.hasSuffix("Stmt") ? String(type.dropLast(4)) : type {
            if character.isUppercase, !current.isEmpty {
                words.append(current)
                current = ""
            }
            current.append(character)
        }
        if !current.isEmpty { words.append(current) }
        return words.joined(separator: " ").uppercased()
    }

    private static func refinedTag(_ type: String, _ cursor: ParseTreeCursor) -> String {
        var probe = cursor
        var kind = ""
        var isMove = false
        var isAnalyze = false
        guard (try? probe.expect(UInt8(ascii: "{"))) != nil else { return type }
        while let key = try? probe.nextKey() {
            switch key {
            case "kind": kind = (try? probe.string()) ?? ""
            case "ismove": isMove = (try? probe.boolean()) ?? false
            case "is_vacuumcmd": isAnalyze = !((try? probe.boolean()) ?? true)
            default: guard (try? probe.skipValue()) != nil else { return type }
            }
        }
        switch type {
        case "FetchStmt": return isMove ? "MOVE" : "FETCH"
        case "VacuumStmt": return isAnalyze ? "ANALYZE" : "VACUUM"
        case "VariableSetStmt": return kind.hasPrefix("VAR_RESET") ? "RESET" : "SET"
        default:
            switch kind {
            case "TRANS_STMT_BEGIN": return "BEGIN"
            case "TRANS_STMT_START": return "START TRANSACTION"
            case "TRANS_STMT_COMMIT": return "COMMIT"
            case "TRANS_STMT_ROLLBACK": return "ROLLBACK"
            case "TRANS_STMT_SAVEPOINT": return "SAVEPOINT"
            case "TRANS_STMT_RELEASE": return "RELEASE"
            case "TRANS_STMT_ROLLBACK_TO": return "ROLLBACK TO SAVEPOINT"
            case "TRANS_STMT_PREPARE": return "PREPARE TRANSACTION"
            case "TRANS_STMT_COMMIT_PREPARED": return "COMMIT PREPARED"
            case "TRANS_STMT_ROLLBACK_PREPARED": return "ROLLBACK PREPARED"
            default: return "TRANSACTION"
            }
        }
    }

    private static let ruleByNodeType: [String: Rule] = [
        "InsertStmt": .dml, "UpdateStmt": .dml, "DeleteStmt": .dml, "MergeStmt": .dml, "TruncateStmt": .dml,
        "CopyStmt": .copy, "DoStmt": .doBlock, "CallStmt": .call,
        "DiscardStmt": .discard, "PrepareStmt": .preparedStatement, "ExecuteStmt": .preparedStatement,
        "DeallocateStmt": .preparedStatement, "DeclareCursorStmt": .cursor, "FetchStmt": .cursor,
        "ClosePortalStmt": .cursor, "ListenStmt": .listenNotify, "NotifyStmt": .listenNotify,
        "UnlistenStmt": .listenNotify, "LockStmt": .lock, "VacuumStmt": .maintenance, "ClusterStmt": .maintenance,
        "ReindexStmt": .maintenance, "CheckPointStmt": .maintenance, "LoadStmt": .maintenance,
        "RefreshMatViewStmt": .maintenance, "GrantStmt": .grant, "GrantRoleStmt": .grant,
        "AlterDefaultPrivilegesStmt": .grant, "CreateRoleStmt": .role, "AlterRoleStmt": .role,
        "AlterRoleSetStmt": .role, "DropRoleStmt": .role, "ReassignOwnedStmt": .role, "DropOwnedStmt": .role,
        "CreatedbStmt": .database, "AlterDatabaseStmt": .database, "AlterDatabaseSetStmt": .database,
        "AlterDatabaseRefreshCollStmt": .database, "DropdbStmt": .database, "ConstraintsSetStmt": .setDenied,
        "ViewStmt": .ddl, "IndexStmt": .ddl, "RuleStmt": .ddl, "CompositeTypeStmt": .ddl, "DefineStmt": .ddl,
        "RenameStmt": .ddl, "CommentStmt": .ddl, "SecLabelStmt": .ddl, "ImportForeignSchemaStmt": .ddl,
        "CreateTableAsStmt": .ddl,
    ]

    private static let reasons: [Rule: (String, String)] = [
        .dml: ("it changes data", "Palisade admits read-only queries only; express the request as one SELECT."),
        .ddl: ("it changes the schema", "Palisade admits read-only queries only; send one SELECT."),
        .copy: ("COPY moves data in or out of the server", "Use SELECT to read rows."),
        .doBlock: ("anonymous code blocks run arbitrary procedural code", "Send one SELECT."),
        .call: ("procedures may change data", "Send one SELECT."),
        .discard: ("it resets session state", "Send one SELECT."),
        .preparedStatement: ("server-side prepared statements hide their text from the firewall", "Send the SELECT text itself; drivers' protocol-level prepared statements are fine."),
        .cursor: ("cursors outlive the query that the firewall checked", "Send the SELECT itself; use LIMIT and OFFSET to page."),
        .listenNotify: ("it signals or listens to other sessions", "Send one SELECT."),
        .lock: ("it takes table locks", "Send one SELECT; reads need no explicit locks."),
        .maintenance: ("maintenance commands change server state", "Send one SELECT."),
        .grant: ("it changes privileges", "Send one SELECT."),
        .role: ("it changes roles", "Send one SELECT."),
        .database: ("it changes databases", "Send one SELECT."),
        .setDenied: ("it changes session settings", "Send one SELECT."),
    ]

    static func denial(forNodeType type: String, tag: String) -> Denial {
        let rule = ruleByNodeType[type]
            ?? (["Create", "Alter", "Drop", "Define"].contains { type.hasPrefix($0) } ? .ddl : .otherStatement)
        let (reason, hint) = reasons[rule] ?? ("Palisade admits only a single read-only SELECT", "Send one SELECT.")
        return Denial(rule: rule, message: "\(tag) is not allowed: \(reason)", hint: hint, offset: nil, statementType: tag)
    }
}
