//! Projections: one block's rows and the cursor move together, or not at all.

use cbdc_store::{
    Direction, HistoryRow, MAX_PROJECTION_HISTORY_ROWS, ProjectionBatch, ProjectionOutcome, Store,
    StoreError, SupplyRow, WalletRow,
};

use crate::support::{TestDb, on_both_backends};

on_both_backends!(
    batch_writes_rows_and_moves_the_cursor,
    block_projected_twice_is_written_once,
    failed_batch_writes_nothing,
    history_pages_newest_first,
    over_large_or_out_of_range_batches_are_refused,
    large_blocks_write_every_row_in_order,
);

const ALICE: [u8; 16] = [0xa1; 16];
const BOB: [u8; 16] = [0xb0; 16];

fn wallet(wallet_id: [u8; 16], balance_minor: u64) -> WalletRow {
    WalletRow {
        wallet_id,
        bank_id: 7,
        class: 1,
        tier: 2,
        status: 0,
        balance_minor,
        holder_ref: Some(vec![wallet_id[0]; 32]),
    }
}

fn transfer(tx: u8, from: [u8; 16], to: [u8; 16], amount_minor: u64) -> [HistoryRow; 2] {
    let row = |wallet_id, counterparty, direction| HistoryRow {
        tx_id: [tx; 16],
        wallet_id,
        counterparty_wallet_id: Some(counterparty),
        amount_minor,
        direction,
        kind: 3,
        timestamp_ms: 1_700_000_000_000 + u64::from(tx),
    };
    [row(from, to, Direction::Debit), row(to, from, Direction::Credit)]
}

fn bank_batch(balances: (u64, u64), history: Vec<HistoryRow>) -> ProjectionBatch {
    ProjectionBatch {
        projection: "bank-7".to_owned(),
        wallets: vec![wallet(ALICE, balances.0), wallet(BOB, balances.1)],
        history,
        supply: None,
    }
}

fn supply(outstanding_minor: u64) -> SupplyRow {
    SupplyRow { minted_minor: 500, burned_minor: 0, outstanding_minor, timestamp_ms: 1_000 }
}

fn batch_writes_rows_and_moves_the_cursor(db: &TestDb) {
    let mut store = Store::open(&db.url).unwrap();
    assert_eq!(store.projection_height("bank-7").unwrap(), 0);
    let batch = ProjectionBatch {
        supply: Some(supply(1_500)),
        ..bank_batch((900, 100), transfer(1, ALICE, BOB, 100).to_vec())
    };
    assert_eq!(store.write_projection(1, &batch).unwrap(), ProjectionOutcome::Written);
    assert_eq!(store.projection_height("bank-7").unwrap(), 1);
    assert_eq!(store.projection_height("central").unwrap(), 0, "cursors are per projection");

    let alice = store.wallet(&ALICE).unwrap().unwrap();
    assert_eq!((alice.row, alice.updated_height), (wallet(ALICE, 900), 1));
    let history = store.wallet_history(&BOB, None, 10).unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].height, 1);
    assert_eq!(history[0].row, transfer(1, ALICE, BOB, 100)[1]);
    assert_eq!(store.supply_at(1).unwrap(), Some(supply(1_500)));
    assert_eq!(store.supply_at(2).unwrap(), None);

    // Block 2 held nothing for this bank; block 3 moves money back. Rows are replaced whole.
    let mut batch = bank_batch((950, 50), transfer(3, BOB, ALICE, 50).to_vec());
    batch.wallets[0].holder_ref = None;
    assert_eq!(store.write_projection(3, &batch).unwrap(), ProjectionOutcome::Written);
    assert_eq!(store.projection_height("bank-7").unwrap(), 3);
    let alice = store.wallet(&ALICE).unwrap().unwrap();
    assert_eq!(alice.updated_height, 3);
    assert_eq!(alice.row, WalletRow { holder_ref: None, ..wallet(ALICE, 950) });
    assert_eq!(store.wallet(&[0; 16]).unwrap(), None);
}

fn block_projected_twice_is_written_once(db: &TestDb) {
    let mut store = Store::open(&db.url).unwrap();
    let batch = bank_batch((900, 100), transfer(1, ALICE, BOB, 100).to_vec());
    store.write_projection(2, &batch).unwrap();
    for height in [1, 2] {
        let outcome = store.write_projection(height, &batch).unwrap();
        assert_eq!(outcome, ProjectionOutcome::AlreadyProjected { cursor: 2 });
    }
    assert_eq!(db.count("SELECT COUNT(*) AS n FROM wallet_history"), 2);
}

