"""Issue 14, finding 8: the cost budget, through `palisade serve` against PostgreSQL 15.

A query whose shape can explode (a join, a set-returning function, WITH RECURSIVE) is planned with
EXPLAIN on the same server session, with the claims and its own parameter values, before it runs.
Over the profile's max_cost or max_estimated_rows it is refused with 54000 and audited; under, it
runs. Simple shapes never take the detour. The agent profile (Policies/readonly.yaml) has max_cost
1,000,000 and max_estimated_rows 10,000,000; pgbench_accounts has 100,000 rows.
"""
import asyncio
import re
import urllib.request

import asyncpg
import psycopg
import psycopg2
import psycopg2.errors
import pytest

from conftest import DATABASE, Palisade, backend_url, dsn, entries_of, free_port

CROSS_JOIN = "SELECT count(*) FROM pgbench_accounts a, pgbench_accounts b"


@pytest.fixture(scope="module")
def server(database, keys, monitor_policy):
    admin_port = free_port()
    # The shipped profiles: agent (readonly.yaml) and analyst (analyst.yaml); the keys file also names monitor.
    palisade = Palisade(["--backend", backend_url(database), "--api-keys", str(keys["file"]), "--tls-mode", "disable",
                         "--profile", "agent=Policies/readonly.yaml", "--profile", "analyst=Policies/analyst.yaml",
                         "--profile", f"monitor={monitor_policy}", "--lockout-denials", "1000", "--admin-listen", str(admin_port)])
    palisade.admin_port = admin_port
    yield palisade
    palisade.stop()


def connect(server, key, user="agent"):
    connection = psycopg2.connect(dsn(server, key, user=user))
    connection.autocommit = True
    return connection


def test_a_cross_join_is_refused_before_it_runs_and_the_session_goes_on(server, keys):
    connection = connect(server, keys["agent"])
    cursor = connection.cursor()
    with pytest.raises(psycopg2.errors.ProgramLimitExceeded) as error:
        cursor.execute(CROSS_JOIN)
    diagnostics = error.value.diag
    assert diagnostics.sqlstate == "54000"
    assert "max_cost of 1000000" in diagnostics.message_primary and "it was not run" in diagnostics.message_primary
    assert diagnostics.message_detail.startswith("rule limit.cost; request ")
    assert "JOIN … ON" in diagnostics.message_hint
    request_id = diagnostics.message_detail.split("request ")[1]

    # A join on its key is within budget and runs, on the same connection.
    cursor.execute("SELECT count(*) FROM pgbench_accounts a JOIN pgbench_branches b USING (bid)")
    assert cursor.fetchone() == (100000,)
    connection.close()

    entries = [entry for entry in entries_of(server.audit_dir) if entry.get("request_id") == request_id]
    assert [entry["event"] for entry in entries] == ["decision", "cost_limit"], entries
    assert entries[0]["decision"] == "allow" and entries[1]["rule"] == "limit.cost"
    # The estimate counts every tenant's rows: the client is not told it, the reviewer is.
    assert "estimate: cost " in entries[1]["message"], entries[1]
    assert not re.search(r"\d", diagnostics.message_primary.replace("1000000", "")), diagnostics.message_primary


def test_the_analysts_larger_budget_still_refuses_a_join_on_a_column_with_few_values(server, keys):
    connection = connect(server, keys["analyst"], user="analyst")
    cursor = connection.cursor()
    with pytest.raises(psycopg2.errors.ProgramLimitExceeded) as error:
        # bid has one value at scale 1: about 10^10 rows and a cost near 5.4e7 (max_cost 10,000,000).
        cursor.execute("SELECT count(*) FROM pgbench_accounts a JOIN pgbench_accounts b ON a.bid = b.bid")
    assert error.value.diag.message_detail.startswith("rule limit.cost;")
    cursor.execute("SELECT count(*) FROM pgbench_branches b, generate_series(1, 3) g")
    assert cursor.fetchone() == (3,)
    connection.close()


