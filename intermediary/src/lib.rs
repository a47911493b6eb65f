//! `intermediary`: a commercial bank's service. The binary runs the bank's validator node and,
//! beside it, the bank's two APIs on one listener:
//! - the operations API (`/v1/ops`, role `bank_operator`): onboarding with KYC (`ops`),
//!   wallets, tiers, freezes, float movements, deposit-account links;
//! - the retail wallet API (`/v1`, role `customer`), whose routes and documents live in the
//!   `wallet-api` crate and which this crate's [`bank::Bank`] backs.
//!
//! The bank reads the ledger through its own replica rebuilt from the node's block log
//! (`projector`), which also writes the SQL projections and settles payments.

pub mod bank;
pub mod ops;
pub mod projector;
pub mod run;
pub mod sealing;

/// Locks a mutex shared by the API's handlers; a poisoned lock (a panic while holding it) still
/// yields the data, which every writer leaves consistent between statements.
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
