//! A small ordered set and map for the per-request indexes of the port and the device model.

/// A set kept as a sorted `Vec`: for the few dozen entries a queue depth makes, a binary
/// search over one contiguous slice and a shift of the entries after the place (16 or 24 bytes
/// each) cost a fraction of a B-tree's search, node rebalancing and allocation, and the order is
/// the same: ascending. Its entries are deadlines and due times, added at the back (they grow)
/// and mostly removed first: the first entry is taken by moving where the set starts (`head`),
/// not the entries after it, and the taken places are given back once they are half the `Vec`.
/// (A `VecDeque` would make taking the first entry free too, but every search and walk would
/// then straddle its two halves: more instructions per I/O, measured.)
#[derive(Clone, Debug)]
pub(crate) struct SortedSet<T> {
    items: Vec<T>,
    /// Where the set starts in `items`: the places before are taken entries.
    head: usize,
}

impl<T> Default for SortedSet<T> {
    fn default() -> Self {
        Self { items: Vec::new(), head: 0 }
    }
}

/// Taken places kept at most before they are given back (and only when they are half of all).
const TAKEN_KEPT: usize = 32;

impl<T: Ord + Copy> SortedSet<T> {
    fn live(&self) -> &[T] {
        self.items.get(self.head..).unwrap_or_default()
    }

    /// Adds `v`; returns whether it was not there yet.
    pub(crate) fn insert(&mut self, v: T) -> bool {
        // Most entries are deadlines that only grow: a look at the back first.
        if self.live().last().is_none_or(|b| *b < v) {
            self.items.push(v);
            return true;
        }
        match self.live().binary_search(&v) {
            Ok(_) => false,
            Err(at) => {
                self.items.insert(self.head + at, v);
                true
            }
        }
    }

    /// Removes `v`; returns whether it was there.
    pub(crate) fn remove(&mut self, v: &T) -> bool {
        match self.live().binary_search(v) {
            Ok(0) => {
                self.take_first();
                true
            }
            Ok(at) => {
                self.items.remove(self.head + at);
                true
            }
            Err(_) => false,
        }
    }

    /// Moves the start past the first entry, giving the taken places back when they are many.
    fn take_first(&mut self) {
        self.head += 1;
        if self.head == self.items.len() {
            self.items.clear();
            self.head = 0;
        } else if self.head >= TAKEN_KEPT && self.head * 2 >= self.items.len() {
            self.items.drain(..self.head);
            self.head = 0;
        }
    }

    /// The smallest entry.
    pub(crate) fn first(&self) -> Option<&T> {
        self.live().first()
    }

    /// Removes the smallest entry.
    pub(crate) fn pop_first(&mut self) -> Option<T> {
        let v = self.live().first().copied()?;
        self.take_first();
        Some(v)
    }

    /// The entries from the first one not below `from`, ascending.
    pub(crate) fn at_or_after(&self, from: &T) -> impl Iterator<Item = &T> {
        let live = self.live();
        live.iter().skip(live.partition_point(|x| x < from))
    }

    /// The entries up to `upto` (included), ascending.
    pub(crate) fn at_or_before(&self, upto: &T) -> impl Iterator<Item = &T> {
        let live = self.live();
        live.iter().take(live.partition_point(|x| x <= upto))
    }

    pub(crate) fn retain(&mut self, f: impl FnMut(&T) -> bool) {
        self.items.drain(..self.head);
        self.head = 0;
        self.items.retain(f);
    }

    pub(crate) fn len(&self) -> usize {
        self.live().len()
    }

    pub(crate) fn clear(&mut self) {
        self.items.clear();
        self.head = 0;
    }
}

/// A map kept as a `Vec` of pairs sorted by key: the same contract and the same (ascending)
/// order as a `BTreeMap`, for the port's tables that hold a queue depth's worth of entries
/// (the outstanding SRBs) or a handful (the LUs). A binary search over a few dozen keys and a
/// shift of 16-byte pairs cost a fraction of a B-tree's node walk, and an entry's value is
/// reached without the tree's pointer chasing on every look-up of the I/O path.
#[derive(Debug)]
pub(crate) struct SortedMap<K, V> {
    items: Vec<(K, V)>,
}

impl<K, V> Default for SortedMap<K, V> {
    fn default() -> Self {
        Self { items: Vec::new() }
    }
}

impl<K: Ord + Copy, V> SortedMap<K, V> {
    fn find(&self, k: &K) -> Result<usize, usize> {
        self.items.binary_search_by(|(x, _)| x.cmp(k))
    }

    pub(crate) fn get(&self, k: &K) -> Option<&V> {
        let at = self.find(k).ok()?;
        self.items.get(at).map(|(_, v)| v)
    }

    pub(crate) fn get_mut(&mut self, k: &K) -> Option<&mut V> {
        let at = self.find(k).ok()?;
        self.items.get_mut(at).map(|(_, v)| v)
    }

    pub(crate) fn contains_key(&self, k: &K) -> bool {
        self.find(k).is_ok()
    }

