//! The API tests again, on PostgreSQL + Redis + NATS JetStream (issue 4: one contract suite on
//! embedded and on the engines). Each test below is the very function of its module, run under
//! [`engines`](crate::engines::engines): every app it spawns gets its own database, Redis
//! namespace and JetStream stream, removed afterwards. Filter with `on_engines`, or skip them
//! with `--skip on_engines`.
//!
//! Not re-run here, because they are inherently about another backend:
//! - `leaderboards::running_boards_are_snapshotted_on_snapshot_cron` reads the snapshot files
//!   under `DATA_DIR/archive`; on PostgreSQL snapshots go to `leaderboard_snapshots`, which no
//!   endpoint reads (the store contract suite covers them there).
//! - the `redis` module: it already runs on Redis and sets its own namespace and `REDIS_URL`
//!   (one test starts a private `redis-server`), so it is its own engine run.

use crate::engines::engines;

/// `mod <module> { #[test] fn <name>() { engines(crate::<module>::<name>) } ... }`.
macro_rules! on_engines {
    ($($module:ident :: { $($test:ident),* $(,)? })*) => {
        $(
            mod $module {
                $(
                    #[test]
                    fn $test() {
                        super::engines(crate::$module::$test)
                    }
                )*
            }
        )*
    };
}

on_engines! {
    admin::{
        admin_routes_are_401_without_the_right_token_or_when_disabled,
        a_blocked_player_gets_403_until_unblocked_and_nothing_is_applied,
        a_timed_block_expires_and_blocks_survive_a_restart,
        refused_requests_are_listed_in_the_failed_events_store,
        a_live_rebuild_leaves_the_boards_exact,
        erasing_a_player_leaves_no_trace_and_keeps_the_boards_exact,
        resetting_a_period_empties_that_board_only_and_survives_a_restart,
    }
    fairness::{
        an_event_over_the_hard_cap_is_quarantined_then_released_exactly_once,
        a_release_after_a_reset_leaves_the_reset_board_as_a_rebuild_does,
        a_rejected_event_is_never_applied,
        flag_mode_applies_the_event_and_only_records_the_flag,
        a_jump_far_above_the_players_own_baseline_is_flagged_with_its_reason,
        three_flags_within_ten_minutes_block_the_player_for_block_sec,
        a_fresh_players_absurd_first_event_is_judged_against_the_population,
    }
    ingest::{
        accepted_event_is_202_with_its_event_id,
        server_assigns_a_uuid_v7_when_the_event_id_is_missing,
        repeated_event_id_is_208_and_applied_once,
        same_idempotency_key_and_body_replays_the_original_event_id,
        same_idempotency_key_with_another_body_is_409,
        idempotency_key_is_forgotten_after_idemp_ttl,
        overlong_idempotency_key_is_400,
        missing_signature_is_401,
        wrong_signature_is_401_and_nothing_is_applied,
        both_signature_header_forms_are_accepted,
        timestamps_outside_the_tolerance_are_401_stale_timestamp,
        require_timestamp_refuses_unstamped_requests,
        rotated_keys_are_picked_with_x_key_id,
        body_that_is_not_json_is_400_invalid_json,
        schema_violations_are_400_invalid_event_naming_the_field,
        near_miss_field_names_get_a_did_you_mean,
        wrong_content_type_is_415,
        bodies_over_the_limits_are_413,
        client_over_rate_limit_max_gets_429_with_retry_after,
        rate_limit_exempt_clients_skip_the_limit,
        batch_answers_one_result_per_event_in_order,
        a_malformed_batch_body_is_400_naming_the_events_field,
        batch_over_500_events_is_400,
        refusals_are_counted_by_reason,
        player_over_flood_max_per_sec_gets_429_player_flooding_and_nothing_is_applied,
    }
    leaderboards::{
        ranks_by_score_then_player_id_ascending,
        score_is_the_xp_gained_in_the_period,
        paging_with_limit_and_offset_reports_the_total,
        players_filter_returns_just_those_players_with_their_ranks,
        around_me_returns_neighbours_and_404_without_a_score,
        period_ids_follow_the_calendar,
        daily_board_rolls_over_at_midnight_and_the_old_one_is_archived,
        boards_are_rebuilt_exactly_after_a_restart,
    }
    ops::{
        health_and_readiness_answer,
        metrics_expose_the_spec_names,
        openapi_document_lists_the_endpoints,
        unknown_routes_are_404,
        every_answer_carries_a_trace_id_taken_from_traceparent_when_sent,
    }
    progression::{
        xp_and_levels_follow_the_rules_for_every_event_type,
        unknown_player_is_404_and_a_malformed_id_is_400,
        each_level_grants_gold_and_every_fifth_a_rare_chest,
        claiming_an_earned_reward_returns_a_signed_receipt_once,
        a_reward_not_earned_cannot_be_claimed,
        claims_must_be_signed,
        receipts_verify_until_tampered_or_24_hours_old,
        progress_survives_a_restart_and_is_not_applied_twice,
    }
    sessions::{
        a_guest_session_signs_events_for_its_own_player_only,
        a_chosen_player_id_is_kept_and_a_forged_token_is_refused,
        sessions_expire_after_an_hour,
        session_issue_is_rate_limited_per_client_and_can_be_switched_off,
    }
    stream::{
        the_stream_sends_the_board_at_connect_and_again_after_an_event,
        the_default_window_is_weekly_and_limit_cuts_the_entries,
        bad_stream_parameters_are_400_json_errors,
        a_burst_of_changes_reaches_a_client_as_a_few_coalesced_updates,
        a_client_leaving_does_not_disturb_the_others_on_its_feed,
        an_open_stream_does_not_hold_up_shutdown,
        the_stream_is_in_the_openapi_document,
    }
    web::{
        the_dashboard_and_the_game_are_served_with_a_strict_policy,
        every_asset_a_page_references_is_served_with_its_type,
        a_known_etag_gets_304_and_unknown_assets_404,
        the_vendored_chart_library_ships_with_its_licence,
    }
}

