//! One pass: its state (free capacity, what may be preempted, the victims requeued, the plan so
//! far), and the loop that takes the queue in order and places each candidate.

use std::cmp::Reverse;
use std::collections::{BTreeSet, HashMap};

use chrono::TimeDelta;
use uuid::Uuid;

use super::fair_share;
use super::fit::Scores;
use super::preemption::{sum_from_here, Preemptible, Slot};
use super::queue::{failed_dependencies, queue_key, QueueKey, Turn};
use super::reasons::{quota_reason, waiting_message};
use super::requeued::Requeued;
use super::tiers::Tiers;
use super::{
    Cluster, DependencyState, FastMap, Input, Pending, Plan, Preemption, Reason, ReasonCode,
    Running, Start, Waiting, UNLIMITED,
};
use crate::resources::Resources;

/// `memoize` is off only in tests, to show the memo changes no decision.
pub(super) fn run(input: &Input, memoize: bool) -> Plan {
    let failed_dependency = failed_dependencies(&input.pending);
    let fairness = &input.fairness;
    let mut queue: Vec<(QueueKey, usize)> = input
        .pending
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let priority = fairness.effective_priority(p.priority, p.queued_at, input.now);
            (queue_key(priority, p.created_at, p.id), i)
        })
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
    let mut pass = Pass::new(input, memoize);
    // Grown by doubling, these were copied over and over (and their pages faulted in twice).
    // Reserved, the pages never written are never faulted in.
    pass.plan.waiting.reserve(input.pending.len());
    pass.unplaced.reserve(input.pending.len());
    pass.plan.starts.reserve(input.pending.len());
    pass.plan.preemptions.reserve(input.running.len());
    pass.victims.reserve(input.running.len());
    if fairness.fair_share {
        let line = queue
            .iter()
            .zip(turns)
            .map(|(&(key, i), turn)| (key, input.pending[i].submitter, turn));
        fair_share::run(&mut pass, line);
        pass.second_chance();
        return pass.finish();
    }

    let mut queue = queue.iter().map(|(key, _)| key).zip(turns).peekable();

    loop {
        // Requeued victims wait in their own heap; whichever comes first in queue order goes next.
        let victim_next = match (queue.peek(), pass.requeued.peek()) {
            (None, None) => break,
            (Some((pending_key, _)), Some((victim_key, _))) => victim_key < **pending_key,
            (None, Some(_)) => true,
            (Some(_), None) => false,
        };
        if victim_next {
            let Some((_, victim)) = pass.requeued.pop() else {
                break;
            };
            pass.schedule(pass.victims[victim]);
            continue;
        }
        let Some((_, turn)) = queue.next() else { break };
        pass.take(turn);
    }
    pass.second_chance();
    pass.finish()
}

/// A deployment to place: a pending one whose dependencies are satisfied, or a requeued victim.
#[derive(Debug, Clone, Copy)]
pub(super) struct Candidate {
    pub(super) id: Uuid,
    pub(super) priority: i32,
    pub(super) cluster_id: Option<Uuid>,
    pub(super) resources: Resources,
    /// Set for a victim requeued in this pass.
    pub(super) preempted_by: Option<Uuid>,
    pub(super) submitter: Uuid,
}

impl Candidate {
    pub(super) fn new(pending: &Pending) -> Self {
        Candidate {
            id: pending.id,
            priority: pending.priority,
            cluster_id: pending.cluster_id,
            resources: pending.resources,
            preempted_by: None,
            submitter: pending.submitter,
        }
    }
}

