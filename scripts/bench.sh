#!/usr/bin/env bash
# `make bench`: runs every benchmark and writes the figures into BENCHMARKS.md.
#
#   1. the pure scheduling algorithm (criterion)          benches/benches/scheduler_plan.rs
#   2. scheduling throughput on PostgreSQL                 benches/benches/scheduler_throughput.rs
#   3. API load with wrk against the local server          this script
#   4. cold start and size of the function bootstraps      benches/benches/cold_start.rs
#   5. submit-to-running latency through HTTP→PG→SQS      benches/benches/submit_to_running.rs
#   9. the event feed's idle long-poll, webhook delivery    benches/benches/events_and_webhooks.rs
#  10. scale: the sweep's fan-out, 1/2/4 consumers, history benches/benches/scale_out.rs
#
# Everything is built first, then measured, so compilation does not overlap the measurements.
# The generated part of BENCHMARKS.md sits between the BEGIN/END GENERATED markers; text outside
# them (the analysis) is kept.
#
# Settings (environment; defaults in brackets):
#   BENCH_PG            PostgreSQL server URL [postgres://postgres@127.0.0.1:5432]
#   BENCH_PORT          port of the local server started for 3 and 5 [3900]
#   BENCH_QUEUE_NAME    SQS queue the server consumes [hypervisor-bench]: its own, so that a
#                       `make dev` running on this machine cannot take its messages
#   BENCH_BOOTSTRAPS    release (cargo build --release → target/release/<bin>) or lambda
#                       (cargo lambda build --release → target/lambda/<bin>/bootstrap) [release]
#   WRK_DURATION, WRK_THREADS, WRK_CONNECTIONS   [15s, 2, 8]
#   LATENCY_SUBMISSIONS [100]   COLD_START_RUNS [20]   FEED_WAITERS [20]   DELIVERIES [50]
#   BENCH_ONLY          space-separated subset of: plan throughput api cold_start latency events scale
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
export PATH="$root/.local/venv/bin:$PATH"
export SQLX_OFFLINE=true
export AWS_ENDPOINT_URL=${AWS_ENDPOINT_URL:-http://127.0.0.1:4566}
export AWS_REGION=${AWS_REGION:-us-east-1}
export AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-test}
export AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-test}
BENCH_PG=${BENCH_PG:-postgres://postgres@127.0.0.1:5432}
BENCH_PORT=${BENCH_PORT:-3900}
BENCH_QUEUE_NAME=${BENCH_QUEUE_NAME:-hypervisor-bench}
BENCH_BOOTSTRAPS=${BENCH_BOOTSTRAPS:-release}
WRK_DURATION=${WRK_DURATION:-15s}
WRK_THREADS=${WRK_THREADS:-2}
WRK_CONNECTIONS=${WRK_CONNECTIONS:-8}
BENCH_ONLY=${BENCH_ONLY:-plan throughput api cold_start latency events scale}
export BENCH_DATABASE_URL=$BENCH_PG
export LATENCY_SUBMISSIONS=${LATENCY_SUBMISSIONS:-100}
export COLD_START_RUNS=${COLD_START_RUNS:-20}

out=$root/target/bench
export BENCH_REPORT_DIR=$out/report
mkdir -p "$BENCH_REPORT_DIR"
FUNCTIONS=(auth organizations clusters deployments docs scheduler)
api_db=hypervisor_bench_api
base=http://127.0.0.1:$BENCH_PORT
server_pid=
queue_url=
webhook_queue_url=

log() { printf '\nbench: %s\n' "$*" >&2; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }
wanted() { [[ " $BENCH_ONLY " == *" $1 "* ]]; }
started_at=$(date +%s)
# A run of a subset (BENCH_ONLY) keeps the other sections of the last full run, dated.
declare -A section=([plan]=1 [throughput]=2 [api]=3 [cold_start]=4 [latency]=5 [events]=9 [scale]=10)
rerun_sections=
for name in $BENCH_ONLY; do
  [ -n "${section[$name]:-}" ] || die "unknown benchmark in BENCH_ONLY: $name"
  rm -f "$BENCH_REPORT_DIR/${section[$name]}"_*.md
  rerun_sections+="${section[$name]} "
done
# Sections not rerun and not in the report folder (a fresh clone) come from BENCHMARKS.md,
# keeping the time they were measured.
python3 - "$root/BENCHMARKS.md" "$BENCH_REPORT_DIR" "$rerun_sections" <<'PY'
import glob, os, re, sys, calendar, time
path, report_dir, rerun = sys.argv[1], sys.argv[2], set(sys.argv[3].split())
text = open(path).read() if os.path.exists(path) else ""
for m in re.finditer(r"(### (\d+)\. .*?)\n_Section measured (\d{4}-\d\d-\d\d \d\d:\d\d) UTC\._", text, re.S):
    body, number, measured = m.groups()
    if number in rerun or glob.glob(f"{report_dir}/{number}_*.md"):
        continue
    out = f"{report_dir}/{number}_from_benchmarks_md.md"
    open(out, "w").write(body.rstrip("\n") + "\n")
    stamp = calendar.timegm(time.strptime(measured, "%Y-%m-%d %H:%M"))
    os.utime(out, (stamp, stamp))
PY

cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  for url in "$queue_url" "$webhook_queue_url"; do
    [ -n "$url" ] || continue
    aws --endpoint-url "$AWS_ENDPOINT_URL" --region "$AWS_REGION" sqs delete-queue --queue-url "$url" >/dev/null 2>&1 || true
  done
  psql -q "$BENCH_PG/postgres" -c "DROP DATABASE IF EXISTS $api_db WITH (FORCE)" >/dev/null 2>&1 || true
}
trap cleanup EXIT

