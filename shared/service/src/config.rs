//! A node's configuration: one TOML file per node, any field overridable by an environment
//! variable (`CBDC_DATABASE_URL`, `CBDC_HTTP_LISTEN`, `CBDC_P2P_LISTEN`, `CBDC_DATA_DIR`), so the
//! same file works in a container with secrets and addresses injected.

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Which service runs the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    CentralBank,
    Intermediary,
}

/// A peer validator: its registered consensus key and where it listens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Peer {
    pub name: String,
    /// Hex Ed25519 public key, as registered in the genesis (or by admission).
    pub public_key: String,
    pub address: SocketAddr,
}

/// The `[node]` table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSection {
    pub name: String,
    pub role: Role,
    /// The bank this node belongs to (0 = the central bank).
    pub bank_id: u32,
    /// Where the consensus journal lives.
    pub data_dir: PathBuf,
    /// Block log and projections: `sqlite://path` (default) or `postgres://...`.
    pub database_url: String,
    pub genesis_file: PathBuf,
    /// File holding the validator's consensus key (hex seed, mode 0600).
    pub validator_key_file: PathBuf,
    pub p2p_listen: SocketAddr,
    pub http_listen: SocketAddr,
    #[serde(default = "default_max_block_txs")]
    pub max_block_txs: usize,
    #[serde(default = "default_snapshot_every")]
    pub snapshot_every: u64,
    /// Consensus leader timeout in milliseconds.
    #[serde(default = "default_leader_timeout_ms")]
    pub leader_timeout_ms: u64,
}

fn default_max_block_txs() -> usize {
    10_000
}
fn default_snapshot_every() -> u64 {
    256
}
fn default_leader_timeout_ms() -> u64 {
    1_000
}

/// A node's configuration file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeFile {
    pub node: NodeSection,
    #[serde(default)]
    pub peers: Vec<Peer>,
    /// The central bank's API (only on the central bank's node).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub central_bank: Option<CentralBankSection>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intermediary: Option<IntermediarySection>,
}

/// A commercial bank's operator and wallet APIs (the `intermediary` binary).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntermediarySection {
    /// Where the operator API (`/v1/ops`) and the retail wallet API (`/v1`) listen.
    pub api_listen: SocketAddr,
    /// The bank's administration key (opens, freezes and closes wallets on the ledger).
    pub admin_key_file: PathBuf,
    /// The key of the bank's float wallet (funds and defunds customers' wallets).
    pub float_key_file: PathBuf,
    /// 32 bytes (hex) of AEAD key: customers' personal data and custodial keys at rest.
    pub pii_key_file: PathBuf,
    /// 32 bytes (hex) shared by the network's banks: holder references are a keyed hash of the
    /// national id under it, so one person's holdings add up across banks.
    pub network_key_file: PathBuf,
    /// The PKCS#8 Ed25519 key (hex) that signs the bank's access tokens.
    pub jwt_key_file: PathBuf,
    /// TLS for the APIs: both files (PEM) or neither (plain HTTP, for loopback use).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_cert_file: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_key_file: Option<PathBuf>,
    #[serde(default = "default_token_lifetime_s")]
    pub token_lifetime_s: u64,
    /// How long a payment request waits for finality before answering 202 with a status URL.
    #[serde(default = "default_payment_wait_ms")]
    pub payment_wait_ms: u64,
    /// Blocks after the current height at which a payment the bank signs expires.
    #[serde(default = "default_payment_expiry_blocks")]
    pub payment_expiry_blocks: u64,
}

fn default_payment_wait_ms() -> u64 {
    5_000
}
fn default_payment_expiry_blocks() -> u64 {
    2_000
}

/// The `[central_bank]` table: the issuance and authority API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CentralBankSection {
    /// HTTPS listen address of the API (TLS always; client certificates for banks).
    pub api_listen: SocketAddr,
    /// The CA's directory (`ca.pem`, `ca.key`, issuance index) and the API's own certificate
    /// (`api.pem`, `api.key`).
    pub pki_dir: PathBuf,
    /// The JWT signing key (Ed25519 PKCS#8, mode 0600).
    pub jwt_key_file: PathBuf,
    /// Access-token lifetime in seconds.
    #[serde(default = "default_token_lifetime_s")]
    pub token_lifetime_s: u64,
}

fn default_token_lifetime_s() -> u64 {
    900
}

/// Most transactions a block may take, whatever the file says (the ledger's block limit).
const MAX_BLOCK_TXS_CAP: usize = cbdc_ledger::MAX_BLOCK_TXS as usize;

