"""`palisade audit report`: a log built through `palisade serve` (two tenants, denials of several
rules, a lockout, a refused login, a session budget refusal, a clean restart and a crash), rendered
to HTML; every count on the page is checked against `palisade audit list --count` with the filter
the page shows, and the page is opened in headless Chromium."""
import html.parser
import json
import os
import pathlib
import re
import shutil
import signal
import subprocess

import psycopg2
import pytest

import wire
from conftest import BINARY, ROOT, TENANT_DATABASE, Palisade, create_key

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def audit(*arguments):
    return subprocess.run([BINARY, "audit", *arguments], cwd=ROOT, capture_output=True, text=True, timeout=120)


def connect(server, key):
    connection = psycopg2.connect(f"host=127.0.0.1 port={server.port} dbname={TENANT_DATABASE} user=agent password={key} sslmode=disable")
    connection.autocommit = True
    return connection


def run(server, key, *statements):
    """Runs each statement on one session; returns the SQLSTATE of each (None when it succeeded)."""
    outcomes = []
    connection = connect(server, key)
    try:
        for sql in statements:
            try:
                with connection.cursor() as cursor:
                    cursor.execute(sql)
                    cursor.fetchall()
                outcomes.append(None)
            except psycopg2.Error as error:
                outcomes.append(error.pgcode)
                if connection.closed:
                    break
    finally:
        connection.close()
    return outcomes


def login_refused(server, key):
    with pytest.raises(psycopg2.OperationalError) as refused:
        connect(server, key)
    return str(refused.value)


@pytest.fixture(scope="module")
def report_log(tenant_database, audit_key, tmp_path_factory):
    """The audit directory of three runs of Palisade, and the keys used."""
    directory = tmp_path_factory.mktemp("report")
    key_file = directory / "keys.yaml"
    acme, globex, globex_locked = create_key(key_file, "acme"), create_key(key_file, "globex"), create_key(key_file, "globex")
    audit_dir = directory / "audit"
    arguments = ["--backend", tenant_database, "--api-keys", str(key_file), "--tls-mode", "disable",
                 "--lockout-denials", "5", "--lockout-window", "3600", "--lockout-seconds", "3600"]

    first = Palisade(arguments, audit_dir=audit_dir, audit_key=audit_key[0])
    try:
        assert run(first, acme, "SELECT count(*) FROM orders", "DELETE FROM orders", "SELECT * FROM pg_authid",
                   "SELECT set_config('request.jwt.claims', '{\"tenant_id\": \"globex\"}', false)") == [None, "42501", "42501", "42501"]
        raw = wire.Connection(first.port, acme, database=TENANT_DATABASE)
        raw.send(wire.frame(b"F", b"\x00\x00\x06\x3e" + b"\x00\x00\x00\x00\x00\x00"))  # fast-path call of oid 1598
        assert wire.kinds(raw.read_until_ready()) == "EZ"
        raw.close()
        assert run(first, globex, "SELECT count(*) FROM orders", "SET request.jwt.claims = '{}'", "RESET request.jwt.claims",
                   "DROP TABLE orders") == [None, "42501", "42501", "42501"]
        # The fifth denial locks the credential: the session ends, and the next login is refused.
        outcomes = run(first, globex_locked, *["DELETE FROM orders"] * 6)
        assert outcomes[:4] == ["42501"] * 4 and outcomes[4] is not None, outcomes
        assert "locked" in login_refused(first, globex_locked)
        login_refused(first, "pal_00000000_not-a-key")
    finally:
        first.stop()

    # A clean restart, with a session budget of one per tenant, then a crash (kill -9) once every
    # answer is in: the log is durable before each answer, so what the crash leaves is fixed.
    second = Palisade(arguments + ["--max-sessions-per-tenant", "1"], audit_dir=audit_dir, audit_key=audit_key[0])
    try:
        holder = connect(second, acme)
        with holder.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM orders")
            cursor.fetchall()
        login_refused(second, acme)
        assert run(second, globex, "SELECT * FROM pg_proc") == ["42501"]
        holder.close()
    finally:
        os.kill(second.process.pid, signal.SIGKILL)
        second.process.wait()

    third = Palisade(arguments, audit_dir=audit_dir, audit_key=audit_key[0])
    try:
        assert run(third, globex, "SELECT count(*) FROM orders") == [None]
    finally:
        third.stop()
    return audit_dir


class CountCells(html.parser.HTMLParser):
    """Elements with data-count and data-filter, the page's first heading, and the rows' text."""

    def __init__(self):
        super().__init__()
        self.counts = []
        self.heading = None
        self._in_h1 = False
        self.text = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "data-count" in attrs:
            self.counts.append((int(attrs["data-count"]), json.loads(attrs["data-filter"])))
        if tag == "h1" and self.heading is None:
            self._in_h1 = True
            self.heading = ""

    def handle_endtag(self, tag):
        if tag == "h1":
            self._in_h1 = False

    def handle_data(self, data):
        if self._in_h1:
            self.heading += data
        self.text.append(data)


def render(audit_dir, out, *options, key=None):
    result = audit("report", *options, *(["--key", key] if key else []), "--out", str(out), str(audit_dir))
    page = out.read_text() if out.exists() else ""
    cells = CountCells()
    cells.feed(page)
    return result, page, cells


def listed_count(audit_dir, filter_arguments, exit_code=0):
    result = audit("list", "--count", *filter_arguments, str(audit_dir))
    assert result.returncode == exit_code, result.stderr
    return int(result.stdout.strip())


