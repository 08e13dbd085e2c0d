//! A map that holds at most a fixed number of entries: a new key beyond that lets the least
//! recently used one go, and the map counts what it let go. Per-key state of a long-running agent
//! must not grow with what the host does (a port scan, connects into a black hole, pod churn).

use std::{
    collections::{BTreeMap, HashMap},
    hash::Hash,
};

pub struct Lru<K, V> {
    capacity: usize,
    /// Each entry with the tick of its last use.
    entries: HashMap<K, (V, u64)>,
    /// The same keys by last use, oldest first.
    by_use: BTreeMap<u64, K>,
    tick: u64,
    evicted: u64,
}

impl<K: Hash + Eq + Clone, V> Lru<K, V> {
    pub fn new(capacity: usize) -> Self {
        assert!(capacity > 0, "an Lru holds at least one entry");
        Self {
            capacity,
            entries: HashMap::new(),
            by_use: BTreeMap::new(),
            tick: 0,
            evicted: 0,
        }
    }

    /// The entry of `key`, made by `make` when absent; either way it becomes the most recently
    /// used.
    pub fn get_or_insert_with(&mut self, key: K, make: impl FnOnce() -> V) -> &mut V {
        self.tick += 1;
        let tick = self.tick;
        if let Some((_, used)) = self.entries.get_mut(&key) {
            self.by_use.remove(used);
            *used = tick;
        } else {
            if self.entries.len() == self.capacity {
                self.evict_oldest();
            }
            self.entries.insert(key.clone(), (make(), tick));
        }
        self.by_use.insert(tick, key.clone());
        &mut self.entries.get_mut(&key).expect("just placed").0
    }

    fn evict_oldest(&mut self) {
        if let Some((_, key)) = self.by_use.pop_first() {
            self.entries.remove(&key);
            self.evicted += 1;
        }
    }

    /// Every entry, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.entries.iter().map(|(key, (value, _))| (key, value))
    }

    /// How many entries were let go since the last call.
    pub fn take_evicted(&mut self) -> u64 {
        std::mem::take(&mut self.evicted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_least_recently_used_entry_goes_first_and_is_counted() {
        let mut lru = Lru::new(3);
        for key in 1..=3 {
            *lru.get_or_insert_with(key, || 0) += key;
        }
        // 1 is used again: 2 is now the oldest.
        *lru.get_or_insert_with(1, || 0) += 10;
        lru.get_or_insert_with(4, || 4);
        assert_eq!(lru.iter().count(), 3);
        assert_eq!(lru.take_evicted(), 1);
        let mut kept: Vec<(i32, i32)> = lru.iter().map(|(k, v)| (*k, *v)).collect();
        kept.sort();
        assert_eq!(kept, vec![(1, 11), (3, 3), (4, 4)]);
        // Counted once.
        assert_eq!(lru.take_evicted(), 0);
        for key in 100..1100 {
            lru.get_or_insert_with(key, || 0);
        }
        assert_eq!(lru.iter().count(), 3);
        assert_eq!(lru.take_evicted(), 1000);
    }
}
