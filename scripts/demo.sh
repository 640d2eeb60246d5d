#!/usr/bin/env bash
# `make demo`: a throwaway PostgreSQL 15 with the multi-tenant demo schema (docker/demo.sql) and
# Palisade in front of it on 127.0.0.1:6432. Prints psql command lines for two tenants and a short
# tour; Ctrl-C stops everything and removes it. With --smoke, runs the tour, checks it, and exits.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${PGPORT:-}" ]; then
  exec scripts/with-postgres.sh "$0" "$@"
fi

smoke=false
[ "${1:-}" = "--smoke" ] && smoke=true
bin=${PALISADE_BIN:-.build/release/palisade}
state=$(mktemp -d /tmp/palisade-demo.XXXXXX)
palisade_pid=
cleanup() {
  [ -n "$palisade_pid" ] && kill "$palisade_pid" 2>/dev/null && wait "$palisade_pid" 2>/dev/null
  rm -rf "$state"
}
trap cleanup EXIT
trap 'echo; echo "stopping"; exit 0' INT TERM

app_password=$(openssl rand -hex 16)
psql -X -q -c "CREATE DATABASE demo"
psql -X -q -d demo -v app_password="'$app_password'" -f docker/demo.sql >/dev/null

"$bin" audit keygen --out "$state/audit.key" --name demo.palisade >"$state/audit.vkey" 2>/dev/null
acme=$("$bin" keys create --tenant acme --profile agent --keys-file "$state/keys.yaml" 2>/dev/null)
globex=$("$bin" keys create --tenant globex --profile agent --keys-file "$state/keys.yaml" 2>/dev/null)
analyst=$("$bin" keys create --tenant acme --profile analyst --keys-file "$state/keys.yaml" 2>/dev/null)

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# The tour listens on 6432 unless it is taken; the smoke test on any free port. Another process can
# take a port between the check and Palisade's bind (two CI runs on one machine did), so a bind
# that fails with "Address already in use" is retried on a fresh port.
if $smoke; then port=$(free_port); else port=${PALISADE_DEMO_PORT:-6432}; fi
for attempt in 1 2 3 4 5; do
  if python3 -c "import socket,sys; s=socket.socket(); sys.exit(s.connect_ex(('127.0.0.1', $port)) != 0)"; then
    taken=$port port=$(free_port)
    $smoke || echo "127.0.0.1:$taken is in use; Palisade listens on 127.0.0.1:$port instead"
  fi
  "$bin" serve --listen "127.0.0.1:$port" --backend "postgres://palisade_app:$app_password@$PGHOST:$PGPORT/demo" \
    --api-keys "$state/keys.yaml" --tls-mode disable --audit-dir "$state/audit" --audit-key "$state/audit.key" \
    --audit-checkpoint-seconds 1 >"$state/palisade.log" 2>&1 &
  palisade_pid=$!
  for _ in $(seq 1200); do  # up to two minutes: a loaded machine may start a debug build slowly
    grep -q listening "$state/palisade.log" && break 2
    kill -0 "$palisade_pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$palisade_pid" 2>/dev/null; then
    echo "Palisade did not start listening within two minutes:"
    cat "$state/palisade.log"
    exit 1
  fi
  wait "$palisade_pid" 2>/dev/null || true
  palisade_pid=
  if [ "$attempt" -lt 5 ] && grep -q "Address already in use" "$state/palisade.log"; then
    echo "127.0.0.1:$port was taken before Palisade could bind it; trying another port"
    port=$(free_port)
    continue
  fi
  cat "$state/palisade.log"
  exit 1
done

connect() { echo "PGPASSWORD=$1 psql \"host=127.0.0.1 port=$port user=$2 dbname=demo sslmode=disable\""; }
# The MCP front door takes serve's settings; each process writes its own audit log (one writer per log).
backend="postgres://palisade_app:$app_password@$PGHOST:$PGPORT/demo"
mcp_stdio() { echo "PALISADE_CREDENTIAL=$1 $bin mcp --backend '$backend' --api-keys $state/keys.yaml --audit-dir $state/audit-mcp-$2 --audit-key $state/audit.key"; }
cat <<TXT

