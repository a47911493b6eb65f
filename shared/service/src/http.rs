//! The node's operational HTTP endpoints: `/health`, `/metrics` (Prometheus text), `/v1/status`,
//! `POST /v1/transactions` (submit a signed transaction in its canonical encoding, hex) and
//! `POST /v1/transactions/batch` (up to 1,024 of them in one request, one result each).
//!
//! actix-web runs in its own thread and system; it reaches the node through the node's mailbox
//! and status channel, which work across runtimes.

use crate::telemetry;
use actix_web::http::StatusCode;
use actix_web::{App, HttpResponse, HttpServer, web};
use cbdc_ledger::{Decode, SignedTransaction};
use cbdc_node::{Mailbox, NodeStatus, SubmitError};
use commonware_utils::channel::watch;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

/// Largest request body accepted (a transaction is a few hundred bytes).
const MAX_BODY_BYTES: usize = 64 * 1024;
/// Largest batch submission body (1,024 transactions of a few hundred bytes, hex).
const MAX_BATCH_BODY_BYTES: usize = 2 * 1024 * 1024;

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

/// Metric names the node's `/metrics` renders besides the engine's own and the HTTP
/// telemetry's ([`crate::telemetry::RENDERED_METRICS`]); the deployment's alert rules and
/// dashboards may use only these (a test checks `deploy/`).
pub const RENDERED_METRICS: &[&str] = &[
    "cbdc_block_height",
    "cbdc_transactions_finalized_total",
    "cbdc_signatures_verified_total",
    "cbdc_mempool_transactions",
    "cbdc_mempool_capacity_transactions",
    "cbdc_supply_outstanding_minor",
    "cbdc_supply_cap_minor",
    "cbdc_equivocation_evidence_total",
    "cbdc_finality_latency_seconds",
    "cbdc_transactions_total",
    "cbdc_transactions_rejected_total",
    "cbdc_payments_total",
    "cbdc_payments_value_minor_total",
    "cbdc_waterfalls_total",
    "cbdc_waterfall_value_minor_total",
    "cbdc_reverse_waterfalls_total",
    "cbdc_reverse_waterfall_value_minor_total",
    "cbdc_validator_last_signed_height",
    "cbdc_validator_evidence_total",
    "cbdc_peers_connected",
];

/// The engine's per-peer gauge of connected peers (one sample per connected peer) in the
/// runtime's registry, from which `cbdc_peers_connected` is derived: the p2p network runs
/// under the runtime context `network` (see `validator.rs`).
pub const RUNTIME_CONNECTED_PEERS: &str = "network_tracker_directory_connected";

/// A Prometheus text page being written: each family's HELP and TYPE once, then its samples.
struct Page {
    out: String,
    node: String,
}

impl Page {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    /// A sample of `name` with the `node` label and `labels` (`key="value"` pairs, escaped).
    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        let _ = write!(self.out, "{name}{{node=\"{}\"", self.node);
        for (key, v) in labels {
            let _ = write!(self.out, ",{key}=\"{}\"", telemetry::escape_label(v));
        }
        let _ = writeln!(self.out, "}} {value}");
    }

    /// A single-sample family.
    fn single(&mut self, name: &str, kind: &str, help: &str, value: u64) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }
}

/// `ms` as decimal seconds (`25` → `0.025`).
fn ms_as_seconds(ms: u64) -> String {
    telemetry::micros_as_seconds(ms.saturating_mul(1_000))
}

/// The label of a validator: the first 16 hex digits of its consensus key.
pub fn validator_label(key: &cbdc_ledger::PublicKey) -> String {
    let mut hex = key.to_hex();
    hex.truncate(16);
    hex
}

/// Prometheus exposition (text format 0.0.4) of the process: the node's own metrics, the
/// engine's (`runtime`, OpenMetrics text from the runtime's registry) and the HTTP telemetry of
/// every server in the process.
pub fn render_metrics(node: &str, s: &NodeStatus, runtime: &str) -> String {
    let mut page = Page { out: String::new(), node: telemetry::escape_label(node) };
    render_chain(&mut page, s);
    render_transactions(&mut page, s);
    render_flows(&mut page, s);
    render_validators(&mut page, s);
    let peers =
        runtime.lines().filter(|l| l.starts_with(&format!("{RUNTIME_CONNECTED_PEERS}{{"))).count();
    page.single(
        "cbdc_peers_connected",
        "gauge",
        "Peers this node has an authenticated p2p connection with.",
        peers as u64,
    );
    let mut out = page.out;
    out.push_str(&prometheus_text(runtime));
    out.push_str(&telemetry::render());
    out
}

