"""Signed tokens as passwords, the profile they select, and the per-tenant budgets."""
import asyncio
import json
import re
import secrets
import socket
import struct
import subprocess
import time

import asyncpg
import psycopg2
import psycopg2.errors
import pytest

import wire

from conftest import BINARY, TENANT_DATABASE, Palisade, admin_sql, create_key, entries_of, readonly_policy_text, tenant_query as query


def mint(secret_file, tenant, role="agent", ttl=3600, tenant_claim="tenant_id"):
    return subprocess.run([BINARY, "tokens", "mint", "--secret-file", str(secret_file), "--tenant", tenant, "--role", role,
                           f"--ttl={ttl}", "--tenant-claim", tenant_claim], check=True, capture_output=True, text=True).stdout.strip()


def refused(server, password, user="agent"):
    with pytest.raises(psycopg2.OperationalError) as error:
        query(server, password, "SELECT 1", user=user)
    return str(error.value)


@pytest.fixture(scope="module")
def secret(workdir):
    path = workdir / "jwt.secret"
    path.write_text(secrets.token_hex(32) + "\n")
    return path


@pytest.fixture(scope="module")
def short_policy(workdir):
    path = workdir / "short.yaml"
    path.write_text(readonly_policy_text(**{"statement_timeout_ms: 30000": "statement_timeout_ms: 300"}))
    return path


@pytest.fixture(scope="module")
def jwt_server(tenant_database, secret, workdir, short_policy):
    keys = workdir / "identity-keys.yaml"
    create_key(keys, "acme")
    server = Palisade(["--backend", tenant_database, "--api-keys", str(keys), "--jwt-secret-file", str(secret), "--tls-mode", "disable",
                       "--profile", f"short={short_policy}", "--capability-profile", "short=short", "--jwt-clock-skew", "1",
                       "--lockout-denials", "3", "--lockout-window", "60", "--lockout-seconds", "60"])
    yield server
    server.stop()


def test_a_token_is_a_password_and_its_claims_reach_row_level_security(jwt_server, secret):
    token = mint(secret, "globex")
    assert query(jwt_server, token, "SELECT count(*) FROM orders") == [(80,)]
    claims = json.loads(query(jwt_server, token, "SELECT current_setting('request.jwt.claims', true)")[0][0])
    assert claims["tenant_id"] == "globex" and claims["role"] == "agent" and "exp" in claims


def test_the_role_claim_selects_the_profile(jwt_server, secret):
    analyst = mint(secret, "acme", role="analyst")
    assert query(jwt_server, analyst, "SELECT count(*) > 0 FROM pg_catalog.pg_proc") == [(True,)]
    with pytest.raises(psycopg2.errors.InsufficientPrivilege):
        query(jwt_server, mint(secret, "acme"), "SELECT count(*) FROM pg_catalog.pg_proc")


@pytest.mark.parametrize("case, expected", [
    ("expired", "28000"), ("wrong-secret", "28P01"), ("unsigned", "28P01"), ("no-tenant", "28000"), ("garbage", "28P01"),
])
def test_bad_tokens_are_refused_saying_which_check_failed(jwt_server, secret, workdir, case, expected):
    other = workdir / "other.secret"
    other.write_text(secrets.token_hex(32))
    token = {
        "expired": lambda: mint(secret, "acme", ttl=-120),
        "wrong-secret": lambda: mint(other, "acme"),
        "unsigned": lambda: "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0." + mint(secret, "acme").split(".")[1] + ".",
        "no-tenant": lambda: mint(secret, "acme", tenant_claim="org"),
        "garbage": lambda: "eyJhbGciOiJIUzI1NiJ9.not-json.xyz",
    }[case]()
    message = refused(jwt_server, token)
    assert expected in message or {"expired": "expired", "wrong-secret": "signature", "unsigned": "unsigned",
                                    "no-tenant": "tenant_id", "garbage": "token"}[case] in message
    assert {"expired": "expired", "wrong-secret": "signature", "unsigned": "unsigned", "no-tenant": "tenant_id",
            "garbage": "token"}[case] in message, message


def token_expiry(token):
    import base64
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["exp"]


