//! Starting the bank's APIs beside its validator node: keys from configuration, the ledger
//! view (projector), the first operator account, and the HTTP(S) server that mounts the retail
//! wallet API and the operations API.

use crate::bank::Bank;
use crate::projector::{self, Watched};
use crate::sealing::{HolderKey, Sealer};
use actix_web::{App, HttpResponse, HttpServer, web};
use anyhow::{Context, Result, bail};
use cbdc_service::auth::{Role, SigningKey as JwtKey, Tokens, hash_password};
use cbdc_service::config::IntermediarySection;
use cbdc_service::keys;
use cbdc_service::validator::Started;
use cbdc_store::{Store, UserRecord};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The operator account created on first start.
pub const FIRST_OPERATOR: &str = "operator";

/// The operations API's OpenAPI document.
pub const OPS_OPENAPI_JSON: &str = include_str!("../openapi-ops.json");

fn read_hex32(path: &Path) -> Result<[u8; 32]> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut out = [0u8; 32];
    hex::decode_to_slice(text.trim(), &mut out)
        .with_context(|| format!("{} is not 32 bytes of hex", path.display()))?;
    Ok(out)
}

/// Creates the first operator with a random password in `credentials/operator.password` (mode
/// 0600) beside the node's data directory, if the bank has no user of that name yet.
fn bootstrap_operator(store: &mut Store, node_dir: &Path, now_ms: u64) -> Result<()> {
    if store.user(FIRST_OPERATOR)?.is_some() {
        return Ok(());
    }
    let password = hex::encode(keys::random_bytes::<16>()?);
    let file = node_dir.join("credentials").join(format!("{FIRST_OPERATOR}.password"));
    std::fs::create_dir_all(file.parent().unwrap_or(node_dir))?;
    if file.exists() {
        std::fs::remove_file(&file)?;
    }
    keys::write_secret(&file, password.as_bytes())?;
    store.create_user(&UserRecord {
        username: FIRST_OPERATOR.to_string(),
        password_hash: hash_password(&password).map_err(anyhow::Error::msg)?,
        role: Role::BankOperator.as_str().to_string(),
        officer_key: None,
        disabled: false,
        created_at_ms: now_ms,
    })?;
    tracing::info!(credentials = %file.display(), "first bank operator created");
    Ok(())
}

