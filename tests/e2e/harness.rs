//! A network of real node processes for tests.

use anyhow::{Context, Result, bail};
use cbdc_ledger::codec::Encode;
use cbdc_ledger::{Genesis, SignedTransaction, SigningKey};
use cbdc_service::devnet::{http_get, spawn_node, wait_healthy};
use cbdc_service::init::{CreatedNode, InitArgs, init};
use cbdc_service::keys;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

/// Where cargo put the service binaries (next to this test's `deps/` directory).
fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe.parent().and_then(Path::parent).expect("target profile directory");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build -p central-bank -p intermediary` (scripts/test does)",
        path.display()
    );
    path
}

/// Node status as `/v1/status` reports it.
#[derive(Debug, Clone, serde::Deserialize)]
#[allow(dead_code, reason = "fields are read selectively by tests")]
pub struct Status {
    pub height: u64,
    pub tip_hash: String,
    pub state_root: String,
    pub supply_outstanding_minor: u64,
    pub finalized_transactions: u64,
    pub epoch: u64,
    pub validators: usize,
}

pub struct Network {
    pub dir: tempfile::TempDir,
    pub nodes: Vec<CreatedNode>,
    pub genesis: Genesis,
    children: Vec<Option<Child>>,
}

impl Network {
    /// Creates and starts a network of the central bank and `banks` intermediaries.
    /// `database` is `sqlite` or a PostgreSQL URL prefix (each node appends its name).
    pub fn start(banks: u32, port_base: u16, database: &str) -> Result<Network> {
        let dir = tempfile::tempdir()?;
        let nodes = init(&InitArgs {
            dir: dir.path().join("net"),
            chain_id: "cbdc-e2e".into(),
            banks,
            officers: 3,
            threshold: 2,
            p2p_base_port: port_base,
            http_base_port: port_base + 50,
            database: database.into(),
            genesis_time_ms: None,
        })?;
        central_bank::setup::init_central_bank(&dir.path().join("net"), &nodes, 3)?;
        let genesis = cbdc_service::init::load_genesis(&dir.path().join("net/genesis.json"))?;
        let mut net = Network { dir, nodes, genesis, children: Vec::new() };
        for i in 0..net.nodes.len() {
            let child = net.spawn(i)?;
            net.children.push(Some(child));
        }
        for n in &net.nodes {
            wait_healthy(n.http, Duration::from_secs(60))?;
        }
        Ok(net)
    }

    fn spawn(&self, i: usize) -> Result<Child> {
        let node = &self.nodes[i];
        let exe = binary(if node.bank == 0 { "central-bank" } else { "intermediary" });
        spawn_node(&exe, node)
    }

    /// A service binary's path.
    pub fn binary_path(&self, name: &str) -> PathBuf {
        binary(name)
    }

    pub fn net_dir(&self) -> PathBuf {
        self.dir.path().join("net")
    }

    pub fn key(&self, relative: &str) -> SigningKey {
        keys::signing_key(&self.net_dir().join(relative)).expect("key file")
    }

    /// `kill -9`: no clean shutdown.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.children[i].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts one more node (a bank prepared for admission); returns its index.
    pub fn add_node(&mut self, node: CreatedNode) -> Result<usize> {
        self.nodes.push(node);
        let i = self.nodes.len() - 1;
        let child = self.spawn(i)?;
        self.children.push(Some(child));
        wait_healthy(self.nodes[i].http, Duration::from_secs(60))?;
        Ok(i)
    }

    pub fn restart(&mut self, i: usize) -> Result<()> {
        let child = self.spawn(i)?;
        self.children[i] = Some(child);
        wait_healthy(self.nodes[i].http, Duration::from_secs(60))
    }

    /// Copies every node's log to `$CBDC_E2E_LOG_DIR/<node>.log` when that variable is set
    /// (the network's own directory is removed when the test ends).
    pub fn save_logs(&self) {
        let Ok(to) = std::env::var("CBDC_E2E_LOG_DIR") else { return };
        let _ = std::fs::create_dir_all(&to);
        for n in &self.nodes {
            if let Some(dir) = n.config.parent() {
                let _ = std::fs::copy(
                    dir.join("node.log"),
                    Path::new(&to).join(format!("{}.log", n.name)),
                );
            }
            if let Ok((_, metrics)) = http_get(n.http, "/metrics") {
                let _ = std::fs::write(Path::new(&to).join(format!("{}.metrics", n.name)), metrics);
            }
        }
    }

    /// The last `lines` lines of each listed node's log, for failure messages.
    pub fn log_tails(&self, nodes: &[usize], lines: usize) -> String {
        let mut out = String::new();
        for &i in nodes {
            let Some(dir) = self.nodes[i].config.parent() else { continue };
            let text = std::fs::read_to_string(dir.join("node.log")).unwrap_or_default();
            let all: Vec<&str> = text.lines().collect();
            let tail = &all[all.len().saturating_sub(lines)..];
            out.push_str(&format!("---- node {i} ({}) log tail ----\n", self.nodes[i].name));
            for line in tail {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }

    pub fn status(&self, i: usize) -> Result<Status> {
        let (code, body) = http_get(self.nodes[i].http, "/v1/status")?;
        if code != 200 {
            bail!("status {code}: {body}");
        }
        Ok(serde_json::from_str(&body)?)
    }

    /// Submits a transaction to node `i` over HTTP; returns the HTTP status.
    pub fn submit(&self, i: usize, tx: &SignedTransaction) -> Result<u16> {
        let body = serde_json::json!({ "transaction": hex::encode(tx.encode()) }).to_string();
        let (code, text) = http_post(self.nodes[i].http, "/v1/transactions", &body)?;
        if code != 202 {
            bail!("submit answered {code}: {text}");
        }
        Ok(code)
    }

    /// Waits until `cond` holds for every listed node (real processes: wall-clock time).
    #[allow(clippy::disallowed_methods, reason = "end-to-end tests wait on real processes")]
    pub fn wait(
        &self,
        nodes: &[usize],
        limit: Duration,
        what: &str,
        cond: impl Fn(&Status) -> bool,
    ) -> Result<()> {
        let start = Instant::now();
        loop {
            let statuses: Vec<_> = nodes.iter().map(|&i| self.status(i)).collect();
            if statuses.iter().all(|s| s.as_ref().is_ok_and(&cond)) {
                return Ok(());
            }
            if start.elapsed() > limit {
                self.save_logs();
                bail!("timed out waiting for {what}: {statuses:?}\n{}", self.log_tails(nodes, 40));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Stops every process (so their databases can be read).
    pub fn stop_all(&mut self) {
        for i in 0..self.children.len() {
            self.kill(i);
        }
    }

    pub fn database_url(&self, i: usize) -> Result<String> {
        let cfg = cbdc_service::config::NodeFile::load(&self.nodes[i].config)?;
        Ok(cfg.node.database_url)
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        self.stop_all();
    }
}

pub fn http_post(addr: SocketAddr, path: &str, body: &str) -> Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "POST {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = String::new();
    stream.take(1 << 20).read_to_string(&mut response)?;
    let code =
        response.split_whitespace().nth(1).and_then(|s| s.parse().ok()).context("bad response")?;
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    Ok((code, body))
}
