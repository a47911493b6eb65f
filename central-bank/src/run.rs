//! Starting the central bank's API beside its validator node: TLS material from the CA
//! directory, the JWT key, a database connection of its own, the workflow and its follower.

use crate::api::{self, ApiState};
use crate::auth::{SigningKey as JwtKey, Tokens};
use crate::pki::{Ca, server_config_refreshable};
use crate::workflow::Workflow;
use anyhow::{Context, Result};
use cbdc_service::validator::Started;
use cbdc_store::Store;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How often submitted requests are checked for finality or expiry.
const FOLLOW_EVERY: Duration = Duration::from_millis(300);
/// How often the API's CRL is reissued (each is valid for `pki::CRL_VALIDITY_DAYS`).
const CRL_REFRESH: Duration = Duration::from_secs(3_600);

/// Starts the API and the workflow follower; the returned guard keeps them running.
pub fn start_api(started: &Started) -> Result<Box<dyn std::any::Any + Send>> {
    let Some(section) = started.config.central_bank.clone() else {
        tracing::warn!("no [central_bank] section: the central bank API is not served");
        return Ok(Box::new(()));
    };
    let pki = &section.pki_dir;
    let read = |name: &str| {
        std::fs::read_to_string(pki.join(name))
            .with_context(|| format!("reading {}", pki.join(name).display()))
    };
    let mut ca = Ca::load(pki)?;
    let crl = ca.crl_pem()?;
    let (tls, verifier) = server_config_refreshable(
        &read("ca.pem")?,
        &read("api.pem")?,
        &read("api.key")?,
        Some(&crl),
    )?;
    // A CRL is valid for a week: issue a fresh one every hour, so bank certificates keep
    // verifying for as long as the service runs.
    let ca = Arc::new(Mutex::new(ca));
    let (refresh_ca, refresh_verifier) = (ca.clone(), verifier.clone());
    std::thread::Builder::new().name("cb-crl".into()).spawn(move || {
        loop {
            std::thread::sleep(CRL_REFRESH);
            let crl = crate::lock(&refresh_ca).crl_pem();
            match crl.and_then(|crl| refresh_verifier.update(&crl)) {
                Ok(()) => tracing::info!("certificate revocation list refreshed"),
                Err(error) => tracing::error!(%error, "refreshing the revocation list"),
            }
        }
    })?;
    let jwt_hex = std::fs::read_to_string(&section.jwt_key_file)
        .with_context(|| format!("reading {}", section.jwt_key_file.display()))?;
    let jwt = JwtKey::from_pkcs8(&hex::decode(jwt_hex.trim()).context("JWT key is not hex")?)?;
    let tokens = Arc::new(Tokens::new(
        &format!("cbdc-central-bank/{}", started.genesis.chain_id),
        "cbdc-central-bank-api",
        section.token_lifetime_s,
        jwt,
    ));
    let store = Arc::new(Mutex::new(Store::open(&started.config.node.database_url)?));
    let now_ms: Arc<dyn Fn() -> u64 + Send + Sync> = Arc::new(crate::now_ms);
    let random: Arc<dyn Fn() -> [u8; 16] + Send + Sync> =
        Arc::new(|| cbdc_service::keys::random_bytes::<16>().unwrap_or_default());
    let workflow = Workflow::new(
        store.clone(),
        started.mailbox.clone(),
        started.genesis.chain_id.clone(),
        now_ms.clone(),
        random,
    );
    let status_rx = started.status.clone();
    let status: crate::dashboard::StatusSource = Arc::new(move || status_rx.borrow().clone());
    let series: crate::dashboard::SharedSeries = Arc::default();
    let state = ApiState {
        workflow: workflow.clone(),
        tokens,
        store,
        node: started.mailbox.clone(),
        now_ms,
        ca,
        verifier,
        status: status.clone(),
        series: series.clone(),
    };
    let server = api::spawn(section.api_listen, tls, state)?;
    let sampler_node = started.mailbox.clone();
    let sampler = std::thread::Builder::new().name("cb-dashboard".into()).spawn(move || {
        let system = actix_web::rt::System::new();
        system.block_on(async move {
            loop {
                if let Ok(summary) = sampler_node.summary().await {
                    let sample = crate::dashboard::sample(crate::now_ms(), &summary, &status());
                    crate::lock(&series).push(sample);
                }
                actix_web::rt::time::sleep(crate::dashboard::SAMPLE_EVERY).await;
            }
        });
    })?;
    let follower = std::thread::Builder::new().name("cb-follower".into()).spawn(move || {
        let system = actix_web::rt::System::new();
        system.block_on(async move {
            loop {
                if let Err(error) = workflow.follow().await {
                    tracing::warn!(%error, "following requests");
                }
                actix_web::rt::time::sleep(FOLLOW_EVERY).await;
            }
        });
    })?;
    tracing::info!(api = %section.api_listen, "central bank API started");
    Ok(Box::new((server, follower, sampler)))
}
