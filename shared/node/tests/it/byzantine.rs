//! Byzantine validators on the simulated network: five validators (the central bank and four
//! banks, f = 1), one byzantine, four honest.
//!
//! - **Invalid proposer** ([`InvalidProposer`]): once armed, every block the byzantine validator
//!   proposes carries one invalid transaction — a bad signature, an overspend, a mint with fewer
//!   than k officer approvals, in turn — with its header's transaction root and count recomputed
//!   and the honest state root kept, so only re-execution can tell. Honest validators must vote
//!   against every such block (the engine times the view out with reason `InvalidProposal`), keep
//!   finalizing honest transactions, never log an invalid transaction or crafted block, and agree
//!   on blocks and state roots.
//! - **Equivocator**: Commonware's own `conflicter` mock (feature `mocks`) holds the byzantine
//!   validator's key and, for every notarize (and finalize) vote it receives, signs two: one for
//!   a random digest and one for the real proposal, sent to everyone. Honest validators must keep
//!   finalizing and report signed, verifiable evidence naming it — and nobody else.
//!
//! Every run prints its seed; `CBDC_SIM_SEEDS=N` runs `0..N` (default 3), `CBDC_SIM_SEED=S` one.

use crate::common::{
    Ctx, Pk, Sim, VALIDATORS, network, new_sim, register, seeds, submit_all, validator_context,
    validator_pk, validator_seed, wait_until,
};
use cbdc_ledger::testkit::{Customer, TestNet, amt, tx_id};
use cbdc_ledger::{
    BankId, Block, BlockError, BlockHeader, Decode, Digest, Ledger, PublicKey, Rejection,
    SignedTransaction, TxId, TxKind, merkle_root, verify_chain,
};
use cbdc_node::app::ProposalTamper;
use cbdc_node::node::start_byzantine;
use cbdc_node::{Evidence, NodeHandle, namespace, participants, validator_key};
use cbdc_store::Store;
use commonware_codec::DecodeExt as _;
use commonware_consensus::simplex::mocks::conflicter::{self, Conflicter};
use commonware_consensus::simplex::scheme::ed25519::Scheme;
use commonware_consensus::simplex::types::{ConflictingFinalize, ConflictingNotarize};
use commonware_cryptography::{Sha256, sha256};
use commonware_p2p::simulated::Oracle;
use commonware_parallel::Sequential;
use commonware_runtime::{Clock, Metrics as _, Runner as _, Supervisor as _, deterministic};
use rand::RngExt as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The byzantine validator in both scenarios: bank 2.
const BYZANTINE: u32 = 2;
/// Each customer's funding, in minor units.
const FUNDING_MINOR: u64 = 100_000;

fn honest() -> Vec<u32> {
    (0..VALIDATORS).filter(|&i| i != BYZANTINE).collect()
}

fn runner(seed: u64) -> deterministic::Runner {
    let cfg = deterministic::Config::default()
        .with_seed(seed)
        .with_timeout(Some(Duration::from_secs(600)));
    deterministic::Runner::new(cfg)
}

/// Honest traffic: fresh transaction ids, customers funded by [`Traffic::setup`], and how many
/// submitted transactions must commit.
struct Traffic {
    last_id: u64,
    customers: Vec<Customer>,
    expected: u64,
}

impl Traffic {
    fn new() -> Self {
        Traffic { last_id: 0, customers: Vec::new(), expected: 0 }
    }

    fn next_id(&mut self) -> TxId {
        self.last_id += 1;
        tx_id(self.last_id)
    }

    /// An expiry height well inside the policy's window (1,000 blocks) of the tip.
    fn expiry(node: &NodeHandle) -> u64 {
        node.status.borrow().height + 900
    }

    async fn submit(&mut self, context: &Ctx, nodes: &[&NodeHandle], txs: Vec<SignedTransaction>) {
        self.expected += txs.len() as u64;
        submit_all(nodes, txs, |i| i).await;
        let expected = self.expected;
        wait_until(context, nodes, Duration::from_secs(120), "honest transactions", |s| {
            s.finalized_transactions >= expected
        })
        .await;
    }

