//! Issue 13, item 6: what the organization event feed's long-poll costs while nothing happens,
//! and how long a webhook delivery takes from the event to the receiver.
//!
//! Talks to the server at `BENCH_API_URL` (scripts/bench.sh starts it with the sweeps slowed to
//! 30 s and the notifier's own queue, so deliveries take the SQS path) and reads PostgreSQL's
//! statistics for the server's database `BENCH_API_DB` through `BENCH_DATABASE_URL`'s
//! `postgres` database (so reading them adds nothing to what is counted).
//!
//! 1. Idle long-poll: `FEED_WAITERS` (20) requests wait on a quiet feed (`wait=20`); the
//!    transactions the server's database commits meanwhile, less those of as long a window
//!    without waiters, per waiter and minute; the server's connections to PostgreSQL while
//!    they wait; then one submission, and how long each waiter takes to return with it.
//! 2. Delivery: a receiver on 127.0.0.1 (`test_support::webhook_receiver`, answering 204) gets
//!    every event type; `DELIVERIES` (50) deployments submitted 200 ms apart, each giving a
//!    `submitted` and a `started` event: the event's `at` → the receiver has read the request.
//!
//! Under `cargo test` (no `--bench`) it measures nothing.

mod common;

use chrono::{DateTime, Utc};
use common::{Api, Tenant};
use hypervisor_benches::{is_bench_run, load_average, write_report, Stats};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sqlx::PgPool;
use std::time::{Duration, Instant};
use test_support::webhook_receiver::receiver;

const WAIT_SECONDS: u64 = 20;
/// Measured inside each 20 s wait, leaving out its first and last second (requests starting
/// and ending).
const WINDOW: Duration = Duration::from_secs(18);

fn main() {
    if !is_bench_run() {
        println!("events_and_webhooks: smoke run passed (no --bench: nothing measured)");
        return;
    }
    let (Ok(base), Ok(pg), Ok(db)) = (
        std::env::var("BENCH_API_URL"),
        std::env::var("BENCH_DATABASE_URL"),
        std::env::var("BENCH_API_DB"),
    ) else {
        println!("events_and_webhooks: BENCH_API_URL, BENCH_DATABASE_URL or BENCH_API_DB is not set; run scripts/bench.sh");
        return;
    };
    let number = |name: &str, default: usize| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let (waiters, deliveries) = (number("FEED_WAITERS", 20), number("DELIVERIES", 50));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let md = runtime.block_on(async {
        let api = Api::new(&base);
        let stats = PgPool::connect(&format!("{}/postgres", pg.trim_end_matches('/')))
            .await
            .expect("PostgreSQL's statistics");
        let mut md =
            String::from("### 9. Events: the feed's long-poll and webhook delivery (issue 13)\n\n");
        md.push_str(&long_poll_cost(&api, &stats, &db, waiters).await);
        md.push_str(&delivery_latency(&api, deliveries).await);
        md.push_str(&format!(
            "\n1-min load average at the end: {}.\n",
            load_average()
        ));
        md
    });
    write_report("9_events_and_webhooks", &md);
}

/// Transactions committed so far in `db`, and its open connections now.
async fn database_counters(stats: &PgPool, db: &str) -> (i64, i64) {
    sqlx::query_as::<_, (i64, i64)>(
        "SELECT (SELECT xact_commit FROM pg_stat_database WHERE datname = $1),
                (SELECT count(*) FROM pg_stat_activity WHERE datname = $1)",
    )
    .bind(db)
    .fetch_one(stats)
    .await
    .expect("pg_stat_database")
}

