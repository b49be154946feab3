//! Property tests of the victim choice against a brute-force oracle: on small random inputs,
//! every subset of the eligible deployments is tried, those that make room and are minimal are
//! kept, and the best by the order of `preemption`'s doc, read literally, must be what the plan
//! evicts.

use std::cmp::Reverse;
use std::collections::HashSet;

use proptest::prelude::*;

use super::fit::amounts;
use super::pass::{Candidate, Pass};
use super::preemption::{sum_from_here, victims_among, Slot, EXACT_UP_TO};
use super::proptests::{old_enough, scenario};
use super::queue::queue_key;
use super::tests::{ago, cluster, id, t0, SOMEONE};
use super::*;

/// Keep order, literally: highest priority, then earliest started, then lowest id.
fn keep_key(r: &Running) -> (Reverse<i32>, DateTime<Utc>, Uuid) {
    (Reverse(r.priority), r.started_at, r.id)
}

/// How a possible set ranks: the priority of its most important victim, then how many.
fn tier_and_count(set: &[&Running]) -> (i32, usize) {
    let top = set.iter().map(|r| r.priority).max().unwrap_or(i32::MIN);
    (top, set.len())
}

/// True if `a` is better than `b`, by the order of `preemption`'s doc.
fn better(a: &[&Running], b: &[&Running]) -> bool {
    let (ka, kb) = (tier_and_count(a), tier_and_count(b));
    if ka != kb {
        return ka < kb;
    }
    // Rule 3: of those in exactly one of the two, the first in keep order is not in the better.
    let ids = |set: &[&Running]| set.iter().map(|r| r.id).collect::<HashSet<_>>();
    let (ia, ib) = (ids(a), ids(b));
    let first = a
        .iter()
        .chain(b)
        .filter(|r| ia.contains(&r.id) != ib.contains(&r.id))
        .min_by_key(|r| keep_key(r));
    first.is_some_and(|r| ib.contains(&r.id))
}

/// The oracle: of every subset of `eligible` that leaves room for `need` next to `free` and is
/// minimal (no victim can be spared), the best; None if none leaves room. Least important first,
/// as a plan lists them.
fn best_set(eligible: &[&Running], free: Resources, need: Resources) -> Option<Vec<Uuid>> {
    assert!(eligible.len() <= 16, "the oracle tries every subset");
    let mut best: Option<Vec<&Running>> = None;
    for mask in 0u32..1 << eligible.len() {
        let set: Vec<&Running> = (0..eligible.len())
            .filter(|&i| mask >> i & 1 == 1)
            .map(|i| eligible[i])
            .collect();
        let room = free + set.iter().map(|r| r.resources).sum();
        if !need.fits_in(&room) {
            continue;
        }
        if set.iter().any(|r| need.fits_in(&(room - r.resources))) {
            continue; // not minimal
        }
        if best.as_ref().is_none_or(|b| better(&set, b)) {
            best = Some(set);
        }
    }
    let mut best = best?;
    best.sort_by_key(|r| Reverse(keep_key(r)));
    Some(best.iter().map(|r| r.id).collect())
}

/// The oracle's view of one cluster in `input` for `candidate`: its free capacity and the
/// deployments the candidate may preempt there, read from the input literally.
fn cluster_state<'a>(
    input: &'a Input,
    cluster: &Cluster,
    priority: i32,
    evicted: &HashSet<Uuid>,
    started: Resources,
) -> (Resources, Vec<&'a Running>) {
    let on: Vec<&Running> = input
        .running
        .iter()
        .filter(|r| r.cluster_id == cluster.id && !evicted.contains(&r.id))
        .collect();
    let free = cluster.capacity - on.iter().map(|r| r.resources).sum() - started;
    let eligible = on
        .into_iter()
        .filter(|r| r.priority < priority && old_enough(input, r))
        .collect();
    (free, eligible)
}

/// Small amounts in whole units (cores, GiB, GPUs), often zero.
fn amount(max: i64) -> impl Strategy<Value = i64> {
    prop_oneof![Just(0), 0..=max]
}

fn resources(max: (i64, i64, i64)) -> impl Strategy<Value = Resources> {
    (amount(max.0), amount(max.1), amount(max.2))
        .prop_map(|(c, g, n)| Resources::new(c * 1000, g * 1000, n))
}

