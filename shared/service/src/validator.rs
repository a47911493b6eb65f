//! Runs a validator node: Commonware's tokio runtime, the authenticated p2p network (peers
//! identified by their registered Ed25519 consensus keys; links encrypted), the node, and its HTTP
//! endpoints.

use crate::config::NodeFile;
use crate::http::{self, HttpState};
use crate::init::load_genesis;
use crate::keys;
use anyhow::{Context, Result, anyhow};
use cbdc_node::{Channels, MempoolLimits, NodeConfig, Timeouts};
use commonware_cryptography::{ChaCha20Poly1305, Signer as _, ed25519};
use commonware_p2p::authenticated::lookup;
use commonware_p2p::{Address, AddressableManager as _};
use commonware_runtime::{
    Clock as _, Metrics as _, Quota, Runner as _, Spawner as _, Supervisor as _,
};
use commonware_stream::{cups, cups::Cups, sake, sake::Sake};
use commonware_utils::ordered::Map;
use commonware_utils::{NZU32, NZUsize};
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Largest message on any p2p channel (a full block of 10,000 transfers is about 2.2 MB).
const MAX_MESSAGE_BYTES: u32 = 8 * 1024 * 1024;

fn peer_key(hex_key: &str) -> Result<ed25519::PublicKey> {
    let mut raw = [0u8; 32];
    hex::decode_to_slice(hex_key, &mut raw).context("peer key is not hex")?;
    cbdc_node::participants(&[cbdc_ledger::PublicKey(raw)])
        .ok()
        .and_then(|set| set.iter().next().cloned())
        .ok_or_else(|| anyhow!("peer key is not a valid Ed25519 key"))
}

/// Loads a node configuration, checks it is for `role`'s binary, and runs the node.
pub fn run_as(role: crate::config::Role, config: &std::path::Path) -> Result<()> {
    run_as_with(role, config, None)
}

/// [`run_as`], with a service started beside the node.
pub fn run_as_with(
    role: crate::config::Role,
    config: &std::path::Path,
    extension: Option<Extension>,
) -> Result<()> {
    let cfg = NodeFile::load(config)?;
    if cfg.node.role != role {
        let binary = match cfg.node.role {
            crate::config::Role::CentralBank => "central-bank",
            crate::config::Role::Intermediary => "intermediary",
        };
        anyhow::bail!("{} configures a {binary} node; run it with `{binary}`", config.display());
    }
    run_with(cfg, extension)
}

/// Validators admitted after genesis that the peer book has room for.
const MAX_ADMITTED_PEERS: usize = 16;

/// The peer book of an epoch: this node, and every validator of the epoch at the address
/// this node's configuration gives it or, failing that, its endpoint on the ledger.
fn epoch_book(
    info: &cbdc_node::EpochInfo,
    configured: &[(ed25519::PublicKey, Address)],
    me: &ed25519::PublicKey,
) -> Vec<(ed25519::PublicKey, Address)> {
    use std::net::ToSocketAddrs as _;
    let mut book: Vec<(ed25519::PublicKey, Address)> =
        configured.iter().filter(|(k, _)| k == me).cloned().collect();
    for (validator, endpoint) in info.validators.iter().zip(&info.endpoints) {
        let Ok(key) = peer_key(&validator.to_hex()) else { continue };
        if key == *me {
            continue;
        }
        let address =
            configured.iter().find(|(k, _)| *k == key).map(|(_, a)| a.clone()).or_else(|| {
                endpoint.to_socket_addrs().ok().and_then(|mut a| a.next()).map(Address::from)
            });
        match address {
            Some(address) => book.push((key, address)),
            None => tracing::warn!(%endpoint, "no usable address for a validator"),
        }
    }
    book
}

/// What a service built on the node gets once it runs.
#[derive(Debug, Clone)]
pub struct Started {
    pub config: NodeFile,
    pub genesis: cbdc_ledger::Genesis,
    pub mailbox: cbdc_node::Mailbox,
    pub status: commonware_utils::channel::watch::Receiver<cbdc_node::NodeStatus>,
    /// The ledger after each recently finalized block.
    pub finalized: cbdc_node::FinalizedFeed,
}

/// A service started beside the node (the central bank's API), kept alive while the node runs.
pub type Extension = Box<dyn FnOnce(&Started) -> Result<Box<dyn std::any::Any + Send>> + Send>;

/// Runs the node until the process is stopped.
pub fn run(cfg: NodeFile) -> Result<()> {
    run_with(cfg, None)
}

