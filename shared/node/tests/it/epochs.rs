//! Validator-set changes by epoch, on the deterministic runtime: a sixth bank's node runs from
//! the start as a follower; the central bank admits the bank (k-of-n) with that node's
//! validator key, and from the next epoch the node votes: its signature appears in the
//! finalization certificates. Then the bank is suspended: the next epoch's engines run without
//! it, and the five keep finalizing. Every node agrees on every block throughout.

use crate::common::{Ctx, VALIDATORS, network_of, new_sim, seeds, validator_seed, wait_until};
use cbdc_ledger::testkit::{key, tx_id, wallet_id};
use cbdc_ledger::{Amount, BankId, Block, Decode, Ledger, PublicKey, TxKind};
use cbdc_node::{NodeHandle, namespace, participants, validator_key};
use cbdc_store::Store;
use commonware_codec::Decode as _;
use commonware_consensus::simplex::scheme::ed25519::Scheme;
use commonware_consensus::simplex::types::Finalization;
use commonware_cryptography::certificate::Verifier as _;
use commonware_cryptography::{Signer as _, sha256};
use commonware_runtime::{Runner as _, deterministic};
use std::time::Duration;

/// The admitted bank (and its node's index in the simulation).
const NEW_BANK: u32 = VALIDATORS;
const EXPIRY: u64 = 1_000;

fn runner(seed: u64) -> deterministic::Runner {
    let cfg = deterministic::Config::default()
        .with_seed(seed)
        .with_timeout(Some(Duration::from_secs(600)));
    deterministic::Runner::new(cfg)
}

fn new_validator() -> PublicKey {
    let pk = validator_key(&validator_seed(NEW_BANK)).expect("seed").public_key();
    PublicKey(<[u8; 32]>::try_from(pk.as_ref()).expect("32-byte key"))
}

/// The first block of the log with a finalization certificate in `epoch` that the new
/// validator signed, checked against that epoch's validator set.
fn signed_by_new_validator(db: &str, genesis: &cbdc_ledger::Genesis, epoch: u64) -> Option<u64> {
    let mut store = Store::open(db).expect("block log");
    let mut ledger = Ledger::from_genesis(genesis).expect("genesis");
    let last = store.last_height().expect("height");
    for height in 1..=last {
        let stored = store.block(height).expect("read").expect("block");
        let block = Block::decode(&stored.block).expect("decodes");
        let validators = ledger.validators();
        let in_epoch = ledger.epoch();
        ledger.apply_block(&block).expect("the log replays");
        let (Some(cert), true) = (stored.certificate, in_epoch == epoch) else { continue };
        let set = participants(&validators).expect("keys");
        let Some(index) = validators.iter().position(|v| *v == new_validator()) else {
            continue;
        };
        let verifier = Scheme::verifier(&namespace(genesis), set);
        let f = Finalization::<Scheme, sha256::Digest>::decode_cfg(
            bytes::Bytes::from(cert),
            &verifier.certificate_codec_config(),
        )
        .expect("certificate decodes");
        assert_eq!(f.proposal.payload.0, stored.hash, "certificate of another block");
        assert_eq!(f.proposal.round.epoch().get(), epoch, "certificate of another epoch");
        // Participants are in the engine's (sorted) order; the ledger lists them by bank.
        let sorted: Vec<_> = {
            let mut v = validators.clone();
            v.sort();
            v
        };
        let engine_index = sorted.iter().position(|v| *v == validators[index]).expect("member");
        if f.certificate.signers.iter().any(|p| p.get() as usize == engine_index) {
            return Some(height);
        }
    }
    None
}

fn run(seed: u64) {
    eprintln!("epochs, seed {seed} (rerun: CBDC_SIM_SEED={seed})");
    runner(seed).start(|context: Ctx| async move {
        let sim = new_sim();
        let oracle = network_of(&context, VALIDATORS + 1).await;
        let mut nodes: Vec<NodeHandle> = Vec::new();
        for i in 0..=NEW_BANK {
            nodes.push(sim.start(&context, &oracle, i).await);
        }
        let all: Vec<&NodeHandle> = nodes.iter().collect();
        let genesis_set: Vec<&NodeHandle> = nodes.iter().take(VALIDATORS as usize).collect();
        wait_until(&context, &genesis_set, Duration::from_secs(30), "epoch 0 blocks", |s| {
            s.height >= 3 && s.epoch == 0 && s.validators == VALIDATORS as usize
        })
        .await;
        assert_eq!(nodes[NEW_BANK as usize].status.borrow().validators, VALIDATORS as usize);

        // Admission (two of three officers): the new validator joins at the next epoch.
        let admit = TxKind::AdmitBank {
            bank: BankId(NEW_BANK),
            name: "Bank Five".into(),
            admin_key: key("bank-5-admin").public_key(),
            validator_key: new_validator(),
            endpoint: "bank-5.example:7000".into(),
            float_wallet: wallet_id("bank-5-float"),
            float_key: key("bank-5-float").public_key(),
            quota: Amount::from_minor(1_000_000).expect("amount"),
        };
        let tx = sim.net.by_officers(tx_id(1), EXPIRY, admit, 2);
        nodes[0].mailbox.submit(tx).await.expect("mempool accepts");
        wait_until(&context, &all, Duration::from_secs(60), "epoch 1 on all six", |s| {
            s.epoch == 1 && s.validators == VALIDATORS as usize + 1
        })
        .await;
        let boundary = nodes[0].status.borrow().height;
        wait_until(&context, &all, Duration::from_secs(60), "finality in epoch 1", |s| {
            s.height >= boundary + 10
        })
        .await;
        let voted = signed_by_new_validator(&sim.db(0), &sim.net.genesis, 1);
        assert!(voted.is_some(), "the admitted validator signed no finalization in epoch 1");

        // Suspension: the next epoch runs without it, and the five keep finalizing.
        let suspend = TxKind::SuspendBank { bank: BankId(NEW_BANK) };
        let tx = sim.net.by_officers(tx_id(2), EXPIRY, suspend, 2);
        nodes[1].mailbox.submit(tx).await.expect("mempool accepts");
        wait_until(&context, &all, Duration::from_secs(60), "epoch 2 on all six", |s| {
            s.epoch == 2 && s.validators == VALIDATORS as usize
        })
        .await;
        let boundary = nodes[0].status.borrow().height;
        wait_until(&context, &genesis_set, Duration::from_secs(60), "finality in epoch 2", |s| {
            s.height >= boundary + 10
        })
        .await;

        // Every node, the suspended one included, holds the same blocks.
        let common = all.iter().map(|n| n.status.borrow().height).min().unwrap_or(0);
        let mut reference: Option<Vec<[u8; 32]>> = None;
        for i in 0..=NEW_BANK {
            let mut store = Store::open(&sim.db(i)).expect("block log");
            let hashes: Vec<[u8; 32]> =
                (1..=common).map(|h| store.block(h).expect("read").expect("block").hash).collect();
            match &reference {
                None => reference = Some(hashes),
                Some(r) => assert_eq!(r, &hashes, "node {i} disagrees with node 0"),
            }
        }
    });
}

#[test]
fn an_admitted_validator_votes_from_the_next_epoch_and_a_suspended_one_stops() {
    for seed in seeds(3) {
        run(seed);
    }
}
