//! The books rule lives in the database (migrations/*_cluster_books_trigger.sql): whatever
//! statement changes deployments, a cluster's allocation stays the sum of what runs on it.

use test_support::scheduler as common;

use common::{spec, Fixture};
use sqlx::PgPool;
use uuid::Uuid;

async fn allocated(f: &Fixture, cluster: Uuid) -> (i64, i64, i64) {
    sqlx::query_as("SELECT alloc_cpu_millis, alloc_ram_mgib, alloc_gpu FROM clusters WHERE id = $1")
        .bind(cluster)
        .fetch_one(f.db())
        .await
        .unwrap()
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn any_statement_that_ends_or_moves_running_work_keeps_the_books(db: PgPool) {
    let f = Fixture::new(db).await;
    let a = f.cluster(8, 32, 2).await;
    let b = f.cluster(8, 32, 2).await;
    let one = f.submit(spec(Some(a), 50, 2, 8, 1)).await;
    let two = f.submit(spec(Some(a), 50, 3, 4, 0)).await;
    let three = f.submit(spec(Some(b), 50, 1, 1, 1)).await;
    assert_eq!(f.pass().await.started, 3);
    assert_eq!(allocated(&f, a).await, (5000, 12000, 1));
    assert_eq!(allocated(&f, b).await, (1000, 1000, 1));

    // A plain UPDATE, as no handler writes it: the trigger still frees the capacity.
    sqlx::query("UPDATE deployments SET status = 'succeeded', finished_at = now() WHERE id = $1")
        .bind(one)
        .execute(f.db())
        .await
        .unwrap();
    assert_eq!(allocated(&f, a).await, (3000, 4000, 0));

    // One statement moving running work between clusters adjusts both, once each.
    sqlx::query("UPDATE deployments SET cluster_id = CASE WHEN id = $1 THEN $3 ELSE $4 END WHERE id IN ($1, $2)")
        .bind(two)
        .bind(three)
        .bind(b)
        .bind(a)
        .execute(f.db())
        .await
        .unwrap();
    assert_eq!(allocated(&f, a).await, (1000, 1000, 1));
    assert_eq!(allocated(&f, b).await, (3000, 4000, 0));

    // Deleting running work frees it too.
    sqlx::query("DELETE FROM deployments WHERE id = $1")
        .bind(two)
        .execute(f.db())
        .await
        .unwrap();
    assert_eq!(allocated(&f, b).await, (0, 0, 0));
    f.assert_books_balance().await;
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn a_statement_that_would_over_commit_a_cluster_is_refused_whole(db: PgPool) {
    let f = Fixture::new(db).await;
    let c = f.cluster(4, 16, 0).await;
    let small = f.submit(spec(Some(c), 50, 2, 4, 0)).await;
    let large = f.submit(spec(Some(c), 50, 3, 4, 0)).await;
    // Both at once need 5 of 4 cores: the CHECK on the books refuses the whole statement.
    let err = sqlx::query(
        "UPDATE deployments SET status = 'running', cluster_id = $3, started_at = now()
         WHERE id IN ($1, $2)",
    )
    .bind(small)
    .bind(large)
    .bind(c)
    .execute(f.db())
    .await
    .unwrap_err();
    assert_eq!(
        err.as_database_error().and_then(|e| e.constraint()),
        Some("clusters_cpu_within_capacity")
    );
    assert_eq!(f.status(small).await, "pending");
    assert_eq!(f.status(large).await, "pending");
    assert_eq!(allocated(&f, c).await, (0, 0, 0));
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn statements_that_touch_no_running_work_leave_the_books_alone(db: PgPool) {
    let f = Fixture::new(db).await;
    let c = f.cluster(4, 16, 0).await;
    let running = f.submit(spec(Some(c), 50, 2, 4, 0)).await;
    f.pass().await;
    let waiting = f.submit(spec(Some(c), 50, 3, 4, 0)).await;
    f.pass().await;
    assert_eq!(f.status(running).await, "running");
    assert_eq!(f.status(waiting).await, "pending");
    // Rewriting a running row's reason, or a pending row's resources, changes nothing booked.
    sqlx::query(
        "UPDATE deployments SET reason = NULL, cpu_millis = cpu_millis + 500 WHERE id = $1",
    )
    .bind(waiting)
    .execute(f.db())
    .await
    .unwrap();
    sqlx::query("UPDATE deployments SET preemption_count = preemption_count WHERE id = $1")
        .bind(running)
        .execute(f.db())
        .await
        .unwrap();
    assert_eq!(allocated(&f, c).await, (2000, 4000, 0));
    f.assert_books_balance().await;
}
