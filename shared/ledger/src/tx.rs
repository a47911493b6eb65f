//! Transactions: what each kind means, who must sign it, and its canonical encoding.
//!
//! A [`SignedTransaction`] is a [`TxBody`] (client-chosen id, expiry height, kind) plus signatures.
//! Every signature covers the *signing payload*: the kind's domain tag, the chain id and the
//! body's encoding, so a signature for one kind or one network can never be replayed as another.

use crate::codec::{Decode, DecodeError, Encode, Reader, Writer, decode_seq, encode_seq};
use crate::crypto::{Signature, SigningKey, domain, hash_parts};
use crate::policy::{MAX_OFFICERS, Policy, TierLimits};
use crate::types::{
    Amount, BankId, Digest, HolderRef, KycTier, PublicKey, TxId, WalletClass, WalletId,
};

/// Legs in one atomic transfer.
pub const MAX_LEGS: u32 = 16;
/// Signatures on one transaction.
pub const MAX_SIGNATURES: u32 = 32;
/// Bytes in a bank's name.
pub const MAX_BANK_NAME_BYTES: u32 = 64;
/// Longest validator endpoint (`host:port`), in bytes.
pub const MAX_ENDPOINT_BYTES: u32 = 255;

/// Whether `endpoint` is a well-formed `host:port` peer address: printable ASCII without
/// spaces, a non-empty host and a port from 1 to 65535. (Whether it resolves is the
/// operators' concern; the ledger only keeps it well formed.)
pub fn valid_endpoint(endpoint: &str) -> bool {
    if endpoint.is_empty()
        || endpoint.len() > MAX_ENDPOINT_BYTES as usize
        || !endpoint.bytes().all(|b| b.is_ascii_graphic())
    {
        return false;
    }
    let Some((host, port)) = endpoint.rsplit_once(':') else { return false };
    !host.is_empty()
        && !port.is_empty()
        && port.len() <= 5
        && port.bytes().all(|b| b.is_ascii_digit())
        && port.parse::<u32>().is_ok_and(|p| (1..=65_535).contains(&p))
}

/// One movement of money inside an atomic transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Leg {
    pub from: WalletId,
    pub to: WalletId,
    pub amount: Amount,
}

/// A change to ledger policy (k-of-n officers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyUpdate {
    /// Replace the officer set and threshold.
    Officers { officers: Vec<PublicKey>, threshold: u16 },
    /// Set the supply cap.
    SupplyCap { cap: Amount },
    /// Set one tier's limits (an index equal to the tier count appends a tier).
    Tier { tier: KycTier, limits: TierLimits },
    /// Set a bank's issuance quota.
    BankQuota { bank: BankId, quota: Amount },
}

/// What a transaction does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxKind {
    /// Atomic multi-leg payment; every paying wallet's key signs.
    Transfer { legs: Vec<Leg> },
    /// A bank opens a retail or merchant wallet for a customer (bank's admin key).
    OpenWallet {
        bank: BankId,
        wallet: WalletId,
        public_key: PublicKey,
        class: WalletClass,
        tier: KycTier,
        holder: HolderRef,
        linked: bool,
    },
    /// A bank changes the KYC tier of one of its wallets.
    SetTier { bank: BankId, wallet: WalletId, tier: KycTier },
    /// A bank freezes one of its wallets (e.g. by court order).
    Freeze { bank: BankId, wallet: WalletId },
    /// A bank lifts a freeze.
    Unfreeze { bank: BankId, wallet: WalletId },
    /// A bank closes an empty wallet; closing is final.
    CloseWallet { bank: BankId, wallet: WalletId },
    /// A bank links or unlinks a wallet to the customer's deposit account (waterfalls).
    SetLinked { bank: BankId, wallet: WalletId, linked: bool },
    /// Issue new money into a bank's float wallet (k-of-n officers).
    Mint { bank: BankId, amount: Amount },
    /// Destroy money from the central bank's issuance wallet, redeemed by `bank` (k-of-n).
    Burn { bank: BankId, amount: Amount },
    /// Admit a commercial bank: its keys, its float wallet and its quota (k-of-n).
    AdmitBank {
        bank: BankId,
        name: String,
        admin_key: PublicKey,
        validator_key: PublicKey,
        /// Where its validator accepts peer connections (`host:port`).
        endpoint: String,
        float_wallet: WalletId,
        float_key: PublicKey,
        quota: Amount,
    },
    /// Suspend a bank: it stops validating and administering wallets (k-of-n).
    SuspendBank { bank: BankId },
    /// Change policy (k-of-n).
    SetPolicy(PolicyUpdate),
}

