//! `vault rotate` for synced records, on both stores: records sealed under key 1 are re-sealed
//! under key 2 (hash recomputed), `vault status` counts them per key, `vault retire 1` is refused
//! while any record uses key 1 and accepted after, the records open with key 2 alone, and a sync
//! after the rotation still finds every unchanged record unchanged. Also: an interrupted
//! rotation resumes where it stopped, and what a sync does between moving the key first and
//! rotating (it re-seals what it lists, once).

use crate::google::{high_water, live_events, opened, primary, sync_ok, text, Counts, USER};
use crate::support::World;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use patchbay_store::*;
use patchbay_sync::rekey::rotate_records;
use patchbay_sync::seal::Sealer;
use patchbay_testkit::fakes::google::EventSpec;
use patchbay_token_vault::keys::{self, KeyCount, KeyError, RotateProgress};
use patchbay_token_vault::{KeyRing, Tokens, Vault};
use secrecy::SecretString;
use std::sync::Arc;

on_both_stores!(
    rotating_moves_every_record_to_the_new_key_and_keeps_unchanged_records_unchanged,
    an_interrupted_rotation_resumes_with_what_is_left,
    a_full_listing_before_the_rotation_reseals_what_it_lists_once,
);

const EVENTS: usize = 8;
/// The primary calendar and its events.
const RECORDS: i64 = EVENTS as i64 + 1;

/// A vault over keys `ids` (the first encrypts); key 1 is the world's test key.
fn ring(ids: &[u32]) -> Vault {
    let entry = |id: u32| match id {
        1 => format!("1:{}", STANDARD.encode([0x5A; 32])),
        other => format!("{other}:{}", STANDARD.encode([other as u8; 32])),
    };
    let text = ids.iter().map(|id| entry(*id)).collect::<Vec<_>>().join(",");
    Vault::new(KeyRing::parse(&SecretString::from(text)).expect("the ring parses"))
}

/// Points the world's sync (sealer and token opening) at `vault`, as a deploy with that key
/// ring would.
fn deploy(w: &mut World, vault: Vault) {
    let credentials: Arc<dyn CredentialStore> = w.store.clone();
    w.tokens = Arc::new(Tokens::new(credentials, vault, w.oauth.clone(), w.registry.clone(), "rekey".into()));
    w.deps.tokens = w.tokens.clone();
}

/// A Google connection with `EVENTS` events synced under key 1.
async fn synced(w: &World) -> Connection {
    let conn = w.google_connection("acme", USER).await;
    for n in 0..EVENTS {
        let start = crate::google::day_at(-(n as i64), 9, 0);
        w.google.insert_event(USER, "primary", EventSpec::timed(&format!("Event {n}"), &start, &start));
    }
    sync_ok(w, &conn).await;
    conn
}

fn record_usage(usage: &[RecordKeyUsage]) -> Vec<(u32, i64)> {
    usage.iter().map(|u| (u.key_id, u.records)).collect()
}

