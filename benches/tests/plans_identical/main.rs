//! Splitting shared/src/scheduling.rs into a module folder must change no plan. This plans the
//! benches' generated inputs with the old file (`old_scheduling`, a copy) and with
//! `shared::scheduling`, and compares the plans field for field and every reason byte for byte
//! as JSON.
//!
//! `cargo test -p hypervisor-benches --test plans_identical` compares small inputs. The full
//! 100k × 1,000 comparison, with old and new timed, is `#[ignore]`d:
//! `cargo test --release -p hypervisor-benches --test plans_identical -- --ignored --nocapture`.

mod old_scheduling;

use hypervisor_benches::{check_plan, load_average, PlanSummary, Workload};
use shared::resources::Resources;
use shared::scheduling::{self, Input, Pending, Plan};
use std::time::Instant;

/// Where two plans first part, to say so when they do.
fn first_difference(old: &Plan, new: &Plan) -> String {
    fn part<T: PartialEq + std::fmt::Debug>(name: &str, old: &[T], new: &[T]) -> Option<String> {
        if let Some(i) = old.iter().zip(new).position(|(o, n)| o != n) {
            return Some(format!("{name}[{i}]: old {:?}, new {:?}", old[i], new[i]));
        }
        (old.len() != new.len())
            .then(|| format!("{name}: old has {}, new has {}", old.len(), new.len()))
    }
    part("starts", &old.starts, &new.starts)
        .or_else(|| part("preemptions", &old.preemptions, &new.preemptions))
        .or_else(|| part("waiting", &old.waiting, &new.waiting))
        .or_else(|| {
            part(
                "dependency_failures",
                &old.dependency_failures,
                &new.dependency_failures,
            )
        })
        .unwrap_or_default()
}

fn assert_identical(label: &str, old: &Plan, new: &Plan) {
    assert!(
        old == new,
        "{label}: the plans differ at {}",
        first_difference(old, new)
    );
    for (o, n) in old.waiting.iter().zip(&new.waiting) {
        let before = old_scheduling::ReasonAsBefore {
            code: o.reason.code,
            message: o.reason.message.clone(),
            shortfall: o.reason.shortfall,
        };
        assert_eq!(
            serde_json::to_string(&before).unwrap(),
            serde_json::to_string(&n.reason).unwrap(),
            "{label}: the reason of {} serializes differently",
            n.deployment_id
        );
    }
}

/// Plans `input` both ways, asserts the plans identical and sane, and counts the outcomes.
fn compare(label: &str, input: &Input) -> PlanSummary {
    let old = old_scheduling::plan(input);
    let new = scheduling::plan(input);
    assert_identical(label, &old, &new);
    check_plan(input, &new)
}

/// The same for dry runs: of the last pending deployment against the others, and of critical
/// candidates (auto-placed, and pinned to the first cluster) large enough to preempt.
fn compare_dry_runs(label: &str, input: &Input) -> (usize, usize) {
    let mut runs: Vec<(Input, Pending)> = Vec::new();
    let Some(last) = input.pending.last() else {
        return (0, 0);
    };
    let mut rest = input.clone();
    rest.pending.pop();
    runs.push((rest, last.clone()));
    let mut critical = last.clone();
    critical.id = uuid::Uuid::from_u128(u128::MAX);
    critical.priority = 100;
    critical.cluster_id = None;
    critical.dependencies = scheduling::DependencyState::Satisfied;
    critical.resources = Resources::new(64_000, 512_000, 8);
    runs.push((input.clone(), critical.clone()));
    if let Some(first) = input.clusters.first() {
        critical.cluster_id = Some(first.id);
        critical.resources = Resources::new(
            first.capacity.cpu_millis / 2,
            first.capacity.ram_mgib / 2,
            first.capacity.gpu / 2,
        );
        runs.push((input.clone(), critical));
    }
    let mut preemptions = 0;
    for (i, (input, candidate)) in runs.iter().enumerate() {
        let old = old_scheduling::dry_run(input, candidate);
        let new = scheduling::dry_run(input, candidate);
        assert_identical(&format!("{label}, dry run {i}"), &old, &new);
        preemptions += new.preemptions.len();
    }
    (runs.len(), preemptions)
}

type PlanFn = fn(&Input) -> Plan;

