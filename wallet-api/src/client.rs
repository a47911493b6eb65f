//! A typed blocking client of the wallet API, for the command-line wallet, tools and tests.
//!
//! One request per connection (HTTP/1.1, `Connection: close`), over plain TCP for `http://`
//! and TLS for `https://` (rustls with the ring provider, trusting only the CA certificates it
//! is given, every option set explicitly). Connecting and each read and write are bounded by
//! timeouts, the response by [`MAX_RESPONSE_BYTES`]. Error answers come back as
//! [`ClientError::Problem`] with the server's RFC 7807 document.
//!
//! The client keeps the bearer token in memory only and never prints it (its `Debug` hides it).
//! It also builds self-custody payments ([`signed_transfer`]): the key never leaves the caller.

use crate::model::{
    Balance, CreatePaymentRequest, HistoryPage, LoginRequest, NetworkInfo, OpenWalletRequest,
    PaymentRequest, PaymentRequestView, Problem, Receipt, SignedPaymentRequest, TokenResponse,
    Wallet, WalletList,
};
use crate::routes::IDEMPOTENCY_KEY_HEADER;
use cbdc_ledger::{Encode, Leg, SigningKey, TxBody, TxId, TxKind, WalletId};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

/// Largest response read, in bytes (history pages are bounded well below this).
pub const MAX_RESPONSE_BYTES: u64 = 8 * 1024 * 1024;
/// Largest CA bundle accepted, in bytes.
const MAX_CA_PEM_BYTES: usize = 256 * 1024;
/// Longest response head read, in bytes.
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Longest body excerpt kept in [`ClientError::Unexpected`].
const MAX_EXCERPT_CHARS: usize = 512;

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The API answered with an error (RFC 7807 problem).
    #[error("HTTP {status} {}: {}", problem.code, problem.detail)]
    Problem { status: u16, problem: Problem },
    /// An error status without a problem document (e.g. from a proxy).
    #[error("HTTP {status} without a problem document: {body}")]
    Unexpected { status: u16, body: String },
    /// The client was set up wrong: bad URL, CA or header.
    #[error("client configuration: {0}")]
    Config(String),
    /// Connecting, TLS, sending or receiving failed.
    #[error("transport: {0}")]
    Transport(#[from] io::Error),
    /// The answer was not the HTTP or JSON expected.
    #[error("cannot decode the answer: {0}")]
    Decode(String),
}

/// Where the API is: `http://host:port` or `https://host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Endpoint {
    tls: bool,
    host: String,
    port: u16,
}

impl Endpoint {
    fn parse(url: &str) -> Result<Endpoint, ClientError> {
        let bad = || ClientError::Config(format!("{url:?} is not http(s)://host[:port]"));
        let (tls, rest) = match url.split_once("://") {
            Some(("https", rest)) => (true, rest),
            Some(("http", rest)) => (false, rest),
            _ => return Err(bad()),
        };
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.is_empty() || authority.contains(['/', '?', '#', '@', ' ']) {
            return Err(bad());
        }
        let (host, port) = match authority.strip_prefix('[') {
            Some(v6) => {
                let (host, rest) = v6.split_once(']').ok_or_else(bad)?;
                (
                    host,
                    if rest.is_empty() {
                        None
                    } else {
                        Some(rest.strip_prefix(':').ok_or_else(bad)?)
                    },
                )
            }
            None => match authority.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            },
        };
        let port = match port {
            None if tls => 443,
            None => 80,
            Some(p) => p.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(bad)?,
        };
        if host.is_empty() {
            return Err(bad());
        }
        Ok(Endpoint { tls, host: host.to_string(), port })
    }

    /// The `Host` header value.
    fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// A rustls client that trusts only the CA certificates in `ca_pem` and presents none: TLS 1.3
