//! `cbdc-bench load`: a load generator driving a running network with signed transfers between
//! many wallets at every commercial bank, by one of two paths:
//!
//! - `direct`: pre-signed transfers posted to every node's `POST /v1/transactions` over
//!   keep-alive HTTP/1.1 connections, a few submitting threads per node. Finality is observed
//!   per transaction by reading node 0's block log (its database, the same the node appends a
//!   block to before it moves its finalized ledger) every 10 ms and matching transaction ids.
//! - `wallet`: custodial payments through the banks' wallet API (HTTPS, `Idempotency-Key`),
//!   whose answer waits for finality; a pending answer is followed by polling the receipt.
//!
//! Open loop (`--rate`): transfer `j` is due at `j / rate` seconds and its latency is counted
//! from that due time, so a generator that falls behind shows it as latency (no coordinated
//! omission). Closed loop (no `--rate`): at most `--concurrency` transfers are outstanding
//! (submitted, not yet final or refused). The CPU time of each validator process is read from
//! `/proc/<pid>/stat` before and after the measured window.

use crate::http::{Conn, Submitted};
use crate::network::{Devnet, DevnetOptions, Issuer, field, nodes_in, status, tx};
use anyhow::{Context, Result};
use cbdc_ledger::codec::Encode;
use cbdc_ledger::testkit::{key, wallet_id};
use cbdc_ledger::{Decode, Leg, SignedTransaction, SigningKey, TxKind, block::Block};
use cbdc_service::init::CreatedNode;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// Longest a closed-loop submitter sleeps before looking again at the window's end (slots
/// freed earlier wake it at once).
const FREED_WAIT: Duration = Duration::from_millis(5);

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SubmitPath {
    /// Signed transfers straight to the nodes' `POST /v1/transactions`.
    Direct,
    /// Custodial payments through the banks' wallet API.
    Wallet,
}

#[derive(clap::Args, Debug, Clone)]
pub struct LoadArgs {
    /// Create a fresh network in this directory (must not exist), start it, drive it, stop it.
    #[arg(long, conflicts_with = "network")]
    pub start_network: Option<PathBuf>,
    /// Drive an already running network created in this directory (e.g. `.devnet`).
    #[arg(long)]
    pub network: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "direct")]
    pub path: SubmitPath,
    /// Open loop: transfers offered per second. Without it the load is closed-loop.
    #[arg(long)]
    pub rate: Option<u32>,
    /// Closed loop: most transfers outstanding at once (wallet path: client threads, also
    /// in open loop).
    #[arg(long, default_value_t = 4_000)]
    pub concurrency: u32,
    /// Seconds of measured load.
    #[arg(long, default_value_t = 60)]
    pub duration: u64,
    /// Paying wallets, spread over the commercial banks.
    #[arg(long, default_value_t = 4_000)]
    pub wallets: u32,
    /// Submitting threads per node (direct path).
    #[arg(long, default_value_t = 2)]
    pub threads_per_node: u32,
    /// Closed loop, direct path: transfers pre-signed per second of duration (an upper bound
    /// of what can be submitted).
    #[arg(long, default_value_t = 15_000)]
    pub presign_per_s: u32,
    /// Direct path: transfers per request (`POST /v1/transactions/batch`, at most 1,024);
    /// 1 posts each alone to `POST /v1/transactions`.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub batch: u32,
    /// Database of a started network: `sqlite`, `postgres` (the server of `DATABASE_URL`,
    /// scratch databases dropped afterwards) or a PostgreSQL URL prefix.
    #[arg(long, default_value = "sqlite")]
    pub database: String,
    /// First port of a started network (p2p from here, HTTP from here + 50).
    #[arg(long, default_value_t = 24_000)]
    pub port_base: u16,
    #[arg(long)]
    pub json: Option<PathBuf>,
}

