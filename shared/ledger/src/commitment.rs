//! Incremental state commitment: an ordered, structurally shared map whose contents are
//! committed by a homomorphic multiset hash.
//!
//! # Why
//! The state commitment used to be SHA-256 over the encoding of the whole state, recomputed for
//! every block a node builds or checks, and the state was deep-copied for every candidate block:
//! O(state) per block, which at a few hundred thousand wallets and remembered transactions was
//! the largest cost after signature checks. Here both are O(changes):
//! - the maps are persistent B-trees (`imbl::OrdMap`): a clone shares every node, and an update
//!   copies only the path it touches;
//! - each map carries the LtHash16 sum of its entries, updated on every insert and remove.
//!
//! # Construction (LtHash16)
//! An entry's contribution is 1,024 lanes of `u16`: the first 2,048 bytes of the BLAKE3 XOF of
//! (collection tag, canonical entry encoding) in BLAKE3's key-derivation mode with the context
//! `"cbdc.v1 state entry"` (domain separation from every other hash of the ledger). A set's
//! hash is the lane-wise sum of its entries' contributions modulo 2^16; inserting adds a
//! contribution and removing subtracts it, so the sum depends only on the set, never on the
//! order of updates. This is Bellare–Micciancio's lattice hash with the parameters Lewi, Kim et
//! al. analysed and deployed ("Securing Update Propagation with Homomorphic Hashing", 2019:
//! n = 1,024, 16-bit lanes, more than 200 bits of collision resistance); Solana's accounts
//! lattice hash uses the same parameters with the BLAKE3 XOF. The state root (SHA-256) hashes
//! the three sums (wallets, holders, remembered transactions) with the small parts of the state.
//!
//! The XOF is the cost of the scheme (two per changed entry: the old contribution out, the new
//! one in). BLAKE3's XOF produces the 2 KiB in about 0.4 µs on this project's machine, against
//! about 1 µs for a SHA-256-seeded ChaCha20 stream, the first construction measured.
//!
//! # Invariants
//! - `sum` is always the LtHash of exactly the entries in `map` (`check` recomputes it).
//! - Entries are committed by their canonical encoding, which includes the key, so two maps with
//!   the same sum hold the same entries (up to the hash's collision resistance).

use crate::codec::Writer;
use imbl::OrdMap;
use std::fmt;

/// BLAKE3 key-derivation context of entry contributions.
const ENTRY_CONTEXT: &str = "cbdc.v1 state entry";

/// Number of 16-bit lanes of a set hash.
pub const LANES: usize = 1024;

/// The LtHash16 of a multiset of entries.
#[derive(Clone, PartialEq, Eq)]
pub struct SetHash([u16; LANES]);

impl Default for SetHash {
    fn default() -> Self {
        SetHash([0; LANES])
    }
}

impl fmt::Debug for SetHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes = self.to_bytes();
        write!(f, "SetHash({}…)", hex::encode(bytes.get(..8).unwrap_or_default()))
    }
}

impl SetHash {
    /// The contribution of one entry of collection `tag`.
    fn contribution(tag: &[u8], entry: &[u8]) -> [u16; LANES] {
        let mut hasher = blake3::Hasher::new_derive_key(ENTRY_CONTEXT);
        hasher.update(&(tag.len() as u64).to_be_bytes());
        hasher.update(tag);
        hasher.update(entry);
        let mut bytes = [0u8; 2 * LANES];
        hasher.finalize_xof().fill(&mut bytes);
        let mut lanes = [0u16; LANES];
        for (lane, pair) in lanes.iter_mut().zip(bytes.chunks_exact(2)) {
            if let &[lo, hi] = pair {
                *lane = u16::from_le_bytes([lo, hi]);
            }
        }
        lanes
    }

    fn add(&mut self, lanes: &[u16; LANES]) {
        for (a, b) in self.0.iter_mut().zip(lanes) {
            *a = a.wrapping_add(*b);
        }
    }

    fn sub(&mut self, lanes: &[u16; LANES]) {
        for (a, b) in self.0.iter_mut().zip(lanes) {
            *a = a.wrapping_sub(*b);
        }
    }

    /// The lanes, little-endian (what the state root hashes).
    pub fn to_bytes(&self) -> Vec<u8> {
        self.0.iter().flat_map(|l| l.to_le_bytes()).collect()
    }
}

/// A value committed as an entry of a [`CommittedMap`]: its canonical encoding with its key.
pub trait CommittedEntry<K>: Clone + PartialEq {
    /// Tag of the collection (part of every contribution, so collections cannot be confused).
    const TAG: &'static [u8];
    fn encode_entry(&self, key: &K, w: &mut Writer);
}

/// An ordered, structurally shared map whose entries are committed by a [`SetHash`].
#[derive(Clone)]
pub struct CommittedMap<K: Ord + Clone, V: Clone> {
    map: OrdMap<K, V>,
    sum: SetHash,
}

