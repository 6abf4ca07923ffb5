//! Connection lifecycle scenarios: the refresh lease and version guard, recovery, status
//! changes, the refresh sweep's query, disconnect.

use super::*;
use std::sync::Arc;

/// Twenty owners racing for the refresh lease: one gets it; the holder can take it again;
/// another owner gets it only once it lapsed; release only frees a lease one holds.
pub async fn one_of_many_racing_owners_gets_the_refresh_lease_until_it_lapses(store: Arc<dyn Store>) {
    let now = t0();
    let (scope, user) = tenant_with_user(&*store, "org:lease").await;
    let id = store.save_grant(grant(&user, "acct-1", None, now)).await.unwrap().id;
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..20 {
        let store = store.clone();
        tasks.spawn(async move {
            let owner = format!("owner-{n}");
            store.try_lease_refresh(id, &owner, secs(now, 30), now).await.unwrap().then_some(owner)
        });
    }
    let winners: Vec<String> = tasks.join_all().await.into_iter().flatten().collect();
    assert_eq!(winners.len(), 1, "exactly one owner holds the lease: {winners:?}");
    let holder = winners[0].as_str();
    let cases = [
        ("the holder re-takes it", holder, secs(now, 10), true),
        ("another owner is refused while it is live", "intruder", secs(now, 20), false),
        ("another owner takes it once it lapsed", "successor", secs(now, 41), true),
        ("the old holder is now refused", holder, secs(now, 42), false),
    ];
    for (case, owner, at, expected) in cases {
        let got = store.try_lease_refresh(id, owner, secs(at, 30), at).await.unwrap();
        assert_eq!(got, expected, "{case}");
    }
    store.release_refresh_lease(id, holder).await.unwrap();
    let lease = |c: Credential| (c.refresh_lease_owner, c.refresh_lease_until);
    let held = lease(store.get_credential(scope, id).await.unwrap());
    assert_eq!(held, (Some("successor".into()), Some(secs(now, 71))), "release by a non-holder does nothing");
    store.release_refresh_lease(id, "successor").await.unwrap();
    assert_eq!(lease(store.get_credential(scope, id).await.unwrap()), (None, None));
}

/// A refresh written with a stale version conflicts and changes nothing; with the current one
/// it bumps the version, clears the lease and sets `last_refresh_at`, silently when active.
pub async fn a_refresh_is_written_only_over_the_version_it_read(store: Arc<dyn Store>) {
    let now = t0();
    let (scope, user) = tenant_with_user(&*store, "org:refresh").await;
    let id = store.save_grant(grant(&user, "acct-1", None, now)).await.unwrap().id;
    assert!(store.try_lease_refresh(id, "me", secs(now, 30), now).await.unwrap());
    let before = store.get_credential(scope, id).await.unwrap();
    let refreshed = new_credential(1, 42, Some(secs(now, 7200)));

    let stale = store.store_refreshed(id, 0, refreshed.clone(), secs(now, 5)).await;
    assert!(matches!(&stale, Err(StoreError::Conflict(m)) if m == "credential version changed"), "{stale:?}");
    assert_eq!(store.get_credential(scope, id).await.unwrap(), before, "a stale write changes nothing");
    assert_eq!(store.get_connection(scope, id).await.unwrap().last_refresh_at, None);

    let stored = store.store_refreshed(id, 1, refreshed.clone(), secs(now, 5)).await.unwrap();
    let expected = Credential {
        version: 2,
        ciphertext: refreshed.ciphertext,
        access_expires_at: Some(secs(now, 7200)),
        refresh_lease_owner: None,
        refresh_lease_until: None,
        updated_at: secs(now, 5),
        ..before
    };
    assert_eq!(stored, expected);
    assert_eq!(store.get_credential(scope, id).await.unwrap(), expected);
    let conn = store.get_connection(scope, id).await.unwrap();
    assert_eq!((conn.status, conn.last_refresh_at), (ConnectionStatus::Active, Some(secs(now, 5))));
    assert_eq!(event_types(&*store, scope).await, ["connection.created"], "refreshing an active connection is silent");
}

