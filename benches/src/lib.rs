//! Shared generators and helpers for the benchmarks (see BENCHMARKS.md and scripts/bench.sh).
//!
//! Everything random here comes from [`Rng`], a seeded SplitMix64: the same seed gives the same
//! clusters, queue and plan on every machine, so runs can be compared.

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use shared::resources::Resources;
use shared::scheduling::{Cluster, DependencyState, Fairness, Input, Pending, Plan, Running};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use uuid::Uuid;

/// True under `cargo bench` (cargo passes `--bench`); false under `cargo test --all-targets`,
/// where every bench runs only a smoke-sized version.
pub fn is_bench_run() -> bool {
    std::env::args().any(|a| a == "--bench")
}

// ------------------------------------------------------------------------------------------------
// PRNG

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, fast, and statistically fine for workloads.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0), by multiply-shift (bias below 2^-32 for the n used here).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo + 1) as u64) as i64
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// A random (version 4 shaped) UUID.
    pub fn uuid(&mut self) -> Uuid {
        let bits = (u128::from(self.next_u64()) << 64) | u128::from(self.next_u64());
        uuid::Builder::from_random_bytes(bits.to_be_bytes()).into_uuid()
    }
}

// ------------------------------------------------------------------------------------------------
// Workload mix

/// A priority from the mix of new submissions, in the discrete values people actually use:
/// 20% batch (10, 20, 30), 70% the default 50, 8% high (70, 75, 80), 2% critical (90, 100).
pub fn priority(rng: &mut Rng) -> i32 {
    let roll = rng.unit();
    if roll < 0.20 {
        *rng.pick(&[10, 20, 30])
    } else if roll < 0.90 {
        50
    } else if roll < 0.98 {
        *rng.pick(&[70, 75, 80])
    } else {
        *rng.pick(&[90, 100])
    }
}

/// The priority of work already running in a steady state: a backlog of default-priority work
/// has already displaced the batch work it could, so what runs is 75% default (50), 20% high
/// and 5% critical. Pending high and critical work still preempts it.
pub fn running_priority(rng: &mut Rng) -> i32 {
    let roll = rng.unit();
    if roll < 0.75 {
        50
    } else if roll < 0.95 {
        *rng.pick(&[70, 75, 80])
    } else {
        *rng.pick(&[90, 100])
    }
}

/// Any priority from 1 to 100, uniformly (the stress workload).
pub fn any_priority(rng: &mut Rng) -> i32 {
    rng.range(1, 100) as i32
}

/// A resource request from a catalogue of standard sizes (CPU millicores, RAM thousandths of a
/// GiB, GPUs), as teams size their containers: 40% tiny (0.25, 0.5 or 1 core), 30% small (2 or 4
/// cores), 15% medium (8 or 16), 5% large (32 or 64), each with 2, 4 or 8 GiB per core (at
/// least 0.5 GiB); 10% GPU (1, 2, 4 or 8 GPUs with 8 cores and 64 GiB each). 31 shapes in all;
/// average ≈ 5.5 cores.
pub fn request(rng: &mut Rng) -> Resources {
    let roll = rng.unit();
    let cores_milli = if roll < 0.40 {
        *rng.pick(&[250, 500, 1000])
    } else if roll < 0.70 {
        *rng.pick(&[2000, 4000])
    } else if roll < 0.85 {
        *rng.pick(&[8000, 16000])
    } else if roll < 0.90 {
        *rng.pick(&[32000, 64000])
    } else {
        let gpus = *rng.pick(&[1, 1, 1, 2, 2, 4, 8]);
        return Resources::new(8000 * gpus, 64_000 * gpus, gpus);
    };
    let gib_per_core = *rng.pick(&[2, 4, 8]);
    Resources::new(cores_milli, (cores_milli * gib_per_core).max(500), 0)
}

