//! Identity, connections, outbox, audit and instance scenarios.

use super::*;
use std::sync::Arc;

/// Every tenant-scoped read or write, called with tenant B's scope on tenant A's ids, answers
/// `NotFound`, and B's lists never contain A's rows.
pub async fn tenant_data_is_invisible_to_other_tenants(store: Arc<dyn Store>) {
    let (a, user_a) = tenant_with_user(&*store, "org:a").await;
    let (b, user_b) = tenant_with_user(&*store, "org:b").await;
    let key_a = store.create_api_key(new_api_key(a.tenant_id(), 1)).await.unwrap();
    store.create_api_key(new_api_key(b.tenant_id(), 2)).await.unwrap();
    let at = t0();
    let conn_a = store.save_grant(grant(&user_a, "acct-a", None, at)).await.unwrap();
    store.create_connection(new_connection(&user_b, "acct-b")).await.unwrap();
    let session_a = store.create_connect_session(new_session(&user_a, 1, secs(at, 600))).await.unwrap();
    let credential_a = store.get_credential(a, conn_a.id).await.unwrap();
    for scope in [a, b] {
        let audit = NewAuditEvent {
            tenant_id: Some(scope.tenant_id()),
            actor: "system".into(),
            action: "test.action".into(),
            target: None,
            request_id: None,
            ip: None,
        };
        store.record_audit(audit).await.unwrap();
    }
    let events_of_a = store.list_events(a, 0, 500).await.unwrap();
    let audits_of_a = store.list_audit_events(a, Page::first()).await.unwrap().items;

    let cross_tenant: Vec<(&str, StoreResult<()>)> = vec![
        ("get_user with B's scope on A's user", store.get_user(b, user_a.id).await.map(drop)),
        ("get_api_key with B's scope on A's key", store.get_api_key(b, key_a.id).await.map(drop)),
        ("revoke_api_key with B's scope on A's key", store.revoke_api_key(b, key_a.id, at).await.map(drop)),
        ("get_connection with B's scope on A's connection", store.get_connection(b, conn_a.id).await.map(drop)),
        (
            "append_event for B naming A's connection",
            store
                .append_event(NewEvent {
                    tenant_id: b.tenant_id(),
                    connection_id: Some(conn_a.id),
                    event_type: EventType::ConnectionRecovered,
                    payload: serde_json::json!({}),
                })
                .await
                .map(drop),
        ),
        (
            "create_connection for B owned by A's user",
            store
                .create_connection(NewConnection { tenant_id: b.tenant_id(), ..new_connection(&user_a, "x") })
                .await
                .map(drop),
        ),
        (
            "get_connect_session with B's scope on A's session",
            store.get_connect_session(b, session_a.id).await.map(drop),
        ),
        ("get_credential with B's scope on A's connection", store.get_credential(b, conn_a.id).await.map(drop)),
        (
            "set_connection_status with B's scope on A's connection",
            store
                .set_connection_status(b, conn_a.id, status_change(ConnectionStatus::Revoked, Some("x"), at))
                .await
                .map(drop),
        ),
        (
            "begin_disconnect with B's scope on A's connection",
            store.begin_disconnect(b, conn_a.id, job("disconnect", at), audit(b.tenant_id(), "x")).await,
        ),
        ("connection_for_job with B's scope on A's connection", store.connection_for_job(b, conn_a.id).await.map(drop)),
        (
            "finish_disconnect with B's scope on A's connection",
            store.finish_disconnect(b, conn_a.id, audit(b.tenant_id(), "x"), at).await,
        ),
        (
            "find_connection_by_account with B's scope for A's user and account",
            store
                .find_connection_by_account(b, user_a.id, ProviderId::Monday, "acct-a")
                .await
                .and_then(|found| found.map(drop).ok_or(StoreError::NotFound)),
        ),
        (
            "save_grant for B updating A's connection",
            store
                .save_grant(SaveGrant {
                    tenant_id: b.tenant_id(),
                    user_id: user_b.id,
                    ..grant(&user_a, "acct-a", Some(conn_a.id), at)
                })
                .await
                .map(drop),
        ),
        (
            "create_connect_session for B reconnecting A's connection",
            store
                .create_connect_session(NewConnectSession {
                    reconnect_connection_id: Some(conn_a.id),
                    ..new_session(&user_b, 2, secs(at, 600))
                })
                .await
                .map(drop),
        ),
        (
            "create_oauth_state for B naming A's session",
            store
                .create_oauth_state(OAuthState {
                    state_sha256: [3; 32],
                    provider: ProviderId::Monday,
                    tenant_id: b.tenant_id(),
                    user_id: user_b.id,
                    session_id: session_a.id,
                    pkce_verifier: None,
                    binding_sha256: [4; 32],
                    redirect_uri: "https://patchbay.test/oauth/monday/callback".into(),
                    created_at: at,
                    expires_at: secs(at, 600),
                })
                .await,
        ),
    ];
    for (case, result) in cross_tenant {
        assert!(matches!(result, Err(StoreError::NotFound)), "{case}: expected NotFound, got {result:?}");
    }
    assert_eq!(store.get_api_key(a, key_a.id).await.unwrap().revoked_at, None, "B's revoke must not touch A's key");
    assert_eq!(store.get_connection(a, conn_a.id).await.unwrap(), conn_a, "B's writes must not touch A's connection");
    assert_eq!(store.get_credential(a, conn_a.id).await.unwrap(), credential_a, "nor its credential");
    assert_eq!(store.get_connect_session(a, session_a.id).await.unwrap(), session_a, "nor its session");
    assert_eq!(store.list_events(a, 0, 500).await.unwrap(), events_of_a, "nor its events");
    assert_eq!(store.list_audit_events(a, Page::first()).await.unwrap().items, audits_of_a, "nor its audit log");
    let disconnects = store.job_counts().await.unwrap().into_iter().filter(|c| c.kind == "disconnect").count();
    assert_eq!(disconnects, 0, "B's begin_disconnect must not queue a job");

    let a_id = a.tenant_id();
    let keys = store.list_api_keys(b, Page::first()).await.unwrap().items;
    let conns = store.list_connections(b, ConnectionFilter::default(), Page::first()).await.unwrap().items;
    let conns_of_a =
        store.list_connections(b, ConnectionFilter { user_id: Some(user_a.id) }, Page::first()).await.unwrap().items;
    let audits = store.list_audit_events(b, Page::first()).await.unwrap().items;
    let events = store.list_events(b, 0, 100).await.unwrap();
    // (case, rows returned, rows of tenant A among them, rows expected)
    let lists: Vec<(&str, usize, usize, usize)> = vec![
        ("list_api_keys for B", keys.len(), keys.iter().filter(|k| k.tenant_id == a_id).count(), 1),
        ("list_connections for B", conns.len(), conns.iter().filter(|c| c.tenant_id == a_id).count(), 1),
        ("list_connections for B filtered to A's user", conns_of_a.len(), conns_of_a.len(), 0),
        ("list_audit_events for B", audits.len(), audits.iter().filter(|e| e.tenant_id == Some(a_id)).count(), 1),
        ("list_events for B", events.len(), events.iter().filter(|e| e.tenant_id == a_id).count(), 1),
    ];
    for (case, rows, rows_of_a, expected) in lists {
        assert_eq!(rows_of_a, 0, "{case}: contains tenant A's rows");
        assert_eq!(rows, expected, "{case}: expected only B's rows");
    }
}

