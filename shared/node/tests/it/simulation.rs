//! Deterministic simulation of a whole network on Commonware's deterministic runtime: five
//! validators (the central bank and four banks, f = 1), seeded random transfers, a partition that
//! heals, a validator crashed and restarted. Every honest node must finalize the same blocks and
//! reach the same state commitment, and nothing finalized may be lost.
//!
//! Every run prints its seed; `CBDC_SIM_SEEDS=N` runs more seeds (CI runs 20).

use crate::common::{
    Ctx, Pk, VALIDATORS, default_link, network, new_sim, seeds, submit_all, validator_pk,
    wait_until,
};
use cbdc_ledger::testkit::{Customer, tx_id};
use cbdc_ledger::{Decode, SignedTransaction};
use cbdc_node::NodeHandle;
use cbdc_store::Store;
use commonware_p2p::simulated::{Link, Oracle};
use commonware_runtime::{Clock, Runner as _, deterministic};
use rand::RngExt as _;
use std::time::Duration;

async fn unlink(oracle: &Oracle<Pk, Ctx>, side_a: &[u32], side_b: &[u32]) {
    for &a in side_a {
        for &b in side_b {
            oracle.remove_link(validator_pk(a), validator_pk(b)).await.expect("unlink");
            oracle.remove_link(validator_pk(b), validator_pk(a)).await.expect("unlink");
        }
    }
}

async fn relink(oracle: &Oracle<Pk, Ctx>, side_a: &[u32], side_b: &[u32], link: &Link) {
    for &a in side_a {
        for &b in side_b {
            oracle.add_link(validator_pk(a), validator_pk(b), link.clone()).await.expect("link");
            oracle.add_link(validator_pk(b), validator_pk(a), link.clone()).await.expect("link");
        }
    }
}

/// Every node verified each transaction's signatures exactly once and holds none of them any
/// more: every transaction so far is valid and finalized, whether it reached a node as a
/// submission, as gossip, or in a peer's block before its gossip (then admitted from the block;
/// the late gossip is neither verified again nor held again).
fn once_per_node(nodes: &[&NodeHandle], phase: &str) {
    for (i, n) in nodes.iter().enumerate() {
        let s = n.status.borrow().clone();
        assert_eq!(
            (s.signatures_verified, s.mempool),
            (s.finalized_transactions, 0),
            "node {i} after {phase}: (signatures verified, mempool) against (finalized, 0)"
        );
    }
}

/// What a run ends with, per node: height, tip hash, state root.
type Outcome = Vec<(u64, [u8; 32], [u8; 32])>;

