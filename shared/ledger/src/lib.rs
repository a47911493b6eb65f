//! The pure ledger core of the CBDC platform.
//!
//! It owns the rules of money: types, the canonical encoding of everything signed or hashed,
//! transactions and their authority, limits and supply, execution of blocks, and verification of
//! a chain from its genesis. It must never do I/O, read a clock, draw randomness, spawn threads
//! or depend on tokio, actix or diesel: services inject time (block timestamps), storage and
//! transport. CI checks that boundary with `cargo tree`.
//!
//! Map of the crate:
//! - [`codec`]: canonical binary encoding with typed decode errors.
//! - [`types`]: `Amount` (checked minor units), ids, enums.
//! - [`crypto`]: domain-separated SHA-256, Ed25519 signing (`ring`) and consensus-safe
//!   batch verification (`ed25519-zebra`, ZIP-215 rules).
//! - [`tx`]: transaction kinds, signing payloads, authority.
//! - [`policy`]: officers and k, supply cap, tier limits.
//! - [`state`]: the replicated state and its commitment.
//! - [`commitment`]: structurally shared maps with an incremental set hash (the state root).
//! - [`execute`]: the rules, one transaction at a time.
//! - [`block`]: blocks, the `Ledger` at a tip, building, applying, verifying a chain.
//! - [`genesis`]: the genesis file.
#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(
        clippy::arithmetic_side_effects,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

pub mod block;
pub mod codec;
pub mod commitment;
pub mod crypto;
pub mod execute;
pub mod genesis;
pub mod policy;
pub mod rejection;
pub mod state;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod tx;
pub mod types;

pub use block::{
    Block, BlockContext, BlockError, BlockHeader, BlockOutcome, BuiltBlock, ChainError, Ledger,
    MAX_BLOCK_TXS, SnapshotError, Tip, VerifyChainError, merkle_root, verify_chain,
};
pub use codec::{Decode, DecodeError, Encode};
pub use crypto::{KeyCache, Signature, SigningKey};
pub use execute::{BlockEnv, Posting, PostingReason, TxOutcome};
pub use genesis::{Genesis, GenesisBank, GenesisError};
pub use policy::{Policy, TierLimits};
pub use rejection::Rejection;
pub use state::{Bank, Holder, State, Supply, Wallet};
pub use tx::{Leg, PolicyUpdate, SignedTransaction, TxBody, TxKind, TxSignature};
pub use types::{
    Amount, AmountError, BankId, BankStatus, Digest, HolderRef, KycTier, PublicKey, TxId,
    WalletClass, WalletId, WalletStatus,
};
