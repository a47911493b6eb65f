//! The one error type of the crate.

use crate::convert::hex;

/// Everything that can go wrong in a [`crate::Store`] call.
///
/// Messages never contain the database URL (it may carry a password).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL names no supported backend (`sqlite://`, a path, `:memory:`, `postgres://`).
    #[error("unsupported database url scheme `{scheme}`")]
    UnsupportedUrl { scheme: String },
    /// Connecting, or configuring the new connection, failed.
    #[error("cannot connect to the database")]
    Connection(#[from] diesel::ConnectionError),
    /// Applying the embedded migrations failed.
    #[error("applying migrations failed: {0}")]
    Migration(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A query failed.
    #[error("database query failed")]
    Query(#[from] diesel::result::Error),
    /// A different block (by hash) is already stored at this height.
    #[error("a different block is already stored at height {height}")]
    ConflictingBlock { height: u64 },
    /// The block is not the next one: the log would have a gap (or `got` is below the log).
    #[error("block height gap: expected {expected}, got {got}")]
    HeightGap { expected: u64, got: u64 },
    /// The block's parent hash is not the hash of the stored block below it.
    #[error("block {height} does not extend the stored block {}", height.saturating_sub(1))]
    ParentMismatch { height: u64 },
    /// `set_certificate` named a height with no stored block.
    #[error("no stored block at height {height}")]
    BlockNotFound { height: u64 },
    /// A snapshot must follow a stored block.
    #[error("snapshot at height {height} is ahead of the block log (last height {last_height})")]
    SnapshotAheadOfLog { height: u64, last_height: u64 },
    /// A different snapshot (by state root) is already stored at this height.
    #[error("a different snapshot is already stored at height {height}")]
    ConflictingSnapshot { height: u64 },
    /// A value does not fit the fixed-width column it is written to.
    #[error("{field} = {value} does not fit its column")]
    ValueOutOfRange { field: &'static str, value: u64 },
    /// A stored row does not decode (wrong-length hash, negative height, unknown code, ...).
    #[error("corrupt row in {table}.{column}: {detail}")]
    CorruptRow { table: &'static str, column: &'static str, detail: String },
    /// A projection batch holds more rows of one kind than [`crate::ProjectionBatch`] allows.
    #[error("projection batch has {len} {what}, more than the limit {max}")]
    BatchTooLarge { what: &'static str, len: u64, max: u64 },
    /// A projection batch is malformed (a duplicate wallet, an empty or long name, ...).
    #[error("invalid projection batch: {reason}")]
    InvalidBatch { reason: &'static str },
    /// Evidence to store has a field outside its bounds (an empty or long `kind`, a large
    /// `proof`; see [`crate::MAX_EVIDENCE_KIND_BYTES`], [`crate::MAX_EVIDENCE_PROOF_BYTES`]).
    #[error("invalid evidence: {field} is {len} bytes, allowed {min} to {max}")]
    InvalidEvidence { field: &'static str, len: u64, min: u64, max: u64 },
    /// The epoch already ended at a different height: the node would be on two chains.
    #[error("epoch {epoch} already ended at height {stored_height}, not {height}")]
    ConflictingEpochEnd { epoch: u64, stored_height: u64, height: u64 },
    /// A field of a record to store is outside its length bounds (see the `MAX_*` constants).
    #[error("invalid {record}: {field} is {len} bytes, allowed {min} to {max}")]
    FieldLength { record: &'static str, field: &'static str, len: u64, min: u64, max: u64 },
    /// A field of a record to store has a value the schema refuses (a character outside a
    /// username's alphabet, an unknown role, a committed height on a request not committed, ...).
    #[error("invalid {record}: {field} {reason}")]
    InvalidField { record: &'static str, field: &'static str, reason: &'static str },
    /// A user with this username already exists; the stored user is unchanged.
    #[error("user `{username}` already exists")]
    UserExists { username: String },
    /// The officer key is already another user's: one key is one officer.
    #[error("the officer key is already another user's")]
    OfficerKeyInUse,
    /// A request with this id and the same payload already exists: an identical retry.
    #[error("request {} already exists", hex(id))]
    RequestExists { id: [u8; 16] },
    /// A request with this id but a different payload already exists.
    #[error("request {} already exists with a different payload", hex(id))]
    ConflictingRequest { id: [u8; 16] },
    /// No request has this id.
    #[error("no request {}", hex(id))]
    RequestNotFound { id: [u8; 16] },
    /// The request already has the most approvals one request may have.
    #[error("request {} already has {max} approvals", hex(id))]
    TooManyApprovals { id: [u8; 16], max: u64 },
    /// A unique value of a record to store is already another record's: a customer's
    /// `username`, `holder_ref` or `customer_id`, a `wallet_id`, a payment's `tx_id` or a
    /// payment request's `request_id`. Nothing was stored.
    #[error("the {what} is already taken")]
    Duplicate { what: &'static str },
    /// The customer already has the most wallets one customer may have.
    #[error("customer {customer_id} already has {max} wallets")]
    TooManyWallets { customer_id: String, max: u64 },
    /// Appending to the audit log lost the race for the next sequence number every time.
    #[error(
        "audit append failed after {attempts} attempts: another writer took each sequence number"
    )]
    AuditContention { attempts: u32 },
}