/// A dead grant (`needs_reauth`, `revoked`) keeps no credential, so no refresh can bring it
/// back: a refresh written over it is refused, and only a reconnect recovers it, with
/// `connection.recovered`. A refresh of an `insufficient_scope` connection keeps that status.
pub async fn a_refresh_recovers_a_connection_that_needed_reauth(store: Arc<dyn Store>) {
    let now = t0();
    let (scope, user) = tenant_with_user(&*store, "org:recover").await;
    for (n, dead) in [ConnectionStatus::NeedsReauth, ConnectionStatus::Revoked].into_iter().enumerate() {
        let account = format!("acct-{n}");
        let id = store.save_grant(grant(&user, &account, None, now)).await.unwrap().id;
        store.set_connection_status(scope, id, status_change(dead, Some("why"), now)).await.unwrap();
        let late = store.store_refreshed(id, 1, new_credential(1, 2, None), secs(now, 1)).await;
        assert!(matches!(late, Err(StoreError::Conflict(_))), "{dead}: a late refresh is refused: {late:?}");
        assert_eq!(store.get_connection(scope, id).await.unwrap().status, dead, "{dead}: still dead");
        let events_before = store.list_events(scope, 0, 500).await.unwrap().len();
        let conn = store.save_grant(grant(&user, &account, Some(id), secs(now, 2))).await.unwrap();
        assert_eq!((conn.status, conn.status_reason.as_deref()), (ConnectionStatus::Active, None), "{dead}");
        let events = store.list_events(scope, 0, 500).await.unwrap();
        let new: Vec<_> = events[events_before..].iter().map(|e| (e.event_type.as_str(), e.payload.clone())).collect();
        let snapshot = serde_json::json!({
            "id": id, "provider": "monday", "status": "active", "status_reason": null, "provider_account_id": account,
        });
        assert_eq!(new, [("connection.recovered", snapshot)], "{dead}: a reconnect recovers it");
        assert!(store.get_credential(scope, id).await.is_ok(), "{dead}: the reconnect stored a new credential");
    }
    let id = store.save_grant(grant(&user, "acct-scope", None, now)).await.unwrap().id;
    let partial = status_change(ConnectionStatus::InsufficientScope, Some("why"), now);
    store.set_connection_status(scope, id, partial).await.unwrap();
    let events_before = store.list_events(scope, 0, 500).await.unwrap().len();
    store.store_refreshed(id, 1, new_credential(1, 2, None), secs(now, 1)).await.unwrap();
    assert_eq!(store.get_connection(scope, id).await.unwrap().status, ConnectionStatus::InsufficientScope);
    assert_eq!(store.list_events(scope, 0, 500).await.unwrap().len(), events_before, "a refresh fixes no scopes");
}

/// A status change writes exactly one outbox event and one audit record; repeating it writes
/// nothing; a new reason for the same status writes only the audit record. Entering
/// `needs_reauth` destroys the credential (a dead grant's ciphertext is not kept).
pub async fn a_status_change_writes_one_event_and_audit_and_a_repeat_writes_nothing(store: Arc<dyn Store>) {
    let now = t0();
    let (scope, user) = tenant_with_user(&*store, "org:status").await;
    let id = store.save_grant(grant(&user, "acct-1", None, now)).await.unwrap().id;
    let counts = |store: Arc<dyn Store>| async move {
        let events = store.list_events(scope, 0, 500).await.unwrap().len();
        (events, store.list_audit_events(scope, Page::first()).await.unwrap().items.len())
    };
    let change = status_change(ConnectionStatus::NeedsReauth, Some("invalid_grant"), secs(now, 1));
    let silent = StatusChange { reason: Some("invalid_client".into()), ..change.clone() };
    // (case, change, (events, audits) after)
    let cases = [
        ("the first change", change.clone(), (2, 2)),
        ("the same change again", change.clone(), (2, 2)),
        ("a new reason for the same status", silent, (2, 3)),
    ];
    for (case, change, expected) in cases {
        let (status, reason) = (change.status, change.reason.clone());
        let conn = store.set_connection_status(scope, id, change).await.unwrap();
        assert_eq!((conn.status, conn.status_reason), (status, reason), "{case}");
        assert_eq!(counts(store.clone()).await, expected, "{case}");
    }
    let events = store.list_events(scope, 0, 500).await.unwrap();
    assert_eq!(
        (events[1].event_type.as_str(), &events[1].payload["status"], &events[1].payload["status_reason"]),
        ("connection.needs_reauth", &serde_json::json!("needs_reauth"), &serde_json::json!("invalid_grant"))
    );
    let audits = store.list_audit_events(scope, Page::first()).await.unwrap().items;
    assert_eq!(audits[1].actor, "system");
    assert_eq!(store.get_connection(scope, id).await.unwrap().updated_at, secs(now, 1));
    assert!(matches!(store.get_credential(scope, id).await, Err(StoreError::NotFound)), "the dead grant is destroyed");
    assert!(store.credential_key_usage().await.unwrap().is_empty(), "no ciphertext of it is left");
}

