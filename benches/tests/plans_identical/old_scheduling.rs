//! A copy of shared/src/scheduling.rs as of 9408484, before it was split into a module folder,
//! for `plans_identical` only. Verbatim but for: the public types are `shared::scheduling`'s
//! (re-exported, so that both sides produce the same `Plan`), `ReasonAsBefore` is the old
//! `Reason` under another name (to serialize reasons as the old code did), `crate::resources`
//! is `shared::resources`, and the unit tests are left out.
//!
//! The pure scheduling algorithm (DESIGN.md §3): from clusters, running and pending deployments,
//! decide what starts where, what gets preempted, and why everything else keeps waiting.
//!
//! No I/O, no clock, no randomness: the caller passes `now`, every tie is broken by id, and the
//! same input gives the same plan whatever the order of the input vectors.

use std::cmp::Reverse;
use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, BinaryHeap, HashMap};

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Serialize, Serializer};
use uuid::Uuid;

use shared::resources::Resources;

pub use shared::scheduling::{
    Cluster, DependencyFailure, DependencyState, Input, Pending, Plan, Preemption, Reason,
    ReasonCode, Running, Start, Waiting,
};

/// The old `Reason`, field for field, with its serde attributes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReasonAsBefore {
    pub code: ReasonCode,
    pub message: String,
    /// What is missing against the free capacity of the cluster the message names.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "serialize_shortfall"
    )]
    pub shortfall: Option<Resources>,
}

/// The API's units for a shortfall: `{"cpu_cores": 1.5, "ram_gib": 4, "gpu_count": 2}`.
#[derive(Serialize)]
struct ShortfallDto {
    cpu_cores: f64,
    ram_gib: f64,
    gpu_count: i64,
}

fn serialize_shortfall<S: Serializer>(
    shortfall: &Option<Resources>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    shortfall
        .map(|r| ShortfallDto {
            cpu_cores: r.cpu_millis as f64 / 1000.0,
            ram_gib: r.ram_mgib as f64 / 1000.0,
            gpu_count: r.gpu,
        })
        .serialize(serializer)
}

/// Decides one scheduling pass over `input`.
pub fn plan(input: &Input) -> Plan {
    run(input, true)
}

/// What would happen if `candidate` were submitted now: the plan with it added to the queue.
pub fn dry_run(input: &Input, candidate: &Pending) -> Plan {
    let mut input = input.clone();
    input.pending.push(candidate.clone());
    plan(&input)
}

/// `memoize` is off only in tests, to show the memo changes no decision.
fn run(input: &Input, memoize: bool) -> Plan {
    let failed_dependency = failed_dependencies(&input.pending);
    let mut queue: Vec<(QueueKey, usize)> = input
        .pending
        .iter()
        .enumerate()
        .map(|(i, p)| (queue_key(p.priority, p.created_at, p.id), i))
        .collect();
    queue.sort_unstable();
    // The deployments that simply get placed, found in input order, so that gathering them in
    // queue order below is a loop of plain reads.
    let ready: Vec<bool> = input
        .pending
        .iter()
        .map(|p| {
            matches!(p.dependencies, DependencyState::Satisfied)
                && !failed_dependency.contains_key(&p.id)
        })
        .collect();
    // Read in queue order, the pending deployments are all over memory: gathered first, in a
    // loop whose reads do not wait on one another, the cache misses overlap.
    let turns: Vec<Turn> = queue
        .iter()
        .map(|&(_, i)| {
            let pending = &input.pending[i];
            if ready[i] {
                Turn::Schedule(Candidate::new(pending))
            } else {
                Turn::of(pending, &failed_dependency)
            }
        })
        .collect();
    let mut queue = queue.iter().map(|(key, _)| key).zip(turns).peekable();
    let mut pass = Pass::new(input, memoize);
    // Grown by doubling, these were copied over and over (and their pages faulted in twice).
    pass.plan.waiting.reserve(input.pending.len());
    pass.unplaced.reserve(input.pending.len());

    loop {
        // Requeued victims wait in their own heap; whichever comes first in queue order goes next.
        let victim_next = match (queue.peek(), pass.requeued.peek()) {
            (None, None) => break,
            (Some((pending_key, _)), Some(Reverse((victim_key, _)))) => victim_key < *pending_key,
            (None, Some(_)) => true,
            (Some(_), None) => false,
        };
        if victim_next {
            let Some(Reverse((_, victim))) = pass.requeued.pop() else {
                break;
            };
            pass.schedule(pass.victims[victim]);
            continue;
        }
        let Some((_, turn)) = queue.next() else { break };
        match turn {
            Turn::Fail(failure) => pass.plan.dependency_failures.push(failure),
            Turn::Wait { id, unfinished } => {
                let reason = Reason {
                    code: ReasonCode::WaitingForDependencies,
                    message: waiting_message(unfinished),
                    shortfall: None,
                };
                pass.plan.waiting.push(Waiting {
                    deployment_id: id,
                    reason,
                });
            }
            Turn::Schedule(candidate) => pass.schedule(candidate),
        }
    }
    pass.finish()
}

/// What a pending deployment's turn in the queue does.
enum Turn {
    Fail(DependencyFailure),
    /// Waits for this many unfinished dependencies.
    Wait {
        id: Uuid,
        unfinished: usize,
    },
    Schedule(Candidate),
}

