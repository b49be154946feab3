//! Issue item 2: end-to-end scheduling throughput against real PostgreSQL.
//!
//! Creates its own database (`hypervisor_bench`, dropped at the end), applies
//! `shared::MIGRATOR`, seeds one organization with 100 clusters and 10,000 pending deployments
//! (set-based `INSERT ... SELECT FROM UNNEST`), then runs the real `scheduler::run_pass` until a
//! pass starts nothing more ("drain", repeated on fresh data), and reports placements per second
//! and pass durations. A second phase ("churn") measures steady-state passes: between passes a
//! few percent of the running work completes and a few hundred new deployments (some of high
//! priority, so preemption happens) arrive. Every SQL statement of every pass is timed through
//! sqlx's own query log (a tracing layer), so a slow pass says which statement is slow.
//! Target: >= 5,000 placements/s.
//!
//! Database: `BENCH_DATABASE_URL` (a server URL; default: the server of `DATABASE_URL`, else
//! postgres://postgres@127.0.0.1:5432). Under `cargo test` (no `--bench`) it runs a smoke-sized
//! version in a database of its own and only checks the books. `BENCH_KEEP_DB=1` keeps the
//! database afterwards, to look at the data or EXPLAIN a statement.

use hypervisor_benches::{
    cluster_capacity, is_bench_run, load_average, priority, request, verdict, write_report,
    BenchDatabase, Rng, Stats,
};
use shared::scheduling;
use shared::snapshot;
use sqlx::{Executor, PgPool};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tracing::field::{Field, Visit};
use tracing::{Event, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;
use uuid::Uuid;

const TARGET_PLACEMENTS_PER_SECOND: f64 = 5_000.0;

struct Config {
    clusters: usize,
    pending: usize,
    drain_rounds: usize,
    churn_passes: usize,
    /// Share of running deployments that complete before each churn pass.
    churn_complete: f64,
    churn_arrivals: usize,
}

fn main() {
    let bench = is_bench_run();
    let config = if bench {
        Config {
            clusters: 100,
            pending: 10_000,
            drain_rounds: 3,
            churn_passes: 30,
            churn_complete: 0.03,
            churn_arrivals: 200,
        }
    } else {
        Config {
            clusters: 5,
            pending: 300,
            drain_rounds: 1,
            churn_passes: 2,
            churn_complete: 0.05,
            churn_arrivals: 20,
        }
    };
    let recorder = StatementLog::default();
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(recorder.clone()))
        .expect("a tracing subscriber");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async {
        let database = if bench {
            "hypervisor_bench".to_string()
        } else {
            format!("hypervisor_bench_smoke_{}", std::process::id())
        };
        let db = BenchDatabase::create(&database, 4).await;
        let result = run(&db.pool, &config, &recorder, bench).await;
        db.drop().await;
        let report = result.unwrap_or_else(|e| panic!("scheduler_throughput failed: {e:#}"));
        if bench {
            write_report("2_scheduler_throughput", &report);
        } else {
            println!(
                "scheduler_throughput: smoke run passed (no --bench: {} pending on {} clusters)",
                config.pending, config.clusters
            );
        }
    });
}

/// One pass as measured here.
#[derive(Debug, Clone, Copy)]
struct PassSample {
    ms: f64,
    started: usize,
    preempted: usize,
}