/// Every status transition writes the event [`transition_event`] names for it, and the same on
/// both stores: reconnects through `save_grant`, changes through `set_connection_status`, and
/// a refresh's recovery through `store_refreshed`.
pub async fn every_status_transition_writes_the_event_the_rule_names(store: Arc<dyn Store>) {
    use ConnectionStatus::*;
    let now = t0();
    let statuses = [Active, InsufficientScope, NeedsReauth, Revoked];
    for (i, from) in statuses.into_iter().enumerate() {
        for (j, to) in statuses.into_iter().enumerate() {
            let (scope, user) = tenant_with_user(&*store, &format!("org:transition-{i}-{j}")).await;
            let first = SaveGrant { status: from, ..grant(&user, "acct-1", None, now) };
            let id = store.save_grant(first).await.unwrap().id;
            let created = event_types(&*store, scope).await;
            assert_eq!(created, ["connection.created"], "a new {from} connection announces itself");
            // A reconnect (save_grant over the existing row) and a status change must agree.
            let expected: Vec<String> = transition_event(Some(from), to).map(|e| e.to_string()).into_iter().collect();
            let reconnect =
                SaveGrant { status: to, initial_job: None, ..grant(&user, "acct-1", Some(id), secs(now, 1)) };
            store.save_grant(reconnect).await.unwrap();
            let after: Vec<String> = event_types(&*store, scope).await.split_off(1);
            assert_eq!(after, expected, "reconnect {from} -> {to}");
        }
    }
    for (i, from) in statuses.into_iter().enumerate() {
        for (j, to) in [InsufficientScope, NeedsReauth, Revoked].into_iter().enumerate() {
            let (scope, user) = tenant_with_user(&*store, &format!("org:change-{i}-{j}")).await;
            let id =
                store.save_grant(SaveGrant { status: from, ..grant(&user, "acct-1", None, now) }).await.unwrap().id;
            store.set_connection_status(scope, id, status_change(to, Some("why"), secs(now, 1))).await.unwrap();
            let expected: Vec<String> = transition_event(Some(from), to).map(|e| e.to_string()).into_iter().collect();
            let after: Vec<String> = event_types(&*store, scope).await.split_off(1);
            assert_eq!(after, expected, "status change {from} -> {to}");
        }
    }
    // The rule itself, row by row (architecture §3).
    let rows = [
        (None, Active, Some(EventType::ConnectionCreated)),
        (None, InsufficientScope, Some(EventType::ConnectionCreated)),
        (Some(Active), Active, None),
        (Some(Active), InsufficientScope, Some(EventType::ConnectionNeedsReauth)),
        (Some(Active), NeedsReauth, Some(EventType::ConnectionNeedsReauth)),
        (Some(Active), Revoked, Some(EventType::ConnectionRevoked)),
        (Some(Active), Disconnecting, None),
        (Some(NeedsReauth), Active, Some(EventType::ConnectionRecovered)),
        (Some(Revoked), Active, Some(EventType::ConnectionRecovered)),
        (Some(InsufficientScope), Active, Some(EventType::ConnectionRecovered)),
        (Some(NeedsReauth), Revoked, Some(EventType::ConnectionRevoked)),
        (Some(Disconnecting), Active, None),
    ];
    for (from, to, event) in rows {
        assert_eq!(transition_event(from, to), event, "{from:?} -> {to}");
    }
}

/// The refresh sweep sees active, visible connections expiring before the cutoff, soonest first.
pub async fn credentials_expiring_lists_only_active_ones_expiring_before_the_cutoff_in_order(store: Arc<dyn Store>) {
    let now = t0();
    let (a, user_a) = tenant_with_user(&*store, "org:sweep-a").await;
    let (b, user_b) = tenant_with_user(&*store, "org:sweep-b").await;
    let save = |user: AppUser, account: &'static str, expires: Option<i64>| {
        let store = store.clone();
        async move {
            let g = SaveGrant {
                credential: new_credential(1, 0, expires.map(|s| secs(now, s))),
                ..grant(&user, account, None, now)
            };
            store.save_grant(g).await.unwrap().id
        }
    };
    let late = save(user_a.clone(), "late", Some(100)).await;
    let soon = save(user_a.clone(), "soon", Some(50)).await;
    save(user_a.clone(), "after-cutoff", Some(1000)).await;
    save(user_a.clone(), "never", None).await;
    let reauth = save(user_a.clone(), "reauth", Some(10)).await;
    store.set_connection_status(a, reauth, status_change(ConnectionStatus::NeedsReauth, None, now)).await.unwrap();
    let leaving = save(user_a.clone(), "leaving", Some(20)).await;
    store
        .begin_disconnect(a, leaving, job("disconnect", now), audit(a.tenant_id(), "connection.disconnect"))
        .await
        .unwrap();
    let other = save(user_b, "other-tenant", Some(70)).await;

    let cutoff = secs(now, 300);
    let all = store.credentials_expiring(cutoff, 10).await.unwrap();
    assert_eq!(all, [(a, soon), (b, other), (a, late)]);
    assert_eq!(store.credentials_expiring(cutoff, 2).await.unwrap(), all[..2], "the limit keeps the soonest");
    assert!(store.credentials_expiring(secs(now, 50), 10).await.unwrap().is_empty(), "strictly before the cutoff");
}

