-- Sync (architecture §3, §4.3): runs and per-part state, the six sealed record tables with their
-- per-connection change sequence, shared rate budgets and circuit breakers, and write-back
-- idempotency keys. Expand only: new tables and indexes.

-- One sync run of a connection. Runs are kept after a disconnect (history), so the foreign key
-- to the connection is fine: connections are tombstoned, never deleted.
CREATE TABLE sync_run (
    id            uuid PRIMARY KEY,
    tenant_id     uuid NOT NULL REFERENCES tenant (id),
    connection_id uuid NOT NULL,
    resource      text NOT NULL,
    trigger       text NOT NULL,
    status        text NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'skipped')),
    -- The job that executes the run (set in the transaction that queues both).
    job_id        uuid,
    queued_at     timestamptz NOT NULL,
    started_at    timestamptz,
    finished_at   timestamptz,
    api_calls     bigint NOT NULL DEFAULT 0,
    upserted      bigint NOT NULL DEFAULT 0,
    deleted       bigint NOT NULL DEFAULT 0,
    -- A stable class (`rate_limited`, …); the message never quotes record data.
    error_code    text,
    error_message text,
    -- The composite key refuses a run naming another tenant's connection.
    FOREIGN KEY (tenant_id, connection_id) REFERENCES connection (tenant_id, id)
);
-- A connection's runs, newest first (the runs list pages through this).
CREATE INDEX sync_run_connection_idx ON sync_run (connection_id, queued_at DESC, id DESC);
-- One queued run per connection: a second request merges into it instead of queueing another.
CREATE UNIQUE INDEX sync_run_queued_key ON sync_run (connection_id) WHERE status = 'queued';
-- The repair sweep looks for connections with no queued or running run.
CREATE INDEX sync_run_open_idx ON sync_run (connection_id) WHERE status IN ('queued', 'running');

-- Where one part of a connection's sync stands. `version` is an optimistic lock: a writer names
-- the version it read, so a checkpoint never goes backwards. `dirty` and the signal columns are
-- written by change signals without bumping the version (they are not checkpoint writes).
CREATE TABLE sync_state (
    connection_id         uuid NOT NULL,
    part                  text NOT NULL,
    checkpoint            jsonb NOT NULL,
    version               bigint NOT NULL,
    generation            bigint NOT NULL,
    dirty                 boolean NOT NULL DEFAULT false,
    dirty_at              timestamptz,
    signal_healthy_until  timestamptz,
    last_success_at       timestamptz,
    last_full_at          timestamptz,
    updated_at            timestamptz NOT NULL,
    PRIMARY KEY (connection_id, part)
);

-- The per-connection change_seq counter. A page write takes its seqs with
-- `UPDATE … SET last_seq = last_seq + n RETURNING last_seq` inside its transaction: the row lock
-- serialises the writers of one connection, so commits become visible in seq order and the
-- change feed's high-water mark is simply the committed `last_seq` (no gaps to wait out).
CREATE TABLE sync_sequence (
    connection_id uuid PRIMARY KEY,
    last_seq      bigint NOT NULL
);

-- The six record tables share one shape (the table name is the record kind). Provider JSON and
-- free text are sealed (`sealed`, vault ciphertext under `key_id`); only what queries need is in
-- clear. `hash` is a keyed hash of the provider object: an equal hash means an unchanged record,
-- which a sync only marks seen (`generation`) without a new `change_seq`. There is deliberately
-- no foreign key to `connection`: a disconnect tombstones the connection, then the purge job
-- deletes its records in batches.
DO $$
DECLARE
    kind text;
BEGIN
    FOREACH kind IN ARRAY ARRAY['monday_board', 'monday_column', 'monday_group', 'monday_item',
                                'google_calendar', 'google_event'] LOOP
        EXECUTE format($f$
            CREATE TABLE %1$I (
                id                  uuid PRIMARY KEY,
                tenant_id           uuid NOT NULL,
                connection_id       uuid NOT NULL,
                provider_id         text NOT NULL,
                parent_id           uuid,
                hash                bytea NOT NULL,
                sealed              bytea NOT NULL,
                key_id              bigint NOT NULL,
                starts_at           timestamptz,
                ends_at             timestamptz,
                series_id           text,
                status              text,
                provider_updated_at timestamptz,
                generation          bigint NOT NULL,
                change_seq          bigint NOT NULL,
                deleted_at          timestamptz,
                created_at          timestamptz NOT NULL,
                updated_at          timestamptz NOT NULL,
                CONSTRAINT %1$s_provider_key UNIQUE (connection_id, provider_id)
            );
            -- The change feed reads a connection's rows in change_seq order.
            CREATE INDEX %1$s_change_idx ON %1$I (connection_id, change_seq);
            -- Lists by parent (a board's items, a calendar's events), keyset by id; sweeps too.
            CREATE INDEX %1$s_parent_idx ON %1$I (connection_id, parent_id, id);
            -- Key rotation finds the rows not under the primary key.
            CREATE INDEX %1$s_key_idx ON %1$I (key_id);
        $f$, kind);
    END LOOP;
END
$$;
-- Events are also queried by time window within a calendar, and by series (exceptions).
CREATE INDEX google_event_time_idx ON google_event (connection_id, parent_id, starts_at);
CREATE INDEX google_event_series_idx ON google_event (connection_id, series_id);

-- One GCRA bucket shared by every instance: `tat_us` is the theoretical arrival time in
-- microseconds since the epoch. Each step is one `INSERT … ON CONFLICT DO UPDATE … WHERE`
-- statement, so the row lock orders concurrent steps and no lock is held between calls.
CREATE TABLE rate_bucket (
    provider   text NOT NULL,
    key        text NOT NULL,
    bucket     text NOT NULL,
    tat_us     bigint NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (provider, key, bucket)
);

-- Concurrency slots (numbered 0..n-1) of a provider key: a slot is free when it has no holder or
-- its lease lapsed (a crashed holder gives it back by expiry).
CREATE TABLE rate_slot (
    provider    text NOT NULL,
    key         text NOT NULL,
    bucket      text NOT NULL,
    slot        integer NOT NULL,
    holder      uuid,
    lease_until timestamptz,
    PRIMARY KEY (provider, key, bucket, slot)
);

-- A circuit breaker per connection (`connection:{id}`) or provider (`provider:{name}`); a missing
-- row is closed with no failures, so healthy keys cost no writes.
CREATE TABLE circuit_breaker (
    key                  text PRIMARY KEY,
    state                text NOT NULL CHECK (state IN ('closed', 'open', 'half_open')),
    consecutive_failures integer NOT NULL,
    opened_at            timestamptz,
    next_probe_at        timestamptz,
    cooldown_ms          bigint NOT NULL,
    updated_at           timestamptz NOT NULL
);

-- Write-back idempotency keys, per tenant and connection. `request_hash` tells a replay from a
-- reuse with another body; `status_code` NULL means the first request is still running. Expired
-- keys count as absent and are overwritten in place.
CREATE TABLE idempotency_key (
    tenant_id     uuid NOT NULL,
    connection_id uuid NOT NULL,
    key           text NOT NULL,
    request_hash  bytea NOT NULL,
    status_code   integer,
    -- Sealed by the caller.
    response      bytea,
    created_at    timestamptz NOT NULL,
    expires_at    timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, connection_id, key)
);
CREATE INDEX idempotency_key_expires_idx ON idempotency_key (expires_at);