/// A request of any size (the stress workload: every request a different shape, so nothing
/// learned about one request helps with the next): 40% tiny (0.25-1 core, 0.5-2 GiB), 30% small
/// (1-4 cores, 2-16 GiB), 15% medium (4-16 cores, 16-64 GiB), 5% large (16-64 cores, 64-256
/// GiB), 10% GPU (4-16 cores, 32-128 GiB, 1-8 GPUs), in steps of 0.001.
pub fn any_request(rng: &mut Rng) -> Resources {
    let roll = rng.unit();
    let cores = |rng: &mut Rng, lo: i64, hi: i64| rng.range(lo * 1000, hi * 1000).max(250);
    let gib = |rng: &mut Rng, lo: i64, hi: i64| rng.range(lo * 1000, hi * 1000).max(500);
    if roll < 0.40 {
        Resources::new(cores(rng, 0, 1), gib(rng, 0, 2), 0)
    } else if roll < 0.70 {
        Resources::new(cores(rng, 1, 4), gib(rng, 2, 16), 0)
    } else if roll < 0.85 {
        Resources::new(cores(rng, 4, 16), gib(rng, 16, 64), 0)
    } else if roll < 0.90 {
        Resources::new(cores(rng, 16, 64), gib(rng, 64, 256), 0)
    } else {
        let gpus = *rng.pick(&[1, 1, 1, 2, 2, 4, 8]);
        Resources::new(cores(rng, 4, 16), gib(rng, 32, 128), gpus)
    }
}

/// A cluster's capacity: 70% CPU clusters (256-768 cores, 4 GiB per core, no GPU), 30% GPU
/// clusters (128-256 cores, 8 GiB per core, 32-128 GPUs).
pub fn cluster_capacity(rng: &mut Rng) -> Resources {
    if rng.chance(0.7) {
        let cores = *rng.pick(&[256, 384, 512, 768]);
        Resources::new(cores * 1000, cores * 4 * 1000, 0)
    } else {
        let cores = *rng.pick(&[128, 192, 256]);
        let gpus = *rng.pick(&[32, 64, 128]);
        Resources::new(cores * 1000, cores * 8 * 1000, gpus)
    }
}

/// `r` scaled by `fraction` (per resource, rounded down).
pub fn scaled(r: Resources, fraction: f64) -> Resources {
    Resources::new(
        (r.cpu_millis as f64 * fraction) as i64,
        (r.ram_mgib as f64 * fraction) as i64,
        (r.gpu as f64 * fraction) as i64,
    )
}

/// A fixed "now", so inputs do not depend on the clock.
pub fn bench_now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap()
}

/// What the scheduling generator builds.
#[derive(Debug, Clone)]
pub struct Workload {
    pub pending: usize,
    pub clusters: usize,
    /// How full the clusters already are (running work), per resource.
    pub utilization: f64,
    /// Share of pending deployments that name a cluster (the rest are auto-placed).
    pub pinned: f64,
    /// Share of pending deployments still waiting for a dependency / with a failed one.
    pub waiting_on_dependency: f64,
    pub failed_dependency: f64,
    /// false: the realistic mix (standard sizes, steady-state priorities: [`request`],
    /// [`priority`], [`running_priority`]); true: the stress mix ([`any_request`],
    /// [`any_priority`] for running and pending alike, so most pending work outranks some
    /// running work and preemption is everywhere).
    pub stress: bool,
    /// How many people and tokens submit: each deployment's submitter is one of them.
    pub submitters: usize,
    /// Aging, fair share and quotas (off by default).
    pub fairness: Fairness,
    /// When above 0: every submitter gets a quota of this share of the organization's total
    /// capacity, per resource.
    pub quota_share: f64,
    pub seed: u64,
}

impl Workload {
    /// The realistic mix of BENCHMARKS.md: clusters 60% full, 20% pinned, 2% waiting on a
    /// dependency, 0.2% with a failed dependency.
    pub fn new(pending: usize, clusters: usize) -> Self {
        Self::with(pending, clusters, false)
    }

    /// The same with the stress mix.
    pub fn stress(pending: usize, clusters: usize) -> Self {
        Self::with(pending, clusters, true)
    }

    fn with(pending: usize, clusters: usize, stress: bool) -> Self {
        Workload {
            pending,
            clusters,
            utilization: 0.6,
            pinned: 0.2,
            waiting_on_dependency: 0.02,
            failed_dependency: 0.002,
            stress,
            submitters: 50,
            fairness: Fairness::default(),
            quota_share: 0.0,
            seed: 0x5EED_0000 ^ (pending as u64) << 20 ^ clusters as u64,
        }
    }

