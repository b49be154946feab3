# Hypervisor: `make dev` runs the whole system locally; `make test` runs every test.
# Every variable below is a default only: a value already in the environment wins.

SHELL := /bin/bash
export PATH := $(CURDIR)/.local/venv/bin:$(PATH)

export PORT ?= 3000
export DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/hypervisor
export JWT_SECRET ?= local-development-secret-change-me-0123456789
export AWS_ENDPOINT_URL ?= http://127.0.0.1:4566
export AWS_REGION ?= us-east-1
export AWS_ACCESS_KEY_ID ?= test
export AWS_SECRET_ACCESS_KEY ?= test
export QUEUE_NAME ?= hypervisor-deployments
export QUEUE_URL ?= $(AWS_ENDPOINT_URL)/queue/$(AWS_REGION)/000000000000/$(QUEUE_NAME)
export WEBHOOK_QUEUE_NAME ?= hypervisor-webhooks
export WEBHOOK_QUEUE_URL ?= $(AWS_ENDPOINT_URL)/queue/$(AWS_REGION)/000000000000/$(WEBHOOK_QUEUE_NAME)
# Local receivers (http://127.0.0.1:...) work in development; never set this in AWS.
export WEBHOOK_ALLOW_PRIVATE ?= true
export SWEEP_INTERVAL_SECONDS ?= 3
export SCHEDULER_CONCURRENCY ?= 2
export RATE_LIMIT_PER_MINUTE ?= 600
export AUTH_RATE_LIMIT_PER_MINUTE ?= 10
export DB_MAX_CONNECTIONS ?= 10
export RUST_LOG ?= info
# make sam-local: where `sam local start-api` answers on the host.
export SAM_LOCAL_PORT ?= 3001
# Builds read the committed .sqlx/ query data: no database is needed to compile.
export SQLX_OFFLINE ?= true
# #[sqlx::test] creates one database per test on this server.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/postgres

.PHONY: sam-local sam-venv bench chaos soak openapi dev fuzz test lint fmt migrate services stop-services sqlx-prepare sqlx-check build-lambdas console console-check console-deps

## dev: PostgreSQL + LocalStack + every function on http://127.0.0.1:$(PORT), in the foreground
dev:
	./scripts/dev.sh

## test: unit, handler (real PostgreSQL) and end-to-end (real HTTP, LocalStack SQS) tests, and
## the console in Chromium (tests/tests/console.rs; needs /usr/bin/chromium: apt-get install -y chromium)
test: services sam-venv console-deps
	cargo build --workspace --bins  # the Lambda binaries that tests/lambda_bootstraps.rs runs
	DATABASE_URL=$(TEST_DATABASE_URL) cargo test --workspace --all-targets

## chaos: faults under load (scheduler and API killed, PostgreSQL restarted, LocalStack stopped,
## poisoned queue messages) with the invariants checked after each; restarts shared services
chaos: services
	cargo build --workspace --bins
	DATABASE_URL=$(TEST_DATABASE_URL) cargo test -p e2e-tests --test chaos the_system_survives -- --ignored --nocapture

## soak: SOAK_SECONDS (180) of mixed load with the invariants checked every second
soak: services
	cargo build --workspace --bins
	DATABASE_URL=$(TEST_DATABASE_URL) cargo test -p e2e-tests --test chaos soak -- --ignored --nocapture

## sam-local: every function under `sam local` (Docker in its own network namespace; needs root):
## the API on 127.0.0.1:$(SAM_LOCAL_PORT), the scheduler invoked with scheduled and SQS events
sam-local:
	./scripts/sam-local.sh

## bench: every benchmark; writes the figures into BENCHMARKS.md
bench: services
	./scripts/bench.sh

## fuzz: Schemathesis against the local stack's /openapi.json (no server error, no spec violation)
fuzz: services
	./scripts/fuzz-local.sh

## lint: formatting and clippy, as CI checks them
lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

fmt:
	cargo fmt --all

## migrate: apply migrations to $(DATABASE_URL) (a deploy step; functions never migrate)
migrate:
	cargo run --profile local -p hypervisor-local -- migrate

services:
	@./scripts/ensure-postgres.sh
	@./localstack/start.sh >/dev/null

stop-services:
	./localstack/stop.sh

## openapi: regenerate functions/docs/openapi.json from the routers (after changing a route)
openapi:
	UPDATE_OPENAPI=1 cargo test -p docs --test openapi_is_current

## sqlx-prepare: regenerate .sqlx/ after changing a query or a migration
sqlx-prepare:
	./scripts/sqlx-prepare.sh

sqlx-check:
	./scripts/sqlx-prepare.sh --check

build-lambdas:
	cargo lambda build --release --workspace --exclude hypervisor-local --exclude e2e-tests

## console: rebuild the console's bundle (functions/console/dist, committed) from console/
console:
	./scripts/console-check.sh --write

## console-check: the committed bundle is what console/ builds (as CI checks it)
console-check:
	./scripts/console-check.sh

# The pinned SAM CLI; its wheel carries aws-lambda-rie, which tests/lambda_bootstraps.rs runs.
sam-venv:
	@WITH_SAM=1 ./localstack/setup-venv.sh

# The browser test's npm packages (playwright-core, axe-core), from the lockfile.
console-deps:
	@[ console/node_modules/.package-lock.json -nt console/package-lock.json ] || npm ci --prefix console --no-audit --no-fund --loglevel=error
