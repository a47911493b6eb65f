//! Every node's `/metrics` against a running network: real processes, a mint through the
//! central bank's maker-checker API, wallets opened and paid over the nodes' HTTP endpoints.
//!
//! Must show: each node's page is strict Prometheus text (HELP and TYPE once per family and
//! before its samples, every sample of a typed family, every value a number); it carries the
//! height, the finality latency histogram, transactions by kind and outcome, rejections by code,
//! payments, waterfalls and reverse waterfalls with their values, the mempool and its capacity,
//! connected peers, validators' last signed heights, the outstanding supply, and the HTTP
//! latencies of the process's servers by route pattern (never a raw path) and status; the
//! outstanding supply equals what the central bank API reports at the same height.

use crate::central_bank::{connect, id_of, mint};
use crate::harness::Network;
use anyhow::{Context, Result, bail};
use cbdc_ledger::testkit::{key, wallet_id};
use cbdc_ledger::{
    Amount, BankId, HolderRef, KycTier, Leg, SignedTransaction, TxBody, TxId, TxKind, WalletClass,
};
use cbdc_service::devnet::http_get;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

fn port_base(test: u16) -> u16 {
    21_000 + test * 600 + (std::process::id() % 20) as u16 * 10
}

/// A sample line: metric name, labels, value.
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn parse_labels(text: &str) -> Result<BTreeMap<String, String>> {
    let mut labels = BTreeMap::new();
    let mut rest = text;
    while !rest.is_empty() {
        let (name, after) = rest.split_once("=\"").context(format!("bad labels {text:?}"))?;
        if !valid_name(name) || name.contains(':') {
            bail!("bad label name {name:?}");
        }
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c @ ('\\' | '"'))) => value.push(c),
                    _ => bail!("bad escape in {text:?}"),
                },
                Some((i, '"')) => break i,
                Some((_, c)) => value.push(c),
                None => bail!("unterminated label value in {text:?}"),
            }
        };
        if labels.insert(name.to_string(), value).is_some() {
            bail!("label {name} twice in {text:?}");
        }
        rest = &after[end + 1..];
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
    Ok(labels)
}

/// Parses Prometheus text format 0.0.4 strictly.
fn parse(text: &str) -> Result<Vec<Sample>> {
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    let mut helps = BTreeSet::new();
    let mut finished = BTreeSet::new();
    let mut current: Option<String> = None;
    let mut samples = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap_or_default();
            if !valid_name(name) || !helps.insert(name.to_string()) {
                bail!("bad or repeated HELP: {line}");
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').context(format!("bad TYPE: {line}"))?;
            let known = ["counter", "gauge", "histogram", "summary", "untyped"];
            if !valid_name(name) || !known.contains(&kind) || types.contains_key(name) {
                bail!("bad or repeated TYPE: {line}");
            }
            if finished.contains(name) || current.as_deref() == Some(name) {
                bail!("TYPE after its samples: {line}");
            }
            types.insert(name.to_string(), kind.to_string());
            continue;
        }
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').context(format!("no value: {line}"))?;
        let value: f64 = value.parse().context(format!("bad value: {line}"))?;
        let (name, labels) = match series.split_once('{') {
            Some((name, labels)) => {
                let labels = labels.strip_suffix('}').context(format!("bad labels: {line}"))?;
                (name, parse_labels(labels)?)
            }
            None => (series, BTreeMap::new()),
        };
        if !valid_name(name) {
            bail!("bad metric name: {line}");
        }
        let family = if types.contains_key(name) {
            name.to_string()
        } else {
            let base = ["_bucket", "_sum", "_count"]
                .into_iter()
                .find_map(|suffix| name.strip_suffix(suffix))
                .filter(|base| types.get(*base).is_some_and(|t| t == "histogram" || t == "summary"))
                .context(format!("sample without a TYPE: {line}"))?;
            if name.ends_with("_bucket") && !labels.contains_key("le") {
                bail!("bucket without le: {line}");
            }
            base.to_string()
        };
        if current.as_deref() != Some(family.as_str()) {
            if finished.contains(&family) {
                bail!("the samples of {family} are not together");
            }
            if let Some(done) = current.replace(family.clone()) {
                finished.insert(done);
            }
        }
        if !helps.contains(&family) {
            bail!("{family} has no HELP");
        }
        samples.push(Sample { name: name.to_string(), labels, value });
    }
    Ok(samples)
}

