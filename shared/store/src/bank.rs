//! The intermediary's (commercial bank's) own records: its customers (`bank_customers`), their
//! wallets (`bank_wallets`), the payments it submits for them (`bank_payments`) and payment
//! requests (`bank_payment_requests`); and the reads its receipts need from the projections and
//! snapshots ([`Store::history_of_tx`], [`Store::snapshot_at_or_below`]).
//!
//! Personal data, signing seeds and deposit accounts are stored only [`Sealed`] (an AEAD nonce
//! and ciphertext made by the service): the store never holds a key. A person is one customer
//! per bank (`holder_ref`, a keyed hash of the national id, is unique) with one login
//! (`username`). A payment is idempotent per principal and key: [`Store::insert_payment`]
//! returns the stored payment for a key already used, and the caller compares body hashes
//! (STYLE.md 16). Payments and payment requests leave their first state only by
//! compare-and-set, so two workers never both settle one payment. Nothing is deleted: a
//! customer is closed, not removed.
//!
//! The store decides nothing about money or access (whether a tier allows a payment, whether a
//! closed customer may open a wallet): that is the service's. It keeps the columns consistent
//! with the states, bounds every field, and checks the same on every row it reads back.

use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};

use crate::connection::{AnyConnection, MultiBackend};
use crate::convert::{Column, check_len, to_i64};
use crate::projection::HistoryRecord;
use crate::schema::{bank_customers, bank_payment_requests, bank_payments, bank_wallets};
use crate::schema::{snapshots, wallet_history};
use crate::snapshots::SnapshotRecord;
use crate::{
    HistoryEntry, MAX_REJECTION_CODE_BYTES, MAX_USERNAME_BYTES, Store, StoreError, StoredSnapshot,
};

/// The highest [`CustomerRecord::tier`].
pub const MAX_CUSTOMER_TIER: u8 = 7;
/// The length of a [`CustomerRecord::customer_id`]: lowercase hex digits of 16 bytes.
pub const CUSTOMER_ID_HEX_CHARS: u32 = 32;
/// The largest [`CustomerRecord::pii_ciphertext`], in bytes (16 KiB; at least one).
pub const MAX_PII_CIPHERTEXT_BYTES: u32 = 16_384;
/// The most customers one [`Store::customers`] call returns.
pub const MAX_CUSTOMERS_PAGE: u32 = 100;
/// The most wallets one customer may have; [`Store::wallets_of_customer`] returns them all.
pub const MAX_WALLETS_PER_CUSTOMER: u32 = 32;
/// The largest sealed signing seed ([`BankWalletRecord::key`]), in bytes (at least one).
pub const MAX_KEY_CIPHERTEXT_BYTES: u32 = 256;
/// The largest sealed deposit account ([`BankWalletRecord::account`]), in bytes (at least one).
pub const MAX_ACCOUNT_CIPHERTEXT_BYTES: u32 = 1_024;
/// The longest [`PaymentRecord::principal`], in bytes (at least one).
pub const MAX_PRINCIPAL_BYTES: u32 = 128;
/// The longest [`PaymentRecord::idempotency_key`], in bytes (at least one).
pub const MAX_IDEMPOTENCY_KEY_BYTES: u32 = 64;
/// The largest [`PaymentRecord::transaction`], in bytes (64 KiB; at least one).
pub const MAX_PAYMENT_TRANSACTION_BYTES: u32 = 65_536;
/// The most payments one [`Store::pending_payments`] call returns.
pub const MAX_PAYMENTS_PAGE: u32 = 1_000;
/// The longest [`PaymentRequestRecord::reference`], in bytes.
pub const MAX_PAYMENT_REFERENCE_BYTES: u32 = 140;
/// The most history rows one [`Store::history_of_tx`] call returns.
pub const MAX_TX_HISTORY_ROWS: u32 = 64;

/// A customer's standing at the bank. Stored as a code: frozen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CustomerStatus {
    Active,
    Closed,
}

/// Who holds a wallet's signing key. Stored as a code: frozen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Custody {
    /// The bank holds the key, sealed ([`BankWalletRecord::key`]), and signs for the customer.
    Custodial,
    /// The customer holds the key; the bank knows only the public key.
    SelfCustody,
}

/// Where a payment is in its life. Stored as a code: frozen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PaymentState {
    /// Stored, submitted or about to be, outcome not yet known.
    Pending,
    /// Committed in a block.
    Committed,
    /// Refused by the ledger, or expired.
    Failed,
}

/// Whether a payment request has been paid. Stored as a code: frozen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PaymentRequestState {
    Open,
    Paid,
}

/// The frozen SMALLINT codes of the enums above.
trait Code: Sized + Copy + 'static {
    /// Every value, for decoding.
    const ALL: &'static [Self];

    fn code(self) -> i16;

    fn from_code(column: Column, code: i16) -> Result<Self, StoreError> {
        Self::ALL
            .iter()
            .copied()
            .find(|value| value.code() == code)
            .ok_or_else(|| column.corrupt(format!("unknown code {code}")))
    }
}

impl Code for CustomerStatus {
    const ALL: &'static [CustomerStatus] = &[CustomerStatus::Active, CustomerStatus::Closed];

    fn code(self) -> i16 {
        match self {
            CustomerStatus::Active => 1,
            CustomerStatus::Closed => 2,
        }
    }
}

impl Code for Custody {
    const ALL: &'static [Custody] = &[Custody::Custodial, Custody::SelfCustody];

    fn code(self) -> i16 {
        match self {
            Custody::Custodial => 1,
            Custody::SelfCustody => 2,
        }
    }
}

impl Code for PaymentState {
    const ALL: &'static [PaymentState] =
        &[PaymentState::Pending, PaymentState::Committed, PaymentState::Failed];

    fn code(self) -> i16 {
        match self {
            PaymentState::Pending => 1,
            PaymentState::Committed => 2,
            PaymentState::Failed => 3,
        }
    }
}

impl Code for PaymentRequestState {
    const ALL: &'static [PaymentRequestState] =
        &[PaymentRequestState::Open, PaymentRequestState::Paid];

