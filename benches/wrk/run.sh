#!/usr/bin/env bash
# Runs the three wrk scenarios (30 KB JSON, 150 KB JSON, 30 KB streamed) against a running
# gateway. The base URL is what ANTHROPIC_BASE_URL would be: the gateway and the access key.
#
#   benches/wrk/run.sh 'http://127.0.0.1:8080/ak/<access key>' [duration s] [connections] [threads]
#
# The gateway passes every request to its Plan upstream: point that at ccp-fake-upstream
# (CCP_PLAN_BASE_URL), never at the real Anthropic API, or each request is a paid call.
# CCP_BENCH_API_KEY sets the client credential sent (default: sk-ant-bench).
set -euo pipefail

base=${1:?usage: benches/wrk/run.sh <base url with /ak/<key>> [duration s] [connections] [threads]}
duration=${2:-20}
connections=${3:-32}
threads=${4:-2}
here=$(cd "$(dirname "$0")" && pwd)

if ! command -v wrk >/dev/null 2>&1; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq wrk >/dev/null
fi

url="${base%/}/v1/messages?beta=true"
for scenario in messages_30k messages_150k stream_30k; do
  echo "== $scenario: $connections connections, $threads threads, ${duration}s"
  wrk --latency -t"$threads" -c"$connections" -d"${duration}s" -s "$here/$scenario.lua" "$url" \
    | sed -e 's#/ak/[^/ ]*#/ak/<key>#g'
done
