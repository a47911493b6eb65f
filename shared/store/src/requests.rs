//! Issuance and policy requests of the central bank (`cb_requests`) and their officers'
//! approvals (`cb_approvals`): the storage of maker-checker.
//!
//! A maker creates a request under an id of its choosing, which is also the id of the ledger
//! transaction; its `body` is the ledger's encoding of the transaction body officers sign.
//! Officers add approvals, one per officer key however often sent. Workers move a request
//! through its [`RequestState`]s with a compare-and-set ([`Store::update_request_state`]), so
//! two workers can never both take the same step (both submit it, say).
//!
//! The store decides nothing: which transitions are allowed, how many approvals suffice and
//! whether a signature is valid are the service's to check. It keeps the columns consistent
//! with the state (only a committed request may have a `committed_height`, only a rejected or
//! expired one a `rejection`) and bounds every field. Requests and approvals are never deleted.

use std::str::FromStr;

use diesel::prelude::*;

use crate::audit::MAX_ACTOR_BYTES;
use crate::connection::{AnyConnection, MultiBackend, on_backend};
use crate::convert::{Column, check_len, to_i64};
use crate::schema::{cb_approvals, cb_requests};
use crate::{Store, StoreError};

/// The longest [`RequestRecord::kind`], in bytes (at least one).
pub const MAX_REQUEST_KIND_BYTES: u32 = 32;
/// The longest [`RequestRecord::summary`], in bytes.
pub const MAX_REQUEST_SUMMARY_BYTES: u32 = 1_024;
/// The longest [`RequestRecord::reason`], in bytes.
pub const MAX_REQUEST_REASON_BYTES: u32 = 1_024;
/// The largest [`RequestRecord::body`], in bytes (64 KiB; at least one).
pub const MAX_REQUEST_BODY_BYTES: u32 = 65_536;
/// The longest [`RequestRecord::rejection`] (a ledger rejection code), in bytes (at least one).
pub const MAX_REJECTION_CODE_BYTES: u32 = 64;
/// The most requests one [`Store::requests`] or [`Store::requests_in_state`] call returns.
pub const MAX_REQUEST_PAGE: u32 = 200;
/// The most approvals one request may have: a transaction carries no more signatures.
pub const MAX_APPROVALS_PER_REQUEST: u32 = cbdc_ledger::tx::MAX_SIGNATURES;

/// Where a request is in its life. Stored as [`RequestState::as_str`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RequestState {
    /// Created, collecting approvals.
    Pending,
    /// Approved by enough officers, not yet sent to the ledger.
    Approved,
    /// Sent to the ledger, outcome not yet known.
    Submitted,
    /// Committed in a block (`committed_height`).
    Committed,
    /// Refused, by officers or by the ledger (`rejection` holds the ledger's code, if any).
    Rejected,
    /// Not committed before its expiry height.
    Expired,
}

impl RequestState {
    /// Every state, in life order.
    pub const ALL: [RequestState; 6] = [
        RequestState::Pending,
        RequestState::Approved,
        RequestState::Submitted,
        RequestState::Committed,
        RequestState::Rejected,
        RequestState::Expired,
    ];

    /// The stored (and API) name: `pending`, `approved`, ...
    pub const fn as_str(self) -> &'static str {
        match self {
            RequestState::Pending => "pending",
            RequestState::Approved => "approved",
            RequestState::Submitted => "submitted",
            RequestState::Committed => "committed",
            RequestState::Rejected => "rejected",
            RequestState::Expired => "expired",
        }
    }
}

impl std::fmt::Display for RequestState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not a [`RequestState`]. It does not echo the name (it may come from a user).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown request state")]
pub struct UnknownRequestState;

impl FromStr for RequestState {
    type Err = UnknownRequestState;

    fn from_str(name: &str) -> Result<RequestState, UnknownRequestState> {
        RequestState::ALL
            .into_iter()
            .find(|state| state.as_str() == name)
            .ok_or(UnknownRequestState)
    }
}

