-- Retention (architecture §3): what the `retention.prune` sweep needs to delete in bounded
-- batches without scanning whole tables. Expand only: one new nullable column and indexes.

-- When a delivery finished (delivered or exhausted); NULL while pending, cleared by a redrive,
-- so a redriven delivery is kept its full period again after it settles. Deliveries settled
-- before this migration take their delivery time, or their creation time when exhausted.
ALTER TABLE event_delivery ADD COLUMN finished_at timestamptz;
UPDATE event_delivery SET finished_at = COALESCE(delivered_at, created_at) WHERE status <> 'pending';
CREATE INDEX event_delivery_finished_idx ON event_delivery (finished_at) WHERE finished_at IS NOT NULL;
-- An outbox event is pruned only when no delivery refers to it (a redrive re-reads the event).
CREATE INDEX event_delivery_event_idx ON event_delivery (event_id);

CREATE INDEX event_outbox_dispatched_idx ON event_outbox (dispatched_at) WHERE dispatched_at IS NOT NULL;
CREATE INDEX webhook_event_settled_idx ON webhook_event (status, received_at) WHERE status <> 'pending';
CREATE INDEX watch_channel_expiry_idx ON watch_channel (expires_at);
