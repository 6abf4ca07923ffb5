//! The [`MondayApplier`] (architecture §4.4 Monday): a stored board event is only a hint. Its
//! item id is marked dirty (part `item:{board}:{item}`) for every connection using the webhook
//! (any tenant: the event is the account's), and each asks for a coalesced webhook-triggered
//! run, which re-reads the dirty items as they are now with `items(ids:)` in batches of ≤ 100.
//! Nothing of the event's payload is applied, so deliveries in any order converge.

use crate::apply::{Applier, ApplyError};
use async_trait::async_trait;
use patchbay_store::{Clock, ProviderId, Store, StoreError, SyncRequest, SyncResource, SyncTrigger, WebhookEvent};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// Applies stored Monday board events.
#[derive(Clone)]
pub struct MondayApplier {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    /// How long a run waits for more events before it starts (a burst makes one run).
    pub coalesce: Duration,
}

impl std::fmt::Debug for MondayApplier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MondayApplier").field("coalesce", &self.coalesce).finish_non_exhaustive()
    }
}

/// The decimal id in `value` (monday sends numbers; strings are accepted too).
fn decimal(value: Option<&Value>) -> Option<String> {
    let text = match value? {
        Value::Number(n) => n.as_u64()?.to_string(),
        Value::String(s) => s.clone(),
        _ => return None,
    };
    (!text.is_empty() && text.len() <= 20 && text.bytes().all(|b| b.is_ascii_digit()) && text != "0").then_some(text)
}

/// The item an event is about: `pulseId` (create, change, move) or `itemId` (delete, archive,
/// restore). `None` for an event without one.
pub fn item_of(body: &[u8]) -> Result<Option<String>, ApplyError> {
    let parsed: Value =
        serde_json::from_slice(body).map_err(|_| ApplyError::Permanent("a Monday event that is not JSON".into()))?;
    let event = parsed.get("event").ok_or_else(|| ApplyError::Permanent("a Monday body without an event".into()))?;
    Ok(decimal(event.get("pulseId")).or_else(|| decimal(event.get("itemId"))))
}

#[async_trait]
impl Applier for MondayApplier {
    async fn apply(&self, event: &WebhookEvent, body: &[u8]) -> Result<(), ApplyError> {
        let id: uuid::Uuid =
            event.source_id.parse().map_err(|_| ApplyError::Permanent("not a Monday webhook id".into()))?;
        let webhook = match self.store.find_monday_webhook(id).await {
            Ok(webhook) => webhook,
            // Released since: nobody syncs the board through it any more.
            Err(StoreError::NotFound) => return Ok(()),
            Err(e) => return Err(ApplyError::Transient(e.to_string())),
        };
        // The board is the webhook row's (the body is signed by Monday but names it only as a hint).
        let part = match item_of(body)? {
            Some(item) => patchbay_sync::monday::dirty::part(&webhook.board_id, &item),
            // No item named: the board's items listing is marked instead.
            None => format!("items:{}", webhook.board_id),
        };
        let users = self.store.monday_webhook_users(id).await.map_err(|e| ApplyError::Transient(e.to_string()))?;
        let now = self.clock.now();
        for (tenant, connection) in users {
            match self.store.mark_dirty(connection, &part, now).await {
                Ok(()) => {}
                Err(StoreError::NotFound) => continue,
                Err(e) => return Err(ApplyError::Transient(e.to_string())),
            }
            let request = SyncRequest {
                tenant_id: tenant,
                connection_id: connection,
                resource: SyncResource::of(ProviderId::Monday),
                trigger: SyncTrigger::Webhook,
                run_at: now + chrono::Duration::from_std(self.coalesce).unwrap_or_default(),
                priority: SyncRequest::INCREMENTAL_PRIORITY,
            };
            match self.store.request_sync(request, now).await {
                // Not active any more: nothing to sync (a reconnect syncs everything).
                Ok(_) | Err(StoreError::NotFound) => {}
                Err(e) => return Err(ApplyError::Transient(e.to_string())),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::item_of;

    #[test]
    fn the_item_comes_from_pulse_or_item_id() {
        let change = br#"{"event":{"type":"update_column_value","pulseId":123,"boardId":9}}"#;
        assert_eq!(item_of(change).unwrap().as_deref(), Some("123"));
        let delete = br#"{"event":{"type":"delete_pulse","itemId":"456","boardId":9}}"#;
        assert_eq!(item_of(delete).unwrap().as_deref(), Some("456"));
        assert_eq!(item_of(br#"{"event":{"pulseId":"1; drop"}}"#).unwrap(), None);
        assert_eq!(item_of(br#"{"event":{"pulseId":0}}"#).unwrap(), None);
        assert!(item_of(b"not json").is_err());
        assert!(item_of(br#"{"challenge":"x"}"#).is_err());
    }
}
