//! Commercial banks' operations API and the retail wallet API against a running network: real
//! `intermediary` processes, each serving its APIs beside its validator, customers at different
//! banks paying each other.
//!
//! Must show: onboarding, funding and a payment across banks with a receipt carrying the block
//! height, and the balances equal on every node's own ledger; each tier limit (holding, per
//! payment, daily outflow) refused with its stable code; the holding limit counted across one
//! person's wallets at two banks; a waterfall and a reverse waterfall; idempotent payments; 16
//! concurrent payments through two banks that together overdraw a wallet: exactly the affordable
//! ones commit; authorization between customers, banks and roles; bad input answered 4xx; no
//! personal data in any database, log or file of the network.

use crate::central_bank::{connect, id_of, mint};
use crate::harness::{Network, http_post};
use anyhow::{Context, Result, bail};
use cbdc_ledger::{Leg, SigningKey, TxId, WalletId};
use serde_json::{Value, json};
use std::path::Path;
use std::time::{Duration, Instant};
use wallet_api::client::{ClientError, WalletClient, signed_transfer};
use wallet_api::model::{self, PaymentRequest, PaymentStatus};

fn port_base(test: u16) -> u16 {
    21_000 + test * 600 + (std::process::id() % 20) as u16 * 10
}

/// A client of bank `i`'s API over TLS, trusting only the network's CA (the central bank
/// issued the bank's server certificate).
fn client(net: &Network, i: usize) -> Result<WalletClient> {
    let url =
        format!("https://localhost:{}", cbdc_service::init::bank_api(net.nodes[i].http)?.port());
    let ca = std::fs::read_to_string(net.net_dir().join("central-bank/pki/ca.pem"))?;
    Ok(WalletClient::new(&url, Some(&ca))?)
}

