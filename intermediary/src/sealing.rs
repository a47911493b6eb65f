//! Personal data and custodial keys at rest, and holder references.
//!
//! - [`Sealer`]: ChaCha20-Poly1305 (ring) under the bank's AEAD key from configuration. Every
//!   sealed value is bound to its row by the associated data (the customer or wallet id), so a
//!   ciphertext copied onto another row does not open. Nonces are random (96 bits), drawn by
//!   the caller's injected randomness.
//! - [`HolderKey`]: the holder reference written to the ledger is HMAC-SHA256 of the normalized
//!   national id under the network key that every bank shares, so the same person has the same
//!   reference at every bank (the holding limit adds up across banks) and the ledger reveals
//!   nothing about who it is without the key.

use cbdc_ledger::HolderRef;
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
use ring::hmac;

/// Longest national id accepted, after normalization.
pub const MAX_NATIONAL_ID_CHARS: usize = 64;

/// A sealed value did not open: wrong key, wrong row, or tampered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("sealed data does not open with this key for this record")]
pub struct OpenError;

/// Seals and opens values under the bank's AEAD key.
pub struct Sealer {
    key: LessSafeKey,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(..)")
    }
}

impl Sealer {
    pub fn new(key: &[u8; 32]) -> Sealer {
        let unbound = UnboundKey::new(&CHACHA20_POLY1305, key);
        // A 32-byte key is exactly what ChaCha20-Poly1305 takes: this cannot fail.
        let unbound = unbound.expect("ChaCha20-Poly1305 takes exactly a 32-byte key");
        Sealer { key: LessSafeKey::new(unbound) }
    }

    /// Encrypts `plaintext` bound to `record` (associated data) with a fresh `nonce`.
    pub fn seal(&self, record: &[u8], nonce: [u8; 12], plaintext: &[u8]) -> Vec<u8> {
        let mut buffer = plaintext.to_vec();
        let sealed = self.key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(record),
            &mut buffer,
        );
        // Sealing fails only for inputs longer than ChaCha20's 256 GiB limit.
        assert!(sealed.is_ok(), "sealing a bounded value failed");
        buffer
    }

    /// Decrypts what [`Sealer::seal`] produced for the same `record` and `nonce`.
    pub fn open(
        &self,
        record: &[u8],
        nonce: [u8; 12],
        ciphertext: &[u8],
    ) -> Result<Vec<u8>, OpenError> {
        let mut buffer = ciphertext.to_vec();
        let plain = self
            .key
            .open_in_place(Nonce::assume_unique_for_key(nonce), Aad::from(record), &mut buffer)
            .map_err(|_| OpenError)?;
        Ok(plain.to_vec())
    }
}

/// Derives holder references from national ids with the network key.
pub struct HolderKey {
    key: hmac::Key,
}

impl std::fmt::Debug for HolderKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HolderKey(..)")
    }
}

impl HolderKey {
    pub fn new(network_key: &[u8; 32]) -> HolderKey {
        HolderKey { key: hmac::Key::new(hmac::HMAC_SHA256, network_key) }
    }

    /// The ledger's holder reference of a national id (already normalized).
    pub fn holder_ref(&self, normalized_id: &str) -> HolderRef {
        let mut context = hmac::Context::with_key(&self.key);
        context.update(b"cbdc.v1.holder-ref");
        context.update(normalized_id.as_bytes());
        let tag = context.sign();
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        HolderRef(out)
    }
}

/// A national id in canonical form: ASCII letters and digits only, upper case (spaces, dots
/// and dashes, which people write differently, are dropped). `None` if anything else remains,
/// or nothing, or more than [`MAX_NATIONAL_ID_CHARS`].
pub fn normalize_national_id(raw: &str) -> Option<String> {
    let mut out = String::new();
    for c in raw.chars() {
        match c {
            ' ' | '-' | '.' | '/' => {}
            c if c.is_ascii_alphanumeric() => out.push(c.to_ascii_uppercase()),
            _ => return None,
        }
    }
    (!out.is_empty() && out.len() <= MAX_NATIONAL_ID_CHARS).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_for_their_record_and_key() {
        let sealer = Sealer::new(&[7; 32]);
        let sealed = sealer.seal(b"customer-1", [1; 12], b"Ada Lovelace");
        assert!(!sealed.windows(3).any(|w| w == b"Ada"), "ciphertext leaks the plaintext");
        assert_eq!(
            sealer.open(b"customer-1", [1; 12], &sealed).as_deref(),
            Ok(&b"Ada Lovelace"[..])
        );
        assert_eq!(sealer.open(b"customer-2", [1; 12], &sealed), Err(OpenError));
        assert_eq!(sealer.open(b"customer-1", [2; 12], &sealed), Err(OpenError));
        assert_eq!(Sealer::new(&[8; 32]).open(b"customer-1", [1; 12], &sealed), Err(OpenError));
        let mut tampered = sealed.clone();
        tampered[0] ^= 1;
        assert_eq!(sealer.open(b"customer-1", [1; 12], &tampered), Err(OpenError));
    }

    #[test]
    fn holder_refs_agree_across_spellings_and_differ_across_keys() {
        let key = HolderKey::new(&[1; 32]);
        let a = normalize_national_id("ab-123 456.7").expect("valid");
        let b = normalize_national_id("AB1234567").expect("valid");
        assert_eq!(a, b);
        assert_eq!(key.holder_ref(&a), key.holder_ref(&b));
        assert_ne!(key.holder_ref(&a), key.holder_ref("AB1234568"));
        assert_ne!(key.holder_ref(&a), HolderKey::new(&[2; 32]).holder_ref(&a));
        assert_eq!(normalize_national_id(""), None);
        assert_eq!(normalize_national_id("--"), None);
        assert_eq!(normalize_national_id("AB\u{e9}1"), None);
        assert_eq!(normalize_national_id(&"1".repeat(65)), None);
    }
}