/// and 1.2 on the ring provider, no resumption, no early data, extended master secret required.
pub fn tls_config(ca_pem: &str) -> Result<rustls::ClientConfig, ClientError> {
    if ca_pem.len() > MAX_CA_PEM_BYTES {
        return Err(ClientError::Config("the CA file is too large".to_string()));
    }
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        let cert = cert.map_err(|_| ClientError::Config("the CA file is not PEM".to_string()))?;
        roots
            .add(cert)
            .map_err(|e| ClientError::Config(format!("the CA certificate is unusable: {e}")))?;
    }
    if roots.is_empty() {
        return Err(ClientError::Config("the CA file holds no certificate".to_string()));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| ClientError::Config(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.resumption = rustls::client::Resumption::disabled();
    config.enable_early_data = false;
    config.enable_sni = true;
    config.require_ems = true;
    config.enable_secret_extraction = false;
    config.max_fragment_size = None;
    config.alpn_protocols = Vec::new();
    Ok(config)
}

/// An HTTP answer.
#[derive(Debug, Clone)]
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// A client of one bank's wallet API.
#[derive(Clone)]
pub struct WalletClient {
    endpoint: Endpoint,
    tls: Option<Arc<rustls::ClientConfig>>,
    token: Option<String>,
    connect_timeout: Duration,
    io_timeout: Duration,
}

impl fmt::Debug for WalletClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WalletClient")
            .field("endpoint", &self.endpoint)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

impl WalletClient {
    /// A client of `base_url` (`http://host:port` or `https://host:port`); `https` needs the
    /// PEM of the CA that issued the bank's server certificate.
    pub fn new(base_url: &str, ca_pem: Option<&str>) -> Result<WalletClient, ClientError> {
        let endpoint = Endpoint::parse(base_url)?;
        let tls = match (endpoint.tls, ca_pem) {
            (true, Some(pem)) => Some(Arc::new(tls_config(pem)?)),
            (true, None) => {
                return Err(ClientError::Config("https needs the CA certificate".to_string()));
            }
            (false, _) => None,
        };
        Ok(WalletClient {
            endpoint,
            tls,
            token: None,
            connect_timeout: Duration::from_secs(5),
            io_timeout: Duration::from_secs(30),
        })
    }

    /// Sets the connect timeout and the timeout of each read and write.
    pub fn with_timeouts(mut self, connect: Duration, io: Duration) -> WalletClient {
        self.connect_timeout = connect;
        self.io_timeout = io;
        self
    }

    /// Uses `token` as the bearer token from now on.
    pub fn set_token(&mut self, token: impl Into<String>) {
        self.token = Some(token.into());
    }

    /// The bearer token, if any (to store it; never print it).
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// `POST /v1/auth/token`; the client uses the token from now on.
    pub fn login(&mut self, username: &str, password: &str) -> Result<TokenResponse, ClientError> {
        let request =
            LoginRequest { username: username.to_string(), password: password.to_string() };
        let (_, token): (_, TokenResponse) =
            self.call("POST", "/v1/auth/token", None, Some(&request))?;
        self.token = Some(token.access_token.clone());
        Ok(token)
    }

    /// `GET /v1/network`.
    pub fn network(&self) -> Result<NetworkInfo, ClientError> {
        self.get("/v1/network")
    }

    /// `GET /v1/wallets`.
    pub fn wallets(&self) -> Result<WalletList, ClientError> {
        self.get("/v1/wallets")
    }

    /// `POST /v1/wallets`.
    pub fn open_wallet(&self, request: &OpenWalletRequest) -> Result<Wallet, ClientError> {
        self.call("POST", "/v1/wallets", None, Some(request)).map(|(_, wallet)| wallet)
    }

    /// `GET /v1/wallets/{wallet_id}`.
    pub fn balance(&self, wallet_id: &str) -> Result<Balance, ClientError> {
        self.get(&format!("/v1/wallets/{}", segment(wallet_id)))
    }

    /// `POST /v1/wallets/{wallet_id}/payments`: the status (200 committed, 202 pending) and
    /// the receipt. A failed payment is a [`ClientError::Problem`] (422).
    pub fn pay(
        &self,
        wallet_id: &str,
        idempotency_key: &str,
        request: &PaymentRequest,
    ) -> Result<(u16, Receipt), ClientError> {
        let path = format!("/v1/wallets/{}/payments", segment(wallet_id));
        self.call("POST", &path, Some(idempotency_key), Some(request))
    }

    /// `POST /v1/payments`: a transfer the customer signed (see [`signed_transfer`]).
    pub fn pay_signed(
        &self,
        idempotency_key: &str,
        request: &SignedPaymentRequest,
    ) -> Result<(u16, Receipt), ClientError> {
        self.call("POST", "/v1/payments", Some(idempotency_key), Some(request))
    }

    /// `GET /v1/payments/{tx_id}`.
    pub fn payment(&self, tx_id: &str) -> Result<Receipt, ClientError> {
        self.get(&format!("/v1/payments/{}", segment(tx_id)))
    }

    /// `GET /v1/wallets/{wallet_id}/history`, newest first.
    pub fn history(
        &self,
        wallet_id: &str,
        limit: Option<u32>,
        cursor: Option<&str>,
    ) -> Result<HistoryPage, ClientError> {
        let mut query = Vec::new();
        if let Some(limit) = limit {
            query.push(format!("limit={limit}"));
        }
        if let Some(cursor) = cursor {
            query.push(format!("cursor={}", segment(cursor)));
        }
        let mut path = format!("/v1/wallets/{}/history", segment(wallet_id));
        if !query.is_empty() {
            path = format!("{path}?{}", query.join("&"));
        }
        self.get(&path)
    }

    /// `POST /v1/wallets/{wallet_id}/payment-requests`.
    pub fn create_payment_request(
        &self,
        wallet_id: &str,
        request: &CreatePaymentRequest,
    ) -> Result<PaymentRequestView, ClientError> {
        let path = format!("/v1/wallets/{}/payment-requests", segment(wallet_id));
        self.call("POST", &path, None, Some(request)).map(|(_, view)| view)
    }

    /// `GET /v1/payment-requests/{id}`.
    pub fn payment_request(&self, id: &str) -> Result<PaymentRequestView, ClientError> {
        self.get(&format!("/v1/payment-requests/{}", segment(id)))
    }

    /// Sends exactly `method path`, `headers` and `body` (plus `Host`, `Connection: close`,
    /// `Content-Length`, and the bearer token unless `headers` has an `Authorization`), and
    /// returns the status and the body as text, whatever they are: for tests of bad input.
    pub fn raw(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<(u16, String), ClientError> {
        let response = self.send(method, path, headers, body)?;
        Ok((response.status, String::from_utf8_lossy(&response.body).into_owned()))
    }

    fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.call::<(), T>("GET", path, None, None).map(|(_, value)| value)
    }

    fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        idempotency_key: Option<&str>,
        body: Option<&B>,
    ) -> Result<(u16, T), ClientError> {
        let mut headers = vec![("Accept", "application/json")];
        if let Some(key) = idempotency_key {
            headers.push((IDEMPOTENCY_KEY_HEADER, key));
        }
        let payload = match body {
            Some(body) => {
                headers.push(("Content-Type", "application/json"));
                Some(serde_json::to_vec(body).map_err(|e| ClientError::Decode(e.to_string()))?)
            }
            None => None,
        };
        let response = self.send(method, path, &headers, payload.as_deref())?;
        if !(200..300).contains(&response.status) {
            return Err(error_of(response));
        }
        let value = serde_json::from_slice(&response.body)
            .map_err(|e| ClientError::Decode(format!("HTTP {}: {e}", response.status)))?;
        Ok((response.status, value))
    }

    fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<Response, ClientError> {
        let head = self.head(method, path, headers, body.map(<[u8]>::len))?;
        let tcp = self.connect()?;
        let raw = match &self.tls {
            None => exchange(tcp, &head, body.unwrap_or_default())?,
            Some(config) => {
                let name = ServerName::try_from(self.endpoint.host.clone())
                    .map_err(|_| ClientError::Config("invalid server name".to_string()))?;
                let conn = rustls::ClientConnection::new(config.clone(), name)
                    .map_err(|e| ClientError::Config(e.to_string()))?;
                exchange(rustls::StreamOwned::new(conn, tcp), &head, body.unwrap_or_default())?
            }
        };
        parse_response(&raw)
    }

    fn head(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        length: Option<usize>,
    ) -> Result<String, ClientError> {
        let token_like = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
        if method.is_empty() || !method.bytes().all(token_like) {
            return Err(ClientError::Config(format!("invalid method {method:?}")));
        }
        if !path.starts_with('/') || !path.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ClientError::Config(format!("invalid path {path:?}")));
        }
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
            self.endpoint.authority()
        );
        for (name, value) in headers {
            let valid = !name.is_empty()
                && name.bytes().all(token_like)
                && !value.bytes().any(|b| b == b'\r' || b == b'\n');
            if !valid {
                return Err(ClientError::Config(format!("invalid header {name:?}")));
            }
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        let has_authorization =
            headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("authorization"));
        if let (Some(token), false) = (&self.token, has_authorization) {
            head.push_str(&format!("Authorization: Bearer {token}\r\n"));
        }
        if let Some(length) = length {
            head.push_str(&format!("Content-Length: {length}\r\n"));
        }
        head.push_str("\r\n");
        Ok(head)
    }

    fn connect(&self) -> Result<TcpStream, ClientError> {
        let addrs = (self.endpoint.host.as_str(), self.endpoint.port).to_socket_addrs()?;
        let mut last = io::Error::new(io::ErrorKind::NotFound, "the host has no address");
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, self.connect_timeout) {
                Ok(tcp) => {
                    tcp.set_read_timeout(Some(self.io_timeout))?;
                    tcp.set_write_timeout(Some(self.io_timeout))?;
                    tcp.set_nodelay(true)?;
                    return Ok(tcp);
                }
                Err(e) => last = e,
            }
        }
        Err(ClientError::Transport(last))
    }
}

