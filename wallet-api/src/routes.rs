//! The retail routes under `/v1`, generic over the bank behind them ([`WalletBackend`], installed
//! by the intermediary as `web::Data<B>`).
//!
//! Every handler does the same steps in the same order, and calls the backend only once all of
//! them passed:
//! 1. authenticate: `Authorization: Bearer <token>`, checked by the backend, role `customer`
//!    (401 `unauthorized`, 403 `forbidden`); only `POST /v1/auth/token` is open;
//! 2. path ids: lowercase or uppercase hex of the right length (400 `invalid_id`);
//! 3. `Idempotency-Key` on the two payment routes (400 `idempotency_key_required` /
//!    `invalid_idempotency_key`);
//! 4. the body: `application/json` (415), at most [`MAX_BODY_BYTES`] (413, refused from the
//!    `Content-Length` alone or as soon as a streamed body passes the limit, never buffered),
//!    well-formed (400 `malformed_json`), no unknown field (400 `unknown_field`), the right
//!    types (400 `invalid_body`), then the field rules (`invalid_amount`, `invalid_reference`,
//!    ...).
//!
//! Errors are RFC 7807 `application/problem+json` with a stable snake_case `code`
//! ([`problem`]). What this module must never do: panic or answer 5xx on anything a client
//! sends, read a body before the caller is authenticated, or decide about money (balances,
//! limits, ownership, duplicates are the backend's and the ledger's).

use crate::backend::{ApiError, Idempotency, Payment, Principal, WalletBackend};
use crate::model::{
    CreatePaymentRequest, Custody, DEFAULT_PAGE, LoginRequest, MAX_IDEMPOTENCY_KEY_BYTES, MAX_PAGE,
    MAX_REFERENCE_BYTES, OpenWalletRequest, PaymentRequest, PaymentStatus, Receipt,
    SignedPaymentRequest,
};
use actix_web::dev::JsonBody;
use actix_web::error::{InternalError, JsonPayloadError, PayloadError};
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use cbdc_ledger::{Amount, Decode, PublicKey, SignedTransaction, TxId, TxKind, WalletId};
use cbdc_service::auth::Role;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Largest request body, in bytes (a signed transfer is well under 1 KiB of hex).
pub const MAX_BODY_BYTES: usize = 16 * 1024;
/// The header that makes a payment safe to retry.
pub const IDEMPOTENCY_KEY_HEADER: &str = "Idempotency-Key";
/// Longest bearer token accepted, in bytes (a JWT here is a few hundred).
pub const MAX_BEARER_BYTES: usize = 4 * 1024;
/// Longest username at login, in bytes.
pub const MAX_USERNAME_BYTES: usize = 128;
/// Longest password at login, in bytes.
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// Longest history cursor (a decimal `u64`).
const MAX_CURSOR_BYTES: usize = 20;

/// Registers every wallet route, and a `not_found` problem as the default service. Each path
/// answers 405 `method_not_allowed` (with `Allow`) to methods it does not serve.
pub fn configure<B: WalletBackend>(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/v1/auth/token", "POST").route(web::post().to(login::<B>)))
        .service(resource("/v1/network", "GET").route(web::get().to(network::<B>)))
        .service(
            resource("/v1/wallets", "GET, POST")
                .route(web::get().to(wallets::<B>))
                .route(web::post().to(open_wallet::<B>)),
        )
        .service(resource("/v1/wallets/{wallet_id}", "GET").route(web::get().to(balance::<B>)))
        .service(
            resource("/v1/wallets/{wallet_id}/payments", "POST").route(web::post().to(pay::<B>)),
        )
        .service(resource("/v1/payments", "POST").route(web::post().to(pay_signed::<B>)))
        .service(resource("/v1/payments/{tx_id}", "GET").route(web::get().to(payment::<B>)))
        .service(
            resource("/v1/wallets/{wallet_id}/history", "GET").route(web::get().to(history::<B>)),
        )
        .service(
            resource("/v1/wallets/{wallet_id}/payment-requests", "POST")
                .route(web::post().to(create_payment_request::<B>)),
        )
        .service(
            resource("/v1/payment-requests/{id}", "GET").route(web::get().to(payment_request::<B>)),
        )
        .default_service(web::to(not_found));
}

/// A path whose unserved methods get a 405 problem naming the `allow`ed ones.
fn resource(path: &str, allow: &'static str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(move || method_not_allowed(allow)))
}

/// The answer for a path no route serves.
pub async fn not_found() -> HttpResponse {
    problem(&ApiError::not_found("endpoint"))
}

