import Foundation
import NIOPosix
import PalisadeProxy
import QueryPolicy

extension ServeSettings {
    /// The connections the server accepts from Palisade's role: max_connections less the slots
    /// kept for superusers, or the role's own connection limit if lower.
    public func serverConnectionSlots() async throws -> Int {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let rows: [[String?]]
        do {
            rows = try await BackendProbe.query(
                """
                SELECT (current_setting('max_connections')::int - current_setting('superuser_reserved_connections')::int)::text,
                       rolconnlimit::text FROM pg_catalog.pg_roles WHERE rolname = current_user
                """, on: backend, tls: try backendTLS(), group: group)
            try? await group.shutdownGracefully()
        } catch {
            try? await group.shutdownGracefully()
            throw configError("backend", "\(error)")
        }
        guard let row = rows.first, row.count == 2, let slots = row[0].flatMap({ Int($0) }) else {
            throw configError("backend", "cannot read the server's max_connections")
        }
        let roleLimit = row[1].flatMap { Int($0) } ?? -1
        return max(1, roleLimit >= 0 ? min(slots, roleLimit) : slots)
    }

    /// The server must be reachable, and row-level security must apply to Palisade's role. Returns
    /// the functions the server defines outside its system schemas, for the policy engines, and
    /// its types, for the parameter types clients declare.
    public func checkBackend() async throws -> (ServerFunctions, ServerTypes) {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let role: [[String?]]
        let functions: [[String?]]
        let objects: [[String?]]
        let types: [[String?]]
        do {
            let tls = try backendTLS()
            role = try await BackendProbe.query(
                "SELECT rolsuper::text, rolbypassrls::text FROM pg_catalog.pg_roles WHERE rolname = current_user", on: backend,
                tls: tls, group: group)
            functions = try await BackendProbe.query(
                """
                SELECT n.nspname, p.proname, bool_or(p.pronargs = 1)::text FROM pg_catalog.pg_proc p
                JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
                WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp_)'
                GROUP BY 1, 2
                """, on: backend, tls: tls, group: group)
            // Operators, extension types, sequences, xml columns and views of the same schemas (see ServerFunctions).
            // Only operators on built-in types can take the place of a built-in one for ordinary
            // operands (intarray's int[] - int); one on an extension's type (PostGIS's geometry =)
            // needs operands of that type, which come from its columns or from casts the type rules check.
            objects = try await BackendProbe.query(
                """
                WITH RECURSIVE user_schemas AS (SELECT oid, nspname FROM pg_catalog.pg_namespace
                                      WHERE nspname NOT IN ('pg_catalog', 'information_schema') AND nspname !~ '^pg_(toast|temp_)'),
                -- A view's weight as scripts/generate-pg15-catalog.sh works it out for the catalog's.
                view_tree AS (SELECT ev_class AS view, length(ev_action::text) AS bytes, ev_action::text AS action
                              FROM pg_catalog.pg_rewrite WHERE rulename = '_RETURN'),
                view_walk(root, node) AS (
                    SELECT t.view, t.view FROM view_tree t JOIN pg_catalog.pg_class c ON c.oid = t.view
                    JOIN user_schemas s ON s.oid = c.relnamespace WHERE c.relkind = 'v'
                    UNION ALL
                    SELECT w.root, m[1]::oid FROM view_walk w JOIN view_tree t ON t.view = w.node,
                    regexp_matches(t.action, ':relid ([0-9]+) :relkind v', 'g') m WHERE m[1]::oid <> w.node)
                SELECT 'operator', s.nspname, o.oprname, pn.nspname || '.' || p.proname FROM pg_catalog.pg_operator o
                JOIN user_schemas s ON s.oid = o.oprnamespace JOIN pg_catalog.pg_proc p ON p.oid = o.oprcode
                JOIN pg_catalog.pg_namespace pn ON pn.oid = p.pronamespace
                WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace tn ON tn.oid = t.typnamespace
                                  WHERE t.oid IN (o.oprleft, o.oprright) AND tn.nspname <> 'pg_catalog')
                UNION ALL
                SELECT 'type', s.nspname, t.typname, pn.nspname || '.' || p.proname FROM pg_catalog.pg_type t
                JOIN user_schemas s ON s.oid = t.typnamespace JOIN pg_catalog.pg_proc p ON p.oid = t.typinput
                JOIN pg_catalog.pg_namespace pn ON pn.oid = p.pronamespace WHERE pn.nspname <> 'pg_catalog'
                UNION ALL
                SELECT 'sequence', s.nspname, c.relname, NULL FROM pg_catalog.pg_class c JOIN user_schemas s ON s.oid = c.relnamespace
                WHERE c.relkind = 'S'
                UNION ALL
                SELECT DISTINCT 'xml', NULL, a.attname, NULL FROM pg_catalog.pg_attribute a
                JOIN pg_catalog.pg_class c ON c.oid = a.attrelid JOIN user_schemas s ON s.oid = c.relnamespace
                JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
                WHERE a.attnum > 0 AND NOT a.attisdropped
                  AND (t.oid IN ('pg_catalog.xml'::pg_catalog.regtype, 'pg_catalog._xml'::pg_catalog.regtype)
                       OR t.typbasetype IN ('pg_catalog.xml'::pg_catalog.regtype, 'pg_catalog._xml'::pg_catalog.regtype))
                UNION ALL
                SELECT 'view', s.nspname, c.relname, ceil(sum(t.bytes) / 4096.0)::int::text FROM view_walk w
                JOIN view_tree t ON t.view = w.node JOIN pg_catalog.pg_class c ON c.oid = w.root
                JOIN user_schemas s ON s.oid = c.relnamespace
                GROUP BY s.nspname, c.relname HAVING ceil(sum(t.bytes) / 4096.0) > 1
                """, on: backend, tls: tls, group: group)
            // Each type with the types whose input functions reading it runs too (see ServerTypes).
            types = try await BackendProbe.query(
                """
                SELECT t.oid::text, n.nspname, t.typname, concat_ws(' ', nullif(t.typelem, 0), nullif(t.typbasetype, 0),
                       (SELECT r.rngsubtype FROM pg_catalog.pg_range r WHERE r.rngtypid = t.oid),
                       (SELECT r.rngtypid FROM pg_catalog.pg_range r WHERE r.rngmultitypid = t.oid),
                       (SELECT string_agg(a.atttypid::text, ' ') FROM pg_catalog.pg_attribute a
                        WHERE t.typrelid <> 0 AND a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped))
                FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
                """, on: backend, tls: tls, group: group)
            try? await group.shutdownGracefully()
        } catch {
            try? await group.shutdownGracefully()
            throw configError("backend", "\(error)")
        }
        guard let row = role.first, row.count == 2 else { throw configError("backend", "cannot read the role's attributes") }
        if row[0] == "true" || row[1] == "true", !allowPrivilegedBackend {
            throw configError("backend", "role \(backend.user) is \(row[0] == "true" ? "a superuser" : "BYPASSRLS"): row-level security would not apply to it; use a role that owns nothing and can only SELECT (or pass --allow-privileged-backend)")
        }
        var server = ServerFunctions()
        for row in functions where row.count == 3 {
            guard let schema = row[0], let name = row[1] else { continue }
            server.names[schema, default: []].insert(name)
            if row[2] == "true" { server.oneArgumentNames[schema, default: []].insert(name) }
        }
        for row in objects where row.count == 4 {
            guard let kind = row[0], let name = row[2] else { continue }
            switch (kind, row[1], row[3]) {
            case ("operator", let schema?, let function?): server.operators[schema, default: [:]][name, default: []].insert(function)
            case ("type", let schema?, let function?): server.typeInputs[schema, default: [:]][name] = function
            case ("sequence", let schema?, _): server.sequences[schema, default: []].insert(name)
            case ("xml", _, _): server.xmlColumns.insert(name)
            case ("view", let schema?, let weight?): server.viewWeights[schema, default: [:]][name] = Int(weight)
            default: break
            }
        }
        var serverTypes = ServerTypes()
        for row in types where row.count == 4 {
            guard let oid = row[0].flatMap({ UInt32($0) }), let schema = row[1], let name = row[2] else { continue }
            let components = (row[3] ?? "").split(separator: " ").compactMap { UInt32($0) }
            serverTypes.byOID[oid] = ServerTypes.Entry(schema: schema, name: name, components: components)
        }
        return (server, serverTypes)
    }
}