#[derive(Serialize, Debug, Clone)]
pub struct NodeCpu {
    pub node: String,
    pub pid: u32,
    pub cpu_s: f64,
    pub cpu_ms_per_1000_transfers: f64,
    pub cpu_us_per_transfer: f64,
}

#[derive(Serialize, Debug, Clone)]
pub struct LoadResult {
    pub benchmark: &'static str,
    pub path: SubmitPath,
    pub mode: &'static str,
    pub rate_offered_per_s: Option<u32>,
    pub concurrency: u32,
    pub duration_s: f64,
    pub wallets: u32,
    pub validators: usize,
    pub database: String,
    pub submitted: u64,
    pub submit_per_s: f64,
    /// Committed with their finality observed inside the measured window.
    pub committed_in_window: u64,
    pub committed_transfers_per_s: f64,
    /// Committed by the end of the drain (up to 30 s after the window).
    pub committed_total: u64,
    /// Refused at submission (mempool full, duplicate, ...) or rejected by the ledger.
    pub rejected: u64,
    pub rejected_by_code: BTreeMap<String, u64>,
    /// Submitted and accepted but never observed final, or transport errors.
    pub failed: u64,
    pub latency_ms_p50: f64,
    pub latency_ms_p95: f64,
    pub latency_ms_p99: f64,
    pub latency_ms_max: f64,
    pub latency_observation: &'static str,
    pub blocks_in_window: u64,
    pub transfers_per_block_mean: f64,
    pub node_cpu: Vec<NodeCpu>,
    pub nodes_cpu_s_total: f64,
    pub cpu_us_per_transfer_per_validator_mean: f64,
    pub load_generator_cpu_s: f64,
    /// Cores busy on the whole machine during the window (nodes, generator and anyone else).
    pub machine_busy_cores: f64,
    /// Busy cores not accounted for by the nodes and the generator (other users).
    pub other_busy_cores: f64,
    pub loadavg_1m_before: f64,
    /// The validators' CPU seconds in the window by thread name (all five processes summed;
    /// threads that ended inside the window are missing).
    pub validator_cpu_s_by_thread: BTreeMap<String, f64>,
}

/// Per-transfer times and counters shared by the submitters, the watcher and the reporter.
#[derive(Debug)]
pub struct Tracker {
    pub start: Instant,
    pub prefix: u64,
    pub first: u64,
    /// ns since `start` + 1 (0: not yet) at which each transfer was due or submitted.
    pub sent_ns: Vec<AtomicU64>,
    /// ns since `start` + 1 (0: not yet) at which each transfer was seen final.
    pub final_ns: Vec<AtomicU64>,
    pub submitted: AtomicU64,
    pub committed: AtomicU64,
    pub rejected: AtomicU64,
    pub failed: AtomicU64,
    pub codes: Mutex<BTreeMap<String, u64>>,
    pub stop: AtomicBool,
    /// Signalled when transfers stop being outstanding (seen final, rejected, failed), so a
    /// closed-loop submitter waiting for a free slot sleeps until then instead of polling: the
    /// generator shares the machine with the validators it measures.
    freed: Condvar,
    freed_lock: Mutex<()>,
}

impl Tracker {
    pub fn new(prefix: u64, first: u64, n: usize) -> Tracker {
        Tracker {
            start: Instant::now(),
            prefix,
            first,
            sent_ns: (0..n).map(|_| AtomicU64::new(0)).collect(),
            final_ns: (0..n).map(|_| AtomicU64::new(0)).collect(),
            submitted: AtomicU64::new(0),
            committed: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            codes: Mutex::new(BTreeMap::new()),
            stop: AtomicBool::new(false),
            freed: Condvar::new(),
            freed_lock: Mutex::new(()),
        }
    }

