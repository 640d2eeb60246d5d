import Crypto
import Foundation
import Yams
import Encoding

/// A validated policy profile: what one class of caller may run.
public struct Policy: Sendable {
    /// Profile name, e.g. `readonly` or `analyst`.
    public var profile: String
    /// SHA-256 (hex) of the policy file: the policy version recorded with every decision.
    public var version: String
    public var maxQueryBytes: Int
    public var maxNestingDepth: Int
    /// The server's statement_timeout for this profile's queries, in milliseconds.
    public var statementTimeoutMilliseconds: Int
    /// The server's idle_in_transaction_session_timeout for this profile's sessions, in
    /// milliseconds: a client cannot hold a snapshot and its locks open after BEGIN forever.
    public var idleInTransactionTimeoutMilliseconds: Int
    /// Largest result, in bytes, of a function that allocates by a constant argument (`repeat`,
    /// `lpad`, `format` widths, `char(n)` casts, …).
    public var maxFunctionResultBytes: Int
    /// Most rows `generate_series` may produce, and elements `array_fill` may make, from constant arguments.
    public var maxGeneratedRows: Int
    /// Plain BEGIN / START TRANSACTION (read-only), COMMIT, ROLLBACK.
    public var allowsTransactionControl: Bool
    /// EXPLAIN without ANALYZE.
    public var allowsExplain: Bool
    /// Settings SHOW may read, lower-cased.
    public var showableSettings: Set<String>
    /// Settings SET may change, lower-cased; always a subset of `Policy.settableSettings`.
    public var settableSettings: Set<String>
    /// Schemas whose relations may be read.
    public var readableSchemas: Set<String>
    /// The server's search_path, to resolve unqualified relation names.
    public var searchPath: [String]
    /// Whether pg_catalog and information_schema may be read (never the secret relations).
    /// Whether this profile's tenants are kept apart by row-level security. Then nothing built from
    /// rows a tenant cannot see may reach it: EXPLAIN only with COSTS OFF, and no statistics views,
    /// columns or size functions (`StatisticsCatalog`).
    public var hidesStatistics: Bool
    public var allowsCatalog: Bool { catalogAccess == .full }
    /// How much of the catalogs may be read: `metadata` adds the reviewed list's relations to
    /// `catalogRelations`, its functions to `builtinFunctions` and its settings to `readableSettings`.
    public var catalogAccess: CatalogAccess
    /// Catalog relations readable even without `allowsCatalog`, such as those drivers read at connect.
    public var catalogRelations: Set<String>
    /// Allowed pg_catalog functions (unqualified or `pg_catalog.`-qualified).
    public var builtinFunctions: Set<String>
    /// Allowed functions outside pg_catalog, as `schema.name`.
    public var extraFunctions: Set<String>
    /// Whether `current_setting` may read the reviewed harmless settings (`Policy.reviewedSettings`)
    /// besides the tenant claim.
    public var allowsReviewedSettings: Bool
    /// Settings current_setting may read besides the claim, from the metadata list.
    public var readableSettings: Set<String> = []
    /// Result budgets: past either, Palisade stops relaying the answer and ends it with 54000.
    /// nil is no limit.
    public var maxResultRows: Int?
    public var maxResultBytes: Int?
    /// Limits on the planner's estimate for queries that may explode; nil is no estimate.
    public var costBudget: CostBudget?
    /// Whether the audit log may carry raw query text instead of the normalized text.
    public var logsRawQueryText: Bool
    /// `monitor` admits everything and only records what `enforce` would deny, for trying a policy
    /// against real traffic; the server's read-only session still refuses writes.
    public var isMonitorOnly: Bool

    /// The setting that carries the caller's verified claims into the transaction.
    public static let claimSetting = "request.jwt.claims"

