"""Issue 17: the default agent profile (Policies/readonly.yaml) serves the text-to-SQL stacks agents use.

Through `palisade serve` with agent keys of two tenants on docker/demo.sql: SQLAlchemy's inspector,
LangChain's SQLDatabase, pandas and psql learn the schema; rows stay the key's tenant's; the secrets
stay denied; an answer past max_rows or max_result_bytes ends with 54000 and the connection goes on.
"""
import asyncio
import os
import re
import subprocess
import warnings

import psycopg2
import psycopg2.errors
import pytest
import sqlalchemy

from conftest import TENANT_DATABASE as DATABASE, Palisade, admin_rows, admin_sql, create_key, entries_of, free_port, have


@pytest.fixture(scope="module")
def agents(tenant_database, workdir):
    key_file = workdir / "agent-keys.yaml"
    issued = {"acme": create_key(key_file, "acme"), "globex": create_key(key_file, "globex")}
    admin_port = free_port()
    server = Palisade(["--backend", tenant_database, "--api-keys", str(key_file), "--tls-mode", "disable", "--lockout-denials", "1000",
                       "--admin-listen", str(admin_port)])
    server.admin_port = admin_port
    yield server, issued
    server.stop()


def url(server, key, driver="psycopg2"):
    return f"postgresql+{driver}://agent:{key}@127.0.0.1:{server.port}/{DATABASE}?sslmode=disable"


def connect(server, key):
    connection = psycopg2.connect(host="127.0.0.1", port=server.port, dbname=DATABASE, user="agent", password=key, sslmode="disable")
    connection.autocommit = True
    return connection


def test_the_sqlalchemy_inspector_describes_the_tables(agents):
    server, keys = agents
    engine = sqlalchemy.create_engine(url(server, keys["acme"]))
    try:
        inspector = sqlalchemy.inspect(engine)
        assert "public" in inspector.get_schema_names()
        assert sorted(inspector.get_table_names()) == ["customers", "invoices", "orders"]
        assert inspector.get_view_names() == ["order_totals"]
        columns = {column["name"]: str(column["type"]) for column in inspector.get_columns("orders")}
        assert columns == {"tenant_id": "TEXT", "id": "INTEGER", "customer_id": "INTEGER", "amount": "NUMERIC",
                           "placed_at": "TIMESTAMP"}
        assert inspector.get_pk_constraint("orders")["constrained_columns"] == ["tenant_id", "id"]
        [foreign_key] = inspector.get_foreign_keys("orders")
        assert foreign_key["referred_table"] == "customers" and foreign_key["referred_columns"] == ["tenant_id", "id"]
        assert inspector.get_indexes("orders") == []
        assert inspector.get_unique_constraints("orders") == []
        assert inspector.get_check_constraints("orders") == []
        assert inspector.get_table_comment("orders") == {"text": None}
        assert inspector.has_table("orders") and not inspector.has_table("no_such_table")
    finally:
        engine.dispose()


def test_langchain_learns_the_schema_and_samples_only_its_tenants_rows(agents):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from langchain_community.utilities import SQLDatabase
    server, keys = agents
    for tenant, other in (("acme", "globex"), ("globex", "acme")):
        database = SQLDatabase.from_uri(url(server, keys[tenant]))
        assert database.get_usable_table_names() == ["customers", "invoices", "orders"]
        info = database.get_table_info()
        assert "CREATE TABLE orders (" in info and "CONSTRAINT orders_pkey PRIMARY KEY (tenant_id, id)" in info
        assert "FOREIGN KEY(tenant_id, customer_id) REFERENCES customers (tenant_id, id)" in info
        # Three sample rows of each table, all the key's tenant's.
        samples = re.findall(rf"^({tenant}|{other})\t\d+\t", info, re.MULTILINE)
        assert samples == [tenant] * 9
        assert database.run("SELECT count(*) FROM orders") == str([({"acme": 120, "globex": 80}[tenant],)])
        database._engine.dispose()


def test_pandas_reads_a_query_and_a_table(agents):
    import pandas

    server, keys = agents
    engine = sqlalchemy.create_engine(url(server, keys["globex"]))
    try:
        frame = pandas.read_sql("SELECT tenant_id, count(*) AS n FROM orders GROUP BY tenant_id", engine)
        assert frame.to_dict("records") == [{"tenant_id": "globex", "n": 80}]
        table = pandas.read_sql_table("orders", engine)
        assert len(table) == 80 and set(table["tenant_id"]) == {"globex"}
    finally:
        engine.dispose()


