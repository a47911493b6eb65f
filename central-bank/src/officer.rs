//! The officer's side of maker-checker: review a request and sign its transaction with the
//! officer's own key file, on the officer's machine. The service never sees the private key.

use crate::client::ApiClient;
use anyhow::{Context, Result, anyhow, bail};
use cbdc_ledger::TxBody;
use cbdc_ledger::codec::Decode as _;
use clap::Subcommand;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Subcommand, Debug)]
pub enum OfficerCommand {
    /// Sign a signing payload (hex) with an officer key file; prints the approval JSON.
    Sign {
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        payload: String,
    },
    /// Fetch a request from the API, show it, sign it locally and post the approval.
    Approve {
        /// The API address (host:port).
        #[arg(long)]
        api: SocketAddr,
        /// The central bank's CA certificate (trusted for the API's TLS certificate).
        #[arg(long)]
        ca: PathBuf,
        #[arg(long)]
        username: String,
        /// A file holding the password (never pass secrets on the command line).
        #[arg(long)]
        password_file: PathBuf,
        /// The officer's key file (hex seed, mode 0600).
        #[arg(long)]
        key: PathBuf,
        /// The request id (hex).
        #[arg(long)]
        request: String,
    },
}

/// Signs `payload` (hex) with the key in `key`: `(officer_key_hex, signature_hex)`.
pub fn sign(key: &std::path::Path, payload_hex: &str) -> Result<(String, String)> {
    let key = cbdc_service::keys::signing_key(key)?;
    let payload = hex::decode(payload_hex.trim()).context("payload is not hex")?;
    Ok((hex::encode(key.public_key().0), hex::encode(key.sign(&payload).0)))
}

/// The chain id inside a signing payload (domain tag, chain id, body).
fn payload_chain_id(payload: &[u8]) -> Result<String> {
    let mut r = cbdc_ledger::codec::Reader::new(payload);
    r.var_bytes(64, "domain").map_err(|e| anyhow!("bad payload: {e}"))?;
    let chain = r.var_bytes(64, "chain id").map_err(|e| anyhow!("bad payload: {e}"))?;
    String::from_utf8(chain.to_vec()).context("chain id is not UTF-8")
}

#[allow(clippy::print_stdout, reason = "the command's output")]
pub fn run(cmd: OfficerCommand) -> Result<()> {
    match cmd {
        OfficerCommand::Sign { key, payload } => {
            let (officer_key, signature) = sign(&key, &payload)?;
            println!(
                "{}",
                serde_json::json!({ "officer_key": officer_key, "signature": signature })
            );
            Ok(())
        }
        OfficerCommand::Approve { api, ca, username, password_file, key, request } => {
            let ca = std::fs::read_to_string(&ca)
                .with_context(|| format!("reading {}", ca.display()))?;
            let client = ApiClient::new(api, "localhost", &ca, None)?;
            let password = std::fs::read_to_string(&password_file)
                .with_context(|| format!("reading {}", password_file.display()))?;
            let login = client.call(
                "POST",
                "/v1/auth/token",
                None,
                Some(&serde_json::json!({ "username": username, "password": password.trim() })),
            )?;
            if login.status != 200 {
                bail!("login failed ({}): {}", login.status, login.body);
            }
            let token = login.json()?["access_token"]
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| anyhow!("no token in the answer"))?;
            let answer =
                client.call("GET", &format!("/v1/requests/{request}"), Some(&token), None)?;
            if answer.status != 200 {
                bail!("fetching the request failed ({}): {}", answer.status, answer.body);
            }
            let view = answer.json()?;
            // Show what is being signed, decoded from the body itself (not the summary).
            let body_hex = view["body"].as_str().unwrap_or_default();
            let body = TxBody::decode(&hex::decode(body_hex).context("body is not hex")?)
                .map_err(|e| anyhow!("the request's body does not decode: {e}"))?;
            println!(
                "request {request}: {:?} (expires at height {})",
                body.kind, body.expiry_height
            );
            println!("reason: {}", view["reason"].as_str().unwrap_or_default());
            // Sign only bytes that are exactly this body on this chain: rebuild the payload
            // from the decoded body and the chain id the server's payload names.
            let served = hex::decode(view["signing_payload"].as_str().unwrap_or_default())
                .context("signing payload is not hex")?;
            let chain_id = payload_chain_id(&served)?;
            let payload = body.signing_payload(&chain_id);
            if payload != served {
                bail!(
                    "the server's signing payload does not match the request's body: not signing"
                );
            }
            println!("chain: {chain_id}");
            let (officer_key, signature) = sign(&key, &hex::encode(&payload))?;
            let posted = client.call(
                "POST",
                &format!("/v1/requests/{request}/approvals"),
                Some(&token),
                Some(&serde_json::json!({ "officer_key": officer_key, "signature": signature })),
            )?;
            if posted.status != 200 {
                bail!("approval refused ({}): {}", posted.status, posted.body);
            }
            println!(
                "approved; request is now {}",
                posted.json()?["state"].as_str().unwrap_or("?")
            );
            Ok(())
        }
    }
}
