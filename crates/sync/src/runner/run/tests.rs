//! The skip and scope decision, over hand-made part states.

use super::*;
use patchbay_store::ConnectionId;
use url::Url;

fn settings() -> SyncSettings {
    SyncSettings::new(Url::parse("http://google.test").unwrap(), Url::parse("http://monday.test/v2").unwrap())
}

fn state(part: &str, now: DateTime<Utc>) -> SyncState {
    SyncState {
        connection_id: ConnectionId::new(),
        part: part.into(),
        checkpoint: serde_json::Value::Null,
        version: 1,
        generation: 1,
        dirty: false,
        dirty_at: None,
        signal_healthy_until: None,
        last_success_at: Some(now - chrono::Duration::minutes(1)),
        last_full_at: None,
        updated_at: now,
    }
}

/// A Google connection synced a minute ago whose event parts have healthy push channels.
fn quiet(now: DateTime<Utc>) -> Vec<SyncState> {
    let mut events = state("events:primary", now);
    events.signal_healthy_until = Some(now + chrono::Duration::hours(1));
    let mut work = state("events:work", now);
    work.signal_healthy_until = Some(now + chrono::Duration::hours(1));
    vec![state("calendars", now), events, work]
}

#[test]
fn a_scheduled_run_of_a_quiet_signalled_connection_is_skipped() {
    let now = Utc::now();
    let plan = plan(SyncTrigger::Schedule, ProviderId::Google, &quiet(now), &settings(), now);
    assert_eq!(plan, Plan { skip: true, scope: Scope::DirtyOnly });
    let webhook = super::plan(SyncTrigger::Webhook, ProviderId::Google, &quiet(now), &settings(), now);
    assert!(webhook.skip, "a webhook run with nothing dirty is skipped too");
}

#[test]
fn people_and_first_syncs_are_never_skipped_and_cover_everything() {
    let now = Utc::now();
    for trigger in [SyncTrigger::Manual, SyncTrigger::Initial] {
        let plan = plan(trigger, ProviderId::Google, &quiet(now), &settings(), now);
        assert_eq!(plan, Plan { skip: false, scope: Scope::Everything }, "{trigger}");
    }
}

#[test]
fn a_dirty_part_an_unhealthy_signal_or_a_due_list_prevents_the_skip() {
    let now = Utc::now();
    let mut dirty = quiet(now);
    dirty[1].dirty = true;
    let plan_dirty = plan(SyncTrigger::Webhook, ProviderId::Google, &dirty, &settings(), now);
    assert_eq!(plan_dirty, Plan { skip: false, scope: Scope::DirtyOnly });

    let mut lapsed = quiet(now);
    lapsed[2].signal_healthy_until = Some(now - chrono::Duration::seconds(1));
    let plan_lapsed = plan(SyncTrigger::Schedule, ProviderId::Google, &lapsed, &settings(), now);
    assert_eq!(plan_lapsed, Plan { skip: false, scope: Scope::Everything });

    let mut list_due = quiet(now);
    list_due[0].last_success_at = Some(now - chrono::Duration::hours(1));
    assert!(!plan(SyncTrigger::Schedule, ProviderId::Google, &list_due, &settings(), now).skip);

    let mut never = quiet(now);
    never[1].last_success_at = None;
    assert!(!plan(SyncTrigger::Schedule, ProviderId::Google, &never, &settings(), now).skip);
}

#[test]
fn without_states_or_item_parts_nothing_is_skipped() {
    let now = Utc::now();
    assert_eq!(
        plan(SyncTrigger::Schedule, ProviderId::Google, &[], &settings(), now),
        Plan { skip: false, scope: Scope::Everything }
    );
    let list_only = vec![state("boards", now)];
    assert!(!plan(SyncTrigger::Schedule, ProviderId::Monday, &list_only, &settings(), now).skip);
    assert!(!signals_healthy(&list_only, now));
    // The other provider's list part does not count.
    assert!(!plan(SyncTrigger::Schedule, ProviderId::Monday, &quiet(now), &settings(), now).skip);
}

#[test]
fn store_errors_are_not_quoted_and_long_messages_are_cut() {
    let store = SyncError::Store(StoreError::Conflict("duplicate key value violates …".into()));
    assert_eq!(public_message(&store), "a store operation failed");
    let long = SyncError::Protocol("x".repeat(1000));
    assert!(public_message(&long).chars().count() <= MESSAGE_MAX + 1);
}
