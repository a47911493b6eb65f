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
//! An entry's contribution is 1,024 lanes of `u16` (2,048 bytes, little-endian): the ChaCha12
//! keystream (nonce zero) under a 32-byte seed, the BLAKE3 hash of (collection tag, canonical
//! entry encoding) in BLAKE3's key-derivation mode with the context `"cbdc.v2 state entry
//! seed"` (domain separation from every other hash of the ledger). A set's hash is the lane-wise
//! sum of its entries' contributions modulo 2^16; inserting adds a contribution and removing
//! subtracts it, so the sum depends only on the set, never on the order of updates. This is
//! Bellare–Micciancio's lattice hash with the parameters Lewi, Kim et al. analysed and deployed
//! ("Securing Update Propagation with Homomorphic Hashing", 2019: n = 1,024, 16-bit lanes, more
//! than 200 bits of collision resistance for the lattice part). The state root (SHA-256) hashes
//! the three sums (wallets, holders, remembered transactions) with the small parts of the state.
//!
//! Expanding a hashed seed with a stream cipher, rather than taking 2 KiB from the hash's own
//! XOF, is the construction Kyber-90s used to expand its public matrix (AES-256-CTR from a
//! hashed seed): a collision of contributions needs a collision of the 256-bit seeds (128-bit
//! security, the level of the SHA-256 state root itself) or a break of ChaCha12 as a PRG. The
//! reason is cost. The contribution is the scheme's whole price (two per changed entry: the old
//! one out, the new one in), and BLAKE3's XOF fills its 32 output blocks one compression at a
//! time except on AVX-512 (the `blake3` crate has a multi-block XOF only there): about 3 µs per
//! contribution on an AVX2 host, against about 0.3 µs for the seed plus 0.8 µs for ChaCha12's
//! 2 KiB, which its AVX2 backend computes four blocks at a time (docs/BENCHMARKS.md). Two more
//! things keep the count and the cost down:
//! - the key-derivation hasher is prepared once and copied (deriving the context key again for
//!   every contribution cost another ~0.1 µs each);
//! - during a block the maps only note each written key's value before the block, and the sums
//!   are settled once per changed entry at the end ([`CommittedMap::defer`]): an entry written
//!   several times in a block (a bank's float on every top-up, a busy merchant) costs two
//!   contributions, not two per write, and a dry run, never settled, costs none.
//!
//! # Invariants
//! - Outside a block, `sum` is always the LtHash of exactly the entries in `map` (`check`
//!   recomputes it); inside, `sum` is that of the map before the block and `pending` holds every
//!   key's value from then, so `sum()` (which folds `pending` in) is always the map's LtHash.
//! - A ledger (a state with a root) is only built from a settled state.
//! - Entries are committed by their canonical encoding, which includes the key, so two maps with
//!   the same sum hold the same entries (up to the hash's collision resistance).

use crate::codec::Writer;
use chacha20::ChaCha12;
use chacha20::cipher::{KeyIvInit, StreamCipher};
use imbl::OrdMap;
use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::fmt;
use std::sync::LazyLock;

