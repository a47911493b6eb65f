//! SQL projections: query tables derived from finalized blocks, written once per block.
//!
//! A projection (a bank's wallets and history, the central bank's supply series, ...) is named;
//! `projection_cursor` records, per name, the height up to which it has been written. One
//! [`Store::write_projection`] call writes one block's rows and advances the cursor in the same
//! transaction, so after a crash the cursor says exactly which block to project next, and a
//! block delivered twice is not projected twice.

use std::collections::BTreeSet;

use diesel::prelude::*;
use diesel::upsert::excluded;

use crate::connection::{AnyConnection, on_backend};
use crate::convert::{Column, count_u64, to_i64};
use crate::schema::{projection_cursor, supply_by_height, wallet_history, wallets};
use crate::{Store, StoreError};

/// The most wallet rows in one [`ProjectionBatch`]: two per transfer of the largest block, with
/// room to spare.
pub const MAX_PROJECTION_WALLETS: u32 = 32_768;
/// The most history rows in one [`ProjectionBatch`] (a debit and a credit per transfer).
pub const MAX_PROJECTION_HISTORY_ROWS: u32 = 65_536;
/// The longest projection name, in bytes.
pub const MAX_PROJECTION_NAME_BYTES: u32 = 64;
/// The longest [`WalletRow::holder_ref`], in bytes.
pub const MAX_HOLDER_REF_BYTES: u32 = 64;
/// The most entries one [`Store::wallet_history`] call returns.
pub const MAX_HISTORY_PAGE: u32 = 256;

/// Rows per INSERT statement: 64 rows of at most 9 columns stay far below SQLite's 32,766 and
/// PostgreSQL's 65,535 bind parameters per statement, and a full chunk's statement is prepared
/// once per connection and reused (a block writes ~14 of them per 1,000 rows).
const INSERT_CHUNK_ROWS: usize = 64;

/// One block's worth of rows for one projection: plain data, bounded by the `MAX_*` constants.
///
/// Heights are not part of the rows: [`Store::write_projection`] stamps its `height` on all of
/// them, so a batch cannot mix blocks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProjectionBatch {
    /// The projection's cursor name, 1 to [`MAX_PROJECTION_NAME_BYTES`] bytes.
    pub projection: String,
    /// Wallets whose row this block changed; inserted or replaced whole. Each id at most once.
    pub wallets: Vec<WalletRow>,
    /// History entries of this block, in ledger order (their ids follow this order).
    pub history: Vec<HistoryRow>,
    /// The supply figures after this block, for projections that keep them.
    pub supply: Option<SupplyRow>,
}

/// The projected state of one wallet. Codes are the ledger's, opaque here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WalletRow {
    pub wallet_id: [u8; 16],
    pub bank_id: u64,
    pub class: u8,
    pub tier: u8,
    pub status: u8,
    pub balance_minor: u64,
    /// An opaque reference to the holder's off-ledger record, at most [`MAX_HOLDER_REF_BYTES`].
    pub holder_ref: Option<Vec<u8>>,
}

/// A wallet row as read back, with the height of the block that last changed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WalletEntry {
    pub updated_height: u64,
    pub row: WalletRow,
}

/// Which way money moved for the wallet of a [`HistoryRow`]. The codes are stored: frozen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Credit = 1,
    Debit = 2,
}

impl Direction {
    fn code(self) -> i16 {
        match self {
            Direction::Credit => 1,
            Direction::Debit => 2,
        }
    }

    fn from_code(code: i16) -> Result<Direction, StoreError> {
        match code {
            1 => Ok(Direction::Credit),
            2 => Ok(Direction::Debit),
            other => Err(Column::new("wallet_history", "direction")
                .corrupt(format!("unknown direction code {other}"))),
        }
    }
}

/// One movement of money seen from one wallet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryRow {
    pub tx_id: [u8; 16],
    pub wallet_id: [u8; 16],
    pub counterparty_wallet_id: Option<[u8; 16]>,
    /// Always non-negative; `direction` gives the sign.
    pub amount_minor: u64,
    pub direction: Direction,
    /// The ledger's transaction kind code.
    pub kind: u8,
    pub timestamp_ms: u64,
}