    /// Adds or replaces; returns the value it replaced.
    pub(crate) fn insert(&mut self, k: K, v: V) -> Option<V> {
        match self.find(&k) {
            Ok(at) => self.items.get_mut(at).map(|(_, old)| std::mem::replace(old, v)),
            Err(at) => {
                self.items.insert(at, (k, v));
                None
            }
        }
    }

    pub(crate) fn remove(&mut self, k: &K) -> Option<V> {
        let at = self.find(k).ok()?;
        Some(self.items.remove(at).1)
    }

    /// `BTreeMap::entry(k).or_default()`. The insertion is out of line: the key is nearly
    /// always there, and a default value built inline (an LU is a few hundred bytes) would make
    /// every call pay for its stack frame.
    #[inline]
    pub(crate) fn entry_or_default(&mut self, k: K) -> &mut V
    where
        V: Default,
    {
        let at = match self.find(&k) {
            Ok(at) => at,
            Err(at) => self.insert_default(at, k),
        };
        // In bounds: found there, or just inserted there.
        &mut self.items[at].1
    }

    #[cold]
    #[inline(never)]
    fn insert_default(&mut self, at: usize, k: K) -> usize
    where
        V: Default,
    {
        self.items.insert(at, (k, V::default()));
        at
    }

    pub(crate) fn iter(&self) -> impl DoubleEndedIterator<Item = (&K, &V)> {
        self.items.iter().map(|(k, v)| (k, v))
    }

    pub(crate) fn values(&self) -> impl DoubleEndedIterator<Item = &V> {
        self.items.iter().map(|(_, v)| v)
    }

    pub(crate) fn values_mut(&mut self) -> impl DoubleEndedIterator<Item = &mut V> {
        self.items.iter_mut().map(|(_, v)| v)
    }

    /// The entries with a key above `k`, then those up to `k` (included): a round-robin that
    /// starts after `k`.
    pub(crate) fn after_then_upto(&self, k: &K) -> impl Iterator<Item = (&K, &V)> {
        let split = self.items.partition_point(|(x, _)| x <= k);
        let (upto, after) = self.items.split_at(split);
        after.iter().chain(upto).map(|(k, v)| (k, v))
    }

    pub(crate) fn retain(&mut self, mut f: impl FnMut(&K, &mut V) -> bool) {
        self.items.retain_mut(|(k, v)| f(k, v));
    }

    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::{SortedMap, SortedSet};

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
            match r % 8 {
                0 | 1 => assert_eq!(s.remove(&v), b.remove(&v)),
                // The first entry taken, as deadlines are: by value and by `pop_first`.
                2 => assert_eq!(b.first().copied().map(|f| s.remove(&f)), b.pop_first().map(|_| true)),
                3 => assert_eq!(s.pop_first(), b.pop_first()),
                _ => assert_eq!(s.insert(v), b.insert(v)),
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
        // Deadlines: growing, taken mostly first, a queue depth's worth at a time, so that the
        // taken places are given back again and again.
        b.clear();
        for t in 1000..3000u64 {
            assert_eq!(s.insert(t), b.insert(t));
            if t % 7 == 0 {
                assert_eq!(s.remove(&(t - 20)), b.remove(&(t - 20)));
            }
            if t >= 1032 {
                let f = *b.first().unwrap();
                assert!(s.remove(&f) && b.remove(&f));
            }
            assert_eq!((s.first(), s.len()), (b.first(), b.len()));
            assert!(s.at_or_before(&t).eq(b.range(..=t)));
            assert!(s.items.len() - s.len() <= 2 * super::TAKEN_KEPT + s.len(), "taken places are given back");
        }
    }

    /// Against a `BTreeMap` over the same kind of mix, values included.
    #[test]
    fn it_maps_and_orders_as_a_btreemap_does() {
        let (mut s, mut b) = (SortedMap::default(), BTreeMap::new());
        let mut r = 0x2545_F491_4F6C_DD1Du64;
        for i in 0..5000u64 {
            r ^= r << 13;
            r ^= r >> 7;
            r ^= r << 17;
            let k = (r >> 8) % 48;
            match r % 5 {
                0 => assert_eq!(s.remove(&k), b.remove(&k)),
                1 => {
                    *s.entry_or_default(k) += i;
                    *b.entry(k).or_default() += i;
                }
                2 => {
                    if let (Some(x), Some(y)) = (s.get_mut(&k), b.get_mut(&k)) {
                        *x ^= i;
                        *y ^= i;
                    }
                }
                _ => assert_eq!(s.insert(k, i), b.insert(k, i)),
            }
            assert_eq!(s.get(&k), b.get(&k));
            assert_eq!(s.contains_key(&k), b.contains_key(&k));
            assert_eq!((s.len(), s.is_empty()), (b.len(), b.is_empty()));
            assert!(s.iter().eq(b.iter()));
            assert!(s.after_then_upto(&k).eq(b.range(k + 1..).chain(b.range(..=k))));
        }
        s.retain(|k, v| (k + *v) % 3 == 0);
        b.retain(|k, v| (k + *v) % 3 == 0);
        assert!(s.values().eq(b.values()));
        for (x, y) in s.values_mut().zip(b.values_mut()) {
            *x += 1;
            *y += 1;
        }
        assert!(s.iter().eq(b.iter()));
    }
}
