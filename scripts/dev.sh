#!/usr/bin/env bash
# `make dev`: the whole system in the foreground. Ctrl-C stops the server and, if this script
# started it, LocalStack too (a LocalStack that was already running is left alone).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
./scripts/ensure-postgres.sh
pidfile="$root/.local/localstack.pid"
started_localstack=0
[ -f "$pidfile" ] || started_localstack=1
./localstack/start.sh >/dev/null
[ -f "$pidfile" ] || started_localstack=0
cleanup() {
  if [ "$started_localstack" = 1 ]; then
    echo "stopping LocalStack"
    ./localstack/stop.sh
  fi
}
trap cleanup EXIT
cargo build --profile local -p hypervisor-local
"${CARGO_TARGET_DIR:-target}/local/hypervisor-local" &
server=$!
trap 'kill -INT $server 2>/dev/null' INT TERM
wait $server || true