/// Who must authorize a kind of transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Authority {
    /// The keys of the paying wallets.
    Payers,
    /// The administration key of the named bank.
    Bank(BankId),
    /// k distinct central-bank officers.
    Officers,
}

impl TxKind {
    pub const fn tag(&self) -> u8 {
        match self {
            TxKind::Transfer { .. } => 1,
            TxKind::OpenWallet { .. } => 2,
            TxKind::SetTier { .. } => 3,
            TxKind::Freeze { .. } => 4,
            TxKind::Unfreeze { .. } => 5,
            TxKind::CloseWallet { .. } => 6,
            TxKind::SetLinked { .. } => 7,
            TxKind::Mint { .. } => 8,
            TxKind::Burn { .. } => 9,
            TxKind::AdmitBank { .. } => 10,
            TxKind::SuspendBank { .. } => 11,
            TxKind::SetPolicy(_) => 12,
        }
    }

    /// A stable snake_case name, used in logs, metrics and APIs.
    pub const fn name(&self) -> &'static str {
        match self {
            TxKind::Transfer { .. } => "transfer",
            TxKind::OpenWallet { .. } => "open_wallet",
            TxKind::SetTier { .. } => "set_tier",
            TxKind::Freeze { .. } => "freeze",
            TxKind::Unfreeze { .. } => "unfreeze",
            TxKind::CloseWallet { .. } => "close_wallet",
            TxKind::SetLinked { .. } => "set_linked",
            TxKind::Mint { .. } => "mint",
            TxKind::Burn { .. } => "burn",
            TxKind::AdmitBank { .. } => "admit_bank",
            TxKind::SuspendBank { .. } => "suspend_bank",
            TxKind::SetPolicy(_) => "set_policy",
        }
    }

    /// The signing-domain tag of this kind (STYLE rule 7).
    pub const fn signing_domain(&self) -> &'static [u8] {
        match self {
            TxKind::Transfer { .. } => b"cbdc.v1.sign.transfer",
            TxKind::OpenWallet { .. } => b"cbdc.v1.sign.open-wallet",
            TxKind::SetTier { .. } => b"cbdc.v1.sign.set-tier",
            TxKind::Freeze { .. } => b"cbdc.v1.sign.freeze",
            TxKind::Unfreeze { .. } => b"cbdc.v1.sign.unfreeze",
            TxKind::CloseWallet { .. } => b"cbdc.v1.sign.close-wallet",
            TxKind::SetLinked { .. } => b"cbdc.v1.sign.set-linked",
            TxKind::Mint { .. } => b"cbdc.v1.sign.mint",
            TxKind::Burn { .. } => b"cbdc.v1.sign.burn",
            TxKind::AdmitBank { .. } => b"cbdc.v1.sign.admit-bank",
            TxKind::SuspendBank { .. } => b"cbdc.v1.sign.suspend-bank",
            TxKind::SetPolicy(_) => b"cbdc.v1.sign.set-policy",
        }
    }

    pub const fn authority(&self) -> Authority {
        match self {
            TxKind::Transfer { .. } => Authority::Payers,
            TxKind::OpenWallet { bank, .. }
            | TxKind::SetTier { bank, .. }
            | TxKind::Freeze { bank, .. }
            | TxKind::Unfreeze { bank, .. }
            | TxKind::CloseWallet { bank, .. }
            | TxKind::SetLinked { bank, .. } => Authority::Bank(*bank),
            TxKind::Mint { .. }
            | TxKind::Burn { .. }
            | TxKind::AdmitBank { .. }
            | TxKind::SuspendBank { .. }
            | TxKind::SetPolicy(_) => Authority::Officers,
        }
    }
}

