//! Integration tests of `cbdc-store`. Every scenario runs on SQLite (a fresh file) and on
//! PostgreSQL (a fresh database) when `DATABASE_URL` is set; `CBDC_REQUIRE_POSTGRES=1` turns a
//! missing `DATABASE_URL` into a failure.

mod audit;
mod bank;
mod block_log;
mod corruption;
mod epochs;
mod evidence;
mod projection;
mod recovery;
mod reopen;
mod requests;
mod snapshots;
mod support;
mod users;
