//! Transaction execution: the rules every validator applies, deterministically.
//!
//! # Protocol
//! [`execute`] takes the state, the block environment (height and block time), one signed
//! transaction and whether its signatures verified (checked beforehand for the whole block in one
//! batch), and either commits the transaction, returning its postings, or returns a
//! [`Rejection`]. Checks run in a fixed order: expiry, duplicate id, signatures, authority, then
//! the kind's own rules.
//!
//! # Invariants
//! - A rejected transaction changes nothing: every kind computes its effects on copies (an
//!   [`Overlay`]) and writes them back only after every check has passed.
//! - Money is only created by `Mint` and destroyed by `Burn`; transfers conserve it, including
//!   waterfalls (excess goes to the payee's bank float) and reverse waterfalls (the payer's bank
//!   float tops up a linked wallet).
//! - Limits are per holder (a keyed hash of the national identity) across all banks and apply to
//!   retail wallets: holding limit on credit, per-payment limit and daily outflow on debit, the
//!   day taken from block time (UTC days since the epoch).
//! - A committed id is remembered until its expiry height; an identical retry is
//!   `AlreadyCommitted`, the same id with another body is `IdReused`.
//!
//! Supply conservation is asserted by the caller after every block.

use crate::policy::{Policy, TierLimits};
use crate::rejection::Rejection;
use crate::state::{Bank, Holder, RecentTx, State, Wallet};
use crate::tx::{Authority, Leg, PolicyUpdate, SignedTransaction, TxKind, TxSignature};
use crate::types::{
    Amount, BankId, BankStatus, HolderRef, KycTier, PublicKey, WalletClass, WalletId, WalletStatus,
};
use std::collections::{BTreeMap, BTreeSet};

const MS_PER_DAY: u64 = 86_400_000;

/// The block a transaction executes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockEnv {
    pub height: u64,
    pub timestamp_ms: u64,
}

impl BlockEnv {
    /// UTC day number of the block time.
    pub fn day(&self) -> u64 {
        self.timestamp_ms.checked_div(MS_PER_DAY).unwrap_or(0)
    }
}

/// Why money moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PostingReason {
    Payment,
    /// Excess over the payee's holding limit, swept to the payee's bank.
    Waterfall,
    /// The payer's bank topping up a linked wallet.
    ReverseWaterfall,
    Mint,
    Burn,
}

/// One balance change of a committed transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Posting {
    pub wallet: WalletId,
    /// Credit (`true`) or debit (`false`).
    pub credit: bool,
    pub amount: Amount,
    pub reason: PostingReason,
}

/// The outcome of one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxOutcome {
    Committed(Vec<Posting>),
    Rejected(Rejection),
}

impl TxOutcome {
    pub fn is_committed(&self) -> bool {
        matches!(self, TxOutcome::Committed(_))
    }

    pub fn rejection(&self) -> Option<Rejection> {
        match self {
            TxOutcome::Committed(_) => None,
            TxOutcome::Rejected(r) => Some(*r),
        }
    }
}

fn add(a: Amount, b: Amount) -> Result<Amount, Rejection> {
    a.checked_add(b).map_err(|_| Rejection::AmountOverflow)
}