    pub fn now_ns(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    pub fn sent(&self, j: usize, at_ns: u64) {
        self.sent_ns[j].store(at_ns + 1, Ordering::Relaxed);
        self.submitted.fetch_add(1, Ordering::Relaxed);
    }

    pub fn finalized(&self, j: usize) {
        let now = self.now_ns() + 1;
        if self.final_ns[j].compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed).is_ok() {
            self.committed.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn reject(&self, code: &str) {
        self.rejected.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut codes) = self.codes.lock() {
            *codes.entry(code.to_string()).or_default() += 1;
        }
        self.wake();
    }

    /// Counts `n` transfers whose submission failed.
    pub fn fail(&self, n: u64) {
        self.failed.fetch_add(n, Ordering::Relaxed);
        self.wake();
    }

    /// Wakes the submitters waiting for a free slot (after counters moved). Taking the lock
    /// first means a waiter is either still before its check (and sees the new counters) or
    /// already waiting (and is woken): no wake-up is lost.
    pub fn wake(&self) {
        drop(self.freed_lock.lock());
        self.freed.notify_all();
    }

    /// Sleeps until [`Tracker::wake`] or `at_most`, whichever comes first, while `limit` or
    /// more transfers are outstanding.
    fn wait_freed(&self, limit: u64, at_most: Duration) {
        let guard = self.freed_lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if self.outstanding() >= limit {
            let _ = self.freed.wait_timeout(guard, at_most);
        }
    }

    pub fn outstanding(&self) -> u64 {
        let done = self.committed.load(Ordering::Relaxed)
            + self.rejected.load(Ordering::Relaxed)
            + self.failed.load(Ordering::Relaxed);
        self.submitted.load(Ordering::Relaxed).saturating_sub(done)
    }

    /// The index of a transfer of this run from its id.
    fn index_of(&self, id: &[u8; 16]) -> Option<usize> {
        let (p, n) = id.split_at(8);
        let prefix = u64::from_be_bytes(p.try_into().ok()?);
        let n = u64::from_be_bytes(n.try_into().ok()?);
        if prefix != self.prefix || n < self.first {
            return None;
        }
        let j = usize::try_from(n - self.first).ok()?;
        (j < self.sent_ns.len()).then_some(j)
    }
}

/// When transfer `j` is due (open loop), in ns since the start.
pub fn due_ns(rate: Option<u32>, j: usize) -> Option<u64> {
    rate.map(|r| (j as u128 * 1_000_000_000 / u128::from(r.max(1))) as u64)
}

/// Waits until `j` may be sent: its due time (open loop) or a free slot (closed loop);
/// returns the time its latency counts from, or `None` when the window is over.
pub fn wait_turn(t: &Tracker, rate: Option<u32>, limit: u64, j: usize, end_ns: u64) -> Option<u64> {
    if let Some(due) = due_ns(rate, j) {
        if due >= end_ns {
            return None;
        }
        let now = t.now_ns();
        if due > now {
            std::thread::sleep(Duration::from_nanos(due - now));
        }
        return Some(due);
    }
    while t.outstanding() >= limit {
        if t.now_ns() >= end_ns || t.stop.load(Ordering::Relaxed) {
            return None;
        }
        // Slots are freed a block at a time (the watcher wakes the submitters); the timeout
        // only bounds the wait so the end of the window is noticed.
        t.wait_freed(limit, FREED_WAIT);
    }
    let now = t.now_ns();
    (now < end_ns).then_some(now)
}

/// CPU seconds (user + system) a process has used, from `/proc/<pid>/stat`.
fn cpu_seconds(pid: &str, tick: f64) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces) start at field 3.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / tick)
}

pub fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// Busy and total jiffies of the whole machine (`/proc/stat`).
fn machine_jiffies() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let cpu: Vec<f64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let total: f64 = cpu.iter().take(8).sum();
    let idle = cpu.get(3).copied().unwrap_or(0.0) + cpu.get(4).copied().unwrap_or(0.0);
    (total - idle, total)
}

pub fn loadavg() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0.0)
}

