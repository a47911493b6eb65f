//! The central bank's CA and mutual TLS, exercised with real TLS handshakes over real TCP
//! sockets on 127.0.0.1: one server thread per exchange, rustls on both ends, no mocks.

use central_bank::pki::{
    self, CA_CERT_FILE, CA_KEY_FILE, Ca, CertKind, Holder, INDEX_FILE, IssueRequest, IssuedCert,
    IssuedKind, MAX_VALIDITY_DAYS, PkiError,
};
use openssl::x509::X509;
use rustls::StreamOwned;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{CertificateError, ClientConfig, ClientConnection, ServerConfig, ServerConnection};
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::thread;
use std::time::Duration;
use tempfile::TempDir;

/// Bounds every socket operation so a broken handshake fails the test instead of hanging it.
const IO_TIMEOUT: Duration = Duration::from_secs(10);
const CENTRAL_BANK_HOST: &str = "cb.test";
const REQUEST: &[u8; 5] = b"ping\n";
const REPLY: &[u8; 5] = b"pong\n";

/// What the server end of one exchange saw.
#[derive(Debug)]
struct ServerSaw {
    peer_certs: Option<Vec<CertificateDer<'static>>>,
    request: Vec<u8>,
}

/// Both ends of one connection.
#[derive(Debug)]
struct Outcome {
    client: io::Result<Vec<u8>>,
    server: io::Result<ServerSaw>,
}

/// A CA in a temporary directory and the central bank's API server certificate from it.
struct Network {
    dir: TempDir,
    ca: Ca,
    server: IssuedCert,
}

fn network() -> Network {
    let dir = TempDir::new().unwrap();
    let mut ca = Ca::create(dir.path(), "Test Central Bank").unwrap();
    let server = ca
        .issue(&IssueRequest {
            holder: Holder::CentralBank,
            kind: CertKind::Server {
                dns: vec![CENTRAL_BANK_HOST.to_owned()],
                ips: vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
            },
            validity_days: 30,
        })
        .unwrap();
    Network { dir, ca, server }
}

fn client_cert(ca: &mut Ca, bank: u32) -> IssuedCert {
    ca.issue(&IssueRequest {
        holder: Holder::Bank(bank),
        kind: CertKind::Client,
        validity_days: 30,
    })
    .unwrap()
}

impl Network {
    /// The central-bank API server with the CA's current CRL.
    fn server_config(&mut self) -> ServerConfig {
        let crl = self.ca.crl_pem().unwrap();
        pki::server_config(
            self.ca.cert_pem(),
            &self.server.cert_pem,
            &self.server.key_pem,
            Some(&crl),
        )
        .unwrap()
    }

    fn bank_client(&self, cert: &IssuedCert) -> ClientConfig {
        pki::client_config(self.ca.cert_pem(), &cert.cert_pem, &cert.key_pem).unwrap()
    }
}

fn name(host: &'static str) -> ServerName<'static> {
    ServerName::try_from(host).unwrap()
}

/// One connection: the client sends `REQUEST`, the server answers `REPLY`.
fn exchange(
    server: ServerConfig,
    client: ClientConfig,
    server_name: ServerName<'static>,
) -> Outcome {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let server = Arc::new(server);
    let handle = thread::spawn(move || serve_once(&listener, server));
    let client = call(address, Arc::new(client), server_name);
    let server = handle.join().unwrap();
    Outcome { client, server }
}

fn serve_once(listener: &TcpListener, config: Arc<ServerConfig>) -> io::Result<ServerSaw> {
    let (tcp, _) = listener.accept()?;
    tcp.set_read_timeout(Some(IO_TIMEOUT))?;
    tcp.set_write_timeout(Some(IO_TIMEOUT))?;
    let connection = ServerConnection::new(config).map_err(io::Error::other)?;
    let mut tls = StreamOwned::new(connection, tcp);
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock)?;
    }
    let peer_certs = peer_certs(&tls.conn);
    let mut request = [0_u8; REQUEST.len()];
    tls.read_exact(&mut request)?;
    tls.write_all(REPLY)?;
    tls.flush()?;
    tls.conn.send_close_notify();
    tls.conn.complete_io(&mut tls.sock)?;
    Ok(ServerSaw { peer_certs, request: request.to_vec() })
}