    /// Mints to every bank, opens two customers per bank, funds them; waits until all commit.
    async fn setup(&mut self, context: &Ctx, net: &TestNet, nodes: &[&NodeHandle]) {
        let exp = Self::expiry(nodes[0]);
        let mut txs = Vec::new();
        for bank in 1..VALIDATORS {
            txs.push(net.mint(self.next_id(), exp, bank, 10_000_000));
            for k in 0..2 {
                let label = format!("c{bank}-{k}");
                let (c, open) = net.open_customer(self.next_id(), exp, bank, &label, 1, false);
                self.customers.push(c);
                txs.push(open);
            }
        }
        self.submit(context, nodes, txs).await;
        let exp = Self::expiry(nodes[0]);
        let ids: Vec<TxId> = (0..self.customers.len()).map(|_| self.next_id()).collect();
        let funds = self
            .customers
            .iter()
            .zip(ids)
            .map(|(c, id)| {
                let b = net.bank(c.bank.0);
                net.pay(id, exp, &b.float_key, b.float_wallet, c.wallet, FUNDING_MINOR)
            })
            .collect();
        self.submit(context, nodes, funds).await;
    }

    /// `n` random transfers small enough to always commit; waits until they do.
    async fn transfers(&mut self, context: &mut Ctx, net: &TestNet, nodes: &[&NodeHandle], n: u32) {
        let exp = Self::expiry(nodes[0]);
        let mut txs = Vec::new();
        for _ in 0..n {
            let from = context.random_range(0..self.customers.len());
            let to = (from + context.random_range(1..self.customers.len())) % self.customers.len();
            let amount = context.random_range(1..100);
            let id = self.next_id();
            let (p, q) = (&self.customers[from], &self.customers[to]);
            txs.push(net.pay(id, exp, &p.key, p.wallet, q.wallet, amount));
        }
        self.submit(context, nodes, txs).await;
    }
}

/// The invalid transaction a byzantine proposer slips into its block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Invalid {
    /// A customer's transfer whose signature has one bit flipped.
    BadSignature,
    /// A validly signed transfer of far more than the payer holds.
    Overspend,
    /// A mint approved by k - 1 officers.
    UnderApprovedMint,
}

impl Invalid {
    const ALL: [Invalid; 3] =
        [Invalid::BadSignature, Invalid::Overspend, Invalid::UnderApprovedMint];

    /// What execution must say about it.
    fn rejection(self) -> Rejection {
        match self {
            Invalid::BadSignature => Rejection::BadSignature,
            Invalid::Overspend => Rejection::InsufficientFunds,
            Invalid::UnderApprovedMint => Rejection::TooFewApprovals,
        }
    }

    /// A transaction valid in every respect but this one.
    fn transaction(
        self,
        net: &TestNet,
        id: TxId,
        expiry: u64,
        customers: &[Customer],
    ) -> SignedTransaction {
        match self {
            Invalid::BadSignature => {
                let (p, q) = (&customers[1], &customers[2]);
                let mut tx = net.pay(id, expiry, &p.key, p.wallet, q.wallet, 10);
                tx.signatures[0].signature.0[63] ^= 0x01;
                tx
            }
            Invalid::Overspend => {
                // Honest transfers move at most a few thousand minor units.
                let (p, q) = (&customers[0], &customers[3]);
                net.pay(id, expiry, &p.key, p.wallet, q.wallet, 50 * FUNDING_MINOR)
            }
            Invalid::UnderApprovedMint => {
                let k = usize::from(net.genesis.policy.threshold);
                let kind = TxKind::Mint { bank: BankId(1), amount: amt(1_000) };
                net.by_officers(id, expiry, kind, k - 1)
            }
        }
    }
}

/// A block the byzantine proposer crafted, and what the ledger says about it.
#[derive(Debug, Clone)]
struct Crafted {
    kind: Invalid,
    height: u64,
    hash: Digest,
    /// Index of the invalid transaction in the block (the last).
    index: u32,
    /// The parent ledger's verdict, as an honest validator's `verify` computes it.
    verdict: Result<(), BlockError>,
}

#[derive(Default)]
struct ProposerState {
    invalid: Vec<(Invalid, SignedTransaction)>,
    crafted: Vec<Crafted>,
}

/// A byzantine proposer (STYLE rule 22), installed through the node's `byzantine` hook. Until
/// armed it proposes honestly; then each proposal is its honest block with the next invalid
/// transaction appended, the transaction root and count recomputed and the honest state root
/// kept: the header is self-consistent, only executing the block reveals the fault.
#[derive(Clone, Default)]
struct InvalidProposer {
    state: Arc<Mutex<ProposerState>>,
}

impl InvalidProposer {
    fn arm(&self, invalid: Vec<(Invalid, SignedTransaction)>) {
        self.state.lock().expect("proposer state").invalid = invalid;
    }

    fn crafted(&self) -> Vec<Crafted> {
        self.state.lock().expect("proposer state").crafted.clone()
    }