def test_a_token_that_expires_ends_the_session_at_the_next_query(jwt_server, secret):
    # libpq (and so psycopg2) reports only "server closed the connection"; the raw client reads the FATAL.
    # Twenty seconds of life, so that minting and logging in on a loaded machine stay inside it.
    token = mint(secret, "acme", ttl=20)
    connection = wire.Connection(jwt_server.port, token, database="palisade_tenants_test")
    connection.send(wire.query("SELECT 1"))
    assert wire.kinds(connection.read_until_ready()) == "TDCZ"
    # The session ends where login would refuse the token: at exp plus the one second of clock
    # skew this server allows (the same clock: Palisade runs on this machine).
    time.sleep(max(0.0, token_expiry(token) + 1 - time.time()) + 0.2)
    connection.send(wire.query("SELECT 1"))
    kind, body = connection.read()
    fields = wire.fields(body)
    assert kind == b"E" and fields["S"] == "FATAL" and fields["C"] == "28000" and "expired" in fields["M"]
    with pytest.raises(EOFError):
        connection.read()


def test_the_profiles_statement_timeout_ends_a_runaway_query(jwt_server, secret):
    token = mint(secret, "acme", role="short")
    with pytest.raises(psycopg2.errors.QueryCanceled) as error:
        query(jwt_server, token, "WITH RECURSIVE steps(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM steps WHERE n < 1000000000) "
                                 "SELECT count(*) FROM steps")
    assert "statement timeout" in str(error.value)


def test_repeated_denials_lock_the_credential_out_and_are_audited(jwt_server, secret):
    token = mint(secret, "acme")
    connection = psycopg2.connect(f"host=127.0.0.1 port={jwt_server.port} dbname=palisade_tenants_test user=agent password={token} sslmode=disable")
    connection.autocommit = True
    cursor = connection.cursor()
    for _ in range(2):
        with pytest.raises(psycopg2.errors.InsufficientPrivilege):
            cursor.execute("DELETE FROM orders")
    # The third denial is answered, then the session ends and the credential is refused.
    with pytest.raises(psycopg2.errors.InsufficientPrivilege):
        cursor.execute("DELETE FROM orders")
    with pytest.raises((psycopg2.OperationalError, psycopg2.InterfaceError)):
        cursor.execute("SELECT 1")
    assert "locked" in refused(jwt_server, token)
    lockouts = wire.eventually(lambda: [e for e in entries_of(jwt_server.audit_dir) if e["event"] == "lockout"], "a lockout entry")
    assert lockouts[-1]["rule"] == "auth.locked"


def test_a_lockout_ends_the_credentials_other_sessions_too(jwt_server, secret):
    # Each session of a credential could otherwise go on probing while another's denials locked it.
    # (A token of its own: one minted in the same second for the same claims is the same credential.)
    token = mint(secret, "acme", ttl=3500)
    dsn = f"host=127.0.0.1 port={jwt_server.port} dbname=palisade_tenants_test user=agent password={token} sslmode=disable"
    prober, other = psycopg2.connect(dsn), psycopg2.connect(dsn)
    # Statements prepared before the lock: one never executed, one executed once.
    prepared_only = wire.Connection(jwt_server.port, token, database="palisade_tenants_test")
    prepared_only.send(wire.parse("SELECT count(*) FROM orders", name="s") + wire.SYNC)
    assert wire.kinds(prepared_only.read_until_ready()) == "1Z"
    executed_once = wire.Connection(jwt_server.port, token, database="palisade_tenants_test")
    executed_once.send(wire.parse("SELECT count(*) FROM orders", name="s") + wire.bind("s") + wire.execute() + wire.SYNC)
    assert wire.kinds(executed_once.read_until_ready()) == "12DCZ"
    prober.autocommit = True
    for _ in range(3):
        with pytest.raises(psycopg2.errors.InsufficientPrivilege):
            prober.cursor().execute("DELETE FROM orders")
    # A new text in another open session: refused with the lockout, and that session ends.
    with pytest.raises(psycopg2.Error) as locked:
        other.cursor().execute("SELECT 1")
    assert "locked" in str(locked.value), str(locked.value)
    # An execution of a statement prepared before the lock, its first or a later one: refused too, with no rows.
    for connection in (prepared_only, executed_once):
        connection.send(wire.bind("s") + wire.execute() + wire.SYNC)
        messages = []
        try:
            while not messages or messages[-1][0] != b"Z":
                messages.append(connection.read())
        except EOFError:
            pass
        assert b"D" not in [kind for kind, _ in messages], messages
        assert wire.fields(messages[0][1])["C"] == "28000" and "locked" in wire.fields(messages[0][1])["M"], messages


