//! Replication across real processes: kill -9 and catch-up, a halted minority, on SQLite and
//! PostgreSQL. Nothing finalized is lost and no node forks.

use crate::harness::Network;
use anyhow::Result;
use cbdc_ledger::testkit::{key, wallet_id};
use cbdc_ledger::{
    Amount, BankId, Decode, HolderRef, KycTier, Leg, SignedTransaction, TxBody, TxId, TxKind,
    WalletClass,
};
use cbdc_store::Store;
use std::time::Duration;

fn port_base(test: u16) -> u16 {
    21_000 + test * 600 + (std::process::id() % 20) as u16 * 10
}

fn amount(minor: u64) -> Amount {
    Amount::from_minor(minor).expect("amount in range")
}

/// Builds and signs the transactions of a small scenario.
struct Scenario<'a> {
    net: &'a Network,
    next: u64,
    exp: u64,
}

impl Scenario<'_> {
    fn sign(&mut self, kind: TxKind, keys: &[&cbdc_ledger::SigningKey]) -> SignedTransaction {
        self.next += 1;
        let mut id = [0u8; 16];
        id[8..].copy_from_slice(&self.next.to_be_bytes());
        let body = TxBody { id: TxId(id), expiry_height: self.exp, kind };
        body.sign(&self.net.genesis.chain_id, keys)
    }

    fn officers(&mut self, kind: TxKind) -> SignedTransaction {
        let (a, b) =
            (self.net.key("officers/officer-0.key"), self.net.key("officers/officer-1.key"));
        self.sign(kind, &[&a, &b])
    }

    fn open(&mut self, bank: u32, label: &str) -> SignedTransaction {
        let admin = self.net.key(&format!("bank-{bank}/admin.key"));
        let kind = TxKind::OpenWallet {
            bank: BankId(bank),
            wallet: wallet_id(label),
            public_key: key(label).public_key(),
            class: WalletClass::Retail,
            tier: KycTier(2),
            holder: HolderRef(cbdc_ledger::crypto::hash_parts(b"e2e-holder", &[label.as_bytes()])),
            linked: false,
        };
        self.sign(kind, &[&admin])
    }

    fn fund(&mut self, bank: u32, label: &str, minor: u64) -> SignedTransaction {
        let float_key = self.net.key(&format!("bank-{bank}/float.key"));
        let float = self.net.genesis.banks[bank as usize].float_wallet;
        let legs = vec![Leg { from: float, to: wallet_id(label), amount: amount(minor) }];
        self.sign(TxKind::Transfer { legs }, &[&float_key])
    }

    fn pay(&mut self, from: &str, to: &str, minor: u64) -> SignedTransaction {
        let legs = vec![Leg { from: wallet_id(from), to: wallet_id(to), amount: amount(minor) }];
        self.sign(TxKind::Transfer { legs }, &[&key(from)])
    }
}

/// Mints, opens two wallets at two banks, funds them, and pays `payments` times; returns the
/// number of transactions submitted.
fn activity(net: &Network, s: &mut Scenario<'_>, payments: u64) -> Result<u64> {
    let setup = [
        s.officers(TxKind::Mint { bank: BankId(1), amount: amount(1_000_000) }),
        s.officers(TxKind::Mint { bank: BankId(2), amount: amount(1_000_000) }),
        s.open(1, "e2e-alice"),
        s.open(2, "e2e-bob"),
    ];
    for (i, tx) in setup.iter().enumerate() {
        net.submit(i % net.nodes.len(), tx)?;
    }
    net.wait(&[0], Duration::from_secs(60), "setup", |st| st.finalized_transactions >= 4)?;
    let funds = [s.fund(1, "e2e-alice", 500_000), s.fund(2, "e2e-bob", 500_000)];
    for tx in &funds {
        net.submit(1, tx)?;
    }
    net.wait(&[0], Duration::from_secs(60), "funding", |st| st.finalized_transactions >= 6)?;
    for k in 0..payments {
        let tx = if k % 2 == 0 {
            s.pay("e2e-alice", "e2e-bob", 1 + k)
        } else {
            s.pay("e2e-bob", "e2e-alice", 1 + k)
        };
        net.submit((k as usize) % net.nodes.len(), &tx)?;
    }
    Ok(6 + payments)
}