def test_a_parameter_value_is_estimated_per_execution_not_per_fingerprint(server, keys):
    """asyncpg prepares once and binds twice; argument limits cannot see $1, the estimate can."""
    async def run():
        connection = await asyncpg.connect(host="127.0.0.1", port=server.port, user="agent", password=keys["agent"],
                                           database=DATABASE, ssl=False)
        try:
            statement = await connection.prepare("SELECT count(*) FROM generate_series(1, $1::bigint) g")
            assert await statement.fetchval(1000) == 1000
            with pytest.raises(asyncpg.exceptions.ProgramLimitExceededError) as error:
                await statement.fetchval(10 ** 12)
            assert "max_estimated_rows" in str(error.value) or "max_cost" in str(error.value)
            assert await statement.fetchval(7) == 7, "the same statement runs again under budget"
        finally:
            await connection.close()

        # Rows inside the plan count, not only the result's one row: 3 * 10^8 rows at a cost near
        # 3.75 * 10^6, under the analyst's max_cost of 10^7 but over its max_estimated_rows of 10^8.
        connection = await asyncpg.connect(host="127.0.0.1", port=server.port, user="analyst", password=keys["analyst"],
                                           database=DATABASE, ssl=False)
        try:
            with pytest.raises(asyncpg.exceptions.ProgramLimitExceededError) as error:
                await connection.fetchval("SELECT count(*) FROM generate_series(1, $1::bigint) g", 300_000_000)
            assert "max_estimated_rows of 100000000" in str(error.value)
        finally:
            await connection.close()
    asyncio.run(run())


def test_messages_pipelined_behind_an_estimate_are_answered_in_order(server, keys):
    """psycopg 3's pipeline mode sends everything before reading: the relay holds what follows a
    query waiting for its estimate, and every answer comes in its place."""
    with psycopg.connect(dsn(server, keys["agent"]), autocommit=True) as connection:
        with connection.pipeline():
            first = connection.execute("SELECT count(*) FROM pgbench_branches b JOIN pgbench_tellers t USING (bid)")
            second = connection.execute("SELECT %s::int + 1", (41,))
            third = connection.execute("SELECT count(*) FROM generate_series(1, %s::int) g", (5,))
        assert first.fetchone() == (10,) and second.fetchone() == (42,) and third.fetchone() == (5,)
        with pytest.raises(psycopg.errors.ProgramLimitExceeded):
            with connection.pipeline():
                connection.execute(CROSS_JOIN)
                connection.execute("SELECT 1")
        assert connection.execute("SELECT 2").fetchone() == (2,)


