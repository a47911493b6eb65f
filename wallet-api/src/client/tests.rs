//! The client against the real routes over real sockets (plain TCP and TLS), with the
//! in-memory backend behind them.

use super::*;
use crate::model::{Custody, PaymentStatus};
use crate::testkit::{CHAIN_ID, KNOWN_TX, PAY_PENDING, PAY_REJECTED, TestBank, WALLET};
use actix_web::{App, HttpServer, web};
use cbdc_ledger::{Amount, Decode, SignedTransaction};
use std::net::{SocketAddr, TcpListener};

/// Serves the wallet routes on a fresh port in a thread of its own; the server lives as long
/// as the test process.
fn serve(tls: Option<rustls::ServerConfig>) -> (SocketAddr, web::Data<TestBank>) {
    let bank = web::Data::new(TestBank::new());
    let (tx, rx) = std::sync::mpsc::channel();
    let data = bank.clone();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let server = HttpServer::new(move || {
                App::new().app_data(data.clone()).configure(crate::routes::configure::<TestBank>)
            })
            .workers(1)
            .disable_signals();
            let server = match tls {
                None => server.bind(("127.0.0.1", 0)),
                Some(config) => server.bind_rustls_0_23(("127.0.0.1", 0), config),
            }
            .unwrap();
            tx.send(server.addrs()[0]).unwrap();
            server.run().await.unwrap();
        });
    });
    (rx.recv().unwrap(), bank)
}

fn logged_in(addr: SocketAddr) -> WalletClient {
    let mut client = WalletClient::new(&format!("http://{addr}"), None).unwrap();
    let token = client.login("alice", "alice-password").unwrap();
    assert_eq!((token.token_type.as_str(), token.role.as_str()), ("Bearer", "customer"));
    client
}

#[track_caller]
fn assert_problem<T: fmt::Debug>(result: Result<T, ClientError>, status: u16, code: &str) {
    match result {
        Err(ClientError::Problem { status: s, problem }) => {
            assert_eq!((s, problem.code.as_str(), problem.status), (status, code, status));
        }
        other => panic!("expected a {status} {code} problem, got {other:?}"),
    }
}

#[test]
fn base_urls_are_scheme_host_and_port() {
    let parse = |url| Endpoint::parse(url);
    let endpoint = |tls, host: &str, port| Endpoint { tls, host: host.to_string(), port };
    assert_eq!(parse("http://127.0.0.1:8080").unwrap(), endpoint(false, "127.0.0.1", 8080));
    assert_eq!(parse("https://bank.example/").unwrap(), endpoint(true, "bank.example", 443));
    assert_eq!(parse("http://bank.example").unwrap(), endpoint(false, "bank.example", 80));
    assert_eq!(parse("https://[::1]:8443").unwrap(), endpoint(true, "::1", 8443));
    assert_eq!(parse("https://[::1]:8443").unwrap().authority(), "[::1]:8443");
    for bad in [
        "",
        "bank.example:80",
        "ftp://bank.example",
        "http://",
        "http://:80",
        "http://h:0",
        "http://h:70000",
        "http://h:80/v1",
        "http://user@h:80",
        "http://[::1",
        "http://[::1]x",
    ] {
        assert!(matches!(parse(bad), Err(ClientError::Config(_))), "{bad}");
    }
    assert!(matches!(WalletClient::new("https://h:1", None), Err(ClientError::Config(_))));
    assert!(matches!(WalletClient::new("https://h:1", Some("junk")), Err(ClientError::Config(_))));
}