/// An issuance or policy request, every column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestRecord {
    /// Chosen by the maker; also the ledger transaction id.
    pub id: [u8; 16],
    /// e.g. `mint`, `burn`, `policy`, `admit_bank`; 1 to [`MAX_REQUEST_KIND_BYTES`].
    pub kind: String,
    /// JSON by convention, opaque here; at most [`MAX_REQUEST_SUMMARY_BYTES`].
    pub summary: String,
    /// The maker's reason; at most [`MAX_REQUEST_REASON_BYTES`].
    pub reason: String,
    /// The maker, 1 to [`MAX_ACTOR_BYTES`].
    pub created_by: String,
    pub created_at_ms: u64,
    /// The ledger's canonical encoding of the transaction body officers sign; 1 to
    /// [`MAX_REQUEST_BODY_BYTES`].
    pub body: Vec<u8>,
    /// The height after which the ledger refuses the transaction.
    pub expiry_height: u64,
    pub state: RequestState,
    /// The ledger's rejection code, only for a rejected or expired request; 1 to
    /// [`MAX_REJECTION_CODE_BYTES`].
    pub rejection: Option<String>,
    /// The committing block's height (at least 1), only for a committed request, and `None` if
    /// the service does not know it (the ledger said "already committed").
    pub committed_height: Option<u64>,
    pub updated_at_ms: u64,
}

/// One officer's approval of a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApprovalRecord {
    pub request_id: [u8; 16],
    /// The officer's Ed25519 public key: the request's approvals count each key once.
    pub officer_key: [u8; 32],
    /// The officer's signature over the request's body, checked by the service, not here.
    pub signature: [u8; 64],
    /// The officer's username, 1 to [`MAX_ACTOR_BYTES`].
    pub approved_by: String,
    pub at_ms: u64,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = cb_requests)]
struct RequestRow {
    id: Vec<u8>,
    kind: String,
    summary: String,
    reason: String,
    created_by: String,
    created_at_ms: i64,
    body: Vec<u8>,
    expiry_height: i64,
    state: String,
    rejection: Option<String>,
    committed_height: Option<i64>,
    updated_at_ms: i64,
}

#[derive(Insertable)]
#[diesel(table_name = cb_requests)]
#[diesel(treat_none_as_default_value = false)]
struct NewRequest<'a> {
    id: &'a [u8],
    kind: &'a str,
    summary: &'a str,
    reason: &'a str,
    created_by: &'a str,
    created_at_ms: i64,
    body: &'a [u8],
    expiry_height: i64,
    state: &'static str,
    rejection: Option<&'a str>,
    committed_height: Option<i64>,
    updated_at_ms: i64,
}

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = cb_approvals)]
struct ApprovalRow {
    request_id: Vec<u8>,
    officer_key: Vec<u8>,
    signature: Vec<u8>,
    approved_by: String,
    at_ms: i64,
}

/// `rejection` and `committed_height` agree with `state` (see [`RequestRecord`]).
fn check_state_columns(
    state: RequestState,
    rejection: Option<&str>,
    committed_height: Option<u64>,
) -> Result<(), StoreError> {
    let invalid = |field, reason| StoreError::InvalidField { record: "request", field, reason };
    if let Some(code) = rejection {
        check_len("request", "rejection", code.len(), (1, MAX_REJECTION_CODE_BYTES))?;
        if !matches!(state, RequestState::Rejected | RequestState::Expired) {
            return Err(invalid("rejection", "is only for a rejected or expired request"));
        }
    }
    match (state, committed_height) {
        (_, None) => Ok(()),
        (RequestState::Committed, Some(0)) => Err(invalid("committed_height", "is 0")),
        (RequestState::Committed, Some(_)) => Ok(()),
        (_, Some(_)) => Err(invalid("committed_height", "is only for a committed request")),
    }
}

fn optional_i64(field: &'static str, value: Option<u64>) -> Result<Option<i64>, StoreError> {
    value.map(|value| to_i64(field, value)).transpose()
}

impl<'a> NewRequest<'a> {
    fn from_record(record: &'a RequestRecord) -> Result<NewRequest<'a>, StoreError> {
        let check = |field, len, bounds| check_len("request", field, len, bounds);
        check("kind", record.kind.len(), (1, MAX_REQUEST_KIND_BYTES))?;
        check("summary", record.summary.len(), (0, MAX_REQUEST_SUMMARY_BYTES))?;
        check("reason", record.reason.len(), (0, MAX_REQUEST_REASON_BYTES))?;
        check("created_by", record.created_by.len(), (1, MAX_ACTOR_BYTES))?;
        check("body", record.body.len(), (1, MAX_REQUEST_BODY_BYTES))?;
        let rejection = record.rejection.as_deref();
        check_state_columns(record.state, rejection, record.committed_height)?;
        Ok(NewRequest {
            id: &record.id,
            kind: &record.kind,
            summary: &record.summary,
            reason: &record.reason,
            created_by: &record.created_by,
            created_at_ms: to_i64("created_at_ms", record.created_at_ms)?,
            body: &record.body,
            expiry_height: to_i64("expiry_height", record.expiry_height)?,
            state: record.state.as_str(),
            rejection,
            committed_height: optional_i64("committed_height", record.committed_height)?,
            updated_at_ms: to_i64("updated_at_ms", record.updated_at_ms)?,
        })
    }
}

impl TryFrom<RequestRow> for RequestRecord {
    type Error = StoreError;