def test_enum_and_domain_columns_are_reflected(tenant_database, workdir):
    """SQLAlchemy loads enum labels and domains as soon as a reflected column has one (its
    _enum_query and _domain_query read pg_enum and pg_type_is_visible): LangChain's from_uri and
    pandas' read_sql_table reflect every table, so without them any such column breaks both."""
    database = "palisade_enums"
    admin_sql("postgres", f"DROP DATABASE IF EXISTS {database}", f"CREATE DATABASE {database}")
    admin_sql(database, "CREATE TYPE parcel_state AS ENUM ('new', 'shipped')",
              "CREATE DOMAIN grams AS integer CHECK (VALUE > 0)",
              "CREATE TABLE parcels (id int PRIMARY KEY, state parcel_state, weight grams)",
              "INSERT INTO parcels VALUES (1, 'shipped', 250)", "GRANT SELECT ON parcels TO palisade_app")
    key_file = workdir / "enum-keys.yaml"
    key = create_key(key_file, "acme")
    server = Palisade(["--backend", tenant_database.rsplit("/", 1)[0] + "/" + database, "--api-keys", str(key_file),
                       "--tls-mode", "disable"])
    engine = sqlalchemy.create_engine(f"postgresql+psycopg2://agent:{key}@127.0.0.1:{server.port}/{database}?sslmode=disable")
    try:
        columns = {column["name"]: column["type"] for column in sqlalchemy.inspect(engine).get_columns("parcels")}
        assert isinstance(columns["state"], sqlalchemy.Enum) and list(columns["state"].enums) == ["new", "shipped"]
        assert type(columns["weight"]).__name__ == "DOMAIN" and columns["weight"].name == "grams", columns["weight"]
        import pandas
        table = pandas.read_sql_table("parcels", engine)
        assert table.to_dict("records") == [{"id": 1, "state": "shipped", "weight": 250}]
    finally:
        engine.dispose()
        server.stop()


def test_information_schema_answers_the_text_to_sql_schema_query(agents):
    server, keys = agents
    with connect(server, keys["acme"]) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT table_name, column_name, data_type FROM information_schema.columns "
                       "WHERE table_schema = 'public' AND table_name = 'invoices' ORDER BY ordinal_position")
        assert cursor.fetchall() == [("invoices", "tenant_id", "text"), ("invoices", "id", "integer"),
                                     ("invoices", "order_id", "integer"), ("invoices", "paid", "boolean")]


