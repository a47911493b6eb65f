//! The central bank service's audit log (`cb_audit`): append-only and hash-chained.
//!
//! # Chain
//! Entries are numbered 1, 2, 3, ... with no gap (`seq`). Each stores the hash of the entry
//! before it (`prev_hash`, 32 zero bytes for entry 1) and its own [`audit_hash`]: SHA-256 under
//! [`AUDIT_HASH_DOMAIN`] over `seq` and `at_ms` (8-byte big-endian), `actor`, `action`, `target`,
//! `outcome`, `details` (UTF-8) and `prev_hash`, each part length-prefixed by
//! [`cbdc_ledger::crypto::hash_parts`]. Changing, removing or reordering any stored entry breaks
//! the chain at that entry or the next, which [`Store::verify_audit`] reports.
//!
//! What the chain cannot show is the loss of the newest entries: a log cut short is still a
//! valid chain. [`AuditVerification::Intact`] returns the head hash so that a caller can compare
//! it with a head it recorded elsewhere (a report, a ledger memo).
//!
//! # Appending
//! [`Store::append_audit`] reads the last entry and inserts the next in one write transaction,
//! which on SQLite begins `IMMEDIATE` and on PostgreSQL takes `cb_audit` in
//! `SHARE ROW EXCLUSIVE` mode (it conflicts with itself and with other writers, not with
//! readers): appends from any number of connections queue, and each sees the one before.
//! Should another writer still take the sequence number (the primary key refuses the second
//! row), the append is retried, at most [`AUDIT_APPEND_ATTEMPTS`] times.
//!
//! # Never
//! Rows are never updated or deleted here, and the database refuses it too (triggers).

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};

use cbdc_ledger::crypto::hash_parts;

use crate::connection::AnyConnection;
use crate::convert::{Column, check_len, to_i64};
use crate::schema::cb_audit;
use crate::{Store, StoreError};

/// The hashing-domain tag of audit entries (STYLE.md 7).
pub const AUDIT_HASH_DOMAIN: &[u8] = b"cbdc.v1.audit";
/// The longest actor (who acted: a username, `system`, ...), in bytes (at least one). The same
/// bound holds for a request's `created_by` and an approval's `approved_by`.
pub const MAX_ACTOR_BYTES: u32 = 128;
/// The longest [`AuditEntry::action`], in bytes (at least one).
pub const MAX_AUDIT_ACTION_BYTES: u32 = 64;
/// The longest [`AuditEntry::target`], in bytes (may be empty).
pub const MAX_AUDIT_TARGET_BYTES: u32 = 256;
/// The longest [`AuditEntry::outcome`], in bytes (at least one).
pub const MAX_AUDIT_OUTCOME_BYTES: u32 = 64;
/// The longest [`AuditEntry::details`], in bytes (16 KiB; may be empty).
pub const MAX_AUDIT_DETAILS_BYTES: u32 = 16_384;
/// The most entries one [`Store::audit`] call returns.
pub const MAX_AUDIT_PAGE: u32 = 1_000;
/// How many times [`Store::append_audit`] tries before [`StoreError::AuditContention`].
pub const AUDIT_APPEND_ATTEMPTS: u32 = 8;

/// Entries per page while verifying: at most ~4.5 MB of rows in memory at once.
const VERIFY_PAGE: u32 = 256;

/// Something that happened, to append to the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEntry {
    pub at_ms: u64,
    /// Who acted, 1 to [`MAX_ACTOR_BYTES`].
    pub actor: String,
    /// What was done, e.g. `request.approve`; 1 to [`MAX_AUDIT_ACTION_BYTES`].
    pub action: String,
    /// What it was done to, e.g. a request id; at most [`MAX_AUDIT_TARGET_BYTES`].
    pub target: String,
    /// How it ended, e.g. `ok`, `denied`; 1 to [`MAX_AUDIT_OUTCOME_BYTES`].
    pub outcome: String,
    /// JSON by convention, opaque here; at most [`MAX_AUDIT_DETAILS_BYTES`].
    pub details: String,
}