    fn try_from(row: RequestRow) -> Result<RequestRecord, StoreError> {
        let column = |name| Column::new("cb_requests", name);
        let state = RequestState::from_str(&row.state)
            .map_err(|_| column("state").corrupt(format!("unknown state {:?}", row.state)))?;
        Ok(RequestRecord {
            id: column("id").array(&row.id)?,
            kind: row.kind,
            summary: row.summary,
            reason: row.reason,
            created_by: row.created_by,
            created_at_ms: column("created_at_ms").u64(row.created_at_ms)?,
            body: row.body,
            expiry_height: column("expiry_height").u64(row.expiry_height)?,
            state,
            rejection: row.rejection,
            committed_height: row
                .committed_height
                .map(|height| column("committed_height").u64(height))
                .transpose()?,
            updated_at_ms: column("updated_at_ms").u64(row.updated_at_ms)?,
        })
    }
}

impl ApprovalRow {
    fn from_record(record: &ApprovalRecord) -> Result<ApprovalRow, StoreError> {
        check_len("approval", "approved_by", record.approved_by.len(), (1, MAX_ACTOR_BYTES))?;
        Ok(ApprovalRow {
            request_id: record.request_id.to_vec(),
            officer_key: record.officer_key.to_vec(),
            signature: record.signature.to_vec(),
            approved_by: record.approved_by.clone(),
            at_ms: to_i64("at_ms", record.at_ms)?,
        })
    }
}

impl TryFrom<ApprovalRow> for ApprovalRecord {
    type Error = StoreError;

