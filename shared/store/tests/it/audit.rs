//! The audit log: a dense hash chain, append-only, whose verification finds the first entry
//! changed or removed behind the store's back, and which concurrent writers extend as one chain.

use std::sync::Barrier;

use cbdc_store::{
    AuditEntry, AuditRecord, AuditVerification, MAX_ACTOR_BYTES, MAX_AUDIT_ACTION_BYTES,
    MAX_AUDIT_DETAILS_BYTES, MAX_AUDIT_OUTCOME_BYTES, MAX_AUDIT_PAGE, MAX_AUDIT_TARGET_BYTES,
    Store, StoreError, audit_hash,
};

use crate::support::{TestDb, on_both_backends};

on_both_backends!(
    the_chain_verifies_after_many_appends,
    the_log_reads_in_pages,
    a_changed_field_breaks_the_chain_at_that_entry,
    a_rehashed_change_breaks_the_chain_at_the_next_entry,
    a_rewritten_tail_verifies_but_changes_the_head,
    deleted_entries_are_gaps,
    a_changed_prev_hash_is_reported,
    a_malformed_row_is_reported,
    the_log_is_append_only,
    concurrent_appends_form_one_chain,
    out_of_bounds_entries_are_refused,
    the_audit_page_is_capped,
    the_chain_continues_after_reopening,
);