/// Writes the request and reads the answer: up to its announced length, or else until the
/// server closes.
fn exchange<S: Read + Write>(
    mut stream: S,
    head: &str,
    body: &[u8],
) -> Result<Vec<u8>, ClientError> {
    let sent = stream
        .write_all(head.as_bytes())
        .and_then(|()| stream.write_all(body))
        .and_then(|()| stream.flush());
    let mut raw = Vec::new();
    let read = read_answer(&mut stream, &mut raw);
    if let Err(e @ ClientError::Decode(_)) = read {
        return Err(e);
    }
    match (read, sent) {
        // A server may answer (413, 401) and close before reading a large body: its answer
        // counts, and so does a TLS close without close_notify once the answer is in.
        _ if parse_response(&raw).is_ok() => Ok(raw),
        (Err(e), _) => Err(e),
        (Ok(()), Err(e)) => Err(ClientError::Transport(e)),
        (Ok(()), Ok(())) => Ok(raw),
    }
}

fn read_answer<S: Read>(stream: &mut S, raw: &mut Vec<u8>) -> Result<(), ClientError> {
    let mut buffer = [0u8; 16 * 1024];
    // The total length once the head is in: `Some(None)` when the server did not announce one.
    let mut total: Option<Option<usize>> = None;
    loop {
        let n = match stream.read(&mut buffer) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(ClientError::Transport(e)),
        };
        raw.extend_from_slice(buffer.get(..n).unwrap_or_default());
        if raw.len() as u64 > MAX_RESPONSE_BYTES {
            return Err(ClientError::Decode(format!(
                "the answer exceeds {MAX_RESPONSE_BYTES} bytes"
            )));
        }
        if total.is_none() {
            let window = raw.get(..raw.len().min(MAX_HEAD_BYTES)).unwrap_or_default();
            match window.windows(4).position(|w| w == b"\r\n\r\n") {
                Some(end) => total = Some(announced_length(raw, end)),
                None if raw.len() >= MAX_HEAD_BYTES => {
                    return Err(ClientError::Decode("the response head is too large".to_string()));
                }
                None => {}
            }
        }
        if let Some(Some(total)) = total
            && raw.len() >= total
        {
            return Ok(());
        }
    }
}

