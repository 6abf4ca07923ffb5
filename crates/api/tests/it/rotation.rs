//! The vault rotation story against a live store: k1 → add k2 second → move k2 first →
//! `rotate` → every row under k2 and readable → `retire k1` accepted (refused before) — with
//! Monday refresh-token rotation running at the same time.

use crate::connect::{back_to_app, world};
use crate::helpers::{json, token, Db, VAULT_KEYS};
use patchbay_api::cli::vault::{retire, rotate};
use patchbay_oauth::ProviderId;
use patchbay_store::{ConnectionId, TenantScope};
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
    assert!(moved + moved_again >= 13, "every row was re-encrypted ({moved} + {moved_again})");
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
