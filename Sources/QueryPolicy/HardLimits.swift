import Foundation

/// Functions no profile can allow, whatever schema they are found in: they change server or
/// session state, wait, read files, reach other sessions or servers, or run query text the
/// engine never saw.
enum ForbiddenFunctions {
    private static let exact: [String: String] = [
        "set_config": "it changes session settings, including the tenant claim",
        "pg_notify": "it signals other sessions",
        "pg_terminate_backend": "it ends other sessions",
        "pg_cancel_backend": "it cancels other sessions' queries",
        "pg_reload_conf": "it reloads the server configuration",
        "pg_rotate_logfile": "it rotates the server log",
        "pg_rotate_logfile_old": "it rotates the server log",
        "nextval": "it advances a sequence",
        "setval": "it sets a sequence",
        "txid_current": "it assigns a transaction id",
        "pg_current_xact_id": "it assigns a transaction id",
        "pg_stat_file": "it reads server files",
        "pg_current_logfile": "it reveals server files",
        "ts_stat": "it runs query text",
        "pg_logical_emit_message": "it writes to the WAL",
        "pg_switch_wal": "it forces a WAL switch",
        "pg_promote": "it promotes a standby",
        "pg_create_restore_point": "it writes to the WAL",
        "pg_start_backup": "it starts a backup",
        "pg_stop_backup": "it stops a backup",
        "loread": "it reads large objects",
        "lowrite": "it writes large objects",
        "setseed": "it changes the session's random seed",
    ]

    /// ts_rewrite(tsquery, text) runs the query in its second argument; the three-tsquery form
    /// runs nothing. The analyzer counts the arguments and denies any count but three with this reason.
    static let queryRunningRewrite = "ts_rewrite with two arguments runs the query text in its second"

    private static let prefixes: [(String, String)] = [
        ("pg_sleep", "it makes the server wait"),
        ("pg_advisory", "it takes advisory locks"),
        ("pg_try_advisory", "it takes advisory locks"),
        ("pg_read_", "it reads server files"),
        ("pg_ls_", "it lists server directories"),
        ("pg_file_", "it writes or removes server files"),
        ("lo_", "it reads or writes large objects"),
        ("dblink", "it connects to other servers"),
        ("query_to_xml", "it runs query text"),
        ("table_to_xml", "it runs query text"),
        ("cursor_to_xml", "it runs query text"),
        ("database_to_xml", "it runs query text"),
        ("schema_to_xml", "it runs query text"),
        ("pg_wal_", "it acts on the WAL"),
        ("pg_current_wal", "it acts on the WAL"),
        ("pg_last_wal", "it acts on the WAL"),
        ("pg_walfile", "it acts on the WAL"),
        ("pg_backup_", "it controls backups"),
        ("pg_replication_", "it acts on replication"),
        ("pg_logical_", "it acts on logical replication"),
        ("pg_create_physical_replication_slot", "it creates replication slots"),
        ("pg_create_logical_replication_slot", "it creates replication slots"),
        ("pg_drop_replication_slot", "it drops replication slots"),
        ("pg_copy_physical_replication_slot", "it copies replication slots"),
        ("pg_copy_logical_replication_slot", "it copies replication slots"),
        ("pg_stat_reset", "it resets statistics"),
        ("pg_stat_statements_reset", "it resets statistics"),
    ]

    /// The prefixes as bytes. Every column reference `x.name` asks about its name (attribute
    /// notation), and `String.hasPrefix` against all 27 prefixes was 20k of the 306k instructions
    /// of a fresh decision (callgrind, 2026-12-07); byte comparisons are what an identifier needs.
    private static let prefixBytes: [([UInt8], String)] = prefixes.map { (Array($0.0.utf8), $0.1) }

    /// Why `name` can never be called, or nil.
    static func reason(for name: String) -> String? {
        if let reason = exact[name] { return reason }
        var name = name
        return name.withUTF8 { name in
            for (prefix, reason) in prefixBytes
            where name.count >= prefix.count && name[0] == prefix[0] && memcmp(name.baseAddress!, prefix, prefix.count) == 0 {
                return reason
            }
            return nil
        }
    }
}

