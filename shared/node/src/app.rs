//! The consensus application: the glue between Commonware simplex and the ledger.
//!
//! # Protocol
//! Simplex orders 32-byte digests; this actor gives them meaning. Each digest is the hash of a
//! ledger block header.
//! - `propose(context)`: build a block on the context's parent (the finalized tip, or a block
//!   this node has verified) from the mempool, remember it, answer its digest. The full block goes
//!   to every peer on the `BLOCKS` channel when simplex asks the relay to broadcast it.
//! - `verify(context, digest)`: once the block and its parent's state are known, re-execute it
//!   with the ledger (every signature, limit and the state commitment) and check that its parent is
//!   the context's parent and its proposer is the round's leader. Until then the answer stays
//!   pending: `false` is only ever a permanent verdict.
//! - A finalization (the only finality) names a digest. The actor walks parent hashes from it back
//!   to its finalized tip, fetching any block it lacks from peers (`SYNC` channel), then applies
//!   the blocks in height order, each exactly once (keyed by height; repeated reports are
//!   ignored), appending each to the block log with the certificate when it has one.
//! - Admission: a transaction enters the mempool only once its signatures verify (submissions
//!   and peers' gossip, in batches). Blocks are then built and checked without verifying again
//!   the signatures of transactions the mempool holds (compared in full, body and signatures):
//!   each signature is verified once per node, and mostly before its block arrives.
//! - Mempool: every 500 ms its oldest transactions (at most 256) are executed against the
//!   finalized ledger in arrival order, as a proposal on the finalized tip would, and the
//!   rejected ones are dropped, like those such a proposal rejects (never gossiped).
//!
//! # Invariants
//! - The finalized ledger only ever advances by `Ledger::check_block` of the next block whose
//!   hash lies on a certified path; a finalized block that fails to apply means a quorum signed an
//!   invalid block, which breaks the BFT assumption: the node stops rather than diverge.
//! - A block is durable in the block log before the finalized ledger moves past it; a failed
//!   durable write is fatal.
//! - Everything held is bounded: known candidate blocks, waiting verifications, pending
//!   finality targets, the mempool, evidence.
//!
//! # Failure behaviour
//! Bytes from peers that do not decode, or blocks that do not verify, are dropped (and a bad
//! proposal is voted against). A crash loses nothing finalized: on restart the ledger is rebuilt
//! from the newest snapshot and the block log, and the engine from its journal.
//!
//! # Measurement
//! Published in [`NodeStatus`] after every change, counted since the process started: for each
//! block applied, its finality latency (the runtime clock minus the block time: the node never
//! reads the wall clock), its transactions by kind and the money they moved (from the postings
//! of its outcomes); for each finalization certificate, the last height each signer signed;
//! the transactions dropped from the mempool as rejected against the finalized ledger (by the
//! re-check or a proposal on the finalized tip), by kind and code.
//!
//! # Test hook
//! With the test-only feature `byzantine`, a `ProposalTamper` may replace this node's own
//! proposals (a byzantine proposer for simulations). Nothing else changes; production builds never
//! enable the feature.

use crate::mempool::{Mempool, MempoolError};
use crate::metrics::{BankHoldings, LatencyHistogram, MoneyFlows, TierHoldings, bump};
use crate::wire::{self, MAX_SYNC_BLOCKS, MAX_SYNC_RESPONSE_BYTES, SyncMessage, Want};
use cbdc_ledger::codec::{Decode, Encode};
use cbdc_ledger::{
    Block, BlockContext, BlockError, Digest, Ledger, PublicKey, Rejection, SignedTransaction,
};
use cbdc_store::{Store, commit_block};
use commonware_actor::Feedback;
use commonware_codec::{Decode as _, DecodeExt as _};
use commonware_consensus::simplex::types::Finalization;
use commonware_consensus::simplex::types::{Activity, Attributable, Context};
use commonware_consensus::simplex::{Plan, scheme::ed25519::Scheme};
use commonware_consensus::types::Round;
use commonware_consensus::{Automaton, CertifiableAutomaton, Relay, Reporter};
use commonware_cryptography::certificate::Verifier as _;
use commonware_cryptography::{ed25519, sha256};
use commonware_p2p::{Receiver, Recipients, Sender};
use commonware_parallel::Sequential;
use commonware_runtime::{Clock, Spawner};
use commonware_utils::channel::fallible::OneshotExt;
use commonware_utils::channel::{mpsc, oneshot, watch};
use commonware_utils::ordered::Set;
use futures::FutureExt as _;
use rand_core::CryptoRng;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};
use tracing::{debug, info, warn};

/// The digest simplex orders.
pub type ConsensusDigest = sha256::Digest;
/// Consensus identity of a validator.
pub type ValidatorKey = ed25519::PublicKey;
type Ctx = Context<ConsensusDigest, ValidatorKey>;

/// Candidate blocks held at once (proposed, received or fetched, not yet finalized).
const MAX_KNOWN_BLOCKS: usize = 4_096;
/// Verifications waiting for a block or its parent.
const MAX_WAITING: usize = 1_024;
/// Finalized digests waiting for their blocks.
const MAX_TARGETS: usize = 1_024;
/// Verification fetches missing ancestors only for proposals this close to the finalized tip.
const VERIFY_FETCH_DEPTH: u64 = 32;
/// Missing blocks tracked at once (for verification, and request throttling).
const MAX_WANTED: usize = 256;
/// Evidence records kept in memory.
const MAX_EVIDENCE: usize = 1_024;
/// How often missing blocks are asked for again.
const SYNC_RETRY: Duration = Duration::from_millis(500);
/// With no block finalized for this long, the node asks a peer for its newest certified block
/// (it may have missed finalizations, or a whole validator-set epoch).
const CATCH_UP_AFTER: Duration = Duration::from_secs(2);
/// Oldest mempool transactions re-checked against the finalized ledger every [`SYNC_RETRY`].
const RECHECK_TXS: usize = 256;
/// Capacity of the actor's mailbox.
pub const MAILBOX_SIZE: usize = 4_096;
/// Most transactions one batch submission carries.
pub const MAX_SUBMIT_BATCH: usize = 1_024;
/// Messages already queued in the mailbox handled before the actor flushes its gossip: under
/// load, submissions then leave in batches of up to [`wire::MAX_TX_BATCH`] per message instead of
/// one message per transaction; when idle a submission still leaves at once.
const DRAIN_MAILBOX: usize = 256;
/// Transactions verified together on admission at most (submissions queued together, or
/// gossip messages that have already arrived): batch verification costs less per signature
/// the larger the batch.
const ADMIT_BATCH: usize = 2_048;
/// Gossip messages already received taken into one admission batch at most.
const DRAIN_GOSSIP: usize = 64;

/// Settings of the application actor.
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// This validator's consensus key, as the ledger names it.
    pub me: PublicKey,
    /// Most transactions a proposal takes from the mempool.
    pub max_block_txs: usize,
    /// A snapshot of the ledger every this many blocks.
    pub snapshot_every: u64,
    /// The engine's namespace (to check finalization certificates from peers).
    pub namespace: Vec<u8>,
    /// Test-only: rewrites this node's proposals (see [`ProposalTamper`]).
    #[cfg(feature = "byzantine")]
    pub proposal_tamper: Option<ProposalTamper>,
}

// --- Byzantine test hook (feature `byzantine`, never in a production build) -------------------

/// Test-only (feature `byzantine`): turns this validator into a byzantine proposer.
///
/// Called with the parent ledger and the honest block this node just built on it; a returned
/// block is proposed and broadcast instead. The node keeps the honest block's post-state for it,
/// so it believes (and votes for) its own crafted block; honest validators must catch it in
/// `verify`. Only the proposal path is touched: votes, verification and finality stay honest.
#[cfg(feature = "byzantine")]
#[derive(Clone)]
pub struct ProposalTamper(Arc<CraftProposal>);

#[cfg(feature = "byzantine")]
type CraftProposal = dyn Fn(&Ledger, &Block) -> Option<Block> + Send + Sync;

#[cfg(feature = "byzantine")]
impl ProposalTamper {
    /// `craft(parent, honest)` answers the block to propose instead, or `None` to stay honest.
    pub fn new(craft: impl Fn(&Ledger, &Block) -> Option<Block> + Send + Sync + 'static) -> Self {
        ProposalTamper(Arc::new(craft))
    }
}

#[cfg(feature = "byzantine")]
impl std::fmt::Debug for ProposalTamper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProposalTamper")
    }
}

