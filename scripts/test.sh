#!/usr/bin/env bash
# Runs every test: the Rust suite (unit, SQLite and PostgreSQL repositories and admin API, the KMS key
# wrapper against moto's local AWS emulator, the real gateway end to end against fake
# Anthropic and Bedrock upstreams, the admin CLI), then the official Anthropic Python SDK
# through the real gateway binary, failover included, and schemathesis against the real admin
# server, the container images (parsed and linted) and the CDK app (synth, assertions,
# cfn-lint, cdk-nag), then the console: type check, unit tests (Vitest), production build, and the browser
# tests in Debian's Chromium against the real admin server and gateway. PostgreSQL is expected at
# 127.0.0.1:5432 (database test, trust auth) or at CCP_TEST_DATABASE_URL. Without one, its
# tests are left out with a banner before and after the run (the Rust summary counts them as
# filtered out, pytest as skipped); under CI=true the run stops instead.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/ensure-deps.sh --browser

# Python side first: moto's server is needed by the Rust KMS test.
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -r tests/sdk/requirements.txt -r cdk/requirements.txt
export CCP_TEST_PYTHON="$PWD/.venv/bin/python"

# PostgreSQL: answer, or be left out loudly (never silently passed).
rust_filter=()
if ! scripts/check-postgres.sh; then
  if [ -n "${CI:-}" ]; then
    echo "test.sh: CI must run the PostgreSQL tests, and no PostgreSQL answers (see above)" >&2
    exit 1
  fi
  export CCP_TEST_POSTGRES=skip
  rust_filter=(-- --skip postgres::)
  banner="################################################################################
# PostgreSQL NOT REACHABLE: every PostgreSQL test is LEFT OUT of this run.
# Start PostgreSQL at 127.0.0.1:5432 (database test) or set CCP_TEST_DATABASE_URL.
################################################################################"
  echo "$banner" >&2
  trap 'echo "$banner" >&2' EXIT
fi

# One feature set for the binaries and the tests (dev-dependencies included), so the
# dependencies are compiled once, not twice.
cargo build --workspace --bins --tests
cargo test --workspace "${rust_filter[@]}"

CCP_BIN_DIR="$PWD/target/debug" .venv/bin/python -m pytest tests/sdk tests/images tests/bench -q -p no:cacheprovider

# The AWS deployment: synthesised without an account, asserted, cfn-lint and cdk-nag.
(
  cd cdk
  JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=1 ../.venv/bin/python -m pytest tests -q -p no:cacheprovider
)

# The console (telemetry off: it would call out).
export NEXT_TELEMETRY_DISABLED=1
(
  cd console
  npm ci --no-audit --no-fund --loglevel=error
  npx tsc --noEmit
  npx vitest run
  npm run build
  CCP_BIN_DIR="$PWD/../target/debug" node --test --test-concurrency=1 e2e/
)