def test_unset_the_session_limit_leaves_the_server_connections_for_other_tenants(tenant_database, workdir):
    """One tenant's sessions took every connection the server had, and another was refused with 53300
    (sixteenth red team). Unset, the limit is a quarter of what the server allows Palisade's role:
    here the role's connection limit of 9 makes it 2."""
    admin_sql(TENANT_DATABASE, "ALTER ROLE palisade_app CONNECTION LIMIT 9")
    held = []
    try:
        keys = workdir / "slots-keys.yaml"
        issued = {tenant: create_key(keys, tenant) for tenant in ("acme", "globex")}
        server = Palisade(["--backend", tenant_database, "--api-keys", str(keys), "--tls-mode", "disable"])
        try:
            dsn = f"host=127.0.0.1 port={server.port} dbname={TENANT_DATABASE} user=agent sslmode=disable password="
            held = [psycopg2.connect(dsn + issued["acme"]) for _ in range(2)]
            with pytest.raises(psycopg2.OperationalError) as error:
                psycopg2.connect(dsn + issued["acme"])
            assert "already has 2 sessions" in str(error.value)
            assert query(server, issued["globex"], "SELECT count(*) FROM orders") == [(80,)]
        finally:
            for connection in held:
                connection.close()
            server.stop()
    finally:
        admin_sql(TENANT_DATABASE, "ALTER ROLE palisade_app CONNECTION LIMIT -1")


@pytest.fixture(scope="module")
def budget_server(tenant_database, workdir):
    keys = workdir / "budget-keys.yaml"
    issued = {"acme": create_key(keys, "acme"), "globex": create_key(keys, "globex")}
    server = Palisade(["--backend", tenant_database, "--api-keys", str(keys), "--tls-mode", "disable",
                       "--max-sessions-per-tenant", "2", "--tenant-rate", "2", "--tenant-burst", "3"])
    yield server, issued
    server.stop()


def test_sessions_per_tenant_are_limited(budget_server):
    server, keys = budget_server
    dsn = f"host=127.0.0.1 port={server.port} dbname=palisade_tenants_test user=agent sslmode=disable password="
    first, second = psycopg2.connect(dsn + keys["acme"]), psycopg2.connect(dsn + keys["acme"])
    with pytest.raises(psycopg2.OperationalError) as error:
        psycopg2.connect(dsn + keys["acme"])
    assert "already has 2 sessions" in str(error.value)
    psycopg2.connect(dsn + keys["globex"]).close()
    first.close()

    def connect_once_released():
        try:
            return psycopg2.connect(dsn + keys["acme"])
        except psycopg2.OperationalError as error:
            assert "already has 2 sessions" in str(error)
            return None
    wire.eventually(connect_once_released, "a session slot released by the closed one").close()
    second.close()


def test_the_query_rate_per_tenant_is_limited_with_a_retry_hint(budget_server):
    server, keys = budget_server
    connection = psycopg2.connect(f"host=127.0.0.1 port={server.port} dbname=palisade_tenants_test user=agent password={keys['globex']} sslmode=disable")
    connection.autocommit = True
    cursor = connection.cursor()
    outcomes = []
    for _ in range(8):
        try:
            cursor.execute("SELECT 1")
            outcomes.append("ok")
        except psycopg2.Error as error:
            assert error.pgcode == "53400" and re.search(r"retry in \d+", str(error)), str(error)
            outcomes.append("limited")
    connection.close()
    assert outcomes[:3] == ["ok"] * 3 and "limited" in outcomes