fn render_chain(page: &mut Page, s: &NodeStatus) {
    page.single("cbdc_block_height", "gauge", "Height of the last finalized block.", s.height);
    page.single(
        "cbdc_mempool_transactions",
        "gauge",
        "Transactions waiting in the mempool.",
        s.mempool as u64,
    );
    page.single(
        "cbdc_mempool_capacity_transactions",
        "gauge",
        "Most transactions the mempool holds.",
        s.mempool_capacity as u64,
    );
    page.single(
        "cbdc_supply_outstanding_minor",
        "gauge",
        "Outstanding supply at the finalized tip, in minor units.",
        s.supply_outstanding_minor,
    );
    page.single(
        "cbdc_supply_cap_minor",
        "gauge",
        "The policy's supply cap at the finalized tip, in minor units.",
        s.supply_cap_minor,
    );
    page.single(
        "cbdc_equivocation_evidence_total",
        "counter",
        "Equivocation evidence records seen.",
        s.evidence,
    );
    let name = "cbdc_finality_latency_seconds";
    page.family(
        name,
        "histogram",
        "Time from a block's timestamp to its finalization here (runtime clock), per block.",
    );
    let bucket = format!("{name}_bucket");
    for (bound, n) in s.finality_latency.buckets() {
        page.sample(&bucket, &[("le", &ms_as_seconds(bound))], n);
    }
    page.sample(&bucket, &[("le", "+Inf")], s.finality_latency.count);
    page.sample(&format!("{name}_sum"), &[], ms_as_seconds(s.finality_latency.sum_ms));
    page.sample(&format!("{name}_count"), &[], s.finality_latency.count);
}

fn render_transactions(page: &mut Page, s: &NodeStatus) {
    page.single(
        "cbdc_transactions_finalized_total",
        "counter",
        "Transactions finalized since this process started.",
        s.finalized_transactions,
    );
    page.single(
        "cbdc_signatures_verified_total",
        "counter",
        "Transaction signatures this process verified since it started (once per transaction: \
         on admission to the mempool, or in a block check for one the mempool could not hold).",
        s.signatures_verified,
    );
    let name = "cbdc_transactions_total";
    page.family(
        name,
        "counter",
        "Transactions by kind and outcome: committed in blocks finalized here, or dropped from \
         this node's mempool as rejected against the finalized ledger.",
    );
    let mut kinds: std::collections::BTreeSet<&str> = cbdc_node::TX_KINDS.into_iter().collect();
    kinds.extend(s.committed_by_kind.keys().chain(s.rejections_by_kind.keys()));
    for kind in kinds {
        for (outcome, counts) in
            [("committed", &s.committed_by_kind), ("rejected", &s.rejections_by_kind)]
        {
            let n = counts.get(kind).copied().unwrap_or(0);
            page.sample(name, &[("kind", kind), ("outcome", outcome)], n);
        }
    }
    let name = "cbdc_transactions_rejected_total";
    page.family(
        name,
        "counter",
        "Transactions dropped from this node's mempool as rejected, by rejection code.",
    );
    let mut codes: std::collections::BTreeSet<&str> =
        cbdc_ledger::Rejection::ALL.iter().map(|r| r.code()).collect();
    codes.extend(s.rejections_by_code.keys());
    for code in codes {
        page.sample(name, &[("code", code)], s.rejections_by_code.get(code).copied().unwrap_or(0));
    }
}

