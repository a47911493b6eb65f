//! Hashing, signing and consensus-safe signature verification.
//!
//! - Hashes are SHA-256 (`ring`), always over a domain-separation tag followed by a canonical
//!   encoding, so a digest of one kind of object can never be confused with another's.
//! - Signing uses `ring`'s Ed25519 from a 32-byte seed. Key generation (randomness) belongs to the
//!   services; this crate only ever derives keys from seeds it is given.
//! - Verification follows ZIP-215: single signatures through `ed25519-zebra`, batches through
//!   this module's own batch equation on `curve25519-dalek` (the same equation `ed25519-zebra`'s
//!   batch verifier uses: cofactored, keys and `R` decompressed the same way, `s` canonical), so
//!   batch and single accept exactly the same set of signatures on every node. Batch
//!   coefficients are 128-bit values drawn from a BLAKE3 stream keyed by a hash of the whole
//!   batch (Fiat-Shamir), which keeps this crate deterministic while an attacker still cannot
//!   choose signatures after seeing the coefficients.
//! - A [`KeyCache`] keeps decompressed public keys: decompressing a point is about a fifth of a
//!   verification, and a payer's key is the same in every payment it signs.

use crate::codec::{Decode, DecodeError, Encode, Reader, Writer};
use crate::types::{Digest, PublicKey};
use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{IsIdentity, VartimeMultiscalarMul};
use ring::digest;
use ring::signature::{Ed25519KeyPair, KeyPair};
use sha2::Digest as _;
use std::collections::BTreeMap;
use std::fmt;
use thiserror::Error;

/// Signing-domain and hashing-domain tags. Each is unique and part of every payload it covers.
pub mod domain {
    pub const GENESIS: &[u8] = b"cbdc.v1.genesis";
    pub const BLOCK_HEADER: &[u8] = b"cbdc.v1.block-header";
    pub const TX: &[u8] = b"cbdc.v1.tx";
    pub const MERKLE_LEAF: &[u8] = b"cbdc.v1.merkle.leaf";
    pub const MERKLE_NODE: &[u8] = b"cbdc.v1.merkle.node";
    pub const MERKLE_EMPTY: &[u8] = b"cbdc.v1.merkle.empty";
    pub const STATE: &[u8] = b"cbdc.v1.state";
    pub const BATCH_SEED: &[u8] = b"cbdc.v1.batch-verify-seed";
    /// BLAKE3 key-derivation context of the batch coefficients' stream.
    pub const BATCH_COEFFICIENTS: &str = "cbdc.v1 batch-verify coefficients";
}

/// SHA-256 over a domain tag and the given parts, each part length-prefixed so that part
/// boundaries are unambiguous.
pub fn hash_parts(domain: &[u8], parts: &[&[u8]]) -> Digest {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(&(domain.len() as u64).to_be_bytes());
    ctx.update(domain);
    for part in parts {
        ctx.update(&(part.len() as u64).to_be_bytes());
        ctx.update(part);
    }
    let out = ctx.finish();
    let mut d = [0u8; 32];
    d.copy_from_slice(out.as_ref());
    d
}

/// An Ed25519 signature.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature(pub [u8; 64]);

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({})", hex::encode(self.0))
    }
}

impl Encode for Signature {
    fn encode_to(&self, w: &mut Writer) {
        w.fixed(&self.0);
    }
}

impl Decode for Signature {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Signature(r.array::<64>("signature")?))
    }
}

/// A key that is not a valid Ed25519 seed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid Ed25519 seed")]
pub struct InvalidSeed;

/// An Ed25519 signing key held in memory. Services wrap this behind their signer interface.
pub struct SigningKey {
    pair: Ed25519KeyPair,
    public: PublicKey,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print secret material.
        write!(f, "SigningKey({})", self.public)
    }
}

impl SigningKey {
    pub fn from_seed(seed: &[u8; 32]) -> Result<SigningKey, InvalidSeed> {
        let pair = Ed25519KeyPair::from_seed_unchecked(seed).map_err(|_| InvalidSeed)?;
        let mut public = [0u8; 32];
        public.copy_from_slice(pair.public_key().as_ref());
        Ok(SigningKey { pair, public: PublicKey(public) })
    }

    pub fn public_key(&self) -> PublicKey {
        self.public
    }

    pub fn sign(&self, message: &[u8]) -> Signature {
        let sig = self.pair.sign(message);
        let mut out = [0u8; 64];
        out.copy_from_slice(sig.as_ref());
        Signature(out)
    }
}

/// Verifies one signature under ZIP-215 rules.
pub fn verify_one(key: &PublicKey, message: &[u8], sig: &Signature) -> bool {
    match ed25519_zebra::VerificationKey::try_from(key.0) {
        Ok(vk) => vk.verify(&ed25519_zebra::Signature::from(sig.0), message).is_ok(),
        Err(_) => false,
    }
}

/// One signature to check: key, message, signature.
#[derive(Debug, Clone, Copy)]
pub struct SigItem<'a> {
    pub key: &'a PublicKey,
    pub message: &'a [u8],
    pub signature: &'a Signature,
}

