//! The bank operations API under `/v1/ops`, for the bank's own staff (role `bank_operator`):
//! onboarding customers with their KYC data, opening and administering their wallets, funding
//! and defunding them from the bank's float, and linking deposit accounts.
//!
//! Personal data is sealed (AEAD) before it reaches the database and is never logged: logs
//! name customers by their random id only. The holder reference written to the ledger is a
//! keyed hash of the national id (see `sealing`). Every operator token is this bank's own, so
//! no other bank's staff can reach these customers.

#![allow(
    clippy::result_large_err,
    reason = "handlers answer early with a ready response; boxing it adds only noise"
)]

use crate::bank::{Bank, history_page, rejected, store_error};
use crate::sealing::normalize_national_id;
use actix_web::{HttpRequest, HttpResponse, web};
use cbdc_ledger::{KycTier, TxId, TxKind, WalletId};
use cbdc_service::auth::{Role, hash_password};
use cbdc_store::{CustomerRecord, CustomerStatus, Sealed, StoreError, UserRecord};
use serde::{Deserialize, Serialize};
use wallet_api::backend::{ApiError, Idempotency, Principal};
use wallet_api::model;
use wallet_api::routes::{
    authenticate, body_hash, idempotency_key, payment_answer_at, problem, read_json, wallet_id,
};

/// Longest name, address or document field, in bytes.
const MAX_TEXT_BYTES: usize = 256;
/// Documents per customer.
const MAX_DOCUMENTS: usize = 8;
/// Customers per page.
const MAX_CUSTOMERS_PAGE: u32 = 100;

/// What identifies the customer's verification, and so their tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verification {
    /// Phone number only: the anonymous tier 0 (lowest limits).
    None,
    /// Identity document checked remotely: tier 1.
    Basic,
    /// Identity verified in person: tier 2.
    Full,
}

impl Verification {
    fn tier(self) -> u8 {
        match self {
            Verification::None => 0,
            Verification::Basic => 1,
            Verification::Full => 2,
        }
    }
}

/// An identity document the bank has seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Document {
    /// `passport`, `id_card`, `residence_permit`, ...
    pub kind: String,
    /// The bank's reference to its copy (document number or archive id).
    pub reference: String,
}

/// `POST /v1/ops/customers`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OnboardRequest {
    pub name: String,
    /// `YYYY-MM-DD`.
    pub date_of_birth: String,
    pub national_id: String,
    pub address: String,
    #[serde(default)]
    pub documents: Vec<Document>,
    pub verification: Verification,
    /// The customer's login: 1 to 64 of `[a-z0-9._-]`.
    pub username: String,
}

/// The sealed personal data of a customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Kyc {
    pub name: String,
    pub date_of_birth: String,
    pub national_id: String,
    pub address: String,
    pub documents: Vec<Document>,
    pub verification: Verification,
}

#[derive(Debug, Serialize)]
struct Onboarded {
    customer_id: String,
    username: String,
    tier: u8,
    holder_ref: String,
    /// Shown once: the customer changes it at first login (the bank hands it over).
    initial_password: String,
}

#[derive(Debug, Serialize)]
struct CustomerSummary {
    customer_id: String,
    username: String,
    tier: u8,
    status: &'static str,
    created_ms: u64,
}

