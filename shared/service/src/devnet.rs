//! `devnet`: a whole local network in one command — the central bank and the intermediaries as
//! separate processes on loopback, each with its own SQLite database and ports.

use crate::init::{self, CreatedNode, InitArgs};
use anyhow::{Context, Result, bail};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

#[derive(Debug, Clone, clap::Args)]
pub struct DevnetArgs {
    /// Directory of the network; created with `init` on first use, reused afterwards.
    #[arg(long, default_value = ".devnet")]
    pub dir: PathBuf,
    /// Intermediaries besides the central bank.
    #[arg(long, default_value_t = 4)]
    pub banks: u32,
    #[arg(long, default_value_t = 7100)]
    pub p2p_base_port: u16,
    #[arg(long, default_value_t = 8100)]
    pub http_base_port: u16,
    /// Delete an existing network directory and start a fresh chain.
    #[arg(long)]
    pub fresh: bool,
}

/// A plain HTTP GET on loopback; returns the status code and body.
pub fn http_get(addr: SocketAddr, path: &str) -> Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n")?;
    let mut response = String::new();
    stream.take(4 * 1024 * 1024).read_to_string(&mut response)?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("malformed HTTP response")?;
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    Ok((status, body))
}

/// Waits until `/health` answers 200, up to `limit`.
pub fn wait_healthy(addr: SocketAddr, limit: Duration) -> Result<()> {
    let attempts = limit.as_millis() / 200;
    for _ in 0..attempts.max(1) {
        if matches!(http_get(addr, "/health"), Ok((200, _))) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    bail!("{addr} did not become healthy within {limit:?}")
}

fn nodes_of(dir: &Path, banks: u32, http_base: u16) -> Vec<CreatedNode> {
    (0..=banks)
        .map(|bank| {
            let name = if bank == 0 { "central-bank".to_string() } else { format!("bank-{bank}") };
            let port = u16::try_from(u32::from(http_base) + bank).unwrap_or(u16::MAX);
            CreatedNode {
                config: dir.join(&name).join("node.toml"),
                http: SocketAddr::from(([127, 0, 0, 1], port)),
                name,
                bank,
            }
        })
        .collect()
}

/// Starts one node process with its log in the node's directory.
pub fn spawn_node(exe: &Path, node: &CreatedNode) -> Result<Child> {
    let dir = node.config.parent().context("node config has no directory")?;
    let log = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("node.log"))?;
    Command::new(exe)
        .arg("run")
        .arg("--config")
        .arg(&node.config)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting {}", exe.display()))
}

/// Creates (or reuses) and runs the network until a node exits or the user interrupts.
/// `setup` completes a freshly created network (the central bank's PKI, keys and accounts).
pub fn run(
    args: &DevnetArgs,
    central_bank_exe: &Path,
    intermediary_exe: &Path,
    setup: &dyn Fn(&Path, &[CreatedNode]) -> Result<()>,
) -> Result<()> {
    if args.fresh && args.dir.exists() {
        std::fs::remove_dir_all(&args.dir)?;
    }
    let nodes = if args.dir.exists() {
        eprintln!("reusing the network in {}", args.dir.display());
        nodes_of(&args.dir, args.banks, args.http_base_port)
    } else {
        let nodes = init::init(&InitArgs {
            dir: args.dir.clone(),
            chain_id: "cbdc-devnet".into(),
            banks: args.banks,
            officers: 3,
            threshold: 2,
            p2p_base_port: args.p2p_base_port,
            http_base_port: args.http_base_port,
            database: "sqlite".into(),
            genesis_time_ms: None,
        })?;
        setup(&args.dir, &nodes)?;
        nodes
    };
    let mut children = Vec::new();
    for node in &nodes {
        let exe = if node.bank == 0 { central_bank_exe } else { intermediary_exe };
        children.push((node.name.clone(), spawn_node(exe, node)?));
    }
    let stop = |children: &mut Vec<(String, Child)>| {
        for (_, child) in children.iter_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    };
    for node in &nodes {
        if let Err(e) = wait_healthy(node.http, Duration::from_secs(60)) {
            stop(&mut children);
            bail!(
                "{}: {e}; see {}",
                node.name,
                args.dir.join(&node.name).join("node.log").display()
            );
        }
    }
    print_endpoints(args, &nodes);
    // Run until any node exits (Ctrl-C reaches every process of the group).
    loop {
        for (name, child) in children.iter_mut() {
            if let Some(status) = child.try_wait()? {
                let name = name.clone();
                stop(&mut children);
                bail!("{name} exited ({status}); the network was stopped");
            }
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[allow(clippy::print_stdout, reason = "the devnet prints its endpoints for the user")]
fn print_endpoints(args: &DevnetArgs, nodes: &[CreatedNode]) {
    println!("devnet running: {} validators, chain in {}", nodes.len(), args.dir.display());
    println!("{:<14} {:<28} log", "node", "http");
    for n in nodes {
        let log = args.dir.join(&n.name).join("node.log");
        println!("{:<14} http://{:<21} {}", n.name, n.http, log.display());
    }
    println!("endpoints: /health /metrics /v1/status, POST /v1/transactions; Ctrl-C stops all");
    for n in nodes.iter().filter(|n| n.bank > 0) {
        if let Ok(api) = init::bank_api(n.http) {
            println!(
                "{:<14} bank API: https://localhost:{}/v1 (wallet) and /v1/ops (operators; password in {}), docs at /docs/",
                n.name,
                api.port(),
                args.dir.join(&n.name).join("credentials/operator.password").display()
            );
        }
    }
    if let Ok(api) = init::central_bank_api(args.http_base_port) {
        println!(
            "central bank API: https://{api}/v1 (CA {}, staff passwords in {})",
            args.dir.join("central-bank/pki/ca.pem").display(),
            args.dir.join("credentials").display()
        );
        println!(
            "regulators' dashboard: https://localhost:{}/dashboard/ (sign in as `regulator`)",
            api.port()
        );
    }
}
