"""Every decision is in the tamper-evident log before its answer, and survives kill -9."""
import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request

import psycopg2
import psycopg2.errors
import pytest

import wire
from conftest import BINARY, ROOT, Palisade, backend_url, dsn, free_port


def audit(*arguments):
    return subprocess.run([BINARY, "audit", *arguments], cwd=ROOT, capture_output=True, text=True, timeout=60)


def entries(directory):
    result = audit("list", "--json", str(directory))
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def test_every_decision_is_recorded_with_the_request_id_the_client_saw(palisade, keys, audit_key):
    connection = psycopg2.connect(dsn(palisade, keys["agent"]))
    connection.autocommit = True
    cursor = connection.cursor()
    cursor.execute("SELECT count(*) AS audited_allow FROM orders WHERE region = 'secret-region'")
    with pytest.raises(psycopg2.errors.InsufficientPrivilege) as denied:
        cursor.execute("DELETE FROM orders WHERE region = 'north'")
    request_id = re.search(r"request (\S+)", denied.value.pgerror).group(1)
    connection.close()

    found = audit("list", "--json", "--request-id", request_id, str(palisade.audit_dir))
    entry = json.loads(found.stdout.strip().splitlines()[0])
    assert entry["decision"] == "deny" and entry["rule"] == "stmt.dml" and entry["sqlstate"] == "42501"
    assert entry["tenant"] == "acme" and entry["message_kind"] == "Q"
    assert "north" not in entry["normalized"]
    allowed = [e for e in entries(palisade.audit_dir) if "audited_allow" in (e.get("normalized") or "")]
    assert allowed and allowed[0]["decision"] == "allow" and "secret-region" not in allowed[0]["normalized"]
    assert any(e["event"] == "policy_loaded" for e in entries(palisade.audit_dir))

    # A checkpoint a second anchors the newest entries; until one does, verify says they are not yet signed.
    outcomes = []

    def verified():
        outcomes.append(audit("verify", "--key", audit_key[1], str(palisade.audit_dir)))
        return outcomes[-1].returncode == 0
    wire.eventually(verified, lambda: f"a verified log (last: {outcomes[-1].stdout + outcomes[-1].stderr})")


def test_what_a_client_wrote_reaches_a_reviewers_terminal_shown_not_obeyed(palisade, keys):
    """A quoted identifier of ESC [2K, CR and BEL erased its line and the one above in `audit list`
    and in serve's text log, wrote other text there and set the window title (sixteenth red team)."""
    identifier = "\x1b[2K\r\x1b[1A\x1b[2K\rnothing to see here\x1b]0;pwned\x07"
    connection = psycopg2.connect(dsn(palisade, keys["agent"]))
    connection.autocommit = True
    with pytest.raises(psycopg2.errors.InsufficientPrivilege):
        connection.cursor().execute(f'DELETE FROM orders WHERE "{identifier}" = 1')
    connection.close()
    listed = audit("list", "--decision", "deny", str(palisade.audit_dir))
    assert listed.returncode == 0, listed.stderr
    assert "nothing to see here" in listed.stdout and "\\x1b[2K\\x0d\\x1b[1A" in listed.stdout
    assert not any(control in listed.stdout for control in "\x1b\x07\r")
    log = palisade.log.read_text()
    assert "nothing to see here" in log and not any(control in log for control in "\x1b\x07\r")
    checked = subprocess.run([BINARY, "check", f'DELETE FROM orders WHERE "{identifier}" = 1'], cwd=ROOT, capture_output=True, text=True)
    assert checked.returncode == 1 and "nothing to see here" in checked.stdout
    assert not any(control in checked.stdout for control in "\x1b\x07\r")


# `write` answers once the entry is in the file, before its fdatasync: a crash of Palisade keeps it
# (the page cache is the kernel's); only a crash of the machine could lose it.
@pytest.mark.parametrize("durability", ["flush", "write"])
def test_kill_9_under_load_loses_no_answered_decision(database, keys, audit_key, monitor_policy, tmp_path, durability):
    arguments = ["--backend", backend_url(database), "--api-keys", str(keys["file"]), "--tls-mode", "disable",
                 "--profile", f"monitor={monitor_policy}", "--audit-durability", durability]
    server = Palisade(arguments, audit_dir=tmp_path / "audit", audit_key=audit_key[0])
    answered, stop = [], threading.Event()

    def client(number):
        try:
            connection = psycopg2.connect(dsn(server, keys["agent"]))
            connection.autocommit = True
            cursor = connection.cursor()
            for index in range(100000):
                if stop.is_set():
                    break
                alias = f"q_{number}_{index}"
                cursor.execute(f"SELECT {index} AS {alias}")
                cursor.fetchall()
                answered.append(alias)
        except psycopg2.Error:
            pass

    threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    wire.eventually(lambda: len(answered) >= 200, "200 answered queries under load")
    os.kill(server.process.pid, signal.SIGKILL)
    server.process.wait()
    stop.set()
    for thread in threads:
        thread.join(timeout=30)

    # Restarting recovers the log (a torn last line is trimmed and recorded); stopping signs it.
    restarted = Palisade(arguments, audit_dir=tmp_path / "audit", audit_key=audit_key[0])
    restarted.stop()
    verified = audit("verify", "--key", audit_key[1], str(tmp_path / "audit"))
    assert verified.returncode == 0, verified.stdout + verified.stderr
    recorded = {e.get("normalized") for e in entries(tmp_path / "audit")}
    missing = [alias for alias in answered if f"SELECT $1 AS {alias}" not in recorded]
    assert not missing, f"{len(missing)} answered queries are not in the log, e.g. {missing[:3]}"