    fn code(self) -> i16 {
        match self {
            PaymentRequestState::Open => 1,
            PaymentRequestState::Paid => 2,
        }
    }
}

/// Bytes sealed by the service with an AEAD: the store keeps them and never opens them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sealed {
    pub nonce: [u8; 12],
    pub ciphertext: Vec<u8>,
}

/// A customer of the bank, every column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CustomerRecord {
    /// [`CUSTOMER_ID_HEX_CHARS`] lowercase hex digits, chosen by the bank.
    pub customer_id: String,
    /// The customer's login: 1 to [`MAX_USERNAME_BYTES`] bytes of `[a-z0-9._-]`; unique.
    pub username: String,
    /// A keyed hash of the national id: one customer per person per bank; unique.
    pub holder_ref: [u8; 32],
    /// 0 to [`MAX_CUSTOMER_TIER`].
    pub tier: u8,
    pub status: CustomerStatus,
    pub pii_nonce: [u8; 12],
    /// The sealed personal data, 1 to [`MAX_PII_CIPHERTEXT_BYTES`].
    pub pii_ciphertext: Vec<u8>,
    pub created_ms: u64,
}

/// A wallet the bank opened for a customer, every column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BankWalletRecord {
    pub wallet_id: [u8; 16],
    /// The owning customer, who must exist.
    pub customer_id: String,
    pub custody: Custody,
    /// The ledger's wallet class code, opaque here.
    pub class: u8,
    /// The wallet's Ed25519 public key.
    pub public_key: [u8; 32],
    /// The sealed signing seed: present exactly for a custodial wallet; ciphertext 1 to
    /// [`MAX_KEY_CIPHERTEXT_BYTES`].
    pub key: Option<Sealed>,
    /// The sealed linked deposit account, if any; ciphertext 1 to
    /// [`MAX_ACCOUNT_CIPHERTEXT_BYTES`].
    pub account: Option<Sealed>,
    pub created_ms: u64,
}

/// A payment the bank submits to the ledger for a principal, every column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaymentRecord {
    /// Chosen by the bank; also the ledger transaction id.
    pub tx_id: [u8; 16],
    /// Who asked (a customer id, ...): 1 to [`MAX_PRINCIPAL_BYTES`].
    pub principal: String,
    /// The principal's key for this payment, 1 to [`MAX_IDEMPOTENCY_KEY_BYTES`]; unique per
    /// principal.
    pub idempotency_key: String,
    /// A hash of the request body, for the caller to tell a retry from a different request.
    pub body_hash: [u8; 32],
    pub from_wallet: [u8; 16],
    pub to_wallet: [u8; 16],
    /// At least 1.
    pub amount_minor: u64,
    pub expiry_height: u64,
    /// The signed transaction's encoding, 1 to [`MAX_PAYMENT_TRANSACTION_BYTES`].
    pub transaction: Vec<u8>,
    pub state: PaymentState,
    /// The committing block's height (at least 1), only when committed, if known.
    pub height: Option<u64>,
    /// The committing block's timestamp, only when committed, if known.
    pub timestamp_ms: Option<u64>,
    /// The ledger's rejection code, only when failed; 1 to [`MAX_REJECTION_CODE_BYTES`].
    pub rejection: Option<String>,
    pub created_ms: u64,
}

/// What [`Store::insert_payment`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(
    clippy::large_enum_variant,
    reason = "returned by one call and matched at once, never stored in bulk: a box would only \
              add an allocation"
)]
pub enum PaymentInsert {
    /// The payment is new and was stored.
    Inserted,
    /// The principal already used this key: the stored payment, unchanged, whatever its body.
    Existing(PaymentRecord),
}

/// A request to be paid into one of the bank's wallets, every column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaymentRequestRecord {
    pub request_id: [u8; 16],
    /// The wallet to be paid.
    pub wallet_id: [u8; 16],
    /// At least 1.
    pub amount_minor: u64,
    /// Shown to the payer; at most [`MAX_PAYMENT_REFERENCE_BYTES`].
    pub reference: String,
    pub state: PaymentRequestState,
    /// The paying transaction: present exactly when paid.
    pub paid_tx_id: Option<[u8; 16]>,
    pub created_ms: u64,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = bank_customers)]
struct CustomerRow {
    customer_id: String,
    username: String,
    holder_ref: Vec<u8>,
    tier: i16,
    status: i16,
    pii_nonce: Vec<u8>,
    pii_ciphertext: Vec<u8>,
    created_ms: i64,
}

#[derive(Insertable)]
#[diesel(table_name = bank_customers)]
struct NewCustomer<'a> {
    customer_id: &'a str,
    username: &'a str,
    holder_ref: &'a [u8],
    tier: i16,
    status: i16,
    pii_nonce: &'a [u8],
    pii_ciphertext: &'a [u8],
    created_ms: i64,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = bank_wallets)]
struct WalletRow {
    wallet_id: Vec<u8>,
    customer_id: String,
    custody: i16,
    class: i16,
    public_key: Vec<u8>,
    key_nonce: Option<Vec<u8>>,
    key_ciphertext: Option<Vec<u8>>,
    account_nonce: Option<Vec<u8>>,
    account_ciphertext: Option<Vec<u8>>,
    created_ms: i64,
}

#[derive(Insertable)]
#[diesel(table_name = bank_wallets)]
#[diesel(treat_none_as_default_value = false)]
struct NewWallet<'a> {
    wallet_id: &'a [u8],
    customer_id: &'a str,
    custody: i16,
    class: i16,
    public_key: &'a [u8],
    key_nonce: Option<&'a [u8]>,
    key_ciphertext: Option<&'a [u8]>,
    account_nonce: Option<&'a [u8]>,
    account_ciphertext: Option<&'a [u8]>,
    created_ms: i64,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = bank_payments)]
struct PaymentRow {
    tx_id: Vec<u8>,
    principal: String,
    idempotency_key: String,
    body_hash: Vec<u8>,
    from_wallet: Vec<u8>,
    to_wallet: Vec<u8>,
    amount_minor: i64,
    expiry_height: i64,
    transaction: Vec<u8>,
    state: i16,
    height: Option<i64>,
    timestamp_ms: Option<i64>,
    rejection: Option<String>,
    created_ms: i64,
}