/// Decompressed Ed25519 public keys, kept so that a key signing again is not decompressed
/// again. Direct-mapped (a key's slot is fixed by its first bytes; a colliding key replaces
/// the one there), so it is bounded and each lookup is O(1); the full key is compared, so a
/// collision only costs a decompression. Only keys that decompress are kept.
pub struct KeyCache {
    slots: Vec<Option<(PublicKey, EdwardsPoint)>>,
    hits: u64,
    misses: u64,
}

impl fmt::Debug for KeyCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyCache")
            .field("slots", &self.slots.len())
            .field("hits", &self.hits)
            .field("misses", &self.misses)
            .finish()
    }
}

impl KeyCache {
    /// Slots of a validator's cache: 32,768 keys, about 6 MiB.
    pub const DEFAULT_SLOTS: usize = 1 << 15;

    /// A cache of `slots` keys (rounded up to a power of two); `0` keeps nothing.
    pub fn new(slots: usize) -> KeyCache {
        let slots = if slots == 0 { 0 } else { slots.next_power_of_two() };
        KeyCache { slots: vec![None; slots], hits: 0, misses: 0 }
    }

    /// Lookups answered from the cache, and lookups that decompressed the key.
    pub fn stats(&self) -> (u64, u64) {
        (self.hits, self.misses)
    }

    /// The key as a curve point, or `None` if it does not decompress.
    fn point(&mut self, key: &PublicKey) -> Option<EdwardsPoint> {
        let mask = self.slots.len().wrapping_sub(1);
        let mut first = [0u8; 8];
        first.copy_from_slice(&key.0[..8]);
        let index = usize::try_from(u64::from_le_bytes(first)).unwrap_or(usize::MAX) & mask;
        if let Some(Some((cached, point))) = self.slots.get(index)
            && cached == key
        {
            self.hits = self.hits.wrapping_add(1);
            return Some(*point);
        }
        self.misses = self.misses.wrapping_add(1);
        let point = CompressedEdwardsY(key.0).decompress()?;
        if let Some(slot) = self.slots.get_mut(index) {
            *slot = Some((*key, point));
        }
        Some(point)
    }
}

/// Verifies a batch; `true` only if every signature is valid. Accepts exactly what
/// [`verify_one`] accepts for each item (ZIP-215), so a `false` can be resolved item by item.
/// Decompressed keys come from (and go into) `keys` (`KeyCache::new(0)` keeps none).
///
/// The ZIP-215 batch equation: with `k_i = SHA-512(R_i || A_i || M_i) mod l` and random 128-bit
/// `z_i`, `[8]([-sum z_i s_i] B + sum [z_i k_i] A_i + sum [z_i] R_i)` is the identity. Each `s_i`
/// must be canonical; `A_i` and `R_i` decompress as `ed25519-zebra` decompresses them
/// (non-canonical `y` accepted); equal keys share one term.
#[allow(non_snake_case, reason = "the curve equation's names")]
#[allow(
    clippy::arithmetic_side_effects,
    reason = "scalar arithmetic is modulo the group order: it cannot overflow"
)]
pub fn verify_batch(items: &[SigItem<'_>], keys: &mut KeyCache) -> bool {
    if items.is_empty() {
        return true;
    }
    let mut seed_ctx = digest::Context::new(&digest::SHA256);
    seed_ctx.update(domain::BATCH_SEED);
    let mut ks = Vec::with_capacity(items.len());
    for item in items {
        let (r_bytes, _) = item.signature.0.split_at(32);
        let k = Scalar::from_hash(
            sha2::Sha512::new()
                .chain_update(r_bytes)
                .chain_update(item.key.0)
                .chain_update(item.message),
        );
        // `k` commits to the message, so the seed covers every input of the equation.
        seed_ctx.update(&item.key.0);
        seed_ctx.update(&item.signature.0);
        seed_ctx.update(k.as_bytes());
        ks.push(k);
    }
    let mut coefficients = vec![0u8; items.len().saturating_mul(16)];
    blake3::Hasher::new_derive_key(domain::BATCH_COEFFICIENTS)
        .update(seed_ctx.finish().as_ref())
        .finalize_xof()
        .fill(&mut coefficients);

    let mut B_coeff = Scalar::ZERO;
    let mut a_index: BTreeMap<[u8; 32], usize> = BTreeMap::new();
    let mut As = Vec::new();
    let mut A_coeffs: Vec<Scalar> = Vec::new();
    let mut Rs = Vec::with_capacity(items.len());
    let mut R_coeffs = Vec::with_capacity(items.len());
    for ((item, k), z_bytes) in items.iter().zip(&ks).zip(coefficients.chunks_exact(16)) {
        let mut r_bytes = [0u8; 32];
        let mut s_bytes = [0u8; 32];
        r_bytes.copy_from_slice(&item.signature.0[..32]);
        s_bytes.copy_from_slice(&item.signature.0[32..]);
        let Some(R) = CompressedEdwardsY(r_bytes).decompress() else { return false };
        let Some(s) = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes)) else {
            return false;
        };
        let mut z = [0u8; 16];
        z.copy_from_slice(z_bytes);
        let z = Scalar::from(u128::from_le_bytes(z));
        B_coeff -= z * s;
        Rs.push(R);
        R_coeffs.push(z);
        let index = match a_index.get(&item.key.0) {
            Some(index) => *index,
            None => {
                let Some(A) = keys.point(item.key) else { return false };
                let index = As.len();
                As.push(A);
                A_coeffs.push(Scalar::ZERO);
                a_index.insert(item.key.0, index);
                index
            }
        };
        if let Some(coeff) = A_coeffs.get_mut(index) {
            *coeff += z * k;
        }
    }
    let check = EdwardsPoint::vartime_multiscalar_mul(
        std::iter::once(&B_coeff).chain(A_coeffs.iter()).chain(R_coeffs.iter()),
        std::iter::once(&ED25519_BASEPOINT_POINT).chain(As.iter()).chain(Rs.iter()),
    );
    check.mul_by_cofactor().is_identity()
}

