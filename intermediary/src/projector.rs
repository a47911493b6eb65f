//! The bank's view of the finalized ledger: a replica of the ledger rebuilt from the node's
//! block log, the SQL projections of this bank's wallets and their history, and the settlement
//! of the payments the bank submitted.
//!
//! The projector reads finalized blocks from the block log the node writes (its own database
//! connection), applies each with the ledger's full checks, and then
//! - writes the projection rows of this bank's wallets (state and history) for that block, with
//!   the cursor, in one transaction (blocks with nothing for this bank write nothing);
//! - marks this bank's pending payments that the block committed (height, block time) and the
//!   open payment requests it paid;
//! - publishes the new ledger as the view the APIs read (balances, limits, statuses).
//!
//! Payments still pending when the view passes their expiry height can never commit: they are
//! marked failed (`expired`). On restart the replica is rebuilt from the newest snapshot at or
//! below the projection cursor; blocks already projected are applied again without writing.

use anyhow::{Context, Result};
use cbdc_ledger::{
    Block, BlockOutcome, Decode, Genesis, Ledger, PostingReason, SignedTransaction, TxId, TxKind,
    TxOutcome, WalletId,
};
use cbdc_store::{
    Direction, HistoryRow, PaymentRequestState, PaymentState, ProjectionBatch, Store, WalletRow,
};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

/// The projection's cursor name.
pub const PROJECTION: &str = "bank";
/// Blocks read from the log per query.
const PAGE_BLOCKS: u32 = 64;
/// How long the projector sleeps when it has caught up with the log.
const IDLE: Duration = Duration::from_millis(40);
/// Pending payments are checked against their expiry once per this many loop turns (a turn
/// is a page of blocks or an idle pause).
const EXPIRY_SCAN_TURNS: u32 = 16;
/// History `kind` codes for money the ledger moved on its own (beside the transaction kinds'
/// own tags, which are below 100).
pub const KIND_WATERFALL: u8 = 201;
pub const KIND_REVERSE_WATERFALL: u8 = 202;

/// The ledger as of the last block the projector applied, shared with the APIs. Each new
/// ledger is published whole behind its own `Arc`, so publishing copies nothing.
pub type View = Arc<RwLock<Arc<Ledger>>>;

/// The view's current ledger (a poisoned lock still holds a consistent one: it is only ever
/// replaced whole).
pub fn read(view: &View) -> Arc<Ledger> {
    view.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
}

/// Transaction ids the projector watches for: payments the bank submitted and are pending,
/// and payment requests of its merchants that are open.
#[derive(Debug, Default)]
pub struct Watched {
    pub payments: Mutex<BTreeSet<TxId>>,
    pub requests: Mutex<BTreeSet<TxId>>,
}

impl Watched {
    pub fn watch_payment(&self, id: TxId) {
        crate::lock(&self.payments).insert(id);
    }
    pub fn watch_request(&self, id: TxId) {
        crate::lock(&self.requests).insert(id);
    }
}

/// The history kind of a posting.
pub fn kind_name(kind: u8) -> &'static str {
    match kind {
        KIND_WATERFALL => "waterfall",
        KIND_REVERSE_WATERFALL => "reverse_waterfall",
        1 => "transfer",
        8 => "mint",
        9 => "burn",
        _ => "other",
    }
}

struct Projector {
    store: Store,
    /// The node's ledger after each recently finalized block (when the node runs in this
    /// process): a block found there is not executed a second time.
    feed: Option<cbdc_node::FinalizedFeed>,
    bank: cbdc_ledger::BankId,
    ledger: Arc<Ledger>,
    view: View,
    watched: Arc<Watched>,
}