def count_of(cells, **wanted):
    """The count of the cell whose filter has exactly these options (names without --)."""
    expected = sorted(f"--{name.replace('_', '-')}={value}" for name, value in wanted.items())
    for count, arguments in cells.counts:
        pairs = sorted(f"{arguments[i]}={arguments[i + 1]}" for i in range(0, len(arguments), 2))
        if pairs == expected:
            return count
    raise AssertionError(f"no count with filter {expected}")


def test_every_count_on_the_page_is_what_audit_list_counts(report_log, audit_key, tmp_path):
    result, page, cells = render(report_log, tmp_path / "report.html", key=audit_key[1])
    assert result.returncode == 0, result.stdout + result.stderr
    assert page.splitlines()[0].startswith("<!-- palisade audit report: verification OK (exit 0)")
    assert cells.heading.startswith("verification OK")
    assert len(cells.counts) > 40
    for count, arguments in cells.counts:
        assert listed_count(report_log, arguments) == count, arguments

    # The log holds what the test did, and the page shows it.
    # acme: 3 denied statements, the fast-path call, the session over budget; globex: 3 denied
    # statements, the locked credential's 5 and its lockout entry and refused login, pg_proc (outside the agent profile's metadata list).
    assert count_of(cells, decision="deny", tenant="acme") == 5
    assert count_of(cells, decision="deny", tenant="globex") == 11
    for rule in ["stmt.dml", "rel.secret", "fn.forbidden", "proto.function-call", "stmt.set", "stmt.reset", "stmt.ddl", "rel.catalog",
                 "auth.locked", "auth.failed", "budget.sessions"]:
        assert count_of(cells, decision="deny", rule=rule) >= 1, rule
    assert count_of(cells, event="lockout") == 1
    assert count_of(cells, event="auth_failure", rule="auth.locked") == 1
    assert count_of(cells, event="auth_failure", rule="auth.failed") == 1
    assert count_of(cells, rule="budget.sessions") == 1
    assert count_of(cells, rule="fn.forbidden", message="set_config() is never allowed") == 1
    assert count_of(cells, rule="stmt.set", message="SET request.jwt.claims ") == 1
    assert count_of(cells, rule="stmt.reset") == 1
    assert count_of(cells, rule="rel.secret") == 1
    assert count_of(cells, event="protocol_refusal") == 1
    assert count_of(cells, event="start") == 3
    assert count_of(cells, event="stop") == 2
    assert count_of(cells, event="recovery") == 1
    # The lockout's request id is on the page, and it is the one in the log.
    lockout = json.loads(audit("list", "--json", "--event", "lockout", str(report_log)).stdout)
    assert f'<code class="request">{lockout["request_id"]}</code>' in page
    # Normalized text only: no literal of the test's queries reaches the page.
    assert "tenant_id" not in page
    assert "set_config($1, $2, $3)" in page


def test_a_tenant_report_counts_only_that_tenant(report_log, audit_key, tmp_path):
    result, _, cells = render(report_log, tmp_path / "acme.html", "--tenant", "acme", key=audit_key[1])
    assert result.returncode == 0, result.stdout + result.stderr
    for count, arguments in cells.counts:
        assert listed_count(report_log, arguments) == count, arguments
    assert count_of(cells, decision="deny", tenant="acme") == 5
    assert not any(arguments[arguments.index("--tenant") + 1] == "globex" for _, arguments in cells.counts if "--tenant" in arguments)


def test_the_page_opens_in_chromium_without_console_errors(report_log, audit_key, tmp_path):
    page = tmp_path / "report.html"
    result, _, _ = render(report_log, page, key=audit_key[1])
    assert result.returncode == 0
    assert os.access(CHROMIUM, os.X_OK), "chromium is missing: scripts/install-deps.sh installs it"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0", "--hide-scrollbars",
             f"--user-data-dir={tmp_path / 'chromium'}"]
    dump = subprocess.run([CHROMIUM, *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    assert dump.returncode == 0, dump.stderr[-2000:]
    assert "Decisions over time" in dump.stdout and "<svg" in dump.stdout
    console = [line for line in dump.stderr.splitlines() if "CONSOLE" in line or "Content Security Policy" in line]
    assert console == []
    shot = tmp_path / "report.png"
    screenshot = subprocess.run([CHROMIUM, *flags, f"--screenshot={shot}", "--window-size=1100,1600", page.as_uri()],
                                capture_output=True, text=True, timeout=120)
    assert screenshot.returncode == 0, screenshot.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    if os.environ.get("PALISADE_REPORT_SCREENSHOT"):
        shutil.copy(shot, os.environ["PALISADE_REPORT_SCREENSHOT"])


def test_a_tampered_log_gives_a_report_that_says_so_first(report_log, audit_key, tmp_path):
    tampered = tmp_path / "audit"
    shutil.copytree(report_log, tampered)
    segment = tampered / "audit-000001.jsonl"
    lines = segment.read_bytes().split(b"\n")
    index = next(i for i, line in enumerate(lines) if b'"rule":"stmt.dml"' in line)
    seq = json.loads(lines[index])["seq"]
    lines[index] = lines[index].replace(b'"rule":"stmt.dml"', b'"rule":"stmt.xyz"')
    segment.write_bytes(b"\n".join(lines))

    result, page, cells = render(tampered, tmp_path / "tampered.html", key=audit_key[1])
    assert result.returncode == 4, result.stdout + result.stderr
    first_line = page.splitlines()[0]
    assert "verification FAILED" in first_line and f"first bad entry seq {seq} " in first_line, first_line
    assert cells.heading.startswith("verification FAILED") and f"first bad entry seq {seq} " in cells.heading
    # The summary covers the entries before the bad one, and says so with counts audit list agrees with.
    for count, arguments in cells.counts:
        assert listed_count(tampered, arguments, exit_code=4) == count, arguments
