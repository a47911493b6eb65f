//! One connection type over both backends, opening it, migrating it, and write transactions.
//!
//! `AnyConnection` is a `diesel::MultiConnection`, so one schema and one set of queries serve
//! SQLite and PostgreSQL. The few statements its common backend cannot express (`ON CONFLICT`
//! upserts) go through [`on_backend!`], which runs the same query text on the concrete
//! connection.

use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::{Connection, PgConnection, QueryResult, SqliteConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::StoreError;

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/postgres");

/// How long a SQLite writer waits for another writer's lock before failing.
pub(crate) const SQLITE_BUSY_TIMEOUT_MS: u32 = 5_000;
/// Page cache of each SQLite connection, in KiB (SQLite's default is 2 MiB).
const SQLITE_CACHE_KIB: u32 = 32 * 1024;
/// WAL pages after which a commit checkpoints (SQLite's default is 1,000: 4 MiB).
const SQLITE_WAL_CHECKPOINT_PAGES: u32 = 4_096;

/// How often, and how far apart, opening a new SQLite file tries to switch it to WAL (1 s).
const SQLITE_WAL_SWITCH_ATTEMPTS: u32 = 100;
const SQLITE_WAL_SWITCH_PAUSE: std::time::Duration = std::time::Duration::from_millis(10);

/// Serialises concurrent migrators of one PostgreSQL database (the bytes of "cbdc").
const POSTGRES_MIGRATION_LOCK: i64 = 0x6362_6463;

/// The database behind a [`crate::Store`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(diesel::MultiConnection)]
pub(crate) enum AnyConnection {
    Sqlite(SqliteConnection),
    Postgres(PgConnection),
}

/// Runs `$body` with `$conn` bound to the concrete connection inside `$any`.
macro_rules! on_backend {
    ($any:expr, $conn:ident => $body:expr) => {
        match $any {
            $crate::connection::AnyConnection::Sqlite($conn) => $body,
            $crate::connection::AnyConnection::Postgres($conn) => $body,
        }
    };
}
pub(crate) use on_backend;

/// Where a database URL points.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Target<'a> {
    /// A file path, a `file:` URI or `:memory:`, as SQLite takes it.
    Sqlite(&'a str),
    /// The whole `postgres://` or `postgresql://` URL, as libpq takes it.
    Postgres(&'a str),
}

/// `postgres://...` and `postgresql://...` are PostgreSQL; `sqlite://path`, `sqlite:path`, a
/// plain path and `:memory:` are SQLite; any other `scheme://` is refused.
pub(crate) fn parse_url(url: &str) -> Result<Target<'_>, StoreError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Target::Postgres(url));
    }
    let path = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")).unwrap_or(url);
    if path.is_empty() {
        return Err(StoreError::UnsupportedUrl { scheme: String::new() });
    }
    if let Some((scheme, _)) = path.split_once("://") {
        // Only the scheme is reported: the rest may hold a password.
        return Err(StoreError::UnsupportedUrl { scheme: scheme.to_owned() });
    }
    Ok(Target::Sqlite(path))
}

impl AnyConnection {
    /// Connects, configures the session and applies every pending migration.
    pub(crate) fn open(url: &str) -> Result<AnyConnection, StoreError> {
        let mut conn = match parse_url(url)? {
            Target::Sqlite(path) => AnyConnection::Sqlite(SqliteConnection::establish(path)?),
            Target::Postgres(url) => AnyConnection::Postgres(PgConnection::establish(url)?),
        };
        conn.configure()?;
        conn.migrate()?;
        Ok(conn)
    }

    pub(crate) fn backend(&self) -> Backend {
        match self {
            AnyConnection::Sqlite(_) => Backend::Sqlite,
            AnyConnection::Postgres(_) => Backend::Postgres,
        }
    }

