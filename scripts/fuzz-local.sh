#!/usr/bin/env bash
# `make fuzz`: starts the local server on its own port and database with generous rate limits,
# runs scripts/fuzz.sh (Schemathesis) against it, and stops the server.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
port=${FUZZ_PORT:-3999}
export PORT=$port DATABASE_URL=${FUZZ_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/hypervisor_fuzz}
export RATE_LIMIT_PER_MINUTE=1000000 AUTH_RATE_LIMIT_PER_MINUTE=1000000 RUST_LOG=warn
./scripts/ensure-postgres.sh
cargo build --profile local -p hypervisor-local
./target/local/hypervisor-local > "$root/.local/fuzz-server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
BASE_URL=http://127.0.0.1:$port ./scripts/fuzz.sh "$@"
