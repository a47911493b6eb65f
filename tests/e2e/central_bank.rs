//! The central bank's maker-checker workflow against a running network: real processes, the
//! API over TLS with the CA's certificate, bearer tokens, officers signing on their side.
//!
//! Must show: a mint with k approvals from distinct officers commits and the new supply is on
//! every node; the same officer approving twice counts once; k-1 approvals mint nothing; an
//! approval by a key that is not an officer's is refused; mints over the supply cap and over a
//! bank's quota are rejected with the ledger's code in the request; a burn (redemption) lowers
//! supply on every node; a bank's client certificate authenticates it (mutual TLS); the audit
//! log verifies.

use crate::harness::Network;
use anyhow::{Result, bail};
use cbdc_ledger::{Amount, Leg, TxBody, TxId, TxKind};
use central_bank::client::{Answer, ApiClient};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

fn port_base(test: u16) -> u16 {
    21_000 + test * 600 + (std::process::id() % 20) as u16 * 10
}

/// A client of the network's central bank API, once it answers.
#[allow(clippy::disallowed_methods, reason = "end-to-end tests wait on real processes")]
pub(crate) fn connect(net: &Network, base: u16) -> Result<Api<'_>> {
    let addr = cbdc_service::init::central_bank_api(base + 50)?;
    let ca = std::fs::read_to_string(net.net_dir().join("central-bank/pki/ca.pem"))?;
    let api = Api { net, client: ApiClient::new(addr, "localhost", &ca, None)?, addr, ca };
    let start = Instant::now();
    while api.client.call("GET", "/health", None, None).map(|a| a.status).unwrap_or(0) != 200 {
        if start.elapsed() > Duration::from_secs(60) {
            bail!("the central bank API did not come up");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(api)
}

pub(crate) struct Api<'a> {
    net: &'a Network,
    client: ApiClient,
    addr: std::net::SocketAddr,
    ca: String,
}

