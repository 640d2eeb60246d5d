import Foundation

/// How much of pg_catalog and information_schema a profile may read (`relations.catalog`).
public enum CatalogAccess: String, Sendable {
    /// Only the profile's `catalog_relations` (what drivers read at connect).
    case none
    /// The reviewed metadata list (`relations.metadata_list`): what schema discovery in SQLAlchemy,
    /// LangChain, pandas and psql reads, and information_schema's privilege-filtered views.
    case metadata
    /// Every catalog relation but the secret ones, with the `catalog` function category.
    case full
}

/// The reviewed metadata list: `kind<TAB>name<TAB>client query that needs it` lines, `#` comments.
/// Kinds: `relation` (schema-qualified, in pg_catalog or information_schema), `function` (a pg_catalog
/// function of the reviewed function list), `setting` (a setting current_setting may read).
struct MetadataList {
    /// pg_catalog relations unqualified, information_schema ones qualified (as the analyzer looks them up).
    var relations: Set<String> = []
    var functions: Set<String> = []
    var settings: Set<String> = []

    init(_ data: Data, file: String, functionList: FunctionList) throws(PolicyError) {
        guard let text = String(data: data, encoding: .utf8) else {
            throw PolicyError(file: file, reason: "not UTF-8 text")
        }
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            if line.isEmpty || line.hasPrefix("#") { continue }
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            func fail(_ reason: String) -> PolicyError { PolicyError(file: file, line: index + 1, reason: reason) }
            guard fields.count == 3, !fields[1].isEmpty, !fields[2].isEmpty else {
                throw fail("expected kind<TAB>name<TAB>the client query that needs it")
            }
            let name = fields[1]
            switch fields[0] {
            case "relation":
                let parts = name.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
                guard parts.count == 2, ["pg_catalog", "information_schema"].contains(parts[0]) else {
                    throw fail("\(name): write pg_catalog.name or information_schema.name")
                }
                // Of the relations with secret columns, only pg_roles may be listed (psql's \d reads
                // rolname): its rolconfig, `*` and the whole row stay denied in any profile. The
                // others (user mappings and their options) exist to hold credentials.
                if SecretRelations.names.contains(parts[1]) || (SecretColumns.byRelation[parts[1]] != nil && parts[1] != "pg_roles") {
                    throw fail("\(name) can never be listed: it holds credentials or other sessions' data")
                }
                relations.insert(parts[0] == "pg_catalog" ? parts[1] : name)
            case "function":
                if let reason = ForbiddenFunctions.reason(for: name) { throw fail("\(name) can never be allowed: \(reason)") }
                guard functionList.categoryByName[name] != nil else {
                    throw fail("\(name) is not in the reviewed function list; review it there first")
                }
                functions.insert(name)
            case "setting":
                guard Policy.metadataReadableSettings.contains(name) else {
                    throw fail("\(name) is not a setting schema discovery may read (known: \(Policy.metadataReadableSettings.sorted().joined(separator: ", ")))")
                }
                settings.insert(name)
            default:
                throw fail("unknown kind '\(fields[0])' (expected relation, function or setting)")
            }
        }
    }
}

extension Policy {
    /// Settings a metadata list may let current_setting read: facts about table storage that the
    /// SQLAlchemy dialect compares against, never credentials, paths or other sessions' state.
    static let metadataReadableSettings: Set<String> = ["default_table_access_method"]
}

extension SharedPolicy {
    /// The second half of a relation denial's hint: what the profile can read, so that an agent can
    /// recover from the error alone.
    var schemaDiscoveryHint: String {
        let readable = policy.readableSchemas.sorted()
        if readable.isEmpty { return "No schemas are readable with this profile." }
        let schemas = readable.joined(separator: ", ")
        let literal = readable.map { "'\($0)'" }.joined(separator: ", ")
        switch policy.catalogAccess {
        case .none:
            return "Readable schemas: \(schemas). This profile cannot list tables; use the table names you were given."
        case .metadata, .full:
            return "Readable schemas: \(schemas). List tables with SELECT table_schema, table_name FROM information_schema.tables WHERE table_schema IN (\(literal)), and columns with information_schema.columns."
        }
    }
}
