#!/usr/bin/env bash
# The committed console bundle (functions/console/dist, embedded in the console Lambda) is what
# the source in console/ builds, as .sqlx/ is checked against the queries: `npm ci` from the
# lockfile, then a type check and a build into a scratch directory, compared file by file.
# With --write, rebuilds functions/console/dist instead (then commit it).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root/console"
npm ci --no-audit --no-fund --loglevel=error
if [ "${1:-}" = "--write" ]; then
  npm run build
  exit 0
fi
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
npx tsc --noEmit
npx vite build --logLevel warn --outDir "$scratch/dist" --emptyOutDir
if ! diff -r "$scratch/dist" "$root/functions/console/dist"; then
  echo "functions/console/dist is stale: run ./scripts/console-check.sh --write (or make console) and commit it" >&2
  exit 1
fi
gzipped=$(cat "$scratch"/dist/assets/*.js "$scratch"/dist/assets/*.css | gzip -9 | wc -c)
echo "functions/console/dist is current; JS + CSS: $gzipped bytes gzipped (budget 256000)"
[ "$gzipped" -lt 256000 ] || { echo "the console's JS + CSS exceed 250 KB gzipped" >&2; exit 1; }