impl Turn {
    fn of(pending: &Pending, failed_dependency: &FastMap<Uuid, Uuid>) -> Turn {
        // Every `Failed` one is in `failed_dependency`, with those failed through it.
        if let Some(&dependency_id) = failed_dependency.get(&pending.id) {
            Turn::Fail(DependencyFailure {
                deployment_id: pending.id,
                dependency_id,
            })
        } else if let DependencyState::Waiting { unfinished } = &pending.dependencies {
            Turn::Wait {
                id: pending.id,
                unfinished: unfinished.len(),
            }
        } else {
            Turn::Schedule(Candidate::new(pending))
        }
    }
}

/// Queue order: higher priority first, then older submission, then lower id. Packed into two
/// integers, so sorting 100,000 of them compares fast: the first holds the priority (bits
/// flipped, so higher sorts first), then the submission time as seconds and nanoseconds (which
/// order like the `DateTime`); the second is the id as a number (it sorts like the `Uuid`).
type QueueKey = (u128, u128);

fn queue_key(priority: i32, created_at: DateTime<Utc>, id: Uuid) -> QueueKey {
    let priority = !(priority as u32 ^ (1 << 31));
    let seconds = created_at.timestamp() as u64 ^ (1 << 63);
    let nanos = created_at.timestamp_subsec_nanos();
    let when = (u128::from(seconds) << 32) | u128::from(nanos);
    ((u128::from(priority) << 96) | when, id.as_u128())
}

/// Pending deployments that fail in this pass, each with the dependency that failed it: those
/// already `Failed`, and, transitively, those waiting on one of them.
fn failed_dependencies(pending: &[Pending]) -> FastMap<Uuid, Uuid> {
    let mut waiting_on: FastMap<Uuid, Vec<&Pending>> = FastMap::default();
    let mut failed = FastMap::default();
    let mut newly_failed = Vec::new();
    for p in pending {
        match &p.dependencies {
            DependencyState::Failed { dependency } => {
                failed.insert(p.id, *dependency);
                newly_failed.push(p.id);
            }
            DependencyState::Waiting { unfinished } => {
                for dependency in unfinished {
                    waiting_on.entry(*dependency).or_default().push(p);
                }
            }
            DependencyState::Satisfied => {}
        }
    }
    let mut failed_transitively = Vec::new();
    while let Some(id) = newly_failed.pop() {
        for dependent in waiting_on.get(&id).into_iter().flatten() {
            if let Entry::Vacant(entry) = failed.entry(dependent.id) {
                entry.insert(id);
                failed_transitively.push(*dependent);
                newly_failed.push(dependent.id);
            }
        }
    }
    // Discovery order follows input order; name the lowest failed id so shuffling changes nothing.
    for dependent in failed_transitively {
        if let DependencyState::Waiting { unfinished } = &dependent.dependencies {
            let culprit = unfinished.iter().filter(|d| failed.contains_key(d)).min();
            if let Some(&culprit) = culprit {
                failed.insert(dependent.id, culprit);
            }
        }
    }
    failed
}

fn waiting_message(unfinished: usize) -> String {
    match unfinished {
        1 => "waiting for 1 unfinished dependency".to_string(),
        n => format!("waiting for {n} unfinished dependencies"),
    }
}

/// A deployment to place: a pending one whose dependencies are satisfied, or a requeued victim.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    id: Uuid,
    priority: i32,
    cluster_id: Option<Uuid>,
    resources: Resources,
    /// Set for a victim requeued in this pass.
    preempted_by: Option<Uuid>,
}

/// An entry of `Pass::preemptible_on`, with what the preemption search reads, inline: the
/// search visits every cluster for every candidate that fits nowhere.
#[derive(Debug, Clone, Copy)]
struct Slot {
    priority: i32,
    resources: Resources,
    /// The resources of this deployment and of every less important one after it.
    from_here: Resources,
    /// Index into `Pass::preemptible`.
    index: usize,
}

/// Fills in `Slot::from_here` along a cluster's list.
fn sum_from_here(slots: &mut [Slot]) {
    let mut sum = Resources::ZERO;
    for slot in slots.iter_mut().rev() {
        sum += slot.resources;
        slot.from_here = sum;
    }
}

impl Candidate {
    fn new(pending: &Pending) -> Self {
        Candidate {
            id: pending.id,
            priority: pending.priority,
            cluster_id: pending.cluster_id,
            resources: pending.resources,
            preempted_by: None,
        }
    }
}

/// A running deployment that may be preempted in this pass (old enough, on a known cluster).
struct Preemptible<'a> {
    running: &'a Running,
    cluster: usize,
    evicted: bool,
}

