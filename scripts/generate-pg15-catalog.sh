#!/usr/bin/env bash
# Regenerates the PostgreSQL 15 catalog facts Palisade is built from, straight
# from a live PostgreSQL 15 server's own catalogs.
#
# Usage:
#   scripts/generate-pg15-catalog.sh [CONNINFO]          # regenerate
#   scripts/generate-pg15-catalog.sh --check [CONNINFO]  # verify the reviewed lists
#
# CONNINFO is any libpq connection string or URI ("host=127.0.0.1 port=5432
# user=postgres dbname=postgres"); without it the usual PG* environment
# variables apply. Only reads the catalogs; any role that can log in will do.
#
# Writes:
#   Policies/functions/pg15-candidates.tsv           name, proposed category, facts
#   Sources/QueryPolicy/Generated/PG15Catalog.swift  relations, operators, types
#
# It never writes the hand-reviewed Policies/functions/pg15.tsv or
# Policies/functions/pg15-excluded.tsv. --check verifies that, together, those
# two files name every distinct pg_catalog function exactly once, use only the
# fixed categories, are sorted, and allow nothing that is revoked from PUBLIC
# or that only takes or returns `internal`. It exits non-zero on any finding.
set -euo pipefail

mode=generate
if [[ "${1:-}" == "--check" ]]; then mode=check; shift; fi
if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then
    sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
fi
conninfo="${1:-}"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
funcdir="$root/Policies/functions"
candidates="$funcdir/pg15-candidates.tsv"
reviewed="$funcdir/pg15.tsv"
excluded="$funcdir/pg15-excluded.tsv"
swiftfile="$root/Sources/QueryPolicy/Generated/PG15Catalog.swift"

categories="math string binary datetime aggregate window json array setof fts formatting conditional network geometry range uuid hash enum bits xml cast session catalog"

export LC_ALL=C
psql_args=(-X -q -At -v ON_ERROR_STOP=1)
if [[ -n "$conninfo" ]]; then psql_args+=(-d "$conninfo"); fi
q() { psql "${psql_args[@]}" -F $'\t' -c "$1"; }

version="$(q "show server_version_num")"
if (( version < 150000 || version >= 160000 )); then
    echo "error: need a PostgreSQL 15 server, this one is server_version_num=$version" >&2
    exit 2
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

q "select distinct proname from pg_catalog.pg_proc
   where pronamespace = 'pg_catalog'::regnamespace order by 1" | sort -u > "$tmp/live"

