//! The central bank's certificate authority (CA) and the mutual-TLS configuration built on it.
//!
//! # What it owns
//! The central bank admits commercial banks to the network. For each bank its CA issues
//! - an **API server certificate** (`CertKind::Server`): the bank's public API, named by DNS names
//!   and/or IP addresses (subjectAltName), extendedKeyUsage serverAuth;
//! - a **client certificate** (`CertKind::Client`): what the bank presents when it calls the
//!   central-bank API over mutual TLS, extendedKeyUsage clientAuth;
//!
//! and it revokes them and publishes a CRL. The central bank's own API server certificate comes
//! from the same CA ([`Holder::CentralBank`]), so a bank needs to trust exactly one certificate.
//! Every key is ECDSA P-256 and every signature ECDSA with SHA-256, which both OpenSSL (issuing)
//! and rustls/webpki with the `ring` provider (verifying) support.
//!
//! # Persistence
//! A CA lives in one directory:
//! - `ca.key`: the CA private key, PKCS#8 PEM, mode 0600, created with `create_new` so that no
//!   code path can ever overwrite it; [`Ca::load`] refuses a key readable by group or others;
//! - `ca.pem`: the self-signed CA certificate;
//! - `issued.json`: the issuance index: one [`IssuedRecord`] per certificate ever issued
//!   (serial, holder, kind, validity, revocation time) and the last CRL number. It is rewritten
//!   atomically (temporary file, fsync, rename, fsync of the directory).
//!
//! Every change is persisted **before** its result is handed out: a certificate is returned only
//! once its record is durable (so every certificate in circulation can be revoked), a revocation
//! returns only once it is durable, and a CRL number is durable before the CRL carrying it leaves
//! (so CRL numbers never repeat). If the write fails, the in-memory state is rolled back and the
//! error returned; nothing was handed out.
//!
//! One [`Ca`] owns its directory: it holds an exclusive lock on `ca.key` for its lifetime, so a
//! second process (or a second `Ca` in this one) cannot interleave writes to the index.
//!
//! # Mutual TLS
//! [`server_config`] builds the central-bank API's rustls server: it asks every client for a
//! certificate, verifies a presented one against the CA and the CRL, and also admits clients
//! without one (officers authenticate with JWTs instead). After the handshake, [`client_bank`]
//! names the bank behind a verified client certificate. [`client_config`] is the matching
//! client for banks; [`client_config_anonymous`] trusts the CA without presenting a certificate.
//! TLS resumption is disabled on both sides because a resumed session skips the client
//! certificate (and so the revocation) check.
//!
//! # What it must never do
//! - Panic on a file, a PEM string or a peer certificate: those are external input.
//! - Put key material in an error, a log line or a `Debug` output: [`IssuedCert`]'s `Debug`
//!   redacts the key, and PEM errors on keys are reported without the offending text.
//! - Hand out a certificate, revocation or CRL number that is not yet on disk.

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)
)]

use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::error::ErrorStack;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::x509::extension::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
    SubjectKeyIdentifier,
};
use openssl::x509::{
    CrlNumber, X509, X509Builder, X509CrlBuilder, X509Name, X509NameBuilder, X509RevokedBuilder,
};
use rustls::client::Resumption;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::UnixTime;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{
    CertificateDer, CertificateRevocationListDer, DnsName, PrivateKeyDer, PrivatePkcs8KeyDer,
};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{NoServerSessionStorage, VerifierBuilderError, WebPkiClientVerifier};
use rustls::{ClientConfig, RootCertStore, ServerConfig, SupportedProtocolVersion};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

/// File name of the CA private key inside the CA directory.
pub const CA_KEY_FILE: &str = "ca.key";
/// File name of the CA certificate inside the CA directory.
pub const CA_CERT_FILE: &str = "ca.pem";
/// File name of the issuance index inside the CA directory.
pub const INDEX_FILE: &str = "issued.json";

/// Validity of the CA certificate. Ten years: rotating the trust anchor means touching every
/// bank, so it is rare; the leaf certificates carry the short lifetimes.
pub const CA_VALIDITY_DAYS: u32 = 3650;
/// Longest leaf validity: the CA/Browser Forum's historic 825-day ceiling, so a leaked key or a
/// missed revocation has a bounded life.
pub const MAX_VALIDITY_DAYS: u32 = 825;
/// How long a CRL is valid (nextUpdate − thisUpdate). [`server_config`] enforces it, so a
/// server must be rebuilt with a fresh CRL at least this often: a stale CRL could hide a
/// revocation, and failing closed is the safe side for a payment network.
pub const CRL_VALIDITY_DAYS: u32 = 7;
/// Most certificates one CA records. Keeps `issued.json` (about 200 bytes per record) and the
/// CRL bounded; a CA that issues more than this should be rotated.
pub const MAX_ISSUED: usize = 100_000;
/// Most subjectAltName entries in one server certificate.
pub const MAX_SANS: usize = 32;
/// Longest CA name in bytes: X.509's upper bound for an organizationName.
pub const MAX_CA_NAME_BYTES: usize = 64;

/// Certificates are valid from slightly before issuance so a verifier whose clock runs a little
/// behind the CA's does not reject a fresh certificate.
const NOT_BEFORE_BACKDATE_S: i64 = 300;
const SECONDS_PER_DAY: i64 = 86_400;
/// Serial numbers are 128 random bits (RFC 5280 allows up to 20 octets; CA/B asks ≥ 64 bits).
const SERIAL_BITS: i32 = 128;
/// Longest accepted serial text: 20 octets in hex.
const MAX_SERIAL_HEX_CHARS: usize = 40;
/// Attempts at drawing a serial that is non-zero and unused; a second attempt is already
/// astronomically unlikely.
const SERIAL_ATTEMPTS: u32 = 8;
/// Largest PEM file or string accepted for a key or certificate (chain).
const MAX_PEM_BYTES: u64 = 64 * 1024;
/// Largest CRL PEM accepted: room for [`MAX_ISSUED`] revoked entries.
const MAX_CRL_PEM_BYTES: u64 = 16 * 1024 * 1024;
/// Largest issuance index accepted on load: room for [`MAX_ISSUED`] records.
const MAX_INDEX_BYTES: u64 = 64 * 1024 * 1024;
/// Most certificates in a presented chain: leaf plus at most a few intermediates.
const MAX_CHAIN_CERTS: usize = 4;
/// Version of the `issued.json` layout.
const INDEX_FORMAT: u32 = 1;
/// Common name of the central bank's own certificates.
const CENTRAL_BANK_CN: &str = "central-bank";
/// Prefix of a bank's common name: `bank-<id>` with `<id>` in canonical decimal.
const BANK_CN_PREFIX: &str = "bank-";