    /// The pure algorithm's input: clusters, the running deployments that fill them to
    /// `utilization`, and `pending` queued deployments of the mix.
    pub fn input(&self) -> Input {
        let mut rng = Rng::new(self.seed);
        let now = bench_now();
        let stress = self.stress;
        let request = |rng: &mut Rng| {
            if stress {
                any_request(rng)
            } else {
                request(rng)
            }
        };
        let pending_priority = |rng: &mut Rng| {
            if stress {
                any_priority(rng)
            } else {
                priority(rng)
            }
        };
        let running_priority = |rng: &mut Rng| {
            if stress {
                any_priority(rng)
            } else {
                running_priority(rng)
            }
        };
        let clusters: Vec<Cluster> = (0..self.clusters)
            .map(|_| {
                let capacity = cluster_capacity(&mut rng);
                Cluster {
                    id: rng.uuid(),
                    capacity,
                    allocated: Resources::ZERO,
                }
            })
            .collect();
        let ago =
            |rng: &mut Rng, max_seconds: i64| now - TimeDelta::seconds(rng.range(1, max_seconds));
        let submitters: Vec<Uuid> = (0..self.submitters.max(1)).map(|_| rng.uuid()).collect();
        let submitter = |rng: &mut Rng| *rng.pick(&submitters);

        let mut running = Vec::new();
        let mut clusters = clusters;
        for cluster in &mut clusters {
            let budget = scaled(cluster.capacity, self.utilization);
            let mut used = Resources::ZERO;
            let mut misses = 0;
            while misses < 20 {
                let r = request(&mut rng);
                if (used + r).fits_in(&budget) {
                    used += r;
                    misses = 0;
                    let created_at = ago(&mut rng, 2 * 86_400);
                    running.push(Running {
                        id: rng.uuid(),
                        cluster_id: cluster.id,
                        priority: running_priority(&mut rng),
                        resources: r,
                        started_at: created_at + TimeDelta::seconds(rng.range(0, 600)),
                        created_at,
                        requested_cluster_id: rng.chance(self.pinned).then_some(cluster.id),
                        submitter: submitter(&mut rng),
                    });
                } else {
                    misses += 1;
                }
            }
            cluster.allocated = used;
        }

        let mut pending: Vec<Pending> = Vec::with_capacity(self.pending);
        for _ in 0..self.pending {
            let resources = request(&mut rng);
            // A pinned request names a cluster it fits on when empty (the API refuses others).
            let cluster_id = if rng.chance(self.pinned) && !clusters.is_empty() {
                let c = rng.pick(&clusters);
                resources.fits_in(&c.capacity).then_some(c.id)
            } else {
                None
            };
            let roll = rng.unit();
            let dependencies = if roll < self.failed_dependency && !pending.is_empty() {
                let on = rng.pick(&pending).id;
                DependencyState::Failed { dependency: on }
            } else if roll < self.failed_dependency + self.waiting_on_dependency {
                let unfinished = (0..rng.range(1, 2)).map(|_| rng.uuid()).collect();
                DependencyState::Waiting { unfinished }
            } else {
                DependencyState::Satisfied
            };
            let created_at = ago(&mut rng, 86_400);
            pending.push(Pending {
                id: rng.uuid(),
                cluster_id,
                priority: pending_priority(&mut rng),
                resources,
                created_at,
                dependencies,
                submitter: submitter(&mut rng),
                queued_at: created_at,
            });
        }
        let mut fairness = self.fairness.clone();
        if self.quota_share > 0.0 {
            let total = clusters
                .iter()
                .fold(Resources::ZERO, |sum, c| sum + c.capacity);
            let quota = scaled(total, self.quota_share);
            fairness.quotas = submitters.iter().map(|s| (*s, quota)).collect();
        }
        Input {
            clusters,
            running,
            pending,
            now,
            min_runtime_seconds: 0,
            fairness,
        }
    }
}

// ------------------------------------------------------------------------------------------------
// Sanity checks

/// What a plan did, counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PlanSummary {
    pub starts: usize,
    pub preemptions: usize,
    pub waiting: usize,
    pub dependency_failures: usize,
}