async fn run(
    pool: &PgPool,
    config: &Config,
    recorder: &StatementLog,
    bench: bool,
) -> anyhow::Result<String> {
    let state = shared::testing::test_state(pool.clone());
    let (user, org) = (Uuid::now_v7(), Uuid::now_v7());
    sqlx::query("INSERT INTO users (id, username, email, password_hash) VALUES ($1, 'bench', 'bench@example.com', 'not-a-hash')")
        .bind(user)
        .execute(pool)
        .await?;
    sqlx::query("INSERT INTO organizations (id, name, created_by) VALUES ($1, 'bench', $2)")
        .bind(org)
        .bind(user)
        .execute(pool)
        .await?;
    sqlx::query(
        "INSERT INTO memberships (organization_id, user_id, role) VALUES ($1, $2, 'admin')",
    )
    .bind(org)
    .bind(user)
    .execute(pool)
    .await?;
    let mut rng = Rng::new(0xC1A5_7E25);
    let clusters: Vec<(Uuid, shared::resources::Resources)> = (0..config.clusters)
        .map(|_| (rng.uuid(), cluster_capacity(&mut rng)))
        .collect();
    sqlx::query(
        "INSERT INTO clusters (id, organization_id, name, cpu_millis, ram_mgib, gpu)
         SELECT id, $1, 'cluster-' || n, cpu, ram, gpu
         FROM UNNEST($2::uuid[], $3::int8[], $4::int8[], $5::int8[]) WITH ORDINALITY AS c(id, cpu, ram, gpu, n)",
    )
    .bind(org)
    .bind(clusters.iter().map(|c| c.0).collect::<Vec<_>>())
    .bind(clusters.iter().map(|c| c.1.cpu_millis).collect::<Vec<_>>())
    .bind(clusters.iter().map(|c| c.1.ram_mgib).collect::<Vec<_>>())
    .bind(clusters.iter().map(|c| c.1.gpu).collect::<Vec<_>>())
    .execute(pool)
    .await?;

    // --- Drain: 10k pending on empty clusters, passes until nothing more starts. ---------------
    let mut drain_rounds = Vec::new();
    let mut seed_ms = Vec::new();
    let mut plan_ms = None;
    recorder.clear();
    for round in 0..config.drain_rounds {
        sqlx::query("DELETE FROM deployments WHERE organization_id = $1")
            .bind(org)
            .execute(pool)
            .await?;
        let seeded = Instant::now();
        // The same queue every round: the rounds are repeated measurements.
        let mut rng = Rng::new(0xD1A1_0000);
        insert_pending(pool, &mut rng, org, user, &clusters, config.pending, 0).await?;
        seed_ms.push(seeded.elapsed().as_secs_f64() * 1e3);
        pool.execute("ANALYZE deployments; ANALYZE clusters; ANALYZE deployment_events")
            .await?;
        if round == 0 {
            plan_ms = Some(time_plan_alone(pool, &state, org).await?);
        }
        let mut passes = Vec::new();
        recorder.recording(true);
        loop {
            let t = Instant::now();
            let summary = scheduler::run_pass(&state, org).await?;
            let ms = t.elapsed().as_secs_f64() * 1e3;
            passes.push(PassSample {
                ms,
                started: summary.started,
                preempted: summary.preempted,
            });
            if summary.started == 0 || passes.len() >= 50 {
                break;
            }
        }
        recorder.recording(false);
        check_books(pool, org).await?;
        let running: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM deployments WHERE organization_id = $1 AND status = 'running'",
        )
        .bind(org)
        .fetch_one(pool)
        .await?;
        let placed: usize = passes.iter().map(|p| p.started).sum();
        anyhow::ensure!(
            placed as i64 == running,
            "placed {placed} but {running} running"
        );
        anyhow::ensure!(placed > 0, "nothing was placed");
        drain_rounds.push(passes);
    }
    let drain_profile = recorder.take();

    // --- Churn: steady state on the drained data. ----------------------------------------------
    let mut churn = Vec::new();
    let mut rng = Rng::new(0xC4A2_0000);
    recorder.clear();
    for i in 0..config.churn_passes {
        complete_some(pool, org, config.churn_complete, i).await?;
        insert_pending(
            pool,
            &mut rng,
            org,
            user,
            &clusters,
            config.churn_arrivals,
            (config.pending + i * config.churn_arrivals) as i64,
        )
        .await?;
        recorder.recording(true);
        let t = Instant::now();
        let summary = scheduler::run_pass(&state, org).await?;
        let ms = t.elapsed().as_secs_f64() * 1e3;
        recorder.recording(false);
        churn.push(PassSample {
            ms,
            started: summary.started,
            preempted: summary.preempted,
        });
    }
    check_books(pool, org).await?;
    let churn_profile = recorder.take();
    let (pending_left, running_now): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE status = 'pending'), count(*) FILTER (WHERE status = 'running')
         FROM deployments WHERE organization_id = $1",
    )
    .bind(org)
    .fetch_one(pool)
    .await?;
    if !bench {
        return Ok(String::new());
    }

    // --- Report ---------------------------------------------------------------------------------
    let mut md = String::new();
    md.push_str("### 2. Scheduling throughput on PostgreSQL (`scheduler::run_pass`)\n\n");
    md.push_str(&format!(
        "One organization, {} clusters (empty at the start), {} pending deployments inserted with one `INSERT … SELECT FROM UNNEST(…)`; then the real `scheduler::run_pass` until a pass starts nothing. PostgreSQL on this machine (sharing its cores with the benchmark), `synchronous_commit=on`; `ANALYZE` after seeding. 1-min load average at the end: {}.\n\n",
        config.clusters,
        config.pending,
        load_average()
    ));
    md.push_str("**Drain** (the same 10k queue, on fresh data each round):\n\n");
    md.push_str("| round | seed 10k rows | passes | placed | first pass | all passes | placements/s | target ≥ 5,000/s |\n|---|---|---|---|---|---|---|---|\n");
    let mut rates = Vec::new();
    for (i, passes) in drain_rounds.iter().enumerate() {
        let placed: usize = passes.iter().map(|p| p.started).sum();
        let total_ms: f64 = passes.iter().map(|p| p.ms).sum();
        let rate = placed as f64 / (total_ms / 1e3);
        rates.push(rate);
        md.push_str(&format!(
            "| {} | {:.0} ms | {} | {} | {:.0} ms ({} placed) | {:.0} ms | {:.0} | {} |\n",
            i + 1,
            seed_ms[i],
            passes.len(),
            placed,
            passes[0].ms,
            passes[0].started,
            total_ms,
            rate,
            verdict(rate >= TARGET_PLACEMENTS_PER_SECOND)
        ));
    }
    let median_rate = Stats::of(&rates).map(|s| s.p50).unwrap_or(0.0);
    md.push_str(&format!(
        "\nMedian over the rounds: **{median_rate:.0} placements/s** (placed ÷ the wall time of every pass of the drain, the final empty pass included).\n"
    ));
    if let Some(ms) = plan_ms {
        md.push_str(&format!(
            "The pure `plan()` over the same 10k queue takes {ms:.1} ms of it (measured alone, round 1).\n"
        ));
    }
    let drain_all: Vec<f64> = drain_rounds.iter().flatten().map(|p| p.ms).collect();
    let churn_ms: Vec<f64> = churn.iter().map(|p| p.ms).collect();
    md.push_str("\n**Pass durations**\n\n| phase | passes | p50 | p99 | max | placed | preempted |\n|---|---|---|---|---|---|---|\n");
    for (name, samples, passes) in [
        (
            "drain (every pass)",
            &drain_all,
            drain_rounds.iter().flatten().copied().collect::<Vec<_>>(),
        ),
        ("churn (steady state)", &churn_ms, churn.clone()),
    ] {
        if let Some(s) = Stats::of(samples) {
            md.push_str(&format!(
                "| {name} | {} | {:.1} ms | {:.1} ms | {:.1} ms | {} | {} |\n",
                s.n,
                s.p50,
                s.p99,
                s.max,
                passes.iter().map(|p| p.started).sum::<usize>(),
                passes.iter().map(|p| p.preempted).sum::<usize>()
            ));
        }
    }
    let churn_rate = churn.iter().map(|p| p.started).sum::<usize>() as f64
        / (churn_ms.iter().sum::<f64>() / 1e3);
    md.push_str(&format!(
        "\nChurn: before each of the {} passes, {:.0}% of the running deployments complete and {} new ones arrive (priority mix of benches/src/lib.rs, so some preempt); the org then holds ≈{} running and ≈{} pending. Placements/s in steady state: {:.0}. (With this few samples p99 is the slowest pass.)\n",
        config.churn_passes,
        config.churn_complete * 100.0,
        config.churn_arrivals,
        running_now,
        pending_left,
        churn_rate
    ));
    md.push_str("\n**Where a pass spends its time** (every statement of every pass, from sqlx's query log; the rest of a pass is Rust: `plan()`, encoding, and waiting for the pool):\n\n");
    for (name, profile, passes) in [
        ("drain", &drain_profile, &drain_all),
        ("churn", &churn_profile, &churn_ms),
    ] {
        let pass_total: f64 = passes.iter().sum();
        md.push_str(&format!(
            "_{name}_ ({} passes, {:.0} ms in all):\n\n| statement | calls | rows | total | mean | max | share of pass time |\n|---|---|---|---|---|---|---|\n",
            passes.len(),
            pass_total
        ));
        let mut rows: Vec<(&String, &Agg)> = profile.iter().collect();
        rows.sort_by(|a, b| b.1.total_ms.total_cmp(&a.1.total_ms));
        let mut in_sql = 0.0;
        for (label, agg) in rows {
            in_sql += agg.total_ms;
            md.push_str(&format!(
                "| {label} | {} | {} | {:.1} ms | {:.2} ms | {:.1} ms | {:.0}% |\n",
                agg.calls,
                agg.rows,
                agg.total_ms,
                agg.total_ms / agg.calls as f64,
                agg.max_ms,
                100.0 * agg.total_ms / pass_total
            ));
        }
        md.push_str(&format!(
            "| (outside SQL statements) | | | {:.1} ms | | | {:.0}% |\n\n",
            pass_total - in_sql,
            100.0 * (pass_total - in_sql) / pass_total
        ));
    }
    Ok(md)
}