/// Racing first logins of one tenant and one user converge on one row each.
pub async fn concurrent_upserts_of_one_tenant_and_user_make_one_row(store: Arc<dyn Store>) {
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let store = store.clone();
        tasks.spawn(async move {
            let tenant = store.upsert_tenant("org:racing").await.unwrap();
            let user = store.upsert_user(TenantScope::new(tenant.id), "iss", "sub").await.unwrap();
            (tenant.id, user.id)
        });
    }
    let ids: Vec<_> = tasks.join_all().await;
    assert!(ids.iter().all(|pair| *pair == ids[0]), "every upsert returns the same tenant and user: {ids:?}");
    let found = store.find_tenant("org:racing").await.unwrap().expect("tenant exists");
    assert_eq!(found.id, ids[0].0);
}

/// Touching a key writes once per debounce window.
pub async fn touching_an_api_key_is_debounced(store: Arc<dyn Store>) {
    let (scope, _) = tenant_with_user(&*store, "org:touch").await;
    let key = store.create_api_key(new_api_key(scope.tenant_id(), 7)).await.unwrap();
    let window = chrono::Duration::minutes(1);
    let start = t0();
    assert!(store.touch_api_key(key.id, start, window).await.unwrap(), "first touch writes");
    assert!(!store.touch_api_key(key.id, secs(start, 30), window).await.unwrap(), "touch inside the window is skipped");
    assert_eq!(store.get_api_key(scope, key.id).await.unwrap().last_used_at, Some(start));
    assert!(store.touch_api_key(key.id, secs(start, 61), window).await.unwrap(), "touch after the window writes");
    let by_hash = store.find_api_key_by_hash(&[7; 32]).await.unwrap().expect("found by hash");
    assert_eq!(by_hash.last_used_at, Some(secs(start, 61)));
    assert_eq!(by_hash.scopes, vec![ApiKeyScope::Read, ApiKeyScope::Write]);
    let revoked = store.revoke_api_key(scope, key.id, start).await.unwrap();
    let again = store.revoke_api_key(scope, key.id, secs(start, 5)).await.unwrap();
    assert_eq!(
        (revoked.revoked_at, again.revoked_at),
        (Some(start), Some(start)),
        "revoking twice keeps the first time"
    );
}

