//! Google push channels: inserted before the watch call, confirmed once with one resource id,
//! message numbers only move up, stopped channels are kept until they expire.

use super::sync::active_connection;
use super::{secs, t0};
use patchbay_store::*;
use std::sync::Arc;

fn new_channel(
    scope: TenantScope,
    connection: ConnectionId,
    id: &str,
    expires_at: chrono::DateTime<chrono::Utc>,
) -> NewWatchChannel {
    NewWatchChannel {
        id: id.into(),
        tenant_id: scope.tenant_id(),
        connection_id: connection,
        calendar_id: "team@example.com".into(),
        token_sha256: [9; 32],
        expires_at,
        created_at: t0(),
    }
}

pub async fn watch_channels_confirm_once_count_up_and_outlive_their_stop(store: Arc<dyn Store>) {
    let now = t0();
    let (scope, connection) = active_connection(&*store, "org:watch").await;
    let id = uuid::Uuid::new_v4().to_string();
    let inserted =
        store.insert_watch_channel(new_channel(scope, connection.id, &id, secs(now, 3600))).await.expect("insert");
    assert_eq!(inserted.resource_id, None, "unknown until the response or the sync message");
    assert_eq!(inserted.token_sha256, [9; 32]);
    assert!(inserted.is_live(now));
    assert!(
        matches!(
            store.insert_watch_channel(new_channel(scope, connection.id, &id, secs(now, 3600))).await,
            Err(StoreError::Conflict(_))
        ),
        "a channel id is unique"
    );

    let confirmed = store.confirm_watch_channel(&id, "res-1", None).await.expect("confirm by sync");
    assert_eq!(confirmed.resource_id.as_deref(), Some("res-1"));
    assert_eq!(confirmed.expires_at, secs(now, 3600), "no expiry given: kept");
    let again = store.confirm_watch_channel(&id, "res-1", Some(secs(now, 1800))).await.expect("confirm by response");
    assert_eq!(again.expires_at, secs(now, 1800), "Google's effective expiry replaces the asked one");
    assert!(matches!(store.confirm_watch_channel(&id, "res-2", None).await, Err(StoreError::Conflict(_))));
    assert_eq!(store.find_watch_channel(&id).await.expect("find").resource_id.as_deref(), Some("res-1"));
    assert!(matches!(store.confirm_watch_channel("nope", "res-1", None).await, Err(StoreError::NotFound)));

    assert_eq!(store.note_watch_message(&id, 2, secs(now, 1)).await.expect("2"), WatchMessage::Advanced);
    assert_eq!(store.note_watch_message(&id, 2, secs(now, 2)).await.expect("2 again"), WatchMessage::Stale);
    assert_eq!(store.note_watch_message(&id, 1, secs(now, 3)).await.expect("1"), WatchMessage::Stale);
    assert_eq!(store.note_watch_message(&id, 7, secs(now, 4)).await.expect("7"), WatchMessage::Advanced);
    let seen = store.find_watch_channel(&id).await.expect("find");
    assert_eq!((seen.last_message_number, seen.last_notification_at), (Some(7), Some(secs(now, 4))));
    assert!(matches!(store.note_watch_message("nope", 1, now).await, Err(StoreError::NotFound)));

    let other = uuid::Uuid::new_v4().to_string();
    store.insert_watch_channel(new_channel(scope, connection.id, &other, secs(now, 60))).await.expect("second");
    let open: Vec<String> =
        store.open_watch_channels(connection.id).await.expect("open").into_iter().map(|c| c.id).collect();
    assert_eq!(open.len(), 2);
    store.stop_watch_channel(&id, secs(now, 5)).await.expect("stop");
    store.stop_watch_channel(&id, secs(now, 9)).await.expect("stop twice");
    let stopped = store.find_watch_channel(&id).await.expect("a stopped channel is kept");
    assert_eq!(stopped.stopped_at, Some(secs(now, 5)), "the first stop time stays");
    assert!(!stopped.is_live(now));
    let open: Vec<String> =
        store.open_watch_channels(connection.id).await.expect("open").into_iter().map(|c| c.id).collect();
    assert_eq!(open, vec![other.clone()]);
    assert!(matches!(store.stop_watch_channel("nope", now).await, Err(StoreError::NotFound)));

    assert_eq!(store.delete_expired_watch_channels(secs(now, 120)).await.expect("sweep"), 1, "only the expired one");
    assert!(matches!(store.find_watch_channel(&other).await, Err(StoreError::NotFound)));
    assert!(store.find_watch_channel(&id).await.is_ok(), "stopped but not expired: kept");
    assert_eq!(store.delete_expired_watch_channels(secs(now, 7200)).await.expect("sweep"), 1);
}