/// A client of bank `i`'s API, logged in as its first operator once the API answers.
#[allow(clippy::disallowed_methods, reason = "end-to-end tests wait on real processes")]
fn operator(net: &Network, i: usize) -> Result<WalletClient> {
    let mut client = client(net, i)?;
    let file = net.net_dir().join(format!("{}/credentials/operator.password", net.nodes[i].name));
    let start = Instant::now();
    loop {
        let password = std::fs::read_to_string(&file).unwrap_or_default();
        if !password.is_empty() && client.login("operator", &password).is_ok() {
            return Ok(client);
        }
        if start.elapsed() > Duration::from_secs(60) {
            bail!("bank {i}'s API did not come up");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Sends a JSON call through `client` and returns the status and the parsed body.
fn call(
    client: &WalletClient,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: Option<Value>,
) -> Result<(u16, Value)> {
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(key) = key {
        headers.push(("Idempotency-Key", key));
    }
    let body = body.map(|b| b.to_string());
    let (status, text) = client.raw(method, path, &headers, body.as_deref().map(str::as_bytes))?;
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Ok((status, value))
}

/// A person's KYC data (the names and ids are what the PII search looks for).
struct Person {
    name: &'static str,
    national_id: &'static str,
    username: &'static str,
    verification: &'static str,
}

/// Onboards `p` at the operator's bank; returns the customer id and the initial password.
fn onboard(op: &WalletClient, p: &Person) -> Result<(String, String)> {
    let (status, body) = call(
        op,
        "POST",
        "/v1/ops/customers",
        None,
        Some(json!({
            "name": p.name,
            "date_of_birth": "1985-04-12",
            "national_id": p.national_id,
            "address": format!("{} Street 1, Capital City", p.name),
            "documents": [{ "kind": "passport", "reference": format!("PP-{}", p.national_id) }],
            "verification": p.verification,
            "username": p.username,
        })),
    )?;
    if status != 201 {
        bail!("onboarding {}: {status} {body}", p.username);
    }
    let text = |k: &str| body[k].as_str().unwrap_or_default().to_string();
    Ok((text("customer_id"), text("initial_password")))
}

/// Opens a wallet for a customer; returns its id.
fn open(op: &WalletClient, customer: &str, body: Value) -> Result<String> {
    let (status, wallet) =
        call(op, "POST", &format!("/v1/ops/customers/{customer}/wallets"), None, Some(body))?;
    if status != 201 {
        bail!("opening a wallet: {status} {wallet}");
    }
    Ok(wallet["wallet_id"].as_str().unwrap_or_default().to_string())
}

/// Funds a wallet from the bank's float; returns the status and body.
fn fund(op: &WalletClient, wallet: &str, amount: u64, key: &str) -> Result<(u16, Value)> {
    call(
        op,
        "POST",
        &format!("/v1/ops/wallets/{wallet}/fund"),
        Some(key),
        Some(json!({ "amount_minor": amount })),
    )
}

fn customer(net: &Network, i: usize, username: &str, password: &str) -> Result<WalletClient> {
    let mut client = client(net, i)?;
    client.login(username, password)?;
    Ok(client)
}

/// Issues `minor` to each bank's float through the central bank's maker-checker workflow.
fn issue(net: &Network, base: u16, banks: &[u32], minor: u64) -> Result<()> {
    let api = connect(net, base)?;
    let (o0, o1) = (api.login("officer-0")?, api.login("officer-1")?);
    for &bank in banks {
        let id = id_of(&api.create(&o0, mint(bank, minor))?)?;
        api.approve(&o0, &id, "officers/officer-0.key")?;
        api.approve(&o1, &id, "officers/officer-1.key")?;
        api.wait_state(&o0, &id, &["committed"])?;
    }
    Ok(())
}

/// The code of a problem answer.
fn code_of(result: &Result<(u16, model::Receipt), ClientError>) -> String {
    match result {
        Err(ClientError::Problem { problem, .. }) => problem.code.clone(),
        Err(other) => format!("error: {other}"),
        Ok((status, r)) => format!("ok {status} {:?}", r.status),
    }
}

fn pay(
    client: &WalletClient,
    from: &str,
    to: &str,
    amount: u64,
    key: &str,
) -> Result<(u16, model::Receipt), ClientError> {
    let request = PaymentRequest {
        to_wallet: to.to_string(),
        amount_minor: amount,
        reference: Some("e2e".into()),
        payment_request_id: None,
    };
    client.pay(from, key, &request)
}

fn balance(client: &WalletClient, wallet: &str) -> Result<u64> {
    Ok(client.balance(wallet)?.wallet.balance_minor)
}

/// The balance of `wallet` once it is `want`: another bank's view of a block arrives a moment
/// after the payer's bank answered (each bank follows the chain through its own node).
#[allow(clippy::disallowed_methods, reason = "end-to-end tests wait on real processes")]
fn balance_becomes(client: &WalletClient, wallet: &str, want: u64) -> Result<u64> {
    let start = Instant::now();
    loop {
        let got = balance(client, wallet)?;
        if got == want || start.elapsed() > Duration::from_secs(20) {
            return Ok(got);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Every file under `dir`, recursively.
fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            files(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

/// The balance of `wallet` on the ledger recovered from node `i`'s own database.
fn ledger_balance(net: &Network, i: usize, wallet: &str) -> Result<u64> {
    let mut store = cbdc_store::Store::open(&net.database_url(i)?)?;
    let ledger = cbdc_store::recover(&mut store, &net.genesis)?;
    let id = WalletId::from_hex(wallet).map_err(anyhow::Error::msg)?;
    Ok(ledger.state().wallet(&id).map(|w| w.balance.minor()).unwrap_or(0))
}

const ALICE: Person = Person {
    name: "Alice Wonderland",
    national_id: "AW-880412-01",
    username: "alice",
    verification: "full",
};
const BOB: Person = Person {
    name: "Bob Marleybank",
    national_id: "BM-770301-02",
    username: "bob",
    verification: "basic",
};
const CAROL: Person = Person {
    name: "Carol Anonyma",
    national_id: "CA-990101-03",
    username: "carol",
    verification: "none",
};
const DAVE: Person = Person {
    name: "Dave Merchantson",
    national_id: "DM-660606-04",
    username: "dave",
    verification: "full",
};

#[test]
#[allow(clippy::disallowed_methods, reason = "end-to-end tests wait on real processes")]
fn retail_payments_across_banks_with_limits_waterfalls_and_idempotency() -> Result<()> {
    let base = port_base(6);
    let mut net = Network::start(4, base, "sqlite")?;
    issue(&net, base, &[1, 2, 3], 100_000_000)?;
    let (op1, op2, op3) = (operator(&net, 1)?, operator(&net, 2)?, operator(&net, 3)?);

    // Onboarding at two banks; custodial wallets; funding from the float.
    let (alice_id, alice_pw) = onboard(&op1, &ALICE)?;
    let (bob_id, bob_pw) = onboard(&op2, &BOB)?;
    let a = open(&op1, &alice_id, json!({ "custody": "custodial" }))?;
    let b = open(&op2, &bob_id, json!({ "custody": "custodial" }))?;
    let (status, funded) = fund(&op1, &a, 500_000, "fund-a-1")?;
    assert_eq!(status, 200, "{funded}");
    assert_eq!(funded["status"], "committed");
    let alice = customer(&net, 1, "alice", &alice_pw)?;
    let bob = customer(&net, 2, "bob", &bob_pw)?;
    assert_eq!(alice.wallets()?.wallets.len(), 1);
    assert_eq!(balance(&alice, &a)?, 500_000);

    // Alice (bank 1) pays Bob (bank 2): final, with the block height on the receipt.
    let (status, receipt) = pay(&alice, &a, &b, 120_000, "pay-1")?;
    assert_eq!((status, receipt.status), (200, PaymentStatus::Committed), "{receipt:?}");
    let height = receipt.height.context("a committed receipt carries its height")?;
    assert!(height > 0 && receipt.timestamp_ms.is_some());
    assert_eq!(balance_becomes(&bob, &b, 120_000)?, 120_000);
    assert_eq!(balance(&alice, &a)?, 380_000);
    assert_eq!(bob.payment(&receipt.tx_id)?.status, PaymentStatus::Committed, "payee sees it");
    let history = bob.history(&b, Some(10), None)?;
    assert_eq!(
        history.entries.first().map(|e| (e.amount_minor, e.direction.as_str())),
        Some((120_000, "credit"))
    );

    // Idempotency: the same key and body answer the same receipt and move money once; the
    // same key with another body is a conflict.
    let again = pay(&alice, &a, &b, 120_000, "pay-1").map_err(anyhow::Error::msg)?;
    assert_eq!((again.1.tx_id.as_str(), again.1.height), (receipt.tx_id.as_str(), receipt.height));
    assert_eq!(balance(&alice, &a)?, 380_000, "a replay moves no money");
    assert_eq!(code_of(&pay(&alice, &a, &b, 120_001, "pay-1")), "idempotency_conflict");
    assert_eq!(balance(&bob, &b)?, 120_000);

    // Tier 0 (anonymous) limits: per payment 50,000, daily outflow 100,000, holding 100,000.
    let (carol_id, carol_pw) = onboard(&op1, &CAROL)?;
    let c1 = open(&op1, &carol_id, json!({ "custody": "custodial" }))?;
    assert_eq!(fund(&op1, &c1, 100_000, "fund-c1-1")?.0, 200);
    let carol = customer(&net, 1, "carol", &carol_pw)?;
    assert_eq!(code_of(&pay(&carol, &c1, &b, 50_001, "c-1")), "payment_limit_exceeded");
    assert_eq!(pay(&carol, &c1, &b, 50_000, "c-2").map_err(anyhow::Error::msg)?.0, 200);
    assert_eq!(pay(&carol, &c1, &b, 50_000, "c-3").map_err(anyhow::Error::msg)?.0, 200);
    assert_eq!(fund(&op1, &c1, 60_000, "fund-c1-2")?.0, 200);
    assert_eq!(code_of(&pay(&carol, &c1, &b, 10_000, "c-4")), "daily_outflow_exceeded");
    let limits = carol.balance(&c1)?.limits.context("retail wallets have limits")?;
    assert_eq!((limits.outflow_today_minor, limits.outflow_remaining_minor), (100_000, 0));
    // Holding: 60,000 held; 50,000 more would pass 100,000.
    let (status, over) = fund(&op1, &c1, 50_000, "fund-c1-3")?;
    assert_eq!((status, over["code"].as_str()), (422, Some("holding_limit_exceeded")), "{over}");

    // The holding limit counts the same person's wallets at two banks.
    let (carol3_id, _) = onboard(&op3, &CAROL)?;
    let c3 = open(&op3, &carol3_id, json!({ "custody": "custodial" }))?;
    let (status, over) = fund(&op3, &c3, 50_000, "fund-c3-1")?;
    assert_eq!((status, over["code"].as_str()), (422, Some("holding_limit_exceeded")), "{over}");
    assert_eq!(fund(&op3, &c3, 40_000, "fund-c3-2")?.0, 200);
    // Bank 1 sees bank 3's funding once its own node has the block.
    let start = Instant::now();
    let limits = loop {
        let limits = carol.balance(&c1)?.limits.context("limits")?;
        if limits.holdings_minor == 100_000 || start.elapsed() > Duration::from_secs(20) {
            break limits;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!((limits.holdings_minor, limits.holding_remaining_minor), (100_000, 0));

    // Waterfall: Carol's bank-1 wallet is linked, so a payment over her holding limit lands
    // and the excess is swept to bank 1's float (her deposit account).
    let (status, linked) = call(
        &op1,
        "PUT",
        &format!("/v1/ops/wallets/{c1}/link"),
        None,
        Some(json!({ "deposit_account": "DE89 3704 0044 0532 0130 00" })),
    )?;
    assert_eq!((status, linked["linked"].as_bool()), (200, Some(true)), "{linked}");
    let (status, r) = pay(&alice, &a, &c1, 30_000, "pay-2").map_err(anyhow::Error::msg)?;
    assert_eq!((status, r.status), (200, PaymentStatus::Committed));
    assert_eq!(balance(&carol, &c1)?, 60_000, "the excess went to the deposit account");
    let kinds: Vec<String> =
        carol.history(&c1, Some(5), None)?.entries.into_iter().map(|e| e.kind).collect();
    assert!(kinds.contains(&"waterfall".to_string()), "{kinds:?}");

    // Reverse waterfall: Alice's linked wallet pays more than it holds; her bank tops it up.
    let (dave_id, dave_pw) = onboard(&op2, &DAVE)?;
    let m = open(&op2, &dave_id, json!({ "custody": "custodial", "class": "merchant" }))?;
    let (status, _) = call(
        &op1,
        "PUT",
        &format!("/v1/ops/wallets/{a}/link"),
        None,
        Some(json!({ "deposit_account": "DE02 1203 0000 0000 2020 51" })),
    )?;
    assert_eq!(status, 200);
    assert_eq!(balance(&alice, &a)?, 350_000);
    let (status, r) = pay(&alice, &a, &m, 400_000, "pay-3").map_err(anyhow::Error::msg)?;
    assert_eq!((status, r.status), (200, PaymentStatus::Committed));
    assert_eq!(balance(&alice, &a)?, 0);
    let dave = customer(&net, 2, "dave", &dave_pw)?;
    assert_eq!(balance_becomes(&dave, &m, 400_000)?, 400_000);
    let kinds: Vec<String> =
        alice.history(&a, Some(5), None)?.entries.into_iter().map(|e| e.kind).collect();
    assert!(kinds.contains(&"reverse_waterfall".to_string()), "{kinds:?}");

    // A merchant's payment request, paid from another bank; the merchant sees it paid.
    let request = dave.create_payment_request(
        &m,
        &model::CreatePaymentRequest { amount_minor: 2_500, reference: "INV-42".into() },
    )?;
    assert!(request.qr_payload.contains("request=") && request.qr_payload.contains(&m));
    assert_eq!(fund(&op2, &b, 10_000, "fund-b-1")?.0, 200);
    let paid = bob.pay(
        &b,
        "pay-request-1",
        &PaymentRequest {
            to_wallet: m.clone(),
            amount_minor: 2_500,
            reference: None,
            payment_request_id: Some(request.payment_request_id.clone()),
        },
    )?;
    assert_eq!(paid.1.tx_id, request.payment_request_id);
    let start = Instant::now();
    while dave.payment_request(&request.payment_request_id)?.status != "paid" {
        if start.elapsed() > Duration::from_secs(20) {
            bail!("the payment request was not marked paid");
        }
        std::thread::sleep(Duration::from_millis(100));
    }

    // Balances agree on every node's own ledger (rebuilt from its database).
    let expected = [
        (a.clone(), balance(&alice, &a)?),
        (b.clone(), balance(&bob, &b)?),
        (c1.clone(), balance(&carol, &c1)?),
        (m.clone(), balance(&dave, &m)?),
    ];
    let top = net.status(1)?.height;
    net.wait(&[0, 1, 2, 3, 4], Duration::from_secs(30), "all nodes past the payments", |s| {
        s.height >= top
    })?;
    net.stop_all();
    for i in 0..net.nodes.len() {
        for (wallet, want) in &expected {
            assert_eq!(ledger_balance(&net, i, wallet)?, *want, "node {i}, wallet {wallet}");
        }
    }

    // No personal data anywhere: databases (ledger and projection tables included), logs,
    // configuration. The national ids are searched in the form onboarding stored them too.
    let mut all = Vec::new();
    files(&net.net_dir(), &mut all)?;
    for person in [&ALICE, &BOB, &CAROL, &DAVE] {
        let normalized: String =
            person.national_id.chars().filter(char::is_ascii_alphanumeric).collect();
        for needle in [person.name, person.national_id, normalized.as_str()] {
            for file in &all {
                let bytes = std::fs::read(file)?;
                let found = bytes.windows(needle.len()).any(|w| w == needle.as_bytes());
                assert!(!found, "{needle:?} found in {}", file.display());
            }
        }
    }
    Ok(())
}

#[test]
#[allow(clippy::disallowed_methods, reason = "end-to-end tests wait on real processes")]
fn concurrent_double_spend_through_two_banks_commits_only_what_is_affordable() -> Result<()> {
    let base = port_base(7);
    let net = Network::start(4, base, "sqlite")?;
    issue(&net, base, &[1, 2], 10_000_000)?;
    let (op1, op2) = (operator(&net, 1)?, operator(&net, 2)?);
    let (erin_id, erin_pw) = onboard(
        &op1,
        &Person { name: "Erin", national_id: "ER1", username: "erin", verification: "full" },
    )?;
    let (frank_id, _) = onboard(
        &op2,
        &Person { name: "Frank", national_id: "FR2", username: "frank", verification: "full" },
    )?;
    // Erin keeps her own key (self-custody).
    let key = SigningKey::from_seed(&cbdc_service::keys::random_bytes::<32>()?)
        .map_err(|_| anyhow::anyhow!("seed"))?;
    let e = open(
        &op1,
        &erin_id,
        json!({ "custody": "self_custody", "public_key": key.public_key().to_hex() }),
    )?;
    let f = open(&op2, &frank_id, json!({ "custody": "custodial" }))?;
    assert_eq!(fund(&op1, &e, 100_000, "fund-e")?.0, 200);
    let erin = customer(&net, 1, "erin", &erin_pw)?;
    let network = erin.network()?;

    // 16 payments of 15,000 from a balance of 100,000: six are affordable. Half go through
    // Erin's bank's wallet API, half straight to bank 2's node; all at once.
    let payee = WalletId::from_hex(&f).map_err(anyhow::Error::msg)?;
    let payer = WalletId::from_hex(&e).map_err(anyhow::Error::msg)?;
    let amount = cbdc_ledger::Amount::from_minor(15_000).map_err(anyhow::Error::msg)?;
    let txs: Vec<_> = (0..16u8)
        .map(|i| {
            let id = TxId([i.wrapping_add(1); 16]);
            signed_transfer(&key, &network, id, Leg { from: payer, to: payee, amount })
        })
        .collect();
    let node2 = net.nodes[2].http;
    std::thread::scope(|scope| {
        for (i, tx) in txs.iter().enumerate() {
            let erin = &erin;
            scope.spawn(move || {
                if i % 2 == 0 {
                    let _ = erin.pay_signed(&format!("double-{i}"), tx);
                } else {
                    let body = json!({ "transaction": tx.transaction }).to_string();
                    let _ = http_post(node2, "/v1/transactions", &body);
                }
            });
        }
    });
    // Nothing can commit after the transactions' expiry height: wait past it.
    let expiry = network.recommended_expiry_height;
    net.wait(&[1, 2], Duration::from_secs(120), "past the payments' expiry", |s| {
        s.height > expiry + 1
    })?;
    let left = balance(&erin, &e)?;
    assert_eq!(left, 100_000 - 6 * 15_000, "exactly the six affordable payments committed");
    let credits = op2.raw("GET", &format!("/v1/ops/wallets/{f}/history?limit=100"), &[], None)?;
    let history: Value = serde_json::from_str(&credits.1)?;
    let count = history["entries"].as_array().map(|e| e.len()).unwrap_or(0);
    assert_eq!(count, 6, "{history}");
    let (_, frank) = call(&op2, "GET", &format!("/v1/ops/wallets/{f}"), None, None)?;
    assert_eq!(frank["wallet"]["balance_minor"], 90_000);
    // The API's own payments all settle (the bank marks the losers failed once they expire).
    let start = Instant::now();
    let mut committed = 0;
    for i in (0..16u8).step_by(2) {
        let id = hex::encode([i.wrapping_add(1); 16]);
        let status = loop {
            let r = erin.payment(&id)?;
            if r.status != PaymentStatus::Pending {
                break r.status;
            }
            if start.elapsed() > Duration::from_secs(30) {
                bail!("payment {i} never settled");
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        committed += usize::from(status == PaymentStatus::Committed);
    }
    assert!(committed <= 6, "{committed} API payments committed");
    Ok(())
}

#[test]
fn authorization_between_customers_banks_and_roles_and_bad_input() -> Result<()> {
    let base = port_base(8);
    let net = Network::start(4, base, "sqlite")?;
    issue(&net, base, &[1], 10_000_000)?;
    let (op1, op2) = (operator(&net, 1)?, operator(&net, 2)?);
    let (alice_id, alice_pw) = onboard(&op1, &ALICE)?;
    let (bob_id, bob_pw) = onboard(&op1, &BOB)?;
    let (carl_id, _) = onboard(&op2, &CAROL)?;
    let a = open(&op1, &alice_id, json!({ "custody": "custodial" }))?;
    let b = open(&op1, &bob_id, json!({ "custody": "custodial" }))?;
    let c = open(&op2, &carl_id, json!({ "custody": "custodial" }))?;
    assert_eq!(fund(&op1, &b, 10_000, "fund-b")?.0, 200);
    let alice = customer(&net, 1, "alice", &alice_pw)?;
    let bob = customer(&net, 1, "bob", &bob_pw)?;

    // Customer A can neither see nor pay from B's wallet, nor see B's payments.
    let (status, body) = call(&alice, "GET", &format!("/v1/wallets/{b}"), None, None)?;
    assert_eq!((status, body["code"].as_str()), (404, Some("not_found")));
    assert_eq!(code_of(&pay(&alice, &b, &a, 100, "steal")), "not_found");
    let (status, _) = call(&alice, "GET", &format!("/v1/wallets/{b}/history"), None, None)?;
    assert_eq!(status, 404);
    let (_, r) = pay(&bob, &b, &a, 100, "bob-1").map_err(anyhow::Error::msg)?;
    assert_eq!(
        call(&alice, "GET", &format!("/v1/payments/{}", r.tx_id), None, None)?.0,
        200,
        "payee"
    );
    let (_, r2) = pay(&bob, &b, &c, 100, "bob-2").map_err(anyhow::Error::msg)?;
    assert_eq!(call(&alice, "GET", &format!("/v1/payments/{}", r2.tx_id), None, None)?.0, 404);
    assert_eq!(balance(&bob, &b)?, 9_800);

    // Bank X cannot see or administer bank Y's customers: Y's token is not valid at X, and
    // X's own operator finds no such customer or wallet.
    let mut cross = client(&net, 1)?;
    cross.set_token(op2.token().unwrap_or_default());
    assert_eq!(call(&cross, "GET", "/v1/ops/customers", None, None)?.0, 401);
    assert_eq!(call(&cross, "POST", &format!("/v1/ops/wallets/{a}/freeze"), None, None)?.0, 401);
    assert_eq!(call(&op1, "GET", &format!("/v1/ops/customers/{carl_id}"), None, None)?.0, 404);
    assert_eq!(call(&op1, "POST", &format!("/v1/ops/wallets/{c}/freeze"), None, None)?.0, 404);

    // Every endpoint against every role and no token.
    let wallet_routes = [
        ("GET", "/v1/network".to_string()),
        ("GET", "/v1/wallets".to_string()),
        ("POST", "/v1/wallets".to_string()),
        ("GET", format!("/v1/wallets/{a}")),
        ("POST", format!("/v1/wallets/{a}/payments")),
        ("POST", "/v1/payments".to_string()),
        ("GET", format!("/v1/payments/{}", r.tx_id)),
        ("GET", format!("/v1/wallets/{a}/history")),
        ("POST", format!("/v1/wallets/{a}/payment-requests")),
        ("GET", format!("/v1/payment-requests/{}", r.tx_id)),
    ];
    let ops_routes = [
        ("POST", "/v1/ops/customers".to_string()),
        ("GET", "/v1/ops/customers".to_string()),
        ("GET", format!("/v1/ops/customers/{alice_id}")),
        ("POST", format!("/v1/ops/customers/{alice_id}/tier")),
        ("POST", format!("/v1/ops/customers/{alice_id}/wallets")),
        ("GET", format!("/v1/ops/wallets/{a}")),
        ("GET", format!("/v1/ops/wallets/{a}/history")),
        ("POST", format!("/v1/ops/wallets/{a}/freeze")),
        ("POST", format!("/v1/ops/wallets/{a}/unfreeze")),
        ("POST", format!("/v1/ops/wallets/{a}/close")),
        ("POST", format!("/v1/ops/wallets/{a}/fund")),
        ("POST", format!("/v1/ops/wallets/{a}/defund")),
        ("PUT", format!("/v1/ops/wallets/{a}/link")),
        ("DELETE", format!("/v1/ops/wallets/{a}/link")),
        ("GET", format!("/v1/ops/payments/{}", r.tx_id)),
        ("GET", "/v1/ops/float".to_string()),
    ];
    let anonymous = client(&net, 1)?;
    for (method, path) in wallet_routes.iter().chain(ops_routes.iter()) {
        let (status, body) = call(&anonymous, method, path, Some("k"), Some(json!({})))?;
        assert_eq!(status, 401, "{method} {path} without a token: {body}");
    }
    for (method, path) in &ops_routes {
        let (status, body) = call(&alice, method, path, Some("k"), Some(json!({})))?;
        assert_eq!(status, 403, "{method} {path} as a customer: {body}");
    }
    for (method, path) in &wallet_routes {
        let (status, body) = call(&op1, method, path, Some("k"), Some(json!({})))?;
        assert_eq!(status, 403, "{method} {path} as an operator: {body}");
    }

    // Bad input: 4xx with a stable code, never 5xx; the service keeps serving.
    let pay_path = format!("/v1/wallets/{a}/payments");
    let bodies: Vec<(String, &str)> = vec![
        (format!(r#"{{"to_wallet":"{b}","amount_minor":-5}}"#), "invalid_body"),
        (format!(r#"{{"to_wallet":"{b}","amount_minor":0}}"#), "invalid_amount"),
        (format!(r#"{{"to_wallet":"{b}","amount_minor":1.5}}"#), "invalid_body"),
        (format!(r#"{{"to_wallet":"{b}","amount_minor":18446744073709551616}}"#), "invalid_body"),
        (format!(r#"{{"to_wallet":"{b}","amount_minor":9223372036854775808}}"#), "invalid_amount"),
        (format!(r#"{{"to_wallet":"{b}","amount_minor":5,"memo":"x"}}"#), "unknown_field"),
        (r#"{"to_wallet":"zz","amount_minor":5}"#.to_string(), "invalid_id"),
        ("{not json".to_string(), "malformed_json"),
    ];
    for (i, (body, code)) in bodies.iter().enumerate() {
        let key = format!("bad-{i}");
        let (status, text) = alice.raw(
            "POST",
            &pay_path,
            &[("Content-Type", "application/json"), ("Idempotency-Key", &key)],
            Some(body.as_bytes()),
        )?;
        let problem: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        assert!((400..500).contains(&status), "{body}: {status} {text}");
        assert_eq!(problem["code"].as_str(), Some(*code), "{body}: {text}");
    }
    let huge = vec![b'x'; 10 * 1024 * 1024];
    let (status, _) = alice.raw(
        "POST",
        &pay_path,
        &[("Content-Type", "application/json"), ("Idempotency-Key", "huge")],
        Some(&huge),
    )?;
    assert_eq!(status, 413);
    let (status, body) =
        call(&alice, "GET", &format!("/v1/wallets/{a}/history?limit=1000000"), None, None)?;
    assert_eq!((status, body["code"].as_str()), (400, Some("invalid_page_size")));
    let (status, body) = call(&op1, "GET", "/v1/ops/customers?limit=1000000", None, None)?;
    assert_eq!((status, body["code"].as_str()), (400, Some("invalid_page_size")));
    let (status, body) = call(
        &op1,
        "POST",
        "/v1/ops/customers",
        None,
        Some(json!({ "name": "X", "date_of_birth": "31/12/1990", "national_id": "N1",
                     "address": "A", "verification": "full", "username": "x" })),
    )?;
    assert_eq!((status, body["code"].as_str()), (400, Some("invalid_kyc")));
    let (status, body) = call(
        &op1,
        "POST",
        &format!("/v1/ops/wallets/{a}/fund"),
        Some("f-neg"),
        Some(json!({ "amount_minor": -1 })),
    )?;
    assert!((400..500).contains(&status), "{body}");
    // Still serving, and nothing accepted was lost.
    assert_eq!(call(&anonymous, "GET", "/health", None, None)?.0, 200);
    assert_eq!(balance(&bob, &b)?, 9_800);

    // Administration: a frozen wallet cannot pay; a tier upgrade raises the limits; a wallet
    // closes only once defunded to zero.
    let (status, frozen) = call(&op1, "POST", &format!("/v1/ops/wallets/{b}/freeze"), None, None)?;
    assert_eq!((status, frozen["status"].as_str()), (200, Some("frozen")), "{frozen}");
    assert_eq!(code_of(&pay(&bob, &b, &a, 100, "bob-frozen")), "wallet_frozen");
    let (status, _) = call(&op1, "POST", &format!("/v1/ops/wallets/{b}/unfreeze"), None, None)?;
    assert_eq!(status, 200);
    let before = bob.balance(&b)?.limits.context("limits")?.holding_limit_minor;
    let (status, tier) = call(
        &op1,
        "POST",
        &format!("/v1/ops/customers/{bob_id}/tier"),
        None,
        Some(json!({ "tier": 2 })),
    )?;
    assert_eq!((status, tier["tier"].as_u64()), (200, Some(2)), "{tier}");
    let after = bob.balance(&b)?;
    assert_eq!(after.wallet.tier, 2);
    assert!(after.limits.context("limits")?.holding_limit_minor > before);
    let (status, body) = call(
        &op1,
        "POST",
        &format!("/v1/ops/customers/{bob_id}/tier"),
        None,
        Some(json!({ "tier": 7 })),
    )?;
    assert_eq!((status, body["code"].as_str()), (422, Some("invalid_tier")));
    let (status, body) = call(&op1, "POST", &format!("/v1/ops/wallets/{b}/close"), None, None)?;
    assert_eq!((status, body["code"].as_str()), (422, Some("balance_not_zero")), "{body}");
    let (status, body) = call(
        &op1,
        "POST",
        &format!("/v1/ops/wallets/{b}/defund"),
        Some("defund-b"),
        Some(json!({ "amount_minor": 9_800 })),
    )?;
    assert_eq!((status, body["status"].as_str()), (200, Some("committed")), "{body}");
    let (status, closed) = call(&op1, "POST", &format!("/v1/ops/wallets/{b}/close"), None, None)?;
    assert_eq!((status, closed["status"].as_str()), (200, Some("closed")), "{closed}");
    Ok(())
}

/// Runs the `cbdc-wallet` binary against bank `i`'s API; returns its JSON output.
fn wallet_cli(net: &Network, i: usize, dir: &Path, args: &[&str]) -> Result<Value> {
    let api =
        format!("https://localhost:{}", cbdc_service::init::bank_api(net.nodes[i].http)?.port());
    let output = std::process::Command::new(net.binary_path("cbdc-wallet"))
        .args(args)
        .env("CBDC_WALLET_API", api)
        .env("CBDC_WALLET_CA_FILE", net.net_dir().join("central-bank/pki/ca.pem"))
        .env("CBDC_WALLET_TOKEN_FILE", dir.join("token"))
        .env("CBDC_WALLET_PASSWORD", std::fs::read_to_string(dir.join("password"))?)
        .output()
        .context("running cbdc-wallet (built by `cargo build -p wallet-api`)")?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        bail!("cbdc-wallet {args:?}: {}\n{stdout}", String::from_utf8_lossy(&output.stderr));
    }
    Ok(serde_json::from_str(&stdout).unwrap_or(Value::String(stdout)))
}

#[test]
fn the_command_line_wallet_pays_with_a_self_custody_key() -> Result<()> {
    let base = port_base(12);
    let net = Network::start(4, base, "sqlite")?;
    issue(&net, base, &[1], 10_000_000)?;
    let op1 = operator(&net, 1)?;
    let (_gina_id, gina_pw) = onboard(
        &op1,
        &Person { name: "Gina", national_id: "GI7", username: "gina", verification: "full" },
    )?;
    let (hank_id, hank_pw) = onboard(
        &op1,
        &Person { name: "Hank", national_id: "HA8", username: "hank", verification: "full" },
    )?;
    let h = open(&op1, &hank_id, json!({ "custody": "custodial" }))?;
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("password"), &gina_pw)?;
    let key_file = dir.path().join("gina.key");
    let key_arg = key_file.to_string_lossy().into_owned();

    // Gina's key never leaves her machine: the bank registers only its public key.
    wallet_cli(&net, 1, dir.path(), &["keygen", "--key-file", &key_arg])?;
    wallet_cli(&net, 1, dir.path(), &["login", "--username", "gina"])?;
    let registered = wallet_cli(&net, 1, dir.path(), &["register", "--key-file", &key_arg])?;
    let g = registered["wallet_id"].as_str().context("the wallet id")?.to_string();
    assert_eq!(registered["custody"], "self_custody", "{registered}");
    assert_eq!(fund(&op1, &g, 50_000, "fund-g")?.0, 200);

    let receipt = wallet_cli(
        &net,
        1,
        dir.path(),
        &["pay", "--key-file", &key_arg, "--from", &g, "--to", &h, "--amount", "12345"],
    )?;
    assert_eq!(receipt["status"], "committed", "{receipt}");
    assert!(receipt["height"].as_u64().is_some_and(|h| h > 0), "{receipt}");
    let balance = wallet_cli(&net, 1, dir.path(), &["balance", "--wallet", &g])?;
    assert_eq!(balance["wallet"]["balance_minor"], 37_655, "{balance}");
    let history = wallet_cli(&net, 1, dir.path(), &["history", "--wallet", &g])?;
    let first = &history["entries"][0];
    assert_eq!(
        (first["direction"].as_str(), first["amount_minor"].as_u64()),
        (Some("debit"), Some(12_345))
    );
    let hank = customer(&net, 1, "hank", &hank_pw)?;
    assert_eq!(balance_becomes(&hank, &h, 12_345)?, 12_345);
    Ok(())
}
