//! The store conformance suite (feature `testing`).
//!
//! One set of behavioural tests that every [`Store`](crate::store::Store)
//! runs against a real database. A store crate invokes
//! [`store_conformance_suite!`](crate::store_conformance_suite) with an async
//! expression that yields a fresh, migrated, empty store; each test gets its
//! own store.

mod computed;
mod credentials;
mod fixtures;
mod history;
mod jobs;
mod oauth;
mod pagination;
mod records;
mod runs;
mod skill_jobs;
mod skill_scan;
mod skills;
mod sync;
mod tenancy;
mod webhooks;
mod workspaces;

pub use computed::{
    a_page_that_changes_a_deal_updates_its_computed_fields,
    baseline_refresh_and_recompute_cover_the_workspace,
    computed_fields_match_compute_for_synced_and_ingested_deals,
    computed_reads_and_writes_are_workspace_scoped, replaying_a_page_leaves_computed_fields_alone,
    risk_filter_and_sort_paginate_in_both_directions,
};
pub use credentials::{
    connect_seals_credentials, credentials_scan_and_swap,
    key_rotation_is_resumable_and_never_blocks_reads,
    plaintext_credentials_are_read_then_encrypted,
};
pub use fixtures::{deal, new_workspace};
pub use history::{batch_and_checkpoint_commit_together, deal_history_order_and_as_of};
pub use jobs::{
    a_lost_worker_after_the_last_attempt_fails_the_job,
    an_abandoned_running_run_is_recovered_after_its_lease,
    an_expired_lease_passes_the_job_on_and_fences_the_old_worker,
    cancel_connection_jobs_cancels_queued_and_running_jobs,
    claims_take_due_jobs_in_order_under_a_lease, concurrent_claimers_take_each_job_once,
    enqueue_creates_run_and_job_once_per_dedupe_key, finishing_a_sync_job_records_the_outcome,
    jobs_are_tenant_isolated, purge_source_deletes_only_that_source_in_that_workspace,
    retry_requeues_the_job_and_its_run_until_retry_at,
    scan_schedulable_connections_pages_every_workspace_by_id,
};
pub use oauth::{
    expired_oauth_authorization_is_refused_and_purged,
    invalid_grant_marks_the_connection_needs_reauth, mark_needs_reauth_is_compare_and_swap,
    oauth_authorization_is_consumed_once_under_concurrency,
    oauth_authorizations_are_bound_to_workspace_and_connector,
    refresh_lease_is_taken_once_under_concurrency_and_expires, refresh_leases_are_tenant_isolated,
    token_endpoint_failures_are_retried_and_leave_the_connection_active,
    two_facades_refresh_a_connection_once,
};
pub use pagination::{
    deal_filters, keyset_pagination_with_ties_and_inserts, null_sort_values_come_last,
};
pub use records::{
    concurrent_writers_leave_one_row_per_key, references_are_resolved, soft_delete_and_restore,
    stages_are_listed_in_pipeline_order, update_by_source_key, upsert_is_idempotent,
};
pub use runs::{
    concurrent_syncs_of_a_connection_give_one_run, last_sync_at_moves_only_on_success,
    one_active_sync_run_per_connection, pandora_sync_records_runs, sync_run_lifecycle_and_history,
    sync_runs_are_tenant_isolated,
};
pub use skill_jobs::{
    a_lost_skill_job_fails_its_run, deal_risk_is_written_back_on_the_workspaces_deals,
    scheduled_skills_run_once_per_slot_after_syncs, skill_jobs_start_retry_and_finish_their_runs,
    skill_schedules_are_stored_per_workspace,
};
pub use skill_scan::skill_deal_scan_matches_scan_deals;
pub use skills::{
    quotas_are_replaced_per_user_and_period, skill_run_lifecycle_and_history,
    skill_scans_page_by_id, skill_settings_are_stored_per_skill, skills_are_tenant_isolated,
};
pub use sync::{
    a_page_that_fails_to_write_stores_nothing_after_it, connectors_receive_opened_credentials,
    gated_writes_commit_in_gate_order, sync_records_observed_changes,
    sync_resumes_after_a_failure_with_nothing_lost_or_doubled,
};
pub use tenancy::{delete_workspace_removes_its_data, tenant_isolation};
pub use webhooks::{
    alerts_are_raised_once_and_cleared_when_the_condition_ends,
    concurrent_runs_raise_an_alert_once, deliveries_follow_their_jobs,
    webhooks_are_stored_per_workspace,
};
pub use workspaces::{api_keys, connections, settings_are_initialised_once, workspace_crud};