fn peer_certs(connection: &ServerConnection) -> Option<Vec<CertificateDer<'static>>> {
    connection
        .peer_certificates()
        .map(|certs| certs.iter().map(|c| c.clone().into_owned()).collect())
}

fn call(
    address: SocketAddr,
    config: Arc<ClientConfig>,
    server_name: ServerName<'static>,
) -> io::Result<Vec<u8>> {
    let tcp = TcpStream::connect(address)?;
    tcp.set_read_timeout(Some(IO_TIMEOUT))?;
    tcp.set_write_timeout(Some(IO_TIMEOUT))?;
    let connection = ClientConnection::new(config, server_name).map_err(io::Error::other)?;
    let mut tls = StreamOwned::new(connection, tcp);
    tls.write_all(REQUEST)?;
    tls.flush()?;
    let mut reply = [0_u8; REPLY.len()];
    tls.read_exact(&mut reply)?;
    Ok(reply.to_vec())
}

/// The rustls error inside an I/O error from `complete_io` or a stream, if that is its cause.
fn tls_error(result: &io::Result<impl std::fmt::Debug>) -> Option<&rustls::Error> {
    result.as_ref().err()?.get_ref()?.downcast_ref::<rustls::Error>()
}

fn assert_round_trip(outcome: &Outcome) -> &ServerSaw {
    assert_eq!(outcome.client.as_ref().unwrap(), REPLY);
    let saw = outcome.server.as_ref().unwrap();
    assert_eq!(saw.request, REQUEST);
    saw
}

#[test]
fn bank_client_certificate_completes_mutual_tls_and_names_the_bank() {
    let mut net = network();
    let bank = client_cert(&mut net.ca, 42);
    let outcome = exchange(net.server_config(), net.bank_client(&bank), name(CENTRAL_BANK_HOST));

    let saw = assert_round_trip(&outcome);
    let certs = saw.peer_certs.as_deref().expect("the server sees the client certificate");
    let presented =
        CertificateDer::from(X509::from_pem(bank.cert_pem.as_bytes()).unwrap().to_der().unwrap());
    assert_eq!(certs.first(), Some(&presented));
    assert_eq!(pki::client_bank(certs), Some(42));
}

#[test]
fn revoked_client_certificate_is_refused_once_the_server_has_the_new_crl() {
    let mut net = network();
    let bank = client_cert(&mut net.ca, 7);
    // Accepted with the CRL from before the revocation: what follows fails because of it.
    let before = exchange(net.server_config(), net.bank_client(&bank), name(CENTRAL_BANK_HOST));
    assert_eq!(
        pki::client_bank(assert_round_trip(&before).peer_certs.as_deref().unwrap()),
        Some(7)
    );

    net.ca.revoke(&bank.serial).unwrap();
    let after = exchange(net.server_config(), net.bank_client(&bank), name(CENTRAL_BANK_HOST));

    assert!(after.client.is_err(), "client: {:?}", after.client);
    assert!(
        matches!(
            tls_error(&after.server),
            Some(rustls::Error::InvalidCertificate(CertificateError::Revoked))
        ),
        "server: {:?}",
        after.server
    );
    let revoked = net.ca.issued().into_iter().find(|r| r.serial == bank.serial).unwrap();
    assert!(revoked.revoked_at_unix_s.is_some());
}