/// A history row as read back: its id (the pagination cursor) and block height.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryEntry {
    pub id: u64,
    pub height: u64,
    pub row: HistoryRow,
}

/// Supply figures of one block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SupplyRow {
    /// Minted in this block.
    pub minted_minor: u64,
    /// Burned in this block.
    pub burned_minor: u64,
    /// Outstanding after this block.
    pub outstanding_minor: u64,
    pub timestamp_ms: u64,
}

/// What [`Store::write_projection`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProjectionOutcome {
    /// The rows were written and the cursor moved to the batch's height.
    Written,
    /// The projection's cursor was already at or past the height: nothing was written.
    AlreadyProjected { cursor: u64 },
}

#[derive(Insertable)]
#[diesel(table_name = wallets)]
// None is bound as NULL, not DEFAULT: SQLite then takes many rows in one statement.
#[diesel(treat_none_as_default_value = false)]
// Owned values: only a statement over owned ('static) row types has an id the connection can
// cache it under.
struct NewWallet {
    wallet_id: Vec<u8>,
    bank_id: i64,
    class: i16,
    tier: i16,
    status: i16,
    balance_minor: i64,
    holder_ref: Option<Vec<u8>>,
    updated_height: i64,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = wallets)]
struct WalletRecord {
    wallet_id: Vec<u8>,
    bank_id: i64,
    class: i16,
    tier: i16,
    status: i16,
    balance_minor: i64,
    holder_ref: Option<Vec<u8>>,
    updated_height: i64,
}

#[derive(Insertable)]
#[diesel(table_name = wallet_history)]
// None is bound as NULL, not DEFAULT: SQLite then takes many rows in one statement.
#[diesel(treat_none_as_default_value = false)]
struct NewHistory {
    height: i64,
    tx_id: Vec<u8>,
    wallet_id: Vec<u8>,
    counterparty_wallet_id: Option<Vec<u8>>,
    amount_minor: i64,
    direction: i16,
    kind: i16,
    timestamp_ms: i64,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = wallet_history)]
pub(crate) struct HistoryRecord {
    id: i64,
    height: i64,
    tx_id: Vec<u8>,
    wallet_id: Vec<u8>,
    counterparty_wallet_id: Option<Vec<u8>>,
    amount_minor: i64,
    direction: i16,
    kind: i16,
    timestamp_ms: i64,
}

#[derive(Insertable, Queryable, Selectable)]
#[diesel(table_name = supply_by_height)]
struct SupplyRecord {
    height: i64,
    minted_minor: i64,
    burned_minor: i64,
    outstanding_minor: i64,
    timestamp_ms: i64,
}

/// A batch checked against its limits and converted to column values.
struct Records {
    wallets: Vec<NewWallet>,
    history: Vec<NewHistory>,
    supply: Option<SupplyRecord>,
}

fn check_limit(what: &'static str, len: usize, max: u32) -> Result<(), StoreError> {
    let len = count_u64(len);
    if len > u64::from(max) {
        return Err(StoreError::BatchTooLarge { what, len, max: u64::from(max) });
    }
    Ok(())
}

fn check_batch(batch: &ProjectionBatch) -> Result<(), StoreError> {
    let name_bytes = count_u64(batch.projection.len());
    if name_bytes == 0 || name_bytes > u64::from(MAX_PROJECTION_NAME_BYTES) {
        return Err(StoreError::InvalidBatch { reason: "projection name must be 1 to 64 bytes" });
    }
    check_limit("wallet rows", batch.wallets.len(), MAX_PROJECTION_WALLETS)?;
    check_limit("history rows", batch.history.len(), MAX_PROJECTION_HISTORY_ROWS)?;
    let mut seen = BTreeSet::new();
    for wallet in &batch.wallets {
        if !seen.insert(wallet.wallet_id) {
            return Err(StoreError::InvalidBatch { reason: "a wallet appears twice" });
        }
        let holder_ref_bytes = wallet.holder_ref.as_ref().map_or(0, |r| count_u64(r.len()));
        if holder_ref_bytes > u64::from(MAX_HOLDER_REF_BYTES) {
            return Err(StoreError::InvalidBatch { reason: "holder_ref longer than 64 bytes" });
        }
    }
    Ok(())
}