# --- services and tools ------------------------------------------------------------------------
log "services: PostgreSQL and LocalStack"
DATABASE_URL="$BENCH_PG/postgres" ./scripts/ensure-postgres.sh
./localstack/start.sh >/dev/null
if wanted api && ! command -v wrk >/dev/null; then
  log "installing wrk (Debian package)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq wrk >/dev/null
fi

# --- builds (all before any measurement) -------------------------------------------------------
log "building the benches (bench profile = release: lto thin, codegen-units 1)"
cargo bench -p hypervisor-benches --no-run
if wanted api || wanted latency || wanted events; then
  log "building the local server (cargo build --profile local -p hypervisor-local)"
  cargo build --profile local -p hypervisor-local
fi
if wanted cold_start; then
  packages=()
  for f in "${FUNCTIONS[@]}"; do packages+=(-p "$f"); done
  case $BENCH_BOOTSTRAPS in
    release)
      log "building the function binaries (cargo build --release --bins)"
      cargo build --release --bins "${packages[@]}"
      cold_start_dir=target/release ;;
    lambda)
      log "building the bootstraps (cargo lambda build --release)"
      CARGO_LAMBDA_COMPILER=cargo cargo lambda build --release "${packages[@]}"
      cold_start_dir=target/lambda ;;
    *) die "BENCH_BOOTSTRAPS must be release or lambda" ;;
  esac
fi
build_seconds=$(( $(date +%s) - started_at ))

# --- the machine --------------------------------------------------------------------------------
load_before=$(uptime)
rustc_running=$(pgrep -c -x rustc || true)
cpu_model=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
mem_total=$(free -h | awk '/^Mem:/ {print $2}')
pg_version=$(psql -qtA "$BENCH_PG/postgres" -c 'SHOW server_version' 2>/dev/null || echo '?')
rustc_version=$(rustc --version)
commit=$(git rev-parse --short HEAD 2>/dev/null || echo '?')
dirty=$(git status --porcelain 2>/dev/null | grep -c . || true)

# --- 1, 2, 4: the Rust benches ------------------------------------------------------------------
if wanted plan; then
  log "1. scheduler_plan (criterion)"
  cargo bench -p hypervisor-benches --bench scheduler_plan
fi
if wanted throughput; then
  log "2. scheduler_throughput (PostgreSQL)"
  cargo bench -p hypervisor-benches --bench scheduler_throughput
fi
if wanted scale; then
  log "10. scale_out (PostgreSQL, LocalStack)"
  cargo bench -p hypervisor-benches --bench scale_out
fi
if wanted cold_start; then
  log "4. cold_start ($cold_start_dir)"
  COLD_START_DIR=$cold_start_dir cargo bench -p hypervisor-benches --bench cold_start
fi