    fn tamper(&self) -> ProposalTamper {
        let this = self.clone();
        ProposalTamper::new(move |parent, honest| this.craft(parent, honest))
    }

    fn craft(&self, parent: &Ledger, honest: &Block) -> Option<Block> {
        let mut state = self.state.lock().expect("proposer state");
        if state.invalid.is_empty() {
            return None;
        }
        let (kind, tx) = state.invalid[state.crafted.len() % state.invalid.len()].clone();
        let mut transactions = honest.transactions.clone();
        transactions.push(tx);
        let tx_count = u32::try_from(transactions.len()).expect("block size");
        let header = BlockHeader { tx_root: merkle_root(&transactions), tx_count, ..honest.header };
        let block = Block { header, transactions };
        let verdict = parent.check_block(&block).map(|_| ());
        state.crafted.push(Crafted {
            kind,
            height: header.height,
            hash: block.hash(),
            index: tx_count - 1,
            verdict,
        });
        Some(block)
    }
}

/// Starts validator `i` as an invalid proposer.
async fn start_invalid_proposer(
    sim: &Sim,
    context: &Ctx,
    oracle: &Oracle<Pk, Ctx>,
    i: u32,
    proposer: &InvalidProposer,
) -> NodeHandle {
    let pk = validator_pk(i);
    let (consensus, own) = register(oracle, &pk).await;
    let (context, cfg) = (validator_context(context, i), sim.node_config(i));
    start_byzantine(context, cfg, consensus, own, oracle.control(pk), proposer.tamper())
        .expect("byzantine validator starts")
}

/// The honest validators' block logs up to their common height: identical, re-verifiable from
/// genesis, and at equal heights the nodes report equal tips and state roots. Returns the log.
fn agreed_log(sim: &Sim, honest: &[(u32, &NodeHandle)]) -> Vec<Block> {
    let statuses: Vec<_> = honest.iter().map(|(_, n)| n.status.borrow().clone()).collect();
    for a in &statuses {
        for b in statuses.iter().filter(|b| b.height == a.height) {
            assert_eq!((a.tip_hash, a.state_root), (b.tip_hash, b.state_root), "same height");
        }
    }
    let common = statuses.iter().map(|s| s.height).min().unwrap_or(0);
    let mut logs = Vec::new();
    for (i, _) in honest {
        let mut store = Store::open(&sim.db(*i)).expect("open store");
        let mut blocks = Vec::new();
        while (blocks.len() as u64) < common {
            let from = blocks.len() as u64 + 1;
            let page = store.blocks_from(from, 256).expect("read blocks");
            assert!(!page.is_empty(), "validator {i} is missing block {from}");
            for b in page.into_iter().filter(|b| b.height <= common) {
                blocks.push(Block::decode(&b.block).expect("stored block decodes"));
            }
        }
        logs.push(blocks);
    }
    for (log, (i, _)) in logs.iter().zip(honest) {
        assert!(
            log == &logs[0],
            "validator {i}'s block log differs from validator {}'s",
            honest[0].0
        );
    }
    let log = logs.swap_remove(0);
    let ledger = verify_chain(&sim.net.genesis, &log).expect("the agreed log re-verifies");
    assert_eq!(ledger.height(), common);
    log
}

/// How many views led by `leader` validator `i` timed out for `reason` (from its metrics).
fn timeouts(encoded: &str, i: u32, leader: &Pk, reason: &str) -> u64 {
    let (index, leader, reason) =
        (format!("index=\"{i}\""), format!("leader=\"{leader}\""), format!("reason=\"{reason}\""));
    encoded
        .lines()
        .filter(|l| l.contains("_timeouts") && !l.starts_with('#'))
        .filter(|l| l.contains(&index) && l.contains(&leader) && l.contains(&reason))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}

/// What a run leaves to compare with a replay: the agreed block hashes, then any crafted ones.
type Trace = Vec<Digest>;

