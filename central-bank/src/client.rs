//! A small HTTPS client for the central bank's API (the officer command and tests): one
//! request per TLS connection, HTTP/1.1, `Connection: close`, bounded response.
//!
//! It trusts only the central bank's CA, and presents a bank's client certificate when given
//! one (mutual TLS).

use anyhow::{Context, Result, anyhow, bail};
use rustls::pki_types::ServerName;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

/// Largest response read (lists are paged well below this).
const MAX_RESPONSE_BYTES: u64 = 8 * 1024 * 1024;

/// A client of one API endpoint.
#[derive(Debug, Clone)]
pub struct ApiClient {
    addr: SocketAddr,
    server_name: String,
    tls: Arc<rustls::ClientConfig>,
}

/// An answer: status and body.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: String,
}

impl Answer {
    pub fn json(&self) -> Result<serde_json::Value> {
        serde_json::from_str(&self.body).with_context(|| format!("not JSON: {}", self.body))
    }
}

impl ApiClient {
    /// Trusts `ca_pem`; presents `client` (certificate and key PEM) when given.
    pub fn new(
        addr: SocketAddr,
        server_name: &str,
        ca_pem: &str,
        client: Option<(&str, &str)>,
    ) -> Result<ApiClient> {
        let tls = match client {
            Some((cert, key)) => crate::pki::client_config(ca_pem, cert, key)?,
            None => crate::pki::client_config_anonymous(ca_pem)?,
        };
        Ok(ApiClient { addr, server_name: server_name.to_string(), tls: Arc::new(tls) })
    }

    /// Sends one request; `token` as a bearer token, `body` as JSON.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&serde_json::Value>,
    ) -> Result<Answer> {
        let name = ServerName::try_from(self.server_name.clone())
            .map_err(|_| anyhow!("invalid server name {}", self.server_name))?;
        let conn = rustls::ClientConnection::new(self.tls.clone(), name)?;
        let tcp = TcpStream::connect_timeout(&self.addr, Duration::from_secs(5))
            .with_context(|| format!("connecting to {}", self.addr))?;
        tcp.set_read_timeout(Some(Duration::from_secs(30)))?;
        tcp.set_write_timeout(Some(Duration::from_secs(30)))?;
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        let payload = body.map(|b| b.to_string()).unwrap_or_default();
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nAccept: application/json\r\n",
            self.server_name
        );
        if let Some(t) = token {
            head.push_str(&format!("Authorization: Bearer {t}\r\n"));
        }
        if body.is_some() {
            head.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                payload.len()
            ));
        }
        head.push_str("\r\n");
        tls.write_all(head.as_bytes())?;
        tls.write_all(payload.as_bytes())?;
        tls.flush()?;
        let mut raw = Vec::new();
        // The server closes after the response; a TLS close without close_notify is tolerated
        // once bytes have arrived.
        match Read::by_ref(&mut tls).take(MAX_RESPONSE_BYTES).read_to_end(&mut raw) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => {}
            Err(e) => return Err(e).context("reading the response"),
        }
        parse(&raw)
    }
}

fn parse(raw: &[u8]) -> Result<Answer> {
    let text = String::from_utf8_lossy(raw);
    let Some((head, body)) = text.split_once("\r\n\r\n") else { bail!("malformed response") };
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow!("malformed status line"))?;
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    let body = if chunked { dechunk(body)? } else { body.to_string() };
    Ok(Answer { status, body })
}

fn dechunk(mut rest: &str) -> Result<String> {
    let mut out = String::new();
    loop {
        let (size, after) = rest.split_once("\r\n").ok_or_else(|| anyhow!("bad chunk"))?;
        let size = usize::from_str_radix(size.trim(), 16).context("bad chunk size")?;
        if size == 0 {
            return Ok(out);
        }
        let chunk = after.get(..size).ok_or_else(|| anyhow!("short chunk"))?;
        out.push_str(chunk);
        rest = after.get(size + 2..).ok_or_else(|| anyhow!("short chunk"))?;
    }
}
