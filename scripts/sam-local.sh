#!/usr/bin/env bash
# make sam-local: every function under `sam local` (AWS's Lambda emulator, in Docker), offline.
# Docker runs in a network namespace of its own, so the host network is untouched; PostgreSQL and
# LocalStack are bridged into it over unix sockets (socat) at the Docker bridge's gateway,
# 172.17.0.1, the address localstack/env.json names; the API comes back out the same way to
# 127.0.0.1:$SAM_LOCAL_PORT. The base image is built here from busybox and the host's libc (no
# registry). Needs root (unshare, apt-get). Ctrl-C stops everything it started.
#
#   (no flag)     serve: `sam local start-api`, and the scheduler under `sam local invoke` every
#                 $SAM_LOCAL_SCHEDULER_SECONDS (a scheduled event, then the queue's messages)
#   --check       CI's pass: one end-to-end run (register ... running) through start-api and
#                 `sam local invoke`, then stop and clean up
#   --skip-build  use the existing .aws-sam/build instead of running `sam build`
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
check=0 build=1
for arg; do
  case $arg in
    --check) check=1 ;;
    --skip-build) build=0 ;;
    *) echo "usage: $0 [--check] [--skip-build]" >&2; exit 2 ;;
  esac
done
port=${SAM_LOCAL_PORT:-3001}
every=${SAM_LOCAL_SCHEDULER_SECONDS:-20}
# What localstack/env.json names: keep the two in step.
gateway=172.17.0.1 db=hypervisor_sam
queue_name=hypervisor-sam-deployments webhook_queue_name=hypervisor-sam-webhooks
export SAM_CLI_TELEMETRY=0 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test \
  AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
unset AWS_PROFILE AWS_SESSION_TOKEN
# SAM asks STS for the account id before each invoke; offline that costs ~11 s of retries.
# A closed local port fails at once, and SAM falls back to its default account id.
export AWS_ENDPOINT_URL_STS=http://127.0.0.1:9 AWS_MAX_ATTEMPTS=1
log() { printf '[sam-local %3ss] %s\n' "$SECONDS" "$*"; }
die() { printf '[sam-local] %s\n' "$*" >&2; exit 1; }