/// An entry as stored, with its place in the chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditRecord {
    /// 1 for the first entry.
    pub seq: u64,
    pub at_ms: u64,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub outcome: String,
    pub details: String,
    /// The hash of entry `seq - 1`; 32 zero bytes for entry 1.
    pub prev_hash: [u8; 32],
    /// [`audit_hash`] of this entry.
    pub hash: [u8; 32],
}

/// What [`Store::verify_audit`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuditVerification {
    /// Every entry links to the one before and hashes to its stored hash.
    Intact {
        /// How many entries were checked (the highest `seq`).
        entries: u64,
        /// The hash of the last entry; 32 zero bytes for an empty log.
        head: [u8; 32],
    },
    /// The first entry that does not check, and why: `gap in seq` (entry `seq` is missing),
    /// `prev_hash mismatch`, `hash mismatch` or `malformed row`.
    Broken { seq: u64, reason: &'static str },
}

/// The hash of an entry at `seq` following `prev_hash`: see the module documentation.
pub fn audit_hash(seq: u64, entry: &AuditEntry, prev_hash: &[u8; 32]) -> [u8; 32] {
    let fields = [&entry.actor, &entry.action, &entry.target, &entry.outcome, &entry.details];
    chain_hash(seq, entry.at_ms, fields.map(String::as_str), prev_hash)
}

fn chain_hash(seq: u64, at_ms: u64, text: [&str; 5], prev_hash: &[u8; 32]) -> [u8; 32] {
    let [actor, action, target, outcome, details] = text.map(str::as_bytes);
    let (seq, at_ms) = (seq.to_be_bytes(), at_ms.to_be_bytes());
    hash_parts(
        AUDIT_HASH_DOMAIN,
        &[&seq, &at_ms, actor, action, target, outcome, details, prev_hash],
    )
}

impl AuditRecord {
    /// The hash this record's fields produce, to compare with the stored `hash`.
    fn computed_hash(&self) -> [u8; 32] {
        let text = [&self.actor, &self.action, &self.target, &self.outcome, &self.details];
        chain_hash(self.seq, self.at_ms, text.map(String::as_str), &self.prev_hash)
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = cb_audit)]
struct AuditRow {
    seq: i64,
    at_ms: i64,
    actor: String,
    action: String,
    target: String,
    outcome: String,
    details: String,
    prev_hash: Vec<u8>,
    hash: Vec<u8>,
}

#[derive(Insertable)]
#[diesel(table_name = cb_audit)]
struct NewAuditRow<'a> {
    seq: i64,
    at_ms: i64,
    actor: &'a str,
    action: &'a str,
    target: &'a str,
    outcome: &'a str,
    details: &'a str,
    prev_hash: &'a [u8],
    hash: &'a [u8],
}

fn check_entry(entry: &AuditEntry) -> Result<(), StoreError> {
    let check = |field, value: &str, bounds| check_len("audit entry", field, value.len(), bounds);
    check("actor", &entry.actor, (1, MAX_ACTOR_BYTES))?;
    check("action", &entry.action, (1, MAX_AUDIT_ACTION_BYTES))?;
    check("target", &entry.target, (0, MAX_AUDIT_TARGET_BYTES))?;
    check("outcome", &entry.outcome, (1, MAX_AUDIT_OUTCOME_BYTES))?;
    check("details", &entry.details, (0, MAX_AUDIT_DETAILS_BYTES))
}

impl TryFrom<AuditRow> for AuditRecord {
    type Error = StoreError;

    fn try_from(row: AuditRow) -> Result<AuditRecord, StoreError> {
        let column = |name| Column::new("cb_audit", name);
        Ok(AuditRecord {
            seq: column("seq").u64(row.seq)?,
            at_ms: column("at_ms").u64(row.at_ms)?,
            actor: row.actor,
            action: row.action,
            target: row.target,
            outcome: row.outcome,
            details: row.details,
            prev_hash: column("prev_hash").array(&row.prev_hash)?,
            hash: column("hash").array(&row.hash)?,
        })
    }
}

