#!/usr/bin/env bash
# Exits 0 when the test PostgreSQL answers a query, 1 (with the reason) when it does not.
# The address is CCP_TEST_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/test.
set -uo pipefail
url="${CCP_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}"
# Shown without a password, if the URL has one.
shown=$(printf '%s' "$url" | sed -E 's#(//[^:/@]*):[^@]*@#\1:***@#')
if ! command -v psql >/dev/null 2>&1; then
  echo "check-postgres: psql is not installed (scripts/ensure-deps.sh installs it)" >&2
  exit 1
fi
if ! out=$(PGCONNECT_TIMEOUT=5 psql "$url" -XAtqc 'select 1' 2>&1) || [ "$out" != 1 ]; then
  echo "check-postgres: no PostgreSQL answers at $shown: $out" >&2
  exit 1
fi
