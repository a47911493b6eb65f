//! Ledger state: banks, wallets, holders, supply, policy and remembered transaction ids.
//!
//! All collections are ordered maps, so iteration (and therefore the snapshot encoding) is
//! deterministic. The large collections (wallets, holders, remembered transactions) are
//! structurally shared and carry an incremental set hash ([`crate::commitment`]): cloning the state
//! for a candidate block is O(1) and the state commitment costs O(changes), not O(state).
//!
//! The state commitment is SHA-256 over the canonical encoding of the small parts (chain id,
//! policy, supply, epoch, banks) and the count and set hash of each large collection. The
//! snapshot format is the canonical encoding of everything; a snapshot restores to exactly the
//! state that produced its commitment (the set hashes are recomputed from the entries).
//!
//! Every change to a wallet, holder or remembered transaction goes through this module
//! (`put_wallet`, `put_holder`, `remember`, `prune_recent`), which keeps the set hashes and the
//! derived totals the per-block invariant check uses in step.

use crate::codec::{Decode, DecodeError, Encode, Reader, Writer};
use crate::commitment::{CommittedEntry, CommittedMap};
use crate::crypto::{domain, hash_parts};
use crate::policy::Policy;
use crate::tx::{MAX_BANK_NAME_BYTES, MAX_ENDPOINT_BYTES, decode_string};
use crate::types::{
    Amount, BankId, BankStatus, Digest, HolderRef, KycTier, PublicKey, TxId, WalletClass, WalletId,
    WalletStatus,
};
use imbl::{OrdMap, OrdSet};
use std::collections::{BTreeMap, BTreeSet};

/// Upper bound on entries of any one state collection in a snapshot.
const MAX_ENTRIES: u32 = 1 << 28;
/// Longest chain id, in bytes.
pub const MAX_CHAIN_ID_BYTES: u32 = 64;

/// A wallet on the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wallet {
    pub id: WalletId,
    /// The bank that holds the wallet for its customer and administers it.
    pub bank: BankId,
    /// The key that authorizes payments from the wallet.
    pub public_key: PublicKey,
    pub class: WalletClass,
    pub tier: KycTier,
    pub holder: HolderRef,
    pub status: WalletStatus,
    /// Linked to a deposit account at the bank: waterfall and reverse waterfall apply.
    pub linked: bool,
    pub balance: Amount,
}

/// A bank on the network (bank 0 is the central bank).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bank {
    pub id: BankId,
    pub name: String,
    /// Signs wallet administration for this bank's wallets.
    pub admin_key: PublicKey,
    /// The bank's consensus key.
    pub validator_key: PublicKey,
    /// Where the bank's validator accepts peer connections (`host:port`; empty for none).
    pub endpoint: String,
    /// The bank's float wallet (the central bank's issuance wallet for bank 0).
    pub float_wallet: WalletId,
    pub status: BankStatus,
    /// The most this bank may have issued to it, net of redemptions.
    pub quota: Amount,
    /// Issued to this bank, net of redemptions.
    pub issued: Amount,
}

/// What the ledger tracks per holder across all banks, for limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Holder {
    /// The sum of the balances of the holder's retail wallets.
    pub holdings: Amount,
    /// The UTC day (days since the epoch, by block time) `outflow` counts.
    pub outflow_day: u64,
    /// Paid out from retail wallets on `outflow_day`.
    pub outflow: Amount,
}

/// Supply counters. Outstanding = minted − burned = the sum of all balances.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Supply {
    pub minted: Amount,
    pub burned: Amount,
}

impl Supply {
    pub fn outstanding(&self) -> Amount {
        let outstanding = self.minted.checked_sub(self.burned);
        assert!(outstanding.is_ok(), "burned exceeds minted");
        outstanding.unwrap_or(Amount::ZERO)
    }
}

/// A committed transaction id, remembered until its expiry height.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecentTx {
    pub digest: Digest,
    pub expiry_height: u64,
}

