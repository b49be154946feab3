//! Property tests: every plan keeps the invariants of DESIGN.md §3, whatever the input, and the
//! fast searches choose what the rules, read literally, choose.

use std::cmp::Reverse;
use std::collections::{HashMap, HashSet};

use chrono::TimeDelta;
use proptest::prelude::*;

use super::fit::amounts;
use super::pass::{highest_first, Candidate, Pass};
use super::queue::queue_key;
use super::tests::{ago, cluster, id, t0};
use super::*;

type Raw = (i64, i64, i64);

fn to_res((cores, gib, gpus): Raw) -> Resources {
    Resources::new(cores * 500, gib * 1000, gpus)
}

pub(super) fn scenario() -> impl Strategy<Value = Input> {
    let clusters = prop::collection::vec((0u128..1 << 16, (0..=32i64, 0..=64i64, 0..=8i64)), 1..=5);
    let running = prop::collection::vec(
        (
            0usize..7,
            0u8..100,
            (0..=8i64, 0..=16i64, 0..=4i64),
            0i64..1_000,
            0usize..8,
        ),
        0..=20,
    );
    let pending = prop::collection::vec(
        (
            0usize..8,
            0u8..100,
            (0..=10i64, 0..=20i64, 0..=5i64),
            0i64..4,
            0u8..12,
            0usize..30,
        ),
        0..=30,
    );
    let min_runtime = prop_oneof![Just(0i64), 1..=600i64];
    // Off half the time; otherwise aging, fair share and quotas for some of three submitters.
    let fairness = prop_oneof![
        Just(None),
        (
            prop_oneof![Just(0i32), 1..=100i32],
            0..=20i32,
            any::<bool>(),
            prop::collection::vec(
                (0usize..3, (0..=12i64, 0..=24i64, 0..=6i64), any::<u8>()),
                0..=3
            ),
        )
            .prop_map(Some),
    ];
    (
        clusters,
        running,
        pending,
        min_runtime,
        any::<bool>(),
        any::<bool>(),
        fairness,
    )
        .prop_map(
            |(
                clusters,
                running,
                pending,
                min_runtime_seconds,
                few_priorities,
                few_shapes,
                fairness,
            )| {
                let submitter = |n: usize| id(0x5b00 + (n % 3) as u128);
                let fairness = match fairness {
                    None => Fairness::default(),
                    Some((points, max_boost, fair_share, quotas)) => Fairness {
                        aging_points_per_hour: points,
                        aging_max_boost: max_boost,
                        fair_share,
                        quotas: quotas
                            .into_iter()
                            .map(|(who, cap, uncapped)| {
                                // Some resources left uncapped.
                                let cap = to_res(cap);
                                let or_unlimited = |bit: u8, amount: i64| {
                                    if uncapped & bit != 0 {
                                        UNLIMITED
                                    } else {
                                        amount
                                    }
                                };
                                let limit = Resources::new(
                                    or_unlimited(1, cap.cpu_millis),
                                    or_unlimited(2, cap.ram_mgib),
                                    or_unlimited(4, cap.gpu),
                                );
                                (submitter(who), limit)
                            })
                            .collect(),
                    },
                };
                let priority = |raw: u8| -> i32 {
                    if few_priorities {
                        1 + i32::from(raw % 3)
                    } else {
                        1 + i32::from(raw)
                    }
                };
                // Identical requests exercise the memos of auto placement.
                let request = |(cores, gib, gpus): Raw| -> Resources {
                    if few_shapes {
                        to_res((cores % 2 * 6, gib % 2 * 12, gpus % 2 * 2))
                    } else {
                        to_res((cores, gib, gpus))
                    }
                };
                let clusters: Vec<Cluster> = clusters
                    .into_iter()
                    .enumerate()
                    .map(|(i, (salt, cap))| cluster(salt << 8 | i as u128, to_res(cap)))
                    .collect();
                let pick = |sel: usize| -> Option<Uuid> {
                    match sel {
                        s if s < clusters.len() => Some(clusters[s].id),
                        6 => Some(id(0xdead)),
                        _ => None,
                    }
                };
                let mut free: HashMap<Uuid, Resources> =
                    clusters.iter().map(|c| (c.id, c.capacity)).collect();
                let mut runs = Vec::new();
                for (i, (sel, prio, raw, age, requested)) in running.into_iter().enumerate() {
                    let on = pick(sel % 7).unwrap_or(id(0xbeef));
                    let resources = request(raw);
                    // Running work fits its cluster, except on clusters not in the input.
                    if let Some(room) = free.get_mut(&on) {
                        if !resources.fits_in(room) {
                            continue;
                        }
                        *room -= resources;
                    }
                    runs.push(Running {
                        id: id(1 << 40 | i as u128),
                        cluster_id: on,
                        priority: priority(prio),
                        resources,
                        started_at: ago(age),
                        created_at: ago(age + (i as i64 % 3)),
                        submitter: submitter(i),
                        requested_cluster_id: match requested {
                            0..=3 => None,
                            4..=5 => Some(on),
                            // Runs here but asked for another cluster (or one no longer in
                            // the input): requeued, it may go back only where it asked.
                            6 => clusters.iter().map(|c| c.id).find(|c| *c != on),
                            _ => Some(id(0xdead)),
                        },
                    });
                }
                let n = pending.len();
                let pending_id = |i: usize| id(1 << 50 | i as u128);
                let pending = pending
                    .into_iter()
                    .enumerate()
                    .map(|(i, (sel, prio, raw, age, deps, dep))| Pending {
                        id: pending_id(i),
                        cluster_id: pick(sel),
                        priority: priority(prio),
                        resources: request(raw),
                        created_at: ago(age),
                        submitter: submitter(i / 2 + dep),
                        // Waited from seconds to days: aging boosts some of them.
                        queued_at: ago(age * (dep as i64 + 1) * 7_919),
                        dependencies: match deps {
                            0..=7 => DependencyState::Satisfied,
                            8 | 9 => DependencyState::Waiting {
                                unfinished: vec![pending_id(dep % n.max(1)), id(0xfeed)],
                            },
                            10 => DependencyState::Waiting {
                                unfinished: vec![pending_id(dep % n.max(1))],
                            },
                            _ => DependencyState::Failed {
                                dependency: id(0xf00d),
                            },
                        },
                    })
                    .collect();
                Input {
                    clusters,
                    running: runs,
                    pending,
                    now: t0(),
                    min_runtime_seconds,
                    fairness,
                }
            },
        )
}

