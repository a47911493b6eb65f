//! Blocks and the [`Ledger`]: the state at a tip of the hash chain.
//!
//! # Protocol
//! A block is a header (height, parent hash, time, proposer, Merkle root of the transactions,
//! state commitment after execution, transaction count) and its transactions. Block `h`'s parent
//! hash is the hash of block `h-1`'s header; block 1's parent is the genesis hash.
//!
//! - [`Ledger::build_block`] (proposer): executes candidate transactions on a copy of the state,
//!   keeps the committed ones, and returns the block, the per-candidate outcomes and the ledger
//!   after it.
//! - [`Ledger::apply_block`] (every validator, and anyone replaying): checks the header against the
//!   tip, the Merkle root and the proposer, verifies every signature in one batch, re-executes,
//!   requires every transaction to commit and the state commitment to match. On any error the
//!   ledger is unchanged.
//! - Supply conservation and the holder aggregates are asserted after every block: a violation is
//!   a bug in this crate and crashes the node rather than let it sign a wrong state.
//! - [`Ledger::check_final_block`] (a bank's view replaying its own node's block log): the same
//!   checks without re-verifying signatures the process already verified.
//! - [`Ledger::dry_run`]: the outcome each candidate would have, without building a block.
//! - [`verify_chain`] re-checks a whole chain from its genesis and names the first bad block.
//! - Applying a block costs O(block), not O(state): the state is structurally shared and its
//!   commitment incremental ([`crate::commitment`]).

use crate::codec::{Decode, DecodeError, Encode, Reader, Writer, decode_seq, encode_seq};
use crate::crypto::{KeyCache, SigItem, domain, hash_parts, verify_all};
use crate::execute::{BlockEnv, TxOutcome, execute};
use crate::genesis::{Genesis, GenesisError};
use crate::rejection::Rejection;
use crate::state::State;
use crate::tx::SignedTransaction;
use crate::types::{Digest, PublicKey};
use thiserror::Error;

/// Most transactions in one block.
pub const MAX_BLOCK_TXS: u32 = 65_536;

/// A block header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockHeader {
    pub height: u64,
    pub parent_hash: Digest,
    pub timestamp_ms: u64,
    pub proposer: PublicKey,
    pub tx_root: Digest,
    pub state_root: Digest,
    pub tx_count: u32,
}

impl BlockHeader {
    pub fn hash(&self) -> Digest {
        hash_parts(domain::BLOCK_HEADER, &[&self.encode()])
    }
}

/// A block: header and transactions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub header: BlockHeader,
    pub transactions: Vec<SignedTransaction>,
}

impl Block {
    pub fn hash(&self) -> Digest {
        self.header.hash()
    }
}

impl Encode for BlockHeader {
    fn encode_to(&self, w: &mut Writer) {
        w.u64(self.height);
        w.fixed(&self.parent_hash);
        w.u64(self.timestamp_ms);
        self.proposer.encode_to(w);
        w.fixed(&self.tx_root);
        w.fixed(&self.state_root);
        w.u32(self.tx_count);
    }
}

impl Decode for BlockHeader {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(BlockHeader {
            height: r.u64("height")?,
            parent_hash: r.array::<32>("parent hash")?,
            timestamp_ms: r.u64("timestamp")?,
            proposer: PublicKey::decode_from(r)?,
            tx_root: r.array::<32>("tx root")?,
            state_root: r.array::<32>("state root")?,
            tx_count: r.u32("tx count")?,
        })
    }
}

impl Encode for Block {
    fn encode_to(&self, w: &mut Writer) {
        self.header.encode_to(w);
        encode_seq(w, &self.transactions);
    }
}

impl Decode for Block {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let header = BlockHeader::decode_from(r)?;
        let transactions = decode_seq(r, MAX_BLOCK_TXS, 60, "block transactions")?;
        if transactions.len() != header.tx_count as usize {
            return Err(DecodeError::InvalidValue("tx count"));
        }
        Ok(Block { header, transactions })
    }
}