fn render_flows(page: &mut Page, s: &NodeStatus) {
    let flows: [(&str, &str, u64); 6] = [
        ("cbdc_payments_total", "Payment legs committed.", s.payments_total),
        (
            "cbdc_payments_value_minor_total",
            "Value of the payment legs committed, in minor units.",
            s.payments_value_minor,
        ),
        (
            "cbdc_waterfalls_total",
            "Waterfalls: excess over a payee's holding limit swept to its bank.",
            s.waterfalls_total,
        ),
        (
            "cbdc_waterfall_value_minor_total",
            "Value swept by waterfalls, in minor units.",
            s.waterfall_value_minor,
        ),
        (
            "cbdc_reverse_waterfalls_total",
            "Reverse waterfalls: linked payers topped up by their bank.",
            s.reverse_waterfalls_total,
        ),
        (
            "cbdc_reverse_waterfall_value_minor_total",
            "Value topped up by reverse waterfalls, in minor units.",
            s.reverse_waterfall_value_minor,
        ),
    ];
    for (name, help, value) in flows {
        let help = format!("{help} Counted in blocks finalized since this process started.");
        page.single(name, "counter", &help, value);
    }
}

fn render_validators(page: &mut Page, s: &NodeStatus) {
    let name = "cbdc_validator_last_signed_height";
    page.family(
        name,
        "gauge",
        "The last height whose finalization certificate the validator signed (as seen here).",
    );
    for (key, height) in &s.validators_last_signed {
        page.sample(name, &[("validator", &validator_label(key))], height);
    }
    // Every validator seen signing, with zero evidence unless some names it.
    let mut evidence: BTreeMap<String, u64> =
        s.validators_last_signed.iter().map(|(key, _)| (validator_label(key), 0)).collect();
    evidence.extend(s.evidence_by_validator.iter().map(|(key, n)| (validator_label(key), *n)));
    let name = "cbdc_validator_evidence_total";
    page.family(name, "counter", "Equivocation evidence records naming the validator.");
    for (validator, count) in &evidence {
        page.sample(name, &[("validator", validator)], count);
    }
}