/// The state of one pass. Clusters are indexed by their position in id order, so "lower index"
/// is "lower id" in every tie-break.
struct Pass<'a> {
    /// Sorted, so a cluster's index is its rank by id.
    cluster_ids: Vec<Uuid>,
    capacity: Vec<Resources>,
    free: Vec<Resources>,
    /// Per cluster, the sum of what the current candidate may preempt (see `protect_down_to`).
    reclaimable: Vec<Resources>,
    /// Per cluster, the preemptible deployments still running there, in keep order: most
    /// important (highest priority, then oldest, then lowest id) first.
    preemptible_on: Vec<Vec<Slot>>,
    /// The clusters with something preemptible, by the priority of the last of their
    /// `preemptible_on`, then by index.
    by_least_important: BTreeSet<(i32, usize)>,
    /// No running deployment asks for a negative amount, so the sums in `Slot::from_here` only
    /// shrink along a list, and `highest_victim` may search them by bisection.
    sums_shrink: bool,
    preemptible: Vec<Preemptible<'a>>,
    /// Indices into `preemptible`, highest priority first, and how many of them are protected.
    by_priority: Vec<usize>,
    protected: usize,
    /// Per cluster, how many of `preemptible_on` are protected: the eligible are the rest.
    protected_on: Vec<usize>,
    scores: Scores,
    /// The smallest requests an auto placement found no room for, even by preemption. A request
    /// at least as large on every resource finds none either, for the rest of the pass: on every
    /// cluster, free capacity is at most what preemption could make free (free + reclaimable),
    /// and that only shrinks as the pass goes on (starts take from it, protection takes from it,
    /// evictions move it from one to the other).
    no_room: Vec<Resources>,
    memoize: bool,
    /// Evicted deployments, requeued: `requeued` holds their queue keys, lowest on top, with
    /// their indices here.
    victims: Vec<Candidate>,
    requeued: BinaryHeap<Reverse<(QueueKey, usize)>>,
    /// Candidates that cannot start, by their index in `plan.waiting`; their reasons are
    /// written by `finish`, against the free capacity the plan leaves.
    unplaced: Vec<(usize, Candidate, Target)>,
    plan: Plan,
}

/// Where a candidate that cannot start was to go.
#[derive(Debug, Clone, Copy)]
enum Target {
    Cluster(usize),
    Anywhere,
    /// A requested cluster that is not in the input.
    Unknown,
}

impl<'a> Pass<'a> {
    fn new(input: &'a Input, memoize: bool) -> Self {
        let mut clusters: Vec<&Cluster> = input.clusters.iter().collect();
        clusters.sort_by_key(|c| c.id);
        let cluster_ids: Vec<Uuid> = clusters.iter().map(|c| c.id).collect();
        let capacity: Vec<Resources> = clusters.iter().map(|c| c.capacity).collect();
        let mut free = capacity.clone();
        let mut reclaimable = vec![Resources::ZERO; clusters.len()];
        let mut preemptible_on = vec![Vec::new(); clusters.len()];
        let mut preemptible = Vec::new();

        // A missing or out-of-range minimum runtime protects everyone; 0 or less protects no one.
        let min_runtime = TimeDelta::try_seconds(input.min_runtime_seconds.max(0));
        for running in &input.running {
            let Ok(cluster) = cluster_ids.binary_search(&running.cluster_id) else {
                continue;
            };
            free[cluster] -= running.resources;
            let old_enough = match min_runtime {
                Some(min) if min.is_zero() => true,
                Some(min) => input.now.signed_duration_since(running.started_at) >= min,
                None => false,
            };
            if old_enough {
                reclaimable[cluster] += running.resources;
                preemptible_on[cluster].push(preemptible.len());
                preemptible.push(Preemptible {
                    running,
                    cluster,
                    evicted: false,
                });
            }
        }
        let preemptible_on: Vec<Vec<Slot>> = preemptible_on
            .into_iter()
            .map(|on_cluster: Vec<usize>| {
                // Keep order is queue order with the start time for the submission time. The
                // index comes last, so that ties keep input order.
                let mut keyed: Vec<(QueueKey, usize)> = on_cluster
                    .into_iter()
                    .map(|i| {
                        let r: &Running = preemptible[i].running;
                        (queue_key(r.priority, r.started_at, r.id), i)
                    })
                    .collect();
                keyed.sort_unstable();
                let mut slots: Vec<Slot> = keyed
                    .into_iter()
                    .map(|(_, index)| Slot {
                        priority: preemptible[index].running.priority,
                        resources: preemptible[index].running.resources,
                        from_here: Resources::ZERO,
                        index,
                    })
                    .collect();
                sum_from_here(&mut slots);
                slots
            })
            .collect();
        let by_least_important = preemptible_on
            .iter()
            .enumerate()
            .filter_map(|(cluster, slots)| Some((slots.last()?.priority, cluster)))
            .collect();
        let sums_shrink = preemptible
            .iter()
            .all(|p| Resources::ZERO.fits_in(&p.running.resources));
        let mut by_priority: Vec<(Reverse<i32>, usize)> = preemptible
            .iter()
            .enumerate()
            .map(|(i, p)| (Reverse(p.running.priority), i))
            .collect();
        by_priority.sort_unstable();
        let by_priority = by_priority.into_iter().map(|(_, i)| i).collect();

        Pass {
            scores: Scores::new(&capacity, &free, memoize),
            protected_on: vec![0; capacity.len()],
            cluster_ids,
            capacity,
            free,
            reclaimable,
            preemptible_on,
            by_least_important,
            sums_shrink,
            preemptible,
            by_priority,
            protected: 0,
            no_room: Vec::new(),
            memoize,
            victims: Vec::new(),
            requeued: BinaryHeap::new(),
            unplaced: Vec::new(),
            plan: Plan::default(),
        }
    }

