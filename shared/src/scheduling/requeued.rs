//! The victims a pass has evicted, waiting for their turn in queue order: one heap per
//! priority. A pass evicts tens of thousands in a preemption-heavy queue, and one heap of them
//! all took a pop through some fifteen levels, most of them out of the CPU's caches; a heap
//! per priority holds a few hundred.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::queue::{level, queue_key, QueueKey};

pub(super) struct Requeued {
    /// The priority part of the keys (`level`), ascending: bucket b holds the keys of level
    /// `levels[b]`, and a lower bucket comes first in the queue. Empty: one bucket for all.
    levels: Vec<u128>,
    buckets: Vec<BinaryHeap<Reverse<(QueueKey, usize)>>>,
    /// No bucket before this one holds anything.
    first: usize,
}

/// Past this many priorities, one heap for all: scanning the buckets would cost more.
const MAX_BUCKETS: usize = 1024;

impl Requeued {
    /// For victims of the given priorities: every one a victim may have, each once, in
    /// ascending order.
    pub(super) fn new(priorities: &[i32]) -> Self {
        // Higher priorities have lower levels: reversed, they ascend.
        let mut levels: Vec<u128> = priorities
            .iter()
            .rev()
            .map(|&p| level(&queue_key(p, Default::default(), Default::default())))
            .collect();
        debug_assert!(levels.windows(2).all(|pair| pair[0] < pair[1]));
        if levels.len() > MAX_BUCKETS {
            levels.clear();
        }
        let buckets = (0..levels.len().max(1))
            .map(|_| BinaryHeap::new())
            .collect();
        Requeued {
            first: levels.len(),
            levels,
            buckets,
        }
    }

    fn bucket(&self, key: &QueueKey) -> usize {
        if self.levels.is_empty() {
            return 0;
        }
        self.levels
            .binary_search(&level(key))
            .expect("a victim's priority is among the preemptible ones'")
    }

    pub(super) fn push(&mut self, key: QueueKey, victim: usize) {
        let b = self.bucket(&key);
        self.buckets[b].push(Reverse((key, victim)));
        self.first = self.first.min(b);
    }

    /// The next victim in queue order: its key and index.
    pub(super) fn peek(&self) -> Option<(QueueKey, usize)> {
        let Reverse(next) = self.buckets.get(self.first)?.peek()?;
        Some(*next)
    }

    pub(super) fn pop(&mut self) -> Option<(QueueKey, usize)> {
        let Reverse(next) = self.buckets.get_mut(self.first)?.pop()?;
        while self.buckets.get(self.first).is_some_and(|b| b.is_empty()) {
            self.first += 1;
        }
        Some(next)
    }
}