    /// Settings a policy may let clients SET. Everything else (search_path, role, timeouts,
    /// read-only switches, custom settings such as the claim) changes what queries mean or
    /// escapes the firewall, and no policy can allow it.
    public static let settableSettings: Set<String> = [
        "application_name", "bytea_output", "client_encoding", "client_min_messages", "datestyle",
        "default_text_search_config", "extra_float_digits", "intervalstyle", "lc_monetary",
        "lc_numeric", "lc_time", "standard_conforming_strings", "timezone",
    ]

    /// Settings `current_setting` may read under `functions.current_setting: reviewed`: facts about
    /// the server and the session that drivers and people ask for. Custom settings (`app.*`) and
    /// anything naming files, hosts, keys or other roles are left out: a custom setting stored on a
    /// role or database (`ALTER ROLE … SET app.jwt_secret = …`) is in every session of that role.
    public static let reviewedSettings: Set<String> = [
        "application_name", "bytea_output", "client_encoding", "client_min_messages", "datestyle",
        "default_text_search_config", "default_transaction_deferrable", "default_transaction_isolation",
        "default_transaction_read_only", "enable_bitmapscan", "enable_hashagg", "enable_hashjoin",
        "enable_indexonlyscan", "enable_indexscan", "enable_mergejoin", "enable_nestloop",
        "enable_partition_pruning", "enable_seqscan", "enable_sort", "extra_float_digits",
        "idle_in_transaction_session_timeout", "integer_datetimes", "intervalstyle", "jit",
        "lc_collate", "lc_ctype", "lc_messages", "lc_monetary", "lc_numeric", "lc_time", "lock_timeout",
        "maintenance_work_mem", "max_identifier_length", "max_parallel_workers_per_gather",
        "random_page_cost", "search_path", "seq_page_cost", "server_encoding", "server_version",
        "server_version_num", "standard_conforming_strings", "statement_timeout", "timezone",
        "transaction_deferrable", "transaction_isolation", "transaction_read_only", "work_mem",
    ]

    /// Values a settable setting may take where any other value would change how Palisade and the
    /// server read the same bytes (client encodings where `\` or `'` can end a multibyte character).
    static let requiredSettingValues: [String: Set<String>] = [
        "client_encoding": ["utf8", "utf-8", "unicode"],
        "standard_conforming_strings": ["on", "true", "1", "yes"],
    ]
}

/// A policy read by reference. The analyzer consults it at every node; copying the struct (a dozen
/// sets, lists and strings) into each walk cost a retain and a release per field per decision.
final class SharedPolicy: Sendable {
    let policy: Policy
    /// Whether every schema on the search path is readable, so an unqualified table name is too.
    let searchPathIsReadable: Bool
    /// `schema.` when the search path is one schema, which then qualifies every unqualified table.
    let unqualifiedTablePrefix: String?
    /// Functions of the server's own search-path schemas, by name, with the first schema defining it.
    let searchPathFunctions: [String: String]
    /// Those with a one-argument form, which `x.name` calls, by name, with the first schema defining one.
    let searchPathOneArgumentFunctions: [String: String]
    /// Operator symbols defined in search-path schemas, with the functions they run.
    let searchPathOperators: [String: Set<String>]
    /// Types of search-path schemas whose input function is outside pg_catalog, with that function.
    let searchPathTypeInputs: [String: String]
    /// The server's sequences as `schema.name`, and their bare names in search-path schemas.
    let sequences: Set<String>
    let searchPathSequences: Set<String>
    /// Patterns of the tree that name an xml column (`{"String":{"sval":"body"}}`).
    let xmlColumnPatterns: [String]
    /// The server's views over a weight of one as `schema.name`, and by bare name in search-path schemas.
    let viewWeights: [String: Int]
    let searchPathViewWeights: [String: Int]