/// One to three clusters, packed with up to 12 running deployments of few priorities and
/// sizes (those that fit of 24 drawn), and one candidate, pinned (`pinned`) to the first or
/// auto-placed.
fn small_input(clusters: usize, pinned: bool) -> impl Strategy<Value = Input> {
    // Few shapes half the time: equal deployments, so that several would do alone.
    let few_shapes = prop::sample::select(vec![(1, 1, 0), (2, 2, 0), (2, 1, 1), (3, 3, 1)])
        .prop_map(|(c, g, n)| Resources::new(c * 1000, g * 1000, n));
    let shape = prop_oneof![resources((4, 4, 2)), few_shapes];
    let running = prop::collection::vec(
        (
            0..clusters,
            // Often one priority: every choice is then within the tier.
            prop_oneof![Just(1i32), 1..=3i32],
            shape,
            0i64..1_000,
            any::<u8>(),
        ),
        0..=24,
    );
    let capacity = (2..=10i64, 2..=10i64, 0..=4i64)
        .prop_map(|(c, g, n)| Resources::new(c * 1000, g * 1000, n));
    (
        prop::collection::vec(capacity, clusters),
        running,
        // Mostly above every running deployment; a share of the first cluster's capacity.
        (
            prop_oneof![3 => Just(4i32), 1 => 1..=5i32],
            [0..=100i64, 0..=100, 0..=100],
        ),
        prop_oneof![3 => Just(0i64), 1 => 1..=600i64],
        (any::<bool>(), any::<bool>()),
    )
        .prop_map(
            move |(capacities, running, (priority, shares), min_runtime, modes)| {
                // All of one priority; the larger the older (so the reprieve keeps them).
                let (one_tier, large_old) = modes;
                let [c, g, n] = [0, 1, 2].map(|r| amounts(capacities[0])[r] * shares[r] / 100);
                let need = Resources::new(c, g, n);
                let clusters: Vec<Cluster> = capacities
                    .into_iter()
                    .enumerate()
                    .map(|(i, capacity)| cluster(1 + i as u128, capacity))
                    .collect();
                let mut free: Vec<Resources> = clusters.iter().map(|c| c.capacity).collect();
                let mut runs = Vec::new();
                for (i, (on, priority, resources, age, salt)) in running.into_iter().enumerate() {
                    if !resources.fits_in(&free[on]) || runs.len() == 12 {
                        continue;
                    }
                    free[on] -= resources;
                    // Few distinct ages: ties on start time too.
                    let size: i64 = amounts(resources).iter().sum();
                    let started = if large_old {
                        size / 100 + age % 2
                    } else {
                        age % 4 * 300
                    };
                    runs.push(Running {
                        // Ids out of keep order, so that the id tie-break is exercised.
                        id: id(u128::from(salt) << 8 | 0x100_0000 | i as u128),
                        cluster_id: clusters[on].id,
                        priority: if one_tier { 1 } else { priority },
                        resources,
                        started_at: ago(started),
                        created_at: ago(started + 60),
                        requested_cluster_id: None,
                        submitter: SOMEONE,
                    });
                }
                let candidate = Pending {
                    id: id(0xca),
                    cluster_id: pinned.then(|| clusters[0].id),
                    priority,
                    resources: need,
                    created_at: ago(5),
                    dependencies: DependencyState::Satisfied,
                    submitter: SOMEONE,
                    queued_at: ago(5),
                };
                Input {
                    clusters,
                    running: runs,
                    pending: vec![candidate],
                    now: t0(),
                    min_runtime_seconds: min_runtime,
                    fairness: Fairness::default(),
                }
            },
        )
}

/// The victims the plan evicted to start the candidate, and where; None if it did not start.
fn outcome(plan: &Plan) -> Option<(Uuid, Vec<Uuid>)> {
    let start = plan.starts.first()?;
    Some((start.cluster_id, start.preempted.clone()))
}

