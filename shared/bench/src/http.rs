//! A minimal HTTP/1.1 keep-alive client for a node's `POST /v1/transactions` and
//! `POST /v1/transactions/batch`: one TCP connection carries many requests (actix keeps
//! HTTP/1.1 connections open), so the load generator does not pay a TCP handshake per transfer.

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
        self.submit_hex(&hex::encode(tx.encode()))
    }

    /// Submits one pre-encoded transaction (hex).
    pub fn submit_hex(&mut self, hex: &str) -> Result<Submitted> {
        let body = format!("{{\"transaction\":\"{hex}\"}}");
        let (status, text) = self.post_retrying("/v1/transactions", &body)?;
        if status == 202 {
            return Ok(Submitted::Accepted);
        }
        Ok(Submitted::Refused(status, problem_code(status, &text)))
    }

    /// Submits pre-encoded transactions (hex) in one `POST /v1/transactions/batch`; one
    /// answer per transaction (a refused request answers every one with its code).
    pub fn submit_batch(&mut self, hexes: &[&str]) -> Result<Vec<Submitted>> {
        let mut body = String::with_capacity(hexes.iter().map(|h| h.len() + 3).sum::<usize>() + 32);
        body.push_str("{\"transactions\":[");
        for (i, h) in hexes.iter().enumerate() {
            if i > 0 {
                body.push(',');
            }
            body.push('"');
            body.push_str(h);
            body.push('"');
        }
        body.push_str("]}");
        let (status, text) = self.post_retrying("/v1/transactions/batch", &body)?;
        if status != 200 {
            let refused = Submitted::Refused(status, problem_code(status, &text));
            return Ok(vec![refused; hexes.len()]);
        }
        let answer: serde_json::Value = serde_json::from_str(&text).context("batch answer")?;
        let results = answer.get("results").and_then(|r| r.as_array()).context("results")?;
        if results.len() != hexes.len() {
            bail!("{} results for {} transactions", results.len(), hexes.len());
        }
        Ok(results
            .iter()
            .map(|r| match r.get("status").and_then(|s| s.as_str()) {
                Some("accepted") => Submitted::Accepted,
                _ => {
                    let code = r.get("code").and_then(|c| c.as_str()).unwrap_or("refused");
                    Submitted::Refused(200, code.to_string())
                }
            })
            .collect())
    }

    /// Posts a JSON body; one retry on a fresh connection if the kept-alive one was closed by
    /// the server.
    fn post_retrying(&mut self, path: &str, body: &str) -> Result<(u16, String)> {
        match self.post(path, body) {
            Ok(answer) => Ok(answer),
            Err(_) => {
                self.stream = None;
                self.post(path, body)
            }
        }
    }

    fn post(&mut self, path: &str, body: &str) -> Result<(u16, String)> {
        let addr = self.addr;
        let stream = self.connect()?;
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
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
        Ok((status, text))
    }
}

/// The problem's `code`, or `http_<status>`.
fn problem_code(status: u16, text: &str) -> String {
    serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| v.get("code").and_then(|c| c.as_str()).map(str::to_string))
        .unwrap_or_else(|| format!("http_{status}"))
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
