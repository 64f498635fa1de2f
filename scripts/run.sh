#!/usr/bin/env bash
# Builds ClaudeCodeProxy and runs it on its embedded defaults: the gateway on
# CCP_GATEWAY_ADDR (default 0.0.0.0:8080) and the admin REST API on CCP_ADMIN_ADDR (default
# 127.0.0.1:8081), sharing SQLite, the pepper and the session key in ./data. Plan upstream
# https://api.anthropic.com. The admin console runs on CCP_CONSOLE_ADDR (default
# 127.0.0.1:3000) over that API. Any CCP_* variable (docs/configuration.md) overrides a default.
# Ctrl-C stops all three.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/ensure-deps.sh
cargo build --release --bins
(
  cd console
  export NEXT_TELEMETRY_DISABLED=1
  npm ci --no-audit --no-fund --loglevel=error
  npm run build >/dev/null
)

export CCP_DATA_DIR="${CCP_DATA_DIR:-$PWD/data}"
gateway_addr="${CCP_GATEWAY_ADDR:-0.0.0.0:8080}"
admin_addr="${CCP_ADMIN_ADDR:-127.0.0.1:8081}"
console_addr="${CCP_CONSOLE_ADDR:-127.0.0.1:3000}"
gateway_port="${gateway_addr##*:}"

# Migrations first, so the two processes do not both apply them.
target/release/ccp-admin migrate >/dev/null

target/release/ccp-admin-server &
admin_pid=$!
target/release/ccp-gateway &
gateway_pid=$!
CCP_CONSOLE_ADMIN_API_URL="${CCP_CONSOLE_ADMIN_API_URL:-http://${admin_addr}}" \
  CCP_CONSOLE_GATEWAY_URL="${CCP_CONSOLE_GATEWAY_URL:-http://localhost:${gateway_port}}" \
  NEXT_TELEMETRY_DISABLED=1 NODE_ENV=production \
  HOSTNAME="${console_addr%:*}" PORT="${console_addr##*:}" \
  node console/.next/standalone/server.js >"${CCP_DATA_DIR}/console.log" 2>&1 &
console_pid=$!
trap 'kill -TERM "$admin_pid" "$gateway_pid" "$console_pid" 2>/dev/null; wait' EXIT INT TERM

cat <<MSG

ClaudeCodeProxy is running (data in ${CCP_DATA_DIR}):
  gateway    http://${gateway_addr}   (Claude Code: ANTHROPIC_BASE_URL=http://<host>:${gateway_port}/ak/<access key>)
  admin API  http://${admin_addr}/admin   (OpenAPI: http://${admin_addr}/admin/openapi.json)
  console    http://${console_addr}

Create the first admin from another shell (the password, 12+ characters, is read from stdin):
  CCP_DATA_DIR=${CCP_DATA_DIR} target/release/ccp-admin admin create --username admin
then sign in to the console at http://${console_addr} to add users and issue their keys.

MSG
# Stop all when any exits.
wait -n "$admin_pid" "$gateway_pid" "$console_pid"