fn run(sim_seed: u64) -> Outcome {
    eprintln!("simulation seed {sim_seed} (rerun: CBDC_SIM_SEED={sim_seed})");
    let cfg = deterministic::Config::default()
        .with_seed(sim_seed)
        .with_timeout(Some(Duration::from_secs(900)));
    let runner = deterministic::Runner::new(cfg);
    runner.start(|mut context| async move {
        let sim = new_sim();
        let oracle = network(&context).await;
        let link = default_link();
        let mut nodes = Vec::new();
        for i in 0..VALIDATORS {
            nodes.push(sim.start(&context, &oracle, i).await);
        }

        // Setup: mint to every bank, open two customers per bank, fund them.
        let net = &sim.net;
        // Expiry heights must lie within the policy's window (1,000 blocks) of the tip.
        let exp_at = |n: &NodeHandle| n.status.borrow().height + 900;
        let exp = exp_at(&nodes[0]);
        let mut id = 0u64;
        let mut next_id = || {
            id += 1;
            tx_id(id)
        };
        let mut setup = Vec::new();
        let mut customers: Vec<Customer> = Vec::new();
        for bank in 1..VALIDATORS {
            setup.push(net.mint(next_id(), exp, bank, 10_000_000));
            for k in 0..2 {
                let (c, open) =
                    net.open_customer(next_id(), exp, bank, &format!("c{bank}-{k}"), 1, false);
                customers.push(c);
                setup.push(open);
            }
        }
        let mut expected = setup.len() as u64;
        let refs: Vec<&NodeHandle> = nodes.iter().collect();
        submit_all(&refs, setup, |i| i).await;
        wait_until(&context, &refs, Duration::from_secs(60), "setup", |s| {
            s.finalized_transactions >= expected
        })
        .await;
        let exp = exp_at(refs[0]);
        let funds: Vec<_> = customers
            .iter()
            .map(|c| {
                let b = net.bank(c.bank.0);
                net.pay(next_id(), exp, &b.float_key, b.float_wallet, c.wallet, 100_000)
            })
            .collect();
        expected += funds.len() as u64;
        submit_all(&refs, funds, |i| i).await;
        wait_until(&context, &refs, Duration::from_secs(60), "funding", |s| {
            s.finalized_transactions >= expected
        })
        .await;

        // Random transfers, to random nodes, small enough to always commit.
        let mut transfers = |n: usize, ctx: &mut Ctx, exp: u64| -> Vec<SignedTransaction> {
            (0..n)
                .map(|_| {
                    let from = ctx.random_range(0..customers.len());
                    let to = (from + ctx.random_range(1..customers.len())) % customers.len();
                    let (p, q) = (&customers[from], &customers[to]);
                    net.pay(next_id(), exp, &p.key, p.wallet, q.wallet, ctx.random_range(1..100))
                })
                .collect()
        };
        let batch = transfers(30, &mut context, exp_at(refs[0]));
        expected += batch.len() as u64;
        let r = context.random_range(0..5usize);
        submit_all(&refs, batch, |i| i + r).await;
        wait_until(&context, &refs, Duration::from_secs(60), "transfers", |s| {
            s.finalized_transactions >= expected
        })
        .await;
        once_per_node(&refs, "transfers");

        // Node 0's messages to node 1 slowed to 60-260 ms: node 1 gets node 0's submissions in
        // other leaders' blocks before their gossip, which then arrives before or after node 1
        // finalizes them. Each is still verified once there.
        let slow = Link {
            latency: Duration::from_millis(160),
            jitter: Duration::from_millis(100),
            ..default_link()
        };
        oracle.remove_link(validator_pk(0), validator_pk(1)).await.expect("unlink");
        oracle.add_link(validator_pk(0), validator_pk(1), slow).await.expect("link");
        let batch = transfers(40, &mut context, exp_at(refs[0]));
        expected += batch.len() as u64;
        submit_all(&refs[..1], batch, |i| i).await;
        wait_until(&context, &refs, Duration::from_secs(60), "slow gossip", |s| {
            s.finalized_transactions >= expected
        })
        .await;
        // Let the last gossip land (the empty blocks that follow publish the counters).
        context.sleep(Duration::from_secs(2)).await;
        once_per_node(&refs, "slow gossip");
        oracle.remove_link(validator_pk(0), validator_pk(1)).await.expect("unlink");
        oracle.add_link(validator_pk(0), validator_pk(1), link.clone()).await.expect("link");

        // A partition {0,1} | {2,3,4}: neither side has a quorum of 4; then it heals.
        unlink(&oracle, &[0, 1], &[2, 3, 4]).await;
        let batch = transfers(20, &mut context, exp_at(refs[0]));
        expected += batch.len() as u64;
        submit_all(&refs[2..], batch, |i| i).await;
        context.sleep(Duration::from_secs(5)).await;
        relink(&oracle, &[0, 1], &[2, 3, 4], &link).await;
        wait_until(&context, &refs, Duration::from_secs(120), "healing", |s| {
            s.finalized_transactions >= expected
        })
        .await;
        // Nodes 0 and 1 learnt the partition's transactions from blocks and late gossip.
        once_per_node(&refs, "healing");

        // Crash validator 4 (no clean shutdown); the other four keep finalizing.
        let crashed = nodes.pop().expect("five nodes");
        let crashed_height = crashed.status.borrow().height;
        crashed.engine.abort();
        crashed.application.abort();
        drop(crashed);
        let refs: Vec<&NodeHandle> = nodes.iter().collect();
        let batch = transfers(20, &mut context, exp_at(refs[0]));
        expected += batch.len() as u64;
        submit_all(&refs, batch, |i| i).await;
        wait_until(&context, &refs, Duration::from_secs(120), "finality without node 4", |s| {
            s.finalized_transactions >= expected && s.height > crashed_height + 3
        })
        .await;

        // Restart it from its journal and block log: it catches up.
        nodes.push(sim.start(&context, &oracle, VALIDATORS - 1).await);
        let refs: Vec<&NodeHandle> = nodes.iter().collect();
        let target = refs[0].status.borrow().height;
        wait_until(&context, &refs, Duration::from_secs(180), "catch-up", |s| s.height >= target)
            .await;

        // Compare: every node's block log agrees up to the common height, and no committed
        // transaction is missing from it.
        let common = refs.iter().map(|n| n.status.borrow().height).min().unwrap_or(0);
        let mut logs = Vec::new();
        for i in 0..VALIDATORS {
            let mut store = Store::open(&sim.db(i)).expect("open store");
            let mut hashes = Vec::new();
            let mut txs = 0u64;
            let mut h = 1;
            while h <= common {
                for b in store.blocks_from(h, 256).expect("read blocks") {
                    if b.height > common {
                        break;
                    }
                    let block = cbdc_ledger::Block::decode(&b.block).expect("stored block decodes");
                    txs += block.transactions.len() as u64;
                    hashes.push(b.hash);
                    h = b.height + 1;
                }
            }
            logs.push((hashes, txs));
        }
        for (i, log) in logs.iter().enumerate() {
            assert_eq!(log.0.len() as u64, common, "node {i} is missing blocks");
            assert_eq!(log, &logs[0], "node {i}'s block log differs from node 0's");
        }
        assert_eq!(logs[0].1, expected, "every submitted transaction committed exactly once");
        refs.iter()
            .map(|n| {
                let s = n.status.borrow();
                (s.height, s.tip_hash, s.state_root)
            })
            .collect::<Outcome>()
    })
}

