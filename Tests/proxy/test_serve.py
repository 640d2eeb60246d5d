"""`palisade serve` refuses to start, with the key and the reason, when it cannot be safe."""
import os
import subprocess
import tempfile

import pytest

from conftest import BINARY, ROOT, backend_url, free_port


def serve(*arguments, timeout=30):
    # The shared keys file also holds a key for the monitor profile, so every run names it.
    monitor = ROOT / "Policies/readonly.yaml"
    audit = ["--audit-dir", tempfile.mkdtemp(prefix="palisade-audit."), "--audit-unsigned"]
    return subprocess.run([BINARY, "serve", "--listen", f"127.0.0.1:{free_port()}", "--profile", f"monitor={monitor}", *audit, *arguments],
                          cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def test_superuser_backend_is_refused(database, keys):
    superuser_url = f"postgres://{os.environ['PGUSER']}:{os.environ.get('PGPASSWORD', '')}@{os.environ['PGHOST']}:{os.environ['PGPORT']}/{database}"
    result = serve("--backend", superuser_url, "--api-keys", str(keys["file"]), "--tls-mode", "disable")
    assert result.returncode == 2
    assert "configuration error: backend:" in result.stderr and "superuser" in result.stderr


def test_unreachable_backend_is_refused(keys):
    result = serve("--backend", f"postgres://nobody:x@127.0.0.1:{free_port()}/db", "--api-keys", str(keys["file"]), "--tls-mode", "disable")
    assert result.returncode == 2
    assert "cannot reach the database server" in result.stderr


def test_invalid_policy_is_refused(database, keys, workdir):
    bad = workdir / "bad-policy.yaml"
    bad.write_text("profile: broken\nlimits:\n  max_query_bytes: lots\n")
    result = serve("--backend", backend_url(database), "--api-keys", str(keys["file"]), "--tls-mode", "disable", "--policy", str(bad))
    assert result.returncode == 2
    assert "configuration error: profiles.agent:" in result.stderr and "bad-policy.yaml" in result.stderr


def test_config_file_errors_name_the_key(workdir):
    config = workdir / "palisade.yaml"
    config.write_text("listen: 127.0.0.1:6432\nbackend: postgres://a:b@127.0.0.1:1/db\ntls_mod: disable\n")
    result = subprocess.run([BINARY, "serve", "--config", str(config)], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "tls_mod" in result.stderr and "unknown key" in result.stderr
    assert "Usage" not in result.stderr


def test_audit_key_is_required(database, keys):
    result = subprocess.run([BINARY, "serve", "--backend", backend_url(database), "--api-keys", str(keys["file"]),
                             "--tls-mode", "disable", "--audit-dir", tempfile.mkdtemp()], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "configuration error: audit_key: required" in result.stderr


def test_tls_without_a_certificate_is_refused(database, keys):
    result = serve("--backend", backend_url(database), "--api-keys", str(keys["file"]))
    assert result.returncode == 2
    assert "tls_mode: require needs --tls-cert and --tls-key" in result.stderr


def test_config_file_with_every_setting_starts(database, keys, workdir, monitor_policy):
    config = workdir / "full.yaml"
    config.write_text(f"listen: 127.0.0.1:{free_port()}\nbackend: {backend_url(database)}\napi_keys: {keys['file']}\n"
                      f"tls_mode: disable\nprofiles:\n  monitor: {monitor_policy}\nmax_message_bytes: 65536\n"
                      f"audit_dir: {workdir / 'config-audit'}\naudit_unsigned: true\n")
    process = subprocess.Popen([BINARY, "serve", "--config", str(config)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = process.stdout.readline()
        while " warning " in line:
            line = process.stdout.readline()
        assert "listening on" in line and "profiles agent, analyst, monitor" in line
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_config_check_validates_without_starting_and_reads_the_environment(database, keys, workdir):
    config = workdir / "check.yaml"
    config.write_text(f"backend: {backend_url(database)}\napi_keys: {keys['file']}\ntls_mode: disable\n"
                      f"audit_dir: {workdir / 'check-audit'}\naudit_unsigned: true\nprofiles:\n  monitor: {ROOT / 'Policies/readonly.yaml'}\n")
    ok = subprocess.run([BINARY, "config", "check", "--config", str(config)], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert ok.returncode == 0 and "configuration ok" in ok.stdout, ok.stderr
    env = dict(os.environ, PALISADE_TLS_MODE="require")
    bad = subprocess.run([BINARY, "config", "check", "--config", str(config)], cwd=ROOT, capture_output=True, text=True, timeout=30, env=env)
    assert bad.returncode == 2 and "tls_mode: require needs" in bad.stderr
    # A flag wins over the environment.
    flagged = subprocess.run([BINARY, "config", "check", "--config", str(config), "--tls-mode", "disable"], cwd=ROOT,
                             capture_output=True, text=True, timeout=30, env=env)
    assert flagged.returncode == 0, flagged.stderr


@pytest.mark.parametrize("mode", ["require", "verify-full"])
def test_tls_to_the_server(database, keys, mode):
    """The login and every query travel encrypted; verify-full also checks the certificate and name."""
    import psycopg2
    from conftest import Palisade, admin_sql, dsn
    arguments = ["--backend", backend_url(database).replace("@127.0.0.1:", "@localhost:"), "--api-keys", str(keys["file"]),
                 "--tls-mode", "disable", "--profile", f"monitor={ROOT / 'Policies/readonly.yaml'}", "--backend-tls", mode]
    if mode == "verify-full":
        arguments += ["--backend-tls-ca", os.environ["PALISADE_TEST_PG_CERT"]]
    server = Palisade(arguments)
    try:
        # Named, so that other tests' sessions through other Palisades are not counted.
        connection = psycopg2.connect(dsn(server, keys["agent"]) + f" application_name=tls-check-{mode}")
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM orders")
            assert cursor.fetchone() == (30,)
        check = psycopg2.connect(dbname="postgres")
        with check.cursor() as cursor:
            cursor.execute("SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) "
                           f"WHERE a.application_name LIKE 'tls-check-{mode} [palisade %' AND a.usename = 'palisade_proxy_test_app'")
            assert [row[0] for row in cursor.fetchall()] == [True]
        check.close()
        connection.close()
    finally:
        server.stop()


def test_verify_full_refuses_a_certificate_it_cannot_trust(database, keys, workdir):
    other_ca = workdir / "other-ca.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=other",
                    "-keyout", str(workdir / "other-ca.key"), "-out", str(other_ca)], check=True, capture_output=True)
    result = serve("--backend", backend_url(database).replace("@127.0.0.1:", "@localhost:"), "--api-keys", str(keys["file"]),
                   "--tls-mode", "disable", "--backend-tls", "verify-full", "--backend-tls-ca", str(other_ca))
    assert result.returncode == 2
    assert "configuration error: backend:" in result.stderr
