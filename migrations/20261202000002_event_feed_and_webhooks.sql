-- The organization event feed (every deployment event, in commit order) and webhooks with an
-- outbox written in the same transaction as the events it reports.

-- Which transaction wrote an event, so the transaction's events can be found at its commit.
ALTER TABLE deployment_events ADD COLUMN xid xid8 NOT NULL DEFAULT pg_current_xact_id();
CREATE INDEX deployment_events_xid_idx ON deployment_events (xid);

-- One row per (transaction, organization) that wrote events. Its `seq` is taken at commit, by
-- a deferred trigger, under a per-organization lock held until the commit ends: so batches of
-- one organization get increasing `seq` in the order they commit, and once a reader sees a
-- batch, every batch with a smaller `seq` is already visible. A plain sequence on the events
-- would not do: a smaller id can commit after a larger one was read.
CREATE SEQUENCE event_batch_seq;
CREATE TABLE event_batches (
    xid             xid8 NOT NULL,
    organization_id UUID NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    seq             BIGINT,
    PRIMARY KEY (xid, organization_id)
);
CREATE UNIQUE INDEX event_batches_feed_idx ON event_batches (organization_id, seq);

CREATE FUNCTION deployment_events_open_batches() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO event_batches (xid, organization_id)
    SELECT DISTINCT pg_current_xact_id(), d.organization_id
    FROM new_rows n JOIN deployments d ON d.id = n.deployment_id
    ON CONFLICT DO NOTHING;
    -- The outbox: one delivery per matching live webhook, in this same transaction.
    INSERT INTO webhook_deliveries (webhook_id, event_id, organization_id)
    SELECT w.id, n.id, w.organization_id
    FROM new_rows n
    JOIN deployments d ON d.id = n.deployment_id
    JOIN webhooks w ON w.organization_id = d.organization_id AND w.deleted_at IS NULL
                   AND (w.event_types IS NULL OR n.type = ANY (w.event_types));
    RETURN NULL;
END
$$;

CREATE FUNCTION event_batches_seal() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- Serializes the commits of this organization's event-writing transactions from here to
    -- the end of the commit; other organizations are not held up (a hash collision only
    -- serializes two organizations, which is harmless).
    PERFORM pg_advisory_xact_lock(hashtextextended('event_batches:' || NEW.organization_id::text, 0));
    UPDATE event_batches SET seq = nextval('event_batch_seq')
    WHERE xid = NEW.xid AND organization_id = NEW.organization_id;
    RETURN NULL;
END
$$;

-- The webhooks of an organization. The secret must be kept to sign; it is never shown again.
CREATE TABLE webhooks (
    id              UUID PRIMARY KEY,
    organization_id UUID NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    url             TEXT NOT NULL CHECK (char_length(url) BETWEEN 1 AND 2048),
    -- NULL: every event type.
    event_types     TEXT[],
    description     TEXT CHECK (char_length(description) <= 500),
    secret          TEXT NOT NULL,
    created_by      UUID NOT NULL REFERENCES users (id),
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- Deleted webhooks stay for their delivery history; nothing is delivered to them.
    deleted_at      TIMESTAMPTZ
);
CREATE INDEX webhooks_organization_idx ON webhooks (organization_id) WHERE deleted_at IS NULL;

-- One delivery (the outbox row) per webhook and event, retried until delivered or failed.
CREATE TABLE webhook_deliveries (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    webhook_id      UUID NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_id        BIGINT NOT NULL REFERENCES deployment_events (id) ON DELETE CASCADE,
    organization_id UUID NOT NULL,
    state           TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (webhook_id, event_id)
);
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at) WHERE state = 'pending';

-- Every attempt, as the deliveries view shows it. At most 1 KB of the receiver's answer.
CREATE TABLE webhook_attempts (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_id BIGINT NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    attempt     INTEGER NOT NULL,
    status_code INTEGER,
    error       TEXT,
    response    TEXT CHECK (octet_length(response) <= 1024),
    delivered   BOOLEAN NOT NULL,
    at          TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX webhook_attempts_delivery_idx ON webhook_attempts (delivery_id, id);

CREATE TRIGGER deployment_events_open_batches AFTER INSERT ON deployment_events
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION deployment_events_open_batches();
CREATE CONSTRAINT TRIGGER event_batches_seal AFTER INSERT ON event_batches
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION event_batches_seal();

-- Events written before the feed existed: one batch per organization, oldest first.
INSERT INTO event_batches (xid, organization_id, seq)
SELECT DISTINCT e.xid, d.organization_id, 0
FROM deployment_events e JOIN deployments d ON d.id = e.deployment_id;