# Debian's packages, when missing. (Debian's docker client, not another one earlier on PATH.)
missing=()
for pkg in docker.io busybox-static socat; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if ((${#missing[@]})); then
  [ "$(id -u)" = 0 ] || die "needs root to install ${missing[*]}"
  log "installing ${missing[*]} (Debian packages)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
[ "$(id -u)" = 0 ] || die "needs root (a network namespace for dockerd)"
docker=/usr/bin/docker

WITH_SAM=1 ./localstack/setup-venv.sh
export PATH="$root/.local/venv/bin:$PATH"
sam=$root/.local/sam-venv/bin/sam
py=$root/.local/sam-venv/bin/python
./scripts/ensure-postgres.sh >/dev/null
curl -fsS http://127.0.0.1:4566/_localstack/health >/dev/null 2>&1 || ./localstack/start.sh >/dev/null
QUEUE_NAME=$queue_name WEBHOOK_QUEUE_NAME=$webhook_queue_name ./localstack/init-queues.sh >/dev/null
host_queue_url=http://127.0.0.1:4566/queue/us-east-1/000000000000/$queue_name
# Leftovers of an earlier run name organizations of a dropped database: harmless, but noise.
"$root/.local/venv/bin/aws" --endpoint-url http://127.0.0.1:4566 sqs purge-queue \
  --queue-url "$host_queue_url" 2>/dev/null || true

# A fresh database each run, migrated by psql (the functions never migrate).
admin=postgres://postgres@127.0.0.1:5432/postgres
export PGOPTIONS="-c client_min_messages=warning"
psql -qX -v ON_ERROR_STOP=1 "$admin" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db"
for migration in migrations/*.sql; do
  psql -qX -v ON_ERROR_STOP=1 -1 -f "$migration" "postgres://postgres@127.0.0.1:5432/$db" >/dev/null
done

if [ "$build" = 1 ]; then
  log "sam build"
  # A local emulator gains nothing from LTO; zig is not needed for the host's own glibc.
  CARGO_PROFILE_RELEASE_LTO=${CARGO_PROFILE_RELEASE_LTO:-false} \
    CARGO_PROFILE_RELEASE_CODEGEN_UNITS=${CARGO_PROFILE_RELEASE_CODEGEN_UNITS:-16} \
    CARGO_LAMBDA_COMPILER=${CARGO_LAMBDA_COMPILER:-cargo} SQLX_OFFLINE=true \
    "$sam" build --template template.yaml
fi
[ -f .aws-sam/build/template.yaml ] || die "no .aws-sam/build: run without --skip-build"

# Everything below lives in $work and is removed on exit, with every process started here.
work=$(mktemp -d "${TMPDIR:-/tmp}/hv-sam.XXXXXX")
pids=() dockerd=""
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  set +e
  log "stopping"
  ((${#pids[@]})) && kill "${pids[@]}" 2>/dev/null
  if [ -n "$dockerd" ]; then
    $docker ps -aq | xargs -r $docker rm -f >/dev/null 2>&1
    kill "$dockerd" 2>/dev/null
  fi
  # Nothing here needs a graceful stop (SAM takes ~8 s for one): 3 s, then SIGKILL.
  for _ in $(seq 1 15); do
    alive=0
    for pid in "${pids[@]}" $dockerd; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.2
  done
  ((${#pids[@]})) && kill -9 "${pids[@]}" 2>/dev/null
  if [ -n "$dockerd" ]; then
    for _ in $(seq 1 50); do kill -0 "$dockerd" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$dockerd" 2>/dev/null
  fi
  # dockerd unmounts its layers on a clean exit; after a kill -9 they may remain.
  findmnt -rn -o TARGET | grep "^$work/" | sort -r | xargs -r umount -l 2>/dev/null
  rm -rf "$work"
  [ "$check" = 1 ] && psql -qX "$admin" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "dockerd in its own network namespace (data in $work)"
# setsid: Ctrl-C reaches this script alone, which then stops dockerd last.
setsid unshare --net -- sh -c 'ip link set lo up && exec "$@"' sh /usr/sbin/dockerd \
  --data-root "$work/data" --exec-root "$work/exec" --pidfile "$work/dockerd.pid" \
  -H "unix://$work/docker.sock" --bip "$gateway/16" \
  --iptables=false --ip-forward=false --ip-masq=false >"$work/dockerd.log" 2>&1 &
dockerd=$!
export DOCKER_HOST=unix://$work/docker.sock
for _ in $(seq 1 100); do $docker info >/dev/null 2>&1 && break; sleep 0.2; done
$docker info >/dev/null 2>&1 || { cat "$work/dockerd.log" >&2; die "dockerd did not start"; }
# nsenter execs its command: started with `&`, $! is that process.
ns=(nsenter -t "$dockerd" -n)

# host 127.0.0.1:<port> -> 172.17.0.1:<port> in the namespace (PostgreSQL, LocalStack)
bridge_in() {
  socat "UNIX-LISTEN:$work/in-$1.sock,fork,mode=600" "TCP:127.0.0.1:$1" 2>>"$work/bridges.log" &
  pids+=($!)
  "${ns[@]}" socat "TCP-LISTEN:$1,bind=$gateway,fork,reuseaddr" "UNIX-CONNECT:$work/in-$1.sock" \
    2>>"$work/bridges.log" &
  pids+=($!)
}
# the namespace's 127.0.0.1:<port> -> host 127.0.0.1:<port> (the API)
bridge_out() {
  "${ns[@]}" socat "UNIX-LISTEN:$work/out-$1.sock,fork,mode=600" "TCP:127.0.0.1:$1" \
    2>>"$work/bridges.log" &
  pids+=($!)
  socat "TCP-LISTEN:$1,bind=127.0.0.1,fork,reuseaddr" "UNIX-CONNECT:$work/out-$1.sock" \
    2>>"$work/bridges.log" &
  pids+=($!)
}
! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || die "127.0.0.1:$port is taken: set SAM_LOCAL_PORT"
bridge_in 5432
bridge_in 4566

# The base image SAM expects, made here: static busybox (SAM's Dockerfile runs sh, mv, chmod)
# and the shared libraries the bootstraps link, taken from the host.
case $(uname -m) in x86_64) arch=x86_64 ;; aarch64) arch=arm64 ;; *) die "unsupported $(uname -m)" ;; esac
rootfs=$work/rootfs
mkdir -p "$rootfs/bin" "$rootfs/tmp" "$rootfs/var/task" "$rootfs/var/runtime" "$rootfs/opt"
chmod 1777 "$rootfs/tmp"
cp /bin/busybox "$rootfs/bin/busybox"
for applet in $(/bin/busybox --list | grep -vx busybox); do ln -s busybox "$rootfs/bin/$applet"; done
{ ldd .aws-sam/build/*/bootstrap || true; } | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' |
  sort -u | xargs -r cp -L --parents -t "$rootfs"
# The CA bundle: rustls looks for the system's roots at start-up, as in Lambda's own image.
cp -L --parents -t "$rootfs" /etc/ssl/certs/ca-certificates.crt
tar -C "$rootfs" -c . | $docker import -c 'ENV PATH=/bin' - "public.ecr.aws/lambda/provided:al2023-$arch" >/dev/null

sam_args=(--template .aws-sam/build/template.yaml --env-vars localstack/env.json
  --skip-pull-image --region us-east-1)

# One scheduler round, as AWS would run it: the EventBridge rule's event, then an SQS event of
# whatever waits on the queue. SAM exits 0 even when the function fails: judge its output.
scheduler_round() {
  "${ns[@]}" "$sam" local invoke SchedulerFunction --event localstack/events/sweep.json "${sam_args[@]}" \
    >"$work/sweep.out" 2>"$work/sweep.log" || { cat "$work/sweep.log" >&2; return 1; }
  "$py" scripts/sam_local.py judge-invoke "$work/sweep.out" ||
    { cat "$work/sweep.log" >&2; return 1; }
  log "scheduler: the scheduled event answered"
  local n
  n=$("$py" scripts/sam_local.py sqs-event "$host_queue_url" "$work/sqs-event.json") || return 1
  log "scheduler: $n message(s) on the queue"
  [ "$n" -gt 0 ] || return 0
  "${ns[@]}" "$sam" local invoke SchedulerFunction --event "$work/sqs-event.json" "${sam_args[@]}" \
    >"$work/sqs.out" 2>"$work/sqs.log" || { cat "$work/sqs.log" >&2; return 1; }
  "$py" scripts/sam_local.py judge-invoke "$work/sqs.out" sqs ||
    { cat "$work/sqs.log" >&2; return 1; }
  "$py" scripts/sam_local.py delete-batch "$host_queue_url" "$work/sqs-event.json"
}

log "sam local start-api"
"${ns[@]}" "$sam" local start-api --host 127.0.0.1 --port "$port" --warm-containers LAZY "${sam_args[@]}" \
  >"$work/start-api.log" 2>&1 &
api=$!
pids+=($api)
ready() { "${ns[@]}" curl -s -o /dev/null "http://127.0.0.1:$port/sam-local-ready"; }
for _ in $(seq 1 300); do
  # Any answer from SAM itself (an unknown route) means it listens; no function is started.
  ready && break
  kill -0 "$api" 2>/dev/null || break
  sleep 0.2
done
ready || { cat "$work/start-api.log" >&2; die "start-api did not start"; }
bridge_out "$port"
base=http://127.0.0.1:$port

if [ "$check" = 1 ]; then
  log "through the API on $base"
  "$py" scripts/sam_local.py submit "$base" "$work/state.json" || { cat "$work/start-api.log" >&2; exit 1; }
  log "the scheduler under sam local invoke (a scheduled event, then the queue's messages)"
  scheduler_round
  "$py" scripts/sam_local.py expect-running "$base" "$work/state.json"
  log "passed"
  exit 0
fi

log "the API: $base (e.g. $base/docs, $base/console/); Ctrl-C stops everything"
log "the scheduler runs under sam local invoke every ${every}s"
while true; do
  scheduler_round || log "the scheduler round failed (see above); trying again in ${every}s"
  sleep "$every" &
  wait $!
done