    fn schedule(&mut self, candidate: Candidate) {
        let placement = match candidate.cluster_id {
            Some(id) => match self.cluster_ids.binary_search(&id) {
                Ok(cluster) => self.place_on(cluster, &candidate),
                Err(_) => Err(Target::Unknown),
            },
            None => self.place_anywhere(&candidate),
        };
        match placement {
            Ok((cluster, victims)) => self.start(candidate, cluster, victims),
            Err(target) => {
                self.unplaced
                    .push((self.plan.waiting.len(), candidate, target));
                // A placeholder: `finish` writes the reason once the plan is complete.
                let reason = Reason {
                    code: ReasonCode::InsufficientResources,
                    message: String::new(),
                    shortfall: None,
                };
                self.plan.waiting.push(Waiting {
                    deployment_id: candidate.id,
                    reason,
                });
            }
        }
    }

    /// Placement on the requested cluster: in its free capacity, else by preemption there.
    fn place_on(&mut self, cluster: usize, candidate: &Candidate) -> Placement {
        if candidate.resources.fits_in(&self.free[cluster]) {
            return Ok((cluster, Vec::new()));
        }
        self.protect_down_to(candidate.priority);
        match self.victims_on(cluster, candidate) {
            Some(victims) => Ok((cluster, victims)),
            None => Err(Target::Cluster(cluster)),
        }
    }

    /// Auto placement: best fit in free capacity anywhere, else the cheapest preemption.
    fn place_anywhere(&mut self, candidate: &Candidate) -> Placement {
        let need = candidate.resources;
        if self.no_room.iter().any(|smaller| smaller.fits_in(&need)) {
            return Err(Target::Anywhere);
        }
        // Checked again in integers: the float scores could only err beyond 2^53.
        let best_fit = self
            .scores
            .best_fit(need)
            .filter(|&c| need.fits_in(&self.free[c]));
        if let Some(cluster) = best_fit {
            return Ok((cluster, Vec::new()));
        }
        self.protect_down_to(candidate.priority);
        if let Some(preemption) = self.cheapest_preemption(candidate) {
            return Ok(preemption);
        }
        if self.memoize {
            self.no_room.retain(|larger| !need.fits_in(larger));
            // Bounded, so checking it stays cheaper than the search it saves.
            if self.no_room.len() < 64 {
                self.no_room.push(need);
            }
        }
        Err(Target::Anywhere)
    }

    /// Auto placement by preemption: the cluster whose victims matter least — lowest highest
    /// priority, then fewest, then lowest priority sum; tie → lower id.
    fn cheapest_preemption(&self, candidate: &Candidate) -> Option<(usize, Vec<usize>)> {
        if self.protected == self.by_priority.len() {
            return None; // nothing left that this or any later candidate may preempt
        }
        // The highest victim priority decides first, and `highest_victim` finds it without
        // choosing the whole victim set, so that is chosen (for the count and the priority sum)
        // only between clusters tied on it. Clusters come least important deployment first: a
        // victim is never less important than that, so once it exceeds the best highest victim
        // priority found, no cluster left can do better.
        let mut cheapest: Option<Cheapest> = None;
        for &(least, cluster) in &self.by_least_important {
            if cheapest.is_some_and(|best| least > best.top) {
                break;
            }
            if !candidate
                .resources
                .fits_in(&(self.free[cluster] + self.reclaimable[cluster]))
            {
                continue; // cheap reject: not even evicting everything eligible would do
            }
            let Some(top) = self.highest_victim(cluster, candidate) else {
                continue;
            };
            cheapest = match cheapest {
                Some(best) if top > best.top => Some(best),
                Some(mut best) if top == best.top => {
                    let best_rest = *best
                        .rest
                        .get_or_insert_with(|| self.victim_count_and_sum(best.cluster, candidate));
                    let rest = self.victim_count_and_sum(cluster, candidate);
                    // Not visited in id order: ties go to the lower id explicitly.
                    Some(if (rest, cluster) < (best_rest, best.cluster) {
                        Cheapest {
                            top,
                            cluster,
                            rest: Some(rest),
                        }
                    } else {
                        best
                    })
                }
                _ => Some(Cheapest {
                    top,
                    cluster,
                    rest: None,
                }),
            };
        }
        let cluster = cheapest?.cluster;
        Some((cluster, self.victims_on(cluster, candidate)?))
    }

    /// The victims on `cluster`, least important first, or None if preemption cannot make room.
    fn victims_on(&self, cluster: usize, candidate: &Candidate) -> Option<Vec<usize>> {
        let mut victims = Vec::new();
        let possible = self.choose_victims(cluster, candidate, |slot| victims.push(slot.index));
        victims.reverse();
        possible.then_some(victims)
    }

    /// How many victims `cluster` would take, and the sum of their priorities (it can make room).
    fn victim_count_and_sum(&self, cluster: usize, candidate: &Candidate) -> (usize, i64) {
        let mut cost = (0, 0);
        self.choose_victims(cluster, candidate, |slot| {
            cost = (cost.0 + 1, cost.1 + i64::from(slot.priority));
        });
        cost
    }