/// Relations no profile can read: they hold credentials, other sessions' query text, server
/// configuration, or sampled column values that row-level security does not filter.
enum SecretRelations {
    static let names: Set<String> = [
        "pg_authid", "pg_shadow", "pg_stat_activity",
        "pg_stat_statements", "pg_stat_statements_info", "pg_settings", "pg_file_settings",
        "pg_hba_file_rules", "pg_ident_file_mappings", "pg_largeobject", "pg_statistic", "pg_statistic_ext_data", "pg_stats", "pg_stats_ext",
        "pg_stats_ext_exprs", "pg_stat_subscription", "pg_stat_replication",
        "pg_stat_wal_receiver", "pg_replication_slots", "pg_replication_origin_status",
        "pg_prepared_xacts", "pg_locks", "pg_backend_memory_contexts", "pg_shmem_allocations",
        "pg_config", "pg_stat_ssl", "pg_stat_gssapi", "pg_stat_progress_analyze",
        "pg_stat_progress_basebackup", "pg_stat_progress_cluster", "pg_stat_progress_copy",
        "pg_stat_progress_create_index", "pg_stat_progress_vacuum",
        // information_schema's views of user mappings show their options.
        "user_mapping_options", "_pg_user_mappings",
    ]
}

/// Catalog relations readable by profiles with catalog access except for columns that hold
/// credentials (psql's \deu and \dRs read the others) or settings stored on roles and databases,
/// where PostgREST-style deployments keep secrets such as `app.jwt_secret`. A query over them may
/// not name those columns, select `*`, take the whole row, or rename the columns.
enum SecretColumns {
    static let byRelation: [String: [String]] = [
        "pg_user_mapping": ["umoptions"],
        "pg_user_mappings": ["umoptions"],
        "pg_subscription": ["subconninfo"],
        "pg_db_role_setting": ["setconfig"],
        "pg_roles": ["rolconfig"],
        "pg_user": ["useconfig"],
    ]
}

/// Counts, sizes and planner statistics that the server builds from every row of a table, whatever
/// row-level security lets the caller see: another tenant's row count, table size or most common
/// values. Profiles whose tenants are kept apart by row-level security (`relations.row_level_security`)
/// may not read them.
enum StatisticsCatalog {
    /// Views that are nothing but such counts.
    static let relations: Set<String> = [
        "pg_stat_all_tables", "pg_stat_user_tables", "pg_stat_sys_tables",
        "pg_stat_xact_all_tables", "pg_stat_xact_user_tables", "pg_stat_xact_sys_tables",
        "pg_stat_all_indexes", "pg_stat_user_indexes", "pg_stat_sys_indexes",
        "pg_statio_all_tables", "pg_statio_user_tables", "pg_statio_sys_tables",
        "pg_statio_all_indexes", "pg_statio_user_indexes", "pg_statio_sys_indexes",
        "pg_statio_all_sequences", "pg_statio_user_sequences", "pg_statio_sys_sequences",
        "pg_stat_database",
        // Calls of each function by every tenant (third red team).
        "pg_stat_user_functions", "pg_stat_xact_user_functions",
        // Server-wide counters of single writes: pg_stat_wal's wal_records rose by 1,000 when another
        // tenant inserted 1,000 rows, pg_stat_slru's Xact blks_hit by one a committed transaction
        // (fifteenth red team), and a logical slot's counts are transactions. Those counting
        // checkpoints or 16 MB segments (pg_stat_archiver, and pg_stat_bgwriter but for its pages,
        // guarded as columns below) stay readable: they show the server's load, not a tenant's rows.
        "pg_stat_wal", "pg_stat_slru", "pg_stat_replication_slots",
        // On a standby, blocks replayed from every tenant's writes: prefetch counters rose by 51,
        // 201 and 508 as another tenant inserted 25, 100 and 250 rows on the primary (seventeenth
        // red team); queries cancelled by replay, and subscriptions' errors, are as much others' work.
        "pg_stat_recovery_prefetch", "pg_stat_database_conflicts", "pg_stat_subscription_stats",
    ]

    /// The statistics views of pg_catalog that stay readable (`RedTeamSeventeenTests` holds every other
    /// `pg_stat*` relation to this list or the secret ones): they count checkpoints and archived
    /// segments, the server's load rather than a tenant's rows (pg_stat_bgwriter's page counts are
    /// guarded as columns below), or describe extended statistics without their data.
    static let readableStatisticsViews: Set<String> = ["pg_stat_archiver", "pg_stat_bgwriter", "pg_statistic_ext"]

