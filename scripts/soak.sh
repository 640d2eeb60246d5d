#!/usr/bin/env bash
# scripts/soak.sh MINUTES: mixed load through `palisade serve` against a throwaway PostgreSQL (simple
# and extended queries, denials, pipelines, cancels, reconnects, TLS and plain, two tenants), then
# tps, errors, and Palisade's resident memory and open descriptors at start and end.
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:?usage: scripts/soak.sh MINUTES}
if [ -z "${PGPORT:-}" ]; then
  exec scripts/with-postgres.sh "$0" "$@"
fi
scripts/python-env.sh >/dev/null
exec .venv/bin/python scripts/soak.py "$minutes"