    /// The eligible deployments on `cluster`: those of strictly lower priority than the
    /// candidate, once `protect_down_to` has protected the others. The list is in keep order,
    /// so they are its tail; it starts at the index returned. Deployments started earlier in
    /// this pass are not listed: their priority is at least the candidate's, so they could
    /// never be eligible anyway.
    fn eligible_from(&self, cluster: usize, candidate: &Candidate) -> usize {
        let eligible = self.protected_on[cluster];
        debug_assert_eq!(
            eligible,
            self.preemptible_on[cluster].partition_point(|s| s.priority >= candidate.priority)
        );
        eligible
    }

    /// Room on `cluster` if every deployment from `from` on were evicted.
    fn room_evicting_from(&self, cluster: usize, from: usize) -> Resources {
        let slots = &self.preemptible_on[cluster];
        self.free[cluster]
            + slots
                .get(from)
                .map_or(Resources::ZERO, |slot| slot.from_here)
    }

    /// The priority of the most important victim `choose_victims` would take on `cluster`
    /// (i32::MIN if it needs none), or None if preemption cannot make room there.
    fn highest_victim(&self, cluster: usize, candidate: &Candidate) -> Option<i32> {
        if !self.sums_shrink {
            let mut highest = i32::MIN;
            let possible = self.choose_victims(cluster, candidate, |slot| {
                highest = highest.max(slot.priority)
            });
            return possible.then_some(highest);
        }
        let need = candidate.resources;
        let eligible = self.eligible_from(cluster, candidate);
        if !need.fits_in(&self.room_evicting_from(cluster, eligible)) {
            return None;
        }
        // Until its first victim, `choose_victims` keeps each deployment that leaves room when
        // every one after it goes; that room only shrinks along the list, so the first victim
        // is where it first becomes too small.
        let free = self.free[cluster];
        let slots = &self.preemptible_on[cluster][eligible..];
        let kept =
            slots.partition_point(|slot| need.fits_in(&(free + slot.from_here - slot.resources)));
        Some(slots.get(kept).map_or(i32::MIN, |slot| slot.priority))
    }

    /// The minimal victim set on `cluster`, Kubernetes-style: evict everything the candidate may
    /// preempt, then keep back as many as still let it fit, most important first. Every victim
    /// is necessary: keeping it as well would leave too little room. Calls `victim` for each,
    /// most important first; false if evicting everything eligible still leaves too little.
    fn choose_victims(
        &self,
        cluster: usize,
        candidate: &Candidate,
        mut victim: impl FnMut(&Slot),
    ) -> bool {
        let need = candidate.resources;
        // Cheap reject first: `reclaimable` bounds what the eligible deployments free.
        if !need.fits_in(&(self.free[cluster] + self.reclaimable[cluster])) {
            return false;
        }
        let eligible = self.eligible_from(cluster, candidate);
        let mut room = self.room_evicting_from(cluster, eligible);
        if !need.fits_in(&room) {
            return false;
        }
        for slot in &self.preemptible_on[cluster][eligible..] {
            let kept = room - slot.resources;
            if need.fits_in(&kept) {
                room = kept;
            } else {
                victim(slot);
            }
        }
        true
    }

    /// Takes out of `reclaimable` every running deployment the candidate may not preempt
    /// (priority ≥ its own). Candidates come in queue order, so priority only goes down and
    /// each deployment is protected once.
    fn protect_down_to(&mut self, priority: i32) {
        while let Some(&i) = self.by_priority.get(self.protected) {
            let p = &self.preemptible[i];
            if p.running.priority < priority {
                break;
            }
            if !p.evicted {
                self.reclaimable[p.cluster] -= p.running.resources;
                self.protected_on[p.cluster] += 1;
            }
            self.protected += 1;
        }
    }

    fn start(&mut self, candidate: Candidate, cluster: usize, victims: Vec<usize>) {
        let cluster_id = self.cluster_ids[cluster];
        let mut preempted = Vec::with_capacity(victims.len());
        for i in victims {
            let victim = &mut self.preemptible[i];
            victim.evicted = true;
            let running = victim.running;
            self.free[cluster] += running.resources;
            self.reclaimable[cluster] -= running.resources;
            preempted.push(running.id);
            self.plan.preemptions.push(Preemption {
                victim_id: running.id,
                preemptor_id: candidate.id,
                cluster_id,
                resources: running.resources,
            });
            let key = queue_key(running.priority, running.created_at, running.id);
            self.requeued.push(Reverse((key, self.victims.len())));
            self.victims.push(Candidate {
                id: running.id,
                priority: running.priority,
                cluster_id: running.requested_cluster_id,
                resources: running.resources,
                preempted_by: Some(candidate.id),
            });
        }
        if !preempted.is_empty() {
            let preemptible = &self.preemptible;
            let slots = &mut self.preemptible_on[cluster];
            let least = slots.last().map(|slot| slot.priority);
            slots.retain(|slot| !preemptible[slot.index].evicted);
            sum_from_here(slots);
            if let Some(least) = least {
                self.by_least_important.remove(&(least, cluster));
            }
            if let Some(slot) = slots.last() {
                self.by_least_important.insert((slot.priority, cluster));
            }
        }
        self.free[cluster] -= candidate.resources;
        self.scores.set_free(cluster, self.free[cluster]);
        self.plan.starts.push(Start {
            deployment_id: candidate.id,
            cluster_id,
            resources: candidate.resources,
            preempted,
        });
    }