impl NodeFile {
    /// Reads a configuration file, applies environment overrides, resolves relative paths
    /// against the file's directory and checks the values.
    pub fn load(path: &Path) -> Result<NodeFile> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading configuration {}", path.display()))?;
        let mut cfg: NodeFile = toml::from_str(&text)
            .with_context(|| format!("parsing configuration {}", path.display()))?;
        cfg.apply_env(|k| std::env::var(k).ok())?;
        let base = path.parent().unwrap_or_else(|| Path::new("."));
        cfg.node.data_dir = base.join(&cfg.node.data_dir);
        cfg.node.genesis_file = base.join(&cfg.node.genesis_file);
        cfg.node.validator_key_file = base.join(&cfg.node.validator_key_file);
        if let Some(cb) = cfg.central_bank.as_mut() {
            cb.pki_dir = base.join(&cb.pki_dir);
            cb.jwt_key_file = base.join(&cb.jwt_key_file);
        }
        if let Some(bank) = cfg.intermediary.as_mut() {
            for file in [
                &mut bank.admin_key_file,
                &mut bank.float_key_file,
                &mut bank.pii_key_file,
                &mut bank.network_key_file,
                &mut bank.jwt_key_file,
            ] {
                *file = base.join(&*file);
            }
            for file in
                [bank.tls_cert_file.as_mut(), bank.tls_key_file.as_mut()].into_iter().flatten()
            {
                *file = base.join(&*file);
            }
        }
        if let Some(rest) = cfg.node.database_url.strip_prefix("sqlite://")
            && !rest.starts_with('/')
        {
            cfg.node.database_url = format!("sqlite://{}", base.join(rest).display());
        }
        cfg.validate()?;
        Ok(cfg)
    }

    /// Overrides fields from `CBDC_*` variables.
    pub fn apply_env(&mut self, var: impl Fn(&str) -> Option<String>) -> Result<()> {
        if let Some(url) = var("CBDC_DATABASE_URL") {
            self.node.database_url = url;
        }
        if let Some(addr) = var("CBDC_HTTP_LISTEN") {
            self.node.http_listen = addr.parse().context("CBDC_HTTP_LISTEN is not host:port")?;
        }
        if let Some(addr) = var("CBDC_P2P_LISTEN") {
            self.node.p2p_listen = addr.parse().context("CBDC_P2P_LISTEN is not host:port")?;
        }
        if let Some(dir) = var("CBDC_DATA_DIR") {
            self.node.data_dir = PathBuf::from(dir);
        }
        Ok(())
    }

    fn validate(&self) -> Result<()> {
        let n = &self.node;
        if n.max_block_txs == 0 || n.max_block_txs > MAX_BLOCK_TXS_CAP {
            bail!("max_block_txs must be between 1 and {MAX_BLOCK_TXS_CAP}");
        }
        if n.snapshot_every == 0 {
            bail!("snapshot_every must be at least 1");
        }
        if !(100..=60_000).contains(&n.leader_timeout_ms) {
            bail!("leader_timeout_ms must be between 100 and 60000");
        }
        if let Some(cb) = &self.central_bank
            && !(60..=3_600).contains(&cb.token_lifetime_s)
        {
            bail!("central_bank.token_lifetime_s must be between 60 and 3600");
        }
        if let Some(bank) = &self.intermediary {
            if !(60..=3_600).contains(&bank.token_lifetime_s) {
                bail!("intermediary.token_lifetime_s must be between 60 and 3600");
            }
            if !(100..=60_000).contains(&bank.payment_wait_ms) {
                bail!("intermediary.payment_wait_ms must be between 100 and 60000");
            }
            let max = cbdc_ledger::policy::MAX_EXPIRY_WINDOW_BLOCKS;
            if !(10..=max).contains(&bank.payment_expiry_blocks) {
                bail!("intermediary.payment_expiry_blocks must be between 10 and {max}");
            }
            if bank.tls_cert_file.is_some() != bank.tls_key_file.is_some() {
                bail!("intermediary.tls_cert_file and tls_key_file go together");
            }
        }
        for p in &self.peers {
            let mut key = [0u8; 32];
            hex::decode_to_slice(&p.public_key, &mut key)
                .with_context(|| format!("peer {}: public_key is not 32 bytes of hex", p.name))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
        [node]
        name = "bank-1"
        role = "intermediary"
        bank_id = 1
        data_dir = "data"
        database_url = "sqlite://node.db"
        genesis_file = "../genesis.json"
        validator_key_file = "validator.key"
        p2p_listen = "127.0.0.1:7101"
        http_listen = "127.0.0.1:8101"

        [[peers]]
        name = "central-bank"
        public_key = "0000000000000000000000000000000000000000000000000000000000000000"
        address = "127.0.0.1:7100"
    "#;

    #[test]
    fn parses_and_applies_environment_overrides() {
        let mut cfg: NodeFile = toml::from_str(SAMPLE).unwrap();
        cfg.apply_env(|k| match k {
            "CBDC_DATABASE_URL" => Some("postgres://x@127.0.0.1/db".into()),
            "CBDC_HTTP_LISTEN" => Some("127.0.0.1:9999".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(cfg.node.database_url, "postgres://x@127.0.0.1/db");
        assert_eq!(cfg.node.http_listen.port(), 9999);
        assert_eq!(cfg.node.max_block_txs, 10_000);
        assert!(cfg.validate().is_ok());
        assert!(cfg.apply_env(|_| Some("not-an-address".into())).is_err());
    }

    #[test]
    fn rejects_unknown_fields_and_bad_values() {
        let bad = SAMPLE.replace("bank_id = 1", "bank_id = 1\nsurprise = true");
        assert!(toml::from_str::<NodeFile>(&bad).is_err());
        let mut cfg: NodeFile = toml::from_str(SAMPLE).unwrap();
        cfg.node.max_block_txs = 0;
        assert!(cfg.validate().is_err());
        let mut cfg: NodeFile = toml::from_str(SAMPLE).unwrap();
        cfg.peers[0].public_key = "zz".into();
        assert!(cfg.validate().is_err());
    }
}