/// Checks the invariants a benchmark must not silently break, and counts the outcomes:
/// every pending deployment is decided exactly once, no cluster is over-committed, pinned
/// deployments start only where they asked, and victims had strictly lower priority.
/// Panics with a message on the first violation.
pub fn check_plan(input: &Input, plan: &Plan) -> PlanSummary {
    let capacity: HashMap<Uuid, Resources> =
        input.clusters.iter().map(|c| (c.id, c.capacity)).collect();
    let running: HashMap<Uuid, &Running> = input.running.iter().map(|r| (r.id, r)).collect();
    let pending: HashMap<Uuid, &Pending> = input.pending.iter().map(|p| (p.id, p)).collect();

    let victims: HashSet<Uuid> = plan.preemptions.iter().map(|p| p.victim_id).collect();
    assert_eq!(
        victims.len(),
        plan.preemptions.len(),
        "a victim preempted twice"
    );
    let mut used: HashMap<Uuid, Resources> = HashMap::new();
    for r in &input.running {
        if capacity.contains_key(&r.cluster_id) && !victims.contains(&r.id) {
            *used.entry(r.cluster_id).or_default() += r.resources;
        }
    }
    let mut decided: HashSet<Uuid> = HashSet::new();
    let mut decide = |id: Uuid| assert!(decided.insert(id), "deployment {id} decided twice");
    for s in &plan.starts {
        decide(s.deployment_id);
        *used.entry(s.cluster_id).or_default() += s.resources;
        match (pending.get(&s.deployment_id), running.get(&s.deployment_id)) {
            (Some(p), _) => {
                if let Some(asked) = p.cluster_id {
                    assert_eq!(asked, s.cluster_id, "pinned deployment started elsewhere");
                }
                assert!(
                    matches!(p.dependencies, DependencyState::Satisfied),
                    "started with unfinished dependencies"
                );
            }
            (None, Some(_)) => assert!(victims.contains(&s.deployment_id)),
            (None, None) => panic!("started an unknown deployment {}", s.deployment_id),
        }
    }
    for w in &plan.waiting {
        decide(w.deployment_id);
    }
    for f in &plan.dependency_failures {
        decide(f.deployment_id);
    }
    for p in &input.pending {
        assert!(decided.contains(&p.id), "pending {} not decided", p.id);
    }
    for v in &victims {
        assert!(
            decided.contains(v),
            "victim {v} neither restarted nor waiting"
        );
    }
    let priority_of = |id: &Uuid| {
        pending
            .get(id)
            .map(|p| p.priority)
            .or_else(|| running.get(id).map(|r| r.priority))
            .expect("known deployment")
    };
    for p in &plan.preemptions {
        assert!(
            priority_of(&p.victim_id) < priority_of(&p.preemptor_id),
            "victim not of strictly lower priority"
        );
    }
    for (cluster, used) in &used {
        assert!(
            used.fits_in(&capacity[cluster]),
            "cluster {cluster} over-committed: {used:?} > {:?}",
            capacity[cluster]
        );
    }
    PlanSummary {
        starts: plan.starts.len(),
        preemptions: plan.preemptions.len(),
        waiting: plan.waiting.len(),
        dependency_failures: plan.dependency_failures.len(),
    }
}

// ------------------------------------------------------------------------------------------------
// Statistics and reports

/// Summary statistics of a sample, in the sample's unit.
#[derive(Debug, Clone, Copy)]
pub struct Stats {
    pub n: usize,
    pub min: f64,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

impl Stats {
    /// None for an empty sample. Percentiles are nearest-rank: p99 of 20 samples is the max.
    pub fn of(samples: &[f64]) -> Option<Stats> {
        if samples.is_empty() {
            return None;
        }
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        let rank = |p: f64| {
            let k = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
            sorted[k.clamp(1, sorted.len()) - 1]
        };
        Some(Stats {
            n: sorted.len(),
            min: sorted[0],
            mean: sorted.iter().sum::<f64>() / sorted.len() as f64,
            p50: rank(50.0),
            p90: rank(90.0),
            p99: rank(99.0),
            max: sorted[sorted.len() - 1],
        })
    }
}

/// Where a bench writes its Markdown section for BENCHMARKS.md: `$BENCH_REPORT_DIR/<name>.md`
/// (scripts/bench.sh sets it). Also printed, so a plain `cargo bench` shows it.
pub fn write_report(name: &str, markdown: &str) {
    println!("\n{markdown}");
    if let Some(dir) = std::env::var_os("BENCH_REPORT_DIR") {
        let dir = PathBuf::from(dir);
        std::fs::create_dir_all(&dir).expect("creating BENCH_REPORT_DIR");
        std::fs::write(dir.join(format!("{name}.md")), markdown).expect("writing the report");
    }
}

/// "met" / "MISSED" for a target line.
pub fn verdict(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "**MISSED**"
    }
}

