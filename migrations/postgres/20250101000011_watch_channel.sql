-- Google Calendar push channels (architecture §3 `watch_channel`, §4.4). Expand only: one new
-- table; nothing here reads or changes an earlier table.
--
-- A row is written BEFORE `events.watch` is called (Google's `sync` message can arrive before
-- the watch response), so `resource_id` is NULL until the response or the `sync` message gives
-- it. The channel token is random, shown only to Google, and stored only as its SHA-256.
-- A stopped channel is kept (with `stopped_at`) until it expires, so late messages on it are
-- recognised and ignored.
CREATE TABLE watch_channel (
    id                   text PRIMARY KEY,
    tenant_id            uuid NOT NULL REFERENCES tenant (id),
    connection_id        uuid NOT NULL REFERENCES connection (id),
    calendar_id          text NOT NULL,
    resource_id          text,
    token_sha256         bytea NOT NULL CHECK (length(token_sha256) = 32),
    expires_at           timestamptz NOT NULL,
    last_message_number  bigint,
    last_notification_at timestamptz,
    created_at           timestamptz NOT NULL,
    stopped_at           timestamptz
);
CREATE INDEX watch_channel_connection_idx ON watch_channel (connection_id, calendar_id);
CREATE INDEX watch_channel_live_expiry_idx ON watch_channel (expires_at) WHERE stopped_at IS NULL;
