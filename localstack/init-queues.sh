#!/usr/bin/env bash
# Creates the deployment and webhook queues, each with its dead-letter queue (idempotent), as
# template.yaml does in AWS.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/env.sh"
aws() { "$VENV/bin/aws" --endpoint-url "$AWS_ENDPOINT_URL" --region "$AWS_REGION" --output text "$@"; }
# queue NAME VISIBILITY_SECONDS: the queue and NAME-dlq, printing the queue's URL.
queue() {
  local dlq_url dlq_arn policy
  dlq_url=$(aws sqs create-queue --queue-name "$1-dlq" --query QueueUrl)
  dlq_arn=$(aws sqs get-queue-attributes --queue-url "$dlq_url" --attribute-names QueueArn --query Attributes.QueueArn)
  policy="{\"deadLetterTargetArn\":\"$dlq_arn\",\"maxReceiveCount\":\"5\"}"
  aws sqs create-queue --queue-name "$1" \
    --attributes "{\"VisibilityTimeout\":\"$2\",\"RedrivePolicy\":$(printf '%s' "$policy" | python3 -c 'import json,sys;print(json.dumps(sys.stdin.read()))')}" \
    --query QueueUrl
}
queue "$QUEUE_NAME" 30
queue "${WEBHOOK_QUEUE_NAME:-hypervisor-webhooks}" 60
