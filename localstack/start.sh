#!/usr/bin/env bash
# Starts LocalStack in host mode (SQS and EventBridge) unless it already answers, then creates
# the queues. LocalStack keeps running in the background; localstack/stop.sh stops it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/env.sh"
"$here/setup-venv.sh"
health="$AWS_ENDPOINT_URL/_localstack/health"
if ! curl -fsS "$health" >/dev/null 2>&1; then
  mkdir -p "$LOCAL_DIR"
  echo "starting LocalStack on 127.0.0.1:$LOCALSTACK_PORT (log: $LOCAL_DIR/localstack.log)"
  GATEWAY_LISTEN=127.0.0.1:$LOCALSTACK_PORT SERVICES=sqs,events LOCALSTACK_ANALYTICS=0 DISABLE_EVENTS=1 \
    SQS_ENDPOINT_STRATEGY=path LOCALSTACK_HOST=127.0.0.1:$LOCALSTACK_PORT \
    setsid "$VENV/bin/python" -m localstack.runtime.main >"$LOCAL_DIR/localstack.log" 2>&1 &
  echo $! >"$LOCAL_DIR/localstack.pid"
  for _ in $(seq 1 120); do
    curl -fsS "$health" >/dev/null 2>&1 && break
    sleep 0.5
  done
  curl -fsS "$health" >/dev/null || { echo "LocalStack did not start; see $LOCAL_DIR/localstack.log" >&2; exit 1; }
fi
"$here/init-queues.sh"
