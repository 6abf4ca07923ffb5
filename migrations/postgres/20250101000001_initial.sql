-- Patchbay's initial Postgres schema (the logical model of architecture §3, Postgres dialect).
--
-- Migrations are expand/contract: a migration only ever adds (tables, nullable columns,
-- indexes); removing something happens in a later release, once no binary still reads it. The
-- store runs the migrator with `ignore_missing`, so an older binary still starts against a
-- database that a newer binary (another instance mid-rollout) has already migrated further.
--
-- Dialect decisions: native `uuid` ids (v7, generated in Rust, so `ORDER BY id` follows
-- creation order), `timestamptz`, `jsonb`, `bytea`. Tables are created unqualified, in the
-- first schema of `search_path` (tests give each test its own schema that way).

CREATE TABLE tenant (
    id           uuid PRIMARY KEY,
    -- `org:<claim>` or `user:<iss>|<sub>`; unique so concurrent first logins converge on one row.
    external_key text NOT NULL CONSTRAINT tenant_external_key_key UNIQUE,
    created_at   timestamptz NOT NULL
);

CREATE TABLE app_user (
    id         uuid PRIMARY KEY,
    tenant_id  uuid NOT NULL REFERENCES tenant (id),
    issuer     text NOT NULL,
    subject    text NOT NULL,
    created_at timestamptz NOT NULL,
    -- One person in two orgs is two users.
    CONSTRAINT app_user_identity_key UNIQUE (tenant_id, issuer, subject),
    -- Target of composite foreign keys: a row pointing at a user must be in the user's tenant.
    CONSTRAINT app_user_tenant_id_key UNIQUE (tenant_id, id)
);

CREATE TABLE api_key (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL REFERENCES tenant (id),
    name         text NOT NULL,
    -- Shown to people so they can tell keys apart; never enough to use the key.
    prefix       text NOT NULL,
    -- SHA-256 of the whole key: the only form of the key we keep.
    sha256       bytea NOT NULL CONSTRAINT api_key_sha256_key UNIQUE CHECK (length(sha256) = 32),
    -- Sorted, comma-separated (`read,write`).
    scopes       text NOT NULL,
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz,
    -- Debounced: written at most once per window, so a busy key does not write per request.
    last_used_at timestamptz,
    revoked_at   timestamptz
);
CREATE INDEX api_key_tenant_idx ON api_key (tenant_id, id);

CREATE TABLE connection (
    id                  uuid PRIMARY KEY,
    tenant_id           uuid NOT NULL REFERENCES tenant (id),
    user_id             uuid NOT NULL,
    provider            text NOT NULL,
    provider_account_id text NOT NULL,
    provider_user_id    text,
    account_name        text,
    account_email       text,
    -- Granted scopes, space-separated as OAuth writes them.
    scopes              text NOT NULL,
    status              text NOT NULL,
    status_reason       text,
    -- Last per-connection outbox sequence handed out. Emitters bump it with
    -- `UPDATE … RETURNING` inside their transaction; the row lock serializes them.
    event_seq           bigint NOT NULL DEFAULT 0,
    created_at          timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL,
    last_refresh_at     timestamptz,
    last_sync_at        timestamptz,
    -- Tombstone: set when cleanup after a disconnect has finished.
    deleted_at          timestamptz,
    FOREIGN KEY (tenant_id, user_id) REFERENCES app_user (tenant_id, id)
);
CREATE INDEX connection_tenant_idx ON connection (tenant_id, id);
CREATE INDEX connection_user_idx ON connection (user_id, id);

-- Encrypted token sets. Read and written only by the token vault (methods come with that work).
CREATE TABLE credential (
    connection_id       uuid PRIMARY KEY REFERENCES connection (id),
    -- Monday `legacy` / `v2`, or `google`.
    flow                text NOT NULL,
    -- Vault key that encrypted `ciphertext` (rotation re-encrypts lazily).
    key_id              bigint NOT NULL,
    ciphertext          bytea NOT NULL,
    -- Optimistic concurrency: writers say `WHERE version = $n`.
    version             bigint NOT NULL DEFAULT 0,
    -- Single-flight refresh across instances: one UPDATE takes the lease, no transaction held.
    refresh_lease_owner text,
    refresh_lease_until timestamptz,
    updated_at          timestamptz NOT NULL
);

CREATE TABLE job (
    id              uuid PRIMARY KEY,
    kind            text NOT NULL,
    payload         jsonb NOT NULL,
    priority        integer NOT NULL DEFAULT 0,
    run_at          timestamptz NOT NULL,
    dedup_key       text,
    concurrency_key text,
    -- Counted at claim, so a job that crashes its worker still spends attempts.
    attempts        integer NOT NULL DEFAULT 0,
    max_attempts    integer NOT NULL,
    status          text NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'dead')),
    lease_owner     text,
    -- Fencing token: fresh per claim; every worker write must present it.
    lease_token     uuid,
    lease_until     timestamptz,
    last_error      text,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);
-- At most one queued job per dedup key: the enqueue upsert targets this index.
CREATE UNIQUE INDEX job_dedup_key ON job (dedup_key) WHERE status = 'queued';
-- At most one running job per concurrency key. The claim's NOT EXISTS check reads a snapshot,
-- so two workers can still pick two jobs of one key; this index makes the second UPDATE fail,
-- and the store treats that as a lost race.
CREATE UNIQUE INDEX job_concurrency_key ON job (concurrency_key) WHERE status = 'running';
-- The claim: due queued jobs in priority order.
CREATE INDEX job_claim_idx ON job (priority DESC, run_at, id) WHERE status = 'queued';
-- Crash recovery: running jobs whose lease lapsed.
CREATE INDEX job_lease_idx ON job (lease_until) WHERE status = 'running';
CREATE INDEX job_status_idx ON job (status, kind);

CREATE TABLE event_outbox (
    -- Store-wide append order. Positions are handed out at insert, not at commit, so a reader
    -- paging by position must stay behind in-flight transactions (the dispatcher's concern).
    position      bigserial PRIMARY KEY,
    id            uuid NOT NULL CONSTRAINT event_outbox_id_key UNIQUE,
    tenant_id     uuid NOT NULL REFERENCES tenant (id),
    connection_id uuid REFERENCES connection (id),
    event_type    text NOT NULL,
    -- Per-connection sequence (from connection.event_seq); NULL for connection-less events.
    sequence      bigint,
    -- A snapshot of the resource; never a secret.
    payload       jsonb NOT NULL,
    created_at    timestamptz NOT NULL
);
CREATE INDEX event_outbox_tenant_idx ON event_outbox (tenant_id, position);

CREATE TABLE audit_event (
    id         uuid PRIMARY KEY,
    -- NULL for operator actions that concern no tenant.
    tenant_id  uuid REFERENCES tenant (id),
    actor      text NOT NULL,
    action     text NOT NULL,
    target     text,
    request_id text,
    ip         text,
    at         timestamptz NOT NULL
);
CREATE INDEX audit_event_tenant_idx ON audit_event (tenant_id, id);

CREATE TABLE instance (
    id           uuid PRIMARY KEY,
    -- Vault key ids this instance has loaded, comma-separated (`1,2`).
    key_ids      text NOT NULL,
    version      text NOT NULL,
    started_at   timestamptz NOT NULL,
    heartbeat_at timestamptz NOT NULL
);
