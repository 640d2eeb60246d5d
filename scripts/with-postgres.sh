#!/usr/bin/env bash
# Runs a command beside a throwaway PostgreSQL 15 in a temporary directory on loopback, then
# removes it. The command sees PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE (a superuser)
# and PALISADE_TEST_PGDATA.
set -euo pipefail

# Settings of another server (or an empty PGPORT) would leak into initdb and the server.
unset PGHOST PGPORT PGUSER PGPASSWORD PGDATABASE
pg_bin=/usr/lib/postgresql/15/bin
[ -x "$pg_bin/postgres" ] || { echo "PostgreSQL 15 is not installed (run scripts/install-deps.sh)" >&2; exit 1; }

dir=$(mktemp -d /tmp/palisade-pg.XXXXXX)
chmod 755 "$dir"
run_as=()
if [ "$(id -u)" = 0 ]; then
  # postgres refuses to run as root.
  chown postgres: "$dir"
  run_as=(runuser -u postgres --)
fi

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
password=postgres
printf '%s\n' "$password" > "$dir/pwfile"
[ "$(id -u)" = 0 ] && chown postgres: "$dir/pwfile"

cleanup() {
  "${run_as[@]}" "$pg_bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT

"${run_as[@]}" "$pg_bin/initdb" -D "$dir/data" -U postgres --pwfile="$dir/pwfile" \
  --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
  || { cat "$dir/initdb.log" >&2; exit 1; }
# A self-signed certificate, so that TLS to the server can be tested (plain connections still work).
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=localhost" -keyout "$dir/server.key" -out "$dir/server.crt" >/dev/null 2>&1
chmod 600 "$dir/server.key"
[ "$(id -u)" = 0 ] && chown postgres: "$dir/server.key" "$dir/server.crt"
"${run_as[@]}" "$pg_bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
  -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200 -c shared_preload_libraries=pg_stat_statements -c ssl=on -c ssl_cert_file=$dir/server.crt -c ssl_key_file=$dir/server.key" \
  start >/dev/null || { cat "$dir/server.log" >&2; exit 1; }

export PGHOST=127.0.0.1 PGPORT=$port PGUSER=postgres PGPASSWORD=$password PGDATABASE=postgres
export PALISADE_TEST_PGDATA=$dir/data PALISADE_TEST_PG_CERT=$dir/server.crt
echo "throwaway PostgreSQL $("$pg_bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port"
"$@"
