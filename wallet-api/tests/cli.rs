//! `cbdc-wallet` end to end against the wallet routes over HTTP, with the in-memory backend
//! (feature `testkit`) behind them: a self-custody session from key generation to history,
//! and no secret ever on the terminal.

use actix_web::{App, HttpServer, web};
use serde_json::Value;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output};
use wallet_api::testkit::{CHAIN_ID, CUSTOMER_TOKEN, TestBank};

fn serve() -> (SocketAddr, web::Data<TestBank>) {
    let bank = web::Data::new(TestBank::new());
    let (tx, rx) = std::sync::mpsc::channel();
    let data = bank.clone();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let server = HttpServer::new(move || {
                App::new()
                    .app_data(data.clone())
                    .configure(wallet_api::routes::configure::<TestBank>)
            })
            .workers(1)
            .disable_signals()
            .bind(("127.0.0.1", 0))
            .expect("a free port");
            tx.send(server.addrs()[0]).expect("the test waits");
            server.run().await.expect("the server runs");
        });
    });
    (rx.recv().expect("the server's address"), bank)
}

struct Session {
    api: String,
    dir: tempfile::TempDir,
}

impl Session {
    fn token_file(&self) -> std::path::PathBuf {
        self.dir.path().join("token")
    }

    fn run(&self, args: &[&str], password: Option<&str>) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_cbdc-wallet"));
        command
            .args(args)
            .env("CBDC_WALLET_API", &self.api)
            .env("CBDC_WALLET_TOKEN_FILE", self.token_file())
            .env_remove("CBDC_WALLET_PASSWORD")
            .env_remove("CBDC_WALLET_CA_FILE");
        if let Some(password) = password {
            command.env("CBDC_WALLET_PASSWORD", password);
        }
        command.output().expect("cbdc-wallet runs")
    }

    /// Runs a command that must succeed; its stdout as JSON.
    fn json(&self, args: &[&str]) -> Value {
        let output = self.run(args, None);
        let (stdout, stderr) = texts(&output);
        assert!(output.status.success(), "{args:?}: {stderr}");
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{args:?}: {e}: {stdout}"))
    }
}

fn texts(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).expect("the file exists").permissions().mode() & 0o777
}

