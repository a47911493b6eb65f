//! Reopening: everything written survives, and migrations already applied are not reapplied.

use cbdc_store::{Backend, ProjectionBatch, Store, StoreError, StoredSnapshot, SupplyRow};

use crate::support::{TestDb, chain, on_both_backends};

on_both_backends!(reopen_keeps_everything, migrations_run_twice_are_a_no_op);

const MIGRATIONS: i64 = 3;

fn reopen_keeps_everything(db: &TestDb) {
    let blocks = chain(4);
    let snapshot = StoredSnapshot { height: 3, state_root: [9; 32], data: vec![1, 2, 3] };
    let supply =
        SupplyRow { minted_minor: 10, burned_minor: 2, outstanding_minor: 8, timestamp_ms: 5 };
    {
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
    }
    let mut store = Store::open(&db.url).unwrap();
    let mut expected = blocks;
    expected[3].certificate = Some(b"certificate".to_vec());
    assert_eq!(store.last_height().unwrap(), 4);
    assert_eq!(store.blocks_from(1, 10).unwrap(), expected);
    assert_eq!(store.latest_snapshot().unwrap(), Some(snapshot));
    assert_eq!(store.projection_height("central").unwrap(), 4);
    assert_eq!(store.supply_at(4).unwrap(), Some(supply));
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