    fn try_from(row: ApprovalRow) -> Result<ApprovalRecord, StoreError> {
        let column = |name| Column::new("cb_approvals", name);
        Ok(ApprovalRecord {
            request_id: column("request_id").array(&row.request_id)?,
            officer_key: column("officer_key").array(&row.officer_key)?,
            signature: column("signature").array(&row.signature)?,
            approved_by: row.approved_by,
            at_ms: column("at_ms").u64(row.at_ms)?,
        })
    }
}

/// The request's payload as the maker sent it: what an identical retry repeats. The state and
/// timestamps are not part of it (a retry is stamped anew, and the request may have moved on).
fn same_payload(stored: &RequestRecord, new: &RequestRecord) -> bool {
    stored.kind == new.kind
        && stored.summary == new.summary
        && stored.reason == new.reason
        && stored.created_by == new.created_by
        && stored.body == new.body
        && stored.expiry_height == new.expiry_height
}

fn load_request(
    conn: &mut AnyConnection,
    id: &[u8; 16],
) -> Result<Option<RequestRecord>, StoreError> {
    let row: Option<RequestRow> = cb_requests::table
        .select(RequestRow::as_select())
        .filter(cb_requests::id.eq(id.as_slice()))
        .first(conn)
        .optional()?;
    row.map(RequestRecord::try_from).transpose()
}

/// Inside the approval transaction: whether the request exists, holding it until commit so
/// that approvals of one request queue and the per-request cap is exact.
fn lock_request(conn: &mut AnyConnection, id: &[u8; 16]) -> Result<bool, StoreError> {
    let query =
        cb_requests::table.select(cb_requests::id).filter(cb_requests::id.eq(id.as_slice()));
    let found: Option<Vec<u8>> = match conn {
        AnyConnection::Postgres(conn) => query.for_update().first(conn).optional()?,
        // The transaction began IMMEDIATE: no other writer runs until it ends.
        AnyConnection::Sqlite(conn) => query.first(conn).optional()?,
    };
    Ok(found.is_some())
}

/// Inside the approval transaction: inserts unless this officer already approved; whether new.
fn insert_approval(
    conn: &mut AnyConnection,
    approval: &ApprovalRecord,
    row: &ApprovalRow,
) -> Result<bool, StoreError> {
    let id = approval.request_id;
    if !lock_request(conn, &id)? {
        return Err(StoreError::RequestNotFound { id });
    }
    let inserted = on_backend!(&mut *conn, conn => {
        diesel::insert_into(cb_approvals::table)
            .values(row)
            .on_conflict((cb_approvals::request_id, cb_approvals::officer_key))
            .do_nothing()
            .execute(conn)?
    });
    let count: i64 = cb_approvals::table
        .filter(cb_approvals::request_id.eq(id.as_slice()))
        .count()
        .get_result(conn)?;
    let max = u64::from(MAX_APPROVALS_PER_REQUEST);
    // Checked after the insert so that a repeated approval is Ok(false) even at the cap.
    if inserted == 1 && Column::new("cb_approvals", "request_id").u64(count)? > max {
        return Err(StoreError::TooManyApprovals { id, max });
    }
    Ok(inserted == 1)
}

/// Requests, optionally in one state and created before a time; newest first or oldest first.
fn load_requests(
    conn: &mut AnyConnection,
    state: Option<RequestState>,
    before_created_at_ms: Option<u64>,
    newest_first: bool,
    limit: u32,
) -> Result<Vec<RequestRecord>, StoreError> {
    let mut query =
        cb_requests::table.select(RequestRow::as_select()).into_boxed::<'_, MultiBackend>();
    if let Some(state) = state {
        query = query.filter(cb_requests::state.eq(state.as_str()));
    }
    if let Some(before) = before_created_at_ms {
        let before = to_i64("before_created_at_ms", before)?;
        query = query.filter(cb_requests::created_at_ms.lt(before));
    }
    query = if newest_first {
        query.order((cb_requests::created_at_ms.desc(), cb_requests::id.desc()))
    } else {
        query.order((cb_requests::created_at_ms.asc(), cb_requests::id.asc()))
    };
    let rows: Vec<RequestRow> = query.limit(i64::from(limit.min(MAX_REQUEST_PAGE))).load(conn)?;
    rows.into_iter().map(RequestRecord::try_from).collect()
}

impl Store {
    /// Creates a request.
    ///
    /// An id already stored is [`StoreError::RequestExists`] if the payload (kind, summary,
    /// reason, created_by, body, expiry_height) is the same, an identical retry, and
    /// [`StoreError::ConflictingRequest`] otherwise; the stored request is unchanged either way.
    /// A field out of bounds, or columns that disagree with the state, is
    /// [`StoreError::FieldLength`] or [`StoreError::InvalidField`].
    pub fn create_request(&mut self, record: &RequestRecord) -> Result<(), StoreError> {
        let new = NewRequest::from_record(record)?;
        let inserted = on_backend!(&mut self.conn, conn => {
            diesel::insert_into(cb_requests::table)
                .values(&new)
                .on_conflict(cb_requests::id)
                .do_nothing()
                .execute(conn)?
        });
        if inserted == 1 {
            return Ok(());
        }
        let id = record.id;
        match load_request(&mut self.conn, &id)? {
            Some(stored) if same_payload(&stored, record) => Err(StoreError::RequestExists { id }),
            Some(_) => Err(StoreError::ConflictingRequest { id }),
            // Requests are never deleted: the conflicting row cannot have gone.
            None => Err(StoreError::CorruptRow {
                table: "cb_requests",
                column: "id",
                detail: "an insert conflicted with a row that cannot be read back".to_owned(),
            }),
        }
    }

    /// The request with this id, if there is one.
    pub fn request(&mut self, id: &[u8; 16]) -> Result<Option<RequestRecord>, StoreError> {
        load_request(&mut self.conn, id)
    }

    /// Requests newest first (by `created_at_ms`, then id), optionally only those in `state`,
    /// at most `min(limit, MAX_REQUEST_PAGE)`. For the next page pass the last request's
    /// `created_at_ms` as `before_created_at_ms`: only requests created strictly earlier follow.
    ///
    /// Requests created in the same millisecond as the last of a full page are on neither page;
    /// the service makes that unlikely by stamping times in ms, not impossible.
    pub fn requests(
        &mut self,
        state: Option<RequestState>,
        before_created_at_ms: Option<u64>,
        limit: u32,
    ) -> Result<Vec<RequestRecord>, StoreError> {
        load_requests(&mut self.conn, state, before_created_at_ms, true, limit)
    }

    /// Requests in `state`, oldest first, at most `min(limit, MAX_REQUEST_PAGE)`: the work queue
    /// of a worker that follows requests in that state.
    pub fn requests_in_state(
        &mut self,
        state: RequestState,
        limit: u32,
    ) -> Result<Vec<RequestRecord>, StoreError> {
        load_requests(&mut self.conn, Some(state), None, false, limit)
    }

