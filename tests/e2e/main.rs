//! End-to-end tests: real `central-bank` and `intermediary` processes on loopback, talking over
//! authenticated p2p, each with its own database; transactions submitted over HTTP.

mod authorization;
mod central_bank;
mod dashboard;
mod harness;
mod metrics;
mod replication;
mod verify;
mod wallet;
mod webdriver;