/// TLS 1.3, and TLS 1.2 for bank stacks that do not speak 1.3 yet. Nothing older.
static PROTOCOL_VERSIONS: &[&SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

/// The CA's only source of time, in seconds since the Unix epoch: [`wall_clock`] in service,
/// anything else in tests and simulations (STYLE.md 15). TLS verification by rustls still uses
/// the wall clock.
pub type Clock = fn() -> Result<i64, PkiError>;

/// Everything that can go wrong in the CA or when building a TLS configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PkiError {
    /// A file-system operation failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A file exceeds the size this module accepts for it.
    #[error("{} is larger than {limit_bytes} bytes", path.display())]
    FileTooLarge { path: PathBuf, limit_bytes: u64 },
    /// OpenSSL failed (key generation, signing, parsing DER/PEM it was given).
    #[error("openssl: {0}")]
    OpenSsl(#[from] ErrorStack),
    /// A PEM input could not be used. `reason` never contains the input text, which may be a key.
    #[error("bad PEM for {what}: {reason}")]
    Pem { what: &'static str, reason: &'static str },
    /// [`Ca::create`] found an existing CA (or part of one) in the directory.
    #[error("a CA already exists in {}", .0.display())]
    CaExists(PathBuf),
    /// Another `Ca` (in this or another process) holds the directory.
    #[error("the CA in {} is in use by another process or handle", .0.display())]
    CaLocked(PathBuf),
    /// The CA key file is readable by group or others.
    #[error("{} has mode {mode:o}: the CA key must not be readable by group or others (0600)", path.display())]
    InsecureKeyFile { path: PathBuf, mode: u32 },
    /// The CA directory holds files that do not form a valid CA.
    #[error("invalid CA state in {}: {reason}", path.display())]
    InvalidState { path: PathBuf, reason: String },
    /// A request was refused before anything was generated or signed.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// [`Ca::revoke`] was given a serial this CA never issued.
    #[error("unknown serial {0}")]
    UnknownSerial(String),
    /// The CA has issued [`MAX_ISSUED`] certificates.
    #[error("the CA has issued its maximum of {MAX_ISSUED} certificates; rotate the CA")]
    IndexFull,
    /// The system clock is before 1970 or beyond what the certificate fields can hold.
    #[error("system clock unusable: {0}")]
    Clock(&'static str),
    /// rustls refused a configuration (e.g. a key that does not match its certificate).
    #[error("tls: {0}")]
    Tls(#[from] rustls::Error),
    /// The client-certificate verifier could not be built (e.g. an unparsable CRL).
    #[error("client certificate verifier: {0}")]
    Verifier(#[from] VerifierBuilderError),
}

/// Who a certificate belongs to; it becomes the subject common name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Holder {
    /// The central bank itself (its API server certificate): CN `central-bank`.
    CentralBank,
    /// A commercial bank, by its ledger bank id: CN `bank-<id>`.
    Bank(u32),
}

/// What a certificate is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertKind {
    /// A TLS server certificate for the names given; at least one name in total.
    Server { dns: Vec<String>, ips: Vec<IpAddr> },
    /// A TLS client certificate for mutual TLS towards the central bank.
    Client,
}

/// The kind of an issued certificate as recorded in the index (without the names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IssuedKind {
    Server,
    Client,
}

/// A request to [`Ca::issue`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueRequest {
    pub holder: Holder,
    pub kind: CertKind,
    /// `1..=MAX_VALIDITY_DAYS`, and the certificate must not outlive the CA certificate.
    pub validity_days: u32,
}

/// A freshly issued certificate and its private key. The key exists only here: the CA keeps no
/// copy, so the caller must deliver it to the bank (or lose it and issue anew).
#[derive(Clone)]
pub struct IssuedCert {
    /// The serial number in lowercase hex without leading zeros, as [`Ca::revoke`] takes it.
    pub serial: String,
    /// The certificate's private key, PKCS#8 PEM. A secret: never log it.
    pub key_pem: String,
    /// The certificate, PEM.
    pub cert_pem: String,
    /// notAfter, in seconds since the Unix epoch.
    pub not_after_unix_s: i64,
}

impl fmt::Debug for IssuedCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedCert")
            .field("serial", &self.serial)
            .field("key_pem", &"<redacted>")
            .field("cert_pem", &self.cert_pem)
            .field("not_after_unix_s", &self.not_after_unix_s)
            .finish()
    }
}

/// One certificate in the issuance index (`issued.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuedRecord {
    /// Lowercase hex without leading zeros.
    pub serial: String,
    pub holder: Holder,
    pub kind: IssuedKind,
    /// notBefore, seconds since the Unix epoch.
    pub not_before_unix_s: i64,
    /// notAfter, seconds since the Unix epoch.
    pub not_after_unix_s: i64,
    /// When [`Ca::revoke`] recorded the revocation; `None` while the certificate is in force.
    pub revoked_at_unix_s: Option<i64>,
}

/// The on-disk issuance index.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Index {
    format: u32,
    /// The number of the last CRL handed out; 0 before the first.
    crl_number: u64,
    certificates: Vec<IssuedRecord>,
}

/// The central bank's certificate authority, owning its directory (see the module docs).
pub struct Ca {
    dir: PathBuf,
    name: String,
    key: PKey<Private>,
    cert: X509,
    cert_pem: String,
    not_after_unix_s: i64,
    index: Index,
    clock: Clock,
    /// `ca.key`, exclusively locked for as long as this `Ca` lives.
    _lock: File,
}

impl fmt::Debug for Ca {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ca")
            .field("dir", &self.dir)
            .field("name", &self.name)
            .field("not_after_unix_s", &self.not_after_unix_s)
            .field("issued", &self.index.certificates.len())
            .field("crl_number", &self.index.crl_number)
            .finish_non_exhaustive()
    }
}

impl Ca {
    /// Creates a CA in `dir` (created if missing): a fresh P-256 key, a self-signed certificate
    /// with subject `CN=<name>, O=<name>` valid for [`CA_VALIDITY_DAYS`], and an empty index.
    ///
    /// Refuses with [`PkiError::CaExists`] if `dir` holds any of the CA's files: creating over
    /// an existing CA would orphan every certificate it issued. If creation fails part-way
    /// (disk full), the directory holds a partial CA that `load` refuses and `create` will not
    /// overwrite: inspect and remove it by hand.
    pub fn create(dir: &Path, name: &str) -> Result<Ca, PkiError> {
        Ca::create_with_clock(dir, name, wall_clock)
    }