#[cfg(feature = "byzantine")]
fn tampered(
    tamper: Option<&ProposalTamper>,
    parent: &Ledger,
    built: cbdc_ledger::BuiltBlock,
) -> cbdc_ledger::BuiltBlock {
    match tamper.and_then(|t| (t.0)(parent, &built.block)) {
        Some(block) => cbdc_ledger::BuiltBlock { block, ..built },
        None => built,
    }
}

// --- End of the byzantine test hook -----------------------------------------------------------

/// What the node reports about itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeStatus {
    pub height: u64,
    pub tip_hash: Digest,
    pub state_root: Digest,
    pub mempool: usize,
    pub finalized_transactions: u64,
    /// Transaction signatures this process verified: on admission to the mempool (submitted,
    /// gossiped, or carried by a peer's block before its gossip), and in a block check for
    /// those it could not hold. With every transaction valid and admitted once, this equals
    /// [`NodeStatus::finalized_transactions`] plus what the mempool holds: one verification per
    /// transaction per node.
    pub signatures_verified: u64,
    /// Equivocation evidence seen (conflicting votes signed by one validator).
    pub evidence: u64,
    /// Outstanding supply at the finalized tip, in minor units.
    pub supply_outstanding_minor: u64,
    /// Block time of the finalized tip (ms since the Unix epoch).
    pub tip_timestamp_ms: u64,
    /// The validator-set epoch of the next block.
    pub epoch: u64,
    /// Validators in that epoch.
    pub validators: usize,
    /// Most transactions the mempool holds.
    pub mempool_capacity: usize,
    /// The policy's supply cap at the finalized tip, in minor units.
    pub supply_cap_minor: u64,
    /// Finality latency of the blocks this process finalized: the runtime clock when the block
    /// was applied minus the block's time.
    pub finality_latency: LatencyHistogram,
    /// Transactions in the blocks this process finalized, by kind (`TxKind::name`).
    pub committed_by_kind: BTreeMap<&'static str, u64>,
    /// Transactions this node dropped from its mempool as rejected against the finalized
    /// ledger (its re-check, or a proposal on the finalized tip), by kind and by code.
    pub rejections_by_kind: BTreeMap<&'static str, u64>,
    pub rejections_by_code: BTreeMap<&'static str, u64>,
    /// Money moved by the blocks this process finalized (see [`MoneyFlows`]).
    pub payments_total: u64,
    pub payments_value_minor: u64,
    pub waterfalls_total: u64,
    pub waterfall_value_minor: u64,
    pub reverse_waterfalls_total: u64,
    pub reverse_waterfall_value_minor: u64,
    /// Per validator, in key order: the last height whose finalization certificate (as this
    /// node received it) the validator signed, for the validators seen signing since start.
    pub validators_last_signed: Vec<(PublicKey, u64)>,
    /// Per validator, in key order: equivocation evidence records naming it.
    pub evidence_by_validator: Vec<(PublicKey, u64)>,
}

/// The validator set an engine instance runs with: the epoch, its validators, and the block
/// it starts from (the genesis for epoch 0, otherwise the last block of the previous epoch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpochInfo {
    pub epoch: u64,
    pub validators: Vec<PublicKey>,
    /// Each validator's registered peer endpoint (`host:port`, empty if none), in the order
    /// of `validators`.
    pub endpoints: Vec<String>,
    pub floor: Digest,
}

impl EpochInfo {
    /// The epoch of `ledger`'s tip, starting from block `floor`.
    pub fn of(ledger: &Ledger, floor: Digest) -> EpochInfo {
        let banks: Vec<_> = ledger
            .state()
            .banks()
            .filter(|b| b.status == cbdc_ledger::BankStatus::Active)
            .collect();
        EpochInfo {
            epoch: ledger.epoch(),
            validators: banks.iter().map(|b| b.validator_key).collect(),
            endpoints: banks.iter().map(|b| b.endpoint.clone()).collect(),
            floor,
        }
    }
}

/// Signed evidence of a misbehaving validator, as reported by the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evidence {
    /// `conflicting_notarize`, `conflicting_finalize` or `nullify_finalize`.
    pub kind: String,
    pub validator: PublicKey,
    pub epoch: u64,
    pub view: u64,
    /// The engine's encoding of the two conflicting signed messages.
    pub proof: Vec<u8>,
}

/// Why a submitted transaction was not accepted into the mempool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    #[error(transparent)]
    Mempool(#[from] MempoolError),
    #[error("a signature does not verify")]
    BadSignature,
    #[error("the node is shutting down")]
    Closed,
}

pub(crate) enum Message {
    Propose {
        context: Ctx,
        response: oneshot::Sender<ConsensusDigest>,
    },
    Verify {
        context: Ctx,
        payload: ConsensusDigest,
        response: oneshot::Sender<bool>,
    },
    Broadcast {
        payload: ConsensusDigest,
        recipients: Recipients<ValidatorKey>,
    },
    Finalized {
        payload: ConsensusDigest,
        certificate: Vec<u8>,
    },
    Evidence(Evidence),
    Submit {
        tx: Box<SignedTransaction>,
        response: oneshot::Sender<Result<(), SubmitError>>,
    },
    SubmitBatch {
        txs: Vec<SignedTransaction>,
        response: oneshot::Sender<Vec<Result<(), SubmitError>>>,
    },
    Evidences {
        response: oneshot::Sender<Vec<Evidence>>,
    },
    DryRun {
        tx: Box<SignedTransaction>,
        response: oneshot::Sender<Option<Rejection>>,
    },
    Committed {
        ids: Vec<cbdc_ledger::TxId>,
        response: oneshot::Sender<Vec<bool>>,
    },
    Summary {
        response: oneshot::Sender<LedgerSummary>,
    },
}

/// What services read of the finalized ledger (supply, banks, policy) without copying it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerSummary {
    pub height: u64,
    pub epoch: u64,
    pub chain_id: String,
    pub supply: cbdc_ledger::Supply,
    pub policy: cbdc_ledger::Policy,
    pub banks: Vec<cbdc_ledger::Bank>,
    /// What each bank's wallets and float hold, in bank order.
    pub holdings_by_bank: Vec<BankHoldings>,
    /// What retail wallets hold by KYC tier, in tier order.
    pub wallets_by_tier: Vec<TierHoldings>,
}

/// The handle consensus and services use to reach the actor.
#[derive(Clone, Debug)]
pub struct Mailbox {
    sender: mpsc::Sender<Message>,
    /// Validators in the engine's participant order (to name who a signer index is).
    participants: Arc<Vec<PublicKey>>,
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Message")
    }
}

impl Mailbox {
    /// How `tx` would fare against the finalized ledger now: `None` if it would commit (it is
    /// not submitted).
    pub async fn dry_run(&self, tx: SignedTransaction) -> Result<Option<Rejection>, SubmitError> {
        let (response, receiver) = oneshot::channel();
        let msg = Message::DryRun { tx: Box::new(tx), response };
        self.sender.send(msg).await.map_err(|_| SubmitError::Closed)?;
        receiver.await.map_err(|_| SubmitError::Closed)
    }

    /// For each id, whether a transaction with that id is committed (and not yet expired from
    /// the ledger's memory of ids).
    pub async fn committed(&self, ids: Vec<cbdc_ledger::TxId>) -> Result<Vec<bool>, SubmitError> {
        let (response, receiver) = oneshot::channel();
        self.sender
            .send(Message::Committed { ids, response })
            .await
            .map_err(|_| SubmitError::Closed)?;
        receiver.await.map_err(|_| SubmitError::Closed)
    }

    /// Supply, banks and policy at the finalized tip.
    pub async fn summary(&self) -> Result<LedgerSummary, SubmitError> {
        let (response, receiver) = oneshot::channel();
        self.sender.send(Message::Summary { response }).await.map_err(|_| SubmitError::Closed)?;
        receiver.await.map_err(|_| SubmitError::Closed)
    }

    /// Submits a transaction to this node's mempool (and gossips it to peers).
    pub async fn submit(&self, tx: SignedTransaction) -> Result<(), SubmitError> {
        let (response, receiver) = oneshot::channel();
        let msg = Message::Submit { tx: Box::new(tx), response };
        self.sender.send(msg).await.map_err(|_| SubmitError::Closed)?;
        receiver.await.unwrap_or(Err(SubmitError::Closed))
    }

    /// Submits up to [`MAX_SUBMIT_BATCH`] transactions at once (more are refused as `Full`);
    /// one result per transaction, in order.
    pub async fn submit_batch(
        &self,
        txs: Vec<SignedTransaction>,
    ) -> Result<Vec<Result<(), SubmitError>>, SubmitError> {
        let (response, receiver) = oneshot::channel();
        let msg = Message::SubmitBatch { txs, response };
        self.sender.send(msg).await.map_err(|_| SubmitError::Closed)?;
        receiver.await.map_err(|_| SubmitError::Closed)
    }