/// The 1-minute load average, to say how busy the machine was while measuring.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

// ------------------------------------------------------------------------------------------------
// Databases

/// The PostgreSQL server the benches create their databases on: `BENCH_DATABASE_URL` (a server
/// URL), else the server of `DATABASE_URL`, else postgres://postgres@127.0.0.1:5432.
pub fn server_url() -> String {
    if let Ok(url) = std::env::var("BENCH_DATABASE_URL") {
        return url.trim_end_matches('/').to_string();
    }
    match std::env::var("DATABASE_URL") {
        Ok(url) => {
            let url = url.split('?').next().unwrap_or_default();
            match url.rsplit_once('/') {
                Some((server, _)) if server.contains("://") && !server.ends_with('/') => {
                    server.to_string()
                }
                _ => url.to_string(),
            }
        }
        Err(_) => "postgres://postgres@127.0.0.1:5432".into(),
    }
}

/// A database of the benches' own on [`server_url`], created afresh (dropping one of the same
/// name), with the migrations applied; dropped again by [`BenchDatabase::drop`] unless
/// `BENCH_KEEP_DB` is set.
pub struct BenchDatabase {
    pub name: String,
    pub pool: sqlx::PgPool,
    admin: sqlx::PgPool,
}

impl BenchDatabase {
    pub async fn create(name: &str, max_connections: u32) -> BenchDatabase {
        use sqlx::Executor;
        let server = server_url();
        let admin = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .connect(&format!("{server}/postgres"))
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at {server} (make services starts it): {e}"));
        admin
            .execute(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)").as_str())
            .await
            .expect("dropping the old bench database");
        admin
            .execute(format!("CREATE DATABASE \"{name}\"").as_str())
            .await
            .expect("creating the bench database");
        let pool = Self::connect(name, max_connections).await;
        shared::MIGRATOR.run(&pool).await.expect("migrations");
        BenchDatabase {
            name: name.to_string(),
            pool,
            admin,
        }
    }

    /// Another pool on the same database (as another Lambda instance would have).
    pub async fn connect(name: &str, max_connections: u32) -> sqlx::PgPool {
        use std::str::FromStr;
        let options =
            sqlx::postgres::PgConnectOptions::from_str(&format!("{}/{name}", server_url()))
                .expect("a database URL");
        sqlx::postgres::PgPoolOptions::new()
            .max_connections(max_connections)
            .connect_with(options)
            .await
            .expect("connecting to the bench database")
    }

    pub async fn drop(self) {
        use sqlx::Executor;
        self.pool.close().await;
        if std::env::var_os("BENCH_KEEP_DB").is_none() {
            self.admin
                .execute(format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name).as_str())
                .await
                .expect("dropping the bench database");
        }
    }
}

/// The workspace root (benches/..).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prng_is_deterministic_and_spread() {
        let a: Vec<u64> = {
            let mut r = Rng::new(7);
            (0..5).map(|_| r.next_u64()).collect()
        };
        let mut r = Rng::new(7);
        assert_eq!(a, (0..5).map(|_| r.next_u64()).collect::<Vec<_>>());
        let mut counts = [0usize; 10];
        for _ in 0..10_000 {
            counts[r.below(10) as usize] += 1;
        }
        assert!(
            counts.iter().all(|&c| (800..1200).contains(&c)),
            "{counts:?}"
        );
    }

    #[test]
    fn a_small_workload_plans_sanely() {
        let input = Workload::new(500, 10).input();
        assert_eq!(input.pending.len(), 500);
        assert!(!input.running.is_empty());
        let plan = shared::scheduling::plan(&input);
        let summary = check_plan(&input, &plan);
        assert!(summary.starts > 0, "{summary:?}");
        assert!(summary.waiting > 0, "{summary:?}");
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let samples: Vec<f64> = (1..=100).map(f64::from).collect();
        let s = Stats::of(&samples).unwrap();
        assert_eq!((s.p50, s.p99, s.max), (50.0, 99.0, 100.0));
        assert!(Stats::of(&[]).is_none());
    }
}