/// The whole replicated state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    pub(crate) chain_id: String,
    pub(crate) policy: Policy,
    pub(crate) banks: BTreeMap<BankId, Bank>,
    wallets: CommittedMap<WalletId, Wallet>,
    holders: CommittedMap<HolderRef, Holder>,
    pub(crate) supply: Supply,
    recent: CommittedMap<TxId, RecentTx>,
    /// The validator-set epoch: incremented by every committed admission or suspension (the
    /// only changes to the set of active validators). A block that contains one ends its epoch;
    /// blocks of epoch `e` are certified by the validators of epoch `e`.
    pub(crate) epoch: u64,
    /// Index of `recent` by expiry, for pruning; derived, not encoded.
    expiries: OrdSet<(u64, TxId)>,
    /// Sum of all wallet balances; derived, not encoded (checked against the supply).
    balances: u128,
    /// Sum of the balances of each holder's retail wallets; derived, not encoded (checked
    /// against the holder records).
    retail: OrdMap<HolderRef, u128>,
}

/// A broken ledger invariant (supply conservation, holder aggregates).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvariantViolation {
    #[error("sum of balances {balances} differs from outstanding supply {outstanding}")]
    SupplyNotConserved { balances: u128, outstanding: u64 },
    #[error("burned exceeds minted")]
    NegativeSupply,
    #[error("holder aggregate disagrees with its wallets")]
    HolderMismatch,
    #[error("a bank's float wallet is missing, belongs to another bank or is not a float wallet")]
    BadFloat,
    #[error("a bank's issued amount exceeds the outstanding supply")]
    IssuedExceedsSupply,
    #[error("the maintained balance totals disagree with the wallets")]
    DerivedTotals,
    #[error("a maintained set hash disagrees with its collection")]
    Commitment,
}

