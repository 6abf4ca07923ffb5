//! The vault rotation story against a live store: k1 → add k2 second → move k2 first →
//! `rotate` → every row under k2 and readable → `retire k1` accepted (refused before) — with
//! Monday refresh-token rotation running at the same time; and the same for synced records.

use crate::connect::{back_to_app, world, World, APP};
use crate::helpers::{free_port, json, spawn_on, token, Db, VAULT_KEYS};
use patchbay_api::cli::vault::{retire, rotate, Rotated};
use patchbay_oauth::ProviderId;
use patchbay_store::{ConnectionId, TenantScope};
use patchbay_testkit::fakes::google::EventSpec;
use patchbay_testkit::fakes::{Providers, GOOGLE_SUB};
use patchbay_token_vault::keys;
use patchbay_token_vault::Tokens;
use patchbay_token_vault::{KeyRing, Vault};
use secrecy::SecretString;
use serde_json::json;
use std::sync::Arc;

const K2: &str = "2:ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";

fn ring(text: &str) -> KeyRing {
    KeyRing::parse(&SecretString::from(text.to_string())).unwrap()
}

async fn rotation_story(db: Db) {
    let Some(w) = world(db, "v2").await else { return };
    w.monday.set_access_token_lifetime(60);
    let mut connections: Vec<(TenantScope, ConnectionId)> = Vec::new();
    for i in 0..12 {
        let sub = format!("g-rot-{i}");
        w.google.add_user(&sub, &format!("{sub}@gmail.test"));
        let user = token(&format!("user-{i}"), json!({}));
        let started = w.start(&user, "google", json!({})).await;
        let callback = w.google.authorize_headless(&started.authorize, &sub);
        let back = back_to_app(&w.callback(&callback, Some(&started.cookie)).await);
        let me = json(w.app.get_as("/v1/me", &user).await).await;
        connections.push((
            TenantScope::new(me["tenant_id"].as_str().unwrap().parse().unwrap()),
            back["connection_id"].parse().unwrap(),
        ));
    }
    let alice = token("alice", json!({}));
    let monday = w.connect(&alice, "monday", json!({})).await;
    let me = json(w.app.get_as("/v1/me", &alice).await).await;
    let monday_scope = TenantScope::new(me["tenant_id"].as_str().unwrap().parse().unwrap());
    let monday_id: ConnectionId = monday["connection_id"].parse().unwrap();
    connections.push((monday_scope, monday_id));
    let store = w.app.store.clone();
    let usage = store.credential_key_usage().await.unwrap();
    assert_eq!(usage.len(), 1, "everything starts under k1: {usage:?}");
    assert_eq!((usage[0].key_id, usage[0].credentials), (1, 13));

    // Deploy 1: k2 added second (k1 still encrypts). Deploy 2: k2 first.
    let second = format!("{VAULT_KEYS},{K2}");
    let first = format!("{K2},{VAULT_KEYS}");
    let refused = retire(&store, &ring(&first), 1).await.expect_err("retiring k1 is refused while rows use it");
    assert!(refused.to_string().contains("key 1 still encrypts 13 credentials"), "names what still uses it: {refused}");
    let state = &w.app.state;
    let registry = state.settings.providers.registry.clone();
    let old_fleet = Arc::new(Tokens::new(
        store.clone(),
        Vault::new(ring(&second)),
        state.oauth.clone(),
        registry,
        "instance-a".into(),
    ));

    // Rotate while an instance still on deploy 1 keeps refreshing Monday (rotating refresh tokens).
    let refresher = {
        let tokens = old_fleet.clone();
        tokio::spawn(async move {
            for round in 0..6 {
                tokens
                    .refresh(monday_scope, monday_id, ProviderId::Monday, None)
                    .await
                    .unwrap_or_else(|e| panic!("refresh {round}: {e}"));
            }
        })
    };
    let moved = rotate(&store, &Vault::new(ring(&first)), 3).await.expect("rotate finishes");
    refresher.await.unwrap();
    // Refreshes written under k1 during the run are picked up by the next pass of rotate.
    let moved_again = rotate(&store, &Vault::new(ring(&first)), 3).await.unwrap();
    assert!(
        moved.credentials + moved_again.credentials >= 13,
        "every row was re-encrypted ({moved:?} + {moved_again:?})"
    );
    let usage = store.credential_key_usage().await.unwrap();
    assert_eq!(usage.iter().map(|u| (u.key_id, u.credentials)).collect::<Vec<_>>(), vec![(2, 13)], "all rows under k2");

    let new_fleet = Tokens::new(
        store.clone(),
        Vault::new(ring(K2)),
        state.oauth.clone(),
        state.settings.providers.registry.clone(),
        "b".into(),
    );
    for (scope, id) in &connections {
        let credential = store.get_credential(*scope, *id).await.unwrap();
        new_fleet.open(&credential).expect("readable with k2 alone");
    }
    retire(&store, &ring(&first), 1).await.expect("retiring k1 is accepted once nothing uses it");
    let presented = w.monday.presented_refresh_tokens();
    let unique: std::collections::HashSet<_> = presented.iter().collect();
    assert_eq!((presented.len(), unique.len()), (6, 6), "no rotated refresh token was presented twice");
    w.app.stop().await;
}
crate::both_stores!(vault_rotation_moves_every_row_to_the_new_key_while_refreshes_continue, rotation_story);