#[derive(Insertable)]
#[diesel(table_name = bank_payments)]
#[diesel(treat_none_as_default_value = false)]
struct NewPayment<'a> {
    tx_id: &'a [u8],
    principal: &'a str,
    idempotency_key: &'a str,
    body_hash: &'a [u8],
    from_wallet: &'a [u8],
    to_wallet: &'a [u8],
    amount_minor: i64,
    expiry_height: i64,
    transaction: &'a [u8],
    state: i16,
    height: Option<i64>,
    timestamp_ms: Option<i64>,
    rejection: Option<&'a str>,
    created_ms: i64,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = bank_payment_requests)]
struct PaymentRequestRow {
    request_id: Vec<u8>,
    wallet_id: Vec<u8>,
    amount_minor: i64,
    reference: String,
    state: i16,
    paid_tx_id: Option<Vec<u8>>,
    created_ms: i64,
}

#[derive(Insertable)]
#[diesel(table_name = bank_payment_requests)]
#[diesel(treat_none_as_default_value = false)]
struct NewPaymentRequest<'a> {
    request_id: &'a [u8],
    wallet_id: &'a [u8],
    amount_minor: i64,
    reference: &'a str,
    state: i16,
    paid_tx_id: Option<&'a [u8]>,
    created_ms: i64,
}

fn invalid(record: &'static str, field: &'static str, reason: &'static str) -> StoreError {
    StoreError::InvalidField { record, field, reason }
}

fn check_customer_id(record: &'static str, customer_id: &str) -> Result<(), StoreError> {
    let hex_chars = (CUSTOMER_ID_HEX_CHARS, CUSTOMER_ID_HEX_CHARS);
    check_len(record, "customer_id", customer_id.len(), hex_chars)?;
    if customer_id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        Ok(())
    } else {
        Err(invalid(record, "customer_id", "is not lowercase hex"))
    }
}

fn check_tier(tier: u8) -> Result<(), StoreError> {
    if tier > MAX_CUSTOMER_TIER {
        return Err(invalid("customer", "tier", "is above the highest tier"));
    }
    Ok(())
}

fn check_customer(record: &CustomerRecord) -> Result<(), StoreError> {
    const RECORD: &str = "customer";
    check_customer_id(RECORD, &record.customer_id)?;
    check_len(RECORD, "username", record.username.len(), (1, MAX_USERNAME_BYTES))?;
    let allowed = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b);
    if !record.username.bytes().all(allowed) {
        return Err(invalid(RECORD, "username", "has a character outside [a-z0-9._-]"));
    }
    check_tier(record.tier)?;
    let pii_len = record.pii_ciphertext.len();
    check_len(RECORD, "pii_ciphertext", pii_len, (1, MAX_PII_CIPHERTEXT_BYTES))
}

fn check_sealed(field: &'static str, sealed: Option<&Sealed>, max: u32) -> Result<(), StoreError> {
    sealed
        .map_or(Ok(()), |sealed| check_len("bank_wallet", field, sealed.ciphertext.len(), (1, max)))
}

fn check_wallet(record: &BankWalletRecord) -> Result<(), StoreError> {
    const RECORD: &str = "bank_wallet";
    check_customer_id(RECORD, &record.customer_id)?;
    match (record.custody, &record.key) {
        (Custody::Custodial, None) => {
            return Err(invalid(RECORD, "key", "is required for a custodial wallet"));
        }
        (Custody::SelfCustody, Some(_)) => {
            return Err(invalid(RECORD, "key", "is only for a custodial wallet"));
        }
        _ => {}
    }
    check_sealed("key", record.key.as_ref(), MAX_KEY_CIPHERTEXT_BYTES)?;
    check_sealed("account", record.account.as_ref(), MAX_ACCOUNT_CIPHERTEXT_BYTES)
}

/// `height`, `timestamp_ms` and `rejection` agree with `state` (see [`PaymentRecord`]).
fn check_settlement(
    state: PaymentState,
    height: Option<u64>,
    timestamp_ms: Option<u64>,
    rejection: Option<&str>,
) -> Result<(), StoreError> {
    const RECORD: &str = "payment";
    if let Some(code) = rejection {
        check_len(RECORD, "rejection", code.len(), (1, MAX_REJECTION_CODE_BYTES))?;
        if state != PaymentState::Failed {
            return Err(invalid(RECORD, "rejection", "is only for a failed payment"));
        }
    }
    if height == Some(0) {
        return Err(invalid(RECORD, "height", "is 0"));
    }
    if state != PaymentState::Committed {
        if height.is_some() {
            return Err(invalid(RECORD, "height", "is only for a committed payment"));
        }
        if timestamp_ms.is_some() {
            return Err(invalid(RECORD, "timestamp_ms", "is only for a committed payment"));
        }
    }
    Ok(())
}

fn check_payment(record: &PaymentRecord) -> Result<(), StoreError> {
    const RECORD: &str = "payment";
    check_len(RECORD, "principal", record.principal.len(), (1, MAX_PRINCIPAL_BYTES))?;
    let key_len = record.idempotency_key.len();
    check_len(RECORD, "idempotency_key", key_len, (1, MAX_IDEMPOTENCY_KEY_BYTES))?;
    if record.amount_minor == 0 {
        return Err(invalid(RECORD, "amount_minor", "is 0"));
    }
    let tx_len = record.transaction.len();
    check_len(RECORD, "transaction", tx_len, (1, MAX_PAYMENT_TRANSACTION_BYTES))?;
    let rejection = record.rejection.as_deref();
    check_settlement(record.state, record.height, record.timestamp_ms, rejection)
}

fn check_payment_request(record: &PaymentRequestRecord) -> Result<(), StoreError> {
    const RECORD: &str = "payment_request";
    if record.amount_minor == 0 {
        return Err(invalid(RECORD, "amount_minor", "is 0"));
    }
    let reference_len = record.reference.len();
    check_len(RECORD, "reference", reference_len, (0, MAX_PAYMENT_REFERENCE_BYTES))?;
    match (record.state, record.paid_tx_id) {
        (PaymentRequestState::Open, Some(_)) => {
            Err(invalid(RECORD, "paid_tx_id", "is only for a paid request"))
        }
        (PaymentRequestState::Paid, None) => {
            Err(invalid(RECORD, "paid_tx_id", "is required for a paid request"))
        }
        _ => Ok(()),
    }
}

