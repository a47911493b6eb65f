//! Independent verification of a node's block log: what a regulator runs to check the ledger
//! without trusting any node.
//!
//! # What is checked
//! Starting from the genesis alone, every stored block in height order (heights 1, 2, ... with
//! no gap):
//! - it decodes, and the row's indexing columns (height, hash, parent hash, time) are the
//!   block's own;
//! - it applies to the ledger before it with the ledger's full checks (`Ledger::check_block`:
//!   height and parent link, time, transaction count and Merkle root, proposer, every signature,
//!   re-execution with every rule and limit, the state commitment), and the ledger invariants
//!   (supply conservation, holder aggregates) hold after it;
//! - its finalization certificate, when it has one, decodes, names this block's hash and the
//!   block's validator-set epoch, and carries a quorum of valid signatures of that epoch's
//!   validators: the banks active in the ledger state before the block. The set changes after
//!   every block that commits an admission or a suspension.
//!
//! # Which blocks need a certificate
//! A certificate on block `h` finalizes `h` and, through the parent hashes it commits to, every
//! block below it. The node stores a certificate only on the block a finalization named, so a
//! block may have none of its own and still be final. A block is accepted when a certified block
//! of the *same epoch* lies at or above it: an ancestor in an earlier epoch is not covered,
//! because the later epoch's validators are themselves chosen by the blocks that ended the
//! earlier one. An uncovered block below any certified block fails (`certificate_missing`);
//! uncovered blocks above the last certified block are the `uncertified_tail`, which is normal
//! for the newest few blocks (their certificates arrive after they are stored).
//!
//! # What it must never do
//! Write anything, trust a stored column or certificate it has not re-derived, or panic on the
//! contents of a log: every failure names the first block that does not check out. Memory is
//! bounded: the store is read page by page ([`VERIFY_PAGE_BLOCKS`]) and only the ledger state
//! and one page of blocks are held.

use crate::node::{namespace, participants};
use cbdc_ledger::Supply;
use cbdc_ledger::state::InvariantViolation;
use cbdc_ledger::{Block, BlockError, Decode, Digest, Genesis, GenesisError, Ledger, PublicKey};
use cbdc_store::{REPLAY_PAGE_BLOCKS, Store, StoreError, StoredBlock};
use commonware_codec::Decode as _;
use commonware_consensus::simplex::scheme::ed25519::Scheme;
use commonware_consensus::simplex::types::Finalization;
use commonware_cryptography::certificate::Verifier as _;
use commonware_cryptography::sha256;
use commonware_parallel::Sequential;
use rand_core::CryptoRng;
use thiserror::Error;

/// Blocks read from the store per query. Small: a full block can be megabytes, and the time
/// goes into signature checks and re-execution, not queries.
pub const VERIFY_PAGE_BLOCKS: u32 = REPLAY_PAGE_BLOCKS;

/// One validator-set epoch as the log shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpochSummary {
    pub epoch: u64,
    /// The consensus keys that certify this epoch's blocks, by bank id.
    pub validators: Vec<PublicKey>,
    pub first_height: u64,
    pub last_height: u64,
    /// Blocks of this epoch that carry their own (verified) certificate.
    pub certificates: u64,
}

/// What a log that checks out proves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    pub chain_id: String,
    pub genesis_hash: Digest,
    pub blocks_checked: u64,
    pub transactions: u64,
    /// The height and hash of the last checked block (0 and the genesis hash for an empty log).
    pub final_height: u64,
    pub final_hash: Digest,
    /// The state commitment after the last checked block.
    pub state_root: Digest,
    /// Supply after the last checked block (conserved: checked after every block).
    pub supply: Supply,
    /// Blocks whose own certificate was verified.
    pub certificates_checked: u64,
    /// Blocks without a certificate of their own, finalized by a certified descendant of the
    /// same epoch.
    pub certified_by_descendant: u64,
    /// The highest block with a verified certificate (0 if none).
    pub last_certified_height: u64,
    /// Blocks above `last_certified_height`: stored, checked, but not (yet) certified.
    pub uncertified_tail: u64,
    /// The epochs the log's blocks belong to, in order.
    pub epochs: Vec<EpochSummary>,
}

