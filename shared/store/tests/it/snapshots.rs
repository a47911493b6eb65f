//! Snapshots: newest kept, older pruned in the same transaction, consistent with the log.

use cbdc_store::{Store, StoreError, StoreOptions, StoredSnapshot};

use crate::support::{TestDb, chain, on_both_backends};

on_both_backends!(
    only_the_newest_are_kept,
    snapshot_must_follow_a_stored_block,
    same_snapshot_again_is_ok_and_a_different_root_conflicts,
);

fn snapshot(height: u64) -> StoredSnapshot {
    let tag = u8::try_from(height).unwrap();
    StoredSnapshot { height, state_root: [tag; 32], data: vec![tag; 100] }
}

fn only_the_newest_are_kept(db: &TestDb) {
    let options = StoreOptions { snapshots_retained: 2 };
    let mut store = Store::open_with(&db.url, options).unwrap();
    assert_eq!(store.latest_snapshot().unwrap(), None);
    for block in &chain(6) {
        store.append_block(block).unwrap();
    }
    for height in [1, 3, 4, 6] {
        store.put_snapshot(&snapshot(height)).unwrap();
        assert_eq!(store.latest_snapshot().unwrap(), Some(snapshot(height)));
    }
    assert_eq!(db.count("SELECT COUNT(*) AS n FROM snapshots"), 2);
    assert_eq!(db.count("SELECT COUNT(*) AS n FROM snapshots WHERE height IN (4, 6)"), 2);
}

fn snapshot_must_follow_a_stored_block(db: &TestDb) {
    let mut store = Store::open(&db.url).unwrap();
    let error = store.put_snapshot(&snapshot(1)).unwrap_err();
    assert!(
        matches!(error, StoreError::SnapshotAheadOfLog { height: 1, last_height: 0 }),
        "{error:?}"
    );
    for block in &chain(2) {
        store.append_block(block).unwrap();
    }
    let error = store.put_snapshot(&snapshot(3)).unwrap_err();
    assert!(matches!(error, StoreError::SnapshotAheadOfLog { height: 3, last_height: 2 }));
    store.put_snapshot(&snapshot(2)).unwrap();
}

fn same_snapshot_again_is_ok_and_a_different_root_conflicts(db: &TestDb) {
    let mut store = Store::open(&db.url).unwrap();
    for block in &chain(2) {
        store.append_block(block).unwrap();
    }
    store.put_snapshot(&snapshot(2)).unwrap();
    store.put_snapshot(&snapshot(2)).unwrap();
    let mut other = snapshot(2);
    other.state_root[0] ^= 1;
    let error = store.put_snapshot(&other).unwrap_err();
    assert!(matches!(error, StoreError::ConflictingSnapshot { height: 2 }), "{error:?}");
    assert_eq!(store.latest_snapshot().unwrap(), Some(snapshot(2)));
    // An older snapshot may still be written (a slow checkpoint); the newest stays newest.
    store.put_snapshot(&snapshot(1)).unwrap();
    assert_eq!(store.latest_snapshot().unwrap(), Some(snapshot(2)));
}