/// Inserts `n` pending deployments of the mix in one statement (and their `submitted` events
/// in a second), `created_at` spread over the last day. `offset` numbers their names.
async fn insert_pending(
    pool: &PgPool,
    rng: &mut Rng,
    org: Uuid,
    user: Uuid,
    clusters: &[(Uuid, shared::resources::Resources)],
    n: usize,
    offset: i64,
) -> anyhow::Result<()> {
    let mut ids = Vec::with_capacity(n);
    let mut requested: Vec<Option<Uuid>> = Vec::with_capacity(n);
    let (mut cpu, mut ram, mut gpu, mut prio, mut age) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..n {
        let r = request(rng);
        // 20% pinned, to a cluster it fits when empty (the API refuses the others); and no
        // request larger than every cluster (the API would refuse it with 422).
        let pinned = if rng.chance(0.2) {
            let (id, capacity) = *rng.pick(clusters);
            r.fits_in(&capacity).then_some(id)
        } else {
            None
        };
        if !clusters.iter().any(|(_, c)| r.fits_in(c)) {
            continue;
        }
        ids.push(rng.uuid());
        requested.push(pinned);
        cpu.push(r.cpu_millis);
        ram.push(r.ram_mgib);
        gpu.push(r.gpu);
        prio.push(priority(rng));
        age.push(rng.range(0, 86_400) as f64);
    }
    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO deployments (id, organization_id, requested_cluster_id, name, image, cpu_millis, ram_mgib, gpu, priority, created_by, created_at)
         SELECT id, $1, req, 'bench-' || ($2 + n), 'ghcr.io/acme/worker:1.0', cpu, ram, gpu, prio, $3, now() - make_interval(secs => age)
         FROM UNNEST($4::uuid[], $5::uuid[], $6::int8[], $7::int8[], $8::int8[], $9::int4[], $10::float8[])
              WITH ORDINALITY AS d(id, req, cpu, ram, gpu, prio, age, n)",
    )
    .bind(org)
    .bind(offset)
    .bind(user)
    .bind(&ids)
    .bind(&requested)
    .bind(&cpu)
    .bind(&ram)
    .bind(&gpu)
    .bind(&prio)
    .bind(&age)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO deployment_events (deployment_id, type, detail)
         SELECT id, 'submitted', 'submitted' FROM UNNEST($1::uuid[]) AS d(id)",
    )
    .bind(&ids)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Completes `share` of the running deployments (a deterministic pseudo-random pick), as