/// BLAKE3 key-derivation context of the seeds of entry contributions.
const ENTRY_CONTEXT: &str = "cbdc.v2 state entry seed";

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
    /// The bytes of one entry's contribution to collection `tag` (its lanes, little-endian):
    /// ChaCha12's keystream under the entry's BLAKE3 seed.
    fn contribution_bytes(tag: &[u8], entry: &[u8]) -> [u8; 2 * LANES] {
        let seed = Self::seed(tag, entry);
        let mut bytes = [0u8; 2 * LANES];
        // 2 KiB is 32 ChaCha blocks, far inside the 2^32 blocks of one nonce.
        ChaCha12::new(&seed.into(), &[0u8; 12].into()).apply_keystream(&mut bytes);
        bytes
    }

    /// The 32-byte seed of one entry of collection `tag`.
    fn seed(tag: &[u8], entry: &[u8]) -> [u8; 32] {
        // Deriving the context key hashes the context string: done once, then the prepared
        // hasher is copied (the same output as `Hasher::new_derive_key` every time).
        static ENTRY_HASHER: LazyLock<blake3::Hasher> =
            LazyLock::new(|| blake3::Hasher::new_derive_key(ENTRY_CONTEXT));
        let mut hasher = ENTRY_HASHER.clone();
        hasher.update(&(tag.len() as u64).to_be_bytes());
        hasher.update(tag);
        hasher.update(entry);
        *hasher.finalize().as_bytes()
    }

    /// Adds (or with `negate`, subtracts) a contribution given as its bytes.
    fn apply(&mut self, bytes: &[u8; 2 * LANES], negate: bool) {
        for (a, pair) in self.0.iter_mut().zip(bytes.chunks_exact(2)) {
            if let &[lo, hi] = pair {
                let b = u16::from_le_bytes([lo, hi]);
                *a = if negate { a.wrapping_sub(b) } else { a.wrapping_add(b) };
            }
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
///
/// Outside a block every write updates the sum at once. While a block executes
/// ([`CommittedMap::defer`]) writes only record what each key held before its first change;
/// [`CommittedMap::settle`] then takes each changed key's old contribution out and its final one
/// in, once per key however often the block changed it (a bank's float, a busy merchant), and
/// not at all for a dry run that is never settled.
#[derive(Clone)]
pub struct CommittedMap<K: Ord + Clone, V: Clone> {
    map: OrdMap<K, V>,
    /// The set hash of `map` when `pending` is `None`; of `map` as it was before the deferred
    /// writes otherwise.
    sum: SetHash,
    /// While deferred: the value each key written since [`CommittedMap::defer`] had before
    /// (`None`: absent). Bounded by the writes of one block.
    pending: Option<BTreeMap<K, Option<V>>>,
}

impl<K: Ord + Clone, V: Clone> Default for CommittedMap<K, V> {
    fn default() -> Self {
        CommittedMap { map: OrdMap::new(), sum: SetHash::default(), pending: None }
    }
}

impl<K: Ord + Clone + fmt::Debug, V: Clone + fmt::Debug> fmt::Debug for CommittedMap<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CommittedMap")
            .field("len", &self.map.len())
            .field("sum", &self.sum)
            .field("pending", &self.pending.as_ref().map(BTreeMap::len))
            .finish()
    }
}

impl<K: Ord + Clone, V: CommittedEntry<K>> PartialEq for CommittedMap<K, V> {
    fn eq(&self, other: &Self) -> bool {
        self.map == other.map && self.sum() == other.sum()
    }
}

impl<K: Ord + Clone, V: CommittedEntry<K> + Eq> Eq for CommittedMap<K, V> {}

impl<K: Ord + Clone, V: CommittedEntry<K>> CommittedMap<K, V> {
    fn contribution(key: &K, value: &V) -> [u8; 2 * LANES] {
        let mut w = Writer::with_capacity(128);
        value.encode_entry(key, &mut w);
        SetHash::contribution_bytes(V::TAG, w.as_bytes())
    }

    /// The set hash of the entries: with deferred writes accounted for, without settling them.
    pub fn sum(&self) -> SetHash {
        let mut sum = self.sum.clone();
        if let Some(pending) = &self.pending {
            for (key, before) in pending {
                Self::fold(&mut sum, key, before.as_ref(), self.map.get(key));
            }
        }
        sum
    }

    /// Moves `sum` from an entry's `before` to its `after` (absent when `None`).
    fn fold(sum: &mut SetHash, key: &K, before: Option<&V>, after: Option<&V>) {
        if before == after {
            // An unchanged entry contributes what it already did.
            return;
        }
        if let Some(before) = before {
            sum.apply(&Self::contribution(key, before), true);
        }
        if let Some(after) = after {
            sum.apply(&Self::contribution(key, after), false);
        }
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

    /// Inserts or replaces an entry, returning the old value; the sum follows (at once, or
    /// when settled).
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        match &mut self.pending {
            Some(pending) => {
                let old = self.map.insert(key.clone(), value);
                Self::record(pending, key, &old);
                old
            }
            None => {
                let old = self.map.insert(key.clone(), value.clone());
                Self::fold(&mut self.sum, &key, old.as_ref(), Some(&value));
                old
            }
        }
    }

    /// Removes an entry, returning it; the sum follows (at once, or when settled).
    pub fn remove(&mut self, key: &K) -> Option<V> {
        let old = self.map.remove(key);
        if old.is_some() {
            match &mut self.pending {
                Some(pending) => Self::record(pending, key.clone(), &old),
                None => Self::fold(&mut self.sum, key, old.as_ref(), None),
            }
        }
        old
    }

    /// Deferred: remembers what `key` held before its first write since [`CommittedMap::defer`].
    fn record(pending: &mut BTreeMap<K, Option<V>>, key: K, old: &Option<V>) {
        if let Entry::Vacant(slot) = pending.entry(key) {
            slot.insert(old.clone());
        }
    }

