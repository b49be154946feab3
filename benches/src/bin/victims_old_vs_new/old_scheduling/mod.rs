//! A copy of shared/src/scheduling/ as of 47f44a1 (before the fewest-victims change), for
//! `victims_old_vs_new` only, to time old and new in the same run. Verbatim but for: the public
//! types are `shared::scheduling`'s (re-exported, so that both sides take the same `Input`),
//! `crate::resources` is `shared::resources`, and the tests are left out.
//!
//! The pure scheduling algorithm (DESIGN.md §3): from clusters, running and pending deployments,
//! decide what starts where, what gets preempted, and why everything else keeps waiting.
//!
//! No I/O, no clock, no randomness: the caller passes `now`, every tie is broken by id, and the
//! same input gives the same plan whatever the order of the input vectors.
//!
//! The code follows the concerns of the algorithm, as kube-scheduler divides them: `queue`
//! (queue order and dependency gating), `fit` (best-fit scoring), `preemption` (victim choice,
//! and on which cluster), `reasons` (why a deployment keeps waiting, and what it is short of),
//! and `pass` (the state of one pass and the loop that drives it). Here: the input, the plan
//! and the entry points.

#![allow(dead_code)] // `dry_run`: kept verbatim, unused here

mod fit;
mod pass;
mod preemption;
mod queue;
mod reasons;

use std::collections::HashMap;

use pass::run;
pub use shared::scheduling::{
    Cluster, DependencyFailure, DependencyState, Input, Pending, Plan, Preemption, Reason,
    ReasonCode, Running, Start, Waiting,
};

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
