-- Webhooks in (architecture §3, §4.4): third-party sources with their sealed secrets, and the
-- inbox every verified delivery is committed to before it is acknowledged. Expand only: new
-- tables and indexes; nothing here reads or changes an earlier table.

-- A tenant's third-party webhook source: one URL (`/webhooks/sources/{id}`), its scheme fixed
-- at creation. `settings` is JSON (the generic scheme's header names and encoding).
CREATE TABLE webhook_source (
    id         TEXT PRIMARY KEY NOT NULL,
    tenant_id  TEXT NOT NULL REFERENCES tenant (id),
    name       TEXT NOT NULL,
    scheme     TEXT NOT NULL CHECK (scheme IN ('standard_webhooks', 'github', 'generic_hmac')),
    settings   TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX webhook_source_tenant_idx ON webhook_source (tenant_id, id);

-- A source's signing secrets, sealed with the vault (purpose `webhook_secret`, bound to tenant,
-- source and secret id). Several may be valid at once: a rotation gives the old ones a
-- `valid_until` (the overlap) instead of deleting them; NULL means valid until rotated.
CREATE TABLE webhook_source_secret (
    id          TEXT PRIMARY KEY NOT NULL,
    source_id   TEXT NOT NULL REFERENCES webhook_source (id),
    key_id      INTEGER NOT NULL,
    ciphertext  BLOB NOT NULL,
    created_at  INTEGER NOT NULL,
    valid_until INTEGER
);
CREATE INDEX webhook_source_secret_source_idx ON webhook_source_secret (source_id, id);

-- The inbox. `source_kind` is `source` (a webhook_source), later `monday` or `google`, so
-- `source_id` is text and not a foreign key. The dedup key is unique per source: a redelivery
-- (or two concurrent deliveries) of one message stores one row. The body is sealed (purpose
-- `webhook_body`, bound to tenant and event id); `headers` holds only the few headers the
-- processor needs (never a signature). `tenant_id` is NULL only for provider-wide events.
CREATE TABLE webhook_event (
    id          TEXT PRIMARY KEY NOT NULL,
    source_kind TEXT NOT NULL CHECK (source_kind IN ('source', 'monday', 'google')),
    source_id   TEXT NOT NULL,
    tenant_id   TEXT REFERENCES tenant (id),
    dedup_key   TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    headers     TEXT NOT NULL,
    key_id      INTEGER NOT NULL,
    body        BLOB NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('pending', 'processed', 'failed')),
    attempts    INTEGER NOT NULL DEFAULT 0,
    error       TEXT,
    CONSTRAINT webhook_event_dedup_key UNIQUE (source_kind, source_id, dedup_key)
);
CREATE INDEX webhook_event_tenant_idx ON webhook_event (tenant_id, id);
CREATE INDEX webhook_event_pending_idx ON webhook_event (status, id) WHERE status = 'pending';