proptest! {
    // A few percent of the pure search's cases need nothing: rejected, at any case count.
    #![proptest_config(ProptestConfig {
        max_global_rejects: 1 << 20,
        ..ProptestConfig::with_cases(4_000)
    })]

    #[test]
    fn on_one_cluster_the_plan_evicts_the_oracles_best_set(input in small_input(1, true)) {
        let candidate = &input.pending[0];
        let (free, eligible) = cluster_state(
            &input,
            &input.clusters[0],
            candidate.priority,
            &HashSet::new(),
            Resources::ZERO,
        );
        let expected = if candidate.resources.fits_in(&free) {
            Some((input.clusters[0].id, vec![]))
        } else {
            best_set(&eligible, free, candidate.resources).map(|set| (input.clusters[0].id, set))
        };
        let plan = plan(&input);
        prop_assert_eq!(outcome(&plan), expected);
    }

    #[test]
    fn auto_placement_evicts_the_oracles_best_set_on_the_cheapest_cluster(
        input in (2..=3usize).prop_flat_map(|clusters| small_input(clusters, false)),
    ) {
        check_auto(&input)?;
    }

    /// Every candidate of a pass, at every step (after earlier starts and evictions), on
    /// every cluster: what `victims_on` would evict is the oracle's best set.
    #[test]
    fn every_candidate_of_a_pass_gets_the_oracles_best_set_on_every_cluster(
        input in scenario(),
    ) {
        let mut queue: Vec<&Pending> = input.pending.iter().collect();
        queue.sort_by_key(|p| queue_key(p.priority, p.created_at, p.id));
        let mut pass = Pass::new(&input, true);
        let mut clusters: Vec<&Cluster> = input.clusters.iter().collect();
        clusters.sort_by_key(|c| c.id);
        for p in queue {
            let candidate = Candidate {
                id: p.id,
                priority: p.priority,
                cluster_id: p.cluster_id,
                resources: p.resources,
                preempted_by: None,
                submitter: p.submitter,
            };
            pass.protect_down_to(p.priority);
            let evicted: HashSet<Uuid> =
                pass.plan.preemptions.iter().map(|v| v.victim_id).collect();
            for (c, cluster) in clusters.iter().enumerate() {
                let started = pass
                    .plan
                    .starts
                    .iter()
                    .filter(|s| s.cluster_id == cluster.id)
                    .map(|s| s.resources)
                    .sum();
                let (free, eligible) =
                    cluster_state(&input, cluster, p.priority, &evicted, started);
                prop_assume!(eligible.len() <= 16);
                let expected = if p.resources.fits_in(&free) {
                    Some(vec![])
                } else {
                    best_set(&eligible, free, p.resources)
                };
                let by_id = |i: &usize| pass.preemptible[*i].running.id;
                let got = pass.victims_on(c, &candidate).map(|v| v.iter().map(by_id).collect());
                prop_assert_eq!(got, expected, "cluster {}", c);
            }
            pass.schedule(candidate);
        }
    }

    /// The pure search on longer lists, of one tier or several: exact up to `EXACT_UP_TO`;
    /// beyond (forced here with a lower limit), a minimal set of the lowest tier, no larger
    /// than the reprieve's nor than k₁ + k₂ + k₃, and the fewest when one resource is short.
    #[test]
    fn past_the_exact_limit_the_set_is_minimal_and_within_the_bound(
        items in prop::collection::vec((1..=3i32, resources((4, 4, 2))), 1..=12),
        free in resources((2, 2, 1)),
        shares in (0..=100i64, 0..=100i64, 0..=100i64),
        limit in 0..=4usize,
    ) {
        let mut items = items;
        items.sort_by_key(|&(priority, _)| Reverse(priority));
        let mut slots: Vec<Slot> = items
            .iter()
            .enumerate()
            .map(|(index, &(priority, resources))| Slot {
                priority,
                resources,
                from_here: Resources::ZERO,
                index,
            })
            .collect();
        sum_from_here(&mut slots);
        // Short of a share of what they all hold (evicting all of them makes room).
        let total: Resources = items.iter().map(|&(_, r)| r).sum();
        let share = |total: i64, percent: i64| (total * percent + 99) / 100;
        let need = free + Resources::new(
            share(total.cpu_millis, shares.0),
            share(total.ram_mgib, shares.1),
            share(total.gpu, shares.2),
        );
        prop_assume!(!need.fits_in(&free));
        let choose = |limit: usize| {
            let mut set = Vec::new();
            victims_among(&slots, free, need, limit, |slot| set.push(slot.index));
            set
        };
        // The oracle, on stand-ins for the slots: priority, and keep order by position.
        let running: Vec<Running> = items
            .iter()
            .enumerate()
            .map(|(i, &(priority, resources))| Running {
                id: id(i as u128),
                cluster_id: id(1),
                priority,
                resources,
                started_at: t0(),
                created_at: t0(),
                requested_cluster_id: None,
                submitter: SOMEONE,
            })
            .collect();
        let eligible: Vec<&Running> = running.iter().collect();
        let best: Vec<usize> = best_set(&eligible, free, need)
            .unwrap()
            .iter()
            .rev()
            .map(|v| v.as_u128() as usize)
            .collect();
        prop_assert_eq!(choose(EXACT_UP_TO), best.clone());

        let set = choose(limit);
        let held = |set: &[usize]| free + set.iter().map(|&i| items[i].1).sum();
        prop_assert!(need.fits_in(&held(&set)), "does not make room");
        for &v in &set {
            let without: Vec<usize> = set.iter().copied().filter(|&i| i != v).collect();
            prop_assert!(!need.fits_in(&held(&without)), "{} could be spared", v);
        }
        let top = |set: &[usize]| set.iter().map(|&i| items[i].0).max();
        prop_assert_eq!(top(&set), top(&best));
        // The reprieve's count, and k₁ + k₂ + k₃.
        let first = slots.partition_point(|s| need.fits_in(&(free + s.from_here - s.resources)));
        let mut room = free + slots[first].from_here;
        let mut reprieved = 0;
        for s in &slots[first..] {
            if need.fits_in(&(room - s.resources)) {
                room -= s.resources;
            } else {
                reprieved += 1;
            }
        }
        let tier_start = slots.partition_point(|s| s.priority > slots[first].priority);
        let short = amounts(need - free);
        let mut bound = 0;
        let mut short_of = 0;
        for (r, &short) in short.iter().enumerate() {
            if short <= 0 {
                continue;
            }
            short_of += 1;
            let mut amounts: Vec<i64> = slots[tier_start..]
                .iter()
                .map(|s| amounts(s.resources)[r])
                .collect();
            amounts.sort_by_key(|&a| Reverse(a));
            let mut covered = 0;
            let k = amounts.iter().take_while(|&&a| {
                let before = covered;
                covered += a;
                before < short
            });
            bound += k.count();
        }
        prop_assert!(set.len() <= reprieved, "{} victims, the reprieve {}", set.len(), reprieved);
        prop_assert!(set.len() <= bound, "{} victims, bound {}", set.len(), bound);
        if short_of == 1 {
            prop_assert_eq!(set.len(), best.len());
        }
    }
}

