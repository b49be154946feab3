#!/usr/bin/env bash
# Creates the pinned Python environment for LocalStack (host mode, no Docker) and cargo-lambda.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/env.sh"
stamp="$VENV/.requirements.lock"
if [ -x "$VENV/bin/python" ] && cmp -s "$here/requirements.lock" "$stamp"; then
  exit 0
fi
echo "setting up $VENV (pinned by localstack/requirements.lock)"
python3 -m venv "$VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.lock"
cp "$here/requirements.lock" "$stamp"