async fn method_not_allowed(allow: &'static str) -> HttpResponse {
    let mut response =
        problem(&ApiError::new(405, "method_not_allowed", format!("this endpoint allows {allow}")));
    response.headers_mut().insert(header::ALLOW, header::HeaderValue::from_static(allow));
    response
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        status_of(self)
    }

    fn error_response(&self) -> HttpResponse {
        problem(self)
    }
}

/// An error's status; anything that is not a 4xx or 5xx is a backend bug, answered as 500.
fn status_of(err: &ApiError) -> StatusCode {
    match StatusCode::from_u16(err.status) {
        Ok(status) if status.is_client_error() || status.is_server_error() => status,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// An RFC 7807 `application/problem+json` answer: `type`, `title`, `status`, `code`, `detail`,
/// as every service of the platform writes them (`cbdc_service::http::problem`).
pub fn problem(err: &ApiError) -> HttpResponse {
    cbdc_service::http::problem(status_of(err), &err.code, &err.detail)
}

/// The problem for a body actix could not read as JSON.
pub fn json_error(err: &JsonPayloadError) -> ApiError {
    match err {
        JsonPayloadError::OverflowKnownLength { .. }
        | JsonPayloadError::Overflow { .. }
        | JsonPayloadError::Payload(PayloadError::Overflow) => ApiError::new(
            413,
            "body_too_large",
            format!("the body is larger than {MAX_BODY_BYTES} bytes"),
        ),
        JsonPayloadError::ContentType => ApiError::new(
            415,
            "unsupported_media_type",
            "the body must be JSON (Content-Type: application/json)",
        ),
        JsonPayloadError::Deserialize(e) => serde_error(e),
        _ => ApiError::bad_request("invalid_body", "the body could not be read"),
    }
}

/// Sorts serde's complaint into a stable code; its text (which names only the field or the
/// value the client sent) becomes the detail.
fn serde_error(e: &serde_json::Error) -> ApiError {
    use serde_json::error::Category;
    let detail = e.to_string();
    match e.classify() {
        Category::Syntax | Category::Eof | Category::Io => {
            ApiError::bad_request("malformed_json", detail)
        }
        Category::Data if detail.starts_with("unknown field") => {
            ApiError::bad_request("unknown_field", detail)
        }
        Category::Data => ApiError::bad_request("invalid_body", detail),
    }
}

/// The JSON extractor configuration of these routes, for other APIs of the bank (its operator
/// API) to install with `app_data`: the same limit and the same problems.
pub fn json_config() -> web::JsonConfig {
    web::JsonConfig::default().limit(MAX_BODY_BYTES).error_handler(|err, _| {
        let response = problem(&json_error(&err));
        InternalError::from_response(err, response).into()
    })
}

/// The raw-body (`web::Bytes`, `String`) limit to install next to [`json_config`].
pub fn payload_config() -> web::PayloadConfig {
    web::PayloadConfig::new(MAX_BODY_BYTES)
}

/// The `web::Query` extractor configuration for other APIs of the bank: a query that does not
/// parse is 400 `invalid_query`.
pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|err, _| {
        let response = problem(&ApiError::bad_request("invalid_query", err.to_string()));
        InternalError::from_response(err, response).into()
    })
}

/// The `web::Path` extractor configuration for other APIs of the bank: a path segment that
/// does not parse (an id, a number) is 400 `invalid_id`.
pub fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|err, _| {
        let response = problem(&ApiError::bad_request("invalid_id", err.to_string()));
        InternalError::from_response(err, response).into()
    })
}

/// Reads a bounded JSON body. Called only after authentication.
pub async fn read_json<T: DeserializeOwned>(
    req: &HttpRequest,
    payload: web::Payload,
) -> Result<T, ApiError> {
    let mut payload = payload.into_inner();
    JsonBody::<T>::new(req, &mut payload, None, true)
        .limit(MAX_BODY_BYTES)
        .await
        .map_err(|e| json_error(&e))
}

/// The token of `Authorization: Bearer <token>` (scheme case-insensitive), or 401.
pub fn require_bearer(req: &HttpRequest) -> Result<&str, ApiError> {
    let value = req.headers().get(header::AUTHORIZATION).ok_or_else(ApiError::unauthorized)?;
    let value = value.to_str().map_err(|_| ApiError::unauthorized())?;
    let (scheme, token) = value.split_once(' ').ok_or_else(ApiError::unauthorized)?;
    let token = token.trim();
    let well_formed = scheme.eq_ignore_ascii_case("bearer")
        && !token.is_empty()
        && token.len() <= MAX_BEARER_BYTES
        && token.bytes().all(|b| b.is_ascii_graphic());
    if well_formed { Ok(token) } else { Err(ApiError::unauthorized()) }
}

