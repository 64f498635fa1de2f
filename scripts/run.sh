#!/usr/bin/env bash
# Builds ClaudeCodeProxy and runs the gateway on its embedded defaults: SQLite and the pepper
# in ./data, listening on CCP_GATEWAY_ADDR (default 0.0.0.0:8080), Plan upstream
# https://api.anthropic.com. Any CCP_* variable (docs/configuration.md) overrides a default.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/ensure-deps.sh
cargo build --release --bins

export CCP_DATA_DIR="${CCP_DATA_DIR:-$PWD/data}"
addr="${CCP_GATEWAY_ADDR:-0.0.0.0:8080}"
cat <<MSG

ClaudeCodeProxy gateway on ${addr} (data in ${CCP_DATA_DIR}).
Issue an access key from another shell:
  CCP_DATA_DIR=${CCP_DATA_DIR} target/release/ccp-admin user create --name "Ada" --email ada@example.com
  CCP_DATA_DIR=${CCP_DATA_DIR} target/release/ccp-admin key issue --user ada@example.com
Then point Claude Code at it:
  ANTHROPIC_BASE_URL=http://localhost:${addr##*:}/ak/<access key> CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 claude

MSG
exec target/release/ccp-gateway