/// POST /deployments/{id}/complete does; the books trigger frees their capacity.
async fn complete_some(pool: &PgPool, org: Uuid, share: f64, salt: usize) -> anyhow::Result<()> {
    sqlx::query(
        "WITH picked AS (
             SELECT id FROM deployments WHERE organization_id = $1 AND status = 'running'
             ORDER BY md5(id::text || $2::text)
             LIMIT (SELECT ceil(count(*) * $3)::bigint FROM deployments WHERE organization_id = $1 AND status = 'running')),
         done AS (
             UPDATE deployments d SET status = 'succeeded', finished_at = now()
             FROM picked WHERE d.id = picked.id
             RETURNING d.id)
         INSERT INTO deployment_events (deployment_id, type, detail)
         SELECT id, 'succeeded', 'completed by the benchmark' FROM done",
    )
    .bind(org)
    .bind(salt as i64)
    .bind(share)
    .execute(pool)
    .await?;
    Ok(())
}

/// The books must equal what runs: allocated = the sum of the running deployments, per cluster.
async fn check_books(pool: &PgPool, org: Uuid) -> anyhow::Result<()> {
    let wrong: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM clusters c
         LEFT JOIN LATERAL (
             SELECT coalesce(sum(cpu_millis), 0)::bigint AS cpu, coalesce(sum(ram_mgib), 0)::bigint AS ram,
                    coalesce(sum(gpu), 0)::bigint AS gpu
             FROM deployments d WHERE d.cluster_id = c.id AND d.status = 'running') r ON true
         WHERE c.organization_id = $1
           AND (c.alloc_cpu_millis, c.alloc_ram_mgib, c.alloc_gpu) <> (r.cpu, r.ram, r.gpu)",
    )
    .bind(org)
    .fetch_one(pool)
    .await?;
    anyhow::ensure!(
        wrong == 0,
        "{wrong} clusters' books differ from what runs on them"
    );
    Ok(())
}