/// A record read back must pass the checks it passed before it was written, or the row was
/// damaged: [`StoreError::CorruptRow`], never a panic.
fn loaded<R>(
    table: &'static str,
    record: R,
    check: fn(&R) -> Result<(), StoreError>,
) -> Result<R, StoreError> {
    check(&record).map_err(|error| {
        let column = match &error {
            StoreError::FieldLength { field, .. } | StoreError::InvalidField { field, .. } => field,
            _ => "row",
        };
        Column::new(table, column).corrupt(error.to_string())
    })?;
    Ok(record)
}

fn optional_i64(field: &'static str, value: Option<u64>) -> Result<Option<i64>, StoreError> {
    value.map(|value| to_i64(field, value)).transpose()
}

fn sealed_columns(sealed: Option<&Sealed>) -> (Option<&[u8]>, Option<&[u8]>) {
    (sealed.map(|s| s.nonce.as_slice()), sealed.map(|s| s.ciphertext.as_slice()))
}

/// Two nullable columns as one sealed value: both or neither.
fn sealed_from(
    column: Column,
    nonce: Option<Vec<u8>>,
    ciphertext: Option<Vec<u8>>,
) -> Result<Option<Sealed>, StoreError> {
    match (nonce, ciphertext) {
        (None, None) => Ok(None),
        (Some(nonce), Some(ciphertext)) => {
            Ok(Some(Sealed { nonce: column.array(&nonce)?, ciphertext }))
        }
        _ => Err(column.corrupt("a nonce without a ciphertext, or the reverse".to_owned())),
    }
}

impl<'a> NewCustomer<'a> {
    fn from_record(record: &'a CustomerRecord) -> Result<NewCustomer<'a>, StoreError> {
        check_customer(record)?;
        Ok(NewCustomer {
            customer_id: &record.customer_id,
            username: &record.username,
            holder_ref: &record.holder_ref,
            tier: i16::from(record.tier),
            status: record.status.code(),
            pii_nonce: &record.pii_nonce,
            pii_ciphertext: &record.pii_ciphertext,
            created_ms: to_i64("created_ms", record.created_ms)?,
        })
    }
}

impl TryFrom<CustomerRow> for CustomerRecord {
    type Error = StoreError;

    fn try_from(row: CustomerRow) -> Result<CustomerRecord, StoreError> {
        const TABLE: &str = "bank_customers";
        let column = |name| Column::new(TABLE, name);
        let record = CustomerRecord {
            customer_id: row.customer_id,
            username: row.username,
            holder_ref: column("holder_ref").array(&row.holder_ref)?,
            tier: column("tier").u8(row.tier)?,
            status: CustomerStatus::from_code(column("status"), row.status)?,
            pii_nonce: column("pii_nonce").array(&row.pii_nonce)?,
            pii_ciphertext: row.pii_ciphertext,
            created_ms: column("created_ms").u64(row.created_ms)?,
        };
        loaded(TABLE, record, check_customer)
    }
}

impl<'a> NewWallet<'a> {
    fn from_record(record: &'a BankWalletRecord) -> Result<NewWallet<'a>, StoreError> {
        check_wallet(record)?;
        let (key_nonce, key_ciphertext) = sealed_columns(record.key.as_ref());
        let (account_nonce, account_ciphertext) = sealed_columns(record.account.as_ref());
        Ok(NewWallet {
            wallet_id: &record.wallet_id,
            customer_id: &record.customer_id,
            custody: record.custody.code(),
            class: i16::from(record.class),
            public_key: &record.public_key,
            key_nonce,
            key_ciphertext,
            account_nonce,
            account_ciphertext,
            created_ms: to_i64("created_ms", record.created_ms)?,
        })
    }
}

impl TryFrom<WalletRow> for BankWalletRecord {
    type Error = StoreError;

    fn try_from(row: WalletRow) -> Result<BankWalletRecord, StoreError> {
        const TABLE: &str = "bank_wallets";
        let column = |name| Column::new(TABLE, name);
        let record = BankWalletRecord {
            wallet_id: column("wallet_id").array(&row.wallet_id)?,
            customer_id: row.customer_id,
            custody: Custody::from_code(column("custody"), row.custody)?,
            class: column("class").u8(row.class)?,
            public_key: column("public_key").array(&row.public_key)?,
            key: sealed_from(column("key_nonce"), row.key_nonce, row.key_ciphertext)?,
            account: sealed_from(
                column("account_nonce"),
                row.account_nonce,
                row.account_ciphertext,
            )?,
            created_ms: column("created_ms").u64(row.created_ms)?,
        };
        loaded(TABLE, record, check_wallet)
    }
}

impl<'a> NewPayment<'a> {
    fn from_record(record: &'a PaymentRecord) -> Result<NewPayment<'a>, StoreError> {
        check_payment(record)?;
        Ok(NewPayment {
            tx_id: &record.tx_id,
            principal: &record.principal,
            idempotency_key: &record.idempotency_key,
            body_hash: &record.body_hash,
            from_wallet: &record.from_wallet,
            to_wallet: &record.to_wallet,
            amount_minor: to_i64("amount_minor", record.amount_minor)?,
            expiry_height: to_i64("expiry_height", record.expiry_height)?,
            transaction: &record.transaction,
            state: record.state.code(),
            height: optional_i64("height", record.height)?,
            timestamp_ms: optional_i64("timestamp_ms", record.timestamp_ms)?,
            rejection: record.rejection.as_deref(),
            created_ms: to_i64("created_ms", record.created_ms)?,
        })
    }
}

impl TryFrom<PaymentRow> for PaymentRecord {
    type Error = StoreError;

