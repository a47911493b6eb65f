//! Validator-set epoch ends: the height of the last block of each finished epoch.
//!
//! An epoch ends once. The same `(epoch, height)` again is a retry and succeeds; a different
//! height for a recorded epoch is [`StoreError::ConflictingEpochEnd`]: the node would be on two
//! chains, which the caller must treat as fatal. The store does not derive epoch boundaries; the
//! consensus glue does.

use diesel::prelude::*;

use crate::connection::on_backend;
use crate::convert::{Column, to_i64};
use crate::schema::epoch_ends;
use crate::{Store, StoreError};

impl Store {
    /// Records that `epoch` ended with the block at `height`.
    ///
    /// The same `(epoch, height)` again is `Ok`; a different height for a recorded epoch is
    /// [`StoreError::ConflictingEpochEnd`] and leaves the stored height unchanged.
    pub fn put_epoch_end(&mut self, epoch: u64, height: u64) -> Result<(), StoreError> {
        let key = to_i64("epoch", epoch)?;
        let value = to_i64("height", height)?;
        self.conn.write_transaction(|conn| {
            // Insert-then-read rather than read-then-insert: two concurrent writers of the same
            // epoch on PostgreSQL then both see the one row that won, instead of one failing on
            // the primary key.
            on_backend!(&mut *conn, conn => {
                diesel::insert_into(epoch_ends::table)
                    .values((epoch_ends::epoch.eq(key), epoch_ends::height.eq(value)))
                    .on_conflict(epoch_ends::epoch)
                    .do_nothing()
                    .execute(conn)?
            });
            let stored: i64 = epoch_ends::table
                .select(epoch_ends::height)
                .filter(epoch_ends::epoch.eq(key))
                .first(conn)?;
            let stored_height = Column::new("epoch_ends", "height").u64(stored)?;
            if stored_height == height {
                Ok(())
            } else {
                Err(StoreError::ConflictingEpochEnd { epoch, stored_height, height })
            }
        })
    }

    /// The height of the last block of `epoch`, if its end was recorded.
    pub fn epoch_end(&mut self, epoch: u64) -> Result<Option<u64>, StoreError> {
        let key = to_i64("epoch", epoch)?;
        let stored: Option<i64> = epoch_ends::table
            .select(epoch_ends::height)
            .filter(epoch_ends::epoch.eq(key))
            .first(&mut self.conn)
            .optional()?;
        stored.map(|height| Column::new("epoch_ends", "height").u64(height)).transpose()
    }
}
