-- Events out (architecture §3, §4.5): a tenant's event endpoints with sealed rotating secrets,
-- one delivery row per (outbox event, endpoint), and a per-event dispatch mark on the outbox.
-- Expand only: new tables, one new nullable column and indexes.

-- Outbox positions are handed out at insert, not at commit, so a position cursor could step
-- over an event whose transaction commits late. Each event is marked instead, in the same
-- transaction that creates its deliveries. Events written before this migration had no
-- endpoint to go to: they are marked dispatched here.
ALTER TABLE event_outbox ADD COLUMN dispatched_at INTEGER;
UPDATE event_outbox SET dispatched_at = created_at;
CREATE INDEX event_outbox_undispatched_idx ON event_outbox (position) WHERE dispatched_at IS NULL;

-- A tenant's endpoint. `event_types` is a JSON array of dotted names (never empty). `failing_since` is set by
-- the first failed attempt after a success; an endpoint failing longer than the configured
-- period gets `disabled_at` and no more attempts.
CREATE TABLE event_endpoint (
    id            TEXT PRIMARY KEY NOT NULL,
    tenant_id     TEXT NOT NULL REFERENCES tenant (id),
    url           TEXT NOT NULL,
    event_types   TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    disabled_at   INTEGER,
    failing_since INTEGER
);
CREATE INDEX event_endpoint_tenant_idx ON event_endpoint (tenant_id, id);

-- An endpoint's signing secrets, sealed (purpose `endpoint_secret`, bound to tenant, endpoint
-- and secret id); several are valid during a rotation overlap and each signs every attempt.
CREATE TABLE event_endpoint_secret (
    id          TEXT PRIMARY KEY NOT NULL,
    endpoint_id TEXT NOT NULL REFERENCES event_endpoint (id) ON DELETE CASCADE,
    key_id      INTEGER NOT NULL,
    ciphertext  BLOB NOT NULL,
    created_at  INTEGER NOT NULL,
    valid_until INTEGER
);
CREATE INDEX event_endpoint_secret_endpoint_idx ON event_endpoint_secret (endpoint_id, id);

-- One event's delivery to one endpoint. `event_id` is the outbox event's id (the webhook-id of
-- every attempt); not a foreign key so outbox retention can prune independently.
CREATE TABLE event_delivery (
    id              TEXT PRIMARY KEY NOT NULL,
    tenant_id       TEXT NOT NULL REFERENCES tenant (id),
    endpoint_id     TEXT NOT NULL REFERENCES event_endpoint (id) ON DELETE CASCADE,
    event_id        TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'exhausted')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER,
    last_status     INTEGER,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    delivered_at    INTEGER,
    CONSTRAINT event_delivery_once UNIQUE (endpoint_id, event_id)
);
CREATE INDEX event_delivery_endpoint_idx ON event_delivery (endpoint_id, id);
CREATE INDEX event_delivery_due_idx ON event_delivery (next_attempt_at) WHERE status = 'pending';
