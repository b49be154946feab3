#!/usr/bin/env bash
# Stops the LocalStack that start.sh started (its whole process group).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/env.sh"
pidfile="$LOCAL_DIR/localstack.pid"
[ -f "$pidfile" ] || exit 0
pid=$(cat "$pidfile")
kill -TERM -- "-$pid" 2>/dev/null || true
for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
rm -f "$pidfile"