#[test]
fn honest_nodes_agree_through_partition_and_crash() {
    for seed in seeds(20) {
        let outcome = run(seed);
        // Nodes at the same height must have the same tip and state.
        for (h, tip, root) in &outcome {
            for (h2, tip2, root2) in &outcome {
                if h == h2 {
                    assert_eq!(
                        (tip, root),
                        (tip2, root2),
                        "seed {seed}: same height, different state"
                    );
                }
            }
        }
    }
}

#[test]
fn the_same_seed_replays_the_same_run() {
    let seed = 7;
    assert_eq!(run(seed), run(seed), "seed {seed} is not deterministic");
}

/// Two validators crash at once: three of five is below the quorum of four, so nothing
/// finalizes. Both restart with their in-memory candidates gone, and their votes are needed
/// again — also on proposals building on blocks notarized before or during the halt, which they
/// must fetch and verify. The network resumes on one chain. Returns the heights reached.
fn halt_and_resume(sim_seed: u64) -> Vec<(u64, [u8; 32])> {
    eprintln!("halt-and-resume seed {sim_seed} (rerun: CBDC_SIM_SEED={sim_seed})");
    let cfg = deterministic::Config::default()
        .with_seed(sim_seed)
        .with_timeout(Some(Duration::from_secs(900)));
    deterministic::Runner::new(cfg).start(|context| async move {
        let sim = new_sim();
        let oracle = network(&context).await;
        let mut nodes = Vec::new();
        for i in 0..VALIDATORS {
            nodes.push(sim.start(&context, &oracle, i).await);
        }
        let refs: Vec<&NodeHandle> = nodes.iter().collect();
        wait_until(&context, &refs, Duration::from_secs(60), "first blocks", |s| s.height >= 5)
            .await;
        for _ in 0..2 {
            let down = nodes.pop().expect("five nodes");
            down.engine.abort();
            down.application.abort();
        }
        context.sleep(Duration::from_secs(2)).await;
        let halted: Vec<u64> = nodes.iter().map(|n| n.status.borrow().height).collect();
        context.sleep(Duration::from_secs(10)).await;
        let later: Vec<u64> = nodes.iter().map(|n| n.status.borrow().height).collect();
        assert_eq!(halted, later, "seed {sim_seed}: finalized with three of five validators");
        nodes.push(sim.start(&context, &oracle, 3).await);
        nodes.push(sim.start(&context, &oracle, 4).await);
        let resume = halted.iter().copied().max().unwrap_or(0);
        let refs: Vec<&NodeHandle> = nodes.iter().collect();
        wait_until(&context, &refs, Duration::from_secs(180), "resumption", |s| {
            s.height > resume + 5
        })
        .await;
        refs.iter()
            .map(|n| {
                let s = n.status.borrow();
                (s.height, s.tip_hash)
            })
            .collect()
    })
}

#[test]
fn a_halted_network_resumes_when_two_validators_return() {
    for seed in seeds(5) {
        let heights = halt_and_resume(seed);
        for (h, tip) in &heights {
            for (h2, tip2) in &heights {
                if h == h2 {
                    assert_eq!(tip, tip2, "seed {seed}: a fork at height {h}");
                }
            }
        }
    }
}
