//! The storage layer's tests: one behaviour suite run against SQLite and PostgreSQL, a
//! model-based property test, and the multi-replica tests that only PostgreSQL can have.
//!
//! PostgreSQL tests need `OSC_TEST_DATABASE_URL` (see `fixture.rs`); without it they fail.

mod behaviour;
mod evidence;
mod fixture;
mod model;
mod replicas;

/// Instantiates each behaviour test (an `async fn(TestDb)` in `behaviour.rs` or `evidence.rs`) once per backend,
/// as `sqlite::NAME` and `postgres::NAME`.
macro_rules! on_every_backend {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $test() {
                    let db = crate::fixture::TestDb::new(crate::fixture::Kind::Sqlite).await;
                    crate::$test(&db).await;
                    db.remove().await;
                }
            )*

            #[test]
            fn the_store_agrees_with_a_model() {
                crate::model::check_against_model(crate::fixture::Kind::Sqlite, 64);
            }
        }

        mod postgres {
            $(
                #[tokio::test]
                async fn $test() {
                    let db = crate::fixture::TestDb::new(crate::fixture::Kind::Postgres).await;
                    crate::$test(&db).await;
                    db.remove().await;
                }
            )*

            // Fewer cases: each one creates a database.
            #[test]
            fn the_store_agrees_with_a_model() {
                crate::model::check_against_model(crate::fixture::Kind::Postgres, 16);
            }
        }
    };
}

use behaviour::*;
use evidence::*;

on_every_backend!(
    create_get_update_delete,
    create_of_an_existing_key_is_already_exists,
    a_stale_precondition_conflicts_and_changes_nothing,
    objects_that_are_not_json_objects_are_refused,
    resource_versions_rise_by_one_across_resources,
    data_survives_reopening,
    list_pages_through_every_object_once_in_order,
    list_filters_by_namespace,
    the_predicate_runs_before_the_limit,
    a_list_reports_a_version_a_watch_can_start_from,
    foreign_or_garbled_continue_tokens_are_invalid,
    a_watch_replays_history_then_streams_live_events,
    a_watch_from_the_current_version_sees_only_new_events,
    a_watch_from_the_future_is_refused,
    a_watch_before_the_kept_history_is_gone,
    history_older_than_its_maximum_age_is_gone,
    a_lagging_watcher_catches_up_from_the_table,
    a_watcher_that_lags_past_the_history_gets_gone,
    concurrent_read_modify_write_loses_no_update,
    stats_count_objects_per_resource_and_kept_events,
    a_cancelled_operation_leaves_no_connection_inside_a_transaction,
    a_chain_is_appended_in_log_order_and_retries_are_duplicates,
    forks_gaps_and_broken_links_are_refused_and_forks_alerted,
    the_database_refuses_to_update_or_delete_evidence,
    evidence_is_queried_by_site_host_runbook_outcome_and_time_in_pages,
    concurrent_submissions_build_one_tree_that_replicas_agree_on,
);