    /// Evidence of equivocation seen so far.
    pub async fn evidence_seen(&self) -> Vec<Evidence> {
        let (response, receiver) = oneshot::channel();
        if self.sender.send(Message::Evidences { response }).await.is_err() {
            return Vec::new();
        }
        receiver.await.unwrap_or_default()
    }

    fn try_send(&self, msg: Message) -> Feedback {
        match self.sender.try_send(msg) {
            Ok(()) => Feedback::Ok,
            Err(mpsc::error::TrySendError::Full(_)) => Feedback::Backoff,
            Err(mpsc::error::TrySendError::Closed(_)) => Feedback::Closed,
        }
    }
}

impl Automaton for Mailbox {
    type Context = Ctx;
    type Digest = ConsensusDigest;

    async fn propose(&mut self, context: Ctx) -> oneshot::Receiver<ConsensusDigest> {
        let (response, receiver) = oneshot::channel();
        // If the actor is gone the receiver closes, which declines the proposal.
        let _ = self.sender.send(Message::Propose { context, response }).await;
        receiver
    }

    async fn verify(&mut self, context: Ctx, payload: ConsensusDigest) -> oneshot::Receiver<bool> {
        let (response, receiver) = oneshot::channel();
        let _ = self.sender.send(Message::Verify { context, payload, response }).await;
        receiver
    }
}

impl CertifiableAutomaton for Mailbox {}

impl Relay for Mailbox {
    type Digest = ConsensusDigest;
    type PublicKey = ValidatorKey;
    type Plan = Plan<ValidatorKey>;

    fn broadcast(&mut self, payload: ConsensusDigest, plan: Plan<ValidatorKey>) -> Feedback {
        let recipients = match plan {
            Plan::Propose { .. } => Recipients::All,
            Plan::Forward { recipients, .. } => recipients,
            // Candidates are only sent with their proposal (no handoff proposals are made).
            _ => return Feedback::Ok,
        };
        self.try_send(Message::Broadcast { payload, recipients })
    }
}

impl Reporter for Mailbox {
    type Activity = Activity<Scheme, ConsensusDigest>;

    fn report(&mut self, activity: Self::Activity) -> Feedback {
        use commonware_codec::Encode as _;
        match activity {
            Activity::Finalization(f) => {
                let certificate = f.encode().to_vec();
                // A finalization dropped under backpressure is recovered by the next one: the
                // actor walks back to its tip along parent hashes.
                self.try_send(Message::Finalized { payload: f.proposal.payload, certificate })
            }
            Activity::ConflictingNotarize(e) => self.report_evidence("conflicting_notarize", &e),
            Activity::ConflictingFinalize(e) => self.report_evidence("conflicting_finalize", &e),
            Activity::NullifyFinalize(e) => self.report_evidence("nullify_finalize", &e),
            _ => Feedback::Ok,
        }
    }
}

impl Mailbox {
    fn report_evidence<E>(&self, kind: &'static str, e: &E) -> Feedback
    where
        E: commonware_codec::Encode
            + commonware_consensus::Viewable
            + commonware_consensus::Epochable
            + Attributable,
    {
        let index = usize::try_from(e.signer().get()).unwrap_or(usize::MAX);
        let Some(validator) = self.participants.get(index).copied() else {
            return Feedback::Ok;
        };
        let evidence = Evidence {
            kind: kind.to_string(),
            validator,
            epoch: e.epoch().get(),
            view: e.view().get(),
            proof: e.encode().to_vec(),
        };
        self.try_send(Message::Evidence(evidence))
    }
}

impl Mailbox {
    /// The same mailbox for an engine of another epoch (`participants` in its order).
    pub(crate) fn for_participants(&self, participants: Vec<PublicKey>) -> Mailbox {
        Mailbox { sender: self.sender.clone(), participants: Arc::new(participants) }
    }
}

/// Creates the mailbox and its receiving end; `participants` in the engine's order.
pub(crate) fn mailbox(participants: Vec<PublicKey>) -> (Mailbox, mpsc::Receiver<Message>) {
    let (sender, receiver) = mpsc::channel(MAILBOX_SIZE);
    (Mailbox { sender, participants: Arc::new(participants) }, receiver)
}

/// Submissions taken from the mailbox and not yet admitted: their transactions in order, and
/// for each submitter how many of them are its own.
#[derive(Default)]
struct Submissions {
    txs: Vec<SignedTransaction>,
    responders: Vec<(usize, Responder)>,
}

impl Submissions {
    fn push(&mut self, txs: Vec<SignedTransaction>, responder: Responder) {
        self.responders.push((txs.len(), responder));
        self.txs.extend(txs);
    }
}

/// Who waits for the results of a submission.
enum Responder {
    One(oneshot::Sender<Result<(), SubmitError>>),
    /// A batch; `over` transactions beyond [`MAX_SUBMIT_BATCH`] were cut and are answered `Full`.
    Batch {
        response: oneshot::Sender<Vec<Result<(), SubmitError>>>,
        over: usize,
    },
}

/// A block this node knows but has not finalized; `after` is the ledger after it once verified.
struct Known {
    block: Arc<Block>,
    after: Option<Verified>,
}

/// A verified block's outcome: the ledger after it, one outcome per transaction of the block
/// and the money they moved.
struct Verified {
    ledger: Ledger,
    outcomes: Vec<cbdc_ledger::TxOutcome>,
    flows: MoneyFlows,
}

impl Verified {
    fn new(ledger: Ledger, outcomes: Vec<cbdc_ledger::TxOutcome>) -> Verified {
        let flows = MoneyFlows::of(&outcomes);
        Verified { ledger, outcomes, flows }
    }
}

/// The node's counters since the process started (published in [`NodeStatus`]).
#[derive(Default)]
struct Counters {
    signatures_verified: u64,
    finality_latency: LatencyHistogram,
    committed_by_kind: BTreeMap<&'static str, u64>,
    rejections_by_kind: BTreeMap<&'static str, u64>,
    rejections_by_code: BTreeMap<&'static str, u64>,
    flows: MoneyFlows,
    last_signed: BTreeMap<PublicKey, u64>,
}

/// The node's own p2p channels.
pub struct Channels<S, R> {
    pub blocks: (S, R),
    pub txs: (S, R),
    pub sync: (S, R),
}

impl<S, R> std::fmt::Debug for Channels<S, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Channels")
    }
}

/// The application actor. Owns the finalized ledger, candidate blocks, mempool and block log.
pub(crate) struct Actor<E, S, R> {
    context: E,
    cfg: AppConfig,
    mailbox: mpsc::Receiver<Message>,
    store: Store,
    finalized: Ledger,
    known: BTreeMap<Digest, Known>,
    waiting: Vec<(Ctx, ConsensusDigest, oneshot::Sender<bool>)>,
    /// Certified digests not yet applied, with their certificates.
    targets: BTreeMap<Digest, Vec<u8>>,
    recent_final: VecDeque<Digest>,
    mempool: Mempool,
    /// Decompressed signer keys (admission verifies most signatures; payers sign again).
    keys: cbdc_ledger::KeyCache,
    /// Submitted transactions accepted since the last gossip flush (bounded by the drain).
    outbox: Vec<SignedTransaction>,
    /// The ledger after each recently finalized block, for in-process readers.
    feed: crate::feed::FinalizedFeed,
    evidence: Vec<Evidence>,
    status: watch::Sender<NodeStatus>,
    next_request: u64,
    /// When each missing block was last asked for (throttles requests; bounded).
    requested: BTreeMap<Digest, std::time::SystemTime>,
    /// Blocks a pending verification needs (a proposal or an unfinalized ancestor; bounded).
    wanted: BTreeMap<Digest, Option<u64>>,
    /// When each range of heights was last asked for (bounded).
    requested_ranges: BTreeMap<u64, std::time::SystemTime>,
    next_peer: usize,
    finalized_transactions: u64,
    counters: Counters,
    net: Option<Channels<S, R>>,
    /// The validator-set epoch of the finalized tip, and what the engine runs with.
    epoch: u64,
    epoch_tx: watch::Sender<EpochInfo>,
    /// The epoch's other validators (asked for blocks), and a verifier of its certificates.
    peers: Vec<ValidatorKey>,
    verifier: Scheme,
    /// The epoch's validators in the engine's participant order (certificate signer indices).
    signer_order: Vec<PublicKey>,
    /// When a block was last finalized, and when a peer was last asked for its newest one.
    last_progress: std::time::SystemTime,
    last_catch_up: std::time::SystemTime,
}

