-- Google event ids are unique only within a calendar: the same meeting has the same event id in
-- the organiser's and an attendee's calendar of one user. An event is therefore keyed by
-- (connection, calendar, event id): the unique key becomes (connection_id, parent_id,
-- provider_id), and new rows' ids derive from the calendar too (RecordId::derive_event).
--
-- Rows written before this migration carry ids derived without the calendar, and their
-- ciphertexts are bound to those ids, so they cannot be re-keyed here. They are kept, live and
-- readable, at generation -1 ("legacy", outside the partial unique key), and every events part
-- starts over with a full listing (checkpoint reset, version bumped, marked dirty so the next
-- run is not skipped). That listing writes the events under their new ids and its last page
-- sweeps the legacy rows of the calendar (generation -1 is below any real one) in the same
-- commit, so a change-feed reader sees each new row appear and each old one tombstoned, never
-- an event vanishing. See docs/sync.md.
--
-- SQLite cannot change a table constraint in place: the table is rebuilt (same columns, the
-- `id` primary key, every index of migration 5).
CREATE TABLE google_event_rekeyed (
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
    updated_at          INTEGER NOT NULL
);

INSERT INTO google_event_rekeyed (id, tenant_id, connection_id, provider_id, parent_id, hash, sealed, key_id,
    starts_at, ends_at, series_id, status, provider_updated_at, generation, change_seq, deleted_at,
    created_at, updated_at)
SELECT id, tenant_id, connection_id, provider_id, parent_id, hash, sealed, key_id,
    starts_at, ends_at, series_id, status, provider_updated_at, -1, change_seq, deleted_at,
    created_at, updated_at
FROM google_event;

DROP TABLE google_event;
ALTER TABLE google_event_rekeyed RENAME TO google_event;

-- The key writes find a row by. Partial: legacy rows (generation -1) stay outside it until the
-- full listing sweeps them.
CREATE UNIQUE INDEX google_event_provider_key ON google_event (connection_id, parent_id, provider_id)
    WHERE generation >= 0;
CREATE INDEX google_event_change_idx ON google_event (connection_id, change_seq);
CREATE INDEX google_event_parent_idx ON google_event (connection_id, parent_id, id);
CREATE INDEX google_event_key_idx ON google_event (key_id);
CREATE INDEX google_event_window_idx ON google_event (connection_id, parent_id, starts_at);
CREATE INDEX google_event_series_idx ON google_event (connection_id, series_id);

-- Every calendar's events start over with a full listing on the next run.
UPDATE sync_state
SET checkpoint = 'null', version = version + 1, dirty = 1,
    dirty_at = CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER),
    updated_at = CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER)
WHERE part LIKE 'events:%';