/// Creating a connection writes `connection.created` (sequence 1) with a public snapshot; the
/// connection's next event gets sequence 2.
pub async fn connection_events_are_sequenced_per_connection(store: Arc<dyn Store>) {
    let (scope, user) = tenant_with_user(&*store, "org:events").await;
    let conn = store.create_connection(new_connection(&user, "acct-1")).await.unwrap();
    let next = NewEvent {
        tenant_id: scope.tenant_id(),
        connection_id: Some(conn.id),
        event_type: EventType::ConnectionNeedsReauth,
        payload: serde_json::json!({ "reason": "invalid_grant" }),
    };
    let second = store.append_event(next).await.unwrap();
    let loose = NewEvent {
        tenant_id: scope.tenant_id(),
        connection_id: None,
        event_type: EventType::WebhookReceived,
        payload: serde_json::json!({}),
    };
    let third = store.append_event(loose).await.unwrap();

    let events = store.list_events(scope, 0, 10).await.unwrap();
    let summary: Vec<_> = events.iter().map(|e| (e.event_type.as_str(), e.sequence)).collect();
    assert_eq!(
        summary,
        vec![("connection.created", Some(1)), ("connection.needs_reauth", Some(2)), ("webhook.received", None)]
    );
    let created = &events[0];
    assert_eq!(created.connection_id, Some(conn.id));
    assert_eq!(
        created.payload,
        serde_json::json!({
            "id": conn.id, "provider": "monday", "status": "active", "status_reason": null, "provider_account_id": "acct-1",
        })
    );
    assert!(events.windows(2).all(|w| w[0].position < w[1].position), "positions increase");
    let after_first = store.list_events(scope, events[0].position, 10).await.unwrap();
    assert_eq!(after_first.iter().map(|e| e.id).collect::<Vec<_>>(), vec![second.id, third.id]);
}

/// Connections being disconnected are hidden; lists page in creation order.
pub async fn hidden_connections_are_not_listed_and_lists_page_in_creation_order(store: Arc<dyn Store>) {
    let (scope, user) = tenant_with_user(&*store, "org:pages").await;
    let mut created = Vec::new();
    for n in 0..5 {
        created.push(store.create_connection(new_connection(&user, &format!("acct-{n}"))).await.unwrap().id);
    }
    let hidden = NewConnection { status: ConnectionStatus::Disconnecting, ..new_connection(&user, "gone") };
    let hidden = store.create_connection(hidden).await.unwrap();
    assert!(
        matches!(store.get_connection(scope, hidden.id).await, Err(StoreError::NotFound)),
        "disconnecting is hidden"
    );

    let first = store.list_connections(scope, ConnectionFilter::default(), Page::new(Some(3), None)).await.unwrap();
    assert_eq!(first.items.iter().map(|c| c.id).collect::<Vec<_>>(), created[..3]);
    let second = store
        .list_connections(scope, ConnectionFilter::default(), Page::new(Some(3), first.next_cursor))
        .await
        .unwrap();
    assert_eq!(second.items.iter().map(|c| c.id).collect::<Vec<_>>(), created[3..]);
    assert_eq!(second.next_cursor, None, "the last page has no cursor");
    let all = store.list_all_connections(Page::first()).await.unwrap();
    assert_eq!(all.items.len(), 5, "operator view hides disconnecting connections too");
}

/// Instances register, heartbeat and deregister.
pub async fn instances_register_heartbeat_and_deregister(store: Arc<dyn Store>) {
    let start = t0();
    let instance = Instance {
        id: InstanceId::new(),
        key_ids: vec![1, 2],
        version: "0.1.0".into(),
        started_at: start,
        heartbeat_at: start,
    };
    store.register_instance(&instance).await.unwrap();
    store.heartbeat_instance(instance.id, secs(start, 10)).await.unwrap();
    let listed = store.list_instances().await.unwrap();
    assert_eq!(listed, vec![Instance { heartbeat_at: secs(start, 10), ..instance.clone() }]);
    store.deregister_instance(instance.id).await.unwrap();
    assert!(store.list_instances().await.unwrap().is_empty());
    assert!(matches!(store.heartbeat_instance(instance.id, start).await, Err(StoreError::NotFound)));
    assert!(!store.ping().await.unwrap().is_empty(), "ping reports a version");
}