# --- 3 and 5: against the local server ----------------------------------------------------------
# api METHOD PATH [JSON] → $status, $body (with the bearer token once $token is set).
api() {
  local method=$1 path=$2 data=${3:-} response
  local args=(-sS -o - -w '\n%{http_code}' -X "$method" "$base$path" -H 'Accept: application/json')
  if [ -n "${token:-}" ]; then args+=(-H "Authorization: Bearer $token"); fi
  if [ -n "$data" ]; then args+=(-H 'Content-Type: application/json' --data-binary "$data"); fi
  response=$(curl "${args[@]}") || die "$method $path: no answer from $base"
  status=${response##*$'\n'}
  body=${response%$'\n'*}
}
field() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1" <<<"$body"; }
expect() { [ "$status" = "$1" ] || die "expected $1, got $status: $body"; }

# CPU time so far (clock ticks) of the server, of PostgreSQL's processes, of LocalStack's, and
# of the whole machine (busy time): where a request's time goes, by process.
cpu_ticks() {
  python3 - "$server_pid" <<'PY'
import os, sys
server, groups = sys.argv[1], [0, 0, 0]
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        stat = open(f"/proc/{pid}/stat").read()
        cmdline = open(f"/proc/{pid}/cmdline", "rb").read()
    except OSError:
        continue
    comm = stat[stat.index("(") + 1:stat.rindex(")")]
    fields = stat[stat.rindex(")") + 2:].split()
    ticks = int(fields[11]) + int(fields[12])
    if pid == server:
        groups[0] += ticks
    elif comm.startswith("postgres"):
        groups[1] += ticks
    elif b"localstack" in cmdline:
        groups[2] += ticks
cpu = [int(x) for x in open("/proc/stat").readline().split()[1:]]
print(*groups, sum(cpu) - cpu[3] - cpu[4])
PY
}

# cpu_per_request BEFORE AFTER REQUESTS → "server / PostgreSQL / LocalStack / the rest" in µs
cpu_per_request() {
  python3 - "$1" "$2" "$3" <<'PY'
import os, sys
before, after = (list(map(int, arg.split())) for arg in sys.argv[1:3])
per = 1e6 / os.sysconf("SC_CLK_TCK") / max(1, int(sys.argv[3]))
d = [(a - b) * per for a, b in zip(after, before)]
print(" / ".join(f"{x:.0f}" for x in (d[0], d[1], d[2], d[3] - d[0] - d[1] - d[2])))
PY
}

# run_wrk NAME LUA PATH THREADS CONNECTIONS → appends a table row to $wrk_rows
wrk_rows=
run_wrk() {
  local name=$1 script=$2 path=$3 threads=$4 connections=$5 result file before after
  file=$out/wrk-$(printf '%s-c%s' "$name" "$connections" | tr -c 'a-zA-Z0-9' '_').txt
  log "3. wrk: $name ($connections connections)"
  before=$(cpu_ticks)
  wrk --latency --timeout 10s -t"$threads" -c"$connections" -d"$WRK_DURATION" -s "$script" "$base$path" \
    | tee "$file" >&2
  after=$(cpu_ticks)
  result=$(grep '^WRK_RESULT' "$file" | tail -n1)
  [ -n "$result" ] || die "wrk printed no result for $name (see $file)"
  # WRK_RESULT requests rps p50 p90 p99 max non2xx socket_errors
  read -r _ requests rps p50 p90 p99 max non2xx errors <<<"$result"
  local target=— cpu
  case $name in GET*) target=$(python3 -c "import sys; print('met' if float(sys.argv[1]) < 10 else '**MISSED**')" "$p99") ;; esac
  cpu=$(cpu_per_request "$before" "$after" "$requests")
  wrk_rows+="| \`$name\` | $connections | $requests | $rps | $p50 ms | $p90 ms | $p99 ms | $max ms | $non2xx | $errors | $cpu | $target |"$'\n'
}