impl State {
    pub fn chain_id(&self) -> &str {
        &self.chain_id
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The validator-set epoch (see [`State::validators`]).
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    pub fn supply(&self) -> Supply {
        self.supply
    }

    /// A state with the given banks and wallets and nothing else (genesis).
    pub(crate) fn new(
        chain_id: String,
        policy: Policy,
        banks: BTreeMap<BankId, Bank>,
        wallets: impl IntoIterator<Item = Wallet>,
    ) -> State {
        let mut state = State {
            chain_id,
            policy,
            banks,
            wallets: CommittedMap::default(),
            holders: CommittedMap::default(),
            supply: Supply::default(),
            recent: CommittedMap::default(),
            epoch: 0,
            expiries: OrdSet::new(),
            balances: 0,
            retail: OrdMap::new(),
        };
        for w in wallets {
            state.put_wallet(w);
        }
        state
    }

    pub fn wallet(&self, id: &WalletId) -> Option<&Wallet> {
        self.wallets.get(id)
    }

    pub(crate) fn has_wallet(&self, id: &WalletId) -> bool {
        self.wallets.contains_key(id)
    }

    /// Writes a wallet record (new or changed), keeping the commitment and totals in step.
    pub(crate) fn put_wallet(&mut self, w: Wallet) {
        let (retail, holder, balance) =
            (w.class == WalletClass::Retail, w.holder, u128::from(w.balance.minor()));
        let old = self.wallets.insert(w.id, w);
        let old_balance = old.as_ref().map_or(0, |o| u128::from(o.balance.minor()));
        // Totals of u64 balances over at most 2^28 wallets cannot overflow a u128.
        self.balances = self.balances.wrapping_sub(old_balance).wrapping_add(balance);
        if retail {
            match self.retail.get_mut(&holder) {
                Some(slot) => *slot = slot.wrapping_sub(old_balance).wrapping_add(balance),
                None => {
                    self.retail.insert(holder, balance.wrapping_sub(old_balance));
                }
            }
        }
    }

    /// Writes a holder record, keeping the commitment in step.
    pub(crate) fn put_holder(&mut self, holder_ref: HolderRef, holder: Holder) {
        self.holders.insert(holder_ref, holder);
    }

    pub fn wallets(&self) -> impl Iterator<Item = &Wallet> {
        self.wallets.values()
    }

    pub fn bank(&self, id: BankId) -> Option<&Bank> {
        self.banks.get(&id)
    }

    pub fn banks(&self) -> impl Iterator<Item = &Bank> {
        self.banks.values()
    }

    pub fn holder(&self, holder: &HolderRef) -> Option<&Holder> {
        self.holders.get(holder)
    }

    pub fn recent_tx(&self, id: &TxId) -> Option<&RecentTx> {
        self.recent.get(id)
    }

    /// Number of remembered transaction ids.
    pub fn recent_len(&self) -> usize {
        self.recent.len()
    }

    /// Consensus keys of the active banks, ordered by bank id.
    pub fn validators(&self) -> Vec<PublicKey> {
        self.banks
            .values()
            .filter(|b| b.status == BankStatus::Active)
            .map(|b| b.validator_key)
            .collect()
    }

    /// From now until [`State::settle_commitment`] (a block's execution), the set hashes are
    /// brought up to date once per changed entry instead of once per write.
    pub(crate) fn defer_commitment(&mut self) {
        self.wallets.defer();
        self.holders.defer();
        self.recent.defer();
    }

    /// Brings the set hashes up to date with the writes since [`State::defer_commitment`].
    pub(crate) fn settle_commitment(&mut self) {
        self.wallets.settle();
        self.holders.settle();
        self.recent.settle();
    }

    /// Forgets ids whose expiry height is below `height`: they can no longer commit anyway.
    pub(crate) fn prune_recent(&mut self, height: u64) {
        while let Some(&(expiry, id)) = self.expiries.get_min() {
            if expiry >= height {
                break;
            }
            self.expiries.remove(&(expiry, id));
            self.recent.remove(&id);
        }
    }

    pub(crate) fn remember(&mut self, id: TxId, recent: RecentTx) {
        self.expiries.insert((recent.expiry_height, id));
        self.recent.insert(id, recent);
    }

    /// The state commitment: the small parts in full, the large collections by count and
    /// set hash ([`crate::commitment`]).
    pub fn root(&self) -> Digest {
        let mut w = Writer::with_capacity(512);
        w.var_bytes(self.chain_id.as_bytes());
        self.policy.encode_to(&mut w);
        self.supply.minted.encode_to(&mut w);
        self.supply.burned.encode_to(&mut w);
        w.u64(self.epoch);
        encode_map(&mut w, &self.banks);
        w.count(self.wallets.len());
        w.count(self.holders.len());
        w.count(self.recent.len());
        hash_parts(
            domain::STATE,
            &[
                w.as_bytes(),
                &self.wallets.sum().to_bytes(),
                &self.holders.sum().to_bytes(),
                &self.recent.sum().to_bytes(),
            ],
        )
    }

    fn outstanding_checked(&self) -> Result<Amount, InvariantViolation> {
        self.supply
            .minted
            .checked_sub(self.supply.burned)
            .map_err(|_| InvariantViolation::NegativeSupply)
    }

    /// The invariants after a block, in O(what the block touched): supply conservation (from
    /// the maintained balance total), the aggregate of every holder whose wallet a posting
    /// moved, and every bank's float and issued amount (banks are few).
    pub(crate) fn check_block_invariants<'a>(
        &self,
        touched: impl IntoIterator<Item = &'a WalletId>,
    ) -> Result<(), InvariantViolation> {
        let outstanding = self.outstanding_checked()?;
        if self.balances != u128::from(outstanding.minor()) {
            return Err(InvariantViolation::SupplyNotConserved {
                balances: self.balances,
                outstanding: outstanding.minor(),
            });
        }
        // Each wallet once, however many postings moved it.
        let touched: BTreeSet<&WalletId> = touched.into_iter().collect();
        for id in touched {
            let Some(w) = self.wallets.get(id) else { continue };
            if w.class != WalletClass::Retail {
                continue;
            }
            let holdings = self.holders.get(&w.holder).map(|h| u128::from(h.holdings.minor()));
            if holdings != self.retail.get(&w.holder).copied() {
                return Err(InvariantViolation::HolderMismatch);
            }
        }
        self.check_banks(outstanding)
    }

    fn check_banks(&self, outstanding: Amount) -> Result<(), InvariantViolation> {
        for bank in self.banks.values() {
            let expected_class = if bank.id == BankId::CENTRAL_BANK {
                WalletClass::CentralBankIssuance
            } else {
                WalletClass::BankFloat
            };
            let float = self.wallets.get(&bank.float_wallet);
            if !float.is_some_and(|w| w.bank == bank.id && w.class == expected_class) {
                return Err(InvariantViolation::BadFloat);
            }
            if bank.issued > outstanding {
                return Err(InvariantViolation::IssuedExceedsSupply);
            }
        }
        Ok(())
    }