/// Inside the append transaction: makes every other appender wait until this one commits.
fn lock_for_append(conn: &mut AnyConnection) -> Result<(), StoreError> {
    match conn {
        // SHARE ROW EXCLUSIVE conflicts with itself and with INSERT's ROW EXCLUSIVE, not with
        // the ACCESS SHARE of readers. Held until the transaction ends.
        AnyConnection::Postgres(conn) => {
            conn.batch_execute("LOCK TABLE cb_audit IN SHARE ROW EXCLUSIVE MODE")?;
        }
        // The transaction began IMMEDIATE: this connection already holds the write lock.
        AnyConnection::Sqlite(_) => {}
    }
    Ok(())
}

/// Inside the append transaction: the next entry after the stored last one.
fn append_next(conn: &mut AnyConnection, entry: &AuditEntry) -> Result<AuditRecord, StoreError> {
    lock_for_append(conn)?;
    let last: Option<(i64, Vec<u8>)> = cb_audit::table
        .select((cb_audit::seq, cb_audit::hash))
        .order(cb_audit::seq.desc())
        .first(conn)
        .optional()?;
    let (last_seq, prev_hash) = match last {
        None => (0, [0; 32]),
        Some((seq, hash)) => (
            Column::new("cb_audit", "seq").u64(seq)?,
            Column::new("cb_audit", "hash").array(&hash)?,
        ),
    };
    let seq = last_seq
        .checked_add(1)
        .ok_or(StoreError::ValueOutOfRange { field: "seq", value: last_seq })?;
    let hash = audit_hash(seq, entry, &prev_hash);
    diesel::insert_into(cb_audit::table)
        .values(NewAuditRow {
            seq: to_i64("seq", seq)?,
            at_ms: to_i64("at_ms", entry.at_ms)?,
            actor: &entry.actor,
            action: &entry.action,
            target: &entry.target,
            outcome: &entry.outcome,
            details: &entry.details,
            prev_hash: &prev_hash,
            hash: &hash,
        })
        .execute(conn)?;
    let AuditEntry { at_ms, actor, action, target, outcome, details } = entry.clone();
    Ok(AuditRecord { seq, at_ms, actor, action, target, outcome, details, prev_hash, hash })
}

/// Runs `attempt` until it does not fail on a unique violation, at most `attempts` times.
fn retry_on_unique_violation<T>(
    attempts: u32,
    mut attempt: impl FnMut() -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    for _ in 0..attempts {
        match attempt() {
            Err(StoreError::Query(DieselError::DatabaseError(
                DatabaseErrorKind::UniqueViolation,
                _,
            ))) => continue,
            outcome => return outcome,
        }
    }
    Err(StoreError::AuditContention { attempts })
}

/// Checks one stored row against its expected place in the chain; its hash if it holds.
fn check_link(row: AuditRow, seq: u64, prev_hash: &[u8; 32]) -> Result<[u8; 32], &'static str> {
    // Rows are read in seq order starting above seq - 1: a different seq means seq is missing.
    if row.seq != i64::try_from(seq).map_err(|_| "malformed row")? {
        return Err("gap in seq");
    }
    let record = AuditRecord::try_from(row).map_err(|_| "malformed row")?;
    if record.prev_hash != *prev_hash {
        return Err("prev_hash mismatch");
    }
    if record.computed_hash() != record.hash {
        return Err("hash mismatch");
    }
    Ok(record.hash)
}

