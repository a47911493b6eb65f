//! `init`: creates a network — the genesis, every key (officers, bank administration, floats,
//! validators) and one configuration file per node — in a directory.

use crate::config::{NodeFile, NodeSection, Peer, Role};
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
            max_expiry_blocks: 10_000,
        },
        banks,
    };
    genesis.validate().context("the generated genesis is invalid")?;
    std::fs::write(args.dir.join("genesis.json"), genesis.to_json())?;
    write_node_files(args, &validators)
}

/// The loopback address of node `bank` for a port range starting at `base`.
fn addr(base: u16, bank: u32) -> Result<SocketAddr> {
    let port = u16::try_from(u32::from(base) + bank).context("port out of range")?;
    Ok(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
}

#[allow(clippy::disallowed_methods, reason = "genesis time defaults to the wall clock at init")]
fn now_ms() -> u64 {
    let since =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
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
        let database_url = if args.database == "sqlite" {
            "sqlite://node.db".to_string()
        } else {
            format!("{}{}", args.database, name.replace('-', "_"))
        };
        let file = NodeFile {
            node: NodeSection {
                name: name.clone(),
                role: if bank == 0 { Role::CentralBank } else { Role::Intermediary },
                bank_id: bank,
                data_dir: PathBuf::from("data"),
                database_url,
                genesis_file: PathBuf::from("../genesis.json"),
                validator_key_file: PathBuf::from("validator.key"),
                p2p_listen: addr(args.p2p_base_port, bank)?,
                http_listen: addr(args.http_base_port, bank)?,
                max_block_txs: 10_000,
                snapshot_every: 256,
                leader_timeout_ms: 1_000,
            },
            peers,
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
