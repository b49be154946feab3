//! Issue 17 (DESIGN §12): the sweep's fan-out, passes in parallel, and history that must not
//! slow a pass.
//!
//! **Fan-out.** 1,000 organizations × 5 clusters × 50 pending deployments (all of which fit),
//! a fresh LocalStack queue: the real `scheduler::sweep` enqueues one message per organization
//! (timed), then 1, 2 or 4 consumers (`hypervisor_local::scheduler_loop::consume_queue`, each
//! with a pool of its own, as separate Lambda instances have) run the passes; timed until no
//! deployment is pending. Fresh data for each consumer count.
//!
//! **History.** One organization, 100 clusters, 10,000 pending deployments: the first pass's
//! duration with an empty history and with 1,000,000 finished deployments of the same
//! organization (two events each) in the tables; and the deployments list (`GET
//! /api/v1/deployments`, through the real handler) on its first page and at a cursor half-way
//! down the history.
//!
//! Under `cargo test` (no `--bench`) it runs a smoke-sized version and checks its outcomes.
//! Needs PostgreSQL and LocalStack (`make services`).

use base64::Engine;
use hypervisor_benches::{is_bench_run, load_average, verdict, write_report, BenchDatabase, Stats};
use shared::testing::TestRequest;
use shared::AppState;
use sqlx::{Executor, PgPool};
use std::time::{Duration, Instant};
use uuid::Uuid;

struct Sizes {
    organizations: i64,
    clusters_per_org: i64,
    pending_per_org: i64,
    consumers: &'static [usize],
    history: i64,
    history_pending: i64,
    history_clusters: i64,
    rounds: usize,
    list_requests: usize,
}

fn main() {
    let bench = is_bench_run();
    let sizes = if bench {
        Sizes {
            organizations: 1_000,
            clusters_per_org: 5,
            pending_per_org: 50,
            consumers: &[1, 2, 4],
            history: 1_000_000,
            history_pending: 10_000,
            history_clusters: 100,
            rounds: 5,
            list_requests: 50,
        }
    } else {
        Sizes {
            organizations: 25,
            clusters_per_org: 2,
            pending_per_org: 5,
            consumers: &[2],
            history: 5_000,
            history_pending: 300,
            history_clusters: 5,
            rounds: 1,
            list_requests: 3,
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async {
        let suffix = if bench {
            String::new()
        } else {
            format!("_smoke_{}", std::process::id())
        };
        let fan_out = fan_out(&sizes, &suffix).await;
        let history = history(&sizes, &suffix).await;
        let report = format!(
            "### 10. Scale: the sweep's fan-out, passes in parallel, and history (issue 17)\n\n{fan_out}\n{history}\n1-min load average at the end: {}.\n",
            load_average()
        );
        if bench {
            write_report("10_scale_out", &report);
        } else {
            println!("scale_out: smoke run passed\n{report}");
        }
    });
}

// ------------------------------------------------------------------------------------------------
// Fan-out

async fn fan_out(sizes: &Sizes, suffix: &str) -> String {
    let mut rows = String::new();
    let total = sizes.organizations * sizes.pending_per_org;
    let mut single_consumer_rate = None;
    for &consumers in sizes.consumers {
        let db = database(&format!("hypervisor_bench_fan_out{suffix}")).await;
        seed_organizations(&db.pool, sizes).await;
        let queue = e2e_tests::fresh_queue().await;
        let state = AppState::new(
            db.pool.clone(),
            shared::testing::test_config(),
            Some(queue.clone()),
        );

        let started = Instant::now();
        let summary = scheduler::sweep(&state).await.expect("the sweep");
        let enqueue = started.elapsed();
        assert_eq!(summary.enqueued as i64, sizes.organizations, "{summary:?}");
        assert_eq!((summary.inline_passes, summary.started), (0, 0));

        let mut tasks = Vec::new();
        for _ in 0..consumers {
            let pool = BenchDatabase::connect(&db.name, 2).await;
            let instance = AppState::new(pool, shared::testing::test_config(), Some(queue.clone()));
            tasks.push(tokio::spawn(
                hypervisor_local::scheduler_loop::consume_queue(instance, queue.clone()),
            ));
        }
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            let pending: i64 =
                sqlx::query_scalar("SELECT count(*) FROM deployments WHERE status = 'pending'")
                    .fetch_one(&db.pool)
                    .await
                    .unwrap();
            if pending == 0 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{pending} still pending after 10 minutes"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let all_running = started.elapsed();
        for task in tasks {
            task.abort();
        }
        let client = queue.client().await;
        let _ = client.delete_queue().queue_url(queue.url()).send().await;
        assert_books_balance(&db.pool).await;
        db.drop().await;

        let rate = total as f64 / all_running.as_secs_f64();
        let growth = match single_consumer_rate {
            None => {
                single_consumer_rate = Some(rate);
                "1.00×".to_string()
            }
            Some(one) => format!("{:.2}×", rate / one),
        };
        rows += &format!(
            "| {consumers} | {:.0} ms | {:.2} s | {rate:.0} | {growth} |\n",
            enqueue.as_secs_f64() * 1000.0,
            all_running.as_secs_f64()
        );
    }
    format!(
        "**Fan-out.** {} organizations × {} clusters × {} pending deployments (all fit), a fresh LocalStack queue per row: `scheduler::sweep` sends one message per organization (ten per `SendMessageBatch`, eight batches in flight) and runs no pass; then N consumers of the queue (each as a Lambda instance: its own pool of 2, batches of 10) run the passes. \"All running\" is from the sweep's start until no deployment is pending; placements/s = {total} ÷ that. Consumers, PostgreSQL and LocalStack share the 2 cores.\n\n| consumers | sweep enqueue | all running | placements/s | vs 1 consumer |\n|---|---|---|---|---|\n{rows}",
        sizes.organizations, sizes.clusters_per_org, sizes.pending_per_org
    )
}

/// One user; `organizations` organizations, each with its clusters (64 cores, 256 GiB, 8 GPUs)
/// and its pending deployments (1 to 4 cores, each with its `submitted` event).
async fn seed_organizations(pool: &PgPool, sizes: &Sizes) {
    let user = seed_user(pool).await;
    sqlx::query(
        "INSERT INTO organizations (id, name, created_by)
         SELECT uuid_v7(clock_timestamp()), 'org-' || n, $1 FROM generate_series(1, $2) n",
    )
    .bind(user)
    .bind(sizes.organizations)
    .execute(pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO clusters (id, organization_id, name, cpu_millis, ram_mgib, gpu)
         SELECT uuid_v7(clock_timestamp()), o.id, 'c' || k, 64000, 256000, 8
         FROM organizations o, generate_series(1, $1) k",
    )
    .bind(sizes.clusters_per_org)
    .execute(pool)
    .await
    .unwrap();
    sqlx::query(
        "WITH d AS (
             INSERT INTO deployments (id, organization_id, name, image, cpu_millis, ram_mgib, gpu, priority, created_by, created_at)
             SELECT uuid_v7(clock_timestamp()), o.id, 'd' || k, 'busybox', 1000 * (1 + k % 4), 4000, 0, 50, $2,
                    clock_timestamp()
             FROM organizations o, generate_series(1, $1) k
             RETURNING id)
         INSERT INTO deployment_events (deployment_id, type, detail) SELECT id, 'submitted', 'submitted' FROM d",
    )
    .bind(sizes.pending_per_org)
    .bind(user)
    .execute(pool)
    .await
    .unwrap();
    sqlx::query("ANALYZE").execute(pool).await.unwrap();
}