fn shuffle<T>(items: &mut [T], seed: &mut u64) {
    for i in (1..items.len()).rev() {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        items.swap(i, (*seed >> 33) as usize % (i + 1));
    }
}

pub(super) fn old_enough(input: &Input, r: &Running) -> bool {
    input.min_runtime_seconds <= 0
        || (input.now - r.started_at) >= TimeDelta::seconds(input.min_runtime_seconds)
}

/// Replays the plan from scratch and checks the invariants of DESIGN.md §3.
fn check(input: &Input, plan: &Plan) -> Result<(), TestCaseError> {
    let capacity: HashMap<Uuid, Resources> =
        input.clusters.iter().map(|c| (c.id, c.capacity)).collect();
    let mut free = capacity.clone();
    let mut on_cluster: HashMap<Uuid, &Running> = HashMap::new();
    for r in &input.running {
        if let Some(room) = free.get_mut(&r.cluster_id) {
            *room -= r.resources;
            on_cluster.insert(r.id, r);
        }
    }
    let pending: HashMap<Uuid, &Pending> = input.pending.iter().map(|p| (p.id, p)).collect();
    // Who may start: satisfied pending, then victims as they are evicted.
    let mut startable: HashMap<Uuid, (i32, Option<Uuid>, Uuid)> = input
        .pending
        .iter()
        .filter(|p| p.dependencies == DependencyState::Satisfied)
        .map(|p| (p.id, (p.priority, p.cluster_id, p.submitter)))
        .collect();
    // What each submitter holds running as the plan goes.
    let mut held: HashMap<Uuid, Resources> = HashMap::new();
    for r in &input.running {
        *held.entry(r.submitter).or_default() += r.resources;
    }
    let quotas = &input.fairness.quotas;
    let preemptions: HashMap<Uuid, &Preemption> =
        plan.preemptions.iter().map(|p| (p.victim_id, p)).collect();
    prop_assert_eq!(
        preemptions.len(),
        plan.preemptions.len(),
        "a victim preempted twice"
    );
    let mut started = HashSet::new();
    let mut victims_seen = 0;

    for start in &plan.starts {
        // (f) no deployment started twice.
        prop_assert!(started.insert(start.deployment_id), "started twice");
        // `priority` is the base priority: aging never grants the right to preempt (b).
        let (priority, requested, submitter) = startable
            .remove(&start.deployment_id)
            .expect("start of a startable deployment");
        // No start takes its submitter past its quota (counted before its own evictions).
        let holds = held.entry(submitter).or_default();
        if let Some(quota) = quotas.get(&submitter) {
            prop_assert!(
                (*holds + start.resources).fits_in(quota),
                "{} over its quota {:?}",
                start.deployment_id,
                quota
            );
        }
        *holds += start.resources;
        if let Some(requested) = requested {
            prop_assert_eq!(requested, start.cluster_id);
        }
        let room = free
            .get_mut(&start.cluster_id)
            .expect("start on a known cluster");
        for victim in &start.preempted {
            // Only deployments running before the pass: later starts are not listed.
            let r = on_cluster.remove(victim).expect("victim is running");
            prop_assert_eq!(r.cluster_id, start.cluster_id);
            // (b) strictly lower priority and old enough.
            prop_assert!(r.priority < priority);
            prop_assert!(old_enough(input, r));
            let p = preemptions[victim];
            prop_assert_eq!(p.preemptor_id, start.deployment_id);
            prop_assert_eq!(p.cluster_id, start.cluster_id);
            prop_assert_eq!(p.resources, r.resources);
            *room += r.resources;
            *held.entry(r.submitter).or_default() -= r.resources;
            startable.insert(r.id, (r.priority, r.requested_cluster_id, r.submitter));
            victims_seen += 1;
        }
        // (a) the start fits.
        prop_assert!(start.resources.fits_in(room));
        // (c) every victim was necessary.
        for victim in &start.preempted {
            let back = *room
                - input
                    .running
                    .iter()
                    .find(|r| r.id == *victim)
                    .unwrap()
                    .resources;
            prop_assert!(
                !start.resources.fits_in(&back),
                "victim {} could be spared",
                victim
            );
        }
        *room -= start.resources;
        let expected = pending.get(&start.deployment_id).map(|p| p.resources);
        if let Some(expected) = expected {
            prop_assert_eq!(expected, start.resources);
        }
    }
    prop_assert_eq!(victims_seen, plan.preemptions.len());
    // (a) no cluster over capacity afterwards.
    for room in free.values() {
        prop_assert!(
            Resources::ZERO.fits_in(room),
            "cluster over capacity: {:?}",
            room
        );
    }
    // (d) everything accounted for, exactly once.
    let mut seen: HashMap<Uuid, usize> = HashMap::new();
    let outcomes = plan
        .starts
        .iter()
        .map(|s| s.deployment_id)
        .chain(plan.waiting.iter().map(|w| w.deployment_id))
        .chain(plan.dependency_failures.iter().map(|f| f.deployment_id));
    for deployment in outcomes {
        *seen.entry(deployment).or_default() += 1;
    }
    for p in &input.pending {
        prop_assert_eq!(
            seen.remove(&p.id),
            Some(1),
            "pending {} not decided once",
            p.id
        );
    }
    for victim in preemptions.keys() {
        prop_assert_eq!(
            seen.remove(victim),
            Some(1),
            "victim {} not decided once",
            victim
        );
    }
    prop_assert!(
        seen.is_empty(),
        "outcomes for unknown deployments: {:?}",
        seen
    );
    for w in &plan.waiting {
        if w.reason.code == ReasonCode::QuotaExceeded {
            // Only a submitter with a quota, and only for what the quota lacks.
            let submitter = match pending.get(&w.deployment_id) {
                Some(p) => p.submitter,
                None => {
                    input
                        .running
                        .iter()
                        .find(|r| r.id == w.deployment_id)
                        .unwrap()
                        .submitter
                }
            };
            prop_assert!(quotas.contains_key(&submitter));
            prop_assert!(!w.reason.shortfall.expect("a shortfall").is_zero());
            continue;
        }
        let expected = match pending.get(&w.deployment_id) {
            None => ReasonCode::Preempted,
            Some(p) if matches!(p.dependencies, DependencyState::Waiting { .. }) => {
                ReasonCode::WaitingForDependencies
            }
            Some(p)
                if p.cluster_id.is_none()
                    && !input.clusters.is_empty()
                    && !input
                        .clusters
                        .iter()
                        .any(|c| p.resources.fits_in(&c.capacity)) =>
            {
                ReasonCode::ExceedsCapacity
            }
            Some(_) => ReasonCode::InsufficientResources,
        };
        prop_assert_eq!(w.reason.code, expected);
        if expected != ReasonCode::WaitingForDependencies {
            let shortfall = w.reason.shortfall.expect("a shortfall");
            let (request, requested) = match pending.get(&w.deployment_id) {
                Some(p) => (p.resources, p.cluster_id),
                None => {
                    let r = input
                        .running
                        .iter()
                        .find(|r| r.id == w.deployment_id)
                        .unwrap();
                    (r.resources, r.requested_cluster_id)
                }
            };
            // Measured against what the plan leaves free, on the requested cluster or,
            // for auto placement, on the one missing the least.
            let missing_on = |cluster: &Uuid| request.shortfall(&free[cluster]);
            match requested {
                Some(cluster) if free.contains_key(&cluster) => {
                    prop_assert_eq!(shortfall, missing_on(&cluster));
                }
                Some(_) => prop_assert_eq!(shortfall, request),
                None if free.is_empty() => prop_assert_eq!(shortfall, request),
                None => prop_assert!(free.keys().any(|c| missing_on(c) == shortfall)),
            }
            // Blocked with nothing missing only on a cluster that is not there.
            prop_assert!(!shortfall.is_zero() || request.is_zero());
        }
    }
    for f in &plan.dependency_failures {
        match &pending[&f.deployment_id].dependencies {
            DependencyState::Failed { dependency } => {
                prop_assert_eq!(*dependency, f.dependency_id)
            }
            DependencyState::Waiting { unfinished } => {
                prop_assert!(unfinished.contains(&f.dependency_id));
                prop_assert!(plan
                    .dependency_failures
                    .iter()
                    .any(|d| d.deployment_id == f.dependency_id));
            }
            DependencyState::Satisfied => {
                prop_assert!(false, "satisfied deployment failed")
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn every_plan_keeps_the_invariants(input in scenario(), seed in any::<u64>()) {
        let plan = plan(&input);
        check(&input, &plan)?;

        // (e) determinism: the order of the input vectors does not matter.
        let mut shuffled = input.clone();
        let mut seed = seed;
        shuffle(&mut shuffled.clusters, &mut seed);
        shuffle(&mut shuffled.running, &mut seed);
        shuffle(&mut shuffled.pending, &mut seed);
        for p in &mut shuffled.pending {
            if let DependencyState::Waiting { unfinished } = &mut p.dependencies {
                shuffle(unfinished, &mut seed);
            }
        }
        prop_assert_eq!(super::plan(&shuffled), plan);
    }

    #[test]
    fn auto_placement_searches_match_the_rules_read_literally(input in scenario()) {
        let mut queue: Vec<&Pending> = input.pending.iter().collect();
        queue.sort_by_key(|p| queue_key(p.priority, p.created_at, p.id));
        let mut pass = Pass::new(&input, true);
        let mut capacity: Vec<(Uuid, Resources)> =
            input.clusters.iter().map(|c| (c.id, c.capacity)).collect();
        capacity.sort_by_key(|(id, _)| *id);
        let clusters = || 0..capacity.len();
        // Fractions of capacity, in the same float arithmetic (times 1/capacity); a
        // resource the cluster has none of weighs nothing left over, and ranks last when
        // missing.
        let score = |amounts: [i64; 3], capacity: Resources, missing: bool| -> f64 {
            let capacity = super::fit::amounts(capacity);
            let none = if missing { f64::MAX } else { 0.0 };
            let weight = |r: usize| if capacity[r] > 0 { 1.0 / capacity[r] as f64 } else { none };
            (0..3).map(|r| amounts[r].max(0) as f64 * weight(r)).sum::<f64>().min(f64::MAX)
        };
        for p in queue {
            let need = p.resources;
            let free = pass.free.clone();
            let capacity_of = |c: usize| capacity[c].1;
            let lowest = |scores: Vec<(f64, usize)>| {
                scores.into_iter().min_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)))
            };
            let fits: Vec<(f64, usize)> = clusters()
                .filter(|&c| need.fits_in(&free[c]))
                .map(|c| (score(amounts(free[c] - need), capacity_of(c), false), c))
                .collect();
            let expected = lowest(fits).map(|(_, c)| c);
            prop_assert_eq!(pass.scores.best_fit(need), expected);
            let short: Vec<(f64, usize)> = clusters()
                .map(|c| (score(amounts(need.shortfall(&free[c])), capacity_of(c), true), c))
                .collect();
            prop_assert_eq!(pass.scores.least_short(need), lowest(short).map(|(_, c)| c));

            let candidate = Candidate {
                id: p.id,
                priority: p.priority,
                cluster_id: None,
                resources: need,
                preempted_by: None,
                submitter: p.submitter,
            };
            pass.protect_down_to(p.priority);
            // Preemption is only searched for once nothing fits the free capacity.
            if expected.is_none() {
                let cheapest = clusters()
                    .filter_map(|c| pass.victims_on(c, &candidate).map(|v| (c, v)))
                    .min_by_key(|(c, v)| {
                        let prio: Vec<i32> =
                            v.iter().map(|&i| pass.preemptible[i].running.priority).collect();
                        let top = prio.iter().copied().max();
                        (top, v.len(), prio.iter().map(|&x| i64::from(x)).sum::<i64>(), *c)
                    });
                prop_assert_eq!(pass.cheapest_preemption(&candidate), cheapest);
            }
            pass.schedule(candidate);
        }
    }

    #[test]
    fn queue_keys_sort_like_priority_then_time_then_id(
        entries in prop::collection::vec(
            (
                prop_oneof![any::<i32>(), -2..=2i32],
                prop_oneof![-(1i64 << 36)..(1i64 << 36), -2..=2i64],
                // Past 999,999,999: a leap second, valid only at the end of a minute.
                prop_oneof![0..2_000_000_000u32, 0..=1u32],
                prop_oneof![any::<u128>(), 0..=2u128],
            ),
            2..=8,
        )
    ) {
        let entries: Vec<(i32, DateTime<Utc>, Uuid)> = entries
            .into_iter()
            .filter_map(|(priority, seconds, nanos, n)| {
                let at = DateTime::from_timestamp(seconds * 60 + 59, nanos)?;
                let at = if n % 2 == 0 { at - TimeDelta::seconds(n as i64 % 7) } else { at };
                Some((priority, at, id(n)))
            })
            .collect();
        for a in &entries {
            for b in &entries {
                let by_key = queue_key(a.0, a.1, a.2).cmp(&queue_key(b.0, b.1, b.2));
                let literal = (Reverse(a.0), a.1, a.2).cmp(&(Reverse(b.0), b.1, b.2));
                prop_assert_eq!(by_key, literal);
            }
        }
    }


    /// Counted (a narrow span of priorities) or sorted (a wide one), the order is the same.
    #[test]
    fn highest_first_orders_by_priority_then_index(
        priorities in prop_oneof![
            prop::collection::vec(-3..=3i32, 0..200),
            prop::collection::vec(any::<i32>(), 0..50),
            prop::collection::vec(prop_oneof![Just(i32::MIN), Just(i32::MAX), 0..=2i32], 0..50),
        ]
    ) {
        let mut expected: Vec<usize> = (0..priorities.len()).collect();
        expected.sort_by_key(|&i| (Reverse(priorities[i]), i));
        prop_assert_eq!(highest_first(priorities.iter().copied()), expected);
    }

    #[test]
    fn memo_changes_no_decision(input in scenario()) {
        prop_assert_eq!(run(&input, false), plan(&input));
    }

    /// A dry run answers the same wherever the candidate would stand in the input's pending
    /// list: the answer depends on the queue's order, never on the vector's.
    #[test]
    fn a_dry_run_does_not_depend_on_where_the_candidate_is_listed(
        input in scenario(),
        at in any::<prop::sample::Index>(),
    ) {
        let Some((candidate, rest)) = input.pending.split_last() else { return Ok(()) };
        let mut elsewhere = rest.to_vec();
        elsewhere.insert(at.index(rest.len() + 1), candidate.clone());
        let without = Input { pending: rest.to_vec(), ..input.clone() };
        let listed_elsewhere = Input { pending: elsewhere, ..input.clone() };
        prop_assert_eq!(dry_run(&without, candidate), plan(&listed_elsewhere));
    }
}