/// The signed content of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxBody {
    /// Client-chosen unique id; remembered until `expiry_height`.
    pub id: TxId,
    /// The last block height at which this transaction may commit.
    pub expiry_height: u64,
    pub kind: TxKind,
}

impl TxBody {
    /// The bytes every signer signs: domain tag, chain id, body.
    pub fn signing_payload(&self, chain_id: &str) -> Vec<u8> {
        let mut w = Writer::with_capacity(128);
        self.signing_payload_to(chain_id, &mut w);
        w.into_bytes()
    }

    /// Appends [`TxBody::signing_payload`] to `w` (a batch's payloads share one buffer).
    pub fn signing_payload_to(&self, chain_id: &str, w: &mut Writer) {
        w.var_bytes(self.kind.signing_domain());
        w.var_bytes(chain_id.as_bytes());
        self.encode_to(w);
    }

    /// Identity of the payload for duplicate detection: equal ids with different digests are
    /// different transactions reusing an id.
    pub fn digest(&self) -> Digest {
        hash_parts(domain::TX, &[b"body", &self.encode()])
    }

    /// Signs with each key, in the given order.
    pub fn sign(self, chain_id: &str, keys: &[&SigningKey]) -> SignedTransaction {
        let payload = self.signing_payload(chain_id);
        let signatures = keys
            .iter()
            .map(|k| TxSignature { signer: k.public_key(), signature: k.sign(&payload) })
            .collect();
        SignedTransaction { body: self, signatures }
    }
}

/// One signer's signature over the signing payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxSignature {
    pub signer: PublicKey,
    pub signature: Signature,
}

/// A transaction with its signatures, as submitted and as stored in blocks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedTransaction {
    pub body: TxBody,
    pub signatures: Vec<TxSignature>,
}

impl SignedTransaction {
    /// Hash of the full encoding (body and signatures): the Merkle leaf of a block.
    pub fn hash(&self) -> Digest {
        hash_parts(domain::TX, &[b"signed", &self.encode()])
    }

    /// Adds another signer's signature (e.g. an officer's approval made elsewhere).
    pub fn add_signature(&mut self, signature: TxSignature) {
        self.signatures.push(signature);
    }
}

impl Encode for Leg {
    fn encode_to(&self, w: &mut Writer) {
        self.from.encode_to(w);
        self.to.encode_to(w);
        self.amount.encode_to(w);
    }
}

impl Decode for Leg {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Leg {
            from: WalletId::decode_from(r)?,
            to: WalletId::decode_from(r)?,
            amount: Amount::decode_from(r)?,
        })
    }
}

impl Encode for PolicyUpdate {
    fn encode_to(&self, w: &mut Writer) {
        match self {
            PolicyUpdate::Officers { officers, threshold } => {
                w.u8(1);
                encode_seq(w, officers);
                w.u16(*threshold);
            }
            PolicyUpdate::SupplyCap { cap } => {
                w.u8(2);
                cap.encode_to(w);
            }
            PolicyUpdate::Tier { tier, limits } => {
                w.u8(3);
                tier.encode_to(w);
                limits.encode_to(w);
            }
            PolicyUpdate::BankQuota { bank, quota } => {
                w.u8(4);
                bank.encode_to(w);
                quota.encode_to(w);
            }
        }
    }
}