    init(_ policy: Policy, serverFunctions: ServerFunctions = ServerFunctions()) {
        self.policy = policy
        searchPathIsReadable = policy.searchPath.allSatisfy(policy.readableSchemas.contains)
        unqualifiedTablePrefix = policy.searchPath.count == 1 ? policy.searchPath[0] + "." : nil
        var functions: [String: String] = [:]
        var oneArgument: [String: String] = [:]
        // Later schemas first, so that an earlier one, which PostgreSQL searches first, wins.
        for schema in policy.searchPath.reversed() {
            for name in serverFunctions.names[schema] ?? [] { functions[name] = schema }
            for name in serverFunctions.oneArgumentNames[schema] ?? [] { oneArgument[name] = schema }
        }
        searchPathFunctions = functions
        searchPathOneArgumentFunctions = oneArgument
        var operators: [String: Set<String>] = [:]
        var typeInputs: [String: String] = [:]
        var searchPathSequences: Set<String> = []
        for schema in policy.searchPath.reversed() {
            for (symbol, runs) in serverFunctions.operators[schema] ?? [:] { operators[symbol, default: []].formUnion(runs) }
            for (type, input) in serverFunctions.typeInputs[schema] ?? [:] { typeInputs[type] = input }
            searchPathSequences.formUnion(serverFunctions.sequences[schema] ?? [])
        }
        searchPathOperators = operators
        searchPathTypeInputs = typeInputs
        var searchPathViewWeights: [String: Int] = [:]
        for schema in policy.searchPath.reversed() {
            for (view, weight) in serverFunctions.viewWeights[schema] ?? [:] { searchPathViewWeights[view] = weight }
        }
        self.searchPathViewWeights = searchPathViewWeights
        viewWeights = Dictionary(uniqueKeysWithValues: serverFunctions.viewWeights.flatMap { schema, views in views.map { ("\(schema).\($0.key)", $0.value) } })
        self.searchPathSequences = searchPathSequences
        sequences = Set(serverFunctions.sequences.flatMap { schema, names in names.map { "\(schema).\($0)" } })
        // As libpg_query writes the name in its JSON (a String node: not a string constant's value).
        xmlColumnPatterns = serverFunctions.xmlColumns.sorted().map { "{\"String\":{\"sval\":\"" + Self.treeJSON($0) + "\"}}" }
    }

    /// `name` as libpg_query writes a string in its JSON: JSON's escapes, and `<` and `>` as
    /// `\u003c` and `\u003e`.
    static func treeJSON(_ name: String) -> String {
        String(JSONText.quoted(name).dropFirst().dropLast())
            .replacingOccurrences(of: "<", with: "\\u003c").replacingOccurrences(of: ">", with: "\\u003e")
    }
}

/// The functions a server defines outside its system schemas, read when Palisade starts. The text
/// alone cannot show them: PostgreSQL may pick such a function over a built-in of the same name
/// when its argument types match better (`upper(u)` with `public.upper(users)`), and reads `x.f`
/// as `f(x)` for any one-argument `f` on the search path.
///
/// Also what else the text cannot show of those schemas: operators (an extension's `-` on int[]
/// is chosen over pg_catalog's by its operand types, and runs the extension's function), types
/// whose input functions are an extension's (`'a=>1'::hstore`), sequences (read as a relation, a
/// sequence's `last_value` counts every tenant's rows), and the names of xml columns (beside them an
/// untyped literal is parsed as XML).
public struct ServerFunctions: Sendable, Equatable {
    /// Function names by schema.
    public var names: [String: Set<String>]
    /// The names among them with a one-argument form, by schema.
    public var oneArgumentNames: [String: Set<String>]
    /// Operator symbols by schema, each with the functions (`schema.name`) its operators run: only
    /// operators whose operand types are all built in.
    public var operators: [String: [String: Set<String>]]
    /// Types whose input function is outside pg_catalog, by schema: type name to `schema.function`.
    public var typeInputs: [String: [String: String]]
    /// Sequence names by schema.
    public var sequences: [String: Set<String>]
    /// Names of columns of type xml (or arrays or domains of it), in any of those schemas.
    public var xmlColumns: Set<String>
    /// Views by schema, with what the planner expands at a reference (`Analyzer.planningWeight`),
    /// those over one.
    public var viewWeights: [String: [String: Int]]

