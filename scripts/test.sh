#!/usr/bin/env bash
# Runs every test: the Rust suite (unit, SQLite and PostgreSQL repositories, the real gateway
# end to end against fake upstreams, the admin CLI), then the official Anthropic Python SDK
# through the real gateway binary. PostgreSQL is expected at 127.0.0.1:5432 (database test,
# trust auth) or at CCP_TEST_DATABASE_URL; without one its tests are skipped loudly.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/ensure-deps.sh

cargo build --workspace --bins
cargo test --workspace

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -r tests/sdk/requirements.txt
CCP_BIN_DIR="$PWD/target/debug" .venv/bin/python -m pytest tests/sdk -q -p no:cacheprovider
