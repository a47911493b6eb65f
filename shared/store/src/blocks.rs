//! The finalized block log: append-only, gap-free, each block extending the one below it.

use diesel::dsl::max;
use diesel::prelude::*;

use crate::connection::AnyConnection;
use crate::convert::{Column, to_i64};
use crate::schema::blocks;
use crate::{Store, StoreError};

/// The most blocks one [`Store::blocks_from`] call returns. A page holds whole blocks in memory:
/// callers that may read full blocks ask for fewer.
pub const MAX_PAGE: u32 = 256;

/// One finalized block as stored: the ledger's canonical encoding plus the columns that index it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredBlock {
    /// 1 for the first block after genesis.
    pub height: u64,
    /// The ledger's hash of the block (the encoded header).
    pub hash: [u8; 32],
    /// The hash of the block at `height - 1` (the genesis hash for height 1).
    pub parent_hash: [u8; 32],
    pub timestamp_ms: u64,
    /// The ledger's canonical encoding of the whole block.
    pub block: Vec<u8>,
    /// The consensus finalization certificate, opaque here.
    pub certificate: Option<Vec<u8>>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = blocks)]
struct BlockRecord {
    height: i64,
    hash: Vec<u8>,
    parent_hash: Vec<u8>,
    timestamp_ms: i64,
    block: Vec<u8>,
    certificate: Option<Vec<u8>>,
}

#[derive(Insertable)]
#[diesel(table_name = blocks)]
// None is bound as NULL, not DEFAULT: SQLite then takes many rows in one statement.
#[diesel(treat_none_as_default_value = false)]
struct NewBlock<'a> {
    height: i64,
    hash: &'a [u8],
    parent_hash: &'a [u8],
    timestamp_ms: i64,
    block: &'a [u8],
    certificate: Option<&'a [u8]>,
}

impl<'a> NewBlock<'a> {
    fn from_stored(stored: &'a StoredBlock) -> Result<NewBlock<'a>, StoreError> {
        Ok(NewBlock {
            height: to_i64("height", stored.height)?,
            hash: &stored.hash,
            parent_hash: &stored.parent_hash,
            timestamp_ms: to_i64("timestamp_ms", stored.timestamp_ms)?,
            block: &stored.block,
            certificate: stored.certificate.as_deref(),
        })
    }
}

impl TryFrom<BlockRecord> for StoredBlock {
    type Error = StoreError;

    fn try_from(record: BlockRecord) -> Result<StoredBlock, StoreError> {
        Ok(StoredBlock {
            height: Column::new("blocks", "height").u64(record.height)?,
            hash: Column::new("blocks", "hash").array(&record.hash)?,
            parent_hash: Column::new("blocks", "parent_hash").array(&record.parent_hash)?,
            timestamp_ms: Column::new("blocks", "timestamp_ms").u64(record.timestamp_ms)?,
            block: record.block,
            certificate: record.certificate,
        })
    }
}

/// The hash of the stored block at `height`, if there is one.
fn stored_hash(conn: &mut AnyConnection, height: i64) -> Result<Option<[u8; 32]>, StoreError> {
    let hash: Option<Vec<u8>> = blocks::table
        .select(blocks::hash)
        .filter(blocks::height.eq(height))
        .first(conn)
        .optional()?;
    hash.map(|hash| Column::new("blocks", "hash").array(&hash)).transpose()
}

pub(crate) fn last_height(conn: &mut AnyConnection) -> Result<u64, StoreError> {
    let last: Option<i64> = blocks::table.select(max(blocks::height)).first(conn)?;
    last.map_or(Ok(0), |last| Column::new("blocks", "height").u64(last))
}

/// Inside the append transaction: is `block` a retry of a stored block, the next one, or wrong?
fn check_append(
    conn: &mut AnyConnection,
    block: &StoredBlock,
    height: i64,
) -> Result<Append, StoreError> {
    if let Some(stored) = stored_hash(conn, height)? {
        return if stored == block.hash {
            Ok(Append::AlreadyStored)
        } else {
            Err(StoreError::ConflictingBlock { height: block.height })
        };
    }
    let last = last_height(conn)?;
    let expected =
        last.checked_add(1).ok_or(StoreError::ValueOutOfRange { field: "height", value: last })?;
    if block.height != expected {
        return Err(StoreError::HeightGap { expected, got: block.height });
    }
    // Height 1 extends genesis, which is not stored: its parent is the ledger's to check.
    if last > 0 && stored_hash(conn, to_i64("height", last)?)? != Some(block.parent_hash) {
        return Err(StoreError::ParentMismatch { height: block.height });
    }
    Ok(Append::New)
}

enum Append {
    New,
    AlreadyStored,
}

impl Store {
    /// Appends the next finalized block: `height` must be `last_height() + 1` and `parent_hash`
    /// the stored hash at `height - 1`.
    ///
    /// Idempotent: the same block (same height and hash) again is `Ok`; if it now carries a
    /// certificate and the stored row has none, the certificate is filled. A different hash at
    /// a stored height is [`StoreError::ConflictingBlock`]; a gap is [`StoreError::HeightGap`].
    pub fn append_block(&mut self, block: &StoredBlock) -> Result<(), StoreError> {
        let record = NewBlock::from_stored(block)?;
        self.conn.write_transaction(|conn| {
            match check_append(conn, block, record.height)? {
                Append::New => {
                    diesel::insert_into(blocks::table).values(&record).execute(conn)?;
                }
                Append::AlreadyStored => {
                    if let Some(certificate) = record.certificate {
                        diesel::update(blocks::table)
                            .filter(blocks::height.eq(record.height))
                            .filter(blocks::certificate.is_null())
                            .set(blocks::certificate.eq(certificate))
                            .execute(conn)?;
                    }
                }
            }
            Ok(())
        })
    }

