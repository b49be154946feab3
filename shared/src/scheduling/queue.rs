//! Queue order, and what each pending deployment's turn does: fail with a failed dependency,
//! wait for unfinished ones, or try to start.

use std::collections::hash_map::Entry;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::pass::Candidate;
use super::{DependencyFailure, DependencyState, FastMap, Pending};

/// Queue order: higher priority first, then older submission, then lower id. Packed into two
/// integers, so sorting 100,000 of them compares fast: the first holds the priority (bits
/// flipped, so higher sorts first), then the submission time as seconds and nanoseconds (which
/// order like the `DateTime`); the second is the id as a number (it sorts like the `Uuid`).
pub(super) type QueueKey = (u128, u128);

pub(super) fn queue_key(priority: i32, created_at: DateTime<Utc>, id: Uuid) -> QueueKey {
    let priority = !(priority as u32 ^ (1 << 31));
    let seconds = created_at.timestamp() as u64 ^ (1 << 63);
    let nanos = created_at.timestamp_subsec_nanos();
    let when = (u128::from(seconds) << 32) | u128::from(nanos);
    ((u128::from(priority) << 96) | when, id.as_u128())
}

/// The priority part of a queue key: a lower level is a higher priority.
pub(super) fn level(key: &QueueKey) -> u128 {
    key.0 >> 96
}

/// What a pending deployment's turn in the queue does.
pub(super) enum Turn {
    Fail(DependencyFailure),
    /// Waits for this many unfinished dependencies.
    Wait {
        id: Uuid,
        unfinished: usize,
    },
    Schedule(Candidate),
}

impl Turn {
    pub(super) fn of(pending: &Pending, failed_dependency: &FastMap<Uuid, Uuid>) -> Turn {
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

/// Pending deployments that fail in this pass, each with the dependency that failed it: those
/// already `Failed`, and, transitively, those waiting on one of them.
pub(super) fn failed_dependencies(pending: &[Pending]) -> FastMap<Uuid, Uuid> {
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