    /// [`Ca::create`] with the given clock for every date the CA writes.
    pub fn create_with_clock(dir: &Path, name: &str, clock: Clock) -> Result<Ca, PkiError> {
        validate_ca_name(name)?;
        fs::create_dir_all(dir).map_err(|e| io_error("create directory", dir, e))?;
        for file in [CA_KEY_FILE, CA_CERT_FILE, INDEX_FILE] {
            let path = dir.join(file);
            match fs::symlink_metadata(&path) {
                Ok(_) => return Err(PkiError::CaExists(dir.to_path_buf())),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_error("inspect", &path, e)),
            }
        }
        let now = clock()?;
        let key = generate_p256_key()?;
        let not_after = add_days(now, CA_VALIDITY_DAYS)?;
        let cert = build_ca_cert(&key, name, now.saturating_sub(NOT_BEFORE_BACKDATE_S), not_after)?;
        let key_pem = key.private_key_to_pem_pkcs8()?;
        let cert_pem = pem_string(cert.to_pem()?)?;
        let index = Index { format: INDEX_FORMAT, crl_number: 0, certificates: Vec::new() };

        let lock = write_new_key_file(dir, &key_pem)?;
        write_new_file(&dir.join(CA_CERT_FILE), cert_pem.as_bytes())?;
        write_atomically(dir, INDEX_FILE, &index_json(&index)?)?;
        sync_dir(dir)?;
        Ok(Ca {
            dir: dir.to_path_buf(),
            name: name.to_owned(),
            key,
            cert,
            cert_pem,
            not_after_unix_s: not_after,
            index,
            clock,
            _lock: lock,
        })
    }

    /// Loads the CA in `dir`, checking that the key is P-256 and private to its owner, that it
    /// matches the certificate, that the certificate is self-signed, and that the index is
    /// well formed. Any inconsistency is an error: this is the root of trust.
    pub fn load(dir: &Path) -> Result<Ca, PkiError> {
        Ca::load_with_clock(dir, wall_clock)
    }

    /// [`Ca::load`] with the given clock for every date the CA writes.
    pub fn load_with_clock(dir: &Path, clock: Clock) -> Result<Ca, PkiError> {
        let key_path = dir.join(CA_KEY_FILE);
        let mut key_file = File::open(&key_path).map_err(|e| io_error("open", &key_path, e))?;
        lock_exclusive(&key_file, dir)?;
        check_key_file_mode(&key_file, &key_path)?;
        let key_pem = read_bounded(&mut key_file, &key_path, MAX_PEM_BYTES)?;
        let key = parse_private_key(&key_pem, "CA key")?;
        check_p256(&key, &key_path)?;

        let cert_path = dir.join(CA_CERT_FILE);
        let cert_pem = pem_string(read_file_bounded(&cert_path, MAX_PEM_BYTES)?)?;
        let cert = X509::from_pem(cert_pem.as_bytes())?;
        check_ca_cert(&cert, &key, &cert_path)?;
        let name = organization_name(&cert).ok_or_else(|| PkiError::InvalidState {
            path: cert_path.clone(),
            reason: "the CA certificate has no single organizationName".into(),
        })?;
        let not_after_unix_s = asn1_to_unix_s(cert.not_after())?;

        let index_path = dir.join(INDEX_FILE);
        let index_bytes = read_file_bounded(&index_path, MAX_INDEX_BYTES)?;
        let index = parse_index(&index_bytes)
            .map_err(|reason| PkiError::InvalidState { path: index_path, reason })?;
        Ok(Ca {
            dir: dir.to_path_buf(),
            name,
            key,
            cert,
            cert_pem,
            not_after_unix_s,
            index,
            clock,
            _lock: key_file,
        })
    }

    /// The CA's name: the organizationName of every certificate it issues.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The CA certificate, PEM: what banks and the central-bank server trust.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// Every certificate this CA has issued, oldest first.
    pub fn issued(&self) -> Vec<IssuedRecord> {
        self.index.certificates.clone()
    }

    /// Issues a certificate with a fresh P-256 key, records it durably, then returns it.
    pub fn issue(&mut self, request: &IssueRequest) -> Result<IssuedCert, PkiError> {
        validate_request(request)?;
        if self.index.certificates.len() >= MAX_ISSUED {
            return Err(PkiError::IndexFull);
        }
        let now = (self.clock)()?;
        let not_before = now.saturating_sub(NOT_BEFORE_BACKDATE_S);
        let not_after = add_days(now, request.validity_days)?;
        if not_after > self.not_after_unix_s {
            return Err(PkiError::InvalidRequest(
                "the certificate would outlive the CA certificate".into(),
            ));
        }
        let serial = self.fresh_serial()?;
        let key = generate_p256_key()?;
        let cert = self.build_leaf(&serial, &key, request, not_before, not_after)?;
        let issued = IssuedCert {
            serial: canonical_hex(&serial)?,
            key_pem: pem_string(key.private_key_to_pem_pkcs8()?)?,
            cert_pem: pem_string(cert.to_pem()?)?,
            not_after_unix_s: not_after,
        };
        let kind = match request.kind {
            CertKind::Server { .. } => IssuedKind::Server,
            CertKind::Client => IssuedKind::Client,
        };
        self.index.certificates.push(IssuedRecord {
            serial: issued.serial.clone(),
            holder: request.holder,
            kind,
            not_before_unix_s: not_before,
            not_after_unix_s: not_after,
            revoked_at_unix_s: None,
        });
        if let Err(e) = self.persist_index() {
            self.index.certificates.pop();
            return Err(e);
        }
        Ok(issued)
    }

    /// Revokes the certificate with this serial (hex, any case, leading zeros allowed) and
    /// records the revocation durably. Revoking twice is fine and keeps the first time.
    /// It takes effect for a server once the server is rebuilt with a new [`Ca::crl_pem`].
    pub fn revoke(&mut self, serial: &str) -> Result<(), PkiError> {
        let serial = normalize_serial(serial)?;
        let now = (self.clock)()?;
        let Some(position) = self.index.certificates.iter().position(|r| r.serial == serial) else {
            return Err(PkiError::UnknownSerial(serial));
        };
        let Some(record) = self.index.certificates.get_mut(position) else {
            return Err(PkiError::UnknownSerial(serial));
        };
        if record.revoked_at_unix_s.is_some() {
            return Ok(());
        }
        record.revoked_at_unix_s = Some(now);
        if let Err(e) = self.persist_index() {
            if let Some(record) = self.index.certificates.get_mut(position) {
                record.revoked_at_unix_s = None;
            }
            return Err(e);
        }
        Ok(())
    }

    /// A new CRL, PEM, signed by the CA: every revoked serial with its revocation time,
    /// thisUpdate now, nextUpdate in [`CRL_VALIDITY_DAYS`], authorityKeyIdentifier, and the next
    /// CRL number, which is persisted before the CRL is returned (hence `&mut self`).
    pub fn crl_pem(&mut self) -> Result<String, PkiError> {
        let number =
            self.index.crl_number.checked_add(1).ok_or_else(|| PkiError::InvalidState {
                path: self.dir.join(INDEX_FILE),
                reason: "CRL number exhausted".into(),
            })?;
        let now = (self.clock)()?;
        let crl = self.build_crl(number, now)?;
        let previous = self.index.crl_number;
        self.index.crl_number = number;
        if let Err(e) = self.persist_index() {
            self.index.crl_number = previous;
            return Err(e);
        }
        Ok(crl)
    }

    fn build_crl(&self, number: u64, now: i64) -> Result<String, PkiError> {
        let mut builder = X509CrlBuilder::new()?;
        builder.set_issuer_name(self.cert.subject_name())?;
        builder.set_last_update(&*unix_to_asn1(now)?)?;
        builder.set_next_update(&*unix_to_asn1(add_days(now, CRL_VALIDITY_DAYS)?)?)?;
        let context_holder = X509Builder::new()?;
        let context = context_holder.x509v3_context(Some(&self.cert), None);
        builder.append_extension(AuthorityKeyIdentifier::new().keyid(true).build(&context)?)?;
        builder.append_extension(
            CrlNumber::new(BigNum::from_slice(&number.to_be_bytes())?)?.build()?,
        )?;
        for record in &self.index.certificates {
            let Some(revoked_at) = record.revoked_at_unix_s else { continue };
            let serial = BigNum::from_hex_str(&record.serial)?;
            let mut entry = X509RevokedBuilder::new()?;
            entry.set_serial_number(&*Asn1Integer::from_bn(&serial)?)?;
            entry.set_revocation_date(&*unix_to_asn1(revoked_at)?)?;
            builder.add_revoked(entry.build())?;
        }
        builder.sort()?;
        builder.sign(&self.key, MessageDigest::sha256())?;
        pem_string(builder.build()?.to_pem()?)
    }

    /// A random positive 128-bit serial, non-zero and not yet used by this CA.
    fn fresh_serial(&self) -> Result<BigNum, PkiError> {
        for _ in 0..SERIAL_ATTEMPTS {
            let mut serial = BigNum::new()?;
            serial.rand(SERIAL_BITS, MsbOption::MAYBE_ZERO, false)?;
            let hex = canonical_hex(&serial)?;
            if hex != "0" && !self.index.certificates.iter().any(|r| r.serial == hex) {
                return Ok(serial);
            }
        }
        Err(PkiError::InvalidState {
            path: self.dir.join(INDEX_FILE),
            reason: "could not draw an unused serial number".into(),
        })
    }

    fn build_leaf(
        &self,
        serial: &BigNum,
        key: &PKey<Private>,
        request: &IssueRequest,
        not_before: i64,
        not_after: i64,
    ) -> Result<X509, PkiError> {
        let mut builder = X509Builder::new()?;
        builder.set_version(2)?;
        builder.set_serial_number(&*Asn1Integer::from_bn(serial)?)?;
        builder.set_subject_name(&*subject_name(&holder_cn(request.holder), &self.name)?)?;
        builder.set_issuer_name(self.cert.subject_name())?;
        builder.set_pubkey(key)?;
        builder.set_not_before(&*unix_to_asn1(not_before)?)?;
        builder.set_not_after(&*unix_to_asn1(not_after)?)?;
        builder.append_extension(BasicConstraints::new().critical().build()?)?;
        builder.append_extension(KeyUsage::new().critical().digital_signature().build()?)?;
        let mut extended = ExtendedKeyUsage::new();
        match &request.kind {
            CertKind::Server { .. } => extended.server_auth(),
            CertKind::Client => extended.client_auth(),
        };
        builder.append_extension(extended.build()?)?;
        let subject_key_id =
            SubjectKeyIdentifier::new().build(&builder.x509v3_context(Some(&self.cert), None))?;
        builder.append_extension(subject_key_id)?;
        let authority_key_id = AuthorityKeyIdentifier::new()
            .keyid(true)
            .build(&builder.x509v3_context(Some(&self.cert), None))?;
        builder.append_extension(authority_key_id)?;
        if let CertKind::Server { dns, ips } = &request.kind {
            let mut names = SubjectAlternativeName::new();
            for name in dns {
                names.dns(name);
            }
            for ip in ips {
                names.ip(&ip.to_string());
            }
            let extension = names.build(&builder.x509v3_context(Some(&self.cert), None))?;
            builder.append_extension(extension)?;
        }
        builder.sign(&self.key, MessageDigest::sha256())?;
        Ok(builder.build())
    }

    fn persist_index(&self) -> Result<(), PkiError> {
        write_atomically(&self.dir, INDEX_FILE, &index_json(&self.index)?)
    }
}

