#!/usr/bin/env bash
# Builds the release binaries, installs the load tools (nginx from Debian, oha from crates.io)
# and runs the load benchmark. Pass bench.py options through, e.g. --duration 20.
set -euo pipefail
cd "$(dirname "$0")/../.."

scripts/ensure-deps.sh
if ! command -v nginx >/dev/null 2>&1; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq nginx-light >/dev/null
fi
command -v oha >/dev/null 2>&1 || cargo install oha --locked
cargo build --release --bins --examples
exec python3 benches/load/bench.py "$@"
