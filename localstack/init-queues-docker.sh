#!/usr/bin/env bash
# LocalStack's ready hook inside the container: the same queues as init-queues.sh.
set -euo pipefail
for q in hypervisor-deployments:30 hypervisor-webhooks:60; do
  name=${q%%:*} visibility=${q##*:}
  dlq_arn=$(awslocal sqs create-queue --queue-name "$name-dlq" --query QueueUrl --output text \
  | xargs -I{} awslocal sqs get-queue-attributes --queue-url {} --attribute-names QueueArn --query Attributes.QueueArn --output text)
  awslocal sqs create-queue --queue-name "$name" \
  --attributes "{\"VisibilityTimeout\":\"$visibility\",\"RedrivePolicy\":\"{\\\"deadLetterTargetArn\\\":\\\"$dlq_arn\\\",\\\"maxReceiveCount\\\":\\\"5\\\"}\"}"
done