// ---------------------------------------------------------------------------------------------
// TLS configuration
// ---------------------------------------------------------------------------------------------

/// The rustls server for the central-bank API.
///
/// It requests a client certificate from every client. A presented certificate must chain to
/// the CA in `ca_cert_pem`, carry extendedKeyUsage clientAuth, be within its validity and — when
/// `crl_pem` is given — be listed as not revoked by that CRL: a CRL that is not the CA's, or has
/// passed its nextUpdate, makes every client certificate fail (fail closed). A client that
/// presents no certificate is admitted: it must then authenticate otherwise (officers' JWTs), and
/// [`client_bank`] returns `None` for it. Pass `crl_pem: None` only where revocation does not
/// matter (tests, bootstrapping): without a CRL no revocation is checked.
///
/// To apply a new revocation, build a new configuration with the new CRL and use it for new
/// connections. Session resumption is off, so no connection skips the check.
/// `server_cert_pem` may hold a chain (leaf first). ALPN is left empty for the HTTP layer to set.
pub fn server_config(
    ca_cert_pem: &str,
    server_cert_pem: &str,
    server_key_pem: &str,
    crl_pem: Option<&str>,
) -> Result<ServerConfig, PkiError> {
    server_config_refreshable(ca_cert_pem, server_cert_pem, server_key_pem, crl_pem)
        .map(|(config, _)| config)
}

