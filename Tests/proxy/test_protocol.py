"""The protocol at the byte level: pipelines, refusals, limits, startup rules."""
import socket
import struct
import time

import pytest

import wire
from conftest import DATABASE, Palisade, backend_url


def connect(palisade, keys, profile="agent", **parameters):
    return wire.Connection(palisade.port, keys[profile], user=profile, database=DATABASE, **parameters)


def test_denied_parse_in_a_pipeline_keeps_order_and_sync(palisade, keys):
    connection = connect(palisade, keys)
    connection.send(wire.parse("SELECT 1") + wire.bind() + wire.execute()
                    + wire.parse("DELETE FROM orders") + wire.bind() + wire.execute()
                    + wire.parse("SELECT 3") + wire.bind() + wire.execute() + wire.SYNC)
    messages = connection.read_until_ready()
    assert wire.kinds(messages) == "12DCEZ"
    error = wire.fields(messages[4][1])
    assert error["C"] == "42501" and "stmt.dml" in error["D"]
    connection.send(wire.query("SELECT 'after'"))
    assert wire.kinds(connection.read_until_ready()) == "TDCZ"
    connection.close()


def test_bind_to_a_statement_that_was_not_admitted_is_refused(palisade, keys):
    connection = connect(palisade, keys)
    connection.send(wire.parse("DROP TABLE orders", name="evil") + wire.SYNC)
    assert wire.kinds(connection.read_until_ready()) == "EZ"
    connection.send(wire.bind(statement="evil") + wire.execute() + wire.SYNC)
    messages = connection.read_until_ready()
    assert wire.kinds(messages) == "EZ"
    assert wire.fields(messages[0][1])["C"] == "26000"
    connection.close()


def test_named_statements_portals_describe_close_flush(palisade, keys):
    connection = connect(palisade, keys)
    connection.send(wire.parse("SELECT id FROM orders WHERE id < 3 ORDER BY id", name="s1") + wire.bind("s1", "p1")
                    + wire.describe_portal("p1") + wire.execute("p1") + wire.frame(b"C", b"S" + wire.cstr("s1"))
                    + wire.frame(b"H"))
    assert [connection.read()[0] for _ in range(7)] == [b"1", b"2", b"T", b"D", b"D", b"C", b"3"]
    connection.send(wire.SYNC)
    assert wire.kinds(connection.read_until_ready()) == "Z"
    connection.close()


def test_function_call_message_is_refused(palisade, keys):
    connection = connect(palisade, keys)
    connection.send(wire.frame(b"F", struct.pack("!i", 1598) + struct.pack("!hhh", 0, 0, 0)))
    messages = connection.read_until_ready()
    assert wire.kinds(messages) == "EZ"
    connection.send(wire.query("SELECT 1"))
    assert wire.kinds(connection.read_until_ready()) == "TDCZ"
    connection.close()


def test_oversized_message_is_refused_before_buffering_and_others_continue(palisade, keys):
    bystander = connect(palisade, keys)
    victim = connect(palisade, keys)
    victim.send(b"Q" + struct.pack("!i", 512 * 1024 * 1024))
    kind, body = victim.read()
    assert kind == b"E" and wire.fields(body)["C"] == "54000"
    with pytest.raises((EOFError, ConnectionResetError)):
        victim.read()
    bystander.send(wire.query("SELECT 2"))
    assert wire.kinds(bystander.read_until_ready()) == "TDCZ"
    bystander.close()


def test_frames_split_across_reads_are_reassembled(palisade, keys):
    connection = connect(palisade, keys)
    message = wire.query("SELECT 'split'")
    for byte in message:
        connection.send(bytes([byte]))
    assert wire.kinds(connection.read_until_ready()) == "TDCZ"
    connection.close()


def test_unknown_message_type_ends_only_that_session(palisade, keys):
    bystander = connect(palisade, keys)
    victim = connect(palisade, keys)
    victim.send(wire.frame(b"y", b"junk"))
    kind, body = victim.read()
    assert kind == b"E" and wire.fields(body)["C"] == "08P01"
    bystander.send(wire.query("SELECT 3"))
    assert wire.kinds(bystander.read_until_ready()) == "TDCZ"
    bystander.close()


def test_startup_options_are_not_forwarded(palisade, keys):
    connection = connect(palisade, keys, profile="analyst", options="-c search_path=pg_temp -c default_transaction_read_only=off")
    connection.send(wire.query("SELECT current_setting('search_path'), current_setting('default_transaction_read_only')"))
    messages = connection.read_until_ready()
    row = messages[1][1]
    assert b"pg_temp" not in row and b"on" in row
    connection.close()