    /// Writes the reasons of the candidates that cannot start, against the free capacity the
    /// plan leaves: what they would see if they looked now. Auto placements are measured
    /// against the cluster missing the least.
    fn finish(mut self) -> Plan {
        // Per request shape, for auto placements: the cluster missing the least of it, whether
        // it is larger than every cluster, and the first of them not preempted, whose reason the
        // others (most of the queue) repeat.
        let mut by_request: FastMap<Resources, (Option<usize>, bool, Option<usize>)> =
            FastMap::default();
        // Most messages name a cluster: each id is written out once, not once per message.
        let cluster_names: Vec<String> = if self.unplaced.is_empty() {
            Vec::new()
        } else {
            let name = |&id: &Uuid| id.hyphenated().to_string();
            self.cluster_ids.iter().map(name).collect()
        };
        for (i, candidate, target) in std::mem::take(&mut self.unplaced) {
            let (cluster, too_large) = match target {
                Target::Cluster(cluster) => (Some(cluster), false),
                Target::Anywhere => {
                    let (cluster, too_large, same_reason) =
                        by_request.entry(candidate.resources).or_insert_with(|| {
                            let need = candidate.resources;
                            let fits_one = self.capacity.iter().any(|c| need.fits_in(c));
                            let too_large = !self.capacity.is_empty() && !fits_one;
                            (self.scores.least_short(need), too_large, None)
                        });
                    if candidate.preempted_by.is_none() {
                        if let Some(j) = *same_reason {
                            self.plan.waiting[i].reason = self.plan.waiting[j].reason.clone();
                            continue;
                        }
                        *same_reason = Some(i);
                    }
                    (*cluster, *too_large)
                }
                Target::Unknown => (None, false),
            };
            self.plan.waiting[i].reason =
                self.blocked_reason(&candidate, cluster, too_large, &cluster_names);
        }
        self.plan
    }

    /// The reason for a candidate that cannot start, measured against `cluster`'s free capacity
    /// (None: no cluster to measure against); `too_large`: no cluster could ever hold it.
    /// `cluster_names` has every cluster's id written out.
    fn blocked_reason(
        &self,
        candidate: &Candidate,
        cluster: Option<usize>,
        too_large: bool,
        cluster_names: &[String],
    ) -> Reason {
        let mut message = String::with_capacity(128);
        let code = match candidate.preempted_by {
            Some(preemptor) => {
                message.push_str("preempted by ");
                push_id(&mut message, preemptor);
                message.push_str("; ");
                ReasonCode::Preempted
            }
            None if too_large => {
                message.push_str(
                    "larger than the total capacity of every cluster of the organization, so \
                     it starts only once a cluster that large exists; ",
                );
                ReasonCode::ExceedsCapacity
            }
            None => ReasonCode::InsufficientResources,
        };
        let shortfall = match (cluster, candidate.cluster_id) {
            (Some(c), _) => {
                let shortfall = candidate.resources.shortfall(&self.free[c]);
                describe(&mut message, shortfall);
                message.push_str(" on cluster ");
                message.push_str(&cluster_names[c]);
                shortfall
            }
            (None, Some(requested)) => {
                message.push_str("cluster ");
                push_id(&mut message, requested);
                message.push_str(" is not available");
                candidate.resources
            }
            (None, None) => {
                message.push_str("no cluster is available");
                candidate.resources
            }
        };
        Reason {
            code,
            message,
            shortfall: Some(shortfall),
        }
    }
}

type Placement = Result<(usize, Vec<usize>), Target>;

/// The best cluster so far in `Pass::cheapest_preemption`: its highest victim priority (MIN if
/// it needs none) and, once computed, how many victims and their priority sum.
#[derive(Clone, Copy)]
struct Cheapest {
    top: i32,
    cluster: usize,
    rest: Option<(usize, i64)>,
}

/// Scores every cluster for an auto placement and picks the lowest; tie → lower id. A score is
/// a sum over resources of an amount as a fraction of the cluster's capacity, so CPU, RAM and
/// GPUs count alike. Free capacity is mirrored as floats, one vector per resource, so scoring
/// every cluster is a tight vectorized loop; floats are exact for integers below 2^53, far
/// beyond any real cluster.
struct Scores {
    free: [Vec<f64>; 3],
    /// 1/capacity, or 0 for a resource the cluster has none of: nothing is left over there.
    fit_weight: [Vec<f64>; 3],
    /// 1/capacity, or f64::MAX for a resource the cluster has none of: missing any of it ranks
    /// the cluster last (0 × MAX is still 0; scores are capped at MAX, so never ∞ or NaN).
    short_weight: [Vec<f64>; 3],
    scratch: Vec<f64>,
    /// Queues are full of identical requests, so the last best-fit search for each request is
    /// kept, and the next one scores again only the clusters changed since: every change in
    /// order, and per cluster how many changes there had been after its last one.
    best_fits: FastMap<Resources, BestFit>,
    changed: Vec<usize>,
    last_change: Vec<usize>,
    memoize: bool,
}

/// A best-fit search as of the first `seen` changes: the winner (None if the request fits
/// nowhere), and a floor under every other cluster's (score, index) while that cluster is
/// unchanged. `runner_up` names the cluster whose (score, index) the floor is, if it still is.
struct BestFit {
    winner: Option<(f64, usize)>,
    floor: (f64, usize),
    runner_up: Option<usize>,
    seen: usize,
}

