//! `init`: creates a network — the genesis, every key (officers, bank administration, floats,
//! validators) and one configuration file per node — in a directory.

use crate::config::{CentralBankSection, IntermediarySection, NodeFile, NodeSection, Peer, Role};
use crate::keys;
use anyhow::{Context, Result, bail};
use cbdc_ledger::{Amount, BankId, Genesis, GenesisBank, Policy, PublicKey, TierLimits, WalletId};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

/// What network to create.
#[derive(Debug, Clone, clap::Args)]
pub struct InitArgs {
    /// Directory to create the network in (must not exist yet).
    #[arg(long, default_value = "network")]
    pub dir: PathBuf,
    /// Chain identifier (printable ASCII, at most 64 bytes).
    #[arg(long, default_value = "cbdc-devnet")]
    pub chain_id: String,
    /// Commercial banks (intermediaries) besides the central bank.
    #[arg(long, default_value_t = 4)]
    pub banks: u32,
    /// Central-bank officers.
    #[arg(long, default_value_t = 3)]
    pub officers: u32,
    /// Officer approvals required for mint, burn, policy and admission.
    #[arg(long, default_value_t = 2)]
    pub threshold: u16,
    /// First peer-to-peer port; node i listens on base + i.
    #[arg(long, default_value_t = 7100)]
    pub p2p_base_port: u16,
    /// First HTTP port; node i serves on base + i.
    #[arg(long, default_value_t = 8100)]
    pub http_base_port: u16,
    /// Database of node i: `sqlite` (a file per node) or a PostgreSQL URL prefix such as
    /// `postgres://postgres@127.0.0.1:5432/cbdc_` (the node's name is appended).
    #[arg(long, default_value = "sqlite")]
    pub database: String,
    /// Genesis time in ms since the epoch (default: now).
    #[arg(long)]
    pub genesis_time_ms: Option<u64>,
}

fn minor(v: u64) -> Amount {
    Amount::from_minor(v).unwrap_or(Amount::MAX)
}

/// Default KYC tiers (minor units): anonymous, basic identity, full identity.
pub fn default_tiers() -> Vec<TierLimits> {
    let tier = |h, p, d| TierLimits {
        holding_minor: minor(h),
        per_payment_minor: minor(p),
        daily_outflow_minor: minor(d),
    };
    vec![
        tier(100_000, 50_000, 100_000),
        tier(300_000, 300_000, 500_000),
        tier(1_000_000, 1_000_000, 2_000_000),
    ]
}

/// A node of the created network.
#[derive(Debug, Clone)]
pub struct CreatedNode {
    pub name: String,
    pub bank: u32,
    pub config: PathBuf,
    pub http: SocketAddr,
}

fn node_name(bank: u32) -> String {
    if bank == 0 { "central-bank".to_string() } else { format!("bank-{bank}") }
}

/// Creates the network; returns its nodes.
pub fn init(args: &InitArgs) -> Result<Vec<CreatedNode>> {
    if args.dir.exists() {
        bail!("{} already exists; choose another --dir", args.dir.display());
    }
    if args.officers == 0 || args.threshold == 0 || u32::from(args.threshold) > args.officers {
        bail!("need 1 <= threshold <= officers");
    }
    std::fs::create_dir_all(args.dir.join("officers"))?;
    let mut officers = Vec::new();
    for i in 0..args.officers {
        let seed = keys::generate(&args.dir.join(format!("officers/officer-{i}.key")))?;
        officers.push(
            cbdc_ledger::SigningKey::from_seed(&seed).map_err(anyhow::Error::msg)?.public_key(),
        );
    }
    officers.sort();
    let mut banks = Vec::new();
    let mut validators = Vec::new();
    for bank in 0..=args.banks {
        let dir = args.dir.join(node_name(bank));
        std::fs::create_dir_all(&dir)?;
        let public = |file: &str| -> Result<PublicKey> {
            let seed = keys::generate(&dir.join(file))?;
            Ok(cbdc_ledger::SigningKey::from_seed(&seed).map_err(anyhow::Error::msg)?.public_key())
        };
        let (admin, validator, float) =
            (public("admin.key")?, public("validator.key")?, public("float.key")?);
        validators.push(validator);
        banks.push(GenesisBank {
            id: BankId(bank),
            name: if bank == 0 { "Central Bank".into() } else { format!("Bank {bank}") },
            admin_key: admin,
            validator_key: validator,
            endpoint: addr(args.p2p_base_port, bank)?.to_string(),
            float_wallet: WalletId(keys::random_bytes::<16>()?),
            float_key: float,
            quota_minor: minor(if bank == 0 { 0 } else { 1_000_000_000_000 }),
        });
    }
    let genesis_time_ms = match args.genesis_time_ms {
        Some(t) => t,
        None => now_ms(),
    };
    let genesis = Genesis {
        chain_id: args.chain_id.clone(),
        genesis_time_ms,
        policy: Policy {
            officers,
            threshold: args.threshold,
            supply_cap_minor: minor(10_000_000_000_000),
            tiers: default_tiers(),
            // The ledger's widest window: maker-checker approvals take time.
            max_expiry_blocks: cbdc_ledger::policy::MAX_EXPIRY_WINDOW_BLOCKS,
        },
        banks,
    };
    genesis.validate().context("the generated genesis is invalid")?;
    std::fs::write(args.dir.join("genesis.json"), genesis.to_json())?;
    keys::write_secret(
        &args.dir.join(NETWORK_KEY_FILE),
        hex::encode(keys::random_bytes::<32>()?).as_bytes(),
    )?;
    write_node_files(args, &validators)
}