def test_replication_connections_are_rejected(palisade, keys):
    with pytest.raises(ConnectionRefusedError) as refused:
        connect(palisade, keys, replication="database")
    assert "replication" in refused.value.args[0]["M"]


def test_wrong_key_gets_28P01(palisade, keys):
    with pytest.raises(ConnectionRefusedError) as refused:
        wire.Connection(palisade.port, "pal_00000000_not-a-key", database=DATABASE)
    assert refused.value.args[0]["C"] == "28P01"


def test_backend_key_data_is_palisades_own(palisade, keys):
    import psycopg2
    connection = connect(palisade, keys)
    connection.send(wire.query("SELECT 1"))
    connection.read_until_ready()
    # pg_backend_pid() is refused (consecutive pids count other tenants' sessions): the server's
    # own view lists the backends, this session's among them.
    direct = psycopg2.connect(dbname=DATABASE)
    try:
        with direct.cursor() as cursor:
            cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", (DATABASE,))
            server_pids = {row[0] for row in cursor.fetchall()}
    finally:
        direct.close()
    assert server_pids and connection.cancel_key[0] not in server_pids
    connection.close()


def test_ssl_request_without_tls_is_answered_n(palisade):
    with socket.create_connection(("127.0.0.1", palisade.port)) as sock:
        sock.sendall(struct.pack("!ii", 8, 80877103))
        assert sock.recv(1) == b"N"
        sock.sendall(struct.pack("!ii", 8, 80877104))
        assert sock.recv(1) == b"N"


def test_bytes_after_ssl_request_are_refused(palisade_tls):
    with socket.create_connection(("127.0.0.1", palisade_tls.port)) as sock:
        sock.sendall(struct.pack("!ii", 8, 80877103) + wire.query("SELECT 1"))
        reply = sock.recv(1)
        assert reply in (b"", b"E")


def resident_megabytes(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) // 1024
    raise AssertionError("no VmRSS")


def test_a_client_that_sends_without_reading_is_held_back_not_buffered(palisade, keys):
    # Each answer is ~40 KB; a client that never reads them must be stopped by TCP, as the server
    # itself would stop it, and not fill Palisade's memory or slow the other sessions.
    flooder = connect(palisade, keys)
    flooder.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    flooder.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    flooder.sock.setblocking(False)
    # 8 KB a query, so that the kernel's socket buffers (a few MB) fill after a few thousand.
    query = wire.query("SELECT repeat('x', 2000) FROM generate_series(1, 20) -- " + "pad " * 2000)
    before = resident_megabytes(palisade.process.pid)
    unsent = b""
    sent_bytes = 0
    stalls = 0
    while stalls < 20 and sent_bytes < 6_000 * len(query):
        unsent = unsent or query * 10
        try:
            count = flooder.sock.send(unsent)
            sent_bytes += count
            unsent = unsent[count:]
            stalls = 0
        except BlockingIOError:
            stalls += 1
            time.sleep(0.05)
    sent = sent_bytes // len(query)
    grown = resident_megabytes(palisade.process.pid) - before
    assert stalls == 20, f"{sent} queries (~{sent * 40 // 1024} MB of answers) went in without being read"
    assert grown < 200, f"Palisade grew {grown} MB for a client that does not read"
    bystander = connect(palisade, keys)
    bystander.sock.settimeout(5)
    bystander.send(wire.query("SELECT 'still served'"))
    assert wire.kinds(bystander.read_until_ready()) == "TDCZ"
    bystander.close()
    flooder.sock.close()


@pytest.fixture(scope="module")
def palisade_strict(database, keys, monitor_policy):
    """Two connections at most; a refused connection lingers until its client closes it (ten
    minutes at most), so that how many linger does not depend on timing."""
    server = Palisade(["--backend", backend_url(database), "--api-keys", str(keys["file"]), "--tls-mode", "disable",
                       "--profile", f"monitor={monitor_policy}", "--max-client-connections", "2", "--refusal-linger-seconds", "600"])
    yield server
    server.stop()


@pytest.fixture(scope="module")
def palisade_impatient(database, keys, monitor_policy):
    """One second to log in: too short for a real login on a loaded machine, so only for clients
    that never try."""
    server = Palisade(["--backend", backend_url(database), "--api-keys", str(keys["file"]), "--tls-mode", "disable",
                       "--profile", f"monitor={monitor_policy}", "--login-timeout", "1"])
    yield server
    server.stop()


def read_refusal(sock):
    sock.settimeout(30)
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    assert data[:1] == b"E", data[:40]
    length = struct.unpack("!i", data[1:5])[0]
    return wire.fields(data[5:1 + length])


def hold_both_slots(palisade_strict, keys):
    return [wire.log_in_when_a_slot_is_free(palisade_strict.port, keys["agent"], database=DATABASE) for _ in range(2)]