/// Generates one `#[tokio::test]` per conformance test, each on a fresh store
/// made by `$make` (an async expression yielding a value that implements
/// [`Store`](crate::store::Store)).
///
/// ```text
/// pandora_core::store_conformance_suite!(my_store::testing::fresh_store());
/// ```
#[macro_export]
macro_rules! store_conformance_suite {
    ($make:expr) => {
        $crate::store_conformance_suite!(@tests $make;
            workspace_crud,
            api_keys,
            settings_are_initialised_once,
            connections,
            upsert_is_idempotent,
            update_by_source_key,
            soft_delete_and_restore,
            references_are_resolved,
            stages_are_listed_in_pipeline_order,
            concurrent_writers_leave_one_row_per_key,
            tenant_isolation,
            delete_workspace_removes_its_data,
            keyset_pagination_with_ties_and_inserts,
            null_sort_values_come_last,
            deal_filters,
            deal_history_order_and_as_of,
            batch_and_checkpoint_commit_together,
            credentials_scan_and_swap,
            plaintext_credentials_are_read_then_encrypted,
            key_rotation_is_resumable_and_never_blocks_reads,
            connect_seals_credentials,
            sync_resumes_after_a_failure_with_nothing_lost_or_doubled,
            sync_records_observed_changes,
            connectors_receive_opened_credentials,
            gated_writes_commit_in_gate_order,
            a_page_that_fails_to_write_stores_nothing_after_it,
            sync_run_lifecycle_and_history,
            one_active_sync_run_per_connection,
            last_sync_at_moves_only_on_success,
            sync_runs_are_tenant_isolated,
            pandora_sync_records_runs,
            concurrent_syncs_of_a_connection_give_one_run,
            enqueue_creates_run_and_job_once_per_dedupe_key,
            claims_take_due_jobs_in_order_under_a_lease,
            an_expired_lease_passes_the_job_on_and_fences_the_old_worker,
            an_abandoned_running_run_is_recovered_after_its_lease,
            retry_requeues_the_job_and_its_run_until_retry_at,
            a_lost_worker_after_the_last_attempt_fails_the_job,
            finishing_a_sync_job_records_the_outcome,
            cancel_connection_jobs_cancels_queued_and_running_jobs,
            concurrent_claimers_take_each_job_once,
            skill_jobs_start_retry_and_finish_their_runs,
            a_lost_skill_job_fails_its_run,
            skill_schedules_are_stored_per_workspace,
            scheduled_skills_run_once_per_slot_after_syncs,
            deal_risk_is_written_back_on_the_workspaces_deals,
            jobs_are_tenant_isolated,
            scan_schedulable_connections_pages_every_workspace_by_id,
            purge_source_deletes_only_that_source_in_that_workspace,
            oauth_authorization_is_consumed_once_under_concurrency,
            expired_oauth_authorization_is_refused_and_purged,
            oauth_authorizations_are_bound_to_workspace_and_connector,
            refresh_lease_is_taken_once_under_concurrency_and_expires,
            refresh_leases_are_tenant_isolated,
            mark_needs_reauth_is_compare_and_swap,
            two_facades_refresh_a_connection_once,
            invalid_grant_marks_the_connection_needs_reauth,
            token_endpoint_failures_are_retried_and_leave_the_connection_active,
            skill_run_lifecycle_and_history,
            skill_settings_are_stored_per_skill,
            quotas_are_replaced_per_user_and_period,
            skill_scans_page_by_id,
            skill_deal_scan_matches_scan_deals,
            skills_are_tenant_isolated,
            computed_fields_match_compute_for_synced_and_ingested_deals,
            a_page_that_changes_a_deal_updates_its_computed_fields,
            replaying_a_page_leaves_computed_fields_alone,
            risk_filter_and_sort_paginate_in_both_directions,
            computed_reads_and_writes_are_workspace_scoped,
            baseline_refresh_and_recompute_cover_the_workspace,
            webhooks_are_stored_per_workspace,
            alerts_are_raised_once_and_cleared_when_the_condition_ends,
            concurrent_runs_raise_an_alert_once,
            deliveries_follow_their_jobs
        );
    };
    (@tests $make:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let store: ::std::sync::Arc<dyn $crate::store::Store> =
                    ::std::sync::Arc::new($make.await);
                $crate::testing::$name(store).await;
            }
        )*
    };
}