# ---------------------------------------------------------------------------
# --check: coverage and sanity of the two hand-reviewed files
# ---------------------------------------------------------------------------
if [[ "$mode" == check ]]; then
    status=0
    for f in "$reviewed" "$excluded"; do
        [[ -f "$f" ]] || { echo "missing file: $f" >&2; exit 1; }
        # data lines must be exactly name<TAB>value
        # allowed names are lower case (as the engine compares them); a few excluded
        # pg_catalog names are mixed case (RI_FKey_*)
        namere='^[a-z0-9_]+$'; [[ "$f" == "$excluded" ]] && namere='^[A-Za-z0-9_]+$'
        bad="$(grep -v -e '^#' -e '^[[:space:]]*$' "$f" | awk -F'\t' -v re="$namere" 'NF != 2 || $1 == "" || $2 == "" || $1 !~ re' || true)"
        if [[ -n "$bad" ]]; then echo "malformed lines in ${f#$root/}:"; echo "$bad" | sed 's/^/  /'; status=1; fi
        grep -v -e '^#' -e '^[[:space:]]*$' "$f" | cut -f1 > "$tmp/$(basename "$f").names"
        if ! sort -c "$tmp/$(basename "$f").names" 2>/dev/null; then
            echo "not sorted by name (LC_ALL=C): ${f#$root/}"; status=1
        fi
    done
    cat "$tmp/pg15.tsv.names" "$tmp/pg15-excluded.tsv.names" | sort > "$tmp/listed"
    dup="$(uniq -d "$tmp/listed")"
    missing="$(comm -23 "$tmp/live" <(sort -u "$tmp/listed"))"
    extra="$(comm -13 "$tmp/live" <(sort -u "$tmp/listed"))"
    [[ -z "$dup" ]] || { echo "listed more than once:"; echo "$dup" | sed 's/^/  /'; status=1; }
    [[ -z "$missing" ]] || { echo "in pg_catalog but in neither file:"; echo "$missing" | sed 's/^/  /'; status=1; }
    [[ -z "$extra" ]] || { echo "listed but not a pg_catalog function on this server:"; echo "$extra" | sed 's/^/  /'; status=1; }
    badcat="$(grep -v -e '^#' -e '^[[:space:]]*$' "$reviewed" | awk -F'\t' -v cats="$categories" '
        BEGIN { n = split(cats, a, " "); for (i = 1; i <= n; i++) ok[a[i]] = 1 }
        !($2 in ok) { print $1 "\t" $2 }')"
    [[ -z "$badcat" ]] || { echo "unknown category in pg15.tsv:"; echo "$badcat" | sed 's/^/  /'; status=1; }
    # Safety nets against review mistakes.
    q "select distinct p.proname from pg_catalog.pg_proc p
       where p.pronamespace = 'pg_catalog'::regnamespace and p.proacl is not null
         and not exists (select 1 from aclexplode(p.proacl) a
                         where a.grantee = 0 and a.privilege_type = 'EXECUTE')
       order by 1" > "$tmp/notpublic"
    q "select p.proname from pg_catalog.pg_proc p
       where p.pronamespace = 'pg_catalog'::regnamespace
       group by 1
       having bool_and(p.prorettype = 'internal'::regtype
                       or 'internal'::regtype = any (p.proargtypes::oid[]))
       order by 1" > "$tmp/allinternal"
    sort -u "$tmp/pg15.tsv.names" > "$tmp/allowed"
    np="$(comm -12 "$tmp/allowed" "$tmp/notpublic")"
    ai="$(comm -12 "$tmp/allowed" "$tmp/allinternal")"
    [[ -z "$np" ]] || { echo "allowed but EXECUTE is revoked from PUBLIC (superuser-only):"; echo "$np" | sed 's/^/  /'; status=1; }
    [[ -z "$ai" ]] || { echo "allowed but every overload takes or returns internal:"; echo "$ai" | sed 's/^/  /'; status=1; }
    if (( status == 0 )); then
        echo "ok: $(wc -l < "$tmp/live") pg_catalog function names;" \
             "$(wc -l < "$tmp/pg15.tsv.names") allowed, $(wc -l < "$tmp/pg15-excluded.tsv.names") excluded"
    fi
    exit $status
fi