def test_a_client_that_does_not_log_in_in_time_is_let_go(palisade_impatient):
    silent = socket.create_connection(("127.0.0.1", palisade_impatient.port))
    started = time.monotonic()
    error = read_refusal(silent)
    assert error["S"] == "FATAL" and error["C"] == "57014" and "log in" in error["M"]
    # A timer never fires early; how late it fires depends on the machine's load.
    assert time.monotonic() - started > 0.9
    silent.close()


def test_connections_beyond_the_limit_are_refused_and_logins_resume(palisade_strict, keys):
    holders = hold_both_slots(palisade_strict, keys)
    extra = socket.create_connection(("127.0.0.1", palisade_strict.port))
    extra.sendall(wire.startup("agent", DATABASE))
    error = read_refusal(extra)
    assert error["C"] == "53300" and "too many clients" in error["M"]
    extra.close()
    for holder in holders:
        holder.close()
    connection = wire.log_in_when_a_slot_is_free(palisade_strict.port, keys["agent"], database=DATABASE)
    connection.send(wire.query("SELECT 'in'"))
    assert wire.kinds(connection.read_until_ready()) == "TDCZ"
    connection.close()


def test_a_flood_of_refused_connections_is_closed_past_the_lingering_allowance(palisade_strict, keys):
    # Refused connections stay so that the 53300 is read, at most 128 at a time; the rest are
    # closed without a word, so a flood cannot use up the file descriptors. None of the flood is
    # closed before all of it was read, and none lingers out its ten minutes here, so no slot frees
    # during the flood: at most 128 are told (fewer only if an earlier test's refusal is still
    # being let go) and the rest are not.
    holders = hold_both_slots(palisade_strict, keys)
    flood = [socket.create_connection(("127.0.0.1", palisade_strict.port)) for _ in range(300)]
    told = silent = 0
    for sock in flood:
        sock.settimeout(30)
        data = b""
        try:
            while chunk := sock.recv(65536):
                data += chunk
        except ConnectionResetError:
            pass
        if data:
            assert data[:1] == b"E" and wire.fields(data[5:1 + struct.unpack("!i", data[1:5])[0]])["C"] == "53300", data[:40]
            told += 1
        else:
            silent += 1
    for sock in flood:
        sock.close()
    assert 0 < told <= 128 and silent == 300 - told, (told, silent)
    for holder in holders:
        holder.send(wire.query("SELECT 'held'"))
        assert wire.kinds(holder.read_until_ready()) == "TDCZ"
        holder.close()
    connection = wire.log_in_when_a_slot_is_free(palisade_strict.port, keys["agent"], database=DATABASE)
    connection.send(wire.query("SELECT 'in'"))
    assert wire.kinds(connection.read_until_ready()) == "TDCZ"
    connection.close()


def test_empty_text_is_answered_as_the_server_answers_it(palisade, keys):
    # What the server sends for empty text, and nothing reaches it: EmptyQueryResponse, or in the
    # extended protocol (JDBC's isValid) ParseComplete, BindComplete, NoData, EmptyQueryResponse.
    connection = connect(palisade, keys)
    for text in ("", "  -- only a comment", ";"):
        connection.send(wire.query(text))
        assert wire.kinds(connection.read_until_ready()) == "IZ", text
    connection.send(wire.parse("", name="S_1") + wire.bind("S_1") + wire.describe_portal() + wire.execute() + wire.SYNC)
    assert wire.kinds(connection.read_until_ready()) == "12nIZ"
    connection.send(wire.query("SELECT 'after'"))
    assert wire.kinds(connection.read_until_ready()) == "TDCZ"
    connection.close()


def quick_palisade(database, keys, workdir, monitor_policy, idle_ms):
    """The agent profile with a one-second statement_timeout (the stall allowance is then 6 s)."""
    from conftest import readonly_policy_text
    policy = workdir / f"quick-{idle_ms}.yaml"
    policy.write_text(readonly_policy_text(**{"statement_timeout_ms: 30000": f"statement_timeout_ms: 1000\n  idle_in_transaction_timeout_ms: {idle_ms}"}))
    return Palisade(["--backend", backend_url(database), "--api-keys", str(keys["file"]), "--tls-mode", "disable",
                     "--profile", f"agent={policy}", "--profile", f"monitor={monitor_policy}", "--lockout-denials", "1000"])


@pytest.fixture(scope="module")
def palisade_patient(database, keys, workdir, monitor_policy):
    server = quick_palisade(database, keys, workdir, monitor_policy, idle_ms=120_000)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def palisade_quick(database, keys, workdir, monitor_policy):
    server = quick_palisade(database, keys, workdir, monitor_policy, idle_ms=2000)
    yield server
    server.stop()