/// The authenticated caller, who must hold `role` (403 `forbidden` otherwise).
pub fn authenticate<B: WalletBackend>(
    req: &HttpRequest,
    backend: &B,
    role: Role,
) -> Result<Principal, ApiError> {
    let who = backend.authenticate(require_bearer(req)?)?;
    if who.role == role { Ok(who) } else { Err(ApiError::forbidden()) }
}

fn customer<B: WalletBackend>(req: &HttpRequest, backend: &B) -> Result<Principal, ApiError> {
    authenticate(req, backend, Role::Customer)
}

/// The request's `Idempotency-Key`: exactly one, 1 to [`MAX_IDEMPOTENCY_KEY_BYTES`] bytes of
/// printable ASCII.
pub fn idempotency_key(req: &HttpRequest) -> Result<String, ApiError> {
    let mut values = req.headers().get_all(IDEMPOTENCY_KEY_HEADER);
    let Some(value) = values.next() else {
        return Err(ApiError::bad_request(
            "idempotency_key_required",
            "payments need an Idempotency-Key header",
        ));
    };
    let bytes = value.as_bytes();
    let valid = values.next().is_none()
        && !bytes.is_empty()
        && bytes.len() <= MAX_IDEMPOTENCY_KEY_BYTES
        && bytes.iter().all(|b| (b' '..=b'~').contains(b));
    match value.to_str() {
        Ok(key) if valid => Ok(key.to_string()),
        _ => Err(ApiError::bad_request(
            "invalid_idempotency_key",
            format!(
                "one Idempotency-Key of 1 to {MAX_IDEMPOTENCY_KEY_BYTES} printable ASCII \
                 characters"
            ),
        )),
    }
}

/// SHA-256 of the parsed request re-serialized, so whitespace and field order do not count.
pub fn body_hash<T: Serialize>(body: &T) -> Result<[u8; 32], ApiError> {
    let canonical = serde_json::to_vec(body)
        .map_err(|_| ApiError::new(500, "internal", "the request could not be hashed"))?;
    let digest = ring::digest::digest(&ring::digest::SHA256, &canonical);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    Ok(out)
}

/// A wallet id from its hex form, or 400 `invalid_id`.
pub fn wallet_id(raw: &str) -> Result<WalletId, ApiError> {
    WalletId::from_hex(raw)
        .map_err(|_| ApiError::bad_request("invalid_id", "a wallet id is 32 hex digits (16 bytes)"))
}

fn tx_id(raw: &str, what: &str) -> Result<TxId, ApiError> {
    TxId::from_hex(raw)
        .map_err(|_| ApiError::bad_request("invalid_id", format!("{what} is 32 hex digits")))
}

/// A non-zero amount the ledger can hold.
fn amount(minor: u64) -> Result<Amount, ApiError> {
    match Amount::from_minor(minor) {
        Ok(amount) if !amount.is_zero() => Ok(amount),
        _ => Err(ApiError::bad_request(
            "invalid_amount",
            format!("amount_minor must be from 1 to {}", Amount::MAX_MINOR),
        )),
    }
}

/// At most [`MAX_REFERENCE_BYTES`], no control characters (references end up in statements).
fn reference(text: &str, required: bool) -> Result<(), ApiError> {
    let valid = text.len() <= MAX_REFERENCE_BYTES
        && !text.chars().any(char::is_control)
        && (!required || !text.is_empty());
    if valid {
        Ok(())
    } else {
        let need = if required { "1" } else { "0" };
        Err(ApiError::bad_request(
            "invalid_reference",
            format!(
                "a reference is {need} to {MAX_REFERENCE_BYTES} bytes without control characters"
            ),
        ))
    }
}

fn check_login(request: &LoginRequest) -> Result<(), ApiError> {
    let username = (1..=MAX_USERNAME_BYTES).contains(&request.username.len());
    let password = (1..=MAX_PASSWORD_BYTES).contains(&request.password.len());
    if username && password {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "invalid_body",
            format!(
                "username of 1 to {MAX_USERNAME_BYTES} bytes and password of 1 to \
                 {MAX_PASSWORD_BYTES} bytes required"
            ),
        ))
    }
}

