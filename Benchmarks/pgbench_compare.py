"""Runs inside scripts/with-postgres.sh (PG* name a superuser of a throwaway server)."""
import atexit
import os
import pathlib
import re
import resource
import signal
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
# Another build of Palisade (e.g. main before a change), measured in the same run as a fourth target.
# It runs in its own checkout (CHECKOUT/.build/release/palisade), with that checkout's policies.
BASELINE_BINARY = os.environ.get("PALISADE_BASELINE_BIN")
# Rounds of the whole interleaved sequence; each cell is the median of its rounds.
ROUNDS = int(os.environ.get("PALISADE_BENCH_ROUNDS", "1"))
# simple and prepared are `pgbench -S`; agent and fresh are scripts (see `scripts` below).
MODES = ("simple", "agent", "fresh", "prepared")
ROLE, PASSWORD, DATABASE = "bench_app", "bench-secret", "bench"
# Benchmarks/durable-floor.c, built by Benchmarks/pgbench-compare: the least a proxy that holds each
# answer until its record is durable must do, measured beside Palisade in simple mode. Each is
# (mode, event-loop threads): a writer thread as Palisade has, the loop committing itself at the end
# of each turn, two writer threads with two fdatasyncs in flight, and the bare pump with no record (a
# relay's own floor).
FLOOR_BINARY = os.environ.get("PALISADE_FLOOR_BIN")
FLOORS = {"floor": ("flush", 1), "floor-inl": ("inline", 1), "floor-2s": ("pipe", 1), "pump": ("none", 1)}
HOST, PORT = os.environ["PGHOST"], os.environ["PGPORT"]


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def sql(statement, database="postgres"):
    subprocess.run(["psql", "-X", "-q", "-d", database, "-c", statement], check=True)