/// Executes one transaction against `state`. On `Err` the state is untouched.
pub fn execute(
    state: &mut State,
    env: &BlockEnv,
    tx: &SignedTransaction,
    signatures_valid: bool,
) -> Result<Vec<Posting>, Rejection> {
    let body = &tx.body;
    if env.height > body.expiry_height {
        return Err(Rejection::Expired);
    }
    let horizon = env.height.saturating_add(state.policy.max_expiry_blocks);
    if body.expiry_height > horizon {
        return Err(Rejection::ExpiryTooFar);
    }
    let digest = body.digest();
    if let Some(seen) = state.recent_tx(&body.id) {
        return Err(if seen.digest == digest {
            Rejection::AlreadyCommitted
        } else {
            Rejection::IdReused
        });
    }
    // What the codec cannot carry must not commit: a block is only valid if peers can decode it.
    if tx.signatures.len() > crate::tx::MAX_SIGNATURES as usize {
        return Err(Rejection::TooManySignatures);
    }
    if let TxKind::Transfer { legs } = &body.kind
        && legs.len() > crate::tx::MAX_LEGS as usize
    {
        return Err(Rejection::TooManyLegs);
    }
    if !signatures_valid {
        return Err(Rejection::BadSignature);
    }
    let signers = distinct_signers(&tx.signatures, body.kind.authority())?;
    check_fixed_authority(state, body.kind.authority(), &signers)?;
    let postings = match &body.kind {
        TxKind::Transfer { legs } => transfer(state, env, legs, &signers)?,
        TxKind::Mint { bank, amount } => mint(state, *bank, *amount)?,
        TxKind::Burn { bank, amount } => burn(state, *bank, *amount)?,
        TxKind::SetPolicy(update) => set_policy(state, update).map(|()| Vec::new())?,
        kind @ (TxKind::AdmitBank { .. } | TxKind::SuspendBank { .. }) => {
            admission(state, kind).map(|()| Vec::new())?
        }
        kind => administer_wallet(state, kind).map(|()| Vec::new())?,
    };
    state.remember(body.id, RecentTx { digest, expiry_height: body.expiry_height });
    Ok(postings)
}

/// The set of signing keys; a key signing twice is refused.
fn distinct_signers(
    sigs: &[TxSignature],
    authority: Authority,
) -> Result<BTreeSet<PublicKey>, Rejection> {
    let mut signers = BTreeSet::new();
    for sig in sigs {
        if !signers.insert(sig.signer) {
            return Err(match authority {
                Authority::Officers => Rejection::DuplicateApproval,
                _ => Rejection::DuplicateSignature,
            });
        }
    }
    Ok(signers)
}

/// Authority that does not depend on the transaction's effects: bank admin keys and officers.
/// (Transfers are checked against their payers inside [`transfer`].)
fn check_fixed_authority(
    state: &State,
    authority: Authority,
    signers: &BTreeSet<PublicKey>,
) -> Result<(), Rejection> {
    match authority {
        Authority::Payers => Ok(()),
        Authority::Bank(bank_id) => {
            let bank = state.banks.get(&bank_id).ok_or(Rejection::UnknownBank)?;
            if signers.len() != 1 || !signers.contains(&bank.admin_key) {
                return Err(Rejection::WrongSigner);
            }
            if bank.status != BankStatus::Active {
                return Err(Rejection::BankSuspended);
            }
            Ok(())
        }
        Authority::Officers => check_officers(&state.policy, signers),
    }
}

fn check_officers(policy: &Policy, signers: &BTreeSet<PublicKey>) -> Result<(), Rejection> {
    if signers.iter().any(|s| !policy.is_officer(s)) {
        return Err(Rejection::NotAnOfficer);
    }
    if signers.len() < usize::from(policy.threshold) {
        return Err(Rejection::TooFewApprovals);
    }
    Ok(())
}

/// Copy-on-write view of the wallets and holders a transfer touches.
struct Overlay<'s> {
    state: &'s State,
    wallets: BTreeMap<WalletId, Wallet>,
    holders: BTreeMap<HolderRef, Holder>,
    postings: Vec<Posting>,
}

impl<'s> Overlay<'s> {
    fn new(state: &'s State) -> Self {
        Overlay { state, wallets: BTreeMap::new(), holders: BTreeMap::new(), postings: Vec::new() }
    }

    fn wallet(&mut self, id: WalletId) -> Result<&mut Wallet, Rejection> {
        if !self.wallets.contains_key(&id) {
            let w = self.state.wallet(&id).ok_or(Rejection::UnknownWallet)?;
            self.wallets.insert(id, w.clone());
        }
        self.wallets.get_mut(&id).ok_or(Rejection::UnknownWallet)
    }

    fn holder(&mut self, holder: HolderRef) -> &mut Holder {
        let state = self.state;
        self.holders.entry(holder).or_insert_with(|| {
            let h = state.holder(&holder);
            assert!(h.is_some(), "retail wallet without a holder record");
            h.copied().unwrap_or_default()
        })
    }