#[test]
fn a_self_custody_session() {
    let (addr, bank) = serve();
    let session =
        Session { api: format!("http://{addr}"), dir: tempfile::tempdir().expect("a temp dir") };
    let key_file = session.dir.path().join("wallet.key");
    let key_path = key_file.to_str().expect("UTF-8");

    let key = session.json(&["keygen", "--key-file", key_path]);
    let public_key = key["public_key"].as_str().expect("a public key").to_string();
    assert_eq!(public_key.len(), 64);
    let seed = std::fs::read_to_string(&key_file).expect("the key file");
    assert!(!key.to_string().contains(seed.trim()), "the seed was printed");
    #[cfg(unix)]
    assert_eq!(mode(&key_file), 0o600);
    let again = session.run(&["keygen", "--key-file", key_path], None);
    assert!(!again.status.success(), "an existing key was overwritten");
    assert_eq!(std::fs::read_to_string(&key_file).expect("the key file"), seed);

    // Without a token, commands say so.
    let wallets = session.run(&["wallets"], None);
    assert!(!wallets.status.success());
    assert!(texts(&wallets).1.contains("login"), "{}", texts(&wallets).1);

    // The password from the environment, then from a file; never printed, nor the token.
    let wrong = session.run(&["login", "--username", "alice"], Some("wrong"));
    assert!(!wrong.status.success());
    assert!(texts(&wrong).1.contains("invalid_credentials"), "{}", texts(&wrong).1);
    let no_password = session.run(&["login", "--username", "alice"], None);
    assert!(texts(&no_password).1.contains("CBDC_WALLET_PASSWORD"));
    let login = session.run(&["login", "--username", "alice"], Some("alice-password"));
    let (stdout, stderr) = texts(&login);
    assert!(login.status.success(), "{stderr}");
    for secret in ["alice-password", CUSTOMER_TOKEN] {
        assert!(!stdout.contains(secret) && !stderr.contains(secret), "{secret} printed");
    }
    let password_file = session.dir.path().join("password");
    std::fs::write(&password_file, "alice-password\n").expect("a password file");
    let login = session.json(&[
        "login",
        "--username",
        "alice",
        "--password-file",
        password_file.to_str().expect("UTF-8"),
    ]);
    assert_eq!(login["role"], "customer");
    assert_eq!(std::fs::read_to_string(session.token_file()).expect("a token"), "customer-token\n");
    #[cfg(unix)]
    assert_eq!(mode(&session.token_file()), 0o600);

    let wallet = session.json(&["register", "--key-file", key_path]);
    assert_eq!(
        (wallet["custody"].as_str(), wallet["public_key"].as_str()),
        (Some("self_custody"), Some(public_key.as_str()))
    );
    let wallet_id = wallet["wallet_id"].as_str().expect("a wallet id").to_string();
    assert_eq!(session.json(&["wallets"])["wallets"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        session.json(&["balance", "--wallet", &wallet_id])["wallet"]["wallet_id"],
        wallet_id
    );

    let payee = "99".repeat(16);
    let pay =
        ["pay", "--key-file", key_path, "--from", &wallet_id, "--to", &payee, "--amount", "250"];
    let receipt = session.json(&pay);
    assert_eq!(
        (receipt["status"].as_str(), receipt["amount_minor"].as_u64()),
        (Some("committed"), Some(250))
    );
    let tx_id = receipt["tx_id"].as_str().expect("a tx id").to_string();
    let (idempotency, tx) = bank.calls().signed.pop().expect("the signed payment");
    assert_eq!(idempotency.key, tx_id, "the default key is the transaction id");
    assert_eq!(tx.body.id.to_hex(), tx_id);
    let payload = tx.body.signing_payload(CHAIN_ID);
    let signature = tx.signatures.first().expect("a signature");
    assert_eq!(signature.signer.to_hex(), public_key);
    assert!(cbdc_ledger::crypto::verify_one(&signature.signer, &payload, &signature.signature));

    // With a key, a retry reuses the transaction id. The chain moved on in between, so the
    // retry is signed for another expiry height: the bank refuses the body (409) and the CLI
    // answers the first attempt's receipt.
    let mut keyed = pay.to_vec();
    keyed.extend(["--idempotency-key", "invoice-7"]);
    let first = session.json(&keyed);
    let second = session.json(&keyed);
    assert_eq!(first, second);
    assert_ne!(first["tx_id"].as_str(), Some(tx_id.as_str()));
    let signed = bank.calls().signed;
    let keys: Vec<_> = signed.iter().map(|(i, _)| i.key.as_str()).collect();
    assert_eq!(keys[1..], ["invoice-7", "invoice-7"]);
    assert_ne!(signed[1].1.body.expiry_height, signed[2].1.body.expiry_height);
    // The same key for another payment is an error, not the first receipt.
    let mut other = keyed.clone();
    other[8] = "251";
    let refused = session.run(&other, None);
    assert!(!refused.status.success());
    assert!(texts(&refused).1.contains("another payment"), "{}", texts(&refused).1);

    let zero = session.run(
        &["pay", "--key-file", key_path, "--from", &wallet_id, "--to", &payee, "--amount", "0"],
        None,
    );
    assert!(!zero.status.success());

    let page = session.json(&["history", "--wallet", &wallet_id, "--limit", "3"]);
    assert_eq!(page["entries"].as_array().map(Vec::len), Some(3));
    let cursor = page["next_cursor"].as_str().expect("a cursor");
    let next =
        session.json(&["history", "--wallet", &wallet_id, "--limit", "3", "--cursor", cursor]);
    assert_eq!(next["entries"][0]["height"], 7);
    let bad = session.run(&["history", "--wallet", &wallet_id, "--limit", "0"], None);
    assert!(texts(&bad).1.contains("invalid_page_size"), "{}", texts(&bad).1);
    let known = wallet_api::testkit::KNOWN_TX.to_hex();
    assert_eq!(session.json(&["payment", "--tx-id", &known])["tx_id"], known);
}

#[test]
fn every_command_has_help() {
    let session = Session {
        api: "http://127.0.0.1:1".to_string(),
        dir: tempfile::tempdir().expect("a temp dir"),
    };
    for command in
        ["", "keygen", "login", "register", "wallets", "balance", "pay", "payment", "history"]
    {
        let mut args: Vec<&str> = command.split_whitespace().collect();
        args.push("--help");
        let output = session.run(&args, None);
        assert!(output.status.success(), "{command} --help");
        assert!(texts(&output).0.contains("Usage"), "{command} --help");
    }
    let login = texts(&session.run(&["login", "--help"], None)).0;
    assert!(!login.contains("--password "), "a password option: {login}");
}
