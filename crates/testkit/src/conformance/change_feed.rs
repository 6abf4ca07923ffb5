//! The change feed under concurrent page writers: a reader resuming from the last seq it saw
//! misses nothing and sees nothing twice.

use super::*;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

const WRITERS: usize = 4;
const PAGES: usize = 8;
const PER_PAGE: usize = 50;

/// Four writers (own leases, own parts, own boards of one connection) commit pages while a
/// reader follows the feed; the union of what it read is exactly the final set, seqs 1..=n.
pub async fn a_change_feed_reader_misses_nothing_while_four_writers_commit(store: Arc<dyn Store>) {
    let now = t0();
    let (scope, connection) = super::sync::active_connection(&*store, "org:feed").await;
    let mut leases = Vec::new();
    for n in 0..WRITERS {
        store.enqueue(job(&format!("writer-{n}"), now), now).await.unwrap();
        leases.push(store.claim(claim_any("feed-writer", now)).await.unwrap().expect("a writer job").lease);
    }
    let mut writers = tokio::task::JoinSet::new();
    for (w, lease) in leases.into_iter().enumerate() {
        let store = store.clone();
        writers.spawn(async move {
            let board = RecordId::derive(connection.id, RecordKind::MondayBoard, &format!("board-{w}"));
            for page in 0..PAGES {
                let records = (0..PER_PAGE)
                    .map(|n| {
                        let pid = format!("w{w}-p{page}-i{n}");
                        let fields = RecordFields {
                            hash: vec![w as u8; 32],
                            sealed: vec![1],
                            key_id: 1,
                            ..RecordFields::default()
                        };
                        RecordWrite {
                            kind: RecordKind::MondayItem,
                            id: RecordId::derive(connection.id, RecordKind::MondayItem, &pid),
                            provider_id: pid,
                            parent_id: Some(board),
                            change: RecordChange::Upsert(fields),
                        }
                    })
                    .collect();
                let state = StateWrite {
                    part: format!("items:board-{w}"),
                    expected_version: page as i64,
                    checkpoint: serde_json::json!({ "page": page }),
                    generation: 1,
                    success_at: None,
                    full_at: None,
                };
                let write = PageWrite {
                    tenant_id: connection.tenant_id,
                    connection_id: connection.id,
                    lease,
                    generation: 1,
                    records,
                    sweeps: vec![],
                    state,
                    now,
                };
                store.apply_page(write).await.expect("page write");
            }
        });
    }
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let (store, done) = (store.clone(), done.clone());
        tokio::spawn(async move {
            let (mut after, mut seen) = (0_i64, Vec::new());
            loop {
                // Read the flag before the page: an empty page read after the writers finished
                // proves the feed is drained.
                let finished = done.load(Ordering::SeqCst);
                let kinds = RecordKind::of_provider(ProviderId::Monday);
                let page = store.change_feed(scope, connection.id, kinds, after, 97).await.unwrap();
                for record in &page.records {
                    assert!(
                        record.change_seq > after && record.change_seq <= page.high_water,
                        "in order, below the mark"
                    );
                    after = record.change_seq;
                }
                if page.records.is_empty() {
                    after = after.max(page.high_water);
                    if finished {
                        return seen;
                    }
                    tokio::task::yield_now().await;
                }
                seen.extend(page.records.into_iter().map(|r| (r.change_seq, r.provider_id)));
            }
        })
    };
    writers.join_all().await;
    done.store(true, Ordering::SeqCst);
    let seen: Vec<(i64, String)> = reader.await.unwrap();

    let total = WRITERS * PAGES * PER_PAGE;
    let seqs: Vec<i64> = seen.iter().map(|(s, _)| *s).collect();
    assert_eq!(seqs, (1..=total as i64).collect::<Vec<_>>(), "every seq once, no gaps, no repeats");
    let read: BTreeMap<String, i64> = seen.into_iter().map(|(s, p)| (p, s)).collect();
    let mut stored = BTreeMap::new();
    let mut after = None;
    loop {
        let page = store
            .list_records(
                scope,
                connection.id,
                RecordKind::MondayItem,
                &RecordFilter::default(),
                Page::new(Some(500), after),
            )
            .await
            .unwrap();
        stored.extend(page.items.into_iter().map(|r| (r.provider_id, r.change_seq)));
        match page.next_cursor {
            Some(cursor) => after = Some(cursor),
            None => break,
        }
    }
    assert_eq!(read, stored, "what the reader saw is the final set");
}