    fn float_of(&self, bank: BankId) -> WalletId {
        let b = self.state.banks.get(&bank);
        assert!(b.is_some(), "wallet owned by an unknown bank");
        b.map(|b| b.float_wallet).unwrap_or_default()
    }

    fn post(&mut self, wallet: WalletId, credit: bool, amount: Amount, reason: PostingReason) {
        self.postings.push(Posting { wallet, credit, amount, reason });
    }

    /// The touched records and the postings, to be written back once every check has passed.
    fn into_changes(self) -> Changes {
        Changes { wallets: self.wallets, holders: self.holders, postings: self.postings }
    }
}

struct Changes {
    wallets: BTreeMap<WalletId, Wallet>,
    holders: BTreeMap<HolderRef, Holder>,
    postings: Vec<Posting>,
}

impl Changes {
    fn write(self, state: &mut State) -> Vec<Posting> {
        for w in self.wallets.into_values() {
            state.put_wallet(w);
        }
        for (holder_ref, holder) in self.holders {
            state.put_holder(holder_ref, holder);
        }
        self.postings
    }
}

fn tier_limits(policy: &Policy, tier: KycTier) -> Result<TierLimits, Rejection> {
    policy.tier(tier).copied().ok_or(Rejection::InvalidTier)
}

fn ensure_active(w: &Wallet) -> Result<(), Rejection> {
    match w.status {
        WalletStatus::Active => Ok(()),
        WalletStatus::Frozen => Err(Rejection::WalletFrozen),
        WalletStatus::Closed => Err(Rejection::WalletClosed),
    }
}

fn transfer(
    state: &mut State,
    env: &BlockEnv,
    legs: &[Leg],
    signers: &BTreeSet<PublicKey>,
) -> Result<Vec<Posting>, Rejection> {
    if legs.is_empty() {
        return Err(Rejection::EmptyTransfer);
    }
    // Authority first: exactly the keys of the paying wallets must have signed. The wallets
    // are read once, into the overlay the legs then work on.
    let mut ov = Overlay::new(state);
    let mut required = BTreeSet::new();
    for leg in legs {
        required.insert(ov.wallet(leg.from)?.public_key);
        ov.wallet(leg.to)?;
    }
    if &required != signers {
        return Err(Rejection::WrongSigner);
    }
    let mut paid: BTreeMap<HolderRef, Amount> = BTreeMap::new();
    for leg in legs {
        move_money(&mut ov, env, leg, &mut paid)?;
    }
    let changes = ov.into_changes();
    Ok(changes.write(state))
}

/// One leg: debit the payer (with reverse waterfall), credit the payee (with waterfall).
fn move_money(
    ov: &mut Overlay<'_>,
    env: &BlockEnv,
    leg: &Leg,
    paid: &mut BTreeMap<HolderRef, Amount>,
) -> Result<(), Rejection> {
    if leg.amount.is_zero() {
        return Err(Rejection::ZeroAmount);
    }
    if leg.from == leg.to {
        return Err(Rejection::SameWallet);
    }
    let payer = ov.wallet(leg.from)?.clone();
    let payee = ov.wallet(leg.to)?.clone();
    ensure_active(&payer)?;
    ensure_active(&payee)?;
    debit(ov, env, &payer, leg.amount, paid)?;
    credit(ov, &payee, leg.amount)
}

