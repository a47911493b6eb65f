//! Rebuilding the in-memory ledger from the store, and the write path that keeps that possible.
//!
//! # Protocol
//! - [`commit_block`], after the ledger has applied a finalized block: append the block (with its
//!   certificate, if already known) to the log, then every `snapshot_every` heights store a
//!   snapshot of the ledger after it. Two transactions: a crash between them loses only the
//!   snapshot, which recovery does not need.
//! - [`recover`], on start: restore the newest snapshot (or start from genesis when there is
//!   none), check that it is the state after the stored block at its height, then replay every
//!   stored block above it in order, page by page. Each stored row must decode to a block whose
//!   hash, height, parent and time are the row's; each block is applied with the ledger's full
//!   checks (parent, height, transaction root, signatures, state root).
//!
//! Any mismatch stops recovery with a [`RecoverError`] naming the height: the node must not
//! start on a state that is not the one its log proves.

use cbdc_ledger::{
    Block, BlockError, Decode, DecodeError, Encode, Genesis, GenesisError, Ledger, SnapshotError,
};

use crate::{Store, StoreError, StoredBlock, StoredSnapshot};

/// Blocks read per query during replay. Small, because a full block can be megabytes and
/// replay time is spent verifying signatures, not in queries.
pub const REPLAY_PAGE_BLOCKS: u32 = 16;

/// Why [`recover`] could not rebuild the ledger.
#[derive(Debug, thiserror::Error)]
pub enum RecoverError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("genesis is invalid")]
    Genesis(#[from] GenesisError),
    #[error("snapshot at height {height} does not restore")]
    Snapshot {
        height: u64,
        #[source]
        source: SnapshotError,
    },
    /// The snapshot restored, but not to the state its row claims, or not after the stored
    /// block at its height.
    #[error("snapshot at height {height} does not match the {what} of the store")]
    SnapshotMismatch { height: u64, what: &'static str },
    #[error("stored block {height} does not decode")]
    BlockDecode {
        height: u64,
        #[source]
        source: DecodeError,
    },
    /// A stored row's indexing column disagrees with the block it holds.
    #[error("stored block {height}: column {column} does not match the block")]
    BlockMismatch { height: u64, column: &'static str },
    #[error("block log skips from height {expected} to {got}")]
    Gap { expected: u64, got: u64 },
    #[error("stored block {height} does not apply")]
    BlockApply {
        height: u64,
        #[source]
        source: BlockError,
    },
}

/// What [`commit_block`] wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommitOutcome {
    /// A snapshot of the ledger after the block was stored too.
    pub snapshot_written: bool,
}

/// Stores a finalized block and, every `snapshot_every` heights (never when 0), a snapshot of
/// `ledger_after`, the ledger that has applied exactly this block.
///
/// # Panics
/// If `ledger_after` is not at `block` (another height or tip hash): a caller bug that would
/// store a snapshot of the wrong state (STYLE.md 10).
pub fn commit_block(
    store: &mut Store,
    ledger_after: &Ledger,
    block: &Block,
    certificate: Option<&[u8]>,
    snapshot_every: u64,
) -> Result<CommitOutcome, StoreError> {
    let header = &block.header;
    let hash = block.hash();
    assert_eq!(ledger_after.height(), header.height, "ledger_after is not at the block's height");
    assert_eq!(ledger_after.tip().hash, hash, "ledger_after is not at the block's hash");
    store.append_block(&StoredBlock {
        height: header.height,
        hash,
        parent_hash: header.parent_hash,
        timestamp_ms: header.timestamp_ms,
        block: block.encode(),
        certificate: certificate.map(<[u8]>::to_vec),
    })?;
    let snapshot_due = snapshot_every > 0 && header.height.is_multiple_of(snapshot_every);
    if snapshot_due {
        store.put_snapshot(&StoredSnapshot {
            height: header.height,
            state_root: ledger_after.state_root(),
            data: ledger_after.snapshot(),
        })?;
    }
    Ok(CommitOutcome { snapshot_written: snapshot_due })
}

/// Rebuilds the ledger at the end of the stored block log: the newest snapshot plus every block
/// after it, or every block from `genesis` when there is no snapshot.
pub fn recover(store: &mut Store, genesis: &Genesis) -> Result<Ledger, RecoverError> {
    let mut ledger = match store.latest_snapshot()? {
        Some(snapshot) => restore(store, genesis, &snapshot)?,
        None => Ledger::from_genesis(genesis)?,
    };
    loop {
        // The ledger's height is at most the log's last height, which fits an i64.
        let next = ledger.height().saturating_add(1);
        let page = store.blocks_from(next, REPLAY_PAGE_BLOCKS)?;
        if page.is_empty() {
            break;
        }
        for stored in &page {
            replay(&mut ledger, stored)?;
        }
    }
    Ok(ledger)
}

/// The ledger of `snapshot`, checked against its row and against the stored block at its height.
fn restore(
    store: &mut Store,
    genesis: &Genesis,
    snapshot: &StoredSnapshot,
) -> Result<Ledger, RecoverError> {
    let height = snapshot.height;
    let ledger = Ledger::restore(genesis, &snapshot.data)
        .map_err(|source| RecoverError::Snapshot { height, source })?;
    if ledger.height() != height {
        return Err(RecoverError::SnapshotMismatch { height, what: "height" });
    }
    if ledger.state_root() != snapshot.state_root {
        return Err(RecoverError::SnapshotMismatch { height, what: "state root" });
    }
    let stored_hash = store.block(height)?.map(|block| block.hash);
    if stored_hash != Some(ledger.tip().hash) {
        return Err(RecoverError::SnapshotMismatch { height, what: "block hash" });
    }
    Ok(ledger)
}

/// Applies one stored block after checking that the row is the block it claims to be.
fn replay(ledger: &mut Ledger, stored: &StoredBlock) -> Result<(), RecoverError> {
    let height = stored.height;
    let expected = ledger.height().saturating_add(1);
    if height != expected {
        return Err(RecoverError::Gap { expected, got: height });
    }
    let block = Block::decode(&stored.block)
        .map_err(|source| RecoverError::BlockDecode { height, source })?;
    let header = &block.header;
    let columns = [
        ("hash", block.hash() == stored.hash),
        ("height", header.height == stored.height),
        ("parent_hash", header.parent_hash == stored.parent_hash),
        ("timestamp_ms", header.timestamp_ms == stored.timestamp_ms),
    ];
    if let Some((column, _)) = columns.iter().find(|(_, matches)| !matches) {
        return Err(RecoverError::BlockMismatch { height, column });
    }
    ledger.apply_block(&block).map_err(|source| RecoverError::BlockApply { height, source })?;
    Ok(())
}
