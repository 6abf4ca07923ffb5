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
-- an event vanishing. See docs/sync.md. Same logical change as SQLite migration 6.
UPDATE google_event SET generation = -1;

ALTER TABLE google_event DROP CONSTRAINT google_event_provider_key;
-- The key writes find a row by. Partial: legacy rows (generation -1) stay outside it until the
-- full listing sweeps them.
CREATE UNIQUE INDEX google_event_provider_key ON google_event (connection_id, parent_id, provider_id)
    WHERE generation >= 0;

-- Every calendar's events start over with a full listing on the next run.
UPDATE sync_state
SET checkpoint = 'null'::jsonb, version = version + 1, dirty = true, dirty_at = now(), updated_at = now()
WHERE part LIKE 'events:%';
