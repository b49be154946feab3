//! Each rule of DESIGN.md §3, on real PostgreSQL, through the real scheduling pass.

use test_support::scheduler as common;

use common::{spec, Fixture};
use sqlx::PgPool;

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn starts_what_fits_and_keeps_the_books(db: PgPool) {
    let f = Fixture::new(db).await;
    let c = f.cluster(8, 32, 1).await;
    let a = f.submit(spec(Some(c), 50, 4, 16, 1)).await;
    let b = f.submit(spec(Some(c), 50, 4, 16, 0)).await;
    let summary = f.pass().await;
    assert_eq!(summary.started, 2);
    assert_eq!(f.status(a).await, "running");
    assert_eq!(f.status(b).await, "running");
    assert_eq!(f.events(a).await.last().unwrap().0, "started");
    f.assert_books_balance().await;
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn preempts_both_when_both_are_needed(db: PgPool) {
    let f = Fixture::new(db).await;
    let c = f.cluster(4, 16, 0).await;
    let low1 = f.submit(spec(Some(c), 10, 2, 8, 0)).await;
    let low2 = f.submit(spec(Some(c), 20, 2, 8, 0)).await;
    f.pass().await;
    let high = f.submit(spec(Some(c), 90, 4, 16, 0)).await;
    let summary = f.pass().await;
    assert_eq!(summary.preempted, 2);
    assert_eq!(f.status(high).await, "running");
    for victim in [low1, low2] {
        let (status, _, reason, preemptions) = f.row(victim).await;
        assert_eq!(status, "pending");
        assert_eq!(preemptions, 1);
        assert_eq!(reason.unwrap()["code"], "preempted");
        let events = f.events(victim).await;
        assert!(
            events.contains(&("preempted".to_string(), Some(high))),
            "{events:?}"
        );
        assert!(
            events.contains(&("requeued".to_string(), Some(high))),
            "{events:?}"
        );
    }
    f.assert_books_balance().await;
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn preempts_only_the_necessary_lowest_priority_victim(db: PgPool) {
    let f = Fixture::new(db).await;
    let c = f.cluster(4, 16, 0).await;
    let lowest = f.submit(spec(Some(c), 10, 2, 8, 0)).await;
    let low = f.submit(spec(Some(c), 20, 2, 8, 0)).await;
    f.pass().await;
    let high = f.submit(spec(Some(c), 90, 2, 8, 0)).await;
    let summary = f.pass().await;
    assert_eq!(summary.preempted, 1);
    assert_eq!(f.status(high).await, "running");
    assert_eq!(f.status(lowest).await, "pending");
    assert_eq!(f.status(low).await, "running");
    f.assert_books_balance().await;
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn equal_priority_is_never_preempted(db: PgPool) {
    let f = Fixture::new(db).await;
    let c = f.cluster(2, 8, 0).await;
    let first = f.submit(spec(Some(c), 50, 2, 8, 0)).await;
    f.pass().await;
    let second = f.submit(spec(Some(c), 50, 2, 8, 0)).await;
    let summary = f.pass().await;
    assert_eq!(summary.preempted, 0);
    assert_eq!(f.status(first).await, "running");
    let (status, _, reason, _) = f.row(second).await;
    assert_eq!(status, "pending");
    let reason = reason.unwrap();
    assert_eq!(reason["code"], "insufficient_resources");
    assert_eq!(reason["shortfall"]["cpu_cores"], 2.0);
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn backfills_small_work_around_a_blocked_large_one(db: PgPool) {
    let f = Fixture::new(db).await;
    let c = f.cluster(4, 16, 0).await;
    let important = f.submit(spec(Some(c), 95, 3, 4, 0)).await;
    f.pass().await;
    let big = f.submit(spec(Some(c), 90, 4, 4, 0)).await;
    let small = f.submit(spec(Some(c), 10, 1, 4, 0)).await;
    f.pass().await;
    assert_eq!(f.status(important).await, "running");
    assert_eq!(f.status(small).await, "running");
    let (status, _, reason, _) = f.row(big).await;
    assert_eq!(status, "pending");
    assert_eq!(reason.unwrap()["code"], "insufficient_resources");
    f.assert_books_balance().await;
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn release_drains_the_queue_in_priority_order(db: PgPool) {
    let f = Fixture::new(db).await;
    let c = f.cluster(2, 8, 0).await;
    let running = f.submit(spec(Some(c), 50, 2, 8, 0)).await;
    f.pass().await;
    let low = f.submit(spec(Some(c), 10, 2, 8, 0)).await;
    let high = f.submit(spec(Some(c), 40, 2, 8, 0)).await;
    f.pass().await;
    assert_eq!(f.status(high).await, "pending");
    f.finish(running, "succeeded").await;
    f.pass().await;
    assert_eq!(f.status(high).await, "running");
    assert_eq!(f.status(low).await, "pending");
    f.assert_books_balance().await;
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn waits_for_dependencies_then_runs(db: PgPool) {
    let f = Fixture::new(db).await;
    let c = f.cluster(8, 32, 0).await;
    let first = f.submit(spec(Some(c), 50, 1, 1, 0)).await;
    let second = f.submit_after(spec(Some(c), 90, 1, 1, 0), &[first]).await;
    f.pass().await;
    let (status, _, reason, _) = f.row(second).await;
    assert_eq!(status, "pending");
    assert_eq!(reason.unwrap()["code"], "waiting_for_dependencies");
    f.finish(first, "succeeded").await;
    f.pass().await;
    assert_eq!(f.status(second).await, "running");
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn dependency_failure_fails_dependents_transitively(db: PgPool) {
    let f = Fixture::new(db).await;
    let c = f.cluster(8, 32, 0).await;
    let root = f.submit(spec(Some(c), 50, 1, 1, 0)).await;
    let child = f.submit_after(spec(Some(c), 50, 1, 1, 0), &[root]).await;
    let grandchild = f.submit_after(spec(Some(c), 50, 1, 1, 0), &[child]).await;
    f.cancel_pending(root).await;
    f.pass().await;
    for id in [child, grandchild] {
        let (status, _, reason, _) = f.row(id).await;
        assert_eq!(status, "failed");
        assert_eq!(reason.unwrap()["code"], "dependency_failed");
        assert_eq!(f.events(id).await.last().unwrap().0, "dependency_failed");
    }
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn max_runtime_is_enforced_and_frees_capacity(db: PgPool) {
    let f = Fixture::new(db).await;
    let c = f.cluster(2, 8, 0).await;
    let long = f.submit(spec(Some(c), 50, 2, 8, 0)).await;
    sqlx::query("UPDATE deployments SET max_runtime_seconds = 60 WHERE id = $1")
        .bind(long)
        .execute(f.db())
        .await
        .unwrap();
    f.pass().await;
    assert_eq!(f.status(long).await, "running");
    let next = f.submit(spec(Some(c), 50, 2, 8, 0)).await;
    sqlx::query("UPDATE deployments SET started_at = now() - interval '2 minutes' WHERE id = $1")
        .bind(long)
        .execute(f.db())
        .await
        .unwrap();
    let summary = f.pass().await;
    assert_eq!(summary.expired, 1);
    let (status, _, reason, _) = f.row(long).await;
    assert_eq!(status, "failed");
    assert_eq!(reason.unwrap()["code"], "max_runtime_exceeded");
    assert_eq!(f.status(next).await, "running");
    f.assert_books_balance().await;
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn auto_placement_picks_the_best_fitting_cluster(db: PgPool) {
    let f = Fixture::new(db).await;
    let _big = f.cluster(64, 256, 8).await;
    let snug = f.cluster(4, 16, 0).await;
    let d = f.submit(spec(None, 50, 4, 16, 0)).await;
    f.pass().await;
    let (status, cluster, _, _) = f.row(d).await;
    assert_eq!(status, "running");
    assert_eq!(cluster, Some(snug));
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn min_runtime_protects_young_deployments_from_preemption(db: PgPool) {
    let mut state = shared::testing::test_state(db);
    std::sync::Arc::make_mut(&mut state.config).preemption_min_runtime_seconds = 3600;
    let f = Fixture::with_state(state).await;
    let c = f.cluster(2, 8, 0).await;
    let young = f.submit(spec(Some(c), 10, 2, 8, 0)).await;
    f.pass().await;
    let high = f.submit(spec(Some(c), 90, 2, 8, 0)).await;
    f.pass().await;
    assert_eq!(f.status(young).await, "running");
    assert_eq!(f.status(high).await, "pending");
    // Once old enough, it may be preempted. Two hours pass for everything the scheduler
    // keeps, its record of the last plan included.
    sqlx::query("UPDATE deployments SET started_at = now() - interval '2 hours' WHERE id = $1")
        .bind(young)
        .execute(f.db())
        .await
        .unwrap();
    sqlx::query("UPDATE scheduler_passes SET planned_at = planned_at - interval '2 hours'")
        .execute(f.db())
        .await
        .unwrap();
    f.pass().await;
    assert_eq!(f.status(high).await, "running");
    assert_eq!(f.status(young).await, "pending");
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn a_second_pass_over_the_same_state_changes_nothing(db: PgPool) {
    let f = Fixture::new(db).await;
    let c = f.cluster(2, 8, 0).await;
    let a = f.submit(spec(Some(c), 50, 2, 8, 0)).await;
    let b = f.submit(spec(Some(c), 40, 2, 8, 0)).await;
    f.pass().await;
    let events_before = f.events(a).await.len() + f.events(b).await.len();
    let summary = f.pass().await;
    assert_eq!(summary.started, 0);
    assert_eq!(summary.preempted, 0);
    assert_eq!(
        f.events(a).await.len() + f.events(b).await.len(),
        events_before
    );
    f.assert_books_balance().await;
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn auto_placed_work_larger_than_every_cluster_waits_with_exceeds_capacity(db: PgPool) {
    let f = Fixture::new(db).await;
    f.cluster(8, 32, 0).await;
    // Accepted while a big enough cluster existed (the API refuses to delete it now; a delete
    // racing the submission could still have removed it), so it fits no cluster left.
    let big = f.submit(spec(None, 50, 4, 16, 4)).await;
    let small = f.submit(spec(None, 10, 2, 8, 0)).await;
    f.pass().await;
    assert_eq!(f.status(small).await, "running");
    let (status, _, reason, _) = f.row(big).await;
    assert_eq!(status, "pending");
    let reason = reason.unwrap();
    assert_eq!(reason["code"], "exceeds_capacity", "{reason}");
    assert_eq!(reason["shortfall"]["gpu_count"], 4);

    // Nothing is lost: once a cluster that large exists, it runs there.
    let gpu_cluster = f.cluster(8, 32, 4).await;
    f.pass().await;
    let (status, cluster, _, _) = f.row(big).await;
    assert_eq!(status, "running");
    assert_eq!(cluster, Some(gpu_cluster));
    f.assert_books_balance().await;
}

/// What the pass would store, read the way the pass reads it.
async fn reasons_to_write(f: &Fixture) -> Vec<(uuid::Uuid, serde_json::Value)> {
    let mut tx = f.db().begin().await.unwrap();
    let clusters = shared::snapshot::load_clusters(&mut tx, f.org, false)
        .await
        .unwrap();
    let snapshot = shared::snapshot::load_input(&mut tx, f.org, clusters, chrono::Utc::now(), 0)
        .await
        .unwrap();
    let plan = shared::scheduling::plan(&snapshot.input);
    scheduler::pass::changed_reasons(&plan, &snapshot.stored_reasons)
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn a_waiting_reason_is_rewritten_only_when_it_changes(db: PgPool) {
    let f = Fixture::new(db).await;
    let c = f.cluster(4, 16, 0).await;
    f.submit(spec(Some(c), 90, 3, 4, 0)).await;
    let waiting = f.submit(spec(Some(c), 50, 4, 4, 0)).await;
    f.pass().await;
    let (_, _, reason, _) = f.row(waiting).await;
    assert_eq!(reason.unwrap()["shortfall"]["cpu_cores"], 3.0);

    // Nothing changed: the stored reason (as PostgreSQL gives it back) matches the new one.
    assert_eq!(reasons_to_write(&f).await, vec![]);

    // More room: the shortfall shrinks, and the next pass stores it.
    sqlx::query("UPDATE clusters SET cpu_millis = 6000 WHERE id = $1")
        .bind(c)
        .execute(f.db())
        .await
        .unwrap();
    let changed = reasons_to_write(&f).await;
    assert_eq!(changed.len(), 1);
    assert_eq!(changed[0].0, waiting);
    f.pass().await;
    let (status, _, reason, _) = f.row(waiting).await;
    assert_eq!(status, "pending");
    let reason = reason.unwrap();
    assert_eq!(reason["code"], "insufficient_resources");
    assert_eq!(reason["shortfall"]["cpu_cores"], 1.0);
    assert_eq!(reasons_to_write(&f).await, vec![]);
}
