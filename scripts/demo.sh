#!/usr/bin/env bash
# A short tour of Palisade's policy engine: what an LLM agent may run, and what it is told otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=.build/release/palisade

tour() {
  local profile=$1 sql=$2
  printf '\n$ palisade check --policy Policies/%s.yaml "%s"\n' "$profile" "$sql"
  "$bin" check --policy "Policies/$profile.yaml" "$sql" || true
}

tour readonly "SELECT region, sum(amount) FROM orders WHERE placed_at > now() - interval '7 days' GROUP BY 1"
tour readonly "DROP TABLE orders"
tour readonly "SELECT * FROM users WHERE id = 1; DELETE FROM audit_log"
tour readonly "SELECT id FROM users ORDER BY set_config('statement_timeout', '0', false)"
tour readonly "WITH gone AS (DELETE FROM orders RETURNING *) SELECT count(*) FROM gone"
tour readonly "SELECT * FROM pg_catalog.pg_authid"
tour analyst "SELECT c.relname FROM pg_catalog.pg_class c WHERE pg_catalog.pg_table_is_visible(c.oid)"
printf '\nBatch mode: printf %s | palisade check --jsonl\n' "'{\"id\":\"1\",\"sql\":\"SELECT 1\"}\n'"
printf '{"id":"1","sql":"SELECT 1"}\n{"id":"2","sql":"COPY users TO STDOUT"}\n' | "$bin" check --jsonl
