#!/usr/bin/env bash
# Installs what a fresh Debian 12 machine lacks to build, test and demo Palisade.
set -euo pipefail

packages=(libpg-query-dev postgresql postgresql-contrib pgbouncer make openssl ca-certificates openjdk-17-jre-headless libpostgresql-jdbc-java chromium valgrind)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done

if ((${#missing[@]})); then
  sudo=()
  [ "$(id -u)" = 0 ] || sudo=(sudo)
  echo "installing: ${missing[*]}"
  "${sudo[@]}" apt-get update
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}"
fi

command -v swift >/dev/null || { echo "swift (6.x) is required on PATH" >&2; exit 1; }
