#!/usr/bin/env bash
# The login storm of BENCHMARKS.md §6: eight clients logging in as fast as they can for ten
# seconds against one local server process (API only), then its resident memory.
#   scripts/login-storm.sh [server binary]   → one line: logins, VmRSS and VmHWM in MiB
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-$root/target/debug/hypervisor-local}
port=${STORM_PORT:-3950}
seconds=${STORM_SECONDS:-10}
clients=${STORM_CLIENTS:-8}
server=postgres://postgres@127.0.0.1:5432
db=hypervisor_storm
psql -qX "$server/postgres" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db" >/dev/null
LOCAL_ROLE=api PORT=$port DATABASE_URL=$server/$db QUEUE_URL= TEMPLATE=$root/template.yaml \
  JWT_SECRET=login-storm-secret-at-least-32-bytes-long RATE_LIMIT_PER_MINUTE=1000000 \
  AUTH_RATE_LIMIT_PER_MINUTE=1000000 DB_MAX_CONNECTIONS=10 RUST_LOG=error \
  "$bin" >"$root/target/login-storm.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do curl -fsS "http://127.0.0.1:$port/openapi.json" >/dev/null 2>&1 && break; sleep 0.2; done
logins=$(python3 - "$port" "$seconds" "$clients" <<'PY'
import json, sys, threading, time, urllib.request
port, seconds, clients = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
base = f"http://127.0.0.1:{port}/api/v1/auth"
def post(path, body):
    req = urllib.request.Request(base + path, json.dumps(body).encode(), {"content-type": "application/json"})
    try:
        return urllib.request.urlopen(req, timeout=60).status
    except urllib.error.HTTPError as e:
        return e.code
assert post("/register", {"username": "storm", "email": "storm@example.com", "password": "Correct-Horse-9"}) == 201
done, stop = [0], time.time() + seconds
def client():
    while time.time() < stop:
        if post("/login", {"username": "storm", "password": "Correct-Horse-9"}) == 200:
            done[0] += 1
threads = [threading.Thread(target=client) for _ in range(clients)]
for t in threads: t.start()
for t in threads: t.join()
print(done[0])
PY
)
rss=$(awk '/^VmRSS/ {print int($2/1024)}' "/proc/$pid/status")
hwm=$(awk '/^VmHWM/ {print int($2/1024)}' "/proc/$pid/status")
echo "logins=$logins rss_mib=$rss peak_rss_mib=$hwm"
