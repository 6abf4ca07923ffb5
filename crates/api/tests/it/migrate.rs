//! `monday migrate-tokens`: legacy Monday credentials move to OAuth 2.1 through the migrate
//! endpoint, resumably, each write guarded by the row's version.

use crate::connect::world;
use crate::helpers::{json, token, Db};
use patchbay_api::cli::monday::migrate;
use patchbay_oauth::{MondayFlow, ProviderConfig};
use patchbay_store::TenantScope;
use patchbay_token_vault::migrate::MigrationReport;
use secrecy::SecretString;
use serde_json::json;

async fn legacy_tokens_migrate(db: Db) {
    let Some(w) = world(db, "legacy").await else { return };
    let alice = token("alice", json!({}));
    let back = w.connect(&alice, "monday", json!({})).await;
    assert_eq!(back["patchbay_status"], "connected");
    let id = back["connection_id"].parse().unwrap();
    let me = json(w.app.get_as("/v1/me", &alice).await).await;
    let scope = TenantScope::new(me["tenant_id"].as_str().unwrap().parse().unwrap());
    assert_eq!(w.app.store.get_credential(scope, id).await.unwrap().flow, patchbay_store::TokenFlow::MondayLegacy);

    // The app switched to the new flow: the same client, OAuth 2.1 endpoints.
    let v2 = ProviderConfig::monday("monday-client", SecretString::from("monday-secret"), MondayFlow::V2)
        .with_token_url(w.monday.token_url())
        .with_migrate_url(Some(w.monday.migrate_url()));
    let state = &w.app.state;
    let report = migrate(&w.app.store, &state.tokens, &state.oauth, &v2, 10, false).await.unwrap();
    assert_eq!(report, MigrationReport { migrated: 1, failed: 0, rate_limited: false });
    assert_eq!(w.monday.migrate_calls(), 1, "one migrate call");
    let credential = w.app.store.get_credential(scope, id).await.unwrap();
    assert_eq!(credential.flow, patchbay_store::TokenFlow::MondayV2);
    let set = state.tokens.open(&credential).unwrap();
    assert!(set.refresh_token.is_some() && set.expires_at.is_some(), "now a refreshable, expiring grant");

    let again = migrate(&w.app.store, &state.tokens, &state.oauth, &v2, 10, false).await.unwrap();
    assert_eq!(again, MigrationReport::default(), "a second run finds nothing left to migrate");
    assert_eq!(w.monday.migrate_calls(), 1);
    w.app.stop().await;
}
crate::both_stores!(legacy_monday_credentials_migrate_to_oauth_2_1_once, legacy_tokens_migrate);