/// Why a block does not check out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailureReason {
    /// The log skips a height (or a row is out of order).
    HeightGap,
    /// The stored bytes are not a block.
    BlockUndecodable,
    /// The row's hash column is not the block's hash.
    HashMismatch,
    /// The row's height column is not the block's height.
    HeightMismatch,
    /// The row's parent column is not the block's parent.
    ParentMismatch,
    /// The row's time column is not the block's time.
    TimestampMismatch,
    /// The ledger refuses the block.
    Block(BlockError),
    /// A ledger invariant fails after the block.
    InvariantViolation(InvariantViolation),
    /// The ledger crashed applying the block (a bug in the ledger, shown by this block).
    LedgerPanic,
    /// The certificate does not decode, names another block or epoch, or its signatures do
    /// not verify as a quorum of the epoch's validators.
    CertificateInvalid,
    /// The block is not finalized by any certificate of its epoch, yet a later block is
    /// certified.
    CertificateMissing,
}

impl FailureReason {
    /// A stable snake_case code; a rejected transaction is named by the ledger's own code
    /// (`bad_signature`, `insufficient_funds`, ...).
    pub fn code(&self) -> &'static str {
        match self {
            FailureReason::HeightGap => "height_gap",
            FailureReason::BlockUndecodable => "block_undecodable",
            FailureReason::HashMismatch => "hash_mismatch",
            FailureReason::HeightMismatch => "height_mismatch",
            FailureReason::ParentMismatch => "parent_mismatch",
            FailureReason::TimestampMismatch => "timestamp_mismatch",
            FailureReason::Block(error) => match error {
                BlockError::WrongHeight { .. } => "height_mismatch",
                BlockError::WrongParent => "parent_mismatch",
                BlockError::TimeWentBackwards => "time_went_backwards",
                BlockError::TooManyTransactions(_) => "too_many_transactions",
                BlockError::TxCountMismatch => "tx_count_mismatch",
                BlockError::TxRootMismatch => "tx_root_mismatch",
                BlockError::UnknownProposer => "unknown_proposer",
                BlockError::RejectedTransaction { rejection, .. } => rejection.code(),
                BlockError::StateRootMismatch => "state_root_mismatch",
            },
            FailureReason::InvariantViolation(_) => "invariant_violation",
            FailureReason::LedgerPanic => "ledger_panic",
            FailureReason::CertificateInvalid => "certificate_invalid",
            FailureReason::CertificateMissing => "certificate_missing",
        }
    }
}

/// The first block of a log that does not check out.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("block {height} does not check out ({}): {detail}", reason.code())]
pub struct VerifyFailure {
    pub height: u64,
    /// The block's hash, when its bytes decode.
    pub hash: Option<Digest>,
    pub reason: FailureReason,
    /// A human explanation.
    pub detail: String,
    /// What was checked before the verification stopped: the blocks below the failing one
    /// (for `certificate_missing`, up to the certified block that showed the gap).
    pub verified: VerifyReport,
}