fn entry(i: u64) -> AuditEntry {
    AuditEntry {
        at_ms: 1_700_000_000_000 + i,
        actor: "alice".to_owned(),
        action: "request.approve".to_owned(),
        target: format!("request-{i}"),
        outcome: "ok".to_owned(),
        details: format!(r#"{{"i":{i}}}"#),
    }
}

/// Appends `entry(1..=n)` and returns what the store answered.
fn append(store: &mut Store, n: u64) -> Vec<AuditRecord> {
    (1..=n).map(|i| store.append_audit(&entry(i)).unwrap()).collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Drops the append-only triggers, as someone with the database's owner rights could.
fn allow_tampering(db: &TestDb) {
    db.execute(
        "DROP TRIGGER cb_audit_no_update; DROP TRIGGER cb_audit_no_delete;",
        "DROP TRIGGER cb_audit_no_update_delete ON cb_audit;",
    );
}

/// Runs the same UPDATE text on both backends, with `bytes` spliced in as a blob literal.
fn set_blob(db: &TestDb, column: &str, bytes: &[u8], seq: u64) {
    let hex = hex(bytes);
    db.execute(
        &format!("UPDATE cb_audit SET {column} = X'{hex}' WHERE seq = {seq};"),
        &format!("UPDATE cb_audit SET {column} = decode('{hex}', 'hex') WHERE seq = {seq};"),
    );
}

fn broken(seq: u64, reason: &'static str) -> AuditVerification {
    AuditVerification::Broken { seq, reason }
}

fn the_chain_verifies_after_many_appends(db: &TestDb) {
    let mut store = Store::open(&db.url).unwrap();
    let empty = AuditVerification::Intact { entries: 0, head: [0; 32] };
    assert_eq!(store.verify_audit().unwrap(), empty);
    // More than two of verify's 256-entry pages.
    let records = append(&mut store, 520);
    for (record, seq) in records.iter().zip(1..) {
        assert_eq!(record.seq, seq, "dense from 1");
        let prev_hash = if seq == 1 { [0; 32] } else { records[(seq - 2) as usize].hash };
        assert_eq!(record.prev_hash, prev_hash, "entry {seq} links to the one before");
        assert_eq!(record.hash, audit_hash(seq, &entry(seq), &prev_hash), "entry {seq}");
    }
    let head = records.last().unwrap().hash;
    assert_eq!(store.verify_audit().unwrap(), AuditVerification::Intact { entries: 520, head });
    assert_eq!(store.audit(0, 1_000).unwrap(), records, "stored as answered");

    // A change on the third page is found too.
    allow_tampering(db);
    db.execute(
        "UPDATE cb_audit SET details = '{}' WHERE seq = 515;",
        "UPDATE cb_audit SET details = '{}' WHERE seq = 515;",
    );
    assert_eq!(store.verify_audit().unwrap(), broken(515, "hash mismatch"));
}

fn the_log_reads_in_pages(db: &TestDb) {
    let mut store = Store::open(&db.url).unwrap();
    assert!(store.audit(0, 10).unwrap().is_empty());
    let records = append(&mut store, 7);
    assert_eq!(store.audit(0, 3).unwrap(), records[..3]);
    assert_eq!(store.audit(3, 3).unwrap(), records[3..6]);
    assert_eq!(store.audit(6, 3).unwrap(), records[6..]);
    assert!(store.audit(7, 3).unwrap().is_empty());
    assert!(store.audit(0, 0).unwrap().is_empty());
    assert_eq!(store.audit(2, u32::MAX).unwrap(), records[2..], "limit is capped, not refused");
    let error = store.audit(1 << 63, 1).unwrap_err();
    assert!(matches!(error, StoreError::ValueOutOfRange { field: "after_seq", .. }), "{error:?}");
}

fn a_changed_field_breaks_the_chain_at_that_entry(db: &TestDb) {
    let mut store = Store::open(&db.url).unwrap();
    append(&mut store, 10);
    allow_tampering(db);
    db.execute(
        "UPDATE cb_audit SET actor = 'mallory' WHERE seq = 5;",
        "UPDATE cb_audit SET actor = 'mallory' WHERE seq = 5;",
    );
    assert_eq!(store.verify_audit().unwrap(), broken(5, "hash mismatch"));
    // Each other column is covered as well; the first changed entry is the one reported.
    for (seq, column, value) in [
        (3, "at_ms", "0"),
        (2, "target", "'request-999'"),
        (2, "outcome", "'denied'"),
        (1, "action", "'request.reject'"),
    ] {
        let sql = format!("UPDATE cb_audit SET {column} = {value} WHERE seq = {seq};");
        db.execute(&sql, &sql);
        assert_eq!(store.verify_audit().unwrap(), broken(seq, "hash mismatch"), "{column}");
    }
}

fn a_rehashed_change_breaks_the_chain_at_the_next_entry(db: &TestDb) {
    let mut store = Store::open(&db.url).unwrap();
    let records = append(&mut store, 10);
    allow_tampering(db);
    // The forger recomputes entry 5's hash; entry 6 still names the old one.
    let forged = AuditEntry { actor: "mallory".to_owned(), ..entry(5) };
    let forged_hash = audit_hash(5, &forged, &records[3].hash);
    db.execute(
        "UPDATE cb_audit SET actor = 'mallory' WHERE seq = 5;",
        "UPDATE cb_audit SET actor = 'mallory' WHERE seq = 5;",
    );
    set_blob(db, "hash", &forged_hash, 5);
    assert_eq!(store.verify_audit().unwrap(), broken(6, "prev_hash mismatch"));
}

fn a_rewritten_tail_verifies_but_changes_the_head(db: &TestDb) {
    let mut store = Store::open(&db.url).unwrap();
    let records = append(&mut store, 10);
    let head = records[9].hash;
    assert_eq!(store.verify_audit().unwrap(), AuditVerification::Intact { entries: 10, head });
    allow_tampering(db);
    // Rewriting everything from entry 5 on is a valid chain with another head: only a head
    // recorded elsewhere shows it (as documented on AuditVerification::Intact).
    let mut prev_hash = records[3].hash;
    for seq in 5..=10 {
        let forged =
            if seq == 5 { AuditEntry { actor: "m".to_owned(), ..entry(5) } } else { entry(seq) };
        let hash = audit_hash(seq, &forged, &prev_hash);
        let sql = format!("UPDATE cb_audit SET actor = '{}' WHERE seq = {seq};", forged.actor);
        db.execute(&sql, &sql);
        set_blob(db, "prev_hash", &prev_hash, seq);
        set_blob(db, "hash", &hash, seq);
        prev_hash = hash;
    }
    let verification = store.verify_audit().unwrap();
    assert_eq!(verification, AuditVerification::Intact { entries: 10, head: prev_hash });
    assert_ne!(prev_hash, head);
}

fn deleted_entries_are_gaps(db: &TestDb) {
    let mut store = Store::open(&db.url).unwrap();
    let records = append(&mut store, 10);
    allow_tampering(db);
    // The newest entry gone leaves a valid, shorter chain with an older head.
    db.execute("DELETE FROM cb_audit WHERE seq = 10;", "DELETE FROM cb_audit WHERE seq = 10;");
    let shorter = AuditVerification::Intact { entries: 9, head: records[8].hash };
    assert_eq!(store.verify_audit().unwrap(), shorter);
    db.execute("DELETE FROM cb_audit WHERE seq = 5;", "DELETE FROM cb_audit WHERE seq = 5;");
    assert_eq!(store.verify_audit().unwrap(), broken(5, "gap in seq"));
    db.execute("DELETE FROM cb_audit WHERE seq = 1;", "DELETE FROM cb_audit WHERE seq = 1;");
    assert_eq!(store.verify_audit().unwrap(), broken(1, "gap in seq"));
}

fn a_changed_prev_hash_is_reported(db: &TestDb) {
    let mut store = Store::open(&db.url).unwrap();
    let records = append(&mut store, 10);
    allow_tampering(db);
    set_blob(db, "prev_hash", &[0; 32], 7);
    assert_eq!(store.verify_audit().unwrap(), broken(7, "prev_hash mismatch"));
    // The first entry must follow the zero hash, not any hash.
    set_blob(db, "prev_hash", &records[0].hash, 1);
    assert_eq!(store.verify_audit().unwrap(), broken(1, "prev_hash mismatch"));
}

fn a_malformed_row_is_reported(db: &TestDb) {
    let mut store = Store::open(&db.url).unwrap();
    append(&mut store, 4);
    allow_tampering(db);
    db.execute(
        "PRAGMA ignore_check_constraints = ON;
         UPDATE cb_audit SET hash = X'0102' WHERE seq = 3;",
        "ALTER TABLE cb_audit DROP CONSTRAINT cb_audit_hash_length;
         UPDATE cb_audit SET hash = '\\x0102'::bytea WHERE seq = 3;",
    );
    assert_eq!(store.verify_audit().unwrap(), broken(3, "malformed row"));
    // Reading it is a typed error, and appending after it too: nothing panics.
    let error = store.audit(0, 10).unwrap_err();
    assert!(
        matches!(error, StoreError::CorruptRow { table: "cb_audit", column: "hash", .. }),
        "{error:?}"
    );
    assert_eq!(store.audit(3, 10).unwrap().len(), 1, "the other rows still read");
}

fn the_log_is_append_only(db: &TestDb) {
    let mut store = Store::open(&db.url).unwrap();
    let records = append(&mut store, 3);
    for sql in [
        "UPDATE cb_audit SET actor = 'mallory' WHERE seq = 2;",
        "DELETE FROM cb_audit WHERE seq = 3;",
        "DELETE FROM cb_audit;",
    ] {
        let error = db.try_execute(sql, sql).unwrap_err();
        assert!(error.contains("cb_audit is append-only"), "{sql}: {error}");
    }
    if db.backend == cbdc_store::Backend::Postgres {
        let error = db.try_execute("", "TRUNCATE cb_audit;").unwrap_err();
        assert!(error.contains("cb_audit is append-only"), "{error}");
    }
    assert_eq!(store.audit(0, 10).unwrap(), records, "nothing changed");
    let head = records[2].hash;
    assert_eq!(store.verify_audit().unwrap(), AuditVerification::Intact { entries: 3, head });
}

fn concurrent_appends_form_one_chain(db: &TestDb) {
    const WRITERS: u64 = 4;
    const EACH: u64 = 40;
    // Each writer has its own connection, as separate processes would. They are opened here so
    // that a failure to open fails the test instead of leaving the others at the barrier.
    let stores: Vec<Store> = (0..WRITERS).map(|_| Store::open(&db.url).unwrap()).collect();
    let start = Barrier::new(WRITERS as usize);
    let answered: Vec<Vec<AuditRecord>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..WRITERS)
            .zip(stores)
            .map(|(writer, mut store)| {
                let start = &start;
                scope.spawn(move || {
                    start.wait();
                    (0..EACH)
                        .map(|i| {
                            let entry =
                                AuditEntry { actor: format!("writer-{writer}"), ..entry(i) };
                            store.append_audit(&entry).unwrap()
                        })
                        .collect()
                })
            })
            .collect();
        handles.into_iter().map(|handle| handle.join().unwrap()).collect()
    });

    let mut store = Store::open(&db.url).unwrap();
    let stored = store.audit(0, 1_000).unwrap();
    let total = WRITERS * EACH;
    let seqs: Vec<u64> = stored.iter().map(|record| record.seq).collect();
    assert_eq!(seqs, (1..=total).collect::<Vec<_>>(), "dense, no seq twice");
    let head = stored.last().unwrap().hash;
    assert_eq!(store.verify_audit().unwrap(), AuditVerification::Intact { entries: total, head });
    for (writer, records) in answered.iter().enumerate() {
        for (i, record) in records.iter().enumerate() {
            // What each writer was told is exactly what is stored at that seq.
            assert_eq!(&stored[(record.seq - 1) as usize], record, "writer {writer}, entry {i}");
            assert_eq!(record.actor, format!("writer-{writer}"));
        }
        assert!(records.windows(2).all(|pair| pair[0].seq < pair[1].seq), "writer {writer}");
    }
}

