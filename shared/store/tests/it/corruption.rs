//! Rows damaged behind the store's back are typed errors, never panics.

use cbdc_store::{
    Direction, EvidenceRecord, HistoryRow, ProjectionBatch, Store, StoreError, StoredSnapshot,
};

use crate::support::{TestDb, chain, on_both_backends};

on_both_backends!(
    wrong_length_block_hash_is_a_corrupt_row,
    wrong_length_state_root_is_a_corrupt_row,
    unknown_history_direction_is_a_corrupt_row,
    wrong_length_validator_is_a_corrupt_row,
);

fn is_corrupt(error: &StoreError, want_table: &str, want_column: &str) -> bool {
    matches!(error, StoreError::CorruptRow { table, column, .. }
        if *table == want_table && *column == want_column)
}

fn wrong_length_block_hash_is_a_corrupt_row(db: &TestDb) {
    let blocks = chain(2);
    let mut store = Store::open(&db.url).unwrap();
    for block in &blocks {
        store.append_block(block).unwrap();
    }
    // The schema refuses such a row; the damage has to switch its check off first.
    db.execute(
        "PRAGMA ignore_check_constraints = ON;
         UPDATE blocks SET hash = X'0102' WHERE height = 1;",
        "ALTER TABLE blocks DROP CONSTRAINT blocks_hash_length;
         UPDATE blocks SET hash = '\\x0102'::bytea WHERE height = 1;",
    );
    assert!(is_corrupt(&store.block(1).unwrap_err(), "blocks", "hash"));
    assert!(is_corrupt(&store.blocks_from(1, 10).unwrap_err(), "blocks", "hash"));
    assert!(is_corrupt(&store.append_block(&blocks[0]).unwrap_err(), "blocks", "hash"));
    assert_eq!(store.block(2).unwrap().as_ref(), Some(&blocks[1]), "other rows still read");
}

fn wrong_length_state_root_is_a_corrupt_row(db: &TestDb) {
    let mut store = Store::open(&db.url).unwrap();
    store.append_block(&chain(1)[0]).unwrap();
    store.put_snapshot(&StoredSnapshot { height: 1, state_root: [3; 32], data: vec![1] }).unwrap();
    db.execute(
        "PRAGMA ignore_check_constraints = ON;
         UPDATE snapshots SET state_root = X'03' WHERE height = 1;",
        "ALTER TABLE snapshots DROP CONSTRAINT snapshots_state_root_length;
         UPDATE snapshots SET state_root = '\\x03'::bytea WHERE height = 1;",
    );
    assert!(is_corrupt(&store.latest_snapshot().unwrap_err(), "snapshots", "state_root"));
}

fn unknown_history_direction_is_a_corrupt_row(db: &TestDb) {
    let mut store = Store::open(&db.url).unwrap();
    let row = HistoryRow {
        tx_id: [1; 16],
        wallet_id: [2; 16],
        counterparty_wallet_id: None,
        amount_minor: 5,
        direction: Direction::Credit,
        kind: 1,
        timestamp_ms: 0,
    };
    let batch =
        ProjectionBatch { projection: "bank".to_owned(), history: vec![row], ..Default::default() };
    store.write_projection(1, &batch).unwrap();
    db.execute(
        "PRAGMA ignore_check_constraints = ON; UPDATE wallet_history SET direction = 9;",
        "ALTER TABLE wallet_history DROP CONSTRAINT wallet_history_direction_known;
         UPDATE wallet_history SET direction = 9;",
    );
    let error = store.wallet_history(&[2; 16], None, 10).unwrap_err();
    assert!(is_corrupt(&error, "wallet_history", "direction"), "{error:?}");
}

fn wrong_length_validator_is_a_corrupt_row(db: &TestDb) {
    let mut store = Store::open(&db.url).unwrap();
    let record = EvidenceRecord {
        kind: "conflicting_finalize".to_owned(),
        validator: [4; 32],
        epoch: 1,
        view: 2,
        proof: vec![1, 2],
        recorded_at_height: 3,
    };
    assert!(store.put_evidence(&record).unwrap());
    db.execute(
        "PRAGMA ignore_check_constraints = ON; UPDATE evidence SET validator = X'04';",
        "ALTER TABLE evidence DROP CONSTRAINT evidence_validator_length;
         UPDATE evidence SET validator = '\\x04'::bytea;",
    );
    let error = store.evidence(10).unwrap_err();
    assert!(is_corrupt(&error, "evidence", "validator"), "{error:?}");
    assert_eq!(store.evidence_count().unwrap(), 1, "counting does not decode rows");
}
