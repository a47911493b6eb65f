//! The retail wallet API that every commercial bank (intermediary) mounts, under `/v1`.
//!
//! Customers authenticate with a bearer token (`POST /v1/auth/token`), see their wallets,
//! balances and remaining tier limits, pay from custodial wallets (the bank signs) or submit
//! transfers they signed themselves (self-custody), follow receipts, page through history and
//! create payment requests (merchant QR codes). Every POST that moves money carries an
//! `Idempotency-Key`.
//!
//! Map of the crate:
//! - [`model`]: the JSON documents, shared by server, client and the OpenAPI document.
//! - [`backend`]: [`backend::WalletBackend`], what the bank implements; [`backend::ApiError`].
//! - [`routes`]: the actix-web handlers. They own everything HTTP: authentication headers,
//!   body limits and parsing, input validation, idempotency keys, status codes and RFC 7807
//!   problems. They never decide anything about money: that is the backend's and the ledger's.
//! - [`docs`]: the hand-written OpenAPI 3 document and a locally served Swagger UI.
//! - [`client`]: a typed blocking client (HTTP or HTTPS) for tests, tools and the CLI.
//!
//! The binary `cbdc-wallet` is a command-line wallet for self-custody keys built on the client.
#![forbid(unsafe_code)]

pub mod backend;
pub mod client;
pub mod docs;
pub mod model;
pub mod routes;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
