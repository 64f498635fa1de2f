#!/usr/bin/env bash
# Installs what building and testing ClaudeCodeProxy needs on a fresh Debian/Ubuntu machine:
# cmake and a C compiler (Pingora's zlib-ng build runs cmake), Python's venv module, and psql
# (scripts/check-postgres.sh asks the test PostgreSQL whether it answers), Node.js >= 20.9 for the
# console, and with --browser Debian's Chromium for the console's browser tests (browsers cannot
# be downloaded by the test tools here).
# A Rust toolchain (rustup, stable >= 1.88) must already be there.
set -euo pipefail

need=()
command -v cmake >/dev/null 2>&1 || need+=(cmake)
command -v cc >/dev/null 2>&1 || need+=(build-essential)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need+=(python3-venv)
command -v psql >/dev/null 2>&1 || need+=(postgresql-client)
node_ok() { node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=9)?0:1)' 2>/dev/null; }
node_ok || need+=(nodejs npm)
if [ "${1:-}" = "--browser" ] && [ ! -x "${CCP_CHROMIUM:-/usr/bin/chromium}" ]; then
  need+=(chromium)
fi

if ((${#need[@]})); then
  echo "ensure-deps: installing ${need[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi

if ! node_ok; then
  echo "ensure-deps: the console needs Node.js >= 20.9 (found: $(node --version 2>/dev/null || echo none)); install it and re-run" >&2
  exit 1
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "ensure-deps: no Rust toolchain found; install rustup (https://rustup.rs) and re-run" >&2
  exit 1
fi