fn invalid_proposer_run(seed: u64) -> Trace {
    eprintln!("byzantine proposer, seed {seed} (rerun: CBDC_SIM_SEED={seed})");
    runner(seed).start(|mut context| async move {
        let sim = new_sim();
        let oracle = network(&context).await;
        let proposer = InvalidProposer::default();
        let mut nodes = Vec::new();
        for i in 0..VALIDATORS {
            nodes.push(if i == BYZANTINE {
                start_invalid_proposer(&sim, &context, &oracle, i, &proposer).await
            } else {
                sim.start(&context, &oracle, i).await
            });
        }
        let honest: Vec<(u32, &NodeHandle)> =
            honest().into_iter().map(|i| (i, &nodes[i as usize])).collect();
        let refs: Vec<&NodeHandle> = honest.iter().map(|(_, n)| *n).collect();
        let mut traffic = Traffic::new();
        traffic.setup(&context, &sim.net, &refs).await;

        let exp = Traffic::expiry(refs[0]);
        let invalid: Vec<_> = Invalid::ALL
            .into_iter()
            .map(|k| (k, k.transaction(&sim.net, traffic.next_id(), exp, &traffic.customers)))
            .collect();
        let invalid_ids: Vec<TxId> = invalid.iter().map(|(_, tx)| tx.body.id).collect();
        proposer.arm(invalid);
        let armed_at = refs.iter().map(|n| n.status.borrow().height).max().unwrap_or(0);

        // Honest traffic until the byzantine validator has led often enough to propose every
        // kind of invalid block twice.
        let mut rounds = 0;
        while proposer.crafted().len() < 2 * Invalid::ALL.len() {
            rounds += 1;
            assert!(rounds <= 40, "the byzantine validator hardly proposes: {rounds} rounds");
            traffic.transfers(&mut context, &sim.net, &refs, 10).await;
        }
        let crafted = proposer.crafted();
        eprintln!("  {} invalid proposals over {rounds} rounds of transfers", crafted.len());
        let target = refs.iter().map(|n| n.status.borrow().height).max().unwrap_or(0) + 2;
        wait_until(&context, &refs, Duration::from_secs(60), "finality goes on", |s| {
            s.height >= target
        })
        .await;

        // Each crafted block is wrong only in execution, for the intended reason.
        for c in &crafted {
            let wanted =
                BlockError::RejectedTransaction { index: c.index, rejection: c.kind.rejection() };
            assert_eq!(c.verdict, Err(wanted), "crafted block at height {}", c.height);
        }
        for kind in Invalid::ALL {
            assert!(crafted.iter().any(|c| c.kind == kind), "no {kind:?} block was proposed");
        }
        // Every honest validator voted against them: the engine timed those views out because
        // the proposal failed verification.
        let encoded = context.encode();
        let byzantine = validator_pk(BYZANTINE);
        let rejected: Vec<u64> = honest
            .iter()
            .map(|(i, _)| timeouts(&encoded, *i, &byzantine, "InvalidProposal"))
            .collect();
        eprintln!("  views timed out as InvalidProposal, per honest validator: {rejected:?}");
        for ((i, _), n) in honest.iter().zip(&rejected) {
            assert!(*n > 0, "validator {i} never rejected an invalid proposal");
        }
        // Honest finality went on, and no invalid transaction or crafted block was finalized.
        let log = agreed_log(&sim, &honest);
        assert!(log.len() as u64 > armed_at + 2, "finality stalled after arming");
        let committed: u64 = log.iter().map(|b| b.transactions.len() as u64).sum();
        assert_eq!(committed, traffic.expected, "every honest transaction committed once");
        for block in &log {
            assert!(crafted.iter().all(|c| c.hash != block.hash()), "a crafted block finalized");
            for tx in &block.transactions {
                assert!(!invalid_ids.contains(&tx.body.id), "an invalid transaction finalized");
            }
        }
        log.iter().map(Block::hash).chain(crafted.iter().map(|c| c.hash)).collect()
    })
}

/// Verifies the signed proof carried by a piece of evidence.
fn proof_verifies(context: &mut Ctx, verifier: &Scheme, evidence: &Evidence) -> bool {
    let proof = || bytes::Bytes::copy_from_slice(&evidence.proof);
    match evidence.kind.as_str() {
        "conflicting_notarize" => ConflictingNotarize::<Scheme, sha256::Digest>::decode(proof())
            .is_ok_and(|e| e.verify(context, verifier, &Sequential)),
        "conflicting_finalize" => ConflictingFinalize::<Scheme, sha256::Digest>::decode(proof())
            .is_ok_and(|e| e.verify(context, verifier, &Sequential)),
        _ => false,
    }
}