/// Runs the node, and `extension` beside it once it has started.
pub fn run_with(cfg: NodeFile, extension: Option<Extension>) -> Result<()> {
    let genesis = load_genesis(&cfg.node.genesis_file)?;
    let seed = keys::read(&cfg.node.validator_key_file)?;
    let signer = cbdc_node::validator_key(&seed).map_err(|e| anyhow!("{e}"))?;
    std::fs::create_dir_all(&cfg.node.data_dir)?;
    cbdc_store::ensure_database(&cfg.node.database_url).context("creating the node's database")?;
    let mut book = vec![(signer.public_key(), Address::from(cfg.node.p2p_listen))];
    for p in &cfg.peers {
        book.push((peer_key(&p.public_key)?, Address::from(p.address)));
    }
    // Room for banks admitted later (each admission adds one validator to the book).
    let peer_count = NonZeroUsize::new(book.len() + MAX_ADMITTED_PEERS).unwrap_or(NZUsize!(1));
    let configured: Vec<(ed25519::PublicKey, Address)> = book.clone();
    let book: Map<ed25519::PublicKey, Address> =
        book.try_into().map_err(|_| anyhow!("duplicate peer keys in the configuration"))?;
    let mut p2p_namespace = b"cbdc.v1.p2p.".to_vec();
    p2p_namespace.extend_from_slice(&genesis.hash());
    let handshake = Cups::<_, ChaCha20Poly1305>::new(
        Sake {
            signer: signer.clone(),
            synchrony_bound: Duration::from_secs(5),
            max_handshake_age: Duration::from_secs(10),
            version: sake::Version::V1,
        },
        cups::Version::V1,
    );
    let p2p_cfg = lookup::Config::local(
        handshake,
        &p2p_namespace,
        cfg.node.p2p_listen,
        peer_count,
        MAX_MESSAGE_BYTES,
        NZUsize!(4_096),
    );
    let file = cfg.clone();
    let genesis_copy = genesis.clone();
    let node_cfg = NodeConfig {
        genesis,
        validator_seed: seed,
        database_url: cfg.node.database_url.clone(),
        partition: format!("{}-consensus", cfg.node.name),
        max_block_txs: cfg.node.max_block_txs,
        snapshot_every: cfg.node.snapshot_every,
        mempool: MempoolLimits::default(),
        timeouts: Timeouts {
            leader: Duration::from_millis(cfg.node.leader_timeout_ms),
            certification: Duration::from_millis(cfg.node.leader_timeout_ms.saturating_mul(3) / 2),
            ..Timeouts::default()
        },
    };
    let runtime = commonware_runtime::tokio::Config::new()
        .with_storage_directory(&cfg.node.data_dir)
        .with_catch_panics(false);
    let runner = commonware_runtime::tokio::Runner::new(runtime);
    runner.start(|context| async move {
        let (mut network, mut oracle) = lookup::Network::new(context.child("network"), p2p_cfg);
        oracle.track(0, book);
        let mut epoch_oracle = oracle.clone();
        // Rates per peer and channel; mailboxes are preallocated from them, so they are sized
        // from need rather than set high (see CONSENSUS-NOTES).
        let mut reg = |channel: u64, per_second| network.register(channel, Quota::per_second(per_second));
        let votes = reg(0, NZU32!(512));
        let certificates = reg(1, NZU32!(512));
        let resolver = reg(2, NZU32!(256));
        let blocks = reg(3, NZU32!(64));
        let txs = reg(4, NZU32!(1_024));
        let sync = reg(5, NZU32!(64));
        network.start();
        let node = cbdc_node::start(
            context.child("node"),
            node_cfg,
            (votes, certificates, resolver),
            Channels { blocks, txs, sync },
            oracle,
        )
        .map_err(|e| anyhow!("starting the node: {e}"))?;
        let runtime_metrics = Arc::new(Mutex::new(String::new()));
        let state = HttpState {
            node_name: cfg.node.name.clone(),
            mailbox: node.mailbox.clone(),
            status: node.status.clone(),
            runtime_metrics: runtime_metrics.clone(),
        };
        let _http = http::spawn(cfg.node.http_listen, state)?;
        let started = Started {
            config: file,
            genesis: genesis_copy,
            mailbox: node.mailbox.clone(),
            status: node.status.clone(),
            finalized: node.finalized.clone(),
        };
        let _extension = match extension {
            Some(start) => Some(start(&started)?),
            None => None,
        };
        // Each epoch's validators become the peer book (only they may connect): addresses from
        // this node's configuration where it names them, else the endpoints registered on the
        // ledger at admission.
        let mut epochs = node.epochs.clone();
        let me = signer.public_key();
        context.child("peer_book").spawn(move |_| async move {
            loop {
                let info = epochs.borrow_and_update().clone();
                let book = epoch_book(&info, &configured, &me);
                tracing::info!(epoch = info.epoch, peers = book.len(), "tracking the epoch's validators");
                if let Ok(book) = Map::try_from(book) {
                    epoch_oracle.track(info.epoch.saturating_add(1), book);
                }
                if epochs.changed().await.is_err() {
                    break;
                }
            }
        });
        tracing::info!(node = %cfg.node.name, http = %cfg.node.http_listen, p2p = %cfg.node.p2p_listen, "validator started");
        let metrics_ctx = context.child("metrics");
        metrics_ctx.spawn(move |ctx| async move {
            loop {
                let text = ctx.encode();
                if let Ok(mut m) = runtime_metrics.lock() {
                    *m = text;
                }
                ctx.sleep(Duration::from_secs(1)).await;
            }
        });
        node.engine.await.map_err(|e| anyhow!("consensus engine stopped: {e:?}"))?;
        Ok::<(), anyhow::Error>(())
    })
}