#[test]
fn every_route_round_trips_over_http() {
    let (addr, bank) = serve(None);
    let anonymous = WalletClient::new(&format!("http://{addr}"), None).unwrap();
    assert_problem(anonymous.wallets(), 401, "unauthorized");
    let mut wrong = anonymous.clone();
    assert_problem(wrong.login("alice", "nope"), 401, "invalid_credentials");
    assert!(wrong.token().is_none());

    let client = logged_in(addr);
    let network = client.network().unwrap();
    assert_eq!(network.chain_id, CHAIN_ID);
    assert_eq!(client.wallets().unwrap().wallets.len(), 1);
    assert_eq!(client.balance(&WALLET.to_hex()).unwrap().wallet.wallet_id, WALLET.to_hex());
    assert_problem(client.balance("not-a-wallet"), 400, "invalid_id");
    assert_problem(client.balance("../../v1/network"), 400, "invalid_id");

    let to = WalletId([0x99; 16]).to_hex();
    let payment = |amount_minor| PaymentRequest {
        to_wallet: to.clone(),
        amount_minor,
        reference: Some("rent".to_string()),
        payment_request_id: None,
    };
    let (status, receipt) = client.pay(&WALLET.to_hex(), "k-1", &payment(5)).unwrap();
    assert_eq!((status, receipt.status), (200, PaymentStatus::Committed));
    let (status, receipt) = client.pay(&WALLET.to_hex(), "k-2", &payment(PAY_PENDING)).unwrap();
    assert_eq!((status, receipt.status), (202, PaymentStatus::Pending));
    assert_problem(
        client.pay(&WALLET.to_hex(), "k-3", &payment(PAY_REJECTED)),
        422,
        "insufficient_funds",
    );
    assert_problem(client.pay(&WALLET.to_hex(), "", &payment(5)), 400, "invalid_idempotency_key");
    let keys: Vec<_> = bank.calls().payments.iter().map(|(i, _)| i.key.clone()).collect();
    assert_eq!(keys, ["k-1", "k-2", "k-3"]);

    assert_eq!(client.payment(&KNOWN_TX.to_hex()).unwrap().tx_id, KNOWN_TX.to_hex());
    let page = client.history(&WALLET.to_hex(), Some(4), None).unwrap();
    assert_eq!(page.entries.len(), 4);
    let next = client.history(&WALLET.to_hex(), Some(4), page.next_cursor.as_deref()).unwrap();
    assert_eq!(next.entries[0].height, 6);
    assert_problem(client.history(&WALLET.to_hex(), Some(0), None), 400, "invalid_page_size");
    assert_problem(
        client.history(&WALLET.to_hex(), None, Some("a&limit=1")),
        400,
        "invalid_cursor",
    );

    let request = CreatePaymentRequest { amount_minor: 1_250, reference: "invoice-7".to_string() };
    let view = client.create_payment_request(&WALLET.to_hex(), &request).unwrap();
    assert_eq!(client.payment_request(&view.payment_request_id).unwrap().reference, "invoice-7");
}

#[test]
fn self_custody_payments_are_signed_here_and_decoded_there() {
    let (addr, bank) = serve(None);
    let client = logged_in(addr);
    let key = SigningKey::from_seed(&[9; 32]).unwrap();
    let request = OpenWalletRequest {
        custody: Custody::SelfCustody,
        public_key: Some(key.public_key().to_hex()),
        class: None,
    };
    let wallet = client.open_wallet(&request).unwrap();
    assert_eq!(wallet.custody, Custody::SelfCustody);
    let from = WalletId::from_hex(&wallet.wallet_id).unwrap();
    let to = WalletId([0x99; 16]);
    let network = client.network().unwrap();
    let id = derived_tx_id(from, "invoice-7");
    let leg = Leg { from, to, amount: Amount::from_minor(250).unwrap() };
    let signed = signed_transfer(&key, &network, id, leg);
    let (status, receipt) = client.pay_signed("invoice-7", &signed).unwrap();
    assert_eq!((status, receipt.tx_id.as_str()), (200, id.to_hex().as_str()));

    let (idempotency, tx) = bank.calls().signed.pop().unwrap();
    assert_eq!(idempotency.key, "invoice-7");
    assert_eq!(tx.body.expiry_height, network.recommended_expiry_height);
    assert_eq!(tx.body.kind, TxKind::Transfer { legs: vec![leg] });
    let payload = tx.body.signing_payload(CHAIN_ID);
    let signature = tx.signatures.first().unwrap();
    assert_eq!(signature.signer, key.public_key());
    assert!(cbdc_ledger::crypto::verify_one(&signature.signer, &payload, &signature.signature));
    assert_eq!(SignedTransaction::decode(&hex::decode(&signed.transaction).unwrap()).unwrap(), tx);
}

#[test]
fn derived_ids_depend_on_the_wallet_and_the_key() {
    let a = WalletId([1; 16]);
    let b = WalletId([2; 16]);
    assert_eq!(derived_tx_id(a, "k"), derived_tx_id(a, "k"));
    assert_ne!(derived_tx_id(a, "k"), derived_tx_id(a, "k2"));
    assert_ne!(derived_tx_id(a, "k"), derived_tx_id(b, "k"));
}