fn new_wallet(row: &WalletRow, height: i64) -> Result<NewWallet, StoreError> {
    Ok(NewWallet {
        wallet_id: row.wallet_id.to_vec(),
        bank_id: to_i64("bank_id", row.bank_id)?,
        class: i16::from(row.class),
        tier: i16::from(row.tier),
        status: i16::from(row.status),
        balance_minor: to_i64("balance_minor", row.balance_minor)?,
        holder_ref: row.holder_ref.clone(),
        updated_height: height,
    })
}

fn new_history(row: &HistoryRow, height: i64) -> Result<NewHistory, StoreError> {
    Ok(NewHistory {
        height,
        tx_id: row.tx_id.to_vec(),
        wallet_id: row.wallet_id.to_vec(),
        counterparty_wallet_id: row.counterparty_wallet_id.map(|id| id.to_vec()),
        amount_minor: to_i64("amount_minor", row.amount_minor)?,
        direction: row.direction.code(),
        kind: i16::from(row.kind),
        timestamp_ms: to_i64("timestamp_ms", row.timestamp_ms)?,
    })
}

fn supply_record(row: &SupplyRow, height: i64) -> Result<SupplyRecord, StoreError> {
    Ok(SupplyRecord {
        height,
        minted_minor: to_i64("minted_minor", row.minted_minor)?,
        burned_minor: to_i64("burned_minor", row.burned_minor)?,
        outstanding_minor: to_i64("outstanding_minor", row.outstanding_minor)?,
        timestamp_ms: to_i64("timestamp_ms", row.timestamp_ms)?,
    })
}

fn records(batch: &ProjectionBatch, height: i64) -> Result<Records, StoreError> {
    check_batch(batch)?;
    Ok(Records {
        wallets: batch
            .wallets
            .iter()
            .map(|row| new_wallet(row, height))
            .collect::<Result<_, _>>()?,
        history: batch
            .history
            .iter()
            .map(|row| new_history(row, height))
            .collect::<Result<_, _>>()?,
        supply: batch.supply.as_ref().map(|row| supply_record(row, height)).transpose()?,
    })
}

fn cursor(conn: &mut AnyConnection, name: &str) -> Result<u64, StoreError> {
    let height: Option<i64> = projection_cursor::table
        .select(projection_cursor::height)
        .filter(projection_cursor::name.eq(name))
        .first(conn)
        .optional()?;
    height.map_or(Ok(0), |height| Column::new("projection_cursor", "height").u64(height))
}

/// Inside the projection transaction: every row of the block, then the cursor.
fn write_records(
    conn: &mut AnyConnection,
    name: &str,
    height: i64,
    records: &Records,
) -> Result<(), StoreError> {
    // MultiConnection's common backend has no ON CONFLICT: the upserts run on the concrete
    // connection, with the same query text for both.
    // A wallet's bank and class never change (the ledger has no transaction that changes
    // them), so they are written when the row is inserted and left out of the update: naming
    // `bank_id` there would make SQLite rewrite the (bank_id, wallet_id) index entry on every
    // balance change.
    on_backend!(conn, conn => {
        // Full chunks go in as fixed-size arrays, whose statements the connection prepares
        // once and keeps (a statement over a slice has a new shape each time, so it was
        // parsed again for every chunk of every block); only the tail is prepared anew.
        macro_rules! upsert_wallets {
            ($rows:expr) => {
                diesel::insert_into(wallets::table)
                    .values($rows)
                    .on_conflict(wallets::wallet_id)
                    .do_update()
                    .set((
                        wallets::tier.eq(excluded(wallets::tier)),
                        wallets::status.eq(excluded(wallets::status)),
                        wallets::balance_minor.eq(excluded(wallets::balance_minor)),
                        wallets::holder_ref.eq(excluded(wallets::holder_ref)),
                        wallets::updated_height.eq(excluded(wallets::updated_height)),
                    ))
                    .execute(conn)?
            };
        }
        for chunk in records.wallets.chunks(INSERT_CHUNK_ROWS) {
            match <&[NewWallet; INSERT_CHUNK_ROWS]>::try_from(chunk) {
                Ok(rows) => upsert_wallets!(rows),
                Err(_) => upsert_wallets!(chunk),
            };
        }
        for chunk in records.history.chunks(INSERT_CHUNK_ROWS) {
            match <&[NewHistory; INSERT_CHUNK_ROWS]>::try_from(chunk) {
                Ok(rows) => diesel::insert_into(wallet_history::table).values(rows).execute(conn)?,
                Err(_) => diesel::insert_into(wallet_history::table).values(chunk).execute(conn)?,
            };
        }
        if let Some(supply) = &records.supply {
            diesel::insert_into(supply_by_height::table).values(supply).execute(conn)?;
        }
        diesel::insert_into(projection_cursor::table)
            .values((projection_cursor::name.eq(name), projection_cursor::height.eq(height)))
            .on_conflict(projection_cursor::name)
            .do_update()
            .set(projection_cursor::height.eq(height))
            .execute(conn)?;
    });
    Ok(())
}