fn length_error(error: &StoreError) -> Option<(&'static str, u64)> {
    match error {
        StoreError::FieldLength { record: "audit entry", field, len, .. } => Some((field, *len)),
        _ => None,
    }
}

fn out_of_bounds_entries_are_refused(db: &TestDb) {
    let mut store = Store::open(&db.url).unwrap();
    let max = |bytes: u32| usize::try_from(bytes).unwrap();
    // Limits are on bytes: two-byte characters fill them at half the count.
    let largest = AuditEntry {
        at_ms: i64::MAX as u64,
        actor: "é".repeat(max(MAX_ACTOR_BYTES) / 2),
        action: "a".repeat(max(MAX_AUDIT_ACTION_BYTES)),
        target: "t".repeat(max(MAX_AUDIT_TARGET_BYTES)),
        outcome: "o".repeat(max(MAX_AUDIT_OUTCOME_BYTES)),
        details: "d".repeat(max(MAX_AUDIT_DETAILS_BYTES)),
    };
    let stored = store.append_audit(&largest).unwrap();
    let smallest = AuditEntry { target: String::new(), details: String::new(), ..entry(2) };
    store.append_audit(&smallest).unwrap();

    let cases = [
        ("actor", 130, AuditEntry { actor: "é".repeat(65), ..entry(3) }),
        ("actor", 0, AuditEntry { actor: String::new(), ..entry(3) }),
        ("action", 65, AuditEntry { action: "a".repeat(65), ..entry(3) }),
        ("action", 0, AuditEntry { action: String::new(), ..entry(3) }),
        ("target", 257, AuditEntry { target: "t".repeat(257), ..entry(3) }),
        ("outcome", 65, AuditEntry { outcome: "o".repeat(65), ..entry(3) }),
        ("outcome", 0, AuditEntry { outcome: String::new(), ..entry(3) }),
        ("details", 16_385, AuditEntry { details: "d".repeat(16_385), ..entry(3) }),
    ];
    for (field, len, bad) in &cases {
        let error = store.append_audit(bad).unwrap_err();
        assert_eq!(length_error(&error), Some((*field, *len)), "{error:?}");
    }
    let error = store.append_audit(&AuditEntry { at_ms: 1 << 63, ..entry(3) }).unwrap_err();
    assert!(matches!(error, StoreError::ValueOutOfRange { field: "at_ms", .. }), "{error:?}");

    assert_eq!(store.audit(0, 10).unwrap()[0], stored, "the largest entry reads back whole");
    let third = store.append_audit(&entry(3)).unwrap();
    assert_eq!(third.seq, 3, "refused entries took no seq");
    let head = third.hash;
    assert_eq!(store.verify_audit().unwrap(), AuditVerification::Intact { entries: 3, head });
}

