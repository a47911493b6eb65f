//! `cbdc-bench network`: a real five-process network on loopback under a simple load, measured
//! from outside through the nodes' HTTP endpoints: finalized blocks/s, committed transfers/s, and
//! the time from `kill -9` of a validator to the next finalized block on the others.

use anyhow::{Context, Result, bail};
use cbdc_ledger::Genesis;
use cbdc_ledger::codec::Encode;
use cbdc_ledger::testkit::{key, wallet_id};
use cbdc_ledger::{
    Amount, BankId, HolderRef, KycTier, Leg, SignedTransaction, SigningKey, TxBody, TxId, TxKind,
    WalletClass,
};
use cbdc_service::devnet::{http_get, spawn_node, wait_healthy};
use cbdc_service::init::{CreatedNode, InitArgs, init, load_genesis};
use cbdc_service::keys;
use serde::Serialize;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use crate::http::Conn;

#[derive(clap::Args, Debug)]
pub struct NetworkArgs {
    /// Signed transfers submitted during the load phase.
    #[arg(long, default_value_t = 3_000)]
    pub transfers: u32,
    /// Distinct paying wallets (spread over the four banks).
    #[arg(long, default_value_t = 200)]
    pub wallets: u32,
    /// First port used (p2p from here, HTTP from here + 50).
    #[arg(long, default_value_t = 23_000)]
    pub port_base: u16,
    #[arg(long)]
    pub json: Option<std::path::PathBuf>,
}

#[derive(Serialize, Debug)]
pub struct NetworkResult {
    benchmark: &'static str,
    validators: usize,
    transfers_submitted: u32,
    transfers_committed: u64,
    load_seconds: f64,
    submit_per_s: f64,
    committed_transfers_per_s: f64,
    blocks_finalized: u64,
    blocks_per_s: f64,
    idle_blocks_per_s: f64,
    kill_to_next_finalized_ms: f64,
}

pub fn status(addr: SocketAddr) -> Result<serde_json::Value> {
    let (code, body) = http_get(addr, "/v1/status")?;
    if code != 200 {
        bail!("status {code}");
    }
    Ok(serde_json::from_str(&body)?)
}

pub fn field(v: &serde_json::Value, name: &str) -> u64 {
    v.get(name).and_then(serde_json::Value::as_u64).unwrap_or(0)
}

fn post(addr: SocketAddr, tx: &SignedTransaction) -> Result<()> {
    let body = serde_json::json!({ "transaction": hex::encode(tx.encode()) }).to_string();
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "POST /v1/transactions HTTP/1.0\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = String::new();
    s.take(65_536).read_to_string(&mut response)?;
    if !response.starts_with("HTTP/1.1 202") && !response.starts_with("HTTP/1.0 202") {
        bail!("submit refused: {}", response.lines().next().unwrap_or_default());
    }
    Ok(())
}

#[derive(Debug)]
struct Procs(Vec<Option<Child>>);

