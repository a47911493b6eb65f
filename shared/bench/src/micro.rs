//! `cbdc-bench micro`: the per-core ceilings the network figures are read against — batch
//! Ed25519 verification and block execution without I/O (the `ledger` benchmark), and SQL
//! projection writes (`cbdc_store::Store::write_projection`) on SQLite and PostgreSQL with
//! one block's rows per call, as a node writes them.

use crate::{LedgerArgs, LedgerResult, run_ledger};
use anyhow::{Context, Result};
use cbdc_store::{Direction, HistoryRow, ProjectionBatch, Store, SupplyRow, WalletRow};
use serde::Serialize;
use std::time::Instant;

#[derive(clap::Args, Debug, Clone)]
pub struct MicroArgs {
    /// Small sizes, a few seconds in all (CI).
    #[arg(long)]
    pub smoke: bool,
    /// Blocks written per projection backend.
    #[arg(long, default_value_t = 40)]
    pub projection_blocks: u32,
    /// Transfers per projected block (two wallet rows and two history rows each).
    #[arg(long, default_value_t = 500)]
    pub projection_block_transfers: u32,
    #[arg(long)]
    pub json: Option<std::path::PathBuf>,
}

#[derive(Serialize, Debug, Clone)]
pub struct ProjectionResult {
    pub backend: &'static str,
    pub blocks: u32,
    pub transfers_per_block: u32,
    pub rows_per_block: u32,
    pub ms_per_block_mean: f64,
    pub blocks_per_s: f64,
    pub transfers_per_s: f64,
    pub rows_per_s: f64,
}

#[derive(Serialize, Debug, Clone)]
pub struct MicroResult {
    pub benchmark: &'static str,
    pub ledger: LedgerResult,
    /// Batch Ed25519 verifications per second on one thread.
    pub signature_verifications_per_s_per_core: f64,
    pub projection_sqlite: ProjectionResult,
    /// Only when `DATABASE_URL` names a PostgreSQL server.
    pub projection_postgres: Option<ProjectionResult>,
}

fn batch(height: u64, transfers: u32) -> ProjectionBatch {
    let wallet = |i: u32| {
        let mut id = [0u8; 16];
        id[12..].copy_from_slice(&i.to_be_bytes());
        id
    };
    let mut wallets = Vec::new();
    let mut history = Vec::new();
    for t in 0..transfers {
        let (from, to) = (wallet(2 * t), wallet(2 * t + 1));
        let mut tx_id = [0u8; 16];
        tx_id[..8].copy_from_slice(&height.to_be_bytes());
        tx_id[8..12].copy_from_slice(&t.to_be_bytes());
        for (w, other, direction) in [(from, to, Direction::Debit), (to, from, Direction::Credit)] {
            wallets.push(WalletRow {
                wallet_id: w,
                bank_id: u64::from(1 + t % 4),
                class: 0,
                tier: 2,
                status: 0,
                balance_minor: 1_000_000 - height,
                holder_ref: Some(vec![7u8; 32]),
            });
            history.push(HistoryRow {
                tx_id,
                wallet_id: w,
                counterparty_wallet_id: Some(other),
                amount_minor: 1,
                direction,
                kind: 1,
                timestamp_ms: 1_700_000_000_000 + height,
            });
        }
    }
    let supply = Some(SupplyRow {
        minted_minor: 1_000_000_000,
        burned_minor: 0,
        outstanding_minor: 1_000_000_000,
        timestamp_ms: 1_700_000_000_000 + height,
    });
    ProjectionBatch { projection: "bench".into(), wallets, history, supply }
}

fn projection(url: &str, backend: &'static str, blocks: u32, per: u32) -> Result<ProjectionResult> {
    let mut store = Store::open(url).with_context(|| format!("opening {backend}"))?;
    let batches: Vec<_> = (1..=u64::from(blocks)).map(|h| batch(h, per)).collect();
    let start = Instant::now();
    for (h, b) in (1u64..).zip(&batches) {
        store.write_projection(h, b)?;
    }
    let s = start.elapsed().as_secs_f64();
    let rows = 4 * per + 1;
    Ok(ProjectionResult {
        backend,
        blocks,
        transfers_per_block: per,
        rows_per_block: rows,
        ms_per_block_mean: s * 1e3 / f64::from(blocks),
        blocks_per_s: f64::from(blocks) / s,
        transfers_per_s: f64::from(blocks * per) / s,
        rows_per_s: f64::from(blocks * rows) / s,
    })
}

fn postgres(blocks: u32, per: u32) -> Result<Option<ProjectionResult>> {
    let Ok(url) = std::env::var("DATABASE_URL") else { return Ok(None) };
    let server = url.rsplit_once('/').map(|(s, _)| s.to_string()).unwrap_or(url);
    let scratch = format!("{server}/cbdc_bench_micro_{}", std::process::id());
    cbdc_store::ensure_database(&scratch)?;
    let result = projection(&scratch, "postgres", blocks, per);
    let _ = cbdc_store::drop_database(&scratch);
    result.map(Some)
}

pub fn run(args: &MicroArgs) -> Result<MicroResult> {
    let ledger_args = if args.smoke {
        LedgerArgs { transfers: 500, wallets: 1_000, iterations: 1, json: None }
    } else {
        LedgerArgs { transfers: 10_000, wallets: 20_000, iterations: 5, json: None }
    };
    let (blocks, per) = if args.smoke {
        (5, 100)
    } else {
        (args.projection_blocks, args.projection_block_transfers)
    };
    let ledger = run_ledger(&ledger_args)?;
    eprintln!("projection writes: {blocks} blocks of {per} transfers...");
    let dir = tempfile::tempdir()?;
    let sqlite_url = format!("sqlite://{}", dir.path().join("projection.db").display());
    let projection_sqlite = projection(&sqlite_url, "sqlite", blocks, per)?;
    let projection_postgres = postgres(blocks, per)?;
    Ok(MicroResult {
        benchmark: "micro",
        signature_verifications_per_s_per_core: ledger.signatures_verified_per_s,
        ledger,
        projection_sqlite,
        projection_postgres,
    })
}

pub fn print_summary(r: &MicroResult) {
    eprintln!(
        "micro: {:.0} signature verifications/s/core (batch); block check {:.0} transfers/s \
         ({:.1} us each, {:.1} us without verification); projection writes: sqlite {:.0} transfers/s ({:.1} ms per block of {})",
        r.signature_verifications_per_s_per_core,
        r.ledger.transfers_per_s_apply,
        r.ledger.cpu_us_per_transfer_apply,
        r.ledger.cpu_us_per_transfer_execute,
        r.projection_sqlite.transfers_per_s,
        r.projection_sqlite.ms_per_block_mean,
        r.projection_sqlite.transfers_per_block,
    );
    if let Some(pg) = &r.projection_postgres {
        eprintln!(
            "        postgres {:.0} transfers/s ({:.1} ms per block)",
            pg.transfers_per_s, pg.ms_per_block_mean
        );
    }
}
