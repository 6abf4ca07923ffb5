//! A seeded random walk over the fake (creates, updates, deletes, series with modified and
//! cancelled instances, dead sync tokens, short pages) interleaved with syncs: after a final sync
//! the store equals the fake, and a change-feed reader ends with the store's live set.

use super::*;
use patchbay_testkit::fakes::google::{EventSpec, EventTime};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

on_both_stores!(random_changes_between_syncs_converge_on_the_fake);

const SEEDS: [u64; 5] = [1, 7, 42, 1337, 20_261_204];
const OPS: usize = 30;
const CALENDARS: [&str; 2] = ["primary", "side"];

async fn random_changes_between_syncs_converge_on_the_fake(world: World) {
    for (n, seed) in SEEDS.into_iter().enumerate() {
        // Printed first so a failure anywhere below names the seed to replay.
        eprintln!("google property test: seed {seed}");
        // Fresh fakes over the same store for each seed: a new user, tenant and connection.
        let mut world = World::over(world.store.clone(), None).await;
        world.tune(|s| s.google_page_size = 3);
        let conn = world.google_connection(&format!("org{n}"), USER).await;
        run_seed(&world, &conn, seed).await;
    }
}

async fn run_seed(world: &World, conn: &Connection, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    world.google.add_calendar(USER, "side", "Side");
    for op in 0..OPS {
        let calendar = CALENDARS[rng.gen_range(0..CALENDARS.len())];
        match rng.gen_range(0..100) {
            0..=24 => create(world, &mut rng, calendar),
            25..=34 => create_series(world, &mut rng, calendar),
            35..=49 => update(world, &mut rng, calendar),
            50..=59 => delete(world, &mut rng, calendar),
            60..=69 => change_instance(world, &mut rng, calendar),
            70..=74 => world.google.invalidate_sync_tokens(USER, calendar),
            75..=77 => world.google.set_page_plan(&[rng.gen_range(0..3), rng.gen_range(0..3)]),
            _ => {
                let (result, _) = sync(world, conn).await;
                assert!(result.is_ok(), "seed {seed}, op {op}: the sync failed: {result:?}");
                world.google.set_page_plan(&[]);
            }
        }
    }
    let (result, _) = sync(world, conn).await;
    assert!(result.is_ok(), "seed {seed}: the final sync failed: {result:?}");
    for calendar in [primary().as_str(), "side"] {
        eprintln!("seed {seed}: {calendar} holds {} events", expected(world, calendar).len());
        assert_matches(world, conn, calendar, &format!("seed {seed}")).await;
    }
    let (feed, store) = (feed_live_set(world, conn).await, live_set(world, conn).await);
    assert_eq!(feed, store, "seed {seed}: the change feed's live set differs from the store's");
}

/// A time in the window: between 200 days ago and 100 days ahead, on the hour.
fn start_in_window(rng: &mut StdRng) -> (i64, u32) {
    (rng.gen_range(-200..100), rng.gen_range(0..22))
}

fn create(world: &World, rng: &mut StdRng, calendar: &str) {
    let (days, hour) = start_in_window(rng);
    let summary = format!("event {}", rng.gen::<u32>());
    let spec = if rng.gen_bool(0.3) {
        EventSpec::all_day(&summary, &day(days), &day(days + rng.gen_range(1..3)))
    } else {
        EventSpec::timed(&summary, &day_at(days, hour, rng.gen_range(-5..6)), &day_at(days, hour + 1, 0))
    };
    world.google.insert_event(USER, calendar, spec);
}

fn create_series(world: &World, rng: &mut StdRng, calendar: &str) {
    let (days, hour) = start_in_window(rng);
    let start = EventTime::zoned(&day_at(days, hour, 0), "UTC");
    let end = EventTime::zoned(&day_at(days, hour + 1, 0), "UTC");
    let rule = if rng.gen_bool(0.5) {
        "RRULE:FREQ=WEEKLY".to_owned()
    } else {
        format!("RRULE:FREQ=WEEKLY;UNTIL={}T000000Z", day(days + 200).replace('-', ""))
    };
    world.google.insert_event(
        USER,
        calendar,
        EventSpec::new(&format!("series {}", rng.gen::<u32>()), start, end).recurring(&rule),
    );
}

/// A random live event of the calendar, if any (optionally only series masters).
fn pick(world: &World, rng: &mut StdRng, calendar: &str, series_only: bool) -> Option<Value> {
    let events: Vec<Value> = world
        .google
        .events(USER, calendar)
        .into_iter()
        .filter(|e| !series_only || e.get("recurrence").is_some())
        .collect();
    (!events.is_empty()).then(|| events[rng.gen_range(0..events.len())].clone())
}

fn update(world: &World, rng: &mut StdRng, calendar: &str) {
    let Some(event) = pick(world, rng, calendar, false) else { return };
    let summary = format!("changed {}", rng.gen::<u32>());
    let shift = rng.gen_bool(0.3);
    let (days, hour) = start_in_window(rng);
    world.google.update_event(USER, calendar, &text(&event, "id"), |spec| {
        spec.summary = summary;
        if shift && spec.recurrence.is_empty() {
            spec.start = EventTime::at(&day_at(days, hour, 0));
            spec.end = EventTime::at(&day_at(days, hour + 1, 0));
        }
    });
}

fn delete(world: &World, rng: &mut StdRng, calendar: &str) {
    if let Some(event) = pick(world, rng, calendar, false) {
        world.google.delete_event(USER, calendar, &text(&event, "id"));
    }
}

/// Modifies or cancels one of the first ten weekly instances of a random series.
fn change_instance(world: &World, rng: &mut StdRng, calendar: &str) {
    let Some(series) = pick(world, rng, calendar, true) else { return };
    let first = DateTime::parse_from_rfc3339(&text(&series["start"], "dateTime")).expect("a timed series");
    let original = first + Duration::weeks(rng.gen_range(0..10));
    let original = EventTime::zoned(&original.to_rfc3339(), "UTC");
    let id = text(&series, "id");
    if rng.gen_bool(0.4) {
        world.google.cancel_instance(USER, calendar, &id, original);
    } else {
        let (days, hour) = start_in_window(rng);
        let spec = EventSpec::new(
            &format!("moved {}", rng.gen::<u32>()),
            EventTime::zoned(&day_at(days, hour, 0), "UTC"),
            EventTime::zoned(&day_at(days, hour + 1, 0), "UTC"),
        );
        world.google.modify_instance(USER, calendar, &id, original, spec);
    }
}