/// The state of one pass. Clusters are indexed by their position in id order, so "lower index"
/// is "lower id" in every tie-break.
pub(super) struct Pass<'a> {
    /// Sorted, so a cluster's index is its rank by id.
    pub(super) cluster_ids: Vec<Uuid>,
    pub(super) capacity: Vec<Resources>,
    pub(super) free: Vec<Resources>,
    /// Per cluster, the sum of what the current candidate may preempt (see `protect_down_to`).
    pub(super) reclaimable: Vec<Resources>,
    /// Per cluster, the preemptible deployments still running there, in keep order: most
    /// important (highest priority, then oldest, then lowest id) first.
    pub(super) preemptible_on: Vec<Vec<Slot>>,
    /// The clusters with something preemptible, by the priority of the last of their
    /// `preemptible_on`, then by index. Kept only without `tiers`: only the search that runs
    /// without the table reads it.
    pub(super) by_least_important: BTreeSet<(i32, usize)>,
    /// No running deployment asks for a negative amount, so the sums in `Slot::from_here` only
    /// shrink along a list, and `highest_victim` may search them by bisection.
    pub(super) sums_shrink: bool,
    /// Per cluster and priority, what preemption could free: only when `sums_shrink`.
    pub(super) tiers: Option<Tiers>,
    pub(super) preemptible: Vec<Preemptible<'a>>,
    /// Indices into `preemptible`, highest priority first, and how many of them are protected.
    pub(super) by_priority: Vec<usize>,
    pub(super) protected: usize,
    /// Per cluster, how many of `preemptible_on` are protected: the eligible are the rest.
    pub(super) protected_on: Vec<usize>,
    pub(super) scores: Scores,
    /// The smallest requests an auto placement found no room for, even by preemption. A request
    /// at least as large on every resource finds none either, for the rest of the pass: on every
    /// cluster, free capacity is at most what preemption could make free (free + reclaimable),
    /// and that only shrinks as the pass goes on (starts take from it, protection takes from it,
    /// evictions move it from one to the other).
    pub(super) no_room: Vec<Resources>,
    /// Set once a candidate could preempt more than one before it (aging at work): evictions
    /// from then on may leave room for work already passed over, which `second_chance` starts.
    pub(super) unprotected: bool,
    memoize: bool,
    /// Evicted deployments, requeued: `requeued` holds their queue keys, lowest on top, with
    /// their indices here.
    pub(super) victims: Vec<Candidate>,
    pub(super) requeued: Requeued,
    /// Per submitter, only when quotas or fair share need it.
    pub(super) submitters: Option<Submitters>,
    /// Candidates that cannot start, by their index in `plan.waiting`; their reasons are
    /// written by `finish`, against the free capacity the plan leaves.
    pub(super) unplaced: Vec<(usize, Candidate, Target)>,
    pub(super) plan: Plan,
}

/// Where a candidate that cannot start was to go.
#[derive(Debug, Clone, Copy)]
pub(super) enum Target {
    Cluster(usize),
    Anywhere,
    /// A requested cluster that is not in the input.
    Unknown,
}

type Placement = Result<(usize, Vec<usize>), Target>;

/// Each submitter's running total, quota and dominant share, kept up to date through the pass.
/// Submitters are numbered in the order first seen; nothing is decided by that order.
pub(super) struct Submitters {
    index: FastMap<Uuid, usize>,
    held: Vec<Resources>,
    quota: Vec<Resources>,
    pub(super) share: Vec<f64>,
    /// The organization's capacity, the denominator of every share.
    total: Resources,
    /// Those whose `held` changed since the fair-share loop last looked.
    pub(super) changed: Vec<usize>,
}

impl Submitters {
    fn new(input: &Input) -> Self {
        let total = input
            .clusters
            .iter()
            .fold(Resources::ZERO, |sum, c| sum + c.capacity);
        let mut submitters = Submitters {
            index: FastMap::default(),
            held: Vec::new(),
            quota: Vec::new(),
            share: Vec::new(),
            total,
            changed: Vec::new(),
        };
        for r in &input.running {
            let s = submitters.index_of(r.submitter, &input.fairness.quotas);
            submitters.held[s] += r.resources;
        }
        for p in &input.pending {
            submitters.index_of(p.submitter, &input.fairness.quotas);
        }
        for s in 0..submitters.held.len() {
            submitters.share[s] = submitters.dominant_share(s);
        }
        submitters
    }

    fn index_of(&mut self, submitter: Uuid, quotas: &HashMap<Uuid, Resources>) -> usize {
        let next = self.held.len();
        let s = *self.index.entry(submitter).or_insert(next);
        if s == next {
            let unlimited = Resources::new(UNLIMITED, UNLIMITED, UNLIMITED);
            self.held.push(Resources::ZERO);
            self.quota
                .push(quotas.get(&submitter).copied().unwrap_or(unlimited));
            self.share.push(0.0);
        }
        s
    }

    pub(super) fn get(&self, submitter: Uuid) -> usize {
        self.index[&submitter]
    }

    /// How far past its submitter's quota starting `candidate` would go, if it would.
    fn over_quota(&self, candidate: &Candidate) -> Option<Resources> {
        let s = self.get(candidate.submitter);
        let after = self.held[s] + candidate.resources;
        (!after.fits_in(&self.quota[s])).then(|| after.shortfall(&self.quota[s]))
    }

