//! A minimal HTTP/1.1 keep-alive client for `POST /v1/transactions` on a node: one TCP
//! connection carries many requests (actix keeps HTTP/1.1 connections open), so the load
//! generator does not pay a TCP handshake per transfer.

use anyhow::{Context, Result, bail};
use cbdc_ledger::SignedTransaction;
use cbdc_ledger::codec::Encode;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// What the node answered to a submission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Submitted {
    /// 202: in the mempool.
    Accepted,
    /// Any other status, with the problem's `code` when there is one.
    Refused(u16, String),
}

/// One keep-alive connection to a node's HTTP port; reconnects after an error.
#[derive(Debug)]
pub struct Conn {
    addr: SocketAddr,
    stream: Option<BufReader<TcpStream>>,
}

impl Conn {
    pub fn new(addr: SocketAddr) -> Conn {
        Conn { addr, stream: None }
    }

    fn connect(&mut self) -> Result<&mut BufReader<TcpStream>> {
        if self.stream.is_none() {
            let s = TcpStream::connect_timeout(&self.addr, Duration::from_secs(2))?;
            s.set_read_timeout(Some(Duration::from_secs(10)))?;
            s.set_nodelay(true)?;
            self.stream = Some(BufReader::new(s));
        }
        self.stream.as_mut().context("connected")
    }

    /// Submits one signed transaction; one retry on a fresh connection if the kept-alive one
    /// was closed by the server.
    pub fn submit(&mut self, tx: &SignedTransaction) -> Result<Submitted> {
        let body = format!("{{\"transaction\":\"{}\"}}", hex::encode(tx.encode()));
        self.submit_body(&body)
    }

    /// Submits a pre-encoded request body (`{"transaction":"<hex>"}`).
    pub fn submit_body(&mut self, body: &str) -> Result<Submitted> {
        match self.request(body) {
            Ok(answer) => Ok(answer),
            Err(_) => {
                self.stream = None;
                self.request(body)
            }
        }
    }

    fn request(&mut self, body: &str) -> Result<Submitted> {
        let addr = self.addr;
        let stream = self.connect()?;
        let head = format!(
            "POST /v1/transactions HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n",
            body.len()
        );
        let mut request = head.into_bytes();
        request.extend_from_slice(body.as_bytes());
        stream.get_mut().write_all(&request)?;
        let (status, close, text) = read_response(stream)?;
        if close {
            self.stream = None;
        }
        if status == 202 {
            return Ok(Submitted::Accepted);
        }
        let code = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v.get("code").and_then(|c| c.as_str()).map(str::to_string))
            .unwrap_or_else(|| format!("http_{status}"));
        Ok(Submitted::Refused(status, code))
    }
}

/// Reads one response: status, whether the server closes the connection, body.
fn read_response(stream: &mut BufReader<TcpStream>) -> Result<(u16, bool, String)> {
    let mut line = String::new();
    if stream.read_line(&mut line)? == 0 {
        bail!("connection closed");
    }
    let status: u16 =
        line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).context("bad status line")?;
    let (mut length, mut close) = (0usize, false);
    loop {
        line.clear();
        if stream.read_line(&mut line)? == 0 {
            bail!("connection closed in headers");
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        let Some((name, value)) = header.split_once(':') else { continue };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = value.parse().context("content-length")?;
        } else if name.eq_ignore_ascii_case("connection") && value.eq_ignore_ascii_case("close") {
            close = true;
        }
    }
    if length > 1 << 20 {
        bail!("response too large");
    }
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body)?;
    Ok((status, close, String::from_utf8_lossy(&body).into_owned()))
}
