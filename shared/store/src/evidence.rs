//! Equivocation evidence reported by consensus, kept so that it survives a restart.
//!
//! One row per offence, keyed by `(kind, validator, epoch, view)`. The same offence reported
//! again (by another peer, after a restart, with the conflicting messages in another order) is
//! stored once; the first report's proof and height are kept. Rows are never updated or deleted
//! here.
//!
//! This module decides nothing: the consensus glue verifies evidence before reporting it; the
//! store keeps what it was given, bounded and byte for byte.

use diesel::prelude::*;

use crate::connection::on_backend;
use crate::convert::{Column, count_u64, to_i64};
use crate::schema::evidence;
use crate::{Store, StoreError};

/// The longest [`EvidenceRecord::kind`], in bytes (at least one byte).
pub const MAX_EVIDENCE_KIND_BYTES: u32 = 64;
/// The largest [`EvidenceRecord::proof`], in bytes (64 KiB).
pub const MAX_EVIDENCE_PROOF_BYTES: u32 = 65_536;
/// The most rows one [`Store::evidence`] call returns.
pub const MAX_EVIDENCE_PAGE: u32 = 1_000;

/// Evidence that one validator signed two conflicting messages, as reported by consensus.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EvidenceRecord {
    /// What was signed twice, e.g. `conflicting_notarize`; 1 to [`MAX_EVIDENCE_KIND_BYTES`].
    pub kind: String,
    /// The offending validator's public key.
    pub validator: [u8; 32],
    pub epoch: u64,
    pub view: u64,
    /// The engine's encoding of the conflicting signed messages, opaque here; at most
    /// [`MAX_EVIDENCE_PROOF_BYTES`].
    pub proof: Vec<u8>,
    /// The node's finalized height when the evidence was recorded.
    pub recorded_at_height: u64,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = evidence)]
struct EvidenceRow {
    kind: String,
    validator: Vec<u8>,
    epoch: i64,
    view: i64,
    proof: Vec<u8>,
    recorded_at_height: i64,
}

#[derive(Insertable)]
#[diesel(table_name = evidence)]
struct NewEvidence<'a> {
    kind: &'a str,
    validator: &'a [u8],
    epoch: i64,
    view: i64,
    proof: &'a [u8],
    recorded_at_height: i64,
}

/// `len` bytes of `field` within `min..=max`, or [`StoreError::InvalidEvidence`].
fn check_len(field: &'static str, len: usize, min: u32, max: u32) -> Result<(), StoreError> {
    let len = count_u64(len);
    let (min, max) = (u64::from(min), u64::from(max));
    if (min..=max).contains(&len) {
        Ok(())
    } else {
        Err(StoreError::InvalidEvidence { field, len, min, max })
    }
}

impl<'a> NewEvidence<'a> {
    fn from_record(record: &'a EvidenceRecord) -> Result<NewEvidence<'a>, StoreError> {
        check_len("kind", record.kind.len(), 1, MAX_EVIDENCE_KIND_BYTES)?;
        check_len("proof", record.proof.len(), 0, MAX_EVIDENCE_PROOF_BYTES)?;
        Ok(NewEvidence {
            kind: &record.kind,
            validator: &record.validator,
            epoch: to_i64("epoch", record.epoch)?,
            view: to_i64("view", record.view)?,
            proof: &record.proof,
            recorded_at_height: to_i64("recorded_at_height", record.recorded_at_height)?,
        })
    }
}

impl TryFrom<EvidenceRow> for EvidenceRecord {
    type Error = StoreError;

    fn try_from(row: EvidenceRow) -> Result<EvidenceRecord, StoreError> {
        let column = |name| Column::new("evidence", name);
        // The bounds checked before writing hold after reading, or the row was damaged.
        if check_len("kind", row.kind.len(), 1, MAX_EVIDENCE_KIND_BYTES).is_err() {
            return Err(column("kind").corrupt(format!("{} bytes", row.kind.len())));
        }
        if check_len("proof", row.proof.len(), 0, MAX_EVIDENCE_PROOF_BYTES).is_err() {
            return Err(column("proof").corrupt(format!("{} bytes", row.proof.len())));
        }
        Ok(EvidenceRecord {
            kind: row.kind,
            validator: column("validator").array(&row.validator)?,
            epoch: column("epoch").u64(row.epoch)?,
            view: column("view").u64(row.view)?,
            proof: row.proof,
            recorded_at_height: column("recorded_at_height").u64(row.recorded_at_height)?,
        })
    }
}

impl Store {
    /// Stores a piece of evidence; `Ok(true)` if it is new, `Ok(false)` if evidence with the
    /// same `(kind, validator, epoch, view)` was already stored (that row is kept unchanged,
    /// even if this report's proof or height differ: it is the same offence).
    ///
    /// An empty or longer than [`MAX_EVIDENCE_KIND_BYTES`] `kind`, or a `proof` over
    /// [`MAX_EVIDENCE_PROOF_BYTES`], is [`StoreError::InvalidEvidence`].
    pub fn put_evidence(&mut self, record: &EvidenceRecord) -> Result<bool, StoreError> {
        let new = NewEvidence::from_record(record)?;
        // MultiConnection's common backend has no ON CONFLICT: run it on the concrete connection.
        // The conflict target is the offence key only, so any other violation is still an error.
        let inserted = on_backend!(&mut self.conn, conn => {
            diesel::insert_into(evidence::table)
                .values(&new)
                .on_conflict((evidence::kind, evidence::validator, evidence::epoch, evidence::view))
                .do_nothing()
                .execute(conn)?
        });
        Ok(inserted == 1)
    }

    /// The newest stored evidence first (by insertion order), at most
    /// `min(limit, MAX_EVIDENCE_PAGE)` rows.
    pub fn evidence(&mut self, limit: u32) -> Result<Vec<EvidenceRecord>, StoreError> {
        let rows: Vec<EvidenceRow> = evidence::table
            .select(EvidenceRow::as_select())
            .order(evidence::id.desc())
            .limit(i64::from(limit.min(MAX_EVIDENCE_PAGE)))
            .load(&mut self.conn)?;
        rows.into_iter().map(EvidenceRecord::try_from).collect()
    }

    /// How many pieces of evidence are stored.
    pub fn evidence_count(&mut self) -> Result<u64, StoreError> {
        let count: i64 = evidence::table.count().get_result(&mut self.conn)?;
        Column::new("evidence", "id").u64(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_are_checked_inclusively() {
        assert!(check_len("kind", 1, 1, 64).is_ok());
        assert!(check_len("kind", 64, 1, 64).is_ok());
        let error = check_len("kind", 65, 1, 64).unwrap_err();
        assert!(matches!(
            error,
            StoreError::InvalidEvidence { field: "kind", len: 65, min: 1, max: 64 }
        ));
        assert!(matches!(check_len("kind", 0, 1, 64), Err(StoreError::InvalidEvidence { .. })));
    }
}