async fn seed_user(pool: &PgPool) -> Uuid {
    let user = Uuid::now_v7();
    sqlx::query("INSERT INTO users (id, username, email, password_hash) VALUES ($1, 'bench', 'bench@example.com', 'x')")
        .bind(user)
        .execute(pool)
        .await
        .unwrap();
    user
}

async fn assert_books_balance(pool: &PgPool) {
    let wrong: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM clusters c
         LEFT JOIN LATERAL (SELECT coalesce(sum(cpu_millis), 0)::bigint AS cpu
                            FROM deployments d WHERE d.cluster_id = c.id AND d.status = 'running') r ON true
         WHERE c.alloc_cpu_millis <> r.cpu OR c.alloc_cpu_millis > c.cpu_millis",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(
        wrong, 0,
        "clusters whose books differ from what runs on them"
    );
}

// ------------------------------------------------------------------------------------------------
// History

struct HistoryRun {
    passes_ms: Vec<f64>,
    started: usize,
    first_page_ms: Vec<f64>,
    deep_page_ms: Vec<f64>,
}

impl HistoryRun {
    fn extend(&mut self, other: HistoryRun) {
        self.passes_ms.extend(other.passes_ms);
        self.first_page_ms.extend(other.first_page_ms);
        self.deep_page_ms.extend(other.deep_page_ms);
    }
}

