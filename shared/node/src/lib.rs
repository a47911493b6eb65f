//! The replicated node: Commonware simplex BFT consensus over the ledger, a bounded mempool, block
//! dissemination and catch-up on authenticated p2p channels, and the block log.
//!
//! The engine is kept behind this crate's small interface — submit a transaction
//! ([`Mailbox::submit`]), watch finalized progress ([`NodeStatus`]), start a validator
//! ([`start`]) — so the services never touch Commonware types and the engine could be swapped.
//! The protocol between consensus and the ledger is documented in [`app`].

pub mod app;
pub mod feed;
pub mod mempool;
pub mod metrics;
pub mod node;
pub mod verify;
pub mod wire;

pub use app::{
    Channels, EpochInfo, Evidence, LedgerSummary, MAX_SUBMIT_BATCH, Mailbox, NodeStatus,
    SubmitError, ValidatorKey,
};
pub use feed::{FEED_BLOCKS, FinalizedBlock, FinalizedFeed};
pub use mempool::{Mempool, MempoolError, MempoolLimits};
pub use metrics::{
    BankHoldings, FINALITY_BUCKETS_MS, LatencyHistogram, MoneyFlows, TX_KINDS, TierHoldings,
};
pub use node::{
    CertificateSigners, ConsensusChannels, NodeConfig, NodeError, NodeHandle, Timeouts,
    certificate_signers, namespace, participants, start, validator_key,
};
pub use verify::{
    EpochSummary, FailureReason, LogVerifier, VerifyError, VerifyFailure, VerifyReport, verify_log,
    verify_store,
};
