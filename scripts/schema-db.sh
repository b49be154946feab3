#!/usr/bin/env bash
# Recreates the database that sqlx's compile-time query checks read (`SQLX_SCHEMA_URL`) from
# migrations/. Only the schema matters there; no data is kept.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
url=${SQLX_SCHEMA_URL:-postgres://postgres@127.0.0.1:5432/hypervisor_sqlx}
admin_url="${url%/*}/postgres"
db="${url##*/}"
psql -q "$admin_url" -v ON_ERROR_STOP=1 -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" -c "CREATE DATABASE \"$db\""
for f in "$here"/../migrations/*.sql; do
  psql -q "$url" -v ON_ERROR_STOP=1 -f "$f"
done
