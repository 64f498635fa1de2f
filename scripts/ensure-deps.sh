#!/usr/bin/env bash
# Installs what building and testing ClaudeCodeProxy needs on a fresh Debian/Ubuntu machine:
# cmake and a C compiler (Pingora's zlib-ng build runs cmake), Python's venv module, and psql
# (scripts/check-postgres.sh asks the test PostgreSQL whether it answers).
# A Rust toolchain (rustup, stable >= 1.88) must already be there.
set -euo pipefail

need=()
command -v cmake >/dev/null 2>&1 || need+=(cmake)
command -v cc >/dev/null 2>&1 || need+=(build-essential)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need+=(python3-venv)
command -v psql >/dev/null 2>&1 || need+=(postgresql-client)

if ((${#need[@]})); then
  echo "ensure-deps: installing ${need[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "ensure-deps: no Rust toolchain found; install rustup (https://rustup.rs) and re-run" >&2
  exit 1
fi
