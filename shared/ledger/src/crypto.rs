//! Hashing, signing and consensus-safe signature verification.
//!
//! - Hashes are SHA-256 (`ring`), always over a domain-separation tag followed by a canonical
//!   encoding, so a digest of one kind of object can never be confused with another's.
//! - Signing uses `ring`'s Ed25519 from a 32-byte seed. Key generation (randomness) belongs to the
//!   services; this crate only ever derives keys from seeds it is given.
//! - Verification uses `ed25519-zebra` (ZIP-215 rules), whose single and batch verification
//!   accept exactly the same set of signatures on every node. Batch coefficients are drawn from a
//!   ChaCha20 stream seeded with a hash of the whole batch (Fiat-Shamir), which keeps this crate
//!   deterministic while an attacker still cannot choose signatures after seeing the coefficients.

use crate::codec::{Decode, DecodeError, Encode, Reader, Writer};
use crate::types::{Digest, PublicKey};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use ring::digest;
use ring::signature::{Ed25519KeyPair, KeyPair};
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

/// Verifies a batch; `true` only if every signature is valid. Accepts exactly what
/// [`verify_one`] accepts for each item (ZIP-215), so a `false` can be resolved item by item.
pub fn verify_batch(items: &[SigItem<'_>]) -> bool {
    if items.is_empty() {
        return true;
    }
    let mut seed_ctx = digest::Context::new(&digest::SHA256);
    seed_ctx.update(domain::BATCH_SEED);
    let mut verifier = ed25519_zebra::batch::Verifier::new();
    for item in items {
        let msg_digest = digest::digest(&digest::SHA256, item.message);
        seed_ctx.update(&item.key.0);
        seed_ctx.update(&item.signature.0);
        seed_ctx.update(msg_digest.as_ref());
        let vk_bytes = ed25519_zebra::VerificationKeyBytes::from(item.key.0);
        let sig = ed25519_zebra::Signature::from(item.signature.0);
        verifier.queue((vk_bytes, sig, item.message));
    }
    let mut seed = [0u8; 32];
    seed.copy_from_slice(seed_ctx.finish().as_ref());
    verifier.verify(ChaCha20Rng::from_seed(seed)).is_ok()
}

/// Checks every item: a batch first, and only if the batch fails, one by one to find the bad ones.
pub fn verify_all(items: &[SigItem<'_>]) -> Vec<bool> {
    if verify_batch(items) {
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
        assert!(!verify_batch(&items));
        assert_eq!(verify_all(&items), vec![true, false]);
        assert!(verify_batch(&items[..1]));
        assert!(!verify_one(&PublicKey([0xff; 32]), b"x", &good));
    }

    #[test]
    fn hash_parts_separates_boundaries() {
        assert_ne!(hash_parts(b"d", &[b"ab", b"c"]), hash_parts(b"d", &[b"a", b"bc"]));
        assert_ne!(hash_parts(b"d1", &[b"x"]), hash_parts(b"d2", &[b"x"]));
    }
}