/// Head and body length when the head (ending at `end`) has a `Content-Length` and no
/// chunked encoding.
fn announced_length(raw: &[u8], end: usize) -> Option<usize> {
    let head = std::str::from_utf8(raw.get(..end)?).ok()?;
    let mut length = None;
    for line in head.split("\r\n").skip(1) {
        let (name, value) = line.split_once(':')?;
        if name.trim().eq_ignore_ascii_case("transfer-encoding") {
            return None;
        }
        if name.trim().eq_ignore_ascii_case("content-length") {
            length = value.trim().parse::<usize>().ok();
        }
    }
    end.checked_add(4)?.checked_add(length?)
}

fn parse_response(raw: &[u8]) -> Result<Response, ClientError> {
    let bad = |what: &str| ClientError::Decode(what.to_string());
    let end =
        raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or_else(|| bad("no response head"))?;
    let (head, rest) = raw.split_at(end);
    let body = rest.get(4..).unwrap_or_default();
    let head = std::str::from_utf8(head).map_err(|_| bad("the response head is not text"))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    let status = parts.next().and_then(|s| s.parse::<u16>().ok());
    let status = match status {
        Some(status) if version.starts_with("HTTP/1.") && (100..600).contains(&status) => status,
        _ => return Err(bad("malformed status line")),
    };
    let mut headers = Vec::new();
    for line in lines {
        let (name, value) = line.split_once(':').ok_or_else(|| bad("malformed header"))?;
        headers.push((name.trim().to_string(), value.trim().to_string()));
    }
    let mut response = Response { status, headers, body: Vec::new() };
    let chunked = response
        .header("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    response.body = if chunked {
        dechunk(body)?
    } else if let Some(length) = response.header("content-length") {
        let length: usize = length.parse().map_err(|_| bad("malformed Content-Length"))?;
        body.get(..length).ok_or_else(|| bad("the body is shorter than announced"))?.to_vec()
    } else {
        body.to_vec()
    };
    Ok(response)
}

