//! Equivocation evidence: stored once per offence, newest first, bounded, kept across restarts.

use cbdc_store::{
    EvidenceRecord, MAX_EVIDENCE_KIND_BYTES, MAX_EVIDENCE_PAGE, MAX_EVIDENCE_PROOF_BYTES, Store,
    StoreError,
};

use crate::support::{TestDb, on_both_backends};

on_both_backends!(
    the_same_offence_is_stored_once,
    evidence_is_newest_first_and_limited,
    the_page_is_capped,
    evidence_survives_reopening,
    out_of_bounds_evidence_is_refused,
);

/// Evidence against validator `validator` in view `view` of epoch 3.
fn report(validator: u8, view: u64) -> EvidenceRecord {
    EvidenceRecord {
        kind: "conflicting_notarize".to_owned(),
        validator: [validator; 32],
        epoch: 3,
        view,
        proof: vec![validator, 0xee, 0xff],
        recorded_at_height: 100 + view,
    }
}

fn the_same_offence_is_stored_once(db: &TestDb) {
    let mut store = Store::open(&db.url).unwrap();
    assert_eq!(store.evidence_count().unwrap(), 0);
    let first = report(1, 7);
    assert!(store.put_evidence(&first).unwrap(), "new evidence");
    assert!(!store.put_evidence(&first).unwrap(), "the same report again");
    // Another report of the same offence (other proof, later height) keeps the first.
    let again = EvidenceRecord { proof: vec![9; 10], recorded_at_height: 500, ..first.clone() };
    assert!(!store.put_evidence(&again).unwrap());
    assert_eq!(store.evidence_count().unwrap(), 1);
    assert_eq!(store.evidence(10).unwrap(), vec![first.clone()]);
    assert_eq!(db.count("SELECT COUNT(*) AS n FROM evidence"), 1);

    // Each part of the key on its own makes another offence.
    let others = [
        EvidenceRecord { kind: "conflicting_finalize".to_owned(), ..first.clone() },
        EvidenceRecord { validator: [2; 32], ..first.clone() },
        EvidenceRecord { epoch: 4, ..first.clone() },
        EvidenceRecord { view: 8, ..first.clone() },
    ];
    for other in &others {
        assert!(store.put_evidence(other).unwrap(), "{other:?}");
        assert!(!store.put_evidence(other).unwrap(), "{other:?}");
    }
    assert_eq!(store.evidence_count().unwrap(), 5);
    assert_eq!(db.count("SELECT COUNT(*) AS n FROM evidence"), 5);
}

fn evidence_is_newest_first_and_limited(db: &TestDb) {
    let mut store = Store::open(&db.url).unwrap();
    assert!(store.evidence(10).unwrap().is_empty());
    // Inserted out of view order: the order read back is the order stored, not the view.
    let reports = [report(1, 5), report(2, 1), report(3, 9), report(4, 2), report(5, 7)];
    for record in &reports {
        assert!(store.put_evidence(record).unwrap());
    }
    let newest_first: Vec<EvidenceRecord> = reports.iter().rev().cloned().collect();
    assert_eq!(store.evidence(3).unwrap(), newest_first[..3]);
    assert_eq!(store.evidence(5).unwrap(), newest_first);
    assert_eq!(store.evidence(u32::MAX).unwrap(), newest_first, "limit is capped, not refused");
    assert!(store.evidence(0).unwrap().is_empty());
    // A duplicate does not count as newer.
    assert!(!store.put_evidence(&reports[0]).unwrap());
    assert_eq!(store.evidence(1).unwrap(), vec![reports[4].clone()]);
}

