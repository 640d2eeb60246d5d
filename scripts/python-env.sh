#!/usr/bin/env bash
# Creates .venv with the client libraries the proxy tests drive (from PyPI).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check psycopg2-binary "psycopg[binary]" asyncpg sqlalchemy pytest \
  langchain-community pandas mcp
