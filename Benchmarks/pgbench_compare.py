"""Runs inside scripts/with-postgres.sh (PG* name a superuser of a throwaway server)."""
import os
import pathlib
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request


ROOT = pathlib.Path(__file__).resolve().parents[1]
SECONDS = int(os.environ.get("PALISADE_BENCH_SECONDS", "20"))
# Where Palisade's audit log lives: by default beside the benchmark on disk, so every decision waits
# for a real fdatasync; /dev/shm separates the proxy's own cost from the disk's.
AUDIT_PARENT = os.environ.get("PALISADE_BENCH_AUDIT_PARENT")
ROLE, PASSWORD, DATABASE = "bench_app", "bench-secret", "bench"
HOST, PORT = os.environ["PGHOST"], os.environ["PGPORT"]


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def sql(statement, database="postgres"):
    subprocess.run(["psql", "-X", "-q", "-d", database, "-c", statement], check=True)


def wait_for_port(port, process, name):
    for _ in range(100):
        if process.poll() is not None:
            sys.exit(f"{name} exited: {process.stdout.read() if process.stdout else ''}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    sys.exit(f"{name} did not start")


def main():
    work = pathlib.Path(tempfile.mkdtemp(prefix="palisade-bench."))
    os.chmod(work, 0o755)
    sql(f"DROP DATABASE IF EXISTS {DATABASE}")
    sql(f"CREATE DATABASE {DATABASE}")
    sql(f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{ROLE}') THEN "
        f"CREATE ROLE {ROLE} LOGIN PASSWORD '{PASSWORD}'; END IF; END $$")
    subprocess.run(["pgbench", "-i", "-s", "10", "-q", DATABASE], check=True, capture_output=True)
    sql(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {ROLE}", DATABASE)

    (work / "userlist.txt").write_text(f'"{ROLE}" "{PASSWORD}"\n')
    run_as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if run_as:
        subprocess.run(["chown", "-R", "postgres:", str(work)], check=True)

    def start_bouncer(pool_mode):
        """PgBouncer with one pool mode: transaction (its usual use) or session, the mode in which
        1.18 also runs protocol-level prepared statements."""
        port = free_port()
        config = work / f"pgbouncer-{pool_mode}.ini"
        config.write_text(f"""[databases]
{DATABASE} = host={HOST} port={PORT} dbname={DATABASE}
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
auth_type = scram-sha-256
auth_file = {work}/userlist.txt
pool_mode = {pool_mode}
max_client_conn = 200
default_pool_size = 20
unix_socket_dir =
server_tls_sslmode = disable
logfile = {work}/pgbouncer-{pool_mode}.log
pidfile = {work}/pgbouncer-{pool_mode}.pid
""")
        if run_as:
            subprocess.run(["chown", "postgres:", str(config)], check=True)
        process = subprocess.Popen(run_as + ["pgbouncer", str(config)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        wait_for_port(port, process, f"pgbouncer ({pool_mode} pooling)")
        return port, process, int((work / f"pgbouncer-{pool_mode}.pid").read_text())

    bouncers = {mode: start_bouncer(mode) for mode in ("transaction", "session")}

    binary = str(ROOT / ".build/release/palisade")
    keys = work / "keys.yaml"
    key = subprocess.run([binary, "keys", "create", "--tenant", "bench", "--profile", "agent", "--keys-file", str(keys)],
                         check=True, capture_output=True, text=True).stdout.strip()
    palisade_port, admin_port = free_port(), free_port()
    palisade = subprocess.Popen([binary, "serve", "--listen", f"127.0.0.1:{palisade_port}",
                                 "--audit-dir", str(pathlib.Path(tempfile.mkdtemp(dir=AUDIT_PARENT)) / "audit"), "--audit-unsigned", "--backend",
                                 f"postgres://{ROLE}:{PASSWORD}@{HOST}:{PORT}/{DATABASE}", "--api-keys", str(keys),
                                 "--tls-mode", "disable", "--admin-listen", str(admin_port)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wait_for_port(palisade_port, palisade, "palisade")

    # Simple mode is compared with PgBouncer's transaction pooling; prepared mode with its session
    # pooling, since PgBouncer 1.18 cannot run protocol-level prepared statements per transaction.
    bouncer_mode = {"simple": "transaction", "prepared": "session"}
    palisade_target = (palisade_port, "agent", key)
    results = {}
    # Each proxy's own CPU time per transaction (user + system, from /proc): its cost, apart from waits.
    proxy_cpu = {}
    ticks_per_second = os.sysconf("SC_CLK_TCK")

    def cpu_seconds(pid):
        fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / ticks_per_second

    try:
        for mode in ("simple", "prepared"):
            bouncer_port, _, bouncer_pid = bouncers[bouncer_mode[mode]]
            targets = {"direct": (PORT, ROLE, PASSWORD, None), "pgbouncer": (bouncer_port, ROLE, PASSWORD, bouncer_pid),
                       "palisade": palisade_target + (palisade.pid,)}
            for clients in (1, 8):
                for name, (port, user, password, pid) in targets.items():
                    # The throwaway server offers TLS; every path is measured in clear, like Palisade's default.
                    env = dict(os.environ, PGPASSWORD=password, PGSSLMODE="disable")
                    cpu_before = cpu_seconds(pid) if pid else 0
                    out = subprocess.run(["pgbench", "-h", "127.0.0.1", "-p", str(port), "-U", user, "-n", "-S", "-M", mode,
                                          "-c", str(clients), "-j", str(min(clients, 2)), "-T", str(SECONDS), DATABASE],
                                         capture_output=True, text=True, env=env)
                    tps = re.search(r"tps = ([\d.]+)", out.stdout)
                    latency = re.search(r"latency average = ([\d.]+) ms", out.stdout)
                    failed = re.search(r"number of failed transactions: (\d+)", out.stdout)
                    ok = out.returncode == 0 and tps and (not failed or failed.group(1) == "0")
                    results[(mode, clients, name)] = (float(tps.group(1)), float(latency.group(1))) if ok else None
                    if ok and pid:
                        transactions = int(re.search(r"number of transactions actually processed: (\d+)", out.stdout).group(1))
                        proxy_cpu[(mode, clients, name)] = (cpu_seconds(pid) - cpu_before) / transactions * 1e6
                    shown = f"{float(tps.group(1)):9.0f} tps {float(latency.group(1)) * 1000:7.1f} µs" if ok else \
                        "failed: " + (out.stderr.strip().splitlines() or ["?"])[-1][:80]
                    print(f"-M {mode:8} -c {clients}  {name:10} {shown}", flush=True)
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/metrics").read().decode()
        audit = dict(line.split() for line in metrics.splitlines() if line.startswith("palisade_audit_"))
    finally:
        palisade.terminate()
        for _, process, _ in bouncers.values():
            process.terminate()

    print(f"\npgbench -S -T {SECONDS}, scale 10, {os.cpu_count()} cores; latency is pgbench's average; "
          f"Palisade's audit log in {AUDIT_PARENT or tempfile.gettempdir()}")
    print(f"Palisade's audit log: {float(audit.get('palisade_audit_entries_per_sync', 0)):.2f} entries per fdatasync, "
          f"{float(audit.get('palisade_audit_sync_seconds_mean', 0)) * 1e6:.0f} µs mean write+fdatasync")
    print(f"{'mode':9} {'clients':>7} {'direct tps':>11} {'bouncer tps':>12} {'palisade tps':>13} {'pal/direct':>11} {'pal/bouncer':>12} {'added latency':>14} {'cpu/tx bouncer':>15} {'cpu/tx palisade':>16}")
    for mode in ("simple", "prepared"):
        for clients in (1, 8):
            direct, bouncer_result, pal = (results.get((mode, clients, name)) for name in ("direct", "pgbouncer", "palisade"))
            def cell(value, width, fmt):
                return f"{fmt.format(value):>{width}}" if value is not None else f"{'n/a':>{width}}"
            print(f"{mode:9} {clients:>7} {cell(direct and direct[0], 11, '{:.0f}')} {cell(bouncer_result and bouncer_result[0], 12, '{:.0f}')}"
                  f" {cell(pal and pal[0], 13, '{:.0f}')} {cell(pal and direct and pal[0] / direct[0], 11, '{:.2f}x')}"
                  f" {cell(pal and bouncer_result and pal[0] / bouncer_result[0], 12, '{:.2f}x')}"
                  f" {cell(pal and direct and (pal[1] - direct[1]) * 1000, 14, '{:+.0f} µs')}"
                  f" {cell(proxy_cpu.get((mode, clients, 'pgbouncer')), 15, '{:.0f} µs')}"
                  f" {cell(proxy_cpu.get((mode, clients, 'palisade')), 16, '{:.0f} µs')}")
    print("PgBouncer pools by transaction for simple mode and by session for prepared mode "
          "(1.18 has no protocol-level prepared statements in transaction pooling); n/a: the run failed.")


main()