    /// From now until [`CommittedMap::settle`], writes defer their sum updates.
    pub fn defer(&mut self) {
        if self.pending.is_none() {
            self.pending = Some(BTreeMap::new());
        }
    }

    /// Brings the sum up to date with the deferred writes, once per written key.
    pub fn settle(&mut self) {
        let Some(pending) = self.pending.take() else { return };
        for (key, before) in &pending {
            Self::fold(&mut self.sum, key, before.as_ref(), self.map.get(key));
        }
    }

    /// Recomputes the set hash from the entries: `true` if it equals the maintained one.
    pub fn check(&self) -> bool {
        let mut sum = SetHash::default();
        for (k, v) in self.map.iter() {
            sum.apply(&Self::contribution(k, v), false);
        }
        sum == self.sum()
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
        assert_eq!(emptied.sum(), SetHash::default());
    }

    #[test]
    fn deferred_writes_settle_to_the_sum_of_immediate_ones() {
        let start = [(1, 10), (2, 20), (3, 30), (7, 70)];
        // Repeated writes to one key, a write back to the original value, a remove and
        // re-insert, a remove of an absent key, an insert then remove of a new key.
        let writes: &[(u32, Option<u64>)] = &[
            (1, Some(11)),
            (1, Some(12)),
            (1, Some(13)),
            (2, Some(21)),
            (2, Some(20)),
            (3, None),
            (3, Some(33)),
            (4, None),
            (5, Some(50)),
            (5, None),
            (6, Some(60)),
            (7, None),
        ];
        let apply = |m: &mut CommittedMap<u32, Entry>| {
            for (k, v) in writes {
                match v {
                    Some(v) => m.insert(*k, Entry(*v)),
                    None => m.remove(k),
                };
            }
        };
        let mut immediate = map_of(&start);
        apply(&mut immediate);
        let mut deferred = map_of(&start);
        let before = deferred.clone();
        deferred.defer();
        apply(&mut deferred);
        // Before settling, the sum is already the right one (computed, not kept), and the
        // map is consistent.
        assert_eq!(deferred.sum(), immediate.sum());
        assert!(deferred.check());
        assert!(deferred == immediate);
        deferred.settle();
        assert_eq!(deferred.sum(), immediate.sum());
        assert_eq!(deferred.sum(), map_of(&[(1, 13), (2, 20), (3, 33), (6, 60)]).sum());
        assert!(deferred.check() && immediate.check());
        // The state the deferral started from is untouched, and a second settle is a no-op.
        assert_eq!(before.sum(), map_of(&start).sum());
        deferred.settle();
        assert_eq!(deferred.sum(), immediate.sum());
        // After settling, writes are immediate again.
        deferred.insert(9, Entry(90));
        immediate.insert(9, Entry(90));
        assert_eq!(deferred.pending.as_ref().map(BTreeMap::len), None);
        assert_eq!(deferred.sum(), immediate.sum());
    }

    #[test]
    fn contributions_are_those_of_the_documented_construction() {
        // The prepared hasher must give exactly `Hasher::new_derive_key(ENTRY_CONTEXT)`'s
        // output, and the expansion exactly ChaCha12's keystream: the state roots of existing
        // chains depend on both.
        let mut fresh = blake3::Hasher::new_derive_key("cbdc.v2 state entry seed");
        fresh.update(&4u64.to_be_bytes());
        fresh.update(b"test");
        fresh.update(b"entry");
        let seed = *fresh.finalize().as_bytes();
        assert_eq!(SetHash::seed(b"test", b"entry"), seed);
        let mut expected = [0u8; 2 * LANES];
        ChaCha12::new(&seed.into(), &[0u8; 12].into()).apply_keystream(&mut expected);
        assert_eq!(SetHash::contribution_bytes(b"test", b"entry"), expected);
        assert_eq!(SetHash::contribution_bytes(b"test", b"entry"), expected, "twice");
        // Frozen: the first and last bytes of this contribution (a change of construction
        // shows here before it shows in a block hash).
        let bytes = SetHash::contribution_bytes(b"test", b"entry");
        let ends = [bytes.get(..8), bytes.get(2 * LANES - 8..)];
        let ends = ends.map(|b| hex::encode(b.unwrap_or_default()));
        assert_eq!(ends, [FROZEN_HEAD, FROZEN_TAIL]);
    }

    const FROZEN_HEAD: &str = "a9d622c2a5e67e68";
    const FROZEN_TAIL: &str = "3c36b7fdf5916afd";

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
