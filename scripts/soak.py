"""The soak run behind scripts/soak.sh; see there. Exits 1 on an unexpected error, a tenant seeing
another's rows, or descriptors that grow."""
import asyncio
import os
import pathlib
import socket
import subprocess
import sys
import tempfile
import threading
import time

import asyncpg
import psycopg2
import psycopg2.errors

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "Tests/proxy"))
import wire  # noqa: E402

BINARY = os.environ.get("PALISADE_BIN", str(ROOT / ".build/debug/palisade"))
DATABASE = "soak"
EXPECTED_ORDERS = {"acme": 120, "globex": 80}  # docker/demo.sql


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def resident_kib(pid):
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def open_descriptors(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


class Counters:
    def __init__(self):
        self.lock = threading.Lock()
        self.done = {}
        self.errors = []

    def count(self, kind, n=1):
        with self.lock:
            self.done[kind] = self.done.get(kind, 0) + n

    def error(self, kind, error):
        with self.lock:
            self.errors.append(f"{kind}: {error!r}"[:300])


def main(minutes):
    work = pathlib.Path(tempfile.mkdtemp(prefix="palisade-soak."))
    app_password = "soak-" + os.urandom(8).hex()
    subprocess.run(["psql", "-X", "-q", "-c", f"DROP DATABASE IF EXISTS {DATABASE}", "-c", f"CREATE DATABASE {DATABASE}"], check=True)
    subprocess.run(["psql", "-X", "-q", "-d", DATABASE, "-v", f"app_password='{app_password}'", "-f", str(ROOT / "docker/demo.sql")],
                   check=True, capture_output=True)
    keys = work / "keys.yaml"
    key = {tenant: subprocess.run([BINARY, "keys", "create", "--tenant", tenant, "--profile", "agent", "--keys-file", str(keys)],
                                  check=True, capture_output=True, text=True).stdout.strip() for tenant in EXPECTED_ORDERS}
    cert, private_key = work / "server.crt", work / "server.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                    "-keyout", str(private_key), "-out", str(cert)], check=True, capture_output=True)
    backend = f"postgres://palisade_app:{app_password}@{os.environ['PGHOST']}:{os.environ['PGPORT']}/{DATABASE}"

    def start_palisade(name, tls):
        port, log = free_port(), work / f"{name}.log"
        process = subprocess.Popen([BINARY, "serve", "--listen", f"127.0.0.1:{port}", "--backend", backend, "--api-keys", str(keys),
                                    # Denials are part of the load, so the lockout must not end it.
                                    "--lockout-denials", "1000000", *tls, "--audit-dir", str(work / f"audit-{name}"), "--audit-unsigned"],
                                   stdout=log.open("w"), stderr=subprocess.STDOUT)
        wire.eventually(lambda: "listening" in log.read_text() or process.poll() is not None, f"palisade ({name}) to start", seconds=120)
        if process.poll() is not None:
            raise SystemExit(log.read_text())
        return process, port

    # One Palisade without TLS (loopback development mode) and one that requires it.
    plain, plain_port = start_palisade("plain", ["--tls-mode", "disable"])
    secure, secure_port = start_palisade("tls", ["--tls-mode", "require", "--tls-cert", str(cert), "--tls-key", str(private_key)])
    servers = {"plain": plain, "tls": secure}
    port = plain_port

    counters = Counters()
    stop = threading.Event()

    def dsn(tenant, sslmode="disable"):
        return (f"host=127.0.0.1 port={secure_port if sslmode == 'require' else plain_port} dbname={DATABASE} user=agent "
                f"password={key[tenant]} sslmode={sslmode}")

    def check_count(tenant, value):
        if value != EXPECTED_ORDERS[tenant]:
            counters.error("isolation", f"{tenant} saw {value} orders")

    def simple(tenant, sslmode):
        kind = f"simple-{sslmode}"
        connection = psycopg2.connect(dsn(tenant, sslmode))
        connection.autocommit = True
        cursor = connection.cursor()
        n = 0
        while not stop.is_set():
            n += 1
            try:
                if n % 10 == 0:
                    try:
                        cursor.execute(f"DELETE FROM orders WHERE id = {n}")
                        counters.error(kind, "a DELETE was admitted")
                    except psycopg2.errors.InsufficientPrivilege:
                        counters.count("denials")
                    continue
                cursor.execute(f"SELECT count(*) FROM orders WHERE amount >= {n % 7} - 7")
                check_count(tenant, cursor.fetchone()[0])
                counters.count(kind)
            except psycopg2.Error as error:
                counters.error(kind, error)
                connection = psycopg2.connect(dsn(tenant, sslmode))
                connection.autocommit = True
                cursor = connection.cursor()
        connection.close()

    def extended(tenant):
        async def run():
            connection = await asyncpg.connect(host="127.0.0.1", port=port, user="agent", password=key[tenant], database=DATABASE, ssl=False)
            statement = await connection.prepare("SELECT count(*) FROM orders WHERE amount >= $1")
            while not stop.is_set():
                try:
                    check_count(tenant, await statement.fetchval(-1))
                    counters.count("extended")
                except asyncpg.PostgresError as error:
                    counters.error("extended", error)
            await connection.close()
        asyncio.run(run())

    def pipelines(tenant):
        connection = wire.Connection(port, key[tenant], database=DATABASE)
        while not stop.is_set():
            connection.send(wire.parse("SELECT count(*) FROM orders") + wire.bind() + wire.execute()
                            + wire.parse("DROP TABLE orders") + wire.bind() + wire.execute()
                            + wire.parse("SELECT 1") + wire.bind() + wire.execute() + wire.SYNC)
            messages = connection.read_until_ready()
            if wire.kinds(messages) != "12DCEZ":
                counters.error("pipeline", wire.kinds(messages))
            else:
                check_count(tenant, int(messages[2][1][6:]))
                counters.count("pipelines")
        connection.close()

    def cancels(tenant):
        while not stop.is_set():
            connection = psycopg2.connect(dsn(tenant))
            cursor = connection.cursor()
            finished = threading.Event()

            def cancel_repeatedly():
                while not finished.wait(0.3):
                    connection.cancel()
            canceller = threading.Thread(target=cancel_repeatedly)
            canceller.start()
            try:
                # Minutes of recursion, which the cost budget admits (its estimate is a few rows).
                cursor.execute("WITH RECURSIVE steps(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM steps WHERE n < 1000000000) "
                               "SELECT count(*) FROM steps")
                counters.error("cancel", "the statement was not cancelled")
            except psycopg2.errors.QueryCanceled:
                counters.count("cancels")
            except psycopg2.Error as error:
                counters.error("cancel", error)
            finally:
                finished.set()
                canceller.join()
                connection.close()

    def reconnects(tenant):
        while not stop.is_set():
            try:
                connection = psycopg2.connect(dsn(tenant, "require" if counters.done.get("reconnects", 0) % 2 else "disable"))
                with connection.cursor() as cursor:
                    cursor.execute("SELECT count(*) FROM orders")
                    check_count(tenant, cursor.fetchone()[0])
                connection.close()
                counters.count("reconnects")
            except psycopg2.Error as error:
                counters.error("reconnect", error)

    workers = [(simple, "acme", "disable"), (simple, "globex", "require"), (extended, "acme"), (extended, "globex"),
               (pipelines, "globex"), (cancels, "acme"), (reconnects, "globex")]
    threads = [threading.Thread(target=worker, args=arguments) for worker, *arguments in workers]
    for thread in threads:
        thread.start()
    time.sleep(min(10, minutes * 60 / 6))  # warm-up: caches, pools and buffers reach their working size
    def sample():
        return {name: (resident_kib(process.pid), open_descriptors(process.pid)) for name, process in servers.items()}
    started, done_at_start, first = time.monotonic(), sum(counters.done.values()), sample()
    samples = [first]
    end_at = time.monotonic() + minutes * 60
    while time.monotonic() < end_at:
        time.sleep(min(30, max(0.1, end_at - time.monotonic())))
        samples.append(sample())
        print(f"  {time.strftime('%H:%M:%S')}  " + "  ".join(f"{name}: rss {rss // 1024} MiB, fds {fds}" for name, (rss, fds) in samples[-1].items())
              + f"  operations {sum(counters.done.values())}", flush=True)
    ended, done_at_end, last = time.monotonic(), sum(counters.done.values()), sample()
    stop.set()
    for thread in threads:
        thread.join(timeout=120)
    for process in servers.values():
        process.terminate()
        process.wait(timeout=60)

    operations = done_at_end - done_at_start
    print(f"soak: {minutes} min, {operations} operations, {operations / (ended - started):.0f} per second")
    print("  by kind: " + ", ".join(f"{kind} {count}" for kind, count in sorted(counters.done.items())))
    leaked = False
    for name in servers:
        print(f"  Palisade ({name}) RSS: start {first[name][0] / 1024:.1f} MiB, end {last[name][0] / 1024:.1f} MiB, "
              f"max {max(s[name][0] for s in samples) / 1024:.1f} MiB; open descriptors: start {first[name][1]}, end {last[name][1]}")
        # The workers hold a fixed set of sessions (two descriptors each, a few more while a cancel
        # or a reconnect is in flight); growth beyond that is a leak.
        leaked = leaked or last[name][1] - first[name][1] > 8
    print(f"  unexpected errors: {len(counters.errors)}")
    for error in counters.errors[:10]:
        print("    " + error)
    if leaked:
        print("  descriptors grew: a leak")
    return 1 if counters.errors or leaked else 0


if __name__ == "__main__":
    sys.exit(main(float(sys.argv[1])))
