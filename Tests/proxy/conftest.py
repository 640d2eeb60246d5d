"""Fixtures: a PostgreSQL role and data for Palisade, API keys, a TLS certificate, and Palisade itself.

The PostgreSQL server is the throwaway one scripts/with-postgres.sh starts (PG* variables name a
superuser); nothing here runs without it.
"""
import json
import os
import pathlib
import shutil
import socket
import subprocess
import tempfile
import time

import psycopg2
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
BINARY = os.environ.get("PALISADE_BIN", str(ROOT / ".build/debug/palisade"))
DATABASE = "palisade_proxy_test"
APP_ROLE, APP_PASSWORD = "palisade_proxy_test_app", "app-secret"


def admin_rows(database, statement):
    """The rows of one statement, run as the superuser."""
    connection = psycopg2.connect(dbname=database)
    try:
        with connection.cursor() as cursor:
            cursor.execute(statement)
            return cursor.fetchall()
    finally:
        connection.close()


def admin_sql(database, *statements):
    """Runs statements as the superuser, each in its own transaction (DROP DATABASE needs that)."""
    connection = psycopg2.connect(dbname=database)
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)
    finally:
        connection.close()


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def database():
    if "PGPORT" not in os.environ:
        pytest.skip("no PostgreSQL: run through scripts/with-postgres.sh")
    admin_sql("postgres", f"DROP DATABASE IF EXISTS {DATABASE}", f"CREATE DATABASE {DATABASE}",
              f"DROP ROLE IF EXISTS {APP_ROLE}",
              f"CREATE ROLE {APP_ROLE} LOGIN PASSWORD '{APP_PASSWORD}' NOSUPERUSER NOBYPASSRLS")
    subprocess.run(["pgbench", "-i", "-s", "1", "-q", DATABASE], check=True, capture_output=True)
    admin_sql(DATABASE,
              "CREATE TABLE orders (id int PRIMARY KEY, region text, amount numeric)",
              "INSERT INTO orders SELECT g, (ARRAY['north','south','east'])[g % 3 + 1], g * 10 FROM generate_series(1, 30) g",
              "CREATE TABLE scratch (note text)",
              f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {APP_ROLE}",
              # Only the server's read-only session stops this write (see the monitor-mode backstop test).
              f"GRANT INSERT ON scratch TO {APP_ROLE}")
    return DATABASE


@pytest.fixture(scope="session")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("palisade")


@pytest.fixture(scope="session")
def keys(workdir):
    path = workdir / "keys.yaml"

    def create(tenant, profile):
        out = subprocess.run([BINARY, "keys", "create", "--tenant", tenant, "--profile", profile, "--keys-file", str(path)],
                             check=True, capture_output=True, text=True)
        return out.stdout.strip()

    return {"file": path, "agent": create("acme", "agent"), "analyst": create("acme", "analyst"),
            "monitor": create("acme", "monitor")}


@pytest.fixture(scope="session")
def certificate(workdir):
    cert, key = workdir / "server.crt", workdir / "server.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


def readonly_policy_text(**replacements):
    """Policies/readonly.yaml, usable from another directory, with texts replaced."""
    text = (ROOT / "Policies/readonly.yaml").read_text()
    text = text.replace("builtin_list: functions/pg15.tsv", f"builtin_list: {ROOT}/Policies/functions/pg15.tsv")
    text = text.replace("metadata_list: catalog/metadata.tsv", f"metadata_list: {ROOT}/Policies/catalog/metadata.tsv")
    for old, new in replacements.items():
        text = text.replace(old, new)
    return text


@pytest.fixture(scope="session")
def monitor_policy(workdir):
    path = workdir / "monitor.yaml"
    path.write_text(readonly_policy_text(**{"mode: enforce": "mode: monitor"}))
    return path


@pytest.fixture(scope="session")
def audit_key(workdir):
    """A checkpoint signing key, and the verifier key reviewers get."""
    path = workdir / "audit.key"
    verifier = subprocess.run([BINARY, "audit", "keygen", "--out", str(path), "--name", "test.palisade"],
                              check=True, capture_output=True, text=True).stdout.strip()
    return path, verifier


