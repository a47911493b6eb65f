//! What `central-bank init` adds to a network created by `cbdc_service::init`: the central
//! bank's CA and API certificate, a client certificate per commercial bank (for mutual TLS
//! against the API), the JWT signing key, and the first staff accounts with random passwords.
//!
//! Secrets are written once (never overwritten) with mode 0600; passwords are stored only as
//! argon2id hashes in the database and, for handing over, in `credentials/<user>.password`.

use crate::auth::{Role, SigningKey as JwtKey, hash_password};
use crate::pki::{Ca, CertKind, Holder, IssueRequest};
use anyhow::{Context, Result, bail};
use cbdc_service::config::NodeFile;
use cbdc_service::init::CreatedNode;
use cbdc_service::keys;
use cbdc_store::{Store, UserRecord};
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

/// Staff accounts created at init: one per officer key, an administrator and a regulator.
pub fn staff_usernames(officers: u32) -> Vec<(String, Role)> {
    let mut users: Vec<(String, Role)> =
        (0..officers).map(|i| (format!("officer-{i}"), Role::CbOfficer)).collect();
    users.push(("admin".into(), Role::CbAdmin));
    users.push(("regulator".into(), Role::Regulator));
    users
}

fn random_password() -> Result<String> {
    Ok(hex::encode(keys::random_bytes::<18>()?))
}

/// Issues bank `n`'s API server certificate from the central bank's CA (`tls/api.pem`,
/// `tls/api.key`) and turns TLS on in its `[intermediary]` section, so customers and operators
/// reach the bank's APIs over HTTPS, verifying the network's CA (`tls/cb-ca.pem`).
fn enable_bank_api_tls(ca: &mut Ca, n: &CreatedNode, tls_dir: &Path) -> Result<()> {
    let mut table: toml::Table = toml::from_str(&std::fs::read_to_string(&n.config)?)?;
    let Some(section) = table.get_mut("intermediary").and_then(|s| s.as_table_mut()) else {
        return Ok(());
    };
    let listen: std::net::SocketAddr = section
        .get("api_listen")
        .and_then(|v| v.as_str())
        .context("the [intermediary] section has no api_listen")?
        .parse()?;
    let cert = ca.issue(&IssueRequest {
        holder: Holder::Bank(n.bank),
        kind: CertKind::Server {
            dns: vec!["localhost".into(), n.name.clone()],
            ips: vec![IpAddr::V4(Ipv4Addr::LOCALHOST), listen.ip()],
        },
        validity_days: 365,
    })?;
    std::fs::write(tls_dir.join("api.pem"), &cert.cert_pem)?;
    keys::write_secret(&tls_dir.join("api.key"), cert.key_pem.as_bytes())?;
    section.insert("tls_cert_file".into(), "tls/api.pem".into());
    section.insert("tls_key_file".into(), "tls/api.key".into());
    std::fs::write(&n.config, toml::to_string_pretty(&table)?)?;
    Ok(())
}

/// Sets up the central bank in a network directory `net` (after `cbdc_service::init::init`).
pub fn init_central_bank(net: &Path, nodes: &[CreatedNode], officers: u32) -> Result<()> {
    let Some(cb) = nodes.iter().find(|n| n.bank == 0) else { bail!("no central bank node") };
    let file = NodeFile::load(&cb.config)?;
    let Some(section) = &file.central_bank else {
        bail!("the central bank has no [central_bank] section")
    };
    // CA and the API's own certificate.
    let mut ca = Ca::create(&section.pki_dir, "CBDC Central Bank")?;
    let api = ca.issue(&IssueRequest {
        holder: Holder::CentralBank,
        kind: CertKind::Server {
            dns: vec!["localhost".into(), "central-bank".into()],
            ips: vec![IpAddr::V4(Ipv4Addr::LOCALHOST), section.api_listen.ip()],
        },
        validity_days: 365,
    })?;
    std::fs::write(section.pki_dir.join("api.pem"), &api.cert_pem)?;
    keys::write_secret(&section.pki_dir.join("api.key"), api.key_pem.as_bytes())?;
    let ca_pem = std::fs::read_to_string(section.pki_dir.join("ca.pem"))?;
    // Each commercial bank's client certificate for the API.
    for n in nodes.iter().filter(|n| n.bank != 0) {
        let dir = n.config.parent().context("node directory")?.join("tls");
        std::fs::create_dir_all(&dir)?;
        let cert = ca.issue(&IssueRequest {
            holder: Holder::Bank(n.bank),
            kind: CertKind::Client,
            validity_days: 365,
        })?;
        std::fs::write(dir.join("cb-client.pem"), &cert.cert_pem)?;
        keys::write_secret(&dir.join("cb-client.key"), cert.key_pem.as_bytes())?;
        std::fs::write(dir.join("cb-ca.pem"), &ca_pem)?;
        enable_bank_api_tls(&mut ca, n, &dir)?;
    }
    // JWT signing key.
    let pkcs8 = JwtKey::generate_pkcs8()?;
    keys::write_secret(&section.jwt_key_file, hex::encode(&pkcs8).as_bytes())?;
    // Staff accounts.
    cbdc_store::ensure_database(&file.node.database_url)?;
    let mut store = Store::open(&file.node.database_url)?;
    let credentials = net.join("credentials");
    std::fs::create_dir_all(&credentials)?;
    let now = crate::now_ms();
    for (i, (username, role)) in staff_usernames(officers).into_iter().enumerate() {
        let officer_key = if role == Role::CbOfficer {
            let key = keys::signing_key(&net.join(format!("officers/officer-{i}.key")))?;
            Some(key.public_key().0)
        } else {
            None
        };
        let password = random_password()?;
        store.create_user(&UserRecord {
            username: username.clone(),
            password_hash: hash_password(&password)?,
            role: role.as_str().to_string(),
            officer_key,
            disabled: false,
            created_at_ms: now,
        })?;
        keys::write_secret(&credentials.join(format!("{username}.password")), password.as_bytes())?;
    }
    Ok(())
}