/// The pid of each node's process: the process whose command line names the node's config.
pub fn node_pids(nodes: &[CreatedNode]) -> Vec<Option<u32>> {
    let mut found = vec![None; nodes.len()];
    let Ok(dir) = std::fs::read_dir("/proc") else { return found };
    for entry in dir.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let Ok(pid) = name.parse::<u32>() else { continue };
        let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) else { continue };
        let args: Vec<String> =
            cmd.split(|b| *b == 0).map(|a| String::from_utf8_lossy(a).to_string()).collect();
        if !args.iter().any(|a| a == "run") {
            continue;
        }
        for (i, n) in nodes.iter().enumerate() {
            let cfg = n.config.to_string_lossy();
            let canon = std::fs::canonicalize(&n.config).ok();
            let matches = args.iter().any(|a| {
                a == cfg.as_ref()
                    || canon.as_ref().is_some_and(|c| Path::new(a) == c.as_path())
                    || std::fs::canonicalize(a).ok() == canon
            });
            if matches {
                found[i] = Some(pid);
            }
        }
    }
    found
}

/// CPU and machine counters at one instant.
#[derive(Debug, Clone)]
pub struct CpuSnapshot {
    nodes: Vec<f64>,
    /// CPU seconds by thread name, summed over the validators' threads.
    threads: BTreeMap<String, f64>,
    me: f64,
    busy: f64,
    total: f64,
    at: Instant,
}

pub fn cpu_snapshot(pids: &[Option<u32>], tick: f64) -> CpuSnapshot {
    let nodes = pids
        .iter()
        .map(|p| p.and_then(|p| cpu_seconds(&p.to_string(), tick)).unwrap_or(0.0))
        .collect();
    let (busy, total) = machine_jiffies();
    let mut threads = BTreeMap::new();
    for pid in pids.iter().flatten() {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { continue };
        for task in tasks.flatten() {
            let tid = task.file_name().to_string_lossy().to_string();
            let path = format!("{pid}/task/{tid}");
            let name = std::fs::read_to_string(format!("/proc/{path}/comm")).unwrap_or_default();
            // Numbered pools (tokio-runtime-w, actix-rt|system:0|1) are grouped by prefix.
            let name = name.trim().trim_end_matches(|c: char| c.is_ascii_digit()).to_string();
            *threads.entry(name).or_default() += cpu_seconds(&path, tick).unwrap_or(0.0);
        }
    }
    CpuSnapshot {
        nodes,
        threads,
        me: cpu_seconds("self", tick).unwrap_or(0.0),
        busy,
        total,
        at: Instant::now(),
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Prints a progress line every second until the tracker stops.
pub fn progress(t: &Tracker) {
    let mut last = 0u64;
    let mut second = 0u64;
    while !t.stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_secs(1));
        second += 1;
        let committed = t.committed.load(Ordering::Relaxed);
        eprintln!(
            "[{second:>3} s] submitted {} committed {} ({} /s) outstanding {} rejected {} failed {}",
            t.submitted.load(Ordering::Relaxed),
            committed,
            committed - last,
            t.outstanding(),
            t.rejected.load(Ordering::Relaxed),
            t.failed.load(Ordering::Relaxed),
        );
        last = committed;
    }
}

/// A block seen in the log: height, observation time (ns since the start), transfers.
type SeenBlock = (u64, u64, usize);

/// Reads node 0's block log and marks this run's transfers final as their blocks appear;
/// returns (height, observation time in ns since the start, transfers) per block seen.
fn watch_blocks(t: &Tracker, url: &str, from: u64) -> Result<Vec<SeenBlock>> {
    let mut store = cbdc_store::Store::open(url).context("opening node 0's block log")?;
    let mut next = from;
    let mut seen = Vec::new();
    while !t.stop.load(Ordering::Relaxed) {
        let blocks = store.blocks_from(next, 256)?;
        if blocks.is_empty() {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        }
        for stored in blocks {
            let block = Block::decode(&stored.block).map_err(|e| anyhow::anyhow!("{e}"))?;
            for tx in &block.transactions {
                if let Some(j) = t.index_of(&tx.body.id.0) {
                    t.finalized(j);
                }
            }
            seen.push((stored.height, t.now_ns(), block.transactions.len()));
            next = stored.height + 1;
        }
        t.wake();
    }
    Ok(seen)
}