/// [`server_config`], plus a handle to replace its CRL while the server runs (a CRL expires
/// after [`CRL_VALIDITY_DAYS`], and a revocation must reach running servers).
pub fn server_config_refreshable(
    ca_cert_pem: &str,
    server_cert_pem: &str,
    server_key_pem: &str,
    crl_pem: Option<&str>,
) -> Result<(ServerConfig, Arc<CrlVerifier>), PkiError> {
    let provider = ring_provider();
    let roots = Arc::new(root_store(ca_cert_pem)?);
    let verifier = Arc::new(CrlVerifier::new(roots, provider.clone(), crl_pem)?);
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(PROTOCOL_VERSIONS)?
        .with_client_cert_verifier(verifier.clone())
        .with_single_cert(
            parse_chain(server_cert_pem, "server certificate")?,
            parse_key_der(server_key_pem, "server key")?,
        )?;
    // No resumption: a resumed session keeps the client certificate of the first handshake
    // without checking it against the current CRL.
    config.session_storage = Arc::new(NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    // No 0-RTT or half-RTT data: both are replayable or sent before the client is verified.
    config.max_early_data_size = 0;
    config.send_half_rtt_data = false;
    config.ignore_client_order = false;
    // TLS 1.2 only with the extended master secret (RFC 7627), closing the triple handshake.
    config.require_ems = true;
    config.enable_secret_extraction = false;
    config.max_fragment_size = None;
    config.alpn_protocols = Vec::new();
    Ok((config, verifier))
}

fn client_verifier(
    roots: Arc<RootCertStore>,
    provider: Arc<CryptoProvider>,
    crl_pem: Option<&str>,
) -> Result<Arc<dyn ClientCertVerifier>, PkiError> {
    let crls = match crl_pem {
        Some(pem) => vec![parse_crl(pem)?],
        None => Vec::new(),
    };
    Ok(WebPkiClientVerifier::builder_with_provider(roots, provider)
        .with_crls(crls)
        // The CA signs leaves directly; there is no intermediate whose status could be asked.
        .only_check_end_entity_revocation()
        // Not calling allow_unknown_revocation_status(): a certificate the CRL cannot speak for
        // is refused.
        .enforce_revocation_expiration()
        .allow_unauthenticated()
        .build()?)
}

/// The API server's client-certificate verifier, whose CRL [`CrlVerifier::update`] replaces
/// for every later handshake (the CA's certificate stays the same).
pub struct CrlVerifier {
    roots: Arc<RootCertStore>,
    provider: Arc<CryptoProvider>,
    hints: Vec<DistinguishedName>,
    inner: RwLock<Arc<dyn ClientCertVerifier>>,
}

impl fmt::Debug for CrlVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CrlVerifier").finish_non_exhaustive()
    }
}

impl CrlVerifier {
    fn new(
        roots: Arc<RootCertStore>,
        provider: Arc<CryptoProvider>,
        crl_pem: Option<&str>,
    ) -> Result<CrlVerifier, PkiError> {
        let inner = client_verifier(roots.clone(), provider.clone(), crl_pem)?;
        let hints = inner.root_hint_subjects().to_vec();
        Ok(CrlVerifier { roots, provider, hints, inner: RwLock::new(inner) })
    }

    /// Checks new handshakes against `crl_pem` from now on.
    pub fn update(&self, crl_pem: &str) -> Result<(), PkiError> {
        let next = client_verifier(self.roots.clone(), self.provider.clone(), Some(crl_pem))?;
        match self.inner.write() {
            Ok(mut guard) => *guard = next,
            Err(poisoned) => *poisoned.into_inner() = next,
        }
        Ok(())
    }