/// TLS for the APIs from PEM files.
fn tls_config(cert: &Path, key: &Path) -> Result<rustls::ServerConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let chain = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("reading {}", cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("{} is not PEM certificates", cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("{} is not a PEM private key", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    Ok(config)
}

/// Starts the bank's APIs; the returned guard keeps them running.
pub fn start_api(started: &Started) -> Result<Box<dyn std::any::Any + Send>> {
    let Some(section) = started.config.intermediary.clone() else {
        tracing::warn!("no [intermediary] section: the bank's APIs are not served");
        return Ok(Box::new(()));
    };
    let node = &started.config.node;
    let bank_id = cbdc_ledger::BankId(node.bank_id);
    let chain_id = started.genesis.chain_id.clone();
    let tokens = tokens(&section, node.bank_id, &chain_id)?;
    let mut store = Store::open(&node.database_url)?;
    let node_dir = node.data_dir.parent().unwrap_or(&node.data_dir).to_path_buf();
    bootstrap_operator(&mut store, &node_dir, cbdc_service::init::now_ms())?;
    let watched = Arc::new(Watched::default());
    let (view, projector) = projector::start(
        &node.database_url,
        &started.genesis,
        bank_id,
        watched.clone(),
        Some(started.finalized.clone()),
    )?;
    let bank = Arc::new(Bank {
        id: bank_id,
        chain_id,
        node: started.mailbox.clone(),
        store: Arc::new(Mutex::new(store)),
        view,
        watched,
        sealer: Sealer::new(&read_hex32(&section.pii_key_file)?),
        holders: HolderKey::new(&read_hex32(&section.network_key_file)?),
        admin: keys::signing_key(&section.admin_key_file)?,
        float: keys::signing_key(&section.float_key_file)?,
        tokens,
        now_ms: Arc::new(cbdc_service::init::now_ms),
        random: Arc::new(|| keys::random_bytes::<32>().unwrap_or_else(|_| fatal_randomness())),
        payment_wait: Duration::from_millis(section.payment_wait_ms),
        expiry_blocks: section.payment_expiry_blocks,
    });
    let tls = match (&section.tls_cert_file, &section.tls_key_file) {
        (Some(cert), Some(key)) => Some(tls_config(cert, key)?),
        (None, None) => None,
        _ => bail!("tls_cert_file and tls_key_file go together"),
    };
    let server = spawn(section.api_listen, tls, bank)?;
    tracing::info!(api = %section.api_listen, "bank operations and wallet APIs started");
    Ok(Box::new((server, projector)))
}

/// The system's randomness failing is not recoverable: no key or nonce may be made without it.
fn fatal_randomness() -> [u8; 32] {
    tracing::error!("the system random number generator failed");
    std::process::abort()
}

fn tokens(section: &IntermediarySection, bank: u32, chain_id: &str) -> Result<Tokens> {
    let jwt_hex = std::fs::read_to_string(&section.jwt_key_file)
        .with_context(|| format!("reading {}", section.jwt_key_file.display()))?;
    let jwt = JwtKey::from_pkcs8(&hex::decode(jwt_hex.trim()).context("JWT key is not hex")?)
        .map_err(anyhow::Error::msg)?;
    Ok(Tokens::new(
        &format!("cbdc-bank-{bank}/{chain_id}"),
        &format!("cbdc-bank-{bank}-api"),
        section.token_lifetime_s,
        jwt,
    ))
}

async fn ops_openapi() -> HttpResponse {
    HttpResponse::Ok().content_type("application/json").body(OPS_OPENAPI_JSON)
}

/// Serves both APIs on `addr` in a dedicated thread (its own actix system).
fn spawn(
    addr: std::net::SocketAddr,
    tls: Option<rustls::ServerConfig>,
    bank: Arc<Bank>,
) -> Result<std::thread::JoinHandle<()>> {
    let (bound_tx, bound_rx) = std::sync::mpsc::sync_channel::<std::io::Result<()>>(1);
    let handle = std::thread::Builder::new().name("bank-api".into()).spawn(move || {
        let system = actix_web::rt::System::new();
        system.block_on(async move {
            let data = web::Data::from(bank);
            let server = HttpServer::new(move || {
                App::new()
                    .wrap(cbdc_service::telemetry::http_metrics("bank_api"))
                    .app_data(data.clone())
                    .app_data(wallet_api::routes::json_config())
                    .app_data(wallet_api::routes::query_config())
                    .app_data(wallet_api::routes::path_config())
                    .app_data(wallet_api::routes::payload_config())
                    .route(
                        "/health",
                        web::get().to(|| async {
                            HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
                        }),
                    )
                    .route("/v1/openapi/ops.json", web::get().to(ops_openapi))
                    .configure(wallet_api::routes::configure::<Bank>)
                    .configure(crate::ops::configure)
                    .configure(|cfg| {
                        wallet_api::docs::routes(cfg, &[("operations", "/v1/openapi/ops.json")])
                    })
                    .default_service(web::to(wallet_api::routes::not_found))
            })
            .workers(2)
            .disable_signals();
            let bound = match tls {
                Some(config) => server.bind_rustls_0_23(addr, config),
                None => server.bind(addr),
            };
            match bound {
                Ok(server) => {
                    let _ = bound_tx.send(Ok(()));
                    if let Err(e) = server.run().await {
                        tracing::error!(error = %e, "bank API server stopped");
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
        Ok(Err(e)) => Err(anyhow::anyhow!("binding the bank API on {addr}: {e}")),
        Err(_) => Err(anyhow::anyhow!("the bank API thread exited before binding {addr}")),
    }
}
