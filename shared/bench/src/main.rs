//! `cbdc-bench`: measured figures of the platform, as JSON plus a readable summary.
//!
//! Benchmarks are not tests: nothing here asserts a speed. Each run records the machine it ran on
//! so figures in `docs/BENCHMARKS.md` can be reproduced and compared.
#![allow(
    clippy::disallowed_methods,
    clippy::print_stdout,
    reason = "a benchmark reads the wall clock and prints its results"
)]

use anyhow::{Context, Result, bail};
use cbdc_ledger::block::verify_signatures;
use cbdc_ledger::testkit::{Customer, TestNet, tx_id};
use cbdc_ledger::{BlockContext, Ledger, SignedTransaction};
use clap::{Parser, Subcommand};
use serde::Serialize;
use std::time::{Duration, Instant};

/// mimalloc instead of glibc's malloc: about 8 % less CPU per transfer under load
/// (`docs/BENCHMARKS.md`); a node allocates and frees every transaction several times.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(name = "cbdc-bench", about = "Benchmarks of the CBDC platform (JSON output)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Execute a block of signed transfers in the pure ledger (no I/O): proposer and validator.
    Ledger(LedgerArgs),
    /// Five real validator processes on loopback under load (needs the release binaries:
    /// `cargo build --release -p central-bank -p intermediary -p cbdc-bench`).
    Network(network::NetworkArgs),
    /// Drive a running network with signed transfers (direct to the nodes or through the banks'
    /// wallet API): committed transfers/s, finality latency, CPU per transfer per validator.
    Load(load::LoadArgs),
    /// Per-core ceilings: batch signature verification, block execution, projection writes.
    Micro(micro::MicroArgs),
    /// `micro` then `load` in one run, so their ratios hold; `--smoke` for a few seconds of each.
    All(AllArgs),
}

mod http;
mod load;
mod micro;
mod network;
mod wallet;

#[derive(clap::Args, Debug)]
struct AllArgs {
    /// Small sizes: micro-benchmarks at small sizes and 3 s of open-loop load at 200/s on a
    /// fresh network with 40 wallets.
    #[arg(long)]
    smoke: bool,
    /// Skip the network load (micro-benchmarks only).
    #[arg(long)]
    no_network: bool,
    #[command(flatten)]
    load: load::LoadArgs,
}

#[derive(Serialize, Debug)]
struct AllResult {
    benchmark: &'static str,
    machine: Machine,
    micro: micro::MicroResult,
    load: Option<load::LoadResult>,
    /// cores x verifications/s/core / validators: transfers/s if signature checks were the
    /// only cost of every validator sharing this machine.
    signature_ceiling_transfers_per_s: f64,
    /// Achieved committed transfers/s over that ceiling.
    ratio_to_signature_ceiling: Option<f64>,
}

/// Makes sure the result file can be written before minutes of measurement: creates its
/// directory and opens it for writing (without truncating anything yet).
fn prepare_output(path: Option<&std::path::Path>) -> Result<()> {
    let Some(path) = path else { return Ok(()) };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .with_context(|| format!("cannot write the results to {}", path.display()))?;
    Ok(())
}