type Variant = (&'static str, fn(&mut Input));

/// Each changes one thing in a generated input, to reach the paths the plain mix rarely takes.
const VARIANTS: [Variant; 8] = [
    ("as generated", |_| {}),
    ("min runtime 1 h (some running work protected)", |input| {
        input.min_runtime_seconds = 3_600
    }),
    ("min runtime out of range (all protected)", |input| {
        input.min_runtime_seconds = i64::MAX
    }),
    ("every priority 50", |input| {
        input.running.iter_mut().for_each(|r| r.priority = 50);
        input.pending.iter_mut().for_each(|p| p.priority = 50);
    }),
    ("every pending deployment pinned", |input| {
        let ids: Vec<_> = input.clusters.iter().map(|c| c.id).collect();
        if ids.is_empty() {
            return;
        }
        for p in &mut input.pending {
            if p.cluster_id.is_none() {
                p.cluster_id = Some(ids[(p.id.as_u128() % ids.len() as u128) as usize]);
            }
        }
    }),
    ("nothing running", |input| input.running.clear()),
    ("no clusters (running work on unknown ones)", |input| {
        input.clusters.clear()
    }),
    ("input vectors reversed", |input| {
        input.clusters.reverse();
        input.running.reverse();
        input.pending.reverse();
    }),
];

/// The benches' input of `mix` ("realistic" or "stress"), with `seed` for the default one.
fn generate(mix: &str, pending: usize, clusters: usize, seed: Option<u64>) -> Input {
    let mut workload = match mix {
        "stress" => Workload::stress(pending, clusters),
        _ => Workload::new(pending, clusters),
    };
    if let Some(seed) = seed {
        workload.seed = seed;
    }
    workload.input()
}

/// Every variant and dry run of each mix, size and seed; returns (plans compared, preemptions).
fn compare_all(sizes: &[(usize, usize)], seeds: &[Option<u64>]) -> (usize, usize) {
    let (mut compared, mut preemptions) = (0, 0);
    for mix in ["realistic", "stress"] {
        for &(pending, clusters) in sizes {
            for &seed in seeds {
                let base = generate(mix, pending, clusters, seed);
                for (name, change) in VARIANTS {
                    let mut input = base.clone();
                    change(&mut input);
                    let label = format!("{mix} {pending} × {clusters}, seed {seed:?}, {name}");
                    preemptions += compare(&label, &input).preemptions;
                    let (dry_runs, dry_run_preemptions) = compare_dry_runs(&label, &input);
                    compared += 1 + dry_runs;
                    preemptions += dry_run_preemptions;
                }
            }
        }
    }
    (compared, preemptions)
}

#[test]
fn the_old_and_new_code_plan_small_inputs_identically() {
    let sizes = [(0, 0), (1, 1), (20, 2), (300, 5), (2_000, 20)];
    let seeds = [None, Some(1), Some(2), Some(0xDEAD_BEEF)];
    let (compared, preemptions) = compare_all(&sizes, &seeds);
    println!("{compared} plans identical, with {preemptions} preemptions between them");
    assert!(
        preemptions > 1_000,
        "too few preemptions compared: {preemptions}"
    );
}

#[test]
#[ignore = "100k × 1,000: run with --release --ignored"]
fn the_old_and_new_code_plan_the_full_size_identically_and_as_fast() {
    let started = Instant::now();
    let (compared, preemptions) = compare_all(&[(100_000, 1_000)], &[None, Some(1)]);
    println!(
        "{compared} plans at 100k × 1,000 identical, with {preemptions} preemptions between \
         them ({:.0} s)",
        started.elapsed().as_secs_f64()
    );
    println!("| mix | old median | new median | old fastest | new fastest | runs each |");
    println!("|---|---|---|---|---|---|");
    for mix in ["realistic", "stress"] {
        let input = generate(mix, 100_000, 1_000, None);
        let time = |plan: PlanFn| {
            let t = Instant::now();
            std::hint::black_box(plan(std::hint::black_box(&input)));
            t.elapsed().as_secs_f64() * 1e3
        };
        let (old, new): (PlanFn, PlanFn) = (old_scheduling::plan, scheduling::plan);
        time(old);
        time(new);
        let (mut old_ms, mut new_ms) = (Vec::new(), Vec::new());
        // Alternating which goes first, so neither always runs on a warmer machine.
        for round in 0..11 {
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
        println!(
            "| {mix} | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms | {} |",
            median(&mut old_ms),
            median(&mut new_ms),
            old_ms[0],
            new_ms[0],
            old_ms.len()
        );
    }
    println!("1-min load average: {}", load_average());
}
