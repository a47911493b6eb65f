//! The wallet API's JSON documents: what clients send (every request type refuses unknown
//! fields) and what the service answers. Amounts are integers in minor units (`u64`), ids are
//! lowercase hex (wallet and transaction ids 16 bytes, keys 32 bytes). These types are the
//! contract shared by the server (`routes`), the typed client (`client`) and the OpenAPI
//! document (`openapi.json`).

use serde::{Deserialize, Serialize};

/// The most entries one history page returns; larger `limit`s are refused.
pub const MAX_PAGE: u32 = 100;
/// The default history page size.
pub const DEFAULT_PAGE: u32 = 20;
/// Longest payment reference, in bytes.
pub const MAX_REFERENCE_BYTES: usize = 140;
/// Longest `Idempotency-Key`, in bytes (printable ASCII).
pub const MAX_IDEMPOTENCY_KEY_BYTES: usize = 64;

/// `POST /v1/auth/token`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
}

/// A bearer access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenResponse {
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the token expires.
    pub expires_in: u64,
    /// The role the token carries (`customer` or `bank_operator`).
    pub role: String,
}

/// Who keeps a wallet's signing key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Custody {
    /// The bank keeps the key (encrypted) and signs after authenticating the customer.
    Custodial,
    /// The customer keeps the key and sends signed transactions.
    SelfCustody,
}

/// The ledger class of a wallet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WalletClass {
    Retail,
    Merchant,
}

/// A wallet as its owner sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Wallet {
    pub wallet_id: String,
    pub bank_id: u32,
    pub class: WalletClass,
    pub custody: Custody,
    /// The key that authorizes payments (hex).
    pub public_key: String,
    pub tier: u8,
    /// `active`, `frozen` or `closed`.
    pub status: String,
    /// Linked to a deposit account: waterfall and reverse waterfall apply.
    pub linked: bool,
    pub balance_minor: u64,
}

/// `GET /v1/wallets`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalletList {
    pub wallets: Vec<Wallet>,
}

/// `POST /v1/wallets`: the customer opens another wallet at their tier; self-custody wallets
/// register the customer's public key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenWalletRequest {
    pub custody: Custody,
    /// Required for `self_custody`, refused for `custodial`.
    #[serde(default)]
    pub public_key: Option<String>,
    /// Default `retail`.
    #[serde(default)]
    pub class: Option<WalletClass>,
}

/// The tier limits that apply to a wallet's holder, and what is left of them. Holdings and
/// outflow count across all the holder's retail wallets at every bank.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    pub holding_limit_minor: u64,
    pub holdings_minor: u64,
    pub holding_remaining_minor: u64,
    pub per_payment_limit_minor: u64,
    pub daily_outflow_limit_minor: u64,
    pub outflow_today_minor: u64,
    pub outflow_remaining_minor: u64,
}

/// `GET /v1/wallets/{wallet_id}`: balance and remaining limits at a finalized height.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Balance {
    pub wallet: Wallet,
    /// Absent for merchant wallets (no holder limits).
    pub limits: Option<Limits>,
    /// The finalized height the figures are at.
    pub height: u64,
}

/// `POST /v1/wallets/{wallet_id}/payments` (custodial wallets; `Idempotency-Key` required).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentRequest {
    pub to_wallet: String,
    pub amount_minor: u64,
    /// Free text for the payer's records, at most [`MAX_REFERENCE_BYTES`]; not on the ledger.
    #[serde(default)]
    pub reference: Option<String>,
    /// Pays this payment request (its id, hex): the transaction id is the request id, so a
    /// request is paid at most once network-wide.
    #[serde(default)]
    pub payment_request_id: Option<String>,
}

/// `POST /v1/payments` (self-custody; `Idempotency-Key` required): a signed transfer in the
/// ledger's canonical encoding, hex.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedPaymentRequest {
    pub transaction: String,
}

/// Where a payment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    /// Submitted; not final yet (see `status_url`).
    Pending,
    /// Final in a block.
    Committed,
    /// Will never commit (refused, or expired unfinalized); `rejection` says why.
    Failed,
}

/// A payment's receipt: the answer to a payment and to `GET /v1/payments/{tx_id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    pub tx_id: String,
    pub status: PaymentStatus,
    pub from_wallet: String,
    pub to_wallet: String,
    pub amount_minor: u64,
    /// Block height, once committed.
    pub height: Option<u64>,
    /// Block time (ms since the Unix epoch), once committed.
    pub timestamp_ms: Option<u64>,
    /// The ledger's rejection code, when failed.
    pub rejection: Option<String>,
    /// Where to poll the payment: `/v1/payments/{tx_id}`.
    pub status_url: String,
}

/// `GET /v1/network`: what a self-custody client needs to sign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkInfo {
    pub chain_id: String,
    pub bank_id: u32,
    /// The finalized height.
    pub height: u64,
    /// The expiry height the bank recommends for a transaction signed now.
    pub recommended_expiry_height: u64,
}

/// One movement of money in a wallet's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub tx_id: String,
    pub height: u64,
    pub timestamp_ms: u64,
    /// `credit` or `debit`.
    pub direction: String,
    pub amount_minor: u64,
    pub counterparty_wallet: Option<String>,
    /// The ledger transaction kind (`transfer`, `mint`, ...).
    pub kind: String,
}

/// `GET /v1/wallets/{wallet_id}/history?limit=&cursor=`: newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryPage {
    pub entries: Vec<HistoryEntry>,
    /// Pass as `cursor` for the next (older) page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// `POST /v1/wallets/{wallet_id}/payment-requests`: a merchant asks to be paid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreatePaymentRequest {
    pub amount_minor: u64,
    /// The merchant's reference (invoice number), at most [`MAX_REFERENCE_BYTES`].
    pub reference: String,
}

/// A payment request as its merchant sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentRequestView {
    pub payment_request_id: String,
    pub payee_wallet: String,
    pub amount_minor: u64,
    pub reference: String,
    /// `open` or `paid`.
    pub status: String,
    /// The paying transaction, once paid.
    pub paid_tx_id: Option<String>,
    /// What the merchant shows as a QR code: `cbdc:pay?chain=..&to=..&amount=..&request=..&ref=..`
    /// (values percent-encoded); any payer's bank pays it with a [`PaymentRequest`].
    pub qr_payload: String,
}

/// The body of every error answer (`application/problem+json`, RFC 7807) with a stable `code`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub code: String,
    pub detail: String,
}
