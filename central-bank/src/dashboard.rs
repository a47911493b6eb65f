//! The regulators' supply dashboard: a page served by the central bank under `/dashboard/`
//! (HTML, CSS and JavaScript compiled into the binary from `central-bank/dashboard/`; nothing
//! from a CDN; `Content-Security-Policy: default-src 'self'`) and the JSON it polls,
//! `GET /v1/dashboard` (role `regulator` only).
//!
//! The page logs in with the API's own token endpoint, keeps the token in memory only, and
//! redraws every two seconds without a reload: supply over time with mints and burns marked,
//! distribution by bank and by KYC tier, payment count and value over time, limit rejections,
//! waterfalls and reverse waterfalls, and the validators. Charts are inline SVG drawn by the
//! page's script.
//!
//! Figures come from the central bank node's finalized ledger (supply, banks, holdings by bank
//! and tier), its counters (payments, waterfalls, rejections, finality latency, evidence,
//! validators' last signed heights), the committed mint and burn requests, and a bounded series
//! of samples taken every [`SAMPLE_EVERY`] while the service runs.

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use cbdc_node::{LedgerSummary, NodeStatus};
use serde::Serialize;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How often the series is sampled.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(2);
/// Samples kept: one hour at [`SAMPLE_EVERY`].
pub const MAX_SAMPLES: usize = 1_800;
/// Mint and burn requests looked at for the events list.
pub const MAX_EVENTS: u32 = 200;

const INDEX_HTML: &str = include_str!("../dashboard/index.html");
const APP_JS: &str = include_str!("../dashboard/app.js");
const STYLE_CSS: &str = include_str!("../dashboard/style.css");

/// One point of the dashboard's time series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Sample {
    pub t_ms: u64,
    pub height: u64,
    pub outstanding_minor: u64,
    pub minted_minor: u64,
    pub burned_minor: u64,
    pub payments: u64,
    pub payments_value_minor: u64,
    pub waterfalls: u64,
    pub reverse_waterfalls: u64,
    pub rejections: u64,
}

/// The bounded series, shared by the sampler and the handlers.
#[derive(Debug, Default)]
pub struct Series {
    samples: VecDeque<Sample>,
}

impl Series {
    pub fn push(&mut self, sample: Sample) {
        if self.samples.back().is_some_and(|last| last.t_ms >= sample.t_ms) {
            return;
        }
        if self.samples.len() == MAX_SAMPLES {
            self.samples.pop_front();
        }
        self.samples.push_back(sample);
    }

    pub fn samples(&self) -> Vec<Sample> {
        self.samples.iter().copied().collect()
    }
}

/// Reads the node's counters (injected: the node's status channel in the service).
pub type StatusSource = Arc<dyn Fn() -> NodeStatus + Send + Sync>;

/// The sample of `summary` and `status` at `t_ms`.
pub fn sample(t_ms: u64, summary: &LedgerSummary, status: &NodeStatus) -> Sample {
    Sample {
        t_ms,
        height: summary.height,
        outstanding_minor: summary.supply.outstanding().minor(),
        minted_minor: summary.supply.minted.minor(),
        burned_minor: summary.supply.burned.minor(),
        payments: status.payments_total,
        payments_value_minor: status.payments_value_minor,
        waterfalls: status.waterfalls_total,
        reverse_waterfalls: status.reverse_waterfalls_total,
        rejections: status.rejections_by_code.values().sum(),
    }
}