    public init(names: [String: Set<String>] = [:], oneArgumentNames: [String: Set<String>] = [:],
                operators: [String: [String: Set<String>]] = [:], typeInputs: [String: [String: String]] = [:],
                sequences: [String: Set<String>] = [:], xmlColumns: Set<String> = [], viewWeights: [String: [String: Int]] = [:]) {
        self.names = names
        self.oneArgumentNames = oneArgumentNames
        self.operators = operators
        self.typeInputs = typeInputs
        self.sequences = sequences
        self.xmlColumns = xmlColumns
        self.viewWeights = viewWeights
    }
}

public struct PolicyError: Error, CustomStringConvertible, Sendable {
    public var file: String
    public var line: Int?
    public var key: String?
    public var reason: String

    public var description: String {
        var text = file
        if let line { text += ":\(line)" }
        text += ": "
        if let key { text += "\(key): " }
        return text + reason
    }
}

extension Policy {
    /// Reads and validates a policy file; every problem names the file, the line and the key.
    public static func load(path: String) throws(PolicyError) -> Policy {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw PolicyError(file: path, reason: "cannot read the policy file (\(error.localizedDescription))")
        }
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
        return try parse(data, file: path) { relative throws(PolicyError) in
            let listPath = relative.hasPrefix("/") ? relative : directory + "/" + relative
            guard let bytes = FileManager.default.contents(atPath: listPath) else {
                throw PolicyError(file: path, reason: "cannot read \(listPath), named by the policy")
            }
            return bytes
        }
    }

    /// Validates policy text; `readFile` resolves the function list the policy names.
    public static func parse(
        _ data: Data, file: String, readFile: (String) throws(PolicyError) -> Data
    ) throws(PolicyError) -> Policy {
        guard let text = String(data: data, encoding: .utf8) else {
            throw PolicyError(file: file, reason: "the policy file is not UTF-8 text")
        }
        let root: Yams.Node
        do {
            guard let node = try Yams.compose(yaml: text) else {
                throw PolicyError(file: file, reason: "the policy file is empty")
            }
            root = node
        } catch let error as PolicyError {
            throw error
        } catch {
            throw PolicyError(file: file, reason: "not valid YAML: \(error)")
        }
        let reader = YAMLReader(file: file)
        let top = try reader.mapping(root, path: "", keys: ["profile", "mode", "limits", "statements", "relations", "functions", "audit"])

        let profile = try reader.string(top["profile"], path: "profile", required: true)!
        let mode = try reader.string(top["mode"], path: "mode") ?? "enforce"
        guard mode == "enforce" || mode == "monitor" else { throw reader.error(top["mode"], path: "mode", "expected enforce or monitor") }
        let limits = try reader.mapping(top["limits"], path: "limits", keys: ["max_query_bytes", "max_nesting_depth", "statement_timeout_ms",
                                                                                             "idle_in_transaction_timeout_ms", "max_function_result_bytes", "max_generated_rows",
                                                                                             "max_rows", "max_result_bytes", "max_cost", "max_estimated_rows"])
        let statements = try reader.mapping(top["statements"], path: "statements", keys: ["transaction_control", "explain", "show", "set"])
        let relations = try reader.mapping(top["relations"], path: "relations", keys: ["schemas", "search_path", "catalog", "catalog_relations",
                                                                                                  "row_level_security", "metadata_list", "metadata_list_sha256"])
        let functions = try reader.mapping(top["functions"], path: "functions", keys: ["builtin_list", "builtin_list_sha256", "categories", "allow", "current_setting"])
        let audit = try reader.mapping(top["audit"], path: "audit", keys: ["raw_query_text"])

        let settable = try reader.stringList(statements["set"], path: "statements.set").map { $0.lowercased() }
        for (index, name) in settable.enumerated() where !Policy.settableSettings.contains(name) {
            throw reader.error(statements["set"].flatMap { $0.sequence?[index] }, path: "statements.set",
                               "SET \(name) can never be allowed: it could change how queries are checked or what they see (settable: \(Policy.settableSettings.sorted().joined(separator: ", ")))")
        }

        let listPath = try reader.string(functions["builtin_list"], path: "functions.builtin_list", required: true)!
        let listDigest = try reader.string(functions["builtin_list_sha256"], path: "functions.builtin_list_sha256", required: true)!
        let listData = try readFile(listPath)
        let actualDigest = Hex.encode(SHA256.hash(data: listData))
        guard actualDigest == listDigest.lowercased() else {
            throw reader.error(functions["builtin_list_sha256"], path: "functions.builtin_list_sha256",
                               "\(listPath) has SHA-256 \(actualDigest), not the pinned \(listDigest); review the list's changes, then pin the new digest")
        }
        let catalog = try FunctionList(listData, file: listPath)
        let categories = try reader.stringList(functions["categories"], path: "functions.categories")
        for (index, category) in categories.enumerated() where !catalog.categories.contains(category) {
            throw reader.error(functions["categories"].flatMap { $0.sequence?[index] }, path: "functions.categories",
                               "unknown category '\(category)' (known: \(catalog.categories.sorted().joined(separator: ", ")))")
        }
        let extra = try reader.stringList(functions["allow"], path: "functions.allow")
        for (index, name) in extra.enumerated() {
            let parts = name.split(separator: ".", omittingEmptySubsequences: false)
            let node = functions["allow"].flatMap { $0.sequence?[index] }
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                throw reader.error(node, path: "functions.allow", "'\(name)' must be written schema.name")
            }
            if let reason = ForbiddenFunctions.reason(for: String(parts[1])) {
                throw reader.error(node, path: "functions.allow", "\(name) can never be allowed: \(reason)")
            }
        }
        let currentSetting = try reader.string(functions["current_setting"], path: "functions.current_setting") ?? "claim_only"
        guard currentSetting != "any" else {
            throw reader.error(functions["current_setting"], path: "functions.current_setting",
                               "'any' is no longer accepted: settings stored on roles and databases can hold secrets; use reviewed (the harmless settings Palisade lists, and the claim) or claim_only")
        }
        guard ["claim_only", "reviewed"].contains(currentSetting) else {
            throw reader.error(functions["current_setting"], path: "functions.current_setting", "expected claim_only or reviewed")
        }

        /// A limit of the profile: absent is `value`, outside `range` an error naming the key.
        func limit(_ key: String, default value: Int, in range: ClosedRange<Int>, note: String = "") throws(PolicyError) -> Int {
            let number = try reader.integer(limits[key], path: "limits.\(key)") ?? value
            guard range.contains(number) else {
                throw reader.error(limits[key], path: "limits.\(key)", "must be between \(range.lowerBound) and \(range.upperBound)\(note)")
            }
            return number
        }
        let maxBytes = try limit("max_query_bytes", default: 65536, in: 1...1_048_576)
        let maxDepth = try limit("max_nesting_depth", default: 64, in: 1...1000)
        let searchPath = try reader.stringList(relations["search_path"], path: "relations.search_path")
        var catalogRelations = Set(try reader.stringList(relations["catalog_relations"], path: "relations.catalog_relations"))
        for name in catalogRelations where SecretRelations.names.contains(name) || SecretColumns.byRelation[name] != nil {
            throw reader.error(relations["catalog_relations"], path: "relations.catalog_relations", "\(name) can never be listed: it holds credentials or other sessions' data")
        }
        let maxFunctionResultBytes = try limit("max_function_result_bytes", default: 1_048_576, in: 1...1_073_741_824, note: " (1 GiB)")
        let maxGeneratedRows = try limit("max_generated_rows", default: 1_000_000, in: 1...1_000_000_000_000)
        let timeout = try limit("statement_timeout_ms", default: 30_000, in: 1...86_400_000, note: " (one day)")
        let idleTimeout = try limit("idle_in_transaction_timeout_ms", default: 60_000, in: 1...86_400_000, note: " (one day)")

        let catalogAccess = try reader.catalogAccess(relations["catalog"], path: "relations.catalog")
        var builtinFunctions = catalog.names(inCategories: Set(categories))
        var readableSettings: Set<String> = []
        if catalogAccess == .metadata {
            let listPath = try reader.string(relations["metadata_list"], path: "relations.metadata_list", required: true)!
            let listDigest = try reader.string(relations["metadata_list_sha256"], path: "relations.metadata_list_sha256", required: true)!
            let listData = try readFile(listPath)
            let actualDigest = Hex.encode(SHA256.hash(data: listData))
            guard actualDigest == listDigest.lowercased() else {
                throw reader.error(relations["metadata_list_sha256"], path: "relations.metadata_list_sha256",
                                   "\(listPath) has SHA-256 \(actualDigest), not the pinned \(listDigest); review the list's changes, then pin the new digest")
            }
            let metadata = try MetadataList(listData, file: listPath, functionList: catalog)
            catalogRelations.formUnion(metadata.relations)
            builtinFunctions.formUnion(metadata.functions)
            readableSettings = metadata.settings
        }
        let maxRows = try reader.integer(limits["max_rows"], path: "limits.max_rows")
        let maxResultBytes = try reader.integer(limits["max_result_bytes"], path: "limits.max_result_bytes")
        let maxCost = try reader.integer(limits["max_cost"], path: "limits.max_cost")
        let maxEstimatedRows = try reader.integer(limits["max_estimated_rows"], path: "limits.max_estimated_rows")
        for (key, value) in [("max_rows", maxRows), ("max_result_bytes", maxResultBytes), ("max_cost", maxCost),
                             ("max_estimated_rows", maxEstimatedRows)] where value.map({ $0 < 1 }) ?? false {
            throw reader.error(limits[key], path: "limits.\(key)", "must be at least 1 (leave it out for no limit)")
        }
        let costBudget = maxCost == nil && maxEstimatedRows == nil
            ? nil : CostBudget(maxCost: maxCost.map(Double.init), maxEstimatedRows: maxEstimatedRows.map(Double.init))

        return Policy(
            profile: profile,
            version: Hex.encode(SHA256.hash(data: data)),
            maxQueryBytes: maxBytes,
            maxNestingDepth: maxDepth,
            statementTimeoutMilliseconds: timeout,
            idleInTransactionTimeoutMilliseconds: idleTimeout,
            maxFunctionResultBytes: maxFunctionResultBytes,
            maxGeneratedRows: maxGeneratedRows,
            allowsTransactionControl: try reader.bool(statements["transaction_control"], path: "statements.transaction_control") ?? false,
            allowsExplain: try reader.bool(statements["explain"], path: "statements.explain") ?? false,
            showableSettings: Set(try reader.stringList(statements["show"], path: "statements.show").map { $0.lowercased() }),
            settableSettings: Set(settable),
            readableSchemas: Set(try reader.stringList(relations["schemas"], path: "relations.schemas")),
            searchPath: searchPath.isEmpty ? ["public"] : searchPath,
            hidesStatistics: try reader.bool(relations["row_level_security"], path: "relations.row_level_security") ?? true,
            catalogAccess: catalogAccess,
            catalogRelations: catalogRelations,
            builtinFunctions: builtinFunctions,
            extraFunctions: Set(extra),
            allowsReviewedSettings: currentSetting == "reviewed",
            readableSettings: readableSettings,
            maxResultRows: maxRows,
            maxResultBytes: maxResultBytes,
            costBudget: costBudget,
            logsRawQueryText: try reader.bool(audit["raw_query_text"], path: "audit.raw_query_text") ?? false,
            isMonitorOnly: mode == "monitor"
        )
    }
}