fn the_page_is_capped(db: &TestDb) {
    let mut store = Store::open(&db.url).unwrap();
    let rows = i64::from(MAX_EVIDENCE_PAGE) + 1;
    // One statement, so the test does not pay for a thousand durable commits.
    db.execute(
        &format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows})
             INSERT INTO evidence (kind, validator, epoch, view, proof, recorded_at_height)
             SELECT 'bulk', zeroblob(32), 0, i, X'', 0 FROM n;"
        ),
        &format!(
            "INSERT INTO evidence (kind, validator, epoch, view, proof, recorded_at_height)
             SELECT 'bulk', decode(repeat('00', 32), 'hex'), 0, i, ''::bytea, 0
             FROM generate_series(1, {rows}) AS i;"
        ),
    );
    assert_eq!(store.evidence_count().unwrap(), 1_001);
    let page = store.evidence(u32::MAX).unwrap();
    assert_eq!(page.len(), 1_000);
    assert_eq!(page.first().map(|e| e.view), Some(1_001), "newest first");
    assert_eq!(page.last().map(|e| e.view), Some(2), "the oldest is left off");
    assert!(page.iter().all(|e| e.kind == "bulk" && e.validator == [0; 32] && e.proof.is_empty()));
    assert_eq!(store.evidence(999).unwrap().len(), 999);
}

fn evidence_survives_reopening(db: &TestDb) {
    let reports = [report(1, 1), report(2, 2)];
    {
        let mut store = Store::open(&db.url).unwrap();
        for record in &reports {
            assert!(store.put_evidence(record).unwrap());
        }
    }
    let mut store = Store::open(&db.url).unwrap();
    assert_eq!(store.evidence_count().unwrap(), 2);
    assert_eq!(store.evidence(10).unwrap(), vec![reports[1].clone(), reports[0].clone()]);
    assert!(!store.put_evidence(&reports[0]).unwrap(), "still known after the restart");
    assert!(store.put_evidence(&report(3, 3)).unwrap());
    assert_eq!(store.evidence(1).unwrap(), vec![report(3, 3)], "ids continue after the restart");
}

fn is_invalid(error: &StoreError, want_field: &str, want_len: u64) -> bool {
    matches!(error, StoreError::InvalidEvidence { field, len, .. }
        if *field == want_field && *len == want_len)
}

fn out_of_bounds_evidence_is_refused(db: &TestDb) {
    let mut store = Store::open(&db.url).unwrap();
    let max_kind = usize::try_from(MAX_EVIDENCE_KIND_BYTES).unwrap();
    let max_proof = usize::try_from(MAX_EVIDENCE_PROOF_BYTES).unwrap();
    let with_kind = |kind: String| EvidenceRecord { kind, ..report(1, 1) };

    // The kind limit is on bytes: 32 two-byte characters fit, 33 do not.
    let longest = with_kind("é".repeat(max_kind / 2));
    assert_eq!(longest.kind.len(), 64);
    assert!(store.put_evidence(&longest).unwrap());
    let error = store.put_evidence(&with_kind("é".repeat(max_kind / 2 + 1))).unwrap_err();
    assert!(is_invalid(&error, "kind", 66), "{error:?}");
    assert!(error.to_string().contains("kind is 66 bytes"), "{error}");
    let error = store.put_evidence(&with_kind("x".repeat(max_kind + 1))).unwrap_err();
    assert!(is_invalid(&error, "kind", 65), "{error:?}");
    let error = store.put_evidence(&with_kind(String::new())).unwrap_err();
    assert!(is_invalid(&error, "kind", 0), "{error:?}");

    let largest = EvidenceRecord { proof: vec![7; max_proof], ..report(2, 2) };
    assert!(store.put_evidence(&largest).unwrap());
    let too_large = EvidenceRecord { proof: vec![7; max_proof + 1], ..report(3, 3) };
    let error = store.put_evidence(&too_large).unwrap_err();
    assert!(is_invalid(&error, "proof", 65_537), "{error:?}");

    let too_high = 1_u64 << 63;
    for (field, record) in [
        ("epoch", EvidenceRecord { epoch: too_high, ..report(4, 4) }),
        ("view", EvidenceRecord { view: too_high, ..report(4, 4) }),
        ("recorded_at_height", EvidenceRecord { recorded_at_height: too_high, ..report(4, 4) }),
    ] {
        let error = store.put_evidence(&record).unwrap_err();
        assert!(
            matches!(&error, StoreError::ValueOutOfRange { field: f, .. } if *f == field),
            "{error:?}"
        );
    }
    assert_eq!(store.evidence_count().unwrap(), 2, "only the two in bounds were stored");
    assert_eq!(store.evidence(10).unwrap(), vec![largest, longest]);
}
