//! Monday board webhooks: one per (account, board, event) however many connections claim it,
//! also concurrently; ownership handed over on leave; the last user leaves it for deletion.

use super::{new_connection, secs, t0, tenant_with_user};
use patchbay_store::*;
use std::sync::Arc;

fn claim(account: &str, board: &str, event: &str, connection: &Connection, n: i64) -> NewMondayWebhook {
    NewMondayWebhook {
        id: uuid::Uuid::now_v7(),
        account_id: account.into(),
        board_id: board.into(),
        event: event.into(),
        tenant_id: connection.tenant_id,
        connection_id: connection.id,
        now: secs(t0(), n),
    }
}

pub async fn monday_webhooks_are_one_per_account_board_event_and_hand_over_on_leave(store: Arc<dyn Store>) {
    let (acme, acme_user) = tenant_with_user(store.as_ref(), "org:acme-mwh").await;
    let (other, other_user) = tenant_with_user(store.as_ref(), "org:other-mwh").await;
    let first = store.create_connection(new_connection(&acme_user, "acct-mwh")).await.expect("connection");
    let second = store.create_connection(new_connection(&other_user, "acct-mwh")).await.expect("connection");
    let _ = (acme, other);
    let mut account = store.monday_account_connections("acct-mwh").await.expect("account connections");
    account.sort();
    let mut expected = vec![(first.tenant_id, first.id), (second.tenant_id, second.id)];
    expected.sort();
    assert_eq!(account, expected, "the account's connections in every tenant");
    assert!(store.monday_account_connections("acct-none").await.expect("none").is_empty());

    let created = match store.claim_monday_webhook(claim("acct-mwh", "b1", "create_item", &first, 0)).await {
        Ok(MondayWebhookClaim::Created(w)) => w,
        other => panic!("the first claim creates: {other:?}"),
    };
    assert_eq!(created.owner_connection_id, first.id);
    assert_eq!(created.monday_webhook_id, None, "Monday's id is unknown until create_webhook answers");
    store.set_monday_webhook_remote_id(created.id, "9001").await.expect("remote id");
    let shared = match store.claim_monday_webhook(claim("acct-mwh", "b1", "create_item", &second, 1)).await {
        Ok(MondayWebhookClaim::Existing(w)) => w,
        other => panic!("the second claim shares: {other:?}"),
    };
    assert_eq!(shared.id, created.id, "one webhook per (account, board, event)");
    assert_eq!(shared.monday_webhook_id.as_deref(), Some("9001"));
    assert_eq!(shared.owner_connection_id, first.id, "the first claimer stays the owner");
    // Claiming again is idempotent; another event or board is another webhook.
    assert!(matches!(
        store.claim_monday_webhook(claim("acct-mwh", "b1", "create_item", &first, 2)).await,
        Ok(MondayWebhookClaim::Existing(_))
    ));
    assert!(matches!(
        store.claim_monday_webhook(claim("acct-mwh", "b1", "change_name", &second, 3)).await,
        Ok(MondayWebhookClaim::Created(_))
    ));
    let users = store.monday_webhook_users(created.id).await.expect("users");
    assert_eq!(users, vec![(first.tenant_id, first.id), (second.tenant_id, second.id)], "two users, oldest first");
    assert_eq!(store.monday_webhooks_of_connection(second.id).await.expect("of connection").len(), 2);
    assert_eq!(store.find_monday_webhook(created.id).await.expect("find").board_id, "b1");
    assert!(matches!(store.find_monday_webhook(uuid::Uuid::now_v7()).await, Err(StoreError::NotFound)));

    // The owner leaves: ownership passes to the other tenant's connection.
    let left = store.leave_monday_webhook(created.id, first.id).await.expect("leave");
    assert_eq!(left, MondayWebhookLeave::HandedOver { tenant_id: second.tenant_id, connection_id: second.id });
    assert_eq!(store.find_monday_webhook(created.id).await.expect("find").owner_connection_id, second.id);
    assert_eq!(store.leave_monday_webhook(created.id, first.id).await.expect("again"), MondayWebhookLeave::NotAUser);
    // The last user leaves: the row stays (for the Monday-side deletion) until deleted.
    let last = store.leave_monday_webhook(created.id, second.id).await.expect("leave last");
    assert!(matches!(last, MondayWebhookLeave::Last(ref w) if w.id == created.id), "{last:?}");
    assert!(store.delete_unused_monday_webhook(created.id).await.expect("delete"));
    assert!(matches!(store.find_monday_webhook(created.id).await, Err(StoreError::NotFound)));
    assert!(!store.delete_unused_monday_webhook(created.id).await.expect("delete again"), "already gone");
}

pub async fn a_non_owner_leaving_changes_no_owner_and_a_used_webhook_is_not_deleted(store: Arc<dyn Store>) {
    let (_, user) = tenant_with_user(store.as_ref(), "org:acme-mwh2").await;
    let (_, other_user) = tenant_with_user(store.as_ref(), "org:other-mwh2").await;
    let owner = store.create_connection(new_connection(&user, "acct-mwh2")).await.expect("connection");
    let other = store.create_connection(new_connection(&other_user, "acct-mwh2")).await.expect("connection");
    let MondayWebhookClaim::Created(w) =
        store.claim_monday_webhook(claim("acct-mwh2", "b2", "item_deleted", &owner, 0)).await.expect("claim")
    else {
        panic!("created")
    };
    store.claim_monday_webhook(claim("acct-mwh2", "b2", "item_deleted", &other, 1)).await.expect("share");
    assert!(!store.delete_unused_monday_webhook(w.id).await.expect("delete"), "still used: not deleted");
    assert_eq!(store.leave_monday_webhook(w.id, other.id).await.expect("leave"), MondayWebhookLeave::Left);
    assert_eq!(store.find_monday_webhook(w.id).await.expect("find").owner_connection_id, owner.id);
}

pub async fn concurrent_claims_create_one_monday_webhook(store: Arc<dyn Store>) {
    let mut connections = Vec::new();
    for i in 0..8 {
        let (_, user) = tenant_with_user(store.as_ref(), &format!("org:mwh3-{i}")).await;
        connections.push(store.create_connection(new_connection(&user, "acct-mwh3")).await.expect("connection"));
    }
    let claims = connections.iter().enumerate().map(|(i, c)| {
        let store = store.clone();
        let new = claim("acct-mwh3", "b3", "create_item", c, i64::try_from(i).unwrap_or(0));
        tokio::spawn(async move { store.claim_monday_webhook(new).await.expect("claim") })
    });
    let mut created = 0;
    let mut ids = std::collections::HashSet::new();
    for handle in claims.collect::<Vec<_>>() {
        match handle.await.expect("join") {
            MondayWebhookClaim::Created(w) => {
                created += 1;
                ids.insert(w.id);
            }
            MondayWebhookClaim::Existing(w) => {
                ids.insert(w.id);
            }
        }
    }
    assert_eq!(created, 1, "exactly one claimer creates the webhook");
    assert_eq!(ids.len(), 1, "every claimer sees the same webhook");
    let id = ids.into_iter().next().expect("one id");
    assert_eq!(store.monday_webhook_users(id).await.expect("users").len(), 8, "every claimer is a user");
}
