#!/usr/bin/env python3
"""Texts that once made a decision cost more than linear time: each must cost about what its size
says. Cost is the instructions `palisade check` executes for the text beyond what it executes for
`SELECT 1`, counted by callgrind: counts repeat exactly, so a loaded machine cannot change the
verdict, where the wall-clock ratios this replaces failed CI once under AddressSanitizer.

- Breadth: texts of many flat parts, each of which once asked a question of the whole tree or of
  every part before it (eighteenth red team: up to 27 s for one admitted 64 KB text). Eight times
  the parts must cost less than BREADTH_BOUND times: linear is 8 (7.6x to 8.2x measured), quadratic
  64. A linear search of the tables listed so far, put into `listTable` on purpose, made 4,800
  distinct tables cost 36.8x, and this check failed.
- Scanners: texts that made a lexer re-read to the end of the text from each opener (the engine's
  own, and libpg_query's runs of operator characters; issue 14, finding 7). Each must cost less
  than SCAN_BOUND times a plain text of its size, and be refused.

Usage: check-cost-scaling.py [PALISADE_BINARY]   (default: .build/debug/palisade)
"""
import concurrent.futures
import os
import re
import shutil
import subprocess
import sys
import tempfile

BREADTH_BOUND = 11
SCAN_BOUND = 10


def repeat(unit, count, sep):
    return sep.join([unit] * count)


BREADTH = [
    ("patterns reading a column beside a subquery", 600,
     lambda n: "SELECT 1 FROM (SELECT a FROM t) s WHERE " + repeat("x ~ y", n, " AND ")),
    ("aggregates over a subquery", 500,
     lambda n: "SELECT " + repeat("array_agg(x)", n, ", ") + " FROM (SELECT a FROM t) s"),
    ("column references against many FROM items", 600,
     lambda n: "SELECT " + ", ".join(f"x{i}" for i in range(n)) + " FROM (SELECT 1) s, " + repeat("t", n, ", ")),
    ("distinct tables", 600,
     lambda n: "SELECT 1 FROM " + ", ".join(f"t{i}" for i in range(n))),
    ("WITH queries and references", 250,
     lambda n: "WITH " + ", ".join(f"a{i} AS (SELECT 1)" for i in range(n)) + " SELECT 1 FROM " + repeat("t", 2 * n, ", ")),
    ("subqueries keeping a parameter", 60,
     lambda n: "SELECT " + repeat("cardinality(ARRAY(SELECT $1::text || g FROM generate_series(1, 3) g))", n, ", ")),
]


def text(prefix, unit, size, suffix=""):
    return prefix + unit * ((size - len(prefix) - len(suffix)) // len(unit)) + suffix


def dollar_tags(size):
    """Distinct dollar-quote tags `$a$ $b$ … $Zz$ …`, none of them closed."""
    letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    parts, length, number = ["SELECT"], 6, 0
    while length < size - 8:
        tag, rest = "", number
        while True:
            tag += letters[rest % len(letters)]
            rest //= len(letters)
            if rest == 0:
                break
        parts.append(f" ${tag}$")
        length += len(tag) + 3
        number += 1
    return "".join(parts)


SCANNERS = [
    ("distinct unclosed dollar tags", dollar_tags(60_000)),
    ("unclosed quote with doubled quotes", text("SELECT '", "''", 60_000)),
    ("unclosed E-string with escaped quotes", text("SELECT E'", "\\'", 60_000)),
    ("unclosed quoted name", text('SELECT "', '""', 60_000)),
    ("many string openers", text("SELECT ", "E'", 60_000)),
    ("nested comment openers", text("SELECT 1 ", "/*", 16_000)),
    ("comment openers in an operator", text("SELECT 1 ", "+/*", 16_000)),
    ("long operator chain", text("SELECT 1 ", "+", 16_000, "1")),
    ("alternating operator chain", text("SELECT 1 ", "-+", 16_000, "1")),
    ("operator ending in plus", text("SELECT 1 <", "+", 16_000, " 1")),
]


def main():
    source = sys.argv[1] if len(sys.argv) > 1 else ".build/debug/palisade"
    if not shutil.which("valgrind"):
        sys.exit("valgrind is required (scripts/install-deps.sh installs it)")
    work = tempfile.mkdtemp(prefix="palisade-cost.")
    try:
        # valgrind 3.19 cannot read Swift's DWARF 5 debug information: a stripped copy.
        binary = os.path.join(work, "palisade")
        shutil.copy(source, binary)
        subprocess.run(["strip", "--strip-debug", binary], check=True)
        env = dict(os.environ, SWIFT_DETERMINISTIC_HASHING="1")

        def instructions(sql):
            """Instructions of `palisade check SQL`, and its exit status."""
            with tempfile.NamedTemporaryFile(dir=work, suffix=".cg") as out:
                run = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out.name}", binary, "check", sql],
                                     env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                found = re.search(r"Collected : (\d+)", run.stderr)
                if not found:
                    sys.exit(f"callgrind printed no count:\n{run.stderr[-2000:]}")
                return int(found.group(1)), run.returncode

        texts = {"baseline": "SELECT 1"}
        for name, parts, make in BREADTH:
            texts[("small", name)] = make(parts)
            texts[("large", name)] = make(8 * parts)
            assert len(texts[("large", name)].encode()) < 64_000, name
        for name, sql in SCANNERS:
            texts[("odd", name)] = sql
            texts[("plain", name)] = text("SELECT ", "a, ", len(sql.encode()), "1")
        distinct = sorted(set(texts.values()))  # the plain texts of one size are one text
        with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
            by_text = dict(zip(distinct, pool.map(instructions, distinct)))
        counted = {key: by_text[sql] for key, sql in texts.items()}
        baseline = counted["baseline"][0]

        def cost(key):
            return counted[key][0] - baseline

        failures = 0
        for name, parts, _ in BREADTH:
            small, large = cost(("small", name)), cost(("large", name))
            ratio = large / small
            ok = ratio < BREADTH_BOUND
            failures += not ok
            print(f"{'ok  ' if ok else 'FAIL'} breadth {name}: {large:,} instructions at {8 * parts} parts, "
                  f"{small:,} at {parts}: {ratio:.1f}x (bound {BREADTH_BOUND}x)")
        for name, _ in SCANNERS:
            odd, plain = cost(("odd", name)), cost(("plain", name))
            ratio = odd / plain
            refused = counted[("odd", name)][1] == 1
            ok = ratio < SCAN_BOUND and refused
            failures += not ok
            print(f"{'ok  ' if ok else 'FAIL'} scanner {name}: {odd:,} instructions against {plain:,} for plain text "
                  f"of its size: {ratio:.2f}x (bound {SCAN_BOUND}x){'' if refused else ', and it was not refused'}")
        print(f"baseline (SELECT 1, start and policy load): {baseline:,} instructions")
        sys.exit(1 if failures else 0)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