    fn configure(&mut self) -> Result<(), StoreError> {
        match self {
            // synchronous=FULL: the block log is the durable truth, so a commit reaches the disk.
            // cache_size: a block's projection inserts rows at random places of the history
            // indexes; with SQLite's default 2 MiB page cache those pages are read back from
            // the OS on every block and spilled to the WAL in the middle of the transaction
            // (each written twice). The cache is a bound per connection, not an allocation.
            // wal_autocheckpoint: those index pages are written to the WAL again by every
            // block; a checkpoint copies each distinct page once, so a longer WAL between
            // checkpoints (16 MiB instead of 4) copies the same hot pages less often.
            // temp_store=MEMORY: a multi-row insert inside a transaction keeps a statement
            // journal (the pages it changed, to undo that statement alone); in a temporary
            // file that is a pwrite and fresh page-cache pages per changed page, about a fifth
            // of a bank's projection writes. In memory it is a copy bounded by one statement's
            // pages (a chunk of at most 64 rows); nothing durable is ever kept there.
            AnyConnection::Sqlite(conn) => {
                conn.batch_execute(&format!(
                    "PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}; \
                     PRAGMA cache_size = -{SQLITE_CACHE_KIB}; \
                     PRAGMA wal_autocheckpoint = {SQLITE_WAL_CHECKPOINT_PAGES}; \
                     PRAGMA temp_store = MEMORY;"
                ))?;
                switch_to_wal(conn)?;
                conn.batch_execute("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")?;
            }
            // The server default, stated so that a server configured otherwise cannot lose a
            // committed block on a crash.
            AnyConnection::Postgres(conn) => conn.batch_execute("SET synchronous_commit = on;")?,
        }
        Ok(())
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        match self {
            // Two first opens of one file would both find the migrations pending, and the later
            // would fail on "table already exists". Holding the write lock for the whole run
            // makes them queue (each migration's own transaction becomes a savepoint in this one).
            AnyConnection::Sqlite(conn) => {
                AnsiTransactionManager::begin_transaction_sql(conn, "BEGIN IMMEDIATE")?;
                let migrated = conn.run_pending_migrations(SQLITE_MIGRATIONS).map(drop);
                let ended = match migrated {
                    Ok(()) => AnsiTransactionManager::commit_transaction(conn),
                    Err(_) => AnsiTransactionManager::rollback_transaction(conn),
                };
                migrated.map_err(StoreError::Migration)?;
                ended?;
            }
            AnyConnection::Postgres(conn) => {
                conn.batch_execute(&format!("SELECT pg_advisory_lock({POSTGRES_MIGRATION_LOCK})"))?;
                let migrated = conn.run_pending_migrations(POSTGRES_MIGRATIONS).map(drop);
                conn.batch_execute(&format!(
                    "SELECT pg_advisory_unlock({POSTGRES_MIGRATION_LOCK})"
                ))?;
                migrated.map_err(StoreError::Migration)?;
            }
        }
        Ok(())
    }

    /// Runs `write` in one transaction: committed if it returns `Ok`, rolled back otherwise.
    ///
    /// On SQLite the transaction begins `IMMEDIATE`, taking the write lock before the first read,
    /// so a read-then-write never fails on a lock upgrade when another writer got in between.
    pub(crate) fn write_transaction<T>(
        &mut self,
        write: impl FnOnce(&mut AnyConnection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.begin_write()?;
        // Mirrors diesel's `TransactionManager::transaction`, whose BEGIN cannot be chosen.
        match write(self) {
            Ok(value) => {
                <AnyConnection as TransactionManager<AnyConnection>>::commit_transaction(self)?;
                Ok(value)
            }
            Err(error) => {
                match <AnyConnection as TransactionManager<AnyConnection>>::rollback_transaction(
                    self,
                ) {
                    Ok(()) | Err(diesel::result::Error::BrokenTransactionManager) => Err(error),
                    Err(rollback_error) => Err(rollback_error.into()),
                }
            }
        }
    }

    fn begin_write(&mut self) -> QueryResult<()> {
        match self {
            AnyConnection::Sqlite(conn) => {
                AnsiTransactionManager::begin_transaction_sql(conn, "BEGIN IMMEDIATE")
            }
            AnyConnection::Postgres(conn) => AnsiTransactionManager::begin_transaction(conn),
        }
    }
}

/// Sets WAL mode. Switching a new file to WAL needs it alone for a moment, and SQLite answers
/// "database is locked" at once, not after the busy timeout, while another connection is opening
/// it too (a node and a service starting on a fresh file). WAL mode is kept in the file, so only
/// a file's first opens ever wait here.
fn switch_to_wal(conn: &mut SqliteConnection) -> QueryResult<()> {
    const SQL: &str = "PRAGMA journal_mode = WAL;";
    for _ in 1..SQLITE_WAL_SWITCH_ATTEMPTS {
        if conn.batch_execute(SQL).is_ok() {
            return Ok(());
        }
        std::thread::sleep(SQLITE_WAL_SWITCH_PAUSE);
    }
    conn.batch_execute(SQL)
}

/// Creates the PostgreSQL database a `postgres://` URL names, if it does not exist yet, by
/// connecting to the server's `postgres` database. SQLite URLs need nothing (the file is created
/// on open). The database name must be a plain identifier (letters, digits, `_`).
pub fn ensure_database(url: &str) -> Result<(), StoreError> {
    let Target::Postgres(url) = parse_url(url)? else { return Ok(()) };
    let without_query = url.split('?').next().unwrap_or(url);
    let Some((server, name)) = without_query.rsplit_once('/') else {
        return Err(StoreError::UnsupportedUrl { scheme: "postgres".into() });
    };
    let valid = !name.is_empty()
        && name.len() <= 63
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !valid {
        return Err(StoreError::UnsupportedUrl { scheme: "postgres (database name)".into() });
    }
    let mut admin = PgConnection::establish(&format!("{server}/postgres"))?;
    #[derive(diesel::QueryableByName)]
    struct Exists {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        exists: bool,
    }
    use diesel::RunQueryDsl as _;
    let found: Exists =
        diesel::sql_query("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS exists")
            .bind::<diesel::sql_types::Text, _>(name)
            .get_result(&mut admin)
            .map_err(StoreError::from)?;
    if !found.exists {
        // The name was checked to be a plain identifier above, so quoting it is safe.
        admin.batch_execute(&format!("CREATE DATABASE \"{name}\""))?;
    }
    Ok(())
}

/// Drops the PostgreSQL database a `postgres://` URL names, if it exists (tests and tooling).
pub fn drop_database(url: &str) -> Result<(), StoreError> {
    let Target::Postgres(url) = parse_url(url)? else { return Ok(()) };
    let without_query = url.split('?').next().unwrap_or(url);
    let Some((server, name)) = without_query.rsplit_once('/') else { return Ok(()) };
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(StoreError::UnsupportedUrl { scheme: "postgres (database name)".into() });
    }
    let mut admin = PgConnection::establish(&format!("{server}/postgres"))?;
    admin.batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_choose_the_backend() {
        assert_eq!(parse_url("postgres://u@h/db").unwrap(), Target::Postgres("postgres://u@h/db"));
        assert_eq!(parse_url("postgresql://h/db").unwrap(), Target::Postgres("postgresql://h/db"));
        assert_eq!(parse_url("sqlite://data/node.db").unwrap(), Target::Sqlite("data/node.db"));
        assert_eq!(parse_url("sqlite:///var/node.db").unwrap(), Target::Sqlite("/var/node.db"));
        assert_eq!(parse_url("sqlite::memory:").unwrap(), Target::Sqlite(":memory:"));
        assert_eq!(parse_url(":memory:").unwrap(), Target::Sqlite(":memory:"));
        assert_eq!(parse_url("node.db").unwrap(), Target::Sqlite("node.db"));
    }