/// The reviewed list of built-in functions: `name<TAB>category` lines, `#` comments.
struct FunctionList {
    var categoryByName: [String: String] = [:]
    var categories: Set<String> { Set(categoryByName.values) }

    init(_ data: Data, file: String) throws(PolicyError) {
        guard let text = String(data: data, encoding: .utf8) else {
            throw PolicyError(file: file, reason: "not UTF-8 text")
        }
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            if line.isEmpty || line.hasPrefix("#") { continue }
            let fields = line.split(separator: "\t")
            guard fields.count == 2 else {
                throw PolicyError(file: file, line: index + 1, reason: "expected name<TAB>category")
            }
            let name = String(fields[0])
            if let reason = ForbiddenFunctions.reason(for: name) {
                throw PolicyError(file: file, line: index + 1, reason: "\(name) can never be allowed: \(reason)")
            }
            categoryByName[name] = String(fields[1])
        }
    }

    func names(inCategories categories: Set<String>) -> Set<String> {
        Set(categoryByName.filter { categories.contains($0.value) }.keys)
    }
}

/// Reads YAML nodes with errors that name the file, line and key.
private struct YAMLReader {
    let file: String

    func error(_ node: Yams.Node?, path: String, _ reason: String) -> PolicyError {
        PolicyError(file: file, line: node?.mark?.line, key: path.isEmpty ? nil : path, reason: reason)
    }

