-- Patchbay's initial SQLite schema (the logical model of architecture §3, SQLite dialect).
--
-- Migrations are expand/contract: a migration only ever adds (tables, nullable columns,
-- indexes); removing something happens in a later release, once no binary still reads it. The
-- store runs the migrator with `ignore_missing`, so an older binary still starts against a
-- database that a newer binary has already migrated further.
--
-- Dialect decisions, shared by every table:
--   * ids are TEXT holding the lowercase hyphenated UUID (v7, generated in Rust), so
--     `ORDER BY id` follows creation order and keyset pagination works on the text form;
--   * times are INTEGER microseconds since the Unix epoch (UTC), the precision Postgres keeps;
--   * JSON is TEXT, bytes are BLOB.
-- Foreign keys are enforced (the store opens every connection with `foreign_keys = ON`).

CREATE TABLE tenant (
    id           TEXT PRIMARY KEY NOT NULL,
    -- `org:<claim>` or `user:<iss>|<sub>`; unique so concurrent first logins converge on one row.
    external_key TEXT NOT NULL CONSTRAINT tenant_external_key_key UNIQUE,
    created_at   INTEGER NOT NULL
);

CREATE TABLE app_user (
    id         TEXT PRIMARY KEY NOT NULL,
    tenant_id  TEXT NOT NULL REFERENCES tenant (id),
    issuer     TEXT NOT NULL,
    subject    TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    -- One person in two orgs is two users.
    CONSTRAINT app_user_identity_key UNIQUE (tenant_id, issuer, subject),
    -- Target of composite foreign keys: a row pointing at a user must be in the user's tenant.
    CONSTRAINT app_user_tenant_id_key UNIQUE (tenant_id, id)
);

CREATE TABLE api_key (
    id           TEXT PRIMARY KEY NOT NULL,
    tenant_id    TEXT NOT NULL REFERENCES tenant (id),
    name         TEXT NOT NULL,
    -- Shown to people so they can tell keys apart; never enough to use the key.
    prefix       TEXT NOT NULL,
    -- SHA-256 of the whole key: the only form of the key we keep.
    sha256       BLOB NOT NULL CONSTRAINT api_key_sha256_key UNIQUE CHECK (length(sha256) = 32),
    -- Sorted, comma-separated (`read,write`).
    scopes       TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER,
    -- Debounced: written at most once per window, so a busy key does not write per request.
    last_used_at INTEGER,
    revoked_at   INTEGER
);
CREATE INDEX api_key_tenant_idx ON api_key (tenant_id, id);

CREATE TABLE connection (
    id                  TEXT PRIMARY KEY NOT NULL,
    tenant_id           TEXT NOT NULL REFERENCES tenant (id),
    user_id             TEXT NOT NULL,
    provider            TEXT NOT NULL,
    provider_account_id TEXT NOT NULL,
    provider_user_id    TEXT,
    account_name        TEXT,
    account_email       TEXT,
    -- Granted scopes, space-separated as OAuth writes them.
    scopes              TEXT NOT NULL,
    status              TEXT NOT NULL,
    status_reason       TEXT,
    -- Last per-connection outbox sequence handed out; bumped in the emitting transaction.
    event_seq           INTEGER NOT NULL DEFAULT 0,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL,
    last_refresh_at     INTEGER,
    last_sync_at        INTEGER,
    -- Tombstone: set when cleanup after a disconnect has finished.
    deleted_at          INTEGER,
    FOREIGN KEY (tenant_id, user_id) REFERENCES app_user (tenant_id, id)
);
CREATE INDEX connection_tenant_idx ON connection (tenant_id, id);
CREATE INDEX connection_user_idx ON connection (user_id, id);

-- Encrypted token sets. Read and written only by the token vault (methods come with that work).
CREATE TABLE credential (
    connection_id       TEXT PRIMARY KEY NOT NULL REFERENCES connection (id),
    -- Monday `legacy` / `v2`, or `google`.
    flow                TEXT NOT NULL,
    -- Vault key that encrypted `ciphertext` (rotation re-encrypts lazily).
    key_id              INTEGER NOT NULL,
    ciphertext          BLOB NOT NULL,
    -- Optimistic concurrency: writers say `WHERE version = ?`.
    version             INTEGER NOT NULL DEFAULT 0,
    -- Single-flight refresh across instances.
    refresh_lease_owner TEXT,
    refresh_lease_until INTEGER,
    updated_at          INTEGER NOT NULL
);

CREATE TABLE job (
    id              TEXT PRIMARY KEY NOT NULL,
    kind            TEXT NOT NULL,
    payload         TEXT NOT NULL,
    priority        INTEGER NOT NULL DEFAULT 0,
    run_at          INTEGER NOT NULL,
    dedup_key       TEXT,
    concurrency_key TEXT,
    -- Counted at claim, so a job that crashes its worker still spends attempts.
    attempts        INTEGER NOT NULL DEFAULT 0,
    max_attempts    INTEGER NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'dead')),
    lease_owner     TEXT,
    -- Fencing token: fresh per claim; every worker write must present it.
    lease_token     TEXT,
    lease_until     INTEGER,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
-- At most one queued job per dedup key: the enqueue upsert targets this index.
CREATE UNIQUE INDEX job_dedup_key ON job (dedup_key) WHERE status = 'queued';
-- At most one running job per concurrency key; the claim checks it, this index guarantees it.
CREATE UNIQUE INDEX job_concurrency_key ON job (concurrency_key) WHERE status = 'running';
-- The claim: due queued jobs in priority order.
CREATE INDEX job_claim_idx ON job (priority DESC, run_at, id) WHERE status = 'queued';
-- Crash recovery: running jobs whose lease lapsed.
CREATE INDEX job_lease_idx ON job (lease_until) WHERE status = 'running';
CREATE INDEX job_status_idx ON job (status, kind);

CREATE TABLE event_outbox (
    -- Store-wide append order; AUTOINCREMENT so a position is never reused after a delete.
    position      INTEGER PRIMARY KEY AUTOINCREMENT,
    id            TEXT NOT NULL CONSTRAINT event_outbox_id_key UNIQUE,
    tenant_id     TEXT NOT NULL REFERENCES tenant (id),
    connection_id TEXT REFERENCES connection (id),
    event_type    TEXT NOT NULL,
    -- Per-connection sequence (from connection.event_seq); NULL for connection-less events.
    sequence      INTEGER,
    -- A snapshot of the resource; never a secret.
    payload       TEXT NOT NULL,
    created_at    INTEGER NOT NULL
);
CREATE INDEX event_outbox_tenant_idx ON event_outbox (tenant_id, position);

CREATE TABLE audit_event (
    id         TEXT PRIMARY KEY NOT NULL,
    -- NULL for operator actions that concern no tenant.
    tenant_id  TEXT REFERENCES tenant (id),
    actor      TEXT NOT NULL,
    action     TEXT NOT NULL,
    target     TEXT,
    request_id TEXT,
    ip         TEXT,
    at         INTEGER NOT NULL
);
CREATE INDEX audit_event_tenant_idx ON audit_event (tenant_id, id);

CREATE TABLE instance (
    id           TEXT PRIMARY KEY NOT NULL,
    -- Vault key ids this instance has loaded, comma-separated (`1,2`).
    key_ids      TEXT NOT NULL,
    version      TEXT NOT NULL,
    started_at   INTEGER NOT NULL,
    heartbeat_at INTEGER NOT NULL
);
