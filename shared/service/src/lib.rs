//! What every service binary of the platform shares: node configuration (TOML plus environment),
//! key files, network creation (`init`), running a validator with its `/health`, `/metrics` and
//! status endpoints, and the local multi-process network (`devnet`).

pub mod auth;
pub mod config;
pub mod devnet;
pub mod http;
pub mod init;
pub mod keys;
pub mod telemetry;
pub mod validator;

/// Logs to stderr: human-readable by default, JSON with `CBDC_LOG_FORMAT=json`; the level comes
/// from `RUST_LOG` (default `info`).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let json = std::env::var("CBDC_LOG_FORMAT").is_ok_and(|v| v == "json");
    if json {
        let _ = builder.json().try_init();
    } else {
        let _ = builder.try_init();
    }
}