    fn try_from(row: PaymentRow) -> Result<PaymentRecord, StoreError> {
        const TABLE: &str = "bank_payments";
        let column = |name| Column::new(TABLE, name);
        let record = PaymentRecord {
            tx_id: column("tx_id").array(&row.tx_id)?,
            principal: row.principal,
            idempotency_key: row.idempotency_key,
            body_hash: column("body_hash").array(&row.body_hash)?,
            from_wallet: column("from_wallet").array(&row.from_wallet)?,
            to_wallet: column("to_wallet").array(&row.to_wallet)?,
            amount_minor: column("amount_minor").u64(row.amount_minor)?,
            expiry_height: column("expiry_height").u64(row.expiry_height)?,
            transaction: row.transaction,
            state: PaymentState::from_code(column("state"), row.state)?,
            height: row.height.map(|height| column("height").u64(height)).transpose()?,
            timestamp_ms: row.timestamp_ms.map(|ms| column("timestamp_ms").u64(ms)).transpose()?,
            rejection: row.rejection,
            created_ms: column("created_ms").u64(row.created_ms)?,
        };
        loaded(TABLE, record, check_payment)
    }
}

impl<'a> NewPaymentRequest<'a> {
    fn from_record(record: &'a PaymentRequestRecord) -> Result<NewPaymentRequest<'a>, StoreError> {
        check_payment_request(record)?;
        Ok(NewPaymentRequest {
            request_id: &record.request_id,
            wallet_id: &record.wallet_id,
            amount_minor: to_i64("amount_minor", record.amount_minor)?,
            reference: &record.reference,
            state: record.state.code(),
            paid_tx_id: record.paid_tx_id.as_ref().map(<[u8; 16]>::as_slice),
            created_ms: to_i64("created_ms", record.created_ms)?,
        })
    }
}

impl TryFrom<PaymentRequestRow> for PaymentRequestRecord {
    type Error = StoreError;

    fn try_from(row: PaymentRequestRow) -> Result<PaymentRequestRecord, StoreError> {
        const TABLE: &str = "bank_payment_requests";
        let column = |name| Column::new(TABLE, name);
        let paid_tx_id = row.paid_tx_id.as_deref();
        let record = PaymentRequestRecord {
            request_id: column("request_id").array(&row.request_id)?,
            wallet_id: column("wallet_id").array(&row.wallet_id)?,
            amount_minor: column("amount_minor").u64(row.amount_minor)?,
            reference: row.reference,
            state: PaymentRequestState::from_code(column("state"), row.state)?,
            paid_tx_id: paid_tx_id.map(|id| column("paid_tx_id").array(id)).transpose()?,
            created_ms: column("created_ms").u64(row.created_ms)?,
        };
        loaded(TABLE, record, check_payment_request)
    }
}

fn is_unique_violation(error: &DieselError) -> bool {
    matches!(error, DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _))
}

/// Which unique column of `record` a stored customer already has, if any. Customers are never
/// deleted, so after a unique violation the row it collided with is still there.
fn taken_customer_column(
    conn: &mut AnyConnection,
    record: &CustomerRecord,
) -> Result<Option<&'static str>, StoreError> {
    let by_username: i64 = bank_customers::table
        .filter(bank_customers::username.eq(&record.username))
        .count()
        .get_result(conn)?;
    if by_username > 0 {
        return Ok(Some("username"));
    }
    let by_holder: i64 = bank_customers::table
        .filter(bank_customers::holder_ref.eq(record.holder_ref.as_slice()))
        .count()
        .get_result(conn)?;
    if by_holder > 0 {
        return Ok(Some("holder_ref"));
    }
    let by_id: i64 = bank_customers::table
        .filter(bank_customers::customer_id.eq(&record.customer_id))
        .count()
        .get_result(conn)?;
    Ok((by_id > 0).then_some("customer_id"))
}

fn load_customer(
    conn: &mut AnyConnection,
    query: bank_customers::BoxedQuery<'_, MultiBackend>,
) -> Result<Option<CustomerRecord>, StoreError> {
    let row: Option<CustomerRow> = query.select(CustomerRow::as_select()).first(conn).optional()?;
    row.map(CustomerRecord::try_from).transpose()
}

/// Inside the wallet transaction: whether the customer exists, holding its row until commit so
/// that wallet creations for one customer queue and the per-customer cap is exact.
fn lock_customer(conn: &mut AnyConnection, customer_id: &str) -> Result<bool, StoreError> {
    let query = bank_customers::table
        .select(bank_customers::customer_id)
        .filter(bank_customers::customer_id.eq(customer_id));
    let found: Option<String> = match conn {
        AnyConnection::Postgres(conn) => query.for_update().first(conn).optional()?,
        // The transaction began IMMEDIATE: no other writer runs until it ends.
        AnyConnection::Sqlite(conn) => query.first(conn).optional()?,
    };
    Ok(found.is_some())
}

fn count_wallets(conn: &mut AnyConnection, customer_id: &str) -> Result<u64, StoreError> {
    let count: i64 = bank_wallets::table
        .filter(bank_wallets::customer_id.eq(customer_id))
        .count()
        .get_result(conn)?;
    Column::new("bank_wallets", "customer_id").u64(count)
}

/// Inside the wallet transaction: the checks that need the database, then the insert.
fn insert_wallet(
    conn: &mut AnyConnection,
    record: &BankWalletRecord,
    new: &NewWallet<'_>,
) -> Result<(), StoreError> {
    if !lock_customer(conn, &record.customer_id)? {
        return Err(invalid("bank_wallet", "customer_id", "names no customer"));
    }
    let max = u64::from(MAX_WALLETS_PER_CUSTOMER);
    if count_wallets(conn, &record.customer_id)? >= max {
        let customer_id = record.customer_id.clone();
        return Err(StoreError::TooManyWallets { customer_id, max });
    }
    match diesel::insert_into(bank_wallets::table).values(new).execute(conn) {
        Ok(_) => Ok(()),
        Err(error) if is_unique_violation(&error) => {
            Err(StoreError::Duplicate { what: "wallet_id" })
        }
        Err(error) => Err(error.into()),
    }
}

fn load_payment(
    conn: &mut AnyConnection,
    query: bank_payments::BoxedQuery<'_, MultiBackend>,
) -> Result<Option<PaymentRecord>, StoreError> {
    let row: Option<PaymentRow> = query.select(PaymentRow::as_select()).first(conn).optional()?;
    row.map(PaymentRecord::try_from).transpose()
}

fn payment_with_key<'a>(
    principal: &'a str,
    idempotency_key: &'a str,
) -> bank_payments::BoxedQuery<'a, MultiBackend> {
    bank_payments::table
        .filter(bank_payments::principal.eq(principal))
        .filter(bank_payments::idempotency_key.eq(idempotency_key))
        .into_boxed()
}