/// Synced records through the same story: an instance on deploy 1 (k1 first, k2 second) syncs
/// events, sealed under k1; `retire 1` is refused naming the records; `rotate` under k2 first
/// moves them (status: nothing left on k1); `retire 1` is accepted; the deploy-1 instance still
/// serves every event (every key decrypts), none unreadable.
async fn record_rotation_story(db: Db) {
    let port = free_port();
    let Providers { google, monday, args, mut env } = Providers::start(&format!("http://127.0.0.1:{port}"), "v2").await;
    env.insert("PATCHBAY_VAULT_KEYS".into(), format!("{VAULT_KEYS},{K2}"));
    let args: Vec<&str> = ["--return-to-origins", APP].into_iter().chain(args.iter().map(String::as_str)).collect();
    let Some(app) = spawn_on(port, db, &args, env).await else { return };
    let w = World { app, google, monday };
    let start = chrono::Utc::now() + chrono::Duration::days(1);
    for n in 0..5 {
        let at = start + chrono::Duration::hours(n);
        let (from, to) = (at.to_rfc3339(), (at + chrono::Duration::minutes(30)).to_rfc3339());
        w.google.insert_event(GOOGLE_SUB, "primary", EventSpec::timed(&format!("rotated-{n}"), &from, &to));
    }
    let alice = token("alice", json!({}));
    let id = w.connect(&alice, "google", json!({})).await["connection_id"].clone();
    let sync = w.app.client.post(w.app.url(&format!("/v1/connections/{id}/sync"))).bearer_auth(&alice).send().await;
    assert_eq!(sync.unwrap().status(), 202);
    assert!(w.app.run_jobs().await >= 1);

    let store = w.app.store.clone();
    let usage = keys::key_usage(store.as_ref()).await.unwrap();
    let on_k1 = usage.get(&1).copied().unwrap_or_default();
    assert_eq!((on_k1.credentials, on_k1.records), (1, 6), "a calendar and 5 events under k1: {usage:?}");
    assert_eq!(usage.get(&2), None, "{usage:?}");

    let first = format!("{K2},{VAULT_KEYS}");
    let refused = retire(&store, &ring(&first), 1).await.expect_err("refused while records use k1");
    assert!(refused.to_string().contains("6 synced records"), "names the records: {refused}");
    let moved = rotate(&store, &Vault::new(ring(&first)), 2).await.expect("rotate finishes");
    assert_eq!(moved, Rotated { credentials: 1, records: 6, webhooks: 0 });
    let usage = keys::key_usage(store.as_ref()).await.unwrap();
    assert_eq!(usage.get(&1), None, "status: nothing left on k1: {usage:?}");
    assert_eq!(usage.get(&2).map(|c| (c.credentials, c.records)), Some((1, 6)), "{usage:?}");
    assert_eq!(
        rotate(&store, &Vault::new(ring(&first)), 2).await.unwrap(),
        Rotated::default(),
        "a rerun has nothing to do"
    );
    retire(&store, &ring(&first), 1).await.expect("retiring k1 is accepted once nothing uses it");

    let calendars = json(w.app.get_as(&format!("/v1/connections/{id}/google/calendars"), &alice).await).await;
    let calendar = calendars["data"][0]["id"].as_str().expect("the calendar is served").to_owned();
    assert!(calendars["data"][0].get("unreadable").is_none_or(|u| u == false), "{calendars}");
    let events =
        json(w.app.get_as(&format!("/v1/connections/{id}/google/calendars/{calendar}/events"), &alice).await).await;
    let events = events["data"].as_array().unwrap().clone();
    assert_eq!(events.len(), 5, "{events:?}");
    assert!(events.iter().all(|e| e.get("unreadable").is_none_or(|u| u == false)), "{events:?}");
    let text = serde_json::to_string(&events).unwrap();
    assert!((0..5).all(|n| text.contains(&format!("rotated-{n}"))), "every event is served with its title: {text}");
    w.app.stop().await;
}
crate::both_stores!(vault_rotation_moves_synced_records_and_they_are_still_served, record_rotation_story);
