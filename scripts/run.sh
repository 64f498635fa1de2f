#!/usr/bin/env bash
# Builds ClaudeCodeProxy and runs it on its embedded defaults: the gateway on
# CCP_GATEWAY_ADDR (default 0.0.0.0:8080) and the admin REST API on CCP_ADMIN_ADDR (default
# 127.0.0.1:8081), sharing SQLite, the pepper and the session key in ./data. Plan upstream
# https://api.anthropic.com. Any CCP_* variable (docs/configuration.md) overrides a default.
# Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/ensure-deps.sh
cargo build --release --bins

export CCP_DATA_DIR="${CCP_DATA_DIR:-$PWD/data}"
gateway_addr="${CCP_GATEWAY_ADDR:-0.0.0.0:8080}"
admin_addr="${CCP_ADMIN_ADDR:-127.0.0.1:8081}"

# Migrations first, so the two processes do not both apply them.
target/release/ccp-admin migrate >/dev/null

target/release/ccp-admin-server &
admin_pid=$!
target/release/ccp-gateway &
gateway_pid=$!
trap 'kill -TERM "$admin_pid" "$gateway_pid" 2>/dev/null; wait' EXIT INT TERM

cat <<MSG

ClaudeCodeProxy is running (data in ${CCP_DATA_DIR}):
  gateway    http://${gateway_addr}   (Claude Code: ANTHROPIC_BASE_URL=http://<host>:${gateway_addr##*:}/ak/<access key>)
  admin API  http://${admin_addr}/admin   (OpenAPI: http://${admin_addr}/admin/openapi.json)

Create the first admin from another shell (the password, 12+ characters, is read from stdin):
  CCP_DATA_DIR=${CCP_DATA_DIR} target/release/ccp-admin admin create --username admin
Then log in and use the API:
  curl -s -X POST http://${admin_addr}/admin/auth/login -H 'content-type: application/json' \\
       -d '{"username":"admin","password":"<password>"}'
Or issue a key from the command line:
  CCP_DATA_DIR=${CCP_DATA_DIR} target/release/ccp-admin user create --name "Ada" --email ada@example.com
  CCP_DATA_DIR=${CCP_DATA_DIR} target/release/ccp-admin key issue --user ada@example.com

MSG
# Stop both when either exits.
wait -n "$admin_pid" "$gateway_pid"