#[derive(Debug, Serialize)]
struct CustomerDetail {
    #[serde(flatten)]
    summary: CustomerSummary,
    kyc: Kyc,
    wallets: Vec<model::Wallet>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TierRequest {
    tier: u8,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct AmountRequest {
    amount_minor: u64,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct LinkRequest {
    /// The customer's deposit account (IBAN or internal number); sealed at rest.
    deposit_account: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PageQuery {
    after: Option<String>,
    limit: Option<u32>,
}

/// Registers the operations routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/ops/customers", web::post().to(onboard))
        .route("/v1/ops/customers", web::get().to(list_customers))
        .route("/v1/ops/customers/{customer_id}", web::get().to(customer))
        .route("/v1/ops/customers/{customer_id}/tier", web::post().to(set_tier))
        .route("/v1/ops/customers/{customer_id}/wallets", web::post().to(open_wallet))
        .route("/v1/ops/wallets/{wallet_id}", web::get().to(wallet))
        .route("/v1/ops/wallets/{wallet_id}/history", web::get().to(wallet_history))
        .route("/v1/ops/wallets/{wallet_id}/freeze", web::post().to(freeze))
        .route("/v1/ops/wallets/{wallet_id}/unfreeze", web::post().to(unfreeze))
        .route("/v1/ops/wallets/{wallet_id}/close", web::post().to(close))
        .route("/v1/ops/wallets/{wallet_id}/fund", web::post().to(fund))
        .route("/v1/ops/wallets/{wallet_id}/defund", web::post().to(defund))
        .route("/v1/ops/wallets/{wallet_id}/link", web::put().to(link))
        .route("/v1/ops/wallets/{wallet_id}/link", web::delete().to(unlink))
        .route("/v1/ops/payments/{tx_id}", web::get().to(payment))
        .route("/v1/ops/float", web::get().to(float));
}

/// The calling operator, or the answer to give.
fn operator(bank: &Bank, req: &HttpRequest) -> Result<Principal, HttpResponse> {
    authenticate(req, bank, Role::BankOperator).map_err(|e| problem(&e))
}

fn answer<T: Serialize>(status: u16, result: Result<T, ApiError>) -> HttpResponse {
    match result {
        Ok(body) => {
            let code = actix_web::http::StatusCode::from_u16(status)
                .unwrap_or(actix_web::http::StatusCode::OK);
            HttpResponse::build(code).json(body)
        }
        Err(error) => problem(&error),
    }
}

fn text(field: &str, value: &str) -> Result<(), ApiError> {
    if value.trim().is_empty()
        || value.len() > MAX_TEXT_BYTES
        || value.chars().any(char::is_control)
    {
        return Err(ApiError::bad_request(
            "invalid_kyc",
            format!("{field} must be 1 to {MAX_TEXT_BYTES} bytes without control characters"),
        ));
    }
    Ok(())
}

fn valid_date(value: &str) -> bool {
    let b = value.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter().enumerate().all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
        && value[5..7].parse::<u8>().is_ok_and(|m| (1..=12).contains(&m))
        && value[8..10].parse::<u8>().is_ok_and(|d| (1..=31).contains(&d))
}

fn valid_username(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 64
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
}

/// The `Idempotency-Key` of a money-moving operator call, with the hash of what it asks.
fn idempotency<T: Serialize>(req: &HttpRequest, body: &T) -> Result<Idempotency, ApiError> {
    Ok(Idempotency { key: idempotency_key(req)?, body_hash: body_hash(body)? })
}

/// Authenticates the operator, then reads the bounded JSON body (so an anonymous caller learns
/// nothing about the body's shape).
async fn operator_and_body<T: serde::de::DeserializeOwned>(
    bank: &Bank,
    req: &HttpRequest,
    payload: web::Payload,
) -> Result<(Principal, T), HttpResponse> {
    let who = operator(bank, req)?;
    let body = read_json(req, payload).await.map_err(|e| problem(&e))?;
    Ok((who, body))
}

async fn onboard(bank: web::Data<Bank>, req: HttpRequest, payload: web::Payload) -> HttpResponse {
    match operator_and_body::<OnboardRequest>(&bank, &req, payload).await {
        Ok((who, body)) => answer(201, onboard_customer(&bank, &who, body)),
        Err(answer) => answer,
    }
}

fn onboard_customer(
    bank: &Bank,
    who: &Principal,
    r: OnboardRequest,
) -> Result<Onboarded, ApiError> {
    text("name", &r.name)?;
    text("address", &r.address)?;
    if !valid_date(&r.date_of_birth) {
        return Err(ApiError::bad_request("invalid_kyc", "date_of_birth must be YYYY-MM-DD"));
    }
    let national = normalize_national_id(&r.national_id).ok_or_else(|| {
        ApiError::bad_request("invalid_kyc", "national_id must be 1 to 64 letters and digits")
    })?;
    if r.documents.len() > MAX_DOCUMENTS {
        return Err(ApiError::bad_request("invalid_kyc", "at most 8 documents"));
    }
    for d in &r.documents {
        text("document kind", &d.kind)?;
        text("document reference", &d.reference)?;
    }
    if !valid_username(&r.username) {
        return Err(ApiError::bad_request(
            "invalid_username",
            "username must be 1 to 64 of a-z, 0-9, '.', '_' and '-'",
        ));
    }
    let tier = r.verification.tier();
    let tiers = crate::projector::read(&bank.view).state().policy().tiers.len();
    if usize::from(tier) >= tiers {
        return Err(rejected(cbdc_ledger::Rejection::InvalidTier));
    }
    let holder = bank.holders.holder_ref(&national);
    if bank.store().customer_by_holder(&holder.0).map_err(store_error)?.is_some() {
        return Err(ApiError::new(409, "customer_exists", "this person is already a customer"));
    }
    let customer_id = hex::encode(bank.random16());
    let kyc = Kyc {
        name: r.name,
        date_of_birth: r.date_of_birth,
        national_id: national,
        address: r.address,
        documents: r.documents,
        verification: r.verification,
    };
    let plain = serde_json::to_vec(&kyc).map_err(|_| ApiError::unavailable("encoding"))?;
    let nonce = bank.nonce();
    let sealed = bank.sealer.seal(customer_id.as_bytes(), nonce, &plain);
    let password = hex::encode(&(bank.random)()[..12]);
    let password_hash =
        hash_password(&password).map_err(|_| ApiError::unavailable("password hashing failed"))?;
    let now = (bank.now_ms)();
    let user = UserRecord {
        username: r.username.clone(),
        password_hash,
        role: Role::Customer.as_str().to_string(),
        officer_key: None,
        disabled: false,
        created_at_ms: now,
    };
    match bank.store().create_user(&user) {
        Ok(()) => {}
        Err(StoreError::UserExists { .. }) => {
            return Err(ApiError::new(409, "username_taken", "this username is taken"));
        }
        Err(error) => return Err(store_error(error)),
    }
    let record = CustomerRecord {
        customer_id: customer_id.clone(),
        username: r.username.clone(),
        holder_ref: holder.0,
        tier,
        status: CustomerStatus::Active,
        pii_nonce: nonce,
        pii_ciphertext: sealed,
        created_ms: now,
    };
    let created = bank.store().create_customer(&record);
    if let Err(error) = created {
        // The login must not outlive a customer that was not created.
        let _ = bank.store().set_user_disabled(&r.username, true);
        return Err(match error {
            StoreError::Duplicate { .. } => ApiError::new(
                409,
                "customer_exists",
                "this person or username is already a customer",
            ),
            other => store_error(other),
        });
    }
    tracing::info!(operator = %who.username, customer = %customer_id, tier, "customer onboarded");
    Ok(Onboarded {
        customer_id,
        username: r.username,
        tier,
        holder_ref: holder.to_hex(),
        initial_password: password,
    })
}

fn summary(c: &CustomerRecord) -> CustomerSummary {
    CustomerSummary {
        customer_id: c.customer_id.clone(),
        username: c.username.clone(),
        tier: c.tier,
        status: match c.status {
            CustomerStatus::Active => "active",
            CustomerStatus::Closed => "closed",
        },
        created_ms: c.created_ms,
    }
}

async fn list_customers(
    bank: web::Data<Bank>,
    req: HttpRequest,
    query: web::Query<PageQuery>,
) -> HttpResponse {
    if let Err(answer) = operator(&bank, &req) {
        return answer;
    }
    let limit = query.limit.unwrap_or(20);
    if limit == 0 || limit > MAX_CUSTOMERS_PAGE {
        return problem(&ApiError::bad_request(
            "invalid_page_size",
            format!("limit must be 1 to {MAX_CUSTOMERS_PAGE}"),
        ));
    }
    let page = bank.store().customers(query.after.as_deref(), limit).map_err(store_error);
    answer(
        200,
        page.map(|customers| {
            let next = (customers.len() == limit as usize)
                .then(|| customers.last().map(|c| c.customer_id.clone()))
                .flatten();
            serde_json::json!({
                "customers": customers.iter().map(summary).collect::<Vec<_>>(),
                "next_after": next,
            })
        }),
    )
}

fn customer_record(bank: &Bank, id: &str) -> Result<CustomerRecord, ApiError> {
    bank.store().customer(id).map_err(store_error)?.ok_or_else(|| ApiError::not_found("customer"))
}

async fn customer(
    bank: web::Data<Bank>,
    req: HttpRequest,
    path: web::Path<String>,
) -> HttpResponse {
    if let Err(answer) = operator(&bank, &req) {
        return answer;
    }
    let result = customer_record(&bank, &path).and_then(|c| {
        let plain = bank.sealer.open(c.customer_id.as_bytes(), c.pii_nonce, &c.pii_ciphertext);
        let plain = plain.map_err(|error| {
            tracing::error!(customer = %c.customer_id, %error, "personal data does not open");
            ApiError::unavailable("the customer's data is unavailable")
        })?;
        let kyc: Kyc = serde_json::from_slice(&plain)
            .map_err(|_| ApiError::unavailable("the customer's data is unavailable"))?;
        let wallets = bank.store().wallets_of_customer(&c.customer_id).map_err(store_error)?;
        Ok(CustomerDetail {
            summary: summary(&c),
            kyc,
            wallets: wallets.iter().map(|w| bank.wallet_view(w)).collect(),
        })
    });
    answer(200, result)
}

async fn set_tier(
    bank: web::Data<Bank>,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> HttpResponse {
    let (who, body) = match operator_and_body::<TierRequest>(&bank, &req, payload).await {
        Ok(parsed) => parsed,
        Err(answer) => return answer,
    };
    let result = async {
        let c = customer_record(&bank, &path)?;
        let tier = KycTier(body.tier);
        if crate::projector::read(&bank.view).state().policy().tier(tier).is_none() {
            return Err(rejected(cbdc_ledger::Rejection::InvalidTier));
        }
        let wallets = bank.store().wallets_of_customer(&c.customer_id).map_err(store_error)?;
        for w in &wallets {
            let id = WalletId(w.wallet_id);
            let current = crate::projector::read(&bank.view).state().wallet(&id).map(|w| w.tier);
            if current.is_some_and(|t| t != tier) {
                let tx = bank.admin_tx(TxKind::SetTier { bank: bank.id, wallet: id, tier });
                bank.submit_and_wait(tx).await?;
            }
        }
        bank.store().set_customer_tier(&c.customer_id, body.tier).map_err(store_error)?;
        tracing::info!(operator = %who.username, customer = %c.customer_id, tier = body.tier, "tier set");
        let mut c = c;
        c.tier = body.tier;
        Ok(summary(&c))
    }
    .await;
    answer(200, result)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OpenWalletBody {
    custody: model::Custody,
    #[serde(default)]
    public_key: Option<String>,
    #[serde(default)]
    class: Option<model::WalletClass>,
}

async fn open_wallet(
    bank: web::Data<Bank>,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> HttpResponse {
    let (who, body) = match operator_and_body::<OpenWalletBody>(&bank, &req, payload).await {
        Ok(parsed) => parsed,
        Err(answer) => return answer,
    };
    let result = bank
        .open_wallet_for(
            &path,
            body.custody,
            body.public_key.as_deref(),
            body.class.unwrap_or(model::WalletClass::Retail),
        )
        .await;
    if let Ok(w) = &result {
        tracing::info!(operator = %who.username, customer = %path, wallet = %w.wallet_id, "wallet opened");
    }
    answer(201, result)
}

async fn wallet(bank: web::Data<Bank>, req: HttpRequest, path: web::Path<String>) -> HttpResponse {
    if let Err(answer) = operator(&bank, &req) {
        return answer;
    }
    let result = wallet_id(&path)
        .and_then(|id| bank.owned_wallet(None, id))
        .map(|record| bank.balance_of(&record));
    answer(200, result)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HistoryQuery {
    limit: Option<u32>,
    cursor: Option<String>,
}

async fn wallet_history(
    bank: web::Data<Bank>,
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<HistoryQuery>,
) -> HttpResponse {
    if let Err(answer) = operator(&bank, &req) {
        return answer;
    }
    let limit = query.limit.unwrap_or(model::DEFAULT_PAGE);
    if limit == 0 || limit > model::MAX_PAGE {
        return problem(&ApiError::bad_request(
            "invalid_page_size",
            format!("limit must be 1 to {}", model::MAX_PAGE),
        ));
    }
    let cursor = match query.cursor.as_deref().map(str::parse::<u64>).transpose() {
        Ok(c) => c,
        Err(_) => return problem(&ApiError::bad_request("invalid_cursor", "not a cursor")),
    };
    let result = wallet_id(&path).and_then(|id| {
        bank.owned_wallet(None, id)?;
        history_page(&bank, id, cursor, limit)
    });
    answer(200, result)
}

/// Freezes, unfreezes or closes a wallet of this bank.
async fn administer(
    bank: &Bank,
    who: &Principal,
    raw: &str,
    action: &str,
) -> Result<model::Wallet, ApiError> {
    let id = wallet_id(raw)?;
    let record = bank.owned_wallet(None, id)?;
    let kind = match action {
        "freeze" => TxKind::Freeze { bank: bank.id, wallet: id },
        "unfreeze" => TxKind::Unfreeze { bank: bank.id, wallet: id },
        _ => TxKind::CloseWallet { bank: bank.id, wallet: id },
    };
    bank.submit_and_wait(bank.admin_tx(kind)).await?;
    tracing::info!(operator = %who.username, wallet = %raw, action, "wallet administered");
    Ok(bank.wallet_view(&record))
}

async fn freeze(bank: web::Data<Bank>, req: HttpRequest, path: web::Path<String>) -> HttpResponse {
    match operator(&bank, &req) {
        Ok(who) => answer(200, administer(&bank, &who, &path, "freeze").await),
        Err(answer) => answer,
    }
}

async fn unfreeze(
    bank: web::Data<Bank>,
    req: HttpRequest,
    path: web::Path<String>,
) -> HttpResponse {
    match operator(&bank, &req) {
        Ok(who) => answer(200, administer(&bank, &who, &path, "unfreeze").await),
        Err(answer) => answer,
    }
}

async fn close(bank: web::Data<Bank>, req: HttpRequest, path: web::Path<String>) -> HttpResponse {
    match operator(&bank, &req) {
        Ok(who) => answer(200, administer(&bank, &who, &path, "close").await),
        Err(answer) => answer,
    }
}

/// Moves money between the bank's float and a customer's wallet (`into` the wallet: fund).
async fn move_float(
    bank: &Bank,
    req: &HttpRequest,
    raw: &str,
    body: AmountRequest,
    into: bool,
) -> Result<model::Receipt, ApiError> {
    let who = operator(bank, req).map_err(|_| ApiError::unauthorized())?;
    // The key covers the wallet and the direction too: the same key and amount on another
    // wallet, or for a defund after a fund, is another request (409), not a replay.
    let movement = serde_json::json!({
        "wallet_id": raw,
        "direction": if into { "fund" } else { "defund" },
        "amount_minor": body.amount_minor,
    });
    let idempotency = idempotency(req, &movement)?;
    if body.amount_minor == 0 {
        return Err(ApiError::bad_request("invalid_amount", "the amount must be positive"));
    }
    let id = wallet_id(raw)?;
    let record = bank.owned_wallet(None, id)?;
    let float = crate::projector::read(&bank.view)
        .state()
        .bank(bank.id)
        .map(|b| b.float_wallet)
        .ok_or_else(|| ApiError::unavailable("the bank is not on the ledger"))?;
    let principal = format!("operator:{}", who.username);
    if let Some(receipt) = bank.replayed(&principal, &idempotency).await? {
        return Ok(receipt);
    }
    let tx_id = TxId(bank.random16());
    let tx = if into {
        bank.transfer(tx_id, float, id, body.amount_minor, &bank.float)?
    } else {
        let key = bank.custodial_key(&record)?;
        bank.transfer(tx_id, id, float, body.amount_minor, &key)?
    };
    let receipt = bank.pay_tx(&principal, idempotency, tx).await?;
    tracing::info!(
        operator = %who.username,
        wallet = %raw,
        amount_minor = body.amount_minor,
        action = if into { "fund" } else { "defund" },
        "float movement"
    );
    Ok(receipt)
}

/// Float movements answer like payments; operators poll their own status route.
fn receipt_answer(result: Result<model::Receipt, ApiError>) -> HttpResponse {
    let answer = result.and_then(|r| {
        let location = format!("/v1/ops/payments/{}", r.tx_id);
        payment_answer_at(r, &location)
    });
    answer.unwrap_or_else(|error| problem(&error))
}

async fn fund(
    bank: web::Data<Bank>,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> HttpResponse {
    match operator_and_body::<AmountRequest>(&bank, &req, payload).await {
        Ok((_, body)) => receipt_answer(move_float(&bank, &req, &path, body, true).await),
        Err(answer) => answer,
    }
}

async fn defund(
    bank: web::Data<Bank>,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> HttpResponse {
    match operator_and_body::<AmountRequest>(&bank, &req, payload).await {
        Ok((_, body)) => receipt_answer(move_float(&bank, &req, &path, body, false).await),
        Err(answer) => answer,
    }
}

async fn set_link(
    bank: &Bank,
    who: &Principal,
    raw: &str,
    account: Option<String>,
) -> Result<model::Wallet, ApiError> {
    let id = wallet_id(raw)?;
    let record = bank.owned_wallet(None, id)?;
    if let Some(account) = &account
        && (account.trim().is_empty()
            || account.len() > 64
            || account.chars().any(char::is_control))
    {
        return Err(ApiError::bad_request(
            "invalid_deposit_account",
            "deposit_account must be 1 to 64 bytes without control characters",
        ));
    }
    let sealed = account.map(|a| {
        let nonce = bank.nonce();
        Sealed { nonce, ciphertext: bank.sealer.seal(&id.0, nonce, a.as_bytes()) }
    });
    let linked = sealed.is_some();
    let on_ledger = crate::projector::read(&bank.view).state().wallet(&id).map(|w| w.linked);
    if on_ledger != Some(linked) {
        let kind = TxKind::SetLinked { bank: bank.id, wallet: id, linked };
        bank.submit_and_wait(bank.admin_tx(kind)).await?;
    }
    bank.store().set_wallet_account(&id.0, sealed.as_ref()).map_err(store_error)?;
    tracing::info!(operator = %who.username, wallet = %raw, linked, "deposit account link set");
    Ok(bank.wallet_view(&record))
}

async fn link(
    bank: web::Data<Bank>,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> HttpResponse {
    match operator_and_body::<LinkRequest>(&bank, &req, payload).await {
        Ok((who, body)) => {
            answer(200, set_link(&bank, &who, &path, Some(body.deposit_account)).await)
        }
        Err(answer) => answer,
    }
}

async fn unlink(bank: web::Data<Bank>, req: HttpRequest, path: web::Path<String>) -> HttpResponse {
    match operator(&bank, &req) {
        Ok(who) => answer(200, set_link(&bank, &who, &path, None).await),
        Err(answer) => answer,
    }
}

/// Any payment the bank recorded (its customers' and its operators' float movements).
async fn payment(bank: web::Data<Bank>, req: HttpRequest, path: web::Path<String>) -> HttpResponse {
    if let Err(answer) = operator(&bank, &req) {
        return answer;
    }
    let result = TxId::from_hex(&path)
        .map_err(|_| ApiError::bad_request("invalid_id", "transaction ids are 16 bytes of hex"))
        .and_then(|id| bank.store().payment(&id.0).map_err(store_error))
        .and_then(|r| r.ok_or_else(|| ApiError::not_found("payment")))
        .map(|r| crate::bank::receipt(&r));
    answer(200, result)
}

async fn float(bank: web::Data<Bank>, req: HttpRequest) -> HttpResponse {
    if let Err(answer) = operator(&bank, &req) {
        return answer;
    }
    let ledger = crate::projector::read(&bank.view);
    let state = ledger.state();
    let result = state
        .bank(bank.id)
        .map(|b| {
            let balance = state.wallet(&b.float_wallet).map(|w| w.balance.minor()).unwrap_or(0);
            serde_json::json!({
                "bank_id": bank.id.0,
                "float_wallet": hex::encode(b.float_wallet.0),
                "balance_minor": balance,
                "issued_minor": b.issued.minor(),
                "quota_minor": b.quota.minor(),
                "height": ledger.height(),
            })
        })
        .ok_or_else(|| ApiError::unavailable("the bank is not on the ledger"));
    answer(200, result)
}