# ---------------------------------------------------------------------------
# Candidates: every distinct pg_catalog proname, a proposed category, facts.
# The proposal is a heuristic starting point for the human review only.
# Proposed exclusions are written as "-reason".
# ---------------------------------------------------------------------------
q "
with p as (
  select p.oid, p.proname, p.prokind, p.provolatile, p.proparallel, p.proretset,
         p.prorettype, format_type(p.prorettype, null) as rettype,
         coalesce(obj_description(p.oid, 'pg_proc'), '') as descr,
         (p.prorettype = 'internal'::regtype
            or 'internal'::regtype = any (p.proargtypes::oid[])) as uses_internal,
         (p.proacl is not null and not exists (
            select 1 from aclexplode(p.proacl) a
            where a.grantee = 0 and a.privilege_type = 'EXECUTE')) as not_public,
         exists (select 1 from pg_type t where p.oid in
            (t.typinput::oid, t.typoutput::oid, t.typreceive::oid, t.typsend::oid,
             t.typmodin::oid, t.typmodout::oid, t.typanalyze::oid, t.typsubscript::oid)) as type_io,
         (exists (select 1 from pg_amproc a where a.amproc = p.oid)
            or exists (select 1 from pg_am a where a.amhandler = p.oid)) as am_support,
         (exists (select 1 from pg_operator o where p.oid in (o.oprrest::oid, o.oprjoin::oid))
            or exists (select 1 from pg_proc s where s.prosupport = p.oid)) as planner_support,
         exists (select 1 from pg_operator o where o.oprcode = p.oid) as opr_impl,
         exists (select 1 from pg_cast c where c.castfunc = p.oid) as cast_func,
         exists (select 1 from pg_conversion c where c.conproc = p.oid) as conversion,
         exists (select 1 from pg_aggregate a where p.oid in
            (a.aggtransfn::oid, a.aggfinalfn::oid, a.aggcombinefn::oid, a.aggserialfn::oid,
             a.aggdeserialfn::oid, a.aggmtransfn::oid, a.aggminvtransfn::oid,
             a.aggmfinalfn::oid)) as agg_support,
         (exists (select 1 from pg_language l where p.oid in
            (l.lanplcallfoid, l.laninline, l.lanvalidator))
          or exists (select 1 from pg_ts_parser t where p.oid in
            (t.prsstart::oid, t.prstoken::oid, t.prsend::oid, t.prsheadline::oid, t.prslextype::oid))
          or exists (select 1 from pg_ts_template t where p.oid in (t.tmplinit::oid, t.tmpllexize::oid))
          or p.prorettype in ('index_am_handler'::regtype, 'table_am_handler'::regtype,
                              'tsm_handler'::regtype, 'fdw_handler'::regtype,
                              'language_handler'::regtype)) as handler,
         p.prorettype in ('trigger'::regtype, 'event_trigger'::regtype) as trigger_fn
  from pg_proc p
  where p.pronamespace = 'pg_catalog'::regnamespace
),
n as (
  select proname,
         count(*) as overloads,
         string_agg(distinct prokind::text, '' order by prokind::text) as kinds,
         string_agg(distinct provolatile::text, '' order by provolatile::text) as volatility,
         string_agg(distinct proparallel::text, '' order by proparallel::text) as parallel,
         bool_or(proretset) as retset,
         bool_and(uses_internal) as all_internal, bool_or(uses_internal) as some_internal,
         bool_or(not_public) as not_public,
         bool_and(type_io) as all_type_io, bool_or(type_io) as some_type_io,
         bool_and(am_support) as all_am, bool_and(planner_support) as all_planner,
         bool_and(opr_impl) as all_opr, bool_or(cast_func) as cast_func,
         bool_and(conversion) as all_conversion, bool_and(agg_support) as all_agg_support,
         bool_or(handler) as handler, bool_or(trigger_fn) as trigger_fn,
         bool_and(descr like 'implementation of %') as all_opr_descr,
         string_agg(distinct rettype, ',' order by rettype) as rettypes,
         (array_agg(descr order by (descr = ''), oid))[1] as descr,
         exists (select 1 from pg_type t where t.typname = p.proname
                 and t.typnamespace = 'pg_catalog'::regnamespace) as type_named,
         exists (select 1 from pg_type t where t.typname = p.proname
                 and t.typnamespace = 'pg_catalog'::regnamespace and t.typtype in ('r', 'm')) as range_named
  from p group by proname
),
c as (
  select n.*,
    case
      when not_public then '-superuser-only'
      when proname ~ '^(pg_)?(setseed|nextval|setval|currval|lastval|set_config|pg_notify)$'
           or proname ~ '^pg_(try_)?advisory' or proname ~ '^pg_stat_reset'
           or proname ~ '^(gin_clean_pending_list|brin_summarize|brin_desummarize|pg_import_system_collations)'
           then '-side-effect'
      when proname ~ '^(pg_sleep)' then '-sleep'
      when proname ~ '^(lo_.*|loread|lowrite)$' then '-large-object'
      when proname ~ '^dblink' then '-side-effect'
      when proname ~ '^(query|table|cursor|database|schema)_to_xml' or proname ~ '_to_xmlschema'
           or proname in ('ts_stat', 'ts_rewrite') then '-executes-query-text'
      when proname ~ '^pg_(ls_|read_|stat_file|current_logfile|file_)' then '-file-access'
      when proname ~ '^pg_(replication|logical|wal_|current_wal|walfile|last_wal|last_xact|create_|drop_|copy_|backup|start_backup|stop_backup|switch_wal|promote|get_replication|get_wal|is_wal)'
           then '-replication-wal'
      when proname ~ '^pg_stat_get_' or proname ~ '^pg_stat_' then '-other-sessions'
      when proname ~ '^pg_(terminate_backend|cancel_backend|reload_conf|rotate_logfile|log_backend)' then '-side-effect'
      when proname ~ '^pg_(show_all|hba_file|ident_file|settings_get|cursor$|prepared_|lock_status|blocking_pids|safe_snapshot|isolation_test|get_shmem|get_backend_memory|control_|config$|event_trigger|trigger_depth|get_publication|mcv_list|get_object_address|get_multixact|nextoid|sequence_|tablespace_databases|jit_available)'
           then '-server-internals'
      when proname ~ '^binary_upgrade_' then '-server-internals'
      when all_type_io or proname ~ '(typmodin|typmodout)$' then '-type-io'
      when trigger_fn then '-trigger'
      when handler or proname ~ '(_handler|handler|validator)$' then '-internal'
      when all_conversion then '-encoding-conversion'
      when all_am or proname ~ '^(gist|gin|spg|brin|bt|hash)[a-z0-9_]*(cmp|consistent|union|penalty|picksplit|same|compress|decompress|distance|options|sortsupport|fetch|config|choose|inner_consistent|leaf_consistent|triconsistent|extractvalue|extractquery)' then '-index-am-support'
      when all_planner or proname ~ '(_support|sel|joinsel)$' then '-planner-support'
      when descr ~* '^for use by pg_upgrade' then '-not-useful'
      when kinds = 'a' then 'aggregate'
      when kinds ~ 'w' then 'window'
      when all_agg_support then '-aggregate-support'
      when all_internal then '-internal'
      when all_opr and all_opr_descr then '-operator-impl'
      when proname ~ '(xact|xid|txid|snapshot|multixact)' then '-xid'
      when proname ~ '(in|out|recv|send)$' and some_type_io then '-type-io'
      when proname in ('generate_series', 'generate_subscripts', 'unnest') then 'setof'
      when range_named or proname ~ 'range' then 'range'
      when proname ~ '^(to_char|to_date|to_number|to_timestamp)$' then 'formatting'
      when proname ~ '^(pg_get_|pg_.*_is_visible$|has_.*_privilege$|pg_has_role|obj_description|col_description|shobj_description|format_type|to_reg|pg_describe_object|pg_identify_object|pg_.*_size$|pg_size_|pg_encoding|pg_char_to_encoding|pg_tablespace_location|pg_options_to_table|pg_relation_|pg_partition_|pg_indexam|pg_index_|pg_filenode|pg_collation)'
           then 'catalog'
      when proname ~ '^(version|current_database|current_schemas?|current_setting|current_query|current_user|session_user|current_role|pg_backend_pid|inet_(client|server)_(addr|port)|pg_postmaster_start_time|pg_conf_load_time|pg_typeof|pg_is_in_recovery|pg_is_in_backup|getdatabaseencoding|pg_client_encoding|pg_my_temp_schema|pg_is_other_temp_schema)$'
           then 'session'
      when proname ~ '(json|jsonb)' then 'json'
      when proname ~ '^(ts_|to_ts|tsvector|tsquery|plainto_|phraseto_|websearch_to_|setweight|strip|numnode|querytree)' then 'fts'
      when proname ~ '^(array_|cardinality|trim_array|string_to_array)' then 'array'
      when proname ~ '^(xml|xpath)' then 'xml'
      when proname ~ '(uuid)' then 'uuid'
      when proname ~ '^(md5|sha224|sha256|sha384|sha512)$' then 'hash'
      when proname ~ '^enum_' then 'enum'
      when proname ~ '^(inet|cidr|macaddr|host|network|netmask|masklen|broadcast|family|abbrev|hostmask|set_masklen)' then 'network'
      when proname ~ '(point|box|circle|lseg|line|path|poly|area|center|diameter|radius|height|width|npoints|isclosed|isopen|slope)' then 'geometry'
      when proname ~ '^(bit|varbit|get_bit|set_bit|bit_count|bit_length)' then 'bits'
      when proname ~ '^(encode|decode|get_byte|set_byte|convert|bytea)' then 'binary'
      when proname ~ '^(coalesce|nullif|greatest|least|num_nulls|num_nonnulls)$' then 'conditional'
      when cast_func or type_named then 'cast'
      when proname ~ '(date|time|interval|age|epoch|extract|justify|isfinite|now|clock)' then 'datetime'
      when proname ~ '(regexp|str|text|char|like|trim|pad|upper|lower|initcap|replace|concat|format|quote|ascii|chr|left|right|reverse|split|translate|overlay|position|substr|normalize|length)' then 'string'
      when rettypes ~ '^(numeric|double precision|integer|bigint|smallint|real)(,(numeric|double precision|integer|bigint|smallint|real))*$' then 'math'
      when rettypes ~ '^(text|character varying)$' then 'string'
      when rettypes ~ '(timestamp|date|interval|time)' then 'datetime'
      else '?'
    end as proposed
  from n
)
select proname, proposed,
       'overloads=' || overloads
       || ' kinds=' || kinds
       || ' volatility=' || volatility
       || ' parallel=' || parallel
       || case when retset then ' setof' else '' end
       || case when kinds ~ '[awp]' then ' agg/window/proc' else '' end
       || case when all_internal then ' internal=all' when some_internal then ' internal=some' else '' end
       || case when not_public then ' not-public' else '' end
       || case when all_type_io then ' type-io' when some_type_io then ' type-io=some' else '' end
       || case when all_am then ' index-am' else '' end
       || case when all_planner then ' planner' else '' end
       || case when all_opr then ' operator-impl' else '' end
       || case when cast_func then ' cast' else '' end
       || case when all_agg_support then ' agg-support' else '' end
       || case when trigger_fn then ' trigger' else '' end
       || ' returns=' || replace(rettypes, ' ', '_')
       || ' | ' || regexp_replace(descr, '[[:space:]]+', ' ', 'g')
