//! Preemption (DESIGN.md §3): on a cluster, the best set of victims that makes room, by the
//! order below; for auto placement, the cluster whose best set matters least.
//!
//! # The order on victim sets, on one cluster
//!
//! A set of victims for a candidate on a cluster is *possible* when each of them runs there
//! (and has not been evicted earlier in the pass), has a priority strictly lower than the
//! candidate's, has run at least the minimum runtime, and the candidate fits in the cluster's
//! free capacity plus what they all hold. Deployments are in *keep order*: highest priority
//! first, then earliest started, then lowest id (then input position, for duplicate ids). Of
//! two possible sets, the better one is, in turn:
//!
//! 1. the one whose most important victim has the lower priority: the *lowest tier*;
//! 2. the one with fewer victims;
//! 3. the one that keeps the more important deployments: of the deployments in exactly one of
//!    the two sets, the first in keep order is not in the better one. This is kube-scheduler's
//!    reprieve order ("evict every candidate victim, then keep back as many as still let it
//!    fit, most important first"): between deployments of one priority, the most recently
//!    started goes.
//!
//! The order is total, so the best set is unique, and it is minimal: no victim can be spared,
//! since without it a set that still made room would be as low a tier and smaller. Of the
//! possible sets, the reprieve alone finds the best by 3 alone (`reprieve`, the rule before this
//! order), and that set is also of the lowest tier; it is the best set exactly when no possible
//! set is smaller. So the choice differs from the reprieve's only where the reprieve evicts
//! more deployments than it needs to.
//!
//! Every possible set of the lowest tier T holds only deployments of priority at most T, and
//! those are a tail of the cluster's list (`tier_from`): the search happens there. It is exact
//! when at most `EXACT_UP_TO` of them hold something the candidate is short of (an exhaustive
//! branch and bound, `Search`); beyond, it takes the better of the reprieve's set and a greedy
//! one (`greedy`), which has at most k₁ + k₂ + k₃ victims, kᵣ being the fewest deployments of
//! the tail that hold the candidate's shortfall in resource r alone (0 if it is not short of r).
//! Every possible set needs at least max kᵣ, so that is at most 3 times the fewest (s times, s
//! the number of resources the candidate is short of) and exactly the fewest when it is short
//! of one resource only. The set is always of the lowest tier and minimal.
//!
//! All of it assumes no running deployment holds a negative amount (`Pass::sums_shrink`; the
//! API accepts none): otherwise the reprieve alone chooses, as before.
//!
//! # Which cluster, for auto placement
//!
//! Each cluster's best set, compared by: the priority of its most important victim, then the
//! number of victims, then the sum of their priorities; tie → lower cluster id
//! (`cheapest_preemption`).

use super::fit::amounts;
use super::pass::{Candidate, Pass};
use super::Running;
use crate::resources::Resources;

/// A running deployment that may be preempted in this pass (old enough, on a known cluster).
pub(super) struct Preemptible<'a> {
    pub(super) running: &'a Running,
    pub(super) cluster: usize,
    pub(super) evicted: bool,
}

/// An entry of `Pass::preemptible_on`, with what the preemption search reads, inline: the
/// search visits every cluster for every candidate that fits nowhere.
#[derive(Debug, Clone, Copy)]
pub(super) struct Slot {
    pub(super) priority: i32,
    pub(super) resources: Resources,
    /// The resources of this deployment and of every less important one after it.
    pub(super) from_here: Resources,
    /// Index into `Pass::preemptible`.
    pub(super) index: usize,
}

/// Fills in `Slot::from_here` along a cluster's list.
pub(super) fn sum_from_here(slots: &mut [Slot]) {
    let mut sum = Resources::ZERO;
    for slot in slots.iter_mut().rev() {
        sum += slot.resources;
        slot.from_here = sum;
    }
}

