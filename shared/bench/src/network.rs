//! `cbdc-bench network`: a real five-process network on loopback under a simple load, measured
//! from outside through the nodes' HTTP endpoints: finalized blocks/s, committed transfers/s, and
//! the time from `kill -9` of a validator to the next finalized block on the others.

use anyhow::{Context, Result, bail};
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
use std::process::Child;
use std::time::{Duration, Instant};

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

fn status(addr: SocketAddr) -> Result<serde_json::Value> {
    let (code, body) = http_get(addr, "/v1/status")?;
    if code != 200 {
        bail!("status {code}");
    }
    Ok(serde_json::from_str(&body)?)
}

fn field(v: &serde_json::Value, name: &str) -> u64 {
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

struct Procs(Vec<Option<Child>>);

impl Drop for Procs {
    fn drop(&mut self) {
        for child in self.0.iter_mut().flatten() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn wait_all(
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

fn sign(
    chain: &str,
    n: &mut u64,
    exp: u64,
    kind: TxKind,
    keys: &[&SigningKey],
) -> SignedTransaction {
    *n += 1;
    let mut id = [0u8; 16];
    id[8..].copy_from_slice(&n.to_be_bytes());
    TxBody { id: TxId(id), expiry_height: exp, kind }.sign(chain, keys)
}

pub fn run(args: &NetworkArgs) -> Result<NetworkResult> {
    let exe_dir = std::env::current_exe()?.parent().context("exe dir")?.to_path_buf();
    let dir = tempfile::tempdir()?;
    let nodes = init(&InitArgs {
        dir: dir.path().join("net"),
        chain_id: "cbdc-bench".into(),
        banks: 4,
        officers: 3,
        threshold: 2,
        p2p_base_port: args.port_base,
        http_base_port: args.port_base + 50,
        database: "sqlite".into(),
        genesis_time_ms: None,
    })?;
    let net = dir.path().join("net");
    let genesis = load_genesis(&net.join("genesis.json"))?;
    let mut procs = Procs(Vec::new());
    for n in &nodes {
        let exe = exe_dir.join(if n.bank == 0 { "central-bank" } else { "intermediary" });
        procs.0.push(Some(spawn_node(&exe, n)?));
    }
    for n in &nodes {
        wait_healthy(n.http, Duration::from_secs(60))?;
    }
    let chain = genesis.chain_id.clone();
    let k = |p: &str| keys::signing_key(&net.join(p));
    let (o0, o1) = (k("officers/officer-0.key")?, k("officers/officer-1.key")?);
    let exp = field(&status(nodes[0].http)?, "height") + 9_000;
    let mut n = 0u64;
    let amt = |m: u64| Amount::from_minor(m).unwrap_or(Amount::ZERO);
    // Idle rate: empty blocks over 5 s.
    let h0 = field(&status(nodes[0].http)?, "height");
    std::thread::sleep(Duration::from_secs(5));
    let idle_blocks_per_s = (field(&status(nodes[0].http)?, "height") - h0) as f64 / 5.0;
    // Setup: mint, open and fund the paying wallets.
    let mut setup = Vec::new();
    for bank in 1..=4u32 {
        setup.push(sign(
            &chain,
            &mut n,
            exp,
            TxKind::Mint { bank: BankId(bank), amount: amt(1_000_000_000) },
            &[&o0, &o1],
        ));
    }
    let labels: Vec<String> = (0..args.wallets).map(|i| format!("bench-{i}")).collect();
    for (i, label) in labels.iter().enumerate() {
        let bank = 1 + (i as u32 % 4);
        let admin = k(&format!("bank-{bank}/admin.key"))?;
        let kind = TxKind::OpenWallet {
            bank: BankId(bank),
            wallet: wallet_id(label),
            public_key: key(label).public_key(),
            class: WalletClass::Retail,
            tier: KycTier(2),
            holder: HolderRef(cbdc_ledger::crypto::hash_parts(b"bench", &[label.as_bytes()])),
            linked: false,
        };
        setup.push(sign(&chain, &mut n, exp, kind, &[&admin]));
    }
    for tx in &setup {
        post(nodes[0].http, tx)?;
    }
    let setup_count = setup.len() as u64;
    wait_all(&nodes[..1], Duration::from_secs(120), "setup", |s| {
        field(s, "finalized_transactions") >= setup_count
    })?;
    let mut funds = Vec::new();
    for (i, label) in labels.iter().enumerate() {
        let bank = 1 + (i as u32 % 4);
        let float_key = k(&format!("bank-{bank}/float.key"))?;
        let float = genesis.banks[bank as usize].float_wallet;
        let legs = vec![Leg { from: float, to: wallet_id(label), amount: amt(900_000) }];
        funds.push(sign(&chain, &mut n, exp, TxKind::Transfer { legs }, &[&float_key]));
    }
    for tx in &funds {
        post(nodes[0].http, tx)?;
    }
    let funded = setup_count + funds.len() as u64;
    wait_all(&nodes[..1], Duration::from_secs(120), "funding", |s| {
        field(s, "finalized_transactions") >= funded
    })?;
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