impl Decode for PolicyUpdate {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(match r.u8("policy update")? {
            1 => PolicyUpdate::Officers {
                officers: decode_seq(r, MAX_OFFICERS, 32, "officers")?,
                threshold: r.u16("threshold")?,
            },
            2 => PolicyUpdate::SupplyCap { cap: Amount::decode_from(r)? },
            3 => PolicyUpdate::Tier {
                tier: KycTier::decode_from(r)?,
                limits: TierLimits::decode_from(r)?,
            },
            4 => PolicyUpdate::BankQuota {
                bank: BankId::decode_from(r)?,
                quota: Amount::decode_from(r)?,
            },
            tag => return Err(DecodeError::UnknownTag { what: "policy update", tag }),
        })
    }
}

impl PolicyUpdate {
    /// The policy after this update, before consistency checks; `None` when the update names a
    /// tier beyond the next free index (tiers are numbered without gaps).
    pub fn apply_to(&self, policy: &Policy) -> Option<Policy> {
        let mut next = policy.clone();
        match self {
            PolicyUpdate::Officers { officers, threshold } => {
                next.officers.clone_from(officers);
                next.threshold = *threshold;
            }
            PolicyUpdate::SupplyCap { cap } => next.supply_cap_minor = *cap,
            PolicyUpdate::Tier { tier, limits } => {
                let idx = usize::from(tier.0);
                if let Some(slot) = next.tiers.get_mut(idx) {
                    *slot = *limits;
                } else if idx == next.tiers.len() {
                    next.tiers.push(*limits);
                } else {
                    return None;
                }
            }
            PolicyUpdate::BankQuota { .. } => {}
        }
        Some(next)
    }
}

fn wallet_admin(w: &mut Writer, bank: &BankId, wallet: &WalletId) {
    bank.encode_to(w);
    wallet.encode_to(w);
}

impl Encode for TxKind {
    fn encode_to(&self, w: &mut Writer) {
        w.u8(self.tag());
        match self {
            TxKind::Transfer { legs } => encode_seq(w, legs),
            TxKind::OpenWallet { bank, wallet, public_key, class, tier, holder, linked } => {
                wallet_admin(w, bank, wallet);
                public_key.encode_to(w);
                class.encode_to(w);
                tier.encode_to(w);
                holder.encode_to(w);
                w.bool(*linked);
            }
            TxKind::SetTier { bank, wallet, tier } => {
                wallet_admin(w, bank, wallet);
                tier.encode_to(w);
            }
            TxKind::Freeze { bank, wallet }
            | TxKind::Unfreeze { bank, wallet }
            | TxKind::CloseWallet { bank, wallet } => wallet_admin(w, bank, wallet),
            TxKind::SetLinked { bank, wallet, linked } => {
                wallet_admin(w, bank, wallet);
                w.bool(*linked);
            }
            TxKind::Mint { bank, amount } | TxKind::Burn { bank, amount } => {
                bank.encode_to(w);
                amount.encode_to(w);
            }
            TxKind::AdmitBank {
                bank,
                name,
                admin_key,
                validator_key,
                endpoint,
                float_wallet,
                float_key,
                quota,
            } => {
                bank.encode_to(w);
                w.var_bytes(name.as_bytes());
                admin_key.encode_to(w);
                validator_key.encode_to(w);
                w.var_bytes(endpoint.as_bytes());
                float_wallet.encode_to(w);
                float_key.encode_to(w);
                quota.encode_to(w);
            }
            TxKind::SuspendBank { bank } => bank.encode_to(w),
            TxKind::SetPolicy(update) => update.encode_to(w),
        }
    }
}

fn decode_admin(r: &mut Reader<'_>) -> Result<(BankId, WalletId), DecodeError> {
    Ok((BankId::decode_from(r)?, WalletId::decode_from(r)?))
}

/// Reads a bounded UTF-8 string.
pub(crate) fn decode_string(
    r: &mut Reader<'_>,
    max: u32,
    what: &'static str,
) -> Result<String, DecodeError> {
    let bytes = r.var_bytes(max, what)?;
    String::from_utf8(bytes.to_vec()).map_err(|_| DecodeError::InvalidValue(what))
}