@pytest.fixture(scope="module")
def failing_disk(tmp_path_factory):
    """Tests/proxy/failing_disk.c built as an LD_PRELOAD library (the toolchain's clang, which every
    Swift install has, or the system's cc)."""
    compiler = shutil.which("clang") or shutil.which("cc")
    assert compiler, "no C compiler: the Swift toolchain's clang builds the failing-disk shim"
    library = tmp_path_factory.mktemp("failing-disk") / "failing_disk.so"
    subprocess.run([compiler, "-shared", "-fPIC", "-O1", "-o", str(library), str(ROOT / "Tests/proxy/failing_disk.c"), "-ldl"],
                   check=True, capture_output=True)
    return library


def admin_get(port, path):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=60) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def until_ready_or_closed(connection):
    """Every message up to ReadyForQuery (the query was answered) or the close of the connection."""
    messages = []
    try:
        while not messages or messages[-1][0] != b"Z":
            messages.append(connection.read())
    except (EOFError, ConnectionResetError):
        pass
    return messages


# When the disk fails, an answer whose record is not durable never goes out: the session ends with
# 58030 and the log refuses every later entry (fail closed) until Palisade is restarted. Two sessions
# share one event loop in `shared`, so the writer thread commits; a session alone on its loop
# commits its own records there (while the writer is idle), so `alone` goes through that path.
@pytest.mark.parametrize("fault", ["sync", "write"])
@pytest.mark.parametrize("sessions", ["alone", "shared"])
def test_a_failing_audit_disk_releases_no_unrecorded_answer(database, keys, audit_key, monitor_policy, failing_disk, tmp_path,
                                                            fault, sessions):
    audit_dir, flag, admin = tmp_path / "audit", tmp_path / "disk-fault", free_port()
    arguments = ["--backend", backend_url(database), "--api-keys", str(keys["file"]), "--tls-mode", "disable",
                 "--profile", f"monitor={monitor_policy}", "--threads", "1", "--admin-listen", str(admin)]
    # No checkpoint meanwhile (one an hour), so the fault meets the query's own commit, not a checkpoint's.
    server = Palisade(arguments, audit_dir=audit_dir, audit_key=audit_key[0], checkpoint_seconds=3600,
                      environment={"LD_PRELOAD": str(failing_disk), "PALISADE_FAULT_FLAG": str(flag),
                                   "PALISADE_FAULT_DIR": str(audit_dir)})
    try:
        connection = wire.Connection(server.port, keys["agent"], database=database)
        bystander = wire.Connection(server.port, keys["agent"], database=database) if sessions == "shared" else None
        connection.send(wire.query("SELECT count(*) AS before_the_fault FROM orders"))
        assert wire.kinds(connection.read_until_ready()) == "TDCZ"

        flag.write_text(fault)
        connection.send(wire.query("SELECT id AS after_the_fault FROM orders WHERE id = 7"))
        messages = until_ready_or_closed(connection)
        assert wire.kinds(messages) == "E", f"rows went out without their record: {messages}"
        error = wire.fields(messages[0][1])
        assert error["S"] == "FATAL" and error["C"] == "58030" and "cannot write its audit log" in error["M"], error
        assert ("fdatasync" if fault == "sync" else "write") in error["M"], error

        # The log stays failed, even once the disk recovers: nothing is admitted until a restart
        # (an operator's decision, with the cause in /readyz and in Palisade's own log).
        flag.unlink()
        if bystander:
            bystander.send(wire.query("SELECT 1 AS bystander"))
            refused = until_ready_or_closed(bystander)
            assert wire.kinds(refused) == "E" and wire.fields(refused[0][1])["C"] == "58030", refused
        with pytest.raises(ConnectionRefusedError) as login:
            wire.Connection(server.port, keys["agent"], database=database)
        assert login.value.args[0]["C"] == "58030" and "cannot write its audit log" in login.value.args[0]["M"]
        status, body = admin_get(admin, "/readyz")
        assert status == 503 and "audit log not writable" in body, (status, body)
        assert admin_get(admin, "/healthz")[0] == 200 and server.process.poll() is None
    finally:
        server.stop()

    # Restarted on a sound disk, the log recovers and verifies, with the query answered before the
    # fault in it; a later restart's entries follow it.
    restarted = Palisade(arguments, audit_dir=audit_dir, audit_key=audit_key[0])
    restarted.stop()
    verified = audit("verify", "--key", audit_key[1], str(audit_dir))
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert any("before_the_fault" in (e.get("normalized") or "") for e in entries(audit_dir))