const UNQUALIFIED: (f64, usize) = (f64::INFINITY, usize::MAX);

impl Scores {
    fn new(capacity: &[Resources], free: &[Resources], memoize: bool) -> Self {
        let inverse = |none: f64| move |cap: i64| if cap > 0 { 1.0 / cap as f64 } else { none };
        Scores {
            free: per_resource(free, |amount| amount as f64),
            fit_weight: per_resource(capacity, inverse(0.0)),
            short_weight: per_resource(capacity, inverse(f64::MAX)),
            scratch: vec![0.0; free.len()],
            best_fits: FastMap::default(),
            changed: Vec::new(),
            last_change: vec![0; free.len()],
            memoize,
        }
    }

    fn set_free(&mut self, cluster: usize, free: Resources) {
        for (column, amount) in self.free.iter_mut().zip(amounts(free)) {
            column[cluster] = amount as f64;
        }
        self.changed.push(cluster);
        self.last_change[cluster] = self.changed.len();
    }

    /// The cluster where `need` fits with the least left over (best fit keeps big holes for big
    /// work); tie → lower id.
    fn best_fit(&mut self, need: Resources) -> Option<usize> {
        let known = self.best_fits.get(&need);
        let found = known.and_then(|last| self.replay(need, last));
        let found = found.unwrap_or_else(|| self.scan(need));
        let winner = found.winner.map(|(_, cluster)| cluster);
        if self.memoize {
            self.best_fits.insert(need, found);
        }
        winner
    }

    /// Brings `last` up to date by scoring again only the clusters changed since. None when
    /// that cannot settle it (or when a full scan is as cheap).
    fn replay(&self, need: Resources, last: &BestFit) -> Option<BestFit> {
        let changed_since = &self.changed[last.seen..];
        if changed_since.len() > self.scratch.len() / 8 + 8 {
            return None;
        }
        let changed = |cluster: usize| self.last_change[cluster] > last.seen;
        // The two lowest (score, index) among the clusters that may now win.
        let mut two = [UNQUALIFIED; 2];
        let mut consider = |candidate: (f64, usize)| {
            if candidate < two[1] {
                two = if candidate < two[0] {
                    [candidate, two[0]]
                } else {
                    [two[0], candidate]
                };
            }
        };
        let winner = last.winner.map(|(_, cluster)| cluster);
        if let Some((score, cluster)) = last.winner {
            let now = if changed(cluster) {
                self.fit_score(cluster, need)
            } else {
                score
            };
            consider((now, cluster));
        }
        if let Some(runner_up) = last.runner_up.filter(|&r| Some(r) != winner && !changed(r)) {
            consider((last.floor.0, runner_up));
        }
        for &cluster in changed_since {
            if Some(cluster) != winner {
                consider((self.fit_score(cluster, need), cluster));
            }
        }
        let [first, second] = two;
        if first > last.floor {
            return None; // a cluster not scored again might beat it
        }
        let (floor, runner_up) = if second < last.floor {
            (second, (second != UNQUALIFIED).then_some(second.1))
        } else {
            (last.floor, last.runner_up.filter(|&r| !changed(r)))
        };
        Some(BestFit {
            winner: qualified(first),
            floor,
            runner_up,
            seen: self.changed.len(),
        })
    }

    /// Scores every cluster: the winner, and the runner-up as the floor under the rest.
    fn scan(&mut self, need: Resources) -> BestFit {
        let need = amounts(need).map(|amount| amount as f64);
        let n = self.scratch.len();
        let [cpu, ram, gpu] = self.free.each_ref().map(|column| &column[..n]);
        let [w_cpu, w_ram, w_gpu] = self.fit_weight.each_ref().map(|column| &column[..n]);
        for (c, score) in self.scratch.iter_mut().enumerate() {
            *score = fit_score(
                [cpu[c], ram[c], gpu[c]],
                need,
                [w_cpu[c], w_ram[c], w_gpu[c]],
            );
        }
        let [first, second] = lowest_two(&self.scratch);
        BestFit {
            winner: qualified(first),
            floor: second,
            runner_up: qualified(second).map(|(_, cluster)| cluster),
            seen: self.changed.len(),
        }
    }

    /// One cluster's best-fit score, exactly as `scan` computes it.
    fn fit_score(&self, c: usize, need: Resources) -> f64 {
        let need = amounts(need).map(|amount| amount as f64);
        let free = [self.free[0][c], self.free[1][c], self.free[2][c]];
        fit_score(free, need, self.fit_weight.each_ref().map(|w| w[c]))
    }

    /// For a request that cannot start: the cluster missing the least of it.
    fn least_short(&mut self, need: Resources) -> Option<usize> {
        let need = amounts(need).map(|amount| amount as f64);
        let n = self.scratch.len();
        let [cpu, ram, gpu] = self.free.each_ref().map(|column| &column[..n]);
        let [w_cpu, w_ram, w_gpu] = self.short_weight.each_ref().map(|column| &column[..n]);
        for (c, score) in self.scratch.iter_mut().enumerate() {
            *score = short_score(
                [cpu[c], ram[c], gpu[c]],
                need,
                [w_cpu[c], w_ram[c], w_gpu[c]],
            );
        }
        qualified(lowest_two(&self.scratch)[0]).map(|(_, cluster)| cluster)
    }
}

