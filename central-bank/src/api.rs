//! The central bank's REST API under `/v1`, over TLS (rustls) with optional client
//! certificates: staff authenticate with bearer tokens (`POST /v1/auth/token`), banks with the
//! client certificate the central bank's CA issued them (mutual TLS).
//!
//! Every state-changing call (token issuance included) is appended to the hash-chained audit
//! log with who, what, when and the outcome. Errors are RFC 7807 problems with stable codes.
//! Bodies are bounded; list endpoints are paged.

#![allow(
    clippy::result_large_err,
    reason = "handlers answer early with a ready response; boxing it adds only noise"
)]

use crate::auth::{Role, Tokens, verify_password};
use crate::workflow::{NewRequest, Principal, Workflow, WorkflowError};
use actix_web::dev::Extensions;
use actix_web::http::StatusCode;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use cbdc_service::http::problem;
use cbdc_store::{AuditEntry, RequestState, Store};
use serde::Deserialize;
use std::any::Any;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

/// Largest request body (a request or an approval is well under 8 KiB).
const MAX_BODY_BYTES: usize = 64 * 1024;

/// What the handlers share.
#[derive(Clone)]
pub struct ApiState {
    pub workflow: Workflow,
    pub tokens: Arc<Tokens>,
    pub store: Arc<Mutex<Store>>,
    pub node: cbdc_node::Mailbox,
    pub now_ms: Arc<dyn Fn() -> u64 + Send + Sync>,
    /// The central bank's CA (issues and revokes banks' certificates).
    pub ca: Arc<Mutex<crate::pki::Ca>>,
    /// The running server's client-certificate verifier, given each new CRL.
    pub verifier: Arc<crate::pki::CrlVerifier>,
    /// The node's counters, for the dashboard.
    pub status: crate::dashboard::StatusSource,
    /// The dashboard's sampled series.
    pub series: crate::dashboard::SharedSeries,
}

impl std::fmt::Debug for ApiState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiState").finish_non_exhaustive()
    }
}

impl ApiState {
    fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        crate::lock(&self.store)
    }

    fn ca(&self) -> std::sync::MutexGuard<'_, crate::pki::Ca> {
        crate::lock(&self.ca)
    }

    /// The finalized ledger's summary, or the 503 to answer.
    async fn summary(&self) -> Result<cbdc_node::LedgerSummary, HttpResponse> {
        self.node.summary().await.map_err(|_| {
            problem(StatusCode::SERVICE_UNAVAILABLE, "node_unavailable", "the node is unavailable")
        })
    }

    /// Appends to the audit log; a failure to audit fails the request (nothing unaudited).
    fn audit(
        &self,
        actor: &str,
        action: &str,
        target: &str,
        outcome: &str,
        details: serde_json::Value,
    ) -> bool {
        let entry = AuditEntry {
            at_ms: (self.now_ms)(),
            actor: actor.to_string(),
            action: action.to_string(),
            target: target.to_string(),
            outcome: outcome.to_string(),
            details: details.to_string(),
        };
        match self.store().append_audit(&entry) {
            Ok(_) => true,
            Err(error) => {
                tracing::error!(%error, "audit append failed");
                false
            }
        }
    }
}

/// The answer when a change cannot be audited (and so is not made).
fn audit_unavailable() -> HttpResponse {
    problem(StatusCode::INTERNAL_SERVER_ERROR, "audit_unavailable", "the audit log is unavailable")
}

/// The bank a client certificate names, set per TLS connection.
#[derive(Debug, Clone, Copy)]
struct BankIdentity(Option<u32>);