/// Self-custody wallets bring their key (normalized to lowercase hex); custodial ones do not.
fn check_open_wallet(mut request: OpenWalletRequest) -> Result<OpenWalletRequest, ApiError> {
    let invalid = |detail: &str| ApiError::bad_request("invalid_public_key", detail);
    match (request.custody, request.public_key.as_deref()) {
        (Custody::SelfCustody, None) => {
            return Err(invalid("a self_custody wallet needs its public_key"));
        }
        (Custody::Custodial, Some(_)) => {
            return Err(invalid("the bank makes the key of a custodial wallet"));
        }
        (Custody::SelfCustody, Some(key)) => {
            let key = PublicKey::from_hex(key)
                .map_err(|_| invalid("public_key is 64 hex digits (an Ed25519 key)"))?;
            request.public_key = Some(key.to_hex());
        }
        (Custody::Custodial, None) => {}
    }
    Ok(request)
}

fn check_payment(from: WalletId, request: &PaymentRequest) -> Result<Payment, ApiError> {
    let to = wallet_id(&request.to_wallet)?;
    let amount_minor = amount(request.amount_minor)?.minor();
    if let Some(text) = &request.reference {
        reference(text, false)?;
    }
    let payment_request = match &request.payment_request_id {
        Some(id) => Some(tx_id(id, "payment_request_id")?),
        None => None,
    };
    Ok(Payment { from, to, amount_minor, reference: request.reference.clone(), payment_request })
}

/// A self-custody payment: a signed single-leg transfer in the ledger's encoding. Signatures
/// and ownership are the backend's and the ledger's to check.
fn check_signed(request: &SignedPaymentRequest) -> Result<SignedTransaction, ApiError> {
    let invalid = |detail: String| ApiError::bad_request("invalid_transaction", detail);
    let bytes = hex::decode(&request.transaction)
        .map_err(|_| invalid("transaction is not hex".to_string()))?;
    let tx = SignedTransaction::decode(&bytes).map_err(|e| invalid(e.to_string()))?;
    let TxKind::Transfer { legs } = &tx.body.kind else {
        return Err(invalid(format!("a {} is not a payment", tx.body.kind.name())));
    };
    let [leg] = legs.as_slice() else {
        return Err(invalid(format!("a payment has exactly one leg, not {}", legs.len())));
    };
    amount(leg.amount.minor())?;
    Ok(tx)
}

/// The answer to a payment: 200 committed, 202 pending (poll `Location`), 422 failed.
fn payment_answer(receipt: Receipt) -> Result<HttpResponse, ApiError> {
    let location = receipt.status_url.clone();
    payment_answer_at(receipt, &location)
}

/// A payment's answer: 200 committed, 202 pending with `Location: location`, 422 failed with
/// the rejection as the problem's code. The bank's other money-moving routes answer the same.
pub fn payment_answer_at(receipt: Receipt, location: &str) -> Result<HttpResponse, ApiError> {
    match receipt.status {
        PaymentStatus::Committed => Ok(HttpResponse::Ok().json(receipt)),
        PaymentStatus::Pending => {
            Ok(HttpResponse::Accepted().insert_header((header::LOCATION, location)).json(receipt))
        }
        PaymentStatus::Failed => {
            let code = receipt
                .rejection
                .filter(|code| !code.is_empty())
                .unwrap_or_else(|| "payment_failed".to_string());
            Err(ApiError::new(422, &code, format!("payment {} failed: {code}", receipt.tx_id)))
        }
    }
}

async fn login<B: WalletBackend>(
    req: HttpRequest,
    backend: web::Data<B>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let request: LoginRequest = read_json(&req, payload).await?;
    check_login(&request)?;
    let token = backend.login(request).await?;
    // A token must not linger in caches (RFC 6749 section 5.1).
    Ok(HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "no-store")).json(token))
}

async fn network<B: WalletBackend>(
    req: HttpRequest,
    backend: web::Data<B>,
) -> Result<HttpResponse, ApiError> {
    customer(&req, backend.get_ref())?;
    Ok(HttpResponse::Ok().json(backend.network().await?))
}

async fn wallets<B: WalletBackend>(
    req: HttpRequest,
    backend: web::Data<B>,
) -> Result<HttpResponse, ApiError> {
    let who = customer(&req, backend.get_ref())?;
    Ok(HttpResponse::Ok().json(backend.wallets(&who).await?))
}

async fn open_wallet<B: WalletBackend>(
    req: HttpRequest,
    backend: web::Data<B>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let who = customer(&req, backend.get_ref())?;
    let request = check_open_wallet(read_json(&req, payload).await?)?;
    let wallet = backend.open_wallet(&who, request).await?;
    let location = format!("/v1/wallets/{}", wallet.wallet_id);
    Ok(HttpResponse::Created().insert_header((header::LOCATION, location)).json(wallet))
}