impl Store {
    /// Appends an entry as the next in the chain and returns it as stored.
    ///
    /// A field out of bounds is [`StoreError::FieldLength`] and nothing is written. Concurrent
    /// appends from other connections queue (see the module documentation); losing the race for
    /// the next `seq` [`AUDIT_APPEND_ATTEMPTS`] times is [`StoreError::AuditContention`].
    pub fn append_audit(&mut self, entry: &AuditEntry) -> Result<AuditRecord, StoreError> {
        check_entry(entry)?;
        to_i64("at_ms", entry.at_ms)?;
        let conn = &mut self.conn;
        retry_on_unique_violation(AUDIT_APPEND_ATTEMPTS, || {
            conn.write_transaction(|conn| append_next(conn, entry))
        })
    }

    /// Entries with `seq > after_seq`, oldest first, at most `min(limit, MAX_AUDIT_PAGE)`. Page
    /// on with the last `seq` returned.
    pub fn audit(&mut self, after_seq: u64, limit: u32) -> Result<Vec<AuditRecord>, StoreError> {
        let rows = audit_page(&mut self.conn, after_seq, limit.min(MAX_AUDIT_PAGE))?;
        rows.into_iter().map(AuditRecord::try_from).collect()
    }

    /// Walks the whole log in pages and checks every link: each `seq` follows the one before,
    /// each `prev_hash` is the previous entry's hash, each hash is [`audit_hash`] of its entry.
    ///
    /// The first failure is [`AuditVerification::Broken`]; a query that fails is an `Err`.
    pub fn verify_audit(&mut self) -> Result<AuditVerification, StoreError> {
        let mut verified: u64 = 0;
        let mut head = [0; 32];
        loop {
            let rows = audit_page(&mut self.conn, verified, VERIFY_PAGE)?;
            if rows.is_empty() {
                return Ok(AuditVerification::Intact { entries: verified, head });
            }
            for row in rows {
                let seq = verified
                    .checked_add(1)
                    .ok_or(StoreError::ValueOutOfRange { field: "seq", value: verified })?;
                match check_link(row, seq, &head) {
                    Ok(hash) => head = hash,
                    Err(reason) => return Ok(AuditVerification::Broken { seq, reason }),
                }
                verified = seq;
            }
        }
    }
}