#[test]
fn raw_requests_see_the_refusals() {
    let (addr, bank) = serve(None);
    let client = logged_in(addr);
    let json = [("Content-Type", "application/json"), ("Idempotency-Key", "k")];
    // The server answers 413 from Content-Length and closes; the client still reads it.
    let ten_megabytes = vec![b'0'; 10 * 1024 * 1024];
    let (status, body) = client.raw("POST", "/v1/payments", &json, Some(&ten_megabytes)).unwrap();
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("body_too_large"), "{body}");
    let (status, body) =
        client.raw("POST", "/v1/payments", &json, Some(b"{\"transaction\":\"zz\"}")).unwrap();
    assert_eq!((status, body.contains("invalid_transaction")), (400, true), "{body}");
    let (status, _) = client.raw("GET", "/v1/nothing", &[], None).unwrap();
    assert_eq!(status, 404);
    let (status, _) = client.raw("PUT", "/v1/wallets", &[], None).unwrap();
    assert_eq!(status, 405);
    let (status, _) =
        client.raw("GET", "/v1/wallets", &[("Authorization", "Bearer x")], None).unwrap();
    assert_eq!(status, 401);
    assert_eq!(bank.calls().signed.len(), 0);
    assert!(matches!(
        client.raw("GET", "/v1/x", &[("X", "a\r\nB: c")], None),
        Err(ClientError::Config(_))
    ));
    assert!(matches!(client.raw("GET", "v1/x", &[], None), Err(ClientError::Config(_))));
    assert!(matches!(client.raw("GET /", "/", &[], None), Err(ClientError::Config(_))));
}

#[test]
fn the_token_is_never_in_debug_output() {
    let mut client = WalletClient::new("http://127.0.0.1:1", None).unwrap();
    client.set_token("secret-token-value");
    let debug = format!("{client:?}");
    assert!(!debug.contains("secret-token-value"), "{debug}");
    assert!(debug.contains("redacted"));
}

/// A one-shot server that answers every connection with `answer`.
fn canned(answer: Vec<u8>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let mut stream = stream.unwrap();
            let mut head = [0u8; 4096];
            let _ = stream.read(&mut head);
            let _ = stream.write_all(&answer);
        }
    });
    addr
}