    /// Adds an officer's approval of a request; `Ok(true)` if new, `Ok(false)` if this officer
    /// key had already approved it (that approval is kept unchanged).
    ///
    /// An unknown request is [`StoreError::RequestNotFound`]; a new approval beyond
    /// [`MAX_APPROVALS_PER_REQUEST`] is [`StoreError::TooManyApprovals`] and is not stored.
    pub fn add_approval(&mut self, approval: &ApprovalRecord) -> Result<bool, StoreError> {
        let row = ApprovalRow::from_record(approval)?;
        self.conn.write_transaction(|conn| insert_approval(conn, approval, &row))
    }

    /// The approvals of a request, by `at_ms` then officer key (at most
    /// [`MAX_APPROVALS_PER_REQUEST`]). An unknown request has none.
    pub fn approvals(&mut self, request_id: &[u8; 16]) -> Result<Vec<ApprovalRecord>, StoreError> {
        let rows: Vec<ApprovalRow> = cb_approvals::table
            .select(ApprovalRow::as_select())
            .filter(cb_approvals::request_id.eq(request_id.as_slice()))
            .order((cb_approvals::at_ms.asc(), cb_approvals::officer_key.asc()))
            .limit(i64::from(MAX_APPROVALS_PER_REQUEST))
            .load(&mut self.conn)?;
        rows.into_iter().map(ApprovalRecord::try_from).collect()
    }

    /// Moves a request from `from` to `to` if, and only if, it is in `from` now (compare and
    /// set, one statement): `Ok(false)` if it is in another state or does not exist, and
    /// nothing changes. Of two workers making the same move, exactly one gets `Ok(true)`.
    ///
    /// `rejection` and `committed_height` replace the stored ones and must agree with `to`
    /// (see [`RequestRecord`]), or it is [`StoreError::InvalidField`] and nothing changes.
    pub fn update_request_state(
        &mut self,
        id: &[u8; 16],
        from: RequestState,
        to: RequestState,
        rejection: Option<&str>,
        committed_height: Option<u64>,
        at_ms: u64,
    ) -> Result<bool, StoreError> {
        check_state_columns(to, rejection, committed_height)?;
        let committed_height = optional_i64("committed_height", committed_height)?;
        let at_ms = to_i64("updated_at_ms", at_ms)?;
        let target = cb_requests::table
            .filter(cb_requests::id.eq(id.as_slice()))
            .filter(cb_requests::state.eq(from.as_str()));
        let updated = diesel::update(target)
            .set((
                cb_requests::state.eq(to.as_str()),
                cb_requests::rejection.eq(rejection),
                cb_requests::committed_height.eq(committed_height),
                cb_requests::updated_at_ms.eq(at_ms),
            ))
            .execute(&mut self.conn)?;
        Ok(updated == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_names_are_frozen_and_round_trip() {
        let names: Vec<&str> = RequestState::ALL.iter().map(|state| state.as_str()).collect();
        assert_eq!(
            names,
            ["pending", "approved", "submitted", "committed", "rejected", "expired"],
            "stored names: changing one needs a migration"
        );
        for state in RequestState::ALL {
            assert_eq!(state.as_str().parse::<RequestState>(), Ok(state));
            assert_eq!(state.to_string(), state.as_str());
        }
        for unknown in ["", "Pending", "PENDING", "pending ", "done"] {
            assert_eq!(unknown.parse::<RequestState>(), Err(UnknownRequestState), "{unknown:?}");
        }
    }

    #[test]
    fn columns_must_agree_with_the_state() {
        use RequestState::*;
        assert!(check_state_columns(Pending, None, None).is_ok());
        assert!(check_state_columns(Committed, None, Some(1)).is_ok());
        assert!(check_state_columns(Committed, None, None).is_ok(), "height not known");
        assert!(check_state_columns(Rejected, Some("expired_tx"), None).is_ok());
        assert!(check_state_columns(Expired, Some("expired_tx"), None).is_ok());
        assert!(check_state_columns(Rejected, None, None).is_ok(), "an officer's rejection");
        let field = |outcome: Result<(), StoreError>| match outcome {
            Err(StoreError::InvalidField { field, .. }) => field,
            Err(StoreError::FieldLength { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(field(check_state_columns(Committed, None, Some(0))), "committed_height");
        assert_eq!(field(check_state_columns(Submitted, None, Some(5))), "committed_height");
        assert_eq!(field(check_state_columns(Approved, Some("x"), None)), "rejection");
        assert_eq!(field(check_state_columns(Committed, Some("x"), Some(1))), "rejection");
        assert_eq!(field(check_state_columns(Rejected, Some(""), None)), "rejection");
        assert_eq!(field(check_state_columns(Rejected, Some(&"r".repeat(65)), None)), "rejection");
    }
}