    /// Checks every invariant over the whole state (snapshots, tests): supply conservation,
    /// the holder aggregates, floats and issuance, the derived totals and the set hashes.
    pub fn check_invariants(&self) -> Result<(), InvariantViolation> {
        let outstanding = self.outstanding_checked()?;
        let mut balances: u128 = 0;
        let mut by_holder: BTreeMap<HolderRef, u128> = BTreeMap::new();
        for w in self.wallets.values() {
            balances = balances.saturating_add(u128::from(w.balance.minor()));
            if w.class == WalletClass::Retail {
                let slot = by_holder.entry(w.holder).or_insert(0);
                *slot = slot.saturating_add(u128::from(w.balance.minor()));
            }
        }
        if balances != u128::from(outstanding.minor()) {
            return Err(InvariantViolation::SupplyNotConserved {
                balances,
                outstanding: outstanding.minor(),
            });
        }
        for (holder_ref, holder) in self.holders.iter() {
            let expected = by_holder.get(holder_ref).copied().unwrap_or(0);
            if u128::from(holder.holdings.minor()) != expected {
                return Err(InvariantViolation::HolderMismatch);
            }
        }
        if by_holder.keys().any(|h| !self.holders.contains_key(h)) {
            return Err(InvariantViolation::HolderMismatch);
        }
        let retail_agrees = by_holder.len() == self.retail.len()
            && by_holder.iter().all(|(h, sum)| self.retail.get(h) == Some(sum));
        if balances != self.balances || !retail_agrees {
            return Err(InvariantViolation::DerivedTotals);
        }
        if !(self.wallets.check() && self.holders.check() && self.recent.check()) {
            return Err(InvariantViolation::Commitment);
        }
        self.check_banks(outstanding)
    }
}

impl Encode for Wallet {
    fn encode_to(&self, w: &mut Writer) {
        self.id.encode_to(w);
        self.bank.encode_to(w);
        self.public_key.encode_to(w);
        self.class.encode_to(w);
        self.tier.encode_to(w);
        self.holder.encode_to(w);
        self.status.encode_to(w);
        w.bool(self.linked);
        self.balance.encode_to(w);
    }
}

impl Decode for Wallet {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Wallet {
            id: WalletId::decode_from(r)?,
            bank: BankId::decode_from(r)?,
            public_key: PublicKey::decode_from(r)?,
            class: WalletClass::decode_from(r)?,
            tier: KycTier::decode_from(r)?,
            holder: HolderRef::decode_from(r)?,
            status: WalletStatus::decode_from(r)?,
            linked: r.bool("linked")?,
            balance: Amount::decode_from(r)?,
        })
    }
}

impl Encode for Bank {
    fn encode_to(&self, w: &mut Writer) {
        self.id.encode_to(w);
        w.var_bytes(self.name.as_bytes());
        self.admin_key.encode_to(w);
        self.validator_key.encode_to(w);
        w.var_bytes(self.endpoint.as_bytes());
        self.float_wallet.encode_to(w);
        self.status.encode_to(w);
        self.quota.encode_to(w);
        self.issued.encode_to(w);
    }
}

impl Decode for Bank {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Bank {
            id: BankId::decode_from(r)?,
            name: decode_string(r, MAX_BANK_NAME_BYTES, "bank name")?,
            admin_key: PublicKey::decode_from(r)?,
            validator_key: PublicKey::decode_from(r)?,
            endpoint: decode_string(r, MAX_ENDPOINT_BYTES, "endpoint")?,
            float_wallet: WalletId::decode_from(r)?,
            status: BankStatus::decode_from(r)?,
            quota: Amount::decode_from(r)?,
            issued: Amount::decode_from(r)?,
        })
    }
}

impl CommittedEntry<WalletId> for Wallet {
    const TAG: &'static [u8] = b"wallet";
    fn encode_entry(&self, _id: &WalletId, w: &mut Writer) {
        self.encode_to(w);
    }
}