/// Auto placement: in free capacity if it fits anywhere; else each cluster's best set by the
/// oracle, and the cluster whose set is cheapest by priority of the most important victim,
/// count, priority sum, then id.
fn check_auto(input: &Input) -> Result<(), TestCaseError> {
    let candidate = &input.pending[0];
    let mut clusters: Vec<&Cluster> = input.clusters.iter().collect();
    clusters.sort_by_key(|c| c.id);
    let mut fits_free = false;
    // (priority of the most important victim, count, priority sum, cluster id), and the set.
    type Cost = (i32, usize, i64, Uuid);
    let mut cheapest: Option<(Cost, Vec<Uuid>)> = None;
    for cluster in clusters {
        let (free, eligible) = cluster_state(
            input,
            cluster,
            candidate.priority,
            &HashSet::new(),
            Resources::ZERO,
        );
        if candidate.resources.fits_in(&free) {
            fits_free = true;
            continue;
        }
        let Some(set) = best_set(&eligible, free, candidate.resources) else {
            continue;
        };
        let priorities: Vec<i32> = set
            .iter()
            .map(|v| input.running.iter().find(|r| r.id == *v).unwrap().priority)
            .collect();
        let cost = (
            *priorities.iter().max().unwrap(),
            set.len(),
            priorities.iter().map(|&p| i64::from(p)).sum(),
            cluster.id,
        );
        if cheapest.as_ref().is_none_or(|(best, _)| cost < *best) {
            cheapest = Some((cost, set));
        }
    }
    let got = outcome(&plan(input));
    if fits_free {
        let (_, victims) = got.expect("started in free capacity");
        prop_assert!(victims.is_empty());
    } else {
        let expected = cheapest.map(|((.., cluster), set)| (cluster, set));
        prop_assert_eq!(got, expected);
    }
    Ok(())
}
