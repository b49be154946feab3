//! Races between a scheduling pass and the API, for real: each side on its own thread, runtime
//! and pool (separate Lambda instances), released together by a barrier.

use test_support::scheduler as common;

use common::{spec, Fixture};
use shared::testing::TestRequest;
use sqlx::PgPool;

/// A pass that would preempt for a deployment races that deployment's cancel: the eviction
/// happens only together with the start it made room for (DESIGN.md §13).
#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn a_cancel_racing_a_pass_never_leaves_a_victim_evicted_for_nothing(db: PgPool) {
    let f = Fixture::new(db.clone()).await;
    let token = f.admin_token().await;
    for _ in 0..30 {
        let c = f.cluster(4, 16, 0).await;
        let victim = f.submit(spec(Some(c), 10, 4, 8, 0)).await;
        f.pass().await;
        assert_eq!(f.status(victim).await, "running");
        let preemptor = f.submit(spec(Some(c), 90, 4, 8, 0)).await;
        let (org, token) = (f.org, token.clone());
        let results = test_support::race::race(&db, 2, move |i, state| {
            let token = token.clone();
            async move {
                if i == 0 {
                    scheduler::run_pass(&state, org)
                        .await
                        .map(|_| 200)
                        .unwrap_or(500)
                } else {
                    let cancel =
                        TestRequest::post(&format!("/api/v1/deployments/{preemptor}/cancel"))
                            .bearer(&token)
                            .build();
                    test_support::api::send(&state, cancel)
                        .await
                        .status()
                        .as_u16()
                }
            }
        })
        .await;
        assert_eq!(results, [200, 200], "pass and cancel both succeed");
        assert_eq!(f.status(preemptor).await, "cancelled");
        let preemptor_started = f
            .events(preemptor)
            .await
            .iter()
            .any(|(t, _)| t == "started");
        let victim_evicted = f
            .events(victim)
            .await
            .iter()
            .any(|(t, by)| t == "preempted" && *by == Some(preemptor));
        assert_eq!(
            victim_evicted, preemptor_started,
            "the victim was evicted for a preemptor that never started"
        );
        if !preemptor_started {
            assert_eq!(f.status(victim).await, "running");
        }
        f.assert_books_balance().await;
    }
}

/// A shrinking resize races a pass that would fill the cluster: whichever commits first, the
/// other sees it, and capacity, books and what runs agree afterwards.
#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn a_resize_racing_a_pass_keeps_capacity_and_books_consistent(db: PgPool) {
    let f = Fixture::new(db.clone()).await;
    let token = f.admin_token().await;
    for _ in 0..20 {
        let c = f.cluster(8, 32, 0).await;
        f.submit(spec(Some(c), 50, 4, 8, 0)).await;
        f.pass().await;
        f.submit(spec(Some(c), 50, 4, 8, 0)).await;
        let (org, token) = (f.org, token.clone());
        let results = test_support::race::race(&db, 2, move |i, state| {
            let token = token.clone();
            async move {
                if i == 0 {
                    scheduler::run_pass(&state, org)
                        .await
                        .map(|_| 200)
                        .unwrap_or(500)
                } else {
                    let shrink = TestRequest::patch(&format!("/api/v1/clusters/{c}"))
                        .bearer(&token)
                        .json(serde_json::json!({"cpu_cores": 4}))
                        .build();
                    test_support::api::send(&state, shrink)
                        .await
                        .status()
                        .as_u16()
                }
            }
        })
        .await;
        assert_eq!(results[0], 200, "the pass succeeds: {results:?}");
        assert!(matches!(results[1], 200 | 409), "{results:?}");
        let (capacity, allocated, running): (i64, i64, i64) = sqlx::query_as(
            "SELECT c.cpu_millis, c.alloc_cpu_millis,
                    (SELECT count(*) FROM deployments d WHERE d.cluster_id = c.id AND d.status = 'running')
             FROM clusters c WHERE c.id = $1",
        )
        .bind(c)
        .fetch_one(f.db())
        .await
        .unwrap();
        if results[1] == 200 {
            assert_eq!(
                (capacity, allocated, running),
                (4000, 4000, 1),
                "{results:?}"
            );
        } else {
            assert_eq!(
                (capacity, allocated, running),
                (8000, 8000, 2),
                "{results:?}"
            );
        }
        f.assert_books_balance().await;
    }
}
