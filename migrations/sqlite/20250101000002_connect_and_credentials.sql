-- Connect sessions, OAuth states, and what the token vault needs on credentials
-- (architecture §3 "Connect", §4.1, §4.2). Expand only: new tables, a nullable column, indexes.

-- Target of the composite foreign keys below: a row naming a connection must share its tenant.
CREATE UNIQUE INDEX connection_tenant_id_key ON connection (tenant_id, id);

-- One browser connect attempt. Only the SHA-256 of its token is stored; consuming it is one
-- `UPDATE … WHERE consumed_at IS NULL AND expires_at > now`, so it is single use.
CREATE TABLE connect_session (
    id                      TEXT PRIMARY KEY NOT NULL,
    token_sha256            BLOB NOT NULL CONSTRAINT connect_session_token_key UNIQUE
                                CHECK (length(token_sha256) = 32),
    tenant_id               TEXT NOT NULL REFERENCES tenant (id),
    user_id                 TEXT NOT NULL,
    provider                TEXT NOT NULL,
    mode                    TEXT NOT NULL CHECK (mode IN ('redirect', 'popup')),
    return_to               TEXT,
    opener_origin           TEXT,
    -- A reconnect names the tenant's connection (the composite key refuses another tenant's).
    reconnect_connection_id TEXT,
    created_at              INTEGER NOT NULL,
    expires_at              INTEGER NOT NULL,
    consumed_at             INTEGER,
    -- NULL while pending; the first outcome written wins.
    outcome                 TEXT CHECK (outcome IN ('connected', 'error')),
    outcome_connection_id   TEXT,
    outcome_error           TEXT,
    finished_at             INTEGER,
    CONSTRAINT connect_session_tenant_id_key UNIQUE (tenant_id, id),
    CONSTRAINT connect_session_outcome_shape CHECK (
        (outcome IS NULL AND outcome_connection_id IS NULL AND outcome_error IS NULL)
        OR (outcome = 'connected' AND outcome_connection_id IS NOT NULL AND outcome_error IS NULL)
        OR (outcome = 'error' AND outcome_error IS NOT NULL AND outcome_connection_id IS NULL)),
    FOREIGN KEY (tenant_id, user_id) REFERENCES app_user (tenant_id, id),
    FOREIGN KEY (tenant_id, reconnect_connection_id) REFERENCES connection (tenant_id, id),
    FOREIGN KEY (tenant_id, outcome_connection_id) REFERENCES connection (tenant_id, id)
);
CREATE INDEX connect_session_expires_idx ON connect_session (expires_at);

-- One pending authorization, keyed by the SHA-256 of `state`; consumed by `DELETE … RETURNING`.
CREATE TABLE oauth_state (
    state_sha256   BLOB PRIMARY KEY NOT NULL CHECK (length(state_sha256) = 32),
    provider       TEXT NOT NULL,
    tenant_id      TEXT NOT NULL REFERENCES tenant (id),
    user_id        TEXT NOT NULL,
    session_id     TEXT NOT NULL,
    -- Encrypted by the vault, bound to this state; NULL without PKCE.
    pkce_verifier  BLOB,
    -- SHA-256 of the random value in the browser's per-state cookie.
    binding_sha256 BLOB NOT NULL CHECK (length(binding_sha256) = 32),
    redirect_uri   TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    FOREIGN KEY (tenant_id, user_id) REFERENCES app_user (tenant_id, id),
    FOREIGN KEY (tenant_id, session_id) REFERENCES connect_session (tenant_id, id)
);
CREATE INDEX oauth_state_expires_idx ON oauth_state (expires_at);

-- When the access token expires (not secret): drives the refresh sweep. NULL: never.
ALTER TABLE credential ADD COLUMN access_expires_at INTEGER;
CREATE INDEX credential_access_expires_idx ON credential (access_expires_at) WHERE access_expires_at IS NOT NULL;
-- `vault status` counts per key; `vault rotate` finds rows not under the primary key.
CREATE INDEX credential_key_idx ON credential (key_id, connection_id);

-- One live connection per (tenant, user, provider account): a concurrent second insert by the
-- same user conflicts instead of duplicating. Rows being disconnected are hidden, and so left
-- out, so the same account can be connected again while its old row's cleanup still runs.
CREATE UNIQUE INDEX connection_account_key ON connection (tenant_id, user_id, provider, provider_account_id)
    WHERE deleted_at IS NULL AND status <> 'disconnecting';