/// A node's parsed metrics page.
struct Page {
    samples: Vec<Sample>,
    text: String,
}

impl Page {
    fn fetch(net: &Network, i: usize) -> Result<Page> {
        let (code, text) = http_get(net.nodes[i].http, "/metrics")?;
        if code != 200 {
            bail!("/metrics of node {i} answered {code}");
        }
        let samples = parse(&text).with_context(|| format!("node {i}'s /metrics:\n{text}"))?;
        Ok(Page { samples, text })
    }

    /// The value of the sample `name` whose labels include `labels`.
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.samples
            .iter()
            .find(|s| {
                s.name == name
                    && labels.iter().all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|s| s.value)
    }

    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        match self.get(name, labels) {
            Some(v) => v,
            None => panic!("no {name} with {labels:?} in\n{}", self.text),
        }
    }
}

fn amount(minor: u64) -> Amount {
    Amount::from_minor(minor).expect("amount in range")
}

/// Signs the scenario's transactions (ids from a counter, all expiring at `exp`).
struct Txs<'a> {
    net: &'a Network,
    next: u64,
    exp: u64,
}

impl Txs<'_> {
    fn sign(&mut self, kind: TxKind, keys: &[&cbdc_ledger::SigningKey]) -> SignedTransaction {
        self.next += 1;
        let mut id = [0x6d; 16];
        id[8..].copy_from_slice(&self.next.to_be_bytes());
        let body = TxBody { id: TxId(id), expiry_height: self.exp, kind };
        body.sign(&self.net.genesis.chain_id, keys)
    }

    /// Opens a tier-2 retail wallet at bank 1.
    fn open(&mut self, label: &str, linked: bool) -> SignedTransaction {
        let admin = self.net.key("bank-1/admin.key");
        let kind = TxKind::OpenWallet {
            bank: BankId(1),
            wallet: wallet_id(label),
            public_key: key(label).public_key(),
            class: WalletClass::Retail,
            tier: KycTier(2),
            holder: HolderRef(cbdc_ledger::crypto::hash_parts(b"e2e-holder", &[label.as_bytes()])),
            linked,
        };
        self.sign(kind, &[&admin])
    }

    fn fund(&mut self, label: &str, minor: u64) -> SignedTransaction {
        let float_key = self.net.key("bank-1/float.key");
        let float = self.net.genesis.banks[1].float_wallet;
        let legs = vec![Leg { from: float, to: wallet_id(label), amount: amount(minor) }];
        self.sign(TxKind::Transfer { legs }, &[&float_key])
    }

    fn pay(&mut self, from: &str, to: &str, minor: u64) -> SignedTransaction {
        let legs = vec![Leg { from: wallet_id(from), to: wallet_id(to), amount: amount(minor) }];
        self.sign(TxKind::Transfer { legs }, &[&key(from)])
    }
}

/// Submits `txs` to nodes in turn and waits until node 0 has finalized `total` transactions.
fn step(net: &Network, txs: &[SignedTransaction], total: u64, what: &str) -> Result<()> {
    for (i, tx) in txs.iter().enumerate() {
        net.submit(i % net.nodes.len(), tx)?;
    }
    net.wait(&[0], Duration::from_secs(60), what, |s| s.finalized_transactions >= total)
}

