//! The node's operational HTTP endpoints: `/health`, `/metrics` (Prometheus text), `/v1/status`,
//! and `POST /v1/transactions` (submit a signed transaction in its canonical encoding, hex).
//!
//! actix-web runs in its own thread and system; it reaches the node through the node's mailbox
//! and status channel, which work across runtimes.

use actix_web::http::StatusCode;
use actix_web::{App, HttpResponse, HttpServer, web};
use cbdc_ledger::{Decode, SignedTransaction};
use cbdc_node::{Mailbox, NodeStatus, SubmitError};
use commonware_utils::channel::watch;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

/// Largest request body accepted (a transaction is a few hundred bytes).
const MAX_BODY_BYTES: usize = 64 * 1024;

/// What the HTTP server reads.
#[derive(Clone, Debug)]
pub struct HttpState {
    pub node_name: String,
    pub mailbox: Mailbox,
    pub status: watch::Receiver<NodeStatus>,
    /// The consensus runtime's own metrics, refreshed by the node.
    pub runtime_metrics: Arc<Mutex<String>>,
}

/// An RFC 7807 problem with a stable code.
pub fn problem(status: StatusCode, code: &str, detail: &str) -> HttpResponse {
    HttpResponse::build(status).content_type("application/problem+json").json(serde_json::json!({
        "type": format!("https://cbdc.example/problems/{code}"),
        "title": code,
        "status": status.as_u16(),
        "code": code,
        "detail": detail,
    }))
}

#[derive(Serialize)]
struct StatusBody {
    node: String,
    height: u64,
    tip_hash: String,
    state_root: String,
    tip_timestamp_ms: u64,
    mempool: usize,
    finalized_transactions: u64,
    supply_outstanding_minor: u64,
    evidence: u64,
    /// The validator-set epoch, and how many validators it has.
    epoch: u64,
    validators: usize,
}

fn status_body(state: &HttpState) -> StatusBody {
    let s = state.status.borrow().clone();
    StatusBody {
        node: state.node_name.clone(),
        height: s.height,
        tip_hash: hex::encode(s.tip_hash),
        state_root: hex::encode(s.state_root),
        tip_timestamp_ms: s.tip_timestamp_ms,
        mempool: s.mempool,
        finalized_transactions: s.finalized_transactions,
        supply_outstanding_minor: s.supply_outstanding_minor,
        evidence: s.evidence,
        epoch: s.epoch,
        validators: s.validators,
    }
}

async fn health(state: web::Data<HttpState>) -> HttpResponse {
    let height = state.status.borrow().height;
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok", "height": height }))
}

async fn status(state: web::Data<HttpState>) -> HttpResponse {
    HttpResponse::Ok().json(status_body(&state))
}

/// Prometheus exposition of the node's own gauges and counters, then the engine's.
pub fn render_metrics(node: &str, s: &NodeStatus, runtime: &str) -> String {
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        let _ = writeln!(out, "{name}{{node=\"{node}\"}} {value}");
    };
    metric("cbdc_block_height", "gauge", "Height of the last finalized block.", s.height);
    metric(
        "cbdc_transactions_finalized_total",
        "counter",
        "Transactions finalized since this process started.",
        s.finalized_transactions,
    );
    metric(
        "cbdc_mempool_transactions",
        "gauge",
        "Transactions waiting in the mempool.",
        s.mempool as u64,
    );
    metric(
        "cbdc_supply_outstanding_minor",
        "gauge",
        "Outstanding supply at the finalized tip, in minor units.",
        s.supply_outstanding_minor,
    );
    metric(
        "cbdc_equivocation_evidence_total",
        "counter",
        "Equivocation evidence records seen.",
        s.evidence,
    );
    // The engine's registry is OpenMetrics text ending in `# EOF`; strip that terminator so the
    // whole page stays one valid Prometheus text exposition.
    for line in runtime.lines().filter(|l| *l != "# EOF") {
        out.push_str(line);
        out.push('\n');
    }
    out
}