async fn balance<B: WalletBackend>(
    req: HttpRequest,
    backend: web::Data<B>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let who = customer(&req, backend.get_ref())?;
    let wallet = wallet_id(&path)?;
    Ok(HttpResponse::Ok().json(backend.balance(&who, wallet).await?))
}

async fn pay<B: WalletBackend>(
    req: HttpRequest,
    backend: web::Data<B>,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let who = customer(&req, backend.get_ref())?;
    let from = wallet_id(&path)?;
    let key = idempotency_key(&req)?;
    let request: PaymentRequest = read_json(&req, payload).await?;
    let idempotency = Idempotency { key, body_hash: body_hash(&request)? };
    let payment = check_payment(from, &request)?;
    payment_answer(backend.pay(&who, idempotency, payment).await?)
}

async fn pay_signed<B: WalletBackend>(
    req: HttpRequest,
    backend: web::Data<B>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let who = customer(&req, backend.get_ref())?;
    let key = idempotency_key(&req)?;
    let request: SignedPaymentRequest = read_json(&req, payload).await?;
    let idempotency = Idempotency { key, body_hash: body_hash(&request)? };
    let transaction = check_signed(&request)?;
    payment_answer(backend.pay_signed(&who, idempotency, transaction).await?)
}

async fn payment<B: WalletBackend>(
    req: HttpRequest,
    backend: web::Data<B>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let who = customer(&req, backend.get_ref())?;
    let tx = tx_id(&path, "a transaction id")?;
    Ok(HttpResponse::Ok().json(backend.payment(&who, tx).await?))
}

/// `?limit=&cursor=`, both optional, kept as text so that every bad value gets its own code.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct HistoryQuery {
    limit: Option<String>,
    cursor: Option<String>,
}

/// The page size and the cursor (a decimal `u64`) of a history query.
fn history_query(query: &str) -> Result<(u32, Option<u64>), ApiError> {
    let query = web::Query::<HistoryQuery>::from_query(query)
        .map_err(|e| ApiError::bad_request("invalid_query", e.to_string()))?
        .into_inner();
    let limit = match query.limit.as_deref() {
        None => DEFAULT_PAGE,
        Some(text) => match text.parse::<u32>() {
            Ok(limit) if (1..=MAX_PAGE).contains(&limit) => limit,
            _ => {
                return Err(ApiError::bad_request(
                    "invalid_page_size",
                    format!("limit must be from 1 to {MAX_PAGE}"),
                ));
            }
        },
    };
    let cursor = match query.cursor.as_deref() {
        None => None,
        Some(text) => {
            let digits = !text.is_empty()
                && text.len() <= MAX_CURSOR_BYTES
                && text.bytes().all(|b| b.is_ascii_digit());
            match text.parse::<u64>() {
                Ok(cursor) if digits => Some(cursor),
                _ => {
                    return Err(ApiError::bad_request(
                        "invalid_cursor",
                        "cursor must be a next_cursor this API returned",
                    ));
                }
            }
        }
    };
    Ok((limit, cursor))
}

async fn history<B: WalletBackend>(
    req: HttpRequest,
    backend: web::Data<B>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let who = customer(&req, backend.get_ref())?;
    let wallet = wallet_id(&path)?;
    let (limit, cursor) = history_query(req.query_string())?;
    Ok(HttpResponse::Ok().json(backend.history(&who, wallet, cursor, limit).await?))
}

async fn create_payment_request<B: WalletBackend>(
    req: HttpRequest,
    backend: web::Data<B>,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let who = customer(&req, backend.get_ref())?;
    let wallet = wallet_id(&path)?;
    let request: CreatePaymentRequest = read_json(&req, payload).await?;
    let amount_minor = amount(request.amount_minor)?.minor();
    reference(&request.reference, true)?;
    let view =
        backend.create_payment_request(&who, wallet, amount_minor, request.reference).await?;
    let location = format!("/v1/payment-requests/{}", view.payment_request_id);
    Ok(HttpResponse::Created().insert_header((header::LOCATION, location)).json(view))
}

async fn payment_request<B: WalletBackend>(
    req: HttpRequest,
    backend: web::Data<B>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let who = customer(&req, backend.get_ref())?;
    let id = tx_id(&path, "a payment request id")?;
    Ok(HttpResponse::Ok().json(backend.payment_request(&who, id).await?))
}

#[cfg(test)]
mod tests;
