#!/usr/bin/env bash
# LocalStack's ready hook inside the container: the same queues as init-queues.sh.
set -euo pipefail
dlq_arn=$(awslocal sqs create-queue --queue-name hypervisor-deployments-dlq --query QueueUrl --output text \
  | xargs -I{} awslocal sqs get-queue-attributes --queue-url {} --attribute-names QueueArn --query Attributes.QueueArn --output text)
awslocal sqs create-queue --queue-name hypervisor-deployments \
  --attributes "{\"VisibilityTimeout\":\"30\",\"RedrivePolicy\":\"{\\\"deadLetterTargetArn\\\":\\\"$dlq_arn\\\",\\\"maxReceiveCount\\\":\\\"5\\\"}\"}"