impl Pass<'_> {
    /// Auto placement by preemption: the cluster whose best victim set (`choose_victims`)
    /// matters least — lowest highest priority, then fewest, then lowest priority sum; tie →
    /// lower id.
    pub(super) fn cheapest_preemption(&self, candidate: &Candidate) -> Option<(usize, Vec<usize>)> {
        if self.protected == self.by_priority.len() {
            return None; // nothing left that this or any later candidate may preempt
        }
        if let Some(tiers) = &self.tiers {
            // The lowest tier decides first; between the clusters that share it, the victim
            // count and the priority sum (tie → lower id).
            let mut tied = Vec::new();
            tiers.lowest(
                &self.free,
                candidate.resources,
                candidate.priority,
                &mut tied,
            )?;
            let cluster = match tied[..] {
                [only] => only,
                _ => self.fewest_victims(&tied, candidate)?,
            };
            return Some((cluster, self.victims_on(cluster, candidate)?));
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

    /// Of `tied` (in index order, all of one lowest tier), the cluster whose victims are
    /// fewest, then of the lowest priority sum; tie → lower index. One victim is the fewest
    /// there can be where the candidate fits nowhere free, and its priority is then the tier's,
    /// the same on every cluster: the first cluster that needs one (or none) cannot be beaten,
    /// and the search stops there (in a preemption-heavy queue, after half the clusters).
    fn fewest_victims(&self, tied: &[usize], candidate: &Candidate) -> Option<usize> {
        let mut best: Option<((usize, i64), usize)> = None;
        for &cluster in tied {
            let cost = self.victim_count_and_sum(cluster, candidate);
            if best.is_none_or(|(fewest, _)| cost < fewest) {
                best = Some((cost, cluster));
            }
            if cost.0 <= 1 {
                break;
            }
        }
        best.map(|(_, cluster)| cluster)
    }

    /// The victims on `cluster`, least important first, or None if preemption cannot make room.
    pub(super) fn victims_on(&self, cluster: usize, candidate: &Candidate) -> Option<Vec<usize>> {
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
        let slots = &self.preemptible_on[cluster][eligible..];
        let first = first_victim(slots, self.free[cluster], need);
        Some(slots.get(first).map_or(i32::MIN, |slot| slot.priority))
    }

    /// The best victim set on `cluster` (see the module's doc). Calls `victim` for each, most
    /// important first; false if evicting everything eligible still leaves too little room.
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
        if !need.fits_in(&self.room_evicting_from(cluster, eligible)) {
            return false;
        }
        let free = self.free[cluster];
        let slots = &self.preemptible_on[cluster][eligible..];
        if !self.sums_shrink {
            reprieve(slots, 0, free, need, |i| victim(&slots[i]));
            return true;
        }
        victims_among(slots, free, need, EXACT_UP_TO, victim);
        true
    }

    /// Takes out of `reclaimable` every running deployment the candidate may not preempt
    /// (priority ≥ its own). Candidates come in queue order, so without aging the base priority
    /// only goes down and each deployment is protected once.
    pub(super) fn protect_down_to(&mut self, priority: i32) {
        // Aging can bring a lower base priority up the queue ahead of a higher one: the higher
        // one, coming later, may preempt what the lower one could not.
        while let Some(&i) = self
            .protected
            .checked_sub(1)
            .and_then(|k| self.by_priority.get(k))
        {
            let p = &self.preemptible[i];
            if p.running.priority >= priority {
                break;
            }
            if !p.evicted {
                self.reclaimable[p.cluster] += p.running.resources;
                self.protected_on[p.cluster] -= 1;
            }
            self.protected -= 1;
            // What could not be made room for may be now.
            self.no_room.clear();
            self.unprotected = true;
        }
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
}

/// The best cluster so far in `Pass::cheapest_preemption`: its highest victim priority (MIN if
/// it needs none) and, once computed, how many victims and their priority sum.
#[derive(Clone, Copy)]
struct Cheapest {
    top: i32,
    cluster: usize,
    rest: Option<(usize, i64)>,
}

/// Where the reprieve over `slots` (eligible, in keep order, evicting all of them leaves room)
/// takes its first victim: until then it keeps each deployment that leaves room when every one
/// after it goes. With no negative amounts that room only shrinks along the list, so this is
/// where it first becomes too small (`slots.len()` if the candidate fits in `free` alone).
fn first_victim(slots: &[Slot], free: Resources, need: Resources) -> usize {
    slots.partition_point(|slot| need.fits_in(&(free + slot.from_here - slot.resources)))
}

/// Where the lowest tier starts: the first deployment of `slots` as unimportant as the
/// reprieve's first victim, `slots[first]`. Every possible set of the lowest tier lies in the
/// tail from there. (Evicting everything after `first` leaves too little room, and that is
/// every deployment of lower priority: no set of them alone makes room.)
fn tier_from(slots: &[Slot], first: usize) -> usize {
    let top = slots[first].priority;
    slots[..first].partition_point(|slot| slot.priority > top)
}

/// Kubernetes' victim choice: evict every deployment of `slots` from `from` on, then keep back
/// as many as still let the candidate fit, most important first. Calls `victim` with the
/// position in `slots` of each one evicted, most important first, and returns how many. Every
/// victim is necessary: keeping it as well would leave too little room (with no negative
/// amounts: the room only shrinks).
fn reprieve(
    slots: &[Slot],
    from: usize,
    free: Resources,
    need: Resources,
    mut victim: impl FnMut(usize),
) -> usize {
    let mut room = free
        + slots
            .get(from)
            .map_or(Resources::ZERO, |slot| slot.from_here);
    let mut count = 0;
    for (i, slot) in slots.iter().enumerate().skip(from) {
        let kept = room - slot.resources;
        if need.fits_in(&kept) {
            room = kept;
        } else {
            victim(i);
            count += 1;
        }
    }
    count
}

/// The most deployments holding something the candidate is short of that the exact search
/// takes on; beyond, `greedy`. For n of them the search visits fewer than 2^(n+1) nodes, and in
/// practice far fewer.
pub(super) const EXACT_UP_TO: usize = 16;

/// The best victim set among `slots` (eligible, in keep order, no negative amounts, evicting
/// all of them leaves room), by the module's order; exact when at most `exact_up_to` (at most
/// `EXACT_UP_TO`) deployments of the lowest tier and below hold something the candidate is
/// short of, else within the module's bound. Calls `victim` for each, most important first.
pub(super) fn victims_among(
    slots: &[Slot],
    free: Resources,
    need: Resources,
    exact_up_to: usize,
    victim: impl FnMut(&Slot),
) {
    let first = first_victim(slots, free, need);
    if first < slots.len() {
        let tier = tier_from(slots, first);
        best_victims(
            &slots[tier..],
            first - tier,
            free,
            need,
            exact_up_to,
            victim,
        );
    }
}

/// `victims_among` from the lowest tier on (`tier`, where `tier[first]` is the reprieve's first
/// victim: everything before it the reprieve keeps).
fn best_victims(
    tier: &[Slot],
    first: usize,
    free: Resources,
    need: Resources,
    exact_up_to: usize,
    mut victim: impl FnMut(&Slot),
) {
    // One victim: the reprieve's first one alone makes room, so it keeps every other.
    if need.fits_in(&(free + tier[first].resources)) {
        return victim(&tier[first]);
    }
    // Else the best single victim, if one makes room alone: the last such (and of the top
    // priority before `first`: none of lower priority does, nor any after `first`).
    if let Some(slot) = tier[..first]
        .iter()
        .rev()
        .find(|slot| need.fits_in(&(free + slot.resources)))
    {
        return victim(slot);
    }
    let reprieved = reprieve(tier, first, free, need, |_| ());
    if reprieved > 2 {
        let better = fewer_victims(tier, free, need, exact_up_to, reprieved);
        if let Some(better) = better {
            return better.into_iter().for_each(|i| victim(&tier[i]));
        }
    }
    // No single victim makes room, or no set is better than the reprieve's: its set is best.
    reprieve(tier, first, free, need, |i| victim(&tier[i]));
}

/// A set with fewer victims than the reprieve's `reprieved` (at least 3; no single victim makes
/// room), the best of them, as positions in `tier`, ascending; None if there is none (past
/// `exact_up_to`: none that the greedy finds).
fn fewer_victims(
    tier: &[Slot],
    free: Resources,
    need: Resources,
    exact_up_to: usize,
    reprieved: usize,
) -> Option<Vec<usize>> {
    // Only what holds some of the shortfall can be in the best set (or in the reprieve's: the
    // rest could be spared).
    let short = amounts(need - free);
    let holds_short = |slot: &Slot| {
        let held = amounts(slot.resources);
        (0..3).any(|r| short[r] > 0 && held[r] > 0)
    };
    // On the stack: this runs for many candidates on many clusters.
    let mut useful = [0; EXACT_UP_TO];
    let mut held = [[0; 3]; EXACT_UP_TO];
    let mut n = 0;
    for (i, slot) in tier.iter().enumerate() {
        if holds_short(slot) {
            if n == exact_up_to.min(EXACT_UP_TO) {
                return fewer_by_greedy(tier, free, need, reprieved, holds_short);
            }
            (useful[n], held[n]) = (i, amounts(slot.resources));
            n += 1;
        }
    }
    let best = Search::new(&held[..n], short, reprieved).run()?;
    Some(
        (0..n)
            .filter(|&i| best >> i & 1 == 1)
            .map(|i| useful[i])
            .collect(),
    )
}

/// `fewer_victims` past the exact search: the greedy set, if it has fewer victims than the
/// reprieve's. (With as many, the reprieve's is better: it is the best of all by rule 3.)
fn fewer_by_greedy(
    tier: &[Slot],
    free: Resources,
    need: Resources,
    reprieved: usize,
    holds_short: impl Fn(&Slot) -> bool,
) -> Option<Vec<usize>> {
    let useful: Vec<usize> = (0..tier.len()).filter(|&i| holds_short(&tier[i])).collect();
    let held: Vec<[i64; 3]> = useful.iter().map(|&i| amounts(tier[i].resources)).collect();
    let set = greedy(&held, amounts(need - free));
    (set.len() < reprieved).then(|| set.into_iter().map(|i| useful[i]).collect())
}

/// The exact search for a set of fewer victims than `count_to_beat` among `held` (what the
/// deployments hold, in keep order), best by the module's order: depth first, each deployment
/// kept before it is evicted, so that sets come better first by rule 3, and a branch is cut
/// once it cannot make room with fewer victims than the best so far. Every set it finds is
/// smaller than the last; the last is the best: the first of the fewest in rule 3's order.
struct Search<'a> {
    held: &'a [[i64; 3]],
    /// Per position, what the deployments from there on hold together, and the most any one
    /// of them holds, per resource.
    sum_from: [[i64; 3]; EXACT_UP_TO + 1],
    max_from: [[i64; 3]; EXACT_UP_TO + 1],
    short: [i64; 3],
    best_count: usize,
    best: Option<u32>,
}

