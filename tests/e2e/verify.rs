//! The regulators' `central-bank verify` against real nodes' block logs: a log written by a
//! running network checks out from the genesis alone (exit 0, the log's height, transactions and
//! supply); a copy with one transfer amount changed inside a stored block, and a copy with one
//! flipped byte in a certificate signature, each fail (exit 1) naming that block's height.

use crate::harness::Network;
use anyhow::{Context, Result, bail};
use cbdc_ledger::{
    Amount, BankId, Block, Decode, Encode, Leg, SignedTransaction, SigningKey, TxBody, TxId, TxKind,
};
use cbdc_store::{Store, StoredBlock};
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

fn port_base(test: u16) -> u16 {
    21_000 + test * 600 + (std::process::id() % 20) as u16 * 10
}

const MINT_MINOR: u64 = 1_000_000;
const TRANSFERS: u64 = 20;

/// Mints to banks 1 and 2 (officer-signed), then moves money between their float wallets;
/// returns the number of transactions submitted.
fn activity(net: &Network) -> Result<u64> {
    let expiry = net.status(0)?.height + 5_000;
    let mut next = 0u64;
    let mut sign = |kind: TxKind, keys: &[&SigningKey]| -> SignedTransaction {
        next += 1;
        let mut id = [0u8; 16];
        id[..8].copy_from_slice(b"e2e-vrfy");
        id[8..].copy_from_slice(&next.to_be_bytes());
        TxBody { id: TxId(id), expiry_height: expiry, kind }.sign(&net.genesis.chain_id, keys)
    };
    let officers = [net.key("officers/officer-0.key"), net.key("officers/officer-1.key")];
    let amount = |minor: u64| Amount::from_minor(minor).expect("amount in range");
    for bank in [1, 2] {
        let kind = TxKind::Mint { bank: BankId(bank), amount: amount(MINT_MINOR) };
        net.submit(bank as usize, &sign(kind, &[&officers[0], &officers[1]]))?;
    }
    net.wait(&[1], Duration::from_secs(60), "the mints", |st| st.finalized_transactions >= 2)?;
    let floats = [net.genesis.banks[1].float_wallet, net.genesis.banks[2].float_wallet];
    let keys = [net.key("bank-1/float.key"), net.key("bank-2/float.key")];
    for k in 0..TRANSFERS {
        let (from, to) = if k % 2 == 0 { (0, 1) } else { (1, 0) };
        let legs = vec![Leg { from: floats[from], to: floats[to], amount: amount(100 + k) }];
        let tx = sign(TxKind::Transfer { legs }, &[&keys[from]]);
        net.submit((k as usize) % net.nodes.len(), &tx)?;
    }
    Ok(2 + TRANSFERS)
}

/// Runs `central-bank verify`; returns its exit code and the JSON it printed.
fn run_verify(net: &Network, database: &str) -> Result<(i32, Value)> {
    let genesis = net.net_dir().join("genesis.json");
    let out = std::process::Command::new(net.binary_path("central-bank"))
        .arg("verify")
        .arg("--database")
        .arg(database)
        .arg("--genesis")
        .arg(&genesis)
        .output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("verify {database}: {}", stderr.trim());
    let json = serde_json::from_slice(&out.stdout)
        .with_context(|| format!("verify printed no JSON report; stderr: {stderr}"))?;
    Ok((out.status.code().context("verify was killed")?, json))
}

/// Every stored block of a log, in order.
fn read_log(database: &str) -> Result<Vec<StoredBlock>> {
    let mut store = Store::open(database)?;
    let mut log = Vec::new();
    loop {
        let page = store.blocks_from(log.len() as u64 + 1, 256)?;
        if page.is_empty() {
            return Ok(log);
        }
        log.extend(page);
    }
}

/// Copies a SQLite database file with its write-ahead log, if any, into `dir`.
fn copy_sqlite(url: &str, dir: &Path) -> Result<String> {
    let path = Path::new(url.strip_prefix("sqlite://").context("a SQLite URL")?);
    let to = dir.join("node.db");
    std::fs::copy(path, &to)?;
    for suffix in ["-wal", "-shm"] {
        let side = format!("{}{suffix}", path.display());
        if Path::new(&side).exists() {
            std::fs::copy(&side, format!("{}{suffix}", to.display()))?;
        }
    }
    Ok(format!("sqlite://{}", to.display()))
}