fn dechunk(mut rest: &[u8]) -> Result<Vec<u8>, ClientError> {
    let bad = || ClientError::Decode("malformed chunked body".to_string());
    let mut out = Vec::new();
    loop {
        let end = rest.windows(2).position(|w| w == b"\r\n").ok_or_else(bad)?;
        let line = std::str::from_utf8(rest.get(..end).ok_or_else(bad)?).map_err(|_| bad())?;
        let size = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size, 16).map_err(|_| bad())?;
        let after = rest.get(end + 2..).ok_or_else(bad)?;
        if size == 0 {
            return Ok(out);
        }
        out.extend_from_slice(after.get(..size).ok_or_else(bad)?);
        rest = after.get(size + 2..).ok_or_else(bad)?;
    }
}

/// The error for a non-2xx answer: its problem document, or an excerpt of whatever it was.
fn error_of(response: Response) -> ClientError {
    match serde_json::from_slice::<Problem>(&response.body) {
        Ok(problem) => ClientError::Problem { status: response.status, problem },
        Err(_) => ClientError::Unexpected {
            status: response.status,
            body: String::from_utf8_lossy(&response.body).chars().take(MAX_EXCERPT_CHARS).collect(),
        },
    }
}

/// Percent-encodes one path segment or query value (everything but RFC 3986 unreserved).
fn segment(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A self-custody payment: a one-leg transfer `from` → `to` with id `id`, expiring at the
/// height the bank recommends, signed locally by `key` for the bank's chain.
pub fn signed_transfer(
    key: &SigningKey,
    network: &NetworkInfo,
    id: TxId,
    leg: Leg,
) -> SignedPaymentRequest {
    let body = TxBody {
        id,
        expiry_height: network.recommended_expiry_height,
        kind: TxKind::Transfer { legs: vec![leg] },
    };
    let tx = body.sign(&network.chain_id, &[key]);
    SignedPaymentRequest { transaction: hex::encode(tx.encode()) }
}

/// The transaction id for a payment from `from` under `idempotency_key`: the first 16 bytes of
/// a domain-separated SHA-256, so a retry with the same key reuses the same ledger id and the
/// ledger itself refuses a second payment.
pub fn derived_tx_id(from: WalletId, idempotency_key: &str) -> TxId {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(b"cbdc.v1.wallet-client.tx-id");
    ctx.update(&from.0);
    ctx.update(idempotency_key.as_bytes());
    let digest = ctx.finish();
    let mut id = [0u8; 16];
    id.copy_from_slice(digest.as_ref().get(..16).unwrap_or(&[0; 16]));
    TxId(id)
}

#[cfg(test)]
mod tests;