    fn current(&self) -> Arc<dyn ClientCertVerifier> {
        match self.inner.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

impl ClientCertVerifier for CrlVerifier {
    fn offer_client_auth(&self) -> bool {
        self.current().offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.current().client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.hints
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.current().verify_client_cert(end_entity, intermediates, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.current().verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.current().verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.current().supported_verify_schemes()
    }
}

/// The rustls client a bank uses to call the central bank: trusts only the CA in `ca_cert_pem`
/// and presents the bank's client certificate.
pub fn client_config(
    ca_cert_pem: &str,
    client_cert_pem: &str,
    client_key_pem: &str,
) -> Result<ClientConfig, PkiError> {
    let config = ClientConfig::builder_with_provider(ring_provider())
        .with_protocol_versions(PROTOCOL_VERSIONS)?
        .with_root_certificates(root_store(ca_cert_pem)?)
        .with_client_auth_cert(
            parse_chain(client_cert_pem, "client certificate")?,
            parse_key_der(client_key_pem, "client key")?,
        )?;
    Ok(harden_client(config))
}

/// A rustls client that trusts only the CA in `ca_cert_pem` and presents no certificate: for
/// callers that authenticate otherwise, and for checking a bank's API server certificate.
pub fn client_config_anonymous(ca_cert_pem: &str) -> Result<ClientConfig, PkiError> {
    let config = ClientConfig::builder_with_provider(ring_provider())
        .with_protocol_versions(PROTOCOL_VERSIONS)?
        .with_root_certificates(root_store(ca_cert_pem)?)
        .with_no_client_auth();
    Ok(harden_client(config))
}

/// The bank behind a client certificate: `Some(id)` when the end-entity certificate's only
/// common name is `bank-<id>` (canonical decimal), `None` otherwise — no certificate, the
/// central bank's own, or anything unparsable.
///
/// Call it only with the chain rustls verified for this connection
/// (`ServerConnection::peer_certificates`); it does not verify anything itself.
pub fn client_bank(peer_certs: &[CertificateDer<'_>]) -> Option<u32> {
    let end_entity = peer_certs.first()?;
    let cert = X509::from_der(end_entity.as_ref()).ok()?;
    let mut common_names = cert.subject_name().entries_by_nid(Nid::COMMONNAME);
    let common_name = common_names.next()?;
    if common_names.next().is_some() {
        return None;
    }
    parse_bank_cn(&common_name.data().to_string().ok()?)
}

/// Pins the ring provider explicitly rather than relying on a process-wide default.
fn ring_provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn harden_client(mut config: ClientConfig) -> ClientConfig {
    config.resumption = Resumption::disabled();
    config.enable_early_data = false;
    config.enable_sni = true;
    config.require_ems = true;
    config.enable_secret_extraction = false;
    config.max_fragment_size = None;
    config.alpn_protocols = Vec::new();
    config
}

fn root_store(ca_cert_pem: &str) -> Result<RootCertStore, PkiError> {
    check_pem_len(ca_cert_pem, MAX_PEM_BYTES, "CA certificate")?;
    let ca = CertificateDer::from_pem_slice(ca_cert_pem.as_bytes())
        .map_err(|e| pem_error("CA certificate", &e))?;
    let mut roots = RootCertStore::empty();
    roots.add(ca)?;
    Ok(roots)
}

fn parse_chain(pem: &str, what: &'static str) -> Result<Vec<CertificateDer<'static>>, PkiError> {
    check_pem_len(pem, MAX_PEM_BYTES, what)?;
    let mut chain = Vec::new();
    for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        if chain.len() >= MAX_CHAIN_CERTS {
            return Err(PkiError::Pem { what, reason: "too many certificates in the chain" });
        }
        chain.push(cert.map_err(|e| pem_error(what, &e))?);
    }
    if chain.is_empty() {
        return Err(PkiError::Pem { what, reason: "no certificate found" });
    }
    Ok(chain)
}

fn parse_key_der(pem: &str, what: &'static str) -> Result<PrivateKeyDer<'static>, PkiError> {
    check_pem_len(pem, MAX_PEM_BYTES, what)?;
    PrivateKeyDer::from_pem_slice(pem.as_bytes()).map_err(|e| pem_error(what, &e))
}

fn parse_crl(pem: &str) -> Result<CertificateRevocationListDer<'static>, PkiError> {
    check_pem_len(pem, MAX_CRL_PEM_BYTES, "CRL")?;
    CertificateRevocationListDer::from_pem_slice(pem.as_bytes()).map_err(|e| pem_error("CRL", &e))
}

fn check_pem_len(pem: &str, limit_bytes: u64, what: &'static str) -> Result<(), PkiError> {
    if u64::try_from(pem.len()).map_or(true, |len| len > limit_bytes) {
        return Err(PkiError::Pem { what, reason: "input too large" });
    }
    Ok(())
}

/// Maps a PEM error to a reason without the offending text, which could be part of a key.
fn pem_error(what: &'static str, error: &pem::Error) -> PkiError {
    let reason = match error {
        pem::Error::MissingSectionEnd { .. } => "a section has no END line",
        pem::Error::IllegalSectionStart { .. } => "malformed BEGIN line",
        pem::Error::Base64Decode(_) => "invalid base64",
        pem::Error::Io(_) => "read error",
        pem::Error::NoItemsFound => "no item of the expected type found",
        pem::Error::SectionTooLarge => "section too large",
        _ => "unreadable PEM",
    };
    PkiError::Pem { what, reason }
}

// ---------------------------------------------------------------------------------------------
// Pure helpers
// ---------------------------------------------------------------------------------------------

fn validate_ca_name(name: &str) -> Result<(), PkiError> {
    if name.is_empty() || name.len() > MAX_CA_NAME_BYTES {
        return Err(PkiError::InvalidRequest(format!(
            "the CA name must be 1..={MAX_CA_NAME_BYTES} bytes"
        )));
    }
    // Printable ASCII keeps the name identical in every tool that displays a certificate.
    if !name.bytes().all(|b| b == b' ' || b.is_ascii_graphic()) {
        return Err(PkiError::InvalidRequest("the CA name must be printable ASCII".into()));
    }
    Ok(())
}

fn validate_request(request: &IssueRequest) -> Result<(), PkiError> {
    if !(1..=MAX_VALIDITY_DAYS).contains(&request.validity_days) {
        return Err(PkiError::InvalidRequest(format!(
            "validity_days must be 1..={MAX_VALIDITY_DAYS}, not {}",
            request.validity_days
        )));
    }
    let CertKind::Server { dns, ips } = &request.kind else { return Ok(()) };
    let names = dns.len().saturating_add(ips.len());
    if names == 0 {
        return Err(PkiError::InvalidRequest(
            "a server certificate needs at least one DNS name or IP address".into(),
        ));
    }
    if names > MAX_SANS {
        return Err(PkiError::InvalidRequest(format!(
            "a server certificate takes at most {MAX_SANS} names"
        )));
    }
    for name in dns {
        // Wildcards are refused: every name a bank serves is registered explicitly.
        if name.contains('*') || DnsName::try_from(name.as_str()).is_err() {
            return Err(PkiError::InvalidRequest(format!("invalid DNS name {name:?}")));
        }
    }
    Ok(())
}

fn holder_cn(holder: Holder) -> String {
    match holder {
        Holder::CentralBank => CENTRAL_BANK_CN.to_owned(),
        Holder::Bank(id) => format!("{BANK_CN_PREFIX}{id}"),
    }
}

/// `bank-<id>` with `<id>` a u32 in canonical decimal (no sign, no leading zeros), else `None`.
fn parse_bank_cn(common_name: &str) -> Option<u32> {
    let digits = common_name.strip_prefix(BANK_CN_PREFIX)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if digits.len() > 1 && digits.starts_with('0') {
        return None;
    }
    digits.parse().ok()
}

/// Canonical serial text: lowercase hex without leading zeros ("0" for zero).
fn normalize_serial(serial: &str) -> Result<String, PkiError> {
    if serial.is_empty()
        || serial.len() > MAX_SERIAL_HEX_CHARS
        || !serial.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return Err(PkiError::InvalidRequest(format!(
            "a serial is 1..={MAX_SERIAL_HEX_CHARS} hex digits"
        )));
    }
    let trimmed = serial.trim_start_matches('0');
    Ok(if trimmed.is_empty() { "0".to_owned() } else { trimmed.to_ascii_lowercase() })
}

fn canonical_hex(serial: &BigNum) -> Result<String, PkiError> {
    normalize_serial(&serial.to_hex_str()?)
}

/// Parses and checks `issued.json`; the error is the reason, for [`PkiError::InvalidState`].
fn parse_index(bytes: &[u8]) -> Result<Index, String> {
    let index: Index = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    if index.format != INDEX_FORMAT {
        return Err(format!("unsupported format {}", index.format));
    }
    if index.certificates.len() > MAX_ISSUED {
        return Err(format!("more than {MAX_ISSUED} certificates"));
    }
    let mut seen = BTreeSet::new();
    for record in &index.certificates {
        let canonical = normalize_serial(&record.serial).map_err(|e| e.to_string())?;
        if canonical != record.serial || canonical == "0" {
            return Err(format!("non-canonical serial {:?}", record.serial));
        }
        if !seen.insert(record.serial.as_str()) {
            return Err(format!("duplicate serial {}", record.serial));
        }
    }
    Ok(index)
}

fn index_json(index: &Index) -> Result<Vec<u8>, PkiError> {
    serde_json::to_vec_pretty(index).map_err(|e| PkiError::InvalidState {
        path: PathBuf::from(INDEX_FILE),
        reason: format!("cannot encode the index: {e}"),
    })
}

fn add_days(unix_s: i64, days: u32) -> Result<i64, PkiError> {
    i64::from(days)
        .checked_mul(SECONDS_PER_DAY)
        .and_then(|seconds| unix_s.checked_add(seconds))
        .ok_or(PkiError::Clock("date out of range"))
}

// ---------------------------------------------------------------------------------------------
// OpenSSL helpers
// ---------------------------------------------------------------------------------------------

fn generate_p256_key() -> Result<PKey<Private>, PkiError> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
    Ok(PKey::from_ec_key(EcKey::generate(&group)?)?)
}

fn subject_name(common_name: &str, organization: &str) -> Result<X509Name, PkiError> {
    let mut name = X509NameBuilder::new()?;
    name.append_entry_by_nid(Nid::COMMONNAME, common_name)?;
    name.append_entry_by_nid(Nid::ORGANIZATIONNAME, organization)?;
    Ok(name.build())
}

fn build_ca_cert(
    key: &PKey<Private>,
    name: &str,
    not_before: i64,
    not_after: i64,
) -> Result<X509, PkiError> {
    let mut serial = BigNum::new()?;
    serial.rand(SERIAL_BITS, MsbOption::MAYBE_ZERO, false)?;
    let subject = subject_name(name, name)?;
    let mut builder = X509Builder::new()?;
    builder.set_version(2)?;
    builder.set_serial_number(&*Asn1Integer::from_bn(&serial)?)?;
    builder.set_subject_name(&subject)?;
    builder.set_issuer_name(&subject)?;
    builder.set_pubkey(key)?;
    builder.set_not_before(&*unix_to_asn1(not_before)?)?;
    builder.set_not_after(&*unix_to_asn1(not_after)?)?;
    // pathlen 0: this CA signs end-entity certificates only, never another CA.
    builder.append_extension(BasicConstraints::new().critical().ca().pathlen(0).build()?)?;
    builder.append_extension(KeyUsage::new().critical().key_cert_sign().crl_sign().build()?)?;
    let subject_key_id = SubjectKeyIdentifier::new().build(&builder.x509v3_context(None, None))?;
    builder.append_extension(subject_key_id)?;
    builder.sign(key, MessageDigest::sha256())?;
    Ok(builder.build())
}

fn parse_private_key(pem: &[u8], what: &'static str) -> Result<PKey<Private>, PkiError> {
    // Through pki-types rather than OpenSSL's PEM reader, which would prompt on the terminal
    // for a passphrase if handed an encrypted key.
    let der = PrivatePkcs8KeyDer::from_pem_slice(pem).map_err(|e| pem_error(what, &e))?;
    Ok(PKey::private_key_from_pkcs8(der.secret_pkcs8_der())?)
}

fn check_p256(key: &PKey<Private>, path: &Path) -> Result<(), PkiError> {
    let curve = key.ec_key().ok().and_then(|k| k.group().curve_name());
    if curve != Some(Nid::X9_62_PRIME256V1) {
        return Err(PkiError::InvalidState {
            path: path.to_path_buf(),
            reason: "the CA key is not an ECDSA P-256 key".into(),
        });
    }
    Ok(())
}

fn check_ca_cert(cert: &X509, key: &PKey<Private>, path: &Path) -> Result<(), PkiError> {
    let invalid = |reason: &str| PkiError::InvalidState {
        path: path.to_path_buf(),
        reason: reason.to_owned(),
    };
    let public = cert.public_key()?;
    if !public.public_eq(key) {
        return Err(invalid("the CA certificate does not match ca.key"));
    }
    if !cert.verify(&public)? {
        return Err(invalid("the CA certificate is not self-signed by ca.key"));
    }
    Ok(())
}

fn organization_name(cert: &X509) -> Option<String> {
    let mut entries = cert.subject_name().entries_by_nid(Nid::ORGANIZATIONNAME);
    let entry = entries.next()?;
    if entries.next().is_some() {
        return None;
    }
    entry.data().to_string().ok()
}

#[allow(clippy::useless_conversion, reason = "time_t is i64 only on 64-bit targets")]
fn unix_to_asn1(unix_s: i64) -> Result<Asn1Time, PkiError> {
    let time = unix_s.try_into().map_err(|_| PkiError::Clock("time out of range"))?;
    Ok(Asn1Time::from_unix(time)?)
}

fn asn1_to_unix_s(time: &openssl::asn1::Asn1TimeRef) -> Result<i64, PkiError> {
    let diff = Asn1Time::from_unix(0)?.diff(time)?;
    i64::from(diff.days)
        .checked_mul(SECONDS_PER_DAY)
        .and_then(|seconds| seconds.checked_add(i64::from(diff.secs)))
        .ok_or(PkiError::Clock("date out of range"))
}

fn pem_string(bytes: Vec<u8>) -> Result<String, PkiError> {
    String::from_utf8(bytes).map_err(|_| PkiError::Pem { what: "PEM text", reason: "not UTF-8" })
}

/// The wall clock, in seconds since the Unix epoch: the [`Clock`] of [`Ca::create`] and
/// [`Ca::load`].
#[allow(
    clippy::disallowed_methods,
    reason = "certificate validity is wall-clock time, and rustls checks it against this clock"
)]
pub fn wall_clock() -> Result<i64, PkiError> {
    let since_epoch =
        SystemTime::now().duration_since(UNIX_EPOCH).map_err(|_| PkiError::Clock("before 1970"))?;
    i64::try_from(since_epoch.as_secs()).map_err(|_| PkiError::Clock("too far in the future"))
}