fn equivocator_run(seed: u64) -> Trace {
    eprintln!("equivocator, seed {seed} (rerun: CBDC_SIM_SEED={seed})");
    runner(seed).start(|mut context| async move {
        let sim = new_sim();
        let oracle = network(&context).await;
        let mut nodes = Vec::new();
        for i in honest() {
            nodes.push((i, sim.start(&context, &oracle, i).await));
        }
        // The byzantine validator runs no node: only Commonware's conflicter, on its vote
        // channel, with its real consensus key. Its other channels stay registered and idle.
        let genesis = &sim.net.genesis;
        let validators = Ledger::from_genesis(genesis).expect("genesis").validators();
        let set = participants(&validators).expect("validator keys");
        let key = validator_key(&validator_seed(BYZANTINE)).expect("seed");
        let scheme = Scheme::signer(&namespace(genesis), set.clone(), key).expect("a validator");
        let (consensus, _idle) = register(&oracle, &validator_pk(BYZANTINE)).await;
        let ((vote_tx, vote_rx), _certificates, _resolver) = consensus;
        // Nodes run each epoch's engine on its own sub-channel; epoch 0 is sub-channel 0.
        let (mux, mut mux_handle) = commonware_p2p::utils::mux::Muxer::new(
            validator_context(&context, BYZANTINE).child("mux"),
            vote_tx,
            vote_rx,
        );
        let _mux = mux.start();
        let votes = mux_handle.register(0).await.expect("sub-channel 0");
        let byzantine_context = validator_context(&context, BYZANTINE).child("conflicter");
        let _conflicter =
            Conflicter::<_, _, Sha256>::new(byzantine_context, conflicter::Config { scheme })
                .start(votes);

        let honest: Vec<(u32, &NodeHandle)> = nodes.iter().map(|(i, n)| (*i, n)).collect();
        let refs: Vec<&NodeHandle> = honest.iter().map(|(_, n)| *n).collect();
        let mut traffic = Traffic::new();
        traffic.setup(&context, &sim.net, &refs).await;
        let start = context.current();
        while refs.iter().all(|n| n.status.borrow().evidence == 0) {
            assert!(
                context.current().duration_since(start).unwrap_or_default()
                    < Duration::from_secs(60),
                "no honest validator reported the equivocation"
            );
            context.sleep(Duration::from_millis(100)).await;
        }
        // Finality goes on after the equivocation is caught, through views the equivocator leads.
        let height = refs.iter().map(|n| n.status.borrow().height).max().unwrap_or(0);
        for _ in 0..4 {
            traffic.transfers(&mut context, &sim.net, &refs, 10).await;
        }
        let target = height + 2 * u64::from(VALIDATORS);
        wait_until(&context, &refs, Duration::from_secs(60), "finality goes on", |s| {
            s.height >= target
        })
        .await;

        let culprit: PublicKey = sim.net.bank(BYZANTINE).validator.public_key();
        let verifier = Scheme::verifier(&namespace(genesis), set);
        let mut evidence = Vec::new();
        for (i, n) in &honest {
            let seen = n.mailbox.evidence_seen().await;
            let kinds: Vec<_> = seen.iter().map(|e| (e.kind.as_str(), e.view)).collect();
            eprintln!("  validator {i} holds evidence {kinds:?}");
            assert_eq!(n.status.borrow().evidence, seen.len() as u64, "status counts evidence");
            let stored = cbdc_store::Store::open(&sim.db(*i))
                .and_then(|mut s| s.evidence_count())
                .expect("block log readable");
            assert_eq!(stored, seen.len() as u64, "validator {i} persisted its evidence");
            evidence.extend(seen);
        }
        assert!(!evidence.is_empty(), "evidence was counted but not kept");
        for e in &evidence {
            assert_eq!(e.validator, culprit, "evidence names an honest validator: {e:?}");
            assert!(proof_verifies(&mut context, &verifier, e), "unverifiable evidence: {e:?}");
        }
        // Honest validators blocked the equivocator, and only it.
        let blocked = oracle.blocked().await.expect("blocked peers");
        assert!(!blocked.is_empty(), "nobody blocked the equivocator");
        let byzantine = validator_pk(BYZANTINE);
        assert!(blocked.iter().all(|(_, b)| b == &byzantine), "an honest validator was blocked");

        let log = agreed_log(&sim, &honest);
        let committed: u64 = log.iter().map(|b| b.transactions.len() as u64).sum();
        assert_eq!(committed, traffic.expected, "every honest transaction committed once");
        log.iter().map(Block::hash).collect()
    })
}

#[test]
fn honest_validators_reject_invalid_proposals() {
    for seed in seeds(3) {
        invalid_proposer_run(seed);
    }
}

#[test]
fn honest_validators_finalize_and_report_an_equivocator() {
    for seed in seeds(3) {
        equivocator_run(seed);
    }
}

#[test]
fn byzantine_runs_replay_from_their_seed() {
    let seed = 7;
    assert_eq!(invalid_proposer_run(seed), invalid_proposer_run(seed), "seed {seed} diverged");
    assert_eq!(equivocator_run(seed), equivocator_run(seed), "seed {seed} diverged");
}