#[test]
fn a_running_server_refuses_a_certificate_once_its_crl_is_updated() {
    let mut net = network();
    let bank = client_cert(&mut net.ca, 9);
    let crl = net.ca.crl_pem().unwrap();
    let (config, verifier) = pki::server_config_refreshable(
        net.ca.cert_pem(),
        &net.server.cert_pem,
        &net.server.key_pem,
        Some(&crl),
    )
    .unwrap();
    let before = exchange(config.clone(), net.bank_client(&bank), name(CENTRAL_BANK_HOST));
    assert_round_trip(&before);
    net.ca.revoke(&bank.serial).unwrap();
    // The same server configuration, with only its verifier's CRL replaced.
    verifier.update(&net.ca.crl_pem().unwrap()).unwrap();
    let after = exchange(config, net.bank_client(&bank), name(CENTRAL_BANK_HOST));
    assert!(
        matches!(
            tls_error(&after.server),
            Some(rustls::Error::InvalidCertificate(CertificateError::Revoked))
        ),
        "server: {:?}",
        after.server
    );
}

#[test]
fn revoking_one_bank_leaves_another_admitted() {
    let mut net = network();
    let revoked = client_cert(&mut net.ca, 1);
    let kept = client_cert(&mut net.ca, 2);
    net.ca.revoke(&revoked.serial).unwrap();
    let outcome = exchange(net.server_config(), net.bank_client(&kept), name(CENTRAL_BANK_HOST));
    assert_eq!(
        pki::client_bank(assert_round_trip(&outcome).peer_certs.as_deref().unwrap()),
        Some(2)
    );
}

#[test]
fn client_certificate_from_another_ca_is_refused() {
    let mut net = network();
    // An impostor CA with the real CA's name (the verifier finds the anchor by name, then the
    // signature fails) and one with another name (no anchor at all).
    for other_name in ["Test Central Bank", "Another Bank"] {
        let other_dir = TempDir::new().unwrap();
        let mut other_ca = Ca::create(other_dir.path(), other_name).unwrap();
        let impostor = client_cert(&mut other_ca, 42);
        // Trusts the real CA for the server, presents the other CA's certificate for bank 42.
        let client =
            pki::client_config(net.ca.cert_pem(), &impostor.cert_pem, &impostor.key_pem).unwrap();
        let outcome = exchange(net.server_config(), client, name(CENTRAL_BANK_HOST));

        assert!(outcome.client.is_err(), "client: {:?}", outcome.client);
        assert!(
            matches!(
                tls_error(&outcome.server),
                Some(rustls::Error::InvalidCertificate(
                    CertificateError::UnknownIssuer | CertificateError::BadSignature
                ))
            ),
            "{other_name}: server: {:?}",
            outcome.server
        );
    }
}

fn thirty_days_ago() -> Result<i64, PkiError> {
    pki::wall_clock().map(|now| now - 30 * 86_400)
}

/// A CRL past its nextUpdate makes the server refuse client certificates (fail closed) rather
/// than trust a revocation list that may be missing recent revocations.
#[test]
fn expired_crl_refuses_client_certificates() {
    let dir = TempDir::new().unwrap();
    let mut ca = Ca::create_with_clock(dir.path(), "Test Central Bank", thirty_days_ago).unwrap();
    let server = ca
        .issue(&IssueRequest {
            holder: Holder::CentralBank,
            kind: CertKind::Server { dns: vec![CENTRAL_BANK_HOST.into()], ips: vec![] },
            validity_days: 60,
        })
        .unwrap();
    let bank = ca
        .issue(&IssueRequest { holder: Holder::Bank(3), kind: CertKind::Client, validity_days: 60 })
        .unwrap();
    let stale_crl = ca.crl_pem().unwrap();
    drop(ca);
    let mut ca = Ca::load(dir.path()).unwrap();
    let fresh_crl = ca.crl_pem().unwrap();
    let client = || pki::client_config(ca.cert_pem(), &bank.cert_pem, &bank.key_pem).unwrap();
    let server_with = |crl: &str| {
        pki::server_config(ca.cert_pem(), &server.cert_pem, &server.key_pem, Some(crl)).unwrap()
    };

    let outcome = exchange(server_with(&fresh_crl), client(), name(CENTRAL_BANK_HOST));
    assert_eq!(
        pki::client_bank(assert_round_trip(&outcome).peer_certs.as_deref().unwrap()),
        Some(3)
    );
    let outcome = exchange(server_with(&stale_crl), client(), name(CENTRAL_BANK_HOST));
    assert!(outcome.client.is_err(), "client: {:?}", outcome.client);
    assert!(
        matches!(
            tls_error(&outcome.server),
            Some(rustls::Error::InvalidCertificate(
                CertificateError::ExpiredRevocationList
                    | CertificateError::ExpiredRevocationListContext { .. }
            ))
        ),
        "server: {:?}",
        outcome.server
    );
}

