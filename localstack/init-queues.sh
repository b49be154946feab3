#!/usr/bin/env bash
# Creates the deployment queue and its dead-letter queue (idempotent), as template.yaml does in AWS.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/env.sh"
aws() { "$VENV/bin/aws" --endpoint-url "$AWS_ENDPOINT_URL" --region "$AWS_REGION" --output text "$@"; }
dlq_url=$(aws sqs create-queue --queue-name "$QUEUE_NAME-dlq" --query QueueUrl)
dlq_arn=$(aws sqs get-queue-attributes --queue-url "$dlq_url" --attribute-names QueueArn --query Attributes.QueueArn)
policy="{\"deadLetterTargetArn\":\"$dlq_arn\",\"maxReceiveCount\":\"5\"}"
aws sqs create-queue --queue-name "$QUEUE_NAME" \
  --attributes "{\"VisibilityTimeout\":\"30\",\"RedrivePolicy\":$(printf '%s' "$policy" | python3 -c 'import json,sys;print(json.dumps(sys.stdin.read()))')}" \
  --query QueueUrl