    fn hold(&mut self, submitter: Uuid, resources: Resources, starts: bool) {
        let s = self.get(submitter);
        if starts {
            self.held[s] += resources;
        } else {
            self.held[s] -= resources;
        }
        self.share[s] = self.dominant_share(s);
        self.changed.push(s);
    }

    fn dominant_share(&self, s: usize) -> f64 {
        self.held[s].dominant_share_of(&self.total)
    }
}

impl<'a> Pass<'a> {
    pub(super) fn new(input: &'a Input, memoize: bool) -> Self {
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
        let sums_shrink = preemptible
            .iter()
            .all(|p| Resources::ZERO.fits_in(&p.running.resources));
        let by_priority = highest_first(preemptible.iter().map(|p| p.running.priority));
        // The distinct priorities of what may be preempted, ascending.
        let mut priorities: Vec<i32> = by_priority
            .iter()
            .rev()
            .map(|&i| preemptible[i].running.priority)
            .collect();
        priorities.dedup();
        let requeued = Requeued::new(&priorities);
        let tiers = if sums_shrink {
            Tiers::new(&preemptible_on, priorities, !input.fairness.ages())
        } else {
            None
        };
        let by_least_important = match tiers {
            Some(_) => BTreeSet::new(),
            None => preemptible_on
                .iter()
                .enumerate()
                .filter_map(|(cluster, slots)| Some((slots.last()?.priority, cluster)))
                .collect(),
        };

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
            tiers,
            preemptible,
            by_priority,
            protected: 0,
            no_room: Vec::new(),
            unprotected: false,
            memoize,
            victims: Vec::new(),
            requeued,
            submitters: input
                .fairness
                .counts_submitters()
                .then(|| Submitters::new(input)),
            unplaced: Vec::new(),
            plan: Plan::default(),
        }
    }

    /// Without aging, a candidate passed over could have preempted whatever a later one did, so
    /// no eviction leaves room it would fit in. With aging it may have been unable to: then
    /// each one passed over, in queue order, starts where it fits now (without preempting).
    fn second_chance(&mut self) {
        if !self.unprotected || self.plan.preemptions.is_empty() {
            return;
        }
        let mut started = Vec::new();
        for k in 0..self.unplaced.len() {
            let (_, candidate, target) = self.unplaced[k];
            if self
                .submitters
                .as_ref()
                .is_some_and(|s| s.over_quota(&candidate).is_some())
            {
                continue;
            }
            let need = candidate.resources;
            let cluster = match target {
                Target::Cluster(c) => Some(c).filter(|&c| need.fits_in(&self.free[c])),
                Target::Anywhere => self
                    .scores
                    .best_fit(need)
                    .filter(|&c| need.fits_in(&self.free[c])),
                Target::Unknown => None,
            };
            if let Some(cluster) = cluster {
                started.push(k);
                self.start(candidate, cluster, Vec::new());
            }
        }
        if started.is_empty() {
            return;
        }
        // Out of `waiting` and `unplaced`, and the indices of the rest moved down to match.
        let gone: std::collections::HashSet<usize> =
            started.iter().map(|&k| self.unplaced[k].0).collect();
        let mut new_index = Vec::with_capacity(self.plan.waiting.len());
        let mut kept = 0;
        for i in 0..self.plan.waiting.len() {
            new_index.push(kept);
            if !gone.contains(&i) {
                kept += 1;
            }
        }
        let mut i = 0;
        self.plan.waiting.retain(|_| {
            i += 1;
            !gone.contains(&(i - 1))
        });
        self.unplaced.retain(|(i, _, _)| !gone.contains(i));
        for (i, _, _) in &mut self.unplaced {
            *i = new_index[*i];
        }
    }

    /// A pending deployment's turn in the queue.
    pub(super) fn take(&mut self, turn: Turn) {
        match turn {
            Turn::Fail(failure) => self.plan.dependency_failures.push(failure),
            Turn::Wait { id, unfinished } => {
                let reason = Reason {
                    code: ReasonCode::WaitingForDependencies,
                    message: waiting_message(unfinished),
                    shortfall: None,
                };
                self.plan.waiting.push(Waiting {
                    deployment_id: id,
                    reason,
                });
            }
            Turn::Schedule(candidate) => self.schedule(candidate),
        }
    }

    pub(super) fn schedule(&mut self, candidate: Candidate) {
        // Checked first: work over its quota waits, and so it never preempts anyone.
        if let Some(past) = self
            .submitters
            .as_ref()
            .and_then(|s| s.over_quota(&candidate))
        {
            self.plan.waiting.push(Waiting {
                deployment_id: candidate.id,
                reason: quota_reason(past),
            });
            return;
        }
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
        // First: with aging, protecting less than the candidate before forgets `no_room`.
        self.protect_down_to(candidate.priority);
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

    /// Starts `candidate` on `cluster`, evicting `victims` (indices into `preemptible`), who
    /// are requeued.
    fn start(&mut self, candidate: Candidate, cluster: usize, victims: Vec<usize>) {
        let cluster_id = self.cluster_ids[cluster];
        let mut preempted = Vec::with_capacity(victims.len());
        for &i in &victims {
            let victim = &mut self.preemptible[i];
            victim.evicted = true;
            let running = victim.running;
            self.free[cluster] += running.resources;
            self.reclaimable[cluster] -= running.resources;
            if let Some(tiers) = &mut self.tiers {
                tiers.evict(
                    cluster,
                    running.priority,
                    running.resources,
                    candidate.priority,
                );
            }
            preempted.push(running.id);
            self.plan.preemptions.push(Preemption {
                victim_id: running.id,
                preemptor_id: candidate.id,
                cluster_id,
                resources: running.resources,
            });
            if let Some(submitters) = &mut self.submitters {
                submitters.hold(running.submitter, running.resources, false);
            }
            let key = queue_key(running.priority, running.created_at, running.id);
            self.requeued.push(key, self.victims.len());
            self.victims.push(Candidate {
                id: running.id,
                priority: running.priority,
                cluster_id: running.requested_cluster_id,
                resources: running.resources,
                preempted_by: Some(candidate.id),
                submitter: running.submitter,
            });
        }
        if !preempted.is_empty() {
            let preemptible = &self.preemptible;
            let slots = &mut self.preemptible_on[cluster];
            let least = slots.last().map(|slot| slot.priority);
            // Victims are few: looking each slot up among them reads no memory, where reading
            // `evicted` reads a line per slot from all over `preemptible`.
            if victims.len() <= 8 {
                slots.retain(|slot| !victims.contains(&slot.index));
            } else {
                slots.retain(|slot| !preemptible[slot.index].evicted);
            }
            sum_from_here(slots);
            if self.tiers.is_none() {
                if let Some(least) = least {
                    self.by_least_important.remove(&(least, cluster));
                }
                if let Some(slot) = slots.last() {
                    self.by_least_important.insert((slot.priority, cluster));
                }
            }
        }
        if let Some(submitters) = &mut self.submitters {
            submitters.hold(candidate.submitter, candidate.resources, true);
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
}

/// Indices of `priorities` by priority, highest first, then by index. Running work has a few
/// distinct priorities (the API allows 1 to 100), so this counts them rather than sorting
/// tens of thousands of pairs.
pub(super) fn highest_first(priorities: impl ExactSizeIterator<Item = i32> + Clone) -> Vec<usize> {
    let n = priorities.len();
    let (low, high) = priorities
        .clone()
        .fold((i32::MAX, i32::MIN), |(low, high), p| {
            (low.min(p), high.max(p))
        });
    let span = i64::from(high) - i64::from(low) + 1;
    if n == 0 || span > 4 * n as i64 + 1024 {
        let mut keyed: Vec<(Reverse<i32>, usize)> = priorities
            .enumerate()
            .map(|(i, p)| (Reverse(p), i))
            .collect();
        keyed.sort_unstable();
        return keyed.into_iter().map(|(_, i)| i).collect();
    }
    // Bucket 0 is the highest priority; each bucket's start, then its indices in order.
    let bucket = |p: i32| (i64::from(high) - i64::from(p)) as usize;
    let mut start = vec![0; span as usize + 1];
    for p in priorities.clone() {
        start[bucket(p) + 1] += 1;
    }
    for b in 1..start.len() {
        start[b] += start[b - 1];
    }
    let mut order = vec![0; n];
    for (i, p) in priorities.enumerate() {
        let at = &mut start[bucket(p)];
        order[*at] = i;
        *at += 1;
    }
    order
}
