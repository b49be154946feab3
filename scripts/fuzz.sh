#!/usr/bin/env bash
# Fuzzes a running local stack with Schemathesis, driven by the API's own /openapi.json.
#
#   BASE_URL=http://127.0.0.1:3000 scripts/fuzz.sh [extra `st run` options]
#
# Starts nothing: run `make dev` first (preferably with generous rate limits, e.g.
# `RATE_LIMIT_PER_MINUTE=100000 AUTH_RATE_LIMIT_PER_MINUTE=100000 make dev`, or the limiter's 429s
# become most of what is reported). It registers a random user, logs in, creates an organization,
# a cluster and a deployment so that real ids exist, points the id path parameters at them, and
# runs every Schemathesis check. Exits non-zero when Schemathesis reports a failure.
#
# Settings (environment):
#   BASE_URL       the API (default http://127.0.0.1:3000)
#   MAX_EXAMPLES   test cases per operation (default 50)
#   CHECKS         Schemathesis checks (default all)
#   SEED           Schemathesis seed, to replay a run (default: random)
#   WORKERS        concurrent workers (default 2)
#   REPORT_DIR     JUnit and NDJSON reports (default .local/fuzz-report)
#   FUZZ_VENV      the virtual environment (default .local/fuzz-venv; created when missing from
#                  scripts/fuzz-requirements.txt, with $PYTHON, default python3.11 or python3)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BASE_URL=${BASE_URL:-http://127.0.0.1:3000}
BASE_URL=${BASE_URL%/}
MAX_EXAMPLES=${MAX_EXAMPLES:-50}
WORKERS=${WORKERS:-2}
REPORT_DIR=${REPORT_DIR:-$root/.local/fuzz-report}
venv=${FUZZ_VENV:-$root/.local/fuzz-venv}
requirements=$root/scripts/fuzz-requirements.txt
wanted=$(sed -n 's/^schemathesis==//p' "$requirements")

log() { printf 'fuzz: %s\n' "$*" >&2; }
die() { log "$*"; exit 2; }

# --- the pinned Schemathesis, in its own virtual environment ---------------------------------
if [ ! -x "$venv/bin/st" ] || [ "$("$venv/bin/st" --version 2>/dev/null | awk '{print $NF}')" != "$wanted" ]; then
  python=${PYTHON:-$(command -v python3.11 || command -v python3 || true)}
  [ -n "$python" ] || die "no python3 found (set PYTHON)"
  log "installing schemathesis $wanted into $venv with $python"
  [ -x "$venv/bin/pip" ] || "$python" -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
fi
py="$venv/bin/python"

# --- HTTP helpers -----------------------------------------------------------------------------
# api METHOD PATH [JSON] → sets $status and $body. Sends the bearer token once we have one.
api() {
  local method=$1 path=$2 data=${3:-} out
  local args=(-sS -o - -w '\n%{http_code}' -X "$method" "$BASE_URL$path" -H 'Accept: application/json')
  if [ -n "${TOKEN:-}" ]; then args+=(-H "Authorization: Bearer $TOKEN"); fi
  if [ -n "$data" ]; then args+=(-H 'Content-Type: application/json' --data-binary "$data"); fi
  out=$(curl "${args[@]}") || die "$method $path: no answer from $BASE_URL"
  status=${out##*$'\n'}
  body=${out%$'\n'*}
}
# field JSON NAME → the top-level string field NAME of JSON.
field() { "$py" -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }
expect() { [ "$status" = "$1" ] || die "$2 answered $status, expected $1: $3"; }

for _ in $(seq 1 60); do
  curl -fsS -o /dev/null "$BASE_URL/openapi.json" 2>/dev/null && break
  sleep 1
done
curl -fsS -o /dev/null "$BASE_URL/openapi.json" || die "$BASE_URL/openapi.json does not answer (is make dev running?)"

# --- a user, an organization, a cluster and a deployment, so ids exist -----------------------
suffix=$("$py" -c 'import secrets; print(secrets.token_hex(4))')
user="fuzz-$suffix"
password="Fuzz-$suffix-Passw0rd!"
api POST /api/v1/auth/register "{\"username\":\"$user\",\"email\":\"$user@example.com\",\"password\":\"$password\"}"
expect 201 "register" "$body"
api POST /api/v1/auth/login "{\"username\":\"$user\",\"password\":\"$password\"}"
expect 200 "login" "$body"
TOKEN=$(field "$body" access_token)
api POST /api/v1/organizations "{\"name\":\"fuzz org $suffix\"}"
expect 201 "create organization" "$body"
org=$(field "$body" id)
api POST /api/v1/clusters "{\"organization_id\":\"$org\",\"name\":\"fuzz-cluster\",\"cpu_cores\":64,\"ram_gib\":256,\"gpu_count\":8}"
expect 201 "create cluster" "$body"
cluster=$(field "$body" id)
api POST /api/v1/deployments "{\"cluster_id\":\"$cluster\",\"name\":\"fuzz-job\",\"image\":\"busybox:1.36\",\"resources\":{\"cpu_cores\":1,\"ram_gib\":1}}"
expect 202 "submit deployment" "$body"
deployment=$(field "$body" id)
log "user $user, organization $org, cluster $cluster, deployment $deployment"

# Path parameters named `id` point at those objects (the rest are generated).
config=$(mktemp -d)/schemathesis.toml
trap 'rm -rf "$(dirname "$config")"' EXIT
cat >"$config" <<EOF
[[operations]]
include-path-regex = '^/api/v1/organizations/\{id\}'
parameters = { "path.id" = "$org" }

[[operations]]
include-path-regex = '^/api/v1/clusters/\{id\}'
parameters = { "path.id" = "$cluster" }

[[operations]]
include-path-regex = '^/api/v1/deployments/\{id\}'
parameters = { "path.id" = "$deployment" }
EOF

mkdir -p "$REPORT_DIR"
args=(
  --config-file "$config" run "$BASE_URL/openapi.json"
  --url "$BASE_URL"
  -H "Authorization: Bearer $TOKEN"
  --checks "${CHECKS:-all}"
  --max-examples "$MAX_EXAMPLES"
  --workers "$WORKERS"
  --report junit,ndjson --report-dir "$REPORT_DIR"
)
[ -n "${SEED:-}" ] && args+=(--seed "$SEED")
log "st ${args[*]/$TOKEN/<token>} $*"
set +e
"$venv/bin/st" "${args[@]}" "$@"
code=$?
set -e
if [ "$code" -ne 0 ]; then
  log "Schemathesis reported failures (exit $code); reports in $REPORT_DIR"
fi
exit "$code"