    #[test]
    fn unknown_schemes_are_refused_without_echoing_the_url() {
        let error = parse_url("mysql://root:secret@h/db").unwrap_err();
        assert!(matches!(&error, StoreError::UnsupportedUrl { scheme } if scheme == "mysql"));
        assert!(!error.to_string().contains("secret"));
        assert!(matches!(parse_url(""), Err(StoreError::UnsupportedUrl { .. })));
        assert!(matches!(parse_url("sqlite://"), Err(StoreError::UnsupportedUrl { .. })));
    }

    #[test]
    fn sqlite_sessions_are_durable_wal_with_foreign_keys() {
        use diesel::RunQueryDsl;
        use diesel::sql_types::{BigInt, Text};
        #[derive(diesel::QueryableByName)]
        struct Mode {
            #[diesel(sql_type = Text)]
            journal_mode: String,
        }
        #[derive(diesel::QueryableByName)]
        struct Flag {
            #[diesel(sql_type = BigInt)]
            value: i64,
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.db");
        let mut any = AnyConnection::open(path.to_str().unwrap()).unwrap();
        let AnyConnection::Sqlite(conn) = &mut any else { panic!("expected SQLite") };
        let mode: Mode = diesel::sql_query("PRAGMA journal_mode").get_result(conn).unwrap();
        assert_eq!(mode.journal_mode, "wal");
        let flag = |conn: &mut SqliteConnection, pragma: &str, column: &str| -> i64 {
            let sql = format!("SELECT {column} AS value FROM pragma_{pragma}");
            diesel::sql_query(sql).get_result::<Flag>(conn).unwrap().value
        };
        assert_eq!(flag(conn, "foreign_keys", "foreign_keys"), 1);
        assert_eq!(flag(conn, "synchronous", "synchronous"), 2, "FULL");
        assert_eq!(flag(conn, "busy_timeout", "timeout"), i64::from(SQLITE_BUSY_TIMEOUT_MS));
        assert_eq!(flag(conn, "cache_size", "cache_size"), -i64::from(SQLITE_CACHE_KIB));
        // Not a table-valued pragma: read by the statement itself.
        #[derive(diesel::QueryableByName)]
        struct Checkpoint {
            #[diesel(sql_type = BigInt)]
            wal_autocheckpoint: i64,
        }
        let checkpoint: Checkpoint =
            diesel::sql_query("PRAGMA wal_autocheckpoint").get_result(conn).unwrap();
        assert_eq!(checkpoint.wal_autocheckpoint, i64::from(SQLITE_WAL_CHECKPOINT_PAGES));
        #[derive(diesel::QueryableByName)]
        struct TempStore {
            #[diesel(sql_type = BigInt)]
            temp_store: i64,
        }
        let temp: TempStore = diesel::sql_query("PRAGMA temp_store").get_result(conn).unwrap();
        assert_eq!(temp.temp_store, 2, "MEMORY");
    }
}
