//! `central-bank`: the central bank's service. The binary (`main.rs`) runs the validator node,
//! creates networks and runs the local devnet; this library holds what the central bank owns
//! beyond the shared service code.

pub mod api;
pub mod auth;
pub mod client;
pub mod docs;
pub mod officer;
pub mod pki;
pub mod run;
pub mod setup;
pub mod workflow;

/// The wall clock in milliseconds since the Unix epoch: the one place the service reads it
/// (handlers and the workflow get it injected).
#[allow(clippy::disallowed_methods, reason = "the service's injected clock")]
pub fn now_ms() -> u64 {
    let since =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
}