/// Leftover as fractions of capacity, or ∞ where `need` does not fit.
#[inline(always)]
fn fit_score(free: [f64; 3], need: [f64; 3], weight: [f64; 3]) -> f64 {
    let left = [free[0] - need[0], free[1] - need[1], free[2] - need[2]];
    // `&`, not `&&`: no branches, so the loop vectorizes.
    let fits = (left[0] >= 0.0) & (left[1] >= 0.0) & (left[2] >= 0.0);
    let leftover = left[0] * weight[0] + left[1] * weight[1] + left[2] * weight[2];
    if fits {
        leftover
    } else {
        f64::INFINITY
    }
}

/// Shortfall as fractions of capacity.
#[inline(always)]
fn short_score(free: [f64; 3], need: [f64; 3], weight: [f64; 3]) -> f64 {
    let missing = |r: usize| (need[r] - free[r]).max(0.0) * weight[r];
    (missing(0) + missing(1) + missing(2)).min(f64::MAX)
}

fn qualified(candidate: (f64, usize)) -> Option<(f64, usize)> {
    (candidate.0 < f64::INFINITY).then_some(candidate)
}

fn amounts(r: Resources) -> [i64; 3] {
    [r.cpu_millis, r.ram_mgib, r.gpu]
}

/// One vector per resource of `f(amount)` for every cluster.
fn per_resource(values: &[Resources], f: impl Fn(i64) -> f64) -> [Vec<f64>; 3] {
    [0, 1, 2].map(|r| values.iter().map(|v| f(amounts(*v)[r])).collect())
}

/// The lowest and second lowest (score, index); earlier ones first on ties.
fn lowest_two(scores: &[f64]) -> [(f64, usize); 2] {
    let mut two = [UNQUALIFIED, UNQUALIFIED];
    let consider = |[first, second]: &mut [(f64, usize); 2], start: usize, block: &[f64]| {
        for (i, &score) in (start..).zip(block) {
            if score < second.0 {
                if score < first.0 {
                    (*first, *second) = ((score, i), *first);
                } else {
                    *second = (score, i);
                }
            }
        }
    };
    // Past the first few blocks, hardly any score beats the second lowest: a branch-free test
    // (it vectorizes) skips the whole block.
    let blocks = scores.chunks_exact(8);
    let rest = blocks.remainder();
    for (b, block) in blocks.enumerate() {
        let threshold = two[1].0;
        if block
            .iter()
            .fold(false, |any, &score| any | (score < threshold))
        {
            consider(&mut two, 8 * b, block);
        }
    }
    consider(&mut two, scores.len() - rest.len(), rest);
    two
}

fn push_id(out: &mut String, id: Uuid) {
    out.push_str(id.hyphenated().encode_lower(&mut Uuid::encode_buffer()));
}

/// Appends "needs 1.5 more CPU cores, 4 more GiB of RAM and 2 more GPUs".
fn describe(out: &mut String, shortfall: Resources) {
    let Resources {
        cpu_millis: cpu,
        ram_mgib: ram,
        gpu,
    } = shortfall;
    let mut parts_left = [cpu, ram, gpu].iter().filter(|&&amount| amount > 0).count();
    if parts_left == 0 {
        out.push_str("does not fit");
        return;
    }
    out.push_str("needs ");
    let mut separate = |out: &mut String| {
        parts_left -= 1;
        out.push_str(match parts_left {
            0 => "",
            1 => " and ",
            _ => ", ",
        });
    };
    if cpu > 0 {
        push_thousandths(out, cpu);
        out.push_str(if cpu == 1000 {
            " more CPU core"
        } else {
            " more CPU cores"
        });
        separate(out);
    }
    if ram > 0 {
        push_thousandths(out, ram);
        out.push_str(" more GiB of RAM");
        separate(out);
    }
    if gpu > 0 {
        push_integer(out, gpu);
        out.push_str(if gpu == 1 { " more GPU" } else { " more GPUs" });
        separate(out);
    }
}

/// Appends a non-negative count of thousandths as a short decimal: 1500 → "1.5", 4000 → "4".
fn push_thousandths(out: &mut String, thousandths: i64) {
    push_integer(out, thousandths / 1000);
    let fraction = thousandths % 1000;
    if fraction > 0 {
        let digits = [fraction / 100, fraction / 10 % 10, fraction % 10];
        let significant = if digits[2] > 0 {
            3
        } else if digits[1] > 0 {
            2
        } else {
            1
        };
        out.push('.');
        for digit in &digits[..significant] {
            push_integer(out, *digit);
        }
    }
}

/// Appends a non-negative integer. By hand, because a pass can write a message for each of
/// 100,000 blocked deployments and the formatting machinery costs several times more.
fn push_integer(out: &mut String, n: i64) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    let mut rest = n.max(0);
    loop {
        start -= 1;
        digits[start] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    out.extend(digits[start..].iter().map(|&digit| char::from(digit)));
}

/// A hash map for the pass's lookups by id and by request, once per queued deployment: std's
/// SipHash took a sixth of a realistic pass. foldhash is randomly seeded per map, so
/// collisions cannot be crafted in advance.
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