/// The network under load: started by the harness or found in a directory.
#[derive(Debug)]
pub struct Target {
    pub dir: PathBuf,
    pub nodes: Vec<CreatedNode>,
    pub genesis: cbdc_ledger::Genesis,
    pub database: String,
    pub devnet: Option<Devnet>,
    cleanup: Vec<String>,
}

impl Drop for Target {
    fn drop(&mut self) {
        drop(self.devnet.take());
        for url in &self.cleanup {
            let _ = cbdc_store::drop_database(url);
        }
    }
}

/// The database setting of a started network, and the databases to drop afterwards.
fn database_of(args: &LoadArgs) -> Result<(String, Vec<String>)> {
    if args.database != "postgres" {
        return Ok((args.database.clone(), Vec::new()));
    }
    let url = std::env::var("DATABASE_URL").context("--database postgres needs DATABASE_URL")?;
    let server = url.rsplit_once('/').map(|(s, _)| s.to_string()).unwrap_or(url);
    let prefix = format!("{server}/cbdc_bench_{}_", std::process::id());
    let names = ["central_bank", "bank_1", "bank_2", "bank_3", "bank_4"];
    Ok((prefix.clone(), names.iter().map(|n| format!("{prefix}{n}")).collect()))
}

pub fn target(args: &LoadArgs) -> Result<Target> {
    if let Some(dir) = &args.network {
        let nodes = nodes_in(dir)?;
        let genesis = cbdc_service::init::load_genesis(&dir.join("genesis.json"))?;
        let database = "existing network".to_string();
        return Ok(Target {
            dir: dir.clone(),
            nodes,
            genesis,
            database,
            devnet: None,
            cleanup: vec![],
        });
    }
    let (database, cleanup) = database_of(args)?;
    eprintln!("starting a five-node network ({database})...");
    let devnet = Devnet::start(&DevnetOptions {
        dir: args.start_network.clone(),
        port_base: args.port_base,
        database: database.clone(),
        central_bank: true,
    })?;
    Ok(Target {
        dir: devnet.dir.clone(),
        nodes: devnet.nodes.clone(),
        genesis: devnet.genesis.clone(),
        database: if database == "sqlite" { database } else { "postgres".into() },
        devnet: Some(devnet),
        cleanup,
    })
}

/// A run id from the clock, so repeated runs against one network never share ids or names.
pub fn run_prefix() -> u64 {
    let ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    (ns as u64) | (1 << 63)
}

/// Pre-signs `n` transfers of 1 minor unit, payer `j % W` to payee `(j + 1) % W`, on two
/// threads; returns each as its JSON request body.
fn presign(
    chain: &str,
    prefix: u64,
    first: u64,
    exp: u64,
    labels: &[String],
    n: usize,
) -> Vec<String> {
    let keys: Vec<SigningKey> = labels.iter().map(|l| key(l)).collect();
    let ids: Vec<_> = labels.iter().map(|l| wallet_id(l)).collect();
    let one = crate::network::amt(1);
    let sign = |j: usize| -> String {
        let (from, to) = (j % labels.len(), (j + 1) % labels.len());
        let legs = vec![Leg { from: ids[from], to: ids[to], amount: one }];
        let kind = TxKind::Transfer { legs };
        let t: SignedTransaction = tx(chain, prefix, first + j as u64, exp, kind, &[&keys[from]]);
        hex::encode(t.encode())
    };
    let half = n / 2;
    std::thread::scope(|s| {
        let a = s.spawn(|| (0..half).map(sign).collect::<Vec<_>>());
        let mut b: Vec<String> = (half..n).map(sign).collect();
        let mut all = a.join().unwrap_or_default();
        all.append(&mut b);
        all
    })
}