async fn history(sizes: &Sizes, suffix: &str) -> String {
    let db = database(&format!("hypervisor_bench_history{suffix}")).await;
    let state = shared::testing::test_state(db.pool.clone());
    let user = seed_user(&db.pool).await;
    let org = Uuid::now_v7();
    sqlx::query("INSERT INTO organizations (id, name, created_by) VALUES ($1, 'history', $2)")
        .bind(org)
        .bind(user)
        .execute(&db.pool)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO memberships (organization_id, user_id, role) VALUES ($1, $2, 'admin')",
    )
    .bind(org)
    .bind(user)
    .execute(&db.pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO clusters (id, organization_id, name, cpu_millis, ram_mgib, gpu)
         SELECT uuid_v7(clock_timestamp()), $1, 'c' || k, 64000, 256000, 8 FROM generate_series(1, $2) k",
    )
    .bind(org)
    .bind(sizes.history_clusters)
    .execute(&db.pool)
    .await
    .unwrap();
    let token = shared::auth::jwt::issue_access_token(&state.config, user).unwrap();

    // Without history both before seeding it and after deleting it, so that whatever drifts
    // over the run's minutes (caches, checkpoints) weighs on both sides.
    let mut empty = measure_history(&state, org, user, &token, sizes).await;
    let seeding = Instant::now();
    seed_history(&db.pool, org, user, sizes.history).await;
    let seeded_in = seeding.elapsed();
    let full = measure_history(&state, org, user, &token, sizes).await;
    delete_history(&db.pool, org).await;
    empty.extend(measure_history(&state, org, user, &token, sizes).await);
    db.drop().await;

    let p50 = |v: &[f64]| Stats::of(v).map_or(f64::NAN, |s| s.p50);
    let (pass_empty, pass_full) = (p50(&empty.passes_ms), p50(&full.passes_ms));
    let ratio = pass_full / pass_empty;
    format!(
        "**History.** One organization, {} clusters, {} pending deployments (1–8 cores; about {} start in the first pass, the rest wait with reasons). Ids are UUIDv7, as the API gives them. The first pass over them, {} rounds on fresh pending work each, each round right after a `CHECKPOINT`: with no history (before seeding it, and again after deleting it and `VACUUM FULL`), then with {} finished deployments of the same organization (two events each; seeded in {:.0} s, then `ANALYZE`). The list is `GET /api/v1/deployments?organization_id=…&limit=100` through the real handler, {} requests each: the first page, and at a cursor half-way down the history (with no history, at the newest deployment).\n\n| | no history | {} finished | ratio | target |\n|---|---|---|---|---|\n| first pass, p50 | {:.1} ms | {:.1} ms | {:.2} | {} (within 10 %) |\n| list, first page, p50 | {:.2} ms | {:.2} ms | {:.2} | — |\n| list, deep cursor, p50 | {:.2} ms | {:.2} ms | {:.2} | — |\n",
        sizes.history_clusters,
        sizes.history_pending,
        full.started,
        sizes.rounds,
        sizes.history,
        seeded_in.as_secs_f64(),
        sizes.list_requests,
        sizes.history,
        pass_empty,
        pass_full,
        ratio,
        verdict(ratio <= 1.10),
        p50(&empty.first_page_ms),
        p50(&full.first_page_ms),
        p50(&full.first_page_ms) / p50(&empty.first_page_ms),
        p50(&empty.deep_page_ms),
        p50(&full.deep_page_ms),
        p50(&full.deep_page_ms) / p50(&empty.deep_page_ms),
    )
}

async fn measure_history(
    state: &AppState,
    org: Uuid,
    user: Uuid,
    token: &str,
    sizes: &Sizes,
) -> HistoryRun {
    let mut run = HistoryRun {
        passes_ms: Vec::new(),
        started: 0,
        first_page_ms: Vec::new(),
        deep_page_ms: Vec::new(),
    };
    for _ in 0..sizes.rounds {
        sqlx::query("DELETE FROM deployments WHERE organization_id = $1 AND status IN ('pending', 'running')")
            .bind(org)
            .execute(&state.db)
            .await
            .unwrap();
        sqlx::query(
            "WITH d AS (
                 INSERT INTO deployments (id, organization_id, name, image, cpu_millis, ram_mgib, gpu, priority, created_by, created_at)
                 SELECT uuid_v7(clock_timestamp()), $1, 'live-' || k, 'busybox', 1000 * (1 + k % 8), 4000, 0,
                        10 + k % 80, $2, clock_timestamp()
                 FROM generate_series(1, $3) k
                 RETURNING id)
             INSERT INTO deployment_events (deployment_id, type, detail) SELECT id, 'submitted', 'submitted' FROM d",
        )
        .bind(org)
        .bind(user)
        .bind(sizes.history_pending)
        .execute(&state.db)
        .await
        .unwrap();
        sqlx::query("ANALYZE deployments")
            .execute(&state.db)
            .await
            .unwrap();
        // Every round starts right after a checkpoint, so each pays the same first-write cost
        // of every page it touches (full-page images in the WAL) whenever the last one was.
        sqlx::query("CHECKPOINT").execute(&state.db).await.unwrap();
        let pass = scheduler::run_pass(state, org).await.expect("the pass");
        assert!(!pass.skipped && pass.started > 0, "{pass:?}");
        run.started = pass.started;
        run.passes_ms.push(pass.duration_ms);
    }
    // Half-way down the history (with none, the oldest live deployment): the cursor the API
    // would have given for that row.
    let (at, id): (chrono::DateTime<chrono::Utc>, Uuid) = sqlx::query_as(
        "SELECT created_at, id FROM deployments WHERE organization_id = $1
         ORDER BY created_at DESC, id DESC
         OFFSET (SELECT count(*) / 2 FROM deployments WHERE organization_id = $1 AND status NOT IN ('pending', 'running')) LIMIT 1",
    )
    .bind(org)
    .fetch_one(&state.db)
    .await
    .unwrap();
    let deep = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(format!("{}|{id}", at.timestamp_micros()));
    for (cursor, samples) in [
        (None, &mut run.first_page_ms),
        (Some(deep), &mut run.deep_page_ms),
    ] {
        let mut path = format!("/api/v1/deployments?organization_id={org}&limit=100");
        if let Some(cursor) = &cursor {
            path += &format!("&cursor={cursor}");
        }
        for _ in 0..sizes.list_requests {
            let request = TestRequest::get(&path).bearer(token).build();
            let started = Instant::now();
            let response = test_support::api::send(state, request).await;
            samples.push(started.elapsed().as_secs_f64() * 1000.0);
            assert_eq!(response.status(), 200);
        }
    }
    run
}