@pytest.mark.skipif(not have("psql"), reason="psql is not installed")
@pytest.mark.parametrize("command, expected", [
    (r"\dt", ["customers", "invoices", "orders"]),
    (r"\d orders", ["customer_id", "orders_pkey", "orders_tenant_id_customer_id_fkey", "tenant_isolation"]),
    (r"\dn", ["public"]),
])
def test_psql_describes_tables_and_schemas(agents, psql_env, command, expected):
    server, keys = agents
    result = subprocess.run(["psql", "-X", "-v", "ON_ERROR_STOP=1",
                             f"host=127.0.0.1 port={server.port} dbname={DATABASE} user=agent password={keys['acme']} sslmode=disable",
                             "-c", command], env=psql_env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    for text in expected:
        assert text in result.stdout


@pytest.mark.parametrize("sql, rule", [
    ("SELECT rolpassword FROM pg_authid", "rel.secret"),
    ("SELECT passwd FROM pg_shadow", "rel.secret"),
    ("SELECT * FROM pg_statistic", "rel.secret"),
    ("SELECT query FROM pg_stat_activity", "rel.secret"),
    ("SELECT name, setting FROM pg_settings", "rel.secret"),
    ("SELECT * FROM pg_hba_file_rules", "rel.secret"),
    ("SELECT * FROM pg_file_settings", "rel.secret"),
    ("SELECT umoptions FROM pg_user_mappings", "rel.catalog"),
    ("SELECT * FROM information_schema.user_mapping_options", "rel.secret"),
    ("SELECT * FROM pg_largeobject", "rel.secret"),
    ("SELECT most_common_vals FROM pg_stats", "rel.secret"),
    ("SELECT * FROM pg_statistic_ext_data", "rel.secret"),
    ("SELECT pg_read_file('postgresql.conf')", "fn.forbidden"),
    ("SELECT current_setting('data_directory')", "fn.current-setting"),
    ("SELECT pg_stat_get_backend_activity(1)", "fn.not-allowed"),
    ("SELECT proname, prosrc FROM pg_proc", "rel.catalog"),
])
def test_secrets_stay_denied_and_the_denial_teaches_the_schema(agents, sql, rule):
    server, keys = agents
    with connect(server, keys["acme"]) as connection, connection.cursor() as cursor:
        with pytest.raises(psycopg2.Error) as denied:
            cursor.execute(sql)
        assert f"rule {rule}" in denied.value.diag.message_detail
        if rule.startswith("rel."):
            assert denied.value.diag.message_hint.startswith("Readable schemas: public. List tables with SELECT table_schema, table_name "
                                                            "FROM information_schema.tables WHERE table_schema IN ('public')")
            # The hint's own query works.
            cursor.execute("SELECT table_schema, table_name FROM information_schema.tables WHERE table_schema IN ('public') ORDER BY 2")
            assert cursor.fetchall() == [("public", "customers"), ("public", "invoices"), ("public", "order_totals"), ("public", "orders")]


def result_limit_entry(server, request_id):
    """The audit log's result_limit entry for `request_id`, and the decision entry it refers to."""
    entries = [entry for entry in entries_of(server.audit_dir) if entry.get("request_id") == request_id]
    return ([entry for entry in entries if entry.get("event") == "result_limit"],
            [entry for entry in entries if entry.get("event") == "decision"])


def test_a_simple_query_past_max_rows_ends_with_54000_and_the_connection_goes_on(agents):
    server, keys = agents
    connection = connect(server, keys["acme"])
    try:
        with connection.cursor() as cursor:
            with pytest.raises(psycopg2.errors.ProgramLimitExceeded) as cut:
                cursor.execute("SELECT g FROM generate_series(1, 50000) AS g")
            assert "10000 rows (max_rows)" in cut.value.diag.message_primary
            assert "LIMIT" in cut.value.diag.message_hint
            request_id = re.search(r"request (\S+)", cut.value.diag.message_detail).group(1)
            # Exactly max_rows is whole, and the same connection serves the next queries.
            cursor.execute("SELECT count(*) FROM (SELECT g FROM generate_series(1, 10000) AS g) AS t")
            assert cursor.fetchall() == [(10000,)]
            cursor.execute("SELECT g FROM generate_series(1, 10000) AS g")
            assert len(cursor.fetchall()) == 10000
            cursor.execute("SELECT count(*) FROM orders")
            assert cursor.fetchall() == [(120,)]
        # Inside a transaction too: the error ends the answer, and the transaction goes on.
        connection.autocommit = False
        with connection.cursor() as cursor:
            with pytest.raises(psycopg2.errors.ProgramLimitExceeded):
                cursor.execute("SELECT * FROM orders, generate_series(1, 100) AS g")
            connection.rollback()
            cursor.execute("SELECT count(*) FROM customers")
            assert cursor.fetchall() == [(20,)]
        connection.commit()
    finally:
        connection.close()
    limits, decisions = result_limit_entry(server, request_id)
    assert len(decisions) == 1 and decisions[0]["decision"] == "allow"
    assert len(limits) == 1 and limits[0]["rule"] == "limit.result-rows" and limits[0]["sqlstate"] == "54000"
    assert "after 10000 rows" in limits[0]["message"]
    import urllib.request
    metrics = urllib.request.urlopen(f"http://127.0.0.1:{server.admin_port}/metrics").read().decode()
    counted = re.search(r'^palisade_result_limits_total\{rule="limit.result-rows"\} (\d+)', metrics, re.MULTILINE)
    assert counted and int(counted.group(1)) >= 2, metrics


def test_an_answer_past_max_result_bytes_ends_with_54000(agents):
    server, keys = agents
    with connect(server, keys["globex"]) as connection, connection.cursor() as cursor:
        # 9,000 rows of 1,000 bytes: under max_rows, over max_result_bytes (8 MiB).
        with pytest.raises(psycopg2.errors.ProgramLimitExceeded) as cut:
            cursor.execute("SELECT repeat('x', 1000) FROM generate_series(1, 9000)")
        assert "rule limit.result-bytes" in cut.value.diag.message_detail
        cursor.execute("SELECT count(*) FROM orders")
        assert cursor.fetchall() == [(80,)]


def test_notices_of_an_answer_count_toward_max_result_bytes(agents):
    """to_tsquery of a stop word notices once a row: a one-row answer relayed 160 MB of notices
    before they counted (sixteenth red team)."""
    server, keys = agents
    with connect(server, keys["globex"]) as connection, connection.cursor() as cursor:
        # 100,000 notices of about 160 bytes: 16 MB, over max_result_bytes (8 MiB), for one row.
        with pytest.raises(psycopg2.errors.ProgramLimitExceeded) as cut:
            cursor.execute("SELECT count(to_tsquery('english', 'the' || left(g::text, 0))) FROM generate_series(1, 100000) g")
        assert "rule limit.result-bytes" in cut.value.diag.message_detail
        cursor.execute("SELECT count(to_tsquery('english', 'the'))")
        assert cursor.fetchall() == [(1,)]


def test_extended_protocol_clients_get_54000_and_go_on(agents):
    import asyncpg
    import psycopg

    server, keys = agents

    async def with_asyncpg():
        connection = await asyncpg.connect(host="127.0.0.1", port=server.port, database=DATABASE, user="agent",
                                           password=keys["acme"], ssl=False)
        try:
            with pytest.raises(asyncpg.exceptions.ProgramLimitExceededError):
                await connection.fetch("SELECT g FROM generate_series(1, $1::int) AS g", 20000)
            assert len(await connection.fetch("SELECT g FROM generate_series(1, $1::int) AS g", 10000)) == 10000
            # A cursor fetching in batches shares one budget across its fetches.
            async with connection.transaction():
                cursor = await connection.cursor("SELECT g FROM generate_series(1, 20000) AS g")
                assert len(await cursor.fetch(6000)) == 6000
                with pytest.raises(asyncpg.exceptions.ProgramLimitExceededError):
                    await cursor.fetch(6000)
            assert await connection.fetchval("SELECT count(*) FROM orders") == 120
        finally:
            await connection.close()

    asyncio.run(with_asyncpg())

    with psycopg.connect(host="127.0.0.1", port=server.port, dbname=DATABASE, user="agent", password=keys["globex"],
                         sslmode="disable", autocommit=True) as connection:
        with pytest.raises(psycopg.errors.ProgramLimitExceeded):
            connection.execute("SELECT g FROM generate_series(1, %s) AS g", (20000,)).fetchall()
        assert connection.execute("SELECT count(*) FROM orders WHERE id > %s", (0,)).fetchall() == [(80,)]


def test_what_only_the_server_shows_is_read_at_start(tenant_database, workdir):
    """Red team 3: sequences, xml columns and an extension's operators live in the server's
    catalogs, not in the text; `palisade serve` reads them at start (and at each reload)."""
    database = "palisade_server_objects"
    admin_sql("postgres", f"DROP DATABASE IF EXISTS {database}", f"CREATE DATABASE {database}")
    statements = ["CREATE TABLE notes (id serial PRIMARY KEY, body xml, title text)", "INSERT INTO notes (title) VALUES ('a')",
                  "CREATE VIEW column_report AS SELECT table_name, column_name FROM information_schema.columns",
                  "GRANT SELECT ON notes, notes_id_seq, column_report TO palisade_app"]
    available = {row[0] for row in admin_rows("postgres", "SELECT name FROM pg_available_extensions WHERE name IN ('intarray', 'hstore')")}
    has_intarray = "intarray" in available
    # hstore defines = on its own type: ordinary equality stays admitted beside it.
    statements += [f"CREATE EXTENSION {name}" for name in sorted(available)]
    admin_sql(database, *statements)
    key_file = workdir / "objects-keys.yaml"
    key = create_key(key_file, "acme")
    server = Palisade(["--backend", tenant_database.rsplit("/", 1)[0] + "/" + database, "--api-keys", str(key_file),
                       "--tls-mode", "disable", "--lockout-denials", "1000"])
    connection = psycopg2.connect(host="127.0.0.1", port=server.port, dbname=database, user="agent", password=key, sslmode="disable")
    connection.autocommit = True
    try:
        cursor = connection.cursor()

        def refused(sql):
            with pytest.raises(psycopg2.Error) as error:
                cursor.execute(sql)
            return error.value.diag.message_detail.split(";")[0]

        assert refused("SELECT last_value FROM notes_id_seq") == "rule rel.statistics"
        # A view of the server's own counts what it expands to (here information_schema.columns):
        # twenty-five references would plan a thousand relations (sixteenth red team).
        report = "(SELECT count(*) > 0 FROM column_report)"
        assert refused("SELECT " + ", ".join([report] * 25)) == "rule limit.planning"
        cursor.execute("SELECT " + ", ".join([report] * 2))
        assert cursor.fetchall() == [(True, True)]
        assert refused("SELECT COALESCE(body, '<r>') FROM notes") == "rule fn.xml-parse"
        cursor.execute("SELECT COALESCE(title, 'untitled') FROM notes")
        assert cursor.fetchall() == [("a",)]
        # Beside the xml column, typed literals.
        cursor.execute("SELECT COALESCE(body::text, '<r/>'::text) FROM notes")
        assert cursor.fetchall() == [("<r/>",)]
        cursor.execute("SELECT id FROM notes WHERE id = 1 AND title = 'a'")
        assert cursor.fetchall() == [(1,)]
        if has_intarray:
            assert refused("SELECT ARRAY[1, 2, 3] - 2") == "rule op.not-allowed"
            cursor.execute("SELECT 3 OPERATOR(pg_catalog.-) 2")
            assert cursor.fetchall() == [(1,)]
    finally:
        connection.close()
        server.stop()