    /// Columns of otherwise readable catalog relations (psql's \d reads pg_class's other columns):
    /// counts, and every transaction-id column, since age() of one counts every tenant's writes since
    /// (pg_class.relfrozenxid in the fourth red team, pg_database.datfrozenxid in the fifteenth).
    static let columns: [String: [String]] = [
        "pg_class": ["reltuples", "relpages", "relallvisible"],
        "pg_sequences": ["last_value"],
        // Pages written and evicted, by every tenant: buffers_checkpoint rose by 3 after another
        // tenant updated 10 rows, and by 11 after it updated all of its rows (sixteenth red team).
        // The checkpoint counts and times stay readable: they show the server's load.
        "pg_stat_bgwriter": ["buffers_checkpoint", "buffers_clean", "maxwritten_clean", "buffers_backend",
                             "buffers_backend_fsync", "buffers_alloc"],
    ].merging(PG15Catalog.transactionIDColumns) { counts, transactionIDs in counts + transactionIDs }

    /// Functions that measure relations and databases on disk.
    static let functions: Set<String> = [
        "pg_relation_size", "pg_table_size", "pg_total_relation_size", "pg_indexes_size",
        "pg_database_size", "pg_tablespace_size",
    ]
}

/// The columns of the relations with guarded columns (PostgreSQL 15), system columns included:
/// `r.name` names a column of `r` when `r` has one, and is a call on `r`'s whole row only otherwise.
enum GuardedRelationColumns {
    private static let system: Set<String> = ["tableoid", "ctid", "xmin", "xmax", "cmin", "cmax"]
    static let byRelation: [String: Set<String>] = ([
        "pg_db_role_setting": ["setdatabase", "setrole", "setconfig"],
        "pg_roles": ["rolname", "rolsuper", "rolinherit", "rolcreaterole", "rolcreatedb", "rolcanlogin", "rolreplication",
                     "rolconnlimit", "rolpassword", "rolvaliduntil", "rolbypassrls", "rolconfig", "oid"],
        "pg_stat_bgwriter": ["checkpoints_timed", "checkpoints_req", "checkpoint_write_time", "checkpoint_sync_time",
                             "buffers_checkpoint", "buffers_clean", "maxwritten_clean", "buffers_backend",
                             "buffers_backend_fsync", "buffers_alloc", "stats_reset"],
        "pg_sequences": ["schemaname", "sequencename", "sequenceowner", "data_type", "start_value", "min_value", "max_value",
                         "increment_by", "cycle", "cache_size", "last_value"],
        "pg_subscription": ["oid", "subdbid", "subskiplsn", "subname", "subowner", "subenabled", "subbinary", "substream",
                            "subtwophasestate", "subdisableonerr", "subconninfo", "subslotname", "subsynccommit", "subpublications"],
        "pg_user": ["usename", "usesysid", "usecreatedb", "usesuper", "userepl", "usebypassrls", "passwd", "valuntil", "useconfig"],
        "pg_user_mapping": ["oid", "umuser", "umserver", "umoptions"],
        "pg_user_mappings": ["umid", "srvid", "srvname", "umuser", "usename", "umoptions"],
    ] as [String: Set<String>]).mapValues { $0.union(system) }
        .merging(PG15Catalog.transactionIDRelationColumns.mapValues(Set.init)) { listed, generated in listed.union(generated) }
}

/// What the engine knows of a relation name by itself: one lookup per relation reference
/// instead of one per list.
struct SpecialRelation: Sendable {
    var isSecret = false
    var isPgCatalog = false
    var isStatistics = false
    var secretColumns: [String] = []
    var statisticsColumns: [String] = []

    static let byName: NameTable<SpecialRelation> = {
        var table: [String: SpecialRelation] = [:]
        for name in SecretRelations.names { table[name, default: SpecialRelation()].isSecret = true }
        for name in PG15Catalog.pgCatalogRelations { table[name, default: SpecialRelation()].isPgCatalog = true }
        for (name, columns) in SecretColumns.byRelation { table[name, default: SpecialRelation()].secretColumns = columns }
        for name in StatisticsCatalog.relations { table[name, default: SpecialRelation()].isStatistics = true }
        for (name, columns) in StatisticsCatalog.columns { table[name, default: SpecialRelation()].statisticsColumns = columns }
        return NameTable(table.lazy.map { ($0.key, $0.value) })
    }()
}