/// The harness itself: under `engines` an app really runs on PostgreSQL, JetStream and Redis,
/// in its own database and namespace, and both are gone once the test is over.
#[test]
fn apps_under_engines_are_on_the_engines_and_leave_nothing_behind() {
    use sqlx::Connection;

    let seen = std::cell::RefCell::new(None);
    engines(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        rt.block_on(async {
            let app = crate::helpers::spawn_app().await;
            let e = crate::helpers::progression("h-1", "player_h", 5);
            assert_eq!(app.post(&e).await.status, 202);
            app.wait_for_xp("player_h", 5).await;
            let ready = app.get("/readyz").await.body;
            for engine in ["store", "bus", "redis"] {
                assert_eq!(ready["checks"][engine], "ok", "{ready}");
            }
            let (url, namespace) = crate::engines::deployment_of(app.data_dir.path())
                .expect("the app's data dir has a deployment");
            let mut db = sqlx::PgConnection::connect(&url)
                .await
                .expect("test database");
            let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
                .fetch_one(&mut db)
                .await
                .expect("events table");
            assert_eq!(stored, 1, "the event is recorded in this test's database");
            let _ = db.close().await;
            *seen.borrow_mut() = Some((url, namespace));
        });
    });
    // `None`: the engines are missing and the run was skipped (outside CI).
    let Some((url, namespace)) = seen.into_inner() else {
        return;
    };
    let name = url.rsplit('/').next().unwrap_or_default().to_string();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let left: i64 = rt.block_on(async {
        let mut admin = sqlx::PgConnection::connect(&crate::engines::pg_admin_url())
            .await
            .expect("PostgreSQL");
        sqlx::query_scalar("SELECT count(*) FROM pg_database WHERE datname = $1")
            .bind(&name)
            .fetch_one(&mut admin)
            .await
            .expect("pg_database")
    });
    assert_eq!(left, 0, "database {name} was dropped");
    let keys = liveops_hotstate::testing::WipeOnDrop {
        url: liveops_hotstate::testing::redis_url(),
        namespace,
    };
    assert_eq!(
        keys.wipe().expect("Redis"),
        0,
        "the namespace's keys are gone"
    );
}