fn the_audit_page_is_capped(db: &TestDb) {
    let mut store = Store::open(&db.url).unwrap();
    let rows = i64::from(MAX_AUDIT_PAGE) + 1;
    // Rows with made-up hashes: this is about paging, not the chain.
    db.execute(
        &format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows})
             INSERT INTO cb_audit
             SELECT i, i, 'bulk', 'load', '', 'ok', '', zeroblob(32), zeroblob(32) FROM n;"
        ),
        &format!(
            "INSERT INTO cb_audit
             SELECT i, i, 'bulk', 'load', '', 'ok', '', decode(repeat('00', 32), 'hex'),
                    decode(repeat('00', 32), 'hex')
             FROM generate_series(1, {rows}) AS i;"
        ),
    );
    let page = store.audit(0, u32::MAX).unwrap();
    assert_eq!(page.len(), 1_000);
    assert_eq!((page[0].seq, page[999].seq), (1, 1_000), "oldest first; the newest left off");
    let rest = store.audit(1_000, u32::MAX).unwrap();
    assert_eq!(rest.iter().map(|record| record.seq).collect::<Vec<_>>(), [1_001]);
    assert_eq!(store.audit(0, 999).unwrap().len(), 999);
    assert_eq!(store.verify_audit().unwrap(), broken(1, "hash mismatch"));
}

fn the_chain_continues_after_reopening(db: &TestDb) {
    let records = {
        let mut store = Store::open(&db.url).unwrap();
        append(&mut store, 3)
    };
    let mut store = Store::open(&db.url).unwrap();
    assert_eq!(store.audit(0, 10).unwrap(), records);
    let fourth = store.append_audit(&entry(4)).unwrap();
    assert_eq!(fourth.seq, 4);
    assert_eq!(fourth.prev_hash, records[2].hash);
    let head = fourth.hash;
    assert_eq!(store.verify_audit().unwrap(), AuditVerification::Intact { entries: 4, head });
}
