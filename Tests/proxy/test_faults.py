"""Faults around Palisade: the server stopped, restarted or stalled, and a transaction left idle.

These tests stop and stall a PostgreSQL server of their own (initdb in a temporary directory), so
that the rest of the suite's server is never touched.
"""
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import tempfile
import urllib.error
import urllib.request

import psycopg2
import pytest

import wire
from conftest import Palisade, free_port, readonly_policy_text

PG_BIN = pathlib.Path("/usr/lib/postgresql/15/bin")
ROLE, PASSWORD, DATABASE = "palisade_fault_app", "fault-secret", "faults"


class Cluster:
    """A PostgreSQL 15 server in a temporary directory, as the postgres user when run as root."""

    def __init__(self):
        self.directory = pathlib.Path(tempfile.mkdtemp(prefix="palisade-faults."))
        self.directory.chmod(0o755)
        self.data = self.directory / "data"
        self.port = free_port()
        self.as_owner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_owner:
            shutil.chown(self.directory, "postgres")
        subprocess.run([*self.as_owner, str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth-local=trust",
                        "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8"], check=True, capture_output=True)
        self.start()
        self.sql("postgres", f"CREATE ROLE {ROLE} LOGIN PASSWORD '{PASSWORD}'", f"CREATE DATABASE {DATABASE}")
        self.sql(DATABASE, "CREATE TABLE orders (id int PRIMARY KEY, region text)",
                 "INSERT INTO orders SELECT g, 'north' FROM generate_series(1, 10) g", f"GRANT SELECT ON orders TO {ROLE}")

    def pg_ctl(self, *arguments):
        return subprocess.run([*self.as_owner, str(PG_BIN / "pg_ctl"), "-D", str(self.data), *arguments],
                              capture_output=True, text=True, timeout=120)

    def start(self):
        result = self.pg_ctl("-l", str(self.directory / "server.log"), "-w", "-o",
                             f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off", "start")
        assert result.returncode == 0, result.stdout + result.stderr + (self.directory / "server.log").read_text()

    def stop(self, mode):
        result = self.pg_ctl("-m", mode, "-w", "stop")
        assert result.returncode == 0, result.stdout + result.stderr

    def processes(self):
        """The postmaster and every process it started."""
        postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
        children = subprocess.run(["pgrep", "-P", str(postmaster)], capture_output=True, text=True).stdout.split()
        return [postmaster, *map(int, children)]

    def signal(self, number):
        for pid in self.processes():
            os.kill(pid, number)

    def sql(self, database, *statements):
        connection = psycopg2.connect(host=str(self.directory), port=self.port, user="postgres", dbname=database)
        connection.autocommit = True
        try:
            with connection.cursor() as cursor:
                for statement in statements:
                    cursor.execute(statement)
        finally:
            connection.close()

    @property
    def url(self):
        return f"postgres://{ROLE}:{PASSWORD}@127.0.0.1:{self.port}/{DATABASE}"

    def remove(self):
        self.pg_ctl("-m", "immediate", "stop")
        shutil.rmtree(self.directory, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster():
    if not (PG_BIN / "initdb").exists():
        pytest.fail("PostgreSQL 15 is not installed (scripts/install-deps.sh installs it)")
    server = Cluster()
    yield server
    server.remove()


@pytest.fixture(scope="module")
def fault_keys(workdir):
    import conftest
    path = workdir / "fault-keys.yaml"
    return {"file": path, "acme": conftest.create_key(path, "acme"), "globex": conftest.create_key(path, "globex"),
            "short": conftest.create_key(path, "acme", profile="short")}


@pytest.fixture(scope="module")
def short_policy(workdir):
    """Two seconds for a statement, one for a transaction left idle."""
    path = workdir / "short-faults.yaml"
    path.write_text(readonly_policy_text(**{"statement_timeout_ms: 30000": "statement_timeout_ms: 2000\n  idle_in_transaction_timeout_ms: 1000"}))
    return path


@pytest.fixture(scope="module")
def palisade_faults(cluster, fault_keys, short_policy):
    admin_port = free_port()
    server = Palisade(["--backend", cluster.url, "--api-keys", str(fault_keys["file"]), "--tls-mode", "disable",
                       "--admin-listen", str(admin_port), "--login-timeout", "20", "--profile", f"short={short_policy}"])
    server.admin = f"http://127.0.0.1:{admin_port}"
    yield server
    server.stop()


def readiness(server):
    try:
        with urllib.request.urlopen(server.admin + "/readyz", timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def session(server, key, user="agent"):
    return wire.Connection(server.port, key, user=user, database=DATABASE)


def first_error(connection):
    """Reads up to the first ErrorResponse (notices may come first) and returns its fields."""
    while True:
        kind, body = connection.read()
        if kind == b"E":
            return wire.fields(body)


def login_error(server, key):
    with pytest.raises(ConnectionRefusedError) as refused:
        session(server, key)
    return refused.value.args[0]


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_a_stopped_server_is_reported_and_sessions_resume_when_it_is_back(cluster, palisade_faults, fault_keys, mode):
    open_session = session(palisade_faults, fault_keys["acme"])
    open_session.send(wire.query("SELECT count(*) FROM orders"))
    assert wire.kinds(open_session.read_until_ready()) == "TDCZ"
    assert readiness(palisade_faults) == 200

    cluster.stop(mode)
    # The server's own words reach the open session: its FATAL (fast) or its warning (immediate),
    # then the end of the session, never a bare close.
    error = first_error(open_session)
    assert error["C"] == "57P01" and error["S"] == "FATAL", error
    if mode == "fast":
        assert "administrator command" in error["M"], error
    with pytest.raises(EOFError):
        while True:
            open_session.read()

    # While it is down: a clear 08006 naming the server, without SwiftNIO's internals.
    refused = login_error(palisade_faults, fault_keys["acme"])
    assert refused["C"] == "08006" and "cannot reach the database server" in refused["M"], refused
    assert "connection refused" in refused["M"].lower() and "NIO" not in refused["M"] and "Failure" not in refused["M"], refused
    assert readiness(palisade_faults) == 503

    cluster.start()
    wire.eventually(lambda: readiness(palisade_faults) == 200, "/readyz back to 200")
    resumed = session(palisade_faults, fault_keys["acme"])
    resumed.send(wire.query("SELECT count(*) FROM orders"))
    assert wire.kinds(resumed.read_until_ready()) == "TDCZ"
    resumed.close()


def test_a_stalled_server_times_logins_and_queries_out_and_blocks_no_one_else(cluster, palisade_faults, fault_keys):
    busy = session(palisade_faults, fault_keys["short"], user="short")
    bystander = session(palisade_faults, fault_keys["globex"])
    cluster.signal(signal.SIGSTOP)
    try:
        # A query to a server that does not answer ends at the profile's statement_timeout plus a
        # grace period, with a clear error; the server's own timer cannot fire while it is stopped.
        busy.send(wire.query("SELECT count(*) FROM orders"))
        # Meanwhile another tenant's session is served where it need not reach the server: a
        # denial, answered at once.
        bystander.send(wire.query("DELETE FROM orders"))
        denied = bystander.read_until_ready()
        assert wire.kinds(denied) == "EZ" and wire.fields(denied[0][1])["C"] == "42501"
        # A login waits for the server no longer than the login timeout (20 s here).
        refused = login_error(palisade_faults, fault_keys["globex"])
        assert refused["C"] == "08006" and "did not answer" in refused["M"], refused
        # The stalled query's session ends after its 2 s statement_timeout and the grace period.
        error = first_error(busy)
        assert error["S"] == "FATAL" and error["C"] == "08006" and "did not answer" in error["M"], error
    finally:
        cluster.signal(signal.SIGCONT)
    bystander.close()
    busy.close()


def test_an_idle_transaction_ends_at_the_profiles_timeout(palisade_faults, fault_keys):
    # The profile's idle_in_transaction_timeout_ms goes to the server with the session, so a client
    # cannot hold a snapshot and its locks open after BEGIN; the server's FATAL is relayed.
    connection = session(palisade_faults, fault_keys["short"], user="short")
    connection.send(wire.query("BEGIN"))
    assert wire.kinds(connection.read_until_ready()) == "CZ"
    connection.send(wire.query("SELECT count(*) FROM orders"))
    assert wire.kinds(connection.read_until_ready()) == "TDCZ"
    error = first_error(connection)
    assert error["S"] == "FATAL" and error["C"] == "25P03" and "idle-in-transaction" in error["M"], error
    with pytest.raises(EOFError):
        while True:
            connection.read()