/// The direct path: pre-signed transfers posted to the nodes (the wallet path is `wallet::run`).
pub fn run_direct(args: &LoadArgs, target: &Target) -> Result<LoadResult> {
    let nodes = &target.nodes;
    let height = field(&status(nodes[0].http)?, "height");
    let prefix = run_prefix();
    let mut issuer = Issuer {
        dir: &target.dir,
        genesis: &target.genesis,
        nodes,
        prefix,
        next: 0,
        expiry_height: height + 90_000,
    };
    eprintln!("setup: minting, opening and funding {} wallets...", args.wallets);
    issuer.mint_floats(u64::from(args.wallets) * 1_000_000)?;
    let labels: Vec<String> = (0..args.wallets).map(|i| format!("bench-{prefix:x}-{i}")).collect();
    issuer.open_and_fund(&labels, 500_000)?;
    let n = match args.rate {
        Some(r) => u64::from(r) * args.duration,
        None => u64::from(args.presign_per_s) * args.duration,
    } as usize;
    let first = 1_000_000u64;
    eprintln!("pre-signing {n} transfers...");
    let bodies = presign(&target.genesis.chain_id, prefix, first, height + 90_000, &labels, n);
    let url = cbdc_service::config::NodeFile::load(&nodes[0].config)?.node.database_url;
    let from_height = cbdc_store::Store::open(&url)?.last_height()? + 1;
    let t = Tracker::new(prefix, first, n);
    let end_ns = args.duration * 1_000_000_000;
    let next = AtomicU64::new(0);
    let pids = node_pids(nodes);
    let tick = clock_ticks();
    let load_before = loadavg();
    eprintln!("load: {} s, {}", args.duration, mode_text(args));
    let cpu0 = cpu_snapshot(&pids, tick);
    let (cpu1, blocks) = std::thread::scope(|s| -> Result<(CpuSnapshot, Vec<SeenBlock>)> {
        let watcher = s.spawn(|| watch_blocks(&t, &url, from_height));
        s.spawn(|| progress(&t));
        let mut workers = Vec::new();
        for node in nodes {
            for _ in 0..args.threads_per_node {
                let (t, next, bodies) = (&t, &next, &bodies);
                let limit = u64::from(args.concurrency);
                let batch = args.batch.max(1) as usize;
                workers.push(s.spawn(move || {
                    let mut conn = Conn::new(node.http);
                    let mut over = false;
                    while !over {
                        // Claim the next `batch` transfers; each waits for its own turn (due
                        // time or a free slot) and its latency counts from that turn.
                        let j0 = next.fetch_add(batch as u64, Ordering::Relaxed) as usize;
                        let mut claimed = Vec::with_capacity(batch);
                        for j in j0..(j0 + batch).min(bodies.len()) {
                            let Some(at) = wait_turn(t, args.rate, limit, j, end_ns) else {
                                over = true;
                                break;
                            };
                            t.sent(j, at);
                            claimed.push(j);
                        }
                        if j0 + batch >= bodies.len() {
                            over = true;
                        }
                        if claimed.is_empty() {
                            continue;
                        }
                        let answers = if batch == 1 {
                            conn.submit_hex(&bodies[j0]).map(|a| vec![a])
                        } else {
                            let hexes: Vec<&str> =
                                claimed.iter().map(|j| bodies[*j].as_str()).collect();
                            conn.submit_batch(&hexes)
                        };
                        match answers {
                            Ok(answers) => {
                                for answer in answers {
                                    if let Submitted::Refused(_, code) = answer {
                                        t.reject(&code);
                                    }
                                }
                            }
                            Err(_) => {
                                t.fail(claimed.len() as u64);
                            }
                        }
                    }
                }));
            }
        }
        for w in workers {
            let _ = w.join();
        }
        let rest = end_ns.saturating_sub(t.now_ns());
        std::thread::sleep(Duration::from_nanos(rest));
        let cpu1 = cpu_snapshot(&pids, tick);
        // Drain: wait for the outstanding transfers, at most 30 s.
        let drain = Instant::now();
        while t.outstanding() > 0 && drain.elapsed() < Duration::from_secs(30) {
            std::thread::sleep(Duration::from_millis(50));
        }
        t.stop.store(true, Ordering::Relaxed);
        let blocks = watcher.join().map_err(|_| anyhow::anyhow!("watcher panicked"))??;
        Ok((cpu1, blocks))
    })?;
    let blocks_in: Vec<_> = blocks.iter().filter(|b| b.1 <= end_ns).collect();
    let txs_in: usize = blocks_in.iter().map(|b| b.2).sum();
    let mut result = summarize(args, target, &t, end_ns, &cpu0, &cpu1, &pids, load_before);
    result.latency_observation = "direct: submit (open loop: due time) to the transfer's block \
        appearing in node 0's block log, polled every 10 ms";
    result.blocks_in_window = blocks_in.len() as u64;
    result.transfers_per_block_mean =
        if blocks_in.is_empty() { 0.0 } else { txs_in as f64 / blocks_in.len() as f64 };
    Ok(result)
}