from c order by proname
" > "$tmp/candidates.body"

{
    printf '# Generated by scripts/generate-pg15-catalog.sh from PostgreSQL %s. Do not edit; review into pg15.tsv / pg15-excluded.tsv.\n' "$(q "show server_version")"
    printf '# name<TAB>proposed_category (a leading "-" proposes exclusion, "?" means no guess)<TAB>facts | first description\n'
    printf '# facts: kinds f=function a=aggregate w=window p=procedure; volatility i/s/v; parallel s/r/u.\n'
    cat "$tmp/candidates.body"
} > "$tmp/candidates.tsv"

if [[ "$(grep -vc '^#' "$tmp/candidates.tsv")" != "$(wc -l < "$tmp/live")" ]]; then
    echo "error: candidates do not cover every pg_catalog function name" >&2
    exit 1
fi

# ---------------------------------------------------------------------------
# PG15Catalog.swift
# ---------------------------------------------------------------------------
swift_set() { # $1 = doc comment, $2 = property name, $3 = query returning one column
    printf '    /// %s\n' "$1"
    printf '    static let %s: Set<String> = [\n' "$2"
    q "$3" | sort -u | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/        "/' -e 's/$/",/'
    printf '    ]\n'
}
swift_map() { # $1 = doc comment, $2 = property name, $3 = query returning two columns: key, value
    printf '    /// %s\n' "$1"
    printf '    static let %s: [String: [String]] = [\n' "$2"
    q "$3" | LC_ALL=C sort -u | awk -F '\t' '
        $1 != key { if (key != "") printf "],\n"; key = $1; printf "        \"%s\": [\"%s\"", $1, $2; next }
        { printf ", \"%s\"", $2 }
        END { if (key != "") printf "],\n" }'
    printf '    ]\n'
}
swift_weights() { # $1 = doc comment, $2 = property name, $3 = query returning two columns: key, integer
    printf '    /// %s\n' "$1"
    printf '    static let %s: [String: Int] = [\n' "$2"
    q "$3" | LC_ALL=C sort -u | awk -F '\t' '{ printf "        \"%s\": %s,\n", $1, $2 }'
    printf '    ]\n'
}
{
    printf '%s\n' "// Generated by scripts/generate-pg15-catalog.sh from PostgreSQL 15's own catalogs. Do not edit."
    printf 'enum PG15Catalog {\n'
    swift_set "Relations (tables, views, matviews, sequences, …) in pg_catalog; an unqualified name that matches resolves there first." \
        pgCatalogRelations \
        "select relname from pg_class where relnamespace = 'pg_catalog'::regnamespace and relkind in ('r', 'v', 'm', 'S', 'f', 'p')"
    swift_set "Relations in information_schema." \
        informationSchemaRelations \
        "select relname from pg_class where relnamespace = 'information_schema'::regnamespace and relkind in ('r', 'v', 'm', 'S', 'f', 'p')"
    swift_set "Operator symbols defined in pg_catalog." \
        operatorSymbols \
        "select oprname from pg_operator where oprnamespace = 'pg_catalog'::regnamespace"
    swift_set "Functions in pg_catalog callable with one argument: PostgreSQL also calls them as x.f or (expr).f." \
        oneArgumentFunctions \
        "select proname from pg_proc where pronamespace = 'pg_catalog'::regnamespace and pronargs - pronargdefaults <= 1 and (pronargs >= 1 or provariadic <> 0)"
    swift_set "Types in pg_catalog that are not a relation's row type, array types (_name) included: x.name casts x to such a type when no one-argument function name exists." \
        pgCatalogTypes \
        "select typname from pg_type where typnamespace = 'pg_catalog'::regnamespace and typrelid = 0"
    swift_set "Row types of pg_catalog relations with a column of transaction ids (xid, xid8, cid, txid_snapshot, pg_snapshot, or an array of one): a value of one carries them (jsonb_populate_record(NULL::pg_class, …))." \
        transactionIDRowTypes \
        "select c.relname from pg_attribute a join pg_class c on c.oid = a.attrelid join pg_type t on t.oid = a.atttypid
         where c.relnamespace = 'pg_catalog'::regnamespace and c.reltype <> 0 and a.attnum > 0 and not a.attisdropped
           and (case when t.typlen = -1 and t.typelem <> 0 then t.typelem else t.oid end)
               in ('xid'::regtype, 'xid8'::regtype, 'cid'::regtype, 'txid_snapshot'::regtype, 'pg_snapshot'::regtype)"
    swift_map "The transaction-id columns (of the types above) of each such relation: age() of one counts every tenant's writes since." \
        transactionIDColumns \
        "select c.relname, a.attname from pg_attribute a join pg_class c on c.oid = a.attrelid join pg_type t on t.oid = a.atttypid
         where c.relnamespace = 'pg_catalog'::regnamespace and c.reltype <> 0 and a.attnum > 0 and not a.attisdropped
           and (case when t.typlen = -1 and t.typelem <> 0 then t.typelem else t.oid end)
               in ('xid'::regtype, 'xid8'::regtype, 'cid'::regtype, 'txid_snapshot'::regtype, 'pg_snapshot'::regtype)"
    swift_map "Every column of each such relation, system columns included: r.name names a column of r when r has one." \
        transactionIDRelationColumns \
        "select c.relname, a.attname from pg_attribute a join pg_class c on c.oid = a.attrelid
         where c.relnamespace = 'pg_catalog'::regnamespace and c.reltype <> 0 and a.attnum <> 0 and not a.attisdropped
           and c.oid in (select a2.attrelid from pg_attribute a2 join pg_type t on t.oid = a2.atttypid
                         where a2.attnum > 0 and not a2.attisdropped
                           and (case when t.typlen = -1 and t.typelem <> 0 then t.typelem else t.oid end)
                               in ('xid'::regtype, 'xid8'::regtype, 'cid'::regtype, 'txid_snapshot'::regtype, 'pg_snapshot'::regtype))"
    swift_set "Functions in pg_catalog every overload of which takes a transaction id or snapshot: an untyped literal or parameter becomes one without a cast (mxid_age('1') reads the multixact counter)." \
        transactionIDArgumentFunctions \
        "select p.proname from pg_proc p where p.pronamespace = 'pg_catalog'::regnamespace
         group by p.proname
         having bool_and(exists (select 1 from unnest(p.proargtypes) a join pg_type t on t.oid = a
                                 where (case when t.typlen = -1 and t.typelem <> 0 then t.typelem else t.oid end)
                                       in ('xid'::regtype, 'xid8'::regtype, 'cid'::regtype, 'txid_snapshot'::regtype, 'pg_snapshot'::regtype)))"
    swift_set "Functions in pg_catalog with an overload that returns a set: a query calling one can make any number of rows, so its plan is estimated before it runs (limits.max_cost)." \
        setReturningFunctions \
        "select proname from pg_proc where pronamespace = 'pg_catalog'::regnamespace and proretset"
    swift_weights "Views of pg_catalog and information_schema by what the planner expands at each reference, in relations (the stored query tree of the view and of every view it reads, path by path, per 4 KiB; 1 when absent): information_schema.columns is 44, and 120 references to it took 261 MB of a backend (sixteenth red team)." \
        viewPlanningWeights \
        "with recursive refs as (
           select r.ev_class as view, m[1]::oid as ref
           from pg_rewrite r, regexp_matches(r.ev_action::text, ':relid ([0-9]+) :relkind v', 'g') m
           where r.rulename = '_RETURN' and r.ev_class <> m[1]::oid
         ), own as (select ev_class as view, length(ev_action::text) as bytes from pg_rewrite where rulename = '_RETURN'),
         walk(root, node) as (select view, view from own union all select w.root, refs.ref from walk w join refs on refs.view = w.node)
         select n.nspname || '.' || c.relname, ceil(sum(o.bytes) / 4096.0)::int
         from walk w join own o on o.view = w.node join pg_class c on c.oid = w.root join pg_namespace n on n.oid = c.relnamespace
         where n.nspname in ('pg_catalog', 'information_schema') and c.relkind = 'v'
         group by 1 having ceil(sum(o.bytes) / 4096.0) > 1"
    swift_weights "Functions of pg_catalog written in SQL whose body reads a relation, by the body's size in the same units (its largest form, per 4 KiB): each call site is planned as a query of its own when it first runs (sixteenth red team: 1,000 calls of col_description took a backend 43 MB, 300 subqueries of ts_debug 43 MB)." \
        sqlFunctionPlanningWeights \
        "select p.proname, max(ceil(length(coalesce(p.prosqlbody::text, p.prosrc)) / 4096.0))::int
         from pg_proc p join pg_language l on l.oid = p.prolang
         where l.lanname = 'sql' and p.pronamespace = 'pg_catalog'::regnamespace
           and (p.prosqlbody::text ~ ':rtekind 0' or p.prosrc ~* '\\mfrom\\M')
         group by 1"
    printf '}\n'
} > "$tmp/PG15Catalog.swift"

mkdir -p "$(dirname "$candidates")" "$(dirname "$swiftfile")"
mv "$tmp/candidates.tsv" "$candidates"
mv "$tmp/PG15Catalog.swift" "$swiftfile"
echo "wrote ${candidates#$root/} ($(wc -l < "$tmp/live") names) and ${swiftfile#$root/}"