wrk_script() { # wrk_script FILE METHOD [BODY]
  local file=$1 method=$2 payload=${3:-}
  {
    echo "wrk.method = \"$method\""
    echo "wrk.headers[\"Authorization\"] = \"Bearer $token\""
    echo 'wrk.headers["Accept"] = "application/json"'
    if [ -n "$payload" ]; then
      echo 'wrk.headers["Content-Type"] = "application/json"'
      printf 'wrk.body = [[%s]]\n' "$payload"
    fi
    cat <<'LUA'
done = function(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
  io.write(string.format("WRK_RESULT %d %.0f %.2f %.2f %.2f %.2f %d %d\n",
    summary.requests, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, summary.errors.status, errors))
end
LUA
  } >"$file"
}

if wanted api || wanted latency || wanted events; then
  log "starting hypervisor-local on :$BENCH_PORT (database $api_db, queue $BENCH_QUEUE_NAME)"
  psql -q "$BENCH_PG/postgres" -c "DROP DATABASE IF EXISTS $api_db WITH (FORCE)" -c "CREATE DATABASE $api_db"
  sqs() { aws --endpoint-url "$AWS_ENDPOINT_URL" --region "$AWS_REGION" --output text sqs "$@"; }
  queue_url=$(sqs create-queue --queue-name "$BENCH_QUEUE_NAME" --attributes VisibilityTimeout=30 --query QueueUrl)
  sqs purge-queue --queue-url "$queue_url" >/dev/null 2>&1 || true
  webhook_queue_url=$(sqs create-queue --queue-name "$BENCH_QUEUE_NAME-webhooks" --attributes VisibilityTimeout=30 --query QueueUrl)
  sqs purge-queue --queue-url "$webhook_queue_url" >/dev/null 2>&1 || true
  PORT=$BENCH_PORT \
  DATABASE_URL="$BENCH_PG/$api_db" \
  JWT_SECRET=bench-secret-0123456789abcdef0123456789abcdef \
  ACCESS_TOKEN_TTL_SECONDS=3600 \
  RATE_LIMIT_PER_MINUTE=100000000 \
  AUTH_RATE_LIMIT_PER_MINUTE=1000 \
  QUEUE_URL=$queue_url \
  WEBHOOK_QUEUE_URL=$webhook_queue_url \
  WEBHOOK_ALLOW_PRIVATE=true \
  SWEEP_INTERVAL_SECONDS=30 \
  DB_MAX_CONNECTIONS=10 \
  RUST_LOG=warn \
    ./target/local/hypervisor-local >"$out/server.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 1 120); do
    curl -fsS -o /dev/null "$base/openapi.json" 2>/dev/null && break
    kill -0 "$server_pid" 2>/dev/null || die "the server exited; see $out/server.log"
    sleep 0.5
  done
  curl -fsS -o /dev/null "$base/openapi.json" || die "the server did not answer; see $out/server.log"

  # 5 first, on a quiet server: the wrk POST flood leaves a queue backlog behind it.
  if wanted latency; then
    log "5. submit_to_running"
    BENCH_API_URL=$base cargo bench -p hypervisor-benches --bench submit_to_running
  fi

  if wanted events; then
    log "9. events_and_webhooks"
    BENCH_API_URL=$base BENCH_API_DB=$api_db cargo bench -p hypervisor-benches --bench events_and_webhooks
  fi

  if wanted api; then
    log "3. seeding a user, an organization, 5 clusters and a deployment"
    token=
    api POST /api/v1/auth/register '{"username":"wrkbench","email":"wrk@example.com","password":"Correct-Horse-Battery-9"}'
    expect 201
    api POST /api/v1/auth/login '{"username":"wrkbench","password":"Correct-Horse-Battery-9"}'
    expect 200
    token=$(field access_token)
    api POST /api/v1/organizations '{"name":"wrk"}'
    expect 201
    org=$(field id)
    for i in 1 2 3 4 5; do
      api POST /api/v1/clusters "{\"organization_id\":\"$org\",\"name\":\"c$i\",\"cpu_cores\":10000,\"ram_gib\":10000,\"gpu_count\":8}"
      expect 201
      cluster=$(field id)
    done
    api POST /api/v1/deployments "{\"cluster_id\":\"$cluster\",\"name\":\"seed\",\"image\":\"busybox:1.36\",\"resources\":{\"cpu_cores\":1,\"ram_gib\":1}}"
    expect 202
    deployment=$(field id)
    api GET "/api/v1/deployments/$deployment"
    expect 200

    wrk_script "$out/get.lua" GET
    wrk_script "$out/post.lua" POST "{\"cluster_id\":\"$cluster\",\"name\":\"wrk\",\"image\":\"busybox:1.36\",\"resources\":{\"cpu_cores\":0.1,\"ram_gib\":0.1},\"priority\":50}"
    # Under load (the figures the targets are judged on), then one connection at a time: the
    # service time without queueing, which is what one Lambda instance (one request at a time)
    # sees.
    run_wrk "GET /api/v1/clusters" "$out/get.lua" /api/v1/clusters "$WRK_THREADS" "$WRK_CONNECTIONS"
    run_wrk "GET /api/v1/deployments/{id}" "$out/get.lua" "/api/v1/deployments/$deployment" "$WRK_THREADS" "$WRK_CONNECTIONS"
    run_wrk "GET /api/v1/clusters" "$out/get.lua" /api/v1/clusters 1 1
    run_wrk "GET /api/v1/deployments/{id}" "$out/get.lua" "/api/v1/deployments/$deployment" 1 1
    run_wrk "POST /api/v1/deployments" "$out/post.lua" /api/v1/deployments "$WRK_THREADS" "$WRK_CONNECTIONS"
    posted=$(psql -qtA "$BENCH_PG/$api_db" -c "SELECT count(*) FILTER (WHERE status = 'running') || ' running, ' || count(*) FILTER (WHERE status = 'pending') || ' pending' FROM deployments")

    {
      echo "### 3. API load (wrk against \`hypervisor-local\`)"
      echo
      echo "\`./target/local/hypervisor-local\` (profile \`local\`: opt-level 3, no LTO) on :$BENCH_PORT with its own database and queue, DB_MAX_CONNECTIONS=10, RATE_LIMIT_PER_MINUTE=100000000 (so the limiter never refuses; an instance leases up to 100 tokens a take from PostgreSQL, DESIGN §12). \`wrk --latency -t$WRK_THREADS -c$WRK_CONNECTIONS -d$WRK_DURATION\` (and \`-t1 -c1\` for the reads) with a valid bearer token; one user, one organization with 5 clusters. wrk, the server, PostgreSQL and LocalStack share the 2 cores. 1-min load average at the end: $(cut -d' ' -f1 /proc/loadavg)."
      echo
      echo "| endpoint | connections | requests | req/s | p50 | p90 | p99 | max | non-2xx | socket errors | CPU per request, µs: server / PostgreSQL / LocalStack / wrk and the rest | reads: p99 < 10 ms |"
      echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
      printf '%s' "$wrk_rows"
      echo
      echo "After the POST run the organization held $posted (each accepted POST is announced on SQS and placed by the scheduler)."
      echo
      echo "CPU per request is each process's CPU time (\`/proc/<pid>/stat\`) over the run, divided by the requests: the server (its scheduler consumers included, which place what the POSTs submit), every PostgreSQL process, LocalStack's, and the rest of the machine's busy time (wrk, mostly). Their sum is what one request costs this 2-core machine."
    } >"$BENCH_REPORT_DIR/3_api_load.md"
    cat "$BENCH_REPORT_DIR/3_api_load.md"
  fi
fi

# --- BENCHMARKS.md --------------------------------------------------------------------------------
total_seconds=$(( $(date +%s) - started_at ))
generated=$out/generated.md
{
  echo "<!-- BEGIN GENERATED by scripts/bench.sh: do not edit by hand; text outside these markers is kept -->"
  echo
  echo "## Figures"
  echo
  echo "Measured $(date -u '+%Y-%m-%d %H:%M UTC') at commit \`$commit\` ($dirty files modified in the work tree) by \`make bench\` (\`./scripts/bench.sh\`), $total_seconds s in all ($build_seconds s of it building)."
  echo
  echo "| machine | |"
  echo "|---|---|"
  echo "| CPU | $cpu_model, $(nproc) cores |"
  echo "| memory | $mem_total |"
  echo "| OS | $(uname -sr) |"
  echo "| Rust | $rustc_version |"
  echo "| PostgreSQL | $pg_version (same machine) |"
  echo "| load when measuring began | \`$load_before\`; $rustc_running rustc processes running (other builds) |"
  echo "| load at the end | \`$(uptime)\` |"
  echo
  echo "Commands: \`cargo bench -p hypervisor-benches --bench scheduler_plan\`, \`--bench scheduler_throughput\`, \`COLD_START_DIR=${cold_start_dir:-target/release} … --bench cold_start\`, \`BENCH_API_URL=$base … --bench submit_to_running\` (and \`--bench events_and_webhooks\`), and \`wrk --latency -t$WRK_THREADS -c$WRK_CONNECTIONS -d$WRK_DURATION -s <lua> <url>\` (see scripts/bench.sh)."
  echo
  # In section order (sort -V: 9 before 10).
  for f in $(ls -1 "$BENCH_REPORT_DIR"/*.md 2>/dev/null | sort -V); do
    cat "$f"
    echo
    echo "_Section measured $(date -u -r "$f" '+%Y-%m-%d %H:%M UTC')._"
    echo
  done
  echo "<!-- END GENERATED -->"
} >"$generated"

python3 - "$root/BENCHMARKS.md" "$generated" <<'PY'
import re, sys
path, generated = sys.argv[1], open(sys.argv[2]).read().rstrip("\n")
try:
    text = open(path).read()
except FileNotFoundError:
    text = ""
pattern = re.compile(r"<!-- BEGIN GENERATED.*?<!-- END GENERATED -->", re.S)
if pattern.search(text):
    text = pattern.sub(lambda _: generated, text, count=1)
else:
    text = "# Benchmarks\n\nRun them all with `make bench`.\n\n" + generated + "\n" + text
open(path, "w").write(text.rstrip("\n") + "\n")
PY
log "done in ${total_seconds}s: BENCHMARKS.md updated (raw outputs in $out)"