/// Merkle root of transaction hashes: domain-separated leaves and nodes; an odd node is carried
/// up unchanged (never duplicated, so two different lists cannot share a root).
pub fn merkle_root(transactions: &[SignedTransaction]) -> Digest {
    if transactions.is_empty() {
        return hash_parts(domain::MERKLE_EMPTY, &[]);
    }
    let mut level: Vec<Digest> =
        transactions.iter().map(|t| hash_parts(domain::MERKLE_LEAF, &[&t.hash()])).collect();
    while level.len() > 1 {
        let mut next = Vec::with_capacity(level.len().div_ceil(2));
        for pair in level.chunks(2) {
            match (pair.first(), pair.get(1)) {
                (Some(l), Some(r)) => next.push(hash_parts(domain::MERKLE_NODE, &[l, r])),
                (Some(single), None) => next.push(*single),
                _ => {}
            }
        }
        level = next;
    }
    level.first().copied().unwrap_or_default()
}

/// Why a block cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BlockError {
    #[error("expected height {expected}, got {got}")]
    WrongHeight { expected: u64, got: u64 },
    #[error("parent hash does not match the tip")]
    WrongParent,
    #[error("block time is before its parent's")]
    TimeWentBackwards,
    #[error("transaction count {0} exceeds the block limit")]
    TooManyTransactions(u64),
    #[error("header tx count does not match the transactions")]
    TxCountMismatch,
    #[error("Merkle root of transactions does not match the header")]
    TxRootMismatch,
    #[error("the proposer is not a validator")]
    UnknownProposer,
    #[error("transaction {index} is rejected: {rejection}")]
    RejectedTransaction { index: u32, rejection: Rejection },
    #[error("state commitment does not match the header")]
    StateRootMismatch,
}

/// What a finalized block did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockOutcome {
    pub height: u64,
    pub hash: Digest,
    pub state_root: Digest,
    pub outcomes: Vec<TxOutcome>,
}

/// The proposer's inputs for a new block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockContext {
    /// Block time; raised to the parent's time if earlier.
    pub timestamp_ms: u64,
    pub proposer: PublicKey,
}

/// A block built by a proposer, with the outcome of every candidate and the ledger after it.
#[derive(Debug, Clone)]
pub struct BuiltBlock {
    pub block: Block,
    /// One outcome per considered candidate, in order; only committed ones are in the block.
    pub outcomes: Vec<TxOutcome>,
    pub ledger: Ledger,
}

/// The tip of the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tip {
    pub height: u64,
    pub hash: Digest,
    pub timestamp_ms: u64,
}