// ---------------------------------------------------------------------------------------------
// File helpers
// ---------------------------------------------------------------------------------------------

fn io_error(op: &'static str, path: &Path, source: io::Error) -> PkiError {
    PkiError::Io { op, path: path.to_path_buf(), source }
}

fn lock_exclusive(file: &File, dir: &Path) -> Result<(), PkiError> {
    match file.try_lock() {
        Ok(()) => Ok(()),
        Err(fs::TryLockError::WouldBlock) => Err(PkiError::CaLocked(dir.to_path_buf())),
        Err(fs::TryLockError::Error(e)) => Err(io_error("lock", &dir.join(CA_KEY_FILE), e)),
    }
}

/// Writes the CA key to a file that did not exist (`create_new`), mode 0600 from the start, and
/// returns it locked.
fn write_new_key_file(dir: &Path, key_pem: &[u8]) -> Result<File, PkiError> {
    let path = dir.join(CA_KEY_FILE);
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&path).map_err(|e| match e.kind() {
        io::ErrorKind::AlreadyExists => PkiError::CaExists(dir.to_path_buf()),
        _ => io_error("create", &path, e),
    })?;
    lock_exclusive(&file, dir)?;
    file.write_all(key_pem).map_err(|e| io_error("write", &path, e))?;
    file.sync_all().map_err(|e| io_error("sync", &path, e))?;
    Ok(file)
}

