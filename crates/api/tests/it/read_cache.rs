//! Record pages under conditional requests and the page cache, on both stores, after real syncs
//! from the fakes: a page answers with a strong `ETag`, `If-None-Match` with it answers 304
//! without a body, a repeated page comes from the cache byte for byte; a sync that changes,
//! deletes or sweeps records, a write-back, and a disconnect (with its purge) each change the
//! answer at once; a rewrap (key rotation) leaves the page and its ETag as they are because the
//! opened records are the same; another tenant never gets a cached page, a 304 or an ETag; and
//! with `PATCHBAY_READ_CACHE_BYTES=0` nothing is kept while ETags still work.

use crate::connect::{world, world_with, World};
use crate::helpers::{json, token, Db};
use chrono::{Duration, Utc};
use patchbay_store::{ConnectionId, Page, RecordFilter, RecordKind, TenantScope};
use patchbay_sync::seal::Sealer;
use patchbay_testkit::fakes::google::EventSpec;
use patchbay_testkit::fakes::GOOGLE_SUB;
use serde_json::{json, Value};

/// A page's status, ETag and body, asked with `If-None-Match: tag` when given.
async fn page(w: &World, bearer: &str, path: &str, tag: Option<&str>) -> (u16, Option<String>, Vec<u8>) {
    let mut request = w.app.client.get(w.app.url(path)).bearer_auth(bearer);
    if let Some(tag) = tag {
        request = request.header("if-none-match", tag);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let etag = response.headers().get("etag").map(|v| v.to_str().unwrap().to_owned());
    (status, etag, response.bytes().await.unwrap().to_vec())
}

async fn sync(w: &World, bearer: &str, id: &str) {
    let response = w.app.client.post(w.app.url(&format!("/v1/connections/{id}/sync"))).bearer_auth(bearer).send().await;
    let status = response.unwrap().status();
    assert!(status == 202 || status == 200, "sync requested: {status}");
    assert!(w.app.run_jobs().await >= 1, "the worker ran the sync");
}

fn summaries(body: &[u8]) -> Vec<String> {
    let page: Value = serde_json::from_slice(body).unwrap();
    let mut names: Vec<String> =
        page["data"].as_array().unwrap().iter().map(|e| e["summary"].as_str().unwrap_or_default().to_owned()).collect();
    names.sort();
    names
}

/// A fresh ETag and body of `path` that differ from `before`'s, asked with its ETag.
async fn changed(w: &World, bearer: &str, path: &str, before: &str) -> (String, Vec<u8>) {
    let (status, etag, body) = page(w, bearer, path, Some(before)).await;
    assert_eq!(status, 200, "{path}: the old ETag no longer matches");
    let etag = etag.expect("an ETag");
    assert_ne!(etag, before);
    (etag, body)
}

async fn google_pages(db: Db) {
    let Some(w) = world(db, "v2").await else { return };
    let start = Utc::now() + Duration::days(2);
    let ids: Vec<String> = (0..4)
        .map(|n| {
            let at = start + Duration::hours(n);
            let (from, to) = (at.to_rfc3339(), (at + Duration::minutes(30)).to_rfc3339());
            w.google.insert_event(GOOGLE_SUB, "primary", EventSpec::timed(&format!("cached-{n}"), &from, &to))
        })
        .collect();
    let alice = token("alice", json!({}));
    let id = w.connect(&alice, "google", json!({})).await["connection_id"].clone();
    sync(&w, &alice, &id).await;
    let calendars = json(w.app.get_as(&format!("/v1/connections/{id}/google/calendars"), &alice).await).await;
    let calendar = calendars["data"][0]["id"].as_str().expect("the calendar is served").to_owned();
    let events = format!("/v1/connections/{id}/google/calendars/{calendar}/events?limit=100");

    // An ETag, a byte-identical repeat from the cache, 304 for the same tag (also in a list,
    // or weak), 200 for another.
    let (status, etag, body) = page(&w, &alice, &events, None).await;
    assert_eq!(status, 200);
    let etag = etag.expect("a page has an ETag");
    assert!(etag.starts_with('"') && etag.ends_with('"') && etag.len() > 20, "a strong ETag: {etag}");
    assert_eq!(summaries(&body), ["cached-0", "cached-1", "cached-2", "cached-3"]);
    assert!(!w.app.state.read_cache.is_empty(), "the page is kept");
    let again = page(&w, &alice, &events, None).await;
    assert_eq!(again, (200, Some(etag.clone()), body.clone()), "a repeat is the same page");
    for tag in [etag.clone(), format!("\"nope\", {etag}"), format!("W/{etag}")] {
        let (status, tag_back, bytes) = page(&w, &alice, &events, Some(&tag)).await;
        assert_eq!((status, tag_back.as_deref(), bytes.len()), (304, Some(etag.as_str()), 0), "{tag}");
    }
    assert_eq!(page(&w, &alice, &events, Some("\"other\"")).await.0, 200);
    let other_query = page(&w, &alice, &format!("{events}&provider_id={}", ids[0]), None).await;
    assert_ne!(other_query.1.as_ref(), Some(&etag), "another query has its own ETag");
    assert_eq!(summaries(&other_query.2), ["cached-0"]);

    // A rewrap of every event (what `patchbay vault rotate` does per record): the same opened
    // records, so the same ETag, and the cached body equals one built afresh.
    let me = json(w.app.get_as("/v1/me", &alice).await).await;
    let scope = TenantScope::new(me["tenant_id"].as_str().unwrap().parse().unwrap());
    let connection: ConnectionId = id.parse().unwrap();
    let sealer = Sealer::new(w.app.state.tokens.vault().clone());
    let all = RecordFilter { include_deleted: true, ..RecordFilter::default() };
    let stored = w.app.store.list_records(scope, connection, RecordKind::GoogleEvent, &all, Page::first()).await;
    for record in stored.unwrap().items {
        let rewrapped = sealer.rewrap(&record).unwrap();
        assert!(w.app.store.rewrap_record(record.kind, record.id, &record.fields.sealed, rewrapped).await.unwrap());
    }
    assert_eq!(page(&w, &alice, &events, Some(&etag)).await.0, 304, "a rewrap changes no page");
    w.app.state.read_cache.clear();
    assert_eq!(page(&w, &alice, &events, None).await, (200, Some(etag.clone()), body.clone()), "built afresh");

    // A sync that renames one event, one that deletes one.
    w.google.update_event(GOOGLE_SUB, "primary", &ids[1], |e| e.summary = "renamed".into());
    sync(&w, &alice, &id).await;
    let (renamed, body) = changed(&w, &alice, &events, &etag).await;
    assert_eq!(summaries(&body), ["cached-0", "cached-2", "cached-3", "renamed"]);
    w.google.delete_event(GOOGLE_SUB, "primary", &ids[2]);
    sync(&w, &alice, &id).await;
    let (deleted, body) = changed(&w, &alice, &events, &renamed).await;
    assert_eq!(summaries(&body), ["cached-0", "cached-3", "renamed"]);

    // Another tenant: 404 for the page, with or without alice's ETag, and no ETag.
    let bob = token("bob", json!({}));
    for tag in [None, Some(deleted.as_str())] {
        let (status, tag_back, _) = page(&w, &bob, &events, tag).await;
        assert_eq!((status, tag_back), (404, None), "another tenant, If-None-Match {tag:?}");
    }
    // bob's own connection to the same Google account: his own page and ETag.
    let bobs = w.connect(&bob, "google", json!({})).await["connection_id"].clone();
    sync(&w, &bob, &bobs).await;
    let bob_calendars = json(w.app.get_as(&format!("/v1/connections/{bobs}/google/calendars"), &bob).await).await;
    let bob_calendar = bob_calendars["data"][0]["id"].as_str().unwrap().to_owned();
    let bob_events = format!("/v1/connections/{bobs}/google/calendars/{bob_calendar}/events?limit=100");
    let (status, bob_tag, _) = page(&w, &bob, &bob_events, None).await;
    assert_eq!(status, 200);
    assert_ne!(bob_tag.as_deref(), Some(deleted.as_str()), "tenants never share an ETag");
    assert_eq!(page(&w, &alice, &bob_events, None).await.0, 404, "nor pages, the other way round");

    // A disconnect hides the pages at once, and they stay gone after the purge.
    let response =
        w.app.client.delete(w.app.url(&format!("/v1/connections/{id}"))).bearer_auth(&alice).send().await.unwrap();
    assert_eq!(response.status(), 202);
    for tag in [None, Some(deleted.as_str())] {
        assert_eq!(page(&w, &alice, &events, tag).await.0, 404, "disconnected, If-None-Match {tag:?}");
    }
    w.app.run_jobs().await;
    let left = w.app.store.list_records(scope, connection, RecordKind::GoogleEvent, &all, Page::first()).await;
    assert!(left.is_ok_and(|p| p.items.is_empty()), "purged");
    assert_eq!(page(&w, &alice, &events, Some(&deleted)).await.0, 404, "purged");
    w.app.stop().await;
}

crate::both_stores!(record_pages_answer_304_and_from_the_cache_until_a_write_changes_them, google_pages);

/// A write-back changes the items page at once; with the cache off nothing is kept and the
/// ETag still answers 304.
async fn monday_write_back(db: Db) {
    let Some(w) = world_with(db, "v2", &["--monday-write-back", "true", "--read-cache-bytes", "0"]).await else {
        return;
    };
    w.monday.add_board(1001, 4242, "Launch");
    w.monday.add_column(4242, "text0", "Notes", "text");
    w.monday.add_group(4242, "topics", "Topics");
    w.monday.create_item(4242, "topics", "Ship it");
    let alice = token("alice", json!({}));
    let id = w.connect(&alice, "monday", json!({})).await["connection_id"].clone();
    assert!(w.app.run_jobs().await >= 1, "the initial sync ran");
    let boards = json(w.app.get_as(&format!("/v1/connections/{id}/monday/boards"), &alice).await).await;
    let board = boards["data"][0]["id"].as_str().unwrap_or_else(|| panic!("the board is synced: {boards}")).to_owned();
    let items = format!("/v1/connections/{id}/monday/boards/{board}/items");
    let (status, etag, body) = page(&w, &alice, &items, None).await;
    assert_eq!(status, 200);
    let etag = etag.expect("an ETag");
    assert!(w.app.state.read_cache.is_empty(), "PATCHBAY_READ_CACHE_BYTES=0 keeps nothing");
    assert_eq!(page(&w, &alice, &items, Some(&etag)).await.0, 304, "ETags work without the cache");
    let item: Value = serde_json::from_slice::<Value>(&body).unwrap()["data"][0]["id"].clone();
    let item = item.as_str().unwrap();

    let write = w
        .app
        .client
        .post(w.app.url(&format!("{items}/{item}/column-values")))
        .bearer_auth(&alice)
        .header("idempotency-key", "k1")
        .json(&json!({"column_values": {"text0": "hello"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(write.status(), 200);
    let (_, body) = changed(&w, &alice, &items, &etag).await;
    assert!(String::from_utf8(body).unwrap().contains("hello"), "the written value is served");
    w.app.stop().await;
}

crate::both_stores!(a_write_back_changes_the_items_page_and_etags_work_without_the_cache, monday_write_back);