async fn metrics(state: web::Data<HttpState>) -> HttpResponse {
    let runtime = state.runtime_metrics.lock().map(|m| m.clone()).unwrap_or_default();
    let body = render_metrics(&state.node_name, &state.status.borrow().clone(), &runtime);
    HttpResponse::Ok().content_type("text/plain; version=0.0.4; charset=utf-8").body(body)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SubmitBody {
    /// The signed transaction's canonical encoding, hex.
    transaction: String,
}

async fn submit(state: web::Data<HttpState>, body: web::Json<SubmitBody>) -> HttpResponse {
    let Ok(bytes) = hex::decode(&body.transaction) else {
        return problem(StatusCode::BAD_REQUEST, "invalid_hex", "transaction is not hex");
    };
    let tx = match SignedTransaction::decode(&bytes) {
        Ok(tx) => tx,
        Err(e) => return problem(StatusCode::BAD_REQUEST, "malformed_transaction", &e.to_string()),
    };
    let id = tx.body.id;
    match state.mailbox.submit(tx).await {
        Ok(()) => HttpResponse::Accepted().json(serde_json::json!({ "id": id.to_hex() })),
        Err(SubmitError::Mempool(cbdc_node::MempoolError::Duplicate)) => {
            problem(StatusCode::CONFLICT, "duplicate_transaction", "already pending")
        }
        Err(SubmitError::Mempool(cbdc_node::MempoolError::Full)) => {
            problem(StatusCode::TOO_MANY_REQUESTS, "mempool_full", "try again later")
        }
        Err(SubmitError::Mempool(cbdc_node::MempoolError::TooLarge(_))) => {
            problem(StatusCode::PAYLOAD_TOO_LARGE, "transaction_too_large", "transaction too large")
        }
        Err(SubmitError::Closed) => {
            problem(StatusCode::SERVICE_UNAVAILABLE, "node_unavailable", "the node is stopping")
        }
    }
}

fn json_error(
    err: actix_web::error::JsonPayloadError,
    _: &actix_web::HttpRequest,
) -> actix_web::Error {
    let detail = match &err {
        actix_web::error::JsonPayloadError::Overflow { .. }
        | actix_web::error::JsonPayloadError::OverflowKnownLength { .. } => "body too large",
        _ => "body is not the expected JSON",
    };
    let code = if detail == "body too large" { "body_too_large" } else { "invalid_json" };
    let status = if code == "body_too_large" {
        StatusCode::PAYLOAD_TOO_LARGE
    } else {
        StatusCode::BAD_REQUEST
    };
    actix_web::error::InternalError::from_response(err, problem(status, code, detail)).into()
}

/// Serves on `addr` in a dedicated thread (its own actix system) until the process exits.
/// Returns once the socket is bound, or the bind error.
pub fn spawn(addr: SocketAddr, state: HttpState) -> anyhow::Result<std::thread::JoinHandle<()>> {
    let (bound_tx, bound_rx) = std::sync::mpsc::sync_channel::<std::io::Result<()>>(1);
    let handle = std::thread::Builder::new().name("http".into()).spawn(move || {
        let system = actix_web::rt::System::new();
        system.block_on(async move {
            let server = HttpServer::new(move || {
                App::new()
                    .app_data(web::Data::new(state.clone()))
                    .app_data(
                        web::JsonConfig::default().limit(MAX_BODY_BYTES).error_handler(json_error),
                    )
                    .route("/health", web::get().to(health))
                    .route("/metrics", web::get().to(metrics))
                    .route("/v1/status", web::get().to(status))
                    .route("/v1/transactions", web::post().to(submit))
                    .default_service(web::to(|| async {
                        problem(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
                    }))
            })
            .workers(1)
            .disable_signals()
            .bind(addr);
            match server {
                Ok(server) => {
                    let _ = bound_tx.send(Ok(()));
                    if let Err(e) = server.run().await {
                        tracing::error!(error = %e, "HTTP server stopped");
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
        Ok(Err(e)) => Err(anyhow::anyhow!("binding HTTP on {addr}: {e}")),
        Err(_) => Err(anyhow::anyhow!("the HTTP thread exited before binding {addr}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_are_prometheus_text_with_the_house_names() {
        let s = NodeStatus { height: 7, supply_outstanding_minor: 42, ..NodeStatus::default() };
        let text = render_metrics("bank-1", &s, "# HELP x y\n# TYPE x counter\nx_total 1\n# EOF\n");
        assert!(text.contains("cbdc_block_height{node=\"bank-1\"} 7\n"));
        assert!(text.contains("cbdc_supply_outstanding_minor{node=\"bank-1\"} 42\n"));
        assert!(!text.contains("# EOF"));
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let mut parts = line.rsplitn(2, ' ');
            let value = parts.next().unwrap_or_default();
            assert!(value.parse::<f64>().is_ok(), "unparsable sample line {line:?}");
        }
    }
}