fn workflow_problem(e: &WorkflowError) -> HttpResponse {
    let status = match e {
        WorkflowError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
        WorkflowError::NotFound => StatusCode::NOT_FOUND,
        WorkflowError::Forbidden | WorkflowError::NotAnOfficer | WorkflowError::NotYourKey => {
            StatusCode::FORBIDDEN
        }
        WorkflowError::BadSignature => StatusCode::UNPROCESSABLE_ENTITY,
        WorkflowError::Closed(_) => StatusCode::CONFLICT,
        WorkflowError::Node => StatusCode::SERVICE_UNAVAILABLE,
        WorkflowError::Refused(_) => StatusCode::BAD_GATEWAY,
        WorkflowError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let detail = match e {
        // Storage details stay in the logs.
        WorkflowError::Store(error) => {
            tracing::error!(%error, "storage error");
            "internal storage error".to_string()
        }
        other => other.to_string(),
    };
    problem(status, e.code(), &detail)
}

/// The caller, from `Authorization: Bearer <token>`, or the problem to answer.
fn principal(req: &HttpRequest, state: &ApiState) -> Result<Principal, HttpResponse> {
    let header = req.headers().get("authorization").and_then(|h| h.to_str().ok()).unwrap_or("");
    let Some(token) = header.strip_prefix("Bearer ") else {
        return Err(problem(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "a bearer token is required",
        ));
    };
    let now_s = (state.now_ms)() / 1_000;
    match state.tokens.validate(token.trim(), now_s) {
        Ok(claims) => {
            // A disabled account's tokens stop working at once.
            match state.store().user(&claims.sub) {
                Ok(Some(u)) if !u.disabled && u.role == claims.role.as_str() => {
                    Ok(Principal { username: claims.sub, role: claims.role })
                }
                _ => Err(problem(
                    StatusCode::UNAUTHORIZED,
                    "unauthenticated",
                    "the account is not active",
                )),
            }
        }
        Err(e) => Err(problem(StatusCode::UNAUTHORIZED, "invalid_token", &e.to_string())),
    }
}

fn require(p: &Principal, roles: &[Role]) -> Result<(), HttpResponse> {
    if roles.contains(&p.role) {
        Ok(())
    } else {
        Err(problem(StatusCode::FORBIDDEN, "forbidden", "this role may not do that"))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenRequest {
    username: String,
    password: String,
}

async fn token(state: web::Data<ApiState>, body: web::Json<TokenRequest>) -> HttpResponse {
    let body = body.into_inner();
    if body.username.is_empty()
        || body.username.len() > 64
        || body.password.is_empty()
        || body.password.len() > 1_024
    {
        return problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
            "username of 1 to 64 bytes and password of 1 to 1024 bytes required",
        );
    }
    let user = state.store().user(&body.username).ok().flatten();
    let ok = user
        .as_ref()
        .is_some_and(|u| !u.disabled && verify_password(&body.password, &u.password_hash));
    let role = user.as_ref().and_then(|u| Role::from_str(&u.role).ok());
    let outcome = if ok { "ok" } else { "invalid_credentials" };
    if !state.audit(&body.username, "auth.token", "", outcome, serde_json::json!({})) {
        return audit_unavailable();
    }
    match (ok, role) {
        (true, Some(role)) => {
            match state.tokens.issue(&body.username, role, (state.now_ms)() / 1_000) {
                Ok(t) => HttpResponse::Ok().json(serde_json::json!({
                    "access_token": t,
                    "token_type": "Bearer",
                    "expires_in": state.tokens.lifetime_s(),
                    "role": role.as_str(),
                })),
                Err(_) => problem(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "token_error",
                    "could not issue a token",
                ),
            }
        }
        _ => problem(
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
            "unknown user or wrong password",
        ),
    }
}

async fn supply(req: HttpRequest, state: web::Data<ApiState>) -> HttpResponse {
    if let Err(r) = principal(&req, &state) {
        return r;
    }
    let s = match state.summary().await {
        Ok(s) => s,
        Err(r) => return r,
    };
    HttpResponse::Ok().json(serde_json::json!({
        "height": s.height,
        "epoch": s.epoch,
        "outstanding_minor": s.supply.outstanding().minor(),
        "minted_minor": s.supply.minted.minor(),
        "burned_minor": s.supply.burned.minor(),
        "supply_cap_minor": s.policy.supply_cap_minor.minor(),
        "banks": s.banks.iter().map(|b| serde_json::json!({
            "id": b.id.0,
            "name": b.name,
            "status": format!("{:?}", b.status).to_lowercase(),
            "issued_minor": b.issued.minor(),
            "quota_minor": b.quota.minor(),
        })).collect::<Vec<_>>(),
    }))
}

/// The regulators' dashboard document (see `dashboard`).
async fn dashboard(req: HttpRequest, state: web::Data<ApiState>) -> HttpResponse {
    let who = match principal(&req, &state) {
        Ok(p) => p,
        Err(r) => return r,
    };
    if let Err(r) = require(&who, &[Role::Regulator]) {
        return r;
    }
    let summary = match state.summary().await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let status = (state.status)();
    let samples = crate::lock(&state.series).samples();
    let events = state
        .store()
        .requests(Some(RequestState::Committed), None, crate::dashboard::MAX_EVENTS)
        .unwrap_or_default();
    let body = crate::dashboard::document(&summary, &status, &samples, &events, (state.now_ms)());
    HttpResponse::Ok().insert_header(("Cache-Control", "no-store")).json(body)
}

async fn policy(req: HttpRequest, state: web::Data<ApiState>) -> HttpResponse {
    if let Err(r) = principal(&req, &state) {
        return r;
    }
    let s = match state.summary().await {
        Ok(s) => s,
        Err(r) => return r,
    };
    HttpResponse::Ok().json(serde_json::json!({
        "height": s.height,
        "officers": s.policy.officers.iter().map(|k| hex::encode(k.0)).collect::<Vec<_>>(),
        "threshold": s.policy.threshold,
        "supply_cap_minor": s.policy.supply_cap_minor.minor(),
        "max_expiry_blocks": s.policy.max_expiry_blocks,
        "tiers": s.policy.tiers.iter().map(|t| serde_json::json!({
            "holding_minor": t.holding_minor.minor(),
            "per_payment_minor": t.per_payment_minor.minor(),
            "daily_outflow_minor": t.daily_outflow_minor.minor(),
        })).collect::<Vec<_>>(),
    }))
}

async fn create_request(
    req: HttpRequest,
    state: web::Data<ApiState>,
    body: web::Json<NewRequest>,
) -> HttpResponse {
    let who = match principal(&req, &state) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let new = body.into_inner();
    let kind = new.kind_name();
    let result = state.workflow.create(&who, new.clone()).await;
    let (outcome, target) = match &result {
        Ok(v) => ("ok", v.id.clone()),
        Err(e) => (e.code(), String::new()),
    };
    let details = serde_json::to_value(&new).unwrap_or_default();
    if !state.audit(&who.username, &format!("request.create.{kind}"), &target, outcome, details) {
        return audit_unavailable();
    }
    match result {
        Ok(v) => HttpResponse::Created().json(v),
        Err(e) => workflow_problem(&e),
    }
}

fn request_id(raw: &str) -> Result<[u8; 16], HttpResponse> {
    let mut id = [0u8; 16];
    hex::decode_to_slice(raw, &mut id)
        .map_err(|_| problem(StatusCode::NOT_FOUND, "not_found", "no such request"))?;
    Ok(id)
}

async fn get_request(
    req: HttpRequest,
    state: web::Data<ApiState>,
    path: web::Path<String>,
) -> HttpResponse {
    if let Err(r) = principal(&req, &state) {
        return r;
    }
    let id = match request_id(&path) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let threshold = match state.workflow.threshold().await {
        Ok(t) => t,
        Err(e) => return workflow_problem(&e),
    };
    match state.workflow.view(&id, threshold) {
        Ok(v) => HttpResponse::Ok().json(v),
        Err(e) => workflow_problem(&e),
    }
}

#[derive(Deserialize)]
struct ListQuery {
    state: Option<String>,
    before_ms: Option<u64>,
    limit: Option<u32>,
}

async fn list_requests(
    req: HttpRequest,
    state: web::Data<ApiState>,
    q: web::Query<ListQuery>,
) -> HttpResponse {
    if let Err(r) = principal(&req, &state) {
        return r;
    }
    let filter = match q.state.as_deref().map(RequestState::from_str).transpose() {
        Ok(f) => f,
        Err(_) => {
            return problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request", "unknown state");
        }
    };
    let threshold = match state.workflow.threshold().await {
        Ok(t) => t,
        Err(e) => return workflow_problem(&e),
    };
    match state.workflow.list(filter, q.before_ms, q.limit.unwrap_or(50), threshold) {
        Ok(v) => HttpResponse::Ok().json(serde_json::json!({ "requests": v })),
        Err(e) => workflow_problem(&e),
    }
}

#[derive(Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
struct Approval {
    officer_key: String,
    signature: String,
}

async fn approve(
    req: HttpRequest,
    state: web::Data<ApiState>,
    path: web::Path<String>,
    body: web::Json<Approval>,
) -> HttpResponse {
    let who = match principal(&req, &state) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let id = match request_id(&path) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let result = state.workflow.approve(&who, &id, &body.officer_key, &body.signature).await;
    let outcome = match &result {
        Ok(v) => v.state.clone(),
        Err(e) => e.code().to_string(),
    };
    let details = serde_json::json!({ "officer_key": body.officer_key });
    if !state.audit(&who.username, "request.approve", &path, &outcome, details) {
        return audit_unavailable();
    }
    match result {
        Ok(v) => HttpResponse::Ok().json(v),
        Err(e) => workflow_problem(&e),
    }
}

#[derive(Deserialize)]
struct AuditQuery {
    after: Option<u64>,
    limit: Option<u32>,
}

async fn audit(
    req: HttpRequest,
    state: web::Data<ApiState>,
    q: web::Query<AuditQuery>,
) -> HttpResponse {
    let who = match principal(&req, &state) {
        Ok(p) => p,
        Err(r) => return r,
    };
    if let Err(r) = require(&who, &[Role::Regulator, Role::CbAdmin]) {
        return r;
    }
    match state.store().audit(q.after.unwrap_or(0), q.limit.unwrap_or(100).min(1_000)) {
        Ok(rows) => HttpResponse::Ok().json(serde_json::json!({
            "entries": rows.iter().map(|r| serde_json::json!({
                "seq": r.seq, "at_ms": r.at_ms, "actor": r.actor, "action": r.action,
                "target": r.target, "outcome": r.outcome, "details": r.details,
                "prev_hash": hex::encode(r.prev_hash), "hash": hex::encode(r.hash),
            })).collect::<Vec<_>>(),
        })),
        Err(_) => {
            problem(StatusCode::INTERNAL_SERVER_ERROR, "storage_error", "internal storage error")
        }
    }
}

/// A bank's view of itself, authenticated by its client certificate alone.
async fn bank_me(req: HttpRequest, state: web::Data<ApiState>) -> HttpResponse {
    let bank = req.conn_data::<BankIdentity>().and_then(|b| b.0);
    let Some(bank) = bank else {
        return problem(
            StatusCode::UNAUTHORIZED,
            "client_certificate_required",
            "present the bank's client certificate",
        );
    };
    let s = match state.summary().await {
        Ok(s) => s,
        Err(r) => return r,
    };
    match s.banks.iter().find(|b| b.id.0 == bank) {
        Some(b) => HttpResponse::Ok().json(serde_json::json!({
            "id": b.id.0,
            "name": b.name,
            "status": format!("{:?}", b.status).to_lowercase(),
            "issued_minor": b.issued.minor(),
            "quota_minor": b.quota.minor(),
        })),
        None => problem(
            StatusCode::NOT_FOUND,
            "unknown_bank",
            "the certificate names no bank on the ledger",
        ),
    }
}

#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
enum CertificateRequest {
    /// The bank's client certificate for this API (mutual TLS).
    Client { validity_days: Option<u32> },
    /// The bank's own API server certificate, for these names.
    Server { dns: Vec<String>, ips: Vec<std::net::IpAddr>, validity_days: Option<u32> },
}

/// An administrator has the CA issue a certificate to a bank on the ledger. The private key is
/// in the answer once and nowhere else (the CA keeps none).
async fn issue_certificate(
    req: HttpRequest,
    state: web::Data<ApiState>,
    path: web::Path<u32>,
    body: web::Json<CertificateRequest>,
) -> HttpResponse {
    use crate::pki::{CertKind, Holder, IssueRequest};
    let who = match principal(&req, &state) {
        Ok(p) => p,
        Err(r) => return r,
    };
    if let Err(r) = require(&who, &[Role::CbAdmin]) {
        return r;
    }
    let bank = path.into_inner();
    let summary = match state.summary().await {
        Ok(s) => s,
        Err(r) => return r,
    };
    if bank == 0 || !summary.banks.iter().any(|b| b.id.0 == bank) {
        return problem(
            StatusCode::NOT_FOUND,
            "unknown_bank",
            "no such commercial bank on the ledger",
        );
    }
    let (kind, validity_days, label) = match body.into_inner() {
        CertificateRequest::Client { validity_days } => (CertKind::Client, validity_days, "client"),
        CertificateRequest::Server { dns, ips, validity_days } => {
            (CertKind::Server { dns, ips }, validity_days, "server")
        }
    };
    let request = IssueRequest {
        holder: Holder::Bank(bank),
        kind,
        validity_days: validity_days.unwrap_or(365),
    };
    let issued = state.ca().issue(&request);
    let (outcome, details) = match &issued {
        Ok(c) => ("ok", serde_json::json!({ "kind": label, "serial": c.serial })),
        Err(e) => ("invalid_request", serde_json::json!({ "kind": label, "error": e.to_string() })),
    };
    if !state.audit(&who.username, "certificate.issue", &format!("bank-{bank}"), outcome, details) {
        return audit_unavailable();
    }
    match issued {
        Ok(c) => HttpResponse::Created().json(serde_json::json!({
            "bank": bank,
            "kind": label,
            "serial": c.serial,
            "cert_pem": c.cert_pem,
            "key_pem": c.key_pem,
            "ca_pem": state.ca().cert_pem(),
            "not_after_unix_s": c.not_after_unix_s,
        })),
        Err(e) => problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request", &e.to_string()),
    }
}

/// An administrator revokes a certificate; the running server refuses it from the next
/// handshake on (the CRL is reissued at once).
async fn revoke(
    req: HttpRequest,
    state: web::Data<ApiState>,
    path: web::Path<String>,
) -> HttpResponse {
    let who = match principal(&req, &state) {
        Ok(p) => p,
        Err(r) => return r,
    };
    if let Err(r) = require(&who, &[Role::CbAdmin]) {
        return r;
    }
    let serial = path.into_inner();
    let result = {
        let mut ca = state.ca();
        ca.revoke(&serial).and_then(|()| ca.crl_pem())
    };
    let result = result.and_then(|crl| state.verifier.update(&crl));
    let outcome = match &result {
        Ok(()) => "ok",
        Err(crate::pki::PkiError::UnknownSerial(_)) => "not_found",
        Err(_) => "error",
    };
    let details = serde_json::json!({});
    if !state.audit(&who.username, "certificate.revoke", &serial, outcome, details) {
        return audit_unavailable();
    }
    match result {
        Ok(()) => HttpResponse::Ok().json(serde_json::json!({ "serial": serial, "revoked": true })),
        Err(crate::pki::PkiError::UnknownSerial(_)) => {
            problem(StatusCode::NOT_FOUND, "not_found", "no certificate with that serial")
        }
        Err(e) => {
            tracing::error!(error = %e, "revocation failed");
            problem(
                StatusCode::INTERNAL_SERVER_ERROR,
                "revocation_failed",
                "the revocation could not be completed",
            )
        }
    }
}

/// The current certificate revocation list (public, like any CRL).
async fn crl(state: web::Data<ApiState>) -> HttpResponse {
    match state.ca().crl_pem() {
        Ok(pem) => HttpResponse::Ok().content_type("application/x-pem-file").body(pem),
        Err(_) => problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "crl_unavailable",
            "the CRL could not be produced",
        ),
    }
}

async fn health() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

async fn not_found() -> HttpResponse {
    problem(StatusCode::NOT_FOUND, "not_found", "no such resource")
}

/// Records the bank a verified client certificate names, for handlers to read.
fn on_connect(conn: &dyn Any, ext: &mut Extensions) {
    use actix_tls::accept::rustls_0_23::TlsStream;
    if let Some(tls) = conn.downcast_ref::<TlsStream<actix_web::rt::net::TcpStream>>() {
        let (_, session) = tls.get_ref();
        let bank = session.peer_certificates().and_then(crate::pki::client_bank);
        ext.insert(BankIdentity(bank));
    }
}

/// Serves the API on `addr` with `tls`, in its own thread and actix system.
pub fn spawn(
    addr: SocketAddr,
    tls: rustls::ServerConfig,
    state: ApiState,
) -> anyhow::Result<std::thread::JoinHandle<()>> {
    let (bound_tx, bound_rx) = std::sync::mpsc::sync_channel::<std::io::Result<()>>(1);
    let handle = std::thread::Builder::new().name("cb-api".into()).spawn(move || {
        let system = actix_web::rt::System::new();
        system.block_on(async move {
            let data = web::Data::new(state);
            let server = HttpServer::new(move || {
                let json =
                    web::JsonConfig::default().limit(MAX_BODY_BYTES).error_handler(|err, _| {
                        let detail = err.to_string();
                        actix_web::error::InternalError::from_response(
                            err,
                            problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body", &detail),
                        )
                        .into()
                    });
                let query = web::QueryConfig::default().error_handler(|err, _| {
                    let detail = err.to_string();
                    actix_web::error::InternalError::from_response(
                        err,
                        problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid_query", &detail),
                    )
                    .into()
                });
                App::new()
                    .wrap(cbdc_service::telemetry::http_metrics("central_bank_api"))
                    .app_data(data.clone())
                    .app_data(json)
                    .app_data(query)
                    .route("/health", web::get().to(health))
                    .route("/v1/auth/token", web::post().to(token))
                    .route("/v1/supply", web::get().to(supply))
                    .route("/v1/policy", web::get().to(policy))
                    .route("/v1/dashboard", web::get().to(dashboard))
                    .route("/v1/requests", web::post().to(create_request))
                    .route("/v1/requests", web::get().to(list_requests))
                    .route("/v1/requests/{id}", web::get().to(get_request))
                    .route("/v1/requests/{id}/approvals", web::post().to(approve))
                    .route("/v1/audit", web::get().to(audit))
                    .route("/v1/banks/me", web::get().to(bank_me))
                    .route("/v1/banks/{id}/certificates", web::post().to(issue_certificate))
                    .route("/v1/certificates/{serial}/revocation", web::post().to(revoke))
                    .route("/v1/crl", web::get().to(crl))
                    .configure(crate::docs::routes)
                    .configure(crate::dashboard::routes)
                    .default_service(web::to(not_found))
            })
            .on_connect(on_connect)
            .workers(2)
            .disable_signals()
            .bind_rustls_0_23(addr, tls);
            match server {
                Ok(server) => {
                    let _ = bound_tx.send(Ok(()));
                    if let Err(error) = server.run().await {
                        tracing::error!(%error, "central bank API stopped");
                    }
                }
                Err(e) => {
                    let _ = bound_tx.send(Err(e));
                }
            }
        });
    })?;
    match bound_rx.recv() {
        Ok(Ok(())) => Ok(handle),
        Ok(Err(e)) => Err(anyhow::anyhow!("binding the central bank API on {addr}: {e}")),
        Err(_) => Err(anyhow::anyhow!("the central bank API thread stopped")),
    }
}