    func mapping(_ node: Yams.Node?, path: String, keys: Set<String>) throws(PolicyError) -> [String: Yams.Node] {
        guard let node else { return [:] }
        guard let mapping = node.mapping else { throw error(node, path: path, "expected a mapping of keys") }
        var result: [String: Yams.Node] = [:]
        for (keyNode, value) in mapping {
            guard let key = keyNode.string else { throw error(keyNode, path: path, "keys must be strings") }
            let keyPath = path.isEmpty ? key : "\(path).\(key)"
            guard keys.contains(key) else {
                throw error(keyNode, path: keyPath, "unknown key (expected one of: \(keys.sorted().joined(separator: ", ")))")
            }
            guard result.updateValue(value, forKey: key) == nil else {
                throw error(keyNode, path: keyPath, "key given twice")
            }
        }
        return result
    }

    func string(_ node: Yams.Node?, path: String, required: Bool = false) throws(PolicyError) -> String? {
        guard let node else {
            if required { throw error(nil, path: path, "required key is missing") }
            return nil
        }
        guard case .scalar(let scalar) = node, scalar.style == .plain || scalar.style == .singleQuoted || scalar.style == .doubleQuoted,
              !scalar.string.isEmpty
        else { throw error(node, path: path, "expected a non-empty string") }
        return scalar.string
    }