impl Api<'_> {
    fn password(&self, user: &str) -> Result<String> {
        Ok(std::fs::read_to_string(
            self.net.net_dir().join(format!("credentials/{user}.password")),
        )?)
    }

    pub(crate) fn login(&self, user: &str) -> Result<String> {
        let a = self.client.call(
            "POST",
            "/v1/auth/token",
            None,
            Some(&json!({ "username": user, "password": self.password(user)? })),
        )?;
        if a.status != 200 {
            bail!("login {user}: {} {}", a.status, a.body);
        }
        Ok(a.json()?["access_token"].as_str().unwrap_or_default().to_string())
    }

    pub(crate) fn create(&self, token: &str, request: Value) -> Result<Answer> {
        self.client.call("POST", "/v1/requests", Some(token), Some(&request))
    }

    fn get(&self, token: &str, id: &str) -> Result<Value> {
        let a = self.client.call("GET", &format!("/v1/requests/{id}"), Some(token), None)?;
        if a.status != 200 {
            bail!("get {id}: {} {}", a.status, a.body);
        }
        a.json()
    }

    /// Signs the request's payload with `key_file` (relative to the network directory) and
    /// posts the approval as the token's user.
    pub(crate) fn approve(&self, token: &str, id: &str, key_file: &str) -> Result<Answer> {
        let view = self.get(token, id)?;
        let payload = view["signing_payload"].as_str().unwrap_or_default().to_string();
        let (officer_key, signature) =
            central_bank::officer::sign(&self.net.net_dir().join(key_file), &payload)?;
        self.client.call(
            "POST",
            &format!("/v1/requests/{id}/approvals"),
            Some(token),
            Some(&json!({ "officer_key": officer_key, "signature": signature })),
        )
    }

    #[allow(clippy::disallowed_methods, reason = "end-to-end tests wait on real processes")]
    pub(crate) fn wait_state(&self, token: &str, id: &str, want: &[&str]) -> Result<Value> {
        let start = Instant::now();
        loop {
            let v = self.get(token, id)?;
            if want.contains(&v["state"].as_str().unwrap_or_default()) {
                return Ok(v);
            }
            if start.elapsed() > Duration::from_secs(60) {
                bail!("request {id} stayed {}; wanted {want:?}", v["state"]);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

pub(crate) fn mint(bank: u32, minor: u64) -> Value {
    json!({ "kind": "mint", "bank": bank, "amount_minor": minor, "reason": "e2e issuance" })
}

pub(crate) fn id_of(a: &Answer) -> Result<String> {
    if a.status != 201 {
        bail!("create: {} {}", a.status, a.body);
    }
    Ok(a.json()?["id"].as_str().unwrap_or_default().to_string())
}

#[test]
#[allow(clippy::disallowed_methods, reason = "end-to-end tests wait on real processes")]
fn maker_checker_issuance_supply_control_and_audit() -> Result<()> {
    let net = Network::start(4, port_base(3), "sqlite")?;
    let api = connect(&net, port_base(3))?;
    let (addr, ca) = (api.addr, api.ca.clone());
    let (o0, o1) = (api.login("officer-0")?, api.login("officer-1")?);
    let (admin, regulator) = (api.login("admin")?, api.login("regulator")?);

    // Authentication and roles.
    assert_eq!(api.client.call("GET", "/v1/supply", None, None)?.status, 401);
    assert_eq!(api.client.call("GET", "/v1/supply", Some("not.a.token"), None)?.status, 401);
    let wrong = api.client.call(
        "POST",
        "/v1/auth/token",
        None,
        Some(&json!({ "username": "officer-0", "password": "wrong" })),
    )?;
    assert_eq!(wrong.status, 401, "{}", wrong.body);
    let empty = api.client.call(
        "POST",
        "/v1/auth/token",
        None,
        Some(&json!({ "username": "", "password": "x" })),
    )?;
    assert_eq!(empty.status, 422, "{}", empty.body);
    let junk = api.create(&o0, json!({ "kind": "print_money", "reason": "x" }))?;
    assert_eq!((junk.status, junk.json()?["code"].clone()), (422, json!("invalid_body")));
    assert_eq!(api.create(&regulator, mint(1, 5))?.status, 403, "regulators change nothing");
    assert_eq!(api.create(&admin, mint(1, 5))?.status, 403, "administrators do not mint");
    let bad =
        api.create(&o0, json!({ "kind": "mint", "bank": 1, "amount_minor": 0, "reason": "x" }))?;
    assert_eq!((bad.status, bad.json()?["code"].clone()), (422, json!("invalid_request")));

    // Mint: the same officer twice counts once; a non-officer key is refused.
    let id = id_of(&api.create(&o0, mint(1, 1_000_000))?)?;
    let a = api.approve(&o0, &id, "officers/officer-0.key")?;
    assert_eq!((a.status, a.json()?["state"].clone()), (200, json!("pending")), "{}", a.body);
    let again = api.approve(&o0, &id, "officers/officer-0.key")?;
    assert_eq!(again.status, 200, "{}", again.body);
    let view = api.get(&o0, &id)?;
    assert_eq!(view["approvals"].as_array().map(Vec::len), Some(1), "one officer counts once");
    assert_eq!(view["state"], "pending");
    let foreign = api.approve(&o1, &id, "bank-1/admin.key")?;
    assert_eq!((foreign.status, foreign.json()?["code"].clone()), (403, json!("not_your_key")));
    let forged = api.client.call(
        "POST",
        &format!("/v1/requests/{id}/approvals"),
        Some(&o1),
        Some(&json!({
            "officer_key": hex::encode(net.key("officers/officer-1.key").public_key().0),
            "signature": "00".repeat(64),
        })),
    )?;
    assert_eq!((forged.status, forged.json()?["code"].clone()), (422, json!("bad_signature")));
    assert_eq!(net.status(0)?.supply_outstanding_minor, 0, "nothing minted before k approvals");

    // k-1 approvals mint nothing: a second request with one approval stays pending.
    let lonely = id_of(&api.create(&o0, mint(2, 777))?)?;
    api.approve(&o0, &lonely, "officers/officer-0.key")?;

    // The second distinct officer completes the first request: committed, on every node.
    let done = api.approve(&o1, &id, "officers/officer-1.key")?;
    assert_eq!(done.status, 200, "{}", done.body);
    api.wait_state(&o0, &id, &["committed"])?;
    net.wait(&[0, 1, 2, 3, 4], Duration::from_secs(30), "minted supply", |s| {
        s.supply_outstanding_minor == 1_000_000
    })?;
    assert_eq!(api.get(&o0, &lonely)?["state"], "pending");

    // Quota: over bank 2's quota, rejected with the ledger's code.
    let over_quota = id_of(&api.create(&o0, mint(2, 1_000_000_000_001))?)?;
    api.approve(&o0, &over_quota, "officers/officer-0.key")?;
    api.approve(&o1, &over_quota, "officers/officer-1.key")?;
    let v = api.wait_state(&o0, &over_quota, &["rejected"])?;
    assert_eq!(v["rejection"], "quota_exceeded");

    // Supply cap: lower it through the same workflow, then mint over it.
    let cap = id_of(&api.create(
        &o0,
        json!({ "kind": "set_supply_cap", "cap_minor": 1_500_000, "reason": "e2e cap" }),
    )?)?;
    api.approve(&o0, &cap, "officers/officer-0.key")?;
    api.approve(&o1, &cap, "officers/officer-1.key")?;
    api.wait_state(&o0, &cap, &["committed"])?;
    let over_cap = id_of(&api.create(&o0, mint(1, 600_000))?)?;
    api.approve(&o0, &over_cap, "officers/officer-0.key")?;
    api.approve(&o1, &over_cap, "officers/officer-1.key")?;
    let v = api.wait_state(&o0, &over_cap, &["rejected"])?;
    assert_eq!(v["rejection"], "supply_cap_exceeded");

    // KYC tier limits through the same workflow.
    let tier = id_of(&api.create(
        &o1,
        json!({ "kind": "set_tier", "tier": 1, "holding_minor": 500_000,
                "per_payment_minor": 100_000, "daily_outflow_minor": 200_000,
                "reason": "e2e tier change" }),
    )?)?;
    api.approve(&o0, &tier, "officers/officer-0.key")?;
    api.approve(&o1, &tier, "officers/officer-1.key")?;
    api.wait_state(&o0, &tier, &["committed"])?;
    let policy = api.client.call("GET", "/v1/policy", Some(&regulator), None)?.json()?;
    assert_eq!(policy["tiers"][1]["holding_minor"], 500_000);
    assert_eq!(policy["tiers"][1]["daily_outflow_minor"], 200_000);

    // Burn (redemption): bank 1 returns 400,000 to the issuance wallet, officers burn it.
    let issuance = net.genesis.banks[0].float_wallet;
    let float = net.genesis.banks[1].float_wallet;
    let legs = vec![Leg { from: float, to: issuance, amount: Amount::from_minor(400_000)? }];
    let tip = net.status(0)?.height;
    let body = TxBody {
        id: TxId([0xb0; 16]),
        expiry_height: tip + 1_000,
        kind: TxKind::Transfer { legs },
    };
    net.submit(1, &body.sign(&net.genesis.chain_id, &[&net.key("bank-1/float.key")]))?;
    net.wait(&[0], Duration::from_secs(30), "redemption transfer", |s| {
        s.finalized_transactions >= 3
    })?;
    let burn = id_of(&api.create(
        &o1,
        json!({ "kind": "burn", "bank": 1, "amount_minor": 400_000, "reason": "redemption" }),
    )?)?;
    api.approve(&o0, &burn, "officers/officer-0.key")?;
    api.approve(&o1, &burn, "officers/officer-1.key")?;
    api.wait_state(&o0, &burn, &["committed"])?;
    net.wait(&[0, 1, 2, 3, 4], Duration::from_secs(30), "burned supply", |s| {
        s.supply_outstanding_minor == 600_000
    })?;
    let supply = api.client.call("GET", "/v1/supply", Some(&regulator), None)?.json()?;
    assert_eq!(supply["outstanding_minor"], 600_000);
    assert_eq!(supply["burned_minor"], 400_000);

    // Final approvals back to back while the follower runs (every 300 ms it submits requests
    // it finds approved): each answers 200 whoever submits, and each mint commits once. (A
    // follower submitting a request its approver was still submitting once answered 503.)
    let mut quick = Vec::new();
    for _ in 0..12 {
        let id = id_of(&api.create(&o0, mint(2, 1))?)?;
        api.approve(&o0, &id, "officers/officer-0.key")?;
        quick.push(id);
    }
    for id in &quick {
        let a = api.approve(&o1, id, "officers/officer-1.key")?;
        assert_eq!(a.status, 200, "final approval of {id}: {}", a.body);
    }
    for id in &quick {
        api.wait_state(&o0, id, &["committed"])?;
    }
    let supply = api.client.call("GET", "/v1/supply", Some(&regulator), None)?.json()?;
    assert_eq!(supply["outstanding_minor"], 600_012, "each quick mint once: {supply}");

    // Mutual TLS: bank 1's client certificate names bank 1; without one, no bank.
    let tls = net.net_dir().join("bank-1/tls");
    let cert = std::fs::read_to_string(tls.join("cb-client.pem"))?;
    let key = std::fs::read_to_string(tls.join("cb-client.key"))?;
    let bank_client = ApiClient::new(addr, "localhost", &ca, Some((&cert, &key)))?;
    let me = bank_client.call("GET", "/v1/banks/me", None, None)?;
    assert_eq!((me.status, me.json()?["id"].clone()), (200, json!(1)), "{}", me.body);
    assert_eq!(api.client.call("GET", "/v1/banks/me", None, None)?.status, 401);

    // The audit log has every change and verifies.
    let audit = api.client.call("GET", "/v1/audit?limit=1000", Some(&regulator), None)?.json()?;
    let entries = audit["entries"].as_array().cloned().unwrap_or_default();
    assert!(
        entries.iter().any(|e| e["action"] == "request.approve" && e["outcome"] == "not_your_key")
    );
    assert!(
        entries
            .iter()
            .any(|e| e["action"] == "auth.token" && e["outcome"] == "invalid_credentials")
    );
    assert_eq!(api.client.call("GET", "/v1/audit", Some(&o0), None)?.status, 403);
    let cb = net.binary_path("central-bank");
    let verify = std::process::Command::new(cb)
        .args(["audit", "verify", "--config"])
        .arg(net.net_dir().join("central-bank/node.toml"))
        .output()?;
    assert!(verify.status.success(), "audit verify: {}", String::from_utf8_lossy(&verify.stderr));
    Ok(())
}

/// A certified block: its height, its epoch's validators, its certificate.
type Certified = (u64, Vec<cbdc_ledger::PublicKey>, Vec<u8>);

/// Node `i`'s certified blocks, with each epoch's validators from replaying its block log.
fn certified_blocks(net: &Network, i: usize) -> Result<Vec<Certified>> {
    let mut store = cbdc_store::Store::open(&net.database_url(i)?)?;
    let mut ledger = cbdc_ledger::Ledger::from_genesis(&net.genesis)?;
    let mut out = Vec::new();
    for height in 1..=store.last_height()? {
        let Some(stored) = store.block(height)? else { bail!("block {height} missing") };
        let block = <cbdc_ledger::Block as cbdc_ledger::Decode>::decode(&stored.block)
            .map_err(|e| anyhow::anyhow!("block {height}: {e}"))?;
        let validators = ledger.validators();
        ledger.apply_block(&block).map_err(|e| anyhow::anyhow!("block {height}: {e}"))?;
        if let Some(cert) = stored.certificate {
            out.push((height, validators, cert));
        }
    }
    Ok(out)
}

#[test]
fn a_sixth_bank_is_admitted_votes_opens_wallets_and_is_suspended() -> Result<()> {
    let base = port_base(4);
    let mut net = Network::start(4, base, "sqlite")?;
    let prepared = cbdc_service::init::prepare_bank(
        &net.net_dir(),
        5,
        std::net::SocketAddr::from(([127, 0, 0, 1], base + 5)),
        std::net::SocketAddr::from(([127, 0, 0, 1], base + 55)),
        "sqlite",
    )?;
    // The new bank's node runs before its admission: it follows, votes in nothing.
    let six = net.add_node(prepared.node.clone())?;
    let api = connect(&net, base)?;
    let (o0, o1, admin) = (api.login("officer-0")?, api.login("officer-1")?, api.login("admin")?);
    let all: Vec<usize> = (0..=six).collect();

    // Admission: an administrator makes the request, two officers approve.
    let admit = prepared.admit_request("Bank Five", 1_000_000_000, "e2e admission");
    assert_eq!(api.create(&o0, admit.clone())?.status, 403, "officers do not admit banks");
    let id = id_of(&api.create(&admin, admit)?)?;
    api.approve(&o0, &id, "officers/officer-0.key")?;
    api.approve(&o1, &id, "officers/officer-1.key")?;
    api.wait_state(&o0, &id, &["committed"])?;
    net.wait(&all, Duration::from_secs(60), "epoch 1 on all six", |s| {
        s.epoch == 1 && s.validators == 6
    })?;
    let boundary = net.status(0)?.height;
    net.wait(&all, Duration::from_secs(60), "finality in epoch 1", |s| s.height >= boundary + 10)?;

    // Its validator signs finalizations in epoch 1.
    let signed = certified_blocks(&net, 0)?.into_iter().any(|(_, validators, cert)| {
        cbdc_node::certificate_signers(&net.genesis, &validators, &cert)
            .is_some_and(|c| c.epoch == 1 && c.signers.contains(&prepared.validator_key))
    });
    assert!(signed, "no epoch-1 finalization certificate carries the new validator's signature");

    // The CA issues the admitted bank its client certificate; it authenticates the bank until
    // revoked, and the running API refuses it right after.
    let issue = json!({ "kind": "client" });
    let denied = api.client.call("POST", "/v1/banks/5/certificates", Some(&o0), Some(&issue))?;
    assert_eq!(denied.status, 403, "officers do not issue certificates");
    let unknown =
        api.client.call("POST", "/v1/banks/9/certificates", Some(&admin), Some(&issue))?;
    assert_eq!(unknown.status, 404, "{}", unknown.body);
    let issued = api.client.call("POST", "/v1/banks/5/certificates", Some(&admin), Some(&issue))?;
    assert_eq!(issued.status, 201, "{}", issued.body);
    let issued = issued.json()?;
    let (cert, key) = (
        issued["cert_pem"].as_str().unwrap_or_default().to_string(),
        issued["key_pem"].as_str().unwrap_or_default().to_string(),
    );
    let bank5 = ApiClient::new(api.addr, "localhost", &api.ca, Some((&cert, &key)))?;
    let me = bank5.call("GET", "/v1/banks/me", None, None)?;
    assert_eq!((me.status, me.json()?["id"].clone()), (200, json!(5)), "{}", me.body);
    let serial = issued["serial"].as_str().unwrap_or_default().to_string();
    let revoked = api.client.call(
        "POST",
        &format!("/v1/certificates/{serial}/revocation"),
        Some(&admin),
        None,
    )?;
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    assert!(
        bank5.call("GET", "/v1/banks/me", None, None).is_err(),
        "a revoked certificate still works"
    );
    let crl = api.client.call("GET", "/v1/crl", None, None)?;
    assert!(crl.status == 200 && crl.body.contains("BEGIN X509 CRL"), "{}", crl.body);

    // It administers its own wallets: open one, through its own node.
    let admin_key = cbdc_service::keys::signing_key(&net.net_dir().join("bank-5/admin.key"))?;
    let before = net.status(0)?.finalized_transactions;
    let tip = net.status(0)?.height;
    let open = TxBody {
        id: TxId([0x55; 16]),
        expiry_height: tip + 1_000,
        kind: TxKind::OpenWallet {
            bank: cbdc_ledger::BankId(5),
            wallet: cbdc_ledger::WalletId([0x56; 16]),
            public_key: admin_key.public_key(),
            class: cbdc_ledger::WalletClass::Retail,
            tier: cbdc_ledger::KycTier(1),
            holder: cbdc_ledger::HolderRef([0x57; 32]),
            linked: false,
        },
    };
    net.submit(six, &open.sign(&net.genesis.chain_id, &[&admin_key]))?;
    net.wait(&[0], Duration::from_secs(30), "the new bank's wallet", |s| {
        s.finalized_transactions > before
    })?;

    // Suspension: the next epoch runs without it, and the network keeps finalizing.
    let suspend = json!({ "kind": "suspend_bank", "bank": 5, "reason": "e2e suspension" });
    let id = id_of(&api.create(&admin, suspend)?)?;
    api.approve(&o0, &id, "officers/officer-0.key")?;
    api.approve(&o1, &id, "officers/officer-1.key")?;
    api.wait_state(&o0, &id, &["committed"])?;
    net.wait(&[0, 1, 2, 3, 4], Duration::from_secs(60), "epoch 2", |s| {
        s.epoch == 2 && s.validators == 5
    })?;
    let boundary = net.status(0)?.height;
    net.wait(&[0, 1, 2, 3, 4], Duration::from_secs(60), "finality in epoch 2", |s| {
        s.height >= boundary + 10
    })?;
    let later = certified_blocks(&net, 0)?;
    let epoch2: Vec<_> = later
        .iter()
        .filter_map(|(_, v, c)| cbdc_node::certificate_signers(&net.genesis, v, c))
        .filter(|c| c.epoch == 2)
        .collect();
    assert!(!epoch2.is_empty(), "no certified block in epoch 2");
    assert!(epoch2.iter().all(|c| !c.signers.contains(&prepared.validator_key)));
    drop(api);
    net.stop_all();
    Ok(())
}