fn audit_page(
    conn: &mut AnyConnection,
    after_seq: u64,
    limit: u32,
) -> Result<Vec<AuditRow>, StoreError> {
    Ok(cb_audit::table
        .select(AuditRow::as_select())
        .filter(cb_audit::seq.gt(to_i64("after_seq", after_seq)?))
        .order(cb_audit::seq.asc())
        .limit(i64::from(limit))
        .load(conn)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> AuditEntry {
        AuditEntry {
            at_ms: 1_700_000_000_000,
            actor: "alice".to_owned(),
            action: "request.approve".to_owned(),
            target: "00112233445566778899aabbccddeeff".to_owned(),
            outcome: "ok".to_owned(),
            details: r#"{"kind":"mint"}"#.to_owned(),
        }
    }

    fn hex(bytes: &[u8]) -> String {
        crate::convert::hex(bytes)
    }

    /// Changing these hashes breaks every stored audit chain: it must be a deliberate act. They
    /// were checked against an independent implementation of the encoding (Python `hashlib`).
    #[test]
    fn the_audit_hash_is_frozen() {
        assert_eq!(
            hex(&audit_hash(1, &entry(), &[0; 32])),
            "784fcef56da0bda939bd62402ff0ffc16c9fdd0789b79f53207cd1c85ad26abf",
            "entry 1 after the zero hash"
        );
        assert_eq!(
            hex(&audit_hash(2, &entry(), &[0xab; 32])),
            "ea93450aeb48c0d62b0914d33293f62efca9c9d7dcb313f9932dd20ffc4b6ca0"
        );
    }

    #[test]
    fn every_field_is_covered_and_field_boundaries_are_unambiguous() {
        let base = audit_hash(7, &entry(), &[1; 32]);
        let variants = [
            AuditEntry { at_ms: 1, ..entry() },
            AuditEntry { actor: "bob".to_owned(), ..entry() },
            AuditEntry { action: "request.reject".to_owned(), ..entry() },
            AuditEntry { target: String::new(), ..entry() },
            AuditEntry { outcome: "denied".to_owned(), ..entry() },
            AuditEntry { details: "{}".to_owned(), ..entry() },
            // The same bytes, split differently between two fields.
            AuditEntry {
                actor: "alicer".to_owned(),
                action: "equest.approve".to_owned(),
                ..entry()
            },
        ];
        for variant in &variants {
            assert_ne!(audit_hash(7, variant, &[1; 32]), base, "{variant:?}");
        }
        assert_ne!(audit_hash(8, &entry(), &[1; 32]), base, "seq");
        assert_ne!(audit_hash(7, &entry(), &[2; 32]), base, "prev_hash");
        assert_eq!(audit_hash(7, &entry(), &[1; 32]), base, "deterministic");
    }

    #[test]
    fn a_record_recomputes_the_hash_it_was_stored_with() {
        let prev_hash = [3; 32];
        let hash = audit_hash(5, &entry(), &prev_hash);
        let AuditEntry { at_ms, actor, action, target, outcome, details } = entry();
        let record =
            AuditRecord { seq: 5, at_ms, actor, action, target, outcome, details, prev_hash, hash };
        assert_eq!(record.computed_hash(), hash);
        assert_ne!(AuditRecord { seq: 6, ..record.clone() }.computed_hash(), hash);
    }

    fn unique_violation() -> StoreError {
        struct Info;
        impl diesel::result::DatabaseErrorInformation for Info {
            fn message(&self) -> &str {
                "duplicate key"
            }
            fn details(&self) -> Option<&str> {
                None
            }
            fn hint(&self) -> Option<&str> {
                None
            }
            fn table_name(&self) -> Option<&str> {
                None
            }
            fn column_name(&self) -> Option<&str> {
                None
            }
            fn constraint_name(&self) -> Option<&str> {
                None
            }
            fn statement_position(&self) -> Option<i32> {
                None
            }
        }
        StoreError::Query(DieselError::DatabaseError(
            DatabaseErrorKind::UniqueViolation,
            Box::new(Info),
        ))
    }

    #[test]
    fn appends_are_retried_on_a_taken_seq_only_and_boundedly() {
        let mut calls = 0;
        let outcome = retry_on_unique_violation(8, || {
            calls += 1;
            if calls < 3 { Err(unique_violation()) } else { Ok(calls) }
        });
        assert_eq!(outcome.unwrap(), 3);

        let mut calls = 0;
        let outcome: Result<(), _> = retry_on_unique_violation(8, || {
            calls += 1;
            Err(unique_violation())
        });
        assert!(matches!(outcome, Err(StoreError::AuditContention { attempts: 8 })));
        assert_eq!(calls, 8);

        let mut calls = 0;
        let outcome: Result<(), _> = retry_on_unique_violation(8, || {
            calls += 1;
            Err(StoreError::ValueOutOfRange { field: "seq", value: 0 })
        });
        assert!(matches!(outcome, Err(StoreError::ValueOutOfRange { .. })), "other errors pass");
        assert_eq!(calls, 1);
    }

    #[test]
    fn entry_bounds_are_checked() {
        assert!(check_entry(&entry()).is_ok());
        let empty_optional =
            AuditEntry { target: String::new(), details: String::new(), ..entry() };
        assert!(check_entry(&empty_optional).is_ok());
        for (field, bad) in [
            ("actor", AuditEntry { actor: String::new(), ..entry() }),
            ("action", AuditEntry { action: String::new(), ..entry() }),
            ("outcome", AuditEntry { outcome: String::new(), ..entry() }),
            ("target", AuditEntry { target: "t".repeat(257), ..entry() }),
        ] {
            assert!(
                matches!(check_entry(&bad), Err(StoreError::FieldLength { field: f, .. }) if f == field),
                "{field}"
            );
        }
    }
}
