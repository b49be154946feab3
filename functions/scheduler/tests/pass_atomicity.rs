//! A pass applies all of its plan or none of it (DESIGN.md §3, §13): faults are injected into
//! the real database (a trigger that refuses a statement) or into the plan itself.

use test_support::scheduler as common;

use common::{spec, Fixture};
use shared::resources::Resources;
use shared::scheduling::{Plan, Preemption, Start};
use sqlx::PgPool;
use uuid::Uuid;

async fn event_count(f: &Fixture) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM deployment_events")
        .fetch_one(f.db())
        .await
        .unwrap()
}

async fn allocated_cpu(f: &Fixture, cluster: Uuid) -> i64 {
    sqlx::query_scalar("SELECT alloc_cpu_millis FROM clusters WHERE id = $1")
        .bind(cluster)
        .fetch_one(f.db())
        .await
        .unwrap()
}

/// Applies `plan` as a pass would (clusters locked) and rolls back if it fails.
async fn apply(f: &Fixture, plan: &Plan) -> Result<(), scheduler::pass::PassError> {
    let mut tx = f.db().begin().await.unwrap();
    shared::snapshot::load_clusters(&mut tx, f.org, true)
        .await
        .unwrap();
    scheduler::pass::apply(&mut tx, plan, &Default::default()).await?;
    tx.commit().await.unwrap();
    Ok(())
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn a_pass_that_fails_between_its_preemptions_and_its_starts_changes_nothing(db: PgPool) {
    let f = Fixture::new(db).await;
    let c = f.cluster(4, 16, 0).await;
    let victim = f.submit(spec(Some(c), 10, 4, 8, 0)).await;
    f.pass().await;
    let preemptor = f.submit(spec(Some(c), 90, 4, 8, 0)).await;
    let events = event_count(&f).await;
    // The fault: the database refuses the start, after the preemption statement has run.
    sqlx::raw_sql(
        "CREATE FUNCTION refuse_starts() RETURNS trigger LANGUAGE plpgsql AS
           $$ BEGIN RAISE EXCEPTION 'injected fault: no starts'; END $$;
         CREATE TRIGGER inject_fault BEFORE INSERT ON deployment_events
           FOR EACH ROW WHEN (NEW.type = 'started') EXECUTE FUNCTION refuse_starts();",
    )
    .execute(f.db())
    .await
    .unwrap();

    let err = scheduler::run_pass(&f.state, f.org).await.unwrap_err();
    assert!(format!("{err:#}").contains("injected fault"), "{err:#}");
    let (status, _, _, preempted) = f.row(victim).await;
    assert_eq!(
        (status.as_str(), preempted),
        ("running", 0),
        "the victim was evicted"
    );
    assert_eq!(f.status(preemptor).await, "pending");
    assert_eq!(allocated_cpu(&f, c).await, 4000);
    assert_eq!(
        event_count(&f).await,
        events,
        "events of a rolled-back pass remain"
    );
    f.assert_books_balance().await;

    // Without the fault the same pass goes through: the fault was what stopped it.
    sqlx::raw_sql("DROP TRIGGER inject_fault ON deployment_events")
        .execute(f.db())
        .await
        .unwrap();
    assert_eq!(f.pass().await.preempted, 1);
    assert_eq!(f.status(preemptor).await, "running");
    assert_eq!(f.status(victim).await, "pending");
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn a_plan_that_would_over_commit_a_cluster_applies_nothing(db: PgPool) {
    let f = Fixture::new(db).await;
    let c = f.cluster(4, 16, 0).await;
    let a = f.submit(spec(Some(c), 50, 3, 4, 0)).await;
    let b = f.submit(spec(Some(c), 50, 3, 4, 0)).await;
    let events = event_count(&f).await;
    let start = |id| Start {
        deployment_id: id,
        cluster_id: c,
        resources: Resources::new(3000, 4000, 0),
        preempted: vec![],
    };
    // A wrong plan: 6 cores on a 4-core cluster. The books' CHECK refuses the statement.
    let plan = Plan {
        starts: vec![start(a), start(b)],
        ..Plan::default()
    };
    let err = apply(&f, &plan).await.unwrap_err();
    assert!(err.to_string().contains("within_capacity"), "{err}");
    assert_eq!(f.status(a).await, "pending");
    assert_eq!(f.status(b).await, "pending");
    assert_eq!(allocated_cpu(&f, c).await, 0);
    assert_eq!(event_count(&f).await, events);
}

#[sqlx::test(migrator = "shared::MIGRATOR")]
async fn no_victim_is_evicted_for_a_preemptor_that_is_no_longer_pending(db: PgPool) {
    let f = Fixture::new(db).await;
    let c = f.cluster(4, 16, 0).await;
    let victim = f.submit(spec(Some(c), 10, 4, 8, 0)).await;
    f.pass().await;
    let preemptor = f.submit(spec(Some(c), 90, 4, 8, 0)).await;
    // The plan was made while the preemptor waited; it was cancelled before the plan applied.
    f.cancel_pending(preemptor).await;
    let resources = Resources::new(4000, 8000, 0);
    let plan = Plan {
        preemptions: vec![Preemption {
            victim_id: victim,
            preemptor_id: preemptor,
            cluster_id: c,
            resources,
        }],
        starts: vec![Start {
            deployment_id: preemptor,
            cluster_id: c,
            resources,
            preempted: vec![victim],
        }],
        ..Plan::default()
    };
    let err = apply(&f, &plan).await.unwrap_err();
    assert!(
        matches!(
            err,
            scheduler::pass::PassError::StaleStarts {
                planned: 1,
                started: 0
            }
        ),
        "{err}"
    );
    let (status, _, _, preempted) = f.row(victim).await;
    assert_eq!((status.as_str(), preempted), ("running", 0));
    assert_eq!(allocated_cpu(&f, c).await, 4000);
    f.assert_books_balance().await;
}
