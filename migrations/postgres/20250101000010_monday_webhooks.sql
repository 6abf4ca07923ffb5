-- Monday board webhooks (architecture §3, §4.4, §4.6). Expand only: new tables.

-- One board webhook per (Monday account, board, event), shared by every connection of that
-- account syncing the board. `id` is Patchbay's and is what the delivery URL carries
-- (`/webhooks/monday/{id}`): Monday posts its challenge to the URL before `create_webhook`
-- answers, so the URL cannot carry Monday's id. `monday_webhook_id` is NULL until Monday
-- answers. `owner_connection_id` is the connection whose token manages it (registration,
-- deletion); no foreign key, as connections are tombstoned and purged on their own schedule.
CREATE TABLE monday_webhook (
    id                  uuid PRIMARY KEY,
    monday_webhook_id   text,
    account_id          text NOT NULL,
    board_id            text NOT NULL,
    event               text NOT NULL,
    owner_tenant_id     uuid NOT NULL,
    owner_connection_id uuid NOT NULL,
    created_at          timestamptz NOT NULL,
    CONSTRAINT monday_webhook_key UNIQUE (account_id, board_id, event)
);
CREATE INDEX monday_webhook_owner_idx ON monday_webhook (owner_connection_id);

-- The connections (of any tenant) that sync the webhook's board: the owner and its successors.
CREATE TABLE monday_webhook_user (
    webhook_id    uuid NOT NULL REFERENCES monday_webhook (id) ON DELETE CASCADE,
    connection_id uuid NOT NULL,
    tenant_id     uuid NOT NULL,
    joined_at     timestamptz NOT NULL,
    PRIMARY KEY (webhook_id, connection_id)
);
CREATE INDEX monday_webhook_user_connection_idx ON monday_webhook_user (connection_id);