class Palisade:
    def __init__(self, arguments, audit_dir=None, audit_key=None, environment=None, checkpoint_seconds=1):
        self.port = free_port()
        self.audit_dir = audit_dir or tempfile.mkdtemp(prefix="palisade-audit.")
        audit = ["--audit-dir", str(self.audit_dir), "--audit-checkpoint-seconds", str(checkpoint_seconds)]
        audit += ["--audit-key", str(audit_key)] if audit_key else ["--audit-unsigned"]
        # The server's output goes to a file, so that a crash can be shown once the tests end.
        self.log = pathlib.Path(tempfile.mkstemp(prefix="palisade-serve.", suffix=".log")[1])
        self.process = subprocess.Popen([BINARY, "serve", "--listen", f"127.0.0.1:{self.port}", *audit, *arguments],
                                        cwd=ROOT, stdout=self.log.open("w"), stderr=subprocess.STDOUT, text=True,
                                        env=dict(os.environ, **(environment or {})))
        # A generous bound: a loaded machine may take long to start a debug build; only a broken
        # start reaches it.
        deadline = time.monotonic() + 120
        while "listening" not in self.log.read_text():
            if self.process.poll() is not None:
                raise RuntimeError(f"palisade did not start: {self.log.read_text()}")
            if time.monotonic() > deadline:
                self.process.kill()
                raise RuntimeError(f"palisade did not start: {self.log.read_text()}")
            time.sleep(0.05)

    def stop(self):
        died = self.process.poll()
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        if died is not None:
            print(f"\npalisade exited early with {died}; its output:\n{self.log.read_text()[-6000:]}")


def backend_url(database):
    return f"postgres://{APP_ROLE}:{APP_PASSWORD}@{os.environ['PGHOST']}:{os.environ['PGPORT']}/{database}"


@pytest.fixture(scope="session")
def palisade(database, keys, monitor_policy, audit_key):
    """Palisade without TLS (loopback development mode)."""
    server = Palisade(["--backend", backend_url(database), "--api-keys", str(keys["file"]), "--tls-mode", "disable",
                       "--profile", f"monitor={monitor_policy}"], audit_key=audit_key[0])
    yield server
    server.stop()


@pytest.fixture(scope="session")
def palisade_tls(database, keys, certificate, monitor_policy):
    server = Palisade(["--backend", backend_url(database), "--api-keys", str(keys["file"]), "--tls-mode", "require",
                       "--tls-cert", str(certificate[0]), "--tls-key", str(certificate[1]), "--profile", f"monitor={monitor_policy}"])
    yield server
    server.stop()


def dsn(server, key, sslmode="disable", user="agent", database=DATABASE):
    return f"host=127.0.0.1 port={server.port} dbname={database} user={user} password={key} sslmode={sslmode}"


@pytest.fixture
def psql_env(keys):
    env = dict(os.environ)
    for name in ("PGHOST", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE"):
        env.pop(name, None)
    return env


def have(command):
    return shutil.which(command) is not None


TENANT_DATABASE, TENANT_PASSWORD = "palisade_tenants_test", "tenant-test-secret"


@pytest.fixture(scope="session")
def tenant_database():
    """docker/demo.sql: two tenants (acme 120 orders, globex 80) under forced row-level security."""
    if "PGPORT" not in os.environ:
        pytest.skip("no PostgreSQL: run through scripts/with-postgres.sh")
    admin_sql("postgres", f"DROP DATABASE IF EXISTS {TENANT_DATABASE}", f"CREATE DATABASE {TENANT_DATABASE}")
    subprocess.run(["psql", "-X", "-q", "-d", TENANT_DATABASE, "-v", f"app_password='{TENANT_PASSWORD}'", "-f", str(ROOT / "docker/demo.sql")],
                   check=True, capture_output=True)
    return f"postgres://palisade_app:{TENANT_PASSWORD}@{os.environ['PGHOST']}:{os.environ['PGPORT']}/{TENANT_DATABASE}"


def create_key(key_file, tenant, profile="agent"):
    return subprocess.run([BINARY, "keys", "create", "--tenant", tenant, "--profile", profile, "--keys-file", str(key_file)],
                          check=True, capture_output=True, text=True).stdout.strip()


def tenant_query(server, password, sql, user="agent"):
    connection = psycopg2.connect(f"host=127.0.0.1 port={server.port} dbname={TENANT_DATABASE} user={user} password={password} sslmode=disable")
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql)
            return cursor.fetchall()
    finally:
        connection.close()


def wait_until_running(database, text_fragment):
    """Waits until the server runs a statement whose text contains `text_fragment`, so that what the
    test does next (a cancel, a shutdown) meets the query at the server and not on its way there."""
    import wire

    def running():
        connection = psycopg2.connect(dbname=database)
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE %s AND pid <> pg_backend_pid()",
                               (f"%{text_fragment}%",))
                return cursor.fetchone()[0] > 0
        finally:
            connection.close()
    wire.eventually(running, f"a running statement with {text_fragment!r}")


def entries_of(audit_dir):
    """The audit log's entries, as `palisade audit list --json` prints them."""
    result = subprocess.run([BINARY, "audit", "list", "--json", str(audit_dir)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