fn debit(
    ov: &mut Overlay<'_>,
    env: &BlockEnv,
    payer: &Wallet,
    amount: Amount,
    paid: &mut BTreeMap<HolderRef, Amount>,
) -> Result<(), Rejection> {
    let retail = payer.class == WalletClass::Retail;
    let topup = if payer.balance >= amount {
        Amount::ZERO
    } else if retail && payer.linked {
        amount.checked_sub(payer.balance).map_err(|_| Rejection::AmountOverflow)?
    } else {
        return Err(Rejection::InsufficientFunds);
    };
    if !topup.is_zero() {
        let float_id = ov.float_of(payer.bank);
        let float = ov.wallet(float_id)?;
        float.balance =
            float.balance.checked_sub(topup).map_err(|_| Rejection::InsufficientFunds)?;
        ov.post(float_id, false, topup, PostingReason::ReverseWaterfall);
        ov.post(payer.id, true, topup, PostingReason::ReverseWaterfall);
    }
    if retail {
        let limits = tier_limits(&ov.state.policy, payer.tier)?;
        let day = env.day();
        let total_paid = add(paid.get(&payer.holder).copied().unwrap_or_default(), amount)?;
        if total_paid > limits.per_payment_minor {
            return Err(Rejection::PaymentLimitExceeded);
        }
        paid.insert(payer.holder, total_paid);
        let holder = ov.holder(payer.holder);
        let outflow_today = if holder.outflow_day == day { holder.outflow } else { Amount::ZERO };
        let outflow = add(outflow_today, amount)?;
        if outflow > limits.daily_outflow_minor {
            return Err(Rejection::DailyOutflowExceeded);
        }
        holder.outflow_day = day;
        holder.outflow = outflow;
        // The payer's balance (part of holdings) changes by topup - amount.
        holder.holdings = add(holder.holdings, topup)?
            .checked_sub(amount)
            .map_err(|_| Rejection::AmountOverflow)?;
    }
    let w = ov.wallet(payer.id)?;
    w.balance =
        add(w.balance, topup)?.checked_sub(amount).map_err(|_| Rejection::InsufficientFunds)?;
    ov.post(payer.id, false, amount, PostingReason::Payment);
    Ok(())
}

fn credit(ov: &mut Overlay<'_>, payee: &Wallet, amount: Amount) -> Result<(), Rejection> {
    let mut kept = amount;
    if payee.class == WalletClass::Retail {
        let limits = tier_limits(&ov.state.policy, payee.tier)?;
        let holder = ov.holder(payee.holder);
        let room = limits.holding_minor.saturating_sub(holder.holdings);
        if amount > room {
            if !payee.linked {
                return Err(Rejection::HoldingLimitExceeded);
            }
            kept = room;
        }
        holder.holdings = add(holder.holdings, kept)?;
    }
    let w = ov.wallet(payee.id)?;
    w.balance = add(w.balance, amount)?;
    ov.post(payee.id, true, amount, PostingReason::Payment);
    let excess = amount.saturating_sub(kept);
    if !excess.is_zero() {
        let w = ov.wallet(payee.id)?;
        w.balance = w.balance.checked_sub(excess).map_err(|_| Rejection::AmountOverflow)?;
        ov.post(payee.id, false, excess, PostingReason::Waterfall);
        let float_id = ov.float_of(payee.bank);
        let float = ov.wallet(float_id)?;
        float.balance = add(float.balance, excess)?;
        ov.post(float_id, true, excess, PostingReason::Waterfall);
    }
    Ok(())
}

fn mint(state: &mut State, bank_id: BankId, amount: Amount) -> Result<Vec<Posting>, Rejection> {
    if amount.is_zero() {
        return Err(Rejection::ZeroAmount);
    }
    let bank = state.banks.get(&bank_id).ok_or(Rejection::UnknownBank)?;
    if bank.status != BankStatus::Active {
        return Err(Rejection::BankSuspended);
    }
    let outstanding = add(state.supply.outstanding(), amount)?;
    if outstanding > state.policy.supply_cap_minor {
        return Err(Rejection::SupplyCapExceeded);
    }
    let issued = add(bank.issued, amount)?;
    if issued > bank.quota {
        return Err(Rejection::QuotaExceeded);
    }
    let float_id = bank.float_wallet;
    let minted = add(state.supply.minted, amount)?;
    let float = state.wallet(&float_id).ok_or(Rejection::UnknownWallet)?;
    let float_balance = add(float.balance, amount)?;
    // All checks passed: write.
    state.supply.minted = minted;
    set_issued(state, bank_id, issued);
    set_balance(state, float_id, float_balance);
    Ok(vec![Posting { wallet: float_id, credit: true, amount, reason: PostingReason::Mint }])
}

