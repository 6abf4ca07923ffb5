-- Same logical change as SQLite migration 13: `google_event_time_idx (connection_id, parent_id,
-- starts_at)` overlapped `google_event_parent_idx (connection_id, parent_id, id)`. A time window
-- is `starts_at < max AND ends_at > min`, which an index on starts_at alone bounds only at one
-- end; every event stored paid for it on write. See docs/benchmarks.md.
DROP INDEX IF EXISTS google_event_time_idx;
