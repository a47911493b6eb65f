//! Ledger policy: the officer set and its threshold, the supply cap, KYC tier limits and the
//! transaction expiry window. Set at genesis and changed only by k-of-n `SetPolicy` transactions.

use crate::codec::{Decode, DecodeError, Encode, Reader, Writer, decode_seq, encode_seq};
use crate::types::{Amount, KycTier, PublicKey};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// At most this many central-bank officers.
pub const MAX_OFFICERS: u32 = 32;
/// At most this many KYC tiers.
pub const MAX_TIERS: u32 = 8;
/// The expiry window may not exceed this many blocks (bounds the remembered-id set).
pub const MAX_EXPIRY_WINDOW_BLOCKS: u64 = 100_000;

/// Limits of one KYC tier, applied per holder across all banks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierLimits {
    /// The most a holder may hold across all their retail wallets.
    pub holding_minor: Amount,
    /// The most a holder may pay in one transaction.
    pub per_payment_minor: Amount,
    /// The most a holder may pay out in one UTC day (by block time).
    pub daily_outflow_minor: Amount,
}

impl Encode for TierLimits {
    fn encode_to(&self, w: &mut Writer) {
        self.holding_minor.encode_to(w);
        self.per_payment_minor.encode_to(w);
        self.daily_outflow_minor.encode_to(w);
    }
}

impl Decode for TierLimits {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(TierLimits {
            holding_minor: Amount::decode_from(r)?,
            per_payment_minor: Amount::decode_from(r)?,
            daily_outflow_minor: Amount::decode_from(r)?,
        })
    }
}

/// Why a policy is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PolicyError {
    #[error("the officer set is empty or larger than {MAX_OFFICERS}")]
    OfficerCount,
    #[error("officer keys must be unique")]
    DuplicateOfficer,
    #[error("threshold must be between 1 and the number of officers")]
    Threshold,
    #[error("there must be between 1 and {MAX_TIERS} tiers")]
    TierCount,
    #[error("expiry window must be between 1 and {MAX_EXPIRY_WINDOW_BLOCKS} blocks")]
    ExpiryWindow,
}

/// The rules every validator enforces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Officer keys, kept sorted so the encoding is canonical.
    pub officers: Vec<PublicKey>,
    /// How many distinct officers must sign a mint, burn, policy change or admission.
    pub threshold: u16,
    /// Outstanding supply may never exceed this.
    pub supply_cap_minor: Amount,
    /// Limits by KYC tier; index = tier.
    pub tiers: Vec<TierLimits>,
    /// A transaction's expiry height may be at most this many blocks ahead.
    pub max_expiry_blocks: u64,
}

impl Policy {
    /// Checks the policy's own consistency and sorts the officer set.
    pub fn normalized(mut self) -> Result<Policy, PolicyError> {
        self.officers.sort();
        let n = self.officers.len();
        if n == 0 || n > MAX_OFFICERS as usize {
            return Err(PolicyError::OfficerCount);
        }
        if self.officers.windows(2).any(|w| w.first() == w.get(1)) {
            return Err(PolicyError::DuplicateOfficer);
        }
        if self.threshold == 0 || usize::from(self.threshold) > n {
            return Err(PolicyError::Threshold);
        }
        if self.tiers.is_empty() || self.tiers.len() > MAX_TIERS as usize {
            return Err(PolicyError::TierCount);
        }
        if self.max_expiry_blocks == 0 || self.max_expiry_blocks > MAX_EXPIRY_WINDOW_BLOCKS {
            return Err(PolicyError::ExpiryWindow);
        }
        Ok(self)
    }

    pub fn tier(&self, tier: KycTier) -> Option<&TierLimits> {
        self.tiers.get(usize::from(tier.0))
    }

    pub fn is_officer(&self, key: &PublicKey) -> bool {
        self.officers.binary_search(key).is_ok()
    }
}

impl Encode for Policy {
    fn encode_to(&self, w: &mut Writer) {
        encode_seq(w, &self.officers);
        w.u16(self.threshold);
        self.supply_cap_minor.encode_to(w);
        encode_seq(w, &self.tiers);
        w.u64(self.max_expiry_blocks);
    }
}

impl Decode for Policy {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let policy = Policy {
            officers: decode_seq(r, MAX_OFFICERS, 32, "officers")?,
            threshold: r.u16("threshold")?,
            supply_cap_minor: Amount::decode_from(r)?,
            tiers: decode_seq(r, MAX_TIERS, 24, "tiers")?,
            max_expiry_blocks: r.u64("max expiry blocks")?,
        };
        let normalized =
            policy.clone().normalized().map_err(|_| DecodeError::InvalidValue("policy"))?;
        // Canonical form only: the officers must already be sorted.
        if normalized != policy {
            return Err(DecodeError::InvalidValue("policy officer order"));
        }
        Ok(policy)
    }
}
