#!/usr/bin/env bash
# The one command for the side-by-side table: builds the release binaries, installs the load
# tools (nginx from Debian, oha from crates.io) and runs benches/load/bench.py, which measures
# direct, nginx, bare Pingora, bare Pingora with the gateway's metering row (Pingora's floor
# with metering on) and the gateway in one run and prints the ratios against the targets.
# Pass bench.py options through, e.g. --duration 20 --connections 64 --rounds 3 (each target
# measured three times per scenario, in turns, and the medians compared).
# `benches/load/run.sh --scale [scale.py options]` runs the scale benchmark instead (1 000 slow
# streams, 10 000 idle keep-alive connections).
set -euo pipefail
cd "$(dirname "$0")/../.."

scripts/ensure-deps.sh
if ! command -v nginx >/dev/null 2>&1; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq nginx-light >/dev/null
fi
command -v oha >/dev/null 2>&1 || cargo install oha --locked
cargo build --release --bins --examples
if [ "${1:-}" = "--scale" ]; then
  shift
  exec python3 benches/load/scale.py "$@"
fi
exec python3 benches/load/bench.py "$@"