#[test]
fn answers_are_bounded_and_parsed_strictly() {
    let client = |addr: SocketAddr| WalletClient::new(&format!("http://{addr}"), None).unwrap();
    let mut huge = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n".to_vec();
    huge.extend(std::iter::repeat_n(b' ', 9 * 1024 * 1024));
    assert!(matches!(client(canned(huge)).wallets(), Err(ClientError::Decode(_))));

    let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
        5\r\n{\"wal\r\nd\r\nlets\":[]}    \r\n0\r\n\r\n"
        .to_vec();
    assert_eq!(client(canned(chunked)).wallets().unwrap().wallets, vec![]);

    let proxy = b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 5\r\n\r\noops!".to_vec();
    match client(canned(proxy)).wallets() {
        Err(ClientError::Unexpected { status: 502, body }) => assert_eq!(body, "oops!"),
        other => panic!("{other:?}"),
    }
    let short = b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n{}".to_vec();
    assert!(matches!(client(canned(short)).wallets(), Err(ClientError::Decode(_))));
    let garbage = b"SSH-2.0-OpenSSH\r\n\r\n".to_vec();
    assert!(matches!(client(canned(garbage)).wallets(), Err(ClientError::Decode(_))));
    let not_json = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nno".to_vec();
    assert!(matches!(client(canned(not_json)).wallets(), Err(ClientError::Decode(_))));

    let closed = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    assert!(matches!(client(closed).wallets(), Err(ClientError::Transport(_))));
}

/// A CA and a server certificate for `localhost` and 127.0.0.1 issued by it, PEM:
/// (CA certificate, server certificate, server key).
fn test_pki() -> (String, String, String) {
    use openssl::asn1::Asn1Time;
    use openssl::bn::BigNum;
    use openssl::ec::{EcGroup, EcKey};
    use openssl::hash::MessageDigest;
    use openssl::nid::Nid;
    use openssl::pkey::PKey;
    use openssl::x509::extension::{
        BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
    };
    use openssl::x509::{X509, X509NameBuilder};

    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    let key = || PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap();
    let name = |cn: &str| {
        let mut name = X509NameBuilder::new().unwrap();
        name.append_entry_by_text("CN", cn).unwrap();
        name.build()
    };
    let (ca_key, server_key) = (key(), key());
    let mut ca = X509::builder().unwrap();
    ca.set_version(2).unwrap();
    ca.set_serial_number(&BigNum::from_u32(1).unwrap().to_asn1_integer().unwrap()).unwrap();
    ca.set_subject_name(&name("wallet-api test CA")).unwrap();
    ca.set_issuer_name(&name("wallet-api test CA")).unwrap();
    ca.set_pubkey(&ca_key).unwrap();
    ca.set_not_before(&Asn1Time::days_from_now(0).unwrap()).unwrap();
    ca.set_not_after(&Asn1Time::days_from_now(1).unwrap()).unwrap();
    ca.append_extension(BasicConstraints::new().critical().ca().build().unwrap()).unwrap();
    ca.append_extension(KeyUsage::new().critical().key_cert_sign().crl_sign().build().unwrap())
        .unwrap();
    ca.sign(&ca_key, MessageDigest::sha256()).unwrap();
    let ca = ca.build();

    let mut cert = X509::builder().unwrap();
    cert.set_version(2).unwrap();
    cert.set_serial_number(&BigNum::from_u32(2).unwrap().to_asn1_integer().unwrap()).unwrap();
    cert.set_subject_name(&name("localhost")).unwrap();
    cert.set_issuer_name(ca.subject_name()).unwrap();
    cert.set_pubkey(&server_key).unwrap();
    cert.set_not_before(&Asn1Time::days_from_now(0).unwrap()).unwrap();
    cert.set_not_after(&Asn1Time::days_from_now(1).unwrap()).unwrap();
    cert.append_extension(BasicConstraints::new().build().unwrap()).unwrap();
    cert.append_extension(KeyUsage::new().critical().digital_signature().build().unwrap()).unwrap();
    cert.append_extension(ExtendedKeyUsage::new().server_auth().build().unwrap()).unwrap();
    let san = SubjectAlternativeName::new()
        .dns("localhost")
        .ip("127.0.0.1")
        .build(&cert.x509v3_context(Some(&ca), None))
        .unwrap();
    cert.append_extension(san).unwrap();
    cert.sign(&ca_key, MessageDigest::sha256()).unwrap();
    let cert = cert.build();
    let pem = |bytes: Vec<u8>| String::from_utf8(bytes).unwrap();
    (
        pem(ca.to_pem().unwrap()),
        pem(cert.to_pem().unwrap()),
        pem(server_key.private_key_to_pem_pkcs8().unwrap()),
    )
}

fn server_tls(cert_pem: &str, key_pem: &str) -> rustls::ServerConfig {
    use rustls::pki_types::PrivateKeyDer;
    let chain = vec![CertificateDer::from_pem_slice(cert_pem.as_bytes()).unwrap()];
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap();
    rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap()
}

#[test]
fn https_trusts_only_the_given_ca() {
    let (ca, cert, key) = test_pki();
    let (addr, _) = serve(Some(server_tls(&cert, &key)));
    for host in ["localhost", "127.0.0.1"] {
        let mut client =
            WalletClient::new(&format!("https://{host}:{}", addr.port()), Some(&ca)).unwrap();
        client.login("alice", "alice-password").unwrap();
        assert_eq!(client.network().unwrap().chain_id, CHAIN_ID);
        let headers = [("Content-Type", "application/json"), ("Idempotency-Key", "k")];
        let large = vec![b'x'; 1 << 20];
        let (status, _) = client.raw("POST", "/v1/payments", &headers, Some(&large)).unwrap();
        assert_eq!(status, 413);
    }
    let (other_ca, _, _) = test_pki();
    let stranger =
        WalletClient::new(&format!("https://localhost:{}", addr.port()), Some(&other_ca)).unwrap();
    assert!(matches!(stranger.network(), Err(ClientError::Transport(_))));
    // Plain HTTP to a TLS port is not an answer either.
    let plain = WalletClient::new(&format!("http://{addr}"), None).unwrap();
    assert!(plain.network().is_err());
}