impl CommittedEntry<HolderRef> for Holder {
    const TAG: &'static [u8] = b"holder";
    fn encode_entry(&self, holder_ref: &HolderRef, w: &mut Writer) {
        holder_ref.encode_to(w);
        self.holdings.encode_to(w);
        w.u64(self.outflow_day);
        self.outflow.encode_to(w);
    }
}

impl CommittedEntry<TxId> for RecentTx {
    const TAG: &'static [u8] = b"recent-tx";
    fn encode_entry(&self, id: &TxId, w: &mut Writer) {
        id.encode_to(w);
        w.fixed(&self.digest);
        w.u64(self.expiry_height);
    }
}

/// Encodes an ordered map as a count and its values (each value carries its key).
fn encode_map<K, V: Encode>(w: &mut Writer, map: &BTreeMap<K, V>) {
    w.count(map.len());
    for v in map.values() {
        v.encode_to(w);
    }
}

/// Decodes values into an ordered map, requiring strictly increasing keys (canonical form).
fn decode_map<K: Ord + Copy, V: Decode>(
    r: &mut Reader<'_>,
    min_bytes: usize,
    what: &'static str,
    key: impl Fn(&V) -> K,
) -> Result<BTreeMap<K, V>, DecodeError> {
    let n = r.count(MAX_ENTRIES, min_bytes, what)?;
    let mut map = BTreeMap::new();
    for _ in 0..n {
        let v = V::decode_from(r)?;
        let k = key(&v);
        if map.last_key_value().is_some_and(|(last, _)| *last >= k) {
            return Err(DecodeError::InvalidValue(what));
        }
        map.insert(k, v);
    }
    Ok(map)
}

impl Encode for State {
    fn encode_to(&self, w: &mut Writer) {
        w.var_bytes(self.chain_id.as_bytes());
        self.policy.encode_to(w);
        self.supply.minted.encode_to(w);
        self.supply.burned.encode_to(w);
        w.u64(self.epoch);
        encode_map(w, &self.banks);
        w.count(self.wallets.len());
        for wallet in self.wallets.values() {
            wallet.encode_to(w);
        }
        w.count(self.holders.len());
        for (holder_ref, h) in self.holders.iter() {
            h.encode_entry(holder_ref, w);
        }
        w.count(self.recent.len());
        for (id, recent) in self.recent.iter() {
            recent.encode_entry(id, w);
        }
    }
}

impl Decode for State {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let chain_id = decode_string(r, MAX_CHAIN_ID_BYTES, "chain id")?;
        let policy = Policy::decode_from(r)?;
        let supply = Supply { minted: Amount::decode_from(r)?, burned: Amount::decode_from(r)? };
        let epoch = r.u64("epoch")?;
        // Minimum encoded sizes: a bank is 109 bytes plus its name, a wallet exactly 96.
        let banks = decode_map(r, 109, "banks", |b: &Bank| b.id)?;
        let wallets = decode_map(r, 96, "wallets", |w: &Wallet| w.id)?;
        let mut state = State::new(chain_id, policy, banks, wallets.into_values());
        state.supply = supply;
        state.epoch = epoch;
        let n = r.count(MAX_ENTRIES, 56, "holders")?;
        for _ in 0..n {
            let holder_ref = HolderRef::decode_from(r)?;
            let holder = Holder {
                holdings: Amount::decode_from(r)?,
                outflow_day: r.u64("outflow day")?,
                outflow: Amount::decode_from(r)?,
            };
            if state.holders.last().is_some_and(|(last, _)| *last >= holder_ref) {
                return Err(DecodeError::InvalidValue("holders"));
            }
            state.put_holder(holder_ref, holder);
        }
        let n = r.count(MAX_ENTRIES, 56, "recent transactions")?;
        for _ in 0..n {
            let id = TxId::decode_from(r)?;
            let entry =
                RecentTx { digest: r.array::<32>("digest")?, expiry_height: r.u64("expiry")? };
            if state.recent.last().is_some_and(|(last, _)| *last >= id) {
                return Err(DecodeError::InvalidValue("recent transactions"));
            }
            state.remember(id, entry);
        }
        Ok(state)
    }
}
