//! `central-bank`: the central bank's service. The binary (`main.rs`) runs the validator node,
//! creates networks and runs the local devnet; this library holds what the central bank owns
//! beyond the shared service code.

pub mod api;
pub use cbdc_service::auth;
pub mod client;
pub mod dashboard;
pub mod docs;
pub mod officer;
pub mod pki;
pub mod run;
pub mod setup;
pub mod workflow;

pub use cbdc_service::init::now_ms;

/// Locks a mutex shared by the API's handlers; a poisoned lock (a panic while holding it) still
/// yields the data, which every writer leaves consistent between statements.
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
