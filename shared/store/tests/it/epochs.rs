//! Epoch ends: written once, idempotent for the same height, refused for another one.

use cbdc_store::{Store, StoreError};

use crate::support::{TestDb, on_both_backends};

on_both_backends!(epoch_ends_round_trip, a_different_height_for_an_epoch_conflicts);

fn epoch_ends_round_trip(db: &TestDb) {
    {
        let mut store = Store::open(&db.url).unwrap();
        assert_eq!(store.epoch_end(0).unwrap(), None);
        store.put_epoch_end(0, 10).unwrap();
        store.put_epoch_end(1, 25).unwrap();
        assert_eq!(store.epoch_end(0).unwrap(), Some(10));
        assert_eq!(store.epoch_end(1).unwrap(), Some(25));
        assert_eq!(store.epoch_end(2).unwrap(), None);
        // A retry of the same end is not an error and changes nothing.
        store.put_epoch_end(0, 10).unwrap();
        store.put_epoch_end(1, 25).unwrap();
        assert_eq!(db.count("SELECT COUNT(*) AS n FROM epoch_ends"), 2);
    }
    let mut store = Store::open(&db.url).unwrap();
    assert_eq!(store.epoch_end(0).unwrap(), Some(10), "kept across a restart");
    assert_eq!(store.epoch_end(1).unwrap(), Some(25));
    store.put_epoch_end(1, 25).unwrap();

    let too_high = 1_u64 << 63;
    let error = store.put_epoch_end(too_high, 1).unwrap_err();
    assert!(matches!(error, StoreError::ValueOutOfRange { field: "epoch", .. }), "{error:?}");
    let error = store.put_epoch_end(2, too_high).unwrap_err();
    assert!(matches!(error, StoreError::ValueOutOfRange { field: "height", .. }), "{error:?}");
    assert!(matches!(store.epoch_end(too_high), Err(StoreError::ValueOutOfRange { .. })));
    assert_eq!(store.epoch_end(2).unwrap(), None);
}

fn a_different_height_for_an_epoch_conflicts(db: &TestDb) {
    let mut store = Store::open(&db.url).unwrap();
    store.put_epoch_end(4, 100).unwrap();
    for other in [99, 101, 0] {
        let error = store.put_epoch_end(4, other).unwrap_err();
        assert!(
            matches!(
                error,
                StoreError::ConflictingEpochEnd { epoch: 4, stored_height: 100, height }
                    if height == other
            ),
            "{error:?}"
        );
        assert!(error.to_string().contains("epoch 4 already ended at height 100"), "{error}");
    }
    assert_eq!(store.epoch_end(4).unwrap(), Some(100), "the first end is kept");
    assert_eq!(db.count("SELECT COUNT(*) AS n FROM epoch_ends"), 1);
    // The failed writes left the connection usable.
    store.put_epoch_end(5, 200).unwrap();
    assert_eq!(store.epoch_end(5).unwrap(), Some(200));
}
