//! Helpers shared by the simulation scenarios: the five validators' keys, the simulated network
//! and its channels, starting a validator, waiting in virtual time, the seeds to run.

use cbdc_ledger::SignedTransaction;
use cbdc_ledger::testkit::{TestNet, seed};
use cbdc_node::{
    Channels, ConsensusChannels, MempoolLimits, NodeConfig, NodeHandle, Timeouts, start,
    validator_key,
};
use commonware_cryptography::{Signer as _, ed25519};
use commonware_p2p::simulated::{Config as NetConfig, Link, Network, Oracle};
use commonware_runtime::{Clock, Quota, Supervisor as _, deterministic};
use commonware_utils::{NZU32, NZUsize, probability};
use std::time::Duration;

/// The central bank and four banks: f = 1.
pub const VALIDATORS: u32 = 5;
pub type Ctx = deterministic::Context;
pub type Pk = ed25519::PublicKey;
pub type Snd = commonware_p2p::simulated::Sender<Pk, Ctx>;
pub type Rcv = commonware_p2p::simulated::Receiver<Pk>;

pub fn validator_seed(i: u32) -> [u8; 32] {
    seed(&format!("bank-{i}-validator"))
}

pub fn validator_pk(i: u32) -> Pk {
    validator_key(&validator_seed(i)).expect("valid seed").public_key()
}

/// Registers validator `pk`'s six channels: the engine's three, then the node's own three.
pub async fn register(
    oracle: &Oracle<Pk, Ctx>,
    pk: &Pk,
) -> (ConsensusChannels<Snd, Rcv>, Channels<Snd, Rcv>) {
    let control = oracle.control(pk.clone());
    let quota = Quota::per_second(NZU32!(100_000));
    let mut ch = Vec::new();
    for channel in 0..6u64 {
        ch.push(control.register(channel, quota).await.expect("register channel"));
    }
    let mut ch = ch.into_iter();
    let mut next = || ch.next().expect("six channels");
    let consensus = (next(), next(), next());
    let own = Channels { blocks: next(), txs: next(), sync: next() };
    (consensus, own)
}

/// A simulated network's test genesis and the validators' block logs.
pub struct Sim {
    pub net: TestNet,
    pub dir: tempfile::TempDir,
}

impl Sim {
    pub fn db(&self, i: u32) -> String {
        format!("sqlite://{}/validator-{i}.db", self.dir.path().display())
    }

    /// Validator `i`'s configuration.
    pub fn node_config(&self, i: u32) -> NodeConfig {
        NodeConfig {
            genesis: self.net.genesis.clone(),
            validator_seed: validator_seed(i),
            database_url: self.db(i),
            partition: format!("validator-{i}"),
            max_block_txs: 1_000,
            snapshot_every: 8,
            mempool: MempoolLimits::default(),
            timeouts: Timeouts::default(),
        }
    }

    /// Starts honest validator `i` on its registered channels.
    pub async fn start(&self, context: &Ctx, oracle: &Oracle<Pk, Ctx>, i: u32) -> NodeHandle {
        let pk = validator_pk(i);
        let (consensus, own) = register(oracle, &pk).await;
        let cfg = self.node_config(i);
        start(validator_context(context, i), cfg, consensus, own, oracle.control(pk))
            .expect("validator starts")
    }
}

/// Validator `i`'s runtime context (its metrics carry `index="i"`).
pub fn validator_context(context: &Ctx, i: u32) -> Ctx {
    context.child("validator").with_attribute("index", i)
}

pub async fn link_all(oracle: &Oracle<Pk, Ctx>, nodes: &[u32], link: &Link) {
    for &a in nodes {
        for &b in nodes {
            if a != b {
                oracle
                    .add_link(validator_pk(a), validator_pk(b), link.clone())
                    .await
                    .expect("link");
            }
        }
    }
}

/// Waits (in virtual time) until `cond` holds for the given nodes, or fails after `limit`.
pub async fn wait_until(
    context: &Ctx,
    nodes: &[&NodeHandle],
    limit: Duration,
    what: &str,
    cond: impl Fn(&cbdc_node::NodeStatus) -> bool,
) {
    let start = context.current();
    let deadline = start + limit;
    loop {
        if nodes.iter().all(|n| cond(&n.status.borrow())) {
            let took = context.current().duration_since(start).unwrap_or_default();
            let heights: Vec<u64> = nodes.iter().map(|n| n.status.borrow().height).collect();
            eprintln!("  {what}: {took:?} virtual, heights {heights:?}");
            return;
        }
        if context.current() >= deadline {
            let statuses: Vec<_> = nodes.iter().map(|n| n.status.borrow().clone()).collect();
            panic!("timed out waiting for {what}: {statuses:?}");
        }
        context.sleep(Duration::from_millis(50)).await;
    }
}

pub async fn submit_all(
    nodes: &[&NodeHandle],
    txs: Vec<SignedTransaction>,
    pick: impl Fn(usize) -> usize,
) {
    for (i, tx) in txs.into_iter().enumerate() {
        let node = nodes[pick(i) % nodes.len()];
        node.mailbox.submit(tx).await.expect("mempool accepts");
    }
}

/// The seeds to run: `CBDC_SIM_SEED=S` replays one, `CBDC_SIM_SEEDS=N` runs `0..N`, otherwise
/// `0..default`.
pub fn seeds(default: u64) -> Vec<u64> {
    if let Ok(seed) = std::env::var("CBDC_SIM_SEED") {
        return vec![seed.parse().expect("CBDC_SIM_SEED is a number")];
    }
    let n = std::env::var("CBDC_SIM_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(default);
    (0..n).collect()
}

pub fn new_sim() -> Sim {
    let base = if std::path::Path::new("/dev/shm").is_dir() { "/dev/shm" } else { "/tmp" };
    Sim { net: TestNet::new(VALIDATORS - 1), dir: tempfile::tempdir_in(base).expect("temp dir") }
}

/// The simulated network, every validator linked to every other (20 ms ± 5 ms, no loss).
pub async fn network(context: &Ctx) -> Oracle<Pk, Ctx> {
    network_of(context, VALIDATORS).await
}

/// The simulated network of nodes `0..n` (nodes beyond the genesis validators are banks
/// admitted later), every node linked to every other.
pub async fn network_of(context: &Ctx, n: u32) -> Oracle<Pk, Ctx> {
    let peers: Vec<Pk> = (0..n).map(validator_pk).collect();
    let (network, oracle) = Network::new_with_peers(
        context.child("network"),
        NetConfig {
            max_size: 8 * 1024 * 1024,
            max_peers_per_set: NZUsize!(n as usize + 1),
            disconnect_on_block: true,
            tracked_peer_sets: NZUsize!(1),
        },
        peers,
    )
    .await;
    network.start();
    let all: Vec<u32> = (0..n).collect();
    link_all(&oracle, &all, &default_link()).await;
    oracle
}

/// Every link of the simulated network: 20 ms ± 5 ms, no loss.
pub fn default_link() -> Link {
    Link {
        latency: Duration::from_millis(20),
        jitter: Duration::from_millis(5),
        success_rate: probability!(1.0),
    }
}
