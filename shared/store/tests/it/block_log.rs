//! The block log: append, read, idempotent re-append, conflicts, gaps and parents.

use cbdc_store::{MAX_PAGE, Store, StoreError};

use crate::support::{TestDb, chain, on_both_backends, raw_block};

on_both_backends!(
    appends_and_reads_in_order,
    re_append_of_the_same_block_is_ok,
    different_block_at_a_stored_height_conflicts,
    gaps_are_refused,
    parent_must_be_the_stored_block,
    certificate_can_be_set_later,
    last_certified_is_the_highest_block_with_a_certificate,
    heights_beyond_i64_are_out_of_range,
);

fn appends_and_reads_in_order(db: &TestDb) {
    let mut store = Store::open(&db.url).unwrap();
    assert_eq!(store.backend(), db.backend);
    assert_eq!(store.last_height().unwrap(), 0, "an empty log is at genesis");
    assert_eq!(store.block(1).unwrap(), None);
    assert!(store.blocks_from(1, 10).unwrap().is_empty());

    let blocks = chain(5);
    for block in &blocks {
        store.append_block(block).unwrap();
    }
    assert_eq!(store.last_height().unwrap(), 5);
    assert_eq!(store.block(3).unwrap().as_ref(), Some(&blocks[2]));
    assert_eq!(store.blocks_from(2, 2).unwrap(), blocks[1..3]);
    assert_eq!(store.blocks_from(0, u32::MAX).unwrap(), blocks, "limit is capped, not refused");
    assert!(store.blocks_from(6, MAX_PAGE).unwrap().is_empty());
    assert!(store.blocks_from(1, 0).unwrap().is_empty());
}

fn re_append_of_the_same_block_is_ok(db: &TestDb) {
    let mut store = Store::open(&db.url).unwrap();
    let blocks = chain(2);
    store.append_block(&blocks[0]).unwrap();
    store.append_block(&blocks[1]).unwrap();
    store.append_block(&blocks[0]).unwrap();
    store.append_block(&blocks[1]).unwrap();
    assert_eq!(store.last_height().unwrap(), 2);
    assert_eq!(store.blocks_from(1, 10).unwrap(), blocks);

    // A redelivery that carries the certificate fills it; a later one does not replace it.
    let certified = |certificate: &[u8]| {
        let mut block = blocks[0].clone();
        block.certificate = Some(certificate.to_vec());
        block
    };
    store.append_block(&certified(b"first")).unwrap();
    store.append_block(&certified(b"second")).unwrap();
    assert_eq!(store.block(1).unwrap().unwrap().certificate.as_deref(), Some(&b"first"[..]));
}

fn different_block_at_a_stored_height_conflicts(db: &TestDb) {
    let mut store = Store::open(&db.url).unwrap();
    let blocks = chain(2);
    store.append_block(&blocks[0]).unwrap();
    store.append_block(&blocks[1]).unwrap();
    for stored in &blocks {
        let mut other = stored.clone();
        other.hash[1] ^= 0xff;
        let error = store.append_block(&other).unwrap_err();
        assert!(
            matches!(error, StoreError::ConflictingBlock { height } if height == stored.height),
            "{error:?}"
        );
    }
    assert_eq!(store.blocks_from(1, 10).unwrap(), blocks, "the stored blocks are unchanged");
}

fn gaps_are_refused(db: &TestDb) {
    let mut store = Store::open(&db.url).unwrap();
    let blocks = chain(3);
    let error = store.append_block(&blocks[1]).unwrap_err();
    assert!(matches!(error, StoreError::HeightGap { expected: 1, got: 2 }), "{error:?}");
    let genesis = raw_block(0, [0; 32]);
    let error = store.append_block(&genesis).unwrap_err();
    assert!(matches!(error, StoreError::HeightGap { expected: 1, got: 0 }), "{error:?}");

    store.append_block(&blocks[0]).unwrap();
    let error = store.append_block(&blocks[2]).unwrap_err();
    assert!(matches!(error, StoreError::HeightGap { expected: 2, got: 3 }), "{error:?}");
    assert_eq!(store.last_height().unwrap(), 1);
}

fn parent_must_be_the_stored_block(db: &TestDb) {
    let mut store = Store::open(&db.url).unwrap();
    let blocks = chain(2);
    store.append_block(&blocks[0]).unwrap();
    let orphan = raw_block(2, [7; 32]);
    let error = store.append_block(&orphan).unwrap_err();
    assert!(matches!(error, StoreError::ParentMismatch { height: 2 }), "{error:?}");
    store.append_block(&blocks[1]).unwrap();
}

fn certificate_can_be_set_later(db: &TestDb) {
    let mut store = Store::open(&db.url).unwrap();
    let blocks = chain(2);
    store.append_block(&blocks[0]).unwrap();
    store.append_block(&blocks[1]).unwrap();
    store.set_certificate(1, b"quorum of 3").unwrap();
    assert_eq!(store.block(1).unwrap().unwrap().certificate.as_deref(), Some(&b"quorum of 3"[..]));
    assert_eq!(store.block(2).unwrap().unwrap().certificate, None);
    let error = store.set_certificate(3, b"nothing there").unwrap_err();
    assert!(matches!(error, StoreError::BlockNotFound { height: 3 }), "{error:?}");
}

fn last_certified_is_the_highest_block_with_a_certificate(db: &TestDb) {
    let mut store = Store::open(&db.url).unwrap();
    assert_eq!(store.last_certified().unwrap(), None, "an empty log has none");
    let blocks = chain(5);
    for block in &blocks {
        store.append_block(block).unwrap();
    }
    assert_eq!(store.last_certified().unwrap(), None, "no block is certified yet");

    store.set_certificate(1, b"certificate 1").unwrap();
    store.set_certificate(3, b"certificate 3").unwrap();
    // Block 5 is above the answer but, like 4, has no certificate.
    let mut expected = blocks[2].clone();
    expected.certificate = Some(b"certificate 3".to_vec());
    assert_eq!(store.last_certified().unwrap(), Some(expected));

    store.set_certificate(5, b"certificate 5").unwrap();
    let mut expected = blocks[4].clone();
    expected.certificate = Some(b"certificate 5".to_vec());
    assert_eq!(store.last_certified().unwrap(), Some(expected));
}

fn heights_beyond_i64_are_out_of_range(db: &TestDb) {
    let mut store = Store::open(&db.url).unwrap();
    let too_high = 1_u64 << 63;
    let error = store.block(too_high).unwrap_err();
    assert!(matches!(error, StoreError::ValueOutOfRange { field: "height", .. }), "{error:?}");
    let mut block = raw_block(1, [0; 32]);
    block.timestamp_ms = u64::MAX;
    let error = store.append_block(&block).unwrap_err();
    assert!(matches!(error, StoreError::ValueOutOfRange { field: "timestamp_ms", .. }));
    assert!(matches!(store.blocks_from(too_high, 1), Err(StoreError::ValueOutOfRange { .. })));
    assert_eq!(store.last_height().unwrap(), 0);
}
