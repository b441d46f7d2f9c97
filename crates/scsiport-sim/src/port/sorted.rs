//! A small ordered set for the per-request indexes of the port and the device model.

use std::collections::VecDeque;

/// A set kept as a sorted `VecDeque`: for the few dozen entries a queue depth makes, a binary
/// search and a shift of the shorter side (entries of 16 or 24 bytes) cost a fraction of a
/// B-tree's search, node rebalancing and allocation, and the order is the same: ascending.
#[derive(Clone, Debug)]
pub(crate) struct SortedSet<T> {
    items: VecDeque<T>,
}

impl<T> Default for SortedSet<T> {
    fn default() -> Self {
        Self { items: VecDeque::new() }
    }
}

impl<T: Ord + Copy> SortedSet<T> {
    /// Adds `v`; returns whether it was not there yet.
    pub(crate) fn insert(&mut self, v: T) -> bool {
        // Most entries are deadlines that only grow: a look at the back first.
        if self.items.back().is_none_or(|b| *b < v) {
            self.items.push_back(v);
            return true;
        }
        match self.items.binary_search(&v) {
            Ok(_) => false,
            Err(at) => {
                self.items.insert(at, v);
                true
            }
        }
    }

    /// Removes `v`; returns whether it was there.
    pub(crate) fn remove(&mut self, v: &T) -> bool {
        // Requests mostly complete in the order they started: a look at the front first.
        if self.items.front() == Some(v) {
            return self.items.pop_front().is_some();
        }
        match self.items.binary_search(v) {
            Ok(at) => self.items.remove(at).is_some(),
            Err(_) => false,
        }
    }

    /// The smallest entry.
    pub(crate) fn first(&self) -> Option<&T> {
        self.items.front()
    }

    /// Removes the smallest entry.
    pub(crate) fn pop_first(&mut self) -> Option<T> {
        self.items.pop_front()
    }

    /// The entries from the first one not below `from`, ascending.
    pub(crate) fn at_or_after(&self, from: &T) -> impl Iterator<Item = &T> {
        self.items.range(self.items.partition_point(|x| x < from)..)
    }

    /// The entries up to `upto` (included), ascending.
    pub(crate) fn at_or_before(&self, upto: &T) -> impl Iterator<Item = &T> {
        self.items.range(..self.items.partition_point(|x| x <= upto))
    }

    pub(crate) fn retain(&mut self, f: impl FnMut(&T) -> bool) {
        self.items.retain(f);
    }

    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    pub(crate) fn clear(&mut self) {
        self.items.clear();
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::SortedSet;

    /// Against a `BTreeSet` over a pseudo-random mix of inserts and removes.
    #[test]
    fn it_orders_and_answers_as_a_btreeset_does() {
        let (mut s, mut b) = (SortedSet::default(), BTreeSet::new());
        let mut r = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..5000 {
            r ^= r << 13;
            r ^= r >> 7;
            r ^= r << 17;
            let v = (r >> 8) % 64;
            if r.is_multiple_of(4) {
                assert_eq!(s.remove(&v), b.remove(&v));
            } else {
                assert_eq!(s.insert(v), b.insert(v));
            }
            assert_eq!(s.first(), b.first());
            assert_eq!(s.len(), b.len());
            assert!(s.at_or_after(&v).eq(b.range(v..)));
            assert!(s.at_or_before(&v).eq(b.range(..=v)));
        }
        s.retain(|v| v % 3 == 0);
        b.retain(|v| v % 3 == 0);
        assert!(s.at_or_after(&0).eq(b.iter()));
        s.clear();
        assert_eq!(s.len(), 0);
    }
}
