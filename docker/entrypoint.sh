#!/bin/sh
# First start: create the audit signing key, a TLS certificate and one API key per tenant in
# PALISADE_DEMO_TENANTS, in the secrets volume; print the verifier key and the API keys once.
set -eu
secrets=/var/lib/palisade/secrets
if [ ! -f "$secrets/audit.key" ]; then
  palisade audit keygen --out "$secrets/audit.key" --name "${PALISADE_AUDIT_ORIGIN:-palisade}" >"$secrets/audit.vkey"
  echo "palisade: audit verifier key (give it to reviewers): $(cat "$secrets/audit.vkey")"
fi
if [ ! -f "$secrets/server.crt" ]; then
  openssl req -x509 -newkey rsa:2048 -nodes -days 365 -subj "/CN=palisade" \
    -keyout "$secrets/server.key" -out "$secrets/server.crt" 2>/dev/null
fi
if [ ! -f "$secrets/keys.yaml" ]; then
  for tenant in ${PALISADE_DEMO_TENANTS:-}; do
    echo "palisade: API key for tenant $tenant: $(palisade keys create --tenant "$tenant" --profile agent --keys-file "$secrets/keys.yaml" 2>/dev/null)"
  done
fi
exec palisade "$@"