/// Deletes the finished deployments (their events go with them) and compacts the tables, as
/// if there had never been any.
async fn delete_history(pool: &PgPool, org: Uuid) {
    sqlx::query("DELETE FROM deployments WHERE organization_id = $1 AND status NOT IN ('pending', 'running')")
        .bind(org)
        .execute(pool)
        .await
        .unwrap();
    pool.execute("VACUUM FULL ANALYZE deployments")
        .await
        .unwrap();
    pool.execute("VACUUM FULL ANALYZE deployment_events")
        .await
        .unwrap();
}

/// A fresh database for one measurement, with `uuid_v7()` for its rows' ids.
async fn database(name: &str) -> BenchDatabase {
    let db = BenchDatabase::create(name, 4).await;
    db.pool.execute(UUID_V7).await.unwrap();
    db
}

/// The API gives every deployment a UUIDv7 (`Uuid::now_v7`), so new ids sort after old ones
/// and their index entries land together at one end of each index; random ids would spread
/// every pass's writes over the whole of a history-sized index. The bench's rows get the same:
/// 48 bits of milliseconds since the epoch, the version, the variant and random bits.
const UUID_V7: &str =
    "CREATE FUNCTION uuid_v7(at timestamptz) RETURNS uuid LANGUAGE sql VOLATILE AS $$
    SELECT (lpad(to_hex(floor(extract(epoch FROM at) * 1000)::bigint), 12, '0') || '7'
            || substr(md5(random()::text), 1, 3) || '8' || substr(md5(random()::text), 1, 15))::uuid
$$";

/// `count` finished deployments of `org`, spread over the last 80 days (inside the default
/// retention), each with a `submitted` and a `succeeded` event; in chunks, to keep each
/// transaction moderate.
async fn seed_history(pool: &PgPool, org: Uuid, user: Uuid, count: i64) {
    let cluster: Uuid =
        sqlx::query_scalar("SELECT id FROM clusters WHERE organization_id = $1 LIMIT 1")
            .bind(org)
            .fetch_one(pool)
            .await
            .unwrap();
    let chunk = 100_000;
    let mut done = 0;
    while done < count {
        let n = chunk.min(count - done);
        sqlx::query(
            "WITH d AS (
                 INSERT INTO deployments (id, organization_id, cluster_id, name, image, cpu_millis, ram_mgib, gpu, priority,
                                          status, created_by, created_at, started_at, finished_at)
                 SELECT uuid_v7(t), $1, $2, 'old-' || ($4 + k), 'busybox', 1000, 1000, 0, 50, 'succeeded', $3,
                        t, t + interval '1 minute', t + interval '1 hour'
                 FROM generate_series(1, $5) k,
                      LATERAL (SELECT now() - interval '80 days' + (($4 + k) * interval '80 days' / $6) - interval '1 day' AS t) ts
                 RETURNING id)
             INSERT INTO deployment_events (deployment_id, type, detail)
             SELECT id, e, e FROM d, unnest(ARRAY['submitted', 'succeeded']) e",
        )
        .bind(org)
        .bind(cluster)
        .bind(user)
        .bind(done)
        .bind(n)
        .bind(count)
        .execute(pool)
        .await
        .unwrap();
        done += n;
    }
    // VACUUM runs outside a transaction: the simple query protocol.
    pool.execute("VACUUM ANALYZE deployments").await.unwrap();
    pool.execute("VACUUM ANALYZE deployment_events")
        .await
        .unwrap();
}