/// Why a log could not be verified.
#[derive(Debug, Error)]
pub enum VerifyError {
    #[error("the genesis is invalid: {0}")]
    Genesis(#[from] GenesisError),
    #[error("reading the block log: {0}")]
    Store(#[from] StoreError),
    /// The log was read and a block does not check out.
    #[error(transparent)]
    Failed(Box<VerifyFailure>),
}

impl From<Box<VerifyFailure>> for VerifyError {
    fn from(failure: Box<VerifyFailure>) -> VerifyError {
        VerifyError::Failed(failure)
    }
}

/// The operating system's randomness, for the batch verification of certificate signatures
/// (whose coefficients must not be predictable to whoever wrote the log).
pub fn os_rng() -> impl CryptoRng {
    commonware_utils::sys_rng()
}

/// Verifies a whole log given as stored blocks in height order (from height 1).
pub fn verify_log<R: CryptoRng>(
    genesis: &Genesis,
    blocks: impl IntoIterator<Item = StoredBlock>,
    rng: &mut R,
) -> Result<VerifyReport, VerifyError> {
    let mut verifier = LogVerifier::new(genesis)?;
    for stored in blocks {
        verifier.check(&stored, rng)?;
    }
    Ok(verifier.report())
}

/// Verifies a store's whole block log, [`VERIFY_PAGE_BLOCKS`] at a time. Only reads.
pub fn verify_store<R: CryptoRng>(
    store: &mut Store,
    genesis: &Genesis,
    rng: &mut R,
) -> Result<VerifyReport, VerifyError> {
    let mut verifier = LogVerifier::new(genesis)?;
    loop {
        let page = store.blocks_from(verifier.next_height(), VERIFY_PAGE_BLOCKS)?;
        if page.is_empty() {
            return Ok(verifier.report());
        }
        for stored in &page {
            verifier.check(stored, rng)?;
        }
    }
}

/// A streaming verifier: feed it the stored blocks in height order with [`LogVerifier::check`],
/// then read the [`LogVerifier::report`]. After a failure it stays at the block below the
/// failing one; feeding it more blocks is a caller error.
#[derive(Debug)]
pub struct LogVerifier {
    namespace: Vec<u8>,
    ledger: Ledger,
    /// The current epoch's certificate verifier (`None`: a validator key is not an Ed25519
    /// point, so no certificate of the epoch can verify).
    verifier: Option<Scheme>,
    blocks_checked: u64,
    transactions: u64,
    certificates_checked: u64,
    last_certified_height: u64,
    /// The first block of the current epoch above its last certified block.
    uncovered: Option<(u64, Digest)>,
    /// The first block of an ended epoch that no certificate of its epoch covers.
    orphaned: Option<(u64, Digest)>,
    epochs: Vec<EpochSummary>,
}

impl LogVerifier {
    pub fn new(genesis: &Genesis) -> Result<LogVerifier, GenesisError> {
        genesis.validate()?;
        let ledger = Ledger::from_genesis(genesis)?;
        let namespace = namespace(genesis);
        let verifier = verifier_for(&namespace, &ledger.validators());
        Ok(LogVerifier {
            namespace,
            ledger,
            verifier,
            blocks_checked: 0,
            transactions: 0,
            certificates_checked: 0,
            last_certified_height: 0,
            uncovered: None,
            orphaned: None,
            epochs: Vec::new(),
        })
    }

    /// The height the next block must have.
    pub fn next_height(&self) -> u64 {
        self.ledger.height().saturating_add(1)
    }

    /// The ledger after the last block that checked out.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// Checks the next stored block and moves past it.
    pub fn check<R: CryptoRng>(
        &mut self,
        stored: &StoredBlock,
        rng: &mut R,
    ) -> Result<(), Box<VerifyFailure>> {
        let expected = self.next_height();
        if stored.height != expected {
            let detail = format!("expected height {expected}, the log has {}", stored.height);
            return Err(self.failure(expected, None, FailureReason::HeightGap, detail));
        }
        let block = self.decode(stored)?;
        let hash = block.hash();
        let after = self.apply(&block, hash)?;
        let epoch = self.ledger.epoch();
        match &stored.certificate {
            Some(certificate) => self.check_certificate(&block, hash, certificate, rng)?,
            None => {
                self.uncovered.get_or_insert((block.header.height, hash));
            }
        }
        self.note_epoch(&block, stored.certificate.is_some());
        self.blocks_checked = self.blocks_checked.saturating_add(1);
        self.transactions = self.transactions.saturating_add(block.transactions.len() as u64);
        self.ledger = after;
        if self.ledger.epoch() != epoch {
            // The block ended its epoch: nothing later can certify what is still uncovered.
            if let Some(first) = self.uncovered.take() {
                self.orphaned.get_or_insert(first);
            }
            self.verifier = verifier_for(&self.namespace, &self.ledger.validators());
        }
        Ok(())
    }

    /// The report of every block checked so far.
    pub fn report(&self) -> VerifyReport {
        let tip = self.ledger.tip();
        let covered = self.last_certified_height;
        VerifyReport {
            chain_id: self.ledger.chain_id().to_string(),
            genesis_hash: self.ledger.genesis_hash(),
            blocks_checked: self.blocks_checked,
            transactions: self.transactions,
            final_height: tip.height,
            final_hash: tip.hash,
            state_root: self.ledger.state_root(),
            supply: self.ledger.state().supply(),
            certificates_checked: self.certificates_checked,
            certified_by_descendant: covered.saturating_sub(self.certificates_checked),
            last_certified_height: covered,
            uncertified_tail: tip.height.saturating_sub(covered),
            epochs: self.epochs.clone(),
        }
    }

    fn failure(
        &self,
        height: u64,
        hash: Option<Digest>,
        reason: FailureReason,
        detail: String,
    ) -> Box<VerifyFailure> {
        Box::new(VerifyFailure { height, hash, reason, detail, verified: self.report() })
    }

    /// Decodes the row's block and checks the row's columns against it.
    fn decode(&self, stored: &StoredBlock) -> Result<Block, Box<VerifyFailure>> {
        let height = stored.height;
        let block = Block::decode(&stored.block).map_err(|error| {
            let detail = format!("the stored bytes do not decode as a block: {error}");
            self.failure(height, None, FailureReason::BlockUndecodable, detail)
        })?;
        let (h, hash) = (&block.header, block.hash());
        let column = if h.height != height {
            Some((FailureReason::HeightMismatch, "height"))
        } else if hash != stored.hash {
            Some((FailureReason::HashMismatch, "hash"))
        } else if h.parent_hash != stored.parent_hash {
            Some((FailureReason::ParentMismatch, "parent_hash"))
        } else if h.timestamp_ms != stored.timestamp_ms {
            Some((FailureReason::TimestampMismatch, "timestamp_ms"))
        } else {
            None
        };
        match column {
            Some((reason, column)) => {
                let detail = format!("the row's {column} column is not the stored block's");
                Err(self.failure(height, Some(hash), reason, detail))
            }
            None => Ok(block),
        }
    }

    /// The ledger after `block`, with the ledger's full checks and its invariants.
    fn apply(&self, block: &Block, hash: Digest) -> Result<Ledger, Box<VerifyFailure>> {
        let height = block.header.height;
        // The ledger asserts its invariants after executing a block: a log that trips one shows
        // a ledger bug, and must still be named rather than crash the verifier.
        let checked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.ledger.check_block(block)
        }));
        let after = match checked {
            Ok(Ok((after, _))) => after,
            Ok(Err(error)) => {
                let detail = block_detail(block, &error);
                return Err(self.failure(height, Some(hash), FailureReason::Block(error), detail));
            }
            Err(_) => {
                let detail = "the ledger crashed applying this block".to_string();
                return Err(self.failure(height, Some(hash), FailureReason::LedgerPanic, detail));
            }
        };
        if let Err(violation) = after.state().check_invariants() {
            let detail = format!("after this block: {violation}");
            let reason = FailureReason::InvariantViolation(violation);
            return Err(self.failure(height, Some(hash), reason, detail));
        }
        Ok(after)
    }

    /// Verifies the block's own certificate against its epoch's validators, and that no block
    /// of an earlier epoch was left without one.
    fn check_certificate<R: CryptoRng>(
        &mut self,
        block: &Block,
        hash: Digest,
        certificate: &[u8],
        rng: &mut R,
    ) -> Result<(), Box<VerifyFailure>> {
        let height = block.header.height;
        let epoch = self.ledger.epoch();
        if let Err(detail) = self.verify_certificate(epoch, hash, certificate, rng) {
            return Err(self.failure(
                height,
                Some(hash),
                FailureReason::CertificateInvalid,
                detail,
            ));
        }
        if let Some((orphan, orphan_hash)) = self.orphaned {
            let detail = format!(
                "no certificate of its epoch finalizes this block, yet block {height} above \
                 it is certified"
            );
            return Err(self.failure(
                orphan,
                Some(orphan_hash),
                FailureReason::CertificateMissing,
                detail,
            ));
        }
        self.uncovered = None;
        self.certificates_checked = self.certificates_checked.saturating_add(1);
        self.last_certified_height = height;
        Ok(())
    }

    fn verify_certificate<R: CryptoRng>(
        &self,
        epoch: u64,
        hash: Digest,
        certificate: &[u8],
        rng: &mut R,
    ) -> Result<(), String> {
        let Some(verifier) = &self.verifier else {
            return Err(format!("epoch {epoch}'s validator set has a key that is not Ed25519"));
        };
        let finalization = Finalization::<Scheme, sha256::Digest>::decode_cfg(
            bytes::Bytes::copy_from_slice(certificate),
            &verifier.certificate_codec_config(),
        )
        .map_err(|error| format!("the certificate does not decode: {error}"))?;
        let named_epoch = finalization.proposal.round.epoch().get();
        if named_epoch != epoch {
            return Err(format!("the certificate is of epoch {named_epoch}, the block of {epoch}"));
        }
        if finalization.proposal.payload.0 != hash {
            return Err("the certificate finalizes another block".to_string());
        }
        if !finalization.verify(rng, verifier, &Sequential) {
            return Err(format!(
                "the certificate's signatures are not a valid quorum of epoch {epoch}'s validators"
            ));
        }
        Ok(())
    }

    fn note_epoch(&mut self, block: &Block, certified: bool) {
        let (epoch, height) = (self.ledger.epoch(), block.header.height);
        if self.epochs.last().is_none_or(|e| e.epoch != epoch) {
            self.epochs.push(EpochSummary {
                epoch,
                validators: self.ledger.validators(),
                first_height: height,
                last_height: height,
                certificates: 0,
            });
        }
        if let Some(summary) = self.epochs.last_mut() {
            summary.last_height = height;
            summary.certificates = summary.certificates.saturating_add(u64::from(certified));
        }
    }
}

