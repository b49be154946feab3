#!/usr/bin/env bash
# Regenerates .sqlx/ (the offline query data that lets builds run without a database) from a
# database with the current migrations, the way `cargo sqlx prepare` does, without sqlx-cli.
# With --check, regenerates into a temporary folder and fails if .sqlx/ differs.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
"$root/scripts/schema-db.sh"
# Generate into a fresh folder: builds running meanwhile keep reading the current .sqlx/.
out=$(mktemp -d)
# Touch every crate with queries so the macros run again and write their data.
find shared functions -name '*.rs' -exec touch {} +
SQLX_OFFLINE=false SQLX_OFFLINE_DIR="$out" DATABASE_URL="${SQLX_SCHEMA_URL:-postgres://postgres@127.0.0.1:5432/hypervisor_sqlx}" \
  cargo check --workspace --all-targets --quiet
if [ "${1:-}" = "--check" ]; then
  if ! diff -r -q "$root/.sqlx" "$out"; then
    echo ".sqlx/ is stale: run 'make sqlx-prepare' and commit it" >&2
    exit 1
  fi
  echo ".sqlx/ is current"
else
  rm -rf "$root/.sqlx.old"
  [ -d "$root/.sqlx" ] && mv "$root/.sqlx" "$root/.sqlx.old"
  mv "$out" "$root/.sqlx" && rm -rf "$root/.sqlx.old"
fi
