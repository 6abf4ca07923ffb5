//! The storage conformance suite, run against both backends: every scenario becomes
//! `sqlite::<scenario>` and `postgres::<scenario>`. Backend-specific tests live in their own
//! modules.

mod fakes;
mod migrations;
mod postgres_only;
mod sqlite_only;

/// Generates one test per scenario per backend.
macro_rules! on_both_stores {
    ($($scenario:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $scenario() {
                    let (store, _dir) = patchbay_testkit::db::sqlite_store().await;
                    patchbay_testkit::conformance::$scenario(store).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $scenario() {
                    let Some(store) = patchbay_testkit::db::postgres_store().await else { return };
                    patchbay_testkit::conformance::$scenario(store).await;
                }
            )*
        }
    };
}

on_both_stores!(
    tenant_data_is_invisible_to_other_tenants,
    concurrent_upserts_of_one_tenant_and_user_make_one_row,
    touching_an_api_key_is_debounced,
    connection_events_are_sequenced_per_connection,
    hidden_connections_are_not_listed_and_lists_page_in_creation_order,
    instances_register_heartbeat_and_deregister,
    concurrent_enqueues_of_one_dedup_key_make_one_job_due_at_the_earlier_time,
    a_dedup_merge_never_moves_run_at_later_or_priority_down,
    only_one_of_many_concurrent_claims_gets_a_due_job,
    concurrent_claims_never_run_two_jobs_of_one_concurrency_key,
    a_job_waits_while_its_concurrency_key_is_running,
    a_lapsed_lease_is_reclaimed_and_the_old_worker_is_fenced_out,
    attempts_are_counted_at_claim_and_a_job_past_max_attempts_is_dead,
    a_lapsed_lease_on_the_final_attempt_makes_the_job_dead,
    claims_follow_priority_and_skip_future_jobs_and_other_kinds,
    release_refunds_the_attempt_and_release_owner_frees_every_lease,
    a_retry_merges_into_a_job_enqueued_with_its_dedup_key_meanwhile,
    the_worker_completes_a_job_whose_handler_succeeds,
    the_worker_requeues_a_retry_after_a_backoff,
    the_worker_buries_a_permanent_failure,
    the_worker_requeues_a_yield_without_spending_the_attempt,
    sixty_four_concurrent_writers_all_succeed,
    a_connect_session_is_consumed_once_by_one_of_many_concurrent_callers,
    peeking_leaves_a_session_consumable_and_an_expired_one_is_never_returned,
    the_first_outcome_of_a_connect_session_wins,
    an_oauth_state_is_consumed_once_and_an_expired_one_is_deleted,
    saving_a_new_grant_writes_connection_credential_event_audit_and_job,
    saving_a_grant_again_updates_the_connection_in_place,
    grant_status_changes_emit_needs_reauth_and_recovered,
    a_duplicate_insert_of_one_account_conflicts_but_another_user_gets_their_own,
    key_usage_counts_per_key_and_a_rewrap_is_guarded_by_version,
    one_of_many_racing_owners_gets_the_refresh_lease_until_it_lapses,
    a_refresh_is_written_only_over_the_version_it_read,
    a_refresh_recovers_a_connection_that_needed_reauth,
    a_status_change_writes_one_event_and_audit_and_a_repeat_writes_nothing,
    every_status_transition_writes_the_event_the_rule_names,
    credentials_expiring_lists_only_active_ones_expiring_before_the_cutoff_in_order,
    a_disconnect_hides_the_connection_and_finishing_it_twice_deletes_it_once,
    // sync and records
    request_sync_queues_one_run_and_later_requests_merge_into_it,
    request_sync_refuses_a_connection_that_is_not_active,
    sync_run_writes_are_fenced_by_the_job_lease,
    finishing_a_run_announces_it_once_and_a_skip_announces_nothing,
    sync_state_is_version_checked_and_dirty_is_cleared_only_by_a_later_success,
    repair_candidates_are_active_connections_without_an_open_run,
    a_run_whose_job_died_is_abandoned_and_its_connection_repaired,
    a_page_gives_change_seqs_to_changes_only,
    a_stale_page_is_refused_and_a_checkpoint_never_goes_back,
    a_sweep_tombstones_only_older_generations_under_its_parent,
    list_records_filters_and_pages_by_id,
    the_same_event_id_under_two_calendars_is_two_records,
    records_are_invisible_to_other_tenants,
    purge_deletes_records_in_batches_until_nothing_is_left,
    record_rewraps_are_guarded_by_the_old_ciphertext,
    the_record_seq_moves_with_every_record_write,
    a_page_can_require_its_parent_in_the_same_query,
    a_change_feed_reader_misses_nothing_while_four_writers_commit,
    // budgets, breakers and idempotency
    gcra_admits_the_burst_then_refuses_until_it_refills,
    a_gcra_refund_stops_at_now_and_a_forced_step_applies_over_capacity,
    concurrent_gcra_steps_never_admit_more_than_the_capacity,
    concurrency_slots_admit_n_holders_and_free_on_release_or_lapse,
    a_breaker_opens_at_the_threshold_probes_once_and_backs_off,
    idempotency_keys_start_once_replay_and_expire,
    // webhooks in
    webhook_sources_are_tenant_scoped_and_rotation_keeps_an_overlap,
    an_inbox_batch_stores_each_dedup_key_once_per_source,
    concurrent_inbox_batches_store_every_delivery_exactly_once,
    webhook_events_page_by_id_and_are_invisible_to_other_tenants,
    watch_channels_confirm_once_count_up_and_outlive_their_stop,
    // events out
    event_endpoints_are_tenant_scoped_and_rotate_with_an_overlap,
    dispatch_makes_one_delivery_per_subscribed_enabled_endpoint,
    concurrent_dispatchers_neither_skip_nor_double_an_event,
    deliveries_are_leased_attempted_redriven_and_disabled_with_a_final_event,
    each_stored_inbox_event_commits_with_its_process_job,
    webhook_attempts_and_outcomes_change_only_a_pending_event,
    reprocessing_is_tenant_walled_and_queues_a_job,
    a_webhook_rewrap_replaces_only_the_ciphertext_it_read,
    // monday board webhooks
    monday_webhooks_are_one_per_account_board_event_and_hand_over_on_leave,
    a_non_owner_leaving_changes_no_owner_and_a_used_webhook_is_not_deleted,
    concurrent_claims_create_one_monday_webhook,
    // retention
    inbox_retention_deletes_settled_events_past_their_period_and_never_a_young_dedup_key,
    delivery_and_outbox_retention_keep_pending_work_and_events_a_delivery_refers_to,
    watch_channel_retention_deletes_channels_a_day_past_their_expiry,
    // sync and records
);
