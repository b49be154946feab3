//! A cache of what the pass last worked out per request shape, of a fixed size: one slot per
//! hash, a new key taking the slot of the one before. Queues that repeat a few shapes hit it
//! as a map would; a queue of all different shapes (every hit a miss) no longer grows a map of
//! tens of thousands of entries, rehashing and missing the CPU's caches, for nothing. Whatever
//! it forgets is worked out again, the same, so it changes no decision.

use std::hash::{BuildHasher, Hash};

pub(super) struct Recent<K, V> {
    slots: Vec<Option<(K, V)>>,
    hasher: foldhash::fast::RandomState,
}

/// Slots: many times the shapes a real queue repeats (the bench's realistic mix has a few
/// dozen), while the slots stay in the CPU's second-level cache.
const SLOTS: usize = 4096;

impl<K: Hash + Eq, V> Recent<K, V> {
    pub(super) fn new() -> Self {
        Recent {
            slots: Vec::new(),
            hasher: foldhash::fast::RandomState::default(),
        }
    }

    fn slot(&self, key: &K) -> usize {
        self.hasher.hash_one(key) as usize % SLOTS
    }

    pub(super) fn get(&self, key: &K) -> Option<&V> {
        match self.slots.get(self.slot(key))? {
            Some((k, value)) if k == key => Some(value),
            _ => None,
        }
    }

    /// The value for `key`, made by `make` unless its slot holds it.
    pub(super) fn get_or_insert_with(&mut self, key: K, make: impl FnOnce() -> V) -> &mut V {
        let slot = self.slot(&key);
        let entry = &mut self.slots_mut()[slot];
        if !entry.as_ref().is_some_and(|(k, _)| *k == key) {
            *entry = Some((key, make()));
        }
        &mut entry.as_mut().expect("just filled").1
    }

    pub(super) fn insert(&mut self, key: K, value: V) {
        let slot = self.slot(&key);
        self.slots_mut()[slot] = Some((key, value));
    }

    /// Allocated on first use: a pass that never asks pays nothing.
    fn slots_mut(&mut self) -> &mut [Option<(K, V)>] {
        if self.slots.is_empty() {
            self.slots.resize_with(SLOTS, || None);
        }
        &mut self.slots
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// With more keys than slots, some are forgotten, but no key ever gets another's value.
    #[test]
    fn a_key_gets_its_own_value_or_none() {
        let mut recent = Recent::new();
        let keys = 0..3 * SLOTS as u64;
        for key in keys.clone() {
            recent.insert(key, key * 7);
        }
        let mut kept = 0;
        for key in keys.clone() {
            if let Some(&value) = recent.get(&key) {
                assert_eq!(value, key * 7);
                kept += 1;
            }
        }
        assert!(kept > 0 && kept <= SLOTS, "{kept} kept");
        let made = *recent.get_or_insert_with(u64::MAX, || 1);
        let again = *recent.get_or_insert_with(u64::MAX, || 2);
        assert_eq!((made, again), (1, 1));
    }
}