#[test]
fn server_certificate_presented_as_client_certificate_is_refused() {
    let mut net = network();
    let bank_server = net
        .ca
        .issue(&IssueRequest {
            holder: Holder::Bank(5),
            kind: CertKind::Server { dns: vec!["api.bank5.test".into()], ips: vec![] },
            validity_days: 30,
        })
        .unwrap();
    let client = net.bank_client(&bank_server);
    let outcome = exchange(net.server_config(), client, name(CENTRAL_BANK_HOST));

    assert!(outcome.client.is_err(), "client: {:?}", outcome.client);
    assert!(
        matches!(tls_error(&outcome.server), Some(rustls::Error::InvalidCertificate(_))),
        "server: {:?}",
        outcome.server
    );
}

#[test]
fn client_without_certificate_connects_but_names_no_bank() {
    let mut net = network();
    let client = pki::client_config_anonymous(net.ca.cert_pem()).unwrap();
    let outcome = exchange(net.server_config(), client, name(CENTRAL_BANK_HOST));

    let saw = assert_round_trip(&outcome);
    assert!(saw.peer_certs.is_none(), "{:?}", saw.peer_certs);
    assert_eq!(pki::client_bank(saw.peer_certs.as_deref().unwrap_or_default()), None);
}

#[test]
fn bank_server_certificate_validates_for_its_names_only() {
    let mut net = network();
    let bank_server = net
        .ca
        .issue(&IssueRequest {
            holder: Holder::Bank(9),
            kind: CertKind::Server {
                dns: vec!["api.bank9.test".into()],
                ips: vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
            },
            validity_days: 90,
        })
        .unwrap();
    let server = || {
        pki::server_config(net.ca.cert_pem(), &bank_server.cert_pem, &bank_server.key_pem, None)
            .unwrap()
    };
    let client = || pki::client_config_anonymous(net.ca.cert_pem()).unwrap();

    assert_round_trip(&exchange(server(), client(), name("api.bank9.test")));
    let by_ip = ServerName::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST).into());
    assert_round_trip(&exchange(server(), client(), by_ip));

    for wrong in [
        name("api.bank8.test"),
        ServerName::IpAddress(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)).into()),
    ] {
        let outcome = exchange(server(), client(), wrong);
        assert!(
            matches!(
                tls_error(&outcome.client),
                Some(rustls::Error::InvalidCertificate(
                    CertificateError::NotValidForName
                        | CertificateError::NotValidForNameContext { .. }
                ))
            ),
            "client: {:?}",
            outcome.client
        );
        assert!(outcome.server.is_err());
    }
}