fn payment_with_id(tx_id: &[u8; 16]) -> bank_payments::BoxedQuery<'_, MultiBackend> {
    bank_payments::table.filter(bank_payments::tx_id.eq(tx_id.as_slice())).into_boxed()
}

impl Store {
    /// Creates a customer.
    ///
    /// A username, holder_ref or customer_id already stored is [`StoreError::Duplicate`] naming
    /// it (`"username"` first, then `"holder_ref"`, then `"customer_id"`); the stored customers
    /// are then unchanged. A field out of bounds is [`StoreError::FieldLength`] or
    /// [`StoreError::InvalidField`].
    pub fn create_customer(&mut self, record: &CustomerRecord) -> Result<(), StoreError> {
        let new = NewCustomer::from_record(record)?;
        match diesel::insert_into(bank_customers::table).values(&new).execute(&mut self.conn) {
            Ok(_) => Ok(()),
            Err(error) if is_unique_violation(&error) => {
                match taken_customer_column(&mut self.conn, record)? {
                    Some(what) => Err(StoreError::Duplicate { what }),
                    None => Err(error.into()),
                }
            }
            Err(error) => Err(error.into()),
        }
    }

    /// The customer with this id, if there is one.
    pub fn customer(&mut self, customer_id: &str) -> Result<Option<CustomerRecord>, StoreError> {
        let query =
            bank_customers::table.filter(bank_customers::customer_id.eq(customer_id)).into_boxed();
        load_customer(&mut self.conn, query)
    }

    /// The customer who signs in as `username`, if there is one.
    pub fn customer_by_username(
        &mut self,
        username: &str,
    ) -> Result<Option<CustomerRecord>, StoreError> {
        let query =
            bank_customers::table.filter(bank_customers::username.eq(username)).into_boxed();
        load_customer(&mut self.conn, query)
    }

    /// The customer with this holder reference (the person), if there is one.
    pub fn customer_by_holder(
        &mut self,
        holder_ref: &[u8; 32],
    ) -> Result<Option<CustomerRecord>, StoreError> {
        let query = bank_customers::table
            .filter(bank_customers::holder_ref.eq(holder_ref.as_slice()))
            .into_boxed();
        load_customer(&mut self.conn, query)
    }