/// A certificate verifier of `validators`, if every key is an Ed25519 point.
fn verifier_for(namespace: &[u8], validators: &[PublicKey]) -> Option<Scheme> {
    participants(validators).ok().map(|set| Scheme::verifier(namespace, set))
}

/// The ledger's error, with the rejected transaction's id when there is one.
fn block_detail(block: &Block, error: &BlockError) -> String {
    if let BlockError::RejectedTransaction { index, .. } = error
        && let Some(tx) = block.transactions.get(*index as usize)
    {
        return format!("{error} (transaction id {})", tx.body.id.to_hex());
    }
    error.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::validator_key;
    use cbdc_ledger::testkit::{ChainBuilder, TestNet, seed, tx_id};
    use cbdc_ledger::{BankId, SignedTransaction, TxKind};
    use commonware_codec::Encode as _;
    use commonware_consensus::simplex::types::{Finalize, Proposal};
    use commonware_consensus::types::{Epoch, Round, View};
    use commonware_utils::iter::NonEmpty;

    const EXPIRY: u64 = 500;

    /// A chain built with the ledger's testkit, certified by its validators' real keys.
    struct Chain {
        net: TestNet,
        builder: ChainBuilder,
        log: Vec<StoredBlock>,
    }

    impl Chain {
        fn new() -> Chain {
            let net = TestNet::new(3);
            let builder = ChainBuilder::new(&net);
            Chain { net, builder, log: Vec::new() }
        }

        /// Appends a block of `txs` (all must commit), certified by its epoch if `certified`.
        fn push(&mut self, txs: &[SignedTransaction], certified: bool) {
            let (validators, epoch) =
                (self.builder.ledger.validators(), self.builder.ledger.epoch());
            let outcomes = self.builder.push(txs);
            assert!(outcomes.iter().all(|o| o.is_committed()), "{outcomes:?}");
            let block = self.builder.blocks.last().expect("a block").clone();
            let hash = block.hash();
            let certificate =
                certified.then(|| self.certificate(&validators, epoch, block.header.height, hash));
            self.log.push(StoredBlock {
                height: block.header.height,
                hash,
                parent_hash: block.header.parent_hash,
                timestamp_ms: block.header.timestamp_ms,
                block: cbdc_ledger::Encode::encode(&block),
                certificate,
            });
        }

        /// A finalization of `hash` signed by every one of `validators` (the test banks' keys).
        fn certificate(
            &self,
            validators: &[PublicKey],
            epoch: u64,
            view: u64,
            hash: Digest,
        ) -> Vec<u8> {
            let set = participants(validators).expect("validator keys");
            let ns = namespace(&self.net.genesis);
            let proposal = Proposal::new(
                Round::new(Epoch::new(epoch), View::new(view)),
                View::new(view.saturating_sub(1)),
                sha256::Digest(hash),
            );
            let votes: Vec<Finalize<Scheme, sha256::Digest>> = self
                .net
                .banks
                .iter()
                .filter(|b| validators.contains(&b.validator.public_key()))
                .map(|b| {
                    let key = validator_key(&seed(&format!("bank-{}-validator", b.id.0))).unwrap();
                    let scheme = Scheme::signer(&ns, set.clone(), key).expect("a participant");
                    Finalize::sign(&scheme, proposal.clone()).expect("signs")
                })
                .collect();
            let verifier = Scheme::verifier(&ns, set);
            let votes = NonEmpty::try_new(votes.iter()).expect("votes");
            let f = Finalization::from_finalizes(&verifier, votes, &Sequential).expect("a quorum");
            f.encode().to_vec()
        }

        /// A mint, a customer, its funding and a payment back, each in its own block.
        fn activity(&mut self) {
            let net = &self.net;
            let (float, float_key) = (net.bank(1).float_wallet, &net.bank(1).float_key);
            let mint = net.mint(tx_id(1), EXPIRY, 1, 1_000_000);
            let (alice, open) = net.open_customer(tx_id(2), EXPIRY, 1, "alice", 2, false);
            let fund = net.pay(tx_id(3), EXPIRY, float_key, float, alice.wallet, 50_000);
            let back = net.pay(tx_id(4), EXPIRY, &alice.key, alice.wallet, float, 1_000);
            for tx in [mint, open, fund, back] {
                self.push(&[tx], true);
            }
        }

        fn verify(&self) -> Result<VerifyReport, VerifyError> {
            verify_log(&self.net.genesis, self.log.clone(), &mut os_rng())
        }
    }

    fn failure(result: Result<VerifyReport, VerifyError>) -> VerifyFailure {
        match result {
            Err(VerifyError::Failed(f)) => *f,
            other => panic!("expected a failure, got {other:?}"),
        }
    }

    #[test]
    fn a_certified_chain_checks_out() {
        let mut chain = Chain::new();
        chain.activity();
        chain.push(&[], true);
        let report = chain.verify().expect("the chain checks out");
        assert_eq!(report.blocks_checked, 5);
        assert_eq!(report.transactions, 4);
        assert_eq!(report.final_height, 5);
        assert_eq!(report.final_hash, chain.builder.ledger.tip().hash);
        assert_eq!(report.state_root, chain.builder.ledger.state_root());
        assert_eq!(report.supply.outstanding().minor(), 1_000_000);
        assert_eq!((report.certificates_checked, report.certified_by_descendant), (5, 0));
        assert_eq!((report.last_certified_height, report.uncertified_tail), (5, 0));
        assert_eq!(report.epochs.len(), 1);
        assert_eq!(report.epochs[0].validators.len(), 4);
        assert_eq!((report.epochs[0].first_height, report.epochs[0].last_height), (1, 5));
    }

    #[test]
    fn an_empty_log_is_the_genesis() {
        let chain = Chain::new();
        let report = chain.verify().expect("nothing to refute");
        assert_eq!((report.blocks_checked, report.final_height), (0, 0));
        assert_eq!(report.final_hash, chain.net.genesis.hash());
        assert!(report.epochs.is_empty());
    }

    #[test]
    fn blocks_below_a_certificate_are_final_and_the_tail_is_reported() {
        let mut chain = Chain::new();
        chain.push(&[], false);
        chain.push(&[], false);
        chain.push(&[], true);
        chain.push(&[], false);
        chain.push(&[], false);
        let report = chain.verify().expect("uncertified blocks below a certificate are final");
        assert_eq!((report.certificates_checked, report.certified_by_descendant), (1, 2));
        assert_eq!((report.last_certified_height, report.uncertified_tail), (3, 2));
    }

    #[test]
    fn a_changed_amount_names_its_block() {
        let mut chain = Chain::new();
        chain.activity();
        chain.push(&[], true);
        let mut block = Block::decode(&chain.log[2].block).unwrap();
        let TxKind::Transfer { legs } = &mut block.transactions[0].body.kind else {
            panic!("block 3 funds alice")
        };
        legs[0].amount = cbdc_ledger::testkit::amt(60_000);
        chain.log[2].block = cbdc_ledger::Encode::encode(&block);
        let f = failure(chain.verify());
        assert_eq!((f.height, f.reason.code()), (3, "tx_root_mismatch"), "{f}");
        assert_eq!(f.verified.final_height, 2);

        // With a matching Merkle root (and so a new header hash), the signature gives it away.
        block.header.tx_root = cbdc_ledger::merkle_root(&block.transactions);
        chain.log[2].block = cbdc_ledger::Encode::encode(&block);
        chain.log[2].hash = block.hash();
        let f = failure(chain.verify());
        assert_eq!((f.height, f.reason.code()), (3, "bad_signature"), "{f}");
    }

    #[test]
    fn stored_columns_must_be_the_blocks_own() {
        let mut chain = Chain::new();
        chain.activity();
        let mut log = chain.log.clone();
        log[1].hash[0] ^= 1;
        let f = failure(verify_log(&chain.net.genesis, log, &mut os_rng()));
        assert_eq!((f.height, f.reason.code()), (2, "hash_mismatch"));
        let mut log = chain.log.clone();
        log.remove(2);
        let f = failure(verify_log(&chain.net.genesis, log, &mut os_rng()));
        assert_eq!((f.height, f.reason.code(), f.hash), (3, "height_gap", None));
        let mut log = chain.log.clone();
        log[3].block.truncate(10);
        let f = failure(verify_log(&chain.net.genesis, log, &mut os_rng()));
        assert_eq!((f.height, f.reason.code()), (4, "block_undecodable"));
    }

    #[test]
    fn another_genesis_refutes_the_first_block() {
        let mut chain = Chain::new();
        chain.activity();
        let mut other = chain.net.genesis.clone();
        other.chain_id = "another-chain".into();
        let f = failure(verify_log(&other, chain.log.clone(), &mut os_rng()));
        assert_eq!((f.height, f.reason.code()), (1, "parent_mismatch"), "{f}");
    }

    #[test]
    fn a_bad_certificate_names_its_block() {
        let mut chain = Chain::new();
        chain.activity();
        chain.push(&[], true);
        // One flipped bit in the last signature.
        let mut log = chain.log.clone();
        let certificate = log[2].certificate.as_mut().unwrap();
        *certificate.last_mut().unwrap() ^= 1;
        let f = failure(verify_log(&chain.net.genesis, log, &mut os_rng()));
        assert_eq!((f.height, f.reason.code()), (3, "certificate_invalid"), "{f}");
        assert!(f.detail.contains("not a valid quorum"), "{f}");
        assert_eq!(f.hash, Some(chain.log[2].hash));
        // A valid certificate of another block.
        let mut log = chain.log.clone();
        log[2].certificate = log[1].certificate.clone();
        let f = failure(verify_log(&chain.net.genesis, log, &mut os_rng()));
        assert_eq!((f.height, f.reason.code()), (3, "certificate_invalid"), "{f}");
        assert!(f.detail.contains("another block"), "{f}");
        // Garbage.
        let mut log = chain.log.clone();
        log[2].certificate = Some(vec![1, 2, 3]);
        let f = failure(verify_log(&chain.net.genesis, log, &mut os_rng()));
        assert_eq!((f.height, f.reason.code()), (3, "certificate_invalid"), "{f}");
    }

    /// Block 2 suspends bank 3: block 3 onwards is epoch 1, certified by the three others.
    fn chain_with_a_suspension(certify_epoch_end: bool) -> Chain {
        let mut chain = Chain::new();
        chain.push(&[], true);
        let suspend =
            chain.net.by_officers(tx_id(9), EXPIRY, TxKind::SuspendBank { bank: BankId(3) }, 2);
        chain.push(&[suspend], certify_epoch_end);
        assert_eq!(chain.builder.ledger.epoch(), 1);
        chain.push(&[], true);
        chain
    }

    #[test]
    fn certificates_follow_the_validator_set_across_epochs() {
        let chain = chain_with_a_suspension(true);
        let report = chain.verify().expect("each epoch certified by its own validators");
        assert_eq!(report.epochs.len(), 2);
        assert_eq!((report.epochs[1].epoch, report.epochs[1].first_height), (1, 3));
        assert_eq!(report.epochs[1].validators.len(), 3);

        // Block 3 certified by epoch 0's set (bank 3 included): refused.
        let mut log = chain.log.clone();
        let old = chain.net.banks.iter().map(|b| b.validator.public_key()).collect::<Vec<_>>();
        log[2].certificate = Some(chain.certificate(&old, 1, 3, log[2].hash));
        let f = failure(verify_log(&chain.net.genesis, log, &mut os_rng()));
        assert_eq!((f.height, f.reason.code()), (3, "certificate_invalid"), "{f}");
        // Right signers, wrong epoch number.
        let mut log = chain.log.clone();
        let new = report.epochs[1].validators.clone();
        log[2].certificate = Some(chain.certificate(&new, 0, 3, log[2].hash));
        let f = failure(verify_log(&chain.net.genesis, log, &mut os_rng()));
        assert_eq!((f.height, f.reason.code()), (3, "certificate_invalid"), "{f}");
    }

    #[test]
    fn a_block_ending_its_epoch_needs_its_own_certificate() {
        let chain = chain_with_a_suspension(false);
        let f = failure(chain.verify());
        assert_eq!((f.height, f.reason.code()), (2, "certificate_missing"), "{f}");
        // As the uncertified tail, it is reported, not refused.
        let report = verify_log(&chain.net.genesis, chain.log[..2].to_vec(), &mut os_rng())
            .expect("an uncertified tail is normal");
        assert_eq!((report.last_certified_height, report.uncertified_tail), (1, 1));
    }
}
