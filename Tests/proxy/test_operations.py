"""Operating Palisade: policy reload on SIGHUP."""
import os
import signal
import time

import psycopg2
import psycopg2.errors
import pytest

import wire
from conftest import DATABASE, Palisade, backend_url, dsn, entries_of, free_port, readonly_policy_text, wait_until_running


def policy_text(show_server_version=True):
    return readonly_policy_text(**({} if show_server_version else {"    - server_version\n": ""}))


def wait_for(log, text, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if text in log.read_text():
            return
        time.sleep(0.1)
    raise AssertionError(f"{text!r} not in the log: {log.read_text()}")


def show(server, key):
    connection = psycopg2.connect(dsn(server, key))
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute("SHOW server_version")
            return cursor.fetchone()[0]
    finally:
        connection.close()


def test_sighup_reloads_policies_atomically_and_keeps_them_on_a_bad_file(database, keys, monitor_policy, tmp_path):
    policy = tmp_path / "agent.yaml"
    policy.write_text(policy_text())
    server = Palisade(["--backend", backend_url(database), "--api-keys", str(keys["file"]), "--tls-mode", "disable",
                       "--policy", str(policy), "--profile", f"monitor={monitor_policy}"])
    try:
        assert show(server, keys["agent"]).startswith("15")
        # A statement prepared before the reload (seventeenth red team: it went on running).
        prepared = wire.Connection(server.port, keys["agent"], user="agent", database=DATABASE)
        prepared.send(wire.parse("SHOW server_version", name="v") + wire.SYNC)
        assert wire.kinds(prepared.read_until_ready()) == "1Z"

        policy.write_text(policy_text(show_server_version=False))
        os.kill(server.process.pid, signal.SIGHUP)
        wait_for(server.log, "policies reloaded")
        with pytest.raises(psycopg2.errors.InsufficientPrivilege):
            show(server, keys["agent"])
        # Its next Bind decides the text again, under the reloaded policy.
        prepared.send(wire.bind("v") + wire.execute() + wire.SYNC)
        messages = prepared.read_until_ready()
        assert wire.kinds(messages) == "EZ" and wire.fields(messages[0][1])["C"] == "42501", messages
        prepared.close()

        policy.write_text("profile: broken\nlimits: [\n")
        os.kill(server.process.pid, signal.SIGHUP)
        wait_for(server.log, "policy reload refused")
        with pytest.raises(psycopg2.errors.InsufficientPrivilege):
            show(server, keys["agent"])
        assert server.process.poll() is None

        def versions():
            return {e["policy_version"] for e in entries_of(server.audit_dir)
                    if e["event"] == "policy_loaded" and "agent=" in (e.get("message") or "")}
        wire.eventually(lambda: len(versions()) == 2, lambda: f"two agent policy versions in the log ({versions()})")
    finally:
        server.stop()


def test_signed_policies_are_required_at_start_and_reload(database, keys, monitor_policy, tmp_path):
    import subprocess
    from conftest import BINARY
    key_file = tmp_path / "policy.key"
    verifier = subprocess.run([BINARY, "audit", "keygen", "--out", str(key_file), "--name", "policies.test"],
                              check=True, capture_output=True, text=True).stdout.strip()
    policy = tmp_path / "agent.yaml"
    policy.write_text(policy_text())
    arguments = ["--backend", backend_url(database), "--api-keys", str(keys["file"]), "--tls-mode", "disable", "--policy", str(policy),
                 "--profile", f"monitor={policy}", "--profile", f"analyst={policy}", "--require-signed-policies", "--policy-key", verifier]

    with pytest.raises(RuntimeError, match="is not signed"):
        Palisade(arguments)

    signed = subprocess.run([BINARY, "policy", "sign", "--key", str(key_file), str(policy)], capture_output=True, text=True)
    assert signed.returncode == 0, signed.stderr
    assert subprocess.run([BINARY, "policy", "verify", "--key", verifier, str(policy)], capture_output=True).returncode == 0

    server = Palisade(arguments)
    try:
        assert show(server, keys["agent"]).startswith("15")
        policy.write_text(policy_text(show_server_version=False))  # altered, not re-signed
        verified = subprocess.run([BINARY, "policy", "verify", "--key", verifier, str(policy)], capture_output=True, text=True)
        assert verified.returncode == 1 and "changed after it was signed" in verified.stdout
        os.kill(server.process.pid, signal.SIGHUP)
        wait_for(server.log, "policy reload refused")
        assert show(server, keys["agent"]).startswith("15")
    finally:
        server.stop()


def admin_server(database, keys, monitor_policy):
    """A Palisade with an admin port, and that port's base URL."""
    admin_port = free_port()
    server = Palisade(["--backend", backend_url(database), "--api-keys", str(keys["file"]), "--tls-mode", "disable",
                       "--profile", f"monitor={monitor_policy}", "--admin-listen", str(admin_port)])
    return server, f"http://127.0.0.1:{admin_port}"


def test_admin_endpoints_health_readiness_metrics_and_reload(database, keys, monitor_policy, tmp_path):
    import urllib.request
    server, base = admin_server(database, keys, monitor_policy)
    try:
        connection = psycopg2.connect(dsn(server, keys["agent"]))
        connection.autocommit = True
        cursor = connection.cursor()
        cursor.execute("SELECT 1")
        with pytest.raises(psycopg2.errors.InsufficientPrivilege):
            cursor.execute("DROP TABLE orders")
        assert urllib.request.urlopen(base + "/healthz").read() == b"ok\n"
        assert urllib.request.urlopen(base + "/readyz").status == 200
        metrics = urllib.request.urlopen(base + "/metrics").read().decode()
        assert 'palisade_decisions_total{decision="deny",rule="stmt.ddl",enforced="yes"} 1' in metrics
        assert 'palisade_denials_total{tenant="acme"} 1' in metrics  # the Grafana dashboard's denials per tenant
        assert 'palisade_decisions_total{decision="allow",rule="allow.query",enforced="yes"}' in metrics
        assert "palisade_sessions 1" in metrics and "palisade_decision_seconds_count" in metrics
        assert "palisade_audit_entries_per_sync" in metrics and "palisade_audit_sync_seconds_mean" in metrics
        assert "palisade_backend_seconds_count" in metrics
        connection.close()
        reload = urllib.request.urlopen(urllib.request.Request(base + "/reload", method="POST")).read().decode()
        assert "policies reloaded" in reload
    finally:
        server.stop()


def test_admin_refuses_cross_site_posts_and_rebound_hosts(database, keys, monitor_policy):
    # Sixteenth red team (rt19-admin-reload-cross-origin): a web page could POST a form to /reload and a
    # rebound name could read /metrics.
    import urllib.error
    import urllib.request
    server, base = admin_server(database, keys, monitor_policy)

    def status(path, method="GET", headers=None, data=None):
        request = urllib.request.Request(base + path, method=method, headers=headers or {}, data=data)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()
    try:
        form = {"Origin": "http://evil.example", "Content-Type": "application/x-www-form-urlencoded"}
        assert status("/reload", "POST", form, b"a=b")[0] == 403
        assert status("/reload", "POST", {"Content-Type": "text/plain"}, b"x")[0] == 403
        assert status("/reload", "POST", {"Origin": "http://evil.example"})[0] == 403
        code, body = status("/metrics", headers={"Host": "rebind.evil.example"})
        assert code == 421 and "tenant" not in body
        assert "policies reloaded" not in server.log.read_text()
        # What curl, Prometheus and a page of the admin port itself send is answered.
        assert status("/metrics", headers={"Host": "localhost:" + base.rsplit(":", 1)[1]})[0] == 200
        code, body = status("/reload", "POST", {"Origin": base, "Content-Type": "application/json"}, b"{}")
        assert code == 200 and "policies reloaded" in body
    finally:
        server.stop()


def test_sigterm_lets_running_queries_finish_and_signs_the_log(database, keys, monitor_policy, audit_key, tmp_path):
    import subprocess
    from conftest import BINARY
    server = Palisade(["--backend", backend_url(database), "--api-keys", str(keys["file"]), "--tls-mode", "disable",
                       "--profile", f"monitor={monitor_policy}", "--shutdown-seconds", "300"],
                      audit_dir=tmp_path / "audit", audit_key=audit_key[0])
    idle = wire.Connection(server.port, keys["agent"], database=DATABASE)
    busy = wire.Connection(server.port, keys["agent"], database=DATABASE)
    busy.sock.settimeout(300)  # how long the statement runs depends on the machine's load
    # Seconds of work (about 1 µs a step) that the cost budget admits: a recursion's estimate is a few rows.
    busy.send(wire.query("WITH RECURSIVE steps(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM steps WHERE n < 5000000) "
                         "SELECT count(*) AS finish_me FROM steps"))
    wait_until_running(DATABASE, "finish_me")
    server.process.send_signal(signal.SIGTERM)

    kind, body = idle.read()
    assert kind == b"E" and wire.fields(body)["C"] == "57P01"
    answered = busy.read_until_ready()
    assert wire.kinds(answered) == "TDCZ" and answered[1][1].endswith(b"5000000")
    kind, body = busy.read()
    assert kind == b"E" and wire.fields(body)["C"] == "57P01"
    assert server.process.wait(timeout=300) == 0
    verified = subprocess.run([BINARY, "audit", "verify", "--key", audit_key[1], str(tmp_path / "audit")], capture_output=True, text=True)
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_json_logs_carry_ids_and_rules_but_no_credentials_or_literals(database, keys, monitor_policy):
    import json as jsonlib
    server = Palisade(["--backend", backend_url(database), "--api-keys", str(keys["file"]), "--tls-mode", "disable",
                       "--profile", f"monitor={monitor_policy}", "--log-format", "json"])
    try:
        connection = psycopg2.connect(dsn(server, keys["agent"]))
        connection.autocommit = True
        with pytest.raises(psycopg2.errors.InsufficientPrivilege):
            connection.cursor().execute("DELETE FROM orders WHERE region = 'very-secret-literal'")
        connection.close()
        time.sleep(0.5)
    finally:
        server.stop()
    text = server.log.read_text()
    records = [jsonlib.loads(line) for line in text.splitlines() if line.startswith("{")]
    denied = [r for r in records if r["message"] == "denied"]
    assert denied and denied[0]["rule"] == "stmt.dml" and denied[0]["tenant"] == "acme" and denied[0]["request"]
    assert any(r["message"] == "session started" for r in records)
    assert "very-secret-literal" not in text and keys["agent"] not in text


def test_sighup_rotates_to_a_new_audit_key_and_the_log_verifies_with_both(database, keys, monitor_policy, tmp_path):
    import subprocess
    from conftest import BINARY
    key_file = tmp_path / "audit.key"
    old = subprocess.run([BINARY, "audit", "keygen", "--out", str(key_file), "--name", "rotation.test"],
                         check=True, capture_output=True, text=True).stdout.strip()
    server = Palisade(["--backend", backend_url(database), "--api-keys", str(keys["file"]), "--tls-mode", "disable",
                       "--profile", f"monitor={monitor_policy}"], audit_dir=tmp_path / "audit", audit_key=key_file)
    try:
        key_file.unlink()
        new = subprocess.run([BINARY, "audit", "keygen", "--out", str(key_file), "--name", "rotation.test"],
                             check=True, capture_output=True, text=True).stdout.strip()
        os.kill(server.process.pid, signal.SIGHUP)
        wait_for(server.log, "audit signing key rotated")
        show(server, keys["agent"])
    finally:
        server.stop()
    events = [e["event"] for e in entries_of(tmp_path / "audit")]
    assert "key_rotation" in events
    verified = subprocess.run([BINARY, "audit", "verify", "--key", old, "--key", new, str(tmp_path / "audit")], capture_output=True, text=True)
    assert verified.returncode == 0, verified.stdout + verified.stderr
