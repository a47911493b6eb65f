//! Recovery: a node that stored a chain (with or without snapshots) and restarted rebuilds the
//! same ledger as the one that lived through it.

use cbdc_ledger::testkit::{ChainBuilder, TestNet, tx_id};
use cbdc_ledger::{Ledger, SignedTransaction, SigningKey, WalletId};
use cbdc_store::{REPLAY_PAGE_BLOCKS, RecoverError, Store, StoredSnapshot, commit_block, recover};

use crate::support::{TestDb, on_both_backends};

on_both_backends!(
    recovers_from_the_newest_snapshot_and_the_blocks_after_it,
    recovers_from_genesis_without_a_snapshot,
    empty_store_recovers_to_genesis,
    snapshot_with_a_wrong_state_root_is_refused,
    undecodable_stored_block_is_refused,
    stored_hash_must_be_the_block_hash,
);

/// Validity window of the test transactions, in blocks.
const EXPIRY_BLOCKS: u64 = 100;

/// A test chain of `blocks` blocks: a mint and two customers, funding, then payments back and
/// forth between banks 1 and 2 in every block after that. Every block goes through
/// `commit_block`, as a node would store it.
fn run_chain(store: &mut Store, blocks: u64, snapshot_every: u64) -> (TestNet, Ledger) {
    let net = TestNet::new(2);
    let mut chain = ChainBuilder::new(&net);
    let expiry = 1 + EXPIRY_BLOCKS;
    let (alice, open_alice) = net.open_customer(tx_id(2), expiry, 1, "alice", 1, false);
    let (bob, open_bob) = net.open_customer(tx_id(3), expiry, 2, "bob", 1, false);
    let float = net.bank(1);
    for _ in 0..blocks {
        let height = chain.next_height();
        let id = tx_id(height + 3);
        let pay = |key: &SigningKey, from: WalletId, to: WalletId, amount_minor: u64| {
            net.pay(id, height + EXPIRY_BLOCKS, key, from, to, amount_minor)
        };
        let txs: Vec<SignedTransaction> = match height {
            1 => vec![net.mint(tx_id(1), expiry, 1, 1_000_000), open_alice.clone()],
            2 => vec![
                open_bob.clone(),
                pay(&float.float_key, float.float_wallet, alice.wallet, 200_000),
            ],
            _ if height % 2 == 1 => vec![pay(&alice.key, alice.wallet, bob.wallet, 1_000 + height)],
            _ => vec![pay(&bob.key, bob.wallet, alice.wallet, 500)],
        };
        let outcomes = chain.push(&txs);
        assert!(outcomes.iter().all(|o| o.is_committed()), "block {height}: {outcomes:?}");
        let block = chain.blocks.last().unwrap();
        let certificate = format!("certificate of {height}").into_bytes();
        commit_block(store, &chain.ledger, block, Some(&certificate), snapshot_every).unwrap();
    }
    (net, chain.ledger)
}

fn assert_same_ledger(recovered: &Ledger, live: &Ledger) {
    assert_eq!(recovered.height(), live.height());
    assert_eq!(recovered.state_root(), live.state_root());
    assert_eq!(recovered.tip(), live.tip());
}

fn recovers_from_the_newest_snapshot_and_the_blocks_after_it(db: &TestDb) {
    let (net, live) = {
        let mut store = Store::open(&db.url).unwrap();
        run_chain(&mut store, 12, 5)
    };
    let mut store = Store::open(&db.url).unwrap();
    assert_eq!(store.latest_snapshot().unwrap().unwrap().height, 10);
    assert_eq!(store.last_height().unwrap(), 12);
    let recovered = recover(&mut store, &net.genesis).unwrap();
    assert_same_ledger(&recovered, &live);
    assert_eq!(live.height(), 12);
}

fn recovers_from_genesis_without_a_snapshot(db: &TestDb) {
    // More than two pages of blocks, so that replay pages through the log.
    let blocks = u64::from(REPLAY_PAGE_BLOCKS) * 2 + 3;
    let (net, live) = {
        let mut store = Store::open(&db.url).unwrap();
        run_chain(&mut store, blocks, 0)
    };
    let mut store = Store::open(&db.url).unwrap();
    assert_eq!(store.latest_snapshot().unwrap(), None);
    let recovered = recover(&mut store, &net.genesis).unwrap();
    assert_same_ledger(&recovered, &live);
    assert_eq!(recovered.height(), blocks);
}

fn empty_store_recovers_to_genesis(db: &TestDb) {
    let net = TestNet::new(2);
    let mut store = Store::open(&db.url).unwrap();
    let recovered = recover(&mut store, &net.genesis).unwrap();
    assert_same_ledger(&recovered, &Ledger::from_genesis(&net.genesis).unwrap());
}

fn snapshot_with_a_wrong_state_root_is_refused(db: &TestDb) {
    let mut store = Store::open(&db.url).unwrap();
    let (net, live) = run_chain(&mut store, 3, 0);
    let state_root = [0xee; 32];
    store.put_snapshot(&StoredSnapshot { height: 3, state_root, data: live.snapshot() }).unwrap();
    let Err(error) = recover(&mut store, &net.genesis) else { panic!("recovered a bad snapshot") };
    assert!(
        matches!(error, RecoverError::SnapshotMismatch { height: 3, what: "state root" }),
        "{error:?}"
    );
}

fn undecodable_stored_block_is_refused(db: &TestDb) {
    let mut store = Store::open(&db.url).unwrap();
    // The snapshot at 4 covers blocks 1 to 4: only block 5 is replayed, and it is damaged.
    let (net, _) = run_chain(&mut store, 5, 2);
    db.execute(
        "UPDATE blocks SET block = X'00' WHERE height = 5;",
        "UPDATE blocks SET block = '\\x00'::bytea WHERE height = 5;",
    );
    let Err(error) = recover(&mut store, &net.genesis) else { panic!("recovered a damaged log") };
    assert!(matches!(error, RecoverError::BlockDecode { height: 5, .. }), "{error:?}");
}

fn stored_hash_must_be_the_block_hash(db: &TestDb) {
    let mut store = Store::open(&db.url).unwrap();
    let (net, _) = run_chain(&mut store, 3, 0);
    db.execute(
        "UPDATE blocks SET hash = zeroblob(32) WHERE height = 3;",
        "UPDATE blocks SET hash = decode(repeat('00', 32), 'hex') WHERE height = 3;",
    );
    let Err(error) = recover(&mut store, &net.genesis) else { panic!("recovered a damaged log") };
    assert!(
        matches!(error, RecoverError::BlockMismatch { height: 3, column: "hash" }),
        "{error:?}"
    );
}