def test_text_an_aggregate_keeps_for_every_row_is_bounded_over_the_planned_rows(server, keys):
    """Eleventh red team: 1 KiB of text a row passes the per-row check, and a million generated rows
    made it 1 GB in one string_agg. The planner's rows bound it, for generated rows and a table's alike."""
    connection = connect(server, keys["agent"])
    cursor = connection.cursor()
    # The text's own rows are counted before anything runs: its set-returning calls (the planner
    # estimates a split of a computed text at 1,000 rows, 500,001 here), and a WITH query joined to
    # itself (a condition the planner takes as selective: 5,000 rows estimated, a million made).
    for sql in ("SELECT length(string_agg(repeat('x', 1000), '')) FROM generate_series(1, 1000000)",
                "SELECT length(string_agg(repeat('x', 1000), '')) FROM regexp_split_to_table(repeat('a,', 500000), ',')",
                "WITH t AS (SELECT g FROM generate_series(1, 1000) g) SELECT length(string_agg(repeat('x', 1000), '')) FROM t a JOIN t b ON a.g * 0 = b.g * 0"):
        with pytest.raises(psycopg2.errors.ProgramLimitExceeded) as error:
            cursor.execute(sql)
        assert "set-returning calls, VALUES lists and WITH queries make" in error.value.diag.message_primary, error.value.diag.message_primary
        assert error.value.diag.message_detail.startswith("rule limit.argument; request ")
    # Rows of a table only the planner counts: refused at its estimate.
    attacks = [
        # pgbench_accounts holds 100,000 rows: 100 MB of the text's making.
        "SELECT length(string_agg(repeat('z', 1000), ',')) FROM pgbench_accounts",
        "SELECT array_length(ARRAY(SELECT repeat('z', 1000) FROM pgbench_accounts), 1)",
    ]
    request_ids = []
    for sql in attacks:
        with pytest.raises(psycopg2.errors.ProgramLimitExceeded) as error:
            cursor.execute(sql)
        diagnostics = error.value.diag
        assert diagnostics.sqlstate == "54000", sql
        assert diagnostics.message_detail.startswith("rule limit.argument; request "), (sql, diagnostics.message_detail)
        assert "keeps every input row" in diagnostics.message_primary and "it was not run" in diagnostics.message_primary
        assert "outside the aggregate" in diagnostics.message_hint
        request_ids.append(diagnostics.message_detail.split("request ")[1])

    # Delimiters and labels over the same rows, and a few generated rows of 1 KiB, run.
    cursor.execute("SELECT length(string_agg(filler, ', ')) FROM pgbench_accounts")
    assert cursor.fetchone() == (2 * (100000 - 1),), "pgbench leaves filler blank: the delimiters alone"
    cursor.execute("SELECT length(json_agg(json_build_object('id', aid, 'balance', abalance))::text) FROM pgbench_accounts")
    assert cursor.fetchone()[0] > 100000
    cursor.execute("SELECT length(string_agg(repeat('x', 1000), '')) FROM generate_series(1, 1000)")
    assert cursor.fetchone() == (1000000,)
    # The rows an aggregate takes are those of the node under it (EXPLAIN VERBOSE shows which):
    # two long labels a group over 100,000 accounts are one group's, not 100,000 rows' (80 MB).
    label = "Branch totals for the quarter, as reported to the regional office. " * 3
    cursor.execute(f"SELECT length(json_agg(json_build_object('bid', bid, 'title', '{label}', 'note', '{label}', 'total', s))::text) "
                   "FROM (SELECT bid, sum(abalance) AS s FROM pgbench_accounts GROUP BY bid) t")
    assert cursor.fetchone()[0] > 2 * len(label)
    connection.close()

    entries = [entry for entry in entries_of(server.audit_dir) if entry.get("request_id") in request_ids]
    assert [entry["event"] for entry in entries] == ["decision", "cost_limit"] * len(attacks), entries
    assert all("estimate: cost " in entry["message"] for entry in entries if entry["event"] == "cost_limit")


def test_simple_shapes_take_no_detour_and_refusals_are_counted(server, keys):
    connection = connect(server, keys["agent"])
    cursor = connection.cursor()
    cursor.execute("SELECT abalance FROM pgbench_accounts WHERE aid = 1")
    cursor.execute("SELECT count(*) FROM pgbench_accounts")
    assert cursor.fetchone() == (100000,)
    connection.close()
    with urllib.request.urlopen(f"http://127.0.0.1:{server.admin_port}/metrics") as response:
        metrics = response.read().decode()
    counted = re.search(r'^palisade_cost_limits_total\{rule="limit.cost"\} (\d+)', metrics, re.MULTILINE)
    assert counted and int(counted.group(1)) >= 1


def test_a_hashed_except_over_a_tables_rows_and_made_values_is_planned_and_refused(server, keys):
    """PostgreSQL 15 hashes INTERSECT and EXCEPT when its count of groups (200 for a made column)
    fits work_mem, and never spills the table: 120 rows of a table joined to generate_series(1, 1000)
    with 1,000-byte values took 267 MB (sixteenth red team, second pass). The text's rows alone are
    within the limit here; the planner's rows are not."""
    connection = connect(server, keys["agent"])
    cursor = connection.cursor()
    sql = ("SELECT count(*) FROM (SELECT t.tid * 100000 + g, lpad('x', 1000, 'y') FROM pgbench_tellers t, "
           "generate_series(1, {}) g EXCEPT SELECT 1, '') s")
    with pytest.raises(psycopg2.errors.ProgramLimitExceeded) as error:
        cursor.execute(sql.format(10000))
    assert "hash table" in error.value.pgerror and "rule limit.argument" in error.value.diag.message_detail
    cursor.execute(sql.format(100))
    assert cursor.fetchall() == [(1000,)]
    connection.close()
