//! Grant, refresh and key-rotation scenarios: what `save_grant` writes in one go, conflicts
//! between concurrent saves, the refresh lease and version guard, rewrapping.

use super::*;
use std::sync::Arc;

/// A new grant writes the connection, its credential (byte-exact, version 1), the
/// `connection.created` event, the audit record and the initial job, together.
pub async fn saving_a_new_grant_writes_connection_credential_event_audit_and_job(store: Arc<dyn Store>) {
    let now = t0();
    let (scope, user) = tenant_with_user(&*store, "org:grant").await;
    let new = grant(&user, "acct-1", None, now);
    let saved = store.save_grant(new.clone()).await.unwrap();
    assert_eq!((saved.id, saved.status, saved.created_at, saved.updated_at), (new.connection_id, new.status, now, now));
    assert_eq!(store.get_connection(scope, saved.id).await.unwrap(), saved);
    let expected = Credential {
        connection_id: saved.id,
        tenant_id: scope.tenant_id(),
        flow: TokenFlow::MondayV2,
        key_id: 1,
        ciphertext: new.credential.ciphertext.clone(),
        version: 1,
        access_expires_at: Some(secs(now, 3600)),
        refresh_lease_owner: None,
        refresh_lease_until: None,
        updated_at: now,
    };
    assert_eq!(store.get_credential(scope, saved.id).await.unwrap(), expected);
    let events = store.list_events(scope, 0, 10).await.unwrap();
    assert_eq!(events.len(), 1, "one event: {events:?}");
    assert_eq!((events[0].event_type.as_str(), events[0].sequence), ("connection.created", Some(1)));
    let snapshot = serde_json::json!({
        "id": saved.id, "provider": "monday", "status": "active", "status_reason": null, "provider_account_id": "acct-1",
    });
    assert_eq!(events[0].payload, snapshot);
    let audits = store.list_audit_events(scope, Page::first()).await.unwrap().items;
    assert_eq!(audits.iter().map(|a| a.action.as_str()).collect::<Vec<_>>(), ["connection.connected"]);
    let jobs = store.job_counts().await.unwrap();
    assert_eq!(jobs, vec![JobCount { kind: "sync.initial".into(), status: JobStatus::Queued, count: 1 }]);
    let found = store.find_connection_by_account(scope, user.id, ProviderId::Monday, "acct-1").await.unwrap();
    assert_eq!(found, Some(saved));
}

/// Saving the same account again updates the connection in place: same id, credential
/// version 2 with the lease cleared, no second `connection.created`, the job deduplicated.
pub async fn saving_a_grant_again_updates_the_connection_in_place(store: Arc<dyn Store>) {
    let now = t0();
    let (scope, user) = tenant_with_user(&*store, "org:regrant").await;
    let first = store.save_grant(grant(&user, "acct-1", None, now)).await.unwrap();
    assert!(store.try_lease_refresh(first.id, "w", secs(now, 30), now).await.unwrap());
    let later = secs(now, 60);
    let again = SaveGrant {
        account_name: Some("Acme Renamed".into()),
        scopes: vec!["me:read".into(), "boards:read".into(), "boards:write".into()],
        credential: new_credential(2, 9, None),
        ..grant(&user, "acct-1", Some(first.id), later)
    };
    let saved = store.save_grant(again).await.unwrap();
    assert_eq!((saved.id, saved.created_at, saved.updated_at), (first.id, first.created_at, later));
    assert_eq!((saved.account_name.as_deref(), saved.scopes.len()), (Some("Acme Renamed"), 3));
    let credential = store.get_credential(scope, saved.id).await.unwrap();
    let summary = (credential.version, credential.key_id, credential.access_expires_at, credential.refresh_lease_owner);
    assert_eq!(summary, (2, 2, None, None), "version bumped, lease cleared");
    assert_eq!(credential.ciphertext, new_credential(2, 9, None).ciphertext);
    assert_eq!(event_types(&*store, scope).await, ["connection.created"], "an active-to-active update is silent");
    let jobs = store.job_counts().await.unwrap();
    assert_eq!(jobs, vec![JobCount { kind: "sync.initial".into(), status: JobStatus::Queued, count: 1 }]);
}

