/// Every rule the engine can apply, with its stable id (documented in README.md) and SQLSTATE.
public enum Rule: String, Sendable, CaseIterable {
    // Admitted.
    case query = "allow.query"
    case transactionControl = "allow.transaction"
    case showSetting = "allow.show"
    case setSetting = "allow.set"
    case explain = "allow.explain"

    // Text that is not one understood statement.
    case empty = "parse.empty"
    case syntaxError = "parse.error"
    case nulByte = "parse.nul-byte"
    case tooLarge = "limit.size"
    case tooDeep = "limit.depth"
    case argumentLimit = "limit.argument"
    case recursiveUnion = "limit.recursive-union"
    case recursiveGrowth = "limit.recursive-growth"
    case valueGrowth = "limit.value-growth"
    case planning = "limit.planning"
    case multipleStatements = "stmt.multiple"
    case unsupportedSyntax = "syntax.unsupported"

    // Statements other than a query.
    case ddl = "stmt.ddl"
    case dml = "stmt.dml"
    case dmlInCTE = "stmt.dml-in-cte"
    case selectInto = "stmt.select-into"
    case lockingClause = "stmt.locking-clause"
    case copy = "stmt.copy"
    case doBlock = "stmt.do"
    case call = "stmt.call"
    case explainDenied = "stmt.explain"
    case explainAnalyze = "stmt.explain-analyze"
    case explainCosts = "stmt.explain-costs"
    case setDenied = "stmt.set"
    case reset = "stmt.reset"
    case discard = "stmt.discard"
    case showDenied = "stmt.show"
    case preparedStatement = "stmt.prepare"
    case cursor = "stmt.cursor"
    case listenNotify = "stmt.listen-notify"
    case lock = "stmt.lock"
    case maintenance = "stmt.maintenance"
    case grant = "stmt.grant"
    case role = "stmt.role"
    case database = "stmt.database"
    case transactionDenied = "stmt.transaction"
    case readWriteTransaction = "stmt.read-write"
    case serializableTransaction = "stmt.serializable"
    case savepoint = "stmt.savepoint"
    case twoPhaseCommit = "stmt.prepare-transaction"
    case otherStatement = "stmt.other"

    // What a query may touch.
    case forbiddenFunction = "fn.forbidden"
    case functionNotAllowed = "fn.not-allowed"
    case currentSetting = "fn.current-setting"
    case xmlParse = "fn.xml-parse"
    case operatorNotAllowed = "op.not-allowed"
    case relationSchema = "rel.schema"
    case catalogRelation = "rel.catalog"
    case secretRelation = "rel.secret"
    case statistics = "rel.statistics"

    // Protocol-level refusals by the proxy, recorded like any other decision.
    case functionCallMessage = "proto.function-call"
    case parameterType = "proto.parameter-type"
    case messageTooLarge = "proto.too-large"
    case protocolViolation = "proto.violation"
    case authenticationFailed = "auth.failed"
    case tokenExpired = "auth.token-expired"
    case lockedOut = "auth.locked"
    case rateLimited = "budget.rate"
    case tooManySessions = "budget.sessions"
    /// An admitted query's answer went past the profile's max_rows or max_result_bytes.
    case resultRows = "limit.result-rows"
    case resultBytes = "limit.result-bytes"
    /// An admitted query's plan, estimated before it ran, went past the profile's max_cost or
    /// max_estimated_rows.
    case costLimit = "limit.cost"
    case estimatedRows = "limit.estimated-rows"

    public var isAllow: Bool {
        switch self {
        case .query, .transactionControl, .showSetting, .setSetting, .explain: true
        default: false
        }
    }

    public var sqlstate: String {
        switch self {
        case .query, .transactionControl, .showSetting, .setSetting, .explain: "00000"
        case .empty, .syntaxError, .nulByte: "42601"
        case .tooLarge, .tooDeep, .argumentLimit, .recursiveUnion, .recursiveGrowth, .valueGrowth, .planning, .messageTooLarge, .resultRows, .resultBytes, .costLimit, .estimatedRows: "54000"
        case .protocolViolation: "08P01"
        case .authenticationFailed: "28P01"
        case .tokenExpired, .lockedOut: "28000"
        case .rateLimited: "53400"
        case .tooManySessions: "53300"
        default: "42501"
        }
    }
}

public enum Verdict: String, Sendable {
    case allow
    case deny
}

/// The engine's answer for one piece of SQL text.
public struct Decision: Sendable, Equatable {
    public var verdict: Verdict { rule.isAllow ? .allow : .deny }
    public var rule: Rule
    public var sqlstate: String { rule.sqlstate }
    /// Written for whoever sent the query, often an LLM: what was found, and where.
    public var message: String
    /// What is allowed instead, so the sender can correct itself.
    public var hint: String?
    /// 1-based character position of what was found, as Postgres reports positions; nil if none.
    public var position: Int?
    /// Command tag of the statement, e.g. `SELECT`, `DELETE`, `DROP`.
    public var statementType: String
    /// Relations read, schema-qualified where the schema is known.
    public var tables: [String]
    /// Functions called, schema-qualified where written so.
    public var functions: [String]
    /// libpg_query's fingerprint: equal for queries that differ only in constants; nil when the
    /// text was refused before it was parsed.
    public var fingerprintValue: UInt64?
    /// The text with every constant replaced by `$n`, safe to log.
    public var normalized: String
    /// SHA-256 of the policy file that decided.
    public var policyVersion: String
    /// For an admitted query to estimate with the planner before it runs: the budget of the policy
    /// that decided, so a reloaded policy's budget applies from its first decision on.
    public var costBudget: CostBudget?
    public var needsCostEstimate: Bool { costBudget != nil }
    /// Parameters (1-based) whose values an accumulating aggregate keeps in every row: each Bind's
    /// values of them may take `Decision.maxBoundParameterBytes` together.
    public var boundParameters: [Int] = []
    public static let maxBoundParameterBytes = Int(Analyzer.boundParameterBytes)
    /// Parameters the text refers to more than once, with the count: the server copies a bound
    /// value into each place when it plans (1,500 references to a 1 MB `$1` took a backend 1.45 GB,
    /// eighteenth red team). Each Bind's values times their counts may take
    /// `Decision.maxRepeatedParameterBytes` together.
    public var repeatedParameters: [Int: Int] = [:]
    public static let maxRepeatedParameterBytes = 16 << 20

    public var isAllowed: Bool { verdict == .allow }

    /// The fingerprint as libpg_query prints it (16 hex digits), or "" if there is none. Kept as a
    /// number in the decision and spelled out where it is written.
    public var fingerprint: String { fingerprintValue.map(Decision.hex) ?? "" }

    static func hex(_ value: UInt64) -> String {
        String(unsafeUninitializedCapacity: 16) { digits in
            for index in 0..<16 {
                let nibble = UInt8(truncatingIfNeeded: value >> (60 - 4 * index)) & 0xF
                digits[index] = nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10
            }
            return 16
        }
    }

    public init(rule: Rule, message: String, hint: String? = nil, position: Int? = nil, statementType: String = "",
                tables: [String] = [], functions: [String] = [], fingerprint: UInt64? = nil, normalized: String = "",
                policyVersion: String) {
        self.rule = rule
        self.message = message
        self.hint = hint
        self.position = position
        self.statementType = statementType
        self.tables = tables
        self.functions = functions
        self.fingerprintValue = fingerprint
        self.normalized = normalized
        self.policyVersion = policyVersion
    }
}