/// Disconnecting hides the connection at once and queues its job; the job still sees it.
/// Finishing deletes the credential, tombstones it and emits `connection.deleted` once, even
/// when called twice. The same account can be connected again meanwhile.
pub async fn a_disconnect_hides_the_connection_and_finishing_it_twice_deletes_it_once(store: Arc<dyn Store>) {
    let now = t0();
    let (scope, user) = tenant_with_user(&*store, "org:disconnect").await;
    let id = store.save_grant(grant(&user, "acct-1", None, now)).await.unwrap().id;
    let disconnect = NewJob { dedup_key: Some(format!("disconnect:{id}")), ..job("disconnect", now) };
    store.begin_disconnect(scope, id, disconnect, audit(scope.tenant_id(), "connection.disconnect")).await.unwrap();

    assert!(matches!(store.get_connection(scope, id).await, Err(StoreError::NotFound)), "hidden from get");
    let listed = store.list_connections(scope, ConnectionFilter::default(), Page::first()).await.unwrap();
    assert!(listed.items.is_empty(), "hidden from lists");
    assert_eq!(store.connection_for_job(scope, id).await.unwrap().status, ConnectionStatus::Disconnecting);
    assert!(matches!(store.get_credential(scope, id).await, Err(StoreError::NotFound)), "no token is served");
    assert!(store.credential_for_disconnect(scope, id).await.is_ok(), "the job can still read it to revoke it");
    let queued = store.job_counts().await.unwrap().into_iter().any(|c| c.kind == "disconnect" && c.count == 1);
    assert!(queued, "the disconnect job is queued");
    let again = NewJob { dedup_key: Some(format!("disconnect:{id}")), ..job("disconnect", now) };
    store
        .begin_disconnect(scope, id, again, audit(scope.tenant_id(), "x"))
        .await
        .expect("a repeated disconnect is accepted");
    let queued: i64 =
        store.job_counts().await.unwrap().into_iter().filter(|c| c.kind == "disconnect").map(|c| c.count).sum();
    assert_eq!(queued, 1, "the repeated disconnect merged into the queued job");
    let change = store.set_connection_status(scope, id, status_change(ConnectionStatus::Revoked, None, now)).await;
    assert!(matches!(change, Err(StoreError::NotFound)), "a hidden connection's status is not changed: {change:?}");
    assert_eq!(store.find_connection_by_account(scope, user.id, ProviderId::Monday, "acct-1").await.unwrap(), None);
    let reconnected = store.save_grant(grant(&user, "acct-1", None, now)).await.expect("reconnect meanwhile");

    for _ in 0..2 {
        store
            .finish_disconnect(scope, id, audit(scope.tenant_id(), "connection.disconnected"), secs(now, 5))
            .await
            .unwrap();
    }
    assert!(
        matches!(store.credential_for_disconnect(scope, id).await, Err(StoreError::NotFound)),
        "credential destroyed"
    );
    assert!(matches!(store.connection_for_job(scope, id).await, Err(StoreError::NotFound)), "tombstoned");
    let disconnected = store.list_audit_events(scope, Page::first()).await.unwrap().items;
    let finished = disconnected.iter().filter(|a| a.action == "connection.disconnected").count();
    assert_eq!(finished, 1, "the audit record of the finished disconnect is written once");
    let deleted: Vec<_> =
        store.list_events(scope, 0, 500).await.unwrap().into_iter().filter(|e| e.connection_id == Some(id)).collect();
    let summary: Vec<_> = deleted.iter().map(|e| (e.event_type.as_str(), e.sequence)).collect();
    assert_eq!(summary, [("connection.created", Some(1)), ("connection.deleted", Some(2))]);
    assert_eq!(deleted[1].payload["id"], serde_json::json!(id));
    let usage = store.credential_key_usage().await.unwrap();
    assert_eq!(usage, [KeyUsage { key_id: 1, credentials: 1 }], "only the reconnected credential is left");
    assert_eq!(store.get_connection(scope, reconnected.id).await.unwrap().status, ConnectionStatus::Active);
}