async fn rotating_moves_every_record_to_the_new_key_and_keeps_unchanged_records_unchanged(mut w: World) {
    let conn = synced(&w).await;
    let seq = high_water(&w, &conn).await;
    let store = w.store.clone();
    let store = &*store;
    let usage = keys::key_usage(store).await.unwrap();
    assert_eq!(
        usage.get(&1),
        Some(&KeyCount { credentials: 1, pending_verifiers: 0, records: RECORDS, webhooks: 0 }),
        "{usage:?}"
    );

    // Deploy 2: key 2 first. Retiring key 1 is refused, naming the records.
    let both = ring(&[2, 1]);
    deploy(&mut w, both.clone());
    let refused = keys::check_retire(store, both.ring(), 1).await;
    assert!(
        matches!(refused, Err(KeyError::InUse { id: 1, credentials: 1, records: RECORDS, pending: 0, webhooks: 0 })),
        "{refused:?}"
    );
    let message = refused.unwrap_err().to_string();
    assert!(message.contains(&format!("{RECORDS} synced records")) && message.contains("vault rotate"), "{message}");

    keys::rotate(store, &both, 3, |_, _| {}).await.expect("credentials rotate");
    let refused = keys::check_retire(store, both.ring(), 1).await;
    assert!(
        matches!(refused, Err(KeyError::InUse { id: 1, credentials: 0, records: RECORDS, pending: 0, webhooks: 0 })),
        "records alone still hold key 1: {refused:?}"
    );

    let mut seen = Vec::new();
    let moved = rotate_records(store, &Sealer::new(both.clone()), 3, |p: RotateProgress, failure| {
        assert!(failure.is_none(), "every record opens");
        seen.push(p);
    })
    .await
    .expect("records rotate");
    assert_eq!(moved, RECORDS);
    assert_eq!(seen.len(), RECORDS as usize, "progress after every record");
    assert_eq!(seen.last(), Some(&RotateProgress { done: RECORDS, total: RECORDS, failed: 0 }));
    assert_eq!(record_usage(&store.record_key_usage().await.unwrap()), [(2, RECORDS)], "status: 0 on key 1");
    assert_eq!(high_water(&w, &conn).await, seq, "a rotation is not a change: no change_seq moves");

    // Idempotent: a second run finds nothing to do.
    assert_eq!(rotate_records(store, &Sealer::new(both.clone()), 3, |_, _| {}).await.unwrap(), 0);
    keys::check_retire(store, both.ring(), 1).await.expect("key 1 encrypts nothing now");
    assert_eq!(keys::key_usage(store).await.unwrap().get(&1), None);

    // Deploy 3: key 1 removed. Every record opens with key 2 alone, with its content intact.
    deploy(&mut w, ring(&[2]));
    let events = live_events(&w, &conn, &primary()).await;
    assert_eq!(events.len(), EVENTS);
    let mut titles: Vec<String> = events.values().map(|r| text(&opened(&w, r), "summary")).collect();
    titles.sort();
    let mut want: Vec<String> = (0..EVENTS).map(|n| format!("Event {n}")).collect();
    want.sort();
    assert_eq!(titles, want);

    // Change detection survives the rotation: an incremental sync and a full re-listing of
    // unchanged events rewrite nothing.
    assert_eq!(sync_ok(&w, &conn).await, Counts::default());
    w.google.invalidate_all_sync_tokens();
    assert_eq!(sync_ok(&w, &conn).await, Counts::default(), "a full listing finds every rotated record unchanged");
    assert_eq!(high_water(&w, &conn).await, seq, "no change_seq moved");
    // A real change still is one.
    w.google.insert_event(
        USER,
        "primary",
        EventSpec::timed("Event new", &crate::google::day_at(1, 9, 0), &crate::google::day_at(1, 10, 0)),
    );
    assert_eq!(sync_ok(&w, &conn).await.upserted, 1);
}

async fn an_interrupted_rotation_resumes_with_what_is_left(w: World) {
    let _conn = synced(&w).await;
    let store = &*w.store;
    let sealer = Sealer::new(ring(&[2, 1]));
    // The process dies right after the 4th record's write (a panic out of the progress
    // callback stands for the kill: no write is in flight when it happens).
    let interrupted = {
        let (store, sealer) = (w.store.clone(), sealer.clone());
        tokio::spawn(async move {
            rotate_records(&*store, &sealer, 2, |p: RotateProgress, _| assert!(p.done < 4, "stop here")).await
        })
    };
    let died = interrupted.await.expect_err("the rotation was interrupted");
    assert!(died.is_panic());
    let usage = record_usage(&store.record_key_usage().await.unwrap());
    assert_eq!(usage, [(1, RECORDS - 4), (2, 4)], "4 records moved before the interruption");
    let left = RECORDS - 4;

    let moved = rotate_records(store, &sealer, 2, |_, _| {}).await.expect("the rerun finishes");
    assert_eq!(moved, left, "the rerun takes exactly what was left");
    assert_eq!(record_usage(&store.record_key_usage().await.unwrap()), [(2, RECORDS)]);
}

async fn a_full_listing_before_the_rotation_reseals_what_it_lists_once(mut w: World) {
    // The hash key follows the primary key, so between moving key 2 first and `vault rotate`,
    // a record a sync lists is seen as changed once: re-sealed under key 2 with its new hash,
    // with a new change_seq. It is then under the primary key and `vault rotate` skips it.
    let conn = synced(&w).await;
    let seq = high_water(&w, &conn).await;
    deploy(&mut w, ring(&[2, 1]));
    assert_eq!(sync_ok(&w, &conn).await, Counts::default(), "an incremental sync lists nothing, rewrites nothing");
    w.google.invalidate_all_sync_tokens();
    let counts = sync_ok(&w, &conn).await;
    assert_eq!(counts.upserted, RECORDS, "every listed record is re-sealed once");
    assert!(high_water(&w, &conn).await > seq);
    assert_eq!(record_usage(&w.store.record_key_usage().await.unwrap()), [(2, RECORDS)]);
    assert_eq!(rotate_records(&*w.store, &Sealer::new(ring(&[2, 1])), 3, |_, _| {}).await.unwrap(), 0);

    let seq = high_water(&w, &conn).await;
    w.google.invalidate_all_sync_tokens();
    assert_eq!(sync_ok(&w, &conn).await, Counts::default(), "after that, unchanged is unchanged again");
    assert_eq!(high_water(&w, &conn).await, seq);
}
