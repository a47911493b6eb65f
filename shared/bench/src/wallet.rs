//! The wallet-API path of `cbdc-bench load`: customers onboarded through each bank's operations
//! API with custodial wallets funded from the bank's float, then paying each other across banks
//! through the wallet API (HTTPS from the network's CA, an `Idempotency-Key` per payment). The
//! payment call waits for finality; a pending answer is followed by polling its receipt, so each
//! transfer's latency is observed by its own client.

use crate::load::{
    LoadArgs, LoadResult, Target, Tracker, cpu_snapshot, mode_text, node_pids, run_prefix,
    summarize, wait_turn,
};
use crate::network::{Issuer, field, status};
use anyhow::{Result, bail};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use wallet_api::client::{ClientError, WalletClient};
use wallet_api::model::{PaymentRequest, PaymentStatus};

/// A funded custodial wallet and its logged-in customer.
#[derive(Debug, Clone)]
struct Payer {
    wallet: String,
    client: WalletClient,
}

fn client(target: &Target, bank: usize) -> Result<WalletClient> {
    let api = cbdc_service::init::bank_api(target.nodes[bank].http)?;
    let ca = std::fs::read_to_string(target.dir.join("central-bank/pki/ca.pem"))?;
    let client = WalletClient::new(&format!("https://localhost:{}", api.port()), Some(&ca))?;
    Ok(client.with_timeouts(Duration::from_secs(5), Duration::from_secs(30)))
}

fn operator(target: &Target, bank: usize) -> Result<WalletClient> {
    let mut op = client(target, bank)?;
    let name = &target.nodes[bank].name;
    let file = target.dir.join(format!("{name}/credentials/operator.password"));
    let start = Instant::now();
    loop {
        let password = std::fs::read_to_string(&file).unwrap_or_default();
        if !password.is_empty() && op.login("operator", password.trim()).is_ok() {
            return Ok(op);
        }
        if start.elapsed() > Duration::from_secs(60) {
            bail!("bank {bank}'s API did not come up");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn call(c: &WalletClient, path: &str, key: Option<&str>, body: Value) -> Result<Value> {
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(key) = key {
        headers.push(("Idempotency-Key", key));
    }
    let body = body.to_string();
    let (code, text) = c.raw("POST", path, &headers, Some(body.as_bytes()))?;
    if !(200..300).contains(&code) {
        bail!("{path}: {code} {text}");
    }
    Ok(serde_json::from_str(&text)?)
}

/// Onboards customer `i` at `bank`, opens and funds a custodial wallet, logs the customer in.
fn onboard(target: &Target, op: &WalletClient, bank: usize, tag: &str, i: u32) -> Result<Payer> {
    let username = format!("b{tag}-{i}");
    let person = call(
        op,
        "/v1/ops/customers",
        None,
        json!({
            "name": format!("Bench Customer {i}"),
            "date_of_birth": "1990-01-01",
            "national_id": format!("BN{tag}{i}"),
            "address": "1 Bench Street",
            "documents": [{ "kind": "passport", "reference": format!("P{tag}{i}") }],
            "verification": "full",
            "username": username,
        }),
    )?;
    let text = |v: &Value, k: &str| v[k].as_str().unwrap_or_default().to_string();
    let customer = text(&person, "customer_id");
    let path = format!("/v1/ops/customers/{customer}/wallets");
    let wallet = text(&call(op, &path, None, json!({ "custody": "custodial" }))?, "wallet_id");
    let fund = format!("/v1/ops/wallets/{wallet}/fund");
    let funded = call(op, &fund, Some(&format!("fund-{i}")), json!({ "amount_minor": 500_000 }))?;
    if funded["status"] != "committed" {
        bail!("funding {wallet}: {funded}");
    }
    let mut me = client(target, bank)?;
    me.login(&username, &text(&person, "initial_password"))?;
    Ok(Payer { wallet, client: me })
}

fn setup(args: &LoadArgs, target: &Target, tag: &str) -> Result<Vec<Payer>> {
    let banks = target.nodes.len() - 1;
    let ops: Vec<WalletClient> = (1..=banks).map(|b| operator(target, b)).collect::<Result<_>>()?;
    let next = AtomicU64::new(0);
    let out = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| -> Result<()> {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                s.spawn(|| -> Result<()> {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed) as u32;
                        if i >= args.wallets {
                            return Ok(());
                        }
                        let bank = 1 + i as usize % banks;
                        let payer = onboard(target, &ops[bank - 1], bank, tag, i)?;
                        if let Ok(mut out) = out.lock() {
                            out.push((i, payer));
                        }
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().map_err(|_| anyhow::anyhow!("setup thread panicked"))??;
        }
        Ok(())
    })?;
    let mut payers = out.into_inner().map_err(|_| anyhow::anyhow!("poisoned"))?;
    payers.sort_by_key(|p| p.0);
    Ok(payers.into_iter().map(|p| p.1).collect())
}

/// Pays once and follows the receipt to finality; records the outcome.
fn pay_one(t: &Tracker, j: usize, from: &Payer, to: &Payer, tag: &str) {
    let request = PaymentRequest {
        to_wallet: to.wallet.clone(),
        amount_minor: 1,
        reference: None,
        payment_request_id: None,
    };
    let answer = from.client.pay(&from.wallet, &format!("p{tag}-{j}"), &request);
    let receipt = match answer {
        Ok((_, r)) => r,
        Err(ClientError::Problem { problem, .. }) => return t.reject(&problem.code),
        Err(_) => {
            t.fail(1);
            return;
        }
    };
    let mut status = receipt.status;
    let start = Instant::now();
    while status == PaymentStatus::Pending && start.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(20));
        status = match from.client.payment(&receipt.tx_id) {
            Ok(r) => r.status,
            Err(_) => PaymentStatus::Pending,
        };
    }
    match status {
        PaymentStatus::Committed => t.finalized(j),
        PaymentStatus::Failed => t.reject(receipt.rejection.as_deref().unwrap_or("failed")),
        PaymentStatus::Pending => {
            t.fail(1);
        }
    }
}