/// Why a snapshot cannot be restored.
#[derive(Debug, Error)]
pub enum SnapshotError {
    #[error("snapshot does not decode: {0}")]
    Decode(#[from] DecodeError),
    #[error("snapshot belongs to another chain")]
    WrongChain,
    #[error("snapshot violates a ledger invariant: {0}")]
    Invariant(#[from] crate::state::InvariantViolation),
    #[error(transparent)]
    Genesis(#[from] GenesisError),
}

/// The replicated state at a tip.
#[derive(Debug, Clone)]
pub struct Ledger {
    genesis_hash: Digest,
    state: State,
    tip: Tip,
    state_root: Digest,
}

/// Verifies every transaction's signatures in one batch; `true` per transaction whose
/// signatures all verify.
pub fn verify_signatures(chain_id: &str, txs: &[SignedTransaction]) -> Vec<bool> {
    let refs: Vec<&SignedTransaction> = txs.iter().collect();
    verify_signature_refs(chain_id, &refs, &mut KeyCache::new(0))
}

/// [`verify_signatures`] over borrowed transactions, with decompressed signer keys from (and
/// into) `keys`.
pub fn verify_signature_refs(
    chain_id: &str,
    txs: &[&SignedTransaction],
    keys: &mut KeyCache,
) -> Vec<bool> {
    // Every payload in one buffer (one allocation per batch, not one per transaction).
    let mut buffer = Writer::with_capacity(txs.len().saturating_mul(128));
    let mut ends = Vec::with_capacity(txs.len());
    for tx in txs {
        tx.body.signing_payload_to(chain_id, &mut buffer);
        ends.push(buffer.as_bytes().len());
    }
    let all = buffer.as_bytes();
    let mut start = 0;
    let payloads = ends.iter().map(|&end| {
        let payload = all.get(start..end).unwrap_or_default();
        start = end;
        payload
    });
    let mut items = Vec::with_capacity(txs.len());
    let mut owner = Vec::with_capacity(txs.len());
    for (i, (tx, payload)) in txs.iter().zip(payloads).enumerate() {
        for sig in &tx.signatures {
            items.push(SigItem { key: &sig.signer, message: payload, signature: &sig.signature });
            owner.push(i);
        }
    }
    let mut ok = vec![true; txs.len()];
    for (valid, i) in verify_all(&items, keys).into_iter().zip(owner) {
        if !valid && let Some(slot) = ok.get_mut(i) {
            *slot = false;
        }
    }
    ok
}

/// Executes transactions in order on `state`, then asserts the ledger invariants.
pub fn execute_all(state: &mut State, env: &BlockEnv, txs: &[SignedTransaction]) -> Vec<TxOutcome> {
    let sigs_ok = verify_signatures(&state.chain_id, txs);
    let outcomes = execute_verified(state, env, txs, sigs_ok);
    state.settle_commitment();
    outcomes
}

/// Signature verdicts for `txs`: those `known` to be validly signed are not verified again,
/// the rest are verified in one batch.
fn verdicts(
    chain_id: &str,
    txs: &[SignedTransaction],
    known: &dyn Fn(&SignedTransaction) -> bool,
) -> Vec<bool> {
    let mut ok: Vec<bool> = txs.iter().map(known).collect();
    let unknown: Vec<(usize, &SignedTransaction)> =
        txs.iter().enumerate().filter(|(i, _)| ok.get(*i) == Some(&false)).collect();
    let refs: Vec<&SignedTransaction> = unknown.iter().map(|(_, t)| *t).collect();
    for ((i, _), valid) in
        unknown.iter().zip(verify_signature_refs(chain_id, &refs, &mut KeyCache::new(0)))
    {
        if let Some(slot) = ok.get_mut(*i) {
            *slot = valid;
        }
    }
    ok
}

/// [`execute_all`] with the signature verdicts already known (one per transaction).
fn execute_verified(
    state: &mut State,
    env: &BlockEnv,
    txs: &[SignedTransaction],
    sigs_ok: Vec<bool>,
) -> Vec<TxOutcome> {
    // The set hashes follow once per changed entry, when the caller settles them (a dry run
    // never does).
    state.defer_commitment();
    state.prune_recent(env.height);
    let outcomes: Vec<TxOutcome> = txs
        .iter()
        .zip(sigs_ok)
        .map(|(tx, sig_ok)| match execute(state, env, tx, sig_ok) {
            Ok(postings) => TxOutcome::Committed(postings),
            Err(r) => TxOutcome::Rejected(r),
        })
        .collect();
    let touched = outcomes.iter().flat_map(|o| match o {
        TxOutcome::Committed(postings) => postings.as_slice(),
        TxOutcome::Rejected(_) => &[],
    });
    let invariants = state.check_block_invariants(touched.map(|p| &p.wallet));
    assert!(invariants.is_ok(), "ledger invariant broken after a block: {invariants:?}");
    outcomes
}

impl Ledger {
    pub fn from_genesis(genesis: &Genesis) -> Result<Ledger, GenesisError> {
        let state = genesis.initial_state()?;
        let state_root = state.root();
        let genesis_hash = genesis.hash();
        let tip = Tip { height: 0, hash: genesis_hash, timestamp_ms: genesis.genesis_time_ms };
        Ok(Ledger { genesis_hash, state, tip, state_root })
    }

    pub fn genesis_hash(&self) -> Digest {
        self.genesis_hash
    }

    pub fn state(&self) -> &State {
        &self.state
    }

    pub fn tip(&self) -> Tip {
        self.tip
    }

    pub fn height(&self) -> u64 {
        self.tip.height
    }

    pub fn state_root(&self) -> Digest {
        self.state_root
    }

    pub fn chain_id(&self) -> &str {
        &self.state.chain_id
    }

    /// Consensus keys of the validators for the next block.
    pub fn validators(&self) -> Vec<PublicKey> {
        self.state.validators()
    }

    /// The validator-set epoch of the next block: the number of committed admissions and
    /// suspensions so far. A block that contains one is the last block of its epoch.
    pub fn epoch(&self) -> u64 {
        self.state.epoch
    }

    fn next_env(&self, timestamp_ms: u64) -> BlockEnv {
        BlockEnv { height: self.tip.height.saturating_add(1), timestamp_ms }
    }

    /// Executes at most [`MAX_BLOCK_TXS`] candidates on a copy of the state at the next height
    /// (time raised to the tip's if earlier): the considered candidates, the block environment,
    /// the state after them and one outcome per considered candidate.
    fn execute_candidates<'c>(
        &self,
        timestamp_ms: u64,
        candidates: &'c [SignedTransaction],
        known: &dyn Fn(&SignedTransaction) -> bool,
    ) -> (&'c [SignedTransaction], BlockEnv, State, Vec<TxOutcome>) {
        let considered = candidates.get(..MAX_BLOCK_TXS as usize).unwrap_or(candidates);
        let env = self.next_env(timestamp_ms.max(self.tip.timestamp_ms));
        let mut state = self.state.clone();
        let sigs_ok = verdicts(&state.chain_id, considered, known);
        let outcomes = execute_verified(&mut state, &env, considered, sigs_ok);
        (considered, env, state, outcomes)
    }

    /// Builds the next block from candidates (proposer side). Does not change `self`.
    ///
    /// At most [`MAX_BLOCK_TXS`] candidates are considered; `outcomes` has one entry per
    /// considered candidate, so callers keep the rest for a later block.
    pub fn build_block(&self, ctx: BlockContext, candidates: &[SignedTransaction]) -> BuiltBlock {
        self.build_block_known(ctx, candidates, &|_| false)
    }

    /// [`Ledger::build_block`] without re-verifying the signatures of candidates `known` to be
    /// validly signed (a node's mempool admits only transactions whose signatures it verified).
    pub fn build_block_known(
        &self,
        ctx: BlockContext,
        candidates: &[SignedTransaction],
        known: &dyn Fn(&SignedTransaction) -> bool,
    ) -> BuiltBlock {
        let (considered, env, mut state, outcomes) =
            self.execute_candidates(ctx.timestamp_ms, candidates, known);
        state.settle_commitment();
        let timestamp_ms = env.timestamp_ms;
        let transactions: Vec<SignedTransaction> = considered
            .iter()
            .zip(&outcomes)
            .filter(|(_, o)| o.is_committed())
            .map(|(tx, _)| tx.clone())
            .collect();
        let state_root = state.root();
        let header = BlockHeader {
            height: env.height,
            parent_hash: self.tip.hash,
            timestamp_ms,
            proposer: ctx.proposer,
            tx_root: merkle_root(&transactions),
            state_root,
            tx_count: u32::try_from(transactions.len()).unwrap_or(MAX_BLOCK_TXS),
        };
        let tip = Tip { height: env.height, hash: header.hash(), timestamp_ms };
        let ledger = Ledger { genesis_hash: self.genesis_hash, state, tip, state_root };
        BuiltBlock { block: Block { header, transactions }, outcomes, ledger }
    }

    /// Checks and applies the next block. On error `self` is unchanged.
    pub fn apply_block(&mut self, block: &Block) -> Result<BlockOutcome, BlockError> {
        let next = self.check_block(block)?;
        *self = next.0;
        Ok(next.1)
    }

    /// The ledger after `block`, without changing `self` (validators' `verify`).
    pub fn check_block(&self, block: &Block) -> Result<(Ledger, BlockOutcome), BlockError> {
        self.check_block_with(block, &|_| false)
    }

    /// [`Ledger::check_block`] without re-verifying the signatures of transactions `known` to
    /// be validly signed: a validator passes the transactions its mempool admitted (whose
    /// signatures it verified on admission, compared in full), so each signature is verified
    /// once per node, off the block's critical path; the rest are verified here.
    pub fn check_block_known(
        &self,
        block: &Block,
        known: &dyn Fn(&SignedTransaction) -> bool,
    ) -> Result<(Ledger, BlockOutcome), BlockError> {
        self.check_block_with(block, known)
    }

    /// The ledger after a block that is already final and whose signatures this process has
    /// already verified: every check of [`Ledger::check_block`] except the signature check.
    ///
    /// Only for a block read back from the block log this process's own node wrote after
    /// verifying it (the bank's view replays its node's log). Anything that arrived from
    /// outside (a peer, a file to audit) goes through [`Ledger::check_block`].
    pub fn check_final_block(&self, block: &Block) -> Result<(Ledger, BlockOutcome), BlockError> {
        self.check_block_with(block, &|_| true)
    }

    /// What each candidate would do on top of this ledger (a dry run: no block, no commitment
    /// is kept). One outcome per candidate, as [`Ledger::build_block`] would give; signatures
    /// of candidates `known` to be valid are not verified again.
    pub fn dry_run(
        &self,
        timestamp_ms: u64,
        candidates: &[SignedTransaction],
        known: &dyn Fn(&SignedTransaction) -> bool,
    ) -> Vec<TxOutcome> {
        self.execute_candidates(timestamp_ms, candidates, known).3
    }

    fn check_block_with(
        &self,
        block: &Block,
        known: &dyn Fn(&SignedTransaction) -> bool,
    ) -> Result<(Ledger, BlockOutcome), BlockError> {
        let h = &block.header;
        let expected = self.tip.height.saturating_add(1);
        if h.height != expected {
            return Err(BlockError::WrongHeight { expected, got: h.height });
        }
        if h.parent_hash != self.tip.hash {
            return Err(BlockError::WrongParent);
        }
        if h.timestamp_ms < self.tip.timestamp_ms {
            return Err(BlockError::TimeWentBackwards);
        }
        if block.transactions.len() > MAX_BLOCK_TXS as usize {
            return Err(BlockError::TooManyTransactions(block.transactions.len() as u64));
        }
        if block.transactions.len() != h.tx_count as usize {
            return Err(BlockError::TxCountMismatch);
        }
        if merkle_root(&block.transactions) != h.tx_root {
            return Err(BlockError::TxRootMismatch);
        }
        if !self.state.validators().contains(&h.proposer) {
            return Err(BlockError::UnknownProposer);
        }
        let env = BlockEnv { height: h.height, timestamp_ms: h.timestamp_ms };
        let mut state = self.state.clone();
        let sigs_ok = verdicts(&state.chain_id, &block.transactions, known);
        let outcomes = execute_verified(&mut state, &env, &block.transactions, sigs_ok);
        state.settle_commitment();
        for (i, outcome) in outcomes.iter().enumerate() {
            if let Some(rejection) = outcome.rejection() {
                let index = u32::try_from(i).unwrap_or(u32::MAX);
                return Err(BlockError::RejectedTransaction { index, rejection });
            }
        }
        let state_root = state.root();
        if state_root != h.state_root {
            return Err(BlockError::StateRootMismatch);
        }
        let hash = h.hash();
        let tip = Tip { height: h.height, hash, timestamp_ms: h.timestamp_ms };
        let next = Ledger { genesis_hash: self.genesis_hash, state, tip, state_root };
        Ok((next, BlockOutcome { height: h.height, hash, state_root, outcomes }))
    }

    /// Serializes the ledger at its tip (the snapshot format).
    pub fn snapshot(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.fixed(&self.genesis_hash);
        w.u64(self.tip.height);
        w.fixed(&self.tip.hash);
        w.u64(self.tip.timestamp_ms);
        self.state.encode_to(&mut w);
        w.into_bytes()
    }

    /// Restores a ledger from a snapshot of a chain with this genesis.
    pub fn restore(genesis: &Genesis, bytes: &[u8]) -> Result<Ledger, SnapshotError> {
        genesis.validate()?;
        let mut r = Reader::new(bytes);
        let genesis_hash = r.array::<32>("genesis hash")?;
        if genesis_hash != genesis.hash() {
            return Err(SnapshotError::WrongChain);
        }
        let tip = Tip {
            height: r.u64("height")?,
            hash: r.array::<32>("tip hash")?,
            timestamp_ms: r.u64("tip time")?,
        };
        let state = State::decode_from(&mut r)?;
        r.finish()?;
        if state.chain_id != genesis.chain_id {
            return Err(SnapshotError::WrongChain);
        }
        state.check_invariants()?;
        let state_root = state.root();
        Ok(Ledger { genesis_hash, state, tip, state_root })
    }
}

/// Where a chain fails verification.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("block {height} does not verify: {error}")]
pub struct ChainError {
    pub height: u64,
    pub error: BlockError,
}

/// Re-verifies a chain from genesis: linkage, transaction roots, signatures, execution and state
/// commitments. Returns the ledger at the last block, or the first block that fails.
pub fn verify_chain<'a>(
    genesis: &Genesis,
    blocks: impl IntoIterator<Item = &'a Block>,
) -> Result<Ledger, VerifyChainError> {
    let mut ledger = Ledger::from_genesis(genesis)?;
    for block in blocks {
        ledger
            .apply_block(block)
            .map_err(|error| ChainError { height: block.header.height, error })?;
    }
    Ok(ledger)
}

/// Failure of [`verify_chain`].
#[derive(Debug, Error)]
pub enum VerifyChainError {
    #[error(transparent)]
    Genesis(#[from] GenesisError),
    #[error(transparent)]
    Block(#[from] ChainError),
}