fn write_new_file(path: &Path, bytes: &[u8]) -> Result<(), PkiError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| io_error("create", path, e))?;
    file.write_all(bytes).map_err(|e| io_error("write", path, e))?;
    file.sync_all().map_err(|e| io_error("sync", path, e))
}

/// Replaces `dir/name` with `bytes` so that a crash leaves either the old or the new content.
fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), PkiError> {
    let temporary = dir.join(format!(".{name}.tmp"));
    let target = dir.join(name);
    let mut file = File::create(&temporary).map_err(|e| io_error("create", &temporary, e))?;
    file.write_all(bytes).map_err(|e| io_error("write", &temporary, e))?;
    file.sync_all().map_err(|e| io_error("sync", &temporary, e))?;
    drop(file);
    fs::rename(&temporary, &target).map_err(|e| io_error("rename into", &target, e))?;
    sync_dir(dir)
}

fn sync_dir(dir: &Path) -> Result<(), PkiError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| io_error("sync directory", dir, e))
}

fn check_key_file_mode(file: &File, path: &Path) -> Result<(), PkiError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let metadata = file.metadata().map_err(|e| io_error("inspect", path, e))?;
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(PkiError::InsecureKeyFile { path: path.to_path_buf(), mode });
        }
    }
    #[cfg(not(unix))]
    let _ = (file, path);
    Ok(())
}

fn read_file_bounded(path: &Path, limit_bytes: u64) -> Result<Vec<u8>, PkiError> {
    let mut file = File::open(path).map_err(|e| io_error("open", path, e))?;
    read_bounded(&mut file, path, limit_bytes)
}

fn read_bounded(file: &mut File, path: &Path, limit_bytes: u64) -> Result<Vec<u8>, PkiError> {
    let mut bytes = Vec::new();
    file.take(limit_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| io_error("read", path, e))?;
    if u64::try_from(bytes.len()).map_or(true, |len| len > limit_bytes) {
        return Err(PkiError::FileTooLarge { path: path.to_path_buf(), limit_bytes });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bank_common_names_parse_only_in_canonical_form() {
        assert_eq!(parse_bank_cn("bank-0"), Some(0));
        assert_eq!(parse_bank_cn("bank-42"), Some(42));
        assert_eq!(parse_bank_cn("bank-4294967295"), Some(u32::MAX));
        for bad in ["bank-", "bank-01", "bank-+1", "bank--1", "bank-4294967296", "Bank-1"] {
            assert_eq!(parse_bank_cn(bad), None, "{bad}");
        }
        assert_eq!(parse_bank_cn(CENTRAL_BANK_CN), None);
        assert_eq!(parse_bank_cn(&holder_cn(Holder::Bank(7))), Some(7));
    }

    #[test]
    fn serials_normalise_to_lowercase_without_leading_zeros() {
        assert_eq!(normalize_serial("00ABcd").ok(), Some("abcd".to_owned()));
        assert_eq!(normalize_serial("000").ok(), Some("0".to_owned()));
        assert!(normalize_serial("").is_err());
        assert!(normalize_serial("xyz").is_err());
        assert!(normalize_serial(&"1".repeat(MAX_SERIAL_HEX_CHARS + 1)).is_err());
    }

    #[test]
    fn index_rejects_duplicate_and_non_canonical_serials() {
        let record = |serial: &str| IssuedRecord {
            serial: serial.to_owned(),
            holder: Holder::Bank(1),
            kind: IssuedKind::Client,
            not_before_unix_s: 0,
            not_after_unix_s: 1,
            revoked_at_unix_s: None,
        };
        let encode = |certificates| {
            serde_json::to_vec(&Index { format: INDEX_FORMAT, crl_number: 0, certificates })
                .unwrap()
        };
        assert!(parse_index(&encode(vec![record("ab"), record("cd")])).is_ok());
        assert!(parse_index(&encode(vec![record("ab"), record("ab")])).is_err());
        assert!(parse_index(&encode(vec![record("0AB")])).is_err());
        assert!(parse_index(b"{").is_err());
    }

    /// The CRL must carry exactly the serials in the certificates, including those whose top
    /// bit is set (encoded with a leading zero octet), or webpki would not match them.
    #[test]
    fn crl_lists_every_revoked_serial_as_encoded_in_its_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let mut ca = Ca::create(dir.path(), "Test CA").unwrap();
        let request =
            IssueRequest { holder: Holder::Bank(3), kind: CertKind::Client, validity_days: 30 };
        let high_bit = |c: &X509| c.serial_number().to_bn().unwrap().num_bits() == SERIAL_BITS;
        let (mut revoked, mut kept) = (Vec::<X509>::new(), Vec::new());
        // Each serial has its top bit set with probability 1/2: 64 draws miss one kind with
        // probability 2^-63.
        for i in 0..64 {
            let issued = ca.issue(&request).unwrap();
            let cert = X509::from_pem(issued.cert_pem.as_bytes()).unwrap();
            if i % 3 == 0 {
                kept.push(cert);
            } else {
                ca.revoke(&issued.serial.to_uppercase()).unwrap();
                revoked.push(cert);
            }
            if revoked.iter().any(high_bit) && revoked.iter().any(|c| !high_bit(c)) {
                break;
            }
        }
        assert!(revoked.iter().any(high_bit), "no revoked serial with the top bit set");
        assert!(revoked.iter().any(|c| !high_bit(c)), "no revoked serial without it");
        assert!(!kept.is_empty());
        let crl = openssl::x509::X509Crl::from_pem(ca.crl_pem().unwrap().as_bytes()).unwrap();
        assert!(crl.verify(&ca.cert.public_key().unwrap()).unwrap());
        assert_eq!(crl.get_revoked().map(|r| r.len()), Some(revoked.len()));
        for cert in &revoked {
            assert!(matches!(crl.get_by_cert(cert), openssl::x509::CrlStatus::Revoked(_)));
        }
        for cert in &kept {
            assert!(matches!(crl.get_by_cert(cert), openssl::x509::CrlStatus::NotRevoked));
        }
        let (_, number) = crl.extension::<CrlNumber>().unwrap().unwrap();
        assert_eq!(number.to_bn().unwrap().to_string(), "1");
    }
}