/// The validator set of a ledger as consensus keys, in the engine's canonical order; `None` if
/// a key is not a valid Ed25519 point or appears twice.
pub(crate) fn validator_set(validators: &[PublicKey]) -> Option<Set<ValidatorKey>> {
    let keys: Option<Vec<ValidatorKey>> = validators
        .iter()
        .map(|k| ValidatorKey::decode(bytes::Bytes::copy_from_slice(&k.0)).ok())
        .collect();
    Set::try_from(keys?).ok()
}

/// `validators` in the engine's participant order (certificates name signers by index in it).
fn signer_order(validators: &[PublicKey]) -> Vec<PublicKey> {
    let Some(set) = validator_set(validators) else { return Vec::new() };
    set.iter().filter_map(|k| <[u8; 32]>::try_from(k.as_ref()).ok().map(PublicKey)).collect()
}

/// The consensus keys of `validators` other than `me`.
fn other_validators(validators: &[PublicKey], me: &PublicKey) -> Vec<ValidatorKey> {
    validators
        .iter()
        .filter(|k| *k != me)
        .filter_map(|k| ValidatorKey::decode(bytes::Bytes::copy_from_slice(&k.0)).ok())
        .collect()
}

/// A verifier of `validators`' certificates (none if a key is not a valid Ed25519 point,
/// which the ledger's admission rules do not let happen).
fn verifier_for(namespace: &[u8], validators: &[PublicKey]) -> Option<Scheme> {
    let set = validator_set(validators)?;
    Some(Scheme::verifier(namespace, set))
}

fn digest_of(d: &ConsensusDigest) -> Digest {
    d.0
}

