-- Sync (architecture §3, §4.3): runs and per-part state, the per-connection change sequence,
-- the six sealed record tables, rate buckets and slots, circuit breakers and idempotency keys.
-- Expand only: new tables and indexes. Same logical shape as the Postgres migration 5; SQLite
-- dialect as in migration 1 (TEXT ids, INTEGER microsecond times, TEXT JSON, BLOB bytes,
-- INTEGER 0/1 booleans).

-- One row per run. The composite key keeps a run in its connection's tenant. `"trigger"` is
-- quoted: it is an SQLite keyword.
CREATE TABLE sync_run (
    id            TEXT PRIMARY KEY NOT NULL,
    tenant_id     TEXT NOT NULL,
    connection_id TEXT NOT NULL,
    resource      TEXT NOT NULL,
    "trigger"     TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'skipped')),
    job_id        TEXT,
    queued_at     INTEGER NOT NULL,
    started_at    INTEGER,
    finished_at   INTEGER,
    api_calls     INTEGER NOT NULL DEFAULT 0,
    upserted      INTEGER NOT NULL DEFAULT 0,
    deleted       INTEGER NOT NULL DEFAULT 0,
    -- A stable error class only; the message never carries record data.
    error_code    TEXT,
    error_message TEXT,
    FOREIGN KEY (tenant_id, connection_id) REFERENCES connection (tenant_id, id)
);
-- The newest-first list of a connection's runs.
CREATE INDEX sync_run_connection_idx ON sync_run (connection_id, queued_at DESC, id DESC);
-- One queued run per connection: a second request merges into it.
CREATE UNIQUE INDEX sync_run_queued_key ON sync_run (connection_id) WHERE status = 'queued';
-- The repair sweep looks for connections without a queued or running run.
CREATE INDEX sync_run_open_idx ON sync_run (connection_id) WHERE status IN ('queued', 'running');

-- Where each part of a connection's sync stands. `version` is the optimistic guard every
-- checkpoint write names, so a checkpoint never goes backwards. No foreign key: purge removes
-- these rows after the connection's tombstone, like the records.
CREATE TABLE sync_state (
    connection_id        TEXT NOT NULL,
    part                 TEXT NOT NULL,
    checkpoint           TEXT NOT NULL,
    version              INTEGER NOT NULL,
    generation           INTEGER NOT NULL,
    dirty                INTEGER NOT NULL DEFAULT 0,
    dirty_at             INTEGER,
    signal_healthy_until INTEGER,
    last_success_at      INTEGER,
    last_full_at         INTEGER,
    updated_at           INTEGER NOT NULL,
    PRIMARY KEY (connection_id, part)
);

-- The per-connection change_seq counter. Pages take their seqs from it inside the page
-- transaction, so commits become visible in seq order and the change feed's high-water mark
-- is simply the committed `last_seq`.
CREATE TABLE sync_sequence (
    connection_id TEXT PRIMARY KEY NOT NULL,
    last_seq      INTEGER NOT NULL
);

-- Six record tables with identical columns, one per RecordKind (table name = kind). The
-- provider JSON and free text are sealed by the vault (`sealed`, under `key_id`); only what
-- queries need is in clear. `hash` (keyed) tells an unchanged record from a changed one;
-- `change_seq` orders the change feed; `generation` drives mark-and-sweep deletes. No foreign
-- key to connection: disconnect tombstones the connection and purge deletes these in batches.
CREATE TABLE monday_board (
    id                  TEXT PRIMARY KEY NOT NULL,
    tenant_id           TEXT NOT NULL,
    connection_id       TEXT NOT NULL,
    provider_id         TEXT NOT NULL,
    parent_id           TEXT,
    hash                BLOB NOT NULL,
    sealed              BLOB NOT NULL,
    key_id              INTEGER NOT NULL,
    starts_at           INTEGER,
    ends_at             INTEGER,
    series_id           TEXT,
    status              TEXT,
    provider_updated_at INTEGER,
    generation          INTEGER NOT NULL,
    change_seq          INTEGER NOT NULL,
    deleted_at          INTEGER,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL,
    CONSTRAINT monday_board_provider_key UNIQUE (connection_id, provider_id)
);
CREATE INDEX monday_board_change_idx ON monday_board (connection_id, change_seq);
CREATE INDEX monday_board_parent_idx ON monday_board (connection_id, parent_id, id);
CREATE INDEX monday_board_key_idx ON monday_board (key_id);

CREATE TABLE monday_column (
    id                  TEXT PRIMARY KEY NOT NULL,
    tenant_id           TEXT NOT NULL,
    connection_id       TEXT NOT NULL,
    provider_id         TEXT NOT NULL,
    parent_id           TEXT,
    hash                BLOB NOT NULL,
    sealed              BLOB NOT NULL,
    key_id              INTEGER NOT NULL,
    starts_at           INTEGER,
    ends_at             INTEGER,
    series_id           TEXT,
    status              TEXT,
    provider_updated_at INTEGER,
    generation          INTEGER NOT NULL,
    change_seq          INTEGER NOT NULL,
    deleted_at          INTEGER,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL,
    CONSTRAINT monday_column_provider_key UNIQUE (connection_id, provider_id)
);
CREATE INDEX monday_column_change_idx ON monday_column (connection_id, change_seq);
CREATE INDEX monday_column_parent_idx ON monday_column (connection_id, parent_id, id);
CREATE INDEX monday_column_key_idx ON monday_column (key_id);

