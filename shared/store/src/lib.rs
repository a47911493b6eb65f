//! Durable storage of a CBDC node: the finalized block log, ledger snapshots and the SQL
//! projections, over SQLite (the embedded default) or PostgreSQL, chosen by the database URL.
//!
//! # What this crate owns
//! - The **block log** (`blocks`): one row per finalized block, heights 1, 2, 3, ... with no gap
//!   (genesis is height 0 and is not stored). It is append-only: a block at an existing height is
//!   accepted again only if it is the same block (consensus delivers at least once) and refused
//!   with [`StoreError::ConflictingBlock`] otherwise. Each block must name the stored block below
//!   it as its parent. This log, with its certificates, is the durable truth of the node.
//! - **Snapshots** (`snapshots`): the encoded ledger state after some stored block. Only the
//!   newest [`StoreOptions::snapshots_retained`] are kept, pruned in the same transaction.
//! - **Projections** (`wallets`, `wallet_history`, `supply_by_height`, `projection_cursor`):
//!   query tables derived from blocks, written once per block by [`Store::write_projection`] in
//!   one transaction that also advances that projection's cursor.
//! - **Evidence** (`evidence`): equivocation evidence reported by consensus, one row per offence
//!   `(kind, validator, epoch, view)`, stored once however often reported ([`Store::put_evidence`]).
//! - **Epoch ends** (`epoch_ends`): the height of the last block of each finished validator-set
//!   epoch, written once; a different height later is [`StoreError::ConflictingEpochEnd`].
//! - The central bank service's records: staff accounts (`cb_users`, [`Store::create_user`]);
//!   the audit log (`cb_audit`), append-only and hash-chained so that a changed or removed entry
//!   is found by [`Store::verify_audit`]; and maker-checker requests with their officers'
//!   approvals (`cb_requests`, `cb_approvals`), whose state only moves by compare-and-set
//!   ([`Store::update_request_state`]).
//! - The intermediary's records (`bank_customers`, `bank_wallets`, `bank_payments`,
//!   `bank_payment_requests`): customers with sealed personal data, one per person; their
//!   wallets, custodial ones with a sealed signing seed; payments, idempotent per principal and
//!   key ([`Store::insert_payment`]) and settled by compare-and-set; and payment requests.
//! - [`recover`]: rebuilding the in-memory [`cbdc_ledger::Ledger`] from the newest snapshot plus
//!   the blocks after it, and [`commit_block`], the write path that keeps that possible.
//!
//! # What it must never do
//! - Decide anything about money: it stores what the ledger decided, byte for byte.
//! - Panic on database contents: a row that does not decode is [`StoreError::CorruptRow`].
//! - Be called from an async worker. Every call is **synchronous and blocking** (diesel over a
//!   single connection); services own a [`Store`] on a dedicated thread (STYLE.md 18).
//!
//! # Durability
//! SQLite runs in WAL mode with `synchronous=FULL`, `foreign_keys=ON` and a busy timeout; every
//! write is one transaction (`BEGIN IMMEDIATE` on SQLite, so two writers queue instead of failing
//! on a lock upgrade). A failed write is returned, never retried here: the caller treats a failed
//! durable write as fatal (STYLE.md 10). The one exception is an audit append that lost the race
//! for its sequence number, which rolled back whole and is made again as a new append.
//!
//! # On disk
//! All integers are fixed-width 64-bit (`BIGINT`, SQLite `INTEGER`) or small enums
//! (`SMALLINT`); `u64` values convert with `i64::try_from` and fail with
//! [`StoreError::ValueOutOfRange`]. Hashes are 32-byte and ids 16-byte blobs, checked by the
//! schema on write and by this crate on read. Migrations (`migrations/sqlite`,
//! `migrations/postgres` at the workspace root: the same tables in each dialect) are embedded
//! and applied by [`Store::open`].

#![forbid(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod audit;
mod bank;
mod blocks;
mod connection;
mod convert;
mod epochs;
mod error;
mod evidence;
mod projection;
mod recover;
mod requests;
mod schema;
mod snapshots;
mod store;
mod users;

pub use audit::{
    AUDIT_APPEND_ATTEMPTS, AUDIT_HASH_DOMAIN, AuditEntry, AuditRecord, AuditVerification,
    MAX_ACTOR_BYTES, MAX_AUDIT_ACTION_BYTES, MAX_AUDIT_DETAILS_BYTES, MAX_AUDIT_OUTCOME_BYTES,
    MAX_AUDIT_PAGE, MAX_AUDIT_TARGET_BYTES, audit_hash,
};
pub use bank::{
    BankWalletRecord, CUSTOMER_ID_HEX_CHARS, Custody, CustomerRecord, CustomerStatus,
    MAX_ACCOUNT_CIPHERTEXT_BYTES, MAX_CUSTOMER_TIER, MAX_CUSTOMERS_PAGE, MAX_IDEMPOTENCY_KEY_BYTES,
    MAX_KEY_CIPHERTEXT_BYTES, MAX_PAYMENT_REFERENCE_BYTES, MAX_PAYMENT_TRANSACTION_BYTES,
    MAX_PAYMENTS_PAGE, MAX_PII_CIPHERTEXT_BYTES, MAX_PRINCIPAL_BYTES, MAX_TX_HISTORY_ROWS,
    MAX_WALLETS_PER_CUSTOMER, PaymentInsert, PaymentRecord, PaymentRequestRecord,
    PaymentRequestState, PaymentState, Sealed,
};
pub use blocks::{MAX_PAGE, StoredBlock};
pub use connection::{Backend, drop_database, ensure_database};
pub use error::StoreError;
pub use evidence::{
    EvidenceRecord, MAX_EVIDENCE_KIND_BYTES, MAX_EVIDENCE_PAGE, MAX_EVIDENCE_PROOF_BYTES,
};
pub use projection::{
    Direction, HistoryEntry, HistoryRow, MAX_HISTORY_PAGE, MAX_HOLDER_REF_BYTES,
    MAX_PROJECTION_HISTORY_ROWS, MAX_PROJECTION_NAME_BYTES, MAX_PROJECTION_WALLETS,
    ProjectionBatch, ProjectionOutcome, SupplyRow, WalletEntry, WalletRow,
};
pub use recover::{CommitOutcome, REPLAY_PAGE_BLOCKS, RecoverError, commit_block, recover};
pub use requests::{
    ApprovalRecord, MAX_APPROVALS_PER_REQUEST, MAX_REJECTION_CODE_BYTES, MAX_REQUEST_BODY_BYTES,
    MAX_REQUEST_KIND_BYTES, MAX_REQUEST_PAGE, MAX_REQUEST_REASON_BYTES, MAX_REQUEST_SUMMARY_BYTES,
    RequestRecord, RequestState, UnknownRequestState,
};
pub use snapshots::StoredSnapshot;
pub use store::{Store, StoreOptions};
pub use users::{
    MAX_PASSWORD_HASH_BYTES, MAX_USERNAME_BYTES, MAX_USERS_PAGE, OFFICER_ROLE, USER_ROLES,
    UserRecord,
};