impl TryFrom<WalletRecord> for WalletEntry {
    type Error = StoreError;

    fn try_from(record: WalletRecord) -> Result<WalletEntry, StoreError> {
        let column = |name| Column::new("wallets", name);
        Ok(WalletEntry {
            updated_height: column("updated_height").u64(record.updated_height)?,
            row: WalletRow {
                wallet_id: column("wallet_id").array(&record.wallet_id)?,
                bank_id: column("bank_id").u64(record.bank_id)?,
                class: column("class").u8(record.class)?,
                tier: column("tier").u8(record.tier)?,
                status: column("status").u8(record.status)?,
                balance_minor: column("balance_minor").u64(record.balance_minor)?,
                holder_ref: record.holder_ref,
            },
        })
    }
}

impl TryFrom<HistoryRecord> for HistoryEntry {
    type Error = StoreError;

    fn try_from(record: HistoryRecord) -> Result<HistoryEntry, StoreError> {
        let column = |name| Column::new("wallet_history", name);
        let counterparty = record.counterparty_wallet_id.as_deref();
        Ok(HistoryEntry {
            id: column("id").u64(record.id)?,
            height: column("height").u64(record.height)?,
            row: HistoryRow {
                tx_id: column("tx_id").array(&record.tx_id)?,
                wallet_id: column("wallet_id").array(&record.wallet_id)?,
                counterparty_wallet_id: counterparty
                    .map(|id| column("counterparty_wallet_id").array(id))
                    .transpose()?,
                amount_minor: column("amount_minor").u64(record.amount_minor)?,
                direction: Direction::from_code(record.direction)?,
                kind: column("kind").u8(record.kind)?,
                timestamp_ms: column("timestamp_ms").u64(record.timestamp_ms)?,
            },
        })
    }
}

impl TryFrom<SupplyRecord> for SupplyRow {
    type Error = StoreError;

    fn try_from(record: SupplyRecord) -> Result<SupplyRow, StoreError> {
        let column = |name| Column::new("supply_by_height", name);
        Ok(SupplyRow {
            minted_minor: column("minted_minor").u64(record.minted_minor)?,
            burned_minor: column("burned_minor").u64(record.burned_minor)?,
            outstanding_minor: column("outstanding_minor").u64(record.outstanding_minor)?,
            timestamp_ms: column("timestamp_ms").u64(record.timestamp_ms)?,
        })
    }
}

impl Store {
    /// The height up to which the projection `name` has been written; 0 if never.
    pub fn projection_height(&mut self, name: &str) -> Result<u64, StoreError> {
        cursor(&mut self.conn, name)
    }

    /// Writes one block's rows for the projection `batch.projection` and moves its cursor to
    /// `height`, all in one transaction: either every row and the cursor are written, or none.
    ///
    /// `height` must be at least 1. If the cursor is already at or past `height` nothing is
    /// written ([`ProjectionOutcome::AlreadyProjected`]): a block delivered twice is projected
    /// once. Heights may skip blocks that hold nothing for this projection. A batch over its
    /// limits is [`StoreError::BatchTooLarge`]; a malformed one [`StoreError::InvalidBatch`].
    pub fn write_projection(
        &mut self,
        height: u64,
        batch: &ProjectionBatch,
    ) -> Result<ProjectionOutcome, StoreError> {
        if height == 0 {
            return Err(StoreError::InvalidBatch { reason: "height 0 is genesis" });
        }
        let key = to_i64("height", height)?;
        let records = records(batch, key)?;
        self.conn.write_transaction(|conn| {
            let cursor = cursor(conn, &batch.projection)?;
            if height <= cursor {
                return Ok(ProjectionOutcome::AlreadyProjected { cursor });
            }
            write_records(conn, &batch.projection, key, &records)?;
            Ok(ProjectionOutcome::Written)
        })
    }

