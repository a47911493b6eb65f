//! Money, identities and the enumerations of the ledger.

use crate::codec::{Decode, DecodeError, Encode, Reader, Writer};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use thiserror::Error;

/// A SHA-256 digest.
pub type Digest = [u8; 32];

/// Checked arithmetic failures on [`Amount`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum AmountError {
    #[error("amount overflow")]
    Overflow,
    #[error("amount underflow")]
    Underflow,
}

/// An amount of money in integer minor units (cents).
///
/// Bounded by [`Amount::MAX_MINOR`] (`i64::MAX`) so every amount also fits a signed 64-bit SQL
/// column and a JSON integer; arithmetic is checked and overflow is a typed error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Amount(u64);

impl Amount {
    pub const ZERO: Amount = Amount(0);
    pub const MAX_MINOR: u64 = i64::MAX as u64;
    pub const MAX: Amount = Amount(Self::MAX_MINOR);

    pub fn from_minor(minor: u64) -> Result<Amount, AmountError> {
        if minor > Self::MAX_MINOR { Err(AmountError::Overflow) } else { Ok(Amount(minor)) }
    }

    pub const fn minor(self) -> u64 {
        self.0
    }

    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    pub fn checked_add(self, other: Amount) -> Result<Amount, AmountError> {
        let sum = self.0.checked_add(other.0).ok_or(AmountError::Overflow)?;
        Amount::from_minor(sum)
    }

    pub fn checked_sub(self, other: Amount) -> Result<Amount, AmountError> {
        self.0.checked_sub(other.0).map(Amount).ok_or(AmountError::Underflow)
    }

    /// `self - other`, or zero when `other` is larger.
    pub fn saturating_sub(self, other: Amount) -> Amount {
        Amount(self.0.saturating_sub(other.0))
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl Encode for Amount {
    fn encode_to(&self, w: &mut Writer) {
        w.u64(self.0);
    }
}

impl Decode for Amount {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Amount::from_minor(r.u64("amount")?).map_err(|_| DecodeError::InvalidValue("amount"))
    }
}

impl Serialize for Amount {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let minor = u64::deserialize(d)?;
        Amount::from_minor(minor).map_err(serde::de::Error::custom)
    }
}