fn burn(state: &mut State, bank_id: BankId, amount: Amount) -> Result<Vec<Posting>, Rejection> {
    if amount.is_zero() {
        return Err(Rejection::ZeroAmount);
    }
    let bank = state.banks.get(&bank_id).ok_or(Rejection::UnknownBank)?;
    let issued = bank.issued.checked_sub(amount).map_err(|_| Rejection::BurnExceedsIssued)?;
    let central = state.banks.get(&BankId::CENTRAL_BANK).ok_or(Rejection::UnknownBank)?;
    let issuance_id = central.float_wallet;
    let issuance = state.wallet(&issuance_id).ok_or(Rejection::UnknownWallet)?;
    let balance = issuance.balance.checked_sub(amount).map_err(|_| Rejection::InsufficientFunds)?;
    let burned = add(state.supply.burned, amount)?;
    state.supply.burned = burned;
    set_issued(state, bank_id, issued);
    set_balance(state, issuance_id, balance);
    Ok(vec![Posting { wallet: issuance_id, credit: false, amount, reason: PostingReason::Burn }])
}

fn set_issued(state: &mut State, bank: BankId, issued: Amount) {
    let b = state.banks.get_mut(&bank);
    assert!(b.is_some(), "bank vanished during execution");
    if let Some(b) = b {
        b.issued = issued;
    }
}

fn set_balance(state: &mut State, wallet: WalletId, balance: Amount) {
    let w = state.wallet(&wallet).cloned();
    assert!(w.is_some(), "wallet vanished during execution");
    if let Some(mut w) = w {
        w.balance = balance;
        state.put_wallet(w);
    }
}

fn set_policy(state: &mut State, update: &PolicyUpdate) -> Result<(), Rejection> {
    if let PolicyUpdate::BankQuota { bank, quota } = update {
        let b = state.banks.get_mut(bank).ok_or(Rejection::UnknownBank)?;
        b.quota = *quota;
        return Ok(());
    }
    let next = update.apply_to(&state.policy).ok_or(Rejection::InvalidTier)?;
    let next = next.normalized().map_err(|_| Rejection::InvalidPolicy)?;
    if next.supply_cap_minor < state.supply.outstanding() {
        return Err(Rejection::InvalidPolicy);
    }
    state.policy = next;
    Ok(())
}

fn admission(state: &mut State, kind: &TxKind) -> Result<(), Rejection> {
    match kind {
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
            if state.banks.contains_key(bank) {
                return Err(Rejection::BankExists);
            }
            if name.is_empty() || name.len() > crate::tx::MAX_BANK_NAME_BYTES as usize {
                return Err(Rejection::InvalidBankName);
            }
            if !crate::tx::valid_endpoint(endpoint) {
                return Err(Rejection::InvalidEndpoint);
            }
            if state.has_wallet(float_wallet) {
                return Err(Rejection::WalletExists);
            }
            if state.banks.values().any(|b| b.validator_key == *validator_key) {
                return Err(Rejection::DuplicateValidatorKey);
            }
            state.banks.insert(
                *bank,
                Bank {
                    id: *bank,
                    name: name.clone(),
                    admin_key: *admin_key,
                    validator_key: *validator_key,
                    endpoint: endpoint.clone(),
                    float_wallet: *float_wallet,
                    status: BankStatus::Active,
                    quota: *quota,
                    issued: Amount::ZERO,
                },
            );
            state.put_wallet(float_wallet_record(*float_wallet, *bank, *float_key));
            state.epoch = state.epoch.saturating_add(1);
            Ok(())
        }
        TxKind::SuspendBank { bank } => {
            if *bank == BankId::CENTRAL_BANK {
                return Err(Rejection::CannotSuspendCentralBank);
            }
            let b = state.banks.get_mut(bank).ok_or(Rejection::UnknownBank)?;
            if b.status == BankStatus::Suspended {
                return Err(Rejection::BankSuspended);
            }
            b.status = BankStatus::Suspended;
            state.epoch = state.epoch.saturating_add(1);
            Ok(())
        }
        _ => Err(Rejection::WrongSigner),
    }
}