    /// Stores (or replaces) the finalization certificate of the block at `height`.
    pub fn set_certificate(&mut self, height: u64, certificate: &[u8]) -> Result<(), StoreError> {
        let key = to_i64("height", height)?;
        let updated = diesel::update(blocks::table)
            .filter(blocks::height.eq(key))
            .set(blocks::certificate.eq(certificate))
            .execute(&mut self.conn)?;
        if updated == 0 {
            return Err(StoreError::BlockNotFound { height });
        }
        Ok(())
    }

    /// The stored block at `height`, if any.
    pub fn block(&mut self, height: u64) -> Result<Option<StoredBlock>, StoreError> {
        let key = to_i64("height", height)?;
        let record: Option<BlockRecord> = blocks::table
            .select(BlockRecord::as_select())
            .filter(blocks::height.eq(key))
            .first(&mut self.conn)
            .optional()?;
        record.map(StoredBlock::try_from).transpose()
    }

    /// The highest stored block that has a finalization certificate, if any.
    pub fn last_certified(&mut self) -> Result<Option<StoredBlock>, StoreError> {
        // Walks the primary key down from the tip: usually only the newest few blocks lack one.
        let record: Option<BlockRecord> = blocks::table
            .select(BlockRecord::as_select())
            .filter(blocks::certificate.is_not_null())
            .order(blocks::height.desc())
            .first(&mut self.conn)
            .optional()?;
        record.map(StoredBlock::try_from).transpose()
    }

    /// The stored block with this hash, if any.
    pub fn block_by_hash(&mut self, hash: &[u8; 32]) -> Result<Option<StoredBlock>, StoreError> {
        let record: Option<BlockRecord> = blocks::table
            .select(BlockRecord::as_select())
            .filter(blocks::hash.eq(hash.as_slice()))
            .first(&mut self.conn)
            .optional()?;
        record.map(StoredBlock::try_from).transpose()
    }

    /// Up to `limit` (at most [`MAX_PAGE`]) stored blocks from `from_height` upwards, in order.
    pub fn blocks_from(
        &mut self,
        from_height: u64,
        limit: u32,
    ) -> Result<Vec<StoredBlock>, StoreError> {
        let from = to_i64("from_height", from_height)?;
        let records: Vec<BlockRecord> = blocks::table
            .select(BlockRecord::as_select())
            .filter(blocks::height.ge(from))
            .order(blocks::height.asc())
            .limit(i64::from(limit.min(MAX_PAGE)))
            .load(&mut self.conn)?;
        records.into_iter().map(StoredBlock::try_from).collect()
    }

    /// The height of the newest stored block; 0 (genesis) when the log is empty.
    pub fn last_height(&mut self) -> Result<u64, StoreError> {
        last_height(&mut self.conn)
    }
}
