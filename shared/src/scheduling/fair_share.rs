//! Fair-share order (DESIGN.md §9): among deployments of equal effective priority, the next to
//! be considered is the one whose submitter holds the smallest dominant share, recomputed after
//! every placement (progressive filling, as in DRF); then submission time, then id.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use uuid::Uuid;

use super::pass::Pass;
use super::queue::{level, QueueKey, Turn};
use super::FastMap;

/// What waits in a submitter's line: a pending deployment's turn, or a victim requeued in
/// this pass (an index into `Pass::victims`).
enum Entry {
    Turn(Turn),
    Victim(usize),
}

/// A submitter's claim on the next turn: its share (as bits: non-negative floats order like
/// their bits), its next deployment's queue key, and the version of its share it was made with.
type Claim = Reverse<(u64, QueueKey, usize, u32)>;

/// Takes `line` (pending turns in queue order, each with its submitter) level by level: one
/// effective priority at a time, highest first, and within it by dominant share.
pub(super) fn run(pass: &mut Pass, line: impl Iterator<Item = (QueueKey, Uuid, Turn)>) {
    let mut line = line.peekable();
    let mut version: Vec<u32> = Vec::new();
    let mut changed: Vec<usize> = Vec::new();
    loop {
        // The level of a key is its priority part: lower keys are higher priorities.
        let pending_level = line.peek().map(|(key, _, _)| level(key));
        let victim_level = pass.requeued.peek().map(|(key, _)| level(&key));
        let Some(current) = pending_level.into_iter().chain(victim_level).min() else {
            break;
        };
        let mut queues: FastMap<usize, Vec<(QueueKey, Entry)>> = FastMap::default();
        let submitters = pass
            .submitters
            .as_ref()
            .expect("fair share counts submitters");
        while let Some((key, submitter, _)) = line.peek() {
            if level(key) != current {
                break;
            }
            let s = submitters.get(*submitter);
            let Some((key, _, turn)) = line.next() else {
                break;
            };
            queues.entry(s).or_default().push((key, Entry::Turn(turn)));
        }
        // A victim waited no time, so it is at its base priority: below its preemptor's level.
        // The ones requeued at this level wait in the same lines.
        while let Some((key, v)) = pass.requeued.peek() {
            if level(&key) != current {
                break;
            }
            pass.requeued.pop();
            let s = submitters.get(pass.victims[v].submitter);
            queues.entry(s).or_default().push((key, Entry::Victim(v)));
        }
        version.resize(submitters.share.len(), 0);
        let mut claims: BinaryHeap<Claim> = BinaryHeap::with_capacity(queues.len());
        for (&s, queue) in queues.iter_mut() {
            // Next one last, to pop.
            queue.sort_unstable_by_key(|(key, _)| Reverse(*key));
            claims.push(claim(pass, s, queue, version[s]));
        }
        while let Some(Reverse((_, _, s, made_with))) = claims.pop() {
            if made_with != version[s] {
                continue; // a fresher claim of the same submitter is in the heap
            }
            let Some((_, entry)) = queues.get_mut(&s).and_then(|queue| queue.pop()) else {
                continue;
            };
            match entry {
                Entry::Turn(turn) => pass.take(turn),
                Entry::Victim(v) => pass.schedule(pass.victims[v]),
            }
            // The submitters whose shares this turn changed claim again with the new share;
            // so does this one, for its next deployment.
            let submitters = pass
                .submitters
                .as_mut()
                .expect("fair share counts submitters");
            // One buffer for the whole pass: most turns change one share or none.
            changed.clear();
            changed.append(&mut submitters.changed);
            changed.push(s);
            changed.sort_unstable();
            changed.dedup();
            for &c in &changed {
                version[c] += 1;
                if let Some(queue) = queues.get(&c).filter(|queue| !queue.is_empty()) {
                    claims.push(claim(pass, c, queue, version[c]));
                }
            }
        }
    }
}

fn claim(pass: &Pass, s: usize, queue: &[(QueueKey, Entry)], version: u32) -> Claim {
    let submitters = pass
        .submitters
        .as_ref()
        .expect("fair share counts submitters");
    let next = queue
        .last()
        .map(|(key, _)| *key)
        .unwrap_or((u128::MAX, u128::MAX));
    Reverse((submitters.share[s].to_bits(), next, s, version))
}
