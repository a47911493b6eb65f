//! Ledger snapshots: the encoded state after a stored block, newest few kept.

use diesel::prelude::*;

use crate::blocks::last_height;
use crate::connection::AnyConnection;
use crate::convert::{Column, to_i64};
use crate::schema::snapshots;
use crate::{Store, StoreError};

/// The ledger's encoded state after the stored block at `height`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredSnapshot {
    pub height: u64,
    /// The ledger's state root at `height`, to check a restore against.
    pub state_root: [u8; 32],
    /// The ledger's snapshot encoding, opaque here.
    pub data: Vec<u8>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = snapshots)]
pub(crate) struct SnapshotRecord {
    height: i64,
    state_root: Vec<u8>,
    data: Vec<u8>,
}

#[derive(Insertable)]
#[diesel(table_name = snapshots)]
struct NewSnapshot<'a> {
    height: i64,
    state_root: &'a [u8],
    data: &'a [u8],
}

impl TryFrom<SnapshotRecord> for StoredSnapshot {
    type Error = StoreError;

    fn try_from(record: SnapshotRecord) -> Result<StoredSnapshot, StoreError> {
        Ok(StoredSnapshot {
            height: Column::new("snapshots", "height").u64(record.height)?,
            state_root: Column::new("snapshots", "state_root").array(&record.state_root)?,
            data: record.data,
        })
    }
}

/// Inside the put transaction: is the snapshot new, a retry, or in conflict?
fn check_put(
    conn: &mut AnyConnection,
    snapshot: &StoredSnapshot,
    height: i64,
) -> Result<bool, StoreError> {
    let last_height = last_height(conn)?;
    if snapshot.height > last_height {
        return Err(StoreError::SnapshotAheadOfLog { height: snapshot.height, last_height });
    }
    let stored: Option<Vec<u8>> = snapshots::table
        .select(snapshots::state_root)
        .filter(snapshots::height.eq(height))
        .first(conn)
        .optional()?;
    match stored {
        None => Ok(true),
        // The ledger is deterministic: the same height must have the same state.
        Some(root) if root == snapshot.state_root => Ok(false),
        Some(_) => Err(StoreError::ConflictingSnapshot { height: snapshot.height }),
    }
}

/// Deletes all but the newest `retained` snapshots.
fn prune(conn: &mut AnyConnection, retained: u32) -> Result<(), StoreError> {
    let kept: Vec<i64> = snapshots::table
        .select(snapshots::height)
        .order(snapshots::height.desc())
        .limit(i64::from(retained.max(1)))
        .load(conn)?;
    if let Some(oldest_kept) = kept.last() {
        diesel::delete(snapshots::table.filter(snapshots::height.lt(oldest_kept))).execute(conn)?;
    }
    Ok(())
}

impl Store {
    /// Stores a snapshot of the state after the stored block at `snapshot.height` and prunes
    /// all but the newest [`crate::StoreOptions::snapshots_retained`], in one transaction.
    ///
    /// The same snapshot again is `Ok`; a different state root at a stored height is
    /// [`StoreError::ConflictingSnapshot`]; a height above the log is
    /// [`StoreError::SnapshotAheadOfLog`].
    pub fn put_snapshot(&mut self, snapshot: &StoredSnapshot) -> Result<(), StoreError> {
        let record = NewSnapshot {
            height: to_i64("height", snapshot.height)?,
            state_root: &snapshot.state_root,
            data: &snapshot.data,
        };
        let retained = self.options.snapshots_retained;
        self.conn.write_transaction(|conn| {
            if check_put(conn, snapshot, record.height)? {
                diesel::insert_into(snapshots::table).values(&record).execute(conn)?;
            }
            prune(conn, retained)
        })
    }

    /// The newest stored snapshot, if any.
    pub fn latest_snapshot(&mut self) -> Result<Option<StoredSnapshot>, StoreError> {
        let record: Option<SnapshotRecord> = snapshots::table
            .select(SnapshotRecord::as_select())
            .order(snapshots::height.desc())
            .first(&mut self.conn)
            .optional()?;
        record.map(StoredSnapshot::try_from).transpose()
    }
}