def test_a_client_that_flushes_and_thinks_is_not_a_stalled_server(palisade_patient, keys):
    """Red team 3 (wire, finding 5): the server answered up to the Flush at once; the Sync that
    comes past the stall allowance (statement_timeout + 5 s) is answered, not taken for a stall."""
    connection = connect(palisade_patient, keys)
    # An Execute that completes ends the server's own statement_timeout (a Describe would not).
    connection.send(wire.parse("SELECT 1") + wire.bind() + wire.execute() + wire.frame(b"H"))
    assert [connection.read()[0] for _ in range(4)] == [b"1", b"2", b"D", b"C"]
    time.sleep(7)
    connection.send(wire.SYNC)
    assert wire.kinds(connection.read_until_ready()) == "Z"
    connection.send(wire.query("SELECT 2"))
    assert wire.kinds(connection.read_until_ready()) == "TDCZ"
    connection.close()


def test_an_execution_left_open_without_sync_ends_at_the_idle_timeout(palisade_quick, keys):
    """Red team 3 (wire, finding 7): PostgreSQL arms its idle-in-transaction timeout only after
    ReadyForQuery; Palisade ends a session that executed, flushed and went silent (two seconds
    here), as the server ends an idle transaction, so its snapshot and locks are let go."""
    connection = connect(palisade_quick, keys)
    connection.send(wire.parse("SELECT id FROM orders LIMIT 1") + wire.bind() + wire.execute() + wire.frame(b"H"))
    kinds = b""
    while not kinds.endswith(b"C"):
        kinds += connection.read()[0]
    kind, body = connection.read()  # nothing else comes until the session is ended
    assert kind == b"E" and wire.fields(body)["C"] == "25P03", wire.fields(body)
    with pytest.raises(EOFError):
        connection.read()


def test_an_earlier_error_does_not_let_a_query_over_its_cost_budget_run(palisade, keys):
    """Red team 3 (wire, finding 1): a failing query, a cheap join and an expensive join sent in one
    write. The expensive one is refused by its own estimate, as it is alone."""
    expensive = "SELECT count(*) FROM pgbench_accounts a, pgbench_accounts b"
    cheap = "SELECT count(*) FROM pgbench_branches a, pgbench_branches b"
    connection = connect(palisade, keys)
    connection.send(wire.parse("SELECT 1/0") + wire.bind() + wire.execute() + wire.SYNC
                    + wire.parse(cheap) + wire.bind() + wire.execute() + wire.SYNC
                    + wire.parse(expensive) + wire.bind() + wire.execute() + wire.SYNC)
    first, second, third = (connection.read_until_ready() for _ in range(3))
    assert wire.kinds(first) == "1EZ" and wire.fields(first[1][1])["C"] == "22012"
    assert wire.kinds(second) == "12DCZ"
    assert wire.kinds(third) == "1EZ", third
    assert wire.fields(third[1][1])["C"] == "54000" and "limit.cost" in wire.fields(third[1][1])["D"]
    connection.send(wire.query("SELECT 1/0") + wire.query(cheap) + wire.query(expensive))
    first, second, third = (connection.read_until_ready() for _ in range(3))
    assert wire.kinds(first) == "EZ" and wire.kinds(second) == "TDCZ"
    assert wire.kinds(third) == "EZ" and wire.fields(third[0][1])["C"] == "54000", third
    connection.close()


def test_refusals_of_palisades_own_are_audited(palisade, keys):
    """Red team 3 (wire, finding 6): a Bind, Execute or Describe of a name Palisade never admitted,
    and a message that ends the session, are answered by Palisade itself: each is an entry."""
    from conftest import entries_of
    connection = connect(palisade, keys)
    connection.send(wire.execute("never bound") + wire.SYNC + wire.bind(statement="never parsed") + wire.SYNC)
    first, second = connection.read_until_ready(), connection.read_until_ready()
    assert wire.fields(first[0][1])["C"] == "34000" and wire.fields(second[0][1])["C"] == "26000"
    connection.send(wire.frame(b"Z"))
    kind, body = connection.read()
    assert kind == b"E" and wire.fields(body)["C"] == "08P01"
    connection.sock.close()

    def refusals():
        found = [entry["message"] for entry in entries_of(palisade.audit_dir) if entry.get("event") == "protocol_refusal"]
        wanted = ['34000 portal "never bound"', '26000 prepared statement "never parsed"', "08P01 invalid frontend message type 90"]
        return all(any(message.startswith(prefix) for message in found) for prefix in wanted) and found
    assert wire.eventually(refusals, "the three refusals in the audit log")