/// The central bank's API address: 90 ports above the first HTTP port.
pub fn central_bank_api(http_base_port: u16) -> Result<SocketAddr> {
    let port = http_base_port.checked_add(90).context("API port out of range")?;
    Ok(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
}

/// A commercial bank's operator and wallet API address: 100 ports above its node's HTTP port.
pub fn bank_api(http_listen: SocketAddr) -> Result<SocketAddr> {
    let port = http_listen.port().checked_add(100).context("API port out of range")?;
    Ok(SocketAddr::new(http_listen.ip(), port))
}

/// The network's holder-reference key, shared by its banks (`<net>/network.key`).
pub const NETWORK_KEY_FILE: &str = "network.key";

/// Generates a commercial bank's API secrets in its directory `dir` (mode 0600: the AEAD key
/// for personal data, the token signing key) and returns its `[intermediary]` table. The
/// network key is the one at the network directory's root.
fn intermediary_section(dir: &Path, api_listen: SocketAddr) -> Result<IntermediarySection> {
    keys::write_secret(&dir.join("pii.key"), hex::encode(keys::random_bytes::<32>()?).as_bytes())?;
    let jwt = crate::auth::SigningKey::generate_pkcs8().map_err(anyhow::Error::msg)?;
    keys::write_secret(&dir.join("jwt.key"), hex::encode(jwt).as_bytes())?;
    Ok(IntermediarySection {
        api_listen,
        admin_key_file: PathBuf::from("admin.key"),
        float_key_file: PathBuf::from("float.key"),
        pii_key_file: PathBuf::from("pii.key"),
        network_key_file: PathBuf::from("..").join(NETWORK_KEY_FILE),
        jwt_key_file: PathBuf::from("jwt.key"),
        tls_cert_file: None,
        tls_key_file: None,
        token_lifetime_s: 900,
        payment_wait_ms: 5_000,
        payment_expiry_blocks: 2_000,
    })
}

/// The loopback address of node `bank` for a port range starting at `base`.
fn addr(base: u16, bank: u32) -> Result<SocketAddr> {
    let port = u16::try_from(u32::from(base) + bank).context("port out of range")?;
    Ok(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
}

/// The wall clock in milliseconds since the Unix epoch, for services that inject it (genesis
/// time at `init`, the central bank's API).
#[allow(clippy::disallowed_methods, reason = "the services' one wall-clock reading")]
pub fn now_ms() -> u64 {
    let since =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
}

/// A node's `[node]` table with the defaults `init` writes. `database` is `sqlite` (a file in
/// the node's directory) or a PostgreSQL URL prefix the node's name is appended to.
fn node_section(
    name: &str,
    bank: u32,
    p2p_listen: SocketAddr,
    http_listen: SocketAddr,
    database: &str,
) -> NodeSection {
    let database_url = if database == "sqlite" {
        "sqlite://node.db".to_string()
    } else {
        format!("{database}{}", name.replace('-', "_"))
    };
    NodeSection {
        name: name.to_string(),
        role: if bank == 0 { Role::CentralBank } else { Role::Intermediary },
        bank_id: bank,
        data_dir: PathBuf::from("data"),
        database_url,
        genesis_file: PathBuf::from("../genesis.json"),
        validator_key_file: PathBuf::from("validator.key"),
        p2p_listen,
        http_listen,
        max_block_txs: 10_000,
        snapshot_every: 256,
        leader_timeout_ms: 1_000,
    }
}

fn write_node_files(args: &InitArgs, validators: &[PublicKey]) -> Result<Vec<CreatedNode>> {
    let mut created = Vec::new();
    for bank in 0..=args.banks {
        let name = node_name(bank);
        let peers = (0..=args.banks)
            .filter(|b| *b != bank)
            .map(|b| {
                Ok(Peer {
                    name: node_name(b),
                    public_key: validators.get(b as usize).map(|k| k.to_hex()).unwrap_or_default(),
                    address: addr(args.p2p_base_port, b)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let file = NodeFile {
            node: node_section(
                &name,
                bank,
                addr(args.p2p_base_port, bank)?,
                addr(args.http_base_port, bank)?,
                &args.database,
            ),
            peers,
            central_bank: if bank == 0 {
                Some(CentralBankSection {
                    api_listen: central_bank_api(args.http_base_port)?,
                    pki_dir: PathBuf::from("pki"),
                    jwt_key_file: PathBuf::from("jwt.key"),
                    token_lifetime_s: 900,
                })
            } else {
                None
            },
            intermediary: if bank == 0 {
                None
            } else {
                let http = addr(args.http_base_port, bank)?;
                Some(intermediary_section(&args.dir.join(&name), bank_api(http)?)?)
            },
        };
        let path = args.dir.join(&name).join("node.toml");
        std::fs::write(&path, toml::to_string_pretty(&file)?)?;
        created.push(CreatedNode { name, bank, config: path, http: file.node.http_listen });
    }
    Ok(created)
}

/// Loads the genesis a node configuration points at.
pub fn load_genesis(path: &Path) -> Result<Genesis> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading genesis {}", path.display()))?;
    Genesis::from_json(&text).with_context(|| format!("invalid genesis {}", path.display()))
}

/// A commercial bank prepared for admission: its node directory and the keys the admission
/// request registers on the ledger.
#[derive(Debug, Clone)]
pub struct PreparedBank {
    pub node: CreatedNode,
    pub admin_key: PublicKey,
    pub validator_key: PublicKey,
    pub float_key: PublicKey,
    pub float_wallet: WalletId,
    /// Where its validator listens (registered on the ledger at admission).
    pub endpoint: SocketAddr,
}

impl PreparedBank {
    /// The body of the `admit_bank` request for the central bank's API.
    pub fn admit_request(&self, name: &str, quota_minor: u64, reason: &str) -> serde_json::Value {
        serde_json::json!({
            "kind": "admit_bank",
            "bank": self.node.bank,
            "name": name,
            "admin_key": self.admin_key.to_hex(),
            "validator_key": self.validator_key.to_hex(),
            "endpoint": self.endpoint.to_string(),
            "float_wallet": hex::encode(self.float_wallet.0),
            "float_key": self.float_key.to_hex(),
            "quota_minor": quota_minor,
            "reason": reason,
        })
    }
}

/// Prepares a new commercial bank's node in the network directory `net`: its keys (mode 0600)
/// and `node.toml`, with the genesis validators as peers (addresses from their registered
/// endpoints). The node can start before its admission; it follows the chain and votes from
/// the epoch after its admission finalizes.
pub fn prepare_bank(
    net: &Path,
    bank: u32,
    p2p_listen: SocketAddr,
    http_listen: SocketAddr,
    database: &str,
) -> Result<PreparedBank> {
    if bank == 0 {
        bail!("bank 0 is the central bank");
    }
    let genesis = load_genesis(&net.join("genesis.json"))?;
    if genesis.banks.iter().any(|b| b.id.0 == bank) {
        bail!("bank {bank} is already in the genesis");
    }
    let name = node_name(bank);
    let dir = net.join(&name);
    if dir.exists() {
        bail!("{} already exists", dir.display());
    }
    std::fs::create_dir_all(&dir)?;
    let public = |file: &str| -> Result<PublicKey> {
        let seed = keys::generate(&dir.join(file))?;
        Ok(cbdc_ledger::SigningKey::from_seed(&seed).map_err(anyhow::Error::msg)?.public_key())
    };
    let (admin_key, validator_key, float_key) =
        (public("admin.key")?, public("validator.key")?, public("float.key")?);
    let peers = genesis
        .banks
        .iter()
        .filter(|b| !b.endpoint.is_empty())
        .map(|b| {
            Ok(Peer {
                name: node_name(b.id.0),
                public_key: b.validator_key.to_hex(),
                address: b.endpoint.parse().context("a genesis endpoint is not an address")?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let file = NodeFile {
        node: node_section(&name, bank, p2p_listen, http_listen, database),
        peers,
        central_bank: None,
        intermediary: Some(intermediary_section(&dir, bank_api(http_listen)?)?),
    };
    let config = dir.join("node.toml");
    std::fs::write(&config, toml::to_string_pretty(&file)?)?;
    Ok(PreparedBank {
        node: CreatedNode { name, bank, config, http: http_listen },
        admin_key,
        validator_key,
        float_key,
        float_wallet: WalletId(keys::random_bytes::<16>()?),
        endpoint: p2p_listen,
    })
}