impl<K: Ord + Clone, V: Clone> Default for CommittedMap<K, V> {
    fn default() -> Self {
        CommittedMap { map: OrdMap::new(), sum: SetHash::default() }
    }
}

impl<K: Ord + Clone + fmt::Debug, V: Clone + fmt::Debug> fmt::Debug for CommittedMap<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CommittedMap")
            .field("len", &self.map.len())
            .field("sum", &self.sum)
            .finish()
    }
}

impl<K: Ord + Clone, V: Clone + PartialEq> PartialEq for CommittedMap<K, V> {
    fn eq(&self, other: &Self) -> bool {
        self.sum == other.sum && self.map == other.map
    }
}

impl<K: Ord + Clone, V: Clone + Eq> Eq for CommittedMap<K, V> {}

impl<K: Ord + Clone, V: CommittedEntry<K>> CommittedMap<K, V> {
    fn contribution(key: &K, value: &V) -> [u16; LANES] {
        let mut w = Writer::with_capacity(128);
        value.encode_entry(key, &mut w);
        SetHash::contribution(V::TAG, w.as_bytes())
    }

    pub fn get(&self, key: &K) -> Option<&V> {
        self.map.get(key)
    }

    pub fn contains_key(&self, key: &K) -> bool {
        self.map.contains_key(key)
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Entries in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.map.iter()
    }

    /// Values in key order.
    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.map.values()
    }

    /// The entry with the greatest key.
    pub fn last(&self) -> Option<&(K, V)> {
        self.map.get_max()
    }

    /// Inserts or replaces an entry, returning the old value; the sum follows.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        if self.map.get(&key).is_some_and(|old| *old == value) {
            // An unchanged entry contributes what it already did.
            return Some(value);
        }
        self.sum.add(&Self::contribution(&key, &value));
        let old = self.map.insert(key.clone(), value);
        if let Some(old) = &old {
            self.sum.sub(&Self::contribution(&key, old));
        }
        old
    }

    /// Removes an entry, returning it; the sum follows.
    pub fn remove(&mut self, key: &K) -> Option<V> {
        let old = self.map.remove(key);
        if let Some(old) = &old {
            self.sum.sub(&Self::contribution(key, old));
        }
        old
    }

    /// The set hash of the entries.
    pub fn sum(&self) -> &SetHash {
        &self.sum
    }

    /// Recomputes the set hash from the entries: `true` if it equals the maintained one.
    pub fn check(&self) -> bool {
        let mut sum = SetHash::default();
        for (k, v) in self.map.iter() {
            sum.add(&Self::contribution(k, v));
        }
        sum == self.sum
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Eq)]
    struct Entry(u64);

    impl CommittedEntry<u32> for Entry {
        const TAG: &'static [u8] = b"test";
        fn encode_entry(&self, key: &u32, w: &mut Writer) {
            w.u32(*key);
            w.u64(self.0);
        }
    }

    fn map_of(entries: &[(u32, u64)]) -> CommittedMap<u32, Entry> {
        let mut m = CommittedMap::default();
        for (k, v) in entries {
            m.insert(*k, Entry(*v));
        }
        m
    }

    #[test]
    fn the_sum_depends_on_the_set_not_the_order_of_updates() {
        let forward = map_of(&[(1, 10), (2, 20), (3, 30)]);
        let backward = map_of(&[(3, 30), (2, 20), (1, 10)]);
        assert_eq!(forward.sum(), backward.sum());
        // Overwrites and removals end where a direct build of the final set ends.
        let mut edited = map_of(&[(1, 99), (2, 20), (4, 40), (3, 31)]);
        edited.insert(1, Entry(10));
        edited.insert(3, Entry(30));
        assert_eq!(edited.remove(&4), Some(Entry(40)));
        assert_eq!(edited.remove(&4), None);
        assert_eq!(edited.sum(), forward.sum());
        assert!(edited.check() && forward.check());
    }

    #[test]
    fn any_difference_in_an_entry_changes_the_sum() {
        let base = map_of(&[(1, 10), (2, 20)]);
        assert_ne!(base.sum(), map_of(&[(1, 10), (2, 21)]).sum(), "a value");
        assert_ne!(base.sum(), map_of(&[(1, 10), (3, 20)]).sum(), "a key");
        assert_ne!(base.sum(), map_of(&[(1, 10)]).sum(), "a missing entry");
        assert_ne!(base.sum(), map_of(&[(1, 10), (2, 20), (2 << 20, 0)]).sum(), "an extra entry");
        let mut emptied = base.clone();
        emptied.remove(&1);
        emptied.remove(&2);
        assert_eq!(emptied.sum(), &SetHash::default());
    }

    #[test]
    fn a_clone_shares_nothing_observable_with_its_origin() {
        let base = map_of(&[(1, 10), (2, 20)]);
        let mut next = base.clone();
        next.insert(2, Entry(25));
        assert_eq!(base.get(&2), Some(&Entry(20)));
        assert_ne!(base.sum(), next.sum());
        assert!(base.check() && next.check());
    }
}