impl Drop for Procs {
    fn drop(&mut self) {
        for child in self.0.iter_mut().flatten() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub fn wait_all(
    nodes: &[CreatedNode],
    limit: Duration,
    what: &str,
    cond: impl Fn(&serde_json::Value) -> bool,
) -> Result<()> {
    let start = Instant::now();
    loop {
        if nodes.iter().all(|n| status(n.http).is_ok_and(|s| cond(&s))) {
            return Ok(());
        }
        if start.elapsed() > limit {
            bail!("timed out waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A network of real node processes started by the harness; stopped when dropped.
#[derive(Debug)]
pub struct Devnet {
    /// The network directory (genesis, keys, one directory per node).
    pub dir: PathBuf,
    pub nodes: Vec<CreatedNode>,
    pub genesis: Genesis,
    procs: Procs,
    _tmp: Option<tempfile::TempDir>,
}

/// How to create a network.
#[derive(Debug, Clone)]
pub struct DevnetOptions {
    /// Where to create it (must not exist); a temporary directory when `None`.
    pub dir: Option<PathBuf>,
    pub port_base: u16,
    /// `sqlite`, or a PostgreSQL URL prefix (the node's name is appended).
    pub database: String,
    /// Also set up the central bank (CA, TLS of the banks' APIs, staff accounts), so the
    /// central bank's API and the banks' operations and wallet APIs come up.
    pub central_bank: bool,
}

impl Devnet {
    /// Creates a fresh network as `cbdc_service::init` does and starts one process per node
    /// (the release binaries next to this executable); returns once every node is healthy.
    pub fn start(opts: &DevnetOptions) -> Result<Devnet> {
        let exe_dir = std::env::current_exe()?.parent().context("exe dir")?.to_path_buf();
        let (tmp, dir) = match &opts.dir {
            Some(d) => (None, d.clone()),
            None => {
                let t = tempfile::tempdir()?;
                let d = t.path().join("net");
                (Some(t), d)
            }
        };
        let nodes = init(&InitArgs {
            dir: dir.clone(),
            chain_id: "cbdc-bench".into(),
            banks: 4,
            officers: 3,
            threshold: 2,
            p2p_base_port: opts.port_base,
            http_base_port: opts.port_base + 50,
            database: opts.database.clone(),
            genesis_time_ms: None,
        })?;
        if opts.central_bank {
            central_bank::setup::init_central_bank(&dir, &nodes, 3)?;
        }
        let genesis = load_genesis(&dir.join("genesis.json"))?;
        let mut procs = Procs(Vec::new());
        for n in &nodes {
            let exe = exe_dir.join(if n.bank == 0 { "central-bank" } else { "intermediary" });
            procs.0.push(Some(spawn_node(&exe, n)?));
        }
        for n in &nodes {
            wait_healthy(n.http, Duration::from_secs(60))?;
        }
        Ok(Devnet { dir, nodes, genesis, procs, _tmp: tmp })
    }
}

/// The nodes of an existing network directory (one `node.toml` per node directory).
pub fn nodes_in(dir: &Path) -> Result<Vec<CreatedNode>> {
    let mut nodes = Vec::new();
    for bank in 0..=64u32 {
        let name = if bank == 0 { "central-bank".to_string() } else { format!("bank-{bank}") };
        let config = dir.join(&name).join("node.toml");
        if !config.exists() {
            break;
        }
        let file = cbdc_service::config::NodeFile::load(&config)?;
        nodes.push(CreatedNode { name, bank, config, http: file.node.http_listen });
    }
    if nodes.is_empty() {
        bail!("no node.toml under {}", dir.display());
    }
    Ok(nodes)
}

/// Signs transactions with the network's keys and submits them to a node.
#[derive(Debug)]
pub struct Issuer<'a> {
    pub dir: &'a Path,
    pub genesis: &'a Genesis,
    pub nodes: &'a [CreatedNode],
    /// Id prefix (8 bytes) so that runs against the same network never reuse an id.
    pub prefix: u64,
    pub next: u64,
    pub expiry_height: u64,
}

impl Issuer<'_> {
    pub fn key(&self, path: &str) -> Result<SigningKey> {
        keys::signing_key(&self.dir.join(path))
    }

    pub fn sign(&mut self, kind: TxKind, keys: &[&SigningKey]) -> SignedTransaction {
        self.next += 1;
        tx(&self.genesis.chain_id, self.prefix, self.next, self.expiry_height, kind, keys)
    }

    /// Submits `txs` to node 0 and waits until its finalized count grew by their number.
    pub fn commit_all(&self, txs: &[SignedTransaction], what: &str) -> Result<()> {
        let before = field(&status(self.nodes[0].http)?, "finalized_transactions");
        for chunk in txs.chunks(2_000) {
            let mut conn = Conn::new(self.nodes[0].http);
            for tx in chunk {
                if let crate::http::Submitted::Refused(code, problem) = conn.submit(tx)? {
                    bail!("{what}: a transaction was refused: {code} {problem}");
                }
            }
        }
        let target = before + txs.len() as u64;
        wait_all(&self.nodes[..1], Duration::from_secs(300), what, |s| {
            field(s, "finalized_transactions") >= target
        })
    }

    /// Mints `per_bank_minor` to each commercial bank's float (two officers sign directly).
    pub fn mint_floats(&mut self, per_bank_minor: u64) -> Result<()> {
        let (o0, o1) = (self.key("officers/officer-0.key")?, self.key("officers/officer-1.key")?);
        let banks = self.genesis.banks.len() as u32;
        let mints: Vec<_> = (1..banks)
            .map(|bank| {
                let kind = TxKind::Mint { bank: BankId(bank), amount: amt(per_bank_minor) };
                self.sign(kind, &[&o0, &o1])
            })
            .collect();
        self.commit_all(&mints, "mint")
    }

    /// Opens tier-2 retail wallets `labels` (spread over the commercial banks, signed by the
    /// banks' admin keys) and funds each with `fund_minor` from its bank's float.
    pub fn open_and_fund(&mut self, labels: &[String], fund_minor: u64) -> Result<()> {
        let banks = self.genesis.banks.len() as u32 - 1;
        let bank_of = |i: usize| 1 + (i as u32 % banks);
        let mut opens = Vec::new();
        for (i, label) in labels.iter().enumerate() {
            let bank = bank_of(i);
            let admin = self.key(&format!("bank-{bank}/admin.key"))?;
            let kind = TxKind::OpenWallet {
                bank: BankId(bank),
                wallet: wallet_id(label),
                public_key: key(label).public_key(),
                class: WalletClass::Retail,
                tier: KycTier(2),
                holder: HolderRef(cbdc_ledger::crypto::hash_parts(b"bench", &[label.as_bytes()])),
                linked: false,
            };
            opens.push(self.sign(kind, &[&admin]));
        }
        self.commit_all(&opens, "opening wallets")?;
        let mut funds = Vec::new();
        for (i, label) in labels.iter().enumerate() {
            let bank = bank_of(i);
            let float_key = self.key(&format!("bank-{bank}/float.key"))?;
            let float = self.genesis.banks[bank as usize].float_wallet;
            let legs = vec![Leg { from: float, to: wallet_id(label), amount: amt(fund_minor) }];
            funds.push(self.sign(TxKind::Transfer { legs }, &[&float_key]));
        }
        self.commit_all(&funds, "funding wallets")
    }
}

pub fn amt(minor: u64) -> Amount {
    Amount::from_minor(minor).unwrap_or(Amount::ZERO)
}

/// A transaction id: `prefix` in the first 8 bytes, `n` in the last 8.
pub fn id_of(prefix: u64, n: u64) -> TxId {
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&prefix.to_be_bytes());
    id[8..].copy_from_slice(&n.to_be_bytes());
    TxId(id)
}

pub fn tx(
    chain: &str,
    prefix: u64,
    n: u64,
    exp: u64,
    kind: TxKind,
    keys: &[&SigningKey],
) -> SignedTransaction {
    TxBody { id: id_of(prefix, n), expiry_height: exp, kind }.sign(chain, keys)
}

pub fn run(args: &NetworkArgs) -> Result<NetworkResult> {
    let net = Devnet::start(&DevnetOptions {
        dir: None,
        port_base: args.port_base,
        database: "sqlite".into(),
        // The central bank's process needs its PKI and JWT key (it exits without them).
        central_bank: true,
    })?;
    let (nodes, genesis) = (&net.nodes, &net.genesis);
    let mut procs = net.procs;
    let exp = field(&status(nodes[0].http)?, "height") + 9_000;
    // Idle rate: empty blocks over 5 s.
    let h0 = field(&status(nodes[0].http)?, "height");
    std::thread::sleep(Duration::from_secs(5));
    let idle_blocks_per_s = (field(&status(nodes[0].http)?, "height") - h0) as f64 / 5.0;
    // Setup: mint, open and fund the paying wallets.
    let mut issuer =
        Issuer { dir: &net.dir, genesis, nodes, prefix: 0, next: 0, expiry_height: exp };
    issuer.mint_floats(1_000_000_000)?;
    let labels: Vec<String> = (0..args.wallets).map(|i| format!("bench-{i}")).collect();
    issuer.open_and_fund(&labels, 900_000)?;
    let (chain, mut n) = (genesis.chain_id.clone(), issuer.next);
    let sign = |chain: &str, n: &mut u64, exp: u64, kind: TxKind, keys: &[&SigningKey]| {
        *n += 1;
        tx(chain, 0, *n, exp, kind, keys)
    };
    // Pre-sign the load, then submit it from one thread per node.
    let transfers: Vec<SignedTransaction> = (0..args.transfers as usize)
        .map(|i| {
            let from = &labels[i % labels.len()];
            let to = &labels[(i + 1) % labels.len()];
            let legs = vec![Leg { from: wallet_id(from), to: wallet_id(to), amount: amt(1) }];
            sign(&chain, &mut n, exp, TxKind::Transfer { legs }, &[&key(from)])
        })
        .collect();
    let before = status(nodes[0].http)?;
    let (h_start, c_start) = (field(&before, "height"), field(&before, "finalized_transactions"));
    let start = Instant::now();
    std::thread::scope(|scope| -> Result<()> {
        let chunks: Vec<&[SignedTransaction]> =
            transfers.chunks(transfers.len().div_ceil(nodes.len())).collect();
        let handles: Vec<_> = chunks
            .into_iter()
            .zip(nodes.iter().cycle())
            .map(|(chunk, node)| {
                scope.spawn(move || chunk.iter().try_for_each(|tx| post(node.http, tx)))
            })
            .collect();
        for h in handles {
            h.join().map_err(|_| anyhow::anyhow!("submitter panicked"))??;
        }
        Ok(())
    })?;
    let submitted_in = start.elapsed().as_secs_f64();
    let target = c_start + u64::from(args.transfers);
    wait_all(&nodes[..1], Duration::from_secs(300), "load", |s| {
        field(s, "finalized_transactions") >= target
    })?;
    let load_seconds = start.elapsed().as_secs_f64();
    let after = status(nodes[0].http)?;
    let blocks = field(&after, "height") - h_start;
    // Kill a validator and time the next finalized block on the others.
    let h_kill = field(&status(nodes[0].http)?, "height");
    let killed_at = Instant::now();
    if let Some(mut child) = procs.0[4].take() {
        child.kill()?;
        child.wait()?;
    }
    let base = field(&status(nodes[0].http)?, "height").max(h_kill);
    let kill_ms = loop {
        if field(&status(nodes[0].http)?, "height") > base {
            break killed_at.elapsed().as_secs_f64() * 1_000.0;
        }
        if killed_at.elapsed() > Duration::from_secs(60) {
            bail!("no block finalized within 60 s of the kill");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Ok(NetworkResult {
        benchmark: "devnet_network",
        validators: nodes.len(),
        transfers_submitted: args.transfers,
        transfers_committed: field(&after, "finalized_transactions") - c_start,
        load_seconds,
        submit_per_s: f64::from(args.transfers) / submitted_in,
        committed_transfers_per_s: f64::from(args.transfers) / load_seconds,
        blocks_finalized: blocks,
        blocks_per_s: blocks as f64 / load_seconds,
        idle_blocks_per_s,
        kill_to_next_finalized_ms: kill_ms,
    })
}
