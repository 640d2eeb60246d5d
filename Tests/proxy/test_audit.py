"""Every decision is in the tamper-evident log before its answer, and survives kill -9."""
import json
import os
import re
import signal
import subprocess
import threading
import time

import psycopg2
import psycopg2.errors
import pytest

import wire
from conftest import BINARY, ROOT, Palisade, backend_url, dsn


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