    /// The projected row of one wallet, if any.
    pub fn wallet(&mut self, wallet_id: &[u8; 16]) -> Result<Option<WalletEntry>, StoreError> {
        let record: Option<WalletRecord> = wallets::table
            .select(WalletRecord::as_select())
            .filter(wallets::wallet_id.eq(wallet_id.as_slice()))
            .first(&mut self.conn)
            .optional()?;
        record.map(WalletEntry::try_from).transpose()
    }

    /// One page of a wallet's history, newest first: up to `limit` (at most
    /// [`MAX_HISTORY_PAGE`]) entries with an id below `before_id` (all when `None`). Pass the
    /// last entry's id as the next `before_id`.
    pub fn wallet_history(
        &mut self,
        wallet_id: &[u8; 16],
        before_id: Option<u64>,
        limit: u32,
    ) -> Result<Vec<HistoryEntry>, StoreError> {
        let before = before_id.map(|id| to_i64("before_id", id)).transpose()?.unwrap_or(i64::MAX);
        let records: Vec<HistoryRecord> = wallet_history::table
            .select(HistoryRecord::as_select())
            .filter(wallet_history::wallet_id.eq(wallet_id.as_slice()))
            .filter(wallet_history::id.lt(before))
            .order(wallet_history::id.desc())
            .limit(i64::from(limit.min(MAX_HISTORY_PAGE)))
            .load(&mut self.conn)?;
        records.into_iter().map(HistoryEntry::try_from).collect()
    }

    /// The supply figures of the block at `height`, if projected.
    pub fn supply_at(&mut self, height: u64) -> Result<Option<SupplyRow>, StoreError> {
        let key = to_i64("height", height)?;
        let record: Option<SupplyRecord> = supply_by_height::table
            .select(SupplyRecord::as_select())
            .filter(supply_by_height::height.eq(key))
            .first(&mut self.conn)
            .optional()?;
        record.map(SupplyRow::try_from).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch() -> ProjectionBatch {
        ProjectionBatch { projection: "bank-1".to_owned(), ..ProjectionBatch::default() }
    }

    fn wallet(id: u8) -> WalletRow {
        WalletRow {
            wallet_id: [id; 16],
            bank_id: 1,
            class: 0,
            tier: 1,
            status: 0,
            balance_minor: 10,
            holder_ref: None,
        }
    }

    #[test]
    fn batches_are_checked_before_any_write() {
        assert!(check_batch(&batch()).is_ok());
        let unnamed = ProjectionBatch::default();
        assert!(matches!(check_batch(&unnamed), Err(StoreError::InvalidBatch { .. })));
        let twice = ProjectionBatch { wallets: vec![wallet(1), wallet(1)], ..batch() };
        assert!(matches!(check_batch(&twice), Err(StoreError::InvalidBatch { .. })));
        let long_ref = WalletRow { holder_ref: Some(vec![0; 65]), ..wallet(1) };
        let long = ProjectionBatch { wallets: vec![long_ref], ..batch() };
        assert!(matches!(check_batch(&long), Err(StoreError::InvalidBatch { .. })));
        let too_many = ProjectionBatch {
            wallets: (0..=MAX_PROJECTION_WALLETS)
                .map(|i| WalletRow { wallet_id: u128::from(i).to_be_bytes(), ..wallet(0) })
                .collect(),
            ..batch()
        };
        assert!(matches!(
            check_batch(&too_many),
            Err(StoreError::BatchTooLarge { what: "wallet rows", len: 32_769, max: 32_768 })
        ));
    }

    #[test]
    fn direction_codes_are_frozen() {
        assert_eq!(Direction::Credit.code(), 1);
        assert_eq!(Direction::Debit.code(), 2);
        assert_eq!(Direction::from_code(1).unwrap(), Direction::Credit);
        assert_eq!(Direction::from_code(2).unwrap(), Direction::Debit);
        assert!(matches!(Direction::from_code(0), Err(StoreError::CorruptRow { .. })));
    }
}
