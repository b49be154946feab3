# Shared defaults for the local stack. Sourced by the scripts in this folder; a variable that is
# already set wins, so `PORT=3100 make dev` does what it says.
: "${LOCAL_DIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.local}"
: "${VENV:=$LOCAL_DIR/venv}"
: "${LOCALSTACK_PORT:=4566}"
: "${AWS_ENDPOINT_URL:=http://127.0.0.1:$LOCALSTACK_PORT}"
: "${AWS_REGION:=us-east-1}"
: "${AWS_ACCESS_KEY_ID:=test}"
: "${AWS_SECRET_ACCESS_KEY:=test}"
: "${QUEUE_NAME:=hypervisor-deployments}"
: "${DATABASE_URL:=postgres://postgres@127.0.0.1:5432/hypervisor}"
export LOCAL_DIR VENV LOCALSTACK_PORT AWS_ENDPOINT_URL AWS_REGION AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY QUEUE_NAME DATABASE_URL
