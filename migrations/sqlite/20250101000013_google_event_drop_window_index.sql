-- A sync writes every index of google_event for every event it stores; four of them had
-- random keys per row. `google_event_window_idx (connection_id, parent_id, starts_at)`
-- overlapped `google_event_parent_idx (connection_id, parent_id, id)` and earned little: a time
-- window asks for events overlapping [min, max), i.e. `starts_at < max AND ends_at > min`, and an
-- index on starts_at alone can only bound the first half, so a window near the present read
-- nearly every event of the calendar through it and then sorted the matches by id. Walking the
-- parent index in id order reads the same rows at worst and stops once a page is full.
-- Every other query on the table chose other indexes already. See docs/benchmarks.md (Sync,
-- write path, migration 13).
DROP INDEX IF EXISTS google_event_window_idx;
