//! A seeded random walk: creates, renames, column updates, moves, archives, deletes, restores and
//! purges made in fake monday, interleaved with incremental syncs and full reconciliations. After
//! every full reconciliation the local items equal the fake's active items, and a change-feed
//! reader that follows along ends with the same live set. The seed is in every failure message.

use super::{board, fake_items, live, sync, BOARD};
use crate::support::World;
use patchbay_store::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;

const OPS: usize = 30;
const GROUPS: [&str; 2] = ["topics", "done"];

/// A change-feed consumer: reads from where it stopped, in small pages.
#[derive(Default)]
struct Reader {
    after: i64,
    items: BTreeMap<String, Option<Value>>,
}

impl Reader {
    async fn catch_up(&mut self, world: &World, conn: &Connection) {
        let scope = TenantScope::new(conn.tenant_id);
        let sealer = world.deps.sealer();
        loop {
            let kinds = RecordKind::of_provider(ProviderId::Monday);
            let page = world.store.change_feed(scope, conn.id, kinds, self.after, 7).await.unwrap();
            let Some(last) = page.records.last() else { break };
            self.after = last.change_seq;
            for record in page.records.iter().filter(|r| r.kind == RecordKind::MondayItem) {
                let value = record.deleted_at.is_none().then(|| sealer.open(record).unwrap());
                self.items.insert(record.provider_id.clone(), value);
            }
        }
    }

    fn live(&self) -> BTreeMap<String, Value> {
        self.items.iter().filter_map(|(id, v)| v.clone().map(|v| (id.clone(), v))).collect()
    }
}

fn state_of(world: &World, id: u64) -> Option<String> {
    world.monday.item(id).map(|item| item["state"].as_str().unwrap().to_owned())
}

fn pick(rng: &mut StdRng, ids: &[u64]) -> Option<u64> {
    (!ids.is_empty()).then(|| ids[rng.gen_range(0..ids.len())])
}

async fn walk(mut world: World, seed: u64) {
    eprintln!("monday walk seed {seed}");
    world.tune(|s| s.monday_page_size = 3);
    let conn = world.monday_connection("acme").await;
    board(&world, BOARD, "Walk");
    let mut rng = StdRng::seed_from_u64(seed);
    let mut reader = Reader::default();
    let mut items: Vec<u64> = Vec::new();
    let mut log: Vec<String> = Vec::new();
    for step in 0..OPS {
        let active: Vec<u64> =
            items.iter().copied().filter(|id| state_of(&world, *id).as_deref() == Some("active")).collect();
        let inactive: Vec<u64> = items.iter().copied().filter(|id| !active.contains(id)).collect();
        let roll = rng.gen_range(0..100);
        let fake = &world.monday;
        let op = match roll {
            0..=19 => {
                let id = fake.create_item(BOARD, GROUPS[rng.gen_range(0..2)], &format!("item {step}"));
                items.push(id);
                format!("create {id}")
            }
            20..=31 => pick(&mut rng, &active)
                .map(|id| {
                    fake.rename_item(id, &format!("renamed {step}"));
                    format!("rename {id}")
                })
                .unwrap_or_default(),
            32..=43 => pick(&mut rng, &active)
                .map(|id| {
                    let value = match rng.gen_range(0..3) {
                        0 => Value::Null,
                        1 => json!(format!("note {step}")),
                        _ => {
                            let label = ["Done", "Stuck"][rng.gen_range(0..2)];
                            json!({ "label": label })
                        }
                    };
                    let column = if value.is_object() { "status" } else { "text0" };
                    fake.update_item_column(id, column, value);
                    format!("column {id} {column}")
                })
                .unwrap_or_default(),
            44..=51 => pick(&mut rng, &active)
                .map(|id| {
                    fake.move_item(id, GROUPS[rng.gen_range(0..2)]);
                    format!("move {id}")
                })
                .unwrap_or_default(),
            52..=57 => pick(&mut rng, &active)
                .map(|id| {
                    fake.archive_item(id);
                    format!("archive {id}")
                })
                .unwrap_or_default(),
            58..=63 => pick(&mut rng, &active)
                .map(|id| {
                    fake.delete_item(id);
                    format!("delete {id}")
                })
                .unwrap_or_default(),
            64..=71 => pick(&mut rng, &inactive)
                .map(|id| {
                    fake.restore_item(id);
                    format!("restore {id}")
                })
                .unwrap_or_default(),
            72..=74 => pick(&mut rng, &inactive)
                .map(|id| {
                    fake.purge_item(id);
                    items.retain(|i| *i != id);
                    format!("purge {id}")
                })
                .unwrap_or_default(),
            75..=79 => {
                fake.advance_clock(Duration::from_secs(1));
                "tick".to_owned()
            }
            80..=91 => {
                world.tune(|s| s.monday_full_every = Duration::from_secs(24 * 3600));
                sync(&world, &conn).await.unwrap_or_else(|e| panic!("seed {seed}: incremental sync: {e}; ops {log:?}"));
                reader.catch_up(&world, &conn).await;
                "sync".to_owned()
            }
            _ => {
                full_sync(&mut world, &conn, seed, &log).await;
                reader.catch_up(&world, &conn).await;
                "full sync".to_owned()
            }
        };
        if !op.is_empty() {
            log.push(op);
        }
    }
    full_sync(&mut world, &conn, seed, &log).await;
    reader.catch_up(&world, &conn).await;
    assert_eq!(reader.live(), fake_items(&world, BOARD), "seed {seed}: the change-feed reader's items; ops {log:?}");
}

async fn full_sync(world: &mut World, conn: &Connection, seed: u64, log: &[String]) {
    world.tune(|s| s.monday_full_every = Duration::ZERO);
    sync(world, conn).await.unwrap_or_else(|e| panic!("seed {seed}: full sync: {e}; ops {log:?}"));
    let local = live(world, conn, RecordKind::MondayItem).await;
    assert_eq!(local, fake_items(world, BOARD), "seed {seed}: local items after a full sync; ops {log:?}");
}

async fn random_walk_seed_11(world: World) {
    walk(world, 11).await;
}
async fn random_walk_seed_23(world: World) {
    walk(world, 23).await;
}
async fn random_walk_seed_42(world: World) {
    walk(world, 42).await;
}
async fn random_walk_seed_1999(world: World) {
    walk(world, 1999).await;
}
async fn random_walk_seed_2026(world: World) {
    walk(world, 2026).await;
}

on_both_stores!(
    random_walk_seed_11,
    random_walk_seed_23,
    random_walk_seed_42,
    random_walk_seed_1999,
    random_walk_seed_2026
);