fn failed_batch_writes_nothing(db: &TestDb) {
    let mut store = Store::open(&db.url).unwrap();
    // Another projection already holds the supply row of block 2 ...
    let central = ProjectionBatch {
        projection: "central".to_owned(),
        supply: Some(supply(1_000)),
        ..ProjectionBatch::default()
    };
    store.write_projection(2, &central).unwrap();
    // ... so this batch fails on its last insert, after its wallet and history rows.
    let batch = ProjectionBatch {
        supply: Some(supply(2_000)),
        ..bank_batch((900, 100), transfer(1, ALICE, BOB, 100).to_vec())
    };
    let error = store.write_projection(2, &batch).unwrap_err();
    assert!(matches!(error, StoreError::Query(_)), "{error:?}");

    assert_eq!(store.projection_height("bank-7").unwrap(), 0, "the cursor did not move");
    assert_eq!(store.wallet(&ALICE).unwrap(), None, "the wallet rows were rolled back");
    assert!(store.wallet_history(&ALICE, None, 10).unwrap().is_empty());
    assert_eq!(store.supply_at(2).unwrap(), Some(supply(1_000)));
    assert_eq!(store.projection_height("central").unwrap(), 2);

    // The store is usable after the rollback.
    let batch = ProjectionBatch { supply: None, ..batch };
    assert_eq!(store.write_projection(2, &batch).unwrap(), ProjectionOutcome::Written);
}

fn history_pages_newest_first(db: &TestDb) {
    let mut store = Store::open(&db.url).unwrap();
    for tx in 1..=5_u8 {
        let batch = bank_batch((1_000, 0), transfer(tx, ALICE, BOB, u64::from(tx)).to_vec());
        store.write_projection(u64::from(tx), &batch).unwrap();
    }
    let mut amounts = Vec::new();
    let mut before_id = None;
    loop {
        let page = store.wallet_history(&ALICE, before_id, 2).unwrap();
        let Some(last) = page.last() else { break };
        assert!(page.len() <= 2);
        before_id = Some(last.id);
        amounts.extend(page.iter().map(|entry| entry.row.amount_minor));
        assert!(page.iter().all(|entry| entry.row.direction == Direction::Debit));
    }
    assert_eq!(amounts, [5, 4, 3, 2, 1]);
}

fn over_large_or_out_of_range_batches_are_refused(db: &TestDb) {
    let mut store = Store::open(&db.url).unwrap();
    let rows = usize::try_from(MAX_PROJECTION_HISTORY_ROWS / 2 + 1).unwrap();
    let history = (0..rows).flat_map(|_| transfer(1, ALICE, BOB, 1)).collect();
    let error = store.write_projection(1, &bank_batch((1, 1), history)).unwrap_err();
    assert!(matches!(error, StoreError::BatchTooLarge { what: "history rows", .. }), "{error:?}");

    let error = store.write_projection(1, &bank_batch((u64::MAX, 0), vec![])).unwrap_err();
    assert!(matches!(error, StoreError::ValueOutOfRange { field: "balance_minor", .. }));
    let error = store.write_projection(0, &bank_batch((1, 1), vec![])).unwrap_err();
    assert!(matches!(error, StoreError::InvalidBatch { .. }), "{error:?}");
    assert_eq!(store.projection_height("bank-7").unwrap(), 0);
    assert_eq!(db.count("SELECT COUNT(*) AS n FROM wallets"), 0);
}

/// Blocks larger than one insert statement (full chunks, whose prepared statements are reused
/// from block to block, and a shorter tail) write every row once, in order, with every value.
fn large_blocks_write_every_row_in_order(db: &TestDb) {
    let mut store = Store::open(&db.url).unwrap();
    let wallets = |block: u8| -> Vec<WalletRow> {
        (0..150_u8).map(|i| wallet([i; 16], u64::from(block) * 1_000 + u64::from(i))).collect()
    };
    // 150 transfers between two wallets: 300 history rows per block.
    for block in 1..=3_u8 {
        let history: Vec<HistoryRow> = (0..150_u8)
            .flat_map(|i| transfer(i, ALICE, BOB, u64::from(block) * 1_000 + u64::from(i)))
            .collect();
        let batch = ProjectionBatch {
            projection: "bank-7".to_owned(),
            wallets: wallets(block),
            history,
            supply: None,
        };
        assert_eq!(
            store.write_projection(u64::from(block), &batch).unwrap(),
            ProjectionOutcome::Written
        );
    }
    assert_eq!(db.count("SELECT COUNT(*) AS n FROM wallet_history"), 900);
    assert_eq!(db.count("SELECT COUNT(*) AS n FROM wallets"), 150);
    for i in [0_u8, 63, 64, 127, 128, 149] {
        let row = store.wallet(&[i; 16]).unwrap().unwrap();
        assert_eq!(row.row.balance_minor, 3_000 + u64::from(i), "wallet {i}");
        assert_eq!(row.updated_height, 3, "wallet {i}");
    }
    let mut amounts = Vec::new();
    let mut before_id = None;
    loop {
        let page = store.wallet_history(&BOB, before_id, 256).unwrap();
        let Some(last) = page.last() else { break };
        before_id = Some(last.id);
        assert!(page.iter().all(|entry| entry.row.direction == Direction::Credit));
        amounts.extend(page.iter().map(|entry| entry.row.amount_minor));
    }
    let expected: Vec<u64> =
        (1..=3_u64).rev().flat_map(|b| (0..150_u64).rev().map(move |i| b * 1_000 + i)).collect();
    assert_eq!(amounts, expected);
}