impl Decode for TxKind {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(match r.u8("transaction kind")? {
            1 => TxKind::Transfer { legs: decode_seq(r, MAX_LEGS, 40, "legs")? },
            2 => {
                let (bank, wallet) = decode_admin(r)?;
                TxKind::OpenWallet {
                    bank,
                    wallet,
                    public_key: PublicKey::decode_from(r)?,
                    class: WalletClass::decode_from(r)?,
                    tier: KycTier::decode_from(r)?,
                    holder: HolderRef::decode_from(r)?,
                    linked: r.bool("linked")?,
                }
            }
            3 => {
                let (bank, wallet) = decode_admin(r)?;
                TxKind::SetTier { bank, wallet, tier: KycTier::decode_from(r)? }
            }
            4 => {
                let (bank, wallet) = decode_admin(r)?;
                TxKind::Freeze { bank, wallet }
            }
            5 => {
                let (bank, wallet) = decode_admin(r)?;
                TxKind::Unfreeze { bank, wallet }
            }
            6 => {
                let (bank, wallet) = decode_admin(r)?;
                TxKind::CloseWallet { bank, wallet }
            }
            7 => {
                let (bank, wallet) = decode_admin(r)?;
                TxKind::SetLinked { bank, wallet, linked: r.bool("linked")? }
            }
            8 => TxKind::Mint { bank: BankId::decode_from(r)?, amount: Amount::decode_from(r)? },
            9 => TxKind::Burn { bank: BankId::decode_from(r)?, amount: Amount::decode_from(r)? },
            10 => TxKind::AdmitBank {
                bank: BankId::decode_from(r)?,
                name: decode_string(r, MAX_BANK_NAME_BYTES, "bank name")?,
                admin_key: PublicKey::decode_from(r)?,
                validator_key: PublicKey::decode_from(r)?,
                endpoint: decode_string(r, MAX_ENDPOINT_BYTES, "endpoint")?,
                float_wallet: WalletId::decode_from(r)?,
                float_key: PublicKey::decode_from(r)?,
                quota: Amount::decode_from(r)?,
            },
            11 => TxKind::SuspendBank { bank: BankId::decode_from(r)? },
            12 => TxKind::SetPolicy(PolicyUpdate::decode_from(r)?),
            tag => return Err(DecodeError::UnknownTag { what: "transaction kind", tag }),
        })
    }
}

impl Encode for TxBody {
    fn encode_to(&self, w: &mut Writer) {
        self.id.encode_to(w);
        w.u64(self.expiry_height);
        self.kind.encode_to(w);
    }
}

impl Decode for TxBody {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(TxBody {
            id: TxId::decode_from(r)?,
            expiry_height: r.u64("expiry height")?,
            kind: TxKind::decode_from(r)?,
        })
    }
}

impl Encode for TxSignature {
    fn encode_to(&self, w: &mut Writer) {
        self.signer.encode_to(w);
        self.signature.encode_to(w);
    }
}

impl Decode for TxSignature {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(TxSignature {
            signer: PublicKey::decode_from(r)?,
            signature: Signature::decode_from(r)?,
        })
    }
}

impl Encode for SignedTransaction {
    fn encode_to(&self, w: &mut Writer) {
        self.body.encode_to(w);
        encode_seq(w, &self.signatures);
    }
}

impl Decode for SignedTransaction {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(SignedTransaction {
            body: TxBody::decode_from(r)?,
            signatures: decode_seq(r, MAX_SIGNATURES, 96, "signatures")?,
        })
    }
}

#[cfg(test)]
mod endpoint_tests {
    use super::valid_endpoint;

    #[test]
    fn endpoints_must_be_host_and_port() {
        for ok in ["127.0.0.1:7000", "bank-6.example:65535", "[::1]:1"] {
            assert!(valid_endpoint(ok), "{ok}");
        }
        let long = format!("{}:1", "h".repeat(254));
        for bad in
            ["", "host", ":7000", "host:", "host:0", "host:65536", "host:7e3", "a b:1", &long]
        {
            assert!(!valid_endpoint(bad), "{bad}");
        }
    }
}