/// The CPU part of a pass alone: load the state (no locks, rolled back) and time `plan()`.
async fn time_plan_alone(
    pool: &PgPool,
    state: &shared::AppState,
    org: Uuid,
) -> anyhow::Result<f64> {
    let mut tx = pool.begin().await?;
    let clusters = snapshot::load_clusters(&mut tx, org, false).await?;
    let input = snapshot::load_input(
        &mut tx,
        org,
        clusters,
        chrono::Utc::now(),
        state.config.preemption_min_runtime_seconds,
    )
    .await?
    .input;
    tx.rollback().await?;
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        let t = Instant::now();
        let plan = scheduling::plan(std::hint::black_box(&input));
        best = best.min(t.elapsed().as_secs_f64() * 1e3);
        std::hint::black_box(plan);
    }
    Ok(best)
}

// ------------------------------------------------------------------------------------------------
// Statement timings from sqlx's query log (target `sqlx::query`, one event per statement with
// its SQL and `elapsed_secs`).

#[derive(Debug, Default, Clone, Copy)]
struct Agg {
    calls: usize,
    total_ms: f64,
    max_ms: f64,
    /// Rows written or returned (the larger of the two counts sqlx logs).
    rows: u64,
}

#[derive(Clone, Default)]
struct StatementLog {
    on: Arc<AtomicBool>,
    by_label: Arc<Mutex<BTreeMap<String, Agg>>>,
}

impl StatementLog {
    fn recording(&self, on: bool) {
        self.on.store(on, Ordering::SeqCst);
    }

    fn clear(&self) {
        self.by_label.lock().unwrap().clear();
    }

    fn take(&self) -> BTreeMap<String, Agg> {
        std::mem::take(&mut *self.by_label.lock().unwrap())
    }
}

impl<S: Subscriber> Layer<S> for StatementLog {
    fn register_callsite(&self, meta: &'static Metadata<'static>) -> tracing::subscriber::Interest {
        if meta.target() == "sqlx::query" {
            tracing::subscriber::Interest::always()
        } else {
            tracing::subscriber::Interest::never()
        }
    }

    fn enabled(&self, meta: &Metadata<'_>, _: Context<'_, S>) -> bool {
        meta.target() == "sqlx::query"
    }

    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        if !self.on.load(Ordering::SeqCst) {
            return;
        }
        let mut v = StatementVisitor::default();
        event.record(&mut v);
        let Some(secs) = v.elapsed_secs else { return };
        let sql = if v.statement.trim().is_empty() {
            v.summary
        } else {
            v.statement
        };
        let mut map = self.by_label.lock().unwrap();
        let agg = map.entry(label(&sql)).or_default();
        agg.calls += 1;
        agg.total_ms += secs * 1e3;
        agg.max_ms = agg.max_ms.max(secs * 1e3);
        agg.rows += v.rows_affected.max(v.rows_returned);
    }
}

#[derive(Default)]
struct StatementVisitor {
    summary: String,
    statement: String,
    elapsed_secs: Option<f64>,
    rows_affected: u64,
    rows_returned: u64,
}

impl Visit for StatementVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "summary" => self.summary = value.to_string(),
            "db.statement" => self.statement = value.to_string(),
            _ => {}
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        match field.name() {
            "rows_affected" => self.rows_affected = value,
            "rows_returned" => self.rows_returned = value,
            _ => {}
        }
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        if field.name() == "elapsed_secs" {
            self.elapsed_secs = Some(value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "summary" if self.summary.is_empty() => self.summary = format!("{value:?}"),
            "db.statement" if self.statement.is_empty() => self.statement = format!("{value:?}"),
            _ => {}
        }
    }
}

/// Names the statements of functions/scheduler/src/pass.rs and shared/src/snapshot.rs; any
/// other statement is shown by its first words.
fn label(sql: &str) -> String {
    let flat = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    let known = [
        ("FOR UPDATE", "snapshot::load_clusters (FOR UPDATE)"),
        ("max_runtime_exceeded", "pass::expire_overdue"),
        ("SELECT now()", "SELECT now()"),
        ("started_at!", "snapshot::load_input: running"),
        (
            "deployment_dependencies dd",
            "snapshot::load_input: dependencies",
        ),
        ("AS f(id, dep)", "pass::fail_for_dependencies"),
        ("AS v(id, preemptor)", "pass::preempt"),
        ("AS s(id, cluster_id)", "pass::start"),
        ("AS w(id, reason)", "pass::record_reasons"),
    ];
    for (needle, name) in known {
        if flat.contains(needle) {
            return name.to_string();
        }
    }
    if flat.starts_with("SELECT id, requested_cluster_id, priority") {
        return "snapshot::load_input: pending".into();
    }
    let words: Vec<&str> = flat.split(' ').take(6).collect();
    words.join(" ")
}