/// A grant lacking scopes is saved as `insufficient_scope` without a job; the same partial grant
/// again is silent, a later full grant emits `connection.recovered`, and a partial grant over an
/// active connection `connection.needs_reauth` (the rule of `transition_event`).
pub async fn grant_status_changes_emit_needs_reauth_and_recovered(store: Arc<dyn Store>) {
    let now = t0();
    let (scope, user) = tenant_with_user(&*store, "org:scopes").await;
    let lacking = |existing, now| SaveGrant {
        status: ConnectionStatus::InsufficientScope,
        status_reason: Some("missing boards:read".into()),
        initial_job: None,
        ..grant(&user, "acct-1", existing, now)
    };
    let saved = store.save_grant(lacking(None, now)).await.unwrap();
    assert_eq!(saved.status, ConnectionStatus::InsufficientScope);
    assert!(store.job_counts().await.unwrap().is_empty(), "no job without initial_job");
    store.save_grant(lacking(Some(saved.id), secs(now, 1))).await.unwrap();
    store.save_grant(grant(&user, "acct-1", Some(saved.id), secs(now, 2))).await.unwrap();
    store.save_grant(lacking(Some(saved.id), secs(now, 3))).await.unwrap();
    let events = store.list_events(scope, 0, 10).await.unwrap();
    let summary: Vec<_> = events.iter().map(|e| (e.event_type.as_str(), e.payload["status"].as_str())).collect();
    assert_eq!(
        summary,
        [
            ("connection.created", Some("insufficient_scope")),
            ("connection.recovered", Some("active")),
            ("connection.needs_reauth", Some("insufficient_scope")),
        ]
    );
    assert_eq!(events[2].payload["status_reason"], "missing boards:read");
    assert_eq!(store.job_counts().await.unwrap().len(), 1, "the recovering grant enqueues its job");
}

/// A second insert of one account by one user conflicts and leaves nothing behind (also when
/// eight race); another user of the same tenant gets a separate connection.
pub async fn a_duplicate_insert_of_one_account_conflicts_but_another_user_gets_their_own(store: Arc<dyn Store>) {
    let now = t0();
    let (scope, user) = tenant_with_user(&*store, "org:dup").await;
    let first = store.save_grant(grant(&user, "acct-1", None, now)).await.unwrap();
    let duplicate = grant(&user, "acct-1", None, now);
    let result = store.save_grant(duplicate.clone()).await;
    assert!(matches!(result, Err(StoreError::Conflict(_))), "{result:?}");
    let leftover = store.get_credential(scope, duplicate.connection_id).await;
    assert!(matches!(leftover, Err(StoreError::NotFound)), "the conflicting save wrote nothing: {leftover:?}");
    assert_eq!(event_types(&*store, scope).await, ["connection.created"]);

    let other = store.upsert_user(scope, "https://issuer.test", "someone-else").await.unwrap();
    let theirs = store.save_grant(grant(&other, "acct-1", None, now)).await.unwrap();
    assert_ne!(theirs.id, first.id, "another user's connection of the same account is separate");

    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (store, user) = (store.clone(), user.clone());
        tasks.spawn(async move { store.save_grant(grant(&user, "acct-race", None, now)).await });
    }
    let results = tasks.join_all().await;
    let saved = results.iter().filter(|r| r.is_ok()).count();
    let conflicts = results.iter().filter(|r| matches!(r, Err(StoreError::Conflict(_)))).count();
    assert_eq!((saved, conflicts), (1, 7), "{results:?}");
}

/// Key usage counts credentials per key; `credentials_to_rewrap` lists the others in id order;
/// a rewrap with a stale version changes nothing, a current one bumps the version.
pub async fn key_usage_counts_per_key_and_a_rewrap_is_guarded_by_version(store: Arc<dyn Store>) {
    let now = t0();
    let (scope, user) = tenant_with_user(&*store, "org:keys").await;
    let mut ids = Vec::new();
    for (n, key) in [1, 1, 2].into_iter().enumerate() {
        let g =
            SaveGrant { credential: new_credential(key, n as u8, None), ..grant(&user, &format!("a{n}"), None, now) };
        ids.push(store.save_grant(g).await.unwrap().id);
    }
    let usage = |pairs: &[(u32, i64)]| -> Vec<KeyUsage> {
        pairs.iter().map(|&(key_id, credentials)| KeyUsage { key_id, credentials }).collect()
    };
    assert_eq!(store.credential_key_usage().await.unwrap(), usage(&[(1, 2), (2, 1)]));
    let pending = store.credentials_to_rewrap(2, 10).await.unwrap();
    assert_eq!(pending.iter().map(|c| c.connection_id).collect::<Vec<_>>(), ids[..2]);
    assert_eq!(pending[0], store.get_credential(scope, ids[0]).await.unwrap(), "listed rows are whole credentials");

    let before = store.get_credential(scope, ids[0]).await.unwrap();
    assert!(!store.rewrap_credential(ids[0], 0, 2, vec![0xAA; 40]).await.unwrap(), "stale version");
    assert_eq!(store.get_credential(scope, ids[0]).await.unwrap(), before, "a refused rewrap changes nothing");
    assert!(store.rewrap_credential(ids[0], 1, 2, vec![0xAA; 40]).await.unwrap());
    let after = store.get_credential(scope, ids[0]).await.unwrap();
    assert_eq!((after.key_id, after.version, after.ciphertext), (2, 2, vec![0xAA; 40]));
    assert_eq!(store.credential_key_usage().await.unwrap(), usage(&[(1, 1), (2, 2)]));
    let rest = store.credentials_to_rewrap(2, 1).await.unwrap();
    assert_eq!(rest.iter().map(|c| c.connection_id).collect::<Vec<_>>(), [ids[1]]);
}
