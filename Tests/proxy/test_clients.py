"""Real clients through Palisade: psql, pgbench, psycopg2, SQLAlchemy 2, psycopg 3, asyncpg, JDBC."""
import asyncio
import pathlib
import subprocess
import threading
import time

import asyncpg
import psycopg
import psycopg2
import psycopg2.errors
import pytest
import sqlalchemy

from conftest import DATABASE, dsn, entries_of, wait_until_running


def psql(server, key, *commands, sslmode="disable", env=None):
    arguments = ["psql", "-X", "-v", "VERBOSITY=verbose", dsn(server, key, sslmode)]
    for command in commands:
        arguments += ["-c", command]
    return subprocess.run(arguments, capture_output=True, text=True, env=env, timeout=60)


def test_psql_allowed_query(palisade, keys, psql_env):
    result = psql(palisade, keys["agent"], "SELECT count(*) AS orders FROM orders", env=psql_env)
    assert result.returncode == 0, result.stderr
    assert " 30" in result.stdout


def test_psql_denied_delete_shows_sqlstate_rule_and_hint(palisade, keys, psql_env):
    result = psql(palisade, keys["agent"], "DELETE FROM orders", env=psql_env)
    assert result.returncode != 0
    assert "ERROR:  42501: Palisade: DELETE is not allowed" in result.stderr
    assert "rule stmt.dml; request " in result.stderr
    assert "HINT:" in result.stderr
    check = psql(palisade, keys["agent"], "SELECT count(*) FROM orders", env=psql_env)
    assert " 30" in check.stdout


def test_psql_describe_with_analyst_profile(palisade, keys, psql_env):
    for command in ("\\d", "\\dt", "\\d orders", "\\dn", "\\df", "\\dv", "\\di", "\\l", "\\du"):
        result = psql(palisade, keys["analyst"], command, env=psql_env)
        assert result.returncode == 0, f"{command}: {result.stderr}"
        assert "Palisade" not in result.stderr, f"{command}: {result.stderr}"
    assert "orders" in psql(palisade, keys["analyst"], "\\dt", env=psql_env).stdout


def test_psql_describe_for_agents_is_schema_discovery_only(palisade, keys, psql_env):
    listed = psql(palisade, keys["agent"], "\\dt", env=psql_env)
    assert listed.returncode == 0 and "orders" in listed.stdout, listed.stderr
    # Table sizes (statistics) and function definitions are outside Policies/catalog/metadata.tsv.
    for command in ("\\dt+", "\\df"):
        result = psql(palisade, keys["agent"], command, env=psql_env)
        assert "ERROR:  42501: Palisade: " in result.stderr, command


def test_psql_over_tls(palisade_tls, keys, psql_env):
    result = psql(palisade_tls, keys["agent"], "SELECT 'tls' AS over", sslmode="require", env=psql_env)
    assert result.returncode == 0, result.stderr
    assert "tls" in result.stdout


def test_tls_required_refuses_plaintext(palisade_tls, keys, psql_env):
    result = psql(palisade_tls, keys["agent"], "SELECT 1", sslmode="disable", env=psql_env)
    assert result.returncode != 0
    assert "only over TLS" in result.stderr


