#!/usr/bin/env python3
"""Runs a JSONL case file through `palisade check --jsonl` and reports mismatches.

Usage: Tests/corpus/check-cases.py CASES.jsonl

Each case has id, profile (readonly|analyst), expect (allow|deny|advisory|runtime), sql and
optionally rule (the expected rule id). Cases are grouped by profile and sent to
`palisade check --jsonl --policy Policies/<profile>.yaml`. The binary is $PALISADE_BIN, by default
.build/debug/palisade; relative paths are taken from the repository root (this script's
parent's parent).

Decision mismatches are always printed; rule mismatches when the case has `rule`. The exit status
is 1 if any allow/deny case has a decision or rule mismatch; advisory and runtime cases are
reported but never fail. The last line is `N passed, M failed`.
"""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: check-cases.py CASES.jsonl", file=sys.stderr)
        return 2
    binary = os.environ.get("PALISADE_BIN", ".build/debug/palisade")
    if not os.path.isabs(binary):
        binary = os.path.join(ROOT, binary)

    cases = []
    with open(sys.argv[1], encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                cases.append(json.loads(line))
            except json.JSONDecodeError as error:
                print(f"line {number}: not JSON: {error}", file=sys.stderr)
                return 2

    # Expectations a later issue changed, with the reason (Tests/corpus/superseded.tsv).
    superseded = {}
    with open(os.path.join(ROOT, "Tests/corpus/superseded.tsv"), encoding="utf-8") as handle:
        for line in handle:
            if line.strip() and not line.startswith("#"):
                case_id, expect, why = line.rstrip("\n").split("\t")
                superseded[case_id] = (expect, why)
    for case in cases:
        if case.get("id") in superseded:
            expect, why = superseded[case["id"]]
            print(f"SUPERSEDED {case['id']}: expect {expect}, not {case.get('expect')} ({why})")
            case["expect"] = expect

    by_profile = {}
    for index, case in enumerate(cases):
        by_profile.setdefault(case.get("profile", "readonly"), []).append(index)

    decisions = {}
    for profile, indexes in sorted(by_profile.items()):
        policy = os.path.join(ROOT, "Policies", f"{profile}.yaml")
        # The id sent is the case's index, so duplicate or non-string ids cannot confuse the join.
        payload = "".join(json.dumps({"id": str(i), "sql": cases[i]["sql"]}) + "\n" for i in indexes)
        try:
            result = subprocess.run([binary, "check", "--jsonl", "--policy", policy],
                                    input=payload.encode("utf-8"), capture_output=True, cwd=ROOT)
        except OSError as error:
            print(f"cannot run {binary}: {error} (build with `swift build` or set PALISADE_BIN)", file=sys.stderr)
            return 2
        if result.returncode not in (0, 1):
            sys.stderr.write(result.stderr.decode("utf-8", "replace"))
            print(f"palisade check failed for profile {profile} (exit {result.returncode})", file=sys.stderr)
            return 2
        for line in result.stdout.decode("utf-8", "replace").split("\n"):
            if line.strip():
                decision = json.loads(line)
                decisions[int(decision["id"])] = decision

    passed = failed = reported = 0
    for index, case in enumerate(cases):
        expect = case.get("expect")
        decision = decisions.get(index)
        got = decision.get("decision") if decision else "missing"
        got_rule = decision.get("rule") if decision else "missing"
        problems = []
        if expect in ("allow", "deny") and got != expect:
            problems.append(f"decision: expected {expect}, got {got}")
        if case.get("rule") and got_rule != case["rule"]:
            problems.append(f"rule: expected {case['rule']}, got {got_rule}")
        sql = case["sql"] if len(case["sql"]) <= 160 else case["sql"][:157] + "..."
        if expect not in ("allow", "deny"):
            # advisory/runtime: report what happened, never fail.
            reported += 1
            detail = "; ".join(problems) if problems else f"{got} {got_rule}"
            print(f"REPORT {case['id']} [{case.get('profile')}] ({expect}) {detail}: {sql!r}")
            continue
        if problems:
            failed += 1
            message = (decision or {}).get("message", "")
            print(f"FAIL {case['id']} [{case.get('profile')}] {'; '.join(problems)}: {sql!r}")
            if message:
                print(f"     engine: {message[:200]}")
        else:
            passed += 1
    if reported:
        print(f"{reported} advisory/runtime case(s) reported")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