impl<'a> Search<'a> {
    fn new(held: &'a [[i64; 3]], short: [i64; 3], count_to_beat: usize) -> Self {
        let mut sum_from = [[0; 3]; EXACT_UP_TO + 1];
        let mut max_from = [[0; 3]; EXACT_UP_TO + 1];
        for i in (0..held.len()).rev() {
            for r in 0..3 {
                sum_from[i][r] = sum_from[i + 1][r] + held[i][r];
                max_from[i][r] = max_from[i + 1][r].max(held[i][r]);
            }
        }
        Search {
            held,
            sum_from,
            max_from,
            short,
            best_count: count_to_beat,
            best: None,
        }
    }

    /// The best set found, as bits of positions in `held`.
    fn run(mut self) -> Option<u32> {
        self.visit(0, 0, 0, self.short);
        self.best
    }

    /// Deployments before `i` decided: `count` of them evicted (fewer than `best_count`), as
    /// the bits of `set`; `short` is what the candidate is still short of.
    fn visit(&mut self, i: usize, count: usize, set: u32, short: [i64; 3]) {
        if short.iter().all(|&s| s <= 0) {
            self.best_count = count;
            self.best = Some(set);
            return;
        }
        // To beat the best, at most this many more victims.
        let more = self.best_count - count - 1;
        if more == 0 || i == self.held.len() {
            return;
        }
        let (sum, max) = (self.sum_from[i], self.max_from[i]);
        let hopeless = (0..3).any(|r| {
            short[r] > 0 && (sum[r] < short[r] || max[r].saturating_mul(more as i64) < short[r])
        });
        if hopeless {
            return;
        }
        self.visit(i + 1, count, set, short);
        if count + 1 < self.best_count {
            let held = self.held[i];
            let short = [0, 1, 2].map(|r| short[r] - held[r]);
            self.visit(i + 1, count + 1, set | 1 << i, short);
        }
    }
}

