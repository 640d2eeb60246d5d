#!/usr/bin/env bash
# End-to-end tests of the palisade binary, beside the PostgreSQL that scripts/with-postgres.sh started.
set -uo pipefail
cd "$(dirname "$0")/.."

bin=${PALISADE_BIN:-.build/debug/palisade}
shared=../shared/corpus/cases.jsonl
work=$(mktemp -d /tmp/palisade-it.XXXXXX)
trap 'rm -rf "$work"' EXIT
passed=0
failed=0

run() {
  local name=$1
  shift
  if "$@" >"$work/out" 2>&1; then
    passed=$((passed + 1))
    echo "ok   $name"
  else
    failed=$((failed + 1))
    echo "FAIL $name"
    sed 's/^/     /' "$work/out" | tail -40
  fi
}

exit_code_is() {
  local expected=$1
  shift
  "$@"
  local actual=$?
  [ "$actual" = "$expected" ] || { echo "expected exit $expected, got $actual"; return 1; }
}

run "pg15 function lists cover pg_proc exactly" scripts/generate-pg15-catalog.sh --check
run "check: allowed query exits 0" exit_code_is 0 "$bin" check "SELECT abalance FROM pgbench_accounts WHERE aid = 1"
run "check: denied query exits 1" exit_code_is 1 "$bin" check "DELETE FROM users"
run "check: missing policy exits 2" exit_code_is 2 "$bin" check --policy /nonexistent.yaml "SELECT 1"
run "check: usage error exits 2" exit_code_is 2 "$bin" check --no-such-flag

printf 'profile: readonly\nlimits:\n  max_query_bytes: 10\n  max_depth: 3\n' >"$work/bad.yaml"
policy_error() {
  "$bin" policy lint "$work/bad.yaml" >"$work/lint" 2>&1
  local status=$?
  cat "$work/lint"
  [ $status = 2 ] && grep -q "bad.yaml:4: limits.max_depth: unknown key" "$work/lint"
}
run "policy lint names file, line and key" policy_error

denied_message() {
  local output
  output=$("$bin" check "SELECT pg_sleep(5)")
  echo "$output"
  grep -q "deny fn.forbidden (SQLSTATE 42501)" <<<"$output" && grep -q "at character 8" <<<"$output" &&
    grep -q "normalized:  SELECT pg_sleep(\$1)" <<<"$output"
}
run "check prints rule and position" denied_message

jsonl_100k() {
  python3 - "$work/in.jsonl" <<'PY'
import json, sys
sqls = ["SELECT abalance FROM pgbench_accounts WHERE aid = %d",
        "SELECT name FROM users WHERE id IN (SELECT user_id FROM orders WHERE total > %d)",
        "DELETE FROM users WHERE id = %d", "SELECT pg_sleep(%d)", "not sql at all %d"]
with open(sys.argv[1], "w") as out:
    for i in range(100_000):
        out.write(json.dumps({"id": f"q{i}", "sql": sqls[i % len(sqls)] % i}) + "\n")
PY
  local start end
  start=$(date +%s.%N)
  "$bin" check --jsonl <"$work/in.jsonl" >"$work/out.jsonl" || [ $? = 0 ] || return 1
  end=$(date +%s.%N)
  echo "100000 lines in $(python3 -c "print(round($end - $start, 2))") s"
  python3 - "$work/out.jsonl" <<'PY'
import json, sys
lines = open(sys.argv[1]).read().splitlines()
assert len(lines) == 100_000, len(lines)
expected = ["allow", "allow", "deny", "deny", "deny"]
normalized = ["SELECT abalance FROM pgbench_accounts WHERE aid = $1",
              "SELECT name FROM users WHERE id IN (SELECT user_id FROM orders WHERE total > $1)",
              "DELETE FROM users WHERE id = $1", "SELECT pg_sleep($1)", "not sql at all $1"]
for i, line in enumerate(lines):
    d = json.loads(line)
    assert d["id"] == f"q{i}", (i, d["id"])
    assert d["decision"] == expected[i % 5], (i, d)
    assert set(d) >= {"id", "decision", "rule", "sqlstate", "message", "fingerprint", "normalized"}
    assert d["normalized"] == normalized[i % 5], (i, d["normalized"])
print("ids in order, decisions as expected, no literal values in normalized text")
PY
}
run "check --jsonl handles 100,000 lines in order" jsonl_100k

if [ -f "$shared" ]; then
  run "shared corpus: every case gets its expected decision" python3 Tests/corpus/check-cases.py "$shared"
else
  echo "skip shared corpus: $shared is absent"
fi
if [ -f Tests/corpus/palisade-cases.jsonl ]; then
  run "own cases: every rule id and hiding place" python3 Tests/corpus/check-cases.py Tests/corpus/palisade-cases.jsonl
fi
run "cost: texts that were quadratic cost linear instructions (callgrind)" python3 Tests/cost/check-cost-scaling.py "$bin"
run "red-team cases: attacks and real queries (the benign ones were run on PostgreSQL 15 when written)" python3 Tests/corpus/check-cases.py Tests/corpus/redteam-cases.jsonl

run "make demo --smoke: two tenants, a denial, the audit log" env -u PGPORT PALISADE_BIN="$bin" scripts/demo.sh --smoke

proxy_tests() {
  scripts/python-env.sh >/dev/null && .venv/bin/python -m pytest -q -p no:cacheprovider Tests/proxy
}
run "proxy: real clients and the protocol through palisade serve" proxy_tests
run "soak: one minute of mixed load, no errors, descriptors flat" env PALISADE_BIN="$bin" scripts/soak.sh 1

echo "integration: $passed passed, $failed failed"
[ "$failed" = 0 ]
