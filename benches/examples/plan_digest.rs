//! The check that a change to the scheduler changes no plan, and a quick timing of it: plans
//! the 100k × 1,000 inputs of BENCHMARKS.md section 1 (stress, realistic, realistic with fair
//! share, stress with quotas and aging), prints a digest of each plan (its `Debug` output,
//! hashed) and the median and fastest of `RUNS` plans (default 7).
//!
//! `cargo run --release -p hypervisor-benches --example plan_digest [stress realistic fair qa]`
//! Compare the digests before and after a change; time two builds alternately, since this
//! machine's figures move between runs.

use hypervisor_benches::Workload;
use shared::scheduling::plan;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::Instant;

fn main() {
    let wanted: Vec<String> = std::env::args().skip(1).collect();
    let runs: usize = std::env::var("RUNS")
        .ok()
        .and_then(|runs| runs.parse().ok())
        .unwrap_or(7)
        .max(1);
    let fair = || {
        let mut workload = Workload::new(100_000, 1_000);
        workload.fairness.fair_share = true;
        workload
    };
    let quotas_and_aging = || {
        let mut workload = Workload::stress(100_000, 1_000);
        workload.quota_share = 0.015;
        workload.fairness.aging_points_per_hour = 10;
        workload.fairness.aging_max_boost = 20;
        workload
    };
    let cases: [(&str, &dyn Fn() -> Workload); 4] = [
        ("stress", &|| Workload::stress(100_000, 1_000)),
        ("realistic", &|| Workload::new(100_000, 1_000)),
        ("fair", &fair),
        ("qa", &quotas_and_aging),
    ];
    for (name, workload) in cases {
        if !wanted.is_empty() && !wanted.iter().any(|w| w == name) {
            continue;
        }
        let input = workload().input();
        let mut hasher = DefaultHasher::new();
        format!("{:?}", plan(&input)).hash(&mut hasher);
        let mut times: Vec<f64> = (0..runs)
            .map(|_| {
                let started = Instant::now();
                std::hint::black_box(plan(std::hint::black_box(&input)));
                started.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        times.sort_by(f64::total_cmp);
        println!(
            "{name}: digest {:016x} median {:.1} ms min {:.1}",
            hasher.finish(),
            times[runs / 2],
            times[0]
        );
    }
}