fn write_json<T: Serialize>(value: &T, path: Option<&std::path::Path>) -> Result<()> {
    let json = serde_json::to_string_pretty(value)?;
    println!("{json}");
    if let Some(path) = path {
        std::fs::write(path, json).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn run_all(args: &AllArgs) -> Result<AllResult> {
    let micro_args = micro::MicroArgs {
        smoke: args.smoke,
        projection_blocks: 40,
        projection_block_transfers: 500,
        json: None,
    };
    let micro = micro::run(&micro_args)?;
    micro::print_summary(&micro);
    let load = if args.no_network {
        None
    } else {
        let mut load_args = args.load.clone();
        if args.smoke {
            load_args.duration = 3;
            load_args.rate = Some(200);
            load_args.wallets = 40;
        }
        let result = run_load(&load_args)?;
        load::print_summary(&result);
        Some(result)
    };
    let m = machine();
    let validators = load.as_ref().map_or(5, |l| l.validators) as f64;
    let ceiling = m.cores as f64 * micro.signature_verifications_per_s_per_core / validators;
    let ratio = load.as_ref().map(|l| l.committed_transfers_per_s / ceiling);
    Ok(AllResult {
        benchmark: "all",
        machine: m,
        micro,
        load,
        signature_ceiling_transfers_per_s: ceiling,
        ratio_to_signature_ceiling: ratio,
    })
}

#[derive(clap::Args, Debug, Clone)]
struct LedgerArgs {
    /// Signed transfers in the measured block (at most 65,536).
    #[arg(long, default_value_t = 10_000)]
    transfers: u32,
    /// Funded retail wallets on the ledger (at least twice the transfers, so payers are distinct).
    #[arg(long, default_value_t = 20_000)]
    wallets: u32,
    /// Measured repetitions; the median is reported.
    #[arg(long, default_value_t = 5)]
    iterations: u32,
    /// Also write the JSON result to this file.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
}

#[derive(Serialize, Debug, Clone)]
struct Machine {
    cores: usize,
    cpu: String,
}

#[derive(Serialize, Debug, Clone)]
struct LedgerResult {
    benchmark: &'static str,
    machine: Machine,
    transfers: u32,
    wallets: u32,
    iterations: u32,
    signature_batch_verify_ms_median: f64,
    signatures_verified_per_s: f64,
    build_block_ms_median: f64,
    apply_block_ms_median: f64,
    /// The node's path: the block checked with every signature already verified on admission
    /// (`check_final_block`), so execution, roots and the state commitment only.
    execute_block_ms_median: f64,
    state_root_ms_median: f64,
    state_clone_ms_median: f64,
    transfers_per_s_apply: f64,
    transfers_per_s_build: f64,
    cpu_us_per_transfer_apply: f64,
    cpu_us_per_transfer_execute: f64,
}

fn machine() -> Machine {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    Machine { cores, cpu }
}

fn median_ms(mut samples: Vec<Duration>) -> f64 {
    samples.sort();
    samples.get(samples.len() / 2).map(|d| d.as_secs_f64() * 1_000.0).unwrap_or(0.0)
}

fn time<T>(iterations: u32, mut f: impl FnMut() -> T) -> (f64, T) {
    let mut samples = Vec::new();
    let mut last = None;
    for _ in 0..iterations.max(1) {
        let start = Instant::now();
        let out = f();
        samples.push(start.elapsed());
        last = Some(out);
    }
    match last {
        Some(out) => (median_ms(samples), out),
        None => unreachable!("at least one iteration runs"),
    }
}

/// A ledger with `wallets` funded tier-2 wallets spread over four banks.
fn funded_ledger(net: &TestNet, wallets: u32) -> Result<(Ledger, Vec<Customer>)> {
    let mut chain = cbdc_ledger::testkit::ChainBuilder::new(net);
    let exp = 1_000;
    let mut next = 0u64;
    let mut id = || {
        next += 1;
        tx_id(next)
    };
    let per_wallet = 1_000_000u64;
    let per_bank = per_wallet * u64::from(wallets).div_ceil(4);
    let mints: Vec<_> = (1..=4).map(|b| net.mint(id(), exp, b, per_bank)).collect();
    let mut customers = Vec::new();
    let mut opens = Vec::new();
    for i in 0..wallets {
        let (c, tx) = net.open_customer(id(), exp, 1 + i % 4, &format!("bench-{i}"), 2, false);
        customers.push(c);
        opens.push(tx);
    }
    let funds: Vec<_> = customers
        .iter()
        .map(|c| {
            let bank = net.bank(c.bank.0);
            net.pay(id(), exp, &bank.float_key, bank.float_wallet, c.wallet, per_wallet)
        })
        .collect();
    for batch in
        [mints.as_slice()].into_iter().chain(opens.chunks(20_000)).chain(funds.chunks(20_000))
    {
        let outcomes = chain.push(batch);
        if let Some(bad) = outcomes.iter().find(|o| !o.is_committed()) {
            bail!("setup transaction rejected: {bad:?}");
        }
    }
    Ok((chain.ledger, customers))
}

fn run_ledger(args: &LedgerArgs) -> Result<LedgerResult> {
    if args.wallets < args.transfers.saturating_mul(2) {
        bail!("--wallets must be at least twice --transfers so every payer is distinct");
    }
    let net = TestNet::new(4);
    eprintln!("setting up {} funded wallets...", args.wallets);
    let (ledger, customers) = funded_ledger(&net, args.wallets)?;
    let base = 10_000_000u64;
    let transfers: Vec<SignedTransaction> = (0..args.transfers as usize)
        .map(|i| {
            let (payer, payee) = (&customers[2 * i], &customers[2 * i + 1]);
            let amount = 1 + (i as u64 % 100);
            net.pay(tx_id(base + i as u64), 1_000, &payer.key, payer.wallet, payee.wallet, amount)
        })
        .collect();
    let ctx = BlockContext {
        timestamp_ms: ledger.tip().timestamp_ms + 1_000,
        proposer: net.bank(0).validator.public_key(),
    };
    eprintln!("measuring a block of {} signed transfers...", args.transfers);
    let it = args.iterations;
    let (verify_ms, ok) = time(it, || verify_signatures(ledger.chain_id(), &transfers));
    if ok.iter().any(|v| !v) {
        bail!("a benchmark signature failed to verify");
    }
    let (build_ms, built) = time(it, || ledger.build_block(ctx, &transfers));
    let committed = built.block.transactions.len();
    if committed != transfers.len() {
        bail!("only {committed} of {} transfers committed", transfers.len());
    }
    let (apply_ms, checked) = time(it, || ledger.check_block(&built.block));
    checked.context("the built block must apply")?;
    let (execute_ms, executed) = time(it, || ledger.check_final_block(&built.block));
    executed.context("the built block must execute")?;
    let (root_ms, _) = time(it, || built.ledger.state().root());
    let (clone_ms, _) = time(it, || built.ledger.state().clone());
    let n = f64::from(args.transfers);
    Ok(LedgerResult {
        benchmark: "ledger_block",
        machine: machine(),
        transfers: args.transfers,
        wallets: args.wallets,
        iterations: it,
        signature_batch_verify_ms_median: verify_ms,
        signatures_verified_per_s: n / (verify_ms / 1_000.0),
        build_block_ms_median: build_ms,
        apply_block_ms_median: apply_ms,
        execute_block_ms_median: execute_ms,
        state_root_ms_median: root_ms,
        state_clone_ms_median: clone_ms,
        transfers_per_s_apply: n / (apply_ms / 1_000.0),
        transfers_per_s_build: n / (build_ms / 1_000.0),
        cpu_us_per_transfer_apply: apply_ms * 1_000.0 / n,
        cpu_us_per_transfer_execute: execute_ms * 1_000.0 / n,
    })
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let output = match &cli.command {
        Command::Load(args) => args.json.as_deref(),
        Command::Micro(args) => args.json.as_deref(),
        Command::All(args) => args.load.json.as_deref(),
        Command::Network(args) => args.json.as_deref(),
        Command::Ledger(args) => args.json.as_deref(),
    };
    prepare_output(output)?;
    match cli.command {
        Command::Load(args) => {
            let result = run_load(&args)?;
            load::print_summary(&result);
            write_json(&result, args.json.as_deref())?;
        }
        Command::Micro(args) => {
            let result = micro::run(&args)?;
            micro::print_summary(&result);
            write_json(&result, args.json.as_deref())?;
        }
        Command::All(args) => {
            let result = run_all(&args)?;
            write_json(&result, args.load.json.as_deref())?;
        }
        Command::Network(args) => {
            let result = network::run(&args)?;
            write_json(&result, args.json.as_deref())?;
        }
        Command::Ledger(args) => {
            let result = run_ledger(&args)?;
            write_json(&result, args.json.as_deref())?;
            eprintln!(
                "block of {} transfers: apply {:.1} ms ({:.0} transfers/s, {:.1} us each; \
                 {:.1} us each with signatures verified on admission), build {:.1} ms; batch \
                 signature check {:.1} ms; state root {:.1} ms",
                result.transfers,
                result.apply_block_ms_median,
                result.transfers_per_s_apply,
                result.cpu_us_per_transfer_apply,
                result.cpu_us_per_transfer_execute,
                result.build_block_ms_median,
                result.signature_batch_verify_ms_median,
                result.state_root_ms_median,
            );
        }
    }
    Ok(())
}

/// Runs the load test on the path `args` names (the two paths share `load`'s target, tracker
/// and report; only this dispatch knows both).
fn run_load(args: &load::LoadArgs) -> Result<load::LoadResult> {
    let target = load::target(args)?;
    match args.path {
        load::SubmitPath::Direct => load::run_direct(args, &target),
        load::SubmitPath::Wallet => wallet::run(args, &target),
    }
}