Palisade is running on 127.0.0.1:$port in front of a throwaway PostgreSQL with two tenants.

  tenant acme (LLM agent profile):    $(connect "$acme" agent)
  tenant globex (LLM agent profile):  $(connect "$globex" agent)
  tenant acme (analyst, psql \\d):     $(connect "$analyst" analyst)

MCP (Claude Desktop, Cursor, any MCP client), the same firewall as tools query, list_tables, describe_table, check:
  tenant acme over stdio:    $(mcp_stdio "$acme" acme)
  tenant globex over stdio:  $(mcp_stdio "$globex" globex)
  Streamable HTTP:           $bin mcp --mcp-listen 127.0.0.1:8808 --tls-mode disable --backend '$backend' --api-keys $state/keys.yaml --audit-dir $state/audit-mcp-http --audit-key $state/audit.key
                             then http://127.0.0.1:8808/mcp with Authorization: Bearer <a key above>

A short tour:
  SELECT count(*), sum(amount) FROM orders;        -- acme sees 120 orders, globex 80: row-level security
  SELECT * FROM orders WHERE tenant_id = 'globex';  -- as acme: zero rows
  DROP TABLE orders;                               -- denied: ERROR 42501 with rule, request id and hint
  $bin audit list --decision deny $state/audit
  $bin audit verify --key '$(cat "$state/audit.vkey")' $state/audit

TXT

if ! $smoke; then
  echo "Ctrl-C stops Palisade and PostgreSQL and removes everything."
  wait "$palisade_pid"
  exit 0
fi

failures=0
expect() {
  local name=$1 pattern=$2
  shift 2
  local out
  out=$("$@" 2>&1) || true
  if grep -q -- "$pattern" <<<"$out"; then echo "ok   $name"; else echo "FAIL $name"; sed 's/^/     /' <<<"$out"; failures=$((failures + 1)); fi
}
q() { PGPASSWORD=$1 psql -X -At "host=127.0.0.1 port=$port user=$2 dbname=demo sslmode=disable" -c "$3"; }
expect "acme sees its 120 orders" "^120$" q "$acme" agent "SELECT count(*) FROM orders"
expect "globex sees its 80 orders" "^80$" q "$globex" agent "SELECT count(*) FROM orders"
expect "acme reads none of globex's rows" "^0$" q "$acme" agent "SELECT count(*) FROM orders WHERE tenant_id = 'globex'"
expect "DROP TABLE is denied with its rule" "rule stmt.ddl" q "$acme" agent "DROP TABLE orders"
expect "analysts can describe tables" "orders" q "$analyst" analyst "\\dt"
# An agent over MCP: initialize, then one query, answered as JSON (the line printed above, run as printed).
mcp_query() {
  python3 - "$1" <<'PY'
import json, subprocess, sys
agent = subprocess.Popen(sys.argv[1], shell=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
def send(message):
    agent.stdin.write(json.dumps(message) + "\n"); agent.stdin.flush()
send({"jsonrpc": "2.0", "id": 1, "method": "initialize",
      "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "demo", "version": "1"}}})
send({"jsonrpc": "2.0", "method": "notifications/initialized"})
send({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "query", "arguments": {"sql": "SELECT count(*) FROM orders"}}})
for line in agent.stdout:
    answer = json.loads(line)
    if answer.get("id") == 2:
        print(answer["result"]["content"][0]["text"])
        break
agent.stdin.close(); agent.wait()
PY
}
expect "an agent over MCP (stdio) sees acme's 120 orders" '"rows":\[\[120\]\]' mcp_query "$(mcp_stdio "$acme" acme)"
sleep 1.5
expect "the denial is in the audit log" "stmt.ddl" "$bin" audit list --decision deny "$state/audit"
if "$bin" audit verify --key "$(cat "$state/audit.vkey")" "$state/audit" >"$state/verify.out" 2>&1; then
  echo "ok   the audit log verifies with the reviewers' key"
else
  echo "FAIL the audit log verifies with the reviewers' key"; sed 's/^/     /' "$state/verify.out"; failures=$((failures + 1))
fi
echo "demo smoke: $((8 - failures)) passed, $failures failed"
[ "$failures" = 0 ]