#[allow(clippy::disallowed_methods, reason = "end-to-end tests wait on real processes")]
fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> Result<bool>) -> Result<()> {
    let start = Instant::now();
    while !cond()? {
        if start.elapsed() > limit {
            bail!("timed out waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    Ok(())
}

#[test]
fn every_node_serves_strict_prometheus_text_with_the_house_metrics() -> Result<()> {
    let base = port_base(9);
    let net = Network::start(4, base, "sqlite")?;
    let api = connect(&net, base)?;
    let (o0, o1) = (api.login("officer-0")?, api.login("officer-1")?);
    let regulator = api.login("regulator")?;

    // Issuance through the central bank API (its requests are timed by the same process).
    let id = id_of(&api.create(&o0, mint(1, 2_000_000))?)?;
    api.approve(&o0, &id, "officers/officer-0.key")?;
    api.approve(&o1, &id, "officers/officer-1.key")?;
    api.wait_state(&o0, &id, &["committed"])?;

    // alice is linked to a deposit account (waterfalls both ways), bob and carol are not.
    // Tier 2 holds at most 1,000,000.
    let exp = net.status(0)?.height + 5_000;
    let mut t = Txs { net: &net, next: 0, exp };
    let opens = [t.open("m-alice", true), t.open("m-bob", false), t.open("m-carol", false)];
    step(&net, &opens, 4, "wallets opened")?;
    step(&net, &[t.fund("m-alice", 950_000), t.fund("m-bob", 100_000)], 6, "funding")?;
    // 50,000 of this payment is over alice's holding limit: swept to bank 1 (waterfall).
    step(&net, &[t.pay("m-bob", "m-alice", 100_000)], 7, "a waterfall")?;
    step(&net, &[t.pay("m-alice", "m-bob", 300_000)], 8, "a payment")?;
    // alice holds 700,000: bank 1 tops her up by 50,000 (reverse waterfall).
    step(&net, &[t.pay("m-alice", "m-carol", 750_000)], 9, "a reverse waterfall")?;
    // bob holds 300,000 and is not linked: proposals reject and drop this one.
    net.submit(2, &t.pay("m-bob", "m-carol", 900_000))?;
    let rejected = [("code", "insufficient_funds")];
    wait_for("the overdraft's rejection", Duration::from_secs(60), || {
        let mut sum = 0.0;
        for i in 0..net.nodes.len() {
            sum += Page::fetch(&net, i)?
                .get("cbdc_transactions_rejected_total", &rejected)
                .unwrap_or(0.0);
        }
        Ok(sum >= 1.0)
    })?;

    // A call to bank 1's API (with a wallet id in the path, which must not become a label).
    let url =
        format!("https://localhost:{}", cbdc_service::init::bank_api(net.nodes[1].http)?.port());
    let ca = std::fs::read_to_string(net.net_dir().join("central-bank/pki/ca.pem"))?;
    let bank = wallet_api::client::WalletClient::new(&url, Some(&ca))?;
    wait_for("bank 1's API", Duration::from_secs(60), || {
        Ok(bank.raw("GET", "/health", &[], None).map(|(s, _)| s).unwrap_or(0) == 200)
    })?;
    let secret_path = "/v1/wallets/00112233445566778899aabbccddeeff";
    let (status, _) = bank.raw("GET", secret_path, &[], None)?;
    assert_eq!(status, 401, "no token");

    // The supply the central bank API reports, and the height it reports it at.
    let cb_addr = cbdc_service::init::central_bank_api(base + 50)?;
    let cb = central_bank::client::ApiClient::new(cb_addr, "localhost", &ca, None)?;
    let answer = cb.call("GET", "/v1/supply", Some(&regulator), None)?;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let supply = answer.json()?;
    let (height, outstanding) = (supply["height"].as_u64(), supply["outstanding_minor"].as_u64());
    let (height, outstanding) = (height.context("height")?, outstanding.context("supply")?);
    assert_eq!(outstanding, 2_000_000);
    net.wait(&[0, 1, 2, 3, 4], Duration::from_secs(60), "every node at the API's height", |s| {
        s.height >= height
    })?;

    let mut signers = BTreeSet::new();
    for i in 0..net.nodes.len() {
        let page = Page::fetch(&net, i)?;
        check_node_page(&page, i, height, outstanding)?;
        for s in page.samples.iter().filter(|s| s.name == "cbdc_validator_last_signed_height") {
            signers.insert(s.labels.get("validator").cloned().unwrap_or_default());
        }
        assert!(!page.text.contains("00112233445566778899aabbccddeeff"), "a raw path as label");
    }
    assert!(signers.len() >= 4, "a quorum of validators signs certificates: {signers:?}");

    // Peers: every node eventually connects to the other four.
    wait_for("every node connected to its four peers", Duration::from_secs(60), || {
        let mut all = true;
        for i in 0..net.nodes.len() {
            all &= Page::fetch(&net, i)?.get("cbdc_peers_connected", &[]) == Some(4.0);
        }
        Ok(all)
    })?;

    // The HTTP latencies of each process's servers, by route pattern and status.
    let http = "cbdc_http_request_duration_seconds_count";
    let count = |page: &Page, labels: &[(&str, &str)]| page.get(http, labels).unwrap_or(0.0);
    let central = Page::fetch(&net, 0)?;
    let approvals = [
        ("service", "central_bank_api"),
        ("route", "/v1/requests/{id}/approvals"),
        ("method", "POST"),
        ("status", "200"),
    ];
    assert!(count(&central, &approvals) >= 2.0, "{}", central.text);
    let supply_call = [("service", "central_bank_api"), ("route", "/v1/supply"), ("status", "200")];
    assert!(count(&central, &supply_call) >= 1.0);
    let bank_page = Page::fetch(&net, 1)?;
    let wallet = [("service", "bank_api"), ("route", "/v1/wallets/{wallet_id}"), ("status", "401")];
    assert!(count(&bank_page, &wallet) >= 1.0, "{}", bank_page.text);
    let mut submitted = 0.0;
    for i in 0..net.nodes.len() {
        let page = Page::fetch(&net, i)?;
        let health = [("service", "node"), ("route", "/health"), ("method", "GET")];
        assert!(count(&page, &[health[0], health[1], health[2], ("status", "200")]) >= 1.0);
        let submit = [("service", "node"), ("route", "/v1/transactions"), ("status", "202")];
        submitted += count(&page, &submit);
        let bucket = [("service", "node"), ("route", "/health"), ("le", "+Inf")];
        assert!(page.get("cbdc_http_request_duration_seconds_bucket", &bucket).is_some());
    }
    assert!(submitted >= 9.0, "every accepted submission is timed: {submitted}");
    Ok(())
}

/// One node's page after the scenario: the house metrics with the scenario's figures.
fn check_node_page(page: &Page, i: usize, height: u64, outstanding: u64) -> Result<()> {
    let at = page.value("cbdc_block_height", &[]);
    assert!(at >= height as f64, "node {i} at {at}, the API at {height}");
    // Nothing changed the supply after the mint: the same at the API's height and at this one.
    assert_eq!(page.value("cbdc_supply_outstanding_minor", &[]), outstanding as f64, "node {i}");
    assert!(page.value("cbdc_supply_cap_minor", &[]) >= outstanding as f64);
    assert!(page.get("cbdc_mempool_transactions", &[]).is_some());
    assert_eq!(page.value("cbdc_mempool_capacity_transactions", &[]), 200_000.0);
    let latency = "cbdc_finality_latency_seconds";
    // Every block from the genesis was finalized by this process: one latency per block.
    let blocks = page.value(&format!("{latency}_count"), &[]);
    assert_eq!(blocks, at, "node {i}: one finality latency per block");
    assert_eq!(page.value(&format!("{latency}_bucket"), &[("le", "+Inf")]), blocks);
    assert!(page.get(&format!("{latency}_bucket"), &[("le", "0.025")]).is_some());
    assert!(page.get(&format!("{latency}_sum"), &[]).is_some());
    let kind = |kind, outcome| {
        page.value("cbdc_transactions_total", &[("kind", kind), ("outcome", outcome)])
    };
    assert_eq!(kind("mint", "committed"), 1.0, "node {i}");
    assert_eq!(kind("open_wallet", "committed"), 3.0, "node {i}");
    assert_eq!(kind("transfer", "committed"), 5.0, "node {i}");
    assert!(
        page.get("cbdc_transactions_total", &[("kind", "burn"), ("outcome", "rejected")]).is_some()
    );
    assert!(
        page.get("cbdc_transactions_rejected_total", &[("code", "holding_limit_exceeded")])
            .is_some()
    );
    assert_eq!(page.value("cbdc_payments_total", &[]), 5.0, "node {i}");
    let paid = 950_000.0 + 100_000.0 + 100_000.0 + 300_000.0 + 750_000.0;
    assert_eq!(page.value("cbdc_payments_value_minor_total", &[]), paid);
    assert_eq!(page.value("cbdc_waterfalls_total", &[]), 1.0, "node {i}");
    assert_eq!(page.value("cbdc_waterfall_value_minor_total", &[]), 50_000.0);
    assert_eq!(page.value("cbdc_reverse_waterfalls_total", &[]), 1.0, "node {i}");
    assert_eq!(page.value("cbdc_reverse_waterfall_value_minor_total", &[]), 50_000.0);
    assert_eq!(page.value("cbdc_equivocation_evidence_total", &[]), 0.0);
    assert!(page.get("cbdc_peers_connected", &[]).is_some());
    assert!(page.samples.iter().any(|s| s.name == "cbdc_validator_last_signed_height"));
    assert!(page.samples.iter().all(|s| s.labels.get("node").is_none_or(|n| !n.is_empty())));
    Ok(())
}