pub fn mode_text(args: &LoadArgs) -> String {
    match args.rate {
        Some(r) => format!("open loop at {r} transfers/s"),
        None => format!("closed loop, {} outstanding at most", args.concurrency),
    }
}

/// Figures of a finished run.
#[allow(clippy::too_many_arguments, reason = "one call site per path; the fields are distinct")]
pub fn summarize(
    args: &LoadArgs,
    target: &Target,
    t: &Tracker,
    end_ns: u64,
    cpu0: &CpuSnapshot,
    cpu1: &CpuSnapshot,
    pids: &[Option<u32>],
    loadavg_1m_before: f64,
) -> LoadResult {
    let mut latencies = Vec::new();
    let (mut in_window, mut total) = (0u64, 0u64);
    for (sent, fin) in t.sent_ns.iter().zip(&t.final_ns) {
        let (s, f) = (sent.load(Ordering::Relaxed), fin.load(Ordering::Relaxed));
        if s == 0 || f == 0 {
            continue;
        }
        total += 1;
        if f <= end_ns + 1 {
            in_window += 1;
        }
        latencies.push(f.saturating_sub(s) as f64 / 1e6);
    }
    latencies.sort_by(f64::total_cmp);
    let window_s = end_ns as f64 / 1e9;
    let submitted = t.submitted.load(Ordering::Relaxed);
    let rejected = t.rejected.load(Ordering::Relaxed);
    let failed = t.failed.load(Ordering::Relaxed) + submitted.saturating_sub(total + rejected);
    let node_cpu: Vec<NodeCpu> = target
        .nodes
        .iter()
        .zip(pids)
        .zip(cpu0.nodes.iter().zip(&cpu1.nodes))
        .map(|((n, pid), (a, b))| {
            let cpu_s = b - a;
            let per = if in_window == 0 { 0.0 } else { cpu_s / in_window as f64 };
            NodeCpu {
                node: n.name.clone(),
                pid: pid.unwrap_or(0),
                cpu_s,
                cpu_ms_per_1000_transfers: per * 1e6,
                cpu_us_per_transfer: per * 1e6,
            }
        })
        .collect();
    let nodes_cpu: f64 = node_cpu.iter().map(|c| c.cpu_s).sum();
    let elapsed = cpu1.at.duration_since(cpu0.at).as_secs_f64().max(1e-9);
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) as f64;
    let total_jiffies = (cpu1.total - cpu0.total).max(1.0);
    let busy_cores = (cpu1.busy - cpu0.busy) / total_jiffies * cores;
    let me = cpu1.me - cpu0.me;
    let codes = t.codes.lock().map(|c| c.clone()).unwrap_or_default();
    LoadResult {
        benchmark: "load",
        path: args.path,
        mode: if args.rate.is_some() { "open_loop" } else { "closed_loop" },
        rate_offered_per_s: args.rate,
        concurrency: args.concurrency,
        duration_s: window_s,
        wallets: args.wallets,
        validators: target.nodes.len(),
        database: target.database.clone(),
        submitted,
        submit_per_s: submitted as f64 / window_s,
        committed_in_window: in_window,
        committed_transfers_per_s: in_window as f64 / window_s,
        committed_total: total,
        rejected,
        rejected_by_code: codes,
        failed,
        latency_ms_p50: percentile(&latencies, 50.0),
        latency_ms_p95: percentile(&latencies, 95.0),
        latency_ms_p99: percentile(&latencies, 99.0),
        latency_ms_max: latencies.last().copied().unwrap_or(0.0),
        latency_observation: "",
        blocks_in_window: 0,
        transfers_per_block_mean: 0.0,
        cpu_us_per_transfer_per_validator_mean: if in_window == 0 {
            0.0
        } else {
            nodes_cpu / node_cpu.len().max(1) as f64 / in_window as f64 * 1e6
        },
        node_cpu,
        nodes_cpu_s_total: nodes_cpu,
        load_generator_cpu_s: me,
        machine_busy_cores: busy_cores,
        other_busy_cores: (busy_cores - (nodes_cpu + me) / elapsed).max(0.0),
        loadavg_1m_before,
        validator_cpu_s_by_thread: cpu1
            .threads
            .iter()
            .map(|(k, v)| (k.clone(), v - cpu0.threads.get(k).copied().unwrap_or(0.0)))
            .filter(|(_, v)| *v > 0.0)
            .collect(),
    }
}