#[test]
fn server_certificate_is_trusted_only_through_its_ca() {
    let net = network();
    let other_dir = TempDir::new().unwrap();
    let other_ca = Ca::create(other_dir.path(), "Other").unwrap();
    let server =
        pki::server_config(net.ca.cert_pem(), &net.server.cert_pem, &net.server.key_pem, None)
            .unwrap();
    let client = pki::client_config_anonymous(other_ca.cert_pem()).unwrap();
    let outcome = exchange(server, client, name(CENTRAL_BANK_HOST));
    assert!(
        matches!(
            tls_error(&outcome.client),
            Some(rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer))
        ),
        "client: {:?}",
        outcome.client
    );
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn ca_create_refuses_existing_and_load_round_trips() {
    let Network { dir, mut ca, server } = network();
    let revoked = client_cert(&mut ca, 3);
    ca.revoke(&revoked.serial).unwrap();
    let ca_pem = ca.cert_pem().to_owned();
    let records = ca.issued();
    #[cfg(unix)]
    assert_eq!(mode(&dir.path().join(CA_KEY_FILE)), 0o600);

    assert!(matches!(Ca::load(dir.path()), Err(PkiError::CaLocked(_))), "one owner at a time");
    drop(ca);
    assert!(matches!(Ca::create(dir.path(), "Again"), Err(PkiError::CaExists(_))));

    let mut ca = Ca::load(dir.path()).unwrap();
    assert_eq!(ca.cert_pem(), ca_pem);
    assert_eq!(ca.name(), "Test Central Bank");
    assert_eq!(ca.issued(), records);
    assert_eq!(
        records.iter().map(|r| r.kind).collect::<Vec<_>>(),
        [IssuedKind::Server, IssuedKind::Client]
    );
    assert!(records.iter().any(|r| r.serial == server.serial && r.revoked_at_unix_s.is_none()));

    // Issued after the reload: chains to the same CA, by signature and over TLS.
    let after = client_cert(&mut ca, 4);
    let ca_cert = X509::from_pem(ca_pem.as_bytes()).unwrap();
    let leaf = X509::from_pem(after.cert_pem.as_bytes()).unwrap();
    assert!(leaf.verify(&ca_cert.public_key().unwrap()).unwrap());
    assert_eq!(leaf.issuer_name().to_der().unwrap(), ca_cert.subject_name().to_der().unwrap());
    let mut net = Network { dir, ca, server };
    let outcome = exchange(net.server_config(), net.bank_client(&after), name(CENTRAL_BANK_HOST));
    assert_eq!(
        pki::client_bank(assert_round_trip(&outcome).peer_certs.as_deref().unwrap()),
        Some(4)
    );
    // The revocation made before the reload is still in force.
    let outcome = exchange(net.server_config(), net.bank_client(&revoked), name(CENTRAL_BANK_HOST));
    assert!(matches!(
        tls_error(&outcome.server),
        Some(rustls::Error::InvalidCertificate(CertificateError::Revoked))
    ));
}

#[cfg(unix)]
#[test]
fn ca_load_refuses_a_key_readable_by_others() {
    let net = network();
    let dir = net.dir.path().to_owned();
    drop(net.ca);
    set_mode(&dir.join(CA_KEY_FILE), 0o644);
    assert!(matches!(Ca::load(&dir), Err(PkiError::InsecureKeyFile { mode: 0o644, .. })));
    set_mode(&dir.join(CA_KEY_FILE), 0o600);
    assert!(Ca::load(&dir).is_ok());
}

#[test]
fn bad_requests_are_refused() {
    let mut net = network();
    let server = |dns: Vec<String>, ips: Vec<IpAddr>, validity_days| IssueRequest {
        holder: Holder::Bank(1),
        kind: CertKind::Server { dns, ips },
        validity_days,
    };
    let refused = [
        server(vec![], vec![], 30),
        server(vec!["*.bank1.test".into()], vec![], 30),
        server(vec!["not a name".into()], vec![], 30),
        server(vec!["api.bank1.test".into()], vec![], 0),
        server(vec!["api.bank1.test".into()], vec![], MAX_VALIDITY_DAYS + 1),
        IssueRequest { holder: Holder::Bank(1), kind: CertKind::Client, validity_days: 0 },
        IssueRequest { holder: Holder::Bank(1), kind: CertKind::Client, validity_days: 826 },
    ];
    let issued_before = net.ca.issued().len();
    for request in &refused {
        assert!(matches!(net.ca.issue(request), Err(PkiError::InvalidRequest(_))), "{request:?}");
    }
    assert_eq!(net.ca.issued().len(), issued_before, "nothing recorded for a refused request");
    assert!(
        net.ca
            .issue(&server(vec![], vec![IpAddr::V4(Ipv4Addr::LOCALHOST)], MAX_VALIDITY_DAYS))
            .is_ok()
    );

    assert!(matches!(net.ca.revoke("00ff00ff00ff"), Err(PkiError::UnknownSerial(_))));
    assert!(matches!(net.ca.revoke("not-hex"), Err(PkiError::InvalidRequest(_))));
    let bank = client_cert(&mut net.ca, 1);
    net.ca.revoke(&bank.serial).unwrap();
    let first = net.ca.issued().into_iter().find(|r| r.serial == bank.serial).unwrap();
    net.ca.revoke(&bank.serial.to_uppercase()).unwrap();
    let second = net.ca.issued().into_iter().find(|r| r.serial == bank.serial).unwrap();
    assert_eq!(first, second, "revoking twice keeps the first revocation");

    let other = TempDir::new().unwrap();
    assert!(Ca::create(other.path(), "").is_err());
    assert!(Ca::create(other.path(), "bad\nname").is_err());
    assert!(Ca::load(other.path()).is_err(), "an empty directory is no CA");
}

