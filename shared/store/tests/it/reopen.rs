//! Reopening: everything written survives, and migrations already applied are not reapplied.

use cbdc_store::{
    AuditEntry, AuditVerification, Backend, ProjectionBatch, RequestRecord, RequestState, Store,
    StoreError, StoredSnapshot, SupplyRow, UserRecord,
};

use std::sync::Barrier;

use crate::support::{TestDb, chain, on_both_backends};

on_both_backends!(
    reopen_keeps_everything,
    migrations_run_twice_are_a_no_op,
    concurrent_first_opens_migrate_once,
);

const MIGRATIONS: i64 = 5;

fn reopen_keeps_everything(db: &TestDb) {
    let blocks = chain(4);
    let snapshot = StoredSnapshot { height: 3, state_root: [9; 32], data: vec![1, 2, 3] };
    let supply =
        SupplyRow { minted_minor: 10, burned_minor: 2, outstanding_minor: 8, timestamp_ms: 5 };
    let user = UserRecord {
        username: "olga".to_owned(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".to_owned(),
        role: "cb_officer".to_owned(),
        officer_key: Some([4; 32]),
        disabled: false,
        created_at_ms: 1,
    };
    let request = RequestRecord {
        id: [5; 16],
        kind: "mint".to_owned(),
        summary: "{}".to_owned(),
        reason: "test".to_owned(),
        created_by: "olga".to_owned(),
        created_at_ms: 2,
        body: vec![6; 8],
        expiry_height: 100,
        state: RequestState::Pending,
        rejection: None,
        committed_height: None,
        updated_at_ms: 2,
    };
    let entry = AuditEntry {
        at_ms: 3,
        actor: "olga".to_owned(),
        action: "request.create".to_owned(),
        target: "0505".to_owned(),
        outcome: "ok".to_owned(),
        details: "{}".to_owned(),
    };
    let audited = {
        let mut store = Store::open(&db.url).unwrap();
        for block in &blocks {
            store.append_block(block).unwrap();
        }
        store.set_certificate(4, b"certificate").unwrap();
        store.put_snapshot(&snapshot).unwrap();
        let batch = ProjectionBatch {
            projection: "central".to_owned(),
            supply: Some(supply),
            ..ProjectionBatch::default()
        };
        store.write_projection(4, &batch).unwrap();
        store.create_user(&user).unwrap();
        store.create_request(&request).unwrap();
        store.append_audit(&entry).unwrap()
    };
    let mut store = Store::open(&db.url).unwrap();
    let mut expected = blocks;
    expected[3].certificate = Some(b"certificate".to_vec());
    assert_eq!(store.last_height().unwrap(), 4);
    assert_eq!(store.blocks_from(1, 10).unwrap(), expected);
    assert_eq!(store.latest_snapshot().unwrap(), Some(snapshot));
    assert_eq!(store.projection_height("central").unwrap(), 4);
    assert_eq!(store.supply_at(4).unwrap(), Some(supply));
    assert_eq!(store.user("olga").unwrap(), Some(user));
    assert_eq!(store.request(&[5; 16]).unwrap(), Some(request));
    assert_eq!(store.audit(0, 10).unwrap(), vec![audited.clone()]);
    let head = audited.hash;
    assert_eq!(store.verify_audit().unwrap(), AuditVerification::Intact { entries: 1, head });
}

fn migrations_run_twice_are_a_no_op(db: &TestDb) {
    let blocks = chain(2);
    {
        let mut store = Store::open(&db.url).unwrap();
        store.append_block(&blocks[0]).unwrap();
    }
    let applied = "SELECT COUNT(*) AS n FROM __diesel_schema_migrations";
    assert_eq!(db.count(applied), MIGRATIONS);
    // Two handles at once, each running the (already applied) migrations on open.
    let mut first = Store::open(&db.url).unwrap();
    let mut second = Store::open(&db.url).unwrap();
    assert_eq!(db.count(applied), MIGRATIONS);
    assert_eq!(first.last_height().unwrap(), 1);
    second.append_block(&blocks[1]).unwrap();
    assert_eq!(first.last_height().unwrap(), 2);
}

fn concurrent_first_opens_migrate_once(db: &TestDb) {
    const OPENERS: usize = 4;
    // Processes (a node and the service beside it) may open a fresh database at the same time.
    let start = Barrier::new(OPENERS);
    let opened: Vec<Result<Store, StoreError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..OPENERS)
            .map(|_| {
                let start = &start;
                scope.spawn(move || {
                    start.wait();
                    Store::open(&db.url)
                })
            })
            .collect();
        handles.into_iter().map(|handle| handle.join().unwrap()).collect()
    });
    for store in opened {
        assert_eq!(store.unwrap().last_height().unwrap(), 0);
    }
    assert_eq!(db.count("SELECT COUNT(*) AS n FROM __diesel_schema_migrations"), MIGRATIONS);
}

#[test]
fn in_memory_sqlite_opens_and_migrates() {
    for url in [":memory:", "sqlite::memory:"] {
        let mut store = Store::open(url).unwrap();
        assert_eq!(store.backend(), Backend::Sqlite);
        store.append_block(&chain(1)[0]).unwrap();
        assert_eq!(store.last_height().unwrap(), 1);
    }
}

#[test]
fn unsupported_url_is_refused() {
    let error = Store::open("mysql://root:secret@localhost/cbdc").unwrap_err();
    assert!(matches!(&error, StoreError::UnsupportedUrl { scheme } if scheme == "mysql"));
}

#[test]
fn unreachable_postgres_is_a_connection_error() {
    let error = Store::open("postgres://nobody:secret@127.0.0.1:1/none").unwrap_err();
    assert!(matches!(error, StoreError::Connection(_)), "{error:?}");
    assert!(!format!("{error} {error:?}").contains("secret"));
}