/// The runtime registry's OpenMetrics text as Prometheus text format 0.0.4: without the
/// `# EOF` terminator, counters' HELP and TYPE named like their samples (`x_total`), and the
/// OpenMetrics `unknown` type as `untyped`.
pub fn prometheus_text(openmetrics: &str) -> String {
    let counters: std::collections::BTreeSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.strip_suffix(" counter"))
        .filter(|name| !name.ends_with("_total"))
        .collect();
    let mut out = String::new();
    for line in openmetrics.lines().filter(|l| *l != "# EOF") {
        let meta = ["# HELP ", "# TYPE "].into_iter().find(|p| line.starts_with(p));
        match meta.and_then(|p| line[p.len()..].split_once(' ').map(|(n, rest)| (p, n, rest))) {
            Some((prefix, name, rest)) if counters.contains(name) => {
                let _ = writeln!(out, "{prefix}{name}_total {rest}");
            }
            Some(("# TYPE ", name, "unknown")) => {
                let _ = writeln!(out, "# TYPE {name} untyped");
            }
            _ => {
                out.push_str(line);
                out.push('\n');
            }
        }
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

/// The stable code and status of a refused submission.
fn submit_refusal(error: SubmitError) -> (StatusCode, &'static str, &'static str) {
    match error {
        SubmitError::Mempool(cbdc_node::MempoolError::Duplicate) => {
            (StatusCode::CONFLICT, "duplicate_transaction", "already pending")
        }
        SubmitError::Mempool(cbdc_node::MempoolError::Full) => {
            (StatusCode::TOO_MANY_REQUESTS, "mempool_full", "try again later")
        }
        SubmitError::Mempool(cbdc_node::MempoolError::TooLarge(_)) => {
            (StatusCode::PAYLOAD_TOO_LARGE, "transaction_too_large", "transaction too large")
        }
        SubmitError::BadSignature => {
            (StatusCode::BAD_REQUEST, "bad_signature", "a signature does not verify")
        }
        SubmitError::Closed => {
            (StatusCode::SERVICE_UNAVAILABLE, "node_unavailable", "the node is stopping")
        }
    }
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchBody {
    /// Signed transactions' canonical encodings, hex; at most 1,024.
    transactions: Vec<String>,
}

/// `POST /v1/transactions/batch`: every item is decoded first (a malformed one refuses the
/// whole request, naming its index, and nothing is submitted); then each is submitted in order
/// and answered with `accepted` or the code a single submission would get.
async fn submit_batch(state: web::Data<HttpState>, body: web::Json<BatchBody>) -> HttpResponse {
    let body = body.into_inner();
    if body.transactions.is_empty() || body.transactions.len() > cbdc_node::MAX_SUBMIT_BATCH {
        let detail = format!("between 1 and {} transactions", cbdc_node::MAX_SUBMIT_BATCH);
        return problem(StatusCode::BAD_REQUEST, "invalid_batch_size", &detail);
    }
    let mut txs = Vec::with_capacity(body.transactions.len());
    for (index, item) in body.transactions.iter().enumerate() {
        let decoded = hex::decode(item)
            .map_err(|_| "not hex".to_string())
            .and_then(|bytes| SignedTransaction::decode(&bytes).map_err(|e| e.to_string()));
        match decoded {
            Ok(tx) => txs.push(tx),
            Err(detail) => {
                let detail = format!("transaction {index}: {detail}");
                return problem(StatusCode::BAD_REQUEST, "malformed_transaction", &detail);
            }
        }
    }
    let ids: Vec<_> = txs.iter().map(|t| t.body.id).collect();
    match state.mailbox.submit_batch(txs).await {
        Ok(results) => {
            let results: Vec<_> = ids
                .iter()
                .zip(results)
                .map(|(id, result)| match result {
                    Ok(()) => serde_json::json!({ "id": id.to_hex(), "status": "accepted" }),
                    Err(e) => serde_json::json!({
                        "id": id.to_hex(), "status": "refused", "code": submit_refusal(e).1,
                    }),
                })
                .collect();
            HttpResponse::Ok().json(serde_json::json!({ "results": results }))
        }
        Err(e) => {
            let (status, code, detail) = submit_refusal(e);
            problem(status, code, detail)
        }
    }
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
        Err(e) => {
            let (status, code, detail) = submit_refusal(e);
            problem(status, code, detail)
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
                    .wrap(telemetry::http_metrics("node"))
                    .app_data(web::Data::new(state.clone()))
                    .app_data(
                        web::JsonConfig::default().limit(MAX_BODY_BYTES).error_handler(json_error),
                    )
                    .route("/health", web::get().to(health))
                    .route("/metrics", web::get().to(metrics))
                    .route("/v1/status", web::get().to(status))
                    .route("/v1/transactions", web::post().to(submit))
                    .service(
                        web::resource("/v1/transactions/batch")
                            .app_data(
                                web::JsonConfig::default()
                                    .limit(MAX_BATCH_BODY_BYTES)
                                    .error_handler(json_error),
                            )
                            .route(web::post().to(submit_batch)),
                    )
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
    use std::collections::BTreeSet;

    /// A sample line: metric name, labels, value.
    type Sample = (String, BTreeMap<String, String>, f64);

    fn valid_name(name: &str) -> bool {
        let mut chars = name.chars();
        chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    }

    fn parse_labels(text: &str) -> Result<BTreeMap<String, String>, String> {
        let mut labels = BTreeMap::new();
        let mut rest = text;
        while !rest.is_empty() {
            let (key, after) = rest.split_once("=\"").ok_or(format!("bad labels {text:?}"))?;
            if !valid_name(key) || key.contains(':') {
                return Err(format!("bad label name {key:?}"));
            }
            let mut value = String::new();
            let mut chars = after.char_indices();
            let end = loop {
                match chars.next() {
                    Some((_, '\\')) => match chars.next() {
                        Some((_, 'n')) => value.push('\n'),
                        Some((_, c @ ('\\' | '"'))) => value.push(c),
                        _ => return Err(format!("bad escape in {text:?}")),
                    },
                    Some((i, '"')) => break i,
                    Some((_, c)) => value.push(c),
                    None => return Err(format!("unterminated label value in {text:?}")),
                }
            };
            if labels.insert(key.to_string(), value).is_some() {
                return Err(format!("label {key} twice in {text:?}"));
            }
            rest = &after[end + 1..];
            rest = rest.strip_prefix(',').unwrap_or(rest);
        }
        Ok(labels)
    }

    /// Parses Prometheus text format 0.0.4 strictly: HELP and TYPE at most once per family and
    /// before its samples, known types, every sample of a typed family, families contiguous,
    /// values that parse, buckets with `le`.
    fn parse(text: &str) -> Result<Vec<Sample>, String> {
        let mut types: BTreeMap<String, String> = BTreeMap::new();
        let mut helps: BTreeSet<String> = BTreeSet::new();
        let mut finished: BTreeSet<String> = BTreeSet::new();
        let mut current: Option<String> = None;
        let mut samples = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let name = rest.split(' ').next().unwrap_or_default();
                if !valid_name(name) || !helps.insert(name.to_string()) {
                    return Err(format!("bad or repeated HELP: {line}"));
                }
                continue;
            }
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').ok_or(format!("bad TYPE: {line}"))?;
                let known = ["counter", "gauge", "histogram", "summary", "untyped"];
                if !valid_name(name) || !known.contains(&kind) || types.contains_key(name) {
                    return Err(format!("bad or repeated TYPE: {line}"));
                }
                if finished.contains(name) || current.as_deref() == Some(name) {
                    return Err(format!("TYPE after samples: {line}"));
                }
                types.insert(name.to_string(), kind.to_string());
                continue;
            }
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let (series, value) = line.rsplit_once(' ').ok_or(format!("no value: {line}"))?;
            let value: f64 = value.parse().map_err(|_| format!("bad value: {line}"))?;
            let (name, labels) = match series.split_once('{') {
                Some((name, labels)) => {
                    let labels = labels.strip_suffix('}').ok_or(format!("bad labels: {line}"))?;
                    (name, parse_labels(labels)?)
                }
                None => (series, BTreeMap::new()),
            };
            if !valid_name(name) {
                return Err(format!("bad metric name: {line}"));
            }
            let family = if types.contains_key(name) {
                name.to_string()
            } else {
                let base = ["_bucket", "_sum", "_count"]
                    .into_iter()
                    .find_map(|suffix| name.strip_suffix(suffix))
                    .filter(|base| {
                        types.get(*base).is_some_and(|t| t == "histogram" || t == "summary")
                    })
                    .ok_or(format!("sample without a TYPE: {line}"))?;
                if name.ends_with("_bucket") && !labels.contains_key("le") {
                    return Err(format!("bucket without le: {line}"));
                }
                base.to_string()
            };
            if current.as_deref() != Some(family.as_str()) {
                if finished.contains(&family) {
                    return Err(format!("family {family} is not contiguous"));
                }
                if let Some(done) = current.replace(family.clone()) {
                    finished.insert(done);
                }
            }
            samples.push((name.to_string(), labels, value));
        }
        Ok(samples)
    }

    fn key(byte: u8) -> cbdc_ledger::PublicKey {
        cbdc_ledger::PublicKey([byte; 32])
    }

    fn busy_status() -> NodeStatus {
        let mut s = NodeStatus {
            height: 7,
            supply_outstanding_minor: 42,
            supply_cap_minor: 1_000,
            mempool: 3,
            mempool_capacity: 200_000,
            payments_total: 2,
            payments_value_minor: 300,
            validators_last_signed: vec![(key(0xab), 7), (key(0xcd), 6)],
            evidence_by_validator: vec![(key(0xee), 1)],
            ..NodeStatus::default()
        };
        for ms in [20, 70, 700, 30_000] {
            s.finality_latency.observe(ms);
        }
        s.committed_by_kind.insert("transfer", 2);
        s.rejections_by_kind.insert("transfer", 1);
        s.rejections_by_code.insert("insufficient_funds", 1);
        s
    }

    const RUNTIME: &str = "# HELP network_tracker_directory_connected When each peer connected.\n\
        # TYPE network_tracker_directory_connected gauge\n\
        network_tracker_directory_connected{peer=\"aa\"} 1795298607736\n\
        network_tracker_directory_connected{peer=\"bb\"} 1795298609067\n\
        # HELP network_dialer_attempts Dial attempts.\n\
        # TYPE network_dialer_attempts counter\n\
        network_dialer_attempts_total{peer=\"aa\"} 2\n\
        # HELP engine_latency Latency.\n\
        # TYPE engine_latency histogram\n\
        engine_latency_sum 1.5\n\
        engine_latency_count 3\n\
        engine_latency_bucket{le=\"0.05\"} 3\n\
        engine_latency_bucket{le=\"+Inf\"} 3\n\
        # HELP odd Something.\n\
        # TYPE odd unknown\n\
        odd 1\n\
        # EOF\n";

    #[test]
    fn metrics_are_prometheus_text_with_the_house_names() {
        let s = NodeStatus {
            height: 7,
            supply_outstanding_minor: 42,
            signatures_verified: 9,
            ..NodeStatus::default()
        };
        let text = render_metrics("bank-1", &s, "# HELP x y\n# TYPE x counter\nx_total 1\n# EOF\n");
        assert!(text.contains("cbdc_block_height{node=\"bank-1\"} 7\n"));
        assert!(text.contains("cbdc_signatures_verified_total{node=\"bank-1\"} 9\n"));
        assert!(text.contains("cbdc_supply_outstanding_minor{node=\"bank-1\"} 42\n"));
        assert!(!text.contains("# EOF"));
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let mut parts = line.rsplitn(2, ' ');
            let value = parts.next().unwrap_or_default();
            assert!(value.parse::<f64>().is_ok(), "unparsable sample line {line:?}");
        }
        if let Err(e) = parse(&text) {
            panic!("{e}\n{text}");
        }
    }

    #[test]
    fn every_listed_metric_is_rendered_as_strict_prometheus_text() {
        crate::telemetry::record(
            "node",
            Some("/v1/status"),
            &actix_web::http::Method::GET,
            200,
            std::time::Duration::from_millis(3),
        );
        let text = render_metrics("bank-1", &busy_status(), RUNTIME);
        let samples = match parse(&text) {
            Ok(samples) => samples,
            Err(e) => panic!("{e}\n{text}"),
        };
        let names: BTreeSet<&str> = samples.iter().map(|(n, _, _)| n.as_str()).collect();
        for name in RENDERED_METRICS.iter().chain(crate::telemetry::RENDERED_METRICS) {
            let rendered = names.contains(name) || names.contains(format!("{name}_count").as_str());
            assert!(rendered, "{name} is listed but not rendered\n{text}");
        }
        let value = |name: &str, labels: &[(&str, &str)]| {
            samples
                .iter()
                .find(|(n, l, _)| {
                    n == name
                        && labels.iter().all(|(k, v)| l.get(*k).map(String::as_str) == Some(v))
                })
                .map(|(_, _, v)| *v)
        };
        assert_eq!(value("cbdc_peers_connected", &[]), Some(2.0));
        assert_eq!(value("cbdc_mempool_capacity_transactions", &[]), Some(200_000.0));
        let latency = "cbdc_finality_latency_seconds";
        assert_eq!(value(&format!("{latency}_bucket"), &[("le", "0.025")]), Some(1.0));
        assert_eq!(value(&format!("{latency}_bucket"), &[("le", "1")]), Some(3.0));
        assert_eq!(value(&format!("{latency}_bucket"), &[("le", "+Inf")]), Some(4.0));
        assert_eq!(value(&format!("{latency}_sum"), &[]), Some(30.79));
        let committed = [("kind", "transfer"), ("outcome", "committed")];
        assert_eq!(value("cbdc_transactions_total", &committed), Some(2.0));
        let minted = [("kind", "mint"), ("outcome", "committed")];
        assert_eq!(value("cbdc_transactions_total", &minted), Some(0.0), "every kind is shown");
        let rejected = [("code", "insufficient_funds")];
        assert_eq!(value("cbdc_transactions_rejected_total", &rejected), Some(1.0));
        let signer = [("validator", "abababababababab")];
        assert_eq!(value("cbdc_validator_last_signed_height", &signer), Some(7.0));
        assert_eq!(value("cbdc_validator_evidence_total", &signer), Some(0.0));
        let offender = [("validator", "eeeeeeeeeeeeeeee")];
        assert_eq!(value("cbdc_validator_evidence_total", &offender), Some(1.0));
        assert_eq!(value("network_dialer_attempts_total", &[("peer", "aa")]), Some(2.0));
        assert!(text.contains("# TYPE network_dialer_attempts_total counter\n"));
        assert!(text.contains("# TYPE odd untyped\n"));
        let http = [("service", "node"), ("route", "/v1/status"), ("status", "200")];
        assert!(value("cbdc_http_request_duration_seconds_count", &http).is_some_and(|n| n >= 1.0));
    }

    /// Metric names (`cbdc_` followed by lowercase letters and underscores) in `text`.
    fn cbdc_names(text: &str) -> BTreeSet<String> {
        let mut names = BTreeSet::new();
        let mut rest = text;
        while let Some(at) = rest.find("cbdc_") {
            let preceded = rest[..at].chars().last().is_some_and(|c| c.is_ascii_alphanumeric());
            let tail = &rest[at..];
            let len = tail
                .char_indices()
                .find(|(_, c)| !(c.is_ascii_lowercase() || *c == '_'))
                .map_or(tail.len(), |(i, _)| i);
            if !preceded {
                names.insert(tail[..len].to_string());
            }
            rest = &tail[len..];
        }
        names
    }

    const PROMETHEUS: &str = include_str!("../../../deploy/prometheus/prometheus.yml");
    const ALERTS: &str = include_str!("../../../deploy/prometheus/alerts.yml");
    const DASHBOARD: &str = include_str!("../../../deploy/grafana/cbdc-dashboard.json");
    const COMPOSE: &str = include_str!("../../../deploy/docker-compose.yml");

    #[test]
    fn the_deployment_uses_only_metrics_the_node_renders() {
        let rendered: BTreeSet<&str> =
            RENDERED_METRICS.iter().chain(crate::telemetry::RENDERED_METRICS).copied().collect();
        let histograms = ["cbdc_finality_latency_seconds", crate::telemetry::HTTP_REQUEST_DURATION];
        let known = |name: &str| {
            rendered.contains(name)
                || ["_bucket", "_sum", "_count"].iter().any(|suffix| {
                    name.strip_suffix(suffix).is_some_and(|base| histograms.contains(&base))
                })
        };
        let dashboard: serde_json::Value = match serde_json::from_str(DASHBOARD) {
            Ok(v) => v,
            Err(e) => panic!("the Grafana dashboard is not JSON: {e}"),
        };
        assert!(dashboard["panels"].as_array().is_some_and(|p| !p.is_empty()));
        let mut used = BTreeSet::new();
        for (file, text) in [("alerts.yml", ALERTS), ("cbdc-dashboard.json", DASHBOARD)] {
            let names = cbdc_names(text);
            assert!(!names.is_empty(), "{file} uses no metric");
            for name in names {
                assert!(known(&name), "{file} uses {name}, which the node does not render");
                used.insert(name);
            }
        }
        for name in ["cbdc_block_height", "cbdc_mempool_capacity_transactions"] {
            assert!(used.contains(name), "{name} is neither alerted on nor charted");
        }
    }

    /// The YAML files are checked for shape without a YAML parser (no dependency for a test):
    /// spaces only, every rule with an expression, the devnet's five nodes scraped.
    #[test]
    fn the_prometheus_files_have_the_expected_shape() {
        for (file, text) in [
            ("prometheus.yml", PROMETHEUS),
            ("alerts.yml", ALERTS),
            ("docker-compose.yml", COMPOSE),
        ] {
            assert!(!text.contains('\t'), "{file} has a tab (YAML indents with spaces)");
            for line in text.lines().filter(|l| !l.trim_start().starts_with('#')) {
                let indent = line.len() - line.trim_start().len();
                assert!(indent % 2 == 0, "{file}: odd indentation: {line:?}");
            }
        }
        for port in 8100..=8104 {
            assert!(
                PROMETHEUS.contains(&format!("127.0.0.1:{port}")),
                "node on {port} not scraped"
            );
        }
        assert!(PROMETHEUS.contains("alerts.yml"));
        let alerts: Vec<&str> =
            ALERTS.lines().filter_map(|l| l.trim_start().strip_prefix("- alert: ")).collect();
        let exprs = ALERTS.lines().filter(|l| l.trim_start().starts_with("expr:")).count();
        assert_eq!(alerts.len(), exprs, "every alert has one expression");
        for wanted in [
            "ValidatorDown",
            "FinalityStalled",
            "SupplyExceedsCap",
            "SupplyChangedWithoutIssuance",
            "SupplyDiverges",
            "MempoolNearCapacity",
            "EquivocationEvidence",
        ] {
            assert!(alerts.contains(&wanted), "alert {wanted} missing: {alerts:?}");
        }
    }
}
