-- Fair sharing inside an organization (DESIGN.md §9): the admins' levers, per-submitter quotas,
-- and when each deployment last entered the queue (aging counts from there).

ALTER TABLE organizations
    ADD COLUMN developer_max_priority INTEGER NOT NULL DEFAULT 100
        CHECK (developer_max_priority BETWEEN 1 AND 100),
    ADD COLUMN aging_points_per_hour INTEGER NOT NULL DEFAULT 0
        CHECK (aging_points_per_hour BETWEEN 0 AND 100),
    ADD COLUMN aging_max_boost INTEGER NOT NULL DEFAULT 10 CHECK (aging_max_boost BETWEEN 0 AND 99),
    ADD COLUMN fair_share BOOLEAN NOT NULL DEFAULT false;

-- What one submitter's deployments may hold running at once. The submitter is a member (a
-- user's id) or an API token (its id), as in deployments.submitter_id; NULL = not capped.
CREATE TABLE submitter_quotas (
    organization_id UUID NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    submitter_id    UUID NOT NULL,
    cpu_millis      BIGINT CHECK (cpu_millis >= 0),
    ram_mgib        BIGINT CHECK (ram_mgib >= 0),
    gpu             BIGINT CHECK (gpu >= 0),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (organization_id, submitter_id)
);

-- Submission time, or the time of the last preemption; existing rows count from submission.
ALTER TABLE deployments ADD COLUMN queued_at TIMESTAMPTZ;
UPDATE deployments SET queued_at = created_at;
ALTER TABLE deployments
    ALTER COLUMN queued_at SET DEFAULT now(),
    ALTER COLUMN queued_at SET NOT NULL;

-- The queue-order priority of §9, exactly as the scheduler computes it (scheduling::Fairness::
-- effective_priority): base + min(max_boost, floor(seconds waited × points per hour / 3600)).
CREATE FUNCTION effective_priority(priority INTEGER, queued_at TIMESTAMPTZ, points_per_hour INTEGER,
                                   max_boost INTEGER, at TIMESTAMPTZ)
RETURNS INTEGER LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN points_per_hour <= 0 OR max_boost <= 0 THEN priority
                ELSE priority + LEAST(max_boost::bigint,
                    GREATEST(0, floor(extract(epoch FROM at - queued_at)))::bigint * points_per_hour / 3600)::integer
           END
$$;