    func integer(_ node: Yams.Node?, path: String) throws(PolicyError) -> Int? {
        guard let node else { return nil }
        guard let value = node.int else { throw error(node, path: path, "expected an integer") }
        return value
    }

    func bool(_ node: Yams.Node?, path: String) throws(PolicyError) -> Bool? {
        guard let node else { return nil }
        guard case .scalar(let scalar) = node, ["true", "false"].contains(scalar.string) else {
            throw error(node, path: path, "expected true or false")
        }
        return scalar.string == "true"
    }

    /// `none`, `metadata` or `full`; `false` and `true` as before the setting had three values.
    func catalogAccess(_ node: Yams.Node?, path: String) throws(PolicyError) -> CatalogAccess {
        guard let node else { return .none }
        guard case .scalar(let scalar) = node else { throw error(node, path: path, "expected none, metadata or full") }
        switch scalar.string {
        case "false": return .none
        case "true": return .full
        default:
            guard let access = CatalogAccess(rawValue: scalar.string) else { throw error(node, path: path, "expected none, metadata or full") }
            return access
        }
    }

    func stringList(_ node: Yams.Node?, path: String) throws(PolicyError) -> [String] {
        guard let node else { return [] }
        guard let sequence = node.sequence else { throw error(node, path: path, "expected a list of strings") }
        var values: [String] = []
        for element in sequence {
            guard let value = try string(element, path: path) else { continue }
            values.append(value)
        }
        return values
    }
}