/// The float wallet every bank gets with its admission (the issuance wallet for bank 0).
pub(crate) fn float_wallet_record(id: WalletId, bank: BankId, key: PublicKey) -> Wallet {
    let class = if bank == BankId::CENTRAL_BANK {
        WalletClass::CentralBankIssuance
    } else {
        WalletClass::BankFloat
    };
    Wallet {
        id,
        bank,
        public_key: key,
        class,
        tier: KycTier(0),
        holder: HolderRef::default(),
        status: WalletStatus::Active,
        linked: false,
        balance: Amount::ZERO,
    }
}

/// Wallet administration by the owning bank (authority already checked).
fn administer_wallet(state: &mut State, kind: &TxKind) -> Result<(), Rejection> {
    if let TxKind::OpenWallet { bank, wallet, public_key, class, tier, holder, linked } = kind {
        if state.has_wallet(wallet) {
            return Err(Rejection::WalletExists);
        }
        if !matches!(class, WalletClass::Retail | WalletClass::Merchant) {
            return Err(Rejection::ClassNotAllowed);
        }
        tier_limits(&state.policy, *tier)?;
        if *class == WalletClass::Retail && state.holder(holder).is_none() {
            state.put_holder(*holder, Holder::default());
        }
        let record = Wallet {
            id: *wallet,
            bank: *bank,
            public_key: *public_key,
            class: *class,
            tier: *tier,
            holder: *holder,
            status: WalletStatus::Active,
            linked: *linked,
            balance: Amount::ZERO,
        };
        state.put_wallet(record);
        return Ok(());
    }
    let (bank, wallet_id) = match kind {
        TxKind::SetTier { bank, wallet, .. }
        | TxKind::Freeze { bank, wallet }
        | TxKind::Unfreeze { bank, wallet }
        | TxKind::CloseWallet { bank, wallet }
        | TxKind::SetLinked { bank, wallet, .. } => (*bank, *wallet),
        _ => return Err(Rejection::WrongSigner),
    };
    let wallet = state.wallet(&wallet_id).ok_or(Rejection::UnknownWallet)?;
    if wallet.bank != bank {
        return Err(Rejection::ForeignWallet);
    }
    if !matches!(wallet.class, WalletClass::Retail | WalletClass::Merchant) {
        return Err(Rejection::ClassNotAllowed);
    }
    if wallet.status == WalletStatus::Closed {
        return Err(Rejection::WalletClosed);
    }
    let mut next = wallet.clone();
    match kind {
        TxKind::SetTier { tier, .. } => {
            let limits = tier_limits(&state.policy, *tier)?;
            if next.class == WalletClass::Retail {
                let holdings = state.holder(&next.holder).map(|h| h.holdings);
                if holdings.unwrap_or_default() > limits.holding_minor {
                    return Err(Rejection::TierBelowHoldings);
                }
            }
            next.tier = *tier;
        }
        TxKind::Freeze { .. } => next.status = change_status(&next, WalletStatus::Frozen)?,
        TxKind::Unfreeze { .. } => next.status = change_status(&next, WalletStatus::Active)?,
        TxKind::CloseWallet { .. } => {
            if !next.balance.is_zero() {
                return Err(Rejection::BalanceNotZero);
            }
            next.status = WalletStatus::Closed;
        }
        TxKind::SetLinked { linked, .. } => {
            if next.class != WalletClass::Retail {
                return Err(Rejection::ClassNotAllowed);
            }
            next.linked = *linked;
        }
        _ => return Err(Rejection::WrongSigner),
    }
    state.put_wallet(next);
    Ok(())
}

fn change_status(w: &Wallet, to: WalletStatus) -> Result<WalletStatus, Rejection> {
    if w.status == to { Err(Rejection::StatusUnchanged) } else { Ok(to) }
}