pub fn run(args: &LoadArgs, target: &Target) -> Result<LoadResult> {
    let prefix = run_prefix();
    let tag = format!("{:x}", prefix & 0xffff_ffff);
    let height = field(&status(target.nodes[0].http)?, "height");
    let mut issuer = Issuer {
        dir: &target.dir,
        genesis: &target.genesis,
        nodes: &target.nodes,
        prefix,
        next: 0,
        expiry_height: height + 90_000,
    };
    eprintln!(
        "setup: minting; onboarding and funding {} customers via the ops API...",
        args.wallets
    );
    issuer.mint_floats(u64::from(args.wallets) * 1_000_000)?;
    if args.concurrency > 512 {
        bail!("the wallet path runs one client thread per --concurrency: at most 512");
    }
    let payers = setup(args, target, &tag)?;
    if payers.len() < 2 {
        bail!("need at least two wallets");
    }
    let n = match args.rate {
        Some(r) => u64::from(r) * args.duration,
        None => 20_000 * args.duration,
    } as usize;
    let t = Tracker::new(prefix, 0, n);
    let end_ns = args.duration * 1_000_000_000;
    let next = AtomicU64::new(0);
    let pids = node_pids(&target.nodes);
    let tick = crate::load::clock_ticks();
    let load_before = crate::load::loadavg();
    eprintln!(
        "load: {} s, {}, {} client threads",
        args.duration,
        mode_text(args),
        args.concurrency
    );
    let cpu0 = cpu_snapshot(&pids, tick);
    let cpu1 = std::thread::scope(|s| {
        s.spawn(|| crate::load::progress(&t));
        let workers: Vec<_> = (0..args.concurrency)
            .map(|_| {
                s.spawn(|| {
                    loop {
                        let j = next.fetch_add(1, Ordering::Relaxed) as usize;
                        if j >= n {
                            break;
                        }
                        let Some(at) = wait_turn(&t, args.rate, u64::MAX, j, end_ns) else {
                            break;
                        };
                        t.sent(j, at);
                        let (from, to) =
                            (&payers[j % payers.len()], &payers[(j + 1) % payers.len()]);
                        pay_one(&t, j, from, to, &tag);
                    }
                })
            })
            .collect();
        let rest = end_ns.saturating_sub(t.now_ns());
        std::thread::sleep(Duration::from_nanos(rest));
        let cpu1 = cpu_snapshot(&pids, tick);
        for w in workers {
            let _ = w.join();
        }
        t.stop.store(true, Ordering::Relaxed);
        cpu1
    });
    let mut result = summarize(args, target, &t, end_ns, &cpu0, &cpu1, &pids, load_before);
    result.latency_observation = "wallet: POST /v1/wallets/{id}/payments (open loop: due time) to \
        the receipt answering committed (the call waits for finality; pending receipts polled \
        every 20 ms); the nodes' CPU includes the banks' APIs, which run in the same process";
    Ok(result)
}