/// A minimal set that makes room, as positions in `held` (what the deployments hold, in keep
/// order, together enough for `short`), ascending. For each resource the candidate is short of
/// in turn, it takes the deployments holding the most of it (on ties, the later in keep order)
/// until that is covered; then, in keep order, keeps back each one not needed after all.
///
/// At most k₁ + k₂ + k₃ victims, kᵣ being the fewest deployments of `held` that hold `short[r]`
/// of resource r (0 if it is not short of r): the kᵣ that hold the most, K. When the turn of r
/// comes, those of K not taken yet (u of them, u ≤ kᵣ) hold at least what is left of short[r]
/// (all of K holds short[r], and those of K already taken count in what is covered), and u
/// steps that each take what holds the most of r hold at least as much as they do. Keeping back
/// only shrinks the set. Every set that makes room has at least max kᵣ victims.
fn greedy(held: &[[i64; 3]], short: [i64; 3]) -> Vec<usize> {
    let mut taken = vec![false; held.len()];
    let mut left = short;
    for r in 0..3 {
        while left[r] > 0 {
            let most = (0..held.len())
                .filter(|&i| !taken[i] && held[i][r] > 0)
                .max_by_key(|&i| (held[i][r], i));
            let Some(i) = most else { break }; // not reached: together they hold enough
            taken[i] = true;
            left = [0, 1, 2].map(|q| left[q] - held[i][q]);
        }
    }
    let mut set = Vec::new();
    for (i, held) in held.iter().enumerate().filter(|&(i, _)| taken[i]) {
        let without = [0, 1, 2].map(|q| left[q] + held[q]);
        if without.iter().all(|&s| s <= 0) {
            left = without;
        } else {
            set.push(i);
        }
    }
    set
}