fn ms(context: &impl Clock) -> u64 {
    let since = context.current().duration_since(UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
}

impl<E, S, R> Actor<E, S, R>
where
    E: Clock + Spawner + CryptoRng,
    S: Sender<PublicKey = ValidatorKey>,
    R: Receiver<PublicKey = ValidatorKey>,
{
    #[allow(clippy::too_many_arguments, reason = "called once, by `node::start_with`")]
    pub(crate) fn new(
        context: E,
        cfg: AppConfig,
        mailbox: mpsc::Receiver<Message>,
        store: Store,
        finalized: Ledger,
        mempool: Mempool,
        net: Channels<S, R>,
        epoch: EpochInfo,
        evidence: Vec<Evidence>,
        feed: crate::feed::FinalizedFeed,
    ) -> (Self, watch::Receiver<NodeStatus>, watch::Receiver<EpochInfo>) {
        let (status, status_rx) = watch::channel(NodeStatus::default());
        let peers = other_validators(&epoch.validators, &cfg.me);
        let verifier = verifier_for(&cfg.namespace, &epoch.validators);
        assert!(verifier.is_some(), "the ledger's validator keys are valid Ed25519 keys");
        let verifier = verifier.unwrap_or_else(|| unreachable!());
        let signer_order = signer_order(&epoch.validators);
        let (epoch_tx, epoch_rx) = watch::channel(epoch.clone());
        let now = context.current();
        let actor = Actor {
            context,
            cfg,
            mailbox,
            store,
            finalized,
            known: BTreeMap::new(),
            waiting: Vec::new(),
            targets: BTreeMap::new(),
            recent_final: VecDeque::new(),
            mempool,
            keys: cbdc_ledger::KeyCache::new(cbdc_ledger::KeyCache::DEFAULT_SLOTS),
            outbox: Vec::new(),
            feed,
            evidence,
            status,
            next_request: 0,
            requested: BTreeMap::new(),
            wanted: BTreeMap::new(),
            requested_ranges: BTreeMap::new(),
            next_peer: 0,
            finalized_transactions: 0,
            counters: Counters::default(),
            net: Some(net),
            epoch: epoch.epoch,
            epoch_tx,
            peers,
            verifier,
            signer_order,
            last_progress: now,
            last_catch_up: now,
        };
        actor.publish();
        (actor, status_rx, epoch_rx)
    }

    fn is_validator(&self) -> bool {
        self.finalized.validators().contains(&self.cfg.me)
    }

    fn publish(&self) {
        let tip = self.finalized.tip();
        let state = self.finalized.state();
        let c = &self.counters;
        let mut evidence_by_validator = BTreeMap::new();
        for e in &self.evidence {
            bump(&mut evidence_by_validator, e.validator);
        }
        self.status.send_replace(NodeStatus {
            height: tip.height,
            tip_hash: tip.hash,
            state_root: self.finalized.state_root(),
            mempool: self.mempool.len(),
            finalized_transactions: self.finalized_transactions,
            signatures_verified: c.signatures_verified,
            evidence: self.evidence.len() as u64,
            supply_outstanding_minor: state.supply().outstanding().minor(),
            tip_timestamp_ms: tip.timestamp_ms,
            epoch: self.epoch,
            validators: self.peers.len() + usize::from(self.is_validator()),
            mempool_capacity: self.mempool.limits().max_transactions,
            supply_cap_minor: state.policy().supply_cap_minor.minor(),
            finality_latency: c.finality_latency,
            committed_by_kind: c.committed_by_kind.clone(),
            rejections_by_kind: c.rejections_by_kind.clone(),
            rejections_by_code: c.rejections_by_code.clone(),
            payments_total: c.flows.payments,
            payments_value_minor: c.flows.payments_value_minor,
            waterfalls_total: c.flows.waterfalls,
            waterfall_value_minor: c.flows.waterfall_value_minor,
            reverse_waterfalls_total: c.flows.reverse_waterfalls,
            reverse_waterfall_value_minor: c.flows.reverse_waterfall_value_minor,
            validators_last_signed: c.last_signed.iter().map(|(k, h)| (*k, *h)).collect(),
            evidence_by_validator: evidence_by_validator.into_iter().collect(),
        });
    }

    /// Runs until the mailbox closes (the engine and every handle are gone).
    pub(crate) async fn run(mut self) {
        let Some(net) = self.net.take() else { return };
        let Channels {
            blocks: (mut blocks_tx, mut blocks_rx),
            txs: (mut txs_tx, mut txs_rx),
            sync,
        } = net;
        let (mut sync_tx, mut sync_rx) = sync;
        // A fixed schedule, not a fresh timer per message: on a busy network messages arrive
        // faster than the retry interval, and the periodic work must still run.
        let mut next_tick = self.context.current() + SYNC_RETRY;
        loop {
            let retry = self.context.sleep_until(next_tick);
            commonware_macros::select! {
                msg = self.mailbox.recv() => {
                    let Some(msg) = msg else { break };
                    // Submissions queued together are admitted together: one signature batch.
                    let mut submissions = Submissions::default();
                    self.on_message(msg, &mut submissions, &mut blocks_tx, &mut sync_tx);
                    for _ in 0..DRAIN_MAILBOX {
                        let Ok(msg) = self.mailbox.try_recv() else { break };
                        self.on_message(msg, &mut submissions, &mut blocks_tx, &mut sync_tx);
                    }
                    self.admit_submissions(&mut submissions);
                },
                got = blocks_rx.recv() => {
                    let Ok((_, bytes)) = got else { break };
                    self.on_block_bytes(bytes.as_ref());
                    self.advance(&mut sync_tx);
                },
                got = txs_rx.recv() => {
                    let Ok((_, bytes)) = got else { break };
                    let mut txs = wire::decode_txs(bytes.as_ref()).unwrap_or_default();
                    // Gossip that has already arrived joins the same signature batch (larger
                    // batches cost less per signature); what is still in flight waits.
                    for _ in 0..DRAIN_GOSSIP {
                        if txs.len() >= ADMIT_BATCH {
                            break;
                        }
                        let Some(Ok((_, bytes))) = txs_rx.recv().now_or_never() else { break };
                        if let Ok(more) = wire::decode_txs(bytes.as_ref()) {
                            txs.extend(more);
                        }
                    }
                    // Gossip from peers is not gossiped again.
                    let _ = self.admit(txs, false);
                },
                got = sync_rx.recv() => {
                    let Ok((peer, bytes)) = got else { break };
                    self.on_sync(peer, bytes.as_ref(), &mut sync_tx);
                },
                _ = retry => {
                    next_tick = self.context.current() + SYNC_RETRY;
                    if !self.targets.is_empty() {
                        self.advance(&mut sync_tx);
                    }
                    self.maybe_catch_up(&mut sync_tx);
                    self.recheck_mempool();
                    // Re-derive what pending verifications still need; stale wants drop out.
                    self.wanted.clear();
                    self.retry_waiting();
                },
            }
            self.flush_wanted(&mut sync_tx);
            self.flush_gossip(&mut txs_tx);
        }
        info!("application actor stopped");
    }

    /// Gossips the transactions submitted here since the last flush, in batches.
    fn flush_gossip(&mut self, txs_tx: &mut S) {
        if self.outbox.is_empty() {
            return;
        }
        let outbox = std::mem::take(&mut self.outbox);
        for batch in outbox.chunks(wire::MAX_TX_BATCH as usize) {
            txs_tx.send(Recipients::All, wire::encode_txs(batch), false);
        }
    }

    /// Admits the transactions of a block that the mempool does not hold yet (a peer's block
    /// can arrive before the gossip that carried its transactions here). Verified here as one
    /// batch, with the node's key cache, they are held like gossip: the block check then skips
    /// their signatures, and their gossip, when it arrives, is a duplicate instead of a second
    /// verification. A transaction that fails is left out, and the block check finds it.
    fn admit_unheld(&mut self, block: &Block) {
        let unheld: Vec<SignedTransaction> = block
            .transactions
            .iter()
            .filter(|t| !self.mempool.contains(&t.body.id))
            .cloned()
            .collect();
        if !unheld.is_empty() {
            let _ = self.admit(unheld, false);
        }
    }

    /// Admits transactions to the mempool: those already held are duplicates, those beyond
    /// the mempool's free room are refused as `Full` before any work (so a flood costs no
    /// verification); the signatures of the rest are verified in one batch, and only validly
    /// signed ones are inserted, and with `gossip` also queued in the outbox for the peers.
    /// Returns one result per input.
    fn admit(&mut self, txs: Vec<SignedTransaction>, gossip: bool) -> Vec<Result<(), SubmitError>> {
        let mut room = self.mempool.room();
        let committed = self.finalized.state();
        let fresh: Vec<Option<bool>> = txs
            .iter()
            .map(|t| {
                // What peers relay (gossip arriving after the block that carried it, a
                // block's transactions) is not verified again once the finalized ledger has
                // committed it; a submission keeps its answer (the ledger rejects it).
                if self.mempool.contains(&t.body.id)
                    || (!gossip && committed.recent_tx(&t.body.id).is_some())
                {
                    return Some(false);
                }
                let fits = room > 0;
                room = room.saturating_sub(1);
                fits.then_some(true)
            })
            .collect();
        let to_check: Vec<&SignedTransaction> =
            txs.iter().zip(&fresh).filter(|(_, f)| **f == Some(true)).map(|(t, _)| t).collect();
        self.counters.signatures_verified =
            self.counters.signatures_verified.saturating_add(to_check.len() as u64);
        let chain_id = self.finalized.chain_id();
        let mut verdicts =
            cbdc_ledger::block::verify_signature_refs(chain_id, &to_check, &mut self.keys)
                .into_iter();
        txs.into_iter()
            .zip(fresh)
            .map(|(tx, fresh)| {
                match fresh {
                    Some(true) => {}
                    Some(false) => return Err(SubmitError::Mempool(MempoolError::Duplicate)),
                    None => return Err(SubmitError::Mempool(MempoolError::Full)),
                }
                if verdicts.next() != Some(true) {
                    return Err(SubmitError::BadSignature);
                }
                if gossip {
                    self.mempool.insert(tx.clone())?;
                    self.outbox.push(tx);
                } else {
                    self.mempool.insert(tx)?;
                }
                Ok(())
            })
            .collect()
    }

    /// Holds a submission back for [`Actor::admit_submissions`]; admits what is held once it
    /// reaches [`ADMIT_BATCH`].
    fn hold(
        &mut self,
        submissions: &mut Submissions,
        txs: Vec<SignedTransaction>,
        responder: Responder,
    ) {
        submissions.push(txs, responder);
        if submissions.txs.len() >= ADMIT_BATCH {
            self.admit_submissions(submissions);
        }
    }

    /// Admits the held submissions as one batch and answers each submitter.
    fn admit_submissions(&mut self, submissions: &mut Submissions) {
        if submissions.responders.is_empty() {
            return;
        }
        let Submissions { txs, responders } = std::mem::take(submissions);
        // Submitted here, so gossiped from here.
        let mut results = self.admit(txs, true).into_iter();
        for (count, responder) in responders {
            let mut mine: Vec<_> = results.by_ref().take(count).collect();
            match responder {
                Responder::One(response) => {
                    let result = mine.into_iter().next().unwrap_or(Err(SubmitError::Closed));
                    response.send_lossy(result);
                }
                Responder::Batch { response, over } => {
                    let full = Err(SubmitError::Mempool(MempoolError::Full));
                    mine.extend(std::iter::repeat_n(full, over));
                    response.send_lossy(mine);
                }
            }
        }
    }

    /// Handles a message taken from the mailbox. Submissions are held back in `submissions`
    /// (admitted together by [`Actor::admit_submissions`], at the latest when the drain ends);
    /// any other message first admits what is held, so the order of everything else is kept.
    fn on_message(
        &mut self,
        msg: Message,
        submissions: &mut Submissions,
        blocks_tx: &mut S,
        sync_tx: &mut S,
    ) {
        if !matches!(msg, Message::Submit { .. } | Message::SubmitBatch { .. }) {
            self.admit_submissions(submissions);
        }
        match msg {
            Message::Submit { tx, response } => {
                self.hold(submissions, vec![*tx], Responder::One(response));
            }
            Message::SubmitBatch { mut txs, response } => {
                let over = txs.len().saturating_sub(MAX_SUBMIT_BATCH);
                txs.truncate(MAX_SUBMIT_BATCH);
                self.hold(submissions, txs, Responder::Batch { response, over });
            }
            Message::Propose { context, response } => {
                if let Some(digest) = self.propose(&context) {
                    response.send_lossy(digest);
                }
            }
            Message::Verify { context, payload, response } => {
                self.verify_or_wait(context, payload, response);
            }
            Message::Broadcast { payload, recipients } => {
                if let Some(known) = self.known.get(&digest_of(&payload)) {
                    blocks_tx.send(recipients, known.block.encode(), false);
                }
            }
            Message::Finalized { payload, certificate } => {
                let d = digest_of(&payload);
                if !self.recent_final.contains(&d) && self.targets.len() < MAX_TARGETS {
                    self.targets.insert(d, certificate);
                }
                self.advance(sync_tx);
            }
            Message::Evidence(e) => {
                let record = cbdc_store::EvidenceRecord {
                    kind: e.kind.clone(),
                    validator: e.validator.0,
                    epoch: e.epoch,
                    view: e.view,
                    proof: e.proof.clone(),
                    recorded_at_height: self.finalized.height(),
                };
                // One record per offence (kind, validator, epoch, view), as the block log keys it.
                let new = match self.store.put_evidence(&record) {
                    Ok(new) => new,
                    Err(error) => {
                        warn!(%error, "failed to record equivocation evidence");
                        !self.evidence.iter().any(|x| {
                            (&x.kind, x.validator, x.epoch, x.view)
                                == (&e.kind, e.validator, e.epoch, e.view)
                        })
                    }
                };
                if new {
                    warn!(kind = %e.kind, validator = %e.validator, epoch = e.epoch,
                        view = e.view, "equivocation evidence recorded");
                }
                if new && self.evidence.len() < MAX_EVIDENCE {
                    self.evidence.push(e);
                    self.publish();
                }
            }
            Message::Evidences { response } => {
                response.send_lossy(self.evidence.clone());
            }
            Message::DryRun { tx, response } => {
                let now = ms(&self.context);
                let held = |t: &SignedTransaction| self.mempool.holds(t);
                let outcomes = self.finalized.dry_run(now, std::slice::from_ref(&*tx), &held);
                response.send_lossy(outcomes.first().and_then(|o| o.rejection()));
            }
            Message::Committed { ids, response } => {
                let state = self.finalized.state();
                let digests = ids.iter().map(|id| state.recent_tx(id).is_some()).collect();
                response.send_lossy(digests);
            }
            Message::Summary { response } => {
                let state = self.finalized.state();
                let (holdings_by_bank, wallets_by_tier) = crate::metrics::holdings(state);
                response.send_lossy(LedgerSummary {
                    height: self.finalized.height(),
                    epoch: self.finalized.epoch(),
                    chain_id: self.finalized.chain_id().to_string(),
                    supply: state.supply(),
                    policy: state.policy().clone(),
                    banks: state.banks().cloned().collect(),
                    holdings_by_bank,
                    wallets_by_tier,
                });
            }
        }
    }

    /// The ledger after the block with this hash, if this node has it.
    fn ledger_at(&self, hash: &Digest) -> Option<&Ledger> {
        if *hash == self.finalized.tip().hash {
            return Some(&self.finalized);
        }
        self.known.get(hash).and_then(|k| k.after.as_ref()).map(|v| &v.ledger)
    }

    fn want(&mut self, hash: Digest, height: Option<u64>) {
        if self.wanted.len() < MAX_WANTED {
            self.wanted.insert(hash, height);
        }
    }

    /// Makes the ledger after block `hash` available: verifies its unfinalized ancestors in
    /// order (a restarted node has lost its candidates, and the next proposal may build on a
    /// notarized block it never saw). A missing block is recorded in `wanted`, to be fetched.
    fn ensure_ledger(&mut self, hash: &Digest) -> bool {
        let tip_height = self.finalized.height();
        let mut path = Vec::new();
        let mut cursor = *hash;
        let mut child_height: Option<u64> = None;
        while self.ledger_at(&cursor).is_none() {
            let Some(known) = self.known.get(&cursor) else {
                self.want(cursor, child_height.and_then(|h| h.checked_sub(1)));
                return false;
            };
            child_height = Some(known.block.header.height);
            if known.block.header.height <= tip_height || path.len() >= MAX_KNOWN_BLOCKS {
                return false;
            }
            path.push(cursor);
            cursor = known.block.header.parent_hash;
        }
        for h in path.into_iter().rev() {
            let Some(block) = self.known.get(&h).map(|k| Arc::clone(&k.block)) else {
                return false;
            };
            let height = block.header.height;
            match self.check_on_parent(block) {
                None => return false,
                Some(Ok(())) => {}
                Some(Err(error)) => {
                    warn!(height, %error, "an ancestor does not verify");
                    return false;
                }
            }
        }
        true
    }

    /// Checks `block` on its parent's ledger (`None` if that is not known) and keeps it with
    /// the ledger after it when valid. Its transactions the mempool lacks are admitted first
    /// ([`Actor::admit_unheld`]), so the check verifies no signature the node already has.
    fn check_on_parent(&mut self, block: Arc<Block>) -> Option<Result<(), BlockError>> {
        // Nothing is admitted for a block that cannot be checked yet.
        self.ledger_at(&block.header.parent_hash)?;
        self.admit_unheld(&block);
        self.count_block_verifications(&block);
        let parent = self.ledger_at(&block.header.parent_hash)?;
        let held = |t: &SignedTransaction| self.mempool.holds(t);
        let (after, outcome) = match parent.check_block_known(&block, &held) {
            Ok(checked) => checked,
            Err(error) => return Some(Err(error)),
        };
        let after = Verified::new(after, outcome.outcomes);
        self.remember(Known { block, after: Some(after) });
        Some(Ok(()))
    }

    /// Counts the signatures a block check is about to verify itself: those of the block's
    /// transactions the mempool does not hold (the check skips the held ones).
    fn count_block_verifications(&mut self, block: &Block) {
        let unheld = block.transactions.iter().filter(|t| !self.mempool.holds(t)).count();
        self.counters.signatures_verified =
            self.counters.signatures_verified.saturating_add(unheld as u64);
    }

    /// Asks peers for the blocks pending verifications need.
    fn flush_wanted(&mut self, sync_tx: &mut S) {
        if self.wanted.is_empty() {
            return;
        }
        let tip = self.finalized.tip().hash;
        let known = &self.known;
        self.wanted.retain(|h, _| *h != tip && !known.contains_key(h));
        let wanted: Vec<(Digest, Option<u64>)> =
            self.wanted.iter().map(|(h, height)| (*h, *height)).collect();
        for (hash, height) in wanted {
            self.request(sync_tx, hash, height);
        }
    }

    fn propose(&mut self, context: &Ctx) -> Option<ConsensusDigest> {
        let parent_hash = digest_of(&context.parent.1);
        let epoch = context.round.epoch().get();
        let parent_epoch = self.ledger_at(&parent_hash)?.epoch();
        if parent_epoch > epoch {
            // The parent ends this epoch (it changed the validators): nothing may follow it in
            // this epoch, so propose it again until it is finalized; the next epoch's engine
            // builds on it.
            return Some(context.parent.1);
        }
        if parent_epoch != epoch {
            return None;
        }
        self.mempool.compact();
        let parent = self.ledger_at(&parent_hash)?;
        // Transactions the parent's chain already committed (in blocks not yet finalized, so
        // still in the mempool) are not candidates.
        let state = parent.state();
        let candidates = self
            .mempool
            .peek_where(self.cfg.max_block_txs, |tx| state.recent_tx(&tx.body.id).is_none());
        let on_finalized = parent_hash == self.finalized.tip().hash;
        let ctx = BlockContext { timestamp_ms: ms(&self.context), proposer: self.cfg.me };
        let held = |t: &SignedTransaction| self.mempool.holds(t);
        let built = parent.build_block_known(ctx, &candidates, &held);
        #[cfg(feature = "byzantine")]
        let built = tampered(self.cfg.proposal_tamper.as_ref(), parent, built);
        if on_finalized {
            self.drop_rejected(&candidates, &built.outcomes);
        }
        let hash = built.block.hash();
        debug!(
            height = built.block.header.height,
            txs = built.block.transactions.len(),
            "proposed"
        );
        // Only the committed candidates are in the block.
        let outcomes = built.outcomes.into_iter().filter(|o| o.is_committed()).collect();
        let after = Verified::new(built.ledger, outcomes);
        self.remember(Known { block: Arc::new(built.block), after: Some(after) });
        Some(sha256::Digest(hash))
    }

    /// Forgets the candidates rejected against the finalized state and counts them (an
    /// already committed one is removed when its block is applied here); tells no one.
    /// Returns whether any was dropped.
    fn drop_rejected(
        &mut self,
        candidates: &[SignedTransaction],
        outcomes: &[cbdc_ledger::TxOutcome],
    ) -> bool {
        let mut rejected = Vec::new();
        for (tx, outcome) in candidates.iter().zip(outcomes) {
            let Some(r) = outcome.rejection() else { continue };
            if r == Rejection::AlreadyCommitted {
                continue;
            }
            rejected.push(tx.body.id);
            bump(&mut self.counters.rejections_by_kind, tx.body.kind.name());
            bump(&mut self.counters.rejections_by_code, r.code());
        }
        self.mempool.remove(&rejected);
        !rejected.is_empty()
    }

    /// Re-checks the oldest mempool transactions against the finalized ledger, in arrival
    /// order as a proposal would take them, and drops the rejected ones. Proposals seldom
    /// build on the finalized tip itself (the parent is usually a notarized block), so without
    /// this a transaction that can never commit (an overdraft, an expired one) would stay in
    /// every mempool, and enough of them at its head would leave no room in proposals.
    fn recheck_mempool(&mut self) {
        if self.mempool.is_empty() {
            return;
        }
        let candidates = self.mempool.peek(RECHECK_TXS.min(self.cfg.max_block_txs));
        let held = |t: &SignedTransaction| self.mempool.holds(t);
        let outcomes = self.finalized.dry_run(ms(&self.context), &candidates, &held);
        if self.drop_rejected(&candidates, &outcomes) {
            self.publish();
        }
    }

    fn remember(&mut self, known: Known) {
        let hash = known.block.hash();
        if self.known.len() >= MAX_KNOWN_BLOCKS && !self.known.contains_key(&hash) {
            return;
        }
        match self.known.get_mut(&hash) {
            Some(existing) if existing.after.is_none() => existing.after = known.after,
            Some(_) => {}
            None => {
                self.known.insert(hash, known);
            }
        }
    }

    /// Verdict for a proposal, or `None` while the block or its parent state is missing.
    fn verdict(&mut self, context: &Ctx, payload: &ConsensusDigest) -> Option<bool> {
        let hash = digest_of(payload);
        let epoch = context.round.epoch().get();
        let parent_hash = digest_of(&context.parent.1);
        if hash == parent_hash {
            // A re-proposal: valid only of a block that ends this epoch.
            if self.ledger_at(&hash).is_none() && !self.ensure_ledger(&hash) {
                return None;
            }
            return self.ledger_at(&hash).map(|after| after.epoch() > epoch);
        }
        if let Some(parent) = self.ledger_at(&parent_hash)
            && parent.epoch() != epoch
        {
            // Built on a block of another epoch (or on this epoch's last block).
            return Some(false);
        }
        let Some(known) = self.known.get(&hash) else {
            self.want(hash, None);
            return None;
        };
        let block = Arc::clone(&known.block);
        if block.header.parent_hash != digest_of(&context.parent.1) {
            return Some(false);
        }
        if block.header.proposer.0.as_slice() != context.leader.as_ref() {
            return Some(false);
        }
        if known.after.is_some() {
            return Some(true);
        }
        if block.header.height <= self.finalized.height() {
            return Some(false);
        }
        // Far behind, the node is catching up: the finality path fetches the gap in ranges.
        // Verification only fetches the few unfinalized ancestors a proposal can build on.
        if block.header.height > self.finalized.height().saturating_add(VERIFY_FETCH_DEPTH) {
            return None;
        }
        if !self.ensure_ledger(&block.header.parent_hash) {
            return None;
        }
        if self.ledger_at(&block.header.parent_hash)?.epoch() != epoch {
            return Some(false);
        }
        let height = block.header.height;
        match self.check_on_parent(block)? {
            Ok(()) => Some(true),
            Err(error) => {
                warn!(height, %error, "rejecting an invalid proposal");
                Some(false)
            }
        }
    }

    fn verify_or_wait(
        &mut self,
        context: Ctx,
        payload: ConsensusDigest,
        response: oneshot::Sender<bool>,
    ) {
        match self.verdict(&context, &payload) {
            Some(v) => {
                response.send_lossy(v);
            }
            None if self.waiting.len() < MAX_WAITING => {
                self.waiting.push((context, payload, response));
            }
            // Over the bound the request is dropped: consensus times the view out.
            None => {}
        }
    }

    fn retry_waiting(&mut self) {
        let waiting = std::mem::take(&mut self.waiting);
        for (context, payload, response) in waiting {
            if response.is_closed() {
                continue;
            }
            self.verify_or_wait(context, payload, response);
        }
    }

    fn on_block_bytes(&mut self, bytes: &[u8]) {
        let Ok(block) = Block::decode(bytes) else {
            debug!("dropping a block that does not decode");
            return;
        };
        if block.header.height <= self.finalized.height() {
            // A target this old is already applied (for instance a finalization the engine
            // replays after a restart, when `recent_final` is empty): it is stale.
            self.targets.remove(&block.hash());
            return;
        }
        self.remember(Known { block: Arc::new(block), after: None });
        self.retry_waiting();
    }

    /// Applies every certified block whose path to the tip is complete; asks peers for the rest.
    ///
    /// Every target is tried: one whose path is incomplete (say, an old finalization replayed
    /// by the engine, whose block this node no longer keeps in memory) must not hold up the
    /// others. Requests are throttled per block, so retrying them all is cheap.
    fn advance(&mut self, sync_tx: &mut S) {
        loop {
            let mut progressed = false;
            let targets: Vec<Digest> = self.targets.keys().copied().collect();
            for target in targets {
                match self.path_to_tip(&target) {
                    Ok(path) => {
                        let certificate = self.targets.remove(&target);
                        self.apply_path(&path, &target, certificate);
                        progressed = true;
                        break;
                    }
                    Err(Missing::Stale) => {
                        self.targets.remove(&target);
                    }
                    Err(Missing::Block { hash, height }) => {
                        self.request(sync_tx, hash, height);
                    }
                }
            }
            if !progressed {
                break;
            }
        }
        self.retry_waiting();
        self.publish();
    }

    /// Hashes from the block after the finalized tip up to `target`, or what is missing.
    fn path_to_tip(&self, target: &Digest) -> Result<Vec<Digest>, Missing> {
        let tip = self.finalized.tip();
        let mut path = Vec::new();
        let mut cursor = *target;
        let mut child_height: Option<u64> = None;
        loop {
            if cursor == tip.hash {
                path.reverse();
                return Ok(path);
            }
            let Some(known) = self.known.get(&cursor) else {
                if path.is_empty() && self.recent_final.contains(&cursor) {
                    return Err(Missing::Stale);
                }
                let height = child_height.and_then(|h| h.checked_sub(1));
                return Err(Missing::Block { hash: cursor, height });
            };
            if known.block.header.height <= tip.height {
                // A certified block at or below our tip that is not on our chain cannot happen
                // with an honest quorum; an old target is simply stale.
                return Err(Missing::Stale);
            }
            path.push(cursor);
            child_height = Some(known.block.header.height);
            cursor = known.block.header.parent_hash;
        }
    }

    /// Asks peers for a missing block: by digest from everyone, and the heights just below it
    /// from one peer in turn. At most one request per missing block per [`SYNC_RETRY`].
    fn request(&mut self, sync_tx: &mut S, hash: Digest, height: Option<u64>) {
        let now = self.context.current();
        if throttled(&mut self.requested, hash, now) {
            self.next_request = self.next_request.wrapping_add(1);
            let msg = SyncMessage::Request { id: self.next_request, want: Want::Digest(hash) };
            sync_tx.send(Recipients::All, msg.encode(), false);
        }
        let Some(height) = height else { return };
        let tip = self.finalized.height();
        let count = u64::from(MAX_SYNC_BLOCKS);
        let from = height.saturating_add(1).saturating_sub(count).max(tip.saturating_add(1));
        let count = u16::try_from(height.saturating_add(1).saturating_sub(from).min(count))
            .unwrap_or(MAX_SYNC_BLOCKS);
        if count == 0 || self.peers.is_empty() || !throttled(&mut self.requested_ranges, from, now)
        {
            return;
        }
        self.next_peer = self.next_peer.wrapping_add(1);
        let peer = self.peers.get(self.next_peer % self.peers.len()).cloned();
        if let Some(peer) = peer {
            self.next_request = self.next_request.wrapping_add(1);
            let want = Want::Heights { from, count };
            let msg = SyncMessage::Request { id: self.next_request, want };
            sync_tx.send(Recipients::One(peer), msg.encode(), false);
        }
    }

    fn apply_path(&mut self, path: &[Digest], target: &Digest, certificate: Option<Vec<u8>>) {
        for hash in path {
            let Some(known) = self.known.remove(hash) else {
                unreachable!("path blocks are known");
            };
            let verified = match known.after {
                Some(after) if known.block.header.parent_hash == self.finalized.tip().hash => after,
                _ => {
                    self.count_block_verifications(&known.block);
                    match self.finalized.check_block_known(&known.block, &|t| self.mempool.holds(t))
                    {
                        Ok((after, outcome)) => Verified::new(after, outcome.outcomes),
                        Err(error) => panic!(
                            "finalized block {} does not apply ({error}): a quorum certified an \
                         invalid block or this node's state is corrupt; stopping",
                            known.block.header.height
                        ),
                    }
                }
            };
            let cert = if hash == target { certificate.as_deref() } else { None };
            if let Some(cert) = cert {
                self.record_signers(cert, known.block.header.height);
            }
            self.count_finalized(&known.block, &verified.flows);
            let Verified { ledger: after, outcomes, .. } = verified;
            let (before, after_epoch) = (self.finalized.epoch(), after.epoch());
            // Fed before the block is durable: a reader only uses an entry for a block it read
            // from the log, and reading the log right after the write must find it.
            self.feed.push(crate::feed::FinalizedBlock {
                height: known.block.header.height,
                hash: *hash,
                block: Arc::clone(&known.block),
                ledger: after.clone(),
                outcomes,
            });
            if let Err(error) =
                commit_block(&mut self.store, &after, &known.block, cert, self.cfg.snapshot_every)
            {
                panic!("failed to persist finalized block {}: {error}", known.block.header.height);
            }
            self.feed.mark_durable(known.block.header.height);
            let ids: Vec<_> = known.block.transactions.iter().map(|t| t.body.id).collect();
            self.mempool.remove(&ids);
            self.finalized_transactions =
                self.finalized_transactions.saturating_add(ids.len() as u64);
            // Record the end of every epoch this block closes (two, if it both admits and
            // suspends), so a restart knows where the current epoch's engine starts.
            for ended in before..after_epoch {
                if let Err(error) = self.store.put_epoch_end(ended, known.block.header.height) {
                    panic!("failed to record the end of epoch {ended}: {error}");
                }
            }
            self.finalized = after;
            self.last_progress = self.context.current();
            self.recent_final.push_back(*hash);
            if self.recent_final.len() > MAX_TARGETS {
                self.recent_final.pop_front();
            }
            debug!(height = known.block.header.height, txs = ids.len(), "finalized");
        }
        let height = self.finalized.height();
        self.known.retain(|_, k| k.block.header.height > height);
        if self.finalized.epoch() != self.epoch {
            self.enter_epoch();
        }
    }

    /// Counts a block being finalized: its finality latency (runtime clock now minus block
    /// time), its transactions by kind, the money they moved.
    fn count_finalized(&mut self, block: &Block, flows: &MoneyFlows) {
        let latency_ms = ms(&self.context).saturating_sub(block.header.timestamp_ms);
        self.counters.finality_latency.observe(latency_ms);
        for tx in &block.transactions {
            bump(&mut self.counters.committed_by_kind, tx.body.kind.name());
        }
        self.counters.flows.add(flows);
    }

    /// Notes who signed the finalization certificate of the block at `height`, which the
    /// validators of its parent's epoch (the finalized tip's) certify. The certificate was
    /// verified before it got here (by the engine, or against the epoch's validators).
    fn record_signers(&mut self, certificate: &[u8], height: u64) {
        let other;
        let (verifier, order) = if self.finalized.epoch() == self.epoch {
            (&self.verifier, &self.signer_order)
        } else {
            // The path crossed an epoch end: the target's epoch (its parent's) is not yet the
            // one the engine supervisor runs.
            let validators = self.finalized.validators();
            let Some(verifier) = verifier_for(&self.cfg.namespace, &validators) else { return };
            other = (verifier, signer_order(&validators));
            (&other.0, &other.1)
        };
        let Ok(f) = Finalization::<Scheme, ConsensusDigest>::decode_cfg(
            bytes::Bytes::copy_from_slice(certificate),
            &verifier.certificate_codec_config(),
        ) else {
            return;
        };
        for index in f.certificate.signers.iter() {
            let key = usize::try_from(index.get()).ok().and_then(|i| order.get(i));
            if let Some(key) = key {
                let last = self.counters.last_signed.entry(*key).or_insert(height);
                *last = (*last).max(height);
            }
        }
    }

    /// The finalized tip ended the epoch: hand the new validator set to the engine supervisor,
    /// which stops this epoch's engine and starts the next one from the tip.
    fn enter_epoch(&mut self) {
        let validators = self.finalized.validators();
        let epoch = self.finalized.epoch();
        info!(epoch, validators = validators.len(), height = self.finalized.height(), "new epoch");
        self.epoch = epoch;
        self.peers = other_validators(&validators, &self.cfg.me);
        match verifier_for(&self.cfg.namespace, &validators) {
            Some(v) => self.verifier = v,
            None => panic!("epoch {epoch} has a validator key that is not an Ed25519 key"),
        }
        self.signer_order = signer_order(&validators);
        // Candidates of the old epoch can never be finalized; its engine's pending
        // verifications are answered no more.
        self.known.clear();
        self.waiting.clear();
        self.epoch_tx.send_replace(EpochInfo::of(&self.finalized, self.finalized.tip().hash));
    }

    /// Asks one peer in turn for its newest certified block once finalization has stalled here
    /// for [`CATCH_UP_AFTER`] (at most once per that interval).
    fn maybe_catch_up(&mut self, sync_tx: &mut S) {
        let now = self.context.current();
        let since = |t: std::time::SystemTime| now.duration_since(t).unwrap_or_default();
        if since(self.last_progress) < CATCH_UP_AFTER
            || since(self.last_catch_up) < CATCH_UP_AFTER
            || self.peers.is_empty()
        {
            return;
        }
        self.last_catch_up = now;
        self.next_peer = self.next_peer.wrapping_add(1);
        let Some(peer) = self.peers.get(self.next_peer % self.peers.len()).cloned() else {
            return;
        };
        self.next_request = self.next_request.wrapping_add(1);
        let want = Want::Certified { epoch: self.epoch };
        let msg = SyncMessage::Request { id: self.next_request, want };
        sync_tx.send(Recipients::One(peer), msg.encode(), false);
    }

    /// A peer's certified block for this epoch: checked against the epoch's validators, then
    /// a target like a finalization from the engine.
    fn on_certified(&mut self, epoch: u64, block: &[u8], certificate: Vec<u8>, sync_tx: &mut S) {
        if epoch != self.epoch {
            return;
        }
        let Ok(block) = Block::decode(block) else { return };
        let hash = block.hash();
        if block.header.height <= self.finalized.height() || self.targets.contains_key(&hash) {
            return;
        }
        let cfg = self.verifier.certificate_codec_config();
        let Ok(finalization) = Finalization::<Scheme, ConsensusDigest>::decode_cfg(
            bytes::Bytes::from(certificate.clone()),
            &cfg,
        ) else {
            debug!("dropping a certificate that does not decode");
            return;
        };
        if finalization.proposal.round.epoch().get() != epoch
            || digest_of(&finalization.proposal.payload) != hash
            || !finalization.verify(&mut self.context, &self.verifier, &Sequential)
        {
            warn!(
                height = block.header.height,
                "dropping a certified block whose certificate does not verify"
            );
            return;
        }
        info!(height = block.header.height, epoch, "catching up to a peer's certified block");
        self.remember(Known { block: Arc::new(block), after: None });
        if self.targets.len() < MAX_TARGETS {
            self.targets.insert(hash, certificate);
        }
        self.advance(sync_tx);
    }

    fn on_sync(&mut self, peer: ValidatorKey, bytes: &[u8], sync_tx: &mut S) {
        match SyncMessage::decode(bytes) {
            Ok(SyncMessage::Request { want: Want::Certified { epoch }, .. }) => {
                if let Some((block, certificate)) = self.certified(epoch) {
                    let msg = SyncMessage::Certified { epoch, block, certificate };
                    sync_tx.send(Recipients::One(peer), msg.encode(), false);
                }
            }
            Ok(SyncMessage::Request { id, want }) => {
                let blocks = self.serve(want);
                if !blocks.is_empty() {
                    let msg = SyncMessage::Response { id, blocks };
                    sync_tx.send(Recipients::One(peer), msg.encode(), false);
                }
            }
            Ok(SyncMessage::Certified { epoch, block, certificate }) => {
                self.on_certified(epoch, &block, certificate, sync_tx);
            }
            Ok(SyncMessage::Response { blocks, .. }) => {
                for bytes in blocks {
                    self.on_block_bytes(&bytes);
                }
                self.advance(sync_tx);
            }
            Err(_) => debug!("dropping a sync message that does not decode"),
        }
    }

    /// This node's newest certified block of `epoch` with its certificate: the epoch's last
    /// block if it has ended, otherwise the newest certified block.
    fn certified(&mut self, epoch: u64) -> Option<(Vec<u8>, Vec<u8>)> {
        let stored = if epoch < self.epoch {
            let height = self.store.epoch_end(epoch).ok()??;
            self.store.block(height).ok()??
        } else if epoch == self.epoch {
            self.store.last_certified().ok()??
        } else {
            return None;
        };
        Some((stored.block, stored.certificate?))
    }

    fn serve(&mut self, want: Want) -> Vec<Vec<u8>> {
        match want {
            Want::Digest(hash) => {
                if let Some(k) = self.known.get(&hash) {
                    return vec![k.block.encode()];
                }
                match self.store.block_by_hash(&hash) {
                    Ok(Some(b)) => vec![b.block],
                    _ => Vec::new(),
                }
            }
            Want::Certified { .. } => Vec::new(),
            Want::Heights { from, count } => {
                let stored = self.store.blocks_from(from, u32::from(count)).unwrap_or_default();
                let mut out = Vec::new();
                let mut bytes = 0usize;
                for b in stored {
                    bytes = bytes.saturating_add(b.block.len());
                    if !out.is_empty() && bytes > MAX_SYNC_RESPONSE_BYTES {
                        break;
                    }
                    out.push(b.block);
                }
                out
            }
        }
    }
}

/// Records a request for `key` and says whether it may go out now: at most once per
/// [`SYNC_RETRY`] per key; the map is bounded by [`MAX_WANTED`].
fn throttled<K: Ord>(
    sent: &mut BTreeMap<K, std::time::SystemTime>,
    key: K,
    now: std::time::SystemTime,
) -> bool {
    let recent =
        |at: &std::time::SystemTime| now.duration_since(*at).unwrap_or_default() < SYNC_RETRY;
    if sent.get(&key).is_some_and(recent) {
        return false;
    }
    if sent.len() >= MAX_WANTED {
        sent.retain(|_, at| recent(at));
    }
    if sent.len() < MAX_WANTED {
        sent.insert(key, now);
    }
    true
}

enum Missing {
    /// A target at or below the tip: nothing to do.
    Stale,
    /// This block is needed; its height when a known child tells it.
    Block { hash: Digest, height: Option<u64> },
}

/// The round a context belongs to (for logs).
pub fn round_of(context: &Ctx) -> Round {
    context.round
}