/// Reads every node's block log and checks they agree up to the lowest height; returns that
/// height and the number of transactions in the common log.
fn compare_logs(net: &Network) -> Result<(u64, u64)> {
    let mut logs = Vec::new();
    for i in 0..net.nodes.len() {
        let mut store = Store::open(&net.database_url(i)?)?;
        let last = store.last_height()?;
        let mut hashes = Vec::new();
        let mut txs = Vec::new();
        let mut h = 1;
        while h <= last {
            let page = store.blocks_from(h, 256)?;
            if page.is_empty() {
                break;
            }
            for b in page {
                let block = cbdc_ledger::Block::decode(&b.block)?;
                txs.push(block.transactions.len() as u64);
                hashes.push(b.hash);
                h = b.height + 1;
            }
        }
        logs.push((hashes, txs));
    }
    let common = logs.iter().map(|l| l.0.len()).min().unwrap_or(0);
    for (i, log) in logs.iter().enumerate() {
        assert_eq!(log.0[..common], logs[0].0[..common], "node {i}'s chain differs from node 0's");
    }
    let tx_count = logs[0].1[..common].iter().sum();
    Ok((common as u64, tx_count))
}

fn kill_restart_catch_up(database: &str, test: u16) -> Result<()> {
    let mut net = Network::start(4, port_base(test), database)?;
    let exp = net.status(0)?.height + 5_000;
    let mut s = Scenario { net: &net, next: 0, exp };
    let mut expected = activity(&net, &mut s, 20)?;
    let next = s.next;
    net.wait(&[0, 1, 2, 3, 4], Duration::from_secs(60), "payments", |st| {
        st.finalized_transactions >= expected
    })?;

    // kill -9 an intermediary; the other four keep finalizing, including new payments.
    net.kill(4);
    let before = net.status(0)?.height;
    let mut s = Scenario { net: &net, next, exp };
    for k in 0..10 {
        net.submit(k % 4, &s.pay("e2e-alice", "e2e-bob", 100 + k as u64))?;
    }
    expected += 10;
    net.wait(&[0, 1, 2, 3], Duration::from_secs(60), "finality without bank-4", |st| {
        st.finalized_transactions >= expected && st.height > before + 5
    })?;

    // Restart it: it catches up to the others.
    net.restart(4)?;
    let target = net.status(0)?.height;
    net.wait(&[4], Duration::from_secs(120), "bank-4 catching up", |st| st.height >= target)?;
    let supply = net.status(0)?.supply_outstanding_minor;
    net.wait(&[4], Duration::from_secs(30), "bank-4 supply", |st| {
        st.supply_outstanding_minor == supply
    })?;
    net.stop_all();
    let (common, txs) = compare_logs(&net)?;
    assert!(common >= target, "common chain {common} shorter than the target {target}");
    assert_eq!(txs, expected, "every submitted transaction is in the common chain exactly once");
    Ok(())
}

#[test]
fn a_killed_node_catches_up_and_nothing_is_lost_sqlite() -> Result<()> {
    kill_restart_catch_up("sqlite", 0)
}

#[test]
fn a_killed_node_catches_up_and_nothing_is_lost_postgres() -> Result<()> {
    let Ok(url) = std::env::var("DATABASE_URL") else {
        assert!(
            std::env::var("CBDC_REQUIRE_POSTGRES").is_err(),
            "CBDC_REQUIRE_POSTGRES is set but DATABASE_URL is not"
        );
        eprintln!("skipping: DATABASE_URL is not set");
        return Ok(());
    };
    let server = url.rsplit_once('/').map(|(s, _)| s.to_string()).unwrap_or(url);
    let prefix = format!("{server}/cbdc_e2e_{}_", std::process::id());
    let result = kill_restart_catch_up(&prefix, 1);
    for name in ["central_bank", "bank_1", "bank_2", "bank_3", "bank_4"] {
        let _ = cbdc_store::drop_database(&format!("{prefix}{name}"));
    }
    result
}