/// Defines a fixed-size byte identifier with hex display, hex serde and raw encoding.
macro_rules! byte_id {
    ($(#[$doc:meta])* $name:ident, $len:expr, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
        pub struct $name(pub [u8; $len]);

        // Ordered as the bytes are (lexicographically), compared as big-endian 128-bit words:
        // the same order as comparing the arrays, without a `memcmp` call per comparison
        // (these are the keys of every ordered map in the state).
        const _: () = assert!($len % 16 == 0);

        impl Ord for $name {
            fn cmp(&self, other: &Self) -> std::cmp::Ordering {
                let word = |chunk: &[u8]| {
                    let mut w = [0u8; 16];
                    w.copy_from_slice(chunk);
                    u128::from_be_bytes(w)
                };
                for (a, b) in self.0.chunks_exact(16).zip(other.0.chunks_exact(16)) {
                    match word(a).cmp(&word(b)) {
                        std::cmp::Ordering::Equal => {}
                        unequal => return unequal,
                    }
                }
                std::cmp::Ordering::Equal
            }
        }

        impl PartialOrd for $name {
            fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
                Some(self.cmp(other))
            }
        }

        impl $name {
            pub const LEN: usize = $len;

            pub fn to_hex(self) -> String {
                hex::encode(self.0)
            }

            pub fn from_hex(s: &str) -> Result<Self, DecodeError> {
                let mut out = [0u8; $len];
                hex::decode_to_slice(s, &mut out).map_err(|_| DecodeError::InvalidValue($what))?;
                Ok($name(out))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.to_hex())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl Encode for $name {
            fn encode_to(&self, w: &mut Writer) {
                w.fixed(&self.0);
            }
        }

        impl Decode for $name {
            fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
                Ok($name(r.array::<$len>($what)?))
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.to_hex())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                $name::from_hex(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

byte_id!(
    /// A wallet's identifier, chosen by the bank that opens it (e.g. a UUID).
    WalletId, 16, "wallet id"
);
byte_id!(
    /// A transaction's client-chosen unique identifier (idempotency key, like an ISO 20022 UETR).
    TxId, 16, "transaction id"
);
byte_id!(
    /// A keyed hash of a person's national identity, computed by banks with the network key;
    /// the ledger aggregates limits by it and never sees the identity itself.
    HolderRef, 32, "holder reference"
);
byte_id!(
    /// An Ed25519 public key (wallet keys, bank administration keys, officer keys, validator keys).
    PublicKey, 32, "public key"
);

/// A commercial bank's identifier on the network. Bank 0 is the central bank.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct BankId(pub u32);

impl BankId {
    pub const CENTRAL_BANK: BankId = BankId(0);
}

impl fmt::Display for BankId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl Encode for BankId {
    fn encode_to(&self, w: &mut Writer) {
        w.u32(self.0);
    }
}

impl Decode for BankId {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(BankId(r.u32("bank id")?))
    }
}

/// KYC tier of a wallet: an index into the policy's tier limits (0 = the lowest, anonymous tier).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct KycTier(pub u8);

impl Encode for KycTier {
    fn encode_to(&self, w: &mut Writer) {
        w.u8(self.0);
    }
}

impl Decode for KycTier {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(KycTier(r.u8("kyc tier")?))
    }
}

/// Defines a one-byte-tag enum with its encoding.
macro_rules! tag_enum {
    ($(#[$doc:meta])* $name:ident, $what:literal { $($variant:ident = $tag:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($variant = $tag),+
        }

        impl $name {
            pub const fn tag(self) -> u8 {
                self as u8
            }

            pub fn from_tag(tag: u8) -> Option<Self> {
                match tag {
                    $($tag => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl Encode for $name {
            fn encode_to(&self, w: &mut Writer) {
                w.u8(self.tag());
            }
        }

        impl Decode for $name {
            fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
                let tag = r.u8($what)?;
                $name::from_tag(tag).ok_or(DecodeError::UnknownTag { what: $what, tag })
            }
        }
    };
}

tag_enum!(
    /// What a wallet is for; limits apply to retail wallets only.
    WalletClass, "wallet class" {
        Retail = 0,
        Merchant = 1,
        BankFloat = 2,
        CentralBankIssuance = 3,
    }
);

tag_enum!(
    /// Lifecycle of a wallet. Frozen wallets neither send nor receive; closed is final.
    WalletStatus, "wallet status" {
        Active = 0,
        Frozen = 1,
        Closed = 2,
    }
);

tag_enum!(
    /// Whether a bank may administer wallets and validate.
    BankStatus, "bank status" {
        Active = 0,
        Suspended = 1,
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amount_arithmetic_is_checked() {
        let max = Amount::MAX;
        assert_eq!(max.checked_add(Amount(1)), Err(AmountError::Overflow));
        assert_eq!(Amount(1).checked_sub(Amount(2)), Err(AmountError::Underflow));
        assert_eq!(Amount(5).checked_sub(Amount(2)), Ok(Amount(3)));
        assert_eq!(Amount::from_minor(u64::MAX), Err(AmountError::Overflow));
        assert!(Amount::decode(&u64::MAX.to_be_bytes()).is_err());
    }

    #[test]
    fn ids_order_as_their_bytes() {
        // Every pair from a set that differs in the first, middle and last byte, in each word.
        let mut samples = Vec::new();
        for position in [0usize, 7, 15, 16, 24, 31] {
            for value in [0u8, 1, 0x7f, 0x80, 0xff] {
                let mut bytes = [0x55u8; 32];
                bytes[position] = value;
                samples.push(bytes);
            }
        }
        for a in &samples {
            for b in &samples {
                assert_eq!(HolderRef(*a).cmp(&HolderRef(*b)), a.cmp(b));
                let (mut a16, mut b16) = ([0u8; 16], [0u8; 16]);
                a16.copy_from_slice(&a[8..24]);
                b16.copy_from_slice(&b[8..24]);
                assert_eq!(WalletId(a16).cmp(&WalletId(b16)), a16.cmp(&b16));
                assert_eq!(WalletId(a16).partial_cmp(&WalletId(b16)), Some(a16.cmp(&b16)));
            }
        }
    }

    #[test]
    fn ids_round_trip_hex() {
        let id = WalletId([0xab; 16]);
        assert_eq!(WalletId::from_hex(&id.to_hex()), Ok(id));
        assert!(WalletId::from_hex("zz").is_err());
        assert!(WalletId::from_hex(&"ab".repeat(17)).is_err());
    }
}
