-- Scale (DESIGN §12): what the sweep and a pass read is live work only, so years of finished
-- deployments cost them nothing; retention can delete history without scanning it.

-- A pass's running list and the sweep's overdue check, by organization (the old running index
-- is by cluster, and the organization's created_at index walks its whole history).
CREATE INDEX deployments_running_org_idx ON deployments (organization_id) WHERE status = 'running';

-- Retention finds finished work by age.
CREATE INDEX deployments_finished_idx ON deployments (finished_at) WHERE finished_at IS NOT NULL;

-- Deleting a deployment clears the links to it and cascades to its events' deliveries: both
-- need an index on the referencing column, or every deleted row scans the whole table.
CREATE INDEX deployment_events_related_idx ON deployment_events (related_deployment_id)
    WHERE related_deployment_id IS NOT NULL;
CREATE INDEX webhook_deliveries_event_idx ON webhook_deliveries (event_id);

-- What the last pass over an organization planned from. A pass that finds the same inputs
-- skips planning: nothing it could decide has changed.
CREATE TABLE scheduler_passes (
    organization_id UUID PRIMARY KEY REFERENCES organizations (id) ON DELETE CASCADE,
    -- NULL after a pass that changed something: the next pass plans again.
    fingerprint     BIGINT,
    planned_at      TIMESTAMPTZ NOT NULL
);

-- A take may lease several tokens at once (an instance then serves them from memory): how many
-- the last take was granted.
ALTER TABLE rate_limit_buckets ADD COLUMN granted INTEGER NOT NULL DEFAULT 0;
