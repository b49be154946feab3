-- Users, organizations, memberships, invites and refresh tokens.

CREATE TABLE users (
    id            UUID PRIMARY KEY,
    username      TEXT NOT NULL CHECK (char_length(username) BETWEEN 3 AND 64),
    email         TEXT NOT NULL CHECK (char_length(email) BETWEEN 3 AND 254),
    password_hash TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
-- Case-insensitive uniqueness: "Alice" and "alice" are the same person.
CREATE UNIQUE INDEX users_username_key ON users (lower(username));
CREATE UNIQUE INDEX users_email_key ON users (lower(email));

CREATE TABLE organizations (
    id         UUID PRIMARY KEY,
    name       TEXT NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
    created_by UUID NOT NULL REFERENCES users (id),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE memberships (
    organization_id UUID NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    user_id         UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role            TEXT NOT NULL CHECK (role IN ('admin', 'developer', 'viewer')),
    joined_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (organization_id, user_id)
);
CREATE INDEX memberships_user_id_idx ON memberships (user_id);

-- Only a SHA-256 of each code is kept: a database leak does not leak working invites.
CREATE TABLE invite_codes (
    id              UUID PRIMARY KEY,
    organization_id UUID NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    code_hash       BYTEA NOT NULL UNIQUE,
    role            TEXT NOT NULL CHECK (role IN ('admin', 'developer', 'viewer')),
    created_by      UUID NOT NULL REFERENCES users (id),
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at      TIMESTAMPTZ,
    max_uses        INTEGER CHECK (max_uses > 0),
    uses            INTEGER NOT NULL DEFAULT 0,
    revoked_at      TIMESTAMPTZ,
    CHECK (uses >= 0 AND (max_uses IS NULL OR uses <= max_uses))
);
CREATE INDEX invite_codes_organization_id_idx ON invite_codes (organization_id);

-- Rotation: each refresh marks its token used and issues a new one in the same family.
-- Presenting a used token again revokes the whole family.
CREATE TABLE refresh_tokens (
    id         UUID PRIMARY KEY,
    user_id    UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    family_id  UUID NOT NULL,
    token_hash BYTEA NOT NULL UNIQUE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at TIMESTAMPTZ NOT NULL,
    used_at    TIMESTAMPTZ,
    revoked_at TIMESTAMPTZ
);
CREATE INDEX refresh_tokens_family_id_idx ON refresh_tokens (family_id);