@pytest.mark.parametrize("mode", ["simple", "extended", "prepared"])
def test_pgbench_select_only(palisade, keys, psql_env, mode):
    env = dict(psql_env, PGPASSWORD=keys["agent"])
    result = subprocess.run(["pgbench", "-h", "127.0.0.1", "-p", str(palisade.port), "-U", "agent", "-n", "-S", "-M", mode,
                             "-c", "4", "-t", "250", DATABASE], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr + result.stdout
    assert "number of transactions actually processed: 1000/1000" in result.stdout
    assert "number of failed transactions: 0" in result.stdout


def test_psycopg2_queries_denials_and_transactions(palisade, keys):
    connection = psycopg2.connect(dsn(palisade, keys["agent"]))
    cursor = connection.cursor()
    cursor.execute("SELECT region, sum(amount) FROM orders WHERE id > %s GROUP BY region ORDER BY region", (3,))
    assert [row[0] for row in cursor.fetchall()] == ["east", "north", "south"]
    with pytest.raises(psycopg2.errors.InsufficientPrivilege) as denied:
        cursor.execute("UPDATE orders SET amount = 0")
    assert denied.value.pgcode == "42501"
    assert "stmt.dml" in denied.value.pgerror
    connection.rollback()
    cursor.execute("SELECT 1")
    assert cursor.fetchone() == (1,)
    connection.commit()
    connection.close()


def test_sqlalchemy_engine_connects_and_reads(palisade, keys):
    engine = sqlalchemy.create_engine(
        f"postgresql+psycopg2://agent:{keys['agent']}@127.0.0.1:{palisade.port}/{DATABASE}?sslmode=disable")
    with engine.connect() as connection:
        total = connection.execute(sqlalchemy.text("SELECT sum(amount) FROM orders WHERE region = :region"), {"region": "north"}).scalar()
        assert total > 0
        with pytest.raises(sqlalchemy.exc.ProgrammingError) as denied:
            connection.execute(sqlalchemy.text("DROP TABLE orders"))
        assert "stmt.ddl" in str(denied.value)
    engine.dispose()


def test_psycopg3_parameters_and_pipeline_with_denial(palisade, keys):
    with psycopg.connect(dsn(palisade, keys["agent"]), autocommit=True) as connection:
        assert connection.execute("SELECT count(*) FROM orders WHERE amount > %s", (100,)).fetchone() == (20,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            with connection.pipeline():
                first = connection.execute("SELECT 1")
                connection.execute("DELETE FROM orders")
                connection.execute("SELECT 3")
        assert first.fetchone() == (1,)
        assert connection.execute("SELECT 'still usable'").fetchone() == ("still usable",)


def connect_asyncpg(palisade, keys):
    return asyncpg.connect(host="127.0.0.1", port=palisade.port, user="agent", password=keys["agent"], database=DATABASE, ssl=False)


def test_long_pipelines_with_a_server_error_leave_the_session_usable(palisade, keys):
    """The error comes back while the rest of the pipeline is still arriving, past the 4,096
    answers owed at which Palisade stops reading the client and flushes the server (seventeenth
    red team: such pipelines ended the session)."""
    with psycopg.connect(dsn(palisade, keys["agent"]), autocommit=True) as connection:
        with pytest.raises(psycopg.errors.DivisionByZero):
            with connection.pipeline():
                for value in [1, 0] + [1] * 5000:
                    connection.execute("SELECT 1 / %s", (value,))
        assert connection.execute("SELECT 'still usable'").fetchone() == ("still usable",)

    async def executemany_with_a_bad_row():
        connection = await connect_asyncpg(palisade, keys)
        with pytest.raises(asyncpg.exceptions.DivisionByZeroError):
            await connection.executemany("SELECT 1 / $1::int", [(1,), (0,)] + [(1,)] * 8000)
        assert await connection.fetchval("SELECT 42") == 42
        await connection.close()

    asyncio.run(executemany_with_a_bad_row())


def test_a_parameter_an_aggregate_keeps_is_held_to_256_bytes_at_bind(palisade, keys):
    async def scenario():
        connection = await connect_asyncpg(palisade, keys)
        query = "SELECT string_agg(region, $1) FROM (SELECT region FROM orders ORDER BY id LIMIT 3) s"
        assert (await connection.fetchval(query, ", ")).count(", ") == 2
        assert (await connection.fetchval(query, "|" * 256)).count("|" * 256) == 2
        with pytest.raises(asyncpg.exceptions.ProgramLimitExceededError, match="kept in every row"):
            await connection.fetchval(query, "x" * 1_000_000)
        assert await connection.fetchval("SELECT 42") == 42
        await connection.close()

    asyncio.run(scenario())


def test_parameters_of_rows_kept_in_memory_or_multiplied_are_held_at_bind(palisade, keys):
    """ARRAY(subquery), NOT IN (subquery), EXCEPT and replace() took a 1 MB parameter as small: 300 to
    608 MB of a backend each (eighteenth red team). Short values still run."""
    async def scenario():
        connection = await connect_asyncpg(palisade, keys)
        big = "x" * 1_000_000
        for query, short in [
            ("SELECT cardinality(ARRAY(SELECT $1::text || g FROM generate_series(1, 300) g))", 300),
            ("SELECT count(*) FROM generate_series(1, 3) WHERE 'a' NOT IN (SELECT $1::text || g FROM generate_series(1, 300) g)", 3),
            ("SELECT count(*) FROM (SELECT $1::text || g FROM generate_series(1, 300) g EXCEPT SELECT 'a') s", 300),
        ]:
            assert await connection.fetchval(query, "label") == short
            with pytest.raises(asyncpg.exceptions.ProgramLimitExceededError, match="kept in every row"):
                await connection.fetchval(query, big)
        assert await connection.fetchval("SELECT length(replace($1, 'x', $2))", "xx", "yyy") == 6
        with pytest.raises(asyncpg.exceptions.ProgramLimitExceededError, match="kept in every row"):
            await connection.fetchval("SELECT length(replace($1, 'x', $2))", "x" * 1000, "y" * 300_000)
        lengths = ", ".join(["length(x)"] * 20)
        assert await connection.fetchval(f"SELECT {lengths} FROM (SELECT $1::text AS x) s", "abc") == 3
        with pytest.raises(asyncpg.exceptions.ProgramLimitExceededError, match="copies a bound value into each place"):
            await connection.fetchval(f"SELECT {lengths} FROM (SELECT $1::text AS x) s", "x" * 1_000_000)
        many = " OR ".join(["region = $1"] * 20)
        assert await connection.fetchval(f"SELECT count(*) FROM orders WHERE {many}", "nowhere") == 0
        with pytest.raises(asyncpg.exceptions.ProgramLimitExceededError, match="copies a bound value into each place"):
            await connection.fetchval(f"SELECT count(*) FROM orders WHERE {many}", "x" * 1_000_000)
        assert await connection.fetchval("SELECT 42") == 42
        await connection.close()

    asyncio.run(scenario())


def test_asyncpg_prepared_statements_and_denial(palisade, keys):
    async def scenario():
        connection = await connect_asyncpg(palisade, keys)
        statement = await connection.prepare("SELECT amount FROM orders WHERE id = $1")
        assert await statement.fetchval(5) == 50
        assert [await statement.fetchval(i) for i in (1, 2, 3)] == [10, 20, 30]
        rows = await connection.fetch("SELECT id FROM orders WHERE region = $1 ORDER BY id LIMIT 3", "north")
        assert len(rows) == 3
        # executemany pipelines Bind/Execute pairs before one Sync.
        await connection.executemany("SELECT $1::int", [(1,), (2,), (3,)])
        with pytest.raises(asyncpg.exceptions.InsufficientPrivilegeError):
            await connection.execute("TRUNCATE orders")
        assert await connection.fetchval("SELECT 42") == 42
        await connection.close()

    asyncio.run(scenario())


def test_cancel_request_reaches_the_right_backend(palisade, keys):
    connection = psycopg2.connect(dsn(palisade, keys["agent"]))
    cursor = connection.cursor()
    finished = threading.Event()

    def cancel_while_running():
        # As a person presses Ctrl-C again: PostgreSQL 15 loses a cancel that lands while a backend
        # loads LLVM for its first JIT compilation (the first ~0.1 s of this statement; seen with
        # the raw protocol straight to the server, and never with jit = off).
        wait_until_running(DATABASE, "cancel_me")
        while not finished.wait(0.5):
            connection.cancel()
    canceller = threading.Thread(target=cancel_while_running)
    canceller.start()
    try:
        with pytest.raises(psycopg2.errors.QueryCanceled) as error:
            # 10^9 steps of a recursion (minutes): the planner estimates a recursive query at a few rows,
            # so the cost budget admits it (README: what neither limit catches), and the profile's
            # statement_timeout is what would end it.
            cursor.execute("WITH RECURSIVE steps(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM steps WHERE n < 1000000000) "
                           "SELECT count(*) AS cancel_me FROM steps")
    finally:
        finished.set()
        canceller.join()
    # The cancel, not the profile's statement_timeout (also 57014), ended it.
    assert "user request" in str(error.value), str(error.value)
    connection.rollback()
    cursor.execute("SELECT 1")
    connection.close()


def test_server_refuses_writes_when_the_policy_admits_them(palisade, keys):
    """Monitor mode admits everything; the server's read-only session is what stops the write."""
    connection = psycopg2.connect(dsn(palisade, keys["monitor"], user="monitor"))
    cursor = connection.cursor()
    with pytest.raises(psycopg2.errors.ReadOnlySqlTransaction):
        cursor.execute("INSERT INTO scratch VALUES ('slipped through')")
    time.sleep(0.2)
    recorded = [e for e in entries_of(palisade.audit_dir) if "scratch" in (e.get("normalized") or "")]
    assert recorded and recorded[-1]["decision"] == "deny" and recorded[-1]["detail"] == {"enforced": "no", "mode": "monitor"}
    connection.rollback()
    # Every transaction starts with Palisade's claims statement, so the server refuses to switch
    # it to read-write: "transaction read-write mode must be set before any query".
    with pytest.raises(psycopg2.errors.ActiveSqlTransaction):
        cursor.execute("SET TRANSACTION READ WRITE")
    connection.rollback()
    connection.close()


JDBC_DRIVER = "/usr/share/java/postgresql.jar"


def test_jdbc_pool_check_prepared_query_and_refusal(palisade, keys):
    # pgjdbc from Debian's libpostgresql-jdbc-java; scripts/install-deps.sh installs it with a JRE.
    result = subprocess.run(["java", "-cp", JDBC_DRIVER, str(pathlib.Path(__file__).parent / "jdbc/JdbcClient.java"),
                             f"jdbc:postgresql://127.0.0.1:{palisade.port}/{DATABASE}?sslmode=disable", "agent", keys["agent"]],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "count 30" in result.stdout
    assert "refused 42501 ERROR: Palisade: DELETE is not allowed" in result.stdout
    assert result.stdout.strip().endswith("ok")