/// Rebuilds the view from the store and starts the projector thread.
pub fn start(
    database_url: &str,
    genesis: &Genesis,
    bank: cbdc_ledger::BankId,
    watched: Arc<Watched>,
    feed: Option<cbdc_node::FinalizedFeed>,
) -> Result<(View, std::thread::JoinHandle<()>)> {
    let mut store = Store::open(database_url)?;
    let cursor = store.projection_height(PROJECTION)?;
    let ledger = match store.snapshot_at_or_below(cursor)? {
        Some(snapshot) if snapshot.height > 0 => Ledger::restore(genesis, &snapshot.data)
            .with_context(|| format!("restoring the snapshot at height {}", snapshot.height))?,
        _ => Ledger::from_genesis(genesis)?,
    };
    // Payments left pending by an earlier run.
    for payment in store.pending_payments(1_000)? {
        watched.watch_payment(TxId(payment.tx_id));
    }
    let ledger = Arc::new(ledger);
    let view = Arc::new(RwLock::new(ledger.clone()));
    // Re-apply what was projected before (writes are skipped, settlement is idempotent).
    let mut projector = Projector { store, feed, bank, ledger, view: view.clone(), watched };
    while projector.ledger.height() < cursor {
        if projector.step()? == 0 {
            break;
        }
    }
    let handle = std::thread::Builder::new().name("bank-projector".into()).spawn(move || {
        let mut turns = 0u32;
        loop {
            match projector.step() {
                Ok(0) => std::thread::sleep(IDLE),
                Ok(_) => {}
                Err(error) => {
                    tracing::error!(error = format!("{error:#}"), "projecting finalized blocks");
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
            turns = turns.wrapping_add(1);
            if turns.is_multiple_of(EXPIRY_SCAN_TURNS)
                && let Err(error) = projector.expire()
            {
                tracing::warn!(error = format!("{error:#}"), "expiring pending payments");
            }
        }
    })?;
    Ok((view, handle))
}

impl Projector {
    /// Applies the next finalized blocks, at most a page of them; returns how many.
    ///
    /// Blocks the node's finalized feed still holds, once durable, are taken from it with the
    /// node's ledger and outcomes: no read of the log, no decoding, no execution. The others
    /// (a lagging or restarted projector) are read from the block log.
    fn step(&mut self) -> Result<usize> {
        let mut count = 0usize;
        while count < PAGE_BLOCKS as usize {
            let next = self.ledger.height().saturating_add(1);
            let Some(fed) = self.feed.as_ref().and_then(|f| f.durable(next)) else { break };
            if fed.block.header.parent_hash != self.ledger.tip().hash
                || fed.ledger.tip().hash != fed.hash
                || fed.outcomes.len() != fed.block.transactions.len()
            {
                break;
            }
            self.project(&fed.block, fed.ledger.clone(), &fed.outcomes)?;
            count = count.saturating_add(1);
        }
        if count > 0 {
            return Ok(count);
        }
        let next = self.ledger.height().saturating_add(1);
        let page = self.store.blocks_from(next, PAGE_BLOCKS)?;
        let count = page.len();
        for stored in page {
            let block = Block::decode(&stored.block)
                .with_context(|| format!("stored block {} does not decode", stored.height))?;
            let (ledger, outcome) = self.apply(&block, stored.height)?;
            self.project(&block, ledger, &outcome.outcomes)?;
        }
        Ok(count)
    }

    /// Writes this bank's rows of a block the view has applied, settles what it committed and
    /// publishes the ledger after it.
    fn project(&mut self, block: &Block, ledger: Ledger, outcomes: &[TxOutcome]) -> Result<()> {
        let batch = batch_of(self.bank, &ledger, block, outcomes);
        if !batch.wallets.is_empty() || !batch.history.is_empty() {
            self.store.write_projection(block.header.height, &batch)?;
        }
        self.settle(block)?;
        self.ledger = Arc::new(ledger);
        *self.view.write().unwrap_or_else(std::sync::PoisonError::into_inner) = self.ledger.clone();
        Ok(())
    }

    /// The ledger after the next block of the log: the node's own result from the finalized
    /// feed when it still holds the block, otherwise this view's execution of it. This
    /// process's node verified every signature of the block before it appended it to the log,
    /// so the execution here re-checks roots, rules and the state commitment without verifying
    /// them a second time.
    fn apply(&self, block: &Block, height: u64) -> Result<(Ledger, BlockOutcome)> {
        let hash = block.hash();
        let fed = self.feed.as_ref().and_then(|f| f.get(height, &hash));
        if let Some(fed) = fed
            && block.header.parent_hash == self.ledger.tip().hash
            && fed.ledger.tip().hash == hash
            && fed.outcomes.len() == block.transactions.len()
        {
            let outcome = BlockOutcome {
                height,
                hash,
                state_root: fed.ledger.state_root(),
                outcomes: fed.outcomes.clone(),
            };
            return Ok((fed.ledger.clone(), outcome));
        }
        self.ledger
            .check_final_block(block)
            .with_context(|| format!("stored block {height} does not apply"))
    }

    /// Marks the watched payments and payment requests this block committed.
    fn settle(&mut self, block: &Block) -> Result<()> {
        let (height, time) = (block.header.height, block.header.timestamp_ms);
        for tx in &block.transactions {
            let id = tx.body.id;
            let watched = crate::lock(&self.watched.payments).contains(&id);
            if watched {
                self.store.settle_payment(
                    &id.0,
                    PaymentState::Committed,
                    Some(height),
                    Some(time),
                    None,
                )?;
                crate::lock(&self.watched.payments).remove(&id);
            }
            let requested = crate::lock(&self.watched.requests).contains(&id);
            if requested && let Some(request) = self.store.payment_request(&id.0)? {
                if request.state == PaymentRequestState::Open
                    && pays(tx, WalletId(request.wallet_id), request.amount_minor)
                {
                    self.store.mark_request_paid(&id.0, &id.0)?;
                }
                crate::lock(&self.watched.requests).remove(&id);
            }
        }
        Ok(())
    }

    /// Fails pending payments whose expiry height the ledger has passed without them.
    fn expire(&mut self) -> Result<()> {
        let height = self.ledger.height();
        for payment in self.store.pending_payments(1_000)? {
            if payment.expiry_height >= height {
                continue;
            }
            let id = TxId(payment.tx_id);
            if self.ledger.state().recent_tx(&id).is_some() {
                // Committed in a block this run did not settle (projected before a restart).
                let found = self.store.history_of_tx(&payment.tx_id)?;
                let entry = found.first();
                self.store.settle_payment(
                    &payment.tx_id,
                    PaymentState::Committed,
                    entry.map(|e| e.height),
                    entry.map(|e| e.row.timestamp_ms),
                    None,
                )?;
            } else {
                self.store.settle_payment(
                    &payment.tx_id,
                    PaymentState::Failed,
                    None,
                    None,
                    Some("expired"),
                )?;
            }
            crate::lock(&self.watched.payments).remove(&id);
        }
        Ok(())
    }
}

/// Whether `tx` is a transfer that pays `amount` into `wallet` (one of its legs).
fn pays(tx: &SignedTransaction, wallet: WalletId, amount: u64) -> bool {
    match &tx.body.kind {
        TxKind::Transfer { legs } => {
            legs.iter().any(|leg| leg.to == wallet && leg.amount.minor() == amount)
        }
        _ => false,
    }
}

/// This bank's projection rows for one applied block: the new state of each of its wallets
/// that a posting touched, and a history row per posting on them.
fn batch_of(
    bank: cbdc_ledger::BankId,
    after: &Ledger,
    block: &Block,
    outcomes: &[TxOutcome],
) -> ProjectionBatch {
    let state = after.state();
    let mine = |id: &WalletId| state.wallet(id).is_some_and(|w| w.bank == bank);
    let mut touched = BTreeSet::new();
    let mut history = Vec::new();
    for (tx, result) in block.transactions.iter().zip(outcomes) {
        let TxOutcome::Committed(postings) = result else { continue };
        match &tx.body.kind {
            TxKind::OpenWallet { wallet, .. }
            | TxKind::SetTier { wallet, .. }
            | TxKind::Freeze { wallet, .. }
            | TxKind::Unfreeze { wallet, .. }
            | TxKind::CloseWallet { wallet, .. }
            | TxKind::SetLinked { wallet, .. }
                if mine(wallet) =>
            {
                touched.insert(*wallet);
            }
            _ => {}
        }
        for posting in postings {
            if !mine(&posting.wallet) {
                continue;
            }
            touched.insert(posting.wallet);
            let (kind, counterparty) = match posting.reason {
                PostingReason::Waterfall | PostingReason::ReverseWaterfall => {
                    let of_wallet = state.wallet(&posting.wallet).map(|w| w.bank);
                    let their_float = of_wallet.and_then(|b| state.bank(b)).map(|b| b.float_wallet);
                    let code = if posting.reason == PostingReason::Waterfall {
                        KIND_WATERFALL
                    } else {
                        KIND_REVERSE_WATERFALL
                    };
                    // The float's own posting names the customer's wallet instead.
                    let other = if Some(posting.wallet) == their_float {
                        counterparty_of(tx, posting.wallet)
                    } else {
                        their_float
                    };
                    (code, other)
                }
                _ => (tx.body.kind.tag(), counterparty_of(tx, posting.wallet)),
            };
            history.push(HistoryRow {
                tx_id: tx.body.id.0,
                wallet_id: posting.wallet.0,
                counterparty_wallet_id: counterparty.map(|w| w.0),
                amount_minor: posting.amount.minor(),
                direction: if posting.credit { Direction::Credit } else { Direction::Debit },
                kind,
                timestamp_ms: block.header.timestamp_ms,
            });
        }
    }
    let wallets = touched
        .iter()
        .filter_map(|id| state.wallet(id))
        .map(|w| WalletRow {
            wallet_id: w.id.0,
            bank_id: u64::from(w.bank.0),
            class: w.class.tag(),
            tier: w.tier.0,
            status: w.status.tag(),
            balance_minor: w.balance.minor(),
            holder_ref: Some(w.holder.0.to_vec()),
        })
        .collect();
    ProjectionBatch { projection: PROJECTION.to_string(), wallets, history, supply: None }
}

/// The other side of `wallet` in a transfer's first leg that names it.
fn counterparty_of(tx: &SignedTransaction, wallet: WalletId) -> Option<WalletId> {
    match &tx.body.kind {
        TxKind::Transfer { legs } => legs.iter().find_map(|leg| {
            if leg.from == wallet {
                Some(leg.to)
            } else if leg.to == wallet {
                Some(leg.from)
            } else {
                None
            }
        }),
        _ => None,
    }
}