/// Transactions committed in `db` over `WINDOW`, and the most connections seen meanwhile.
async fn window(stats: &PgPool, db: &str) -> (i64, i64) {
    let (before, _) = database_counters(stats, db).await;
    let mut most = 0;
    let end = Instant::now() + WINDOW;
    while Instant::now() < end {
        most = most.max(database_counters(stats, db).await.1);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Backends report their counts at most once a second: let them.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (after, _) = database_counters(stats, db).await;
    (after - before, most)
}

async fn feed_end(api: &Api, t: &Tenant) -> String {
    let (status, page) = api
        .call(
            Method::GET,
            &format!("/api/v1/organizations/{}/events?limit=200", t.org),
            Some(&t.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "feed: {page}");
    page["next_cursor"].as_str().unwrap().to_string()
}

/// `n` requests waiting on the feed after `cursor`, started 25 ms apart so that their polls
/// fall all over the half-second; each resolves to (when it returned, items).
fn start_waiters(
    api: &std::sync::Arc<Api>,
    t: &Tenant,
    cursor: &str,
    n: usize,
) -> Vec<tokio::task::JoinHandle<(Instant, usize)>> {
    (0..n)
        .map(|i| {
            let (api, token) = (api.clone(), t.token.clone());
            let path = format!(
                "/api/v1/organizations/{}/events?after={cursor}&wait={WAIT_SECONDS}",
                t.org
            );
            let stagger = Duration::from_millis(25 * (i as u64 % 20));
            tokio::spawn(async move {
                tokio::time::sleep(stagger).await;
                let (status, page) = api.call(Method::GET, &path, Some(&token), None).await;
                assert_eq!(status, StatusCode::OK, "wait: {page}");
                (Instant::now(), page["items"].as_array().map_or(0, Vec::len))
            })
        })
        .collect()
}

async fn long_poll_cost(api: &Api, stats: &PgPool, db: &str, waiters: usize) -> String {
    let api = std::sync::Arc::new(Api::new(&api.base));
    let t = api.tenant("feed").await;
    let cluster = api.big_cluster(&t).await;
    let cursor = feed_end(&api, &t).await;

    let (idle, idle_connections) = window(stats, db).await;
    let handles = start_waiters(&api, &t, &cursor, waiters);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (waiting, waiting_connections) = window(stats, db).await;
    for h in handles {
        let (_, items) = h.await.expect("a waiter");
        assert_eq!(items, 0, "the feed was to stay quiet");
    }
    let per_minute = |transactions: i64| transactions as f64 * 60.0 / WINDOW.as_secs_f64();
    let per_waiter = per_minute(waiting - idle) / waiters as f64;

    // Wake-up: waiters hold, one submission commits its `submitted` event.
    let handles = start_waiters(&api, &t, &cursor, waiters);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let submitted = Instant::now();
    api.submit_small(&t, &cluster, "wake").await;
    let mut woke_ms = Vec::new();
    for h in handles {
        let (returned, items) = h.await.expect("a waiter");
        assert!(items > 0, "a waiter returned without the event");
        woke_ms.push(returned.saturating_duration_since(submitted).as_secs_f64() * 1e3);
    }
    let woke = Stats::of(&woke_ms).expect("waiters");

    let mut md = String::new();
    md.push_str(&format!(
        "**Idle long-poll.** {waiters} requests wait on a quiet organization feed (`wait={WAIT_SECONDS}`); a wait reads the newest sealed batch every 0.5 s and reads events only when that changes (one indexed `max(seq)` per poll). Counted by PostgreSQL (`pg_stat_database.xact_commit` of the server's database, every statement of the pool being its own transaction) over {} s, against as long a window without waiters (the scheduler's and notifier's sweeps):\n\n",
        WINDOW.as_secs()
    ));
    md.push_str("| | transactions per minute | server connections to PostgreSQL (most seen) |\n|---|---|---|\n");
    md.push_str(&format!(
        "| no waiters | {:.0} | {idle_connections} |\n| {waiters} waiting | {:.0} | {waiting_connections} |\n| **per waiting request** | **{per_waiter:.0}** (two polls a second, and the request's own sign-in check and first read) | none held between polls |\n\n",
        per_minute(idle),
        per_minute(waiting)
    ));
    md.push_str(&format!(
        "A waiting request holds its HTTP connection, not a database connection: each poll borrows one from the pool (DB_MAX_CONNECTIONS=10) for one query. **Wake-up:** with {waiters} waiting, one submission: every waiter returned with its `submitted` event {:.0} ms (p50) / {:.0} ms (max) after the POST was sent (the POST itself included; the waiters' polls are spread over the half-second, so up to 500 ms is the design).\n\n",
        woke.p50, woke.max
    ));
    md
}

async fn delivery_latency(api: &Api, n: usize) -> String {
    let t = api.tenant("hooks").await;
    let cluster = api.big_cluster(&t).await;
    let (url, got) = receiver(vec![204], "").await;
    let (status, hook) = api
        .call(
            Method::POST,
            &format!("/api/v1/organizations/{}/webhooks", t.org),
            Some(&t.token),
            Some(json!({"url": url})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "webhook: {hook} (the server needs WEBHOOK_ALLOW_PRIVATE=true)"
    );
    let started = Instant::now();
    for i in 0..n {
        api.submit_small(&t, &cluster, &format!("hook-{i}")).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(90);
    while got.lock().unwrap().len() < 2 * n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut by_type: std::collections::BTreeMap<String, Vec<f64>> = Default::default();
    let mut ids = std::collections::HashSet::new();
    for r in got.lock().unwrap().iter() {
        // At least once: a retried delivery counts once, as its first arrival.
        if !ids.insert(r.id.clone()) {
            continue;
        }
        let event: Value = serde_json::from_slice(&r.body).expect("a JSON event");
        let at: DateTime<Utc> = event["at"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .expect("an event time");
        let ms = (r.received_at - at).num_microseconds().unwrap_or(0) as f64 / 1e3;
        by_type
            .entry(event["type"].as_str().unwrap_or("?").to_string())
            .or_default()
            .push(ms);
    }
    let wall = started.elapsed().as_secs_f64();
    let all: Vec<f64> = by_type.values().flatten().copied().collect();
    assert_eq!(
        all.len(),
        2 * n,
        "every event delivered within 90 s: {by_type:?}"
    );

    let mut md = format!(
        "**Webhook delivery latency.** {n} deployments submitted 200 ms apart to a fresh organization with one webhook (every event type) whose receiver listens on 127.0.0.1; {} deliveries in {wall:.1} s. Measured from the event's `at` (the clock of the transaction that wrote it) to the moment the receiver had read the whole request, on one host. The path: the submission's transaction writes the event and its outbox row → SQS → the scheduler's pass (which writes `started`) → the notifier's queue → `notifier::deliver_due` → HTTP POST.\n\n",
        all.len()
    );
    md.push_str("| event | deliveries | p50 | p90 | p99 | max |\n|---|---|---|---|---|---|\n");
    for (name, samples) in by_type
        .iter()
        .map(|(k, v)| (k.as_str(), v))
        .chain([("all", &all)])
    {
        let s = Stats::of(samples).expect("samples");
        md.push_str(&format!(
            "| {name} | {} | {:.0} ms | {:.0} ms | {:.0} ms | {:.0} ms |\n",
            s.n, s.p50, s.p90, s.p99, s.max
        ));
    }
    md
}