    /// Customers in customer_id order with an id above `after` (all when `None`), at most
    /// `min(limit, MAX_CUSTOMERS_PAGE)`. Pass the last customer's id as the next `after`.
    pub fn customers(
        &mut self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<CustomerRecord>, StoreError> {
        let mut query =
            bank_customers::table.select(CustomerRow::as_select()).into_boxed::<'_, MultiBackend>();
        if let Some(after) = after {
            query = query.filter(bank_customers::customer_id.gt(after));
        }
        let rows: Vec<CustomerRow> = query
            .order(bank_customers::customer_id.asc())
            .limit(i64::from(limit.min(MAX_CUSTOMERS_PAGE)))
            .load(&mut self.conn)?;
        rows.into_iter().map(CustomerRecord::try_from).collect()
    }

    /// Sets a customer's tier (at most [`MAX_CUSTOMER_TIER`]); `Ok(false)` if there is no such
    /// customer.
    pub fn set_customer_tier(&mut self, customer_id: &str, tier: u8) -> Result<bool, StoreError> {
        check_tier(tier)?;
        let target = bank_customers::table.filter(bank_customers::customer_id.eq(customer_id));
        let updated = diesel::update(target)
            .set(bank_customers::tier.eq(i16::from(tier)))
            .execute(&mut self.conn)?;
        Ok(updated == 1)
    }

    /// Sets a customer's status; `Ok(false)` if there is no such customer.
    pub fn set_customer_status(
        &mut self,
        customer_id: &str,
        status: CustomerStatus,
    ) -> Result<bool, StoreError> {
        let target = bank_customers::table.filter(bank_customers::customer_id.eq(customer_id));
        let updated = diesel::update(target)
            .set(bank_customers::status.eq(status.code()))
            .execute(&mut self.conn)?;
        Ok(updated == 1)
    }

    /// Creates a wallet of an existing customer.
    ///
    /// A custodial wallet needs its sealed `key` and a self-custody wallet must not have one
    /// ([`StoreError::InvalidField`]), as must an unknown customer. A customer with
    /// [`MAX_WALLETS_PER_CUSTOMER`] wallets already is [`StoreError::TooManyWallets`]; a taken
    /// wallet id is [`StoreError::Duplicate`] (`"wallet_id"`). Nothing is stored then.
    pub fn create_bank_wallet(&mut self, record: &BankWalletRecord) -> Result<(), StoreError> {
        let new = NewWallet::from_record(record)?;
        self.conn.write_transaction(|conn| insert_wallet(conn, record, &new))
    }

    /// The wallet with this id, if the bank has it.
    pub fn bank_wallet(
        &mut self,
        wallet_id: &[u8; 16],
    ) -> Result<Option<BankWalletRecord>, StoreError> {
        let row: Option<WalletRow> = bank_wallets::table
            .select(WalletRow::as_select())
            .filter(bank_wallets::wallet_id.eq(wallet_id.as_slice()))
            .first(&mut self.conn)
            .optional()?;
        row.map(BankWalletRecord::try_from).transpose()
    }

    /// A customer's wallets, oldest first (by created_ms, then wallet_id): all of them, since
    /// a customer has at most [`MAX_WALLETS_PER_CUSTOMER`].
    pub fn wallets_of_customer(
        &mut self,
        customer_id: &str,
    ) -> Result<Vec<BankWalletRecord>, StoreError> {
        let rows: Vec<WalletRow> = bank_wallets::table
            .select(WalletRow::as_select())
            .filter(bank_wallets::customer_id.eq(customer_id))
            .order((bank_wallets::created_ms.asc(), bank_wallets::wallet_id.asc()))
            .limit(i64::from(MAX_WALLETS_PER_CUSTOMER))
            .load(&mut self.conn)?;
        rows.into_iter().map(BankWalletRecord::try_from).collect()
    }

    /// How many wallets a customer has.
    pub fn count_wallets_of_customer(&mut self, customer_id: &str) -> Result<u64, StoreError> {
        count_wallets(&mut self.conn, customer_id)
    }

    /// Links a sealed deposit account to a wallet, replacing any, or unlinks it (`None`);
    /// `Ok(false)` if the bank has no such wallet.
    pub fn set_wallet_account(
        &mut self,
        wallet_id: &[u8; 16],
        account: Option<&Sealed>,
    ) -> Result<bool, StoreError> {
        check_sealed("account", account, MAX_ACCOUNT_CIPHERTEXT_BYTES)?;
        let (nonce, ciphertext) = sealed_columns(account);
        let target = bank_wallets::table.filter(bank_wallets::wallet_id.eq(wallet_id.as_slice()));
        let updated = diesel::update(target)
            .set((
                bank_wallets::account_nonce.eq(nonce),
                bank_wallets::account_ciphertext.eq(ciphertext),
            ))
            .execute(&mut self.conn)?;
        Ok(updated == 1)
    }

    /// Stores a payment unless its principal already used its idempotency key, in one write
    /// transaction: [`PaymentInsert::Inserted`], or [`PaymentInsert::Existing`] with the stored
    /// payment, unchanged, whatever its body hash (the caller compares it).
    ///
    /// Of concurrent inserts with one key exactly one is `Inserted`; the others get `Existing`.
    /// A new key with a tx_id already stored is [`StoreError::Duplicate`] (`"tx_id"`); a field
    /// out of bounds is [`StoreError::FieldLength`] or [`StoreError::InvalidField`].
    pub fn insert_payment(&mut self, record: &PaymentRecord) -> Result<PaymentInsert, StoreError> {
        let new = NewPayment::from_record(record)?;
        let (principal, key) = (record.principal.as_str(), record.idempotency_key.as_str());
        let attempt = self.conn.write_transaction(|conn| {
            if let Some(stored) = load_payment(conn, payment_with_key(principal, key))? {
                return Ok(PaymentInsert::Existing(stored));
            }
            diesel::insert_into(bank_payments::table).values(&new).execute(conn)?;
            Ok(PaymentInsert::Inserted)
        });
        match attempt {
            // Another writer committed the key (or the tx_id) between our read and our insert,
            // which rolled back. A unique check waits for that writer, and payments are never
            // deleted: its row is there to read.
            Err(StoreError::Query(error)) if is_unique_violation(&error) => {
                if let Some(stored) =
                    load_payment(&mut self.conn, payment_with_key(principal, key))?
                {
                    return Ok(PaymentInsert::Existing(stored));
                }
                if load_payment(&mut self.conn, payment_with_id(&record.tx_id))?.is_some() {
                    return Err(StoreError::Duplicate { what: "tx_id" });
                }
                Err(error.into())
            }
            outcome => outcome,
        }
    }

    /// The payment with this transaction id, if there is one.
    pub fn payment(&mut self, tx_id: &[u8; 16]) -> Result<Option<PaymentRecord>, StoreError> {
        load_payment(&mut self.conn, payment_with_id(tx_id))
    }

    /// The payment `principal` made under `idempotency_key`, if there is one.
    pub fn payment_by_key(
        &mut self,
        principal: &str,
        idempotency_key: &str,
    ) -> Result<Option<PaymentRecord>, StoreError> {
        load_payment(&mut self.conn, payment_with_key(principal, idempotency_key))
    }

    /// Pending payments, oldest first (by created_ms, then tx_id), at most
    /// `min(limit, MAX_PAYMENTS_PAGE)`: the settlement worker's queue.
    pub fn pending_payments(&mut self, limit: u32) -> Result<Vec<PaymentRecord>, StoreError> {
        let rows: Vec<PaymentRow> = bank_payments::table
            .select(PaymentRow::as_select())
            .filter(bank_payments::state.eq(PaymentState::Pending.code()))
            .order((bank_payments::created_ms.asc(), bank_payments::tx_id.asc()))
            .limit(i64::from(limit.min(MAX_PAYMENTS_PAGE)))
            .load(&mut self.conn)?;
        rows.into_iter().map(PaymentRecord::try_from).collect()
    }

    /// Settles a pending payment as committed (with its block's height and timestamp, if
    /// known) or failed (with the ledger's rejection code, if any), if, and only if, it is
    /// pending now (compare and set, one statement). `Ok(false)` if it is settled already or
    /// does not exist, and nothing changes: of two workers settling it, exactly one gets
    /// `Ok(true)`.
    ///
    /// `state` must not be pending, and the other values must agree with it (see
    /// [`PaymentRecord`]), or it is [`StoreError::InvalidField`] and nothing changes.
    pub fn settle_payment(
        &mut self,
        tx_id: &[u8; 16],
        state: PaymentState,
        height: Option<u64>,
        timestamp_ms: Option<u64>,
        rejection: Option<&str>,
    ) -> Result<bool, StoreError> {
        if state == PaymentState::Pending {
            return Err(invalid("payment", "state", "settles as committed or failed"));
        }
        check_settlement(state, height, timestamp_ms, rejection)?;
        let height = optional_i64("height", height)?;
        let timestamp_ms = optional_i64("timestamp_ms", timestamp_ms)?;
        let target = bank_payments::table
            .filter(bank_payments::tx_id.eq(tx_id.as_slice()))
            .filter(bank_payments::state.eq(PaymentState::Pending.code()));
        let updated = diesel::update(target)
            .set((
                bank_payments::state.eq(state.code()),
                bank_payments::height.eq(height),
                bank_payments::timestamp_ms.eq(timestamp_ms),
                bank_payments::rejection.eq(rejection),
            ))
            .execute(&mut self.conn)?;
        Ok(updated == 1)
    }

    /// Creates a payment request. A taken request id is [`StoreError::Duplicate`]
    /// (`"request_id"`); a field out of bounds is [`StoreError::FieldLength`] or
    /// [`StoreError::InvalidField`].
    pub fn create_payment_request(
        &mut self,
        record: &PaymentRequestRecord,
    ) -> Result<(), StoreError> {
        let new = NewPaymentRequest::from_record(record)?;
        match diesel::insert_into(bank_payment_requests::table).values(&new).execute(&mut self.conn)
        {
            Ok(_) => Ok(()),
            Err(error) if is_unique_violation(&error) => {
                Err(StoreError::Duplicate { what: "request_id" })
            }
            Err(error) => Err(error.into()),
        }
    }

    /// The payment request with this id, if there is one.
    pub fn payment_request(
        &mut self,
        request_id: &[u8; 16],
    ) -> Result<Option<PaymentRequestRecord>, StoreError> {
        let row: Option<PaymentRequestRow> = bank_payment_requests::table
            .select(PaymentRequestRow::as_select())
            .filter(bank_payment_requests::request_id.eq(request_id.as_slice()))
            .first(&mut self.conn)
            .optional()?;
        row.map(PaymentRequestRecord::try_from).transpose()
    }

    /// Marks an open payment request paid by `tx_id`, if, and only if, it is open now (compare
    /// and set): `Ok(false)` if it is paid already or does not exist, and nothing changes.
    pub fn mark_request_paid(
        &mut self,
        request_id: &[u8; 16],
        tx_id: &[u8; 16],
    ) -> Result<bool, StoreError> {
        let target = bank_payment_requests::table
            .filter(bank_payment_requests::request_id.eq(request_id.as_slice()))
            .filter(bank_payment_requests::state.eq(PaymentRequestState::Open.code()));
        let updated = diesel::update(target)
            .set((
                bank_payment_requests::state.eq(PaymentRequestState::Paid.code()),
                bank_payment_requests::paid_tx_id.eq(tx_id.as_slice()),
            ))
            .execute(&mut self.conn)?;
        Ok(updated == 1)
    }

    /// The projected history rows of one transaction (its debit and credit, in every
    /// projection that holds it), in id order, at most [`MAX_TX_HISTORY_ROWS`].
    pub fn history_of_tx(&mut self, tx_id: &[u8; 16]) -> Result<Vec<HistoryEntry>, StoreError> {
        let records: Vec<HistoryRecord> = wallet_history::table
            .select(HistoryRecord::as_select())
            .filter(wallet_history::tx_id.eq(tx_id.as_slice()))
            .order(wallet_history::id.asc())
            .limit(i64::from(MAX_TX_HISTORY_ROWS))
            .load(&mut self.conn)?;
        records.into_iter().map(HistoryEntry::try_from).collect()
    }

    /// The newest stored snapshot at or below `height`, if any.
    pub fn snapshot_at_or_below(
        &mut self,
        height: u64,
    ) -> Result<Option<StoredSnapshot>, StoreError> {
        // Every stored height fits an i64: a larger bound is no bound.
        let bound = i64::try_from(height).unwrap_or(i64::MAX);
        let record: Option<SnapshotRecord> = snapshots::table
            .select(SnapshotRecord::as_select())
            .filter(snapshots::height.le(bound))
            .order(snapshots::height.desc())
            .first(&mut self.conn)
            .optional()?;
        record.map(StoredSnapshot::try_from).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_codes_are_frozen() {
        assert_eq!(CustomerStatus::Active.code(), 1);
        assert_eq!(CustomerStatus::Closed.code(), 2);
        assert_eq!(Custody::Custodial.code(), 1);
        assert_eq!(Custody::SelfCustody.code(), 2);
        assert_eq!(PaymentState::Pending.code(), 1);
        assert_eq!(PaymentState::Committed.code(), 2);
        assert_eq!(PaymentState::Failed.code(), 3);
        assert_eq!(PaymentRequestState::Open.code(), 1);
        assert_eq!(PaymentRequestState::Paid.code(), 2);
        let column = Column::new("bank_payments", "state");
        for state in PaymentState::ALL {
            assert_eq!(PaymentState::from_code(column, state.code()).unwrap(), *state);
        }
        for unknown in [0, 4, -1, i16::MAX] {
            assert!(matches!(
                PaymentState::from_code(column, unknown),
                Err(StoreError::CorruptRow { column: "state", .. })
            ));
        }
    }

    #[test]
    fn customer_ids_are_32_lowercase_hex_digits() {
        assert!(check_customer_id("customer", &"0a".repeat(16)).is_ok());
        for bad in ["0A".repeat(16), "g".repeat(32), "0".repeat(31), "0".repeat(33), String::new()]
        {
            assert!(check_customer_id("customer", &bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn settlement_columns_must_agree_with_the_state() {
        use PaymentState::*;
        assert!(check_settlement(Pending, None, None, None).is_ok());
        assert!(check_settlement(Committed, Some(1), Some(5), None).is_ok());
        assert!(check_settlement(Committed, None, None, None).is_ok(), "height not known");
        assert!(check_settlement(Failed, None, None, Some("expired")).is_ok());
        assert!(check_settlement(Failed, None, None, None).is_ok());
        let field = |outcome: Result<(), StoreError>| match outcome {
            Err(StoreError::InvalidField { field, .. } | StoreError::FieldLength { field, .. }) => {
                field
            }
            other => panic!("{other:?}"),
        };
        assert_eq!(field(check_settlement(Committed, Some(0), None, None)), "height");
        assert_eq!(field(check_settlement(Pending, Some(3), None, None)), "height");
        assert_eq!(field(check_settlement(Failed, None, Some(3), None)), "timestamp_ms");
        assert_eq!(field(check_settlement(Committed, Some(1), None, Some("x"))), "rejection");
        assert_eq!(field(check_settlement(Failed, None, None, Some(""))), "rejection");
        assert_eq!(field(check_settlement(Failed, None, None, Some(&"r".repeat(65)))), "rejection");
    }
}