#[test]
fn two_of_five_down_halts_and_the_network_resumes_without_a_fork() -> Result<()> {
    let mut net = Network::start(4, port_base(2), "sqlite")?;
    net.wait(&[0, 1, 2, 3, 4], Duration::from_secs(60), "first blocks", |st| st.height >= 5)?;
    net.kill(3);
    net.kill(4);
    std::thread::sleep(Duration::from_secs(2));
    let halted: Vec<u64> =
        (0..3).map(|i| net.status(i).map(|s| s.height)).collect::<Result<_>>()?;
    std::thread::sleep(Duration::from_secs(5));
    for (i, halted_at) in halted.iter().enumerate() {
        let h = net.status(i)?.height;
        assert_eq!(h, *halted_at, "node {i} finalized with only 3 of 5 validators up");
    }
    net.restart(3)?;
    net.restart(4)?;
    let resume = *halted.iter().max().unwrap_or(&0);
    net.wait(&[0, 1, 2, 3, 4], Duration::from_secs(120), "resumption", |st| {
        st.height > resume + 5
    })?;
    net.stop_all();
    let (common, _) = compare_logs(&net)?;
    assert!(common > resume + 5);
    Ok(())
}

/// HTTP status and JSON answer of a batch submission to node 0.
fn post_batch(net: &Network, items: &[String]) -> Result<(u16, serde_json::Value)> {
    let body = serde_json::json!({ "transactions": items }).to_string();
    let (code, text) =
        crate::harness::http_post(net.nodes[0].http, "/v1/transactions/batch", &body)?;
    Ok((code, serde_json::from_str(&text)?))
}

fn hex_of(tx: &SignedTransaction) -> String {
    use cbdc_ledger::Encode;
    hex::encode(tx.encode())
}

#[test]
fn a_batch_submission_answers_each_transaction_and_only_valid_signatures_are_admitted() -> Result<()>
{
    let net = Network::start(4, port_base(13), "sqlite")?;
    let exp = net.status(0)?.height + 5_000;
    let mut s = Scenario { net: &net, next: 0, exp };
    let setup = activity(&net, &mut s, 0)?;
    net.wait(&[0], Duration::from_secs(60), "setup", |st| st.finalized_transactions >= setup)?;

    // Bounds and malformed items refuse the whole request; nothing in it is submitted.
    let kept_out = s.pay("e2e-alice", "e2e-bob", 7);
    let (code, answer) = post_batch(&net, &[hex_of(&kept_out), "zz".to_string()])?;
    assert_eq!((code, answer["code"].as_str()), (400, Some("malformed_transaction")));
    assert!(answer["detail"].as_str().is_some_and(|d| d.contains("transaction 1")), "{answer}");
    let (code, answer) = post_batch(&net, &[])?;
    assert_eq!((code, answer["code"].as_str()), (400, Some("invalid_batch_size")));
    let (code, answer) = post_batch(&net, &vec![hex_of(&kept_out); 1_025])?;
    assert_eq!((code, answer["code"].as_str()), (400, Some("invalid_batch_size")));

    // One answer per transaction: a forged signature and a repeat are refused, the rest admitted.
    let good: Vec<_> = (0..3).map(|k| s.pay("e2e-alice", "e2e-bob", 10 + k)).collect();
    let mut forged = s.pay("e2e-alice", "e2e-bob", 99);
    forged.signatures[0].signature.0[0] ^= 1;
    let items = [&good[0], &good[1], &forged, &good[2], &good[0]].map(hex_of);
    let (code, answer) = post_batch(&net, &items)?;
    assert_eq!(code, 200, "{answer}");
    let results: Vec<(String, Option<String>)> = answer["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| {
            (r["status"].as_str().unwrap_or("").to_string(), r["code"].as_str().map(String::from))
        })
        .collect();
    let accepted = ("accepted".to_string(), None);
    let refused = |c: &str| ("refused".to_string(), Some(c.to_string()));
    assert_eq!(
        results,
        vec![
            accepted.clone(),
            accepted.clone(),
            refused("bad_signature"),
            accepted,
            refused("duplicate_transaction")
        ]
    );
    // A single submission of a forged transaction is refused with the same code.
    let body = serde_json::json!({ "transaction": hex_of(&forged) }).to_string();
    let (code, text) = crate::harness::http_post(net.nodes[1].http, "/v1/transactions", &body)?;
    assert_eq!(code, 400, "{text}");
    assert!(text.contains("bad_signature"), "{text}");

    // Exactly the three admitted payments commit, on every node.
    let expected = setup + 3;
    net.wait(&[0, 1, 2, 3, 4], Duration::from_secs(60), "the admitted payments", |st| {
        st.finalized_transactions >= expected
    })?;
    let height = net.status(0)?.height;
    net.wait(&[0], Duration::from_secs(30), "a few more blocks", |st| st.height >= height + 5)?;
    assert_eq!(net.status(0)?.finalized_transactions, expected);
    Ok(())
}
