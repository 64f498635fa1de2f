#!/usr/bin/env bash
# Runs every test: the Rust suite (unit, SQLite and PostgreSQL repositories and admin API, the KMS key
# wrapper against moto's local AWS emulator, the real gateway end to end against fake
# Anthropic and Bedrock upstreams, the admin CLI), then the official Anthropic Python SDK
# through the real gateway binary, failover included, and schemathesis against the real admin
# server. PostgreSQL is expected at
# 127.0.0.1:5432 (database test, trust auth) or at CCP_TEST_DATABASE_URL; without one its
# tests are skipped loudly.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/ensure-deps.sh

# Python side first: moto's server is needed by the Rust KMS test.
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -r tests/sdk/requirements.txt
export CCP_TEST_PYTHON="$PWD/.venv/bin/python"

# One feature set for the binaries and the tests (dev-dependencies included), so the
# dependencies are compiled once, not twice.
cargo build --workspace --bins --tests
cargo test --workspace

CCP_BIN_DIR="$PWD/target/debug" .venv/bin/python -m pytest tests/sdk -q -p no:cacheprovider