/// The dashboard's document: everything the page draws, at one finalized height.
pub fn document(
    summary: &LedgerSummary,
    status: &NodeStatus,
    samples: &[Sample],
    events: &[cbdc_store::RequestRecord],
    now_ms: u64,
) -> serde_json::Value {
    use serde_json::json;
    let holdings = |bank: u32| summary.holdings_by_bank.iter().find(|h| h.bank == bank);
    let banks: Vec<_> = summary
        .banks
        .iter()
        .map(|b| {
            let h = holdings(b.id.0);
            let last = status
                .validators_last_signed
                .iter()
                .find(|(key, _)| *key == b.validator_key)
                .map(|(_, height)| *height);
            let evidence = status
                .evidence_by_validator
                .iter()
                .find(|(key, _)| *key == b.validator_key)
                .map(|(_, count)| *count)
                .unwrap_or(0);
            json!({
                "id": b.id.0,
                "name": b.name,
                "status": format!("{:?}", b.status).to_lowercase(),
                "issued_minor": b.issued.minor(),
                "quota_minor": b.quota.minor(),
                "holdings_minor": h.map(|h| h.balance_minor).unwrap_or(0),
                "float_minor": h.map(|h| h.float_minor).unwrap_or(0),
                "wallets": h.map(|h| h.wallets).unwrap_or(0),
                "validator_key": b.validator_key.to_hex(),
                "last_signed_height": last,
                "evidence": evidence,
            })
        })
        .collect();
    let tiers: Vec<_> = summary
        .wallets_by_tier
        .iter()
        .map(|t| {
            let limit =
                summary.policy.tiers.get(usize::from(t.tier)).map(|l| l.holding_minor.minor());
            json!({
                "tier": t.tier,
                "wallets": t.wallets,
                "balance_minor": t.balance_minor,
                "holding_limit_minor": limit,
            })
        })
        .collect();
    let events: Vec<_> = events
        .iter()
        .filter(|r| r.kind == "mint" || r.kind == "burn")
        .map(|r| {
            let summary: serde_json::Value =
                serde_json::from_str(&r.summary).unwrap_or(serde_json::Value::Null);
            json!({
                "t_ms": r.updated_at_ms,
                "kind": r.kind,
                "height": r.committed_height,
                "bank": summary.get("bank").cloned().unwrap_or(serde_json::Value::Null),
                "amount_minor": summary.get("amount_minor").cloned().unwrap_or(serde_json::Value::Null),
            })
        })
        .collect();
    let latency = &status.finality_latency;
    json!({
        "time_ms": now_ms,
        "height": summary.height,
        "epoch": summary.epoch,
        "chain_id": summary.chain_id,
        "supply": {
            "outstanding_minor": summary.supply.outstanding().minor(),
            "minted_minor": summary.supply.minted.minor(),
            "burned_minor": summary.supply.burned.minor(),
            "cap_minor": summary.policy.supply_cap_minor.minor(),
        },
        "banks": banks,
        "tiers": tiers,
        "series": samples,
        "events": events,
        "flows": {
            "payments": status.payments_total,
            "payments_value_minor": status.payments_value_minor,
            "waterfalls": status.waterfalls_total,
            "waterfall_value_minor": status.waterfall_value_minor,
            "reverse_waterfalls": status.reverse_waterfalls_total,
            "reverse_waterfall_value_minor": status.reverse_waterfall_value_minor,
        },
        "rejections": status.rejections_by_code,
        "node": {
            "height": status.height,
            "tip_timestamp_ms": status.tip_timestamp_ms,
            "mempool": status.mempool,
            "evidence": status.evidence,
            "validators": status.validators,
            "finality_latency_ms": {
                "count": latency.count,
                "sum_ms": latency.sum_ms,
                "p50_ms": latency.quantile_ms(50),
                "p95_ms": latency.quantile_ms(95),
                "p99_ms": latency.quantile_ms(99),
            },
        },
    })
}

fn asset(content_type: &str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; frame-ancestors 'none'",
        ))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(body)
}

async fn index() -> HttpResponse {
    asset("text/html; charset=utf-8", INDEX_HTML)
}

async fn app_js() -> HttpResponse {
    asset("text/javascript; charset=utf-8", APP_JS)
}

async fn style_css() -> HttpResponse {
    asset("text/css; charset=utf-8", STYLE_CSS)
}

async fn redirect() -> HttpResponse {
    HttpResponse::PermanentRedirect().insert_header((header::LOCATION, "/dashboard/")).finish()
}

/// The page and its assets (no authentication: they hold no data).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/dashboard", web::get().to(redirect))
        .route("/dashboard/", web::get().to(index))
        .route("/dashboard/app.js", web::get().to(app_js))
        .route("/dashboard/style.css", web::get().to(style_css));
}

/// The sampler's shared series.
pub type SharedSeries = Arc<Mutex<Series>>;

#[cfg(test)]
mod tests {
    use super::*;

    fn at(t_ms: u64) -> Sample {
        Sample {
            t_ms,
            height: t_ms,
            outstanding_minor: 0,
            minted_minor: 0,
            burned_minor: 0,
            payments: 0,
            payments_value_minor: 0,
            waterfalls: 0,
            reverse_waterfalls: 0,
            rejections: 0,
        }
    }

    #[test]
    fn the_series_is_bounded_and_ordered() {
        let mut series = Series::default();
        for t in 1..=(MAX_SAMPLES as u64 + 10) {
            series.push(at(t));
        }
        series.push(at(5));
        let samples = series.samples();
        assert_eq!(samples.len(), MAX_SAMPLES);
        assert_eq!(samples.first().map(|s| s.t_ms), Some(11));
        assert!(samples.windows(2).all(|w| w[0].t_ms < w[1].t_ms));
    }

    #[test]
    fn the_page_loads_nothing_from_elsewhere() {
        for text in [INDEX_HTML, APP_JS, STYLE_CSS] {
            // The SVG namespace is a name, not a fetch.
            let text = text.replace("\"http://www.w3.org/2000/svg\"", "");
            assert!(!text.contains("http://") && !text.contains("https://"), "external URL");
            assert!(!text.contains("<script>"), "inline script (the CSP forbids it)");
        }
        for id in
            ["username", "password", "login", "login-error", "dashboard", "supply-outstanding"]
        {
            assert!(INDEX_HTML.contains(&format!("id=\"{id}\"")), "#{id} missing");
        }
    }
}