#[test]
fn verify_checks_a_real_log_and_names_a_tampered_block() -> Result<()> {
    let mut net = Network::start(4, port_base(10), "sqlite")?;
    let submitted = activity(&net)?;
    net.wait(&[0, 1, 2, 3, 4], Duration::from_secs(60), "the transfers", |st| {
        st.finalized_transactions >= submitted
    })?;
    // Later blocks carry the certificates that finalize the transfers' blocks.
    let settled = net.status(1)?.height;
    net.wait(&[1], Duration::from_secs(60), "more blocks", |st| st.height >= settled + 3)?;
    net.stop_all();

    // The node's own log checks out from the genesis.
    let database = net.database_url(1)?;
    let log = read_log(&database)?;
    let last = log.last().context("an empty log")?;
    let (code, json) = run_verify(&net, &database)?;
    assert_eq!(code, 0, "{json:#}");
    let report = &json["report"];
    assert_eq!(report["final_height"], last.height, "{json:#}");
    assert_eq!(report["final_hash"], hex::encode(last.hash));
    assert_eq!(report["blocks_checked"], last.height);
    assert_eq!(report["transactions"], submitted);
    assert_eq!(report["supply_outstanding_minor"], 2 * MINT_MINOR);
    assert_eq!(report["chain_id"], net.genesis.chain_id.as_str());
    let certified = report["last_certified_height"].as_u64().unwrap_or(0);
    assert!(certified >= settled, "transfers' blocks are certified: {report:#}");
    assert_eq!(report["uncertified_tail"], last.height - certified);
    assert_eq!(report["epochs"].as_array().map(Vec::len), Some(1), "{report:#}");
    assert_eq!(report["epochs"][0]["validators"].as_array().map(Vec::len), Some(5));
    for i in [0, 2, 3, 4] {
        let (code, json) = run_verify(&net, &net.database_url(i)?)?;
        assert_eq!(code, 0, "bank {i}'s log: {json:#}");
    }

    // (a) One transfer's amount changed inside its stored block, the row's hash kept.
    let (index, mut block) = log
        .iter()
        .enumerate()
        .find_map(|(i, b)| {
            let block = Block::decode(&b.block).ok()?;
            let transfer =
                block.transactions.iter().any(|tx| matches!(tx.body.kind, TxKind::Transfer { .. }));
            transfer.then_some((i, block))
        })
        .context("no block holds a transfer")?;
    let tampered_height = log[index].height;
    for tx in &mut block.transactions {
        if let TxKind::Transfer { legs } = &mut tx.body.kind {
            legs[0].amount = Amount::from_minor(legs[0].amount.minor() + 1_000)?;
            break;
        }
    }
    let copy = tempfile::tempdir()?;
    let tampered = rewrite_log(&log, copy.path(), index, block.encode())?;
    let (code, json) = run_verify(&net, &tampered)?;
    assert_eq!(code, 1, "{json:#}");
    assert_eq!(json["failure"]["height"], tampered_height, "{json:#}");
    assert_eq!(json["failure"]["hash"], hex::encode(log[index].hash));
    assert_eq!(json["failure"]["reason"], "tx_root_mismatch", "{json:#}");
    assert_eq!(json["verified"]["final_height"], tampered_height - 1);

    // (b) In a fresh copy of the database, one byte of a certificate signature flipped.
    let certified_block = log
        .iter()
        .find(|b| b.height >= tampered_height && b.certificate.is_some())
        .context("no certified block above the transfer")?;
    let copy = tempfile::tempdir()?;
    let flipped_db = copy_sqlite(&database, copy.path())?;
    let mut certificate = certified_block.certificate.clone().unwrap_or_default();
    // The certificate ends with the last signer's Ed25519 signature.
    *certificate.last_mut().context("an empty certificate")? ^= 0x01;
    Store::open(&flipped_db)?.set_certificate(certified_block.height, &certificate)?;
    let (code, json) = run_verify(&net, &flipped_db)?;
    assert_eq!(code, 1, "{json:#}");
    assert_eq!(json["failure"]["height"], certified_block.height, "{json:#}");
    assert_eq!(json["failure"]["reason"], "certificate_invalid", "{json:#}");
    Ok(())
}

/// A copy of `log` as a fresh SQLite block log in `dir`, with the block bytes of row `index`
/// replaced (its hash, parent and time columns kept as they were); returns its URL.
///
/// The copy is appended through the store's own write path, so every row is exactly what the
/// node would have written, except the one block column changed underneath.
fn rewrite_log(log: &[StoredBlock], dir: &Path, index: usize, bytes: Vec<u8>) -> Result<String> {
    let url = format!("sqlite://{}", dir.join("tampered.db").display());
    let mut store = Store::open(&url)?;
    for (i, stored) in log.iter().enumerate() {
        if i == index {
            let mut changed = stored.clone();
            changed.block = bytes.clone();
            store.append_block(&changed)?;
        } else {
            store.append_block(stored)?;
        }
    }
    if store.last_height()? != log.len() as u64 {
        bail!("the copy has {} blocks, the log {}", store.last_height()?, log.len());
    }
    Ok(url)
}
