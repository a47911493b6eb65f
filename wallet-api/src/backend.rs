//! What the retail routes need from the bank that mounts them. The intermediary implements
//! [`WalletBackend`]; the routes (`routes.rs`) do everything HTTP: parsing and bounding input,
//! the bearer token's presence, the `Idempotency-Key` header, status codes and problem+json.
//!
//! Handlers run on actix's single-threaded workers, so the futures need not be `Send`.

use crate::model::{
    Balance, HistoryPage, LoginRequest, NetworkInfo, OpenWalletRequest, PaymentRequestView,
    Receipt, TokenResponse, Wallet, WalletList,
};
use cbdc_ledger::{SignedTransaction, TxId, WalletId};

/// An error answer: HTTP status, stable snake_case code, human-readable detail (never PII).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub code: String,
    pub detail: String,
}

impl ApiError {
    pub fn new(status: u16, code: &str, detail: impl Into<String>) -> ApiError {
        ApiError { status, code: code.to_string(), detail: detail.into() }
    }
    pub fn bad_request(code: &str, detail: impl Into<String>) -> ApiError {
        ApiError::new(400, code, detail)
    }
    pub fn unauthorized() -> ApiError {
        ApiError::new(401, "unauthorized", "a valid bearer token is required")
    }
    pub fn forbidden() -> ApiError {
        ApiError::new(403, "forbidden", "this role may not use this endpoint")
    }
    /// Also used for another customer's wallet: its existence is not disclosed.
    pub fn not_found(what: &str) -> ApiError {
        ApiError::new(404, "not_found", format!("no such {what}"))
    }
    pub fn unavailable(detail: impl Into<String>) -> ApiError {
        ApiError::new(503, "unavailable", detail)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status, self.code, self.detail)
    }
}

impl std::error::Error for ApiError {}

/// The authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The token's subject (the username).
    pub username: String,
    pub role: cbdc_service::auth::Role,
    /// The bank's customer id, for customers.
    pub customer_id: Option<String>,
}

/// A validated `Idempotency-Key` and the SHA-256 of the request's canonical JSON (the parsed
/// body re-serialized), so the same key with another body can be told apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Idempotency {
    pub key: String,
    pub body_hash: [u8; 32],
}

/// A custodial payment after the routes checked its shape: ids decoded, amount non-zero,
/// reference bounded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    pub from: WalletId,
    pub to: WalletId,
    pub amount_minor: u64,
    pub reference: Option<String>,
    pub payment_request: Option<TxId>,
}

/// The bank behind the routes.
#[allow(async_fn_in_trait, reason = "actix handlers run on single-threaded workers")]
pub trait WalletBackend: 'static {
    /// Exchanges a username and password for a token (any role the bank issues).
    async fn login(&self, request: LoginRequest) -> Result<TokenResponse, ApiError>;
    /// Validates a bearer token (signature, issuer, audience, lifetime) and names its holder.
    fn authenticate(&self, bearer: &str) -> Result<Principal, ApiError>;
    async fn network(&self) -> Result<NetworkInfo, ApiError>;
    async fn wallets(&self, who: &Principal) -> Result<WalletList, ApiError>;
    async fn open_wallet(
        &self,
        who: &Principal,
        request: OpenWalletRequest,
    ) -> Result<Wallet, ApiError>;
    /// `not_found` for a wallet that is not the caller's.
    async fn balance(&self, who: &Principal, wallet: WalletId) -> Result<Balance, ApiError>;
    /// Pays from a custodial wallet of the caller. Waits for finality up to the bank's bound:
    /// the receipt is `committed`, `failed`, or still `pending`.
    async fn pay(
        &self,
        who: &Principal,
        idempotency: Idempotency,
        payment: Payment,
    ) -> Result<Receipt, ApiError>;
    /// Submits a transfer signed by the customer from one of their self-custody wallets.
    async fn pay_signed(
        &self,
        who: &Principal,
        idempotency: Idempotency,
        transaction: SignedTransaction,
    ) -> Result<Receipt, ApiError>;
    /// A payment from or to one of the caller's wallets.
    async fn payment(&self, who: &Principal, tx: TxId) -> Result<Receipt, ApiError>;
    /// Newest first, entries older than `cursor` (exclusive), at most `limit` (already bounded).
    async fn history(
        &self,
        who: &Principal,
        wallet: WalletId,
        cursor: Option<u64>,
        limit: u32,
    ) -> Result<HistoryPage, ApiError>;
    async fn create_payment_request(
        &self,
        who: &Principal,
        wallet: WalletId,
        amount_minor: u64,
        reference: String,
    ) -> Result<PaymentRequestView, ApiError>;
    async fn payment_request(
        &self,
        who: &Principal,
        id: TxId,
    ) -> Result<PaymentRequestView, ApiError>;
}
