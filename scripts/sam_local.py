"""Helpers for scripts/sam-local.sh (run with the SAM venv's Python, which has boto3).

  sqs-event QUEUE_URL OUT   receive every waiting message (as Lambda's poller does, without
                            deleting) and write them to OUT as the SQS event; print the count
  delete-batch QUEUE_URL EVENT   delete the event's messages, as Lambda's event source mapping
                            does once a batch succeeded
  judge-invoke OUT [sqs]    `sam local invoke` exits 0 even when the function fails: judge its
                            stdout (file OUT). The answer must be a JSON object without errorType;
                            with `sqs`, one with no batchItemFailures
  submit BASE STATE         through the API: register, log in, create an organization, a cluster,
                            submit a deployment; STATE gets the token and the deployment's id
  expect-running BASE STATE the deployment is running
"""

import json
import sys
import urllib.error
import urllib.request
import uuid

import boto3


def sqs_event(queue_url, out):
    sqs = boto3.client("sqs", endpoint_url=queue_url.split("/queue/")[0])
    records = []
    while True:
        # Wait for the first message; once some arrived, a short wait tells the queue is empty.
        got = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=1 if records else 3,
            AttributeNames=["All"],
        ).get("Messages", [])
        if not got:
            break
        for m in got:
            records.append(
                {
                    "messageId": m["MessageId"],
                    "receiptHandle": m["ReceiptHandle"],
                    "body": m["Body"],
                    "attributes": m.get("Attributes", {}),
                    "messageAttributes": {},
                    "md5OfBody": m["MD5OfBody"],
                    "eventSource": "aws:sqs",
                    "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:"
                    + queue_url.rsplit("/", 1)[1],
                    "awsRegion": "us-east-1",
                }
            )
    with open(out, "w") as f:
        json.dump({"Records": records}, f)
    print(len(records))


def delete_batch(queue_url, event):
    sqs = boto3.client("sqs", endpoint_url=queue_url.split("/queue/")[0])
    records = json.load(open(event))["Records"]
    for start in range(0, len(records), 10):
        entries = [
            {"Id": str(i), "ReceiptHandle": r["receiptHandle"]}
            for i, r in enumerate(records[start : start + 10])
        ]
        failed = sqs.delete_message_batch(QueueUrl=queue_url, Entries=entries).get("Failed")
        if failed:
            sys.exit(f"deleting the batch failed: {failed}")


def judge_invoke(out, kind=None):
    lines = [line for line in open(out).read().splitlines() if line.strip()]
    if not lines:
        sys.exit("the function gave no answer")
    try:
        answer = json.loads(lines[-1])
    except ValueError:
        sys.exit(f"the function's answer is not JSON: {lines[-1]}")
    if not isinstance(answer, dict) or "errorType" in answer:
        sys.exit(f"the function failed: {lines[-1]}")
    if kind == "sqs" and answer.get("batchItemFailures") != []:
        sys.exit(f"the batch was not fully processed: {lines[-1]}")
    print(json.dumps(answer))


def call(base, method, path, token=None, body=None):
    request = urllib.request.Request(base + path, method=method)
    request.add_header("content-type", "application/json")
    if token:
        request.add_header("authorization", f"Bearer {token}")
    data = json.dumps(body).encode() if body is not None else None
    try:
        with urllib.request.urlopen(request, data, timeout=60) as response:
            status, text = response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read().decode()
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text


def expect(status, want, what, body):
    if status != want:
        sys.exit(f"{what}: HTTP {status} (want {want}): {body}")
    print(f"  {what}: HTTP {status}")


def submit(base, state):
    name = f"sam{uuid.uuid4().hex[:10]}"
    password = "Correct-Horse-Battery-9"
    s, b = call(base, "POST", "/api/v1/auth/register", body={
        "username": name, "email": f"{name}@example.com", "password": password})
    expect(s, 201, "register", b)
    s, b = call(base, "POST", "/api/v1/auth/login", body={"username": name, "password": password})
    expect(s, 200, "log in", b)
    token = b["access_token"]
    s, org = call(base, "POST", "/api/v1/organizations", token, {"name": f"{name}-org"})
    expect(s, 201, "create an organization", org)
    s, cluster = call(base, "POST", "/api/v1/clusters", token, {
        "organization_id": org["id"], "name": "c1", "cpu_cores": 4, "ram_gib": 8, "gpu_count": 1})
    expect(s, 201, "create a cluster", cluster)
    s, d = call(base, "POST", "/api/v1/deployments", token, {
        "cluster_id": cluster["id"], "name": "job", "image": "busybox",
        "resources": {"cpu_cores": 1}})
    expect(s, 202, "submit a deployment", d)
    if d.get("status") != "pending":
        sys.exit(f"a new deployment should be pending: {d}")
    with open(state, "w") as f:
        json.dump({"token": token, "deployment": d["id"]}, f)


def expect_running(base, state):
    saved = json.load(open(state))
    s, d = call(base, "GET", f"/api/v1/deployments/{saved['deployment']}", saved["token"])
    expect(s, 200, "read the deployment", d)
    if d.get("status") != "running":
        sys.exit(f"the deployment is not running: {d}")
    print(f"  deployment {d['id']}: running")


if __name__ == "__main__":
    commands = {
        "sqs-event": sqs_event,
        "delete-batch": delete_batch,
        "judge-invoke": judge_invoke,
        "submit": submit,
        "expect-running": expect_running,
    }
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        sys.exit(__doc__)
    commands[sys.argv[1]](*sys.argv[2:])
