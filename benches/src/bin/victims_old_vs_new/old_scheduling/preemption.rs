//! Preemption, as kube-scheduler does it: on a cluster, the fewest and least important victims
//! that make room (never of the candidate's priority or higher, never younger than the minimum
//! runtime); for auto placement, the cluster whose victims matter least.

use super::pass::{Candidate, Pass};
use super::Running;
use shared::resources::Resources;

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
    /// Auto placement by preemption: the cluster whose victims matter least — lowest highest
    /// priority, then fewest, then lowest priority sum; tie → lower id.
    pub(super) fn cheapest_preemption(&self, candidate: &Candidate) -> Option<(usize, Vec<usize>)> {
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
    pub(super) fn protect_down_to(&mut self, priority: i32) {
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