def test_the_query_rate_counts_every_execution_of_a_prepared_statement(tenant_database, workdir):
    # One Parse, then Bind/Execute rounds: each round after the first is another query against the
    # tenant's rate, as drivers that prepare (asyncpg, JDBC) send them. A burst of 3 that refills
    # once in 1,000 s: the outcome does not depend on how fast the rounds go.
    keys = workdir / "rate-keys.yaml"
    key = create_key(keys, "acme")
    server = Palisade(["--backend", tenant_database, "--api-keys", str(keys), "--tls-mode", "disable",
                       "--tenant-rate", "0.001", "--tenant-burst", "3"])
    try:
        connection = wire.Connection(server.port, key, database="palisade_tenants_test")
        connection.send(wire.parse("SELECT count(*) FROM orders WHERE id > $1", name="s") + wire.SYNC)
        assert wire.kinds(connection.read_until_ready()) == "1Z"
        outcomes = []
        for round in range(6):
            connection.send(wire.bind("s", parameters=[str(round)]) + wire.execute() + wire.SYNC)
            messages = connection.read_until_ready()
            if wire.kinds(messages) == "2DCZ":
                outcomes.append("ok")
            else:
                error = wire.fields(messages[0][1])
                assert error["C"] == "53400" and "retry in" in error.get("H", "") + error["M"], messages
                outcomes.append("limited")
        connection.close()
        # The Parse took one of the 3 and counted its first execution; two more executions took the rest.
        assert outcomes == ["ok", "ok", "ok", "limited", "limited", "limited"], outcomes
        refusals = wire.eventually(lambda: [e for e in entries_of(server.audit_dir) if e["rule"] == "budget.rate" and e["message_kind"] == "B"],
                                   "an audited refusal of an execution")
        assert refusals[0]["decision"] == "deny" and refusals[0]["tenant"] == "acme"
    finally:
        server.stop()


@pytest.fixture(scope="module")
def scram_keys(workdir):
    path = workdir / "scram-keys.yaml"
    return {"file": path, "acme": create_key(path, "acme"), "globex": create_key(path, "globex")}


@pytest.fixture(scope="module")
def scram_server(tenant_database, scram_keys):
    server = Palisade(["--backend", tenant_database, "--api-keys", str(scram_keys["file"]), "--tls-mode", "disable",
                       "--client-auth", "scram-sha-256"])
    yield server
    server.stop()


def key_id(key):
    return key.split("_")[1]


def test_scram_logs_in_with_the_key_id_as_user_and_never_sends_the_key(scram_server, scram_keys):
    # The raw exchange: Palisade offers only SCRAM-SHA-256, so the key itself never crosses the wire.
    with socket.create_connection(("127.0.0.1", scram_server.port), timeout=10) as sock:
        sock.sendall(wire.startup(key_id(scram_keys["acme"]), "palisade_tenants_test"))
        request = sock.recv(1024)
    assert request == b"R" + struct.pack("!ii", 4 + 4 + 15, 10) + b"SCRAM-SHA-256\0\0"
    # libpq (psycopg2) and asyncpg's own SCRAM both log in; row-level security sees each key's tenant.
    assert query(scram_server, scram_keys["acme"], "SELECT count(*) FROM orders", user=key_id(scram_keys["acme"])) == [(120,)]
    assert query(scram_server, scram_keys["globex"], "SELECT count(*) FROM orders", user=key_id(scram_keys["globex"])) == [(80,)]
    async def count():
        connection = await asyncpg.connect(host="127.0.0.1", port=scram_server.port, user=key_id(scram_keys["globex"]),
                                           password=scram_keys["globex"], database="palisade_tenants_test", ssl=False)
        try:
            return await connection.fetchval("SELECT count(*) FROM orders")
        finally:
            await connection.close()
    assert asyncio.run(count()) == 80


def test_scram_refuses_a_wrong_key_and_an_unknown_id_alike(scram_server, scram_keys):
    acme = scram_keys["acme"]
    wrong_key = refused(scram_server, acme[:-4] + "AAAA", key_id(acme))
    unknown_id = refused(scram_server, acme, "00000000")
    # Another key's id with this key: the id selects the verifier, so the proof cannot match.
    swapped = refused(scram_server, acme, key_id(scram_keys["globex"]))
    for message in (wrong_key, unknown_id, swapped):
        assert "password authentication failed for user" in message


def test_scram_needs_a_verifier_for_every_key_and_no_tokens(tenant_database, workdir, secret, scram_keys):
    old = workdir / "old-keys.yaml"
    old.write_text("keys:\n  - id: 0a0b0c0d\n    sha256: " + "ab" * 32 + "\n    tenant: acme\n    profile: agent\n")
    audit = ["--audit-dir", str(workdir / "scram-audit"), "--audit-unsigned"]
    base = [BINARY, "serve", "--listen", "127.0.0.1:0", "--backend", tenant_database, "--tls-mode", "disable", "--client-auth", "scram-sha-256", *audit]
    result = subprocess.run(base + ["--api-keys", str(old)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "api_keys: key 0a0b0c0d has no SCRAM verifier" in result.stderr
    result = subprocess.run(base + ["--api-keys", str(scram_keys["file"]), "--jwt-secret-file", str(secret)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "client_auth: scram-sha-256 checks API keys only" in result.stderr