def wait_for_port(port, process, name, log=None):
    for _ in range(100):
        if process.poll() is not None:
            output = log.read_text() if log else process.stdout.read() if process.stdout else ""
            sys.exit(f"{name} exited: {output}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    sys.exit(f"{name} did not start")


def fdatasync_micros(directory, count=2000, in_place=False):
    """The disk's floor for a durable answer: write a 300-byte line and fdatasync it, as the audit
    writer does for one entry, in the directory the audit log lives in. By default the line is
    appended (the file grows, so each sync also writes its size); `in_place` writes it over zeros
    already on disk, as Palisade's writer does inside the space it reserves. Returns the median and
    mean wall time and the mean CPU time (user + system) per call, in µs: on a virtual machine the
    flush itself costs CPU (the virtio kick and its exits), which every proxy that syncs pays per batch."""
    path = pathlib.Path(tempfile.mkdtemp(dir=directory)) / "sync-probe"
    line = b"x" * 299 + b"\n"
    times = []
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | (0 if in_place else os.O_APPEND), 0o600)
    if in_place:
        os.pwrite(fd, bytes(len(line) * count), 0)
        os.fsync(fd)
    cpu_before = os.times()
    try:
        for number in range(count):
            start = time.perf_counter_ns()
            if in_place:
                os.pwrite(fd, line, number * len(line))
            else:
                os.write(fd, line)
            os.fdatasync(fd)
            times.append((time.perf_counter_ns() - start) / 1000)
    finally:
        cpu_after = os.times()
        os.close(fd)
        path.unlink()
        path.parent.rmdir()
    cpu = (cpu_after.user + cpu_after.system - cpu_before.user - cpu_before.system) / count * 1e6
    times.sort()
    return times[len(times) // 2], sum(times) / len(times), cpu


def machine_busy_and_total():
    """Jiffies the whole machine spent busy and in all, from /proc/stat (idle and iowait are idle)."""
    fields = [int(value) for value in pathlib.Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(fields) - fields[3] - fields[4], sum(fields)


def postgres_processes():
    """(pid, the stat fields after the name) of every PostgreSQL process; the throwaway server is the only one here."""
    for stat in pathlib.Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if text[text.index("(") + 1:text.rindex(")")] == "postgres":
            yield stat.parent.name, text.rsplit(")", 1)[1].split()


def server_cpu():
    """User + system jiffies of the server: every live process, plus what the postmaster holds for
    the backends that have exited and been reaped."""
    return sum(sum(int(value) for value in fields[11:15]) for _, fields in postgres_processes())


def server_settled():
    """Waits (up to 5 s) until the server's backends of the previous run have exited and been reaped:
    the postmaster adds an exited backend's CPU at once, so a late exit would land in the next run."""
    previous = None
    for _ in range(50):
        current = {(pid, fields[0]) for pid, fields in postgres_processes()}
        if current == previous and not any(state == "Z" for _, state in current):
            return
        previous = current
        time.sleep(0.1)


def thread_cpu(pid):
    """User and system jiffies of each kind of a Palisade's threads: its event loops, its audit
    writer, and the rest (dispatch workers, the stack thread), by thread name."""
    split = {}
    for task in pathlib.Path(f"/proc/{pid}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except FileNotFoundError:
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat.rsplit(")", 1)[1].split()
        kind = "loops" if name.startswith("NIO-ELT") else "audit" if name.startswith("palisade-audit") else "other"
        user, system = split.get(kind, (0, 0))
        split[kind] = (user + int(fields[11]), system + int(fields[12]))
    return split


def median(values):
    values = sorted(values)
    middle = len(values) // 2
    return values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2


def main():
    # The baseline runs in its own checkout (the binary's working directory), found from its path.
    if BASELINE_BINARY and pathlib.Path(os.path.abspath(BASELINE_BINARY)).parts[-3:-1] != (".build", "release"):
        sys.exit(f"PALISADE_BASELINE_BIN must be CHECKOUT/.build/release/palisade, not {BASELINE_BINARY}")
    # Every proxy started is stopped however the run ends, a failed start included (a failed
    # baseline start once left the first Palisade running).
    started = []
    atexit.register(lambda: [process.terminate() for process in started if process.poll() is None])
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
        started.append(process)
        wait_for_port(port, process, f"pgbouncer ({pool_mode} pooling)")
        return port, process, int((work / f"pgbouncer-{pool_mode}.pid").read_text())

    bouncers = {mode: start_bouncer(mode) for mode in ("transaction", "session")}

    def start_palisade(binary, name, extra=()):
        keys = work / f"keys-{name}.yaml"
        key = subprocess.run([binary, "keys", "create", "--tenant", "bench", "--profile", "agent", "--keys-file", str(keys)],
                             check=True, capture_output=True, text=True).stdout.strip()
        port, admin = free_port(), free_port()
        audit_dir = pathlib.Path(tempfile.mkdtemp(dir=AUDIT_PARENT)) / "audit"
        process = subprocess.Popen([binary, "serve", "--listen", f"127.0.0.1:{port}",
                                    "--audit-dir", str(audit_dir), "--audit-unsigned", "--backend",
                                    f"postgres://{ROLE}:{PASSWORD}@{HOST}:{PORT}/{DATABASE}", "--api-keys", str(keys),
                                    "--tls-mode", "disable", "--admin-listen", str(admin), *extra], cwd=pathlib.Path(os.path.abspath(binary)).parents[2],
                                   stdout=(work / f"{name}.log").open("w"), stderr=subprocess.STDOUT)
        started.append(process)
        wait_for_port(port, process, name, work / f"{name}.log")
        return (port, "agent", key, process.pid), process, admin

    palisades = {"palisade": start_palisade(str(ROOT / ".build/release/palisade"), "palisade")}
    # The opt-in setting that answers once the entry is in the file, flushed within 200 ms: what the
    # flush costs, shown beside the default. Not counted toward the targets.
    palisades["pal-write"] = start_palisade(str(ROOT / ".build/release/palisade"), "pal-write", ("--audit-durability", "write"))
    if BASELINE_BINARY:
        palisades["baseline"] = start_palisade(BASELINE_BINARY, "baseline")
    floors = {}
    for name, (floor_mode, threads) in (FLOORS.items() if FLOOR_BINARY else ()):
        port = free_port()
        audit_file = pathlib.Path(tempfile.mkdtemp(dir=AUDIT_PARENT)) / "floor.log"
        process = subprocess.Popen([FLOOR_BINARY, str(port), PORT, str(audit_file), floor_mode, str(threads)],
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        started.append(process)
        wait_for_port(port, process, name)
        floors[name] = ((port, ROLE, PASSWORD, process.pid), process)

    def floor_counts(name):
        """Records and fdatasyncs of a floor so far (it prints them on SIGUSR1)."""
        process = floors[name][1]
        process.send_signal(signal.SIGUSR1)
        entries, syncs = process.stdout.readline().split()
        return float(entries), float(syncs), 0.0

    sync_before = fdatasync_micros(AUDIT_PARENT)
    in_place_before = fdatasync_micros(AUDIT_PARENT, in_place=True)

    # Simple mode is compared with PgBouncer's transaction pooling; prepared mode with its session
    # pooling, since PgBouncer 1.18 cannot run protocol-level prepared statements per transaction.
    bouncer_mode = {"simple": "transaction", "agent": "transaction", "fresh": "transaction", "prepared": "session"}
    # Simple mode as psycopg2 agents send it, with the value interpolated into a string too. pgbench
    # puts a variable's value into the text wherever it stands, quotes included. The table has
    # 1,000,000 rows (scale 10), as -S reads.
    # `agent`: the string is compared with a column, so texts that differ only in it (and in their
    # numbers) share a decision, as `-S` texts do.
    # `fresh`: the string is a LIKE pattern, which the decision reads, so no two texts share one.
    scripts = {}
    for mode, condition in (("agent", "filler IS DISTINCT FROM 'agent :aid'"), ("fresh", "filler NOT LIKE 'agent :aid%'")):
        scripts[mode] = work / f"{mode}.sql"
        scripts[mode].write_text("\\set aid random(1, 1000000)\n"
                                 f"SELECT abalance FROM pgbench_accounts WHERE aid = :aid AND {condition};\n")
    samples = {}
    # Each proxy's own CPU time per transaction (user + system, from /proc): its cost, apart from waits.
    cpu_samples = {}
    # The system part of it: socket calls, thread wakes and the flush, which no user-space work adds to.
    kernel_samples = {}
    ticks_per_second = os.sysconf("SC_CLK_TCK")

    def user_and_system_seconds(pid):
        fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) / ticks_per_second, int(fields[12]) / ticks_per_second

    # Entries and fdatasyncs of each Palisade's audit log, read before and after each run: the group
    # commit's batch size in that run alone.
    admin_ports = {name: admin for name, (_, _, admin) in palisades.items()}
    sync_samples = {}
    # Where each run's CPU went: the whole machine's busy share and CPU per transaction (pgbench and
    # PostgreSQL included), and each Palisade's threads by kind.
    machine_samples, thread_samples = {}, {}

    def audit_metrics(name):
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{admin_ports[name]}/metrics").read().decode()
        return dict(line.split() for line in metrics.splitlines() if line.startswith("palisade_audit_"))

    def entries_and_syncs(name):
        """Entries, fdatasyncs, and seconds spent in write + fdatasync, since the Palisade started."""
        metrics = audit_metrics(name)
        syncs = float(metrics["palisade_audit_syncs"])
        return float(metrics["palisade_audit_entries"]), syncs, float(metrics["palisade_audit_sync_seconds_mean"]) * syncs

    try:
        for number in range(ROUNDS):
            for mode in MODES:
                bouncer_port, _, bouncer_pid = bouncers[bouncer_mode[mode]]
                targets = {"direct": (PORT, ROLE, PASSWORD, None), "pgbouncer": (bouncer_port, ROLE, PASSWORD, bouncer_pid)}
                targets.update({name: target for name, (target, _, _) in palisades.items()})
                if mode == "simple":
                    targets.update({name: target for name, (target, _) in floors.items()})
                for clients in (1, 8):
                    for name, (port, user, password, pid) in targets.items():
                        # The throwaway server offers TLS; every path is measured in clear, like Palisade's default.
                        env = dict(os.environ, PGPASSWORD=password, PGSSLMODE="disable")
                        server_settled()
                        cpu_before = user_and_system_seconds(pid) if pid else (0, 0)
                        audit_before = entries_and_syncs(name) if name in palisades else floor_counts(name) if name in floors else None
                        threads_before = thread_cpu(pid) if name in palisades else None
                        machine_before = machine_busy_and_total()
                        server_before, pgbench_before = server_cpu(), resource.getrusage(resource.RUSAGE_CHILDREN)
                        script = ["-M", "simple", "-f", str(scripts[mode])] if mode in scripts else ["-S", "-M", mode]
                        out = subprocess.run(["pgbench", "-h", "127.0.0.1", "-p", str(port), "-U", user, "-n", *script,
                                              "-c", str(clients), "-j", str(min(clients, 2)), "-T", str(SECONDS), DATABASE],
                                             capture_output=True, text=True, env=env)
                        tps = re.search(r"tps = ([\d.]+)", out.stdout)
                        latency = re.search(r"latency average = ([\d.]+) ms", out.stdout)
                        failed = re.search(r"number of failed transactions: (\d+)", out.stdout)
                        ok = out.returncode == 0 and tps and (not failed or failed.group(1) == "0")
                        key = (mode, clients, name)
                        if ok:
                            samples.setdefault(key, []).append((float(tps.group(1)), float(latency.group(1))))
                            transactions = int(re.search(r"number of transactions actually processed: (\d+)", out.stdout).group(1))
                            busy, total = (after - before for after, before in zip(machine_busy_and_total(), machine_before))
                            pgbench_after = resource.getrusage(resource.RUSAGE_CHILDREN)
                            pgbench_seconds = (pgbench_after.ru_utime + pgbench_after.ru_stime
                                               - pgbench_before.ru_utime - pgbench_before.ru_stime)
                            machine_samples.setdefault(key, []).append((
                                busy / total, busy / ticks_per_second / transactions * 1e6,
                                (server_cpu() - server_before) / ticks_per_second / transactions * 1e6,
                                pgbench_seconds / transactions * 1e6))
                            if pid:
                                user, system = (after - before for after, before in zip(user_and_system_seconds(pid), cpu_before))
                                cpu_samples.setdefault(key, []).append((user + system) / transactions * 1e6)
                                kernel_samples.setdefault(key, []).append(system / transactions * 1e6)
                            if threads_before is not None:
                                threads_after = thread_cpu(pid)
                                thread_samples.setdefault(key, []).append({
                                    kind: tuple((after - before) / ticks_per_second / transactions * 1e6
                                                for after, before in zip(threads_after[kind], threads_before.get(kind, (0, 0))))
                                    for kind in threads_after})
                            if audit_before:
                                counts = entries_and_syncs(name) if name in palisades else floor_counts(name)
                                entries, syncs, seconds = (after - before for after, before in zip(counts, audit_before))
                                if syncs:
                                    sync_samples.setdefault(key, []).append((entries / syncs, seconds / syncs * 1e6 if name in palisades else None))
                        shown = f"{float(tps.group(1)):9.0f} tps {float(latency.group(1)) * 1000:7.1f} µs" if ok else \
                            "failed: " + (out.stderr.strip().splitlines() or ["?"])[-1][:80]
                        print(f"round {number + 1} -M {mode:8} -c {clients}  {name:10} {shown}", flush=True)
        audit = {name: audit_metrics(name) for name in palisades}
    finally:
        for _, process, _ in palisades.values():
            process.terminate()
        for _, process, _ in bouncers.values():
            process.terminate()
        for _, process in floors.values():
            process.terminate()
    sync_after = fdatasync_micros(AUDIT_PARENT)
    in_place_after = fdatasync_micros(AUDIT_PARENT, in_place=True)
    results = {key: (median([tps for tps, _ in runs]), median([latency for _, latency in runs])) for key, runs in samples.items()}
    proxy_cpu = {key: median(values) for key, values in cpu_samples.items()}
    proxy_kernel_cpu = {key: median(values) for key, values in kernel_samples.items()}
    entries_per_sync = {key: median([entries for entries, _ in values]) for key, values in sync_samples.items()}
    commit_micros = {key: median([micros for _, micros in values]) for key, values in sync_samples.items() if key[2] in palisades}

    sync_median = median([sync_before[0], sync_after[0]])
    print(f"\npgbench -S -T {SECONDS}, scale 10, {os.cpu_count()} cores, {ROUNDS} round(s) (medians); latency is pgbench's average; "
          f"audit logs in {AUDIT_PARENT or tempfile.gettempdir()}")
    print(f"This disk: 300-byte append + fdatasync, median {sync_before[0]:.0f} µs before the runs and {sync_after[0]:.0f} µs after "
          f"(means {sync_before[1]:.0f} and {sync_after[1]:.0f} µs); CPU per call {sync_before[2]:.0f} and {sync_after[2]:.0f} µs")
    print(f"           the same written over zeros already on disk (as Palisade's writer does), median {in_place_before[0]:.0f} and "
          f"{in_place_after[0]:.0f} µs; CPU per call {in_place_before[2]:.0f} and {in_place_after[2]:.0f} µs")
    for name in palisades:
        print(f"{name}'s audit log over the whole run: {float(audit[name].get('palisade_audit_entries_per_sync', 0)):.2f} entries per fdatasync, "
              f"{float(audit[name].get('palisade_audit_sync_seconds_mean', 0)) * 1e6:.0f} µs mean write+fdatasync")
    print(f"{'mode':9} {'clients':>7} {'target':>9} {'direct tps':>11} {'bouncer tps':>12} {'tps':>9} {'/direct':>8} {'/bouncer':>9} {'added latency':>14} {'cpu/tx bouncer':>15} {'cpu/tx':>8} {'entries/sync':>13} {'commit':>8}")

    def cell(value, width, fmt):
        return f"{fmt.format(value):>{width}}" if value is not None else f"{'n/a':>{width}}"

    for mode in MODES:
        for clients in (1, 8):
            direct, bouncer_result = (results.get((mode, clients, name)) for name in ("direct", "pgbouncer"))
            for name in (*palisades, *(floors if mode == "simple" else ())):
                pal = results.get((mode, clients, name))
                print(f"{mode:9} {clients:>7} {name:>9} {cell(direct and direct[0], 11, '{:.0f}')} {cell(bouncer_result and bouncer_result[0], 12, '{:.0f}')}"
                      f" {cell(pal and pal[0], 9, '{:.0f}')} {cell(pal and direct and pal[0] / direct[0], 8, '{:.2f}x')}"
                      f" {cell(pal and bouncer_result and pal[0] / bouncer_result[0], 9, '{:.2f}x')}"
                      f" {cell(pal and direct and (pal[1] - direct[1]) * 1000, 14, '{:+.0f} µs')}"
                      f" {cell(proxy_cpu.get((mode, clients, 'pgbouncer')), 15, '{:.0f} µs')}"
                      f" {cell(proxy_cpu.get((mode, clients, name)), 8, '{:.0f} µs')}"
                      f" {cell(entries_per_sync.get((mode, clients, name)), 13, '{:.2f}')}"
                      f" {cell(commit_micros.get((mode, clients, name)), 8, '{:.0f} µs')}")
    print("agent, fresh: simple mode with the number also in a string, as psycopg2 interpolates values; agent compares "
          "it with a column (texts share a decision), fresh matches it with LIKE (each text is a decision of its own); "
          "not targets, shown for what agents send.\n"
          "PgBouncer pools by transaction for simple mode and by session for prepared mode "
          "(1.18 has no protocol-level prepared statements in transaction pooling); n/a: the run failed.\n"
          "cpu/tx: the proxy's user + system CPU per transaction (all its threads, from /proc); entries/sync: "
          "audit entries per fdatasync in that run; commit: mean write + fdatasync of one group commit in that run.\n"
          "pal-write: Palisade with the opt-in audit_durability write (an answer waits for its entry's write, which survives "
          "Palisade's crash, not the machine's; fdatasync within 200 ms); not counted toward the targets. "
          "Its entries/sync and commit are per periodic fdatasync."
          + ("\nfloor, floor-inl, floor-2s, pump (simple mode only): Benchmarks/durable-floor.c, a C byte pump with one epoll "
             "thread and no parse, decision or TLS. The floors record each query (its text, chained by SHA-256, written over "
             "reserved zeros as Palisade writes) and hold its answer until the record's fdatasync: floor on a writer thread "
             "(group commit), floor-inl on the loop itself at the end of each turn, floor-2s on two writer threads, so that "
             "two fdatasyncs are in flight (batches released in order). pump records nothing." if floors else ""))
    # Where the CPU went, per transaction: the machine (pgbench and PostgreSQL included) and, for each
    # Palisade, its event loops and its audit writer, user and system time apart.
    machine = {key: tuple(median([sample[index] for sample in values]) for index in range(4))
               for key, values in machine_samples.items()}

    def thread_median(key, kind, index):
        values = [sample[kind][index] for sample in thread_samples.get(key, []) if kind in sample]
        return median(values) if values else None

    print(f"\n{'mode':9} {'clients':>7} {'target':>9} {'machine busy':>13} {'machine cpu/tx':>15} {'postgres':>9} {'pgbench':>8}"
          f" {'loops user':>11} {'loops sys':>10}"
          f" {'audit user':>11} {'audit sys':>10} {'other':>7}")
    for mode in MODES:
        for clients in (1, 8):
            for name in ("direct", "pgbouncer", *palisades, *floors):
                key = (mode, clients, name)
                if key not in machine:
                    continue
                other = [thread_median(key, "other", index) for index in (0, 1)]
                print(f"{mode:9} {clients:>7} {name:>9} {machine[key][0] * 100:12.0f}% {machine[key][1]:12.0f} µs"
                      f" {machine[key][2]:6.0f} µs {machine[key][3]:5.0f} µs"
                      + "".join(f" {cell(thread_median(key, kind, index), width, '{:.1f} µs')}"
                                for kind, index, width in (("loops", 0, 11), ("loops", 1, 10), ("audit", 0, 11), ("audit", 1, 10)))
                      + f" {cell(sum(other) if None not in other else None, 7, '{:.1f} µs')}")
    print("machine: every process's CPU (all cores, from /proc/stat) over the run, per transaction; postgres: the server's "
          "processes; pgbench: the client's own; loops, audit, other: Palisade's event-loop threads, its audit writer "
          "thread, and its other threads. Each process's CPU is the kernel's own tick-sampled accounting, which need not add "
          "up to the machine's exactly (at one client it overshot by up to 25 %).")

    # The targets, each against what was measured in this run.
    simple8, bouncer8 = results.get(("simple", 8, "palisade")), results.get(("simple", 8, "pgbouncer"))
    simple1, direct1 = results.get(("simple", 1, "palisade")), results.get(("simple", 1, "direct"))
    cpu_pal, cpu_bouncer = proxy_cpu.get(("simple", 8, "palisade")), proxy_cpu.get(("simple", 8, "pgbouncer"))
    print("\ntargets (simple mode):")
    if simple8 and bouncer8:
        print(f"  -c 8 tps vs PgBouncer: {simple8[0] / bouncer8[0]:.2f}x (target >= 1.00x)")
    if simple1 and direct1:
        added = (simple1[1] - direct1[1]) * 1000
        print(f"  -c 1 added latency: {added:+.0f} µs vs one fdatasync + 40 µs = {sync_median + 40:.0f} µs (target: at most that)"
              + (f"; Palisade's own commits took {commit_micros[('simple', 1, 'palisade')]:.0f} µs each in that run"
                 if ("simple", 1, "palisade") in commit_micros else ""))
    if cpu_pal and cpu_bouncer:
        print(f"  -c 8 CPU per transaction: {cpu_pal:.0f} µs vs PgBouncer's {cpu_bouncer:.0f} µs = {cpu_pal / cpu_bouncer:.2f}x (target <= 2.00x)")
    # What the durability rule alone costs on this machine: the C floors, in the same run.
    for name in floors:
        floor8, floor1, cpu_floor = results.get(("simple", 8, name)), results.get(("simple", 1, name)), proxy_cpu.get(("simple", 8, name))
        if floor8 and bouncer8 and floor1 and direct1 and cpu_floor and cpu_bouncer:
            print(f"{name} (the C floor, not a target): -c 8 {floor8[0] / bouncer8[0]:.2f}x PgBouncer's tps, -c 1 {(floor1[1] - direct1[1]) * 1000:+.0f} µs, "
                  f"-c 8 CPU {cpu_floor:.0f} µs per transaction = {cpu_floor / cpu_bouncer:.2f}x PgBouncer's")
    # Where the CPU target's budget goes: the kernel's part of each proxy's CPU (the relay's socket calls, the wakes of
    # its threads and, where it records, the flush), against PgBouncer's whole CPU.
    kernel = {name: proxy_kernel_cpu.get(("simple", 8, name)) for name in ("pgbouncer", "palisade", *floors)}
    if cpu_bouncer and all(value is not None for value in kernel.values()):
        print("  -c 8 kernel CPU per transaction (socket calls, wakes, the flush), against PgBouncer's whole CPU: "
              + ", ".join(f"{name} {value:.0f} µs = {value / cpu_bouncer:.2f}x" for name, value in kernel.items()))
    write8, write1 = results.get(("simple", 8, "pal-write")), results.get(("simple", 1, "pal-write"))
    cpu_write = proxy_cpu.get(("simple", 8, "pal-write"))
    if write8 and bouncer8 and write1 and direct1 and cpu_write and cpu_bouncer:
        print(f"opt-in audit_durability write (not counted toward the targets): -c 8 {write8[0] / bouncer8[0]:.2f}x PgBouncer's tps, "
              f"-c 1 {(write1[1] - direct1[1]) * 1000:+.0f} µs, -c 8 CPU {cpu_write:.0f} µs per transaction = {cpu_write / cpu_bouncer:.2f}x PgBouncer's")

main()
