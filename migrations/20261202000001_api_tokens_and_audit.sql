-- Organization API tokens, who submitted a deployment, and the append-only audit log.

-- A token belongs to its organization, not to the person who made it: it keeps working when
-- its creator leaves. Only a SHA-256 of the secret is kept.
CREATE TABLE api_tokens (
    id              UUID PRIMARY KEY,
    organization_id UUID NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name            TEXT NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
    role            TEXT NOT NULL CHECK (role IN ('developer', 'viewer')),
    token_hash      BYTEA NOT NULL UNIQUE,
    created_by      UUID NOT NULL REFERENCES users (id),
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at      TIMESTAMPTZ NOT NULL,
    -- Kept to the minute, so a busy token writes its row at most once a minute.
    last_used_at    TIMESTAMPTZ,
    revoked_at      TIMESTAMPTZ
);
CREATE INDEX api_tokens_organization_idx ON api_tokens (organization_id, created_at DESC, id DESC);

-- A deployment is submitted by a person or by a token; submitter_id is whichever it was.
ALTER TABLE deployments
    ALTER COLUMN created_by DROP NOT NULL,
    ADD COLUMN submitted_by_token UUID REFERENCES api_tokens (id),
    ADD COLUMN submitter_id UUID GENERATED ALWAYS AS (COALESCE(created_by, submitted_by_token)) STORED,
    ADD CONSTRAINT deployments_one_submitter CHECK ((created_by IS NULL) <> (submitted_by_token IS NULL)),
    DROP CONSTRAINT deployments_created_by_idempotency_key_key,
    ADD CONSTRAINT deployments_submitter_idempotency_key_key UNIQUE (submitter_id, idempotency_key);

-- The name an actor goes by now: a user's username or a token's name.
CREATE FUNCTION actor_name(kind TEXT, id UUID) RETURNS TEXT
LANGUAGE sql STABLE AS $$
    SELECT CASE kind
        WHEN 'user' THEN (SELECT username FROM users WHERE users.id = actor_name.id)
        WHEN 'token' THEN (SELECT name FROM api_tokens WHERE api_tokens.id = actor_name.id)
    END
$$;

-- Who caused an event, where someone did (submitted, cancelled, completed); NULL for the
-- scheduler's own decisions.
ALTER TABLE deployment_events
    ADD COLUMN actor_kind TEXT CHECK (actor_kind IN ('user', 'token')),
    ADD COLUMN actor_id UUID,
    ADD COLUMN actor_name TEXT,
    ADD CONSTRAINT deployment_events_actor_complete
        CHECK ((actor_kind IS NULL) = (actor_id IS NULL) AND (actor_kind IS NULL) = (actor_name IS NULL));

-- Every change an admin or a token makes to an organization, written in the same transaction
-- as the change. The actor's and target's names are copied as they were at the time.
CREATE TABLE audit_log (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    organization_id UUID NOT NULL REFERENCES organizations (id),
    at              TIMESTAMPTZ NOT NULL DEFAULT now(),
    actor_kind      TEXT NOT NULL CHECK (actor_kind IN ('user', 'token')),
    actor_id        UUID NOT NULL,
    actor_name      TEXT NOT NULL,
    action          TEXT NOT NULL CHECK (action ~ '^[a-z_]+\.[a-z_]+$'),
    target_type     TEXT NOT NULL,
    target_id       UUID,
    target_name     TEXT,
    detail          JSONB NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_organization_idx ON audit_log (organization_id, id DESC);

-- Append-only, whatever the application does: no update, delete or truncate.
CREATE FUNCTION audit_log_is_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_log_no_update_or_delete BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_is_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_is_append_only();
