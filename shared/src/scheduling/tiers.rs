//! Tiers: per cluster and per priority, what evicting every preemptible deployment of that
//! priority or lower would free. Auto placement by preemption asks, over every cluster, for the
//! lowest tier at which the candidate fits (`preemption`'s first rule): a table of these sums
//! answers with one comparison per cluster, where reading each cluster's deployments took a
//! search through memory per cluster.

use super::preemption::Slot;
use crate::resources::Resources;

/// Past this many entries (tiers × clusters) the table is not built and the search reads the
/// deployments instead. The API's priorities (1–100) stay far below it.
const MAX_ENTRIES: usize = 1 << 22;

pub(super) struct Tiers {
    /// The distinct priorities of the preemptible deployments, ascending: tier t is
    /// `priorities[t]`.
    priorities: Vec<i32>,
    /// Row t, column c: what the deployments still preemptible on cluster c with priority at
    /// most `priorities[t]` hold. A row is contiguous, so a search reads it in order.
    evictable: Vec<Resources>,
    clusters: usize,
    /// Without aging, candidates come in order of falling priority, and a search reads only
    /// the rows below its candidate's priority: an eviction then updates only the rows below
    /// its preemptor's, and the rows from `stale_from` on are never read again.
    priorities_only_fall: bool,
    stale_from: usize,
}

impl Tiers {
    /// From each cluster's preemptible deployments, in keep order (priority descending), and
    /// their distinct priorities, ascending. None when the table would be too large.
    pub(super) fn new(
        preemptible_on: &[Vec<Slot>],
        priorities: Vec<i32>,
        priorities_only_fall: bool,
    ) -> Option<Self> {
        let clusters = preemptible_on.len();
        if priorities.len().saturating_mul(clusters) > MAX_ENTRIES {
            return None;
        }
        let mut evictable = vec![Resources::ZERO; priorities.len() * clusters];
        for (c, slots) in preemptible_on.iter().enumerate() {
            // Least important first: the running sum grows tier by tier.
            let mut held = Resources::ZERO;
            let mut rest = slots.iter().rev().peekable();
            for (t, &priority) in priorities.iter().enumerate() {
                while let Some(slot) = rest.next_if(|slot| slot.priority <= priority) {
                    held += slot.resources;
                }
                evictable[t * clusters + c] = held;
            }
        }
        Some(Tiers {
            stale_from: priorities.len(),
            priorities,
            evictable,
            clusters,
            priorities_only_fall,
        })
    }

    /// A deployment of `priority` on `cluster` was evicted (by a candidate of `preemptor`
    /// priority): it frees nothing any more.
    pub(super) fn evict(
        &mut self,
        cluster: usize,
        priority: i32,
        resources: Resources,
        preemptor: i32,
    ) {
        let Ok(first) = self.priorities.binary_search(&priority) else {
            return;
        };
        if self.priorities_only_fall {
            self.stale_from = self.stale_from.min(self.below(preemptor));
        }
        for t in first..self.stale_from {
            self.evictable[t * self.clusters + cluster] -= resources;
        }
    }

    /// How many tiers are below `priority`.
    fn below(&self, priority: i32) -> usize {
        self.priorities.partition_point(|&p| p < priority)
    }

    /// The lowest tier below `priority` at which `need` fits on some cluster (evicting that
    /// tier and every lower one there), as that tier's priority, with every cluster where it
    /// does, in index order. None if it fits nowhere even evicting everything below `priority`.
    pub(super) fn lowest(
        &self,
        free: &[Resources],
        need: Resources,
        priority: i32,
        clusters: &mut Vec<usize>,
    ) -> Option<i32> {
        clusters.clear();
        let below = self.below(priority);
        debug_assert!(below <= self.stale_from, "a stale row of the tiers read");
        let fits =
            |t: usize, c: usize| need.fits_in(&(free[c] + self.evictable[t * self.clusters + c]));
        // The best tier found so far (at first: everything eligible); a cluster that does not
        // fit there cannot do better, and that one comparison is all most clusters cost.
        let mut best = below.checked_sub(1)?;
        let mut found = false;
        for c in 0..self.clusters {
            if !fits(best, c) {
                continue;
            }
            // Its own lowest tier, by bisection: the room only grows with the tier.
            let (mut lo, mut hi) = (0, best);
            while lo < hi {
                let mid = (lo + hi) / 2;
                if fits(mid, c) {
                    hi = mid;
                } else {
                    lo = mid + 1;
                }
            }
            if lo < best || !found {
                clusters.clear();
                best = lo;
                found = true;
            }
            clusters.push(c);
        }
        found.then(|| self.priorities[best])
    }
}
