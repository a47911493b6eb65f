//! Per-test databases: a fresh SQLite file, or a fresh PostgreSQL database created from
//! `DATABASE_URL` and dropped afterwards (STYLE.md 24).

use std::sync::atomic::{AtomicU32, Ordering};

use cbdc_store::{Backend, StoredBlock};
use diesel::connection::SimpleConnection;
use diesel::sql_types::BigInt;
use diesel::{Connection, PgConnection, QueryableByName, RunQueryDsl, SqliteConnection};

/// Runs each named scenario `fn(&TestDb)` as two tests, `<name>::sqlite` and `<name>::postgres`.
macro_rules! on_both_backends {
    ($($scenario:ident),+ $(,)?) => {
        $(
            mod $scenario {
                #[test]
                fn sqlite() {
                    $crate::support::run_sqlite(super::$scenario);
                }

                #[test]
                fn postgres() {
                    $crate::support::run_postgres(super::$scenario);
                }
            }
        )+
    };
}
pub(crate) use on_both_backends;

/// One test's database, removed when dropped.
pub struct TestDb {
    /// The URL to give `Store::open`.
    pub url: String,
    pub backend: Backend,
    /// What a raw diesel connection takes: a file path or a PostgreSQL URL.
    raw_target: String,
    cleanup: Cleanup,
}

enum Cleanup {
    Sqlite(#[allow(dead_code, reason = "deletes the directory when dropped")] tempfile::TempDir),
    Postgres { admin_url: String, name: String },
}

pub fn run_sqlite(scenario: fn(&TestDb)) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("node.db");
    let path = path.to_str().expect("utf-8 temporary path").to_owned();
    let db = TestDb {
        url: format!("sqlite://{path}"),
        backend: Backend::Sqlite,
        raw_target: path,
        cleanup: Cleanup::Sqlite(dir),
    };
    scenario(&db);
}

pub fn run_postgres(scenario: fn(&TestDb)) {
    let Ok(admin_url) = std::env::var("DATABASE_URL") else {
        assert!(
            std::env::var("CBDC_REQUIRE_POSTGRES").as_deref() != Ok("1"),
            "CBDC_REQUIRE_POSTGRES=1 but DATABASE_URL is not set"
        );
        eprintln!("note: DATABASE_URL is not set; skipping the PostgreSQL variant");
        return;
    };
    let name = unique_database_name();
    let mut admin = PgConnection::establish(&admin_url).expect("connect to DATABASE_URL");
    admin.batch_execute(&format!("CREATE DATABASE {name}")).expect("create test database");
    let url = with_database(&admin_url, &name);
    let db = TestDb {
        url: url.clone(),
        backend: Backend::Postgres,
        raw_target: url,
        cleanup: Cleanup::Postgres { admin_url, name },
    };
    scenario(&db);
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Cleanup::Postgres { admin_url, name } = &self.cleanup {
            // Never panic in drop (it may run while unwinding): report and leave the database.
            let dropped = PgConnection::establish(admin_url).map_err(|e| e.to_string()).and_then(
                |mut admin| {
                    admin
                        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .map_err(|e| e.to_string())
                },
            );
            if let Err(error) = dropped {
                eprintln!("warning: could not drop test database {name}: {error}");
            }
        }
    }
}

/// Unique across the tests of this process and, by the pid and clock, across processes.
fn unique_database_name() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let counter = NEXT.fetch_add(1, Ordering::Relaxed);
    #[allow(clippy::disallowed_methods, reason = "a test database name, not ledger logic")]
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("cbdc_test_{}_{counter}_{nanos}", std::process::id())
}

/// `admin_url` with its database replaced by `name`, keeping any `?parameters`.
fn with_database(admin_url: &str, name: &str) -> String {
    let (scheme, rest) = admin_url.split_once("://").expect("DATABASE_URL has a scheme");
    let (rest, query) = rest.split_once('?').map_or((rest, None), |(r, q)| (r, Some(q)));
    let authority = rest.split_once('/').map_or(rest, |(authority, _)| authority);
    match query {
        Some(query) => format!("{scheme}://{authority}/{name}?{query}"),
        None => format!("{scheme}://{authority}/{name}"),
    }
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

impl TestDb {
    /// Runs raw SQL on a separate connection: SQLite's or PostgreSQL's text, by backend.
    pub fn execute(&self, sqlite: &str, postgres: &str) {
        match self.backend {
            Backend::Sqlite => SqliteConnection::establish(&self.raw_target)
                .expect("raw SQLite connection")
                .batch_execute(sqlite)
                .expect("raw SQLite statement"),
            Backend::Postgres => PgConnection::establish(&self.raw_target)
                .expect("raw PostgreSQL connection")
                .batch_execute(postgres)
                .expect("raw PostgreSQL statement"),
        }
    }

    /// Like [`TestDb::execute`], but the statement may fail: its error, as text.
    pub fn try_execute(&self, sqlite: &str, postgres: &str) -> Result<(), String> {
        match self.backend {
            Backend::Sqlite => SqliteConnection::establish(&self.raw_target)
                .expect("raw SQLite connection")
                .batch_execute(sqlite),
            Backend::Postgres => PgConnection::establish(&self.raw_target)
                .expect("raw PostgreSQL connection")
                .batch_execute(postgres),
        }
        .map_err(|error| error.to_string())
    }

    /// The `n` column of a raw `SELECT COUNT(*) AS n ...` (the same text on both backends).
    pub fn count(&self, sql: &str) -> i64 {
        let query = diesel::sql_query(sql);
        let count: Count = match self.backend {
            Backend::Sqlite => query.get_result(
                &mut SqliteConnection::establish(&self.raw_target).expect("raw connection"),
            ),
            Backend::Postgres => query.get_result(
                &mut PgConnection::establish(&self.raw_target).expect("raw connection"),
            ),
        }
        .expect("count query");
        count.n
    }
}

/// A deterministic chain of `n` raw blocks at heights 1..=n, each extending the one before.
pub fn chain(n: u8) -> Vec<StoredBlock> {
    let mut parent_hash = [0; 32];
    (1..=n)
        .map(|height| {
            let block = raw_block(height, parent_hash);
            parent_hash = block.hash;
            block
        })
        .collect()
}

/// A raw block whose hash is derived from its height and parent.
pub fn raw_block(height: u8, parent_hash: [u8; 32]) -> StoredBlock {
    let mut hash = parent_hash;
    hash[0] = height;
    hash[31] = hash[31].wrapping_add(0x5a);
    StoredBlock {
        height: u64::from(height),
        hash,
        parent_hash,
        timestamp_ms: 1_700_000_000_000 + u64::from(height) * 1_000,
        block: vec![height; 40],
        certificate: None,
    }
}