CREATE TABLE monday_group (
    id                  TEXT PRIMARY KEY NOT NULL,
    tenant_id           TEXT NOT NULL,
    connection_id       TEXT NOT NULL,
    provider_id         TEXT NOT NULL,
    parent_id           TEXT,
    hash                BLOB NOT NULL,
    sealed              BLOB NOT NULL,
    key_id              INTEGER NOT NULL,
    starts_at           INTEGER,
    ends_at             INTEGER,
    series_id           TEXT,
    status              TEXT,
    provider_updated_at INTEGER,
    generation          INTEGER NOT NULL,
    change_seq          INTEGER NOT NULL,
    deleted_at          INTEGER,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL,
    CONSTRAINT monday_group_provider_key UNIQUE (connection_id, provider_id)
);
CREATE INDEX monday_group_change_idx ON monday_group (connection_id, change_seq);
CREATE INDEX monday_group_parent_idx ON monday_group (connection_id, parent_id, id);
CREATE INDEX monday_group_key_idx ON monday_group (key_id);

CREATE TABLE monday_item (
    id                  TEXT PRIMARY KEY NOT NULL,
    tenant_id           TEXT NOT NULL,
    connection_id       TEXT NOT NULL,
    provider_id         TEXT NOT NULL,
    parent_id           TEXT,
    hash                BLOB NOT NULL,
    sealed              BLOB NOT NULL,
    key_id              INTEGER NOT NULL,
    starts_at           INTEGER,
    ends_at             INTEGER,
    series_id           TEXT,
    status              TEXT,
    provider_updated_at INTEGER,
    generation          INTEGER NOT NULL,
    change_seq          INTEGER NOT NULL,
    deleted_at          INTEGER,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL,
    CONSTRAINT monday_item_provider_key UNIQUE (connection_id, provider_id)
);
CREATE INDEX monday_item_change_idx ON monday_item (connection_id, change_seq);
CREATE INDEX monday_item_parent_idx ON monday_item (connection_id, parent_id, id);
CREATE INDEX monday_item_key_idx ON monday_item (key_id);

CREATE TABLE google_calendar (
    id                  TEXT PRIMARY KEY NOT NULL,
    tenant_id           TEXT NOT NULL,
    connection_id       TEXT NOT NULL,
    provider_id         TEXT NOT NULL,
    parent_id           TEXT,
    hash                BLOB NOT NULL,
    sealed              BLOB NOT NULL,
    key_id              INTEGER NOT NULL,
    starts_at           INTEGER,
    ends_at             INTEGER,
    series_id           TEXT,
    status              TEXT,
    provider_updated_at INTEGER,
    generation          INTEGER NOT NULL,
    change_seq          INTEGER NOT NULL,
    deleted_at          INTEGER,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL,
    CONSTRAINT google_calendar_provider_key UNIQUE (connection_id, provider_id)
);
CREATE INDEX google_calendar_change_idx ON google_calendar (connection_id, change_seq);
CREATE INDEX google_calendar_parent_idx ON google_calendar (connection_id, parent_id, id);
CREATE INDEX google_calendar_key_idx ON google_calendar (key_id);

CREATE TABLE google_event (
    id                  TEXT PRIMARY KEY NOT NULL,
    tenant_id           TEXT NOT NULL,
    connection_id       TEXT NOT NULL,
    provider_id         TEXT NOT NULL,
    parent_id           TEXT,
    hash                BLOB NOT NULL,
    sealed              BLOB NOT NULL,
    key_id              INTEGER NOT NULL,
    starts_at           INTEGER,
    ends_at             INTEGER,
    series_id           TEXT,
    status              TEXT,
    provider_updated_at INTEGER,
    generation          INTEGER NOT NULL,
    change_seq          INTEGER NOT NULL,
    deleted_at          INTEGER,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL,
    CONSTRAINT google_event_provider_key UNIQUE (connection_id, provider_id)
);
CREATE INDEX google_event_change_idx ON google_event (connection_id, change_seq);
CREATE INDEX google_event_parent_idx ON google_event (connection_id, parent_id, id);
CREATE INDEX google_event_key_idx ON google_event (key_id);

-- Calendar time-window queries and a recurring series' exceptions.
CREATE INDEX google_event_window_idx ON google_event (connection_id, parent_id, starts_at);
CREATE INDEX google_event_series_idx ON google_event (connection_id, series_id);

-- GCRA buckets: one theoretical arrival time each, stepped by one upsert statement, so no
-- transaction is held across calls.
CREATE TABLE rate_bucket (
    provider   TEXT NOT NULL,
    key        TEXT NOT NULL,
    bucket     TEXT NOT NULL,
    tat_us     INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (provider, key, bucket)
);

-- Concurrency slots 0..n of a bucket; a slot whose lease lapsed is free again, so a crashed
-- holder never leaks one.
CREATE TABLE rate_slot (
    provider    TEXT NOT NULL,
    key         TEXT NOT NULL,
    bucket      TEXT NOT NULL,
    slot        INTEGER NOT NULL,
    holder      TEXT,
    lease_until INTEGER,
    PRIMARY KEY (provider, key, bucket, slot)
);

-- Circuit breakers per connection or provider; a missing row is closed with no failures.
CREATE TABLE circuit_breaker (
    key                  TEXT PRIMARY KEY NOT NULL,
    state                TEXT NOT NULL CHECK (state IN ('closed', 'open', 'half_open')),
    consecutive_failures INTEGER NOT NULL,
    opened_at            INTEGER,
    next_probe_at        INTEGER,
    cooldown_ms          INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL
);

-- Write-back idempotency keys. `response` is sealed by the caller. An expired key is treated
-- as absent (and overwritten).
CREATE TABLE idempotency_key (
    tenant_id     TEXT NOT NULL,
    connection_id TEXT NOT NULL,
    key           TEXT NOT NULL,
    request_hash  BLOB NOT NULL,
    status_code   INTEGER,
    response      BLOB,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, connection_id, key)
);
CREATE INDEX idempotency_key_expires_idx ON idempotency_key (expires_at);