#[test]
fn corrupted_ca_files_are_errors_not_panics() {
    let net = network();
    let dir = net.dir.path().to_owned();
    drop(net.ca);
    let key_path = dir.join(CA_KEY_FILE);
    let good_key = std::fs::read(&key_path).unwrap();

    // Writing into the existing file keeps its 0600 mode, so only the content is wrong.
    for bad in [
        &b""[..],
        b"garbage",
        b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        &good_key[..good_key.len() / 2],
    ] {
        std::fs::write(&key_path, bad).unwrap();
        let error = Ca::load(&dir).unwrap_err().to_string();
        let key_text = String::from_utf8(good_key.clone()).unwrap();
        for line in key_text.lines().filter(|l| !l.starts_with("-----")) {
            assert!(!error.contains(line), "key text in the error: {error}");
        }
    }
    std::fs::write(&key_path, &good_key).unwrap();

    // A different key for the same certificate.
    let elsewhere = TempDir::new().unwrap();
    drop(Ca::create(elsewhere.path(), "Other").unwrap());
    std::fs::write(&key_path, std::fs::read(elsewhere.path().join(CA_KEY_FILE)).unwrap()).unwrap();
    assert!(matches!(Ca::load(&dir), Err(PkiError::InvalidState { .. })));
    std::fs::write(&key_path, &good_key).unwrap();

    let cert_path = dir.join(CA_CERT_FILE);
    let good_cert = std::fs::read(&cert_path).unwrap();
    std::fs::write(&cert_path, b"not a certificate").unwrap();
    assert!(Ca::load(&dir).is_err());
    std::fs::write(&cert_path, &good_cert).unwrap();

    let index_path = dir.join(INDEX_FILE);
    let good_index = std::fs::read(&index_path).unwrap();
    std::fs::write(&index_path, &good_index[..good_index.len() / 2]).unwrap();
    assert!(matches!(Ca::load(&dir), Err(PkiError::InvalidState { .. })));
    std::fs::write(&index_path, &good_index).unwrap();

    assert!(Ca::load(&dir).is_ok(), "the restored files load again");
}

#[test]
fn bad_pem_in_tls_configuration_is_an_error() {
    let mut net = network();
    let ca = net.ca.cert_pem().to_owned();
    let (cert, key) = (net.server.cert_pem.clone(), net.server.key_pem.clone());
    let crl = net.ca.crl_pem().unwrap();
    assert!(pki::server_config("junk", &cert, &key, Some(&crl)).is_err());
    assert!(pki::server_config(&ca, "junk", &key, Some(&crl)).is_err());
    assert!(pki::server_config(&ca, &cert, "junk", Some(&crl)).is_err());
    assert!(pki::server_config(&ca, &cert, &key, Some("junk")).is_err());
    // A key that does not belong to the certificate.
    let other = client_cert(&mut net.ca, 1);
    assert!(pki::server_config(&ca, &cert, &other.key_pem, Some(&crl)).is_err());
    assert!(pki::client_config(&ca, &other.cert_pem, "junk").is_err());
    assert!(pki::client_config_anonymous("junk").is_err());
    assert!(pki::server_config(&ca, &cert, &key, Some(&crl)).is_ok());
    // The private key never shows in Debug output.
    assert!(!format!("{other:?}").contains("PRIVATE KEY"));
}
