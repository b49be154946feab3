//! Rate-limit leases (DESIGN §12): an instance takes a second's refill of tokens from the shared
//! bucket at once and serves its caller's next requests from memory, and the limit still holds
//! across instances, each with its own pool and its own leases.

use shared::testing::TestRequest;
use sqlx::PgPool;
use std::sync::Arc;
use test_support::api::{self, User};

/// The caller's bucket: when it was last taken from, and how many tokens that take leased.
async fn bucket(db: &PgPool, who: &User) -> (chrono::DateTime<chrono::Utc>, i32) {
    sqlx::query_as("SELECT updated_at, granted FROM rate_limit_buckets WHERE key = $1")
        .bind(format!("user:{}", who.id))
        .fetch_one(db)
        .await
        .unwrap()
}

/// 3,600 a minute leases 60 at a time: the first of thirty reads takes from PostgreSQL, the
/// other twenty-nine from the lease.
#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn reads_take_their_tokens_from_the_instances_lease(db: PgPool) {
    let state = shared::AppState::new(
        db.clone(),
        test_support::auth::config_with(|c| c.rate_limit_per_minute = 3600),
        None,
    );
    let who = api::user(&state, "leaser").await;
    assert_eq!(
        api::get(&state, &who, "/api/v1/clusters").await.status(),
        200
    );
    let first_take = bucket(&db, &who).await;
    assert_eq!(first_take.1, 60, "the take leased a second's refill");
    for _ in 0..29 {
        assert_eq!(
            api::get(&state, &who, "/api/v1/clusters").await.status(),
            200
        );
    }
    assert_eq!(
        bucket(&db, &who).await,
        first_take,
        "a read took from PostgreSQL again"
    );
}

/// Two instances (threads, runtimes and pools of their own, released by a barrier) share one
/// caller's limit of 120 a minute: together they are let through no more than the bucket held,
/// plus what refilled while they ran.
#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn the_limit_holds_across_instances_with_leases(db: PgPool) {
    let setup = shared::testing::test_state(db.clone());
    let who = Arc::new(api::user(&setup, "shared-limit").await);
    let started = std::time::Instant::now();
    let allowed = test_support::race::race_with(
        &db,
        2,
        |config| config.rate_limit_per_minute = 120,
        move |_, state| {
            let who = who.clone();
            async move {
                let mut ok = 0;
                for _ in 0..100 {
                    let request = TestRequest::get("/api/v1/clusters")
                        .bearer(&who.token)
                        .build();
                    match api::send(&state, request).await.status().as_u16() {
                        200 => ok += 1,
                        429 => {}
                        other => panic!("unexpected status {other}"),
                    }
                }
                ok
            }
        },
    )
    .await;
    let refilled = started.elapsed().as_secs_f64() * 2.0;
    let total: i32 = allowed.iter().sum();
    assert!(
        f64::from(total) <= 120.0 + refilled.ceil() + 1.0,
        "{allowed:?} let through with a limit of 120 (+{refilled:.1} refilled)"
    );
    assert!(total >= 100, "{allowed:?}: leases lost too many tokens");
    assert!(allowed.iter().all(|&n| n > 0), "{allowed:?}");
}
