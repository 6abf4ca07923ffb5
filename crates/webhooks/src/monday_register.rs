//! Registering a connection's board webhooks after its initial sync (architecture §4.4): for
//! each synced board and each event type, the account's existing webhook is shared, or a row is
//! claimed first (so its URL answers Monday's challenge) and the webhook created at Monday
//! through the sync crate's budgeted GraphQL path. Monday's id is recorded once it answers.

use crate::monday::board_url;
use async_trait::async_trait;
use patchbay_store::{
    Connection, Job, JobContext, JobError, JobHandler, MondayWebhookClaim, MondayWebhooksPayload, NewMondayWebhook,
    Page, ProviderId, RecordFilter, RecordKind, StoreError, TenantScope,
};
use patchbay_sync::call::Session;
use patchbay_sync::monday::client::query;
use patchbay_sync::{SyncDeps, SyncError};
use serde_json::json;

/// The board events Patchbay listens to (§4.4): item created, column value changed, name
/// changed, item deleted / archived / moved.
pub use patchbay_sync::monday::BOARD_EVENTS;

/// What a `create_webhook` / `delete_webhook` is budgeted at before Monday says its cost.
const ESTIMATED_COMPLEXITY: i64 = 1_100;

const CREATE: &str = "mutation ($board: ID!, $url: String!, $event: WebhookEventType!) { \
    complexity { before after query } \
    create_webhook(board_id: $board, url: $url, event: $event) { id board_id } }";

const DELETE: &str =
    "mutation ($id: ID!) { complexity { before after query } delete_webhook(id: $id) { id board_id } }";

/// Runs `monday.webhooks.register`.
#[derive(Clone, Debug)]
pub struct MondayRegisterJob {
    pub deps: SyncDeps,
    /// `PATCHBAY_PUBLIC_URL`.
    pub public_url: String,
}

fn sync_failure(error: SyncError) -> JobError {
    match error.wait_until() {
        Some(at) => JobError::Yield(at),
        None => match error {
            SyncError::Inactive | SyncError::NeedsReauth(_) => JobError::Permanent(error.code().into()),
            other => JobError::Retry(format!("{}: {other}", other.code())),
        },
    }
}

/// The Monday ids of the boards the connection synced (not tombstoned).
async fn synced_boards(deps: &SyncDeps, connection: &Connection) -> Result<Vec<String>, JobError> {
    let scope = TenantScope::new(connection.tenant_id);
    let mut page = Page::new(Some(Page::MAX_LIMIT), None);
    let mut boards = Vec::new();
    loop {
        let listed = deps
            .store
            .list_records(scope, connection.id, RecordKind::MondayBoard, &RecordFilter::default(), page)
            .await
            .map_err(|e| JobError::Retry(e.to_string()))?;
        boards.extend(listed.items.into_iter().filter(|r| r.deleted_at.is_none()).map(|r| r.provider_id));
        match listed.next_cursor {
            Some(next) => page = Page::new(Some(page.limit), Some(next)),
            None => return Ok(boards),
        }
    }
}

/// Creates the webhook at Monday; its id.
pub async fn create_at_monday(session: &Session, board: &str, url: &str, event: &str) -> Result<String, SyncError> {
    let spend = session.monday_spend(true, ESTIMATED_COMPLEXITY);
    let data = query(session, spend, CREATE, json!({ "board": board, "url": url, "event": event })).await?;
    data.pointer("/create_webhook/id")
        .and_then(|id| id.as_str().map(str::to_owned).or_else(|| id.as_i64().map(|n| n.to_string())))
        .ok_or_else(|| SyncError::Protocol("create_webhook answered without an id".into()))
}

/// Deletes the webhook at Monday (an unknown id is already gone).
pub async fn delete_at_monday(session: &Session, monday_id: &str) -> Result<(), SyncError> {
    let spend = session.monday_spend(true, ESTIMATED_COMPLEXITY);
    match query(session, spend, DELETE, json!({ "id": monday_id })).await {
        Ok(_) => Ok(()),
        Err(SyncError::Rejected { code, .. }) if code == "ResourceNotFoundException" => Ok(()),
        Err(e) => Err(e),
    }
}

#[async_trait]
impl JobHandler for MondayRegisterJob {
    async fn run(&self, job: &Job, _ctx: JobContext) -> Result<(), JobError> {
        let payload = MondayWebhooksPayload::from_job(job).map_err(JobError::Permanent)?;
        let store = &self.deps.store;
        let connection =
            match store.connection_for_job(TenantScope::new(payload.tenant_id), payload.connection_id).await {
                Ok(connection) if connection.provider == ProviderId::Monday => connection,
                Ok(_) | Err(StoreError::NotFound) => return Ok(()),
                Err(e) => return Err(JobError::Retry(e.to_string())),
            };
        let boards = synced_boards(&self.deps, &connection).await?;
        let session = Session::open(&self.deps, connection.clone()).await.map_err(sync_failure)?;
        let (mut created, mut shared) = (0, 0);
        for board in &boards {
            for event in BOARD_EVENTS {
                let claim = NewMondayWebhook {
                    id: uuid::Uuid::now_v7(),
                    account_id: connection.provider_account_id.clone(),
                    board_id: board.clone(),
                    event: event.to_owned(),
                    tenant_id: connection.tenant_id,
                    connection_id: connection.id,
                    now: self.deps.clock.now(),
                };
                let webhook = match store.claim_monday_webhook(claim).await {
                    Ok(MondayWebhookClaim::Existing(w)) if w.monday_webhook_id.is_some() => {
                        shared += 1;
                        continue;
                    }
                    // Ours to create, or claimed by a connection whose creation did not finish
                    // (a crash, a failed challenge): its owner creates it (again).
                    Ok(MondayWebhookClaim::Created(w) | MondayWebhookClaim::Existing(w)) => w,
                    Err(e) => return Err(JobError::Retry(e.to_string())),
                };
                if webhook.owner_connection_id != connection.id {
                    shared += 1;
                    continue;
                }
                let url = board_url(&self.public_url, webhook.id);
                let monday_id = create_at_monday(&session, board, &url, event).await.map_err(sync_failure)?;
                store
                    .set_monday_webhook_remote_id(webhook.id, &monday_id)
                    .await
                    .map_err(|e| JobError::Retry(e.to_string()))?;
                created += 1;
            }
        }
        // Boards whose webhooks are all registered now have a change signal: their items are no
        // longer polled, only re-read when a webhook names them.
        patchbay_sync::monday::affirm_signals_for(&self.deps, connection.id, &boards, &BOARD_EVENTS)
            .await
            .map_err(|e| JobError::Retry(e.to_string()))?;
        tracing::info!(connection = %connection.id, boards = boards.len(), created, shared,
            api_calls = session.api_calls(), "monday board webhooks registered");
        Ok(())
    }
}
