//! Temporary: the fewest-victims change must keep `plan` within 20 % of its time before (issue
//! 11, item 4). This plans the benches' 100k × 1,000 inputs with a copy of the scheduler from
//! before the change (`old_scheduling`) and with `shared::scheduling`, alternately, and prints
//! the medians. Both plans are checked; they may differ (the new one evicts fewer).
//!
//! A binary rather than a test or a bench, so that it builds without the dev-dependencies:
//! `cargo run --release -p hypervisor-benches --bin victims_old_vs_new [rounds]`

mod old_scheduling;

use hypervisor_benches::{check_plan, load_average, Workload};
use shared::scheduling::{self, Input, Plan};
use std::time::Instant;

type PlanFn = fn(&Input) -> Plan;

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|r| r.parse().ok())
        .unwrap_or(11);
    // `victims_old_vs_new <rounds> <old|new> <realistic|stress>`: one side only, for
    // `perf stat` (instruction counts are steadier than times on a busy machine).
    if let (Some(side), Some(mix)) = (std::env::args().nth(2), std::env::args().nth(3)) {
        let input = if mix == "stress" {
            Workload::stress(100_000, 1_000).input()
        } else {
            Workload::new(100_000, 1_000).input()
        };
        let plan: PlanFn = if side == "old" {
            old_scheduling::plan
        } else {
            scheduling::plan
        };
        for _ in 0..rounds {
            std::hint::black_box(plan(std::hint::black_box(&input)));
        }
        return;
    }
    println!("| mix | old median | new median | new/old | old fastest | new fastest | old preemptions | new preemptions | runs each |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for stress in [false, true] {
        let input = if stress {
            Workload::stress(100_000, 1_000).input()
        } else {
            Workload::new(100_000, 1_000).input()
        };
        let old_summary = check_plan(&input, &old_scheduling::plan(&input));
        let new_summary = check_plan(&input, &scheduling::plan(&input));
        let time = |plan: PlanFn| {
            let t = Instant::now();
            std::hint::black_box(plan(std::hint::black_box(&input)));
            t.elapsed().as_secs_f64() * 1e3
        };
        let (old, new): (PlanFn, PlanFn) = (old_scheduling::plan, scheduling::plan);
        let (mut old_ms, mut new_ms) = (Vec::new(), Vec::new());
        // Alternating which goes first, so neither always runs on a warmer machine.
        for round in 0..rounds {
            if round % 2 == 0 {
                old_ms.push(time(old));
                new_ms.push(time(new));
            } else {
                new_ms.push(time(new));
                old_ms.push(time(old));
            }
        }
        let median = |ms: &mut Vec<f64>| {
            ms.sort_by(f64::total_cmp);
            ms[ms.len() / 2]
        };
        let (old_median, new_median) = (median(&mut old_ms), median(&mut new_ms));
        println!(
            "| {} | {old_median:.1} ms | {new_median:.1} ms | {:.3} | {:.1} ms | {:.1} ms | {} | {} | {} |",
            if stress { "stress" } else { "realistic" },
            new_median / old_median,
            old_ms[0],
            new_ms[0],
            old_summary.preemptions,
            new_summary.preemptions,
            old_ms.len()
        );
    }
    println!("1-min load average: {}", load_average());
}
