//! The [`Store`] handle: one connection, opened and migrated.

use crate::connection::AnyConnection;
use crate::{Backend, StoreError};

/// Settings of a [`Store`] beyond its URL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreOptions {
    /// How many of the newest snapshots [`Store::put_snapshot`] keeps (at least one is kept).
    pub snapshots_retained: u32,
}

impl Default for StoreOptions {
    fn default() -> StoreOptions {
        // A snapshot is small next to the block log; older ones are spares for an operator.
        StoreOptions { snapshots_retained: 3 }
    }
}

/// A node's durable storage over one database connection.
///
/// Every method blocks the calling thread on database I/O: own the `Store` on a dedicated
/// thread, never on an async worker (STYLE.md 18). Methods take `&mut self` because the
/// connection is not shared.
pub struct Store {
    pub(crate) conn: AnyConnection,
    pub(crate) options: StoreOptions,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The connection (and its URL, which may hold a password) is deliberately not shown.
        f.debug_struct("Store")
            .field("backend", &self.backend())
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Connects to `url` and applies every pending migration, with default options.
    ///
    /// `postgres://...` or `postgresql://...` is PostgreSQL; `sqlite://path`, a plain path or
    /// `:memory:` is SQLite (the file is created if missing).
    pub fn open(url: &str) -> Result<Store, StoreError> {
        Store::open_with(url, StoreOptions::default())
    }

    /// [`Store::open`] with explicit options.
    pub fn open_with(url: &str, options: StoreOptions) -> Result<Store, StoreError> {
        Ok(Store { conn: AnyConnection::open(url)?, options })
    }

    /// Which database this store writes to.
    pub fn backend(&self) -> Backend {
        self.conn.backend()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_can_move_to_its_own_thread() {
        fn assert_send<T: Send>() {}
        assert_send::<Store>();
        let store = Store::open(":memory:").unwrap();
        let debug = format!("{store:?}");
        assert!(debug.contains("Sqlite"), "{debug}");
        std::thread::spawn(move || drop(store)).join().unwrap();
    }
}