/// The readable summary of a load run (stderr).
pub fn print_summary(r: &LoadResult) {
    eprintln!(
        "{:?} {}: {:.0} committed transfers/s over {:.0} s ({} submitted, {} rejected, {} \
         failed); latency p50 {:.0} ms, p95 {:.0} ms, p99 {:.0} ms; {:.1} us CPU per transfer \
         per validator; machine busy {:.2} cores (other users {:.2})",
        r.path,
        r.mode,
        r.committed_transfers_per_s,
        r.duration_s,
        r.submitted,
        r.rejected,
        r.failed,
        r.latency_ms_p50,
        r.latency_ms_p95,
        r.latency_ms_p99,
        r.cpu_us_per_transfer_per_validator_mean,
        r.machine_busy_cores,
        r.other_busy_cores,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::id_of;

    #[test]
    fn percentiles_and_ids() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        let t = Tracker::new(7, 10, 5);
        assert_eq!(t.index_of(&id_of(7, 12).0), Some(2));
        assert_eq!(t.index_of(&id_of(8, 12).0), None);
        assert_eq!(t.index_of(&id_of(7, 15).0), None);
        assert_eq!(due_ns(Some(1_000), 3), Some(3_000_000));
    }

    /// A closed-loop submitter waits while every slot is taken, goes on once a transfer is
    /// seen final, and gives up when the window ends while it waits.
    #[test]
    fn closed_loop_waits_for_a_freed_slot() {
        let t = Tracker::new(7, 10, 5);
        t.sent(0, 0);
        assert_eq!(t.outstanding(), 1);
        let far = t.now_ns() + 600_000_000_000;
        std::thread::scope(|s| {
            let waiter = s.spawn(|| wait_turn(&t, None, 1, 1, far));
            std::thread::sleep(Duration::from_millis(50));
            assert!(!waiter.is_finished(), "no slot was free");
            t.finalized(0);
            t.wake();
            let at = waiter.join().unwrap().expect("a slot was freed inside the window");
            assert!(at >= t.final_ns[0].load(Ordering::Relaxed) - 1);
        });
        t.sent(1, 0);
        let soon = t.now_ns() + 20_000_000;
        assert_eq!(wait_turn(&t, None, 1, 2, soon), None, "the window ended while full");
        assert!(t.now_ns() >= soon);
    }
}
