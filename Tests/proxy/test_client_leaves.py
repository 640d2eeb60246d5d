"""A client that leaves while its query runs on the server (sixteenth red team, second pass): PostgreSQL reads the
Terminate Palisade sends only once the query is over, and notices a closed socket only when it next
writes, so the backend ran on until statement_timeout while the tenant's session slot was already
free: one tenant that opened 49 sessions, started a long query in each and dropped the sockets, five
times, held 108 server connections against its limit of 49. Palisade now cancels the query with the
server's own key, and keeps the slot until the server has closed the backend's connection."""
import os
import signal
import socket
import threading
import time

import psycopg2
import pytest

import wire

from conftest import TENANT_DATABASE, Palisade, admin_rows, create_key, readonly_policy_text, wait_until_running

# Ten minutes: a backend that goes within the bounds below was stopped by a cancel, not by this.
STATEMENT_TIMEOUT_MS = 600_000


def long_query(marker):
    # 10^9 steps of a recursion (minutes): the planner estimates a recursive query at a few rows,
    # so the cost budget admits it, and only a cancel or the statement_timeout ends it.
    return ("WITH RECURSIVE steps(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM steps WHERE n < 1000000000) "
            f"SELECT count(*) AS {marker} FROM steps")


def backends_running(marker):
    """The pids of the server processes whose (last) statement has `marker` in it."""
    return [pid for (pid,) in admin_rows(TENANT_DATABASE, f"SELECT pid FROM pg_stat_activity WHERE query LIKE '%{marker}%' AND pid <> pg_backend_pid()")]


@pytest.fixture
def leaving(tenant_database, workdir):
    """A Palisade of the test's own (its log holds only the test's sessions): one session per
    tenant, and a profile whose statement_timeout is far past the test's bounds."""
    keys = workdir / "leaving-keys.yaml"
    key = create_key(keys, "acme", profile="long")
    policy = workdir / "long.yaml"
    policy.write_text(readonly_policy_text(**{"statement_timeout_ms: 30000": f"statement_timeout_ms: {STATEMENT_TIMEOUT_MS}"}))
    server = Palisade(["--backend", tenant_database, "--api-keys", str(keys), "--tls-mode", "disable",
                       "--profile", f"long={policy}", "--max-sessions-per-tenant", "1"])
    yield server, key
    server.stop()


def dsn(server, key):
    return f"host=127.0.0.1 port={server.port} dbname={TENANT_DATABASE} user=agent password={key} sslmode=disable"


def start_and_leave(server, key, marker, before_leaving=lambda pid: None):
    """Starts the long query in a session of its own, waits until it runs on the server, then
    shuts and closes the client's socket under the driver. Returns the backend's pid."""
    connection = psycopg2.connect(dsn(server, key))
    runner = threading.Thread(target=lambda: _execute(connection, long_query(marker)), daemon=True)
    runner.start()
    wait_until_running(TENANT_DATABASE, marker)
    [pid] = backends_running(marker)
    before_leaving(pid)
    dropped = socket.socket(fileno=os.dup(connection.fileno()))
    dropped.shutdown(socket.SHUT_RDWR)
    dropped.close()
    runner.join(60)
    connection.close()
    return pid


def _execute(connection, sql):
    try:
        connection.cursor().execute(sql)
    except psycopg2.Error:
        pass


def backend_gone(pid):
    return pid not in [row[0] for row in admin_rows(TENANT_DATABASE, "SELECT pid FROM pg_stat_activity")]


def test_a_client_that_leaves_mid_query_has_its_query_cancelled_on_the_server(leaving):
    server, key = leaving
    pid = start_and_leave(server, key, "left_behind")
    left = time.monotonic()
    # Without the cancel the backend runs the 10^9 steps (minutes) or to the 600 s statement_timeout.
    wire.eventually(lambda: backend_gone(pid), f"backend {pid} of the session the client left gone", seconds=60)
    assert time.monotonic() - left < 60
    assert "cancel sent to the server" in server.log.read_text()
    # The slot is free again once the backend is gone.
    wire.eventually(lambda: _logs_in(server, key), "a new session for the tenant")


def _logs_in(server, key):
    try:
        psycopg2.connect(dsn(server, key)).close()
        return True
    except psycopg2.OperationalError as error:
        assert "already has 1 session" in str(error), str(error)
        return False


def test_the_tenants_slot_is_held_until_the_server_connection_is_gone(leaving):
    """A backend that cannot end (stopped with SIGSTOP, so neither the cancel nor the Terminate is
    acted on) still counts against the tenant's one session after its client left; once it may
    run, the cancel ends it and the slot is free."""
    server, key = leaving
    stopped = []

    def stop(pid):
        os.kill(pid, signal.SIGSTOP)
        stopped.append(pid)
    try:
        pid = start_and_leave(server, key, "held_slot", before_leaving=stop)
        # Palisade has noticed the client leave and sent the cancel (which waits at the stopped backend).
        wire.eventually(lambda: "cancel sent to the server" in server.log.read_text(), "Palisade's cancel for the session the client left")
        with pytest.raises(psycopg2.OperationalError) as error:
            psycopg2.connect(dsn(server, key))
        assert "already has 1 session" in str(error.value), str(error.value)
        assert not backend_gone(pid)
    finally:
        for pid in stopped:
            os.kill(pid, signal.SIGCONT)
    wire.eventually(lambda: backend_gone(pid), f"backend {pid} gone once it may run", seconds=60)
    wire.eventually(lambda: _logs_in(server, key), "a new session for the tenant once the backend is gone")