/// Checks every item: a batch first, and only if the batch fails, one by one to find the bad ones.
pub fn verify_all(items: &[SigItem<'_>], keys: &mut KeyCache) -> Vec<bool> {
    if verify_batch(items, keys) {
        return vec![true; items.len()];
    }
    items.iter().map(|it| verify_one(it.key, it.message, it.signature)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_and_single_agree() {
        let key = SigningKey::from_seed(&[7; 32]).unwrap();
        let other = SigningKey::from_seed(&[8; 32]).unwrap();
        let good = key.sign(b"pay 10");
        let bad = other.sign(b"pay 10");
        let pk = key.public_key();
        let items = [
            SigItem { key: &pk, message: b"pay 10", signature: &good },
            SigItem { key: &pk, message: b"pay 10", signature: &bad },
        ];
        assert!(!verify_batch(&items, &mut KeyCache::new(0)));
        assert_eq!(verify_all(&items, &mut KeyCache::new(0)), vec![true, false]);
        assert!(verify_batch(&items[..1], &mut KeyCache::new(0)));
        assert!(!verify_one(&PublicKey([0xff; 32]), b"x", &good));
    }

    #[test]
    fn cached_batches_agree_with_single_verification() {
        let keys: Vec<SigningKey> =
            (0u8..6).map(|i| SigningKey::from_seed(&[i + 1; 32]).unwrap()).collect();
        let publics: Vec<PublicKey> = keys.iter().map(SigningKey::public_key).collect();
        let messages: Vec<Vec<u8>> = (0u8..12).map(|i| vec![i; 40]).collect();
        // Key i % 6 signs message i: every key signs twice in the batch (one shared term).
        let sigs: Vec<Signature> = messages
            .iter()
            .enumerate()
            .map(|(i, m)| keys.get(i % keys.len()).unwrap().sign(m))
            .collect();
        let items: Vec<SigItem<'_>> = messages
            .iter()
            .zip(&sigs)
            .enumerate()
            .map(|(i, (m, s))| SigItem {
                key: publics.get(i % publics.len()).unwrap(),
                message: m,
                signature: s,
            })
            .collect();
        let mut cache = KeyCache::new(KeyCache::DEFAULT_SLOTS);
        assert!(verify_batch(&items, &mut cache));
        assert_eq!(cache.stats(), (0, 6), "each distinct key decompressed once");
        assert!(verify_batch(&items, &mut cache));
        assert_eq!(cache.stats(), (6, 6), "the second batch finds every key");
        assert!(verify_batch(&items, &mut KeyCache::new(0)));

        // A wrong message, a non-canonical s, and a key that is not a point: each spoils the
        // batch, and item-by-item verification names exactly the bad ones, as single does.
        let mut bad_s = *sigs.get(1).unwrap();
        bad_s.0[63] |= 0xf0;
        let not_a_point = PublicKey([0xff; 32]);
        let mut spoiled = items.clone();
        spoiled.get_mut(0).unwrap().message = b"another message";
        spoiled.get_mut(1).unwrap().signature = &bad_s;
        spoiled.get_mut(2).unwrap().key = &not_a_point;
        assert!(!verify_batch(&spoiled, &mut cache));
        let verdicts = verify_all(&spoiled, &mut cache);
        let single: Vec<bool> =
            spoiled.iter().map(|it| verify_one(it.key, it.message, it.signature)).collect();
        assert_eq!(verdicts, single);
        assert_eq!(&verdicts[..4], &[false, false, false, true]);
        assert!(verdicts[3..].iter().all(|v| *v));

        // A cache with no slots keeps nothing and still verifies.
        let mut none = KeyCache::new(0);
        assert!(verify_batch(&items, &mut none));
        assert_eq!(none.stats(), (0, 6));
    }

    #[test]
    fn hash_parts_separates_boundaries() {
        assert_ne!(hash_parts(b"d", &[b"ab", b"c"]), hash_parts(b"d", &[b"a", b"bc"]));
        assert_ne!(hash_parts(b"d1", &[b"x"]), hash_parts(b"d2", &[b"x"]));
    }
}
