//! The pure scheduling algorithm (DESIGN.md §3): from clusters, running and pending deployments,
//! decide what starts where, what gets preempted, and why everything else keeps waiting.
//!
//! No I/O, no clock, no randomness: the caller passes `now`, every tie is broken by id, and the
//! same input gives the same plan whatever the order of the input vectors.
//!
//! The code follows the concerns of the algorithm, as kube-scheduler divides them: `queue`
//! (queue order and dependency gating), `fair_share` (the order among equal priorities when
//! fair share is on), `fit` (best-fit scoring), `recent` (a fixed-size cache per request shape), `preemption` (victim choice,
//! and on which cluster), `reasons` (why a deployment keeps waiting, and what it is short of),
//! and `pass` (the state of one pass and the loop that drives it). Here: the input, the plan
//! and the entry points.

mod fair_share;
mod fit;
mod pass;
mod preemption;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod proptests_victims;
mod queue;
mod reasons;
mod recent;
mod requeued;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_fairness;
#[cfg(test)]
mod tests_preemption;
mod tiers;

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::resources::Resources;

use pass::run;
pub use reasons::{Reason, ReasonCode};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    pub id: Uuid,
    pub capacity: Resources,
    /// The books' figure, for callers: the plan recomputes free capacity from `Input::running`.
    pub allocated: Resources,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Running {
    pub id: Uuid,
    pub cluster_id: Uuid,
    pub priority: i32,
    pub resources: Resources,
    pub started_at: DateTime<Utc>,
    /// Submission time: a preempted deployment is requeued at its own queue position.
    pub created_at: DateTime<Utc>,
    /// The cluster it asked for (None = auto placement), so a requeued victim is placed again
    /// under its own rule rather than pinned to the cluster it was evicted from.
    pub requested_cluster_id: Option<Uuid>,
    /// Who submitted it, a person or a token: quotas and fair share count per submitter.
    pub submitter: Uuid,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DependencyState {
    Satisfied,
    Waiting { unfinished: Vec<Uuid> },
    Failed { dependency: Uuid },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub id: Uuid,
    /// None = auto placement on any cluster of `Input::clusters`.
    pub cluster_id: Option<Uuid>,
    pub priority: i32,
    pub resources: Resources,
    pub created_at: DateTime<Utc>,
    pub dependencies: DependencyState,
    pub submitter: Uuid,
    /// When it last entered the queue (submitted, or requeued by a preemption): aging counts
    /// the hours waited from here.
    pub queued_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    /// The clusters placement may use (for auto placement: the organization's clusters).
    pub clusters: Vec<Cluster>,
    pub running: Vec<Running>,
    pub pending: Vec<Pending>,
    pub now: DateTime<Utc>,
    /// A running deployment younger than this is never preempted; 0 or less = off.
    pub min_runtime_seconds: i64,
    pub fairness: Fairness,
}

/// The organization's levers of DESIGN.md §9. The default turns them all off.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Fairness {
    /// 0 = no aging.
    pub aging_points_per_hour: i32,
    pub aging_max_boost: i32,
    /// Among equal effective priorities, the submitter with the smallest dominant share first.
    pub fair_share: bool,
    /// What each submitter's deployments may hold running at once; a submitter not listed has
    /// no quota, and `UNLIMITED` stands for a resource the quota does not cap.
    pub quotas: HashMap<Uuid, Resources>,
}

/// A quota's amount for a resource it does not cap.
pub const UNLIMITED: i64 = i64::MAX;

impl Fairness {
    /// The priority the queue is ordered by: the base, plus one point per
    /// `1 / aging_points_per_hour` hours waited, at most `aging_max_boost`. Preemption never
    /// looks at it: only base priorities decide who may evict whom.
    pub fn effective_priority(
        &self,
        priority: i32,
        queued_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> i32 {
        if !self.ages() {
            return priority;
        }
        let waited = now.signed_duration_since(queued_at).num_seconds().max(0);
        let boost = waited.saturating_mul(i64::from(self.aging_points_per_hour)) / 3600;
        priority.saturating_add(boost.min(i64::from(self.aging_max_boost)) as i32)
    }

    /// Whether waiting raises a deployment's place in the queue.
    fn ages(&self) -> bool {
        self.aging_points_per_hour > 0 && self.aging_max_boost > 0
    }

    /// Whether a pass must keep each submitter's running total.
    fn counts_submitters(&self) -> bool {
        self.fair_share || !self.quotas.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    /// In the order decided.
    pub starts: Vec<Start>,
    /// Every victim, once, in the order decided.
    pub preemptions: Vec<Preemption>,
    /// Every deployment left pending (requeued victims included), in queue order.
    pub waiting: Vec<Waiting>,
    /// In queue order.
    pub dependency_failures: Vec<DependencyFailure>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Start {
    pub deployment_id: Uuid,
    pub cluster_id: Uuid,
    pub resources: Resources,
    /// The deployments evicted to make room for this one.
    pub preempted: Vec<Uuid>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preemption {
    pub victim_id: Uuid,
    pub preemptor_id: Uuid,
    pub cluster_id: Uuid,
    /// What the victim gives back.
    pub resources: Resources,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting {
    pub deployment_id: Uuid,
    pub reason: Reason,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DependencyFailure {
    pub deployment_id: Uuid,
    /// The direct dependency that failed (itself perhaps failed by its own dependencies).
    pub dependency_id: Uuid,
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

/// A hash map for the pass's lookups by id and by request, once per queued deployment: std's
/// SipHash took a sixth of a realistic pass. foldhash is randomly seeded per map, so
/// collisions cannot be crafted in advance.
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
