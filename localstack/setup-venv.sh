#!/usr/bin/env bash
# Creates the pinned Python environments in .local/: one for LocalStack (host mode, no Docker)
# and cargo-lambda, one for the SAM CLI (its pins conflict with LocalStack's). Idempotent.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/env.sh"

make_venv() { # <venv dir> <pinned requirements file>
  local venv=$1 lock=$2
  if [ -x "$venv/bin/python" ] && cmp -s "$lock" "$venv/.requirements.lock"; then
    return 0
  fi
  echo "setting up $venv (pinned by ${lock#"$here/../"})"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$lock"
  cp "$lock" "$venv/.requirements.lock"
}

make_venv "$VENV" "$here/requirements.lock"
if [ "${WITH_SAM:-0}" = 1 ]; then
  make_venv "$LOCAL_DIR/sam-venv" "$here/sam-requirements.lock"
fi
