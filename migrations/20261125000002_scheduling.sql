-- Clusters, deployments, dependencies and the audit trail.
-- Units: CPU in millicores, RAM in thousandths of a GiB, GPUs as a count.

CREATE TABLE clusters (
    id              UUID PRIMARY KEY,
    organization_id UUID NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name            TEXT NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
    cpu_millis      BIGINT NOT NULL CHECK (cpu_millis >= 0),
    ram_mgib        BIGINT NOT NULL CHECK (ram_mgib >= 0),
    gpu             BIGINT NOT NULL CHECK (gpu >= 0),
    alloc_cpu_millis BIGINT NOT NULL DEFAULT 0,
    alloc_ram_mgib   BIGINT NOT NULL DEFAULT 0,
    alloc_gpu        BIGINT NOT NULL DEFAULT 0,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (organization_id, name),
    -- The books can never go negative or over capacity, whatever the application does.
    CONSTRAINT clusters_cpu_within_capacity CHECK (alloc_cpu_millis BETWEEN 0 AND cpu_millis),
    CONSTRAINT clusters_ram_within_capacity CHECK (alloc_ram_mgib BETWEEN 0 AND ram_mgib),
    CONSTRAINT clusters_gpu_within_capacity CHECK (alloc_gpu BETWEEN 0 AND gpu)
);

CREATE TABLE deployments (
    id                   UUID PRIMARY KEY,
    organization_id      UUID NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    -- What the submitter asked for (NULL = let the scheduler choose) ...
    requested_cluster_id UUID REFERENCES clusters (id) ON DELETE SET NULL,
    -- ... and where it runs or last ran.
    cluster_id           UUID REFERENCES clusters (id) ON DELETE SET NULL,
    name                 TEXT NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
    image                TEXT NOT NULL CHECK (char_length(image) BETWEEN 1 AND 512),
    cpu_millis           BIGINT NOT NULL CHECK (cpu_millis >= 0),
    ram_mgib             BIGINT NOT NULL CHECK (ram_mgib >= 0),
    gpu                  BIGINT NOT NULL CHECK (gpu >= 0),
    priority             INTEGER NOT NULL DEFAULT 50 CHECK (priority BETWEEN 1 AND 100),
    status               TEXT NOT NULL DEFAULT 'pending'
                         CHECK (status IN ('pending', 'running', 'succeeded', 'failed', 'cancelled')),
    reason               JSONB,
    preemption_count     INTEGER NOT NULL DEFAULT 0 CHECK (preemption_count >= 0),
    max_runtime_seconds  INTEGER CHECK (max_runtime_seconds > 0),
    created_by           UUID NOT NULL REFERENCES users (id),
    created_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    started_at           TIMESTAMPTZ,
    finished_at          TIMESTAMPTZ,
    idempotency_key      TEXT,
    request_fingerprint  BYTEA,
    CHECK (cpu_millis + ram_mgib + gpu > 0),
    CHECK (status <> 'running' OR (cluster_id IS NOT NULL AND started_at IS NOT NULL)),
    CHECK ((status IN ('succeeded', 'failed', 'cancelled')) = (finished_at IS NOT NULL)),
    UNIQUE (created_by, idempotency_key)
);
CREATE INDEX deployments_org_created_idx ON deployments (organization_id, created_at DESC, id DESC);
CREATE INDEX deployments_pending_idx ON deployments (organization_id, priority DESC, created_at, id)
    WHERE status = 'pending';
CREATE INDEX deployments_running_idx ON deployments (cluster_id) WHERE status = 'running';

CREATE TABLE deployment_dependencies (
    deployment_id UUID NOT NULL REFERENCES deployments (id) ON DELETE CASCADE,
    depends_on_id UUID NOT NULL REFERENCES deployments (id) ON DELETE CASCADE,
    PRIMARY KEY (deployment_id, depends_on_id),
    CHECK (deployment_id <> depends_on_id)
);
CREATE INDEX deployment_dependencies_depends_on_idx ON deployment_dependencies (depends_on_id);

-- Append-only: nothing updates or deletes an event.
CREATE TABLE deployment_events (
    id                    BIGSERIAL PRIMARY KEY,
    deployment_id         UUID NOT NULL REFERENCES deployments (id) ON DELETE CASCADE,
    at                    TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    type                  TEXT NOT NULL CHECK (type IN ('submitted', 'started', 'preempted', 'requeued',
                              'cancelled', 'succeeded', 'failed', 'dependency_failed')),
    detail                TEXT NOT NULL,
    related_deployment_id UUID REFERENCES deployments (id) ON DELETE SET NULL
);
CREATE INDEX deployment_events_deployment_idx ON deployment_events (deployment_id, id);

-- Token buckets shared by every Lambda instance.
CREATE TABLE rate_limit_buckets (
    key        TEXT PRIMARY KEY,
    tokens     DOUBLE PRECISION NOT NULL,
    -- Whether the request that last touched the bucket was let through.
    allowed    BOOLEAN NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);
